#!/usr/bin/env bash
# Whole-process comparison with the independent Sigma evaluator (rsigma-eval, ../shared/tools/sigma-oracle):
# SigmaHQ Windows rules x the SigmaHQ regression events replicated to N events (default 100,000),
# purplecov at 1 and 2 threads against the oracle (single-threaded), median of RUNS runs each.
# Prints events/s for both and the ratio. Needs python3, awk and /usr/bin/time.
# usage: scripts/bench-vs-oracle.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
RUNS="${2:-5}"
REF="$(cd "${PURPLECOV_REFERENCE:-../shared/reference}" && pwd)"
ORACLE_SRC="$REF/../tools/sigma-oracle"
RULES="$REF/sigma/rules/windows"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet
cargo build --release --quiet --locked --manifest-path "$ORACLE_SRC/Cargo.toml" --target-dir target/oracle
ORACLE="$PWD/target/oracle/release/sigma-oracle"
python3 scripts/make-bench-events.py "$REF" "$WORK/events.jsonl" "$N"
EVENTS=$(wc -l < "$WORK/events.jsonl")

# median wall seconds of a command over RUNS runs (one warm-up first)
median() {
    "$@" > /dev/null 2>&1
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1
    done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

oracle_s=$(median "$ORACLE" "$RULES" "$WORK/events.jsonl")
echo "host: $(nproc) cores, $(uname -m); rules: $(find "$RULES" -name '*.yml' | wc -l) SigmaHQ Windows rules; events: $EVENTS"
printf "%-22s %8s %12s %8s\n" "engine" "wall_s" "events/s" "ratio"
printf "%-22s %8s %12.0f %8s\n" "oracle (1 thread)" "$oracle_s" "$(awk "BEGIN{print $EVENTS / $oracle_s}")" "1.00"
for t in 1 2; do
    s=$(median target/release/purplecov eval --rules "$RULES" --input "$WORK/events.jsonl" --format jsonl --threads "$t")
    printf "%-22s %8s %12.0f %8.2f\n" "purplecov ($t thread$([ "$t" = 1 ] || echo s))" "$s" "$(awk "BEGIN{print $EVENTS / $s}")" "$(awk "BEGIN{print $oracle_s / $s}")"
done
