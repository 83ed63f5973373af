"""Issue 11: every operation in botocore's ElastiCache model is answered.

The checklist is generated from the installed botocore model, not written by
hand: each operation is called with its required members filled with
valid-looking placeholders, and must not answer `InvalidAction` (nor fail
inside elastilite with `InternalFailure`). An AWS error such as
`...NotFound` is a correct answer for a resource that does not exist.

Operations implemented by other work streams are listed under their owner in
the test ids, but required all the same.
"""
import datetime

import botocore.session
import pytest
from botocore.exceptions import ClientError

# Owned by the RBAC/security work stream.
RBAC = {
    "AuthorizeCacheSecurityGroupIngress", "CreateCacheSecurityGroup", "DeleteCacheSecurityGroup",
    "DescribeCacheSecurityGroups", "RevokeCacheSecurityGroupIngress",
    "CreateUser", "CreateUserGroup", "DeleteUser", "DeleteUserGroup", "DescribeUsers",
    "DescribeUserGroups", "ModifyUser", "ModifyUserGroup",
}
# Owned by the cluster-mode work stream.
CLUSTER_MODE = {"ModifyReplicationGroupShardConfiguration"}

MODEL = botocore.session.get_session().get_service_model("elasticache")
ARN = "arn:aws:elasticache:us-east-1:000000000000:cluster:checklist-x"


def owner(op):
    if op in RBAC:
        return "rbac"
    if op in CLUSTER_MODE:
        return "cluster-mode"
    return "api"


def placeholder(name, shape, depth=0):
    """A valid-looking value for a member (only required members are filled)."""
    t = shape.type_name
    if t == "structure":
        return {m: placeholder(m, shape.members[m], depth + 1) for m in shape.required_members}
    if t == "list":
        return [placeholder(name, shape.member, depth + 1)]
    if t == "boolean":
        return True
    if t in ("integer", "long"):
        return 1
    if t in ("double", "float"):
        return 1.0
    if t == "timestamp":
        return datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    if shape.enum:
        return shape.enum[0]
    lowered = name.lower()
    if lowered == "engine":
        return "redis"
    if "arn" in lowered or lowered == "resourcename":
        return ARN
    if lowered in ("s3bucketname",):
        return "checklist-bucket"
    if lowered in ("address",):
        return "127.0.0.1"
    if lowered in ("passwords",):
        return "checklist-password-0123"
    return "checklist-x"


OPERATIONS = sorted(MODEL.operation_names)


def test_the_model_is_the_full_api():
    # A sanity check on the generator: the model botocore ships has them all.
    assert len(OPERATIONS) >= 75
    for op in ("CreateServerlessCache", "CreateGlobalReplicationGroup", "StartMigration",
               "PurchaseReservedCacheNodesOffering", "CopyServerlessCacheSnapshot"):
        assert op in OPERATIONS


@pytest.fixture(scope="module")
def shared_server():
    from conftest import Server
    s = Server()
    yield s
    s.stop()


@pytest.mark.parametrize("op", OPERATIONS, ids=[f"{owner(o)}:{o}" for o in OPERATIONS])
def test_operation_is_answered(shared_server, op):
    ec = shared_server.client()
    model = MODEL.operation_model(op)
    params = placeholder(op, model.input_shape) if model.input_shape is not None else {}
    method = getattr(ec, botocore.xform_name(op))
    try:
        method(**params)
    except ClientError as e:
        code = e.response["Error"]["Code"]
        assert code != "InvalidAction", f"{op} ({owner(op)}) is not implemented"
        assert code != "InternalFailure", f"{op} failed inside elastilite: {e}"
        # Modeled errors come with the status the model gives them.
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500, (op, code, status)
