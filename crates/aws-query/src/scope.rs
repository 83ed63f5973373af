//! The SigV4 credential scope of a request. Signatures are not verified here; the
//! scope is read because real clients put the region (and the target service, so
//! STS calls can share the port) in it.

/// `AKID/20261126/us-east-1/elasticache/aws4_request` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

impl CredentialScope {
    /// Parse the `Authorization` header value; `None` if it is absent or not SigV4.
    pub fn from_authorization(header: &str) -> Option<CredentialScope> {
        let rest = header.trim().strip_prefix("AWS4-HMAC-SHA256")?;
        let cred = rest
            .split(',')
            .map(str::trim)
            .find_map(|part| part.strip_prefix("Credential="))?;
        Self::from_credential(cred)
    }

    /// Parse an `X-Amz-Credential` value (presigned URLs).
    pub fn from_credential(cred: &str) -> Option<CredentialScope> {
        let mut parts = cred.split('/');
        let access_key = parts.next()?.to_string();
        let _date = parts.next()?;
        let region = parts.next()?.to_string();
        let service = parts.next()?.to_string();
        if region.is_empty() || service.is_empty() {
            return None;
        }
        Some(CredentialScope {
            access_key,
            region,
            service,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_scope_real_clients_send() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20261126/eu-west-2/elasticache/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, Signature=abc";
        let s = CredentialScope::from_authorization(h).unwrap();
        assert_eq!(s.region, "eu-west-2");
        assert_eq!(s.service, "elasticache");
        assert_eq!(s.access_key, "AKID");
        assert!(CredentialScope::from_authorization("Basic xyz").is_none());
        assert!(CredentialScope::from_authorization("AWS4-HMAC-SHA256 Credential=a/b").is_none());
    }
}
