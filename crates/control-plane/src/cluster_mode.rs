//! ModifyReplicationGroup `ClusterMode`: the online migration of a group from
//! cluster mode disabled to enabled, in AWS's two steps (Modifying cluster mode,
//! ElastiCache User Guide):
//!
//! - `disabled` → `compatible`: the group becomes one shard (`0001`, slots
//!   0-16383) of its existing members, switches to the `.cluster.on` parameter
//!   group and gains a configuration endpoint. Every node enters cluster mode
//!   (CLUSTER SLOTS/SHARDS/NODES answer) but, since its shard serves every slot,
//!   keyed commands are never redirected, so plain clients on the primary and
//!   reader endpoints keep working while cluster clients use the configuration
//!   endpoint.
//! - `compatible` → `enabled`: the primary and reader endpoints go away and the
//!   nodes enforce cluster semantics (`-MOVED` from replicas, `-CROSSSLOT`); the
//!   group is an ordinary one-shard cluster-mode group from then on.
//!
//! Nothing restarts: the same nodes keep their data and keep replicating.
//! Going back, or from `disabled` straight to `enabled`, is refused.

use crate::catalog::Engine;
use crate::clusters::node_key;
use crate::error::ApiError;
use crate::ids::CacheNodeId;
use crate::model::{status, ClusterRecord, GroupRecord, Shard};
use crate::nodes::EngineStats;
use crate::proxy::Kind;
use crate::replication_groups as rg;
use crate::{events, parameter_groups, shards, Inner};
use aws_query::Params;
use redis_engine::cluster::SLOTS;
use std::sync::Arc;

pub const DISABLED: &str = "disabled";
pub const COMPATIBLE: &str = "compatible";
pub const ENABLED: &str = "enabled";

/// What ModifyReplicationGroup may carry next to a `ClusterMode` change: AWS lets
/// no other setting change in the same request except the parameter group.
const ALLOWED_WITH_CLUSTER_MODE: &[&str] = &[
    "Action",
    "Version",
    "ReplicationGroupId",
    "ClusterMode",
    "ApplyImmediately",
    "CacheParameterGroupName",
];

/// The group's current mode as DescribeReplicationGroups reports it.
pub fn current(g: &GroupRecord) -> &str {
    g.spec.cluster_mode.as_deref().unwrap_or(DISABLED)
}

/// ModifyReplicationGroup with a `ClusterMode` different from the group's. The
/// control-plane lock is held and the group is available.
pub(crate) async fn change(
    cp: &Arc<Inner>,
    mut g: GroupRecord,
    p: &Params,
    wanted: &str,
) -> Result<String, ApiError> {
    if !matches!(wanted, DISABLED | COMPATIBLE | ENABLED) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid ClusterMode {wanted}: use enabled, disabled or compatible."
        )));
    }
    let from = current(&g).to_string();
    match (from.as_str(), wanted) {
        (DISABLED, COMPATIBLE) | (COMPATIBLE, ENABLED) => {}
        (DISABLED, ENABLED) => {
            return Err(ApiError::InvalidParameterCombination(
                "To modify cluster mode from disabled to enabled, first set the cluster mode to compatible.".into(),
            ))
        }
        _ => {
            return Err(ApiError::InvalidParameterCombination(format!(
                "Cluster mode can only be changed from disabled to compatible and from compatible to enabled; changing it from {from} to {wanted} is not possible."
            )))
        }
    }
    if let Some(other) = p
        .keys()
        .map(|k| k.split('.').next().unwrap_or(k))
        .find(|k| !ALLOWED_WITH_CLUSTER_MODE.contains(k))
    {
        return Err(ApiError::InvalidParameterCombination(format!(
            "{other} cannot be modified in the same request as ClusterMode; only CacheParameterGroupName can."
        )));
    }
    let region = g.region.clone();
    let parameter_group = cluster_parameter_group(cp, &g, p.str("CacheParameterGroupName")).await?;
    let mut ms = rg::members(cp, &g).await?;
    if wanted == COMPATIBLE {
        to_compatible(cp, &mut g, &ms).await?;
    } else {
        to_enabled(cp, &g).await?;
    }
    g.spec.cluster_mode = Some(wanted.to_string());
    g.spec.parameter_group_name = parameter_group.clone();
    for c in &mut ms {
        c.spec.parameter_group_name = parameter_group.clone();
    }
    g.status = status::MODIFYING.to_string();
    cp.store.put_replication_group(&g, &ms).await?;
    events::record(
        cp,
        &region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!(
            "Cluster mode of replication group {} modified from {from} to {wanted}",
            g.id
        ),
    )
    .await;
    tracing::info!(region, replication_group = %g.id, from = %from, to = wanted, "cluster mode changing");
    let out = rg::render_one(cp, &g).await?;
    // Finishing the modification pushes the topology to every node and points the
    // endpoints (see `shards::apply_topology`).
    rg::schedule(cp, &region, &g.id);
    Ok(out)
}

/// The `cluster-enabled yes` parameter group the group moves to: the one asked
/// for, or (from a default group) the default `.cluster.on` group of its family.
async fn cluster_parameter_group(
    cp: &Inner,
    g: &GroupRecord,
    requested: Option<&str>,
) -> Result<String, ApiError> {
    let region = &g.region;
    let family = g
        .spec
        .family
        .strip_suffix(".cluster.on")
        .unwrap_or(&g.spec.family);
    let cluster_family = format!("{family}.cluster.on");
    let name = match requested {
        Some(name) => parameter_groups::for_cluster(cp, region, Some(name), &cluster_family).await?,
        None if current(g) != DISABLED => return Ok(g.spec.parameter_group_name.clone()),
        None if g.spec.parameter_group_name.starts_with("default.") => {
            parameter_groups::for_cluster(cp, region, None, &cluster_family).await?
        }
        None => {
            return Err(ApiError::InvalidParameterCombination(format!(
                "Replication group {} uses the custom parameter group {}: provide a CacheParameterGroupName of family {cluster_family} with cluster-enabled set to yes.",
                g.id, g.spec.parameter_group_name
            )))
        }
    };
    let on = parameter_groups::effective(cp, region, &name)
        .await?
        .get("cluster-enabled")
        .is_some_and(|v| v == "yes");
    if !on {
        return Err(ApiError::InvalidParameterCombination(format!(
            "The parameter group {name} must have cluster-enabled set to yes to modify the cluster mode."
        )));
    }
    Ok(name)
}

/// Preconditions AWS lists for the migration, then the one shard, its slots and
/// the configuration endpoint.
async fn to_compatible(
    cp: &Inner,
    g: &mut GroupRecord,
    ms: &[ClusterRecord],
) -> Result<(), ApiError> {
    let region = g.region.clone();
    let s = &g.spec;
    let min = match s.engine {
        Engine::Valkey => (7, 2),
        _ => (7, 0),
    };
    if version(&s.engine_version) < min {
        return Err(ApiError::InvalidParameterCombination(format!(
            "Changing the cluster mode needs {} {}.{} or later; replication group {} runs {}.",
            s.engine.as_str(),
            min.0,
            min.1,
            g.id,
            s.engine_version
        )));
    }
    if !s.automatic_failover || s.members.len() < 2 {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "Replication group {} must have automatic failover enabled and at least one replica to change its cluster mode.",
            g.id
        )));
    }
    if s.global_replication_group_id.is_some() || s.migration_source.is_some() {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "The cluster mode of replication group {} cannot change while it is part of a global datastore or a migration.",
            g.id
        )));
    }
    // Cluster mode has database 0 only.
    for c in ms {
        let key = node_key(&region, &c.id, CacheNodeId::new(1));
        if let Some(EngineStats::Redis(st)) = cp.nodes.engine_stats(&key) {
            if st.keys_outside_db0 > 0 {
                return Err(ApiError::InvalidReplicationGroupState(format!(
                    "Replication group {} has keys in databases other than 0; cluster mode allows database 0 only.",
                    g.id
                )));
            }
        }
    }
    let spec = &mut g.spec;
    // Member names stay (`<rg>-001`, …): nodes are not replaced. Replicas added
    // later get shard-style names (`<rg>-0001-00N`).
    let last = spec.members.len().max(usize::from(spec.last_member_number));
    spec.shards = vec![Shard {
        id: rg::NODE_GROUP_ID.to_string(),
        slots: vec![(0, (SLOTS - 1) as u16)],
        target_slots: None,
        members: spec.members.clone(),
        primary: spec.primary.clone(),
        last_member_number: u16::try_from(last).unwrap_or(u16::MAX),
        removing: false,
    }];
    spec.config_epoch = spec.config_epoch.max(1);
    if cp
        .store
        .endpoint(&region, &g.id, shards::CONFIGURATION)
        .await?
        .is_none()
    {
        let used = cp.store.used_endpoints().await?;
        let key = shards::config_key(&region, &g.id);
        let (ip, port) = cp
            .nodes
            .reserve(std::slice::from_ref(&key), spec.port, &used)?
            .pop()
            .ok_or_else(|| ApiError::Internal("endpoint reservation came back short".into()))?;
        cp.store
            .put_endpoint(&region, &g.id, shards::CONFIGURATION, &ip, port)
            .await?;
    }
    Ok(())
}

/// The primary and reader endpoints of the cluster-mode-disabled era go away.
async fn to_enabled(cp: &Inner, g: &GroupRecord) -> Result<(), ApiError> {
    for kind in [Kind::Primary, Kind::Reader] {
        cp.nodes
            .stop_proxy(&rg::endpoint_key(&g.region, &g.id, kind));
        cp.store
            .delete_endpoint(&g.region, &g.id, kind.as_str())
            .await?;
    }
    Ok(())
}

/// `7.1` → (7, 1); anything unparsable sorts first.
fn version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Operations AWS does not allow while a group is in compatible mode (scaling,
/// engine version): refused with `InvalidReplicationGroupState`.
pub(crate) fn refuse_in_compatible(g: &GroupRecord, what: &str) -> Result<(), ApiError> {
    if current(g) == COMPATIBLE {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "{what} is not allowed while replication group {} is in cluster mode compatible; set ClusterMode to enabled first.",
            g.id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::version;

    #[test]
    fn versions_compare_by_major_minor() {
        assert!(version("7.1") >= (7, 0));
        assert!(version("6.2") < (7, 0));
        assert!(version("7.2") >= (7, 2));
        assert!(version("8.0") >= (7, 2));
        assert!(version("x") < (7, 0));
    }
}
