# Helpers for benchmark scripts that start servers (sourced; set `me` to the script's name
# first, for messages): free ports, a process's CPU time, waiting for PING, and a work
# directory whose servers (`pids`) are stopped on exit.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s+=$1} END {printf "%.0f\n", s}'; }
wait_ready() {
  for _ in $(seq 1 200); do
    redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "$me: server on port $1 did not answer PING" >&2; exit 1
}

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
