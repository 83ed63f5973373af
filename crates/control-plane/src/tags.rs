//! AddTagsToResource, RemoveTagsFromResource and ListTagsForResource on any ARN.

use crate::error::ApiError;
use crate::ids::Arn;
use crate::{clusters, parameter_groups, replication_groups, snapshots, subnet_groups, Inner};
use aws_query::{Params, XmlWriter};

/// ElastiCache's limit of tags per resource.
pub const MAX_TAGS: usize = 50;

pub(crate) async fn add(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let arn = resource(cp, region, p).await?;
    let tags = p
        .tags("Tags")?
        .ok_or_else(|| ApiError::MissingParameter("Tags".into()))?;
    let existing = cp.store.tags(&arn).await?;
    let new_keys = tags
        .iter()
        .filter(|(k, _)| !existing.iter().any(|(e, _)| e == k))
        .count();
    if existing.len() + new_keys > MAX_TAGS {
        return Err(ApiError::TagQuotaPerResourceExceeded(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    cp.store.put_tags(&arn, &tags).await?;
    list_body(cp, &arn).await
}

pub(crate) async fn remove(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let arn = resource(cp, region, p).await?;
    let keys = p
        .list("TagKeys", "member")?
        .ok_or_else(|| ApiError::MissingParameter("TagKeys".into()))?;
    let existing = cp.store.tags(&arn).await?;
    if let Some(missing) = keys.iter().find(|k| !existing.iter().any(|(e, _)| e == *k)) {
        return Err(ApiError::TagNotFound(format!(
            "Tag {missing} not found on {arn}."
        )));
    }
    cp.store.remove_tags(&arn, &keys).await?;
    list_body(cp, &arn).await
}

pub(crate) async fn list(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let arn = resource(cp, region, p).await?;
    list_body(cp, &arn).await
}

async fn list_body(cp: &Inner, arn: &str) -> Result<String, ApiError> {
    let tags = cp.store.tags(arn).await?;
    let mut w = XmlWriter::new();
    w.list("TagList", "Tag", &tags, |w, (k, v)| {
        w.text("Key", k).text("Value", v);
    });
    Ok(w.finish())
}

/// Validate `ResourceName` and check the resource exists; returns the ARN as stored.
async fn resource(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("ResourceName")?;
    let arn = Arn::parse(raw)?;
    if arn.region != region || arn.account != cp.config.account_id {
        return Err(ApiError::InvalidArn(format!(
            "{raw} does not belong to region {region} of account {}",
            cp.config.account_id
        )));
    }
    match arn.kind.as_str() {
        "cluster" => {
            if !clusters::exists(cp, &arn).await? {
                return Err(ApiError::CacheClusterNotFound(arn.name.clone()));
            }
            Ok(Arn::format(
                region,
                &cp.config.account_id,
                "cluster",
                &arn.name.to_ascii_lowercase(),
            ))
        }
        // The other resource kinds cannot exist yet, so their ARNs name nothing.
        "replicationgroup" => {
            let g = replication_groups::find(cp, region, &arn.name).await?;
            Ok(Arn::format(
                region,
                &cp.config.account_id,
                "replicationgroup",
                &g.id,
            ))
        }
        "parametergroup" => {
            let name = parameter_groups::exists(cp, region, &arn.name).await?;
            Ok(Arn::format(
                region,
                &cp.config.account_id,
                "parametergroup",
                &name,
            ))
        }
        "subnetgroup" => {
            let g = subnet_groups::find(cp, region, &arn.name).await?;
            Ok(Arn::format(
                region,
                &cp.config.account_id,
                "subnetgroup",
                &g.name,
            ))
        }
        "snapshot" => {
            let s = snapshots::find(cp, region, &arn.name).await?;
            Ok(Arn::format(
                region,
                &cp.config.account_id,
                "snapshot",
                &s.name,
            ))
        }
        "securitygroup" => {
            if !crate::cache_security_groups::exists(cp, region, &arn.name).await? {
                return Err(ApiError::CacheSecurityGroupNotFound(arn.name.clone()));
            }
            Ok(Arn::format(
                region,
                &cp.config.account_id,
                "securitygroup",
                &arn.name.to_ascii_lowercase(),
            ))
        }
        kind @ ("user" | "usergroup") => {
            if !crate::users::exists(cp, region, kind, &arn.name).await? {
                return Err(if kind == "user" {
                    ApiError::UserNotFound(arn.name.clone())
                } else {
                    ApiError::UserGroupNotFound(arn.name.clone())
                });
            }
            Ok(Arn::format(region, &cp.config.account_id, kind, &arn.name))
        }
        other => match crate::serverless::tag_target(cp, &arn).await? {
            Some(stored) => Ok(stored),
            None => Err(ApiError::InvalidArn(format!(
                "{raw}: unknown resource type {other}"
            ))),
        },
    }
}
