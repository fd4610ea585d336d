# What the bench scripts share; sourced by them, not run. Needs REPO, the checkout's root.

# Copies the jobman to measure to $1: JOBMAN_BIN when set (another build, to compare:
# JOBMAN_BIN=/path/to/jobman bench/fsops.sh), else this checkout's release build, built first.
bench_jobman() {
    if [ -n "${JOBMAN_BIN:-}" ]; then
        cp "$JOBMAN_BIN" "$1"
    else
        (cd "$REPO" && cargo build --release --quiet)
        cp "$REPO/target/release/jobman" "$1"
    fi
}
