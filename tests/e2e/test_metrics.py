"""`GET /metrics`: ElastiCache's CloudWatch metric names in the Prometheus text
format, parsed with prometheus-client's own parser, with values that follow what
the nodes really do (issue 11)."""
import time
import urllib.request

import pymemcache.client.base
import redis
from prometheus_client.parser import text_string_to_metric_families

from test_replication_groups import wait_group
from conftest import wait_available

LABELS = {"region", "cache_cluster_id", "cache_node_id", "replication_group_id", "role", "engine"}


def scrape(server):
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def per_node(families, name):
    """{cache_cluster_id: value} of one per-node metric (one node per cluster here)."""
    fam = families[f"elasticache_{name}"]
    out = {}
    for s in fam.samples:
        assert LABELS <= set(s.labels), s
        out[s.labels["cache_cluster_id"]] = s.value
    return out


def wait_for(server, predicate, timeout=10):
    """Scrape until predicate(families) holds; returns the last families."""
    deadline = time.time() + timeout
    while True:
        fams = scrape(server)
        if predicate(fams):
            return fams
        assert time.time() < deadline, "metrics never reached the expected state"
        time.sleep(0.1)


def test_redis_metrics_follow_the_nodes(server):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="m", ReplicationGroupDescription="d", NumCacheClusters=2,
                                AutomaticFailoverEnabled=True)
    g = wait_group(ec, "m")
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=5)

    # Nodes publish their statistics every 100 ms: the replica's role shows within that.
    fams = wait_for(server, lambda f: per_node(f, "IsMaster") == {"m-001": 1.0, "m-002": 0.0})
    for name in ["CPUUtilization", "EngineCPUUtilization", "CurrConnections", "NewConnections", "CacheHits",
                 "CacheMisses", "CacheHitRate", "Evictions", "Reclaimed", "CurrItems", "BytesUsedForCache",
                 "DatabaseMemoryUsagePercentage", "ReplicationLag", "ReplicationBytes", "GetTypeCmds",
                 "SetTypeCmds", "NetworkBytesIn", "NetworkBytesOut", "IsMaster"]:
        assert f"elasticache_{name}" in fams, name
        assert f"elasticache_cluster_{name}" in fams, name
    assert fams["elasticache_CacheHits"].type == "counter"
    assert fams["elasticache_CurrItems"].type == "gauge"
    sample = fams["elasticache_IsMaster"].samples[0]
    assert sample.labels["region"] == "us-east-1" and sample.labels["replication_group_id"] == "m"
    assert sample.labels["cache_node_id"] == "0001"
    assert per_node(fams, "IsMaster") == {"m-001": 1.0, "m-002": 0.0}
    roles = {s.labels["cache_cluster_id"]: s.labels["role"] for s in fams["elasticache_IsMaster"].samples}
    assert roles == {"m-001": "primary", "m-002": "replica"}

    hits0 = per_node(fams, "CacheHits")["m-001"]
    misses0 = per_node(fams, "CacheMisses")["m-001"]
    gets0 = per_node(fams, "GetTypeCmds")["m-001"]
    sets0 = per_node(fams, "SetTypeCmds")["m-001"]
    repl0 = per_node(fams, "ReplicationBytes")["m-001"]
    net_in0 = per_node(fams, "NetworkBytesIn")["m-001"]
    pipe = r.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"key:{i}", "x" * 100)
    pipe.execute()
    for i in range(300):
        pipe.get(f"key:{i}")
    for i in range(50):
        pipe.get(f"missing:{i}")
    pipe.execute()

    def moved(f):
        return (per_node(f, "CacheHits")["m-001"] == hits0 + 300
                and per_node(f, "CurrItems") == {"m-001": 500.0, "m-002": 500.0})
    fams = wait_for(server, moved)
    assert per_node(fams, "CacheMisses")["m-001"] == misses0 + 50
    assert per_node(fams, "GetTypeCmds")["m-001"] == gets0 + 350
    assert per_node(fams, "SetTypeCmds")["m-001"] == sets0 + 500
    assert per_node(fams, "ReplicationBytes")["m-001"] > repl0 + 500 * 100
    assert per_node(fams, "NetworkBytesIn")["m-001"] > net_in0 + 500 * 100
    assert per_node(fams, "CurrItems")["m-001"] == r.dbsize()
    assert per_node(fams, "BytesUsedForCache")["m-001"] > 500 * 100
    assert 0 < per_node(fams, "DatabaseMemoryUsagePercentage")["m-001"] < 100
    assert 0 <= per_node(fams, "CacheHitRate")["m-001"] <= 100
    assert per_node(fams, "CurrConnections")["m-001"] >= 1
    assert per_node(fams, "ReplicationLag")["m-002"] < 5
    # The cluster-level series sum counters over the cluster's nodes.
    cluster = {s.labels["cache_cluster_id"]: s.value for s in fams["elasticache_cluster_CacheHits"].samples}
    assert cluster["m-001"] == per_node(fams, "CacheHits")["m-001"]

    # CPU: keep the primary busy for a while; its thread's CPU time shows.
    deadline = time.time() + 2
    while time.time() < deadline:
        for i in range(200):
            pipe.incr("counter")
        pipe.execute()
    fams = wait_for(server, lambda f: per_node(f, "EngineCPUUtilization")["m-001"] > 0)
    assert 0 < per_node(fams, "CPUUtilization")["m-001"] <= per_node(fams, "EngineCPUUtilization")["m-001"]

    ec.test_failover(ReplicationGroupId="m", NodeGroupId="0001")
    wait_group(ec, "m")
    fams = wait_for(server, lambda f: per_node(f, "IsMaster") == {"m-001": 0.0, "m-002": 1.0})
    roles = {s.labels["cache_cluster_id"]: s.labels["role"] for s in fams["elasticache_IsMaster"].samples}
    assert roles == {"m-001": "replica", "m-002": "primary"}


def test_memcached_metrics_follow_the_node(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="mc", Engine="memcached", NumCacheNodes=1)
    node = wait_available(ec, "mc")["CacheNodes"][0]["Endpoint"]
    c = pymemcache.client.base.Client((node["Address"], node["Port"]), timeout=5)
    fams = scrape(server)
    assert "elasticache_CmdGet" in fams and "elasticache_GetHits" in fams
    get0 = per_node(fams, "CmdGet")["mc"]
    for i in range(40):
        c.set(f"k{i}", b"v" * 10)
    for i in range(60):
        c.get(f"k{i}")
    fams = wait_for(server, lambda f: per_node(f, "CmdGet")["mc"] == get0 + 60)
    assert per_node(fams, "GetHits")["mc"] == 40
    assert per_node(fams, "GetMisses")["mc"] == 20
    assert per_node(fams, "CmdSet")["mc"] == 40
    # The Redis names, derived from memcached's counters.
    assert per_node(fams, "CacheHits")["mc"] == 40 and per_node(fams, "CacheMisses")["mc"] == 20
    assert per_node(fams, "GetTypeCmds")["mc"] == get0 + 60 and per_node(fams, "SetTypeCmds")["mc"] == 40
    stats = c.stats()
    assert per_node(fams, "CurrItems")["mc"] == stats[b"curr_items"] == 40
    assert per_node(fams, "BytesUsedForCacheItems")["mc"] == stats[b"bytes"]
    assert per_node(fams, "CurrConnections")["mc"] >= 1


def test_a_stopped_node_is_down(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="down", Engine="redis")
    wait_available(ec, "down")
    up = {s.labels["cache_cluster_id"]: s.value for s in scrape(server)["elastilite_node_up"].samples}
    assert up == {"down": 1.0}
    req = urllib.request.Request(server.endpoint + "/_elastilite/nodes/us-east-1/down/0001/stop", method="POST")
    assert urllib.request.urlopen(req, timeout=10).status == 204
    fams = scrape(server)
    assert {s.labels["cache_cluster_id"]: s.value for s in fams["elastilite_node_up"].samples} == {"down": 0.0}
    assert not [s for s in fams.get("elasticache_CurrItems", fams["elastilite_node_up"]).samples
                if s.name == "elasticache_CurrItems"]
