# One client: GET of random keys, each request timed; "time latency" lines to a file.
import socket, sys, time, random
port, keys, out, dur = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = open(out, "w"); end = time.time() + dur
while time.time() < end:
    k = b"key:%d" % random.randrange(keys)
    req = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
    t = time.time(); s.sendall(req); buf = b""
    while True:
        buf += s.recv(65536)
        if buf.startswith(b"$-1\r\n") or (buf.count(b"\r\n") >= 2): break
    f.write("%.6f %.6f\n" % (t, time.time() - t))
