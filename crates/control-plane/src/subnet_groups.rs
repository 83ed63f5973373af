//! Cache subnet groups. There is no EC2 here: a subnet is any well-formed
//! `subnet-…` id, every subnet of a region lives in that region's one VPC, and its
//! availability zone is derived from the id (spread over `a`, `b`, `c`), so the same
//! id always lands in the same zone.

use crate::error::ApiError;
use crate::ids::group_name;
use crate::model::{status, Subnet, SubnetGroupRecord};
use crate::{paginate, Inner};
use aws_query::{Params, XmlWriter};

pub const DEFAULT: &str = "default";
const MAX_GROUPS: usize = 50;
const MAX_SUBNETS: usize = 20;

pub(crate) async fn create(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let name = group_name("CacheSubnetGroupName", p.required("CacheSubnetGroupName")?)?;
    let description = p.required("CacheSubnetGroupDescription")?.to_string();
    let subnets =
        subnets(region, p)?.ok_or_else(|| ApiError::MissingParameter("SubnetIds".into()))?;
    let tags = p.tags("Tags")?.unwrap_or_default();
    let _guard = cp.lock.lock().await;
    if name == DEFAULT || cp.store.subnet_group(region, &name).await?.is_some() {
        return Err(ApiError::CacheSubnetGroupAlreadyExists(name));
    }
    if cp.store.subnet_groups(region).await?.len() >= MAX_GROUPS {
        return Err(ApiError::CacheSubnetGroupQuotaExceeded(format!(
            "A region can have at most {MAX_GROUPS} cache subnet groups."
        )));
    }
    let g = SubnetGroupRecord {
        region: region.to_string(),
        name,
        description,
        vpc_id: vpc_id(region),
        subnets,
    };
    cp.store.put_subnet_group(&g).await?;
    cp.store
        .put_tags(&cp.arn(region, "subnetgroup", &g.name), &tags)
        .await?;
    tracing::info!(region, subnet_group = %g.name, "cache subnet group created");
    Ok(render_one(cp, &g))
}

pub(crate) async fn modify(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let name = p.required("CacheSubnetGroupName")?.to_ascii_lowercase();
    let _guard = cp.lock.lock().await;
    if name == DEFAULT {
        return Err(ApiError::InvalidParameterValue(
            "The default cache subnet group cannot be modified.".into(),
        ));
    }
    let mut g = cp
        .store
        .subnet_group(region, &name)
        .await?
        .ok_or_else(|| ApiError::CacheSubnetGroupNotFound(name.clone()))?;
    if let Some(d) = p.str("CacheSubnetGroupDescription") {
        g.description = d.to_string();
    }
    if let Some(new) = subnets(region, p)? {
        // A zone that still has nodes must keep a subnet.
        let used_zones = zones_in_use(cp, region, &name).await?;
        for removed in g.subnets.iter().filter(|s| !new.contains(s)) {
            if used_zones.contains(&removed.zone) && !new.iter().any(|n| n.zone == removed.zone) {
                return Err(ApiError::SubnetInUse(format!(
                    "Subnet {} is in use by cache nodes in {}.",
                    removed.id, removed.zone
                )));
            }
        }
        g.subnets = new;
    }
    cp.store.put_subnet_group(&g).await?;
    Ok(render_one(cp, &g))
}

pub(crate) async fn delete(cp: &Inner, region: &str, p: &Params) -> Result<(), ApiError> {
    let name = p.required("CacheSubnetGroupName")?.to_ascii_lowercase();
    let _guard = cp.lock.lock().await;
    if name == DEFAULT {
        return Err(ApiError::InvalidParameterValue(
            "The default cache subnet group cannot be deleted.".into(),
        ));
    }
    if cp.store.subnet_group(region, &name).await?.is_none() {
        return Err(ApiError::CacheSubnetGroupNotFound(name));
    }
    let users: Vec<_> = cp
        .store
        .clusters(region)
        .await?
        .into_iter()
        .filter(|c| c.spec.subnet_group_name == name)
        .map(|c| c.id.to_string())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::CacheSubnetGroupInUse(format!(
            "Cache subnet group {name} is in use by {}.",
            users.join(", ")
        )));
    }
    cp.store
        .delete_subnet_group(region, &name, &cp.arn(region, "subnetgroup", &name))
        .await?;
    Ok(())
}

pub(crate) async fn describe(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let groups = match p.str("CacheSubnetGroupName") {
        Some(n) => vec![find(cp, region, n).await?],
        None => {
            let mut all = vec![default_group(region)];
            all.extend(cp.store.subnet_groups(region).await?);
            all
        }
    };
    let (page, marker) = paginate(groups, p, |g| g.name.clone())?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.list("CacheSubnetGroups", "CacheSubnetGroup", &page, |w, g| {
        write_group(cp, w, g)
    });
    Ok(w.finish())
}

/// A subnet group by name, the built-in `default` included.
pub(crate) async fn find(
    cp: &Inner,
    region: &str,
    name: &str,
) -> Result<SubnetGroupRecord, ApiError> {
    let name = name.to_ascii_lowercase();
    if name == DEFAULT {
        return Ok(default_group(region));
    }
    cp.store
        .subnet_group(region, &name)
        .await?
        .ok_or(ApiError::CacheSubnetGroupNotFound(name))
}

/// The zones a group's subnets cover, in order, without repeats.
pub(crate) fn zones(g: &SubnetGroupRecord) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in &g.subnets {
        if !out.contains(&s.zone) {
            out.push(s.zone.clone());
        }
    }
    out
}

async fn zones_in_use(cp: &Inner, region: &str, group: &str) -> Result<Vec<String>, ApiError> {
    Ok(cp
        .store
        .clusters(region)
        .await?
        .into_iter()
        .filter(|c| c.spec.subnet_group_name == group && c.status != status::DELETING)
        .flat_map(|c| c.nodes.into_iter().map(|n| n.availability_zone))
        .collect())
}

fn default_group(region: &str) -> SubnetGroupRecord {
    SubnetGroupRecord {
        region: region.to_string(),
        name: DEFAULT.to_string(),
        description: "default".to_string(),
        vpc_id: vpc_id(region),
        subnets: ['a', 'b', 'c']
            .iter()
            .map(|z| Subnet {
                id: format!("subnet-{}{z}", &hex17(&format!("default-{region}"))[..16]),
                zone: format!("{region}{z}"),
            })
            .collect(),
    }
}

fn subnets(region: &str, p: &Params) -> Result<Option<Vec<Subnet>>, ApiError> {
    let Some(ids) = p.list("SubnetIds", "SubnetIdentifier")? else {
        return Ok(None);
    };
    if ids.is_empty() {
        return Err(ApiError::InvalidParameterValue(
            "SubnetIds must contain at least one subnet.".into(),
        ));
    }
    if ids.len() > MAX_SUBNETS {
        return Err(ApiError::CacheSubnetQuotaExceeded(format!(
            "A cache subnet group can have at most {MAX_SUBNETS} subnets."
        )));
    }
    let mut out: Vec<Subnet> = Vec::new();
    for id in ids {
        let valid = id.strip_prefix("subnet-").is_some_and(|h| {
            !h.is_empty() && h.len() <= 17 && h.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !valid {
            return Err(ApiError::InvalidSubnet(format!(
                "The subnet ID {id} is not valid."
            )));
        }
        if out.iter().any(|s| s.id == id) {
            continue;
        }
        let zone = format!("{region}{}", ['a', 'b', 'c'][(fnv(&id) % 3) as usize]);
        out.push(Subnet { id, zone });
    }
    Ok(Some(out))
}

fn render_one(cp: &Inner, g: &SubnetGroupRecord) -> String {
    let mut w = XmlWriter::new();
    w.element("CacheSubnetGroup", |w| write_group(cp, w, g));
    w.finish()
}

fn write_group(cp: &Inner, w: &mut XmlWriter, g: &SubnetGroupRecord) {
    w.text("CacheSubnetGroupName", &g.name)
        .text("CacheSubnetGroupDescription", &g.description)
        .text("VpcId", &g.vpc_id)
        .list("Subnets", "Subnet", &g.subnets, |w, s| {
            w.text("SubnetIdentifier", &s.id)
                .element("SubnetAvailabilityZone", |w| {
                    w.text("Name", &s.zone);
                })
                .string_list("SupportedNetworkTypes", "member", ["ipv4"]);
        })
        .text("ARN", &cp.arn(&g.region, "subnetgroup", &g.name))
        .string_list("SupportedNetworkTypes", "member", ["ipv4"]);
}

/// The one VPC of a region, with an id shaped like AWS's.
fn vpc_id(region: &str) -> String {
    format!("vpc-{}", hex17(region))
}

fn hex17(seed: &str) -> String {
    format!("0{:016x}", fnv(seed))
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_validated_and_get_stable_zones() {
        let p = Params::from_pairs([
            ("SubnetIds.SubnetIdentifier.1", "subnet-0abc"),
            ("SubnetIds.SubnetIdentifier.2", "subnet-0abd"),
        ]);
        let a = subnets("us-east-1", &p).unwrap().unwrap();
        let b = subnets("us-east-1", &p).unwrap().unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|s| s.zone.starts_with("us-east-1")));
        let bad = Params::from_pairs([("SubnetIds.SubnetIdentifier.1", "sn-1")]);
        assert!(matches!(
            subnets("us-east-1", &bad),
            Err(ApiError::InvalidSubnet(_))
        ));
        assert!(vpc_id("us-east-1").starts_with("vpc-"));
        assert_eq!(vpc_id("us-east-1").len(), 21);
    }
}
