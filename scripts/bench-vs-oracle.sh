#!/usr/bin/env bash
# Whole-process comparison with the independent Sigma evaluator (rsigma-eval, ../shared/tools/sigma-oracle):
# SigmaHQ Windows rules x the SigmaHQ regression events replicated to N events (default 100,000),
# purplecov at 1 and 2 threads against the oracle (single-threaded), RUNS rounds of the three in turn.
# Prints median wall seconds and events/s of each, and the median of the per-round ratios (oracle time
# over purplecov time). Needs python3, awk and /usr/bin/time.
# usage: scripts/bench-vs-oracle.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
RUNS="${2:-5}"
case "$N$RUNS" in
    *[!0-9]*) echo "usage: $0 [N] [RUNS] (whole numbers; got N='$N' RUNS='$RUNS')" >&2; exit 2 ;;
esac
if [ "$N" -lt 1 ] || [ "$RUNS" -lt 1 ]; then
    echo "$0: N and RUNS must be at least 1 (got N=$N RUNS=$RUNS)" >&2
    exit 2
fi
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

# Wall seconds of one run of a command.
wall() {
    /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1
}

# The median of the numbers on standard input.
median() {
    sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

P1=(target/release/purplecov eval --rules "$RULES" --input "$WORK/events.jsonl" --format jsonl --threads 1)
P2=(target/release/purplecov eval --rules "$RULES" --input "$WORK/events.jsonl" --format jsonl --threads 2)
O=("$ORACLE" "$RULES" "$WORK/events.jsonl")

# One warm-up each, then RUNS rounds, the three commands in turn: a shared machine's speed drifts, so
# each round's ratio compares runs taken moments apart, and the ratio quoted is the median of those.
wall "${O[@]}" >/dev/null; wall "${P1[@]}" >/dev/null; wall "${P2[@]}" >/dev/null
: > "$WORK/rounds"
for _ in $(seq "$RUNS"); do
    echo "$(wall "${O[@]}") $(wall "${P1[@]}") $(wall "${P2[@]}")" >> "$WORK/rounds"
done
oracle_s=$(awk '{print $1}' "$WORK/rounds" | median)
p1_s=$(awk '{print $2}' "$WORK/rounds" | median)
p2_s=$(awk '{print $3}' "$WORK/rounds" | median)
r1=$(awk '{print $1 / $2}' "$WORK/rounds" | median)
r2=$(awk '{print $1 / $3}' "$WORK/rounds" | median)

echo "host: $(nproc) cores, $(uname -m); rules: $(find "$RULES" -name '*.yml' | wc -l) SigmaHQ Windows rules; events: $EVENTS; rounds: $RUNS"
printf "%-22s %8s %12s %14s\n" "engine" "wall_s" "events/s" "ratio (paired)"
printf "%-22s %8s %12.0f %14s\n" "oracle (1 thread)" "$oracle_s" "$(awk "BEGIN{print $EVENTS / $oracle_s}")" "1.00"
printf "%-22s %8s %12.0f %14.2f\n" "purplecov (1 thread)" "$p1_s" "$(awk "BEGIN{print $EVENTS / $p1_s}")" "$r1"
printf "%-22s %8s %12.0f %14.2f\n" "purplecov (2 threads)" "$p2_s" "$(awk "BEGIN{print $EVENTS / $p2_s}")" "$r2"
