"""Issue 6 end to end: parameter groups whose values reach the running nodes,
subnet groups, and the call sequences the Terraform provider makes."""
import socket
import time
import threading
import time

import pymemcache.client.base
import pytest
import redis

from conftest import wait_available


def endpoint(cc, i=0):
    ep = cc["CacheNodes"][i]["Endpoint"]
    return ep["Address"], ep["Port"]


def test_parameter_group_lifecycle_as_terraform_calls_it(server):
    ec = server.client()
    g = ec.create_cache_parameter_group(CacheParameterGroupName="App-Params", CacheParameterGroupFamily="redis7",
                                        Description="app", Tags=[{"Key": "k", "Value": "v"}])["CacheParameterGroup"]
    assert g["CacheParameterGroupName"] == "app-params"
    assert g["IsGlobal"] is False
    arn = g["ARN"]
    with pytest.raises(ec.exceptions.CacheParameterGroupAlreadyExistsFault):
        ec.create_cache_parameter_group(CacheParameterGroupName="app-params", CacheParameterGroupFamily="redis7",
                                        Description="again")
    # Terraform's read: the group, then only the user-set parameters, then tags.
    desc = ec.describe_cache_parameter_groups(CacheParameterGroupName="app-params")["CacheParameterGroups"]
    assert desc[0]["CacheParameterGroupFamily"] == "redis7"
    assert ec.describe_cache_parameters(CacheParameterGroupName="app-params", Source="user")["Parameters"] == []
    assert ec.list_tags_for_resource(ResourceName=arn)["TagList"] == [{"Key": "k", "Value": "v"}]

    ec.modify_cache_parameter_group(CacheParameterGroupName="app-params", ParameterNameValues=[
        {"ParameterName": "maxmemory-policy", "ParameterValue": "allkeys-lru"},
        {"ParameterName": "timeout", "ParameterValue": "300"}])
    user = ec.describe_cache_parameters(CacheParameterGroupName="app-params", Source="user")["Parameters"]
    assert {p["ParameterName"]: p["ParameterValue"] for p in user} == {"maxmemory-policy": "allkeys-lru",
                                                                       "timeout": "300"}
    assert all(p["Source"] == "user" for p in user)
    everything = list(ec.get_paginator("describe_cache_parameters").paginate(
        CacheParameterGroupName="app-params").search("Parameters"))
    names = [p["ParameterName"] for p in everything]
    assert "maxmemory-policy" in names and "notify-keyspace-events" in names and len(names) == len(set(names))

    with pytest.raises(ec.exceptions.InvalidParameterValueException):
        ec.modify_cache_parameter_group(CacheParameterGroupName="app-params", ParameterNameValues=[
            {"ParameterName": "maxmemory-policy", "ParameterValue": "sometimes"}])
    with pytest.raises(ec.exceptions.InvalidParameterValueException) as e:
        ec.modify_cache_parameter_group(CacheParameterGroupName="app-params", ParameterNameValues=[
            {"ParameterName": "reserved-memory", "ParameterValue": "1"}])
    assert "doesn't exist" in str(e.value)
    with pytest.raises(ec.exceptions.InvalidParameterValueException):
        ec.modify_cache_parameter_group(CacheParameterGroupName="default.redis7", ParameterNameValues=[
            {"ParameterName": "timeout", "ParameterValue": "5"}])

    # Terraform resets parameters removed from its configuration.
    ec.reset_cache_parameter_group(CacheParameterGroupName="app-params",
                                   ParameterNameValues=[{"ParameterName": "timeout"}])
    user = ec.describe_cache_parameters(CacheParameterGroupName="app-params", Source="user")["Parameters"]
    assert [p["ParameterName"] for p in user] == ["maxmemory-policy"]

    defaults = ec.describe_engine_default_parameters(CacheParameterGroupFamily="memcached1.6")["EngineDefaults"]
    assert defaults["CacheParameterGroupFamily"] == "memcached1.6"
    assert any(p["ParameterName"] == "max_item_size" for p in defaults["Parameters"])

    # In use → cannot delete; the built-in groups can never be deleted.
    ec.create_cache_cluster(CacheClusterId="uses-params", Engine="redis", CacheParameterGroupName="app-params")
    wait_available(ec, "uses-params")
    with pytest.raises(ec.exceptions.InvalidCacheParameterGroupStateFault):
        ec.delete_cache_parameter_group(CacheParameterGroupName="app-params")
    with pytest.raises(ec.exceptions.InvalidCacheParameterGroupStateFault):
        ec.delete_cache_parameter_group(CacheParameterGroupName="default.redis7")
    ec.delete_cache_cluster(CacheClusterId="uses-params")
    ec.get_waiter("cache_cluster_deleted").wait(CacheClusterId="uses-params",
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec.delete_cache_parameter_group(CacheParameterGroupName="app-params")
    with pytest.raises(ec.exceptions.CacheParameterGroupNotFoundFault):
        ec.describe_cache_parameter_groups(CacheParameterGroupName="app-params")


def test_family_must_match_the_engine(server):
    ec = server.client()
    ec.create_cache_parameter_group(CacheParameterGroupName="mc16", CacheParameterGroupFamily="memcached1.6",
                                    Description="mc")
    with pytest.raises(ec.exceptions.InvalidParameterCombinationException):
        ec.create_cache_cluster(CacheClusterId="wrong", Engine="redis", CacheParameterGroupName="mc16")
    with pytest.raises(ec.exceptions.CacheParameterGroupNotFoundFault):
        ec.create_cache_cluster(CacheClusterId="wrong", Engine="redis", CacheParameterGroupName="nope")


def test_memcached_max_item_size_changes_what_a_set_accepts(server):
    ec = server.client()
    ec.create_cache_parameter_group(CacheParameterGroupName="big-items", CacheParameterGroupFamily="memcached1.6",
                                    Description="2 MiB items")
    ec.create_cache_cluster(CacheClusterId="items", Engine="memcached", CacheParameterGroupName="big-items")
    host, port = endpoint(wait_available(ec, "items"))
    mc = pymemcache.client.base.Client((host, port))
    big = b"x" * (1536 * 1024)
    with pytest.raises(pymemcache.exceptions.MemcacheServerError):
        mc.set("big", big, noreply=False)

    ec.modify_cache_parameter_group(CacheParameterGroupName="big-items", ParameterNameValues=[
        {"ParameterName": "max_item_size", "ParameterValue": str(2 * 1024 * 1024)}])
    cc = ec.describe_cache_clusters(CacheClusterId="items", ShowCacheNodeInfo=True)["CacheClusters"][0]
    # max_item_size requires a reboot on ElastiCache: pending until then.
    assert cc["CacheParameterGroup"]["ParameterApplyStatus"] == "pending-reboot"
    assert cc["CacheParameterGroup"]["CacheNodeIdsToReboot"] == ["0001"]
    with pytest.raises(pymemcache.exceptions.MemcacheServerError):
        pymemcache.client.base.Client((host, port)).set("big", big, noreply=False)

    ec.reboot_cache_cluster(CacheClusterId="items", CacheNodeIdsToReboot=["0001"])
    cc = wait_available(ec, "items")
    assert cc["CacheParameterGroup"]["ParameterApplyStatus"] == "in-sync"
    mc = pymemcache.client.base.Client((host, port))
    assert mc.set("big", big, noreply=False)
    assert mc.get("big") == big


def test_subnet_groups_place_nodes_in_their_zones(server):
    ec = server.client()
    g = ec.create_cache_subnet_group(CacheSubnetGroupName="Private", CacheSubnetGroupDescription="private subnets",
                                     SubnetIds=["subnet-0a1", "subnet-0b2", "subnet-0c3", "subnet-0d4"],
                                     Tags=[{"Key": "tier", "Value": "db"}])["CacheSubnetGroup"]
    assert g["CacheSubnetGroupName"] == "private"
    assert g["VpcId"].startswith("vpc-")
    zones = sorted({s["SubnetAvailabilityZone"]["Name"] for s in g["Subnets"]})
    assert all(z.startswith("us-east-1") for z in zones)
    assert ec.list_tags_for_resource(ResourceName=g["ARN"])["TagList"] == [{"Key": "tier", "Value": "db"}]
    with pytest.raises(ec.exceptions.CacheSubnetGroupAlreadyExistsFault):
        ec.create_cache_subnet_group(CacheSubnetGroupName="private", CacheSubnetGroupDescription="x",
                                     SubnetIds=["subnet-0a1"])
    with pytest.raises(ec.exceptions.InvalidSubnet):
        ec.create_cache_subnet_group(CacheSubnetGroupName="bad", CacheSubnetGroupDescription="x",
                                     SubnetIds=["not-a-subnet"])
    with pytest.raises(ec.exceptions.CacheSubnetGroupNotFoundFault) as e:
        ec.describe_cache_subnet_groups(CacheSubnetGroupName="missing")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    ec.create_cache_cluster(CacheClusterId="spread", Engine="memcached", NumCacheNodes=4, AZMode="cross-az",
                            CacheSubnetGroupName="private")
    cc = wait_available(ec, "spread")
    node_zones = [n["CustomerAvailabilityZone"] for n in cc["CacheNodes"]]
    assert set(node_zones) == set(zones)
    assert cc["CacheSubnetGroupName"] == "private"

    with pytest.raises(ec.exceptions.CacheSubnetGroupInUse):
        ec.delete_cache_subnet_group(CacheSubnetGroupName="private")
    ec.modify_cache_subnet_group(CacheSubnetGroupName="private", CacheSubnetGroupDescription="changed")
    assert ec.describe_cache_subnet_groups(CacheSubnetGroupName="private")["CacheSubnetGroups"][0][
        "CacheSubnetGroupDescription"] == "changed"
    names = [g["CacheSubnetGroupName"] for g in ec.describe_cache_subnet_groups()["CacheSubnetGroups"]]
    assert names == ["default", "private"]
    ec.delete_cache_cluster(CacheClusterId="spread")
    ec.get_waiter("cache_cluster_deleted").wait(CacheClusterId="spread", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec.delete_cache_subnet_group(CacheSubnetGroupName="private")
    with pytest.raises(ec.exceptions.CacheSubnetGroupNotFoundFault):
        ec.describe_cache_subnet_groups(CacheSubnetGroupName="private")


def fill(r, prefix, n, size=10_000):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{prefix}:{i}", b"v" * size)
    return pipe.execute(raise_on_error=False)


def test_redis_eviction_policy_and_memory_limit_take_effect(server):
    """A 512 MiB node with reserved-memory-percent=99 keeps ~5 MiB for data."""
    ec = server.client()
    ec.create_cache_parameter_group(CacheParameterGroupName="tiny", CacheParameterGroupFamily="redis7",
                                    Description="small and evicting")
    ec.modify_cache_parameter_group(CacheParameterGroupName="tiny", ParameterNameValues=[
        {"ParameterName": "reserved-memory-percent", "ParameterValue": "99"},
        {"ParameterName": "maxmemory-policy", "ParameterValue": "allkeys-lru"}])
    ec.create_cache_cluster(CacheClusterId="evicts", Engine="redis", CacheNodeType="cache.t3.micro",
                            CacheParameterGroupName="tiny")
    host, port = endpoint(wait_available(ec, "evicts"))
    r = redis.Redis(host=host, port=port)
    results = fill(r, "k", 2000)  # ~20 MB into ~5 MB
    assert all(res is True for res in results), "allkeys-lru never refuses a write"
    stats = r.info("stats")
    assert stats["evicted_keys"] > 0
    assert r.dbsize() < 2000
    assert r.info("memory")["maxmemory"] < 6 * 1024 * 1024

    # noeviction (an immediate parameter) reaches the running node at once.
    ec.modify_cache_parameter_group(CacheParameterGroupName="tiny", ParameterNameValues=[
        {"ParameterName": "maxmemory-policy", "ParameterValue": "noeviction"}])
    cc = ec.describe_cache_clusters(CacheClusterId="evicts", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert cc["CacheParameterGroup"]["ParameterApplyStatus"] == "in-sync"
    deadline = time.time() + 5
    while True:
        results = fill(r, "more", 200)
        errors = [e for e in results if isinstance(e, Exception)]
        if errors or time.time() > deadline:
            break
    assert errors and isinstance(errors[0], redis.exceptions.OutOfMemoryError)
    assert r.info("memory")["maxmemory_policy"] == "noeviction"


def test_keyspace_notifications_from_the_parameter_group(server):
    ec = server.client()
    ec.create_cache_parameter_group(CacheParameterGroupName="notify", CacheParameterGroupFamily="redis7",
                                    Description="notifications")
    ec.create_cache_cluster(CacheClusterId="notifies", Engine="redis", CacheParameterGroupName="notify")
    host, port = endpoint(wait_available(ec, "notifies"))
    ec.modify_cache_parameter_group(CacheParameterGroupName="notify", ParameterNameValues=[
        {"ParameterName": "notify-keyspace-events", "ParameterValue": "KEA"}])
    r = redis.Redis(host=host, port=port)
    p = r.pubsub()
    p.psubscribe("__keyevent@0__:*")
    assert p.get_message(timeout=2)["type"] == "psubscribe"
    r.set("watched", "1")
    msg = None
    deadline = time.time() + 5
    while msg is None and time.time() < deadline:
        msg = p.get_message(timeout=1)
    assert msg is not None, "no keyspace notification"
    assert msg["channel"] == b"__keyevent@0__:set" and msg["data"] == b"watched"


def test_node_type_change_changes_the_memory_limit_and_keeps_data(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="grow", Engine="redis", CacheNodeType="cache.t3.micro")
    host, port = endpoint(wait_available(ec, "grow"))
    r = redis.Redis(host=host, port=port)
    r.set("kept", "yes")
    small = r.info("memory")["maxmemory"]
    assert small == 512 * 1024 * 1024 // 100 * 75
    ec.modify_cache_cluster(CacheClusterId="grow", CacheNodeType="cache.m5.large", ApplyImmediately=True)
    cc = wait_available(ec, "grow")
    assert cc["CacheNodeType"] == "cache.m5.large"
    deadline = time.time() + 5
    while r.info("memory")["maxmemory"] == small and time.time() < deadline:
        time.sleep(0.05)
    assert r.info("memory")["maxmemory"] == 6533 * 1024 * 1024 // 100 * 75
    assert r.get("kept") == b"yes"


def test_group_user_and_security_group_lifecycles_are_events(server):
    """DescribeEvents carries the lifecycle of every resource kind, filterable by SourceType."""
    ec = server.client()
    ec.create_cache_parameter_group(CacheParameterGroupName="Ev-Params", CacheParameterGroupFamily="redis7",
                                    Description="d")
    ec.modify_cache_parameter_group(CacheParameterGroupName="ev-params", ParameterNameValues=[
        {"ParameterName": "maxmemory-policy", "ParameterValue": "allkeys-lru"}])
    ec.delete_cache_parameter_group(CacheParameterGroupName="ev-params")
    ec.create_cache_subnet_group(CacheSubnetGroupName="ev-subnets", CacheSubnetGroupDescription="d",
                                 SubnetIds=["subnet-1"])
    ec.create_cache_security_group(CacheSecurityGroupName="ev-sg", Description="d")
    ec.create_user(UserId="ev-user", UserName="ev-user", Engine="redis", AccessString="on ~* +@all",
                   NoPasswordRequired=True)
    ec.create_user_group(UserGroupId="ev-group", Engine="redis", UserIds=["default"])
    with pytest.raises(ec.exceptions.CacheParameterGroupNotFoundFault):
        ec.delete_cache_parameter_group(CacheParameterGroupName="ev-params")

    def messages(source_type):
        evs = ec.describe_events(SourceType=source_type, Duration=60)["Events"]
        return [(e["SourceIdentifier"], e["Message"]) for e in evs]

    pg = messages("cache-parameter-group")
    assert ("ev-params", "Cache parameter group created") in pg
    assert ("ev-params", "Cache parameter group modified") in pg
    # Only what succeeded: one deletion, not the failed second one.
    assert pg.count(("ev-params", "Cache parameter group deleted")) == 1
    assert ("ev-subnets", "Cache subnet group created") in messages("cache-subnet-group")
    assert ("ev-sg", "Cache security group created") in messages("cache-security-group")
    assert ("ev-user", "User created") in messages("user")
    assert ("ev-group", "User group created") in messages("user-group")
    only = ec.describe_events(SourceType="user", SourceIdentifier="ev-user", Duration=60)["Events"]
    assert [e["Message"] for e in only] == ["User created"]
