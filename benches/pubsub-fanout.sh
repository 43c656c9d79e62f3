#!/usr/bin/env bash
# PUBLISH fan-out, redis-server against percore: SUBS `redis-cli SUBSCRIBE ch` processes
# (output discarded) listen, then redis-benchmark sends `PUBLISH ch <16 bytes>` from 50
# connections. Reports requests/s and server CPU per PUBLISH (all threads' run time from
# /proc/PID/task/*/schedstat), the median of REPS runs per server and pipeline depth.
#
# usage: benches/pubsub-fanout.sh [SUBS=50] [N=100000] [REPS=3] [THREADS=2]
set -euo pipefail
subs=${1:-50} n=${2:-100000} reps=${3:-3} threads=${4:-2}
bin=$(dirname "$0")/../target/release/percore-server
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s+=$1} END {printf "%.0f\n", s}'; }
run() { # name port pid pipeline -> "rps cpu_us_per_req"
  local before after rps
  before=$(cpu_ns "$3")
  rps=$(redis-benchmark -p "$2" -c 50 -n "$n" -P "$4" -q publish ch 0123456789abcdef \
        | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
  after=$(cpu_ns "$3")
  echo "$rps $(( (after - before) / n ))"
}
start() { # name port -> pid
  if [ "$1" = redis ]; then
    redis-server --port "$2" --save '' --appendonly no >/dev/null 2>&1 & echo $!
  else
    "$bin" --port "$2" --threads "$threads" --save '' >/dev/null 2>&1 & echo $!
  fi
}
printf '%-8s %-3s %12s %16s\n' server P 'PUBLISH/s' 'CPU ns/PUBLISH'
for name in redis percore; do
  port=$(free_port)
  pid=$(start "$name" "$port"); pids+=("$pid")
  for _ in $(seq 1 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
  for _ in $(seq 1 "$subs"); do redis-cli -p "$port" subscribe ch >/dev/null 2>&1 & pids+=($!); done
  while [ "$(redis-cli -p "$port" pubsub numsub ch | tail -1)" != "$subs" ]; do sleep 0.05; done
  for p in 1 16; do
    results=()
    for _ in $(seq 1 "$reps"); do results+=("$(run "$name" "$port" "$pid" "$p")"); done
    med=$(printf '%s\n' "${results[@]}" | sort -n | awk -v k="$reps" 'NR == int((k + 1) / 2)')
    printf '%-8s %-3s %12s %16s\n' "$name" "$p" ${med}
  done
  check=$(redis-cli -p "$port" publish ch x)
  [ "$check" = "$subs" ] || echo "warning: $name PUBLISH reached $check of $subs subscribers" >&2
done
