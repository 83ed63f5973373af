#!/usr/bin/env python3
"""Replication-group numbers: TestFailover time (median of 10) until the primary
endpoint accepts writes on the new primary, and the server's memory for a 3-node
group (empty, and with 100,000 keys of 100 B replicated to both replicas).

    cargo build --release && python3 bench/replication.py [target/release/elastilite]
"""
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import redis

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/elastilite"


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
    proc.terminate()
    proc.wait()
    print(f"binary: {BIN}")
    print(f"TestFailover to writes accepted through the primary endpoint (10 runs): median "
          f"{statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    print(f"server RSS: {base:.1f} MiB idle; +{empty - base:.1f} MiB for an empty 3-node group; "
          f"+{loaded - empty:.1f} MiB with 100,000 x 100 B keys on all three nodes")


if __name__ == "__main__":
    main()
