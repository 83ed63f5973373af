"""Client-side caching end to end: a cluster created through boto3, redis-py clients using
CLIENT TRACKING the two ways Redis 7.0 offers (RESP3 pushes on the same connection, RESP2
redirection to a connection subscribed to __redis__:invalidate), plus SLOWLOG, CLIENT PAUSE
and COMMAND metadata as redis-py exposes them."""
import threading
import time

import pytest
import redis

from conftest import wait_available


@pytest.fixture
def endpoint(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="csc", Engine="redis", CacheNodeType="cache.t3.micro",
                            NumCacheNodes=1)
    ep = wait_available(ec, "csc")["CacheNodes"][0]["Endpoint"]
    return ep["Address"], ep["Port"]


def test_resp2_redirect_to_invalidate_channel(endpoint):
    host, port = endpoint
    # redis-py 8 speaks RESP3 by default; RESP2 is where redirection to the channel matters.
    r = redis.Redis(host=host, port=port, protocol=2)
    listener = r.pubsub()
    listener.subscribe("__redis__:invalidate")
    assert listener.get_message(timeout=2)["type"] == "subscribe"
    sub_id = next(c["id"] for c in r.client_list() if c["sub"] == "1")

    tracker = redis.Redis(host=host, port=port, single_connection_client=True, protocol=2)
    assert tracker.client_tracking_on(clientid=int(sub_id))
    info = tracker.client_trackinginfo()  # RESP2: a flat list of pairs
    fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in zip(info[::2], info[1::2])}
    assert fields["redirect"] == int(sub_id)
    r.set("user:1", "alice")
    assert tracker.get("user:1") == b"alice"

    r.set("user:1", "bob")
    msg = listener.get_message(timeout=2)
    assert msg["channel"] == b"__redis__:invalidate"
    assert msg["data"] == [b"user:1"]

    # A key read again is invalidated again; a flush sends a null invalidation.
    assert tracker.get("user:1") == b"bob"
    r.flushall()
    msg = listener.get_message(timeout=2)
    assert msg["channel"] == b"__redis__:invalidate"
    assert msg["data"] is None


def test_resp3_push_invalidation_and_bcast(endpoint):
    host, port = endpoint
    writer = redis.Redis(host=host, port=port)
    c = redis.Redis(host=host, port=port, protocol=3, single_connection_client=True)
    seen = []
    c.connection._parser.set_invalidation_push_handler(lambda m: seen.append(m))
    assert c.client_tracking_on()
    writer.set("k", "1")
    assert c.get("k") == b"1"
    writer.set("k", "2")
    # The push arrives before the next reply on the same connection.
    deadline = time.time() + 2
    while not seen and time.time() < deadline:
        c.ping()
        time.sleep(0.05)
    assert seen and seen[0][0] in (b"invalidate", "invalidate") and seen[0][1] == [b"k"]

    # Expiry invalidates too.
    seen.clear()
    writer.set("e", "1", px=100)
    assert c.get("e") == b"1"
    deadline = time.time() + 3
    while not seen and time.time() < deadline:
        c.ping()
        time.sleep(0.05)
    assert seen and seen[0][1] == [b"e"]

    # BCAST with a prefix: every matching key written, nothing else.
    assert c.client_tracking_off()
    assert c.client_tracking_on(bcast=True, prefix=["user:"])
    seen.clear()
    writer.mset({"user:7": "x", "other": "y"})
    deadline = time.time() + 2
    while not seen and time.time() < deadline:
        c.ping()
        time.sleep(0.05)
    assert seen and seen[0][1] == [b"user:7"]


def test_redis_py_cache_config_refuses_pre_7_4_servers_as_on_elasticache(endpoint):
    """redis-py's built-in cache (cache_config) requires Redis >= 7.4 in HELLO; ElastiCache
    Redis OSS 7.1 reports 7.1, so redis-py refuses there and here alike."""
    from redis.cache import CacheConfig

    host, port = endpoint
    r = redis.Redis(host=host, port=port, protocol=3, cache_config=CacheConfig())
    with pytest.raises(redis.exceptions.ConnectionError, match="7.4"):
        r.get("x")


def test_slowlog_pause_and_command_metadata(endpoint):
    host, port = endpoint
    r = redis.Redis(host=host, port=port)
    assert r.slowlog_len() >= 0
    r.slowlog_reset()
    assert r.slowlog_len() == 0
    assert [k.decode() if isinstance(k, bytes) else k
            for k in r.command_getkeys("MSET", "a", "1", "b", "2")] == ["a", "b"]
    # Redis 7 key specs, as redis-server 7.0 reports them.
    get = r.command()["get"]
    assert get["arity"] == 2 and get["acl_categories"] == ["@read", "@string", "@fast"]
    spec = get["key_specifications"][0]
    assert spec[b"begin_search"] == {b"type": b"index", b"spec": {b"index": 1}}

    # CLIENT PAUSE WRITE holds a writer until the pause ends; readers go on.
    r.client_pause(500, all=False)
    other = redis.Redis(host=host, port=port)
    done = {}

    def write():
        t = time.time()
        other.set("paused", "1")
        done["after"] = time.time() - t

    th = threading.Thread(target=write)
    th.start()
    assert r.get("nothing") is None
    th.join(timeout=5)
    assert done["after"] >= 0.3
