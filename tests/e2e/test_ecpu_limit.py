"""Issue 11: a serverless cache's CacheUsageLimits.ECPUPerSecond.Maximum is enforced:
commands are throttled (delayed, not refused) once the cache is over its rate."""
import re
import ssl
import time
import urllib.request

import botocore.exceptions
import pytest
import redis

from conftest import Server

N = 3000


@pytest.fixture
def sserver():
    s = Server()
    yield s
    s.stop()


def wait_cache(ec, name):
    for _ in range(200):
        c = ec.describe_serverless_caches(ServerlessCacheName=name)["ServerlessCaches"][0]
        if c["Status"] == "available":
            return c
        time.sleep(0.05)
    raise AssertionError(f"{name} stayed {c['Status']}")


def client(server, c, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(urllib.request.urlopen(server.endpoint + "/_elastilite/ca.pem").read())
    ep = c["Endpoint"]
    return redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=str(ca), socket_timeout=30)


def timed_sets(r, prefix, n=N, value="v"):
    t = time.monotonic()
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.set(f"{prefix}:{i}", value)
    assert all(p.execute())
    return time.monotonic() - t


def metric(server, family, cache):
    text = urllib.request.urlopen(server.endpoint + "/metrics").read().decode()
    m = re.search(rf'^{family}\{{region="us-east-1",serverless_cache_name="{cache}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def test_ecpu_per_second_maximum_throttles_and_follows_modify(sserver, tmp_path):
    ec = sserver.client()
    # AWS validates the range 1,000-15,000,000 ECPUs per second.
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidParameterValue"):
        ec.create_serverless_cache(ServerlessCacheName="tiny", Engine="valkey",
                                   CacheUsageLimits={"ECPUPerSecond": {"Maximum": 999}})
    ec.create_serverless_cache(ServerlessCacheName="limited", Engine="valkey",
                               CacheUsageLimits={"ECPUPerSecond": {"Maximum": 1000}})
    ec.create_serverless_cache(ServerlessCacheName="free", Engine="valkey")
    limited = client(sserver, wait_cache(ec, "limited"), tmp_path)
    free = client(sserver, wait_cache(ec, "free"), tmp_path)

    # Without a maximum the pipeline runs at full speed.
    fast = timed_sets(free, "a")
    # 1,000 ECPU/s: 3,000 small SETs (1 ECPU each) take about 3 s (the bucket holds
    # a tenth of a second of burst). Commands wait; none is refused.
    slow = timed_sets(limited, "a")
    assert slow >= (N - 100) / 1000 * 0.9, (slow, fast)
    assert slow < 15, slow
    assert fast < slow / 2, (slow, fast)
    assert limited.dbsize() == N
    throttled = metric(sserver, "elasticache_serverless_ThrottledCmds_total", "limited")
    # Each delayed command counts once, however often its connection was woken.
    assert 0 < throttled <= N, throttled
    ecpus = metric(sserver, "elasticache_serverless_ElastiCacheProcessingUnits_total", "limited")
    assert ecpus >= N
    assert metric(sserver, "elasticache_serverless_ECPUPerSecondMaximum", "limited") == 1000
    assert metric(sserver, "elasticache_serverless_ThrottledCmds_total", "free") is None

    # Bigger values cost more: ~4 KB moved per SET is 4 ECPUs.
    before = metric(sserver, "elasticache_serverless_ElastiCacheProcessingUnits_total", "limited")
    big = timed_sets(limited, "big", n=200, value="x" * 4096)
    after = metric(sserver, "elasticache_serverless_ElastiCacheProcessingUnits_total", "limited")
    assert 200 * 4 <= after - before < 200 * 5, (before, after)
    assert big >= 0.6, big

    # ModifyServerlessCache raises the maximum on the live cache.
    ec.modify_serverless_cache(ServerlessCacheName="limited",
                               CacheUsageLimits={"ECPUPerSecond": {"Maximum": 1_000_000}})
    wait_cache(ec, "limited")
    quick = timed_sets(limited, "b")
    assert quick < slow / 2, (quick, slow)
    assert metric(sserver, "elasticache_serverless_ECPUPerSecondMaximum", "limited") == 1_000_000
    c = ec.describe_serverless_caches(ServerlessCacheName="limited")["ServerlessCaches"][0]
    assert c["CacheUsageLimits"]["ECPUPerSecond"] == {"Maximum": 1_000_000}
    print(f"\n3000 SETs: unlimited {fast:.2f}s, 1000 ECPU/s {slow:.2f}s, after raise {quick:.2f}s")


def test_ecpu_per_second_maximum_on_memcached(sserver, tmp_path):
    from pymemcache.client.base import Client as MemcacheClient

    ec = sserver.client()
    ec.create_serverless_cache(ServerlessCacheName="mc", Engine="memcached",
                               CacheUsageLimits={"ECPUPerSecond": {"Maximum": 1000}})
    c = wait_cache(ec, "mc")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(urllib.request.urlopen(sserver.endpoint + "/_elastilite/ca.pem").read())
    ctx = ssl.create_default_context(cafile=str(ca))
    mc = MemcacheClient((c["Endpoint"]["Address"], c["Endpoint"]["Port"]), tls_context=ctx, timeout=30)
    n = 1500
    t = time.monotonic()
    # set_many sends every request in one batch (noreply): a pipeline as above.
    assert mc.set_many({f"k{i}": b"v" for i in range(n)}, noreply=False) == []
    slow = time.monotonic() - t
    assert slow >= (n - 100) / 1000 * 0.9, slow
    assert mc.get("k7") == b"v"
    assert metric(sserver, "elasticache_serverless_ThrottledCmds_total", "mc") > 0
    ec.modify_serverless_cache(ServerlessCacheName="mc",
                               CacheUsageLimits={"ECPUPerSecond": {"Maximum": 1_000_000}})
    wait_cache(ec, "mc")
    t = time.monotonic()
    assert mc.set_many({f"j{i}": b"v" for i in range(n)}, noreply=False) == []
    assert time.monotonic() - t < slow / 2
