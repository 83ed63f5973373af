#!/usr/bin/env python3
"""Control-plane numbers: time from CreateCacheCluster to `available` and to the
first PING, idle RSS of the server with 0 and 50 single-node clusters, and the
start-up time with those 50 clusters in the database.

    cargo build --release && python3 bench/control_plane.py [target/release/elastilite]
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/elastilite"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(data_dir, port):
    t = time.perf_counter()
    proc = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
                             "--loopback-base", "127.77.0.1"], stderr=subprocess.DEVNULL)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_elastilite/health", timeout=1):
                return proc, time.perf_counter() - t
        except OSError:
            time.sleep(0.001)


def ping(host, port):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16) == b"+PONG\r\n"


def main():
    data_dir = tempfile.mkdtemp(prefix="elastilite-bench-")
    port = free_port()
    proc, boot = start(data_dir, port)
    ec = boto3.client("elasticache", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    time.sleep(0.5)
    rss0 = rss_mib(proc.pid)
    to_available, to_ping = [], []
    for i in range(50):
        t = time.perf_counter()
        ec.create_cache_cluster(CacheClusterId=f"c{i}", Engine="redis")
        while True:
            cc = ec.describe_cache_clusters(CacheClusterId=f"c{i}", ShowCacheNodeInfo=True)["CacheClusters"][0]
            if cc["CacheClusterStatus"] == "available":
                break
        to_available.append(time.perf_counter() - t)
        ep = cc["CacheNodes"][0]["Endpoint"]
        while True:
            try:
                if ping(ep["Address"], ep["Port"]):
                    break
            except OSError:
                pass
        to_ping.append(time.perf_counter() - t)
    time.sleep(0.5)
    rss50 = rss_mib(proc.pid)
    proc.terminate()
    proc.wait()
    proc, boot50 = start(data_dir, port)
    t = time.perf_counter()
    eps = [c["CacheNodes"][0]["Endpoint"] for c in
           ec.describe_cache_clusters(ShowCacheNodeInfo=True, MaxRecords=100)["CacheClusters"]]
    assert len(eps) == 50 and all(ping(e["Address"], e["Port"]) for e in eps)
    serving = boot50 + (time.perf_counter() - t)
    proc.terminate()
    proc.wait()
    shutil.rmtree(data_dir, ignore_errors=True)
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.1f} ms, max {max(xs) * 1000:.1f} ms"
    print(f"binary: {BIN}")
    print(f"start-up (empty database) to healthy: {boot * 1000:.1f} ms")
    print(f"CreateCacheCluster -> available (redis, 50 runs): {ms(to_available)}")
    print(f"CreateCacheCluster -> first PING answered:       {ms(to_ping)}")
    print(f"idle RSS, 0 clusters:  {rss0:.1f} MiB")
    print(f"idle RSS, 50 clusters: {rss50:.1f} MiB ({(rss50 - rss0) / 50:.2f} MiB per cluster)")
    print(f"start-up with 50 clusters to healthy: {boot50 * 1000:.1f} ms; to all 50 nodes answering PING: {serving * 1000:.1f} ms")


if __name__ == "__main__":
    main()
