#!/usr/bin/env bash
# usage: benches/repl-sync.sh percore|redis KEYS: full sync time of KEYS keys (DEBUG POPULATE,
# 100-byte values) from a primary to a fresh replica of the same kind, and the primary's GET
# latency (benches/repl-probe.py, one client) idle and during the sync. redis-server runs
# with --repl-diskless-sync-delay 0 (its default diskless sync, without the 5 s wait), as
# does percore; PRIMARY_ARGS adds primary options (e.g. "--repl-diskless-sync no").
set -u
kind=$1 keys=$2
P=7501 R=7502
d=${TMPDIR:-/tmp}/repl-sync-$kind; rm -rf $d; mkdir -p $d/p $d/r
if [ $kind = percore ]; then
  ${PERCORE:-target/release/percore-server} --port $P --save '' --dir $d/p --enable-debug-command yes --repl-diskless-sync-delay 0 ${PRIMARY_ARGS:-} > $d/p.log 2>&1 &
  start_r() { ${PERCORE:-target/release/percore-server} --port $R --save '' --dir $d/r --replicaof "127.0.0.1 $P" > $d/r.log 2>&1 & }
else
  redis-server --port $P --save "" --enable-debug-command yes --repl-diskless-sync-delay 0 ${PRIMARY_ARGS:-} --dir $d/p --daemonize yes --logfile $d/p.log
  start_r() { redis-server --port $R --save '' --dir $d/r --replicaof 127.0.0.1 $P --daemonize yes --logfile $d/r.log; }
fi
sleep 1
redis-cli -p $P debug populate $keys key 100 >/dev/null
echo "$kind dbsize $(redis-cli -p $P dbsize)"
python3 $(dirname "$0")/repl-probe.py $P $keys $d/idle.txt 3
echo "idle: $(python3 $(dirname "$0")/repl-pct.py $d/idle.txt 0 9e12)"
python3 $(dirname "$0")/repl-probe.py $P $keys $d/sync.txt 120 &
bp=$!
sleep 0.5
t0=$(date +%s.%N)
start_r
while true; do
  st=$(redis-cli -p $R info replication 2>/dev/null | grep master_link_status | tr -d '\r')
  [ "$st" = "master_link_status:up" ] && break
  sleep 0.05
done
t1=$(date +%s.%N)
echo "$kind full sync of $keys keys: $(echo "$t1 - $t0" | bc) s; replica dbsize $(redis-cli -p $R dbsize)"
kill $bp; wait $bp 2>/dev/null
echo "during sync: $(python3 $(dirname "$0")/repl-pct.py $d/sync.txt $t0 $t1)"
redis-cli -p $R shutdown nosave >/dev/null 2>&1; redis-cli -p $P shutdown nosave >/dev/null 2>&1
sleep 1
