#!/usr/bin/env bash
# usage: benches/repl-lag.sh percore|redis: replica lag (primary master_repl_offset minus the
# replica's slave_repl_offset, sampled every 0.5 s, replica first: an upper bound) under
# redis-benchmark -P 16 -c 50 SET load, and how long the replica takes to catch up after it.
set -u
kind=$1 P=7511 R=7512
d=${TMPDIR:-/tmp}/repl-lag-$kind; rm -rf $d; mkdir -p $d/p $d/r
if [ $kind = percore ]; then
  ${PERCORE:-target/release/percore-server} --port $P --save '' --dir $d/p > $d/p.log 2>&1 &
  sleep 0.5
  ${PERCORE:-target/release/percore-server} --port $R --save '' --dir $d/r --replicaof "127.0.0.1 $P" > $d/r.log 2>&1 &
else
  redis-server --port $P --save "" --dir $d/p --daemonize yes --logfile $d/p.log
  redis-server --port $R --save "" --dir $d/r --replicaof 127.0.0.1 $P --daemonize yes --logfile $d/r.log
fi
sleep 2
redis-benchmark -p $P -t set -P 16 -c 50 -n 4000000 -r 1000000 -q 2>/dev/null | tr '\r' '\n' | tail -2 > $d/bench.txt &
bp=$!
max=0; sum=0; n=0
while kill -0 $bp 2>/dev/null; do
  ro=$(redis-cli -p $R info replication | grep slave_repl_offset | cut -d: -f2 | tr -d '\r')
  po=$(redis-cli -p $P info replication | grep master_repl_offset | cut -d: -f2 | tr -d '\r')
  l=$((po - ro)); [ $l -gt $max ] && max=$l; sum=$((sum + l)); n=$((n + 1))
  sleep 0.5
done
t0=$(date +%s.%N)
while true; do
  po=$(redis-cli -p $P info replication | grep master_repl_offset | cut -d: -f2 | tr -d '\r')
  ro=$(redis-cli -p $R info replication | grep slave_repl_offset | cut -d: -f2 | tr -d '\r')
  [ "$po" = "$ro" ] && break; sleep 0.01
done
t1=$(date +%s.%N)
echo "$kind: $(grep -v '^$' $d/bench.txt | tail -1); lag samples=$n avg=$((sum / (n>0?n:1))) B max=$max B; caught up $(echo "$t1 - $t0" | bc) s after the load; dbsize p=$(redis-cli -p $P dbsize) r=$(redis-cli -p $R dbsize)"
redis-cli -p $R shutdown nosave >/dev/null 2>&1; redis-cli -p $P shutdown nosave >/dev/null 2>&1; sleep 1
