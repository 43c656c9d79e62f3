#!/usr/bin/env bash
# BGSAVE side by side: redis-server, percore with `default-bgsave-method fork`, and percore
# with `forkless` (the in-process copy-on-write cut), on the same data, one server at a
# time. For each it reports:
#   - save time: wall time from the BGSAVE reply until INFO persistence (polled every
#     10 ms) shows rdb_bgsave_in_progress:0, with rdb_last_bgsave_status:ok checked;
#   - write throughput: dump file bytes / save time (the save without load), as a
#     percentage of the disk's own O_DIRECT limit (dd oflag=direct conv=fsync, sized like
#     the dump): against the mean of the dd runs right before and right after that save,
#     and against the best dd of the whole run;
#   - stall: the longest stop of the main/shard threads at the start of the save (redis
#     latest_fork_usec, percore rdb_last_barrier_usec, which includes fork() in fork mode);
#   - p99 and max latency (redis-benchmark --csv) of a concurrent load, without a save and
#     with a BGSAVE started one second into it (100% SET by default: the copy-on-write
#     case); the max also catches stalls later in the save that the barrier figure misses;
#   - peak extra memory during the loaded save, sampled every 10 ms: server VmRSS peak
#     minus VmRSS just before the BGSAVE, plus the fork child's peak Private_Dirty (its
#     shared pages are not extra); and the server's own figure (redis rdb_last_cow_size /
#     current_cow_peak, percore rdb_last_bgsave_peak_extra_memory);
#   - the dataset size (server VmRSS after loading, and used_memory) it is measured against.
#
# The data is KEYS string keys `key:%012d` (redis-benchmark's `-r` key names, so the load
# overwrites keys of the snapshot instead of growing the dataset) with VALUE_SIZE bytes of
# random hex (LZF cannot shrink it, so the file is about the size of the data).
#
# usage: benches/snapshot.sh [--quick | --big] [--keep]
#   --quick   200 000 keys: a smoke run of a minute or two
#   --big     10 000 000 keys of 100 bytes: the 1 GB dataset (1.16 GB of keys and values,
#             a 1.2 GB RDB file, ~2.1 GB of server RSS); needs ~2.5 GB of free RAM and
#             ~2.5 GB of disk in DIR, and ~15 minutes. (The default 5M keys is ~1 GB of
#             server memory and a 0.6 GB file.)
#   --keep    keep the work directory (dumps, logs, raw redis-benchmark output)
# environment (defaults in brackets):
#   KEYS [5000000]  VALUE_SIZE [100]  THREADS percore shard threads [2]
#   DIR       where the work directory (dumps, dd test file) is made [/tmp]; a fresh
#             mktemp -d under it, removed at the end unless --keep
#   PERCORE_SERVER  the binary [target/release/percore-server]; copied into the work
#             directory first, so a rebuild during the run does not change what is measured
#   CLIENTS [50]    BASE_REQUESTS requests of the no-save load [300000; --quick 100000]
#   LOAD_TEST [set] the redis-benchmark test of the load (set = 100% writes, get = reads)
#   SAVE_TIMEOUT    seconds one BGSAVE may take before the run fails [120 + KEYS/20000]
#   ONLY      comma-separated subset of redis,fork,forkless [all three]
# Output: progress on stderr; on stdout the raw numbers (one `RAW` line per save and per
# load) and a markdown table. Only 127.0.0.1 and free ports are used; every server, load
# and sampler started here is stopped at exit.
set -euo pipefail

# ---- parameters -------------------------------------------------------------------------

POLL_INTERVAL_S=0.01
SERVER_READY_TIMEOUT_S=30
SERVER_STOP_TIMEOUT_S=10
LOAD_WARMUP_S=1
MIB=1048576

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

quick=0 big=0 keep=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --big) big=1 ;;
    --keep) keep=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ] && [ "$big" = 1 ]; then echo "snapshot.sh: --quick or --big, not both" >&2; exit 2; fi

default_keys=5000000 default_base=300000
[ "$quick" = 1 ] && default_keys=200000 default_base=100000
[ "$big" = 1 ] && default_keys=10000000
KEYS=${KEYS:-$default_keys}
VALUE_SIZE=${VALUE_SIZE:-100}
THREADS=${THREADS:-2}
CLIENTS=${CLIENTS:-50}
BASE_REQUESTS=${BASE_REQUESTS:-$default_base}
LOAD_TEST=${LOAD_TEST:-set}
SAVE_TIMEOUT=${SAVE_TIMEOUT:-$((120 + KEYS / 20000))}
ONLY=${ONLY:-redis,fork,forkless}
repo=$(cd "$(dirname "$0")/.." && pwd)
PERCORE_SERVER=${PERCORE_SERVER:-$repo/target/release/percore-server}

for v in KEYS VALUE_SIZE THREADS CLIENTS BASE_REQUESTS SAVE_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "snapshot.sh: $v must be a positive integer" >&2; exit 2; }
done
for tool in redis-server redis-cli redis-benchmark python3 dd timeout pgrep; do
  command -v "$tool" >/dev/null || { echo "snapshot.sh: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 2; }
done
[ -x "$PERCORE_SERVER" ] || { echo "snapshot.sh: $PERCORE_SERVER not found (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d "${DIR:-/tmp}/snapshot-bench.XXXXXX")

# ---- process bookkeeping ----------------------------------------------------------------

server_pid="" load_pid="" sampler_pid=""

stop_server() { # stops $server_pid and any fork child it has
  [ -n "$server_pid" ] || return 0
  local kids i
  kids=$(pgrep -P "$server_pid" || true)
  kill -TERM "$server_pid" 2>/dev/null || true
  for ((i = 0; i < SERVER_STOP_TIMEOUT_S * 10; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  # shellcheck disable=SC2086 # one pid per word
  [ -z "$kids" ] || kill -KILL $kids 2>/dev/null || true
  server_pid=""
}

cleanup() {
  local rc=$?
  rm -f "$work/sampling"
  [ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null || true
  [ -z "$load_pid" ] || kill "$load_pid" 2>/dev/null || true
  stop_server
  wait 2>/dev/null || true
  if [ "$keep" = 1 ]; then echo "snapshot.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers ----------------------------------------------------------------------------

log() { printf '[snapshot.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now_us() { local t=${EPOCHREALTIME//[.,]/}; echo "$t"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cli() { timeout 10 redis-cli -h 127.0.0.1 -p "$port" "$@"; }
# field NAME: the value of NAME in INFO text on stdin
field() { tr -d '\r' | awk -F: -v f="$1" '$1 == f {print $2; exit}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f", 100 * a / b; else print "n/a"}'; }

wait_ready() {
  local i
  for ((i = 0; i < SERVER_READY_TIMEOUT_S * 20; i++)); do
    kill -0 "$server_pid" 2>/dev/null || die "server on port $port exited; log: $(tail -n 5 "$sdir/server.log")"
    [ "$(cli ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  die "server on port $port did not answer PING within ${SERVER_READY_TIMEOUT_S}s"
}

start_server() { # kind (redis|fork|forkless); sets port, server_pid, sdir
  local kind=$1
  sdir=$work/$kind
  mkdir -p "$sdir"
  port=$(free_port)
  if [ "$kind" = redis ]; then
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$sdir" --dbfilename dump.rdb >"$sdir/server.log" 2>&1 &
  else
    "$work/percore-server" --port "$port" --bind 127.0.0.1 --dir "$sdir" --save '' \
      --threads "$THREADS" >"$sdir/server.log" 2>&1 &
  fi
  server_pid=$!
  wait_ready
  if [ "$kind" != redis ]; then
    [ "$(cli config set default-bgsave-method "$kind")" = OK ] || die "CONFIG SET default-bgsave-method $kind failed"
  fi
}

# RESP SET commands for the dataset, deterministic (same data for every server).
gen_dataset() {
  python3 - "$KEYS" "$VALUE_SIZE" <<'EOF'
import random, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(42)
out = sys.stdout.buffer
head = b"*3\r\n$3\r\nSET\r\n$16\r\n"
mid = b"\r\n$%d\r\n" % size
step = (size + 1) // 2 * 2
batch = 10000
for start in range(0, n, batch):
    m = min(batch, n - start)
    blob = rnd.randbytes(step // 2 * m).hex().encode()
    out.write(b"".join(b"%skey:%012d%s%s\r\n" % (head, start + j, mid, blob[j * step:j * step + size])
                       for j in range(m)))
EOF
}

populate() {
  local out dbsize
  out=$(gen_dataset | timeout $((60 + KEYS / 20000)) redis-cli -h 127.0.0.1 -p "$port" --pipe 2>&1) ||
    die "loading the dataset failed: $out"
  grep -q 'errors: 0,' <<<"$out" || die "loading the dataset: $out"
  dbsize=$(cli dbsize)
  [ "$dbsize" = "$KEYS" ] || die "dbsize $dbsize after loading $KEYS keys"
}

# dd's own O_DIRECT write rate for MIB_COUNT MiB, bytes/s.
disk_bps() {
  local out
  out=$(LC_ALL=C timeout 300 dd if=/dev/zero of="$work/ddtest" bs=1M count="$1" oflag=direct conv=fsync 2>&1) ||
    die "dd: $out"
  rm -f "$work/ddtest"
  awk -F', ' '/copied/ {split($1, b, " "); split($3, s, " "); printf "%.0f\n", b[1] / s[1]}' <<<"$out"
}

# Background: every POLL_INTERVAL_S, the peak VmRSS of the server and the peak
# Private_Dirty of its fork child (found with pgrep), into $work/sample as "rss_kb pd_kb n".
sampler() {
  local pid=$1 max_iter=$2 i rss max_rss=0 pd max_pd=0 child="" k v
  for ((i = 0; i < max_iter; i++)); do
    [ -e "$work/sampling" ] || break
    rss=0
    while read -r k v _; do
      if [ "$k" = VmRSS: ]; then rss=$v; break; fi
    done 2>/dev/null <"/proc/$pid/status" || true
    if [ -z "$child" ] || [ ! -e "/proc/$child" ]; then child=$(pgrep -P "$pid" | head -n 1 || true); fi
    pd=0
    if [ -n "$child" ]; then
      while read -r k v _; do
        if [ "$k" = Private_Dirty: ]; then pd=$v; break; fi
      done 2>/dev/null <"/proc/$child/smaps_rollup" || true
    fi
    if [ "$rss" -gt "$max_rss" ]; then max_rss=$rss; fi
    if [ "$pd" -gt "$max_pd" ]; then max_pd=$pd; fi
    printf '%s %s %s\n' "$max_rss" "$max_pd" "$i" >"$work/sample"
    sleep "$POLL_INTERVAL_S"
  done
}

# One BGSAVE with memory sampling; sets the S_* globals.
bgsave() {
  local reply t0 t1 info deadline cow cow_peak=0 stats
  S_RSS_BEFORE=$(rss_kb "$server_pid")
  : >"$work/sampling"
  echo "0 0 0" >"$work/sample"
  sampler "$server_pid" $((SAVE_TIMEOUT * 100 + 1000)) &
  sampler_pid=$!
  reply=$(cli bgsave)
  t0=$(now_us)
  [ "$reply" = "Background saving started" ] || die "BGSAVE replied: $reply"
  deadline=$((t0 + SAVE_TIMEOUT * 1000000))
  while :; do
    info=$(cli info persistence) || die "INFO persistence failed during the save"
    t1=$(now_us)
    cow=$(field current_cow_peak <<<"$info")
    if [ "${cow:-0}" -gt "$cow_peak" ]; then cow_peak=$cow; fi
    [ "$(field rdb_bgsave_in_progress <<<"$info")" = 0 ] && break
    [ "$t1" -lt "$deadline" ] || die "BGSAVE still in progress after ${SAVE_TIMEOUT}s"
    kill -0 "$server_pid" 2>/dev/null || die "server died during BGSAVE"
    sleep "$POLL_INTERVAL_S"
  done
  rm -f "$work/sampling"
  wait "$sampler_pid" || true
  sampler_pid=""
  S_END_US=$t1
  S_US=$((t1 - t0))
  read -r S_RSS_PEAK S_PD_PEAK S_SAMPLES <"$work/sample"
  S_STATUS=$(field rdb_last_bgsave_status <<<"$info")
  [ "$S_STATUS" = ok ] || die "rdb_last_bgsave_status:$S_STATUS after BGSAVE; log: $(tail -n 5 "$sdir/server.log")"
  S_FILE=$(stat -c %s "$sdir/dump.rdb")
  S_EXTRA=$(((S_RSS_PEAK > S_RSS_BEFORE ? S_RSS_PEAK - S_RSS_BEFORE : 0) * 1024 + S_PD_PEAK * 1024))
  if [ "$kind" = redis ]; then
    stats=$(cli info stats)
    S_STALL=$(field latest_fork_usec <<<"$stats")
    S_SELF=$(field rdb_last_cow_size <<<"$info")
    if [ "$cow_peak" -gt "$S_SELF" ]; then S_SELF=$cow_peak; fi
    S_OWN_BPS="" S_OWN_BYTES="" S_COW=""
  else
    S_STALL=$(field rdb_last_barrier_usec <<<"$info")
    S_SELF=$(field rdb_last_bgsave_peak_extra_memory <<<"$info")
    S_OWN_BPS=$(field rdb_last_bgsave_write_bytes_per_sec <<<"$info")
    S_OWN_BYTES=$(field rdb_last_bgsave_bytes <<<"$info")
    S_COW=$(field rdb_last_cow_size <<<"$info")
  fi
}

raw_save() { # label
  echo "RAW save server=$kind phase=$1 save_ms=$((S_US / 1000)) status=$S_STATUS file_bytes=$S_FILE" \
    "stall_us=$S_STALL rss_before_kb=$S_RSS_BEFORE rss_peak_kb=$S_RSS_PEAK child_private_dirty_peak_kb=$S_PD_PEAK" \
    "samples=$S_SAMPLES measured_extra_bytes=$S_EXTRA self_reported_extra_bytes=$S_SELF" \
    "${S_COW:+rdb_last_cow_size=$S_COW }${S_OWN_BYTES:+rdb_last_bgsave_bytes=$S_OWN_BYTES }${S_OWN_BPS:+rdb_last_bgsave_write_bytes_per_sec=$S_OWN_BPS}"
}

# redis-benchmark N requests in the background; CSV to FILE.
start_load() { # requests file timeout_s
  timeout "$3" redis-benchmark -h 127.0.0.1 -p "$port" -t "$LOAD_TEST" -r "$KEYS" -n "$1" \
    -c "$CLIENTS" -d "$VALUE_SIZE" -P 1 --csv >"$2" 2>"$2.err" &
  load_pid=$!
  L_START_US=$(now_us)
}

finish_load() { # file; sets L_RPS L_P50 L_P99 L_MAX L_US
  local line
  wait "$load_pid" || die "redis-benchmark failed or timed out: $(tail -n 3 "$1.err")"
  load_pid=""
  L_US=$(($(now_us) - L_START_US))
  line=$(tail -n 1 "$1" | tr -d '"')
  IFS=, read -r _ L_RPS _ _ L_P50 _ L_P99 L_MAX <<<"$line"
  [[ $L_P99 =~ ^[0-9.]+$ ]] || die "no latency in redis-benchmark output: $(cat "$1")"
}

# ---- the run ----------------------------------------------------------------------------

cp "$PERCORE_SERVER" "$work/percore-server"
est_mib=$(((KEYS * (VALUE_SIZE + 20) + MIB - 1) / MIB))
[ "$est_mib" -ge 64 ] || est_mib=64

commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)
echo "# snapshot.sh $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# keys=$KEYS value_size=$VALUE_SIZE percore_threads=$THREADS clients=$CLIENTS load=$LOAD_TEST" \
  "$(redis-server --version | awk '{print $1, $2, $3}')"
echo "# percore binary $PERCORE_SERVER (modified $(date -u -r "$PERCORE_SERVER" '+%Y-%m-%d %H:%M UTC')," \
  "sha256 $(sha256sum "$PERCORE_SERVER" | cut -c1-12)); repo HEAD $commit${dirty:+ with uncommitted changes}"
echo "# machine: $(nproc) cpus, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)," \
  "work dir $work on $(df --output=source "$work" | tail -n 1), load average $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A R
best_disk=0
for kind in redis fork forkless; do
  [[ ,$ONLY, == *,$kind,* ]] || continue
  log "$kind: starting the server, loading $KEYS keys"
  start_server "$kind"
  populate
  rss_data=$(rss_kb "$server_pid")
  used=$(cli info memory | field used_memory)
  echo "RAW dataset server=$kind keys=$KEYS rss_kb=$rss_data used_memory=$used"

  log "$kind: dd ${est_mib} MiB O_DIRECT"
  disk=$(disk_bps "$est_mib")
  if [ "$disk" -gt "$best_disk" ]; then best_disk=$disk; fi
  echo "RAW disk server=$kind dd_mib=$est_mib dd_bytes_per_sec=$disk"

  log "$kind: BGSAVE without load"
  bgsave
  raw_save idle
  idle_us=$S_US idle_stall=$S_STALL idle_file=$S_FILE

  # The disk's rate moves a lot between minutes on a shared VM: measure it again right
  # after the save and compare the save with the mean of the two adjacent runs too.
  log "$kind: dd ${est_mib} MiB O_DIRECT again"
  disk_after=$(disk_bps "$est_mib")
  if [ "$disk_after" -gt "$best_disk" ]; then best_disk=$disk_after; fi
  disk_adj=$(((disk + disk_after) / 2))
  echo "RAW disk server=$kind phase=after-idle-save dd_mib=$est_mib dd_bytes_per_sec=$disk_after adjacent_mean=$disk_adj"

  log "$kind: $BASE_REQUESTS x $LOAD_TEST without a save"
  rss0=$(rss_kb "$server_pid")
  start_load "$BASE_REQUESTS" "$sdir/base.csv" $((60 + BASE_REQUESTS / 1000))
  finish_load "$sdir/base.csv"
  # RSS growth from the load alone, to tell it from the save's extra memory.
  echo "RAW load server=$kind phase=no-save requests=$BASE_REQUESTS ms=$((L_US / 1000)) rps=$L_RPS p50_ms=$L_P50" \
    "p99_ms=$L_P99 max_ms=$L_MAX rss_before_kb=$rss0 rss_after_kb=$(rss_kb "$server_pid") dbsize=$(cli dbsize)"
  base_p99=$L_P99 base_max=$L_MAX
  # Long enough to cover the warm-up, the save (slower under load) and a little after, so
  # that most of the p99 sample is taken during the save; once more, three times longer,
  # if the save outlasted it.
  load_us=$((LOAD_WARMUP_S * 1000000 + 3 * idle_us / 2 + 500000))
  requests=$(awk -v r="$BASE_REQUESTS" -v t="$L_US" -v u="$load_us" 'BEGIN {printf "%.0f", r * u / t}')
  for attempt in 1 2; do
    log "$kind: $requests x $LOAD_TEST with a BGSAVE after ${LOAD_WARMUP_S}s (attempt $attempt)"
    start_load "$requests" "$sdir/save.csv" $((120 + 10 * load_us / 1000000))
    sleep "$LOAD_WARMUP_S"
    kill -0 "$load_pid" 2>/dev/null || die "the load ended before the BGSAVE; raise BASE_REQUESTS"
    bgsave
    finish_load "$sdir/save.csv"
    covered=$(((L_START_US + L_US) >= S_END_US ? 1 : 0))
    raw_save "under-$LOAD_TEST"
    echo "RAW load server=$kind phase=during-save requests=$requests ms=$((L_US / 1000)) rps=$L_RPS p50_ms=$L_P50" \
      "p99_ms=$L_P99 max_ms=$L_MAX save_share_of_load=$(pct "$S_US" "$L_US")% load_covered_save=$covered dbsize=$(cli dbsize)"
    [ "$covered" = 1 ] && break
    requests=$((requests * 3))
  done
  [ "$covered" = 1 ] || log "$kind: WARNING: the load ended before the save did; p99 covers only part of it"
  stop_server

  R[$kind]="$idle_us $idle_file $disk_adj $idle_stall $S_STALL $base_p99 $L_P99 $S_EXTRA $S_SELF $rss_data $used $S_US $base_max $L_MAX"
done

name() { case $1 in redis) echo "redis BGSAVE" ;; fork) echo "percore fork" ;; forkless) echo "percore forkless" ;; esac; }
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "keys=$KEYS value_size=$VALUE_SIZE, load: redis-benchmark -t $LOAD_TEST -c $CLIENTS -P 1;" \
  "disk O_DIRECT limit (best dd of the run): $(mb "$best_disk") MiB/s"
echo
echo "| | save s (idle) | save s (under load) | file MiB | write MiB/s | % of disk (adjacent dd / best dd) | stall µs (idle / load) | p99 (max) ms no save | p99 (max) ms during save | peak extra MiB | extra % of dataset | self-reported extra MiB | dataset MiB (RSS / used_memory) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for kind in redis fork forkless; do
  [ -n "${R[$kind]:-}" ] || continue
  read -r t file adj st_idle st_load p99b p99s extra self rss used t_load maxb maxs <<<"${R[$kind]}"
  bps=$(awk -v f="$file" -v t="$t" 'BEGIN {printf "%.0f", f / (t / 1e6)}')
  printf '| %s | %.2f | %.2f | %s | %s | %s / %s | %s / %s | %s (%s) | %s (%s) | %s | %s | %s | %s / %s |\n' \
    "$(name "$kind")" "$(awk -v t="$t" 'BEGIN {print t / 1e6}')" "$(awk -v t="$t_load" 'BEGIN {print t / 1e6}')" \
    "$(mb "$file")" "$(mb "$bps")" "$(pct "$bps" "$adj")" "$(pct "$bps" "$best_disk")" "$st_idle" "$st_load" "$p99b" "$maxb" "$p99s" "$maxs" \
    "$(mb "$extra")" "$(pct "$extra" $((rss * 1024)))" "$(mb "$self")" "$(mb $((rss * 1024)))" "$(mb "$used")"
done
