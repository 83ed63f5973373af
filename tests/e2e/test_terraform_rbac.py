"""The Terraform AWS provider's aws_elasticache_user and aws_elasticache_user_group
(api.md §7.5, §7.6) against elastilite: apply, a clean plan, an update, destroy."""
import os
import tempfile

import pytest

from conftest import Server
from test_terraform import PROVIDER_DIR, TERRAFORM, Terraform


@pytest.mark.skipif(TERRAFORM is None or not os.path.isdir(PROVIDER_DIR),
                    reason="terraform or the provider mirror is missing")
def test_terraform_users_and_user_group():
    server = Server()
    try:
        ec = server.client()
        tf = Terraform("users", tempfile.mkdtemp(prefix="tf-rbac-"), server.endpoint)
        tf.run("init")
        tf.run("apply", "-auto-approve")
        assert tf.outputs()["user_group_arn"].endswith(":usergroup:tf-users")
        g = ec.describe_user_groups(UserGroupId="tf-users")["UserGroups"][0]
        assert sorted(g["UserIds"]) == ["tf-app", "tf-default", "tf-iam"]
        app = ec.describe_users(UserId="tf-app")["Users"][0]
        assert app["AccessString"] == "on ~app:* +@read" and app["UserGroupIds"] == ["tf-users"]
        assert ec.describe_users(UserId="tf-iam")["Users"][0]["Authentication"]["Type"] == "iam"
        tf.plan_is_clean()
        tf.run("apply", "-auto-approve", variables={"app_access": "on ~app:* +@read +@write"})
        assert ec.describe_users(UserId="tf-app")["Users"][0]["AccessString"] == "on ~app:* +@read +@write"
        tf.plan_is_clean(variables={"app_access": "on ~app:* +@read +@write"})
        tf.run("destroy", "-auto-approve", variables={"app_access": "on ~app:* +@read +@write"})
        assert [u["UserId"] for u in ec.describe_users()["Users"]] == ["default"]
        assert ec.describe_user_groups()["UserGroups"] == []
    finally:
        server.stop()
