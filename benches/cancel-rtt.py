#!/usr/bin/env python3
"""BGSAVE CANCEL reply time over one kept connection (no process start-up in the figure).

usage: benches/cancel-rtt.py PORT [ROUNDS [KEYS [METHODS]]]
  against a running percore-server on 127.0.0.1:PORT (e.g. started with --save ""
  --threads 2 --enable-debug-command yes); fills it with KEYS keys of 100 B (DEBUG POPULATE, default 6000000 = 1.1 GB),
  then for each method in METHODS (default fork,forkless) runs ROUNDS (default 12) times:
  BGSAVE slowed by rdb-key-save-delay 5, 0.2 s later a PING and a BGSAVE CANCEL, each
  timed from send to reply. Prints every cancel time and the medians in microseconds.
"""
import socket
import statistics
import sys
import time


def main():
    port = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    keys = sys.argv[3] if len(sys.argv) > 3 else "6000000"
    methods = (sys.argv[4] if len(sys.argv) > 4 else "fork,forkless").split(",")
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    replies = sock.makefile("rb")

    def cmd(*args):
        parts = [a.encode() for a in args]
        sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        line = replies.readline()
        if line[:1] == b"$" and int(line[1:]) >= 0:
            replies.read(int(line[1:]) + 2)
        return line.strip()

    def timed(*args):
        t = time.perf_counter_ns()
        reply = cmd(*args)
        return (time.perf_counter_ns() - t) / 1000, reply

    assert cmd("DEBUG", "POPULATE", keys, "key", "100") == b"+OK"
    for method in methods:
        assert cmd("CONFIG", "SET", "default-bgsave-method", method) == b"+OK"
        assert cmd("CONFIG", "SET", "rdb-key-save-delay", "5") == b"+OK"
        pings, cancels = [], []
        for _ in range(rounds):
            assert cmd("BGSAVE") == b"+Background saving started", method
            time.sleep(0.2)
            pings.append(timed("PING")[0])
            us, reply = timed("BGSAVE", "CANCEL")
            assert reply == b"+Background saving cancelled", reply
            cancels.append(us)
        print(f"{method}: BGSAVE CANCEL µs {[round(c) for c in cancels]}")
        print(
            f"{method}: median PING {statistics.median(pings):.0f} µs, "
            f"BGSAVE CANCEL {statistics.median(cancels):.0f} µs "
            f"(min {min(cancels):.0f}, max {max(cancels):.0f}, {rounds} rounds)"
        )
    assert cmd("CONFIG", "SET", "rdb-key-save-delay", "0") == b"+OK"


if __name__ == "__main__":
    main()
