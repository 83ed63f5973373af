//! Validated identifiers. ElastiCache stores ids lower-cased and matches them
//! case-insensitively; a value of these types is always already validated.

use crate::error::ApiError;
use std::fmt;

/// A cache cluster id: 1–50 letters, digits or hyphens, starting with a letter,
/// no `--`, not ending in `-`; stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheClusterId(String);

impl CacheClusterId {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        validate_name("CacheClusterId", raw, 50)?;
        Ok(CacheClusterId(raw.to_ascii_lowercase()))
    }

    /// For ids read back from our own database.
    pub(crate) fn from_stored(s: String) -> Self {
        CacheClusterId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A cache node id inside a cluster: `0001`, `0002`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheNodeId(u16);

impl CacheNodeId {
    pub fn new(n: u16) -> Self {
        CacheNodeId(n)
    }

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        raw.parse::<u16>()
            .ok()
            .filter(|n| *n >= 1 && raw.len() <= 4)
            .map(CacheNodeId)
            .ok_or_else(|| ApiError::InvalidParameterValue(format!("Invalid cache node id: {raw}")))
    }

    pub fn number(self) -> u16 {
        self.0
    }
}

impl fmt::Display for CacheNodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

/// A replication group id: like a cluster id but at most 40 characters (member
/// clusters append `-001`); stored lower-case.
pub fn replication_group_id(raw: &str) -> Result<String, ApiError> {
    validate_name("ReplicationGroupId", raw, 40)?;
    Ok(raw.to_ascii_lowercase())
}

/// A parameter or subnet group name: 1–255 letters, digits or hyphens, starting
/// with a letter; stored lower-case.
pub fn group_name(param: &str, raw: &str) -> Result<String, ApiError> {
    // Built-in parameter group names contain dots (`default.redis7`).
    let plain = raw.replace('.', "-");
    validate_name(param, &plain, 255)?;
    Ok(raw.to_ascii_lowercase())
}

fn validate_name(param: &str, raw: &str, max: usize) -> Result<(), ApiError> {
    let bad = |why: &str| {
        Err(ApiError::InvalidParameterValue(format!(
            "Invalid parameter {param}: {raw}. {why}"
        )))
    };
    if raw.is_empty() || raw.len() > max {
        return bad(&format!(
            "It must contain from 1 to {max} alphanumeric characters or hyphens."
        ));
    }
    if !raw.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return bad("The first character must be a letter.");
    }
    if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return bad("It must contain only alphanumeric characters or hyphens.");
    }
    if raw.ends_with('-') || raw.contains("--") {
        return bad("It cannot end with a hyphen or contain two consecutive hyphens.");
    }
    Ok(())
}

/// An ARN `arn:aws:elasticache:<region>:<account>:<type>:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub region: String,
    pub account: String,
    pub kind: String,
    pub name: String,
}

impl Arn {
    pub fn parse(raw: &str) -> Result<Arn, ApiError> {
        let invalid = || ApiError::InvalidArn(format!("{raw} is not a valid ARN"));
        let mut parts = raw.splitn(7, ':');
        let (
            Some("arn"),
            Some(_partition),
            Some("elasticache"),
            Some(region),
            Some(account),
            Some(kind),
            Some(name),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(invalid());
        };
        if kind.is_empty() || name.is_empty() {
            return Err(invalid());
        }
        Ok(Arn {
            region: region.to_string(),
            account: account.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }

    pub fn format(region: &str, account: &str, kind: &str, name: &str) -> String {
        format!("arn:aws:elasticache:{region}:{account}:{kind}:{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids() {
        assert_eq!(
            CacheClusterId::parse("My-Cache1").unwrap().as_str(),
            "my-cache1"
        );
        for bad in ["", "1abc", "a--b", "a-", "a_b", &"a".repeat(51)] {
            assert!(CacheClusterId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_ids() {
        assert_eq!(CacheNodeId::new(3).to_string(), "0003");
        assert_eq!(CacheNodeId::parse("0012").unwrap().number(), 12);
        assert!(CacheNodeId::parse("0000").is_err());
        assert!(CacheNodeId::parse("x").is_err());
    }

    #[test]
    fn arns() {
        let a = Arn::parse("arn:aws:elasticache:us-east-1:000000000000:cluster:c1").unwrap();
        assert_eq!((a.kind.as_str(), a.name.as_str()), ("cluster", "c1"));
        assert!(Arn::parse("arn:aws:s3:::bucket").is_err());
        assert!(Arn::parse("nonsense").is_err());
    }
}
