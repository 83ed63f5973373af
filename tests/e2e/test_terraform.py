"""The Terraform AWS provider against elastilite (issue 2, issue 6; api.md §7, §8).

Two parts:

* A real `terraform init/apply/plan/apply/plan/destroy` with hashicorp/aws 5.100.0
  from the filesystem mirror, for two configurations in tests/e2e/terraform/
  (`clusters`: memcached cross-az + tagged Redis 7.1; `groups`: a subnet group, a
  parameter group and a Redis cluster in both). They run concurrently against one
  server in a module fixture (each create/update/delete waiter of the provider
  sleeps 30 s before its first poll, so running them one after the other would
  double the wall time); every step's outcome is recorded and one test function
  asserts each, so a failure names the step and carries terraform's output.
  Skipped when `terraform` or the provider mirror is missing.
* Fast replays with boto3 of the calls the provider makes for
  `aws_elasticache_cluster` and `aws_elasticache_subnet_group` (api.md §7.1, §7.3),
  checking every field the provider dereferences.
"""
import concurrent.futures
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import traceback
import urllib.request

import boto3
import botocore.exceptions
import pytest
import redis

from conftest import Server

TERRAFORM = shutil.which("terraform")
PROVIDER_VERSION = "5.100.0"
MIRROR = os.environ.get("ELASTILITE_TF_PLUGIN_MIRROR", "/opt/tf-plugins")
PROVIDER_DIR = os.path.join(MIRROR, "registry.terraform.io", "hashicorp", "aws",
                            PROVIDER_VERSION, "linux_amd64")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "terraform")

CLI_CONFIG = f"""
provider_installation {{
  filesystem_mirror {{
    path    = "{MIRROR}"
    include = ["registry.terraform.io/*/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/*/*"]
  }}
}}
"""

# The provider's waiters (cluster.go): anything outside these sets is an
# "unexpected state" error.
CREATE_PENDING = {"creating", "modifying", "snapshotting", "rebooting cluster nodes"}
DELETE_PENDING = {"creating", "available", "modifying", "deleting", "incompatible-network",
                  "restore-failed", "snapshotting"}
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
WINDOW_RE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):\d\d:\d\d-(mon|tue|wed|thu|fri|sat|sun):\d\d:\d\d$")


# --------------------------------------------------------------------------- helpers

def memcached_version(host, port):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"version\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"VERSION "), f"memcached {host}:{port} answered {data!r}"
    return data.decode().strip()


def redis_ping(host, port):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        data = s.recv(64)
    assert data == b"+PONG\r\n", f"redis {host}:{port} answered {data!r}"


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def tags_of(ec, arn):
    return {t["Key"]: t["Value"] for t in ec.list_tags_for_resource(ResourceName=arn)["TagList"]}


class Terraform:
    """One terraform working directory (a copy of a fixture) against one server."""

    def __init__(self, fixture, root, endpoint):
        self.dir = os.path.join(root, fixture)
        shutil.copytree(os.path.join(FIXTURES, fixture), self.dir)
        cli_config = os.path.join(root, f"{fixture}.tfrc")
        with open(cli_config, "w") as f:
            f.write(CLI_CONFIG)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TF_", "AWS_")) and k != "CHECKPOINT_DISABLE"}
        env.update(TF_CLI_CONFIG_FILE=cli_config, TF_IN_AUTOMATION="1", TF_INPUT="0",
                   CHECKPOINT_DISABLE="1")
        self.env = env
        self.endpoint = endpoint
        self.timings = []

    def run(self, *args, variables=None, ok_codes=(0,), timeout=600):
        cmd = [TERRAFORM, *args]
        if args[0] in ("apply", "plan", "destroy"):
            cmd += ["-input=false", "-no-color", "-var", f"endpoint={self.endpoint}"]
            for k, v in (variables or {}).items():
                cmd += ["-var", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
        elif args[0] == "init":
            cmd += ["-input=false", "-no-color"]
        t = time.monotonic()
        proc = subprocess.run(cmd, cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        self.timings.append((" ".join(args), round(time.monotonic() - t, 1)))
        if proc.returncode not in ok_codes:
            raise AssertionError(
                f"`terraform {' '.join(args)}` exited {proc.returncode} (wanted {ok_codes})\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
        return proc

    def plan_is_clean(self, variables=None):
        """`plan -detailed-exitcode` must exit 0; exit 2 = a perpetual diff."""
        self.run("plan", "-detailed-exitcode", variables=variables)

    def _state(self):
        # Read terraform.tfstate (format 4) directly: `terraform output/show -json`
        # start the provider to load its schema, which costs 5-20 s of CPU each.
        with open(os.path.join(self.dir, "terraform.tfstate")) as f:
            return json.load(f)

    def outputs(self):
        return {k: v["value"] for k, v in self._state()["outputs"].items()}

    def resource(self, address):
        kind, name = address.split(".")
        for r in self._state()["resources"]:
            if r["mode"] == "managed" and r["type"] == kind and r["name"] == name:
                return r["instances"][0]["attributes"]
        raise AssertionError(f"{address} not in the state")


class Scenario:
    """Runs steps in order, recording each outcome; a failed blocking step turns the
    remaining steps into 'not run'."""

    def __init__(self, name):
        self.name = name
        self.results = {}
        self.blocked_by = None

    def step(self, name, fn, blocking=True):
        if self.blocked_by:
            self.results[name] = (False, f"not run: step {self.blocked_by!r} failed:\n"
                                         f"{self.results[self.blocked_by][1]}")
            return
        try:
            self.results[name] = (True, fn())
        except Exception:  # noqa: BLE001 — recorded and asserted by the test for this step
            self.results[name] = (False, traceback.format_exc())
            if blocking:
                self.blocked_by = name

    def check(self, name):
        ok, detail = self.results[name]
        assert ok, f"[{self.name}] step {name!r} failed:\n{detail}"
        return detail


# --------------------------------------------------------------------------- scenarios

REDIS_TAGS = {"Name": "tf-redis", "Env": "test"}
REDIS_TAGS_UPDATED = {"Name": "tf-redis", "Team": "cache"}


def clusters_scenario(server, root):
    sc = Scenario("clusters")
    tf = Terraform("clusters", root, server.endpoint)
    ec = server.client()
    updated = {"memcached_nodes": 3, "redis_tags": REDIS_TAGS_UPDATED}
    seen = {}

    sc.step("init", lambda: tf.run("init"))
    sc.step("apply_create", lambda: tf.run("apply", "-auto-approve"))

    def outputs_after_create():
        out = tf.outputs()
        seen.update(out)
        assert out["memcached_arn"] == "arn:aws:elasticache:us-east-1:000000000000:cluster:tf-memcached"
        assert out["redis_arn"] == "arn:aws:elasticache:us-east-1:000000000000:cluster:tf-redis"
        assert out["memcached_configuration_endpoint"] == f"{out['memcached_cluster_address']}:11211"
        assert out["redis_engine_version_actual"] == "7.1.0"
        assert out["redis_port"] == 6379
        mc = tf.resource("aws_elasticache_cluster.memcached")
        assert mc["az_mode"] == "cross-az" and mc["availability_zone"] == "Multiple", mc
        assert [n["id"] for n in mc["cache_nodes"]] == ["0001", "0002"], mc["cache_nodes"]
        assert len({n["availability_zone"] for n in mc["cache_nodes"]}) == 2, mc["cache_nodes"]
        rd = tf.resource("aws_elasticache_cluster.redis")
        assert rd["engine_version"] == "7.1" and rd["tags_all"] == REDIS_TAGS, rd
        seen["memcached_nodes"] = mc["cache_nodes"]
        return out

    sc.step("outputs_after_create", outputs_after_create)

    def memcached_connectable():
        memcached_version(seen["memcached_cluster_address"], 11211)
        return [memcached_version(n["address"], n["port"]) for n in seen["memcached_nodes"]]

    sc.step("memcached_nodes_connectable", memcached_connectable, blocking=False)
    sc.step("redis_node_pings", lambda: redis_ping(seen["redis_address"], seen["redis_port"]),
            blocking=False)
    def tags_sent_on_create():
        assert tags_of(ec, seen["redis_arn"]) == REDIS_TAGS
        assert tags_of(ec, seen["memcached_arn"]) == {}

    sc.step("tags_sent_on_create", tags_sent_on_create, blocking=False)
    sc.step("plan_clean_after_create", tf.plan_is_clean, blocking=False)
    sc.step("apply_update", lambda: tf.run("apply", "-auto-approve", variables=updated))

    def state_after_update():
        mc = ec.describe_cache_clusters(CacheClusterId="tf-memcached", ShowCacheNodeInfo=True)
        mc = mc["CacheClusters"][0]
        assert mc["CacheClusterStatus"] == "available" and mc["NumCacheNodes"] == 3, mc
        nodes = tf.resource("aws_elasticache_cluster.memcached")["cache_nodes"]
        assert [n["id"] for n in nodes] == ["0001", "0002", "0003"], nodes
        memcached_version(nodes[2]["address"], nodes[2]["port"])
        assert tags_of(ec, seen["redis_arn"]) == REDIS_TAGS_UPDATED
        return nodes

    sc.step("update_applied", state_after_update, blocking=False)
    sc.step("plan_clean_after_update", lambda: tf.plan_is_clean(updated), blocking=False)
    # -refresh=false: the plans above already exercised the read path.
    sc.step("destroy", lambda: tf.run("destroy", "-auto-approve", "-refresh=false",
                                      variables=updated))

    def gone():
        for cid in ("tf-memcached", "tf-redis"):
            with pytest.raises(botocore.exceptions.ClientError) as e:
                ec.describe_cache_clusters(CacheClusterId=cid)
            assert error_code(e) == "CacheClusterNotFound"

    sc.step("clusters_gone", gone)
    sc.timings = tf.timings
    return sc


PARAMS = {"maxmemory-policy": "allkeys-lru", "notify-keyspace-events": "Ex"}
PARAMS_UPDATED = {"maxmemory-policy": "volatile-lru"}


def groups_scenario(server, root):
    sc = Scenario("groups")
    tf = Terraform("groups", root, server.endpoint)
    ec = server.client()
    updated = {"subnet_group_description": "changed by terraform", "parameters": PARAMS_UPDATED}
    seen = {}

    def user_params():
        ps = ec.describe_cache_parameters(CacheParameterGroupName="tf-redis7-params",
                                          Source="user")["Parameters"]
        return {p["ParameterName"]: p.get("ParameterValue") for p in ps}

    sc.step("init", lambda: tf.run("init"))
    sc.step("apply_create", lambda: tf.run("apply", "-auto-approve"))

    def created():
        out = tf.outputs()
        seen.update(out)
        assert out["subnet_group_arn"] == \
            "arn:aws:elasticache:us-east-1:000000000000:subnetgroup:tf-subnets"
        assert out["parameter_group_arn"] == \
            "arn:aws:elasticache:us-east-1:000000000000:parametergroup:tf-redis7-params"
        assert out["subnet_group_vpc_id"].startswith("vpc-")
        cc = ec.describe_cache_clusters(CacheClusterId="tf-in-groups",
                                        ShowCacheNodeInfo=True)["CacheClusters"][0]
        assert cc["CacheSubnetGroupName"] == "tf-subnets", cc
        assert cc["CacheParameterGroup"]["CacheParameterGroupName"] == "tf-redis7-params", cc
        sg = ec.describe_cache_subnet_groups(CacheSubnetGroupName="tf-subnets")["CacheSubnetGroups"][0]
        zones = {s["SubnetAvailabilityZone"]["Name"] for s in sg["Subnets"]}
        assert cc["CacheNodes"][0]["CustomerAvailabilityZone"] in zones, (cc, sg)
        assert user_params() == PARAMS
        assert tags_of(ec, out["subnet_group_arn"]) == {"Name": "tf-subnets"}
        assert tags_of(ec, out["parameter_group_arn"]) == {"Name": "tf-redis7-params"}
        redis_ping(out["cluster_address"], out["cluster_port"])
        return out

    sc.step("created_as_configured", created, blocking=False)
    sc.step("plan_clean_after_create", tf.plan_is_clean, blocking=False)
    sc.step("apply_update", lambda: tf.run("apply", "-auto-approve", variables=updated))

    def update_applied():
        sg = ec.describe_cache_subnet_groups(CacheSubnetGroupName="tf-subnets")["CacheSubnetGroups"][0]
        assert sg["CacheSubnetGroupDescription"] == "changed by terraform", sg
        # notify-keyspace-events was removed from the config: the provider resets it.
        assert user_params() == PARAMS_UPDATED

    sc.step("update_applied", update_applied, blocking=False)
    sc.step("plan_clean_after_update", lambda: tf.plan_is_clean(updated), blocking=False)
    sc.step("destroy", lambda: tf.run("destroy", "-auto-approve", "-refresh=false",
                                      variables=updated))

    def gone():
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec.describe_cache_clusters(CacheClusterId="tf-in-groups")
        assert error_code(e) == "CacheClusterNotFound"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec.describe_cache_subnet_groups(CacheSubnetGroupName="tf-subnets")
        assert error_code(e) == "CacheSubnetGroupNotFoundFault"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec.describe_cache_parameter_groups(CacheParameterGroupName="tf-redis7-params")
        assert error_code(e) == "CacheParameterGroupNotFound"

    sc.step("groups_gone", gone)
    sc.timings = tf.timings
    return sc


def serverless_scenario(server, root):
    """aws_elasticache_serverless_cache (issue 11): create, TLS connect, modify the
    usage limits, destroy."""
    sc = Scenario("serverless")
    tf = Terraform("serverless", root, server.endpoint)
    ec = server.client()
    updated = {"max_storage_gb": 20}
    seen = {}

    sc.step("init", lambda: tf.run("init"))
    sc.step("apply_create", lambda: tf.run("apply", "-auto-approve"))

    def created():
        out = tf.outputs()
        assert out["arn"] == "arn:aws:elasticache:us-east-1:000000000000:serverlesscache:tf-serverless"
        ep, reader = out["endpoint"][0], out["reader_endpoint"][0]
        assert (ep["port"], reader["port"]) == (6379, 6380)
        state = tf.resource("aws_elasticache_serverless_cache.valkey")
        assert (state["status"], state["full_engine_version"]) == ("available", "8.1"), state
        ca = os.path.join(root, "serverless-ca.pem")
        with open(ca, "wb") as f:
            f.write(urllib.request.urlopen(server.endpoint + "/_elastilite/ca.pem").read())
        client = redis.Redis(host=ep["address"], port=ep["port"], ssl=True, ssl_ca_certs=ca,
                             socket_timeout=5)
        assert client.set("tf", "yes") and client.get("tf") == b"yes"
        seen["client"] = client
        assert tags_of(ec, out["arn"]) == {"Name": "tf-serverless"}

    sc.step("created_and_reachable_over_tls", created, blocking=False)
    sc.step("plan_clean_after_create", tf.plan_is_clean, blocking=False)
    sc.step("apply_update", lambda: tf.run("apply", "-auto-approve", variables=updated))

    def update_applied():
        c = ec.describe_serverless_caches(ServerlessCacheName="tf-serverless")["ServerlessCaches"][0]
        assert c["CacheUsageLimits"]["DataStorage"]["Maximum"] == 20, c
        if "client" in seen:
            assert seen["client"].get("tf") == b"yes"

    sc.step("update_applied", update_applied, blocking=False)
    sc.step("plan_clean_after_update", lambda: tf.plan_is_clean(updated), blocking=False)
    sc.step("destroy", lambda: tf.run("destroy", "-auto-approve", "-refresh=false",
                                      variables=updated))

    def gone():
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec.describe_serverless_caches(ServerlessCacheName="tf-serverless")
        assert error_code(e) == "ServerlessCacheNotFoundFault"

    sc.step("serverless_gone", gone)
    sc.timings = tf.timings
    return sc


@pytest.fixture(scope="module")
def terraform_runs():
    if TERRAFORM is None:
        pytest.skip("terraform is not installed (no `terraform` on PATH)")
    if not os.path.isdir(PROVIDER_DIR):
        pytest.skip(f"hashicorp/aws {PROVIDER_VERSION} is not in the provider mirror "
                    f"({PROVIDER_DIR} missing; set ELASTILITE_TF_PLUGIN_MIRROR)")
    server = Server()
    root = tempfile.mkdtemp(prefix="elastilite-tf-")
    started = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            futures = {"clusters": pool.submit(clusters_scenario, server, root),
                       "groups": pool.submit(groups_scenario, server, root),
                       "serverless": pool.submit(serverless_scenario, server, root)}
            runs = {k: f.result() for k, f in futures.items()}
        elapsed = round(time.monotonic() - started, 1)
        print(f"\nterraform scenarios took {elapsed}s: "
              + "; ".join(f"{k}: {v.timings}" for k, v in runs.items()))
        yield runs
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# One test per recorded step (clusters).

def test_tf_clusters_init(terraform_runs):
    terraform_runs["clusters"].check("init")


def test_tf_clusters_apply_creates_memcached_and_redis(terraform_runs):
    terraform_runs["clusters"].check("apply_create")
    terraform_runs["clusters"].check("outputs_after_create")


def test_tf_clusters_memcached_endpoints_answer_version(terraform_runs):
    terraform_runs["clusters"].check("memcached_nodes_connectable")


def test_tf_clusters_redis_endpoint_answers_ping(terraform_runs):
    terraform_runs["clusters"].check("redis_node_pings")


def test_tf_clusters_tags_sent_on_create(terraform_runs):
    terraform_runs["clusters"].check("tags_sent_on_create")


def test_tf_clusters_plan_clean_after_create(terraform_runs):
    terraform_runs["clusters"].check("plan_clean_after_create")


def test_tf_clusters_update_tags_and_node_count(terraform_runs):
    terraform_runs["clusters"].check("apply_update")
    terraform_runs["clusters"].check("update_applied")


def test_tf_clusters_plan_clean_after_update(terraform_runs):
    terraform_runs["clusters"].check("plan_clean_after_update")


def test_tf_clusters_destroy(terraform_runs):
    terraform_runs["clusters"].check("destroy")
    terraform_runs["clusters"].check("clusters_gone")


# One test per recorded step (subnet group, parameter group, cluster in them).

def test_tf_groups_apply_creates_subnet_and_parameter_groups(terraform_runs):
    terraform_runs["groups"].check("init")
    terraform_runs["groups"].check("apply_create")
    terraform_runs["groups"].check("created_as_configured")


def test_tf_groups_plan_clean_after_create(terraform_runs):
    terraform_runs["groups"].check("plan_clean_after_create")


def test_tf_groups_update_description_and_parameters(terraform_runs):
    terraform_runs["groups"].check("apply_update")
    terraform_runs["groups"].check("update_applied")


def test_tf_groups_plan_clean_after_update(terraform_runs):
    terraform_runs["groups"].check("plan_clean_after_update")


def test_tf_groups_destroy(terraform_runs):
    terraform_runs["groups"].check("destroy")
    terraform_runs["groups"].check("groups_gone")


# One test per recorded step (serverless cache).

def test_tf_serverless_apply_creates_a_reachable_cache(terraform_runs):
    terraform_runs["serverless"].check("init")
    terraform_runs["serverless"].check("apply_create")
    terraform_runs["serverless"].check("created_and_reachable_over_tls")


def test_tf_serverless_plan_clean_after_create(terraform_runs):
    terraform_runs["serverless"].check("plan_clean_after_create")


def test_tf_serverless_update_usage_limits(terraform_runs):
    terraform_runs["serverless"].check("apply_update")
    terraform_runs["serverless"].check("update_applied")


def test_tf_serverless_plan_clean_after_update(terraform_runs):
    terraform_runs["serverless"].check("plan_clean_after_update")


def test_tf_serverless_destroy(terraform_runs):
    terraform_runs["serverless"].check("destroy")
    terraform_runs["serverless"].check("serverless_gone")


# --------------------------------------------------------------------------- replays

def sts_client(server):
    return boto3.client("sts", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def wait_like_terraform(ec, cluster_id):
    """waitCacheClusterAvailable, minus the 30 s delay."""
    seen = []
    deadline = time.time() + 30
    while True:
        status = ec.describe_cache_clusters(CacheClusterId=cluster_id)["CacheClusters"][0][
            "CacheClusterStatus"]
        seen.append(status)
        if status == "available":
            return seen
        assert status in CREATE_PENDING, f"unexpected state {status!r} (seen {seen})"
        assert time.time() < deadline, f"not available: {seen}"
        time.sleep(0.05)


def wait_deleted_like_terraform(ec, cluster_id):
    """waitCacheClusterDeleted: success only on CacheClusterNotFound (404)."""
    seen = []
    deadline = time.time() + 30
    while True:
        try:
            status = ec.describe_cache_clusters(CacheClusterId=cluster_id)["CacheClusters"][0][
                "CacheClusterStatus"]
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "CacheClusterNotFound", e.response
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
            return seen
        seen.append(status)
        assert status in DELETE_PENDING, f"unexpected state {status!r} while deleting (seen {seen})"
        assert time.time() < deadline, f"never went away: {seen}"
        time.sleep(0.05)


def assert_cluster_as_terraform_reads_it(cc, engine):
    """Every field resourceClusterRead / setFromCacheCluster / setCacheNodeData uses."""
    assert cc["CacheClusterId"] == cc["CacheClusterId"].lower()
    assert cc["Engine"] == engine
    assert VERSION_RE.match(cc["EngineVersion"]), cc["EngineVersion"]
    assert cc["CacheNodeType"].startswith("cache.")
    assert isinstance(cc["AutoMinorVersionUpgrade"], bool)
    assert cc["CacheSubnetGroupName"]
    assert isinstance(cc["SecurityGroups"], list)
    assert cc["CacheParameterGroup"]["CacheParameterGroupName"].startswith("default.")
    assert WINDOW_RE.match(cc["PreferredMaintenanceWindow"]), cc["PreferredMaintenanceWindow"]
    assert isinstance(cc["LogDeliveryConfigurations"], list)
    assert cc["SnapshotRetentionLimit"] == 0
    assert cc["NumCacheNodes"] == len(cc["CacheNodes"])
    assert cc["ARN"] == f"arn:aws:elasticache:us-east-1:000000000000:cluster:{cc['CacheClusterId']}"
    assert cc["IpDiscovery"] == "ipv4" and cc["NetworkType"] == "ipv4"
    assert cc["TransitEncryptionEnabled"] is False
    assert cc["PreferredAvailabilityZone"]
    for node in cc["CacheNodes"]:
        assert re.match(r"^\d{4}$", node["CacheNodeId"]), node
        assert node["Endpoint"]["Address"] and node["Endpoint"]["Port"], node
        assert node["CustomerAvailabilityZone"].startswith("us-east-1"), node
        assert node["CacheNodeStatus"] == "available", node
    if engine == "memcached":
        assert cc["ConfigurationEndpoint"]["Port"] == 11211
        assert cc["ConfigurationEndpoint"]["Address"]
        assert "SnapshotWindow" not in cc
    else:
        assert "ConfigurationEndpoint" not in cc
        assert cc["CacheNodes"][0]["Endpoint"]["Port"] == 6379
        assert re.match(r"^\d\d:\d\d-\d\d:\d\d$", cc["SnapshotWindow"]), cc.get("SnapshotWindow")


def test_replay_cluster_calls_as_terraform_makes_them(server):
    ident = sts_client(server).get_caller_identity()
    assert ident["Account"] == "000000000000"
    assert ident["Arn"].startswith("arn:aws:")
    ec = server.client()

    # --- memcached, cross-az, tags on create; the id comes back lower-cased.
    created = ec.create_cache_cluster(
        CacheClusterId="TF-Replay-MC", Engine="memcached", CacheNodeType="cache.t3.micro",
        NumCacheNodes=2, AZMode="cross-az", Tags=[{"Key": "Env", "Value": "test"}],
    )["CacheCluster"]
    assert created["CacheClusterId"] == "tf-replay-mc"
    arn = created["ARN"]
    assert arn == "arn:aws:elasticache:us-east-1:000000000000:cluster:tf-replay-mc"
    wait_like_terraform(ec, "tf-replay-mc")
    cc = ec.describe_cache_clusters(CacheClusterId="tf-replay-mc",
                                    ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert_cluster_as_terraform_reads_it(cc, "memcached")
    assert cc["PreferredAvailabilityZone"] == "Multiple"
    assert len({n["CustomerAvailabilityZone"] for n in cc["CacheNodes"]}) == 2
    for node in cc["CacheNodes"]:
        memcached_version(node["Endpoint"]["Address"], node["Endpoint"]["Port"])
    assert tags_of(ec, arn) == {"Env": "test"}

    # --- update: more nodes, a maintenance window (case-folded), immediately.
    ec.modify_cache_cluster(CacheClusterId="tf-replay-mc", ApplyImmediately=True,
                            NumCacheNodes=3, PreferredMaintenanceWindow="Sat:07:00-Sat:08:00")
    wait_like_terraform(ec, "tf-replay-mc")
    cc = ec.describe_cache_clusters(CacheClusterId="tf-replay-mc",
                                    ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert_cluster_as_terraform_reads_it(cc, "memcached")
    assert [n["CacheNodeId"] for n in cc["CacheNodes"]] == ["0001", "0002", "0003"]
    assert cc["PreferredMaintenanceWindow"] == "sat:07:00-sat:08:00"

    # --- fewer nodes the way Terraform asks for it (getCacheNodesToRemove: highest ids).
    ec.modify_cache_cluster(CacheClusterId="tf-replay-mc", ApplyImmediately=True,
                            NumCacheNodes=2, CacheNodeIdsToRemove=["0003"])
    wait_like_terraform(ec, "tf-replay-mc")
    cc = ec.describe_cache_clusters(CacheClusterId="tf-replay-mc",
                                    ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert [n["CacheNodeId"] for n in cc["CacheNodes"]] == ["0001", "0002"]

    # --- tag diff: remove first, then add (updateTags).
    ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["Env"])
    ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "Team", "Value": "cache"}])
    assert tags_of(ec, arn) == {"Team": "cache"}

    # --- redis 7.1 (Terraform sends the engine_version as written).
    created = ec.create_cache_cluster(
        CacheClusterId="tf-replay-redis", Engine="redis", EngineVersion="7.1",
        CacheNodeType="cache.t3.micro", NumCacheNodes=1,
    )["CacheCluster"]
    assert created["ARN"].endswith(":cluster:tf-replay-redis")
    wait_like_terraform(ec, "tf-replay-redis")
    rd = ec.describe_cache_clusters(CacheClusterId="tf-replay-redis",
                                    ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert_cluster_as_terraform_reads_it(rd, "redis")
    assert rd["EngineVersion"].startswith("7.1.")
    assert rd["CacheParameterGroup"]["CacheParameterGroupName"] == "default.redis7"
    assert tags_of(ec, rd["ARN"]) == {}
    node = rd["CacheNodes"][0]["Endpoint"]
    redis_ping(node["Address"], node["Port"])

    # --- delete: DeleteCacheCluster, then the describe must end in CacheClusterNotFound.
    for cid in ("tf-replay-mc", "tf-replay-redis"):
        ec.delete_cache_cluster(CacheClusterId=cid)
        wait_deleted_like_terraform(ec, cid)
    # A second delete (Terraform: "already gone" = success) is CacheClusterNotFound too.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec.delete_cache_cluster(CacheClusterId="tf-replay-mc")
    assert error_code(e) == "CacheClusterNotFound"


def test_replay_subnet_group_calls_as_terraform_makes_them(server):
    ec = server.client()
    created = ec.create_cache_subnet_group(
        CacheSubnetGroupName="TF-Replay-Subnets", CacheSubnetGroupDescription="Managed by Terraform",
        SubnetIds=["subnet-0abc123", "subnet-0def456"], Tags=[{"Key": "Name", "Value": "x"}],
    )["CacheSubnetGroup"]
    assert created["CacheSubnetGroupName"] == "tf-replay-subnets"
    arn = created["ARN"]
    assert arn == "arn:aws:elasticache:us-east-1:000000000000:subnetgroup:tf-replay-subnets"

    def read():
        sg = ec.describe_cache_subnet_groups(
            CacheSubnetGroupName="tf-replay-subnets")["CacheSubnetGroups"]
        assert len(sg) == 1
        sg = sg[0]
        assert sg["ARN"] == arn
        assert sg["CacheSubnetGroupName"] == "tf-replay-subnets"
        assert sg["VpcId"].startswith("vpc-")
        for s in sg["Subnets"]:
            assert s["SubnetAvailabilityZone"]["Name"].startswith("us-east-1"), s
        return sg

    sg = read()
    assert sg["CacheSubnetGroupDescription"] == "Managed by Terraform"
    assert {s["SubnetIdentifier"] for s in sg["Subnets"]} == {"subnet-0abc123", "subnet-0def456"}
    assert tags_of(ec, arn) == {"Name": "x"}

    ec.modify_cache_subnet_group(CacheSubnetGroupName="tf-replay-subnets",
                                 CacheSubnetGroupDescription="changed",
                                 SubnetIds=["subnet-0abc123", "subnet-0fff789"])
    sg = read()
    assert sg["CacheSubnetGroupDescription"] == "changed"
    assert {s["SubnetIdentifier"] for s in sg["Subnets"]} == {"subnet-0abc123", "subnet-0fff789"}

    ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["Name"])
    ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "Team", "Value": "cache"}])
    assert tags_of(ec, arn) == {"Team": "cache"}

    # A cluster in the group: the group is in use until the cluster is gone.
    ec.create_cache_cluster(CacheClusterId="tf-in-subnets", Engine="memcached",
                            CacheNodeType="cache.t3.micro", NumCacheNodes=1,
                            CacheSubnetGroupName="tf-replay-subnets")
    wait_like_terraform(ec, "tf-in-subnets")
    cc = ec.describe_cache_clusters(CacheClusterId="tf-in-subnets",
                                    ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert cc["CacheSubnetGroupName"] == "tf-replay-subnets"
    zones = {s["SubnetAvailabilityZone"]["Name"] for s in sg["Subnets"]}
    assert cc["CacheNodes"][0]["CustomerAvailabilityZone"] in zones
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec.delete_cache_subnet_group(CacheSubnetGroupName="tf-replay-subnets")
    assert error_code(e) == "CacheSubnetGroupInUse"
    ec.delete_cache_cluster(CacheClusterId="tf-in-subnets")
    wait_deleted_like_terraform(ec, "tf-in-subnets")

    ec.delete_cache_subnet_group(CacheSubnetGroupName="tf-replay-subnets")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec.describe_cache_subnet_groups(CacheSubnetGroupName="tf-replay-subnets")
    assert error_code(e) == "CacheSubnetGroupNotFoundFault"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Terraform's delete treats NotFound as "already gone".
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec.delete_cache_subnet_group(CacheSubnetGroupName="tf-replay-subnets")
    assert error_code(e) == "CacheSubnetGroupNotFoundFault"


def test_replay_az_mode_change_to_single_az(server):
    """resourceClusterUpdate sends AZMode when az_mode changes, together with
    NumCacheNodes/CacheNodeIdsToRemove when the node count changes; the read maps
    PreferredAvailabilityZone == "Multiple" to cross-az, anything else to single-az.
    AWS: "You cannot specify single-az if the Memcached cluster already has cache
    nodes in different Availability Zones"."""
    ec = server.client()
    for cid in ("az-together", "az-after"):
        ec.create_cache_cluster(CacheClusterId=cid, Engine="memcached",
                                CacheNodeType="cache.t3.micro", NumCacheNodes=2, AZMode="cross-az")
        wait_like_terraform(ec, cid)

    # Shrinking to one node and asking for single-az in one call (what Terraform sends):
    # refused, or applied - never accepted and ignored.
    try:
        ec.modify_cache_cluster(CacheClusterId="az-together", ApplyImmediately=True,
                                NumCacheNodes=1, CacheNodeIdsToRemove=["0002"], AZMode="single-az")
    except botocore.exceptions.ClientError as e:
        assert error_code(e) in ("InvalidParameterCombination", "InvalidParameterValue"), e.response
    else:
        wait_like_terraform(ec, "az-together")
        cc = ec.describe_cache_clusters(CacheClusterId="az-together",
                                        ShowCacheNodeInfo=True)["CacheClusters"][0]
        assert cc["PreferredAvailabilityZone"] == cc["CacheNodes"][0]["CustomerAvailabilityZone"], cc

    # Once every node is in one zone, single-az is allowed and the cluster says so.
    ec.modify_cache_cluster(CacheClusterId="az-after", ApplyImmediately=True,
                            NumCacheNodes=1, CacheNodeIdsToRemove=["0002"])
    wait_like_terraform(ec, "az-after")
    ec.modify_cache_cluster(CacheClusterId="az-after", ApplyImmediately=True, AZMode="single-az")
    wait_like_terraform(ec, "az-after")
    cc = ec.describe_cache_clusters(CacheClusterId="az-after",
                                    ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert cc["PreferredAvailabilityZone"] != "Multiple", cc
    assert cc["PreferredAvailabilityZone"] == cc["CacheNodes"][0]["CustomerAvailabilityZone"], cc


def test_replay_log_delivery_configuration(server):
    """expandLogDeliveryConfigurationRequests on create/update; the read flattens
    DestinationType, DestinationDetails.{CloudWatchLogsDetails.LogGroup |
    KinesisFirehoseDetails.DeliveryStream}, LogFormat, LogType (flex.go) - and
    dereferences DestinationDetails without a nil check. Removing a block sends
    Enabled=false for that LogType."""
    ec = server.client()
    slow = {"LogType": "slow-log", "DestinationType": "cloudwatch-logs", "LogFormat": "json",
            "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": "my-log-group"}},
            "Enabled": True}
    ec.create_cache_cluster(CacheClusterId="tf-logs", Engine="redis", CacheNodeType="cache.t3.micro",
                            NumCacheNodes=1, LogDeliveryConfigurations=[slow])
    wait_like_terraform(ec, "tf-logs")

    def ldc():
        cc = ec.describe_cache_clusters(CacheClusterId="tf-logs",
                                        ShowCacheNodeInfo=True)["CacheClusters"][0]
        return {c["LogType"]: c for c in cc["LogDeliveryConfigurations"]}

    got = ldc()
    assert set(got) == {"slow-log"}, got
    assert got["slow-log"]["DestinationType"] == "cloudwatch-logs"
    assert got["slow-log"]["DestinationDetails"]["CloudWatchLogsDetails"]["LogGroup"] == "my-log-group"
    assert got["slow-log"]["LogFormat"] == "json"

    engine = {"LogType": "engine-log", "DestinationType": "kinesis-firehose", "LogFormat": "text",
              "DestinationDetails": {"KinesisFirehoseDetails": {"DeliveryStream": "my-stream"}},
              "Enabled": True}
    ec.modify_cache_cluster(CacheClusterId="tf-logs", ApplyImmediately=True,
                            LogDeliveryConfigurations=[engine, {"LogType": "slow-log", "Enabled": False}])
    wait_like_terraform(ec, "tf-logs")
    got = ldc()
    assert set(got) == {"engine-log"}, got
    assert got["engine-log"]["DestinationDetails"]["KinesisFirehoseDetails"]["DeliveryStream"] == "my-stream"
    assert got["engine-log"]["LogFormat"] == "text"
