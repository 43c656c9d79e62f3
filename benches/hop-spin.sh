#!/usr/bin/env bash
# Issue 19: latency at moderate load with the default two shards, `hop-spin-us` off (A)
# against on (B), one build. Both servers run the whole time; percore-bench loads them
# alternately (A, B, A, B, ... --rounds), open loop, the issue's workload (50 connections,
# GET:SET 50:50, values of 100 B), at each rate. Also prints each server's CPU per request
# (schedstat over all its rounds) and its INFO percore hop figures, and, with REDIS=1, a
# redis-server 7.0 as a third target for reference.
#
# usage: benches/hop-spin.sh [-s SPIN_US] [-r RATES] [-k ROUNDS] [-d DURATION] [-K KEYS] SERVER
#   RATES: comma list (default 10k,40k); ROUNDS per target (default 3); DURATION per round
#   (default 5s); KEYS in the keyspace, prefilled (default 100000; the issue used 1M)
# Output: percore-bench's table per rate, then per target: CPU µs/request and hop lines.
set -euo pipefail

spin=50 rates=10k,40k rounds=3 dur=5s keys=100000
while getopts "s:r:k:d:K:" opt; do
  case $opt in
    s) spin=$OPTARG ;; r) rates=$OPTARG ;; k) rounds=$OPTARG ;; d) dur=$OPTARG ;;
    K) keys=$OPTARG ;; *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { sed -n '2,13p' "$0"; exit 2; }
bin=$1
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH:-$here/target/release/percore-bench}
for tool in redis-cli python3; do
  command -v $tool >/dev/null || { echo "hop-spin: $tool not found" >&2; exit 2; }
done

me=hop-spin
# shellcheck source=benches/servers.sh
. "$(dirname "$0")/servers.sh"

pa=$(free_port) pb=$(free_port)
"$bin" --port "$pa" --save '' --dir "$work" >"$work/a.log" 2>&1 & pids+=($!); ida=$!
"$bin" --port "$pb" --save '' --dir "$work" >"$work/b.log" 2>&1 & pids+=($!); idb=$!
targets=(--target "off=127.0.0.1:$pa" --target "spin$spin=127.0.0.1:$pb")
if [ "${REDIS:-0}" = 1 ]; then
  pr=$(free_port)
  redis-server --port "$pr" --save '' --appendonly no --dir "$work" >"$work/r.log" 2>&1 &
  pids+=($!)
  wait_ready "$pr"
  targets+=(--target "redis=127.0.0.1:$pr")
fi
wait_ready "$pa"; wait_ready "$pb"
redis-cli -p "$pb" config set hop-spin-us "$spin" >/dev/null

echo "load before: $(uptime)"
first=--prefill
ca0=$(cpu_ns $ida) cb0=$(cpu_ns $idb)
for rate in ${rates//,/ }; do
  echo "== rate $rate, $rounds rounds of $dur per target"
  # shellcheck disable=SC2086
  "$bench" "${targets[@]}" --rounds "$rounds" --rate "$rate" --duration "$dur" \
    --mix get:50,set:50 --keyspace "$keys" --value-size 100 $first --quiet
  first=""
done
ca1=$(cpu_ns $ida) cb1=$(cpu_ns $idb)
echo "load after: $(uptime)"
for t in "off $pa $ca0 $ca1" "spin$spin $pb $cb0 $cb1"; do
  set -- $t
  total=$(redis-cli -p "$2" info stats | tr -d '\r' | awk -F: '/^total_commands_processed/ {print $2}')
  echo "$1: server CPU $(( ($4 - $3) / 1000 / (total > 0 ? total : 1) )) µs per command ($total commands, prefill included)"
  redis-cli -p "$2" info percore | tr -d '\r' | grep '^shard' | tr ',' '\n' \
    | grep -E '^(shard|hops|hop_p|busy_pct)' | paste -sd' ' | sed "s/^/  /"
done
