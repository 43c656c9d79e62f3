#!/usr/bin/env python3
"""A client writing to one large sorted set all through a background save.

percore's forkless BGSAVE against redis-server's fork BGSAVE: each server gets a sorted
set of MEMBERS members (default 10M, "m:<i>" with score i), then one client process
updates random members' scores (ZADD with a new score, one round trip at a time) while
BGSAVE runs, from just before the save until it has ended. Reported per server:

- writes done during the save, and the longest and 99.9th-percentile round trip of those
  writes (the longest time the client waited for the shard);
- the latency monitor's worst events (LATENCY LATEST, threshold 1 ms);
- redis-server: `latest_fork_usec` and `rdb_last_cow_size` (the fork's copy-on-write);
- percore: `rdb_last_bgsave_peak_extra_memory` (used_memory over its value at the cut),
  `rdb_last_forkless_frozen_peak_bytes` (bytes only the frozen copy held),
  `rdb_last_forkless_frozen_values`, `rdb_last_barrier_usec`;
- both: the peak RSS over the RSS before the save (server and, for redis, its child),
  sampled every 5 ms.

usage: benches/bigvalue-save.py [--members N] [--threads T] [--only percore|redis]
  Needs target/release/percore-server (cargo build --release), redis-server. Everything
  runs on 127.0.0.1 in a temporary directory and stops at exit. Bounded: one save per
  server; the writer stops when the save has ended.
"""

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PERCORE = os.environ.get("PERCORE", "target/release/percore-server")
FILL_PAIRS_PER_COMMAND = 1000
FILL_COMMANDS_IN_FLIGHT = 50
SAMPLE_EVERY_S = 0.005
SAVE_TIMEOUT_S = 600


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b":"):
            return rest
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(1 << 16)
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        if t == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError(f"bad reply {line!r}")

    def cmd(self, *args):
        self.s.sendall(resp(*args))
        return self.reply()


def info(c, section):
    text = c.cmd("INFO", section).decode()
    return dict(l.split(":", 1) for l in text.splitlines() if ":" in l)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(port):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if Client(port).cmd("PING") == b"PONG":
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"server on {port} did not start")


def fill(port, members):
    c = Client(port)
    in_flight = 0
    for start in range(0, members, FILL_PAIRS_PER_COMMAND):
        args = ["ZADD", "bigz"]
        for i in range(start, min(start + FILL_PAIRS_PER_COMMAND, members)):
            args += [i, f"m:{i}"]
        c.s.sendall(resp(*args))
        in_flight += 1
        if in_flight >= FILL_COMMANDS_IN_FLIGHT:
            c.reply()
            in_flight -= 1
    for _ in range(in_flight):
        c.reply()
    assert int(c.cmd("ZCARD", "bigz")) == members


def writer(port, members, stop_file, out_file):
    """Run as its own process: ZADD round trips until `stop_file` exists."""
    c = Client(port)
    rng = random.Random(14)
    lat = []
    started = False
    while not os.path.exists(stop_file):
        if not started and len(lat) == 100:
            open(stop_file + ".started", "w").close()
            started = True
        m = rng.randrange(members)
        req = resp("ZADD", "bigz", rng.random() * members, f"m:{m}")
        t = time.perf_counter()
        c.s.sendall(req)
        c.reply()
        lat.append((time.time(), time.perf_counter() - t))
    with open(out_file, "w") as f:
        json.dump(lat, f)


def run(kind, members, threads, tmp):
    port = free_port()
    d = os.path.join(tmp, kind)
    os.makedirs(d)
    if kind == "percore":
        argv = [PERCORE, "--port", str(port), "--threads", str(threads), "--dir", d,
                "--save", "", "--default-bgsave-method", "forkless"]
    else:
        argv = ["redis-server", "--port", str(port), "--dir", d, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--logfile", os.path.join(d, "log")]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port)
        c = Client(port)
        t = time.time()
        fill(port, members)
        print(f"{kind}: filled {members} members in {time.time() - t:.1f} s", file=sys.stderr)
        c.cmd("CONFIG", "SET", "latency-monitor-threshold", "1")
        used = int(info(c, "memory")["used_memory"])
        stop_file = os.path.join(tmp, f"stop-{kind}")
        out_file = os.path.join(tmp, f"lat-{kind}.json")
        w = subprocess.Popen([sys.executable, __file__, "--writer", str(port), str(members),
                              stop_file, out_file])
        while not os.path.exists(stop_file + ".started"):
            time.sleep(0.01)
        time.sleep(0.2)
        rss0 = rss_kb(server.pid)
        peak = rss0
        t_start = time.time()
        c.cmd("BGSAVE")
        time.sleep(0.01)
        while info(c, "persistence")["rdb_bgsave_in_progress"] != "0":
            total = rss_kb(server.pid) + sum(rss_kb(p) for p in children(server.pid))
            peak = max(peak, total)
            if time.time() - t_start > SAVE_TIMEOUT_S:
                sys.exit(f"{kind}: the save did not end")
            time.sleep(SAMPLE_EVERY_S)
        t_end = time.time()
        time.sleep(0.2)
        open(stop_file, "w").close()
        w.wait()
        with open(out_file) as f:
            lat = json.load(f)
        during = sorted(l for (at, l) in lat if t_start <= at <= t_end + 0.05)
        persistence = info(c, "persistence")
        stats = info(c, "stats")
        latest = c.cmd("LATENCY", "LATEST")
        row = {
            "server": kind,
            "used_memory_mb": round(used / 2**20, 1),
            "save_s": round(t_end - t_start, 2),
            "writes_during_save": len(during),
            "max_write_ms": round(during[-1] * 1e3, 2) if during else None,
            "p999_write_ms": round(during[int(len(during) * 0.999)] * 1e3, 2) if during else None,
            "peak_rss_over_start_mb": round((peak - rss0) / 1024, 1),
            "latency_latest": [[e[0].decode(), int(e[2]), int(e[3])] for e in latest],
        }
        if kind == "redis":
            row["latest_fork_usec"] = int(stats["latest_fork_usec"])
            row["rdb_last_cow_size_mb"] = round(int(persistence["rdb_last_cow_size"]) / 2**20, 1)
        else:
            row["peak_extra_memory_mb"] = round(
                int(persistence["rdb_last_bgsave_peak_extra_memory"]) / 2**20, 1)
            row["frozen_peak_mb"] = round(
                int(persistence["rdb_last_forkless_frozen_peak_bytes"]) / 2**20, 1)
            row["frozen_values"] = int(persistence["rdb_last_forkless_frozen_values"])
            row["barrier_usec"] = int(persistence["rdb_last_barrier_usec"])
            row["throttle_usec"] = int(persistence["rdb_last_forkless_throttle_usec"])
        return row
    finally:
        server.terminate()
        server.wait()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        writer(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=10_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["percore", "redis"])
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="percore-bigvalue-")
    try:
        for kind in ["percore", "redis"]:
            if a.only in (None, kind):
                print(json.dumps(run(kind, a.members, a.threads, tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
