//! AWS Signature Version 4 *verification*.
//!
//! `aws-sigv4` only signs, so this crate rebuilds the canonical request of a
//! *received* request and checks the client's signature against it:
//!
//! * [`verify`]: a header-signed request (`Authorization: AWS4-HMAC-SHA256 …`) or a
//!   query-presigned one (`X-Amz-Signature=…` in the query string), as the API server
//!   receives them.
//! * [`verify_iam_auth_token`]: an ElastiCache IAM authentication token, the password a
//!   Redis client sends with `AUTH user token` for a user in `iam` authentication mode.
//!
//! Canonicalisation follows the rules for every service but S3 (what ElastiCache uses):
//!
//! * the path, as received (still percent-encoded), is normalised (empty and `.` segments
//!   dropped, `..` resolved) and then URI-encoded once more, so `%3D` on the wire signs as
//!   `%253D` ("double encoding");
//! * query parameters are form-decoded (`+` is a space, as botocore, the Java SDK and
//!   `aws-sigv4` all treat it), re-encoded with the RFC 3986 unreserved set and sorted by
//!   name, then value;
//! * signed header values are trimmed and runs of white space collapse to one space; a header
//!   sent several times signs as its values joined with `,` in the order received;
//! * the payload hash is always `hex(sha256(body))` (no `UNSIGNED-PAYLOAD`, which is S3's).
//!
//! Errors carry the AWS error code and HTTP status of the query-protocol APIs
//! ([`AuthError::code`], [`AuthError::status`]), see the "Common Errors" page of the
//! ElastiCache API reference.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only algorithm accepted (SigV4a, `AWS4-ECDSA-P256-SHA256`, is not).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far the signing time of a header-signed request may be from `now` either way, and how far
/// in the future the signing time of a presigned request may be (AWS: 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest `X-Amz-Expires` AWS accepts for a presigned URL (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;
/// The longest `X-Amz-Expires` accepted in an ElastiCache IAM auth token (15 minutes).
pub const MAX_IAM_TOKEN_EXPIRES_SECS: u64 = 900;
/// The service name in the credential scope of an ElastiCache IAM auth token.
pub const IAM_AUTH_SERVICE: &str = "elasticache";

/// An access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Where the secret of an access key id is looked up.
pub trait CredentialStore {
    /// The secret access key of `access_key_id`, or `None` if the key is unknown.
    fn secret_for(&self, access_key_id: &str) -> Option<String>;
}

/// Access key id -> secret access key.
impl CredentialStore for HashMap<String, String> {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.get(access_key_id).cloned()
    }
}

impl CredentialStore for Credentials {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        (self.access_key_id == access_key_id).then(|| self.secret_access_key.clone())
    }
}

impl CredentialStore for [Credentials] {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.iter().find_map(|c| c.secret_for(access_key_id))
    }
}

impl CredentialStore for Vec<Credentials> {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.as_slice().secret_for(access_key_id)
    }
}

/// A received HTTP request, as much as SigV4 needs.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, … (compared as given: methods are case-sensitive).
    pub method: &'a str,
    /// The path as received on the wire, still percent-encoded, without the query.
    pub path: &'a str,
    /// The raw query string (without `?`), still percent-encoded.
    pub query: &'a str,
    /// All headers in the order received; names in any case; a header may repeat.
    pub headers: &'a [(String, String)],
    /// The request body as received.
    pub body: &'a [u8],
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor an `X-Amz-Signature` query parameter.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The `Authorization` header or the presigning parameters are malformed (the message says
    /// how), or an IAM auth token is malformed or is not for this user, cache or action.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not one of the configured ones.
    #[error("The security token included in the request is invalid.")]
    InvalidClientTokenId,
    /// The signature does not match the request (wrong secret, or the request was changed), or
    /// the date in the credential scope is not the date of `X-Amz-Date`.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    SignatureDoesNotMatch,
    /// A presigned request (or IAM auth token) past `X-Amz-Date + X-Amz-Expires`, or a signing
    /// time more than 15 minutes away from now (header auth) or more than 15 minutes in the
    /// future (presigned).
    #[error("Request has expired.")]
    RequestExpired,
}

impl AuthError {
    /// The AWS error code (`<Code>` of the query-protocol error response).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationToken",
            AuthError::IncompleteSignature(_) => "IncompleteSignature",
            AuthError::InvalidClientTokenId => "InvalidClientTokenId",
            AuthError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            // AWS's "Common Errors" for query APIs (ElastiCache included) name RequestExpired for
            // both a stale header signature and an expired presigned URL; `RequestTimeTooSkewed`
            // is S3's code.
            AuthError::RequestExpired => "RequestExpired",
        }
    }

    /// The HTTP status AWS answers with, from the "Common Errors" page of the ElastiCache API
    /// reference: `IncompleteSignature` and `RequestExpired` are 400, the others 403.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::IncompleteSignature(_) | AuthError::RequestExpired => 400,
            AuthError::MissingAuthenticationToken
            | AuthError::InvalidClientTokenId
            | AuthError::SignatureDoesNotMatch => 403,
        }
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    /// The region of the credential scope (`AKID/20261126/<region>/<service>/aws4_request`).
    pub region: String,
    /// The service of the credential scope. [`verify`] does not check it; callers should.
    pub service: String,
    /// `X-Amz-Date` (or `Date`) of the request.
    pub signed_at: SystemTime,
}

fn incomplete(msg: impl Into<String>) -> AuthError {
    AuthError::IncompleteSignature(msg.into())
}

/// The parts of a SigV4 signature, from the `Authorization` header or the query.
#[derive(Debug)]
struct Auth {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    /// Lower-case, sorted, deduplicated.
    signed_headers: Vec<String>,
    signature: String,
    /// ISO 8601 basic (`20150830T123600Z`), as it goes into the string to sign.
    amz_date: String,
    signed_at_secs: i64,
    /// `Some` for presigned requests.
    expires: Option<u64>,
}

fn header_values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn single_header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    header_values(headers, name).into_iter().next()
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

const PRESIGN_PARAMS: [&str; 3] = ["X-Amz-Signature", "X-Amz-Credential", "X-Amz-Algorithm"];

/// Splits `AKID/20150830/us-east-1/service/aws4_request`.
fn parse_credential(value: &str) -> Result<(String, String, String, String), AuthError> {
    let parts: Vec<&str> = value.trim().split('/').collect();
    match parts.as_slice() {
        [akid, date, region, service, terminator] => {
            if akid.is_empty() {
                return Err(incomplete("Credential must contain an access key id."));
            }
            if *terminator != "aws4_request" {
                return Err(incomplete(format!(
                    "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
                )));
            }
            if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
                return Err(incomplete(format!(
                    "Date must be in YYYYMMDD format. Got '{date}'."
                )));
            }
            if region.is_empty() || service.is_empty() {
                return Err(incomplete(
                    "Credential should be scoped to a valid region and service.",
                ));
            }
            Ok((
                (*akid).to_owned(),
                (*date).to_owned(),
                (*region).to_owned(),
                (*service).to_owned(),
            ))
        }
        _ => Err(incomplete(format!(
            "Credential should be of the form <access key id>/<date>/<region>/<service>/aws4_request, got '{value}'."
        ))),
    }
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, AuthError> {
    let mut names: Vec<String> = Vec::new();
    for name in value.split(';') {
        let name = name.trim();
        if name.is_empty() {
            return Err(incomplete(format!("Invalid SignedHeaders '{value}'.")));
        }
        names.push(name.to_ascii_lowercase());
    }
    names.sort();
    names.dedup();
    if !names.iter().any(|n| n == "host") {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok(names)
}

fn check_signature_format(sig: &str) -> Result<(), AuthError> {
    if sig.is_empty() || sig.len() > 128 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete("Signature must be a hexadecimal string."));
    }
    Ok(())
}

/// Parses the `Authorization` header (`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`).
fn parse_authorization(value: &str, headers: &[(String, String)]) -> Result<Auth, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((a, r)) => (a, r),
        None => (value, ""),
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Expected '{ALGORITHM}'."
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "Authorization header requires each component to be of the form key=value, got '{part}'."
            )));
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_some() {
            return Err(incomplete(format!(
                "Authorization header has a duplicate '{}' component.",
                k.trim()
            )));
        }
        *slot = Some(v.trim());
    }
    let mut missing = Vec::new();
    for (name, v) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if v.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(missing.join(" ")));
    };
    let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
    let signed_headers = parse_signed_headers(signed_headers)?;
    check_signature_format(signature)?;

    let (amz_date, signed_at_secs) = if let Some(d) = single_header(headers, "x-amz-date") {
        let d = d.trim();
        let secs = parse_amz_date(d).ok_or_else(|| {
            incomplete(format!(
                "Invalid X-Amz-Date '{d}': it must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z')."
            ))
        })?;
        (d.to_owned(), secs)
    } else if let Some(d) = single_header(headers, "date") {
        let t = httpdate::parse_http_date(d.trim())
            .map_err(|_| incomplete(format!("Invalid Date header '{}'.", d.trim())))?;
        let secs = system_time_secs(t);
        (format_amz_date(secs), secs)
    } else {
        return Err(incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    Ok(Auth {
        access_key_id,
        scope_date,
        region,
        service,
        signed_headers,
        signature: signature.to_owned(),
        amz_date,
        signed_at_secs,
        expires: None,
    })
}

/// Parses the presigning parameters of the query (`X-Amz-Algorithm`, `X-Amz-Credential`, …).
fn parse_presigned(params: &[(String, String)]) -> Result<Auth, AuthError> {
    let get = |name: &str| -> Result<Option<&str>, AuthError> {
        let mut found = params.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(incomplete(format!(
                "Query parameter '{name}' given more than once."
            )));
        }
        Ok(first)
    };
    let algorithm = get("X-Amz-Algorithm")?;
    let credential = get("X-Amz-Credential")?;
    let signed_headers = get("X-Amz-SignedHeaders")?;
    let signature = get("X-Amz-Signature")?;
    let date = get("X-Amz-Date")?;
    let expires = get("X-Amz-Expires")?;
    let mut missing = Vec::new();
    for (name, v) in [
        ("X-Amz-Algorithm", &algorithm),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Signature", &signature),
        ("X-Amz-SignedHeaders", &signed_headers),
        ("X-Amz-Date", &date),
        ("X-Amz-Expires", &expires),
    ] {
        if v.is_none() {
            missing.push(format!(
                "AWS query-string parameters must include '{name}'."
            ));
        }
    }
    let (
        Some(algorithm),
        Some(credential),
        Some(signed_headers),
        Some(signature),
        Some(date),
        Some(expires),
    ) = (
        algorithm,
        credential,
        signed_headers,
        signature,
        date,
        expires,
    )
    else {
        return Err(incomplete(missing.join(" ")));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}', got '{algorithm}'."
        )));
    }
    let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
    let signed_headers = parse_signed_headers(signed_headers)?;
    check_signature_format(signature)?;
    let signed_at_secs = parse_amz_date(date).ok_or_else(|| {
        incomplete(format!(
            "Invalid X-Amz-Date '{date}': it must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z')."
        ))
    })?;
    let expires: u64 = match expires.parse::<u64>() {
        Ok(e) if (1..=MAX_PRESIGNED_EXPIRES_SECS).contains(&e) && !expires.starts_with('+') => e,
        _ => {
            return Err(incomplete(format!(
                "X-Amz-Expires must be a whole number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_SECS}, got '{expires}'."
            )))
        }
    };
    Ok(Auth {
        access_key_id,
        scope_date,
        region,
        service,
        signed_headers,
        signature: signature.to_owned(),
        amz_date: date.to_owned(),
        signed_at_secs,
        expires: Some(expires),
    })
}

/// Finds and parses the signature of `req`: `Authorization` header or presigned query.
fn parse_auth(req: &Request) -> Result<Auth, AuthError> {
    let authorization = header_values(req.headers, "authorization");
    let params = query_pairs(req.query);
    let presigned = params
        .iter()
        .any(|(k, _)| PRESIGN_PARAMS.contains(&k.as_str()));
    match (authorization.as_slice(), presigned) {
        ([], false) => Err(AuthError::MissingAuthenticationToken),
        ([], true) => parse_presigned(&params),
        ([value], false) => parse_authorization(value, req.headers),
        ([_], true) => Err(incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.",
        )),
        (_, _) => Err(incomplete("More than one Authorization header.")),
    }
}

// ---------------------------------------------------------------------------------------------
// Canonicalisation

/// URI-encodes `bytes` as SigV4 does: everything but `A-Za-z0-9-._~` (and `/` if
/// `keep_slash`) becomes `%XX` with upper-case hex.
fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Removes empty and `.` segments and resolves `..` (never above the root), keeping a trailing
/// slash; `""` becomes `/`.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in path.split('/') {
        trailing_slash = false;
        match seg {
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if segments.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// The canonical URI of a path as received: normalised, then encoded once more (non-S3 rules).
pub fn canonical_uri(path: &str) -> String {
    let normalized = normalize_path(path);
    let mut out = String::with_capacity(normalized.len() + 8);
    uri_encode(normalized.as_bytes(), true, &mut out);
    out
}

/// The canonical query string of a raw query, leaving out the parameters named in `exclude`.
pub fn canonical_query(query: &str, exclude: &[&str]) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| !exclude.contains(&k.as_str()))
        .map(|(k, v)| {
            let mut ek = String::with_capacity(k.len());
            uri_encode(k.as_bytes(), false, &mut ek);
            let mut ev = String::with_capacity(v.len());
            uri_encode(v.as_bytes(), false, &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims a header value and collapses each run of white space (including folded lines) into
/// one space.
fn trim_all(value: &str) -> String {
    value.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

fn canonical_headers(headers: &[(String, String)], signed: &[String], out: &mut String) {
    for name in signed {
        out.push_str(name);
        out.push(':');
        let values: Vec<String> = header_values(headers, name)
            .into_iter()
            .map(trim_all)
            .collect();
        out.push_str(&values.join(","));
        out.push('\n');
    }
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn build_canonical_request(req: &Request, auth: &Auth) -> String {
    let mut out = String::with_capacity(256 + req.query.len());
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    let exclude: &[&str] = if auth.expires.is_some() {
        &["X-Amz-Signature"]
    } else {
        &[]
    };
    out.push_str(&canonical_query(req.query, exclude));
    out.push('\n');
    canonical_headers(req.headers, &auth.signed_headers, &mut out);
    out.push('\n');
    out.push_str(&auth.signed_headers.join(";"));
    out.push('\n');
    out.push_str(&hex_sha256(req.body));
    out
}

/// The canonical request that [`verify`] rebuilds for `req` (for debugging and tests).
pub fn canonical_request(req: &Request) -> Result<String, AuthError> {
    let auth = parse_auth(req)?;
    Ok(build_canonical_request(req, &auth))
}

fn string_to_sign(auth: &Auth, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        auth.amz_date,
        auth.scope_date,
        auth.region,
        auth.service,
        hex_sha256(canonical_request.as_bytes())
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; 32], AuthError> {
    // HMAC takes keys of any length, so this cannot fail; no panic path all the same.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).map_err(|_| AuthError::SignatureDoesNotMatch)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// The SigV4 signature (lower-case hex) of `string_to_sign`.
pub fn signature(
    secret_access_key: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> Result<String, AuthError> {
    let k_date = hmac_sha256(
        format!("AWS4{secret_access_key}").as_bytes(),
        scope_date.as_bytes(),
    )?;
    let k_region = hmac_sha256(&k_date, region.as_bytes())?;
    let k_service = hmac_sha256(&k_region, service.as_bytes())?;
    let k_signing = hmac_sha256(&k_service, b"aws4_request")?;
    Ok(hex::encode(hmac_sha256(
        &k_signing,
        string_to_sign.as_bytes(),
    )?))
}

// ---------------------------------------------------------------------------------------------
// Time

fn system_time_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn secs_to_system_time(secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'` into seconds since the epoch.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(r)?;
        digits.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > month_days || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

fn format_amz_date(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Verification

fn check_time(auth: &Auth, now: SystemTime) -> Result<(), AuthError> {
    let now = i128::from(system_time_secs(now));
    let signed = i128::from(auth.signed_at_secs);
    let skew = i128::from(MAX_CLOCK_SKEW.as_secs());
    match auth.expires {
        // Header auth: within 15 minutes either way.
        None if (now - signed).abs() > skew => Err(AuthError::RequestExpired),
        // Presigned: not yet valid more than 15 minutes ahead, expired after date + expires.
        Some(_) if signed - now > skew => Err(AuthError::RequestExpired),
        Some(expires) if now > signed + i128::from(expires) => Err(AuthError::RequestExpired),
        _ => Ok(()),
    }
}

fn verify_parsed(
    req: &Request,
    auth: Auth,
    creds: &dyn CredentialStore,
    now: SystemTime,
) -> Result<Verified, AuthError> {
    let secret = creds
        .secret_for(&auth.access_key_id)
        .ok_or(AuthError::InvalidClientTokenId)?;
    check_time(&auth, now)?;
    // The credential scope must be for the day the request was signed.
    if auth.amz_date.get(..8) != Some(auth.scope_date.as_str()) {
        return Err(AuthError::SignatureDoesNotMatch);
    }
    let canonical = build_canonical_request(req, &auth);
    let sts = string_to_sign(&auth, &canonical);
    let expected = signature(&secret, &auth.scope_date, &auth.region, &auth.service, &sts)?;
    // Compared as sent: signers send lower-case hex, and so must a client here.
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(AuthError::SignatureDoesNotMatch);
    }
    Ok(Verified {
        access_key_id: auth.access_key_id,
        region: auth.region,
        service: auth.service,
        signed_at: secs_to_system_time(auth.signed_at_secs),
    })
}

/// Verify a header-signed (`Authorization: AWS4-HMAC-SHA256 …`) or query-presigned request.
///
/// Checks, in this order: the signature is present ([`AuthError::MissingAuthenticationToken`])
/// and well formed ([`AuthError::IncompleteSignature`]; `host` must be signed); the access key
/// is known ([`AuthError::InvalidClientTokenId`]); the time ([`AuthError::RequestExpired`]);
/// the credential-scope date and the signature ([`AuthError::SignatureDoesNotMatch`]).
///
/// The region and service of the credential scope are returned, not checked. A session token
/// (`X-Amz-Security-Token`) is covered by the signature when the client signed it, and is not
/// otherwise checked.
pub fn verify(
    req: &Request,
    creds: &dyn CredentialStore,
    now: SystemTime,
) -> Result<Verified, AuthError> {
    let auth = parse_auth(req)?;
    verify_parsed(req, auth, creds, now)
}

/// ElastiCache IAM auth: the password a client sends with `AUTH` is a presigned URL without a
/// scheme, e.g. `my-cache/?Action=connect&User=my-user&X-Amz-Algorithm=AWS4-HMAC-SHA256&…`
/// (service `elasticache`, method `GET`, host = the cache name, path `/`), as the AWS samples
/// (`IAMAuthTokenRequest`) and botocore's `RequestSigner.generate_presigned_url` build it.
///
/// Checks the signature, the expiry (`X-Amz-Expires` ≤ 900 s and not passed), `Action=connect`,
/// `User == user_id`, host == `cache_name` (ASCII case-insensitively, as ElastiCache ids are)
/// and the credential-scope service `elasticache`. Serverless tokens also carry
/// `ResourceType=ServerlessCache`; it is covered by the signature but not checked here.
/// Mismatched user, cache, action or service are [`AuthError::IncompleteSignature`] with a message.
pub fn verify_iam_auth_token(
    token: &str,
    cache_name: &str,
    user_id: &str,
    creds: &dyn CredentialStore,
    now: SystemTime,
) -> Result<Verified, AuthError> {
    let (host, rest) = token
        .split_once('/')
        .ok_or_else(|| incomplete("IAM auth token must be <cache name>/?<query>."))?;
    let query = rest
        .strip_prefix('?')
        .ok_or_else(|| incomplete("IAM auth token must be <cache name>/?<query>."))?;
    if host.is_empty() {
        return Err(incomplete("IAM auth token has no cache name."));
    }
    let params = query_pairs(query);
    if !params.iter().any(|(k, _)| k == "X-Amz-Signature") {
        return Err(AuthError::MissingAuthenticationToken);
    }
    let single = |name: &str| -> Result<&str, AuthError> {
        let mut it = params.iter().filter(|(k, _)| k == name);
        match (it.next(), it.next()) {
            (Some((_, v)), None) => Ok(v.as_str()),
            (None, _) => Err(incomplete(format!(
                "IAM auth token has no '{name}' parameter."
            ))),
            (Some(_), Some(_)) => Err(incomplete(format!(
                "IAM auth token has more than one '{name}' parameter."
            ))),
        }
    };
    let action = single("Action")?;
    if action != "connect" {
        return Err(incomplete(format!(
            "IAM auth token is for Action '{action}', not 'connect'."
        )));
    }
    let user = single("User")?;
    if user != user_id {
        return Err(incomplete(format!(
            "IAM auth token is for user '{user}', not '{user_id}'."
        )));
    }
    if !host.eq_ignore_ascii_case(cache_name) {
        return Err(incomplete(format!(
            "IAM auth token is for cache '{host}', not '{cache_name}'."
        )));
    }
    let headers = [("host".to_owned(), host.to_owned())];
    let req = Request {
        method: "GET",
        path: "/",
        query,
        headers: &headers,
        body: b"",
    };
    let auth = parse_presigned(&params)?;
    if auth.service != IAM_AUTH_SERVICE {
        return Err(incomplete(format!(
            "IAM auth token is signed for service '{}', not '{IAM_AUTH_SERVICE}'.",
            auth.service
        )));
    }
    if auth.expires.is_some_and(|e| e > MAX_IAM_TOKEN_EXPIRES_SECS) {
        return Err(incomplete(format!(
            "IAM auth token X-Amz-Expires must be at most {MAX_IAM_TOKEN_EXPIRES_SECS} seconds."
        )));
    }
    verify_parsed(&req, auth, creds, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_round_trip() {
        for s in [
            "19700101T000000Z",
            "20150830T123600Z",
            "20000229T235959Z",
            "20261126T194018Z",
            "99991231T235959Z",
        ] {
            let secs = parse_amz_date(s).unwrap();
            assert_eq!(format_amz_date(secs), s);
        }
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        for bad in [
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150230T123600Z",
            "20190229T000000Z",
            "20151330T123600Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn path_normalization() {
        for (raw, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("//example//", "/example/"),
            ("/./example", "/example"),
            ("/a/./b", "/a/b"),
            ("/a/b/.", "/a/b/"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn uri_double_encoding() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(
            canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(canonical_uri("/example space/"), "/example%20space/");
        assert_eq!(canonical_uri("/example%20space/"), "/example%2520space/");
        assert_eq!(canonical_uri("/ሴ"), "/%E1%88%B4");
        assert_eq!(canonical_uri("/-._~AZaz09"), "/-._~AZaz09");
    }

    #[test]
    fn query_canonicalization() {
        assert_eq!(canonical_query("", &[]), "");
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1", &[]),
            "Param1=value1&Param2=value2"
        );
        // Sorted by encoded name, byte-wise: upper case before lower case.
        assert_eq!(canonical_query("b=1&B=2&a=3", &[]), "B=2&a=3&b=1");
        // Same name: sorted by value.
        assert_eq!(canonical_query("k=b&k=a&k=", &[]), "k=&k=a&k=b");
        // A name without `=` signs with an empty value.
        assert_eq!(canonical_query("Param1", &[]), "Param1=");
        // `+` is a space; `%2B` is a plus; re-encoded with %20 / %2B, upper-case hex.
        assert_eq!(
            canonical_query("a=x+y&b=x%2By&c=%2f", &[]),
            "a=x%20y&b=x%2By&c=%2F"
        );
        assert_eq!(canonical_query("ሴ=bar", &[]), "%E1%88%B4=bar");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&A=1", &["X-Amz-Signature"]),
            "A=1"
        );
    }

    #[test]
    fn header_trimming_and_multi_values() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let headers = h(&[
            ("Host", " example.com "),
            ("My-Header", "  a   b \t c  "),
            ("my-header", "second"),
            ("MY-HEADER", "value1\n  value2"),
            ("Other", "unsigned"),
        ]);
        let mut out = String::new();
        canonical_headers(
            &headers,
            &[
                "host".to_owned(),
                "my-header".to_owned(),
                "missing".to_owned(),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            "host:example.com\nmy-header:a b c,second,value1 value2\nmissing:\n"
        );
    }

    #[test]
    fn authorization_parsing_errors() {
        let hdrs = |auth: &str| {
            vec![
                ("Host".to_owned(), "h".to_owned()),
                ("X-Amz-Date".to_owned(), "20150830T123600Z".to_owned()),
                ("Authorization".to_owned(), auth.to_owned()),
            ]
        };
        let creds: HashMap<String, String> = HashMap::new();
        let now = secs_to_system_time(1_440_938_160);
        let check = |auth: &str| {
            let headers = hdrs(auth);
            let req = Request {
                method: "GET",
                path: "/",
                query: "",
                headers: &headers,
                body: b"",
            };
            verify(&req, &creds, now)
        };
        let ok_cred = "Credential=AKID/20150830/us-east-1/elasticache/aws4_request";
        for bad in [
            "",
            "AWS4-HMAC-SHA256",
            "AWS4-ECDSA-P256-SHA256 Credential=a/b",
            "Basic dXNlcjpwYXNz",
            &format!("AWS4-HMAC-SHA256 {ok_cred}, SignedHeaders=host"),
            &format!("AWS4-HMAC-SHA256 {ok_cred}, Signature=00"),
            &format!("AWS4-HMAC-SHA256 {ok_cred}, SignedHeaders=x-amz-date, Signature=00"),
            &format!("AWS4-HMAC-SHA256 {ok_cred}, SignedHeaders=host;;x, Signature=00"),
            &format!("AWS4-HMAC-SHA256 {ok_cred}, SignedHeaders=host, Signature=zz"),
            &format!("AWS4-HMAC-SHA256 {ok_cred}, SignedHeaders=host, Signature=00, Signature=00"),
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/elasticache/aws5_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/2015083/us-east-1/elasticache/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/elasticache/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=00",
        ] {
            let err = check(bad).unwrap_err();
            assert!(
                matches!(err, AuthError::IncompleteSignature(_)),
                "{bad:?}: {err:?}"
            );
            assert_eq!(err.code(), "IncompleteSignature");
            assert_eq!(err.status(), 400);
        }
        // Well formed, unknown key.
        let err = check(&format!(
            "AWS4-HMAC-SHA256 {ok_cred},SignedHeaders=host;x-amz-date,Signature=00"
        ))
        .unwrap_err();
        assert_eq!(err, AuthError::InvalidClientTokenId);
        assert_eq!((err.code(), err.status()), ("InvalidClientTokenId", 403));
    }

    /// Header auth with an HTTP `Date` header instead of `X-Amz-Date`: the string to sign uses
    /// the date in ISO 8601 basic format.
    #[test]
    fn date_header_instead_of_x_amz_date() {
        let mut headers = vec![
            ("Host".to_owned(), "example.amazonaws.com".to_owned()),
            (
                "Date".to_owned(),
                "Sun, 30 Aug 2015 12:36:00 GMT".to_owned(),
            ),
        ];
        let canonical = "GET\n/\n\ndate:Sun, 30 Aug 2015 12:36:00 GMT\nhost:example.amazonaws.com\n\ndate;host\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{}",
            hex_sha256(canonical.as_bytes())
        );
        let sig = signature("secret", "20150830", "us-east-1", "service", &sts).unwrap();
        headers.push((
            "Authorization".to_owned(),
            format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=date;host, Signature={sig}"),
        ));
        let creds = HashMap::from([("AKID".to_owned(), "secret".to_owned())]);
        let req = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(canonical_request(&req).unwrap(), canonical);
        let v = verify(&req, &creds, secs_to_system_time(1_440_938_160)).unwrap();
        assert_eq!(v.signed_at, secs_to_system_time(1_440_938_160));
        assert_eq!(
            verify(&req, &creds, secs_to_system_time(1_440_938_160 + 901)),
            Err(AuthError::RequestExpired)
        );
        // Upper-case hex is not what was signed.
        let mut upper = headers.clone();
        upper[2].1 = headers[2].1.replace(&sig, &sig.to_ascii_uppercase());
        let req = Request {
            headers: &upper,
            ..req
        };
        assert_eq!(
            verify(&req, &creds, secs_to_system_time(1_440_938_160)),
            Err(AuthError::SignatureDoesNotMatch)
        );
    }

    #[test]
    fn missing_authentication() {
        let headers = vec![("Host".to_owned(), "h".to_owned())];
        let creds: HashMap<String, String> = HashMap::new();
        for query in [
            "",
            "Action=DescribeCacheClusters",
            "X-Amz-Date=20150830T123600Z",
        ] {
            let req = Request {
                method: "GET",
                path: "/",
                query,
                headers: &headers,
                body: b"",
            };
            let err = verify(&req, &creds, SystemTime::now()).unwrap_err();
            assert_eq!(err, AuthError::MissingAuthenticationToken, "{query}");
            assert_eq!(
                (err.code(), err.status()),
                ("MissingAuthenticationToken", 403)
            );
        }
        // Presigning parameters present but incomplete.
        let req = Request {
            method: "GET",
            path: "/",
            query: "X-Amz-Signature=00",
            headers: &headers,
            body: b"",
        };
        assert!(matches!(
            verify(&req, &creds, SystemTime::now()),
            Err(AuthError::IncompleteSignature(_))
        ));
    }
}
