#!/usr/bin/env bash
# User-space instructions per request of one redis-benchmark test, from callgrind: repeatable
# on a loaded machine, where CPU time per request moves by ±10 %. The server runs under
# valgrind with one shard thread; counters are zeroed after start-up (and after SETUP), so
# the figure is the benchmark's requests only.
#
# usage: benches/callgrind.sh [-P PIPELINE] [-n REQUESTS] [-c CLIENTS] [-s SETUP] [-a ARGS]
#                             [-C COMMAND] [-L LOAD] SERVER TEST
#   SETUP: a command run first with the port as its argument, e.g. to fill keys for GET
#   ARGS:  extra server arguments, e.g. -a '--appendonly yes --appendfsync no'
#   COMMAND: one command in redis-benchmark's command mode instead of -t TEST (TEST is then
#          only the label), e.g. -C 'EVALSHA <sha> 2 a:__rand_int__ b:__rand_int__ v'
#   LOAD:  -L 'CMD ... {port} ...': CMD (with the port) is the load instead of
#          redis-benchmark, e.g. -L 'python3 benches/txbench.py {port} 0 same 1 16 20000'
#          (count REQUESTS -n as the transactions it sends)
#   TEST:  a redis-benchmark -t name (lpush, lrange_100, ...)
#   SERVER: percore-server, or redis-server / valkey-server (run without --threads) for
#          the ratio
# Output: "TEST PN n=REQUESTS: total I per-req I/REQUESTS"; the profile is left in
#   callgrind.out.last for `callgrind_annotate callgrind.out.last`.
set -euo pipefail

pipe=1 n=20000 clients=50 setup="" extra="" custom="" load=""
while getopts "P:n:c:s:a:C:L:" opt; do
  case $opt in
    P) pipe=$OPTARG ;; n) n=$OPTARG ;; c) clients=$OPTARG ;; s) setup=$OPTARG ;;
    a) extra=$OPTARG ;; C) custom=$OPTARG ;; L) load=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || { sed -n '2,22p' "$0"; exit 2; }
bin=$1 test=$2
for tool in valgrind callgrind_control redis-benchmark redis-cli python3; do
  command -v $tool >/dev/null || { echo "callgrind: $tool not found" >&2; exit 2; }
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
vp=""
cleanup() { [ -n "$vp" ] && kill "$vp" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

threads="--threads 1"
case $(basename "$bin") in redis-server* | valkey-server*) threads="" ;; esac
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" --port "$port" \
  $threads --save '' --dir "$work" $extra >"$work/log" 2>&1 &
vp=$!
for _ in $(seq 1 400); do
  redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
[ -n "$setup" ] && $setup "$port"
callgrind_control -z "$vp" >/dev/null 2>&1
if [ -n "$load" ]; then
  ${load//\{port\}/$port} >/dev/null
elif [ -n "$custom" ]; then
  # shellcheck disable=SC2086 # the command's words
  redis-benchmark -p "$port" -n "$n" -c "$clients" -r 100000 -d 16 -P "$pipe" -q $custom >/dev/null
else
  redis-benchmark -p "$port" -n "$n" -c "$clients" -r 100000 -d 16 -P "$pipe" -q -t "$test" >/dev/null
fi
callgrind_control -d "$vp" >/dev/null 2>&1
sleep 0.5
# The explicit dump is the newest file other than the final one written at exit.
dump=$(ls -t "$work"/cg.out.* | head -1)
cp "$dump" callgrind.out.last
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
echo "$test P$pipe n=$n: total $total per-req $((total / n))"
