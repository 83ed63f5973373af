"""The Terraform AWS provider's start-up calls (api.md §8) with only
`endpoints { elasticache, sts }` configured and no skip_* flags: with credential
validation on, aws-sdk-go-base calls sts:GetCallerIdentity and nothing else, and
takes the account id and partition from the returned Arn. Replayed here as the Go
SDK sends it (signed POST, credential scope `sts`), also in strict-signature mode.
The real provider does the same in test_terraform.py's runs (whose provider blocks
set only `endpoints`)."""
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from conftest import Server

STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def signed_get_caller_identity(endpoint, key="test", secret="test"):
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=endpoint + "/", data=body,
        # The Go SDK v2 sends the form content type without a charset.
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "sts", "us-east-1").add_auth(req)
    r = urllib.request.Request(endpoint + "/", data=body.encode(), method="POST", headers=dict(req.headers))
    return urllib.request.urlopen(r, timeout=10)


def provider_account_and_partition(xml_body):
    """getAccountIDAndPartitionFromSTSGetCallerIdentity: arn.Parse(Arn)."""
    root = ET.fromstring(xml_body)
    assert root.tag == f"{STS_NS}GetCallerIdentityResponse"
    result = root.find(f"{STS_NS}GetCallerIdentityResult")
    arn = result.find(f"{STS_NS}Arn").text
    parts = arn.split(":", 5)
    assert parts[0] == "arn" and len(parts) == 6, arn
    assert result.find(f"{STS_NS}Account").text == parts[4]
    assert root.find(f"{STS_NS}ResponseMetadata/{STS_NS}RequestId").text
    return parts[4], parts[1]


def test_provider_start_up_call(server):
    with signed_get_caller_identity(server.endpoint) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/xml"
        assert provider_account_and_partition(r.read()) == ("000000000000", "aws")


def test_provider_start_up_call_in_strict_mode():
    s = Server("--account-id", "123456789012", "--require-signatures", "--credentials", "AKIDTF:tfsecret")
    try:
        with signed_get_caller_identity(s.endpoint, "AKIDTF", "tfsecret") as r:
            assert provider_account_and_partition(r.read()) == ("123456789012", "aws")
        # Wrong credentials fail validation, as the provider reports at start-up.
        with pytest.raises(urllib.error.HTTPError) as e:
            signed_get_caller_identity(s.endpoint, "AKIDTF", "wrong")
        assert e.value.code == 403
        assert b"SignatureDoesNotMatch" in e.value.read()
    finally:
        s.stop()
