"""Issue 11: global datastores across this emulator's regions, online migration
from a real redis-server, reserved cache nodes."""
import shutil
import subprocess
import time

import pytest
import redis

from conftest import free_port


def wait_group(ec, rg):
    ec.get_waiter("replication_group_available").wait(
        ReplicationGroupId=rg, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]


def primary_client(group):
    ep = group["NodeGroups"][0]["PrimaryEndpoint"]
    return redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5)


def eventually(fn, timeout=10):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value or time.time() > deadline:
            return value
        time.sleep(0.05)


def test_global_datastore_replicates_across_regions_and_fails_over(server):
    east, west = server.client("us-east-1"), server.client("us-west-2")
    east.create_replication_group(ReplicationGroupId="orders", ReplicationGroupDescription="orders",
                                  CacheNodeType="cache.r6g.large", NumCacheClusters=2,
                                  AutomaticFailoverEnabled=True)
    primary = wait_group(east, "orders")

    with pytest.raises(east.exceptions.InvalidParameterValueException):
        east.create_replication_group(ReplicationGroupId="small", ReplicationGroupDescription="t",
                                      CacheNodeType="cache.t3.micro")
        wait_group(east, "small")
        east.create_global_replication_group(GlobalReplicationGroupIdSuffix="x", PrimaryReplicationGroupId="small")
    g = east.create_global_replication_group(GlobalReplicationGroupIdSuffix="orders-global",
                                             GlobalReplicationGroupDescription="all regions",
                                             PrimaryReplicationGroupId="orders")["GlobalReplicationGroup"]
    gid = g["GlobalReplicationGroupId"]
    assert gid.endswith("-orders-global") and len(gid.split("-")[0]) == 5
    assert g["Status"] == "primary-only" and g["ARN"].endswith(f":globalreplicationgroup:{gid}")
    with pytest.raises(east.exceptions.GlobalReplicationGroupAlreadyExistsFault):
        east.create_global_replication_group(GlobalReplicationGroupIdSuffix="orders-global",
                                             PrimaryReplicationGroupId="orders")

    # The secondary in another region takes its settings from the primary.
    west.create_replication_group(ReplicationGroupId="orders-west", ReplicationGroupDescription="west",
                                  GlobalReplicationGroupId=gid, NumCacheClusters=1)
    secondary = wait_group(west, "orders-west")
    assert secondary["GlobalReplicationGroupInfo"] == {
        "GlobalReplicationGroupId": gid, "GlobalReplicationGroupMemberRole": "SECONDARY"}
    assert secondary["CacheNodeType"] == "cache.r6g.large"
    assert wait_group(east, "orders")["GlobalReplicationGroupInfo"]["GlobalReplicationGroupMemberRole"] == "PRIMARY"

    # Real replication: writes in us-east-1 appear in us-west-2, which is read-only.
    p, s = primary_client(primary), primary_client(secondary)
    p.set("order:1", "shipped")
    assert eventually(lambda: s.get("order:1") == b"shipped")
    with pytest.raises(redis.exceptions.ReadOnlyError):
        s.set("order:2", "x")

    described = west.describe_global_replication_groups(GlobalReplicationGroupId=gid, ShowMemberInfo=True)
    g = described["GlobalReplicationGroups"][0]
    assert g["Status"] == "available"
    assert [(m["ReplicationGroupId"], m["ReplicationGroupRegion"], m["Role"]) for m in g["Members"]] == [
        ("orders", "us-east-1", "PRIMARY"), ("orders-west", "us-west-2", "SECONDARY")]

    # A failover inside the primary region: the secondary follows the new primary.
    east.test_failover(ReplicationGroupId="orders", NodeGroupId="0001")
    wait_group(east, "orders")
    p = primary_client(east.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0])
    assert eventually(lambda: _try_set(p, "after-local-failover", "1"))
    assert eventually(lambda: s.get("after-local-failover") == b"1")

    # Global failover: us-west-2 becomes primary and us-east-1 replicates from it.
    east.failover_global_replication_group(GlobalReplicationGroupId=gid, PrimaryRegion="us-west-2",
                                           PrimaryReplicationGroupId="orders-west")
    s.set("order:3", "from-west")
    assert eventually(lambda: p.get("order:3") == b"from-west")
    with pytest.raises(redis.exceptions.ReadOnlyError):
        p.set("order:4", "x")

    for op in ("increase_node_groups_in_global_replication_group",
               "decrease_node_groups_in_global_replication_group"):
        with pytest.raises(east.exceptions.InvalidGlobalReplicationGroupStateFault):
            getattr(east, op)(GlobalReplicationGroupId=gid, NodeGroupCount=2, ApplyImmediately=True)
    with pytest.raises(east.exceptions.InvalidGlobalReplicationGroupStateFault):
        east.rebalance_slots_in_global_replication_group(GlobalReplicationGroupId=gid, ApplyImmediately=True)
    with pytest.raises(east.exceptions.InvalidGlobalReplicationGroupStateFault):
        east.delete_global_replication_group(GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True)
    with pytest.raises(east.exceptions.InvalidReplicationGroupStateFault):
        east.delete_replication_group(ReplicationGroupId="orders")

    east.modify_global_replication_group(GlobalReplicationGroupId=gid, ApplyImmediately=True,
                                         GlobalReplicationGroupDescription="renamed",
                                         CacheNodeType="cache.r6g.xlarge")
    assert wait_group(east, "orders")["CacheNodeType"] == "cache.r6g.xlarge"
    assert wait_group(west, "orders-west")["CacheNodeType"] == "cache.r6g.xlarge"
    with pytest.raises(west.exceptions.InvalidGlobalReplicationGroupStateFault):
        west.create_replication_group(ReplicationGroupId="second-west", ReplicationGroupDescription="w",
                                      GlobalReplicationGroupId=gid)
    # Disassociating a secondary makes it a writable, standalone group with its data.
    east.disassociate_global_replication_group(GlobalReplicationGroupId=gid, ReplicationGroupId="orders",
                                               ReplicationGroupRegion="us-east-1")
    assert eventually(lambda: _try_set(p, "standalone", "1"))
    assert p.get("order:3") == b"from-west"
    assert "GlobalReplicationGroupInfo" not in wait_group(east, "orders")
    deleted = west.delete_global_replication_group(GlobalReplicationGroupId=gid,
                                                   RetainPrimaryReplicationGroup=True)["GlobalReplicationGroup"]
    assert deleted["GlobalReplicationGroupDescription"] == "renamed"
    with pytest.raises(east.exceptions.GlobalReplicationGroupNotFoundFault) as e:
        east.describe_global_replication_groups(GlobalReplicationGroupId=gid)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert wait_group(west, "orders-west")["Status"] == "available"


def _try_set(client, key, value):
    try:
        return client.set(key, value)
    except (redis.exceptions.ReadOnlyError, redis.exceptions.ConnectionError):
        return False


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")
def test_online_migration_from_a_real_redis_server(server, tmp_path):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        source = redis.Redis(port=port, socket_timeout=5)
        assert eventually(lambda: _ping(source))
        for i in range(1000):
            source.set(f"user:{i}", i)
        source.rpush("queue", "a", "b", "c")

        ec = server.client()
        ec.create_replication_group(ReplicationGroupId="target", ReplicationGroupDescription="migration",
                                    NumCacheClusters=2)
        group = wait_group(ec, "target")
        endpoint = [{"Address": "127.0.0.1", "Port": port}]
        with pytest.raises(ec.exceptions.ReplicationGroupNotUnderMigrationFault):
            ec.complete_migration(ReplicationGroupId="target")
        with pytest.raises(ec.exceptions.InvalidParameterValueException):
            ec.test_migration(ReplicationGroupId="target",
                              CustomerNodeEndpointList=[{"Address": "127.0.0.1", "Port": free_port()}])
        assert ec.test_migration(ReplicationGroupId="target",
                                 CustomerNodeEndpointList=endpoint)["ReplicationGroup"]["Status"] == "available"
        ec.start_migration(ReplicationGroupId="target", CustomerNodeEndpointList=endpoint)
        with pytest.raises(ec.exceptions.ReplicationGroupAlreadyUnderMigrationFault):
            ec.start_migration(ReplicationGroupId="target", CustomerNodeEndpointList=endpoint)

        target = primary_client(group)
        assert eventually(lambda: target.dbsize() == 1001)
        assert target.lrange("queue", 0, -1) == [b"a", b"b", b"c"]
        source.set("written-during-migration", "yes")
        assert eventually(lambda: target.get("written-during-migration") == b"yes")

        ec.complete_migration(ReplicationGroupId="target")
        assert eventually(lambda: _try_set(target, "after", "cutover"))
        source.set("after-cutover-on-source", "ignored")
        time.sleep(0.3)
        assert target.get("after-cutover-on-source") is None
        assert target.get("user:999") == b"999"
        messages = [e["Message"] for e in ec.describe_events(SourceType="replication-group",
                                                             SourceIdentifier="target")["Events"]]
        assert any(m.startswith("Migration from") and m.endswith("completed") for m in messages)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ping(client):
    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


def test_reserved_cache_nodes(server):
    ec = server.client()
    offerings = ec.describe_reserved_cache_nodes_offerings(
        CacheNodeType="cache.r6g.large", Duration="3", OfferingType="All Upfront",
        ProductDescription="redis")["ReservedCacheNodesOfferings"]
    assert len(offerings) == 1
    o = offerings[0]
    assert (o["Duration"], o["FixedPrice"] > 0, o["RecurringCharges"]) == (94608000, True, [])
    everything = ec.get_paginator("describe_reserved_cache_nodes_offerings").paginate().build_full_result()
    assert len(everything["ReservedCacheNodesOfferings"]) > 100
    with pytest.raises(ec.exceptions.ReservedCacheNodesOfferingNotFoundFault):
        ec.describe_reserved_cache_nodes_offerings(ReservedCacheNodesOfferingId="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ec.exceptions.ReservedCacheNodesOfferingNotFoundFault):
        ec.purchase_reserved_cache_nodes_offering(ReservedCacheNodesOfferingId="nope")

    bought = ec.purchase_reserved_cache_nodes_offering(
        ReservedCacheNodesOfferingId=o["ReservedCacheNodesOfferingId"], ReservedCacheNodeId="prod-cache",
        CacheNodeCount=3)["ReservedCacheNode"]
    assert (bought["State"], bought["CacheNodeCount"], bought["CacheNodeType"]) == ("active", 3, "cache.r6g.large")
    assert bought["ReservationARN"].endswith(":reserved-instance:prod-cache")
    with pytest.raises(ec.exceptions.ReservedCacheNodeAlreadyExistsFault):
        ec.purchase_reserved_cache_nodes_offering(
            ReservedCacheNodesOfferingId=o["ReservedCacheNodesOfferingId"], ReservedCacheNodeId="prod-cache")
    nodes = ec.describe_reserved_cache_nodes(CacheNodeType="cache.r6g.large")["ReservedCacheNodes"]
    assert [n["ReservedCacheNodeId"] for n in nodes] == ["prod-cache"]
    assert ec.describe_reserved_cache_nodes(CacheNodeType="cache.m5.large")["ReservedCacheNodes"] == []
    with pytest.raises(ec.exceptions.ReservedCacheNodeNotFoundFault):
        ec.describe_reserved_cache_nodes(ReservedCacheNodeId="other")
    # Reservations are per region.
    assert server.client("eu-west-1").describe_reserved_cache_nodes()["ReservedCacheNodes"] == []


def test_global_secondary_keeps_replicating_after_restart():
    from conftest import Server
    s = Server("--persist-data")
    try:
        east, west = s.client("us-east-1"), s.client("us-west-2")
        east.create_replication_group(ReplicationGroupId="p", ReplicationGroupDescription="p",
                                      CacheNodeType="cache.m5.large")
        p = primary_client(wait_group(east, "p"))
        gid = east.create_global_replication_group(
            GlobalReplicationGroupIdSuffix="g", PrimaryReplicationGroupId="p")["GlobalReplicationGroup"][
            "GlobalReplicationGroupId"]
        west.create_replication_group(ReplicationGroupId="s", ReplicationGroupDescription="s",
                                      GlobalReplicationGroupId=gid)
        sec = primary_client(wait_group(west, "s"))
        p.set("before", "1")
        assert eventually(lambda: sec.get("before") == b"1")
        s.stop()
        s.start()
        east, west = s.client("us-east-1"), s.client("us-west-2")
        wait_group(east, "p")
        wait_group(west, "s")
        assert eventually(lambda: _try_set(p, "after", "2"))
        assert eventually(lambda: sec.get("after") == b"2")
        assert sec.get("before") == b"1"
        with pytest.raises(redis.exceptions.ReadOnlyError):
            sec.set("x", "y")
    finally:
        s.stop()
