# Percentiles of repl-probe.py latencies between two Unix times.
import sys
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
lat = sorted(float(l.split()[1]) * 1000 for l in open(sys.argv[1]) if t0 <= float(l.split()[0]) <= t1)
if not lat: print("no samples"); sys.exit()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print("n=%d p50=%.3fms p99=%.3fms p99.9=%.3fms max=%.3fms" % (len(lat), p(.5), p(.99), p(.999), lat[-1]))
