"""redis-py against a node: the seed's set/get and pub/sub chat, pipelines, transactions."""
import sys
import time

import redis

port, proto = int(sys.argv[1]), int(sys.argv[2])
r = redis.Redis(port=port, protocol=proto)
r.flushall()
assert r.set("foo", "bar")
assert r.get("foo") == b"bar"

p = r.pubsub()
p.subscribe("chat")
p.psubscribe("ch*")
assert p.get_message(timeout=1)["type"] == "subscribe"
assert p.get_message(timeout=1)["type"] == "psubscribe"
assert r.publish("chat", "hello") == 2
m1 = p.get_message(timeout=1)
m2 = p.get_message(timeout=1)
assert (m1["type"], m1["data"]) == ("message", b"hello"), m1
assert (m2["type"], m2["pattern"], m2["data"]) == ("pmessage", b"ch*", b"hello"), m2
assert r.pubsub_channels() == [b"chat"]
assert r.pubsub_numsub("chat") == [(b"chat", 1)]
assert r.pubsub_numpat() == 1
p.unsubscribe("chat")
assert p.get_message(timeout=1)["type"] == "unsubscribe"
p.close()

pipe = r.pipeline()
for i in range(10000):
    pipe.set(f"k{i}", i)
pipe.execute()
assert r.dbsize() == 10001

with r.pipeline(transaction=True) as t:
    t.incr("n").incr("n")
    assert t.execute() == [1, 2]

r.hset("h", mapping={"a": 1, "b": 2})
assert r.hgetall("h") == {b"a": b"1", b"b": b"2"}
r.zadd("z", {"a": 1.5, "b": 2})
assert [tuple(x) for x in r.zrange("z", 0, -1, withscores=True)] == [(b"a", 1.5), (b"b", 2.0)]
r.rpush("l", 1, 2, 3)
assert tuple(r.blpop(["l"], timeout=1)) == (b"l", b"1")
assert r.blpop(["none"], timeout=0.1) is None
assert r.client_setname("me") and r.client_getname() in ("me", b"me")
assert r.info()["redis_version"]
assert r.ttl("foo") == -1
r.expire("foo", 10)
assert 9 <= r.ttl("foo") <= 10
assert len(list(r.scan_iter(match="k1*", count=100))) == 1111
print("ok", proto)
