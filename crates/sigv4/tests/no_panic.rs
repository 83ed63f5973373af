//! Arbitrary, mostly malformed input never panics: it is refused with an error (or, by chance,
//! well-formed but unsigned, also an error).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use sigv4::{canonical_request, verify, verify_iam_auth_token, AuthError, Request};

fn creds() -> HashMap<String, String> {
    HashMap::from([("AKID".to_owned(), "secret".to_owned())])
}

/// Fragments that steer the generators towards the parser's interesting paths.
fn auth_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just(" ".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just("/".to_owned()),
        Just(";".to_owned()),
        Just("Credential=".to_owned()),
        Just("AKID/20150830/us-east-1/elasticache/aws4_request".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("host;x-amz-date".to_owned()),
        Just("Signature=".to_owned()),
        Just("0123456789abcdef".to_owned()),
        "\\PC{0,6}",
        any::<String>(),
    ]
}

fn query_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("%".to_owned()),
        Just("%E1%88".to_owned()),
        Just("+".to_owned()),
        Just("X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned()),
        Just(
            "X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Felasticache%2Faws4_request".to_owned()
        ),
        Just("X-Amz-Date=20150830T123600Z".to_owned()),
        Just("X-Amz-Expires=".to_owned()),
        Just("X-Amz-SignedHeaders=host".to_owned()),
        Just("X-Amz-Signature=".to_owned()),
        Just("Action=connect".to_owned()),
        Just("User=".to_owned()),
        "[0-9]{1,22}",
        "\\PC{0,6}",
        any::<String>(),
    ]
}

fn joined(parts: Vec<String>) -> String {
    parts.concat()
}

fn any_time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(UNIX_EPOCH),
        Just(UNIX_EPOCH + Duration::from_secs(1_440_938_160)),
        (0u64..=u64::MAX / 4).prop_map(|s| UNIX_EPOCH
            .checked_add(Duration::from_secs(s))
            .unwrap_or(UNIX_EPOCH)),
        (0u64..1u64 << 40).prop_map(|s| UNIX_EPOCH
            .checked_sub(Duration::from_secs(s))
            .unwrap_or(UNIX_EPOCH)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_authorization_headers_do_not_panic(
        auth in prop::collection::vec(auth_fragment(), 0..12).prop_map(joined),
        date in prop_oneof![Just("20150830T123600Z".to_owned()), "\\PC{0,20}", any::<String>()],
        use_date_header in any::<bool>(),
        path in any::<String>(),
        query in prop::collection::vec(query_fragment(), 0..6).prop_map(joined),
        body in prop::collection::vec(any::<u8>(), 0..16),
        now in any_time(),
    ) {
        let headers = vec![
            ("Host".to_owned(), "h".to_owned()),
            (if use_date_header { "Date" } else { "X-Amz-Date" }.to_owned(), date),
            ("Authorization".to_owned(), auth),
        ];
        let req = Request { method: "POST", path: &path, query: &query, headers: &headers, body: &body };
        let r = verify(&req, &creds(), now);
        prop_assert!(r.is_err());
        let _ = canonical_request(&req);
        if let Err(e) = r {
            prop_assert!(e.status() == 400 || e.status() == 403);
            prop_assert!(!e.code().is_empty());
        }
    }

    #[test]
    fn arbitrary_query_strings_do_not_panic(
        query in prop::collection::vec(query_fragment(), 0..16).prop_map(|v| v.join("&")),
        now in any_time(),
    ) {
        let headers = vec![("Host".to_owned(), "h".to_owned())];
        let req = Request { method: "GET", path: "/", query: &query, headers: &headers, body: b"" };
        prop_assert!(verify(&req, &creds(), now).is_err());
    }

    #[test]
    fn arbitrary_iam_tokens_do_not_panic(
        host in prop_oneof![Just("my-cache".to_owned()), "\\PC{0,8}"],
        query in prop::collection::vec(query_fragment(), 0..16).prop_map(|v| v.join("&")),
        sep in prop_oneof![Just("/?".to_owned()), "\\PC{0,3}"],
        raw in any::<String>(),
        now in any_time(),
    ) {
        let token = format!("{host}{sep}{query}");
        prop_assert!(verify_iam_auth_token(&token, "my-cache", "", &creds(), now).is_err());
        prop_assert!(verify_iam_auth_token(&raw, "my-cache", "my-user", &creds(), now).is_err());
    }
}

#[test]
fn extreme_values() {
    let headers = vec![
        ("Host".to_owned(), "h".to_owned()),
        ("X-Amz-Date".to_owned(), "99991231T235959Z".to_owned()),
    ];
    let long = format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F99991231%2Fr%2Fs%2Faws4_request&X-Amz-Date=99991231T235959Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature={}", "0".repeat(64));
    let far = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 2));
    for now in [
        Some(UNIX_EPOCH),
        far,
        UNIX_EPOCH.checked_sub(Duration::from_secs(1 << 40)),
    ] {
        let Some(now) = now else { continue };
        let req = Request {
            method: "GET",
            path: "/",
            query: &long,
            headers: &headers,
            body: b"",
        };
        assert!(matches!(
            verify(&req, &creds(), now),
            Err(AuthError::RequestExpired | AuthError::SignatureDoesNotMatch)
        ));
    }
    let req = Request {
        method: "GET",
        path: "/",
        query: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fr%2Fs%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=99999999999999999999999&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
        headers: &headers,
        body: b"",
    };
    assert!(matches!(
        verify(&req, &creds(), SystemTime::now()),
        Err(AuthError::IncompleteSignature(_))
    ));
}
