"""Issue 9 (part): in-transit encryption and AUTH tokens enforced by the nodes."""
import json
import os
import shutil
import ssl
import subprocess
import urllib.request

import pytest
import redis

from conftest import wait_available


def ca_file(server, tmp_path):
    health = json.loads(urllib.request.urlopen(server.endpoint + "/_elastilite/health").read())
    pem = urllib.request.urlopen(server.endpoint + "/_elastilite/ca.pem").read()
    assert open(health["ca_pem"], "rb").read() == pem
    path = tmp_path / "ca.pem"
    path.write_bytes(pem)
    return str(path)


def test_tls_cluster_with_auth_token(server, tmp_path):
    ec = server.client()
    with pytest.raises(ec.exceptions.InvalidParameterCombinationException):
        ec.create_cache_cluster(CacheClusterId="no-tls", Engine="redis", AuthToken="0123456789abcdef0123")
    cc = ec.create_cache_cluster(CacheClusterId="secure", Engine="redis", TransitEncryptionEnabled=True,
                                 AuthToken="0123456789abcdef0123")["CacheCluster"]
    assert cc["TransitEncryptionEnabled"] is True and cc["AuthTokenEnabled"] is True
    assert "AuthTokenLastModifiedDate" in cc
    ep = wait_available(ec, "secure")["CacheNodes"][0]["Endpoint"]
    ca = ca_file(server, tmp_path)

    tls = redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca,
                      password="0123456789abcdef0123", socket_timeout=5)
    assert tls.ping() and tls.set("k", "v") and tls.get("k") == b"v"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca,
                    password="wrong-token-0123456789", socket_timeout=5).ping()
    no_auth = redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca, socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        no_auth.get("k")
    plain = redis.Redis(host=ep["Address"], port=ep["Port"], password="0123456789abcdef0123",
                        socket_timeout=2, retry_on_timeout=False)
    with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        plain.ping()
    # The certificate names the node's address and chains to elastilite's CA.
    ctx = ssl.create_default_context(cafile=ca)
    import socket
    with socket.create_connection((ep["Address"], ep["Port"]), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=ep["Address"]) as t:
            assert t.version() in ("TLSv1.2", "TLSv1.3")
    if shutil.which("redis-cli"):
        out = subprocess.run(["redis-cli", "--tls", "--cacert", ca, "-h", ep["Address"], "-p", str(ep["Port"]),
                              "--no-auth-warning", "-a", "0123456789abcdef0123", "PING"],
                             capture_output=True, text=True, timeout=10)
        assert out.stdout.strip() == "PONG", out


def test_group_token_set_and_delete_and_transit_modes(server, tmp_path):
    ec = server.client()
    ec.create_replication_group(ReplicationGroupId="sec", ReplicationGroupDescription="d", NumCacheClusters=2,
                                TransitEncryptionEnabled=True, TransitEncryptionMode="preferred",
                                AuthToken="first-token-0123456789")
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="sec",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    g = ec.describe_replication_groups(ReplicationGroupId="sec")["ReplicationGroups"][0]
    assert g["TransitEncryptionMode"] == "preferred" and g["AuthTokenEnabled"] is True
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    ca = ca_file(server, tmp_path)
    # preferred: plaintext and TLS both accepted
    assert redis.Redis(host=ep["Address"], port=ep["Port"], password="first-token-0123456789").ping()
    assert redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca,
                       password="first-token-0123456789").ping()
    ec.modify_replication_group(ReplicationGroupId="sec", ApplyImmediately=True, AuthToken="second-token-0123456789",
                                AuthTokenUpdateStrategy="SET")
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="sec",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert redis.Redis(host=ep["Address"], port=ep["Port"], password="second-token-0123456789").ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=ep["Address"], port=ep["Port"], password="first-token-0123456789").ping()
    ec.modify_replication_group(ReplicationGroupId="sec", ApplyImmediately=True, TransitEncryptionMode="required")
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="sec",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        redis.Redis(host=ep["Address"], port=ep["Port"], password="second-token-0123456789",
                    socket_timeout=2).ping()
    assert redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca,
                       password="second-token-0123456789").ping()
