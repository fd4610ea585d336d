#!/usr/bin/env bash
# jobman under fire: N builds each cut short at a random moment by SIGKILL, SIGINT or SIGTERM,
# with the invariants a user relies on checked after each one by observation, not by jobman's
# own word:
#
#   1. no job process outlives jobman by more than 2 s (each job's command carries a token that
#      pgrep looks for);
#   2. an interrupted build (SIGINT, SIGTERM) exits 130;
#   3. every done record has its outputs, with the content its record hashed (checked here with
#      sha-less byte comparison against what the job writes: its own name);
#   4. the next build runs exactly the jobs that were not done, each once (the jobs append their
#      name to ran.log);
#   5. its report has one row per job.
#
#   bench/torture.sh            # 100 trials
#   TRIALS=1000 bench/torture.sh
#
# Not run by CI (minutes of wall time); the figures go to docs/RELIABILITY.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRIALS=${TRIALS:-100}
JOBS=12

(cd "$REPO" && cargo build --release --quiet)
JOBMAN="$(mktemp -d -t jobman-torture-bin.XXXXXX)/jobman"
cp "$REPO/target/release/jobman" "$JOBMAN"
WORK="$(mktemp -d -t jobman-torture.XXXXXX)"
trap 'rm -rf "$WORK" "$(dirname "$JOBMAN")"' EXIT

failures=0
kills=0
ints=0
terms=0
checked_records=0
reran=0

fail() {
    echo "trial $1: $2" >&2
    failures=$((failures + 1))
}

for trial in $(seq 1 "$TRIALS"); do
    dir="$WORK/t$trial"
    mkdir -p "$dir"
    token="torture-$$-$trial"
    workers=$((2 + RANDOM % 3))
    cat >"$dir/Jobfile.toml" <<TOML
[params]
x = { range = [0, $JOBS] }

[job]
name = "x{{x}}"
command = ": $token; sleep 0.{{ x % 4 }}; echo {{job.name}} >> ../../ran.log; echo '{\"x\": {{x}}, \"name\": \"{{job.name}}\"}' > results.json"
results = "results.json"
TOML
    (cd "$dir" && exec "$JOBMAN" build -q -j "$workers" >/dev/null 2>&1) &
    pid=$!
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
    case $((RANDOM % 20)) in
        [0-9] | 1[0-1]) signal=KILL; kills=$((kills + 1)) ;;
        1[2-6]) signal=INT; ints=$((ints + 1)) ;;
        *) signal=TERM; terms=$((terms + 1)) ;;
    esac
    kill -s "$signal" "$pid" 2>/dev/null || true
    set +e
    wait "$pid"
    code=$?
    set -e
    # A build that finished before the signal exits 0; otherwise KILL is 137, INT and TERM 130.
    if [ "$signal" != KILL ] && [ "$code" != 130 ] && [ "$code" != 0 ]; then
        fail "$trial" "SIGINT/SIGTERM ended the build with $code, not 130"
    fi
    # 1. No job left running (the watchdog kills them when jobman dies).
    for _ in $(seq 1 20); do
        pgrep -f "$token" >/dev/null || break
        sleep 0.1
    done
    if pgrep -f "$token" >/dev/null; then
        fail "$trial" "job processes outlived jobman by 2 s: $(pgrep -af "$token" | head -3)"
        pkill -9 -f "$token" || true
    fi
    # 3. Every done record has its output, as the job wrote it.
    done_names=()
    for record in "$dir"/scratch_space/*/jobman-record.json; do
        [ -e "$record" ] || continue
        folder="$(dirname "$record")"
        if grep -q '"status": "done"' "$record"; then
            name="$(sed -n 's/.*"name": "\(x[0-9]*\)".*/\1/p' "$record" | head -1)"
            checked_records=$((checked_records + 1))
            if ! grep -q "\"name\": \"$name\"" "$folder/results.json" 2>/dev/null; then
                fail "$trial" "$name is done but its results.json is missing or torn"
            fi
            done_names+=("$name")
        fi
    done
    # 4. The next build runs exactly the others, once each.
    rm -f "$dir/ran.log"
    (cd "$dir" && "$JOBMAN" build -q -j 4 >/dev/null 2>&1) || fail "$trial" "the next build failed"
    expected=()
    for x in $(seq 0 $((JOBS - 1))); do
        name="x$x"
        [[ " ${done_names[*]:-} " == *" $name "* ]] || expected+=("$name")
    done
    ran="$({ sort "$dir/ran.log" 2>/dev/null || true; } | tr '\n' ' ')"
    want="$(printf '%s\n' "${expected[@]:-}" | sed '/^$/d' | sort | tr '\n' ' ')"
    [ "$ran" = "$want" ] || fail "$trial" "the next build ran [$ran], expected [$want]"
    reran=$((reran + ${#expected[@]}))
    # 5. One report row per job.
    rows=$(($(wc -l <"$dir/report.csv") - 1))
    [ "$rows" = "$JOBS" ] || fail "$trial" "report.csv has $rows rows, expected $JOBS"
    rm -rf "$dir"
done

echo "trials: $TRIALS (SIGKILL $kills, SIGINT $ints, SIGTERM $terms); done records checked: $checked_records;"
echo "jobs rerun by the next build: $reran; invariant violations: $failures"
[ "$failures" = 0 ]
