"""Issue 9 (part): in-transit encryption and AUTH tokens enforced by the nodes."""
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
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


# --- RBAC: users, user groups, ACLs enforced by the nodes -----------------------------------------

APP_PW = "app-password-0123456789"


def make_users(ec):
    ec.create_user(UserId="default-off", UserName="default", Engine="REDIS", NoPasswordRequired=True,
                   AccessString="off ~* +@all")
    u = ec.create_user(UserId="app", UserName="app", Engine="redis", Passwords=[APP_PW],
                       AccessString="on ~app:* +@read", Tags=[{"Key": "team", "Value": "a"}])
    assert u["Status"] == "active" and u["Authentication"] == {"Type": "password", "PasswordCount": 1}
    assert u["ARN"].endswith(":user:app") and u["MinimumEngineVersion"]


def test_users_and_groups_api(server):
    ec = server.client()
    users = {u["UserId"]: u for u in ec.describe_users()["Users"]}
    assert users["default"]["AccessString"] == "on ~* +@all"
    assert users["default"]["Authentication"]["Type"] == "no-password"
    make_users(ec)
    with pytest.raises(ec.exceptions.UserAlreadyExistsFault):
        ec.create_user(UserId="app", UserName="app", Engine="redis", NoPasswordRequired=True, AccessString="on")
    with pytest.raises(ec.exceptions.InvalidParameterValueException):
        ec.create_user(UserId="short", UserName="short", Engine="redis", Passwords=["short"], AccessString="on")
    with pytest.raises(ec.exceptions.InvalidParameterValueException):
        ec.create_user(UserId="bad", UserName="bad", Engine="redis", NoPasswordRequired=True,
                       AccessString="on notarule")
    with pytest.raises(ec.exceptions.InvalidParameterCombinationException):
        ec.create_user(UserId="both", UserName="both", Engine="redis", NoPasswordRequired=True,
                       Passwords=[APP_PW], AccessString="on")
    with pytest.raises(ec.exceptions.UserNotFoundFault):
        ec.describe_users(UserId="nobody")
    assert ec.list_tags_for_resource(ResourceName=users["default"]["ARN"].replace("default", "app"))[
        "TagList"] == [{"Key": "team", "Value": "a"}]
    with pytest.raises(ec.exceptions.DefaultUserRequired):
        ec.create_user_group(UserGroupId="nodefault", Engine="redis", UserIds=["app"])
    ec.create_user(UserId="default2", UserName="default", Engine="redis", NoPasswordRequired=True,
                   AccessString="on ~* +@all")
    with pytest.raises(ec.exceptions.DuplicateUserNameFault):
        ec.create_user_group(UserGroupId="dup", Engine="redis", UserIds=["default-off", "default2", "app"])
    with pytest.raises(ec.exceptions.UserNotFoundFault):
        ec.create_user_group(UserGroupId="ghost", Engine="redis", UserIds=["default", "ghost"])
    g = ec.create_user_group(UserGroupId="ug1", Engine="Redis", UserIds=["default-off", "app"])
    assert g["Status"] == "creating" and g["Engine"] == "redis" and g["UserIds"] == ["default-off", "app"]
    g = ec.describe_user_groups(UserGroupId="ug1")["UserGroups"][0]
    assert g["Status"] == "active" and g["ARN"].endswith(":usergroup:ug1")
    assert ec.describe_users(UserId="app")["Users"][0]["UserGroupIds"] == ["ug1"]
    with pytest.raises(ec.exceptions.UserGroupAlreadyExistsFault):
        ec.create_user_group(UserGroupId="ug1", Engine="redis")
    with pytest.raises(ec.exceptions.DefaultUserAssociatedToUserGroupFault):
        ec.delete_user(UserId="default-off")
    with pytest.raises(ec.exceptions.DefaultUserRequired):
        ec.modify_user_group(UserGroupId="ug1", UserIdsToRemove=["default-off"])
    g = ec.modify_user_group(UserGroupId="ug1", UserIdsToRemove=["default-off"], UserIdsToAdd=["default2"])
    assert g["Status"] == "modifying" and g["PendingChanges"] == {"UserIdsToRemove": ["default-off"],
                                                                  "UserIdsToAdd": ["default2"]}
    assert ec.describe_user_groups(UserGroupId="ug1")["UserGroups"][0]["UserIds"] == ["app", "default2"]
    # User groups need transit encryption and exclude AUTH tokens.
    with pytest.raises(ec.exceptions.InvalidParameterCombinationException):
        ec.create_replication_group(ReplicationGroupId="rg-plain", ReplicationGroupDescription="d",
                                    UserGroupIds=["ug1"])
    with pytest.raises(ec.exceptions.UserGroupNotFoundFault):
        ec.create_replication_group(ReplicationGroupId="rg-x", ReplicationGroupDescription="d",
                                    TransitEncryptionEnabled=True, UserGroupIds=["nope"])
    u = ec.modify_user(UserId="app", AppendAccessString="+@write")
    assert u["Status"] == "modifying" and u["AccessString"] == "on ~app:* +@read +@write"
    assert ec.delete_user_group(UserGroupId="ug1")["Status"] == "deleting"
    with pytest.raises(ec.exceptions.UserGroupNotFoundFault):
        ec.describe_user_groups(UserGroupId="ug1")
    assert ec.delete_user(UserId="app")["Status"] == "deleting"
    with pytest.raises(ec.exceptions.UserNotFoundFault):
        ec.delete_user(UserId="app")


def rbac_group(ec, rg, users, tmp_path, server):
    ec.create_user_group(UserGroupId=rg + "-users", Engine="redis", UserIds=users)
    ec.create_replication_group(ReplicationGroupId=rg, ReplicationGroupDescription="d", NumCacheClusters=2,
                                TransitEncryptionEnabled=True, UserGroupIds=[rg + "-users"])
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId=rg,
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    g = ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]
    assert g["UserGroupIds"] == [rg + "-users"]
    assert ec.describe_user_groups(UserGroupId=rg + "-users")["UserGroups"][0]["ReplicationGroups"] == [rg]
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    ca = ca_file(server, tmp_path)

    def connect(**kw):
        return redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca, socket_timeout=5, **kw)
    return g, connect


def test_acl_user_enforced_by_nodes(server, tmp_path):
    ec = server.client()
    make_users(ec)
    ec.create_user(UserId="admin", UserName="admin", Engine="redis", Passwords=["admin-password-0123456789"],
                   AccessString="on ~* &* +@all")
    g, connect = rbac_group(ec, "acl", ["default-off", "app", "admin"], tmp_path, server)
    with pytest.raises(redis.exceptions.AuthenticationError):
        connect().get("app:x")  # the default user is off: NOAUTH
    admin = connect(username="admin", password="admin-password-0123456789")
    assert admin.set("app:x", "1") and admin.set("other:x", "2")
    app = connect(username="app", password=APP_PW)
    assert app.get("app:x") == b"1"
    with pytest.raises(redis.exceptions.NoPermissionError, match="run the 'set' command"):
        app.set("app:x", "2")
    with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
        app.get("other:x")
    with pytest.raises(redis.exceptions.NoPermissionError, match="run the 'ping' command"):
        app.ping()  # PING is @connection, not @read
    assert admin.acl_whoami() == "admin"
    with pytest.raises(redis.exceptions.AuthenticationError):
        connect(username="app", password="wrong-password-0123456789").ping()
    # What was refused is in ACL LOG; GETUSER and DRYRUN show what a user may do.
    def s(v):
        return v.decode() if isinstance(v, bytes) else v
    seen = {(s(e["reason"]), s(e["object"]), s(e["username"])) for e in admin.acl_log()}
    assert {("command", "set", "app"), ("key", "other:x", "app"), ("command", "ping", "app"),
            ("auth", "AUTH", "app")} <= seen, seen
    assert s(admin.execute_command("ACL", "DRYRUN", "app", "GET", "app:y")) == "OK"
    assert s(admin.execute_command("ACL", "DRYRUN", "app", "GET", "other:y")) == \
        "This user has no permissions to access the 'other:y' key"
    info = admin.acl_getuser("app")
    assert info["enabled"] and info["flags"] == ["on"] and len(info["passwords"]) == 1
    assert info["keys"] == ["~app:*"] and "+@read" in info["categories"]
    admin.acl_log_reset()
    assert admin.acl_log() == []
    # ACL SETUSER is ElastiCache-restricted; users change through the API.
    with pytest.raises(redis.exceptions.ResponseError):
        admin.execute_command("ACL", "SETUSER", "x", "on")
    # A modified user's permissions reach its open connection.
    ec.modify_user(UserId="app", AccessString="on ~app:* +@read +@write")
    deadline = time.time() + 5
    while True:
        try:
            assert app.set("app:x", "3")
            break
        except redis.exceptions.NoPermissionError:
            assert time.time() < deadline
            time.sleep(0.1)
    # The replica enforces the same users (it still replicates from the primary).
    member = g["NodeGroups"][0]["NodeGroupMembers"]
    replica = [m for m in member if m["CurrentRole"] == "replica"][0]["ReadEndpoint"]
    r = redis.Redis(host=replica["Address"], port=replica["Port"], ssl=True, ssl_ca_certs=ca_file(server, tmp_path),
                    username="app", password=APP_PW, socket_timeout=5)
    deadline = time.time() + 5
    while r.get("app:x") != b"3":
        assert time.time() < deadline
        time.sleep(0.1)
    # A user removed from the group loses its connections.
    deadline = time.time() + 5
    while ec.describe_user_groups(UserGroupId="acl-users")["UserGroups"][0]["Status"] != "active":
        assert time.time() < deadline
        time.sleep(0.1)
    ec.modify_user_group(UserGroupId="acl-users", UserIdsToRemove=["app"])
    time.sleep(0.3)
    with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.AuthenticationError)):
        app.get("app:x")
    with pytest.raises(ec.exceptions.InvalidUserGroupStateFault):
        ec.delete_user_group(UserGroupId="acl-users")


def test_auth_token_rotate(server, tmp_path):
    ec = server.client()
    first, second, third = "first-token-0123456789", "second-token-0123456789", "third-token-0123456789"
    ec.create_replication_group(ReplicationGroupId="rot", ReplicationGroupDescription="d", NumCacheClusters=2,
                                TransitEncryptionEnabled=True, AuthToken=first)
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="rot",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ep = ec.describe_replication_groups(ReplicationGroupId="rot")["ReplicationGroups"][0]["NodeGroups"][0][
        "PrimaryEndpoint"]
    ca = ca_file(server, tmp_path)

    def connect(pw):
        return redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca, password=pw,
                           socket_timeout=5)
    old_client = connect(first)
    assert old_client.set("k", "v")
    ec.modify_replication_group(ReplicationGroupId="rot", ApplyImmediately=True, AuthToken=second,
                                AuthTokenUpdateStrategy="ROTATE")
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="rot",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    # Both tokens work, and the connection made with the old one keeps working.
    assert connect(first).get("k") == b"v" and connect(second).get("k") == b"v"
    assert old_client.get("k") == b"v"
    ec.modify_replication_group(ReplicationGroupId="rot", ApplyImmediately=True, AuthToken=third,
                                AuthTokenUpdateStrategy="SET")
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="rot",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert connect(third).get("k") == b"v"
    for stale in (first, second):
        with pytest.raises(redis.exceptions.AuthenticationError):
            connect(stale).ping()


def iam_token(cache, user, expires=900, key="test", secret="test", region="us-east-1"):
    """The token AWS's docs build with botocore's RequestSigner (no built-in generator exists)."""
    import urllib.parse
    import botocore.session
    from botocore.credentials import Credentials
    from botocore.model import ServiceId
    from botocore.signers import RequestSigner
    session = botocore.session.get_session()
    signer = RequestSigner(ServiceId("elasticache"), region, "elasticache", "v4", Credentials(key, secret),
                           session.get_component("event_emitter"))
    query = urllib.parse.urlencode({"Action": "connect", "User": user})
    url = signer.generate_presigned_url(
        {"method": "GET", "url": f"http://{cache}/?{query}", "body": {}, "url_path": "/", "query_string": "",
         "headers": {}, "context": {}},
        operation_name="connect", expires_in=expires, region_name=region)
    return url.removeprefix("http://")


def test_iam_authentication(server, tmp_path):
    ec = server.client()
    make_users(ec)
    ec.create_user(UserId="iam-user", UserName="iam-user", Engine="redis", AccessString="on ~* +@all",
                   AuthenticationMode={"Type": "iam"})
    assert ec.describe_users(UserId="iam-user")["Users"][0]["Authentication"]["Type"] == "iam"
    with pytest.raises(ec.exceptions.InvalidParameterValueException):
        ec.create_user(UserId="iam-x", UserName="other-name", Engine="redis", AccessString="on ~* +@all",
                       AuthenticationMode={"Type": "iam"})
    _, connect = rbac_group(ec, "iamrg", ["default-off", "iam-user"], tmp_path, server)
    token = iam_token("iamrg", "iam-user")
    assert connect(username="iam-user", password=token).set("k", "v")
    # Tampered, for another cache, another user, or expired: refused.
    tampered = token[:-3] + ("000" if not token.endswith("000") else "111")
    for bad in (tampered, iam_token("othercache", "iam-user"), iam_token("iamrg", "app"),
                iam_token("iamrg", "iam-user", secret="wrong")):
        with pytest.raises(redis.exceptions.AuthenticationError):
            connect(username="iam-user", password=bad).ping()
    short = iam_token("iamrg", "iam-user", expires=1)
    time.sleep(2.1)
    with pytest.raises(redis.exceptions.AuthenticationError):
        connect(username="iam-user", password=short).ping()


# --- At-rest encryption ------------------------------------------------------------------------------

SECRET_KEY, SECRET_VALUE = "plaintext-key-8d1f", "plaintext-value-93ac7e"


def snapshot_file(server, ec, rg, name):
    ec.create_snapshot(SnapshotName=name, ReplicationGroupId=rg)
    deadline = time.time() + 60
    while ec.describe_snapshots(SnapshotName=name)["Snapshots"][0]["SnapshotStatus"] != "available":
        assert time.time() < deadline
        time.sleep(0.05)
    snap_dir = os.path.join(server.data_dir, "snapshots", "us-east-1")
    files = [f for f in os.listdir(snap_dir) if f.startswith(name + "-")]
    assert len(files) == 1, files
    return open(os.path.join(snap_dir, files[0]), "rb").read()


def test_at_rest_encryption_seals_snapshots_and_persisted_data(tmp_path):
    from conftest import Server
    server = Server("--persist-data")
    try:
        ec = server.client()
        for rg, encrypted in (("plain", False), ("sealed", True)):
            kw = {"AtRestEncryptionEnabled": True, "KmsKeyId": "alias/local"} if encrypted else {}
            ec.create_replication_group(ReplicationGroupId=rg, ReplicationGroupDescription="d", **kw)
        for rg in ("plain", "sealed"):
            ec.get_waiter("replication_group_available").wait(ReplicationGroupId=rg,
                                                              WaiterConfig={"Delay": 1, "MaxAttempts": 30})
            g = ec.describe_replication_groups(ReplicationGroupId=rg)["ReplicationGroups"][0]
            ep = g["NodeGroups"][0]["PrimaryEndpoint"]
            r = redis.Redis(host=ep["Address"], port=ep["Port"])
            r.set(SECRET_KEY, SECRET_VALUE)
            r.hset("h", SECRET_KEY, SECRET_VALUE)
        g = ec.describe_replication_groups(ReplicationGroupId="sealed")["ReplicationGroups"][0]
        assert g["AtRestEncryptionEnabled"] is True and g["KmsKeyId"] == "alias/local"
        # The same data: plaintext in the unencrypted group's file, nowhere in the encrypted one's.
        plain = snapshot_file(server, ec, "plain", "snap-plain")
        assert plain.startswith(b"REDIS") and SECRET_VALUE.encode() in plain
        sealed = snapshot_file(server, ec, "sealed", "snap-sealed")
        assert not sealed.startswith(b"REDIS")
        assert SECRET_VALUE.encode() not in sealed and SECRET_KEY.encode() not in sealed
        assert ec.describe_snapshots(SnapshotName="snap-sealed")["Snapshots"][0]["KmsKeyId"] == "alias/local"
        # A plain RDB export stays available on request (CopySnapshot TargetBucket).
        ec.copy_snapshot(SourceSnapshotName="snap-sealed", TargetSnapshotName="exported", TargetBucket="my-bucket")
        exported = open(os.path.join(server.data_dir, "s3", "my-bucket", "exported-0001.rdb"), "rb").read()
        assert exported.startswith(b"REDIS") and SECRET_VALUE.encode() in exported
        # The sealed snapshot restores.
        ec.create_replication_group(ReplicationGroupId="back", ReplicationGroupDescription="d",
                                    SnapshotName="snap-sealed", AtRestEncryptionEnabled=True)
        ec.get_waiter("replication_group_available").wait(ReplicationGroupId="back",
                                                          WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        ep = ec.describe_replication_groups(ReplicationGroupId="back")["ReplicationGroups"][0]["NodeGroups"][0][
            "PrimaryEndpoint"]
        r = redis.Redis(host=ep["Address"], port=ep["Port"])
        deadline = time.time() + 10
        while r.get(SECRET_KEY) != SECRET_VALUE.encode():
            assert time.time() < deadline
            time.sleep(0.05)
        # Persisted node data of the encrypted group is sealed too, and comes back after a restart.
        server.stop()
        persisted = os.path.join(server.data_dir, "persist", "us-east-1")
        contents = {f: open(os.path.join(persisted, f), "rb").read() for f in os.listdir(persisted)}
        assert SECRET_VALUE.encode() in contents["plain-001.rdb"]
        assert SECRET_VALUE.encode() not in contents["sealed-001.rdb"]
        server.start()
        ec = server.client()
        g = ec.describe_replication_groups(ReplicationGroupId="sealed")["ReplicationGroups"][0]
        ep = g["NodeGroups"][0]["PrimaryEndpoint"]
        deadline = time.time() + 10
        while True:
            try:
                if redis.Redis(host=ep["Address"], port=ep["Port"]).get(SECRET_KEY) == SECRET_VALUE.encode():
                    break
            except redis.exceptions.ConnectionError:
                pass
            assert time.time() < deadline
            time.sleep(0.1)
        assert os.path.exists(os.path.join(server.data_dir, "at-rest.key"))
    finally:
        server.stop()


# --- Security groups, simulated ------------------------------------------------------------------------

def set_ingress(server, sg, cidrs):
    req = urllib.request.Request(f"{server.endpoint}/_elastilite/security-groups/{sg}",
                                 method="PUT" if cidrs is not None else "DELETE",
                                 data=json.dumps({"ingress": cidrs}).encode() if cidrs is not None else None,
                                 headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 204


def refused(host, port, **kw):
    try:
        redis.Redis(host=host, port=port, socket_timeout=3, **kw).ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return True
    return False


def test_security_groups_admit_or_refuse_sources(server, tmp_path):
    ec = server.client()
    # A group without configured rules admits the local machine.
    ec.create_replication_group(ReplicationGroupId="sgrg", ReplicationGroupDescription="d", NumCacheClusters=2,
                                SecurityGroupIds=["sg-0a1b2c"])
    ec.get_waiter("replication_group_available").wait(ReplicationGroupId="sgrg",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    g = ec.describe_replication_groups(ReplicationGroupId="sgrg")["ReplicationGroups"][0]
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    node = ec.describe_cache_clusters(CacheClusterId="sgrg-001", ShowCacheNodeInfo=True)["CacheClusters"][0][
        "CacheNodes"][0]["Endpoint"]
    assert redis.Redis(host=ep["Address"], port=ep["Port"]).set("k", "v")
    # Rules that do not admit this machine: new connections are closed, at the node and the group endpoint.
    set_ingress(server, "sg-0a1b2c", ["10.0.0.0/8"])
    assert json.loads(urllib.request.urlopen(server.endpoint + "/_elastilite/security-groups").read()) == {
        "sg-0a1b2c": ["10.0.0.0/8"]}
    assert refused(ep["Address"], ep["Port"]) and refused(node["Address"], node["Port"])
    # elastilite's own links still work (snapshots read the node).
    ec.create_snapshot(SnapshotName="sg-snap", ReplicationGroupId="sgrg")
    deadline = time.time() + 30
    while ec.describe_snapshots(SnapshotName="sg-snap")["Snapshots"][0]["SnapshotStatus"] != "available":
        assert time.time() < deadline
        time.sleep(0.1)
    set_ingress(server, "sg-0a1b2c", ["127.0.0.0/8"])
    assert redis.Redis(host=ep["Address"], port=ep["Port"]).get("k") == b"v"
    # Back to the default: the local machine.
    set_ingress(server, "sg-0a1b2c", None)
    assert redis.Redis(host=node["Address"], port=node["Port"]).get("k") == b"v"
    # A TLS cluster whose group refuses us, then ModifyCacheCluster moves it to another group.
    set_ingress(server, "sg-remote", ["192.0.2.0/24"])
    ec.create_cache_cluster(CacheClusterId="sgtls", Engine="redis", TransitEncryptionEnabled=True,
                            SecurityGroupIds=["sg-remote"])
    ep = wait_available(ec, "sgtls")["CacheNodes"][0]["Endpoint"]
    ca = ca_file(server, tmp_path)
    assert refused(ep["Address"], ep["Port"], ssl=True, ssl_ca_certs=ca)
    ec.modify_cache_cluster(CacheClusterId="sgtls", SecurityGroupIds=["sg-0a1b2c"], ApplyImmediately=True)
    assert redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca, socket_timeout=5).ping()
    req = urllib.request.Request(f"{server.endpoint}/_elastilite/security-groups/sg-x", method="PUT",
                                 data=json.dumps({"ingress": ["not-a-cidr"]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 400


def memcached_answers(address, port):
    import socket
    try:
        with socket.create_connection((address, port), timeout=3) as s:
            s.sendall(b"version\r\n")
            return s.recv(64).startswith(b"VERSION")
    except OSError:
        return False


def test_security_groups_filter_memcached_nodes(server):
    ec = server.client()
    ec.create_cache_cluster(CacheClusterId="sgmc", Engine="memcached", NumCacheNodes=1,
                            SecurityGroupIds=["sg-0mc"])
    ep = wait_available(ec, "sgmc")["CacheNodes"][0]["Endpoint"]
    assert memcached_answers(ep["Address"], ep["Port"]), "no rules: the local machine is admitted"
    set_ingress(server, "sg-0mc", ["10.0.0.0/8"])
    assert not memcached_answers(ep["Address"], ep["Port"])
    set_ingress(server, "sg-0mc", ["127.0.0.0/8"])
    assert memcached_answers(ep["Address"], ep["Port"])


def test_legacy_cache_security_groups(server):
    ec = server.client()
    g = ec.create_cache_security_group(CacheSecurityGroupName="Legacy", Description="old",
                                       Tags=[{"Key": "k", "Value": "v"}])["CacheSecurityGroup"]
    assert g["CacheSecurityGroupName"] == "legacy" and g["EC2SecurityGroups"] == []
    assert g["OwnerId"] == "000000000000" and g["ARN"].endswith(":securitygroup:legacy")
    with pytest.raises(ec.exceptions.CacheSecurityGroupAlreadyExistsFault):
        ec.create_cache_security_group(CacheSecurityGroupName="legacy", Description="again")
    g = ec.authorize_cache_security_group_ingress(CacheSecurityGroupName="legacy", EC2SecurityGroupName="web",
                                                  EC2SecurityGroupOwnerId="123456789012")["CacheSecurityGroup"]
    assert g["EC2SecurityGroups"] == [{"Status": "authorized", "EC2SecurityGroupName": "web",
                                       "EC2SecurityGroupOwnerId": "123456789012"}]
    with pytest.raises(ec.exceptions.AuthorizationAlreadyExistsFault):
        ec.authorize_cache_security_group_ingress(CacheSecurityGroupName="legacy", EC2SecurityGroupName="web",
                                                  EC2SecurityGroupOwnerId="123456789012")
    assert [x["CacheSecurityGroupName"] for x in ec.describe_cache_security_groups()["CacheSecurityGroups"]] == [
        "legacy"]
    assert ec.list_tags_for_resource(ResourceName=g["ARN"])["TagList"] == [{"Key": "k", "Value": "v"}]
    ec.revoke_cache_security_group_ingress(CacheSecurityGroupName="legacy", EC2SecurityGroupName="web",
                                           EC2SecurityGroupOwnerId="123456789012")
    with pytest.raises(ec.exceptions.AuthorizationNotFoundFault):
        ec.revoke_cache_security_group_ingress(CacheSecurityGroupName="legacy", EC2SecurityGroupName="web",
                                               EC2SecurityGroupOwnerId="123456789012")
    ec.delete_cache_security_group(CacheSecurityGroupName="legacy")
    with pytest.raises(ec.exceptions.CacheSecurityGroupNotFoundFault):
        ec.describe_cache_security_groups(CacheSecurityGroupName="legacy")


def test_cluster_auth_token_rotate_set_delete(server, tmp_path):
    ec = server.client()
    first, second, third = "first-token-0123456789", "second-token-0123456789", "third-token-0123456789"
    ec.create_cache_cluster(CacheClusterId="rotc", Engine="redis", TransitEncryptionEnabled=True, AuthToken=first)
    ep = wait_available(ec, "rotc")["CacheNodes"][0]["Endpoint"]
    ca = ca_file(server, tmp_path)

    def ok(pw):
        try:
            return redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca, password=pw,
                               socket_timeout=5).ping()
        except redis.exceptions.AuthenticationError:
            return False
    ec.modify_cache_cluster(CacheClusterId="rotc", AuthToken=second, AuthTokenUpdateStrategy="ROTATE",
                            ApplyImmediately=True)
    wait_available(ec, "rotc")
    assert ok(first) and ok(second)
    ec.modify_cache_cluster(CacheClusterId="rotc", AuthToken=third, AuthTokenUpdateStrategy="SET",
                            ApplyImmediately=True)
    wait_available(ec, "rotc")
    assert ok(third) and not ok(first) and not ok(second)
    # DELETE needs TransitEncryptionMode preferred, which a required-mode cluster is not.
    with pytest.raises(ec.exceptions.InvalidParameterCombinationException):
        ec.modify_cache_cluster(CacheClusterId="rotc", AuthTokenUpdateStrategy="DELETE", ApplyImmediately=True)


def test_snapshot_of_a_tls_cluster_with_auth_token_restores(server, tmp_path):
    """Snapshots are taken from the engine behind the TLS front (as AWS takes them from the
    node itself), whatever the client-facing transport and token."""
    ec = server.client()
    token = "0123456789abcdef0123"
    ec.create_cache_cluster(CacheClusterId="tls-src", Engine="redis", TransitEncryptionEnabled=True,
                            AuthToken=token)
    ep = wait_available(ec, "tls-src")["CacheNodes"][0]["Endpoint"]
    ca = ca_file(server, tmp_path)
    r = redis.Redis(host=ep["Address"], port=ep["Port"], ssl=True, ssl_ca_certs=ca, password=token,
                    socket_timeout=5)
    r.set("k", "v")
    ec.create_snapshot(CacheClusterId="tls-src", SnapshotName="tls-snap")
    deadline = time.time() + 60
    while ec.describe_snapshots(SnapshotName="tls-snap")["Snapshots"][0]["SnapshotStatus"] != "available":
        assert time.time() < deadline, ec.describe_snapshots(SnapshotName="tls-snap")
        time.sleep(0.2)
    ec.create_cache_cluster(CacheClusterId="tls-dst", Engine="redis", TransitEncryptionEnabled=True,
                            AuthToken=token, SnapshotName="tls-snap")
    ep2 = wait_available(ec, "tls-dst")["CacheNodes"][0]["Endpoint"]
    r2 = redis.Redis(host=ep2["Address"], port=ep2["Port"], ssl=True, ssl_ca_certs=ca, password=token,
                     socket_timeout=5)
    assert r2.get("k") == b"v"
