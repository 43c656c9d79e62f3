#!/usr/bin/env bash
# Reply time of the cancel barrier: FLUSHALL with no snapshot, with a fork snapshot in
# flight and with a forkless snapshot in flight, on a big dataset (default ~1 GB); and,
# in cluster mode, CLUSTER RESET after the keys were deleted with a snapshot in flight.
#
# usage: benches/cancel.sh [--quick]
#   KEYS (default 6000000), VALUE_SIZE (100), THREADS (2), ROUNDS (3) from the
#   environment; --quick uses 300000 keys. Needs target/release/percore-server
#   (cargo build --release) and redis-cli.
#
# Reply time is measured with one redis-cli process per command, minus the median time of
# a PING the same way (process start and connection), so it is the server's time to
# answer within ~0.3 ms. Everything runs on 127.0.0.1 and stops at exit.
set -euo pipefail

KEYS=${KEYS:-6000000}
VALUE_SIZE=${VALUE_SIZE:-100}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
if [[ ${1:-} == --quick ]]; then
    KEYS=300000
fi
BIN=${BIN:-target/release/percore-server}
[[ -x $BIN ]] || { echo "build first: cargo build --release" >&2; exit 2; }
command -v redis-cli >/dev/null || { echo "redis-cli is needed (apt-get install redis-tools)" >&2; exit 2; }

DIR=$(mktemp -d /tmp/percore-cancel-bench.XXXXXX)
PORT=$(( 20000 + RANDOM % 20000 ))
PID=
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

cli() { redis-cli -p "$PORT" "$@"; }

start() {
    "$BIN" --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --save "" --threads "$THREADS" "$@" \
        >"$DIR/log" 2>&1 &
    PID=$!
    for _ in $(seq 200); do
        cli ping >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || { PID=; return 1; }
        sleep 0.05
    done
    echo "percore did not start" >&2
    cat "$DIR/log" >&2
    exit 1
}

stop() {
    cli shutdown nosave >/dev/null 2>&1 || true
    wait "$PID" 2>/dev/null || true
    PID=
}

now_us() { echo $(( $(date +%s%N) / 1000 )); }

# Median of the arguments.
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Microseconds for one command through a fresh redis-cli.
timed() {
    local t0 t1
    t0=$(now_us)
    cli "$@" >/dev/null
    t1=$(now_us)
    echo $(( t1 - t0 ))
}

baseline() {
    local s=()
    for _ in $(seq 9); do s+=("$(timed ping)"); done
    median "${s[@]}"
}

wait_saving() {
    for _ in $(seq 400); do
        if cli info persistence | grep -q 'rdb_bgsave_in_progress:1'; then return 0; fi
        sleep 0.005
    done
    echo "no save in flight" >&2
    exit 1
}

# flushall_case <none|fork|forkless>: prints the median reply time in µs.
flushall_case() {
    local mode=$1 times=()
    for _ in $(seq "$ROUNDS"); do
        cli debug populate "$KEYS" key "$VALUE_SIZE" >/dev/null
        if [[ $mode != none ]]; then
            cli config set default-bgsave-method "$mode" >/dev/null
            # A save long enough to be in flight when FLUSHALL arrives.
            cli config set rdb-key-save-delay 5 >/dev/null
            cli bgsave >/dev/null
            wait_saving
            sleep 0.2
        fi
        local base t
        base=$(baseline)
        t=$(timed flushall)
        times+=("$(( t > base ? t - base : 0 ))")
        cli config set rdb-key-save-delay 0 >/dev/null
        if cli info persistence | grep -q 'rdb_bgsave_in_progress:1'; then
            echo "FLUSHALL left a save running" >&2
            exit 1
        fi
    done
    median "${times[@]}"
}

# cancel_case <fork|forkless>: BGSAVE CANCEL of a save in flight (the data stays).
cancel_case() {
    local mode=$1 times=()
    for _ in $(seq "$ROUNDS"); do
        cli config set default-bgsave-method "$mode" >/dev/null
        cli config set rdb-key-save-delay 5 >/dev/null
        cli bgsave >/dev/null
        wait_saving
        sleep 0.2
        local base t
        base=$(baseline)
        t=$(timed bgsave cancel)
        times+=("$(( t > base ? t - base : 0 ))")
        cli config set rdb-key-save-delay 0 >/dev/null
    done
    median "${times[@]}"
}

# reset_case <none|fork|forkless>: keys in one slot, slow save, DEL them all, CLUSTER RESET.
reset_case() {
    local mode=$1 times=()
    for _ in $(seq "$ROUNDS"); do
        cli cluster addslotsrange 0 16383 >/dev/null
        cli debug populate "$KEYS" '{t}key' "$VALUE_SIZE" >/dev/null
        if [[ $mode != none ]]; then
            cli config set default-bgsave-method "$mode" >/dev/null
            cli config set rdb-key-save-delay 5 >/dev/null
            cli bgsave >/dev/null
            wait_saving
        fi
        # Delete every key without FLUSHALL (which would cancel the save itself): UNLINKs
        # of 1000 keys, one redis-cli reading them as inline commands.
        awk -v n="$KEYS" 'BEGIN { for (i = 0; i < n; i += 1000) {
            s = "UNLINK"; for (j = i; j < i + 1000 && j < n; j++) s = s " {t}key:" j; print s } }' |
            cli >/dev/null
        if [[ $(cli dbsize) != 0 ]]; then
            echo "keys left after the UNLINKs" >&2
            exit 1
        fi
        local base t
        base=$(baseline)
        t=$(timed cluster reset)
        times+=("$(( t > base ? t - base : 0 ))")
        cli config set rdb-key-save-delay 0 >/dev/null
    done
    median "${times[@]}"
}

start || { echo "percore did not start" >&2; exit 1; }
used=$(cli debug populate "$KEYS" key "$VALUE_SIZE" >/dev/null; cli info memory | tr -d '\r' | awk -F: '/^used_memory:/{print $2}')
declare -A CANCEL
CANCEL[none]="n/a"
for mode in fork forkless; do
    CANCEL[$mode]=$(cancel_case "$mode")
done
cli flushall >/dev/null
echo "dataset: $KEYS keys x $VALUE_SIZE B = $(( used / 1048576 )) MiB used_memory, threads $THREADS, rounds $ROUNDS"
declare -A FLUSH
for mode in none fork forkless; do
    FLUSH[$mode]=$(flushall_case "$mode")
done
stop

declare -A RESET
if start --cluster-enabled yes --cluster-config-file nodes.conf; then
    for mode in none fork forkless; do
        RESET[$mode]=$(reset_case "$mode")
    done
    stop
else
    echo "(this build has no cluster mode: CLUSTER RESET not measured)"
    for mode in none fork forkless; do RESET[$mode]="n/a"; done
fi

echo
echo "| snapshot in flight | BGSAVE CANCEL reply (µs) | FLUSHALL reply (µs) | CLUSTER RESET reply (µs) |"
echo "|---|---|---|---|"
for mode in none fork forkless; do
    echo "| $mode | ${CANCEL[$mode]} | ${FLUSH[$mode]} | ${RESET[$mode]} |"
done
