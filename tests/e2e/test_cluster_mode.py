"""Cluster mode enabled replication groups, end to end: boto3 for the API,
redis-py's RedisCluster and redis-cli --cluster for the data path."""
import subprocess
import threading
import time

import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import LoadBalancingStrategy, RedisCluster
from redis.retry import Retry

from conftest import wait_available


def wait_group(ec, rg, timeout=120):
    deadline = time.time() + timeout
    while True:
        g = ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]
        if g["Status"] == "available":
            return g
        assert time.time() < deadline, f"{rg} still {g['Status']}"
        time.sleep(0.2)


def create(ec, rg, shards=3, replicas=1, **kw):
    ec.create_replication_group(
        ReplicationGroupId=rg, ReplicationGroupDescription="cluster test",
        NumNodeGroups=shards, ReplicasPerNodeGroup=replicas,
        CacheParameterGroupName="default.redis7.cluster.on", **kw)
    return wait_group(ec, rg)


def raw(ep, *args):
    """One command on one node, the reply unparsed (redis-py parses CLUSTER NODES/INFO)."""
    conn = redis.Connection(host=ep["Address"], port=ep["Port"])
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        conn.disconnect()


def line(ep, *args):
    """The exact first reply line of a command (errors are not parsed into exceptions)."""
    import socket
    with socket.create_connection((ep["Address"], ep["Port"]), timeout=5) as s:
        req = f"*{len(args)}\r\n" + "".join(f"${len(str(a))}\r\n{a}\r\n" for a in args)
        s.sendall(req.encode())
        buf = b""
        while not buf.endswith(b"\r\n"):
            buf += s.recv(4096)
        return buf.split(b"\r\n")[0].decode()


def cluster_client(g, **kw):
    ep = g["ConfigurationEndpoint"]
    return RedisCluster(host=ep["Address"], port=ep["Port"], **kw)


def slot_ranges(g):
    out = {}
    for ng in g["NodeGroups"]:
        out[ng["NodeGroupId"]] = ng["Slots"]
    return out


def test_create_shape_and_member_clusters(server):
    ec = server.client()
    g = create(ec, "shape")
    assert g["ClusterEnabled"] is True
    assert g["ClusterMode"] == "enabled"
    assert g["AutomaticFailover"] == "enabled"
    assert set(g["ConfigurationEndpoint"]) == {"Address", "Port"}
    assert g["MemberClusters"] == [f"shape-000{s}-00{n}" for s in (1, 2, 3) for n in (1, 2)]
    assert slot_ranges(g) == {"0001": "0-5460", "0002": "5461-10922", "0003": "10923-16383"}
    for ng in g["NodeGroups"]:
        # As on AWS: node groups of a cluster-mode group have no endpoints of their own.
        assert "PrimaryEndpoint" not in ng and "ReaderEndpoint" not in ng
        assert len(ng["NodeGroupMembers"]) == 2
        for m in ng["NodeGroupMembers"]:
            assert set(m["ReadEndpoint"]) == {"Address", "Port"}
    # Members are real cache clusters, and the announced addresses are the API's.
    cc = wait_available(ec, "shape-0002-002")
    assert cc["ReplicationGroupId"] == "shape"
    node = cc["CacheNodes"][0]["Endpoint"]
    r = redis.Redis(host=node["Address"], port=node["Port"])
    lines = raw(node, "CLUSTER", "NODES").decode().splitlines()
    mine = [l for l in lines if "myself" in l][0].split()
    assert mine[1].split("@")[0] == f"{node['Address']}:{node['Port']}"
    assert mine[2] == "myself,slave"
    assert raw(node, "CLUSTER", "INFO").decode().startswith("cluster_state:ok")
    assert r.info("cluster")["cluster_enabled"] == 1
    described = {
        f"{m['ReadEndpoint']['Address']}:{m['ReadEndpoint']['Port']}"
        for ng in g["NodeGroups"] for m in ng["NodeGroupMembers"]
    }
    assert {l.split()[1].split("@")[0] for l in lines} == described


def test_explicit_node_group_configuration(server):
    ec = server.client()
    ec.create_replication_group(
        ReplicationGroupId="explicit", ReplicationGroupDescription="d",
        ClusterMode="enabled", CacheParameterGroupName="default.redis7.cluster.on",
        NodeGroupConfiguration=[
            {"NodeGroupId": "0001", "Slots": "0-999", "ReplicaCount": 0,
             "PrimaryAvailabilityZone": "us-east-1a"},
            {"NodeGroupId": "0002", "Slots": "1000-16383", "ReplicaCount": 2,
             "PrimaryAvailabilityZone": "us-east-1b",
             "ReplicaAvailabilityZones": ["us-east-1c", "us-east-1a"]},
        ])
    g = wait_group(ec, "explicit")
    assert slot_ranges(g) == {"0001": "0-999", "0002": "1000-16383"}
    sizes = {ng["NodeGroupId"]: len(ng["NodeGroupMembers"]) for ng in g["NodeGroups"]}
    assert sizes == {"0001": 1, "0002": 3}
    azs = [m["PreferredAvailabilityZone"] for m in g["NodeGroups"][1]["NodeGroupMembers"]]
    assert azs == ["us-east-1b", "us-east-1c", "us-east-1a"]
    node = g["NodeGroups"][1]["NodeGroupMembers"][1]["ReadEndpoint"]
    slots = redis.Redis(host=node["Address"], port=node["Port"]).execute_command("CLUSTER SLOTS")
    assert sorted((s[0], s[1]) for s in slots) == [(0, 999), (1000, 16383)]


@pytest.mark.parametrize("params,code", [
    ({"NumNodeGroups": 2, "ClusterMode": "disabled"}, "InvalidParameterCombination"),
    ({"NumNodeGroups": 2, "CacheParameterGroupName": "default.redis7"}, "InvalidParameterCombination"),
    ({"NumNodeGroups": 2, "NumCacheClusters": 2}, "InvalidParameterCombination"),
    ({"NumNodeGroups": 2, "AutomaticFailoverEnabled": False}, "InvalidParameterCombination"),
    ({"NodeGroupConfiguration": [{"Slots": "0-100"}, {"Slots": "200-16383"}]}, "InvalidParameterValue"),
    ({"NodeGroupConfiguration": [{"Slots": "0-9000"}, {"Slots": "9000-16383"}]}, "InvalidParameterValue"),
    ({"NumNodeGroups": 2, "ReplicasPerNodeGroup": 6}, "InvalidParameterValue"),
])
def test_invalid_cluster_requests(server, params, code):
    ec = server.client()
    with pytest.raises(ec.exceptions.ClientError) as e:
        ec.create_replication_group(ReplicationGroupId="bad", ReplicationGroupDescription="d", **params)
    assert e.value.response["Error"]["Code"] == code


def test_cluster_clients_redirections_and_redis_cli_check(server):
    ec = server.client()
    g = create(ec, "data")
    rc = cluster_client(g)
    pipe = rc.pipeline(transaction=False)
    for i in range(100_000):
        pipe.set(f"key:{i}", i)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    assert rc.dbsize(target_nodes=RedisCluster.PRIMARIES) == 100_000
    assert rc.get("key:77777") == b"77777"
    # Hash tags keep multi-key commands on one slot.
    rc.mset({"{user:1}:name": "ann", "{user:1}:mail": "ann@x"})
    assert rc.mget("{user:1}:name", "{user:1}:mail") == [b"ann", b"ann@x"]
    # Straight to a node: keys of another shard are refused with MOVED, multi-slot with CROSSSLOT.
    primaries = [ng["NodeGroupMembers"][0]["ReadEndpoint"] for ng in g["NodeGroups"]]
    r0 = redis.Redis(host=primaries[0]["Address"], port=primaries[0]["Port"])
    assert line(primaries[0], "MGET", "{a}1", "{b}2") == "-CROSSSLOT Keys in request don't hash to the same slot"
    slot = rc.keyslot("key:77777")
    owner = [ng for ng in g["NodeGroups"] if in_slots(slot, ng["Slots"])][0]
    if owner["NodeGroupId"] != "0001":
        ep = owner["NodeGroupMembers"][0]["ReadEndpoint"]
        assert line(primaries[0], "GET", "key:77777") == f"-MOVED {slot} {ep['Address']}:{ep['Port']}"
    with pytest.raises(redis.ResponseError, match="not allowed in cluster mode"):
        r0.execute_command("SELECT", "1")
    # A replica answers MOVED until the connection says READONLY.
    rep = owner["NodeGroupMembers"][1]["ReadEndpoint"]
    rr = redis.Redis(host=rep["Address"], port=rep["Port"])
    deadline = time.time() + 10
    assert line(rep, "GET", "key:77777").startswith("-MOVED ")
    rr.execute_command("READONLY")
    while rr.get("key:77777") is None and time.time() < deadline:
        time.sleep(0.05)
    assert rr.get("key:77777") == b"77777"
    with pytest.raises(redis.exceptions.MovedError):
        rr.set("key:77777", "x")
    rr.execute_command("READWRITE")
    with pytest.raises(redis.exceptions.MovedError):
        rr.get("key:77777")
    # RedisCluster reading from replicas.
    ro = cluster_client(g, load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN)
    assert ro.get("key:12345") == b"12345"
    # ElastiCache keeps cluster administration to the API.
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        r0.execute_command("CLUSTER", "MEET", "127.0.0.1", "7000")
    with pytest.raises(redis.ResponseError, match="unknown subcommand"):
        r0.execute_command("CLUSTER", "ADDSLOTS", "1")
    # redis-cli's own cluster check, through the configuration endpoint.
    ep = g["ConfigurationEndpoint"]
    out = subprocess.run(["redis-cli", "--cluster", "check", f"{ep['Address']}:{ep['Port']}"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "[OK] All nodes agree about slots configuration." in out
    assert "[OK] All 16384 slots covered." in out
    assert "[OK] 100002 keys in 3 masters." in out
    # redis-cli -c follows MOVED by itself.
    out = subprocess.run(["redis-cli", "-c", "-h", ep["Address"], "-p", str(ep["Port"]), "GET", "key:4242"],
                         capture_output=True, text=True, timeout=30).stdout
    assert out.strip() == "4242"


def in_slots(slot, spec):
    for part in spec.split(","):
        a, _, b = part.partition("-")
        if int(a) <= slot <= int(b or a):
            return True
    return False


class Writer:
    """Writes w:<n> = n through a cluster client until stopped; remembers what was acknowledged."""

    def __init__(self, g):
        self.client = cluster_client(g, retry=Retry(ExponentialBackoff(cap=0.5, base=0.01), 10))
        self.acked = []
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stop.is_set():
            try:
                self.client.set(f"w:{n}", n)
                self.acked.append(n)
                n += 1
            except Exception:  # noqa: BLE001 - redis-py can also trip over a vanished node
                # Not acknowledged: it may or may not have been applied; never checked.
                self.errors += 1
                time.sleep(0.05)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=30)
        return self.acked


def reshard(ec, rg, count, **kw):
    resp = ec.modify_replication_group_shard_configuration(
        ReplicationGroupId=rg, NodeGroupCount=count, ApplyImmediately=True, **kw)["ReplicationGroup"]
    assert resp["Status"] == "modifying"
    assert resp["PendingModifiedValues"]["Resharding"]["SlotMigration"]["ProgressPercentage"] == 0.0
    seen_progress = None
    deadline = time.time() + 300
    while True:
        g = ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]
        if g["Status"] == "available":
            return g, seen_progress
        assert g["Status"] == "modifying"
        p = g.get("PendingModifiedValues", {}).get("Resharding", {}).get("SlotMigration", {})
        if "ProgressPercentage" in p:
            seen_progress = p["ProgressPercentage"]
        assert time.time() < deadline
        time.sleep(0.1)


def test_online_resharding_out_and_in_loses_nothing(server):
    ec = server.client()
    g = create(ec, "resh")
    rc = cluster_client(g)
    pipe = rc.pipeline(transaction=False)
    for i in range(100_000):
        pipe.set(f"key:{i}", i)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    # Streams move too, with their consumer groups and pending entries.
    for s in range(20):
        rc.xadd(f"stream:{s}", {"f": s})
        rc.xadd(f"stream:{s}", {"f": s + 1})
        rc.xgroup_create(f"stream:{s}", "g", id="0")
        rc.xreadgroup("g", "c", {f"stream:{s}": ">"}, count=1)
    writer = Writer(g)
    t0 = time.time()
    g, progress = reshard(ec, "resh", 4)
    out_secs = time.time() - t0
    assert len(g["NodeGroups"]) == 4
    counts = [sum(int(b or a) - int(a) + 1 for a, _, b in (p.partition("-") for p in ng["Slots"].split(",")))
              for ng in g["NodeGroups"]]
    assert counts == [4096] * 4
    assert "resh-0004-001" in g["MemberClusters"] and "resh-0004-002" in g["MemberClusters"]
    t0 = time.time()
    g, _ = reshard(ec, "resh", 2, NodeGroupsToRemove=["0003", "0004"])
    in_secs = time.time() - t0
    acked = writer.finish()
    print(f"resharding 3->4: {out_secs:.2f}s, 4->2: {in_secs:.2f}s, writer acked {len(acked)} ({writer.errors} retried errors)")
    assert [ng["NodeGroupId"] for ng in g["NodeGroups"]] == ["0001", "0002"]
    assert len(g["MemberClusters"]) == 4
    with pytest.raises(ec.exceptions.CacheClusterNotFoundFault):
        ec.describe_cache_clusters(CacheClusterId="resh-0003-001")
    rc = cluster_client(g)
    # Every key is where the topology says, exactly once.
    total = rc.dbsize(target_nodes=RedisCluster.PRIMARIES)
    assert total == 100_000 + len(acked) + 20
    for s in range(20):
        assert rc.xlen(f"stream:{s}") == 2
        [group] = rc.xinfo_groups(f"stream:{s}")
        assert group["pending"] == 1 and group["consumers"] == 1
    pipe = rc.pipeline(transaction=False)
    for i in range(100_000):
        pipe.get(f"key:{i}")
    values = pipe.execute()
    assert values == [str(i).encode() for i in range(100_000)]
    pipe = rc.pipeline(transaction=False)
    for n in acked:
        pipe.get(f"w:{n}")
    assert pipe.execute() == [str(n).encode() for n in acked]
    assert len(acked) > 10
    # Replicas followed the moves (keys restored on the target, deleted on the source).
    for ng in g["NodeGroups"]:
        p, r = (redis.Redis(host=m["ReadEndpoint"]["Address"], port=m["ReadEndpoint"]["Port"])
                for m in ng["NodeGroupMembers"])
        deadline = time.time() + 20
        while r.dbsize() != p.dbsize():
            assert time.time() < deadline, (ng["NodeGroupId"], p.dbsize(), r.dbsize())
            time.sleep(0.1)
    ep = g["ConfigurationEndpoint"]
    out = subprocess.run(["redis-cli", "--cluster", "check", f"{ep['Address']}:{ep['Port']}"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "[OK] All 16384 slots covered." in out and "[WARNING]" not in out


def test_failover_of_one_shard_while_writing(server):
    ec = server.client()
    g = create(ec, "fo")
    old = g["NodeGroups"][1]["NodeGroupMembers"][0]["CacheClusterId"]
    assert old == "fo-0002-001"
    writer = Writer(g)
    time.sleep(0.5)
    t0 = time.time()
    ec.test_failover(ReplicationGroupId="fo", NodeGroupId="0002")
    while True:
        g = ec.describe_replication_groups(ReplicationGroupId="fo")["ReplicationGroups"][0]
        if g["Status"] == "available" and g["NodeGroups"][1]["NodeGroupMembers"][0]["CacheClusterId"] != old:
            break
        assert time.time() - t0 < 30
        time.sleep(0.05)
    secs = time.time() - t0
    before = len(writer.acked)
    time.sleep(1.0)
    acked = writer.finish()
    print(f"shard failover: {secs:.2f}s; writer acked {len(acked)}, {writer.errors} retried errors")
    assert len(acked) > before, "the client did not recover after the failover"
    new = g["NodeGroups"][1]["NodeGroupMembers"][0]
    assert new["CacheClusterId"] == "fo-0002-002"
    # Every node now routes shard 0002's slots to the new primary.
    slot = 5461
    r = redis.Redis(host=g["NodeGroups"][0]["NodeGroupMembers"][0]["ReadEndpoint"]["Address"],
                    port=g["NodeGroups"][0]["NodeGroupMembers"][0]["ReadEndpoint"]["Port"])
    slots = r.execute_command("CLUSTER SLOTS")
    entry = [s for s in slots if s[0] <= slot <= s[1]][0]
    assert (entry[2][0].decode(), entry[2][1]) == (new["ReadEndpoint"]["Address"], new["ReadEndpoint"]["Port"])
    rc = cluster_client(g)
    pipe = rc.pipeline(transaction=False)
    for n in acked:
        pipe.get(f"w:{n}")
    got = pipe.execute()
    missing = [n for n, v in zip(acked, got) if v != str(n).encode()]
    assert missing == []
    with pytest.raises(ec.exceptions.NodeGroupNotFoundFault):
        ec.test_failover(ReplicationGroupId="fo", NodeGroupId="0009")
    # Not supported on cluster-mode groups (yet, or at all on AWS): refused, not ignored.
    for call, kw in ((ec.modify_replication_group, {"ClusterMode": "disabled", "ApplyImmediately": True}),
                     (ec.modify_replication_group, {"PrimaryClusterId": "fo-0002-001", "ApplyImmediately": True}),
                     (ec.delete_replication_group, {"RetainPrimaryCluster": True})):
        with pytest.raises(ec.exceptions.ClientError) as e:
            call(ReplicationGroupId="fo", **kw)
        assert e.value.response["Error"]["Code"] in ("InvalidParameterValue", "InvalidParameterCombination")
    # A snapshot after the failover is taken from the shard's new primary and
    # holds every acknowledged write (test_snapshots_cluster_mode.py covers the rest).
    from test_snapshots import wait_snapshot
    ec.create_snapshot(ReplicationGroupId="fo", SnapshotName="fo-snap")
    snap = wait_snapshot(ec, "fo-snap")
    assert snap["NodeSnapshots"][1]["CacheClusterId"] == "fo-0002-002"
    ec.create_replication_group(ReplicationGroupId="fo-back", ReplicationGroupDescription="d",
                                SnapshotName="fo-snap", NumNodeGroups=2, ReplicasPerNodeGroup=0,
                                CacheParameterGroupName="default.redis7.cluster.on")
    pipe = cluster_client(wait_group(ec, "fo-back")).pipeline(transaction=False)
    for n in acked:
        pipe.get(f"w:{n}")
    assert pipe.execute() == [str(n).encode() for n in acked]


def test_shard_primary_dying_fails_over(server):
    import json
    import urllib.request
    ec = server.client()
    g = create(ec, "die", shards=2, replicas=1)
    rc = cluster_client(g, retry=Retry(ExponentialBackoff(cap=0.5, base=0.01), 10))
    rc.set("before", "1")
    with urllib.request.urlopen(server.endpoint + "/_elastilite/nodes", timeout=10) as r:
        nodes = {n["cache_cluster_id"]: n for n in json.loads(r.read())}
    assert nodes["die-0002-001"]["role"] == "primary" and nodes["die-0002-002"]["role"] == "replica"
    req = urllib.request.Request(server.endpoint + "/_elastilite/nodes/us-east-1/die-0002-001/0001/stop",
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204
    deadline = time.time() + 20
    while True:
        g = ec.describe_replication_groups(ReplicationGroupId="die")["ReplicationGroups"][0]
        if g["NodeGroups"][1]["NodeGroupMembers"][0]["CacheClusterId"] == "die-0002-002":
            break
        assert time.time() < deadline
        time.sleep(0.05)
    # Keys of both shards are writable again through the same client.
    for i in range(200):
        rc.set(f"after:{i}", i)
    assert rc.get("after:199") == b"199"
    events = [e["Message"] for e in ec.describe_events(SourceType="replication-group", SourceIdentifier="die")["Events"]]
    assert any("Failover from master node die-0002-001 to replica node die-0002-002" in m for m in events), events


def test_replica_count_per_shard_and_delete(server):
    ec = server.client()
    g = create(ec, "reps", shards=2, replicas=1)
    ec.increase_replica_count(ReplicationGroupId="reps", ApplyImmediately=True,
                              ReplicaConfiguration=[{"NodeGroupId": "0002", "NewReplicaCount": 3}])
    g = wait_group(ec, "reps")
    sizes = {ng["NodeGroupId"]: len(ng["NodeGroupMembers"]) for ng in g["NodeGroups"]}
    assert sizes == {"0001": 2, "0002": 4}
    assert "reps-0002-004" in g["MemberClusters"]
    ec.decrease_replica_count(ReplicationGroupId="reps", ApplyImmediately=True, NewReplicaCount=0)
    g = wait_group(ec, "reps")
    assert [len(ng["NodeGroupMembers"]) for ng in g["NodeGroups"]] == [1, 1]
    rc = cluster_client(g)
    rc.set("x", "1")
    assert rc.get("x") == b"1"
    node = g["NodeGroups"][0]["NodeGroupMembers"][0]["ReadEndpoint"]
    lines = raw(node, "CLUSTER", "NODES").decode().splitlines()
    assert len(lines) == 2
    ec.delete_replication_group(ReplicationGroupId="reps")
    deadline = time.time() + 30
    while True:
        try:
            ec.describe_replication_groups(ReplicationGroupId="reps")
        except ec.exceptions.ReplicationGroupNotFoundFault:
            break
        assert time.time() < deadline
        time.sleep(0.1)
    assert not any(c["CacheClusterId"].startswith("reps-") for c in ec.describe_cache_clusters()["CacheClusters"])


def test_cluster_group_survives_a_restart(server):
    ec = server.client()
    g = create(ec, "keep", shards=2, replicas=0)
    server.stop()
    server.start()
    ec = server.client()
    g2 = wait_group(ec, "keep")
    assert g2["ConfigurationEndpoint"] == g["ConfigurationEndpoint"]
    assert slot_ranges(g2) == slot_ranges(g)
    rc = cluster_client(g2)
    rc.set("after-restart", "yes")
    assert rc.get("after-restart") == b"yes"
    ep = g2["ConfigurationEndpoint"]
    out = subprocess.run(["redis-cli", "--cluster", "check", f"{ep['Address']}:{ep['Port']}"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "[OK] All 16384 slots covered." in out


def test_publish_reaches_subscribers_on_every_node(server):
    """Redis Cluster broadcasts PUBLISH over its bus: a subscriber on any node (primary or
    replica, any shard) gets a message published on any other node; the reply counts only
    the publishing node's receivers, as in Redis."""
    ec = server.client()
    g = create(ec, "bus", shards=2, replicas=1)
    eps = {m["CacheClusterId"]: m["ReadEndpoint"] for ng in g["NodeGroups"] for m in ng["NodeGroupMembers"]}
    subs = {}
    for cid, ep in eps.items():
        p = redis.Redis(host=ep["Address"], port=ep["Port"]).pubsub()
        p.subscribe("news")
        p.psubscribe("ne*")
        assert p.get_message(timeout=5)["type"] == "subscribe"
        assert p.get_message(timeout=5)["type"] == "psubscribe"
        subs[cid] = p
    pub = redis.Redis(host=eps["bus-0002-001"]["Address"], port=eps["bus-0002-001"]["Port"])
    # Two receivers here (the channel and the pattern subscription on this node).
    assert pub.publish("news", "hello") == 2
    for cid, p in subs.items():
        got = []
        deadline = time.time() + 5
        while len(got) < 2 and time.time() < deadline:
            m = p.get_message(timeout=0.5)
            if m:
                got.append((m["type"], m["data"]))
        assert sorted(got) == [("message", b"hello"), ("pmessage", b"hello")], (cid, got)
        # Exactly once: the bus does not forward a forwarded message again.
        assert p.get_message(timeout=0.3) is None, cid
    # A node without local subscribers answers 0 yet delivers across the cluster.
    lonely = redis.Redis(host=eps["bus-0001-002"]["Address"], port=eps["bus-0001-002"]["Port"])
    subs["bus-0001-002"].unsubscribe()
    subs["bus-0001-002"].punsubscribe()
    time.sleep(0.2)
    assert lonely.publish("news", "again") == 0
    m = subs["bus-0002-002"].get_message(timeout=5)
    assert m and m["data"] == b"again"
