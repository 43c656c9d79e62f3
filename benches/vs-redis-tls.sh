#!/usr/bin/env bash
# TLS version of ../shared/bench/vs-redis.sh (which cannot pass --tls): both servers get a
# `tls-port` with a certificate made here (openssl CLI), redis-benchmark loads them over
# TLS (`--tls --cacert`); flushes and prefills go to the plain ports.
# Side-by-side: the same redis-benchmark load against redis-server and against another
# RESP server, in one run, reporting throughput and server CPU time per request.
#
# CPU per request (sum of all server threads' run time from /proc/PID/task/*/schedstat,
# divided by requests) is the stable figure on a small, shared machine: throughput there is
# often bound by the single client, not by the server.
#
# usage: vs-redis.sh [options] -- SERVER_CMD...
#   SERVER_CMD is the server to compare; "{port}" and "{tlsport}" in it are replaced by
#   free ports, "{tlsargs}" by the certificate options.
#   e.g.  vs-redis-tls.sh -- target/release/percore-server --port {port} --tls-port {tlsport} {tlsargs}
# options:
#   -t TESTS      redis-benchmark tests, comma separated (default: set,get)
#   -P LIST       pipeline depths, comma separated (default: 1,16)
#   -n N          requests per run (default: 200000; pipelined runs use 10x)
#   -c N          client connections (default: 50)
#   -r N          keyspace size for __rand_int__ keys (default: 100000)
#   -d N          value size in bytes (default: 16)
#   -k N          repetitions, alternating servers; the median is reported (default: 3)
#   -T N          redis-benchmark --threads (default: 1)
#   -R ARGS       extra arguments for redis-server (quoted)
#   -C COMMAND    benchmark one command instead of -t tests, in redis-benchmark's command mode, e.g.
#                 -C 'XADD s * f v' or -C 'PFADD h __rand_int__' (reported as test=cmd)
# env PEER_SERVER: the reference server binary (default redis-server; e.g. ../shared/peers/valkey/valkey-server)
# Output: a table, then one line per (test, pipeline):
#   RATIO test=set pipeline=16 cpu_ratio=0.71 rps_ratio=1.20
# where cpu_ratio = other_cpu_per_req / redis_cpu_per_req (lower is better) and
# rps_ratio = other_rps / redis_rps (higher is better).
set -euo pipefail

tests=set,get pipes=1,16 n=200000 clients=50 keys=100000 size=16 reps=3 cthreads=1 rextra="" custom=""
while getopts "t:P:n:c:r:d:k:T:R:C:" opt; do
  case $opt in
    t) tests=$OPTARG ;; P) pipes=$OPTARG ;; n) n=$OPTARG ;; c) clients=$OPTARG ;;
    r) keys=$OPTARG ;; d) size=$OPTARG ;; k) reps=$OPTARG ;; T) cthreads=$OPTARG ;;
    R) rextra=$OPTARG ;; C) custom=$OPTARG; tests=cmd ;; *) sed -n '2,28p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { sed -n '2,28p' "$0"; exit 2; }
peer=${PEER_SERVER:-redis-server}
for tool in "$peer" redis-benchmark redis-cli; do
  command -v $tool >/dev/null || { echo "vs-redis: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 2; }
done

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
tlsargs=(--tls-cert-file "$work/cert.pem" --tls-key-file "$work/key.pem" --tls-auth-clients no)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() { # port
  for _ in $(seq 1 200); do
    redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "vs-redis: server on port $1 did not answer PING" >&2; exit 1
}

cpu_ns() { # pid -> total run time of its live threads, ns (a thread may exit between the glob and
  # the read: that is not an error; short-lived threads' time is lost, hence the settle in run_one)
  { cat /proc/"$1"/task/*/schedstat 2>/dev/null || true; } | awk '{s+=$1} END {printf "%.0f\n", s}'
}

rport=$(free_port) rtls=$(free_port)
# shellcheck disable=SC2086
"$peer" --port "$rport" --tls-port "$rtls" "${tlsargs[@]}" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" $rextra \
  >"$work/redis.log" 2>&1 &
pids+=($!); rpid=$!
wait_ready "$rport"

oport=$(free_port) otls=$(free_port)
ocmd=()
for a in "$@"; do
  if [ "$a" = "{tlsargs}" ]; then ocmd+=("${tlsargs[@]}"); continue; fi
  a=${a//\{tlsport\}/$otls}; ocmd+=("${a//\{port\}/$oport}")
done
"${ocmd[@]}" >"$work/other.log" 2>&1 &
pids+=($!); opid=$!
wait_ready "$oport"

run_one() { # port tlsport pid test pipeline -> "rps cpu_us_per_req"
  local port=$1 tport=$2 pid=$3 test=$4 p=$5 reqs=$n before after out rps
  [ "$p" -gt 1 ] && reqs=$((n * 10))
  redis-cli -p "$port" flushall >/dev/null
  if [ "$test" = get ]; then
    redis-benchmark -p "$port" -t set -n "$keys" -r "$keys" -d "$size" -P 16 -q >/dev/null
  fi
  sleep 0.2 # let background frees (lazy-free threads) finish before the measured window
  before=$(cpu_ns "$pid")
  local what=(-t "$test")
  [ -n "$custom" ] && read -ra what <<<"$custom" # read: no glob expansion of '*'

  out=$({ redis-benchmark --tls --cacert "$work/cert.pem" -p "$tport" -n "$reqs" -c "$clients" -r "$keys" -d "$size" \
        -P "$p" --threads "$cthreads" --csv "${what[@]}" 2>/dev/null || echo "vs-redis: redis-benchmark failed" >&2; } | tail -n 1)
  after=$(cpu_ns "$pid")
  rps=$(echo "$out" | awk -F'","' '{gsub(/"/,"",$2); print $2}')
  awk -v r="$rps" -v c=$((after - before)) -v q="$reqs" 'BEGIN {printf "%.0f %.4f\n", r, c/q/1000}'
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf "%-6s %-4s %-14s %12s %14s\n" test P server rps cpu_us/req
results=()
IFS=, read -ra tlist <<<"$tests"
IFS=, read -ra plist <<<"$pipes"
for t in "${tlist[@]}"; do
  for p in "${plist[@]}"; do
    : >"$work/r" ; : >"$work/o"
    for _ in $(seq 1 "$reps"); do
      run_one "$rport" "$rtls" "$rpid" "$t" "$p" >>"$work/r"
      run_one "$oport" "$otls" "$opid" "$t" "$p" >>"$work/o"
    done
    rr=$(cut -d' ' -f1 "$work/r" | median); rc=$(cut -d' ' -f2 "$work/r" | median)
    orr=$(cut -d' ' -f1 "$work/o" | median); oc=$(cut -d' ' -f2 "$work/o" | median)
    printf "%-6s %-4s %-14s %12s %14s\n" "$t" "$p" "$(basename "$peer")" "$rr" "$rc"
    printf "%-6s %-4s %-14s %12s %14s\n" "$t" "$p" "$(basename "${ocmd[0]}")" "$orr" "$oc"
    results+=("$(awk -v t="$t" -v p="$p" -v rc="$rc" -v oc="$oc" -v rr="$rr" -v orr="$orr" \
      'BEGIN {printf "RATIO test=%s pipeline=%s cpu_ratio=%.3f rps_ratio=%.3f", t, p, oc/rc, orr/rr}')")
  done
done
printf "%s\n" "${results[@]}"
