//! Legacy (EC2-Classic) cache security groups: CreateCacheSecurityGroup,
//! DescribeCacheSecurityGroups, DeleteCacheSecurityGroup and the EC2 security
//! group authorizations. They are records only: what a node admits comes from
//! VPC `SecurityGroupIds` (see `nodes.rs` and the admin API).

use aws_query::{Params, XmlWriter};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::{now_ms, paginate, Inner};

const TABLE: &str = "cache_security_groups";
const MAX_GROUPS: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spec {
    description: String,
    /// (EC2SecurityGroupName, EC2SecurityGroupOwnerId)
    ec2: Vec<(String, String)>,
}

fn name_of(p: &Params) -> Result<String, ApiError> {
    let raw = p.required("CacheSecurityGroupName")?;
    let name = raw.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !ok {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid CacheSecurityGroupName {raw}: it must begin with a letter and contain only letters, digits and single hyphens."
        )));
    }
    Ok(name)
}

fn write(cp: &Inner, region: &str, w: &mut XmlWriter, name: &str, s: &Spec) {
    w.text("OwnerId", &cp.config.account_id)
        .text("CacheSecurityGroupName", name)
        .text("Description", &s.description)
        .list(
            "EC2SecurityGroups",
            "EC2SecurityGroup",
            &s.ec2,
            |w, (n, o)| {
                w.text("Status", "authorized")
                    .text("EC2SecurityGroupName", n)
                    .text("EC2SecurityGroupOwnerId", o);
            },
        )
        .text("ARN", &cp.arn(region, "securitygroup", name));
}

fn render(cp: &Inner, region: &str, name: &str, s: &Spec) -> String {
    let mut w = XmlWriter::new();
    w.element("CacheSecurityGroup", |w| write(cp, region, w, name, s));
    w.finish()
}

async fn find(cp: &Inner, region: &str, name: &str) -> Result<Spec, ApiError> {
    cp.store
        .named_spec::<Spec>(TABLE, region, name)
        .await?
        .map(|(_, s)| s)
        .ok_or_else(|| ApiError::CacheSecurityGroupNotFound(name.to_string()))
}

pub(crate) async fn exists(cp: &Inner, region: &str, name: &str) -> Result<bool, ApiError> {
    Ok(cp
        .store
        .named_spec::<Spec>(TABLE, region, &name.to_ascii_lowercase())
        .await?
        .is_some())
}

pub(crate) async fn create(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let name = name_of(p)?;
    let description = p.required("Description")?.to_string();
    let tags = p.tags("Tags")?.unwrap_or_default();
    crate::clusters::check_tag_count(tags.len())?;
    let _guard = cp.lock.lock().await;
    if name == "default" || exists(cp, region, &name).await? {
        return Err(ApiError::CacheSecurityGroupAlreadyExists(name));
    }
    if cp.store.named_specs::<Spec>(TABLE, region).await?.len() >= MAX_GROUPS {
        return Err(ApiError::CacheSecurityGroupQuotaExceeded(format!(
            "A region can have at most {MAX_GROUPS} cache security groups."
        )));
    }
    let s = Spec {
        description,
        ec2: Vec::new(),
    };
    cp.store
        .put_named_spec(TABLE, region, &name, now_ms(), &s)
        .await?;
    cp.store
        .put_tags(&cp.arn(region, "securitygroup", &name), &tags)
        .await?;
    Ok(render(cp, region, &name, &s))
}

pub(crate) async fn describe(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let groups: Vec<(String, Spec)> = match p.str("CacheSecurityGroupName") {
        Some(n) => {
            let n = n.to_ascii_lowercase();
            let s = find(cp, region, &n).await?;
            vec![(n, s)]
        }
        None => cp
            .store
            .named_specs::<Spec>(TABLE, region)
            .await?
            .into_iter()
            .map(|(n, _, s)| (n, s))
            .collect(),
    };
    let (page, marker) = paginate(groups, p, |g| g.0.clone())?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.list(
        "CacheSecurityGroups",
        "CacheSecurityGroup",
        &page,
        |w, (n, s)| write(cp, region, w, n, s),
    );
    Ok(w.finish())
}

pub(crate) async fn delete(cp: &Inner, region: &str, p: &Params) -> Result<(), ApiError> {
    let name = name_of(p)?;
    let _guard = cp.lock.lock().await;
    if name == "default" {
        return Err(ApiError::InvalidCacheSecurityGroupState(
            "The default cache security group cannot be deleted.".into(),
        ));
    }
    find(cp, region, &name).await?;
    let users: Vec<String> = cp
        .store
        .clusters(region)
        .await?
        .into_iter()
        .filter(|c| {
            c.spec
                .cache_security_group_names
                .iter()
                .any(|g| g.eq_ignore_ascii_case(&name))
        })
        .map(|c| c.id.to_string())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::InvalidCacheSecurityGroupState(format!(
            "Cache security group {name} is in use by {}.",
            users.join(", ")
        )));
    }
    cp.store
        .delete_named_spec(
            TABLE,
            region,
            &name,
            &cp.arn(region, "securitygroup", &name),
        )
        .await
}

pub(crate) async fn authorize(
    cp: &Inner,
    region: &str,
    p: &Params,
    grant: bool,
) -> Result<String, ApiError> {
    let name = name_of(p)?;
    let ec2 = p.required("EC2SecurityGroupName")?.to_string();
    let owner = p.required("EC2SecurityGroupOwnerId")?.to_string();
    if owner.len() != 12 || !owner.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid EC2SecurityGroupOwnerId {owner}: it must be a 12-digit account id."
        )));
    }
    let _guard = cp.lock.lock().await;
    let mut s = find(cp, region, &name).await?;
    let pair = (ec2, owner);
    let present = s.ec2.contains(&pair);
    match (grant, present) {
        (true, true) => {
            return Err(ApiError::AuthorizationAlreadyExists(format!(
                "EC2 security group {} of {} is already authorized.",
                pair.0, pair.1
            )))
        }
        (false, false) => {
            return Err(ApiError::AuthorizationNotFound(format!(
                "EC2 security group {} of {} is not authorized.",
                pair.0, pair.1
            )))
        }
        (true, false) => s.ec2.push(pair),
        (false, true) => s.ec2.retain(|x| *x != pair),
    }
    cp.store
        .put_named_spec(TABLE, region, &name, now_ms(), &s)
        .await?;
    Ok(render(cp, region, &name, &s))
}
