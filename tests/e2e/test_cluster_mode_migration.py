"""ModifyReplicationGroup ClusterMode: the online migration of a cluster-mode-disabled
group to cluster mode enabled (disabled -> compatible -> enabled), with plain redis-py
and RedisCluster clients on the live group, then resharding of the migrated group."""
import time

import pytest
import redis
from redis.cluster import RedisCluster

from test_cluster_mode import line, raw, wait_group
from test_snapshots import wait_snapshot

KEYS = 600


def create_plain(ec, rg, **kw):
    ec.create_replication_group(ReplicationGroupId=rg, ReplicationGroupDescription="migrate me",
                                NumCacheClusters=2, AutomaticFailoverEnabled=True, **kw)
    return wait_group(ec, rg)


def error_code(ec, **kw):
    with pytest.raises(ec.exceptions.ClientError) as e:
        ec.modify_replication_group(ApplyImmediately=True, **kw)
    return e.value.response["Error"]["Code"]


def plain(ep):
    return redis.Redis(host=ep["Address"], port=ep["Port"], decode_responses=True)


def wait_replicated(r, key, value, timeout=10):
    deadline = time.time() + timeout
    while r.get(key) != value:
        assert time.time() < deadline, f"{key} never reached the replica"
        time.sleep(0.05)


def test_disabled_to_compatible_to_enabled_then_reshard(server):
    ec = server.client()
    g = create_plain(ec, "mig")
    assert g["ClusterMode"] == "disabled" and g["ClusterEnabled"] is False
    assert "ConfigurationEndpoint" not in g
    ng = g["NodeGroups"][0]
    primary_ep, reader_ep = ng["PrimaryEndpoint"], ng["ReaderEndpoint"]
    p = plain(primary_ep)
    for i in range(KEYS):
        p.set(f"k{i}", f"v{i}")

    # Not straight to enabled, and nothing else may change in the same request.
    assert error_code(ec, ReplicationGroupId="mig", ClusterMode="enabled") == "InvalidParameterCombination"
    assert error_code(ec, ReplicationGroupId="mig", ClusterMode="compatible",
                      SnapshotRetentionLimit=3) == "InvalidParameterCombination"
    assert error_code(ec, ReplicationGroupId="mig", ClusterMode="compatible",
                      CacheParameterGroupName="default.redis7") == "InvalidParameterCombination"

    out = ec.modify_replication_group(ReplicationGroupId="mig", ClusterMode="compatible",
                                      ApplyImmediately=True)["ReplicationGroup"]
    assert out["Status"] == "modifying" and out["ClusterMode"] == "compatible"
    g = wait_group(ec, "mig")
    assert g["ClusterMode"] == "compatible" and g["ClusterEnabled"] is True
    assert g["MemberClusters"] == ["mig-001", "mig-002"]
    [ng] = g["NodeGroups"]
    assert ng["NodeGroupId"] == "0001" and ng["Slots"] == "0-16383"
    # Plain clients keep their endpoints; cluster clients get the configuration endpoint.
    assert ng["PrimaryEndpoint"] == primary_ep and ng["ReaderEndpoint"] == reader_ep
    cfg = g["ConfigurationEndpoint"]
    assert set(cfg) == {"Address", "Port"} and cfg != primary_ep
    pgs = {c["CacheParameterGroup"]["CacheParameterGroupName"]
           for c in ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
           if c.get("ReplicationGroupId") == "mig"}
    assert pgs == {"default.redis7.cluster.on"}

    # Compatible: the same connection (nothing restarted) still works, keys of every
    # slot and cross-slot commands included; the reader serves reads without -MOVED.
    assert p.get("k1") == "v1"
    assert p.mget("k1", "k2", "k3") == ["v1", "v2", "v3"]
    p.set("during-compatible", "yes")
    r = plain(reader_ep)
    wait_replicated(r, "during-compatible", "yes")
    assert r.get("k5") == "v5"
    assert r.execute_command("INFO", "cluster")["cluster_enabled"] == 1
    # Cluster commands answer: one shard with every slot.
    slots = raw(cfg, "CLUSTER", "SLOTS")
    assert len(slots) == 1 and slots[0][0] == 0 and slots[0][1] == 16383 and len(slots[0]) == 4
    assert raw(cfg, "CLUSTER", "INFO").decode().startswith("cluster_state:ok")
    assert line(cfg, "SELECT", "1") == "-ERR SELECT is not allowed in cluster mode"
    rc = RedisCluster(host=cfg["Address"], port=cfg["Port"], decode_responses=True)
    assert all(rc.get(f"k{i}") == f"v{i}" for i in range(KEYS))
    rc.set("from-cluster-client", "1")
    assert p.get("from-cluster-client") == "1"
    # A snapshot in compatible mode holds the one shard and seeds a two-shard group.
    ec.create_snapshot(ReplicationGroupId="mig", SnapshotName="mig-compat")
    snap = wait_snapshot(ec, "mig-compat")
    assert [n["NodeGroupId"] for n in snap["NodeSnapshots"]] == ["0001"]
    wait_group(ec, "mig")
    ec.create_replication_group(
        ReplicationGroupId="mig-copy", ReplicationGroupDescription="from compatible", SnapshotName="mig-compat",
        NumNodeGroups=2, ReplicasPerNodeGroup=0, CacheParameterGroupName="default.redis7.cluster.on")
    copy = wait_group(ec, "mig-copy")
    ccfg = copy["ConfigurationEndpoint"]
    rcc = RedisCluster(host=ccfg["Address"], port=ccfg["Port"], decode_responses=True)
    assert all(rcc.get(f"k{i}") == f"v{i}" for i in range(KEYS)) and rcc.get("from-cluster-client") == "1"

    # Not allowed in compatible mode: scaling and going back.
    with pytest.raises(ec.exceptions.InvalidReplicationGroupStateFault):
        ec.modify_replication_group_shard_configuration(
            ReplicationGroupId="mig", NodeGroupCount=2, ApplyImmediately=True)
    with pytest.raises(ec.exceptions.InvalidReplicationGroupStateFault):
        ec.increase_replica_count(ReplicationGroupId="mig", NewReplicaCount=2, ApplyImmediately=True)
    assert error_code(ec, ReplicationGroupId="mig", ClusterMode="disabled") == "InvalidParameterCombination"

    ec.modify_replication_group(ReplicationGroupId="mig", ClusterMode="enabled", ApplyImmediately=True)
    g = wait_group(ec, "mig")
    assert g["ClusterMode"] == "enabled" and g["ClusterEnabled"] is True
    [ng] = g["NodeGroups"]
    assert ng["Slots"] == "0-16383"
    assert "PrimaryEndpoint" not in ng and "ReaderEndpoint" not in ng
    assert g["ConfigurationEndpoint"] == cfg
    # Cluster semantics now: a replica redirects, cross-slot is refused.
    replica = next(m["ReadEndpoint"] for m in ng["NodeGroupMembers"] if m["CacheClusterId"] == "mig-002")
    assert line(replica, "GET", "k1").startswith("-MOVED ")
    assert line(cfg, "MGET", "k1", "k2").startswith("-CROSSSLOT")
    assert all(rc.get(f"k{i}") == f"v{i}" for i in range(KEYS))
    for mode in ("disabled", "compatible"):
        assert error_code(ec, ReplicationGroupId="mig", ClusterMode=mode) == "InvalidParameterCombination"

    # From here on it is an ordinary cluster-mode group: reshard, fail over, add replicas.
    ec.modify_replication_group_shard_configuration(
        ReplicationGroupId="mig", NodeGroupCount=2, ApplyImmediately=True)
    g = wait_group(ec, "mig")
    assert {n["NodeGroupId"]: n["Slots"] for n in g["NodeGroups"]} == {"0001": "0-8191", "0002": "8192-16383"}
    rc = RedisCluster(host=cfg["Address"], port=cfg["Port"], decode_responses=True)
    assert all(rc.get(f"k{i}") == f"v{i}" for i in range(KEYS))
    assert rc.get("during-compatible") == "yes" and rc.get("from-cluster-client") == "1"
    ec.test_failover(ReplicationGroupId="mig", NodeGroupId="0001")
    deadline = time.time() + 30
    while True:  # the failover runs in the background; the group stays available
        g = wait_group(ec, "mig")
        first = next(n for n in g["NodeGroups"] if n["NodeGroupId"] == "0001")
        if first["NodeGroupMembers"][0]["CacheClusterId"] == "mig-002":
            break
        assert time.time() < deadline, "failover of node group 0001 did not happen"
        time.sleep(0.05)
    ec.increase_replica_count(ReplicationGroupId="mig", NewReplicaCount=2, ApplyImmediately=True)
    g = wait_group(ec, "mig")
    assert "mig-0001-003" in g["MemberClusters"]
    rc = RedisCluster(host=cfg["Address"], port=cfg["Port"], decode_responses=True)
    assert all(rc.get(f"k{i}") == f"v{i}" for i in range(KEYS))


def test_migration_preconditions(server):
    ec = server.client()
    # No replica (and so no automatic failover).
    ec.create_replication_group(ReplicationGroupId="solo", ReplicationGroupDescription="d", NumCacheClusters=1)
    wait_group(ec, "solo")
    assert error_code(ec, ReplicationGroupId="solo", ClusterMode="compatible") == "InvalidReplicationGroupState"
    # Engine older than 7.0.
    create_plain(ec, "old", EngineVersion="6.2")
    assert error_code(ec, ReplicationGroupId="old", ClusterMode="compatible") == "InvalidParameterCombination"
    # Keys outside database 0.
    g = create_plain(ec, "dbs")
    r = redis.Redis(host=g["NodeGroups"][0]["PrimaryEndpoint"]["Address"],
                    port=g["NodeGroups"][0]["PrimaryEndpoint"]["Port"], db=3)
    r.set("elsewhere", "1")
    time.sleep(0.5)  # the node publishes its key counts every ~100 ms
    assert error_code(ec, ReplicationGroupId="dbs", ClusterMode="compatible") == "InvalidReplicationGroupState"
    r.delete("elsewhere")
    time.sleep(0.5)
    assert error_code(ec, ReplicationGroupId="dbs", ClusterMode="bogus") == "InvalidParameterValue"
    # An explicit cluster-enabled parameter group of the family is accepted.
    ec.create_cache_parameter_group(CacheParameterGroupName="mine-on", CacheParameterGroupFamily="redis7.cluster.on",
                                    Description="d")
    ec.modify_replication_group(ReplicationGroupId="dbs", ClusterMode="compatible",
                                CacheParameterGroupName="mine-on", ApplyImmediately=True)
    g = wait_group(ec, "dbs")
    assert g["ClusterMode"] == "compatible"
    c = ec.describe_cache_clusters(CacheClusterId="dbs-001")["CacheClusters"][0]
    assert c["CacheParameterGroup"]["CacheParameterGroupName"] == "mine-on"
    # Survives a restart of elastilite in compatible mode: both kinds of endpoint answer.
    server.stop()
    server.start()
    ec = server.client()
    g = wait_group(ec, "dbs")
    assert g["ClusterMode"] == "compatible"
    assert plain(g["NodeGroups"][0]["PrimaryEndpoint"]).ping()
    assert raw(g["ConfigurationEndpoint"], "CLUSTER", "SLOTS")[0][:2] == [0, 16383]
    # A failover in compatible mode: the primary endpoint follows the new primary and
    # the cluster topology names it too.
    p = plain(g["NodeGroups"][0]["PrimaryEndpoint"])
    p.set("before-failover", "1")
    ec.test_failover(ReplicationGroupId="dbs", NodeGroupId="0001")
    deadline = time.time() + 30
    while True:
        g = wait_group(ec, "dbs")
        members = g["NodeGroups"][0]["NodeGroupMembers"]
        if next(m for m in members if m["CurrentRole"] == "primary")["CacheClusterId"] == "dbs-002":
            break
        assert time.time() < deadline, "failover did not happen"
        time.sleep(0.05)
    deadline = time.time() + 10
    while True:
        try:
            p = plain(g["NodeGroups"][0]["PrimaryEndpoint"])
            p.set("after-failover", "1")
            break
        except (redis.ConnectionError, redis.ReadOnlyError):
            assert time.time() < deadline
            time.sleep(0.05)
    assert p.get("before-failover") == "1"
    new_primary = next(m for m in members if m["CacheClusterId"] == "dbs-002")["ReadEndpoint"]
    slots = raw(g["ConfigurationEndpoint"], "CLUSTER", "SLOTS")
    assert slots[0][2][1] == new_primary["Port"] and slots[0][2][0].decode() == new_primary["Address"]
    rc = RedisCluster(host=g["ConfigurationEndpoint"]["Address"], port=g["ConfigurationEndpoint"]["Port"],
                      decode_responses=True)
    assert rc.get("after-failover") == "1"
