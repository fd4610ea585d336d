#!/usr/bin/env bash
# jobman benchmark on Slurm: N trivial jobs submitted and completed through jobman's job arrays
# (one job per task, and 20 jobs per task), against `sbatch` called once per job (then waiting
# until the queue has none of them left).
#
#   bash scripts/slurm-down.sh --purge; bash scripts/slurm-up.sh   # a fresh single-node cluster
#                                  # (16 job slots; SLURM_LOCAL_CPUS=256 for more). Fresh: Slurm keeps
#                                  # finished jobs for an hour and refuses new ones past 10,000.
#   bench/slurm.sh                 # N=1000; SLURM_BENCH_N=200 bench/slurm.sh for a quick try
#
# Not a test and never run by CI. Both sides do the same work: each job writes one small file
# in a folder of its own. Results go to $BENCH_DIR/results-slurm-<time>/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=${SLURM_BENCH_N:-1000}
RUNS=(--warmup 0 --runs "${SLURM_BENCH_RUNS:-3}")

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

JM="$BENCH_DIR/jobman"
PACKED="$BENCH_DIR/jobman-packed"
PEER="$BENCH_DIR/sbatch"
mkdir -p "$JM" "$PACKED" "$PEER"
cat >"$JM/Jobfile.toml" <<TOML
[params]
i = { range = [0, $N] }

[job]
command = "echo {{i}} > out.txt"

[executor]
kind = "slurm"

[executor.slurm]
time = "00:05:00"
poll_interval = "2s"
TOML
sed 's/^poll_interval/jobs_per_task = 20\npoll_interval/' "$JM/Jobfile.toml" >"$PACKED/Jobfile.toml"

# The peer: one sbatch per job, each job in a folder of its own, then wait for the queue to drain
# (polling every second, as a script around sbatch would).
cat >"$PEER/run.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
n=$1
for ((i = 0; i < n; i++)); do
    mkdir -p "jobs/$i"
    sbatch --quiet --job-name=bench-peer --time=00:05:00 --chdir="jobs/$i" --output=/dev/null \
        --wrap "echo $i > out.txt"
done
while squeue --noheader --name=bench-peer --states=PENDING,RUNNING,CONFIGURING,COMPLETING | grep -q .; do
    sleep 1
done
SH
chmod +x "$PEER/run.sh"

cd "$BENCH_DIR"
hyperfine "${RUNS[@]}" \
    --export-json "$RESULTS/slurm-$N.json" --export-markdown "$RESULTS/slurm-$N.md" \
    --command-name "jobman build --executor slurm ($N jobs)" \
    --prepare "rm -rf $JM/scratch_space $JM/.jobman" "$JOBMAN -q -f $JM/Jobfile.toml build jobs" \
    --command-name "jobman build --executor slurm, jobs_per_task = 20 ($N jobs)" \
    --prepare "rm -rf $PACKED/scratch_space $PACKED/.jobman" "$JOBMAN -q -f $PACKED/Jobfile.toml build jobs" \
    --command-name "sbatch once per job ($N jobs)" \
    --prepare "rm -rf $PEER/jobs" "cd $PEER && ./run.sh $N"

# All must have done the work (a node's writes may show a moment after Slurm says a job ended).
for outputs in "$JM/scratch_space/*/out.txt" "$PACKED/scratch_space/*/out.txt" "$PEER/jobs/*/out.txt"; do
    for _ in $(seq 20); do
        # shellcheck disable=SC2086 # the glob is meant to expand
        [ "$(cat $outputs 2>/dev/null | wc -l)" -eq "$N" ] && continue 2
        sleep 0.5
    done
    echo "bench: $outputs: not $N outputs" >&2
    exit 1
done

j=$(jq -r '.results[0].median' "$RESULTS/slurm-$N.json")
k=$(jq -r '.results[1].median' "$RESULTS/slurm-$N.json")
p=$(jq -r '.results[2].median' "$RESULTS/slurm-$N.json")
{
    echo
    echo "$("$JOBMAN" --version) on Slurm $(sinfo --version | cut -d' ' -f2), $(scontrol show node | grep -o 'CPUTot=[0-9]*' | head -1) job slots, $(nproc) cores — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "| what | jobman | sbatch per job | ratio |"
    echo "|---|---|---|---|"
    awk -v n="$N" -v j="$j" -v k="$k" -v p="$p" 'BEGIN {
        printf "| submit and complete %d jobs, one job per array task | %.1f s | %.1f s | %.2f |\n", n, j, p, j / p
        printf "| submit and complete %d jobs, 20 jobs per array task | %.1f s | %.1f s | %.2f |\n", n, k, p, k / p
    }'
} | tee "$RESULTS/summary.md"
