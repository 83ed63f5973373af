"""Issue 5 end to end: replication groups as the SDKs and Terraform see them,
stable primary/reader endpoints, failover."""
import json
import socket
import time

import pytest
import redis

from conftest import wait_available


def wait_group(ec, rg, status="available"):
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId=rg,
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]


def test_group_shape_members_and_endpoints(server):
    ec = server.client()
    g = ec.create_replication_group(ReplicationGroupId="Orders", ReplicationGroupDescription="orders cache",
                                    NumCacheClusters=3, AutomaticFailoverEnabled=True, MultiAZEnabled=True,
                                    CacheNodeType="cache.t3.small", EngineVersion="7.1",
                                    Tags=[{"Key": "app", "Value": "orders"}])["ReplicationGroup"]
    assert g["ReplicationGroupId"] == "orders"
    assert g["Status"] == "creating"
    g = wait_group(ec, "orders")
    assert g["MemberClusters"] == ["orders-001", "orders-002", "orders-003"]
    assert g["AutomaticFailover"] == "enabled" and g["MultiAZ"] == "enabled"
    assert g["ClusterEnabled"] is False and g["ClusterMode"] == "disabled"
    assert g["ARN"].endswith(":replicationgroup:orders")
    ng = g["NodeGroups"][0]
    assert ng["NodeGroupId"] == "0001"
    members = ng["NodeGroupMembers"]
    assert [m["CurrentRole"] for m in members] == ["primary", "replica", "replica"]
    assert members[0]["CacheClusterId"] == "orders-001"
    assert all(m["CacheNodeId"] == "0001" and m["ReadEndpoint"]["Port"] == 6379 for m in members)
    zones = [m["PreferredAvailabilityZone"] for m in members]
    assert len(set(zones)) == 3, zones
    primary_ep, reader_ep = ng["PrimaryEndpoint"], ng["ReaderEndpoint"]
    assert primary_ep["Port"] == 6379 and reader_ep["Port"] == 6379
    assert primary_ep["Address"] != reader_ep["Address"]
    assert ec.list_tags_for_resource(ResourceName=g["ARN"])["TagList"] == [{"Key": "app", "Value": "orders"}]

    # Members are real cache clusters, by id and in the unfiltered list.
    c = ec.describe_cache_clusters(CacheClusterId="orders-002", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert c["ReplicationGroupId"] == "orders" and c["CacheNodeType"] == "cache.t3.small"
    assert c["EngineVersion"] == "7.1.0"
    listed = [c["CacheClusterId"] for c in ec.describe_cache_clusters()["CacheClusters"]]
    assert {"orders-001", "orders-002", "orders-003"} <= set(listed)
    alone = ec.describe_cache_clusters(ShowCacheClustersNotInReplicationGroups=True)["CacheClusters"]
    assert not any(c["CacheClusterId"].startswith("orders-") for c in alone)

    # The primary endpoint reaches a node that serves.
    r = redis.Redis(host=primary_ep["Address"], port=primary_ep["Port"], socket_timeout=5)
    assert r.ping()
    r2 = redis.Redis(host=reader_ep["Address"], port=reader_ep["Port"], socket_timeout=5)
    assert r2.ping()

    with pytest.raises(ec.exceptions.ReplicationGroupAlreadyExistsFault):
        ec.create_replication_group(ReplicationGroupId="orders", ReplicationGroupDescription="x")
    with pytest.raises(ec.exceptions.ReplicationGroupNotFoundFault):
        ec.describe_replication_groups(ReplicationGroupId="nope")
    with pytest.raises(ec.exceptions.InvalidCacheClusterStateFault):
        ec.delete_cache_cluster(CacheClusterId="orders-001")  # the primary
    with pytest.raises(ec.exceptions.InvalidParameterCombinationException) as e:
        ec.modify_replication_group(ReplicationGroupId="orders", ApplyImmediately=True)
    assert "No modifications were requested" in str(e.value)


def test_replica_count_changes(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="rc", ReplicationGroupDescription="d", NumCacheClusters=2)
    wait_group(ec, "rc")
    ec.increase_replica_count(ReplicationGroupId="rc", NewReplicaCount=3, ApplyImmediately=True)
    g = wait_group(ec, "rc")
    assert g["MemberClusters"] == ["rc-001", "rc-002", "rc-003", "rc-004"]
    ec.decrease_replica_count(ReplicationGroupId="rc", ReplicasToRemove=["rc-002"], ApplyImmediately=True)
    g = wait_group(ec, "rc")
    assert g["MemberClusters"] == ["rc-001", "rc-003", "rc-004"]
    ec.decrease_replica_count(ReplicationGroupId="rc", NewReplicaCount=1, ApplyImmediately=True)
    g = wait_group(ec, "rc")
    assert g["MemberClusters"] == ["rc-001", "rc-003"]
    with pytest.raises(ec.exceptions.CacheClusterNotFoundFault):
        ec.describe_cache_clusters(CacheClusterId="rc-004")
    # CreateCacheCluster with ReplicationGroupId adds a replica.
    ec.create_cache_cluster(CacheClusterId="rc-extra", ReplicationGroupId="rc")
    g = wait_group(ec, "rc")
    assert g["MemberClusters"] == ["rc-001", "rc-003", "rc-extra"]
    ec.delete_cache_cluster(CacheClusterId="rc-extra")
    g = wait_group(ec, "rc")
    assert g["MemberClusters"] == ["rc-001", "rc-003"]


def test_test_failover_moves_the_primary_and_keeps_endpoints(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="fo", ReplicationGroupDescription="d", NumCacheClusters=2,
                                AutomaticFailoverEnabled=True)
    g = wait_group(ec, "fo")
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    conn = socket.create_connection((ep["Address"], ep["Port"]), timeout=5)
    conn.sendall(b"PING\r\n")
    assert conn.recv(16) == b"+PONG\r\n"
    ec.test_failover(ReplicationGroupId="fo", NodeGroupId="0001")
    deadline = time.time() + 20
    while time.time() < deadline:
        g = ec.describe_replication_groups(ReplicationGroupId="fo")["ReplicationGroups"][0]
        roles = {m["CacheClusterId"]: m["CurrentRole"] for m in g["NodeGroups"][0]["NodeGroupMembers"]}
        if roles.get("fo-002") == "primary":
            break
        time.sleep(0.05)
    assert roles == {"fo-001": "replica", "fo-002": "primary"}
    assert g["NodeGroups"][0]["PrimaryEndpoint"] == ep, "the primary endpoint's address does not change"
    # The connection through the primary endpoint to the old primary was closed;
    # a reconnect reaches the new primary.
    assert conn.recv(16) == b"", "the old primary's client connection is closed"

    assert redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5).ping()
    messages = [e["Message"] for e in ec.describe_events(SourceType="replication-group", SourceIdentifier="fo")["Events"]]
    assert "Test Failover API called for node group 0001" in messages
    assert "Failover from master node fo-001 to replica node fo-002 completed" in messages
    with pytest.raises(ec.exceptions.NodeGroupNotFoundFault):
        ec.test_failover(ReplicationGroupId="fo", NodeGroupId="0009")


def test_delete_retaining_the_primary(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="keep", ReplicationGroupDescription="d", NumCacheClusters=2)
    wait_group(ec, "keep")
    d = ec.delete_replication_group(ReplicationGroupId="keep", RetainPrimaryCluster=True)
    assert d["ReplicationGroup"]["Status"] == "deleting"
    ec.get_waiter("replication_group_deleted").wait(ReplicationGroupId="keep",
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    c = ec.describe_cache_clusters(CacheClusterId="keep-001", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert "ReplicationGroupId" not in c
    ep = c["CacheNodes"][0]["Endpoint"]
    assert redis.Redis(host=ep["Address"], port=ep["Port"]).ping()
    with pytest.raises(ec.exceptions.CacheClusterNotFoundFault):
        ec.describe_cache_clusters(CacheClusterId="keep-002")


def test_group_survives_a_restart(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="durable", ReplicationGroupDescription="d", NumCacheClusters=2)
    before = wait_group(ec, "durable")
    server.stop()
    server.start()
    ec = server.client()
    after = ec.describe_replication_groups(ReplicationGroupId="durable")["ReplicationGroups"][0]
    assert after["NodeGroups"] == before["NodeGroups"]
    ep = after["NodeGroups"][0]["PrimaryEndpoint"]
    assert redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5).ping()


def admin(server, method, path):
    import urllib.request
    req = urllib.request.Request(server.endpoint + path, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        return r.status, (json.loads(body) if body else None)


def roles(ec, rg):
    g = ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]
    return {m["CacheClusterId"]: m["CurrentRole"] for m in g["NodeGroups"][0]["NodeGroupMembers"]}


def test_automatic_failover_when_the_primary_dies(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="auto", ReplicationGroupDescription="d", NumCacheClusters=3,
                                AutomaticFailoverEnabled=True)
    g = wait_group(ec, "auto")
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    status, nodes = admin(server, "GET", "/_elastilite/nodes")
    assert status == 200
    mine = {n["cache_cluster_id"]: n for n in nodes if n["replication_group_id"] == "auto"}
    assert mine["auto-001"]["role"] == "primary" and mine["auto-001"]["running"] is True

    assert admin(server, "POST", "/_elastilite/nodes/us-east-1/auto-001/0001/stop")[0] == 204
    deadline = time.time() + 20
    while roles(ec, "auto")["auto-001"] == "primary" and time.time() < deadline:
        time.sleep(0.05)
    r = roles(ec, "auto")
    assert r["auto-001"] == "replica" and list(r.values()).count("primary") == 1
    assert redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5).ping()
    messages = [e["Message"] for e in ec.describe_events(SourceType="replication-group", SourceIdentifier="auto")["Events"]]
    assert any(m.startswith("Failover from master node auto-001 to replica node") for m in messages), messages


def test_without_automatic_failover_the_group_stays_degraded(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="manual", ReplicationGroupDescription="d", NumCacheClusters=2)
    ep = wait_group(ec, "manual")["NodeGroups"][0]["PrimaryEndpoint"]
    admin(server, "POST", "/_elastilite/nodes/us-east-1/manual-001/0001/stop")
    time.sleep(0.3)
    assert roles(ec, "manual")["manual-001"] == "primary"
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=2).ping()
    admin(server, "POST", "/_elastilite/nodes/us-east-1/manual-001/0001/start")
    assert redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5).ping()


def test_admin_reset_forgets_everything_quickly(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="gone", ReplicationGroupDescription="d", NumCacheClusters=2)
    ec.create_cache_cluster(CacheClusterId="gone-too", Engine="memcached")
    wait_group(ec, "gone")
    started = time.time()
    assert admin(server, "POST", "/_elastilite/reset")[0] == 204
    with pytest.raises(ec.exceptions.ReplicationGroupNotFoundFault):
        ec.describe_replication_groups(ReplicationGroupId="gone")
    assert ec.describe_cache_clusters()["CacheClusters"] == []
    assert admin(server, "GET", "/_elastilite/nodes")[1] == []
    timings = []
    for _ in range(20):
        t = time.time()
        admin(server, "POST", "/_elastilite/reset")
        timings.append(time.time() - t)
    assert sorted(timings)[len(timings) // 2] < 0.05, timings


def member_clients(g):
    return {m["CacheClusterId"]: redis.Redis(host=m["ReadEndpoint"]["Address"], port=m["ReadEndpoint"]["Port"],
                                             socket_timeout=5)
            for m in g["NodeGroups"][0]["NodeGroupMembers"]}


def test_every_replica_has_the_data_and_refuses_writes(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="data", ReplicationGroupDescription="d", NumCacheClusters=3)
    g = wait_group(ec, "data")
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    primary = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5)
    pipe = primary.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"k:{i}", i)
        pipe.hset(f"h:{i % 50}", f"f{i}", i)
    pipe.execute()
    primary.pexpire("k:1", 3_600_000)
    assert primary.wait(2, 5000) == 2
    info = primary.info("replication")
    assert info["role"] == "master" and info["connected_slaves"] == 2
    for cid, c in member_clients(g).items():
        assert c.get("k:1999") == b"1999" and c.hget("h:7", "f7") == b"7", cid
        assert 0 < c.pttl("k:1") <= 3_600_000
        if cid != "data-001":
            assert c.info("replication")["role"] == "slave"
            with pytest.raises(redis.exceptions.ReadOnlyError):
                c.set("x", 1)
    rd = g["NodeGroups"][0]["ReaderEndpoint"]
    reader = redis.Redis(host=rd["Address"], port=rd["Port"], socket_timeout=5)
    assert reader.get("k:5") == b"5"
    with pytest.raises(redis.exceptions.ReadOnlyError):
        reader.set("x", 1)
    # A replica added later gets the data too.
    ec.increase_replica_count(ReplicationGroupId="data", NewReplicaCount=3, ApplyImmediately=True)
    g = wait_group(ec, "data")
    assert primary.wait(3, 5000) == 3
    assert member_clients(g)["data-004"].get("k:42") == b"42"


class AckedWriter:
    """Writes through the primary endpoint with WAIT 1 and remembers which writes were
    acknowledged; reconnects through the same endpoint when its connection drops."""

    def __init__(self, ep):
        import threading
        self.ep, self.acknowledged, self.errors = ep, [], []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def client(self):
        return redis.Redis(host=self.ep["Address"], port=self.ep["Port"], socket_timeout=2)

    def run(self):
        client, i = self.client(), 0
        while not self.stop_flag.is_set():
            try:
                client.set(f"w:{i}", i)
                if client.wait(1, 1000) >= 1:
                    self.acknowledged.append(i)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    redis.exceptions.ReadOnlyError) as e:
                self.errors.append(type(e).__name__)
                time.sleep(0.02)
                client = self.client()
            i += 1

    def wait_for_more(self, n, timeout=10):
        target = len(self.acknowledged) + n
        deadline = time.time() + timeout
        while len(self.acknowledged) < target and time.time() < deadline:
            time.sleep(0.05)
        assert len(self.acknowledged) >= target, "the primary endpoint serves acknowledged writes again"

    def stop_and_check(self):
        self.stop_flag.set()
        self.thread.join(10)
        primary = self.client()
        assert primary.info("replication")["role"] == "master"
        pipe = primary.pipeline(transaction=False)
        for i in self.acknowledged:
            pipe.get(f"w:{i}")
        lost = [i for i, v in zip(self.acknowledged, pipe.execute()) if v != str(i).encode()]
        assert lost == [], f"{len(lost)} acknowledged writes lost"


def wait_for_new_primary(ec, rg, old, timeout=20):
    started = time.time()
    while roles(ec, rg)[old] == "primary" and time.time() - started < timeout:
        time.sleep(0.02)
    assert roles(ec, rg)[old] == "replica"
    return time.time() - started


def test_failover_loses_no_acknowledged_write(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="safe", ReplicationGroupDescription="d", NumCacheClusters=3,
                                AutomaticFailoverEnabled=True)
    g = wait_group(ec, "safe")
    writer = AckedWriter(g["NodeGroups"][0]["PrimaryEndpoint"])
    writer.wait_for_more(20)
    ec.test_failover(ReplicationGroupId="safe", NodeGroupId="0001")
    seconds = wait_for_new_primary(ec, "safe", "safe-001")
    writer.wait_for_more(50)
    writer.stop_and_check()
    old = member_clients(ec.describe_replication_groups(ReplicationGroupId="safe")["ReplicationGroups"][0])["safe-001"]
    deadline = time.time() + 10
    while old.info("replication").get("master_link_status") != "up" and time.time() < deadline:
        time.sleep(0.05)
    assert old.info("replication")["role"] == "slave"
    with pytest.raises(redis.exceptions.ReadOnlyError):
        old.set("x", 1)
    print(f"TestFailover took {seconds:.3f}s; {len(writer.acknowledged)} acknowledged writes, none lost")


def test_killing_the_primary_while_writing_loses_no_acknowledged_write(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="kill", ReplicationGroupDescription="d", NumCacheClusters=2,
                                AutomaticFailoverEnabled=True)
    g = wait_group(ec, "kill")
    writer = AckedWriter(g["NodeGroups"][0]["PrimaryEndpoint"])
    writer.wait_for_more(20)
    assert admin(server, "POST", "/_elastilite/nodes/us-east-1/kill-001/0001/stop")[0] == 204
    seconds = wait_for_new_primary(ec, "kill", "kill-001")
    writer.wait_for_more(50)
    writer.stop_and_check()
    print(f"automatic failover took {seconds:.3f}s after the kill")


def test_scaling_replicas_while_writing_loses_nothing(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="scale", ReplicationGroupDescription="d", NumCacheClusters=2)
    g = wait_group(ec, "scale")
    writer = AckedWriter(g["NodeGroups"][0]["PrimaryEndpoint"])
    writer.wait_for_more(20)
    ec.increase_replica_count(ReplicationGroupId="scale", NewReplicaCount=3, ApplyImmediately=True)
    g = wait_group(ec, "scale")
    writer.wait_for_more(50)
    ec.decrease_replica_count(ReplicationGroupId="scale", NewReplicaCount=1, ApplyImmediately=True)
    g = wait_group(ec, "scale")
    writer.wait_for_more(50)
    writer.stop_and_check()
    newest = member_clients(g)[g["MemberClusters"][-1]]
    primary = writer.client()
    assert primary.wait(1, 5000) == 1
    last = writer.acknowledged[-1]
    assert newest.get(f"w:{last}") == str(last).encode(), "the remaining replica has every acknowledged write"


def test_adopt_an_existing_cluster_and_switch_the_primary(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="solo", Engine="redis", CacheNodeType="cache.t3.small")
    ep = wait_available(ec, "solo")["CacheNodes"][0]["Endpoint"]
    redis.Redis(host=ep["Address"], port=ep["Port"]).set("from-solo", "1")
    ec.create_replication_group(ReplicationGroupId="adopt", ReplicationGroupDescription="d",
                                PrimaryClusterId="solo", NumCacheClusters=2)
    g = wait_group(ec, "adopt")
    assert g["MemberClusters"] == ["solo", "adopt-001"]
    assert roles(ec, "adopt") == {"solo": "primary", "adopt-001": "replica"}
    assert g["CacheNodeType"] == "cache.t3.small"
    pe = g["NodeGroups"][0]["PrimaryEndpoint"]
    primary = redis.Redis(host=pe["Address"], port=pe["Port"])
    assert primary.get("from-solo") == b"1"
    assert primary.wait(1, 5000) == 1
    assert member_clients(g)["adopt-001"].get("from-solo") == b"1"

    ec.modify_replication_group(ReplicationGroupId="adopt", PrimaryClusterId="adopt-001", ApplyImmediately=True)
    deadline = time.time() + 20
    while roles(ec, "adopt")["adopt-001"] != "primary" and time.time() < deadline:
        time.sleep(0.05)
    assert roles(ec, "adopt") == {"solo": "replica", "adopt-001": "primary"}
    primary = redis.Redis(host=pe["Address"], port=pe["Port"], socket_timeout=5)
    assert primary.set("after-switch", "2")
    assert primary.wait(1, 5000) == 1
