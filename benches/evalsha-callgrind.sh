#!/usr/bin/env bash
# Instructions per EVALSHA of a 2-key script (SET KEYS[1] ARGV[1], then GET KEYS[2]), from
# benches/callgrind.sh: the script is loaded first (SETUP), then redis-benchmark sends
# EVALSHA in command mode with random keys and a 16-byte value.
#
# usage: benches/evalsha-callgrind.sh [-P PIPELINE] [-n REQUESTS] SERVER
#   SERVER: percore-server (one shard), or redis-server / valkey-server for the ratio
set -euo pipefail

body="redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[2])"
if [ "${EVALSHA_LOAD:-}" != "" ]; then
  # Called back as SETUP with the port.
  redis-cli -p "$EVALSHA_LOAD" script load "$body" >/dev/null
  exit 0
fi

pipe=1 n=20000
while getopts "P:n:" opt; do
  case $opt in
    P) pipe=$OPTARG ;; n) n=$OPTARG ;; *) sed -n '2,7p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { sed -n '2,7p' "$0"; exit 2; }
here=$(dirname "$0")
sha=$(printf %s "$body" | sha1sum | cut -d' ' -f1)
# SETUP gets the port as its last argument: a tiny shim turns it into EVALSHA_LOAD.
shim=$(mktemp)
trap 'rm -f "$shim"' EXIT
printf '#!/bin/sh\nEVALSHA_LOAD=$1 exec %q\n' "$(realpath "$0")" >"$shim"
chmod +x "$shim"
"$here/callgrind.sh" -P "$pipe" -n "$n" -s "$shim" \
  -C "EVALSHA $sha 2 a:__rand_int__ b:__rand_int__ vvvvvvvvvvvvvvvv" "$1" evalsha
