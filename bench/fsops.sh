#!/usr/bin/env bash
# File-system operations per job, counted with `strace -f`, for a launch and for a no-op build,
# beside xargs (one output file per job, nothing else) and GNU `parallel --results` (a folder
# per job, like jobman) launching the same jobs. On a shared file system (Lustre, GPFS, NFS) each
# metadata operation is a network round trip: this is what a sweep costs the file server.
#
#   bench/fsops.sh              # 1,000 jobs
#   N=5000 bench/fsops.sh
#   JOBMAN_BIN=/path/to/other/jobman bench/fsops.sh    # another build of jobman
#
# Counted: every system call that names a path in the workspace or works on a descriptor of one
# (`strace -y` prints the descriptor's path), from jobman and from the jobs it starts; calls
# outside the workspace (the shell loading its libraries) are not the workspace's cost and are
# left out. "metadata" is what asks the file server about or changes a name: open/create,
# mkdir, rename, link/symlink, unlink/rmdir, stat/access/readlink, readdir, utimes, chmod.
# "sync" counts fsync, fdatasync and syncfs apart. Not a test; CI never runs it. Figures go to
# docs/PERFORMANCE.md ("File-system operations per job").
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
N=${N:-1000}
for tool in strace awk xargs; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install $tool)" >&2; exit 1; }
done
HAVE_PARALLEL=1
command -v parallel >/dev/null || { HAVE_PARALLEL=0; echo "bench: GNU parallel not found (apt-get install parallel): its row is left out" >&2; }

WORK="$(mktemp -d -t jobman-fsops.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
JOBMAN="$WORK/jobman"
bench_jobman "$JOBMAN"

METADATA='open|openat|openat2|creat|mkdir|mkdirat|rename|renameat|renameat2|link|linkat|symlink|symlinkat|unlink|unlinkat|rmdir|stat|lstat|newfstatat|fstatat64|statx|access|faccessat|faccessat2|readlink|readlinkat|getdents64|getdents|utimensat|chmod|fchmodat|chown|fchownat|truncate'
SYNC='fsync|fdatasync|syncfs|sync_file_range'

# strace's log of a command run in $1 → "metadata sync" counts of calls on a path in $1: the
# path argument made absolute with the calling process's folder (`AT_FDCWD</cwd>`), or the path
# of the descriptor it works on (`3</path>`). A shell's library loads are outside.
count() { # dir log
    awk -v dir="$1" -v meta="^($METADATA)\$" -v sync="^($SYNC)\$" '
        {
            line = $0
            sub(/^[0-9]+ +/, "", line)
            if (line ~ /resumed>/) next
            name = line; sub(/\(.*/, "", name)
            args = substr(line, length(name) + 2)
            path = ""
            if (match(args, /^AT_FDCWD<[^>]*>, "[^"]*"/)) {
                cwd = substr(args, 10); sub(/>.*/, "", cwd)
                rel = substr(args, RSTART, RLENGTH); sub(/^[^"]*"/, "", rel); sub(/"$/, "", rel)
                path = (rel ~ /^\//) ? rel : cwd "/" rel
            } else if (match(args, /^"[^"]*"/)) {
                path = substr(args, 2, RLENGTH - 2)
            } else if (match(args, /^[0-9]+<[^>]*>/)) {
                path = substr(args, RSTART, RLENGTH); sub(/^[0-9]+</, "", path); sub(/>$/, "", path)
            }
            if (index(path, dir) != 1) next
            if (name ~ meta) m++
            else if (name ~ sync) s++
        }
        END { printf "%d %d\n", m, s }' "$2"
}

trace() { # dir log command...
    local dir=$1 log=$2
    shift 2
    (cd "$dir" && strace -f -y -qq -o "$log" -e trace='%file,%desc,fsync,fdatasync,syncfs' "$@" >/dev/null 2>&1)
}

per_job() { awk -v n="$N" -v x="$1" 'BEGIN { printf "%.2f", x / n }'; }

row() { # what counts
    read -r m s <<<"$2"
    printf '| %s | %s | %s | %s |\n' "$1" "$(per_job "$m")" "$(per_job "$s")" "$((m + s))"
}

mkdir -p "$WORK/jm"
cat >"$WORK/jm/Jobfile.toml" <<TOML
[params]
i = { range = [0, $N] }

[job]
command = "echo p{{i}} > out.txt"
TOML

echo "| $N jobs | metadata ops per job | syncs per job | all counted |"
echo "|---|---|---|---|"
trace "$WORK/jm" "$WORK/launch.strace" "$JOBMAN" build -q -j2
row "jobman: launch" "$(count "$WORK/jm" "$WORK/launch.strace")"
trace "$WORK/jm" "$WORK/noop.strace" "$JOBMAN" build -q -j2
row "jobman: no-op build" "$(count "$WORK/jm" "$WORK/noop.strace")"
# status keeps its counts only once the jobs folder has not changed for 2 seconds.
sleep 2
trace "$WORK/jm" "$WORK/status.strace" "$JOBMAN" status
row "jobman: status, first look" "$(count "$WORK/jm" "$WORK/status.strace")"
trace "$WORK/jm" "$WORK/status-again.strace" "$JOBMAN" status
row "jobman: status, again (kept counts)" "$(count "$WORK/jm" "$WORK/status-again.strace")"

mkdir -p "$WORK/xargs/out"
seq 0 $((N - 1)) >"$WORK/ids"
trace "$WORK/xargs" "$WORK/xargs.strace" xargs -a "$WORK/ids" -P2 -I{} sh -c 'echo p{} > out/{}.txt'
row "xargs -P2: launch" "$(count "$WORK/xargs" "$WORK/xargs.strace")"

if [ "$HAVE_PARALLEL" = 1 ]; then
    mkdir -p "$WORK/parallel"
    trace "$WORK/parallel" "$WORK/parallel.strace" \
        parallel -j2 --results "$WORK/parallel/res" -a "$WORK/ids" 'echo p{} > /dev/null; echo p{}'
    row "parallel -j2 --results: launch" "$(count "$WORK/parallel" "$WORK/parallel.strace")"
fi
echo
echo "(strace -f -y; calls naming a path in the workspace; $(nproc) cores; $("$JOBMAN" --version))"
