#!/usr/bin/env python3
"""Replication-group numbers: TestFailover time (median of 10) until the primary
endpoint accepts writes on the new primary, the server's memory for a 3-node
group (empty, and with 100,000 keys of 100 B replicated to both replicas), automatic
failover time after pausing the primary (median of 5; fault injection), and how long a
write on the primary can stall while a new replica's full sync of N keys (default 1M)
runs.

    cargo build --release && python3 bench/replication.py [target/release/elastilite] [N]
"""
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import boto3
import redis

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/elastilite"
SYNC_KEYS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000


def post(endpoint, path):
    req = urllib.request.Request(endpoint + path, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def pause_failovers(ec, endpoint, ep, primary, runs=5):
    """Pause the primary; time until a write through the primary endpoint succeeds on
    the promoted replica."""
    times = []
    for _ in range(runs):
        old = primary()
        t = time.perf_counter()
        if post(endpoint, f"/_elastilite/nodes/us-east-1/{old}/0001/pause") != 204:
            return None
        while True:
            try:
                c = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=0.2,
                                socket_connect_timeout=0.2, retry_on_timeout=False)
                if primary() != old and c.set("probe", "1"):
                    break
            except redis.exceptions.RedisError:
                pass
        times.append(time.perf_counter() - t)
        ec.get_waiter("replication_group_available").wait(ReplicationGroupId="bench",
                                                          WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        time.sleep(1)
    return times


def sync_stall(ec, n):
    """Write latency on a primary holding n keys while a new replica does its full sync."""
    ec.create_replication_group(ReplicationGroupId="stall", ReplicationGroupDescription="d",
                                NumCacheClusters=1, CacheNodeType="cache.r6g.large")
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="stall",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    g = ec.describe_replication_groups(ReplicationGroupId="stall")["ReplicationGroups"][0]
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=60)
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"key:{i:08d}", b"x" * 100)
        if len(pipe) >= 10_000:
            pipe.execute()
    pipe.execute()
    lat, stop = [], threading.Event()

    def writer():
        c = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=60)
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            c.set(f"during:{i}", i)
            lat.append(time.perf_counter() - t)
            i += 1
            time.sleep(0.001)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    time.sleep(0.2)
    t = time.perf_counter()
    ec.increase_replica_count(ReplicationGroupId="stall", NewReplicaCount=1, ApplyImmediately=True)
    while True:
        info = r.info("replication")
        if info.get("connected_slaves") == 1 and info.get("slave0", {}).get("state") == "online":
            break
        time.sleep(0.01)
    took = time.perf_counter() - t
    time.sleep(0.2)
    stop.set()
    th.join()
    lat.sort()
    fork = r.info("stats").get("latest_fork_usec")
    return took, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1], len(lat), fork


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data-dir", tempfile.mkdtemp(),
                             "--loopback-base", "127.79.0.1"], stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(500):
        try:
            urllib.request.urlopen(endpoint + "/_elastilite/health", timeout=1)
            break
        except OSError:
            time.sleep(0.01)
    ec = boto3.client("elasticache", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    time.sleep(0.3)
    base = rss_mib(proc.pid)
    ec.create_replication_group(ReplicationGroupId="bench", ReplicationGroupDescription="d", NumCacheClusters=3,
                                AutomaticFailoverEnabled=True)
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="bench",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    g = ec.describe_replication_groups(ReplicationGroupId="bench")["ReplicationGroups"][0]
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    time.sleep(0.3)
    empty = rss_mib(proc.pid)
    r = redis.Redis(host=ep["Address"], port=ep["Port"])
    pipe = r.pipeline(transaction=False)
    for i in range(100_000):
        pipe.set(f"key:{i}", b"x" * 100)
        if len(pipe) >= 10_000:
            pipe.execute()
    pipe.execute()
    assert r.wait(2, 10_000) == 2
    time.sleep(0.3)
    loaded = rss_mib(proc.pid)

    def primary():
        g = ec.describe_replication_groups(ReplicationGroupId="bench")["ReplicationGroups"][0]
        return next(m["CacheClusterId"] for m in g["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"] == "primary")

    times = []
    for _ in range(10):
        old = primary()
        t = time.perf_counter()
        ec.test_failover(ReplicationGroupId="bench", NodeGroupId="0001")
        while True:
            try:
                c = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=1)
                if primary() != old and c.set("probe", "1"):
                    break
            except redis.exceptions.RedisError:
                pass
        times.append(time.perf_counter() - t)
        time.sleep(0.2)
    paused = pause_failovers(ec, endpoint, ep, primary)
    ec.delete_replication_group(ReplicationGroupId="bench")
    stall = sync_stall(ec, SYNC_KEYS)
    proc.terminate()
    proc.wait()
    print(f"binary: {BIN}")
    print(f"TestFailover to writes accepted through the primary endpoint (10 runs): median "
          f"{statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    print(f"server RSS: {base:.1f} MiB idle; +{empty - base:.1f} MiB for an empty 3-node group; "
          f"+{loaded - empty:.1f} MiB with 100,000 x 100 B keys on all three nodes")
    if paused:
        print(f"pause of the primary to writes accepted through the primary endpoint ({len(paused)} runs, "
              f"automatic failover, default --failover-detection-ms 1000): median "
              f"{statistics.median(paused) * 1000:.0f} ms, min {min(paused) * 1000:.0f} ms, "
              f"max {max(paused) * 1000:.0f} ms")
    else:
        print("pause: not supported by this binary")
    took, p50, p99, mx, n, fork = stall
    print(f"full sync of a new replica from a primary with {SYNC_KEYS:,} keys x 100 B: {took:.2f} s; "
          f"SET latency on the primary meanwhile ({n} writes, 1 ms apart): p50 {p50 * 1000:.2f} ms, "
          f"p99 {p99 * 1000:.2f} ms, max {mx * 1000:.1f} ms; latest_fork_usec {fork}")


if __name__ == "__main__":
    main()
