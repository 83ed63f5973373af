//! AWS's SigV4 test suite (the CRT copy shipped in `aws-sigv4`): every signed request must verify
//! with our verifier, and our canonical requests must equal the published ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sigv4::{canonical_request, verify, AuthError, Request};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z, the timestamp of every case with a context.json.
const SUITE_TIME: u64 = 1_440_938_160;

struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn as_request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// Parses the suite's HTTP/1.1 request files (request line, headers with folded continuation
/// lines, blank line, body).
fn parse_request(text: &str) -> RawRequest {
    let mut lines = text.split('\n');
    let request_line = lines.next().unwrap();
    let request_line = request_line
        .strip_suffix(" HTTP/1.1")
        .unwrap_or(request_line);
    let (method, target) = request_line.split_once(' ').unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut body_lines = Vec::new();
    let mut in_body = false;
    for line in lines {
        if in_body {
            body_lines.push(line);
        } else if line.is_empty() {
            in_body = true;
        } else if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    RawRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body_lines.join("\n").into_bytes(),
    }
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws-signing-test-suite/v4")
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(suite_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    assert!(v.len() >= 38, "test suite incomplete: {} cases", v.len());
    v
}

fn creds() -> HashMap<String, String> {
    HashMap::from([(AKID.to_owned(), SECRET.to_owned())])
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// Cases whose published canonical request is *not* what a non-S3 service computes: the
/// `normalize: false` (S3-style) paths that normalisation changes, and a session token added to
/// the query after signing (`omit_session_token`).
const EXPECTED_DIFFERENT: &[&str] = &[
    "get-relative-relative-unnormalized/header",
    "get-relative-relative-unnormalized/query",
    "get-relative-unnormalized/header",
    "get-relative-unnormalized/query",
    "get-slash-dot-slash-unnormalized/header",
    "get-slash-dot-slash-unnormalized/query",
    "get-slash-pointless-dot-unnormalized/header",
    "get-slash-pointless-dot-unnormalized/query",
    "get-slash-unnormalized/header",
    "get-slash-unnormalized/query",
    "get-slashes-unnormalized/header",
    "get-slashes-unnormalized/query",
    "post-sts-header-after/query",
];

#[test]
fn suite_signed_requests_verify_and_canonicalize_as_published() {
    let mut checked = 0;
    let mut different = Vec::new();
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if read(&dir, "context.json").is_none() {
            continue; // double-encode-path / double-url-encode: see `double_encoding_cases`
        }
        for kind in ["header", "query"] {
            let Some(signed) = read(&dir, &format!("{kind}-signed-request.txt")) else {
                continue;
            };
            let expected_canonical = read(&dir, &format!("{kind}-canonical-request.txt")).unwrap();
            let raw = parse_request(&signed);
            let req = raw.as_request();
            let ours = canonical_request(&req).unwrap();
            let result = verify(&req, &creds(), at(SUITE_TIME));
            let id = format!("{name}/{kind}");
            if ours == expected_canonical {
                let v = result.unwrap_or_else(|e| panic!("{id}: {e:?}"));
                assert_eq!(v.access_key_id, AKID);
                assert_eq!(v.region, "us-east-1");
                assert_eq!(v.service, "service");
                assert_eq!(v.signed_at, at(SUITE_TIME));
            } else {
                assert_eq!(
                    result,
                    Err(AuthError::SignatureDoesNotMatch),
                    "{id}: canonical differs, so the signature must not verify"
                );
                different.push(id);
            }
            checked += 1;
        }
    }
    assert!(checked >= 70, "only {checked} signed requests checked");
    assert_eq!(different, EXPECTED_DIFFERENT);
}

#[test]
fn suite_tampering_is_detected() {
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if read(&dir, "context.json").is_none() {
            continue;
        }
        for kind in ["header", "query"] {
            let id = format!("{name}/{kind}");
            if EXPECTED_DIFFERENT.contains(&id.as_str()) {
                continue;
            }
            let Some(signed) = read(&dir, &format!("{kind}-signed-request.txt")) else {
                continue;
            };
            let raw = parse_request(&signed);
            let creds = creds();

            // A signature with one hex digit changed.
            let mut t = parse_request(&signed);
            if kind == "header" {
                let auth = t
                    .headers
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
                    .unwrap();
                let last = auth.1.pop().unwrap();
                auth.1.push(if last == '0' { '1' } else { '0' });
            } else {
                let last = t.query.pop().unwrap();
                t.query.push(if last == '0' { '1' } else { '0' });
            }
            assert_eq!(
                verify(&t.as_request(), &creds, at(SUITE_TIME)),
                Err(AuthError::SignatureDoesNotMatch),
                "{id}: changed signature"
            );

            // Another method.
            let mut t = parse_request(&signed);
            t.method = if t.method == "GET" { "POST" } else { "GET" }.to_owned();
            assert_eq!(
                verify(&t.as_request(), &creds, at(SUITE_TIME)),
                Err(AuthError::SignatureDoesNotMatch),
                "{id}: changed method"
            );

            // Another host.
            let mut t = parse_request(&signed);
            let host = t
                .headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .unwrap();
            host.1 = "evil.example.com".to_owned();
            assert_eq!(
                verify(&t.as_request(), &creds, at(SUITE_TIME)),
                Err(AuthError::SignatureDoesNotMatch),
                "{id}: changed host"
            );

            // A body byte more.
            let mut t = parse_request(&signed);
            t.body.push(b'x');
            assert_eq!(
                verify(&t.as_request(), &creds, at(SUITE_TIME)),
                Err(AuthError::SignatureDoesNotMatch),
                "{id}: changed body"
            );

            // An extra query parameter.
            let mut t = parse_request(&signed);
            t.query = if t.query.is_empty() {
                "Extra=1".to_owned()
            } else {
                format!("Extra=1&{}", t.query)
            };
            assert_eq!(
                verify(&t.as_request(), &creds, at(SUITE_TIME)),
                Err(AuthError::SignatureDoesNotMatch),
                "{id}: extra query parameter"
            );

            // Another secret; an unknown key.
            let wrong = HashMap::from([(AKID.to_owned(), "not-the-secret".to_owned())]);
            assert_eq!(
                verify(&raw.as_request(), &wrong, at(SUITE_TIME)),
                Err(AuthError::SignatureDoesNotMatch),
                "{id}: wrong secret"
            );
            let other = HashMap::from([("AKIDOTHER".to_owned(), SECRET.to_owned())]);
            assert_eq!(
                verify(&raw.as_request(), &other, at(SUITE_TIME)),
                Err(AuthError::InvalidClientTokenId),
                "{id}: unknown key"
            );

            // Time: header auth tolerates 15 minutes of skew either way; presigned URLs are good
            // for X-Amz-Expires (3600 s here) and up to 15 minutes before their date.
            let req = raw.as_request();
            let (ok, late) = if kind == "header" {
                (
                    [SUITE_TIME - 900, SUITE_TIME + 900],
                    [SUITE_TIME - 901, SUITE_TIME + 901],
                )
            } else {
                (
                    [SUITE_TIME - 900, SUITE_TIME + 3600],
                    [SUITE_TIME - 901, SUITE_TIME + 3601],
                )
            };
            for t in ok {
                assert!(verify(&req, &creds, at(t)).is_ok(), "{id}: at {t}");
            }
            for t in late {
                let err = verify(&req, &creds, at(t)).unwrap_err();
                assert_eq!(err, AuthError::RequestExpired, "{id}: at {t}");
                assert_eq!((err.code(), err.status()), ("RequestExpired", 400));
            }
        }
    }
}

/// The two cases from the older suite that have no context.json: the canonical URI is the
/// received path encoded once more.
#[test]
fn double_encoding_cases() {
    for name in ["double-encode-path", "double-url-encode"] {
        let dir = suite_dir().join(name);
        let signed = read(&dir, "header-signed-request.txt").unwrap();
        let expected = read(&dir, "header-canonical-request.txt").unwrap();
        let raw = parse_request(&signed);
        let ours = canonical_request(&raw.as_request()).unwrap();
        let ours_uri = ours.lines().nth(1).unwrap();
        let expected_uri = expected.lines().nth(1).unwrap();
        assert_eq!(ours_uri, expected_uri, "{name}");
        assert_eq!(sigv4::canonical_uri(&raw.path), expected_uri, "{name}");
    }
    // double-url-encode is self-consistent (2021-05-11, lambda, us-east-2): it verifies.
    let dir = suite_dir().join("double-url-encode");
    let raw = parse_request(&read(&dir, "header-signed-request.txt").unwrap());
    let v = verify(&raw.as_request(), &creds(), at(1_620_747_645)).unwrap();
    assert_eq!(
        (v.region.as_str(), v.service.as_str()),
        ("us-east-2", "lambda")
    );
}
