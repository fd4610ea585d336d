#!/usr/bin/env bash
# A sweep of 10⁶ jobs (a 1,000 × 1,000 grid, one template, a name), nothing run: the time and
# peak memory of a dry run (planning every job: the first renders each, the second reads the
# plan cache) and of `jobman status`, with the time per planned job and the memory per job.
#
#   bench/million.sh            # 10⁶ jobs
#   SIDE=300 bench/million.sh   # a 300 × 300 grid, for a quick try
#   JOBMAN_BIN=/path/to/other/jobman bench/million.sh    # another build of jobman
#
# Not a test; CI never runs it. Needs GNU time (/usr/bin/time). Figures go to
# docs/PERFORMANCE.md ("A million jobs").
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
SIDE=${SIDE:-1000}
N=$((SIDE * SIDE))
[ -x /usr/bin/time ] || { echo "bench: GNU time is required (apt-get install time)" >&2; exit 1; }

WORK="$(mktemp -d -t jobman-million.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
JOBMAN="$WORK/jobman"
bench_jobman "$JOBMAN"
mkdir -p "$WORK/ws/templates"
cat >"$WORK/ws/Jobfile.toml" <<TOML
[workspace]
max_jobs = 10000000

[params]
a = { range = [0, $SIDE] }
b = { range = [0, $SIDE] }

[job]
name = "a{{a}}-b{{b}}"
command = "python3 run.py"

[[template]]
src = "run.py.j2"
target = "run.py"
TOML
printf 'print({{ a }} * {{ b }})\n' >"$WORK/ws/templates/run.py.j2"

measure() { # what command...
    local what=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    read -r secs kb <"$WORK/time"
    printf '| %s | %.2f s | %.1f µs | %.0f MB | %.0f bytes |\n' "$what" "$secs" \
        "$(awk -v s="$secs" -v n="$N" 'BEGIN { print s / n * 1e6 }')" \
        "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')" "$(awk -v k="$kb" -v n="$N" 'BEGIN { print k * 1024 / n }')"
}

cd "$WORK/ws"
echo "| $N jobs | wall time | per job | peak memory | per job |"
echo "|---|---|---|---|---|"
measure "\`build -n\`, first (renders every job)" "$JOBMAN" build -n
# Past 100 jobs a dry run sums the rest up in one line, which says how many it planned.
[ "$N" -le 100 ] || grep -q "and $((N - 100)) more ($((N - 100)) new)" "$WORK/out" || { echo "bench: the dry run did not plan $N jobs" >&2; exit 1; }
measure "\`build -n\`, again (plan cache)" "$JOBMAN" build -n
measure "\`status\`, first look (plans and locates every job)" "$JOBMAN" status
grep -q "^$N jobs: 0 done, $N pending" "$WORK/out" || { echo "bench: status did not count $N jobs" >&2; exit 1; }
measure "\`status\`, again (the counts it kept)" "$JOBMAN" status
grep -q "^$N jobs: 0 done, $N pending" "$WORK/out" || { echo "bench: status did not count $N jobs again" >&2; exit 1; }
echo
echo "($(nproc) cores; $("$JOBMAN" --version); load average $(cut -d' ' -f1-3 /proc/loadavg))"
