"""Valkey 8.x command additions through real clients: boto3 creates the caches,
redis-py uses the nodes (SET IFEQ, HSCAN NOVALUES, COMMANDLOG), and a Valkey 7.2
node keeps Redis 7.0's answers."""
import time
import urllib.request

import pytest
import redis

from conftest import wait_available


def node_client(ec, cluster_id):
    ep = wait_available(ec, cluster_id)["CacheNodes"][0]["Endpoint"]
    return redis.Redis(host=ep["Address"], port=ep["Port"], decode_responses=True)


# redis-py marks its `ifeq=` keyword experimental.
@pytest.mark.filterwarnings("ignore:Call to 'set' method with experimental")
def test_valkey_81_set_ifeq_and_commandlog(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="vk81", Engine="valkey", EngineVersion="8.1",
                            CacheNodeType="cache.t3.micro", NumCacheNodes=1)
    ec.create_cache_cluster(CacheClusterId="vk72", Engine="valkey", EngineVersion="7.2",
                            CacheNodeType="cache.t3.micro", NumCacheNodes=1)
    r = node_client(ec, "vk81")

    r.set("lock", "owner-a")
    # Compare-and-set: only the holder's value is replaced.
    assert r.execute_command("SET", "lock", "owner-b", "IFEQ", "someone-else") is None
    assert r.get("lock") == "owner-a"
    assert r.execute_command("SET", "lock", "owner-b", "IFEQ", "owner-a") is True  # redis-py maps +OK
    assert r.get("lock") == "owner-b"
    # get=True tells redis-py's SET reply callback to return the bulk reply as is.
    assert r.execute_command("SET", "lock", "owner-c", "IFEQ", "owner-b", "GET", get=True) == "owner-b"
    assert r.get("lock") == "owner-c"
    # redis-py's own `ifeq=` keyword sends the same option.
    assert r.set("lock", "owner-d", ifeq="owner-c") is True
    assert r.set("lock", "owner-e", ifeq="owner-c") is None
    assert r.get("lock") == "owner-d"
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "lock", "x", "NX", "IFEQ", "owner-c")

    r.hset("h", mapping={"f1": "v1", "f2": "v2"})
    cursor, fields = r.hscan("h", 0, no_values=True)
    assert cursor == 0 and sorted(fields) == ["f1", "f2"]

    assert r.execute_command("COMMANDLOG", "LEN", "large-request") == 0
    r.set("big", "x" * (1 << 20))
    entries = r.execute_command("COMMANDLOG", "GET", -1, "large-request")
    assert len(entries) == 1 and entries[0][3][:2] == ["SET", "big"]

    old = node_client(ec, "vk72")
    old.set("lock", "owner-a")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        old.execute_command("SET", "lock", "owner-b", "IFEQ", "owner-a")
    with pytest.raises(redis.ResponseError, match="unknown command"):
        old.execute_command("COMMANDLOG", "LEN", "slow")


def test_serverless_valkey_has_no_commandlog(server, tmp_path):
    # AWS: COMMANDLOG is not available on serverless caches; the rest of 8.1 is.
    ec = server.client()
    ec.create_serverless_cache(ServerlessCacheName="vk-sls", Engine="valkey", MajorEngineVersion="8")
    for _ in range(200):
        c = ec.describe_serverless_caches(ServerlessCacheName="vk-sls")["ServerlessCaches"][0]
        if c["Status"] == "available":
            break
        time.sleep(0.05)
    assert c["Status"] == "available"
    assert c["FullEngineVersion"].startswith("8.")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(urllib.request.urlopen(server.endpoint + "/_elastilite/ca.pem").read())
    ep = c["Endpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=str(ca),
                    socket_timeout=5, decode_responses=True)
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r.execute_command("COMMANDLOG", "LEN", "slow")
    if c["FullEngineVersion"].startswith("8.1"):
        r.set("k", "a")
        assert r.execute_command("SET", "k", "b", "IFEQ", "a") is True


def test_commandlog_thresholds_from_a_parameter_group(server):
    # valkey8's commandlog-* parameters (MinimumEngineVersion 8.1.0) reach the node
    # live through ModifyCacheParameterGroup.
    ec = server.client()
    ec.create_cache_parameter_group(CacheParameterGroupName="vk-log", CacheParameterGroupFamily="valkey8",
                                    Description="command log")
    ec.create_cache_cluster(CacheClusterId="vk-log", Engine="valkey", EngineVersion="8.1",
                            CacheParameterGroupName="vk-log")
    r = node_client(ec, "vk-log")
    r.set("k", "small")
    assert r.execute_command("COMMANDLOG", "LEN", "large-request") == 0
    ec.modify_cache_parameter_group(CacheParameterGroupName="vk-log", ParameterNameValues=[
        {"ParameterName": "commandlog-request-larger-than", "ParameterValue": "40"},
        {"ParameterName": "commandlog-large-request-max-len", "ParameterValue": "2"}])
    for _ in range(100):
        r.set("k", "x" * 30)
        if r.execute_command("COMMANDLOG", "LEN", "large-request") > 0:
            break
        time.sleep(0.05)
    for _ in range(3):
        r.set("k", "y" * 30)
    r.set("k", "z")  # 27 request bytes, under the threshold: not logged
    entries = r.execute_command("COMMANDLOG", "GET", -1, "large-request")
    assert len(entries) == 2
    assert [e[3][2] for e in entries] == ["y" * 30, "y" * 30]
    assert all(e[2] == 57 for e in entries)  # *3 $3 SET $1 k $30 y…: the RESP size
