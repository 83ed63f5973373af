"""Snapshots of cluster-mode-enabled replication groups, end to end: one RDB per
shard, restored into groups with the same or another shard count (every key
lands on the shard owning its slot), seeding from cluster-mode-disabled
snapshots, copy/export/delete of the multi-file snapshots, final and automatic
snapshots."""
import os
import time
import urllib.request

import pytest
import redis
from redis.cluster import RedisCluster

from test_cluster_mode import cluster_client, create, slot_ranges, wait_group
from test_snapshots import wait_snapshot

N = 1000


def key_set():
    """Plain keys spread over every slot, hash-tagged keys that must stay together,
    one key per type and one with a TTL."""
    keys = {f"k:{i}": f"v{i}" for i in range(N - 10)}
    keys.update({f"{{user7}}:f{i}": f"tag{i}" for i in range(10)})
    return keys


def write(rc, keys):
    pipe = rc.pipeline()
    for k, v in keys.items():
        pipe.set(k, v)
    pipe.execute()
    rc.hset("type:hash", mapping={"a": "1", "b": "2"})
    rc.rpush("type:list", "x", "y", "z")
    rc.set("type:ttl", "soon", ex=3600)


def check_all(rc, keys):
    pipe = rc.pipeline()
    for k in keys:
        pipe.get(k)
    got = pipe.execute()
    missing = [k for k, v in zip(keys, got) if v is None]
    assert not missing, f"{len(missing)} keys missing, e.g. {missing[:5]}"
    assert [v.decode() for v in got] == list(keys.values())
    assert rc.hgetall("type:hash") == {b"a": b"1", b"b": b"2"}
    assert rc.lrange("type:list", 0, -1) == [b"x", b"y", b"z"]
    assert 3000 < rc.ttl("type:ttl") <= 3600


def primaries(g):
    # DescribeReplicationGroups lists each node group's primary first.
    return [ng["NodeGroupMembers"][0]["ReadEndpoint"] for ng in g["NodeGroups"]]


def per_node_keys(g):
    """DBSIZE of every shard primary: their sum is the key count exactly when no
    key was loaded into two shards."""
    return [redis.Redis(host=ep["Address"], port=ep["Port"]).dbsize() for ep in primaries(g)]


def test_cluster_mode_snapshot_restore_into_other_layouts(server):
    ec = server.client()
    g = create(ec, "cmsrc", shards=3, replicas=1)
    rc = cluster_client(g)
    keys = key_set()
    write(rc, keys)
    total = len(keys) + 3

    snap = ec.create_snapshot(ReplicationGroupId="cmsrc", SnapshotName="cm-snap")["Snapshot"]
    assert snap["SnapshotStatus"] == "creating"
    # The shards keep serving while they are snapshotted (whether this write is in
    # the snapshot depends on timing; the key counts below allow for either).
    rc.set("during", "snapshot")
    assert rc.get("during") == b"snapshot"
    snap = wait_snapshot(ec, "cm-snap")
    rc.delete("during")
    # Written after the snapshot: must not come back in a restore.
    rc.set("after-snapshot", "x")

    assert snap["ReplicationGroupId"] == "cmsrc"
    assert snap["ReplicationGroupDescription"] == "cluster test"
    assert snap["NumNodeGroups"] == 3 and snap["AutomaticFailover"] == "enabled"
    assert snap["CacheParameterGroupName"] == "default.redis7.cluster.on"
    assert snap["DataTiering"] == "disabled"
    assert "CacheClusterId" not in snap and "NumCacheNodes" not in snap
    nodes = snap["NodeSnapshots"]
    assert [n["NodeGroupId"] for n in nodes] == ["0001", "0002", "0003"]
    assert [n["CacheClusterId"] for n in nodes] == ["cmsrc-0001-001", "cmsrc-0002-001", "cmsrc-0003-001"]
    for n in nodes:
        assert n["CacheNodeId"] == "0001" and n["CacheSize"].endswith(" MB")
        assert n["SnapshotCreateTime"] and n["CacheNodeCreateTime"]
        assert "NodeGroupConfiguration" not in n
        f = os.path.join(server.data_dir, "snapshots", "us-east-1", f"cm-snap-{n['NodeGroupId']}.rdb")
        assert open(f, "rb").read(5) == b"REDIS"

    shown = ec.describe_snapshots(SnapshotName="cm-snap", ShowNodeGroupConfig=True)["Snapshots"][0]
    configs = [n["NodeGroupConfiguration"] for n in shown["NodeSnapshots"]]
    assert [(c["NodeGroupId"], c["Slots"], c["ReplicaCount"]) for c in configs] == [
        ("0001", "0-5460", 1), ("0002", "5461-10922", 1), ("0003", "10923-16383", 1)]
    assert all(c["PrimaryAvailabilityZone"].startswith("us-east-1") for c in configs)
    assert all(len(c["ReplicaAvailabilityZones"]) == 1 for c in configs)
    assert [s["SnapshotName"] for s in ec.describe_snapshots(ReplicationGroupId="cmsrc")["Snapshots"]] == ["cm-snap"]
    assert [s["SnapshotName"] for s in ec.describe_snapshots(CacheClusterId="cmsrc-0002-001")["Snapshots"]] == ["cm-snap"]

    # Into two shards: the keys of the three files are redistributed by slot.
    ec.create_replication_group(
        ReplicationGroupId="cmtwo", ReplicationGroupDescription="two shards", SnapshotName="cm-snap",
        NumNodeGroups=2, ReplicasPerNodeGroup=0, CacheParameterGroupName="default.redis7.cluster.on")
    two = wait_group(ec, "cmtwo")
    assert slot_ranges(two) == {"0001": "0-8191", "0002": "8192-16383"}
    rc2 = cluster_client(two)
    check_all(rc2, keys)
    assert rc2.get("after-snapshot") is None
    sizes = per_node_keys(two)
    assert len(sizes) == 2 and all(s > 0 for s in sizes)
    assert sum(sizes) == total + rc2.exists("during")

    # Only the snapshot: its layout (three shards, same slots, one replica each).
    ec.create_replication_group(ReplicationGroupId="cmsame", ReplicationGroupDescription="same",
                                SnapshotName="cm-snap")
    same = wait_group(ec, "cmsame")
    assert same["ClusterEnabled"] is True
    assert slot_ranges(same) == slot_ranges(g)
    assert all(len(ng["NodeGroupMembers"]) == 2 for ng in same["NodeGroups"])
    rc3 = cluster_client(same)
    check_all(rc3, keys)
    assert sum(per_node_keys(same)) == total + rc3.exists("during")
    # The replicas got the restored data through replication.
    replica = next(m["ReadEndpoint"] for m in same["NodeGroups"][0]["NodeGroupMembers"]
                   if m["CacheClusterId"].endswith("-002"))
    primary_keys = per_node_keys(same)[0]
    deadline = time.time() + 30
    while redis.Redis(host=replica["Address"], port=replica["Port"]).dbsize() != primary_keys:
        assert time.time() < deadline, "replica never caught up with the restored primary"
        time.sleep(0.1)

    # Four shards with explicit, uneven slots.
    ec.create_replication_group(
        ReplicationGroupId="cmfour", ReplicationGroupDescription="four", SnapshotName="cm-snap",
        NumNodeGroups=4, CacheParameterGroupName="default.redis7.cluster.on",
        NodeGroupConfiguration=[{"NodeGroupId": "a", "Slots": "0-99", "ReplicaCount": 0},
                                {"NodeGroupId": "b", "Slots": "100-9000", "ReplicaCount": 0},
                                {"NodeGroupId": "c", "Slots": "9001-9001", "ReplicaCount": 0},
                                {"NodeGroupId": "d", "Slots": "9002-16383", "ReplicaCount": 0}])
    four = wait_group(ec, "cmfour")
    rc4 = cluster_client(four)
    check_all(rc4, keys)
    assert sum(per_node_keys(four)) == total + rc4.exists("during")

    # A cluster-mode-enabled snapshot does not seed a cluster-mode-disabled cluster or group.
    with pytest.raises(ec.exceptions.ClientError) as e:
        ec.create_replication_group(ReplicationGroupId="cmd", ReplicationGroupDescription="d",
                                    SnapshotName="cm-snap", ClusterMode="disabled", NumCacheClusters=1)
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"
    with pytest.raises(ec.exceptions.ClientError) as e:
        ec.create_cache_cluster(CacheClusterId="single", Engine="redis", SnapshotName="cm-snap")
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"


def test_cluster_mode_snapshot_copy_export_delete_and_final(server):
    ec = server.client()
    # At-rest encryption: the per-shard files are sealed; every restoring shard
    # opens them at once.
    g = create(ec, "cmfin", shards=3, replicas=0, AtRestEncryptionEnabled=True)
    rc = cluster_client(g)
    keys = key_set()
    write(rc, keys)
    ec.create_snapshot(ReplicationGroupId="cmfin", SnapshotName="cmfin-1")
    wait_snapshot(ec, "cmfin-1")
    snap_dir = os.path.join(server.data_dir, "snapshots", "us-east-1")
    for ng in ("0001", "0002", "0003"):
        assert open(os.path.join(snap_dir, f"cmfin-1-{ng}.rdb"), "rb").read(5) != b"REDIS"

    copy = ec.copy_snapshot(SourceSnapshotName="cmfin-1", TargetSnapshotName="cmfin-copy")["Snapshot"]
    assert copy["NumNodeGroups"] == 3 and len(copy["NodeSnapshots"]) == 3
    for ng in ("0001", "0002", "0003"):
        assert os.path.isfile(os.path.join(snap_dir, f"cmfin-copy-{ng}.rdb"))
    # Export: one plain RDB per shard in the bucket.
    ec.copy_snapshot(SourceSnapshotName="cmfin-1", TargetSnapshotName="exported", TargetBucket="bkt")
    exported = [os.path.join(server.data_dir, "s3", "bkt", f"exported-{ng}.rdb") for ng in ("0001", "0002", "0003")]
    assert all(open(f, "rb").read(5) == b"REDIS" for f in exported)

    # The exported files seed a two-shard group through SnapshotArns.
    ec.create_replication_group(
        ReplicationGroupId="cmarns", ReplicationGroupDescription="from files", NumNodeGroups=2,
        CacheParameterGroupName="default.redis7.cluster.on",
        SnapshotArns=[f"arn:aws:s3:::bkt/exported-{ng}.rdb" for ng in ("0001", "0002", "0003")])
    arns = wait_group(ec, "cmarns")
    check_all(cluster_client(arns), keys)

    ec.delete_snapshot(SnapshotName="cmfin-copy")
    with pytest.raises(ec.exceptions.SnapshotNotFoundFault):
        ec.describe_snapshots(SnapshotName="cmfin-copy")
    assert not any(f.startswith("cmfin-copy-") for f in os.listdir(snap_dir))

    rc.set("last-write", "kept")
    ec.delete_replication_group(ReplicationGroupId="cmfin", FinalSnapshotIdentifier="cmfin-final")
    ec.get_waiter("replication_group_deleted").wait(ReplicationGroupId="cmfin",
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    final = ec.describe_snapshots(SnapshotName="cmfin-final", ShowNodeGroupConfig=True)["Snapshots"][0]
    assert final["SnapshotStatus"] == "available" and final["NumNodeGroups"] == 3
    assert [n["NodeGroupConfiguration"]["ReplicaCount"] for n in final["NodeSnapshots"]] == [0, 0, 0]
    ec.create_replication_group(ReplicationGroupId="cmback", ReplicationGroupDescription="back",
                                SnapshotName="cmfin-final")
    back = wait_group(ec, "cmback")
    rb = cluster_client(back)
    check_all(rb, keys)
    assert rb.get("last-write") == b"kept"


def test_cluster_mode_disabled_snapshot_seeds_a_sharded_group(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="plain", ReplicationGroupDescription="d", NumCacheClusters=1)
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="plain",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ep = ec.describe_replication_groups(ReplicationGroupId="plain")["ReplicationGroups"][0]["NodeGroups"][0]["PrimaryEndpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"])
    keys = key_set()
    write(r, keys)
    ec.create_snapshot(ReplicationGroupId="plain", SnapshotName="plain-snap")
    snap = wait_snapshot(ec, "plain-snap")
    assert snap["NumNodeGroups"] == 1 and snap["NumCacheNodes"] == 1
    ec.create_replication_group(
        ReplicationGroupId="sharded", ReplicationGroupDescription="seeded", SnapshotName="plain-snap",
        NumNodeGroups=3, CacheParameterGroupName="default.redis7.cluster.on")
    g = wait_group(ec, "sharded")
    check_all(cluster_client(g), keys)
    assert sum(per_node_keys(g)) == len(keys) + 3

    # A key outside database 0 cannot go into a cluster: the restore fails, loudly.
    r1 = redis.Redis(host=ep["Address"], port=ep["Port"], db=1)
    r1.set("elsewhere", "db1")
    ec.create_snapshot(ReplicationGroupId="plain", SnapshotName="two-dbs")
    wait_snapshot(ec, "two-dbs")
    ec.create_replication_group(
        ReplicationGroupId="bad", ReplicationGroupDescription="db1", SnapshotName="two-dbs",
        NumNodeGroups=2, CacheParameterGroupName="default.redis7.cluster.on")
    deadline = time.time() + 60
    while True:
        statuses = {c["CacheClusterStatus"] for c in ec.describe_cache_clusters()["CacheClusters"]
                    if c["CacheClusterId"].startswith("bad-")}
        if statuses == {"restore-failed"}:
            break
        assert time.time() < deadline, statuses
        time.sleep(0.2)
    wait_group(ec, "bad")
    time.sleep(0.5)
    statuses = {c["CacheClusterStatus"] for c in ec.describe_cache_clusters()["CacheClusters"]
                if c["CacheClusterId"].startswith("bad-")}
    assert statuses == {"restore-failed"}, "a failed restore is not reported as available"
    events = ec.describe_events(SourceIdentifier="bad-0001-001", SourceType="cache-cluster")["Events"]
    assert any("database 1" in e["Message"] for e in events), events


def test_cluster_mode_automatic_snapshots_and_serverless_restore(server, tmp_path):
    ec = server.client()
    g = create(ec, "cmauto", shards=2, replicas=0, SnapshotRetentionLimit=1)
    rc = cluster_client(g)
    keys = key_set()
    write(rc, keys)
    rc.set("auto", "yes")
    req = urllib.request.Request(server.endpoint + "/_elastilite/snapshots/run-window", method="POST")
    urllib.request.urlopen(req, timeout=30).read()
    autos = ec.describe_snapshots(ReplicationGroupId="cmauto", SnapshotSource="automated")["Snapshots"]
    assert len(autos) == 1
    s = wait_snapshot(ec, autos[0]["SnapshotName"])
    assert s["NumNodeGroups"] == 2 and [n["NodeGroupId"] for n in s["NodeSnapshots"]] == ["0001", "0002"]
    wait_group(ec, "cmauto")
    ec.create_replication_group(ReplicationGroupId="cmauto2", ReplicationGroupDescription="d",
                                SnapshotName=s["SnapshotName"])
    assert cluster_client(wait_group(ec, "cmauto2")).get("auto") == b"yes"

    # A serverless cache restored from it gets every shard's keys.
    from test_serverless import ca_file, tls_client, wait_cache
    ec.create_serverless_cache(ServerlessCacheName="fromcm", Engine="redis",
                               SnapshotArnsToRestore=[s["ARN"]])
    sc = tls_client(wait_cache(ec, "fromcm")["Endpoint"], ca_file(server, tmp_path))
    assert sc.dbsize() == len(keys) + 4
    assert sc.get("auto") == b"yes" and sc.get("k:5") == b"v5" and sc.get("{user7}:f3") == b"tag3"
