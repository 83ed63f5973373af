"""Fault injection beyond stop/start (issue 5): pausing a node (it hangs, like SIGSTOP)
and isolating it (a network partition), and what replication groups do about it."""
import socket
import time
import urllib.error

import pytest
import redis

from test_replication_groups import AckedWriter, admin, roles, wait_for_new_primary, wait_group


def node_entry(server, cluster):
    return next(n for n in admin(server, "GET", "/_elastilite/nodes")[1] if n["cache_cluster_id"] == cluster)


def hangs(ep, seconds=0.3):
    """A PING sent to `ep` gets no answer within `seconds` (and the connection stays open)."""
    with socket.create_connection((ep["Address"], ep["Port"]), timeout=2) as s:
        s.sendall(b"PING\r\n")
        s.settimeout(seconds)
        try:
            return s.recv(16) == b"" and False
        except socket.timeout:
            return True


def test_pausing_the_primary_fails_over_and_loses_no_acknowledged_write(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="pz", ReplicationGroupDescription="d", NumCacheClusters=3,
                                AutomaticFailoverEnabled=True)
    g = wait_group(ec, "pz")
    writer = AckedWriter(g["NodeGroups"][0]["PrimaryEndpoint"])
    writer.wait_for_more(20)
    assert admin(server, "POST", "/_elastilite/nodes/us-east-1/pz-001/0001/pause")[0] == 204
    assert node_entry(server, "pz-001")["fault"] == "paused"
    # A client of the paused node hangs (it neither answers nor closes).
    old = next(m["ReadEndpoint"] for m in g["NodeGroups"][0]["NodeGroupMembers"] if m["CacheClusterId"] == "pz-001")
    assert hangs(old)
    seconds = wait_for_new_primary(ec, "pz", "pz-001")
    # Writes resume on the primary endpoint, now reaching the promoted replica.
    writer.wait_for_more(50)
    writer.stop_and_check()
    # The paused node was replaced: it runs again, as a replica, with no fault.
    entry = node_entry(server, "pz-001")
    assert entry["running"] is True and entry["fault"] is None and entry["role"] == "replica"
    messages = [e["Message"] for e in ec.describe_events(SourceType="replication-group", SourceIdentifier="pz")["Events"]]
    assert "Primary node pz-001 failed; failing over" in messages, messages
    print(f"automatic failover took {seconds:.3f}s after the pause")


def test_a_timed_pause_without_automatic_failover_only_delays_clients(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="tp", ReplicationGroupDescription="d", NumCacheClusters=2)
    ep = wait_group(ec, "tp")["NodeGroups"][0]["PrimaryEndpoint"]
    c = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=10)
    c.set("k", "v")
    assert admin(server, "POST", "/_elastilite/nodes/us-east-1/tp-001/0001/pause?seconds=1.5")[0] == 204
    started = time.time()
    assert c.get("k") == b"v"
    assert time.time() - started >= 1.2
    assert roles(ec, "tp")["tp-001"] == "primary"
    assert node_entry(server, "tp-001")["fault"] is None, "a timed pause ends by itself"
    # Resume of a node that is not paused is harmless; bad durations are refused.
    assert admin(server, "POST", "/_elastilite/nodes/us-east-1/tp-001/0001/resume")[0] == 204
    with pytest.raises(urllib.error.HTTPError) as e:
        admin(server, "POST", "/_elastilite/nodes/us-east-1/tp-001/0001/pause?seconds=-1")
    assert e.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as e:
        admin(server, "POST", "/_elastilite/nodes/us-east-1/tp-001/0001/freeze")
    assert e.value.code == 400


def test_an_isolated_replica_resyncs_partially_when_healed(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="iso", ReplicationGroupDescription="d", NumCacheClusters=2)
    g = wait_group(ec, "iso")
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    primary = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5)
    members = {m["CacheClusterId"]: m["ReadEndpoint"] for m in g["NodeGroups"][0]["NodeGroupMembers"]}
    rep_ep = members["iso-002"]
    replica = redis.Redis(host=rep_ep["Address"], port=rep_ep["Port"], socket_timeout=2)
    for i in range(100):
        primary.set(f"before:{i}", i)
    assert primary.wait(1, 5000) == 1
    partial = primary.info("stats")["sync_partial_ok"]

    assert admin(server, "POST", "/_elastilite/nodes/us-east-1/iso-002/0001/isolate")[0] == 204
    assert node_entry(server, "iso-002")["fault"] == "isolated"
    with pytest.raises(redis.exceptions.ConnectionError):
        replica.ping()
    deadline = time.time() + 5
    while primary.info("replication")["connected_slaves"] != 0 and time.time() < deadline:
        time.sleep(0.05)
    assert primary.info("replication")["connected_slaves"] == 0
    for i in range(300):
        primary.set(f"during:{i}", i)
    assert primary.wait(1, 200) == 0

    assert admin(server, "POST", "/_elastilite/nodes/us-east-1/iso-002/0001/heal")[0] == 204
    assert node_entry(server, "iso-002")["fault"] is None
    assert primary.wait(1, 10_000) == 1
    replica = redis.Redis(host=rep_ep["Address"], port=rep_ep["Port"], socket_timeout=5)
    assert replica.get("during:299") == b"299" and replica.dbsize() == primary.dbsize()
    assert primary.info("stats")["sync_partial_ok"] == partial + 1, "the backlog covered the partition"
    assert replica.info("replication")["master_link_status"] == "up"


def test_isolating_the_primary_fails_over(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="ip", ReplicationGroupDescription="d", NumCacheClusters=2,
                                AutomaticFailoverEnabled=True)
    g = wait_group(ec, "ip")
    writer = AckedWriter(g["NodeGroups"][0]["PrimaryEndpoint"])
    writer.wait_for_more(20)
    assert admin(server, "POST", "/_elastilite/nodes/us-east-1/ip-001/0001/isolate")[0] == 204
    wait_for_new_primary(ec, "ip", "ip-001")
    writer.wait_for_more(50)
    writer.stop_and_check()


def test_pause_and_isolate_need_a_running_redis_node(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="mc", Engine="memcached", NumCacheNodes=1)
    ec.get_waiter("cache_cluster_available").wait(CacheClusterId="mc", WaiterConfig={"Delay": 1})
    with pytest.raises(urllib.error.HTTPError) as e:
        admin(server, "POST", "/_elastilite/nodes/us-east-1/mc/0001/pause")
    assert e.value.code == 409
