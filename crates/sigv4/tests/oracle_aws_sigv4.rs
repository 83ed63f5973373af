//! Differential tests: requests signed by the `aws-sigv4` crate (the Rust SDK's signer) must
//! verify with ours, and tampered ones must be refused with the right error.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use proptest::prelude::*;
use sigv4::{verify, AuthError, CredentialStore, Request};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HOST: &str = "elasticache.us-east-1.amazonaws.com";
/// 2026-11-26T19:40:00Z
const T0: u64 = 1_795_722_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn creds() -> HashMap<String, String> {
    HashMap::from([(AKID.to_owned(), SECRET.to_owned())])
}

/// RFC 3986 encoding of everything but the unreserved characters.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request as it arrives at the server after the client signed it with `aws-sigv4`.
#[derive(Debug, Clone)]
struct Signed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Signed {
    fn req(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }
    fn header_mut(&mut self, name: &str) -> &mut String {
        &mut self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap()
            .1
    }
}

struct Sign<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(String, String)>,
    body: &'a [u8],
    host: &'a str,
    service: &'a str,
    region: &'a str,
    time: SystemTime,
    presign: Option<Duration>,
    session_token: Option<&'a str>,
    secret: &'a str,
}

impl<'a> Sign<'a> {
    fn new(method: &'a str, path: &'a str, query: &'a str, body: &'a [u8]) -> Self {
        Sign {
            method,
            path,
            query,
            headers: vec![("Host".to_owned(), HOST.to_owned())],
            body,
            host: HOST,
            service: "elasticache",
            region: "us-east-1",
            time: at(T0),
            presign: None,
            session_token: None,
            secret: SECRET,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn sign(&self) -> Signed {
        let identity = aws_credential_types::Credentials::new(
            AKID,
            self.secret,
            self.session_token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let mut settings = SigningSettings::default();
        if let Some(expires) = self.presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = if self.query.is_empty() {
            format!("https://{}{}", self.host, self.path)
        } else {
            format!("https://{}{}?{}", self.host, self.path, self.query)
        };
        let mut headers = self.headers.clone();
        for (n, v) in &mut headers {
            if n.eq_ignore_ascii_case("host") {
                *v = self.host.to_owned();
            }
        }
        let signable = SignableRequest::new(
            self.method,
            uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(self.body),
        )
        .unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

        for (name, value) in instructions.headers() {
            headers.push((name.to_owned(), value.to_owned()));
        }
        let mut query = self.query.to_owned();
        for (name, value) in instructions.params() {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&enc(name));
            query.push('=');
            query.push_str(&enc(value));
        }
        Signed {
            method: self.method.to_owned(),
            path: self.path.to_owned(),
            query,
            headers,
            body: self.body.to_vec(),
        }
    }
}

const FORM: &[u8] = b"Action=DescribeCacheClusters&Version=2015-02-02&ShowCacheNodeInfo=true";

fn api_request() -> Signed {
    Sign::new("POST", "/", "", FORM)
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("X-Custom", "  spaced    value  ")
        .sign()
}

#[test]
fn header_signed_api_request_verifies() {
    let s = api_request();
    assert!(s.headers.iter().any(|(n, _)| n == "authorization"));
    let v = verify(&s.req(), &creds(), at(T0 + 5)).unwrap();
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "elasticache");
    assert_eq!(v.signed_at, at(T0));
    // Header names are matched in any case.
    let mut upper = s.clone();
    for (n, _) in &mut upper.headers {
        *n = n.to_ascii_uppercase();
    }
    assert!(verify(&upper.req(), &creds(), at(T0)).is_ok());
    // Unsigned headers may change (a proxy adds some).
    let mut extra = s.clone();
    extra
        .headers
        .push(("User-Agent".to_owned(), "anything".to_owned()));
    assert!(verify(&extra.req(), &creds(), at(T0)).is_ok());
}

#[test]
fn header_signed_tampering() {
    let s = api_request();
    let creds = creds();
    let now = at(T0);

    let mut t = s.clone();
    t.body = b"Action=DeleteCacheCluster&Version=2015-02-02&CacheClusterId=x".to_vec();
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );

    let mut t = s.clone();
    *t.header_mut("content-type") = "application/json".to_owned();
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );

    let mut t = s.clone();
    *t.header_mut("x-custom") = "other".to_owned();
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );

    // A signed header sent twice.
    let mut t = s.clone();
    t.headers.push(("x-custom".to_owned(), "again".to_owned()));
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );

    // X-Amz-Date changed (within the skew window, so only the signature can catch it).
    let mut t = s.clone();
    *t.header_mut("x-amz-date") = "20261126T194100Z".to_owned();
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );

    // Date of another day than the credential scope.
    let mut t = s.clone();
    *t.header_mut("x-amz-date") = "20261127T000000Z".to_owned();
    assert_eq!(
        verify(&t.req(), &creds, at(T0 + 15_600)),
        Err(AuthError::SignatureDoesNotMatch)
    );

    // Path and query.
    let mut t = s.clone();
    t.path = "/other".to_owned();
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );
    let mut t = s.clone();
    t.query = "Action=DeleteCacheCluster".to_owned();
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );

    // Region in the credential scope (then the signature no longer matches).
    let mut t = s.clone();
    let auth = t.header_mut("authorization");
    *auth = auth.replace("/us-east-1/", "/eu-west-1/");
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );

    // Unknown key, wrong secret.
    let other: HashMap<String, String> =
        HashMap::from([("AKIAOTHER".to_owned(), SECRET.to_owned())]);
    assert_eq!(
        verify(&s.req(), &other, now),
        Err(AuthError::InvalidClientTokenId)
    );
    let wrong: HashMap<String, String> = HashMap::from([(AKID.to_owned(), "x".to_owned())]);
    assert_eq!(
        verify(&s.req(), &wrong, now),
        Err(AuthError::SignatureDoesNotMatch)
    );
    let bad_secret = Sign::new("POST", "/", "", FORM);
    let bad = Sign {
        secret: "not-the-secret",
        ..bad_secret
    }
    .sign();
    assert_eq!(
        verify(&bad.req(), &creds, now),
        Err(AuthError::SignatureDoesNotMatch)
    );

    // Clock skew: 15 minutes either way.
    assert!(verify(&s.req(), &creds, at(T0 + 900)).is_ok());
    assert!(verify(&s.req(), &creds, at(T0 - 900)).is_ok());
    assert_eq!(
        verify(&s.req(), &creds, at(T0 + 901)),
        Err(AuthError::RequestExpired)
    );
    assert_eq!(
        verify(&s.req(), &creds, at(T0 - 901)),
        Err(AuthError::RequestExpired)
    );

    // No signature at all.
    let mut t = s.clone();
    t.headers.retain(|(n, _)| n != "authorization");
    assert_eq!(
        verify(&t.req(), &creds, now),
        Err(AuthError::MissingAuthenticationToken)
    );
}

#[test]
fn session_token_is_signed() {
    let s = Sign {
        session_token: Some("FwoGZXIvYXdzEBYaDH+/token=="),
        ..Sign::new("POST", "/", "", FORM)
    }
    .sign();
    assert!(s
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token")));
    assert!(verify(&s.req(), &creds(), at(T0)).is_ok());
    let mut t = s.clone();
    *t.header_mut("x-amz-security-token") = "other".to_owned();
    assert_eq!(
        verify(&t.req(), &creds(), at(T0)),
        Err(AuthError::SignatureDoesNotMatch)
    );
}

#[test]
fn presigned_get_verifies_and_expires() {
    let s = Sign {
        presign: Some(Duration::from_secs(300)),
        ..Sign::new(
            "GET",
            "/",
            "Action=DescribeCacheClusters&Version=2015-02-02&Marker=a%20b%2Bc%2F%3D&Empty=",
            b"",
        )
    }
    .sign();
    assert!(s.query.contains("X-Amz-Signature="));
    assert!(!s.headers.iter().any(|(n, _)| n == "authorization"));
    let v = verify(&s.req(), &creds(), at(T0)).unwrap();
    assert_eq!(v.service, "elasticache");
    // Valid up to 15 minutes before its date (clock skew) and until date + expires.
    assert!(verify(&s.req(), &creds(), at(T0 - 900)).is_ok());
    assert!(verify(&s.req(), &creds(), at(T0 + 300)).is_ok());
    assert_eq!(
        verify(&s.req(), &creds(), at(T0 + 301)),
        Err(AuthError::RequestExpired)
    );
    assert_eq!(
        verify(&s.req(), &creds(), at(T0 - 901)),
        Err(AuthError::RequestExpired)
    );
    // The query parameters are signed.
    let mut t = s.clone();
    t.query = t.query.replace("Version=2015-02-02", "Version=2014-01-01");
    assert_eq!(
        verify(&t.req(), &creds(), at(T0)),
        Err(AuthError::SignatureDoesNotMatch)
    );
    let mut t = s.clone();
    t.query = t.query.replace("X-Amz-Expires=300", "X-Amz-Expires=3000");
    assert_eq!(
        verify(&t.req(), &creds(), at(T0)),
        Err(AuthError::SignatureDoesNotMatch)
    );
    // Parameter order does not matter.
    let mut t = s.clone();
    let mut parts: Vec<&str> = s.query.split('&').collect();
    parts.reverse();
    t.query = parts.join("&");
    assert!(verify(&t.req(), &creds(), at(T0)).is_ok());
    // A presigned request must not also carry an Authorization header.
    let mut t = s.clone();
    t.headers
        .push(("Authorization".to_owned(), "AWS4-HMAC-SHA256 x".to_owned()));
    assert!(matches!(
        verify(&t.req(), &creds(), at(T0)),
        Err(AuthError::IncompleteSignature(_))
    ));
}

#[test]
fn encoded_paths_and_queries() {
    for (path, query) in [
        ("/", "b=2&a=1&a=0"),
        ("/a%20b/c%3Dd/e@f", ""),
        ("/%E1%88%B4/x", "%E1%88%B4=bar"),
        ("/a/./b/../c//d/", "k=%2B%20+"),
        ("/-._~", "-._~=-._~"),
        ("/x", "a&b=&c"),
    ] {
        for presign in [None, Some(Duration::from_secs(60))] {
            let s = Sign {
                presign,
                ..Sign::new("GET", path, query, b"")
            }
            .sign();
            let r = verify(&s.req(), &creds(), at(T0));
            assert!(r.is_ok(), "{path}?{query} presign={presign:?}: {r:?}");
        }
    }
}

#[test]
fn credential_store_impls() {
    let c = sigv4::Credentials {
        access_key_id: AKID.to_owned(),
        secret_access_key: SECRET.to_owned(),
    };
    assert!(!format!("{c:?}").contains(SECRET));
    assert_eq!(c.secret_for(AKID).as_deref(), Some(SECRET));
    assert_eq!(c.secret_for("x"), None);
    let v = vec![c.clone()];
    let s = api_request();
    assert!(verify(&s.req(), &v, at(T0)).is_ok());
    assert!(verify(&s.req(), &c, at(T0)).is_ok());
}

/// An IAM auth token made the way Rust clients (e.g. Valkey GLIDE) make one with aws-sigv4:
/// presign `GET https://<cache>/?Action=connect&User=<user>` for 900 s, drop the scheme.
#[test]
fn aws_sigv4_made_iam_auth_token() {
    use sigv4::verify_iam_auth_token;
    for (cache, user, extra) in [
        ("my-cache", "my-user", ""),
        (
            "my-serverless",
            "app-user-1",
            "&ResourceType=ServerlessCache",
        ),
    ] {
        let query = format!("Action=connect&User={}{extra}", enc(user));
        let s = Sign {
            host: cache,
            presign: Some(Duration::from_secs(900)),
            ..Sign::new("GET", "/", &query, b"")
        }
        .sign();
        let token = format!("{cache}/?{}", s.query);
        let v = verify_iam_auth_token(&token, cache, user, &creds(), at(T0 + 60)).unwrap();
        assert_eq!(
            (v.service.as_str(), v.access_key_id.as_str()),
            ("elasticache", AKID)
        );
        assert_eq!(
            verify_iam_auth_token(&token, cache, user, &creds(), at(T0 + 901)),
            Err(AuthError::RequestExpired)
        );
        assert!(verify_iam_auth_token(&token, cache, "someone-else", &creds(), at(T0)).is_err());
        assert!(verify_iam_auth_token(&token, "another-cache", user, &creds(), at(T0)).is_err());
    }
    // Signed for another service: refused even with a good signature.
    let s = Sign {
        host: "my-cache",
        service: "memorydb",
        presign: Some(Duration::from_secs(900)),
        ..Sign::new("GET", "/", "Action=connect&User=u", b"")
    }
    .sign();
    let token = format!("my-cache/?{}", s.query);
    assert!(matches!(
        verify_iam_auth_token(&token, "my-cache", "u", &creds(), at(T0)),
        Err(AuthError::IncompleteSignature(_))
    ));
}

fn header_value() -> impl Strategy<Value = String> {
    // Visible ASCII and spaces (aws-sigv4 collapses spaces only; tabs are not generated).
    "[ -~]{0,24}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever aws-sigv4 signs, we verify; and a changed body never verifies.
    #[test]
    fn aws_sigv4_signed_requests_verify(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        segments in prop::collection::vec("[a-zA-Z0-9 ._~%=@+/-]{0,8}|\\PC{0,4}", 0..4),
        trailing_slash in any::<bool>(),
        params in prop::collection::vec(("\\PC{0,6}", "\\PC{0,8}"), 0..5),
        headers in prop::collection::vec(("x-meta-[a-z]{1,5}", header_value()), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
        presign in any::<bool>(),
        offset in 0u64..86_400 * 365,
    ) {
        let mut path = String::new();
        for seg in &segments {
            path.push('/');
            path.push_str(&enc(seg));
        }
        if path.is_empty() || trailing_slash {
            path.push('/');
        }
        let query = params
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut signer = Sign::new(method, &path, &query, &body);
        signer.time = at(T0 + offset);
        if presign {
            signer.presign = Some(Duration::from_secs(900));
        }
        for (n, v) in &headers {
            signer = signer.header(n, v);
        }
        let s = signer.sign();
        let r = verify(&s.req(), &creds(), at(T0 + offset + 60));
        prop_assert!(r.is_ok(), "{:?}: {:?}", s, r);
        let mut t = s.clone();
        t.body.push(0);
        prop_assert_eq!(verify(&t.req(), &creds(), at(T0 + offset)), Err(AuthError::SignatureDoesNotMatch));
    }
}
