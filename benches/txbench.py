#!/usr/bin/env python3
"""CPU per transaction of a RESP server: MULTI / SET k1 v / SET k2 v / EXEC, pipelined.
usage: benches/txbench.py PORT PID MODE CONNS DEPTH TXNS   MODE: same|cross (keys on one shard / on two shards of 2)
PID 0: no CPU reading (the load of benches/callgrind.sh -L)"""
import socket, sys, threading, time, random

def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xffff
    return crc

def shard(key, shards=2):
    s = key.find(b'{')
    if s >= 0:
        e = key.find(b'}', s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return (crc16(key) % 16384) % shards

def enc(*args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out

def keys_for(mode, n):
    pairs = []
    i = 0
    while len(pairs) < n:
        i += 1
        if mode == 'same':
            pairs.append((b'{u%d}a' % i, b'{u%d}b' % i))
        else:
            a, b = b'a%d' % i, b'b%d' % i
            if shard(a) != shard(b):
                pairs.append((a, b))
    return pairs

import os
def cpu(pid):
    if pid == 0:
        return 0
    tot = 0
    for t in os.listdir('/proc/%d/task' % pid):
        tot += int(open('/proc/%d/task/%s/schedstat' % (pid, t)).read().split()[0])
    return tot / 1e7  # in units of 10 ms

def worker(port, pairs, depth, count, errors):
    s = socket.create_connection(('127.0.0.1', port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reqs = [enc(b'MULTI') + enc(b'SET', a, b'v1') + enc(b'SET', b, b'v2') + enc(b'EXEC') for a, b in pairs]
    expect = b'+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n'
    done = 0
    j = 0
    while done < count:
        batch = b''.join(reqs[(j + k) % len(reqs)] for k in range(depth))
        j += depth
        s.sendall(batch)
        want = len(expect) * depth
        got = b''
        while len(got) < want:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise SystemExit('closed')
            got += chunk
        if got != expect * depth:
            errors.append(got[:200])
            return
        done += depth
    s.close()

port, pid, mode, conns, depth, txns = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
pairs = keys_for(mode, 1000)
errors = []
c0, t0 = cpu(pid), time.time()
ths = [threading.Thread(target=worker, args=(port, random.sample(pairs, len(pairs)), depth, txns // conns, errors)) for _ in range(conns)]
for t in ths: t.start()
for t in ths: t.join()
c1, t1 = cpu(pid), time.time()
if errors:
    print('ERROR', errors[0]); sys.exit(1)
ticks = c1 - c0
print('mode=%s conns=%d depth=%d txns=%d server_cpu_us_per_txn=%.2f txn_per_s=%.0f' % (mode, conns, depth, txns, ticks * 10000.0 / txns, txns / (t1 - t0)))
