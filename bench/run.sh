#!/usr/bin/env bash
# jobman benchmark: launch overhead against xargs and GNU parallel --results, no-op rebuilds
# against ninja, status and ls at 100k.
#
#   bench/run.sh                 # everything goes to a fresh `mktemp -d` folder
#   BENCH_DIR=/some/dir bench/run.sh
#
# Not a test and never run by CI: timings on shared machines are noisy, so every claim is a ratio
# against a peer measured in the same run (see docs/PERFORMANCE.md). Needs hyperfine and ninja
# (installed with apt-get when missing), jq, awk. On a busy 2-core machine: 25+ minutes from
# nothing (building the 100,000-job workspaces once before timing their no-op rebuilds takes ~10);
# about 15 minutes when BENCH_DIR already holds them. Results go to $BENCH_DIR/results-<time>/
# (hyperfine JSON and markdown, summary.md, the binary measured).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS=(--warmup 1 --runs 5)
# Sizes can be shrunk for a quick try: LAUNCH_N=200 NOOP_SIZES="100 1000" bench/run.sh
LAUNCH_N=${LAUNCH_N:-5000}
read -r -a NOOP_SIZES <<<"${NOOP_SIZES:-10000 100000}"
# mv runs first, before this script has deleted anything (see the launch section).
read -r -a LAUNCH_VARIANTS <<<"${LAUNCH_VARIANTS:-mv tmpfs rm}"

log() { printf '\n==> %s\n' "$*" >&2; }

install_tools() {
    local missing=()
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v ninja >/dev/null || missing+=(ninja-build)
    command -v parallel >/dev/null || missing+=(parallel)
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    log "installing ${missing[*]}"
    "${sudo[@]}" apt-get install -y "${missing[@]}" \
        || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y "${missing[@]}"; }
}

install_tools
for tool in hyperfine ninja parallel jq awk xargs; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done

log "cargo build --release"
(cd "$REPO" && cargo build --release)

if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"
else
    BENCH_DIR="$(mktemp -d -t jobman-bench.XXXXXX)"
fi
BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"
RESULTS="$BENCH_DIR/results-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RESULTS"
log "working in $BENCH_DIR"
# The release binary, copied: a `cargo build` elsewhere during the run must not swap it midway.
JOBMAN="$RESULTS/jobman"
cp "$REPO/target/release/jobman" "$JOBMAN"
# Which jobman was measured (read-only git queries).
VERSION="$("$JOBMAN" --version)"
if REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"; then
    git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || REV="$REV+uncommitted changes"
    VERSION="$VERSION ($REV)"
fi
VERSION="$VERSION, binary sha256 $(sha256sum "$JOBMAN" | cut -c1-12)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# A Jobfile of n trivial jobs: job i writes "p<i>" (launch) or "<i>" (no-op) to out.txt in its folder.
write_jobfile() { # dir n command
    mkdir -p "$1"
    cat >"$1/Jobfile.toml" <<TOML
[workspace]
max_jobs = 10000000

[params]
i = { range = [0, $2] }

[job]
command = "$3"
TOML
}

# The median of one command of a hyperfine JSON export, in seconds.
median() { jq -r ".results[$2].median" "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
secs() { awk -v a="$1" 'BEGIN { printf (a < 0.1 ? "%.3f" : "%.2f"), a }'; }

SUMMARY=()
row() { SUMMARY+=("$(printf '| %s | %s | %s | %s |' "$@")"); }

# --- 1. Launch 5,000 trivial jobs, 2 at a time, from nothing ------------------------------------
# Three ways to start each run from nothing:
#   rm     `rm -rf` the previous run's output (as asked: --prepare 'rm -rf scratch_space .jobman').
#   mv     move it aside, delete it only after all timings. On an ext4 without a journal (the
#          disk of the 2-core machines this was written on) the kernel does not reuse an inode
#          freed in the last 60-300 s and scans past every such inode for each new file
#          (fs/ext4/ialloc.c, recently_deleted): `rm` makes each run pay for the runs before it.
#   tmpfs  `rm` on a tmpfs workspace: what the runner itself costs, without the disk.
# GNU parallel --results keeps a folder per job, as jobman does: the peer of the same promise.
launch_pair() { # variant dir prepare-jobman prepare-xargs prepare-parallel
    local variant=$1 dir=$2
    write_jobfile "$dir" "$LAUNCH_N" "echo p{{i}} > out.txt"
    seq 0 $((LAUNCH_N - 1)) >"$dir/ids.txt"
    (
        cd "$dir"
        hyperfine "${RUNS[@]}" \
            --export-json "$RESULTS/launch-$variant.json" --export-markdown "$RESULTS/launch-$variant.md" \
            --command-name "jobman build -j2 ($LAUNCH_N jobs, $variant)" --prepare "$3" "$JOBMAN build -j2" \
            --command-name "xargs -P2 ($LAUNCH_N jobs, $variant)" --prepare "$4" \
            "xargs -P2 -I{} sh -c 'echo p{} > out/{}.txt' < ids.txt" \
            --command-name "parallel -j2 --results ($LAUNCH_N jobs, $variant)" --prepare "$5" \
            "parallel -j2 --results res 'echo p{}' < ids.txt"
        # The runs must have done the work, or the times mean nothing.
        [ "$(cat scratch_space/*/out.txt | wc -l)" -eq "$LAUNCH_N" ]
        [ "$(find out -name '*.txt' | wc -l)" -eq "$LAUNCH_N" ]
        [ "$(find res -name stdout | wc -l)" -eq "$LAUNCH_N" ]
    )
    local j x p
    j=$(median "$RESULTS/launch-$variant.json" 0)
    x=$(median "$RESULTS/launch-$variant.json" 1)
    p=$(median "$RESULTS/launch-$variant.json" 2)
    row "launch $LAUNCH_N jobs, -j2, fresh ($variant)" "$(secs "$j") s" "xargs -P2 $(secs "$x") s" "$(ratio "$j" "$x")"
    row "launch $LAUNCH_N jobs, -j2, fresh ($variant)" "$(secs "$j") s" "parallel -j2 --results $(secs "$p") s" "$(ratio "$j" "$p")"
}

for variant in "${LAUNCH_VARIANTS[@]}"; do
    log "1. launch $LAUNCH_N jobs at -j2, $variant: jobman vs xargs -P2"
    case $variant in
    rm)
        launch_pair rm "$BENCH_DIR/launch-rm" 'rm -rf scratch_space .jobman' 'rm -rf out && mkdir out' 'rm -rf res' ;;
    mv)
        aside() { echo "mkdir -p trash && for d in $*; do [ ! -e \$d ] || mv \$d trash/\$d.\$(date +%s%N); done"; }
        launch_pair mv "$BENCH_DIR/launch-mv" "$(aside scratch_space .jobman)" "$(aside out) && mkdir out" "$(aside res)" ;;
    tmpfs)
        if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" != tmpfs ]; then
            log "   no tmpfs at /dev/shm: skipped"
            continue
        fi
        TMPFS_DIR="$(mktemp -d -p /dev/shm jobman-bench.XXXXXX)"
        trap 'rm -rf "$TMPFS_DIR"' EXIT
        launch_pair tmpfs "$TMPFS_DIR/launch" 'rm -rf scratch_space .jobman' 'rm -rf out && mkdir out' 'rm -rf res'
        rm -rf "$TMPFS_DIR" ;;
    *) echo "bench: unknown launch variant $variant (rm, mv, tmpfs)" >&2; exit 1 ;;
    esac
done

# --- 2. No-op rebuilds (everything done) against ninja -----------------------------------------
for n in "${NOOP_SIZES[@]}"; do
    log "2. no-op rebuild of $n jobs: jobman vs ninja"
    JM="$BENCH_DIR/noop-$n/jobman"
    NJ="$BENCH_DIR/noop-$n/ninja"
    write_jobfile "$JM" "$n" "echo {{i}} > out.txt"
    mkdir -p "$NJ/in" "$NJ/out"
    # n inputs and a build.ninja with one `cp` edge per input; build.ninja comes last, so a rerun
    # with the same BENCH_DIR keeps a complete workspace (and its outputs) as it is.
    [ -f "$NJ/build.ninja" ] || (cd "$NJ" && awk -v n="$n" 'BEGIN {
        print "rule cp\n  command = cp $in $out" > "build.ninja.tmp"
        for (i = 0; i < n; i++) {
            f = "in/" i ".txt"; print i > f; close(f)
            print "build out/" i ".txt: cp in/" i ".txt" > "build.ninja.tmp"
        }
    }' && mv build.ninja.tmp build.ninja)
    log "   first build of the $n-job workspaces (not timed; quick when BENCH_DIR already has them)"
    start=$(date +%s)
    (cd "$JM" && "$JOBMAN" --quiet build -j2)
    (cd "$NJ" && ninja -j2 >/dev/null)
    echo "   built both in $(($(date +%s) - start)) s" >&2
    # Both must now be no-ops.
    (cd "$JM" && "$JOBMAN" status --json) | jq -e ".total == $n and .done == $n" >/dev/null \
        || { echo "bench: the jobman workspace of $n jobs is not all done" >&2; exit 1; }
    (cd "$NJ" && ninja -n -j2) | grep -q 'no work to do' \
        || { echo "bench: the ninja workspace of $n edges is not up to date" >&2; exit 1; }
    hyperfine "${RUNS[@]}" -N \
        --export-json "$RESULTS/noop-$n.json" --export-markdown "$RESULTS/noop-$n.md" \
        --command-name "jobman build (no-op, $n jobs)" "$JOBMAN -f $JM/Jobfile.toml build -j2" \
        --command-name "ninja (no-op, $n edges)" "ninja -C $NJ -j2"
    j=$(median "$RESULTS/noop-$n.json" 0)
    x=$(median "$RESULTS/noop-$n.json" 1)
    row "no-op rebuild, $n jobs" "$(secs "$j") s" "ninja $(secs "$x") s" "$(ratio "$j" "$x")"
done

# --- 3. `jobman status` and `jobman ls --format json` on the 100,000-job workspace --------------
n=${NOOP_SIZES[-1]}
log "3. jobman status and ls --format json on $n jobs"
# The listing must be whole, or its time means nothing.
"$JOBMAN" -f "$BENCH_DIR/noop-$n/jobman/Jobfile.toml" ls --format json | jq -e ".jobs | length == $n" >/dev/null \
    || { echo "bench: ls --format json did not list $n jobs" >&2; exit 1; }
# `status` keeps its counts while nothing changes (docs/ARCHITECTURE.md): timed both as repeated
# and as the first look after a change, its kept counts removed before each run.
hyperfine "${RUNS[@]}" -N \
    --export-json "$RESULTS/status-$n.json" --export-markdown "$RESULTS/status-$n.md" \
    --command-name "jobman status ($n jobs)" "$JOBMAN -f $BENCH_DIR/noop-$n/jobman/Jobfile.toml status" \
    --command-name "jobman ls --format json ($n jobs)" \
    "$JOBMAN -f $BENCH_DIR/noop-$n/jobman/Jobfile.toml ls --format json"
hyperfine "${RUNS[@]}" -N --prepare "rm -f $BENCH_DIR/noop-$n/jobman/.jobman/status" \
    --export-json "$RESULTS/status-first-$n.json" --export-markdown "$RESULTS/status-first-$n.md" \
    --command-name "jobman status, first look ($n jobs)" "$JOBMAN -f $BENCH_DIR/noop-$n/jobman/Jobfile.toml status"
s=$(median "$RESULTS/status-$n.json" 0)
row "status, $n jobs (repeated)" "$(secs "$s") s" "(signac-flow: 3.5 s reported; not run here)" "—"
s=$(median "$RESULTS/status-first-$n.json" 0)
row "status, $n jobs (first look after a change)" "$(secs "$s") s" "—" "—"
s=$(median "$RESULTS/status-$n.json" 1)
row "ls --format json, $n jobs" "$(secs "$s") s" "—" "—"

# --- Summary -------------------------------------------------------------------------------------
{
    echo
    echo "$VERSION benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(hyperfine --version), ninja $(ninja --version)"
    echo "median of ${RUNS[*]}; load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "results in $RESULTS"
    echo
    echo "| what | jobman | peer | ratio jobman/peer |"
    echo "|---|---|---|---|"
    printf '%s\n' "${SUMMARY[@]}"
} | tee "$RESULTS/summary.md"

# Untimed, and last: deleting the moved-aside runs is slow on this kind of disk.
if [ -d "$BENCH_DIR/launch-mv/trash" ]; then
    log "deleting the moved-aside launch runs (not timed)"
    rm -rf "$BENCH_DIR/launch-mv/trash"
fi
