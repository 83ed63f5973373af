"""Issue 2 end to end: aws-cli and boto3 create clusters, and ordinary clients
(redis-py, pymemcache, the Node `memcached` package) use the nodes they report."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import botocore.exceptions
import pymemcache.client.base
import pytest
import redis

from conftest import ROOT, wait_available


def test_aws_cli_quick_start(server):
    out = server.aws("create-cache-cluster", "--cache-cluster-id", "cli-redis", "--engine", "redis",
                     "--cache-node-type", "cache.t3.micro", "--num-cache-nodes", "1")
    created = json.loads(out.stdout)["CacheCluster"]
    assert created["CacheClusterStatus"] == "creating"
    server.aws("wait", "cache-cluster-available", "--cache-cluster-id", "cli-redis")
    desc = json.loads(server.aws("describe-cache-clusters", "--cache-cluster-id", "cli-redis",
                                 "--show-cache-node-info").stdout)["CacheClusters"][0]
    assert desc["CacheClusterStatus"] == "available"
    ep = desc["CacheNodes"][0]["Endpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"])
    assert r.ping()

    bad = server.aws("describe-cache-clusters", "--cache-cluster-id", "nope", check=False)
    assert bad.returncode == 255
    assert "(CacheClusterNotFound)" in bad.stderr

    server.aws("delete-cache-cluster", "--cache-cluster-id", "cli-redis")
    server.aws("wait", "cache-cluster-deleted", "--cache-cluster-id", "cli-redis")


def test_seed_redis_set_get(server):
    """The seed's first program, unchanged but for the endpoint."""
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="seed-redis", Engine="redis",
                            CacheNodeType="cache.t3.micro", NumCacheNodes=1)
    ep = wait_available(ec, "seed-redis")["CacheNodes"][0]["Endpoint"]
    client = redis.StrictRedis(host=ep["Address"], port=ep["Port"], decode_responses=True)
    client.set("username:1001", "Alice")
    value = client.get("username:1001")
    assert value == "Alice"


def test_seed_redis_pubsub(server):
    """The seed's chat program: a subscriber receives what a publisher sends."""
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="seed-chat", Engine="redis")
    ep = wait_available(ec, "seed-chat")["CacheNodes"][0]["Endpoint"]
    client = redis.Redis(host=ep["Address"], port=ep["Port"])
    pubsub = client.pubsub()
    pubsub.subscribe("chat_channel")
    received = []

    def listen():
        for message in pubsub.listen():
            if message["type"] == "message":
                received.append(message["data"])
                return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    deadline = time.time() + 10
    while not received and time.time() < deadline:
        client.publish("chat_channel", "Hello from ElastiCache!")
        t.join(0.1)
    assert received == [b"Hello from ElastiCache!"]


def test_memcached_with_pymemcache(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="sessions", Engine="memcached", NumCacheNodes=2)
    cc = wait_available(ec, "sessions")
    assert cc["ConfigurationEndpoint"]["Port"] == 11211
    for node in cc["CacheNodes"]:
        ep = node["Endpoint"]
        mc = pymemcache.client.base.Client((ep["Address"], ep["Port"]))
        mc.set("session:123", "active", expire=600)
        assert mc.get("session:123") == b"active"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_seed_node_memcached_session(server):
    """The seed's Node.js program with the `memcached` package (installed by .ci/run)."""
    if not os.path.isdir(os.path.join(ROOT, "tests", "e2e", "node_modules", "memcached")):
        if os.environ.get("CI"):
            pytest.fail("the memcached npm package is missing (npm ci in tests/e2e)")
        pytest.skip("npm package memcached not installed")
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="node-sessions", Engine="memcached", NumCacheNodes=1)
    ep = wait_available(ec, "node-sessions")["CacheNodes"][0]["Endpoint"]
    out = subprocess.run(["node", os.path.join(ROOT, "tests", "e2e", "seed_memcached.js"),
                          f"{ep['Address']}:{ep['Port']}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Session stored" in out.stdout
    assert "Fetched session: active" in out.stdout


def test_boto3_errors_waiters_and_tags(slow_server):
    ec = slow_server.client()
    resp = ec.create_cache_cluster(CacheClusterId="TagMe", Engine="valkey",
                                   Tags=[{"Key": "owner", "Value": "me"}])
    cc = resp["CacheCluster"]
    assert cc["CacheClusterId"] == "tagme"
    assert cc["CacheClusterStatus"] == "creating"
    assert cc["EngineVersion"] == "8.1.0"
    with pytest.raises(ec.exceptions.CacheClusterAlreadyExistsFault):
        ec.create_cache_cluster(CacheClusterId="tagme", Engine="valkey")
    with pytest.raises(ec.exceptions.InvalidCacheClusterStateFault):
        ec.modify_cache_cluster(CacheClusterId="tagme", SnapshotRetentionLimit=3)
    cc = wait_available(ec, "tagme")
    arn = cc["ARN"]
    assert ec.list_tags_for_resource(ResourceName=arn)["TagList"] == [{"Key": "owner", "Value": "me"}]
    with pytest.raises(ec.exceptions.CacheClusterNotFoundFault):
        ec.describe_cache_clusters(CacheClusterId="missing")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec.create_cache_cluster(CacheClusterId="bad", Engine="redis", CacheNodeType="cache.x9.huge")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    m = ec.modify_cache_cluster(CacheClusterId="tagme", SnapshotRetentionLimit=3,
                                PreferredMaintenanceWindow="TUE:03:00-TUE:04:00", ApplyImmediately=True)
    assert m["CacheCluster"]["CacheClusterStatus"] == "modifying"
    cc = wait_available(ec, "tagme")
    assert cc["SnapshotRetentionLimit"] == 3
    assert cc["PreferredMaintenanceWindow"] == "tue:03:00-tue:04:00"

    ec.delete_cache_cluster(CacheClusterId="tagme")
    ec.get_waiter("cache_cluster_deleted").wait(CacheClusterId="tagme",
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def test_reboot_really_restarts_nodes(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="reboot-me", Engine="redis")
    ep = wait_available(ec, "reboot-me")["CacheNodes"][0]["Endpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"])
    r.set("k", "v")
    resp = ec.reboot_cache_cluster(CacheClusterId="reboot-me", CacheNodeIdsToReboot=["0001"])
    assert resp["CacheCluster"]["CacheClusterStatus"] == "rebooting cluster nodes"
    wait_available(ec, "reboot-me")
    # A reboot of a node without persistence loses its data, as on ElastiCache.
    r2 = redis.Redis(host=ep["Address"], port=ep["Port"])
    assert r2.get("k") is None


def config_get_cluster(host, port):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"config get cluster\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    header, body = data.split(b"\r\n", 1)
    assert header.startswith(b"CONFIG cluster 0 ")
    length = int(header.split()[-1])
    payload = body[:length]
    assert body[length:] == b"\r\nEND\r\n"
    version, nodes = payload.decode().split("\n")[:2]
    return int(version), sorted(tuple(n.split("|")) for n in nodes.split())


def test_memcached_auto_discovery_follows_the_cluster(server):
    """The exchange ElastiCache cluster clients make with the configuration endpoint."""
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="disco", Engine="memcached", NumCacheNodes=2)
    cc = wait_available(ec, "disco")
    cfg = cc["ConfigurationEndpoint"]
    version, nodes = config_get_cluster(cfg["Address"], cfg["Port"])
    expected = sorted((n["Endpoint"]["Address"], n["Endpoint"]["Address"], str(n["Endpoint"]["Port"]))
                      for n in cc["CacheNodes"])
    assert nodes == expected
    ec.modify_cache_cluster(CacheClusterId="disco", NumCacheNodes=3, ApplyImmediately=True)
    cc = wait_available(ec, "disco")
    for n in cc["CacheNodes"]:  # every node answers, with the new membership
        v2, nodes2 = config_get_cluster(n["Endpoint"]["Address"], n["Endpoint"]["Port"])
        assert v2 == version + 1 and len(nodes2) == 3


def test_node_type_modifications_and_service_updates(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="sizes", Engine="redis", CacheNodeType="cache.m5.large")
    wait_available(ec, "sizes")
    mods = ec.list_allowed_node_type_modifications(CacheClusterId="sizes")
    assert "cache.r5.large" in mods["ScaleUpModifications"]
    assert "cache.t3.micro" in mods["ScaleDownModifications"]
    assert "cache.m5.large" not in mods["ScaleUpModifications"] + mods["ScaleDownModifications"]
    assert ec.describe_service_updates()["ServiceUpdates"] == []
    assert ec.describe_update_actions()["UpdateActions"] == []
    with pytest.raises(ec.exceptions.ServiceUpdateNotFoundFault):
        ec.batch_apply_update_action(ServiceUpdateName="elasticache-20260101-001", CacheClusterIds=["sizes"])
