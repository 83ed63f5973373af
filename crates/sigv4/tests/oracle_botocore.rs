//! botocore as the oracle: an ElastiCache API request signed by `botocore.auth.SigV4Auth` and
//! ElastiCache IAM auth tokens made by botocore's `RequestSigner.generate_presigned_url` (the
//! recipe of the AWS docs' redis-py example) must verify with ours, and be refused with a wrong
//! secret, after expiry, and for another user or cache.
//!
//! Needs `python3` with botocore. Without it the tests are skipped with a message, unless `CI`
//! is set, where they fail.

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sigv4::{verify, verify_iam_auth_token, AuthError, Request};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

const SCRIPT: &str = r#"
import json, sys
from urllib.parse import urlencode
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import ServiceId
from botocore.signers import RequestSigner

akid, secret = sys.argv[1], sys.argv[2]
creds = Credentials(akid, secret)
out = {}

# (a) A signed ElastiCache API request (query protocol, form body).
host = "elasticache.us-east-1.amazonaws.com"
req = AWSRequest(method="POST", url="https://" + host + "/",
                 data="Action=DescribeCacheClusters&Version=2015-02-02",
                 headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
SigV4Auth(creds, "elasticache", "us-east-1").add_auth(req)
headers = [[k, v] for k, v in req.headers.items()]
if not any(k.lower() == "host" for k, _ in headers):
    headers.append(["Host", host])
body = req.body if isinstance(req.body, str) else req.body.decode()
out["api"] = {"method": req.method, "path": "/", "query": "", "headers": headers, "body": body}

# (b) IAM auth tokens.
emitter = botocore.session.get_session().get_component("event_emitter")
def token(cache, user, creds=creds, expires=900, extra=None, region="us-east-1"):
    signer = RequestSigner(ServiceId("elasticache"), region, "elasticache", "v4", creds, emitter)
    params = {"Action": "connect", "User": user}
    params.update(extra or {})
    url = "https://" + cache + "/?" + urlencode(params)
    signed = signer.generate_presigned_url(
        {"method": "GET", "url": url, "body": {}, "headers": {}, "context": {}},
        operation_name="connect", expires_in=expires, region_name=region)
    assert signed.startswith("https://")
    return signed[len("https://"):]

out["tokens"] = {
    "plain": token("my-cache", "my-user"),
    "odd_user": token("my-cache", "iam user+1/é"),
    "serverless": token("my-serverless", "my-user", extra={"ResourceType": "ServerlessCache"}),
    "session": token("my-cache", "my-user", creds=Credentials(akid, secret, "FwoGZXIvYXdzE+/token==")),
    "eu": token("my-cache", "my-user", region="eu-west-1"),
    "long": token("my-cache", "my-user", expires=3600),
    "wrong_secret": token("my-cache", "my-user", creds=Credentials(akid, "not-the-secret")),
}

# The query_string key of a request dict is not used by generate_presigned_url: a token made
# that way carries no Action and no User.
signer = RequestSigner(ServiceId("elasticache"), "us-east-1", "elasticache", "v4", creds, emitter)
literal = signer.generate_presigned_url(
    {"method": "GET", "url": "https://my-cache/", "body": {}, "headers": {},
     "query_string": {"Action": "connect", "User": "my-user"}, "context": {}},
    operation_name="connect", expires_in=900)
out["tokens"]["query_string_key"] = literal[len("https://"):]
print(json.dumps(out))
"#;

fn botocore_output() -> Option<Value> {
    let run = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(AKID)
        .arg(SECRET)
        .output();
    let reason = match run {
        Ok(out) if out.status.success() => {
            return Some(serde_json::from_slice(&out.stdout).expect("botocore script output"))
        }
        Ok(out) => format!(
            "python3 botocore script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("python3 not runnable: {e}"),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{reason} (CI is set, so botocore is required: pip install boto3)");
    }
    // Straight to stderr, past libtest's output capture, so the skip is seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED botocore oracle tests: {reason}");
    None
}

fn creds() -> HashMap<String, String> {
    HashMap::from([(AKID.to_owned(), SECRET.to_owned())])
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

#[test]
fn botocore_signed_api_request() {
    let Some(out) = botocore_output() else {
        return;
    };
    let api = &out["api"];
    let headers: Vec<(String, String)> = api["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_owned(),
                h[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let body = api["body"].as_str().unwrap().as_bytes().to_vec();
    let req = Request {
        method: api["method"].as_str().unwrap(),
        path: api["path"].as_str().unwrap(),
        query: api["query"].as_str().unwrap(),
        headers: &headers,
        body: &body,
    };
    let now = SystemTime::now();
    let v = verify(&req, &creds(), now).unwrap();
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "elasticache");
    assert!(now.duration_since(v.signed_at).unwrap() < minutes(5));

    let wrong = HashMap::from([(AKID.to_owned(), "not-the-secret".to_owned())]);
    assert_eq!(
        verify(&req, &wrong, now),
        Err(AuthError::SignatureDoesNotMatch)
    );
    let unknown = HashMap::from([("AKIAOTHER".to_owned(), SECRET.to_owned())]);
    assert_eq!(
        verify(&req, &unknown, now),
        Err(AuthError::InvalidClientTokenId)
    );
    assert_eq!(
        verify(&req, &creds(), now + minutes(16)),
        Err(AuthError::RequestExpired)
    );
    let tampered = b"Action=DescribeCacheClusters&Version=2015-02-03".to_vec();
    let t = Request {
        body: &tampered,
        ..req
    };
    assert_eq!(
        verify(&t, &creds(), now),
        Err(AuthError::SignatureDoesNotMatch)
    );
}

#[test]
fn botocore_iam_auth_tokens() {
    let Some(out) = botocore_output() else {
        return;
    };
    let tok = |name: &str| out["tokens"][name].as_str().unwrap().to_owned();
    let creds = creds();
    let now = SystemTime::now();

    let plain = tok("plain");
    assert!(plain.starts_with("my-cache/?Action=connect&User=my-user&X-Amz-Algorithm="));
    let v = verify_iam_auth_token(&plain, "my-cache", "my-user", &creds, now).unwrap();
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "elasticache");
    // Cache names compare case-insensitively, as ElastiCache ids do.
    assert!(verify_iam_auth_token(&plain, "MY-CACHE", "my-user", &creds, now).is_ok());

    // Valid for 15 minutes.
    assert!(
        verify_iam_auth_token(&plain, "my-cache", "my-user", &creds, now + minutes(14)).is_ok()
    );
    assert_eq!(
        verify_iam_auth_token(&plain, "my-cache", "my-user", &creds, now + minutes(16)),
        Err(AuthError::RequestExpired)
    );
    // Another user, another cache.
    assert!(matches!(
        verify_iam_auth_token(&plain, "my-cache", "other-user", &creds, now),
        Err(AuthError::IncompleteSignature(_))
    ));
    assert!(matches!(
        verify_iam_auth_token(&plain, "other-cache", "my-user", &creds, now),
        Err(AuthError::IncompleteSignature(_))
    ));
    // Wrong secret (ours, or the signer's), unknown key.
    let wrong = HashMap::from([(AKID.to_owned(), "not-the-secret".to_owned())]);
    assert_eq!(
        verify_iam_auth_token(&plain, "my-cache", "my-user", &wrong, now),
        Err(AuthError::SignatureDoesNotMatch)
    );
    assert_eq!(
        verify_iam_auth_token(&tok("wrong_secret"), "my-cache", "my-user", &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );
    let unknown = HashMap::from([("AKIAOTHER".to_owned(), SECRET.to_owned())]);
    assert_eq!(
        verify_iam_auth_token(&plain, "my-cache", "my-user", &unknown, now),
        Err(AuthError::InvalidClientTokenId)
    );
    // Editing the token: another user with the old signature.
    let edited = plain.replacen("User=my-user", "User=admin", 1);
    assert_eq!(
        verify_iam_auth_token(&edited, "my-cache", "admin", &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );
    let edited = plain.replacen("my-cache/", "admin-cache/", 1);
    assert_eq!(
        verify_iam_auth_token(&edited, "admin-cache", "my-user", &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );
    // As a full URL (scheme left on) it is not a token.
    assert!(verify_iam_auth_token(
        &format!("https://{plain}"),
        "my-cache",
        "my-user",
        &creds,
        now
    )
    .is_err());

    // A user id that needs encoding; a serverless cache; a session token; another region.
    assert!(
        verify_iam_auth_token(&tok("odd_user"), "my-cache", "iam user+1/é", &creds, now).is_ok()
    );
    let serverless = tok("serverless");
    assert!(serverless.contains("ResourceType=ServerlessCache"));
    assert!(verify_iam_auth_token(&serverless, "my-serverless", "my-user", &creds, now).is_ok());
    let session = tok("session");
    assert!(session.contains("X-Amz-Security-Token="));
    assert!(verify_iam_auth_token(&session, "my-cache", "my-user", &creds, now).is_ok());
    let eu = verify_iam_auth_token(&tok("eu"), "my-cache", "my-user", &creds, now).unwrap();
    assert_eq!(eu.region, "eu-west-1");

    // Longer than 15 minutes is refused even while fresh.
    assert!(matches!(
        verify_iam_auth_token(&tok("long"), "my-cache", "my-user", &creds, now),
        Err(AuthError::IncompleteSignature(_))
    ));
    // The request dict's query_string key is ignored by generate_presigned_url: no Action/User.
    let literal = tok("query_string_key");
    assert!(!literal.contains("Action="));
    assert!(matches!(
        verify_iam_auth_token(&literal, "my-cache", "my-user", &creds, now),
        Err(AuthError::IncompleteSignature(_))
    ));
}
