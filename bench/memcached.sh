#!/usr/bin/env bash
# Benchmark: one elastilite memcached-compatible node vs a real memcached (-t 1 and default
# threads), driven by the same load generator (crates/memcached-engine/examples/loadgen.rs),
# interleaved, on this machine.
#
# Prints, per test (set-only, get-only, 1:1 mix; pipeline 1 and 16): median ops/s, our/their
# ratio, p50/p99 batch latency, and server CPU time per request (utime+stime from /proc/PID/stat
# before/after), then RSS after loading 1,000,000 100-byte items into fresh servers.
#
# Usage: bench/memcached.sh            (env: ROUNDS=3 CONNS=50 P1_REQ=4000 P16_REQ=20000 KEYS=100000)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
P1_REQ=${P1_REQ:-4000}
P16_REQ=${P16_REQ:-20000}
KEYS=${KEYS:-100000}
VALUE=${VALUE:-32}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

command -v memcached >/dev/null || { echo "memcached is not installed" >&2; exit 1; }
cargo build --release -q -p memcached-engine --example node --example loadgen
BIN=$CARGO_TARGET_DIR/release/examples
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$1)).close()" 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; exit 1; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

# start_server NAME -> sets PORT_<NAME>, PID_<NAME>
start_server() {
  local name=$1 port pid
  port=$(free_port)
  case $name in
    ours) "$BIN/node" --port "$port" --memory-mb 1024 --version 1.6.18 >/dev/null 2>&1 & pid=$! ;;
    mc_t1) memcached -p "$port" -U 0 -l 127.0.0.1 -u root -m 1024 -t 1 >/dev/null 2>&1 & pid=$! ;;
    mc_t4) memcached -p "$port" -U 0 -l 127.0.0.1 -u root -m 1024 >/dev/null 2>&1 & pid=$! ;;
  esac
  PIDS+=("$pid")
  wait_port "$port"
  printf -v "PORT_$name" '%s' "$port"
  printf -v "PID_$name" '%s' "$pid"
}
stop_server() { local pid_var="PID_$1"; kill "${!pid_var}" 2>/dev/null || true; wait "${!pid_var}" 2>/dev/null || true; }

SERVERS=(ours mc_t1 mc_t4)
for s in "${SERVERS[@]}"; do start_server "$s"; done

RESULTS=$WORK/results.txt
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
  for test in set get mix; do
    case $test in set) ratio=1:0 ;; get) ratio=0:1 ;; mix) ratio=1:1 ;; esac
    for p in 1 16; do
      if [ "$p" = 1 ]; then req=$P1_REQ; else req=$P16_REQ; fi
      for s in "${SERVERS[@]}"; do
        port_var="PORT_$s"; pid_var="PID_$s"
        c0=$(cpu_ticks "${!pid_var}")
        out=$("$BIN/loadgen" --port "${!port_var}" --conns "$CONNS" --pipeline "$p" --requests "$req" \
              --keys "$KEYS" --value-size "$VALUE" --ratio "$ratio")
        c1=$(cpu_ticks "${!pid_var}")
        echo "$round $test $p $s $out cpu_ticks=$((c1 - c0))" >>"$RESULTS"
      done
    done
  done
  echo "round $round done" >&2
done

# memory: fresh servers, 1,000,000 x 100-byte values
MEM=$WORK/mem.txt
for s in "${SERVERS[@]}"; do
  stop_server "$s"; start_server "$s"
  pid_var="PID_$s"; port_var="PORT_$s"
  empty=$(rss_kb "${!pid_var}")
  "$BIN/loadgen" --port "${!port_var}" --conns 10 --pipeline 16 --load 1000000 --value-size 100 >/dev/null
  sleep 1
  echo "$s $empty $(rss_kb "${!pid_var}")" >>"$MEM"
done

python3 - "$RESULTS" "$MEM" "$CONNS" "$KEYS" "$VALUE" <<'EOF'
import sys, statistics as st, collections
res, mem, conns, keys, value = sys.argv[1:6]
d = collections.defaultdict(list)
for line in open(res):
    f = line.split()
    rnd, test, p, srv = f[:4]
    kv = dict(x.split('=') for x in f[4:])
    ops = float(kv['ops']); cpu_us = float(kv['cpu_ticks']) * 10000.0 / max(ops, 1)
    d[(test, p, srv)].append((float(kv['ops_per_sec']), int(kv['p50_us']), int(kv['p99_us']), cpu_us))
def med(v, i): return st.median(x[i] for x in v)
print(f"\nmemcached-engine benchmark: {conns} connections, {keys} keys, {value}-byte values; medians of {len(next(iter(d.values())))} interleaved rounds")
print("latency = per pipelined batch round trip (µs); CPU = server utime+stime per request (µs)\n")
print("| test | pipeline | ours ops/s | mc -t1 ops/s | mc -t4 ops/s | ours/t1 | ours/t4 | ours p50/p99 | t1 p50/p99 | t4 p50/p99 | ours CPU/req | t1 CPU/req | t4 CPU/req | CPU ours/t1 | CPU ours/t4 |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
names = {'set': 'set', 'get': 'get', 'mix': 'get+set 1:1'}
for test in ['set', 'get', 'mix']:
    for p in ['1', '16']:
        o, a, b = d[(test, p, 'ours')], d[(test, p, 'mc_t1')], d[(test, p, 'mc_t4')]
        print(f"| {names[test]} | {p} | {med(o,0):,.0f} | {med(a,0):,.0f} | {med(b,0):,.0f} | {med(o,0)/med(a,0):.2f}x | {med(o,0)/med(b,0):.2f}x "
              f"| {med(o,1):.0f}/{med(o,2):.0f} | {med(a,1):.0f}/{med(a,2):.0f} | {med(b,1):.0f}/{med(b,2):.0f} "
              f"| {med(o,3):.2f} | {med(a,3):.2f} | {med(b,3):.2f} | {med(o,3)/med(a,3):.2f}x | {med(o,3)/med(b,3):.2f}x |")
print("\n| server | RSS empty | RSS with 1,000,000 x 100 B | bytes/item | vs mc -t1 |")
print("|---|---|---|---|---|")
rows = [l.split() for l in open(mem)]
base = {r[0]: int(r[2]) for r in rows}
label = {'ours': 'ours', 'mc_t1': 'memcached -t 1', 'mc_t4': 'memcached (default -t 4)'}
for s, e, full in rows:
    e, full = int(e), int(full)
    print(f"| {label[s]} | {e/1024:.1f} MiB | {full/1024:.1f} MiB | {(full-e)*1024/1e6:.0f} | {full/base['mc_t1']:.2f}x |")
EOF
