"""Streams, consumer groups and geo commands through redis-py against a cache node, and keyspace
notifications switched on through a parameter group while a subscriber listens."""
import threading
import time

import redis

from conftest import wait_available


def endpoint(cc):
    ep = cc["CacheNodes"][0]["Endpoint"]
    return ep["Address"], ep["Port"]


def test_streams_and_consumer_groups_with_redis_py(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="streams", Engine="redis")
    host, port = endpoint(wait_available(ec, "streams"))
    r = redis.Redis(host=host, port=port)
    ids = [r.xadd("orders", {"n": str(i)}) for i in range(5)]
    assert r.xlen("orders") == 5 and r.type("orders") == b"stream"
    assert [e[0] for e in r.xrange("orders", count=2)] == ids[:2]
    r.xgroup_create("orders", "billing", id="0")
    got = r.xreadgroup("billing", "worker-1", {"orders": ">"}, count=3)
    assert [e[0] for e in got[0][1]] == ids[:3]
    assert r.xpending("orders", "billing")["pending"] == 3
    assert r.xack("orders", "billing", ids[0]) == 1
    claimed = r.xautoclaim("orders", "billing", "worker-2", min_idle_time=0, start_id="0-0")
    assert [e[0] for e in claimed[1]] == ids[1:3]
    # A blocked reader is woken by a write from another connection.
    result = {}

    def reader():
        rr = redis.Redis(host=host, port=port)
        result["v"] = rr.xread({"orders": "$"}, block=5000)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    new_id = r.xadd("orders", {"n": "late"})
    t.join(10)
    assert result["v"][0][1][0][0] == new_id
    info = r.xinfo_stream("orders")
    assert info["length"] == 6 and info["groups"] == 1
    # DUMP/RESTORE keeps the group.
    r.restore("orders-copy", 0, r.dump("orders"))
    assert r.xinfo_groups("orders-copy")[0]["pending"] == 2


def test_geo_with_redis_py(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="geo", Engine="redis")
    host, port = endpoint(wait_available(ec, "geo"))
    r = redis.Redis(host=host, port=port)
    assert r.geoadd("Sicily", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]) == 2
    assert r.geodist("Sicily", "Palermo", "Catania", unit="km") == 166.2742
    assert r.geohash("Sicily", "Palermo") == ["sqc8b49rny0"]
    (lon, lat), = r.geopos("Sicily", "Palermo")
    assert abs(lon - 13.361389) < 1e-5 and abs(lat - 38.115556) < 1e-5
    near = r.geosearch("Sicily", longitude=15, latitude=37, radius=200, unit="km", withdist=True, sort="ASC")
    assert [(m, d) for m, d in near] == [(b"Catania", 56.4413), (b"Palermo", 190.4424)]
    assert r.geosearchstore("near", "Sicily", longitude=15, latitude=37, radius=100, unit="km") == 1
    assert r.zrange("near", 0, -1) == [b"Catania"]


def test_keyspace_notifications_for_streams_via_parameter_group(server):
    ec = server.client()
    ec.create_cache_parameter_group(CacheParameterGroupName="events", CacheParameterGroupFamily="redis7",
                                    Description="stream events")
    ec.create_cache_cluster(CacheClusterId="notified", Engine="redis", CacheParameterGroupName="events")
    host, port = endpoint(wait_available(ec, "notified"))
    ec.modify_cache_parameter_group(CacheParameterGroupName="events", ParameterNameValues=[
        {"ParameterName": "notify-keyspace-events", "ParameterValue": "Kt"}])
    r = redis.Redis(host=host, port=port)
    p = r.pubsub()
    p.psubscribe("__keyspace@0__:*")
    assert p.get_message(timeout=2)["type"] == "psubscribe"
    deadline = time.time() + 5
    msgs = []
    while time.time() < deadline and len(msgs) < 2:
        # The parameter reaches the node asynchronously: write until events arrive.
        if not msgs:
            r.xadd("ev", {"a": "1"})
            r.set("plain", "x")  # not a stream event: never published with "Kt"
        m = p.get_message(timeout=0.2)
        if m and m["type"] == "pmessage":
            msgs.append((m["channel"], m["data"]))
    assert msgs[0] == (b"__keyspace@0__:ev", b"xadd")
    assert all(ch == b"__keyspace@0__:ev" for ch, _ in msgs)
