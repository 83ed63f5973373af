"""Issue 11: serverless caches with real TLS nodes, usage limits, snapshots."""
import os
import ssl
import time
import urllib.request

import pytest
import redis
from pymemcache.client.base import Client as MemcacheClient

from conftest import Server

# One "GB" of DataStorage stands for 4 MB here, so the limit is reached quickly.
GB_BYTES = 4_000_000


@pytest.fixture
def sserver():
    s = Server("--serverless-gb-bytes", str(GB_BYTES))
    yield s
    s.stop()


def ca_file(server, tmp_path):
    path = tmp_path / "ca.pem"
    path.write_bytes(urllib.request.urlopen(server.endpoint + "/_elastilite/ca.pem").read())
    return str(path)


def wait_cache(ec, name, want="available"):
    for _ in range(200):
        c = ec.describe_serverless_caches(ServerlessCacheName=name)["ServerlessCaches"][0]
        if c["Status"] == want:
            return c
        time.sleep(0.05)
    raise AssertionError(f"{name} stayed {c['Status']}")


def tls_client(ep, ca):
    return redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca, socket_timeout=5)


def test_serverless_redis_tls_reader_endpoint_and_storage_limit(sserver, tmp_path):
    ec = sserver.client()
    created = ec.create_serverless_cache(
        ServerlessCacheName="Sessions", Engine="redis", Description="web sessions",
        CacheUsageLimits={"DataStorage": {"Maximum": 2, "Unit": "GB"},
                          "ECPUPerSecond": {"Maximum": 5000}},
        SecurityGroupIds=["sg-0123456789abcdef0"], SubnetIds=["subnet-0abc", "subnet-0def"],
        SnapshotRetentionLimit=3, DailySnapshotTime="05:30", KmsKeyId="alias/local",
        Tags=[{"Key": "team", "Value": "web"}],
    )["ServerlessCache"]
    assert created["Status"] == "creating" and created["ServerlessCacheName"] == "sessions"
    assert created["ARN"] == "arn:aws:elasticache:us-east-1:000000000000:serverlesscache:sessions"
    c = wait_cache(ec, "sessions")
    assert (c["Engine"], c["MajorEngineVersion"], c["FullEngineVersion"]) == ("redis", "7", "7.1")
    assert c["CacheUsageLimits"] == {"DataStorage": {"Maximum": 2, "Unit": "GB"},
                                     "ECPUPerSecond": {"Maximum": 5000}}
    assert c["Endpoint"]["Port"] == 6379 and c["ReaderEndpoint"]["Port"] == 6380
    assert c["Endpoint"]["Address"] == c["ReaderEndpoint"]["Address"]
    assert (c["SnapshotRetentionLimit"], c["DailySnapshotTime"]) == (3, "05:30")
    assert c["SecurityGroupIds"] == ["sg-0123456789abcdef0"] and c["KmsKeyId"] == "alias/local"
    assert ec.list_tags_for_resource(ResourceName=c["ARN"])["TagList"] == [{"Key": "team", "Value": "web"}]

    ca = ca_file(sserver, tmp_path)
    primary = tls_client(c["Endpoint"], ca)
    assert primary.set("user:1", "alice") and primary.get("user:1") == b"alice"
    assert tls_client(c["ReaderEndpoint"], ca).get("user:1") == b"alice"
    # TLS is always on: a plaintext client gets nothing back.
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(host=c["Endpoint"]["Address"], port=c["Endpoint"]["Port"], socket_timeout=2).ping()

    # DataStorage.Maximum (2 "GB" = 8 MB here): keys with a TTL are evicted first,
    # then writes are refused with OOM, as AWS documents for serverless caches.
    primary.set("volatile", "x" * 1000, ex=3600)
    with pytest.raises(redis.exceptions.ResponseError, match="^command not allowed when used memory"):
        for i in range(20_000):
            primary.set(f"fill:{i}", "x" * 1000)
    assert primary.get("volatile") is None
    assert primary.get("user:1") == b"alice"

    # Raising the limit reaches the node at once.
    ec.modify_serverless_cache(ServerlessCacheName="sessions",
                               CacheUsageLimits={"DataStorage": {"Maximum": 10, "Unit": "GB"}})
    assert primary.set("after-raise", "ok")
    c = wait_cache(ec, "sessions")
    assert c["CacheUsageLimits"]["DataStorage"]["Maximum"] == 10

    events = ec.describe_events(SourceType="serverless-cache", SourceIdentifier="sessions")["Events"]
    messages = [e["Message"] for e in events]
    assert "Serverless cache sessions created" in messages
    assert "Serverless cache sessions modified" in messages

    ec.delete_serverless_cache(ServerlessCacheName="sessions")
    for _ in range(100):
        if not ec.describe_serverless_caches()["ServerlessCaches"]:
            break
        time.sleep(0.05)
    with pytest.raises(ec.exceptions.ServerlessCacheNotFoundFault) as e:
        ec.describe_serverless_caches(ServerlessCacheName="sessions")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_serverless_errors(sserver):
    ec = sserver.client()
    ec.create_serverless_cache(ServerlessCacheName="dup", Engine="valkey")
    with pytest.raises(ec.exceptions.ServerlessCacheAlreadyExistsFault):
        ec.create_serverless_cache(ServerlessCacheName="dup", Engine="valkey")
    with pytest.raises(ec.exceptions.InvalidParameterValueException):
        ec.create_serverless_cache(ServerlessCacheName="bad", Engine="redis", MajorEngineVersion="6")
    with pytest.raises(ec.exceptions.InvalidParameterValueException):
        ec.create_serverless_cache(ServerlessCacheName="bad", Engine="redis",
                                   CacheUsageLimits={"DataStorage": {"Maximum": 0, "Unit": "GB"}})
    with pytest.raises(ec.exceptions.ServerlessCacheNotFoundFault):
        ec.modify_serverless_cache(ServerlessCacheName="nope", Description="x")
    with pytest.raises(ec.exceptions.ServerlessCacheSnapshotNotFoundFault):
        ec.delete_serverless_cache_snapshot(ServerlessCacheSnapshotName="nope")
    c = wait_cache(ec, "dup")
    assert (c["MajorEngineVersion"], c["FullEngineVersion"]) == ("8", "8.1")
    ec.create_serverless_cache(ServerlessCacheName="mc", Engine="memcached")
    wait_cache(ec, "mc")
    with pytest.raises(ec.exceptions.InvalidParameterCombinationException):
        ec.create_serverless_cache_snapshot(ServerlessCacheSnapshotName="s", ServerlessCacheName="mc")


def test_serverless_invalid_state_while_creating():
    s = Server("--provision-delay-ms", "1500")
    try:
        ec = s.client()
        ec.create_serverless_cache(ServerlessCacheName="slow", Engine="redis")
        with pytest.raises(ec.exceptions.InvalidServerlessCacheStateFault):
            ec.modify_serverless_cache(ServerlessCacheName="slow", Description="x")
        with pytest.raises(ec.exceptions.InvalidServerlessCacheStateFault):
            ec.delete_serverless_cache(ServerlessCacheName="slow")
        c = ec.describe_serverless_caches(ServerlessCacheName="slow")["ServerlessCaches"][0]
        assert c["Status"] == "creating" and "Endpoint" not in c
    finally:
        s.stop()


def test_serverless_snapshot_copy_export_and_restore(sserver, tmp_path):
    ec = sserver.client()
    ec.create_serverless_cache(ServerlessCacheName="src", Engine="valkey")
    c = wait_cache(ec, "src")
    ca = ca_file(sserver, tmp_path)
    r = tls_client(c["Endpoint"], ca)
    for i in range(500):
        r.set(f"k{i}", i)
    r.hset("h", mapping={"a": 1, "b": 2})

    snap = ec.create_serverless_cache_snapshot(ServerlessCacheSnapshotName="snap-1",
                                               ServerlessCacheName="src")["ServerlessCacheSnapshot"]
    assert snap["Status"] == "available" and int(snap["BytesUsedForCache"]) > 0
    assert snap["ServerlessCacheConfiguration"] == {"ServerlessCacheName": "src", "Engine": "valkey",
                                                    "MajorEngineVersion": "8"}
    with pytest.raises(ec.exceptions.ServerlessCacheSnapshotAlreadyExistsFault):
        ec.create_serverless_cache_snapshot(ServerlessCacheSnapshotName="snap-1", ServerlessCacheName="src")
    copy = ec.copy_serverless_cache_snapshot(SourceServerlessCacheSnapshotName="snap-1",
                                             TargetServerlessCacheSnapshotName="snap-2")
    assert copy["ServerlessCacheSnapshot"]["ServerlessCacheSnapshotName"] == "snap-2"
    listed = ec.describe_serverless_cache_snapshots(ServerlessCacheName="src")["ServerlessCacheSnapshots"]
    assert sorted(s["ServerlessCacheSnapshotName"] for s in listed) == ["snap-1", "snap-2"]

    ec.export_serverless_cache_snapshot(ServerlessCacheSnapshotName="snap-2", S3BucketName="my-exports")
    exported = os.path.join(sserver.data_dir, "s3", "my-exports", "snap-2.rdb")
    assert open(exported, "rb").read(5) == b"REDIS"

    # Restore from the snapshot's ARN, and from the exported "S3" object.
    ec.create_serverless_cache(ServerlessCacheName="restored", Engine="valkey",
                               SnapshotArnsToRestore=[snap["ARN"]])
    ec.create_serverless_cache(ServerlessCacheName="from-s3", Engine="redis",
                               SnapshotArnsToRestore=["arn:aws:s3:::my-exports/snap-2.rdb"])
    for name in ("restored", "from-s3"):
        rc = tls_client(wait_cache(ec, name)["Endpoint"], ca)
        assert rc.dbsize() == 501 and rc.get("k42") == b"42" and rc.hgetall("h") == {b"a": b"1", b"b": b"2"}

    ec.delete_serverless_cache_snapshot(ServerlessCacheSnapshotName="snap-1")
    with pytest.raises(ec.exceptions.ServerlessCacheSnapshotNotFoundFault):
        ec.describe_serverless_cache_snapshots(ServerlessCacheSnapshotName="snap-1")

    # A final snapshot on delete.
    ec.delete_serverless_cache(ServerlessCacheName="src", FinalSnapshotName="final")
    final = ec.describe_serverless_cache_snapshots(ServerlessCacheSnapshotName="final")["ServerlessCacheSnapshots"]
    assert final[0]["Status"] == "available"
    events = ec.describe_events(SourceType="serverless-cache-snapshot")["Events"]
    assert any("snap-1" in e["Message"] and "created" in e["Message"] for e in events)


def test_serverless_memcached_with_tls(sserver, tmp_path):
    ec = sserver.client()
    ec.create_serverless_cache(ServerlessCacheName="mc", Engine="memcached")
    c = wait_cache(ec, "mc")
    assert (c["MajorEngineVersion"], c["Endpoint"]["Port"]) == ("1.6", 11211)
    assert "ReaderEndpoint" not in c
    ctx = ssl.create_default_context(cafile=ca_file(sserver, tmp_path))
    mc = MemcacheClient((c["Endpoint"]["Address"], c["Endpoint"]["Port"]), tls_context=ctx, timeout=5)
    mc.set("greeting", "hello")
    assert mc.get("greeting") == b"hello"
    mc.close()


def test_serverless_cache_survives_restart(tmp_path):
    s = Server("--persist-data")
    try:
        ec = s.client()
        ec.create_serverless_cache(ServerlessCacheName="durable", Engine="redis")
        c = wait_cache(ec, "durable")
        ca = ca_file(s, tmp_path)
        tls_client(c["Endpoint"], ca).set("kept", "yes")
        s.stop()
        s.start()
        ec = s.client()
        after = wait_cache(ec, "durable")
        assert after["Endpoint"] == c["Endpoint"] and after["ReaderEndpoint"] == c["ReaderEndpoint"]
        assert tls_client(after["Endpoint"], ca).get("kept") == b"yes"
        assert tls_client(after["ReaderEndpoint"], ca).get("kept") == b"yes"
    finally:
        s.stop()


def test_serverless_daily_snapshots_follow_retention(sserver):
    ec = sserver.client()
    ec.create_serverless_cache(ServerlessCacheName="daily", Engine="redis", SnapshotRetentionLimit=1)
    wait_cache(ec, "daily")
    names = []
    for _ in range(2):
        req = urllib.request.Request(sserver.endpoint + "/_elastilite/snapshots/run-window", method="POST")
        urllib.request.urlopen(req).read()
        autos = ec.describe_serverless_cache_snapshots(ServerlessCacheName="daily",
                                                       SnapshotType="automated")["ServerlessCacheSnapshots"]
        assert len(autos) == 1, autos  # the retention limit keeps one
        assert autos[0]["ExpiryTime"] > autos[0]["CreateTime"]
        names.append(autos[0]["ServerlessCacheSnapshotName"])
        time.sleep(1.1)  # automatic snapshot names carry the second
    assert names[0] != names[1] and names[1].startswith("automatic.daily-")
    assert ec.describe_serverless_cache_snapshots(SnapshotType="manual")["ServerlessCacheSnapshots"] == []


def test_serverless_user_group_enforced(sserver, tmp_path):
    ec = sserver.client()
    ec.create_user(UserId="sl-default-off", UserName="default", Engine="redis", NoPasswordRequired=True,
                   AccessString="off ~* +@all")
    ec.create_user(UserId="sl-app", UserName="app", Engine="redis", Passwords=["app-password-0123456789"],
                   AccessString="on ~app:* +@read +@write")
    ec.create_user_group(UserGroupId="sl-users", Engine="redis", UserIds=["sl-default-off", "sl-app"])
    with pytest.raises(ec.exceptions.UserGroupNotFoundFault):
        ec.create_serverless_cache(ServerlessCacheName="nogroup", Engine="redis", UserGroupId="missing")
    ec.create_serverless_cache(ServerlessCacheName="secure", Engine="valkey", UserGroupId="sl-users")
    c = wait_cache(ec, "secure")
    assert c["UserGroupId"] == "sl-users"
    assert ec.describe_user_groups(UserGroupId="sl-users")["UserGroups"][0]["ServerlessCaches"] == ["secure"]
    ca = ca_file(sserver, tmp_path)
    ep, rep = c["Endpoint"], c["ReaderEndpoint"]
    with pytest.raises(redis.exceptions.AuthenticationError):
        tls_client(ep, ca).get("app:x")  # the group's default user is off
    app = redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca, socket_timeout=5,
                      username="app", password="app-password-0123456789")
    assert app.set("app:x", "1") and app.get("app:x") == b"1"
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.set("other:x", "1")
    reader = redis.Redis(host=rep["Address"], port=rep["Port"], ssl=True, ssl_ca_certs=ca, socket_timeout=5,
                         username="app", password="app-password-0123456789")
    assert reader.get("app:x") == b"1"
    with pytest.raises(ec.exceptions.InvalidUserGroupStateFault):
        ec.delete_user_group(UserGroupId="sl-users")
    # A changed user reaches the open connection.
    ec.modify_user(UserId="sl-app", AccessString="on ~app:* +@read")
    deadline = time.time() + 5
    while True:
        try:
            app.set("app:y", "1")
        except redis.exceptions.NoPermissionError:
            break
        assert time.time() < deadline
        time.sleep(0.1)
    # Without the user group, the cache is open to the default user again.
    ec.modify_serverless_cache(ServerlessCacheName="secure", RemoveUserGroup=True)
    c = wait_cache(ec, "secure")
    assert "UserGroupId" not in c
    assert tls_client(ep, ca).get("app:x") == b"1"
    assert ec.describe_user_groups(UserGroupId="sl-users")["UserGroups"][0]["ServerlessCaches"] == []
    ec.modify_serverless_cache(ServerlessCacheName="secure", UserGroupId="sl-users")
    wait_cache(ec, "secure")
    with pytest.raises(redis.exceptions.AuthenticationError):
        tls_client(ep, ca).get("app:x")
