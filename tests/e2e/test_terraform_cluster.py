"""Terraform's aws_elasticache_replication_group with cluster mode enabled
(num_node_groups / replicas_per_node_group; api.md §7.2): create, read back, scale
out with ModifyReplicationGroupShardConfiguration, plan clean, destroy. Skipped
when terraform or the provider mirror is missing."""
import os
import tempfile

import pytest
from redis.cluster import RedisCluster

from conftest import Server
from test_terraform import PROVIDER_DIR, TERRAFORM, Terraform

pytestmark = pytest.mark.skipif(
    not TERRAFORM or not os.path.isdir(PROVIDER_DIR),
    reason="terraform or the provider mirror is not installed")


def test_terraform_cluster_mode_group():
    server = Server()
    try:
        root = tempfile.mkdtemp(prefix="elastilite-tf-cluster-")
        tf = Terraform("cluster_mode", root, server.endpoint)
        tf.run("init")
        tf.run("apply", "-auto-approve")
        rg = tf.resource("aws_elasticache_replication_group.sharded")
        assert rg["cluster_enabled"] is True
        assert rg["num_node_groups"] == 2
        assert rg["replicas_per_node_group"] == 1
        assert len(rg["member_clusters"]) == 4
        assert rg["configuration_endpoint_address"]
        assert not rg["primary_endpoint_address"]
        out = tf.outputs()
        ec = server.client()
        cfg = ec.describe_replication_groups(
            ReplicationGroupId="tf-sharded")["ReplicationGroups"][0]["ConfigurationEndpoint"]
        assert out["configuration_endpoint"] == cfg["Address"]
        assert rg["port"] == cfg["Port"]
        rc = RedisCluster(host=cfg["Address"], port=cfg["Port"])
        rc.set("from-terraform", "1")
        tf.plan_is_clean()
        tf.run("apply", "-auto-approve", variables={"shards": 3})
        rg = tf.resource("aws_elasticache_replication_group.sharded")
        assert rg["num_node_groups"] == 3
        assert len(rg["member_clusters"]) == 6
        g = ec.describe_replication_groups(ReplicationGroupId="tf-sharded")["ReplicationGroups"][0]
        assert [ng["NodeGroupId"] for ng in g["NodeGroups"]] == ["0001", "0002", "0003"]
        rc = RedisCluster(host=cfg["Address"], port=cfg["Port"])
        assert rc.get("from-terraform") == b"1"
        tf.plan_is_clean(variables={"shards": 3})
        tf.run("destroy", "-auto-approve", variables={"shards": 3})
        with pytest.raises(ec.exceptions.ReplicationGroupNotFoundFault):
            ec.describe_replication_groups(ReplicationGroupId="tf-sharded")
        print("terraform timings:", tf.timings)
    finally:
        server.stop()
