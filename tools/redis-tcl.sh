#!/usr/bin/env bash
# Runs Redis 7.0's own Tcl test units against percore in the suite's external-server mode
# (`./runtest --host --port`: tests tagged external:skip are left out), one fresh server
# per unit, and prints a summary line per unit. Not part of CI: it needs Debian's redis
# source package (fetched here with `apt-get source`, deb-src added for the download).
#
#   tools/redis-tcl.sh [UNIT ...]        # default: every unit under tests/unit
#
# Environment: PERCORE (server binary, default target/release/percore-server),
# OUT (results directory, default target/redis-tcl), UNIT_TIMEOUT (seconds, default 300),
# REDIS_SRC (an unpacked redis-7.0.x tree, fetched when unset).
set -uo pipefail
cd "$(dirname "$0")/.."
PERCORE=${PERCORE:-$PWD/target/release/percore-server}
OUT=${OUT:-$PWD/target/redis-tcl}
PORT=${PORT:-7790}
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
if [ $# -eq 0 ]; then
  set -- $(cd "$REDIS_SRC/tests" && ls unit/*.tcl unit/type/*.tcl | sed 's/\.tcl$//')
fi
: > "$OUT/summary"
for u in "$@"; do
  name=$(echo "$u" | tr / _)
  # A killed server's listener can outlive it briefly (io_uring tears down late).
  for _ in $(seq 50); do ss -ltn | grep -q ":$PORT " || break; sleep 0.2; done
  dir=$(mktemp -d)
  (cd "$dir" && exec "$PERCORE" --port "$PORT" > "$OUT/$name.server.log" 2>&1) &
  spid=$!
  sleep 0.5
  (cd "$REDIS_SRC" && timeout "${UNIT_TIMEOUT:-300}" ./runtest --host 127.0.0.1 --port "$PORT" \
      --single "$u" --clients 1) > "$OUT/$name.log" 2>&1
  rc=$?
  plain() { sed 's/\x1b\[[0-9;]*m//g' "$OUT/$name.log"; }
  ok=$(plain | grep -ac '^\[ok\]')
  err=$(plain | grep -ac '^\[err\]')
  exc=$(plain | grep -ac '^\[exception\]')
  echo "$u rc=$rc ok=$ok err=$err exception=$exc" | tee -a "$OUT/summary"
  kill -9 $spid 2>/dev/null; wait $spid 2>/dev/null; rm -rf "$dir"
done
