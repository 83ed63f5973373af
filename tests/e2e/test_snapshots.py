"""Issue 7 end to end: snapshots hold real data, restore into new clusters,
final snapshots on delete, RDB files that redis-server loads and writes."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest
import redis

from conftest import wait_available




def wait_snapshot(ec, name):
    deadline = time.time() + 60
    while time.time() < deadline:
        s = ec.describe_snapshots(SnapshotName=name)["Snapshots"][0]
        if s["SnapshotStatus"] == "available":
            return s
        time.sleep(0.05)
    raise AssertionError(f"snapshot {name} never became available")


def load_types(r, n):
    """n keys: 60 % strings (a tenth with TTLs), the rest hashes, lists, sets and sorted sets."""
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        kind = i % 10
        if kind < 6:
            pipe.set(f"s:{i}", f"v{i}")
            if kind == 0:
                pipe.pexpire(f"s:{i}", 3_600_000)
        elif kind == 6:
            pipe.hset(f"h:{i}", mapping={"a": i, "b": "x"})
        elif kind == 7:
            pipe.rpush(f"l:{i}", i, i + 1, "z")
        elif kind == 8:
            pipe.sadd(f"set:{i}", i, "m")
        else:
            pipe.zadd(f"z:{i}", {"a": i / 3, "b": -1})
        if len(pipe) >= 2000:
            pipe.execute()
    pipe.execute()


def dump_all(r):
    """Every key's type, value and whether it has a TTL, read with pipelines."""
    keys = sorted(r.scan_iter(count=5000))
    readers = {b"string": lambda p, k: p.get(k), b"hash": lambda p, k: p.hgetall(k),
               b"list": lambda p, k: p.lrange(k, 0, -1), b"set": lambda p, k: p.smembers(k),
               b"zset": lambda p, k: p.zrange(k, 0, -1, withscores=True)}
    meta, values = [], []
    for i in range(0, len(keys), 2000):
        chunk = keys[i:i + 2000]
        pipe = r.pipeline(transaction=False)
        for k in chunk:
            pipe.type(k)
            pipe.pttl(k)
        m = pipe.execute()
        for k, t in zip(chunk, m[0::2]):
            readers[t](pipe, k)
        values.extend(pipe.execute())
        meta.extend(m)
    return {k: (t, v if not isinstance(v, set) else sorted(v), ttl > 0)
            for k, t, ttl, v in zip(keys, meta[0::2], meta[1::2], values)}


def endpoint(cc):
    ep = cc["CacheNodes"][0]["Endpoint"]
    return ep["Address"], ep["Port"]


def test_snapshot_and_restore_keep_every_key_and_ttl(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="src", Engine="redis")
    r = redis.Redis(*endpoint(wait_available(ec, "src")))
    load_types(r, 100_000)
    before = dump_all(r)
    assert len(before) == 100_000

    snap = ec.create_snapshot(SnapshotName="snap-1", CacheClusterId="src")["Snapshot"]
    assert snap["SnapshotStatus"] == "creating" and snap["SnapshotSource"] == "manual"
    snap = wait_snapshot(ec, "snap-1")
    assert snap["CacheClusterId"] == "src" and snap["NodeSnapshots"][0]["CacheNodeId"] == "0001"
    assert wait_available(ec, "src")["CacheClusterStatus"] == "available"
    with pytest.raises(ec.exceptions.SnapshotAlreadyExistsFault):
        ec.create_snapshot(SnapshotName="snap-1", CacheClusterId="src")

    ec.create_cache_cluster(CacheClusterId="restored", Engine="redis", SnapshotName="snap-1")
    r2 = redis.Redis(*endpoint(wait_available(ec, "restored")))
    assert dump_all(r2) == before

    ec.copy_snapshot(SourceSnapshotName="snap-1", TargetSnapshotName="snap-copy")
    names = [s["SnapshotName"] for s in ec.describe_snapshots(CacheClusterId="src")["Snapshots"]]
    assert names == ["snap-1", "snap-copy"]
    assert ec.delete_snapshot(SnapshotName="snap-copy")["Snapshot"]["SnapshotStatus"] == "deleting"
    with pytest.raises(ec.exceptions.SnapshotNotFoundFault):
        ec.describe_snapshots(SnapshotName="snap-copy")


def test_snapshot_files_load_into_redis_server_and_back(server):
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server not installed")
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="interop", Engine="redis")
    r = redis.Redis(*endpoint(wait_available(ec, "interop")))
    load_types(r, 2_000)
    before = dump_all(r)
    ec.create_snapshot(SnapshotName="for-redis", CacheClusterId="interop")
    wait_snapshot(ec, "for-redis")
    rdb = os.path.join(server.data_dir, "snapshots", "us-east-1", "for-redis-0001.rdb")
    assert open(rdb, "rb").read(5) == b"REDIS"

    work = tempfile.mkdtemp()
    shutil.copy(rdb, os.path.join(work, "dump.rdb"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    real = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", work,
                             "--dbfilename", "dump.rdb", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        rr = redis.Redis(port=port)
        deadline = time.time() + 10
        while True:
            try:
                if rr.ping():
                    break
            except redis.exceptions.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        assert dump_all(rr) == before, "redis-server loads our snapshot"
        rr.set("written-by-redis-server", "yes")
        rr.save()
        # An RDB written by redis-server seeds a new cluster (SnapshotArns).
        ec.create_cache_cluster(CacheClusterId="seeded", Engine="redis",
                                SnapshotArns=[f"file://{os.path.join(work, 'dump.rdb')}"])
        seeded = redis.Redis(*endpoint(wait_available(ec, "seeded")))
        assert seeded.get("written-by-redis-server") == b"yes"
        assert seeded.dbsize() == rr.dbsize()
    finally:
        real.terminate()
        real.wait()


def test_final_snapshot_on_delete_and_memcached_refusal(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="final", ReplicationGroupDescription="d", NumCacheClusters=2)
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="final",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    g = ec.describe_replication_groups(ReplicationGroupId="final")["ReplicationGroups"][0]
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    redis.Redis(host=ep["Address"], port=ep["Port"]).set("survives", "the delete")
    ec.delete_replication_group(ReplicationGroupId="final", FinalSnapshotIdentifier="final-snap")
    ec.get_waiter("replication_group_deleted").wait(ReplicationGroupId="final",
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    s = ec.describe_snapshots(SnapshotName="final-snap")["Snapshots"][0]
    assert s["ReplicationGroupId"] == "final" and s["SnapshotStatus"] == "available"
    ec.create_replication_group(ReplicationGroupId="again", ReplicationGroupDescription="d",
                                NumCacheClusters=1, SnapshotName="final-snap")
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="again",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    g = ec.describe_replication_groups(ReplicationGroupId="again")["ReplicationGroups"][0]
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    assert redis.Redis(host=ep["Address"], port=ep["Port"]).get("survives") == b"the delete"

    ec.create_cache_cluster(CacheClusterId="mc", Engine="memcached")
    wait_available(ec, "mc")
    with pytest.raises(ec.exceptions.SnapshotFeatureNotSupportedFault):
        ec.create_snapshot(SnapshotName="nope", CacheClusterId="mc")


def test_automatic_snapshots_follow_the_retention_limit(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="daily", Engine="redis", SnapshotRetentionLimit=2)
    wait_available(ec, "daily")
    for _ in range(3):
        req = urllib.request.Request(server.endpoint + "/_elastilite/snapshots/run-window", method="POST")
        urllib.request.urlopen(req, timeout=30).read()
        for s in ec.describe_snapshots(SnapshotSource="automated")["Snapshots"]:
            wait_snapshot(ec, s["SnapshotName"])
        time.sleep(1.1)
    autos = ec.describe_snapshots(CacheClusterId="daily", SnapshotSource="automated")["Snapshots"]
    assert len(autos) == 2 and all(s["SnapshotName"].startswith("automatic.daily-") for s in autos)


def test_persist_data_survives_restarts_and_crashes():
    from conftest import Server
    s = Server("--persist-data", "--persist-interval-secs", "1")
    try:
        ec = s.client()
        ec.create_cache_cluster(CacheClusterId="keeps", Engine="redis")
        r = redis.Redis(*endpoint(wait_available(ec, "keeps")))
        r.set("clean", "shutdown")
        s.stop()
        s.start()
        r = redis.Redis(*endpoint(wait_available(s.client(), "keeps")))
        assert r.get("clean") == b"shutdown"
        r.set("crash", "safe")
        time.sleep(2.5)  # two persistence intervals
        s.proc.kill()
        s.proc.wait()
        s.start()
        r = redis.Redis(*endpoint(wait_available(s.client(), "keeps")))
        assert r.get("crash") == b"safe"
    finally:
        s.stop()
