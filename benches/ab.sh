#!/usr/bin/env bash
# A/B of two percore builds (or one build under two environments) loaded AT THE SAME TIME:
# each gets its own redis-benchmark with the same load, so both see the same noise from the
# host. On this project's shared 2-vCPU VM, sequential runs of one build move by ±10 % at
# pipeline 1; side by side, a build against itself comes out at B/A 0.94-1.05 per round.
#
# usage: benches/ab.sh [-t TEST] [-P PIPELINE] [-k ROUNDS] [-n REQUESTS] BIN_A BIN_B
#   A_ENV / B_ENV: environment for each server, e.g.
#     B_ENV=PERCORE_NO_INCREMENTAL_BUFFERS=1 benches/ab.sh target/release/percore-server target/release/percore-server
#   THREADS: --threads of both servers (default 1)
# Output: one line per round (server CPU µs per request of each, from schedstat, and B/A),
# then the mean of B/A. Which benchmark starts first alternates between rounds.
set -euo pipefail

test=get pipe=1 rounds=6 n=200000
while getopts "t:P:k:n:" opt; do
  case $opt in
    t) test=$OPTARG ;; P) pipe=$OPTARG ;; k) rounds=$OPTARG ;; n) n=$OPTARG ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || { sed -n '2,13p' "$0"; exit 2; }
for tool in redis-benchmark redis-cli python3; do
  command -v $tool >/dev/null || { echo "ab: $tool not found" >&2; exit 2; }
done

me=ab
# shellcheck source=benches/servers.sh
. "$(dirname "$0")/servers.sh"

pa=$(free_port); pb=$(free_port)
# shellcheck disable=SC2086
env ${A_ENV:-} "$1" --port "$pa" --threads "${THREADS:-1}" --save '' --dir "$work" >"$work/a.log" 2>&1 &
pids+=($!); ida=$!
# shellcheck disable=SC2086
env ${B_ENV:-} "$2" --port "$pb" --threads "${THREADS:-1}" --save '' --dir "$work" >"$work/b.log" 2>&1 &
pids+=($!); idb=$!
wait_ready "$pa"; wait_ready "$pb"
for p in "$pa" "$pb"; do
  redis-benchmark -p "$p" -t set -n 100000 -r 100000 -d 16 -P 16 -q >/dev/null
done

load() { redis-benchmark -p "$1" -t "$test" -n "$n" -c 50 -r 100000 -d 16 -P "$pipe" -q >/dev/null; }
ratios=()
for r in $(seq 1 "$rounds"); do
  a0=$(cpu_ns $ida); b0=$(cpu_ns $idb)
  if [ $((r % 2)) -eq 1 ]; then load "$pa" & x=$!; load "$pb" & y=$!
  else load "$pb" & y=$!; load "$pa" & x=$!; fi
  wait $x; a1=$(cpu_ns $ida); wait $y; b1=$(cpu_ns $idb)
  line=$(awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v n="$n" \
    'BEGIN {printf "%.3f %.3f %.3f", a / n / 1000, b / n / 1000, b / a}')
  set -- $line
  echo "round $r: A $1 µs/req  B $2 µs/req  B/A $3"
  ratios+=("$3")
done
printf '%s\n' "${ratios[@]}" | awk '{s += $1} END {printf "mean B/A %.3f over %d rounds (%s P%s)\n", s / NR, NR, t, p}' t="$test" p="$pipe"
