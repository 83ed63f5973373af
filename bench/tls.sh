#!/usr/bin/env bash
# In-transit encryption cost: redis-benchmark against a plain node and a TLS node
# (TransitEncryptionEnabled) of one elastilite, interleaved; prints both throughputs
# and the TLS/plain ratio.   bench/tls.sh   (env: RUNS=3 N=100000)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
RUNS=${RUNS:-3}
N=${N:-100000}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not installed (apt-get install redis-tools)"; exit 1; }
cargo build --release -q --bin elastilite
BIN=$CARGO_TARGET_DIR/release/elastilite
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --listen "127.0.0.1:$PORT" --data-dir "$WORK" --loopback-base 127.77.0.1 2>"$WORK/log" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/_elastilite/health" >/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
python3 - "$PORT" "$WORK" <<'PY'
import sys, boto3
ec = boto3.client("elasticache", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}")
ec.create_cache_cluster(CacheClusterId="plain", Engine="redis", CacheNodeType="cache.r6g.large")
ec.create_cache_cluster(CacheClusterId="tls", Engine="redis", CacheNodeType="cache.r6g.large", TransitEncryptionEnabled=True)
for c in ("plain", "tls"):
    ec.get_waiter("cache_cluster_available").wait(CacheClusterId=c, WaiterConfig={"Delay": 1})
    ep = ec.describe_cache_clusters(CacheClusterId=c, ShowCacheNodeInfo=True)["CacheClusters"][0]["CacheNodes"][0]["Endpoint"]
    open(f"{sys.argv[2]}/{c}", "w").write(f"{ep['Address']} {ep['Port']}\n")
PY
curl -s "http://127.0.0.1:$PORT/_elastilite/ca.pem" >"$WORK/client-ca.pem"
read -r PH PP <"$WORK/plain"; read -r TH TP <"$WORK/tls"
run() { # host port extra... -> requests/s
  local h=$1 p=$2; shift 2
  redis-benchmark -h "$h" -p "$p" -n "$N" -c 50 -q --csv "$@" 2>/dev/null | awk -F'","' 'NR==2 {gsub(/"/,"",$2); print $2}'
}
for test in "-t set" "-t get" "-t set -P 16" "-t get -P 16"; do
  plain=0; tls=0
  for _ in $(seq "$RUNS"); do
    p=$(run "$PH" "$PP" $test); t=$(run "$TH" "$TP" $test --tls --cacert "$WORK/client-ca.pem")
    plain=$(python3 -c "print(max($plain, $p))"); tls=$(python3 -c "print(max($tls, $t))")
  done
  printf '%-14s plain %10.0f rps   tls %10.0f rps   tls/plain %.2f\n' "$test" "$plain" "$tls" \
    "$(python3 -c "print($tls/$plain)")"
done
