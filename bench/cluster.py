#!/usr/bin/env python3
"""Cluster-mode numbers: online resharding time with 100,000 keys (3 -> 4 shards
and 4 -> 2), TestFailover time per shard (median of 5, until the client writes to
the shard's slots again), and redis-benchmark --cluster against the group vs one
standalone node.

    cargo build --release && python3 bench/cluster.py [target/release/elastilite]
"""
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from redis.cluster import RedisCluster

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/elastilite"


def wait_group(ec, rg):
    while True:
        g = ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]
        if g["Status"] == "available":
            return g
        time.sleep(0.02)


def bench(args):
    out = subprocess.run(["redis-benchmark", *args, "-t", "set,get", "-n", "200000", "-q"],
                         capture_output=True, text=True, timeout=600).stdout
    return " | ".join(l.split("\r")[-1].strip() for l in out.splitlines() if "requests per second" in l)


def main():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--data-dir", tempfile.mkdtemp(),
                             "--loopback-base", "127.81.0.1"], stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(500):
        try:
            urllib.request.urlopen(endpoint + "/_elastilite/health", timeout=1)
            break
        except OSError:
            time.sleep(0.02)
    ec = boto3.client("elasticache", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="t", aws_secret_access_key="t")
    try:
        ec.create_replication_group(ReplicationGroupId="bench", ReplicationGroupDescription="b",
                                    NumNodeGroups=3, ReplicasPerNodeGroup=1,
                                    CacheParameterGroupName="default.redis7.cluster.on")
        g = wait_group(ec, "bench")
        cfg = g["ConfigurationEndpoint"]
        rc = RedisCluster(host=cfg["Address"], port=cfg["Port"])
        pipe = rc.pipeline(transaction=False)
        for i in range(100_000):
            pipe.set(f"key:{i}", "x" * 100)
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        for count, extra in ((4, {}), (2, {"NodeGroupsToRemove": ["0003", "0004"]})):
            t = time.monotonic()
            ec.modify_replication_group_shard_configuration(
                ReplicationGroupId="bench", NodeGroupCount=count, ApplyImmediately=True, **extra)
            time.sleep(0.05)
            wait_group(ec, "bench")
            print(f"resharding to {count} shards with 100,000 keys: {time.monotonic() - t:.2f} s")
        rc = RedisCluster(host=cfg["Address"], port=cfg["Port"])
        assert rc.dbsize(target_nodes=RedisCluster.PRIMARIES) == 100_000
        g = wait_group(ec, "bench")
        ranges = [tuple(map(int, (r.split("-") + [r])[:2])) for r in g["NodeGroups"][1]["Slots"].split(",")]
        probe = next(f"probe:{i}" for i in range(100_000)
                     if any(a <= rc.keyslot(f"probe:{i}") <= b for a, b in ranges))
        times = []
        for _ in range(5):
            old = wait_group(ec, "bench")["NodeGroups"][1]["NodeGroupMembers"][0]["CacheClusterId"]
            t = time.monotonic()
            ec.test_failover(ReplicationGroupId="bench", NodeGroupId="0002")
            # Until the new primary is described and a write to its slots succeeds.
            while True:
                g = ec.describe_replication_groups(ReplicationGroupId="bench")["ReplicationGroups"][0]
                if g["NodeGroups"][1]["NodeGroupMembers"][0]["CacheClusterId"] != old:
                    break
                time.sleep(0.005)
            while True:
                try:
                    rc.set(probe, "v")
                    break
                except Exception:  # noqa: BLE001
                    time.sleep(0.005)
            times.append(time.monotonic() - t)
        print(f"shard failover until writes succeed: median {statistics.median(times) * 1000:.0f} ms")
        g = wait_group(ec, "bench")
        print("redis-benchmark --cluster (2 shards):", bench(["--cluster", "-h", cfg["Address"], "-p", str(cfg["Port"])]))
        ec.create_cache_cluster(CacheClusterId="single", Engine="redis", NumCacheNodes=1)
        while True:
            c = ec.describe_cache_clusters(CacheClusterId="single", ShowCacheNodeInfo=True)["CacheClusters"][0]
            if c["CacheClusterStatus"] == "available":
                break
            time.sleep(0.02)
        ep = c["CacheNodes"][0]["Endpoint"]
        print("redis-benchmark single node:          ", bench(["-h", ep["Address"], "-p", str(ep["Port"])]))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
