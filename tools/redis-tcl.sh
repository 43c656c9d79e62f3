#!/usr/bin/env bash
# Runs Redis 7.0's own Tcl test units against percore, one unit at a time, and prints a
# summary line per unit (`UNIT rc= ok= err= exception=`, also in $OUT/summary). Not part
# of CI: it needs Debian's redis source package (fetched here with `apt-get source`,
# deb-src added for the download).
#
#   tools/redis-tcl.sh [UNIT ...]          # external mode (default): every unit under tests/unit
#   tools/redis-tcl.sh --full [UNIT ...]   # full mode (or TCL_MODE=full)
#
# External mode (`./runtest --host --port`): one fresh percore per unit, started here;
# tests tagged external:skip are left out.
# Full mode: the suite's own mode. The redis tree is copied to $OUT/full-src with a
# `src/redis-server` that execs percore-server with the suite's config file and
# arguments (and src/redis-cli, redis-benchmark, redis-check-aof, redis-check-rdb: the
# installed tools); `./runtest --single UNIT --clients 1 --baseport $BASEPORT` then starts,
# restarts and kills percore itself, with tests/assets/default.conf plus each test's
# overrides, so external:skip tests run too. Logs: $OUT/<unit>.log (the servers' logs are
# kept in $OUT/full-src/tests/tmp with --dont-clean).
#
# Environment: PERCORE (server binary, default target/release/percore-server),
# OUT (results directory, default target/redis-tcl), UNIT_TIMEOUT (seconds, default 300),
# REDIS_SRC (an unpacked redis-7.0.x tree, fetched when unset), PORT (external mode's port,
# default 7790), BASEPORT (full mode's first port, default 21111; the test client takes
# the 32 below it), TCL_ARGS (more runtest arguments), VALKEY_PEER (a Valkey build's
# directory, default ../shared/peers/valkey: full mode links its valkey-cli for Valkey's
# suite, else the installed redis-cli under that name).
#
# Valkey's suite: REDIS_SRC=<valkey tree> (its tests run src/valkey-server, valkey-cli,
# ...; full mode provides both names).
set -uo pipefail
cd "$(dirname "$0")/.."
PERCORE=${PERCORE:-$PWD/target/release/percore-server}
OUT=${OUT:-$PWD/target/redis-tcl}
PORT=${PORT:-7790}
VALKEY_PEER=${VALKEY_PEER:-$PWD/../shared/peers/valkey}
MODE=${TCL_MODE:-external}
if [ "${1:-}" = "--full" ]; then
  MODE=full
  shift
fi
mkdir -p "$OUT"
if [ -z "${REDIS_SRC:-}" ]; then
  REDIS_SRC=$(ls -d "$OUT"/src/redis-7.0.* 2>/dev/null | head -1)
  if [ -z "$REDIS_SRC" ]; then
    mkdir -p "$OUT/src" && cd "$OUT/src" || exit 1
    list=/etc/apt/sources.list.d/percore-deb-src.sources
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$list"
    apt-get update -qq && apt-get source --download-only redis >/dev/null
    rm -f "$list"
    tar xzf redis_7.0.*.orig.tar.gz
    cd - >/dev/null || exit 1
    REDIS_SRC=$(ls -d "$OUT"/src/redis-7.0.* | head -1)
  fi
fi
if [ "$MODE" = full ]; then
  FULL=$OUT/full-src
  if [ ! -x "$FULL/runtest" ]; then
    mkdir -p "$FULL"
    # Valkey's tree has valkey.conf where Redis's has redis.conf.
    (cd "$REDIS_SRC" && cp -a runtest tests utils "$FULL"/ \
        && cp -a $(ls redis.conf valkey.conf 2>/dev/null) "$FULL"/) || exit 1
  fi
  mkdir -p "$FULL/src"
  # Redis's suite runs src/redis-*, Valkey's src/valkey-*: both names are provided.
  for s in redis-server valkey-server; do
    printf '#!/bin/sh\nexec "%s" "$@"\n' "$PERCORE" > "$FULL/src/$s"
    chmod +x "$FULL/src/$s"
  done
  for t in cli benchmark check-aof check-rdb; do
    ln -sf "$(command -v redis-$t)" "$FULL/src/redis-$t"
    # The Valkey peer's tool when there is one (its cli knows Valkey's options).
    peer=$VALKEY_PEER/valkey-$t
    [ -x "$peer" ] || peer=$(command -v redis-$t)
    ln -sf "$peer" "$FULL/src/valkey-$t"
  done
fi
if [ $# -eq 0 ]; then
  set -- $(cd "$REDIS_SRC/tests" && ls unit/*.tcl unit/type/*.tcl | sed 's/\.tcl$//')
fi
: > "$OUT/summary"
summarize() {
  local plain ok err exc
  plain=$(sed 's/\x1b\[[0-9;]*m//g' "$OUT/$2.log")
  ok=$(grep -ac '^\[ok\]' <<< "$plain")
  err=$(grep -ac '^\[err\]' <<< "$plain")
  exc=$(grep -ac '^\[exception\]' <<< "$plain")
  echo "$1 rc=$3 ok=$ok err=$err exception=$exc" | tee -a "$OUT/summary"
}
for u in "$@"; do
  name=$(echo "$u" | tr / _)
  if [ "$MODE" = full ]; then
    # shellcheck disable=SC2086
    (cd "$FULL" && timeout "${UNIT_TIMEOUT:-300}" ./runtest --single "$u" --clients 1 \
        --baseport "${BASEPORT:-21111}" --portcount 200 --dont-clean ${TCL_ARGS:-}) \
        > "$OUT/$name.log" 2>&1
    rc=$?
    summarize "$u" "$name" "$rc"
    continue
  fi
  # A killed server's listener can outlive it briefly (io_uring tears down late).
  for _ in $(seq 50); do ss -ltn | grep -q ":$PORT " || break; sleep 0.2; done
  dir=$(mktemp -d)
  (cd "$dir" && exec "$PERCORE" --port "$PORT" --enable-debug-command yes \
      --enable-protected-configs yes > "$OUT/$name.server.log" 2>&1) &
  spid=$!
  sleep 0.5
  # shellcheck disable=SC2086
  (cd "$REDIS_SRC" && timeout "${UNIT_TIMEOUT:-300}" ./runtest --host 127.0.0.1 --port "$PORT" \
      --single "$u" --clients 1 ${TCL_ARGS:-}) > "$OUT/$name.log" 2>&1
  rc=$?
  summarize "$u" "$name" "$rc"
  kill -9 $spid 2>/dev/null; wait $spid 2>/dev/null; rm -rf "$dir"
done
