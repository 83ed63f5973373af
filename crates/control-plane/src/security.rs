//! In-transit encryption and AUTH tokens as ElastiCache validates them.

use crate::error::ApiError;
use aws_query::Params;

/// The transit-encryption settings of a create call: (enabled, mode).
pub(crate) fn transit(p: &Params) -> Result<(bool, Option<String>), ApiError> {
    let enabled = p.bool("TransitEncryptionEnabled")?.unwrap_or(false);
    let mode = match p.str("TransitEncryptionMode") {
        None if enabled => Some("required".to_string()),
        None => None,
        Some(m @ ("preferred" | "required")) if enabled => Some(m.to_string()),
        Some(m @ ("preferred" | "required")) => {
            return Err(ApiError::InvalidParameterCombination(format!(
                "TransitEncryptionMode {m} requires TransitEncryptionEnabled."
            )))
        }
        Some(other) => {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid TransitEncryptionMode {other}: use preferred or required."
            )))
        }
    };
    Ok((enabled, mode))
}

/// ElastiCache's AUTH token rules: 16–128 printable ASCII characters, none of
/// space, `"`, `/` or `@`, and only with in-transit encryption.
pub(crate) fn auth_token(raw: &str, transit_encryption: bool) -> Result<String, ApiError> {
    if !transit_encryption {
        return Err(ApiError::InvalidParameterCombination(
            "AuthToken can be specified only when TransitEncryptionEnabled is true.".into(),
        ));
    }
    let printable = raw
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '/' | '@'));
    if !(16..=128).contains(&raw.len()) || !printable {
        return Err(ApiError::InvalidParameterValue(
            "Invalid AuthToken: it must be 16 to 128 printable characters, without spaces, '\"', '/' or '@'.".into(),
        ));
    }
    Ok(raw.to_string())
}

/// What ModifyCacheCluster's AUTH token change makes the node enforce.
pub(crate) struct TokenChange {
    pub password: Option<String>,
    pub acl: Option<crate::model::NodeAcl>,
}

/// ModifyCacheCluster `AuthToken` + `AuthTokenUpdateStrategy` (SET, ROTATE,
/// DELETE) on a standalone Redis cluster. ROTATE keeps the previous token valid
/// (recorded as the node's `default` user with both passwords) until the next
/// SET or DELETE. Returns None when the call does not touch the token.
pub(crate) fn modify_auth_token(
    p: &Params,
    spec: &mut crate::model::ClusterSpec,
) -> Result<Option<TokenChange>, ApiError> {
    let strategy = p.str("AuthTokenUpdateStrategy");
    let previous = spec.auth_token.clone();
    match (p.str("AuthToken"), strategy.unwrap_or("ROTATE")) {
        (None, "DELETE") if strategy.is_some() => {
            if spec.transit_encryption_mode.as_deref() == Some("required") {
                return Err(ApiError::InvalidParameterCombination(
                    "The AUTH token can only be deleted while TransitEncryptionMode is preferred."
                        .into(),
                ));
            }
            spec.auth_token = None;
            spec.acl = None;
        }
        (None, _) => return Ok(None),
        (Some(t), "SET") => {
            spec.auth_token = Some(auth_token(t, spec.transit_encryption_enabled)?);
            spec.acl = None;
        }
        (Some(t), "ROTATE") => {
            let new = auth_token(t, spec.transit_encryption_enabled)?;
            spec.acl = previous
                .filter(|old| *old != new)
                .map(|old| crate::model::NodeAcl {
                    cache_name: String::new(),
                    users: vec![crate::model::NodeAclUser {
                        name: "default".into(),
                        rules: format!(">{old} >{new} on ~* &* +@all"),
                        iam: false,
                    }],
                });
            spec.auth_token = Some(new);
        }
        (Some(_), other) => {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid AuthTokenUpdateStrategy {other} with an AuthToken: use SET or ROTATE."
            )))
        }
    }
    spec.auth_token_enabled = spec.auth_token.is_some();
    spec.auth_token_last_modified_ms = Some(crate::now_ms());
    Ok(Some(TokenChange {
        password: spec.auth_token.clone(),
        acl: spec.acl.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_rules() {
        assert!(auth_token("0123456789abcdef", true).is_ok());
        assert!(auth_token("0123456789abcdef", false).is_err());
        assert!(auth_token("short", true).is_err());
        assert!(auth_token("0123456789abcde/", true).is_err());
        assert!(auth_token("0123456789 abcdef", true).is_err());
        assert!(auth_token(&"x".repeat(129), true).is_err());
    }

    #[test]
    fn transit_modes() {
        let p = Params::from_pairs([("TransitEncryptionEnabled", "true")]);
        assert_eq!(
            transit(&p).unwrap_or_else(|e| panic!("{e}")),
            (true, Some("required".into()))
        );
        let p = Params::from_pairs([("TransitEncryptionMode", "preferred")]);
        assert!(transit(&p).is_err());
    }
}
