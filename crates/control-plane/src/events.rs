//! Events, as DescribeEvents lists them: kept 14 days, newest last.

use crate::error::ApiError;
use crate::{now_ms, Inner};
use aws_query::{Params, XmlWriter};

pub const CACHE_CLUSTER: &str = "cache-cluster";
pub const REPLICATION_GROUP: &str = "replication-group";
pub const SERVERLESS_CACHE: &str = "serverless-cache";
pub const SERVERLESS_CACHE_SNAPSHOT: &str = "serverless-cache-snapshot";
const SOURCE_TYPES: &[&str] = &[
    "cache-cluster",
    "cache-parameter-group",
    "cache-security-group",
    "cache-subnet-group",
    "replication-group",
    "serverless-cache",
    "serverless-cache-snapshot",
    "user",
    "user-group",
];
const RETENTION_MS: i64 = 14 * 24 * 3600 * 1000;

/// Record an event; a failure to record is logged, never fails the operation.
/// Lifecycle events of the resources whose operations have no other event: recorded here,
/// once, after the operation succeeded (clusters, groups, serverless caches and snapshots
/// record their own, with the state changes they go through).
pub(crate) async fn after_action(cp: &Inner, region: &str, action: &str, p: &aws_query::Params) {
    let (source_type, id_param, message) = match action {
        "CreateCacheParameterGroup" => (
            "cache-parameter-group",
            "CacheParameterGroupName",
            "Cache parameter group created",
        ),
        "ModifyCacheParameterGroup" => (
            "cache-parameter-group",
            "CacheParameterGroupName",
            "Cache parameter group modified",
        ),
        "ResetCacheParameterGroup" => (
            "cache-parameter-group",
            "CacheParameterGroupName",
            "Cache parameter group reset",
        ),
        "DeleteCacheParameterGroup" => (
            "cache-parameter-group",
            "CacheParameterGroupName",
            "Cache parameter group deleted",
        ),
        "CreateCacheSubnetGroup" => (
            "cache-subnet-group",
            "CacheSubnetGroupName",
            "Cache subnet group created",
        ),
        "ModifyCacheSubnetGroup" => (
            "cache-subnet-group",
            "CacheSubnetGroupName",
            "Cache subnet group modified",
        ),
        "DeleteCacheSubnetGroup" => (
            "cache-subnet-group",
            "CacheSubnetGroupName",
            "Cache subnet group deleted",
        ),
        "CreateCacheSecurityGroup" => (
            "cache-security-group",
            "CacheSecurityGroupName",
            "Cache security group created",
        ),
        "AuthorizeCacheSecurityGroupIngress" => (
            "cache-security-group",
            "CacheSecurityGroupName",
            "Cache security group ingress authorized",
        ),
        "RevokeCacheSecurityGroupIngress" => (
            "cache-security-group",
            "CacheSecurityGroupName",
            "Cache security group ingress revoked",
        ),
        "DeleteCacheSecurityGroup" => (
            "cache-security-group",
            "CacheSecurityGroupName",
            "Cache security group deleted",
        ),
        "CreateUser" => ("user", "UserId", "User created"),
        "ModifyUser" => ("user", "UserId", "User modified"),
        "DeleteUser" => ("user", "UserId", "User deleted"),
        "CreateUserGroup" => ("user-group", "UserGroupId", "User group created"),
        "ModifyUserGroup" => ("user-group", "UserGroupId", "User group modified"),
        "DeleteUserGroup" => ("user-group", "UserGroupId", "User group deleted"),
        _ => return,
    };
    if let Some(id) = p.str(id_param) {
        // Names are stored lower-case where AWS lower-cases them.
        let id = match source_type {
            "cache-parameter-group" | "cache-subnet-group" | "cache-security-group" => {
                id.to_ascii_lowercase()
            }
            _ => id.to_string(),
        };
        record(cp, region, &id, source_type, message).await;
    }
}

pub(crate) async fn record(
    cp: &Inner,
    region: &str,
    source: &str,
    source_type: &str,
    message: &str,
) {
    if let Err(e) = cp
        .store
        .add_event(region, source, source_type, message)
        .await
    {
        tracing::warn!(error = %e, "could not record event");
    }
    let _ = cp.store.prune_events(now_ms() - RETENTION_MS).await;
}

pub(crate) async fn describe(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let source_type = p.str("SourceType");
    if let Some(t) = source_type {
        if !SOURCE_TYPES.contains(&t) {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid SourceType {t}."
            )));
        }
    }
    let source = p.str("SourceIdentifier").map(str::to_ascii_lowercase);
    if source.is_some() && source_type.is_none() {
        return Err(ApiError::InvalidParameterCombination(
            "SourceType must be given with SourceIdentifier.".into(),
        ));
    }
    let now = now_ms();
    let end = match p.str("EndTime") {
        Some(t) => parse_time(t)?,
        None => now,
    };
    let start = match (p.str("StartTime"), p.int("Duration")?) {
        (Some(t), _) => parse_time(t)?,
        (None, Some(minutes)) => end - minutes * 60_000,
        // ElastiCache's default: the last hour.
        (None, None) => end - 60 * 60_000,
    };
    let events: Vec<_> = cp
        .store
        .events(region, start, end)
        .await?
        .into_iter()
        .filter(|e| source_type.is_none_or(|t| e.source_type == t))
        .filter(|e| source.as_deref().is_none_or(|s| e.source_identifier == s))
        .collect();
    let (page, marker) = crate::paginate(events, p, |e| format!("{:020}", e.id))?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.list("Events", "Event", &page, |w, e| {
        w.text("SourceIdentifier", &e.source_identifier)
            .text("SourceType", &e.source_type)
            .text("Message", &e.message)
            .text("Date", &crate::timestamp(e.date_ms));
    });
    Ok(w.finish())
}

fn parse_time(s: &str) -> Result<i64, ApiError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::InvalidParameterValue(format!("Invalid timestamp {s}.")))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}
