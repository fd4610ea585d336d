#!/usr/bin/env bash
# jobman benchmark on Slurm: N short jobs (0.1 s each, a folder each) submitted and completed
# through jobman, against the same work as one bare job array without jobman, and as one
# `sbatch` per job. jobman runs twice: a first sweep, where nothing about the jobs is known yet
# (`jobs_per_task = "auto"`, the default, runs the first jobs one per task and packs the rest by
# what they took), and a new sweep of the same stage (another seed), which packs from what the
# first one recorded.
#
#   bash scripts/slurm-down.sh --purge; bash scripts/slurm-up.sh   # a fresh single-node cluster
#                                  # (16 job slots; SLURM_LOCAL_CPUS=256 for more). Fresh: Slurm keeps
#                                  # finished jobs for an hour and refuses new ones past 10,000.
#   bench/slurm.sh                 # N=1000; SLURM_BENCH_N=200 bench/slurm.sh for a quick try
#
# Installs hyperfine and jq with apt-get when missing. Not a test and never run by CI. Every side does the same work: each job sleeps 0.1 s and
# writes one small file in a folder of its own. Results go to $BENCH_DIR/results-slurm-<time>/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=${SLURM_BENCH_N:-1000}
RUNS=(--warmup 0 --runs "${SLURM_BENCH_RUNS:-3}")

missing=()
for tool in hyperfine jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get install -y "${missing[@]}" \
        || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y "${missing[@]}"; }
fi
for tool in hyperfine jq sbatch squeue scontrol; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required (bash scripts/slurm-up.sh for Slurm)" >&2; exit 1; }
done
scontrol ping | grep -q UP || { echo "bench: Slurm does not answer: bash scripts/slurm-up.sh" >&2; exit 1; }

(cd "$REPO" && cargo build --release)
BENCH_DIR="${BENCH_DIR:-$(mktemp -d -t jobman-slurm-bench.XXXXXX)}"
mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"
RESULTS="$BENCH_DIR/results-slurm-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RESULTS"
JOBMAN="$RESULTS/jobman"
cp "$REPO/target/release/jobman" "$JOBMAN"

FIRST="$BENCH_DIR/jobman-first"
AGAIN="$BENCH_DIR/jobman-again"
ARRAY="$BENCH_DIR/array"
PEER="$BENCH_DIR/sbatch"
mkdir -p "$FIRST" "$AGAIN" "$ARRAY" "$PEER"
cat >"$FIRST/Jobfile.toml" <<TOML
[params]
i = { range = [0, $N] }
seed = 0

[job]
command = "sleep 0.1; echo {{i}} {{seed}} > out.txt"

[executor]
kind = "slurm"

[executor.slurm]
time = "00:05:00"
poll_interval = "2s"
TOML
sed 's/^seed = 0/seed = 1/' "$FIRST/Jobfile.toml" >"$AGAIN/Jobfile.toml"
# The new sweep starts from what the first one recorded: its durations, nothing else.
AGAIN_PREPARE="rm -rf $AGAIN/scratch_space $AGAIN/.jobman && mkdir -p $AGAIN/.jobman/slurm && cp $FIRST/.jobman/slurm/durations.json $AGAIN/.jobman/slurm/"

# The bare array: one task per job, a folder each, `sbatch --wait` returns once all have ended.
cat >"$ARRAY/run.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
sbatch --quiet --wait --job-name=bench-array --time=00:05:00 --output=/dev/null --array="0-$(($1 - 1))" \
    --wrap 'mkdir -p jobs/$SLURM_ARRAY_TASK_ID && cd jobs/$SLURM_ARRAY_TASK_ID && sleep 0.1 && echo $SLURM_ARRAY_TASK_ID > out.txt'
SH
# One sbatch per job, then wait for the queue to drain (polling every second, as a script
# around sbatch would).
cat >"$PEER/run.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
n=$1
for ((i = 0; i < n; i++)); do
    mkdir -p "jobs/$i"
    sbatch --quiet --job-name=bench-peer --time=00:05:00 --chdir="jobs/$i" --output=/dev/null \
        --wrap "sleep 0.1; echo $i > out.txt"
done
# A busy controller may time out a squeue call: that is no answer, not an empty queue.
while left=$(squeue --noheader --name=bench-peer --states=PENDING,RUNNING,CONFIGURING,COMPLETING 2>/dev/null) \
    || left=busy; [ -n "$left" ]; do
    sleep 1
done
SH
chmod +x "$ARRAY/run.sh" "$PEER/run.sh"

cd "$BENCH_DIR"
hyperfine "${RUNS[@]}" \
    --export-json "$RESULTS/slurm-$N.json" --export-markdown "$RESULTS/slurm-$N.md" \
    --command-name "jobman build, first sweep ($N jobs)" \
    --prepare "rm -rf $FIRST/scratch_space $FIRST/.jobman" "$JOBMAN -q -f $FIRST/Jobfile.toml build jobs" \
    --command-name "jobman build, a new sweep packed from the first ($N jobs)" \
    --prepare "$AGAIN_PREPARE" "$JOBMAN -q -f $AGAIN/Jobfile.toml build jobs" \
    --command-name "bare sbatch --array, one task per job ($N jobs)" \
    --prepare "rm -rf $ARRAY/jobs" "cd $ARRAY && ./run.sh $N" \
    --command-name "sbatch once per job ($N jobs)" \
    --prepare "rm -rf $PEER/jobs" "cd $PEER && ./run.sh $N"

# All must have done the work (a node's writes may show a moment after Slurm says a job ended).
for outputs in "$FIRST/scratch_space/*/out.txt" "$AGAIN/scratch_space/*/out.txt" "$ARRAY/jobs/*/out.txt" "$PEER/jobs/*/out.txt"; do
    for _ in $(seq 20); do
        # shellcheck disable=SC2086 # the glob is meant to expand
        [ "$(cat $outputs 2>/dev/null | wc -l)" -eq "$N" ] && continue 2
        sleep 0.5
    done
    echo "bench: $outputs: not $N outputs" >&2
    exit 1
done
# How the jobs were packed, from what jobman kept of its arrays.
packing() {
    jq -r '.arrays[] | "\(.tasks) tasks × \(.jobs_per_task)"' "$1"/.jobman/slurm/*/arrays.json* | paste -sd ',' | sed 's/,/, /g'
}

f=$(jq -r '.results[0].median' "$RESULTS/slurm-$N.json")
a=$(jq -r '.results[1].median' "$RESULTS/slurm-$N.json")
b=$(jq -r '.results[2].median' "$RESULTS/slurm-$N.json")
p=$(jq -r '.results[3].median' "$RESULTS/slurm-$N.json")
{
    echo
    echo "$("$JOBMAN" --version) on Slurm $(sinfo --version | cut -d' ' -f2), $(scontrol show node | grep -o 'CPUTot=[0-9]*' | head -1) job slots, $(nproc) cores — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "| what | time | ratio to the bare array | ratio to sbatch per job |"
    echo "|---|---|---|---|"
    awk -v n="$N" -v f="$f" -v a="$a" -v b="$b" -v p="$p" 'BEGIN {
        printf "| jobman, first sweep (%d jobs) | %.1f s | %.2f | %.2f |\n", n, f, f / b, f / p
        printf "| jobman, a new sweep packed from the first | %.1f s | %.2f | %.2f |\n", a, a / b, a / p
        printf "| bare `sbatch --array`, one task per job | %.1f s | 1.00 | %.2f |\n", b, b / p
        printf "| `sbatch` once per job | %.1f s | %.2f | 1.00 |\n", p, p / b
    }'
    echo
    echo "Arrays of the last first sweep: $(packing "$FIRST"); of the last new sweep: $(packing "$AGAIN")."
} | tee "$RESULTS/summary.md"
