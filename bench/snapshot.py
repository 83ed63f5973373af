#!/usr/bin/env python3
"""Snapshot numbers: capture and restore throughput for N keys (default 1M x 100 B)
and the server's peak RSS while the snapshot is taken.

    cargo build --release && python3 bench/snapshot.py [target/release/elastilite] [keys]
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
import redis

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/elastilite"
KEYS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    data_dir = tempfile.mkdtemp(prefix="elastilite-snapbench-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
                             "--loopback-base", "127.78.0.1"], stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(500):
        try:
            urllib.request.urlopen(endpoint + "/_elastilite/health", timeout=1)
            break
        except OSError:
            time.sleep(0.01)
    ec = boto3.client("elasticache", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")

    def wait(cid):
        while True:
            cc = ec.describe_cache_clusters(CacheClusterId=cid, ShowCacheNodeInfo=True)["CacheClusters"][0]
            if cc["CacheClusterStatus"] == "available":
                ep = cc["CacheNodes"][0]["Endpoint"]
                return redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=120)
            time.sleep(0.02)

    ec.create_cache_cluster(CacheClusterId="big", Engine="redis", CacheNodeType="cache.r6g.large")
    r = wait("big")
    value = b"x" * 100
    pipe = r.pipeline(transaction=False)
    for i in range(KEYS):
        pipe.set(f"key:{i:08d}", value)
        if len(pipe) >= 10_000:
            pipe.execute()
    pipe.execute()
    before = rss_mib(proc.pid)
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(proc.pid))
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    started = time.perf_counter()
    ec.create_snapshot(SnapshotName="bench", CacheClusterId="big")
    while ec.describe_snapshots(SnapshotName="bench")["Snapshots"][0]["SnapshotStatus"] != "available":
        time.sleep(0.01)
    capture = time.perf_counter() - started
    stop.set()
    t.join()
    size = os.path.getsize(os.path.join(data_dir, "snapshots", "us-east-1", "bench-0001.rdb"))
    started = time.perf_counter()
    ec.create_cache_cluster(CacheClusterId="copy", Engine="redis", CacheNodeType="cache.r6g.large",
                            SnapshotName="bench")
    r2 = wait("copy")
    restore = time.perf_counter() - started
    assert r2.dbsize() == KEYS
    proc.terminate()
    proc.wait()
    mb = size / 1e6
    print(f"binary: {BIN}; {KEYS} keys x 100 B; RDB file {mb:.1f} MB")
    print(f"snapshot: {capture:.2f} s = {KEYS / capture:,.0f} keys/s, {mb / capture:.1f} MB/s")
    print(f"restore into a new cluster (create to available): {restore:.2f} s = {KEYS / restore:,.0f} keys/s, "
          f"{mb / restore:.1f} MB/s")
    print(f"server RSS before the snapshot {before:.0f} MiB, peak during it {peak[0]:.0f} MiB "
          f"(+{peak[0] - before:.0f} MiB, {peak[0] / before:.2f}x)")


if __name__ == "__main__":
    main()
