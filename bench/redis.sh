#!/usr/bin/env bash
# Benchmark our Redis-compatible node against redis-server, side by side, interleaved.
#   bench/redis.sh            (env: RUNS=3 N=200000 NP=1000000 KEYS=1000000)
#   ONLY='XADD|XREADGROUP' SKIP_MEM=1 bench/redis.sh   (only tests matching a regex, no RSS part)
# Prints, per test: throughput of both and our/their ratio, p50/p99 latency, server CPU
# time per request (utime+stime from /proc/<pid>/stat around each run), then RSS after
# loading KEYS keys with 100-byte values.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
RUNS=${RUNS:-3}
ONLY_MEM=${ONLY_MEM:-0}
N=${N:-200000}
NP=${NP:-1000000}
KEYS=${KEYS:-1000000}
command -v redis-server >/dev/null || { echo "redis-server not installed (apt-get install redis-server)"; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not installed (apt-get install redis-tools)"; exit 1; }

cargo build --release -q -p redis-engine --example node
OURS_BIN=$CARGO_TARGET_DIR/release/examples/node
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(free_port); OP=$(free_port)
redis-server --bind 127.0.0.1 --port "$RP" --save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" &
RPID=$!
"$OURS_BIN" --port "$OP" 2>"$WORK/ours.log" &
OPID=$!
cleanup() { kill "$RPID" "$OPID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for p in "$RP" "$OP"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
# Scripts for the EVALSHA tests, cached on both servers.
SCRIPT_RET="return 1"
SCRIPT_INCR="return redis.call('incr', KEYS[1])"
for p in "$RP" "$OP"; do
  redis-cli -p "$p" script load "$SCRIPT_RET" >/dev/null
  redis-cli -p "$p" script load "$SCRIPT_INCR" >/dev/null
done
SHA_RET=$(printf '%s' "$SCRIPT_RET" | sha1sum | cut -d' ' -f1)
SHA_INCR=$(printf '%s' "$SCRIPT_INCR" | sha1sum | cut -d' ' -f1)
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

# name|redis-benchmark args|requests
TESTS=(
  "SET c50|-t set -c 50|$N"
  "GET c50|-t get -c 50|$N"
  "SET c50 P16|-t set -c 50 -P 16|$NP"
  "GET c50 P16|-t get -c 50 -P 16|$NP"
  "LPUSH|-t lpush -c 50|$N"
  "LPOP|-t lpop -c 50|$N"
  "INCR|-t incr -c 50|$N"
  "HSET|-t hset -c 50|$N"
  "ZADD|-t zadd -c 50|$N"
  "SADD|-t sadd -c 50|$N"
  "XADD P16|-c 50 -P 16 XADD bench:s * f v|$NP"
  # Reads what XADD just added: one new entry per call, into the consumer's PEL.
  "XREADGROUP P16|-c 50 -P 16 XREADGROUP GROUP g c COUNT 1 STREAMS bench:s >|$NP"
  "EVALSHA return 1|-c 50 evalsha $SHA_RET 0|$N"
  "EVALSHA incr|-c 50 evalsha $SHA_INCR 1 counter|$N"
)
RES=$WORK/results.txt
: >"$RES"
one() { # server pid port testname args n
  local who=$1 pid=$2 port=$3 name=$4 args=$5 n=$6 before after line
  case "$name" in XREADGROUP*) redis-cli -p "$port" XGROUP CREATE bench:s g 0 MKSTREAM >/dev/null 2>&1 || true ;; esac
  before=$(cpu "$pid")
  # No globbing: custom commands carry '*'.
  set -f
  # shellcheck disable=SC2086
  line=$(redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -r 100000 --csv $args | tail -1)
  set +f
  after=$(cpu "$pid")
  # "test","rps","avg","min","p50","p95","p99","max"
  echo "$line" | tr -d '"' | awk -F, -v who="$who" -v name="$name" -v b="$before" -v a="$after" -v n="$n" -v t="$TICK" \
    '{printf "%s|%s|%s|%s|%s|%.2f\n", name, who, $2, $5, $7, (a-b)/t*1e6/n}' >>"$RES"
}
if [ "$ONLY_MEM" = 1 ]; then RUNS=0; fi
for run in $(seq "$RUNS"); do
  for t in "${TESTS[@]}"; do
    IFS='|' read -r name args n <<<"$t"
    if [ -n "${ONLY:-}" ] && ! [[ "$name" =~ $ONLY ]]; then continue; fi
    if (( run % 2 )); then
      one redis "$RPID" "$RP" "$name" "$args" "$n"; one ours "$OPID" "$OP" "$name" "$args" "$n"
    else
      one ours "$OPID" "$OP" "$name" "$args" "$n"; one redis "$RPID" "$RP" "$name" "$args" "$n"
    fi
  done
  echo "run $run/$RUNS done" >&2
done

[ "$RUNS" -gt 0 ] && python3 - "$RES" "$RUNS" <<'PY'
import sys, statistics
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
tests = []
data = {}
for name, who, rps, p50, p99, cpu in rows:
    if name not in tests: tests.append(name)
    data.setdefault((name, who), []).append((float(rps), float(p50), float(p99), float(cpu)))
med = lambda xs: statistics.median(xs)
print(f"\nmedians of {sys.argv[2]} interleaved runs")
print("| test | redis rps | ours rps | ratio | redis p50/p99 ms | ours p50/p99 ms | redis CPU µs/req | ours CPU µs/req | CPU ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for t in tests:
    r = data[(t, "redis")]; o = data[(t, "ours")]
    rr, orr = med([x[0] for x in r]), med([x[0] for x in o])
    rc, oc = med([x[3] for x in r]), med([x[3] for x in o])
    print(f"| {t} | {rr:,.0f} | {orr:,.0f} | {orr/rr:.2f}x | {med([x[1] for x in r]):.3f}/{med([x[2] for x in r]):.3f} | "
          f"{med([x[1] for x in o]):.3f}/{med([x[2] for x in o]):.3f} | {rc:.2f} | {oc:.2f} | {oc/rc if rc else float('nan'):.2f}x |")
PY

[ "${SKIP_MEM:-0}" = 1 ] && exit 0
# Memory: exactly KEYS keys with 100-byte values, loaded with redis-cli --pipe.
redis-cli -p "$RP" flushall >/dev/null; redis-cli -p "$OP" flushall >/dev/null
python3 - "$KEYS" >"$WORK/load.resp" <<'PY'
import sys
n = int(sys.argv[1]); v = b"x" * 100; out = sys.stdout.buffer
for i in range(n):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(k), k, v))
PY
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
# Fresh processes for the memory measurement (freed benchmark data would skew the baseline).
kill "$RPID" "$OPID" 2>/dev/null || true
wait "$RPID" "$OPID" 2>/dev/null || true
redis-server --bind 127.0.0.1 --port "$RP" --save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" &
RPID=$!
"$OURS_BIN" --port "$OP" 2>"$WORK/ours.log" &
OPID=$!
for p in "$RP" "$OP"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
echo
echo "| server | RSS before (KiB) | RSS after $KEYS keys (KiB) | bytes/key (RSS delta) | bytes/key (total RSS) | dbsize |"
echo "|---|---|---|---|---|---|"
for who in redis ours; do
  if [ $who = redis ]; then pid=$RPID; port=$RP; else pid=$OPID; port=$OP; fi
  b=$(rss "$pid")
  redis-cli -p "$port" --pipe <"$WORK/load.resp" >/dev/null
  sleep 1
  a=$(rss "$pid")
  d=$(redis-cli -p "$port" dbsize)
  echo "| $who | $b | $a | $(( (a - b) * 1024 / KEYS )) | $(( a * 1024 / KEYS )) | $d |"
done
