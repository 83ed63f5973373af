//! Replication groups with cluster mode enabled: node groups (shards) that split
//! the 16384 hash slots. Each shard is a primary and 0–5 replicas; every member is
//! an ordinary cache cluster named `<rg>-<shard>-<n>` (`demo-0001-001`). There is
//! no cluster bus: the control plane pushes the whole topology to every node
//! (`Control::SetClusterTopology`) after every change, and moves slots between
//! shards itself (online resharding: migrating/importing slot states, batches of
//! keys moved node to node, then ownership flipped everywhere).
//!
//! The configuration endpoint is an address of its own forwarding to the first
//! shard's primary, so `CLUSTER SLOTS` through it returns the real topology and
//! cluster clients then talk to the node addresses directly.

use crate::clusters::node_key;
use crate::error::ApiError;
use crate::ids::{CacheClusterId, CacheNodeId};
use crate::model::{
    status, ClusterRecord, GroupRecord, GroupSpec, NodeSnapshot, Shard, SnapshotRecord,
};
use crate::nodes::{NodeKey, Role};
use crate::proxy::{Kind, Targets};
use crate::replication_groups::{self as rg, member_record};
use crate::{events, now_ms, parameter_groups, subnet_groups, Inner};
use aws_query::{Params, XmlWriter};
use redis_engine::cluster::{Topology, TopologyNode, SLOTS};
use std::collections::HashMap;
use std::sync::Arc;

/// Kind of the configuration endpoint in the endpoints table.
pub const CONFIGURATION: &str = "configuration";
const MAX_REPLICAS: i64 = 5;
/// ElastiCache's default quota of nodes per cluster-mode group.
const MAX_NODES: usize = 90;
/// Slots moved per migration step (their keys move in batches of `BATCH_KEYS`).
const STEP_SLOTS: usize = 512;
const BATCH_KEYS: usize = 2000;

pub(crate) fn config_key(region: &str, rg: &str) -> NodeKey {
    NodeKey {
        region: region.to_string(),
        cluster: format!("{rg}/{CONFIGURATION}"),
        node: 0,
    }
}

/// One shard asked for at creation.
pub(crate) struct ShardPlan {
    id: String,
    slots: Vec<(u16, u16)>,
    replicas: u16,
    primary_az: Option<String>,
    replica_azs: Vec<String>,
}

pub(crate) struct Plan {
    pub mode: String,
    pub parameter_group: String,
    shards: Vec<ShardPlan>,
}

/// Whether CreateReplicationGroup asks for cluster mode and, if so, its layout.
/// Cluster mode is on when `ClusterMode` says so, when the parameter group has
/// `cluster-enabled yes` (a `.cluster.on` family), when more than one node
/// group is requested, or when the group is restored from a snapshot of a
/// cluster-mode-enabled group. Such a restore without `NumNodeGroups` or
/// `NodeGroupConfiguration` takes the snapshot's shards (ids, slots, replica
/// counts, zones), as AWS does.
pub(crate) async fn plan(
    cp: &Inner,
    region: &str,
    p: &Params,
    family: &str,
    snapshot: Option<&SnapshotRecord>,
) -> Result<Option<Plan>, ApiError> {
    let mode = p.str("ClusterMode");
    if let Some(m) = mode {
        if !matches!(m, "enabled" | "disabled" | "compatible") {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid ClusterMode {m}: use enabled, disabled or compatible."
            )));
        }
    }
    let pg_on = match p.str("CacheParameterGroupName") {
        Some(name) => parameter_groups::effective(cp, region, name)
            .await?
            .get("cluster-enabled")
            .is_some_and(|v| v == "yes"),
        None => false,
    };
    let configs = p
        .struct_list("NodeGroupConfiguration", "NodeGroupConfiguration")?
        .unwrap_or_default();
    let count = p.int("NumNodeGroups")?;
    let from_cluster_snapshot = snapshot.filter(|s| s.spec.cluster_enabled);
    let wanted = matches!(mode, Some("enabled" | "compatible"))
        || pg_on
        || count.is_some_and(|n| n > 1)
        || configs.len() > 1
        || from_cluster_snapshot.is_some();
    // The snapshot's layout, unless the request gives one.
    let snap_shards: &[NodeSnapshot] = match from_cluster_snapshot {
        Some(s) if count.is_none() && configs.is_empty() => &s.spec.nodes,
        _ => &[],
    };
    if !wanted {
        return Ok(None);
    }
    if mode == Some("disabled") {
        return Err(ApiError::InvalidParameterCombination(
            "ClusterMode disabled cannot be used with more than one node group or a cluster-enabled parameter group.".into(),
        ));
    }
    if p.str("CacheParameterGroupName").is_some() && !pg_on {
        return Err(ApiError::InvalidParameterCombination(format!(
            "Cluster mode needs a parameter group with cluster-enabled set to yes (default.{family}.cluster.on or one of that family)."
        )));
    }
    for disabled_only in [
        "NumCacheClusters",
        "PreferredCacheClusterAZs",
        "PrimaryClusterId",
    ] {
        if p.has(disabled_only) {
            return Err(ApiError::InvalidParameterCombination(format!(
                "{disabled_only} cannot be used with cluster mode enabled; use NumNodeGroups, ReplicasPerNodeGroup or NodeGroupConfiguration."
            )));
        }
    }
    if p.bool("AutomaticFailoverEnabled")? == Some(false) {
        return Err(ApiError::InvalidParameterCombination(
            "Automatic failover must be enabled for Redis (cluster mode enabled) replication groups.".into(),
        ));
    }
    let n = match (count, configs.len()) {
        (Some(n), c) if c > 0 && c as i64 != n => {
            return Err(ApiError::InvalidParameterValue(format!(
                "NumNodeGroups ({n}) does not match the number of NodeGroupConfiguration entries ({c})."
            )))
        }
        (Some(n), _) => n,
        (None, 0) if !snap_shards.is_empty() => snap_shards.len() as i64,
        (None, 0) => 1,
        (None, c) => c as i64,
    };
    if !(1..=500).contains(&n) {
        return Err(ApiError::InvalidParameterValue(
            "NumNodeGroups must be between 1 and 500.".into(),
        ));
    }
    let replicas_given = p.int("ReplicasPerNodeGroup")?;
    let replicas = replicas_given.unwrap_or(0);
    let even = even_split(n as usize);
    let mut shards = Vec::with_capacity(n as usize);
    for (i, range) in even.iter().enumerate() {
        let c = configs.get(i);
        let snap = snap_shards.get(i);
        let id = match c
            .and_then(|c| c.str("NodeGroupId"))
            .or(snap.map(|s| s.node_group_id.as_str()))
        {
            Some(id) => {
                if id.is_empty() || id.len() > 4 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Invalid NodeGroupId {id}: 1 to 4 letters or digits."
                    )));
                }
                id.to_string()
            }
            None => format!("{:04}", i + 1),
        };
        let slots = match c.and_then(|c| c.str("Slots")) {
            Some(s) => parse_slots(s)?,
            None => match snap.filter(|s| !s.slots.is_empty()) {
                Some(s) => s.slots.clone(),
                None => vec![*range],
            },
        };
        let r = match c.map(|c| c.int("ReplicaCount")).transpose()?.flatten() {
            Some(r) => r,
            None => match (replicas_given, snap.and_then(|s| s.replica_count)) {
                (None, Some(r)) => i64::from(r),
                _ => replicas,
            },
        };
        if !(0..=MAX_REPLICAS).contains(&r) {
            return Err(ApiError::InvalidParameterValue(format!(
                "The number of replicas per node group must be between 0 and {MAX_REPLICAS}."
            )));
        }
        let replica_azs = match c
            .map(|c| c.list("ReplicaAvailabilityZones", "AvailabilityZone"))
            .transpose()?
            .flatten()
        {
            Some(l) => l,
            // The snapshot's zones when they still fit the replica count.
            None => snap
                .map(|s| s.replica_azs.clone())
                .filter(|l| l.len() as i64 == r)
                .unwrap_or_default(),
        };
        if !replica_azs.is_empty() && replica_azs.len() as i64 != r {
            return Err(ApiError::InvalidParameterValue(format!(
                "Node group {id}: {} ReplicaAvailabilityZones for {r} replicas.",
                replica_azs.len()
            )));
        }
        shards.push(ShardPlan {
            id,
            slots,
            replicas: r as u16,
            primary_az: c
                .and_then(|c| c.str("PrimaryAvailabilityZone").map(str::to_string))
                .or_else(|| snap.and_then(|s| s.primary_az.clone())),
            replica_azs,
        });
    }
    let mut ids: Vec<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != shards.len() {
        return Err(ApiError::InvalidParameterValue(
            "NodeGroupId values must be unique.".into(),
        ));
    }
    check_coverage(shards.iter().map(|s| &s.slots))?;
    let nodes: usize = shards.iter().map(|s| 1 + usize::from(s.replicas)).sum();
    if nodes > MAX_NODES {
        return Err(ApiError::NodeQuotaForClusterExceeded(format!(
            "A cluster-mode replication group can have at most {MAX_NODES} nodes ({nodes} requested)."
        )));
    }
    let cluster_family = format!("{family}.cluster.on");
    let parameter_group = parameter_groups::for_cluster(
        cp,
        region,
        p.str("CacheParameterGroupName"),
        &cluster_family,
    )
    .await?;
    Ok(Some(Plan {
        mode: mode.unwrap_or("enabled").to_string(),
        parameter_group,
        shards,
    }))
}

/// redis-cli's even split of the slots over `n` shards (`0-5460`, `5461-10922`, …).
pub(crate) fn even_split(n: usize) -> Vec<(u16, u16)> {
    let per = SLOTS as f64 / n as f64;
    let mut out = Vec::with_capacity(n);
    let mut first = 0i64;
    let mut cursor = 0f64;
    for i in 0..n {
        let mut last = (cursor + per - 1.0).round() as i64;
        if last > SLOTS as i64 - 1 || i == n - 1 {
            last = SLOTS as i64 - 1;
        }
        if last < first {
            last = first;
        }
        out.push((first as u16, last as u16));
        first = last + 1;
        cursor += per;
    }
    out
}

/// `0-5460` or `0-100,200-300` (also single slots).
fn parse_slots(s: &str) -> Result<Vec<(u16, u16)>, ApiError> {
    let bad =
        || ApiError::InvalidParameterValue(format!("Invalid Slots {s}: use ranges like 0-5460."));
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: u16 = a.parse().map_err(|_| bad())?;
        let b: u16 = b.parse().map_err(|_| bad())?;
        if a > b || usize::from(b) >= SLOTS {
            return Err(bad());
        }
        out.push((a, b));
    }
    Ok(out)
}

fn check_coverage<'a>(sets: impl Iterator<Item = &'a Vec<(u16, u16)>>) -> Result<(), ApiError> {
    let mut seen = vec![false; SLOTS];
    for set in sets {
        for &(a, b) in set {
            for s in a..=b {
                if std::mem::replace(&mut seen[usize::from(s)], true) {
                    return Err(ApiError::InvalidParameterValue(format!(
                        "Slot {s} is assigned to more than one node group."
                    )));
                }
            }
        }
    }
    if let Some(s) = seen.iter().position(|x| !x) {
        return Err(ApiError::InvalidParameterValue(format!(
            "The node groups' Slots must cover all 16384 slots (slot {s} is not assigned)."
        )));
    }
    Ok(())
}

pub(crate) fn format_slots(r: &[(u16, u16)]) -> String {
    r.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn shard_member_id(rg: &str, shard: &str, n: u16) -> Result<CacheClusterId, ApiError> {
    CacheClusterId::parse(&format!("{rg}-{shard}-{n:03}"))
}

/// A stable 40-hex id (cluster node ids and shard ids) derived from names.
fn hex_id(parts: &[&str]) -> String {
    use std::hash::{Hash, Hasher};
    let mut out = String::with_capacity(40);
    let mut salt = 0u64;
    while out.len() < 40 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        parts.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
        salt += 1;
    }
    out.truncate(40);
    out
}

fn node_id(region: &str, member: &str) -> String {
    hex_id(&["node", region, member])
}

/// Create the members of every shard and the configuration endpoint (the group
/// lock is held; validation is done).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create_locked(
    cp: &Arc<Inner>,
    region: &str,
    id: &str,
    mut spec: GroupSpec,
    plan: Plan,
    tags: &[(String, String)],
    restore: Option<crate::snapshots::RestoreFiles>,
) -> Result<String, ApiError> {
    spec.automatic_failover = true;
    spec.cluster_mode = Some(plan.mode);
    spec.parameter_group_name = plan.parameter_group;
    spec.config_epoch = plan.shards.len() as u64;
    let group = subnet_groups::find(cp, region, &spec.subnet_group_name).await?;
    let zones = subnet_groups::zones(&group);
    let zone = |i: usize| {
        zones
            .get(i % zones.len().max(1))
            .cloned()
            .unwrap_or_else(|| format!("{region}a"))
    };
    let mut planned: Vec<(CacheClusterId, String)> = Vec::new();
    for (si, sp) in plan.shards.iter().enumerate() {
        let mut shard = Shard {
            id: sp.id.clone(),
            slots: sp.slots.clone(),
            target_slots: None,
            members: Vec::new(),
            primary: String::new(),
            last_member_number: sp.replicas + 1,
            removing: false,
        };
        for n in 1..=sp.replicas + 1 {
            let mid = shard_member_id(id, &sp.id, n)?;
            if cp.store.cluster(region, &mid).await?.is_some() {
                return Err(ApiError::CacheClusterAlreadyExists(mid.to_string()));
            }
            let az = if n == 1 {
                sp.primary_az.clone().unwrap_or_else(|| zone(si))
            } else {
                sp.replica_azs
                    .get(usize::from(n) - 2)
                    .cloned()
                    .unwrap_or_else(|| zone(si + usize::from(n) - 1))
            };
            shard.members.push(mid.to_string());
            planned.push((mid, az));
        }
        shard.primary = shard.members.first().cloned().unwrap_or_default();
        spec.shards.push(shard);
    }
    let mut keys: Vec<NodeKey> = planned
        .iter()
        .map(|(m, _)| node_key(region, m, CacheNodeId::new(1)))
        .collect();
    keys.push(config_key(region, id));
    let used = cp.store.used_endpoints().await?;
    let mut addrs = cp.nodes.reserve(&keys, spec.port, &used)?;
    let config_ep = addrs
        .pop()
        .ok_or_else(|| ApiError::Internal("endpoint reservation came back short".into()))?;
    let created_ms = now_ms();
    let mut records = Vec::with_capacity(planned.len());
    for ((mid, az), (ip, port)) in planned.iter().zip(addrs) {
        records.push(member_record(
            region, id, mid, &spec, az, ip, port, created_ms,
        ));
        spec.members.push(mid.to_string());
    }
    if let Some(r) = &restore {
        // Each shard's primary loads the files that may hold its slots' keys and
        // keeps only those; replicas copy it through replication once the
        // topology is set.
        for rec in &mut records {
            if let Some(s) = spec.shards.iter().find(|s| s.primary == rec.id.as_str()) {
                let mut files = r.for_slots(&s.slots).into_iter();
                // The snapshot's shards cover every slot, so some file always
                // overlaps; the fallback only keeps every primary on the restore path.
                rec.spec.restore_from = files.next().or_else(|| r.files.first().cloned());
                rec.spec.restore_more = files.collect();
                rec.spec.restore_slots = Some(s.slots.clone());
            }
        }
    }
    spec.primary = spec
        .shards
        .first()
        .map(|s| s.primary.clone())
        .unwrap_or_default();
    spec.last_member_number = 0;
    let g = GroupRecord {
        region: region.to_string(),
        id: id.to_string(),
        status: status::CREATING.to_string(),
        created_ms,
        spec,
    };
    cp.store.put_replication_group(&g, &records).await?;
    cp.store
        .put_endpoint(region, id, CONFIGURATION, &config_ep.0, config_ep.1)
        .await?;
    cp.store
        .put_tags(&cp.arn(region, "replicationgroup", id), tags)
        .await?;
    events::record(
        cp,
        region,
        id,
        events::REPLICATION_GROUP,
        &format!("Replication group {id} created"),
    )
    .await;
    tracing::info!(region, replication_group = %id, shards = g.spec.shards.len(), members = records.len(), "cluster-mode replication group creating");
    let out = rg::render_one(cp, &g).await?;
    rg::schedule(cp, region, id);
    Ok(out)
}

/// The `NodeGroups`, `ConfigurationEndpoint` and resharding status of a
/// cluster-mode group in DescribeReplicationGroups.
pub(crate) fn write_node_groups(
    cp: &Inner,
    w: &mut XmlWriter,
    g: &GroupRecord,
    members: &[ClusterRecord],
    node_group_status: &str,
) {
    w.list("NodeGroups", "NodeGroup", &g.spec.shards, |w, s| {
        w.text("NodeGroupId", &s.id)
            .text("Status", node_group_status)
            .text("Slots", &format_slots(&s.slots));
        // The primary first: Terraform reads the first member as the primary.
        let mut ordered: Vec<&ClusterRecord> = members
            .iter()
            .filter(|c| s.members.iter().any(|m| m == c.id.as_str()))
            .collect();
        ordered.sort_by_key(|c| c.id.as_str() != s.primary);
        w.list("NodeGroupMembers", "NodeGroupMember", &ordered, |w, c| {
            w.text("CacheClusterId", c.id.as_str())
                .text("CacheNodeId", "0001");
            if let Some(n) = c.nodes.first() {
                w.element("ReadEndpoint", |w| {
                    w.text("Address", &cp.nodes.advertised(&n.bind_ip))
                        .int("Port", i64::from(n.port));
                });
            }
            w.text(
                "PreferredAvailabilityZone",
                &c.spec.preferred_availability_zone,
            );
        });
    });
}

pub(crate) fn write_pending(w: &mut XmlWriter, g: &GroupRecord) {
    w.element("PendingModifiedValues", |w| {
        if let Some(p) = g.spec.resharding_progress {
            w.element("Resharding", |w| {
                w.element("SlotMigration", |w| {
                    w.text("ProgressPercentage", &format!("{p:.1}"));
                });
            });
        }
    });
}

/// Roles on the nodes, the topology on every node, the configuration endpoint.
/// `moving` adds migrating/importing states for slots on their way between shards.
pub(crate) async fn apply_topology(
    cp: &Inner,
    g: &GroupRecord,
    ms: &[ClusterRecord],
    moving: Option<(&str, &str, &[u16])>,
) -> Result<(), ApiError> {
    let region = &g.region;
    let by_id: HashMap<&str, &ClusterRecord> = ms.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut nodes = Vec::new();
    for (i, s) in g.spec.shards.iter().enumerate() {
        let shard_id = hex_id(&["shard", region, &g.id, &s.id]);
        let primary_id = node_id(region, &s.primary);
        let primary_engine = cp.nodes.engine_addr(&node_key(
            region,
            &CacheClusterId::parse(&s.primary)?,
            CacheNodeId::new(1),
        ));
        for m in &s.members {
            let Some(c) = by_id.get(m.as_str()) else {
                continue;
            };
            let Some(n) = c.nodes.first() else { continue };
            let key = node_key(region, &c.id, CacheNodeId::new(1));
            let is_primary = *m == s.primary;
            if is_primary {
                cp.nodes.set_role(&key, Role::Primary);
            } else if let Some(pa) = primary_engine {
                cp.nodes.set_role(&key, Role::ReplicaOf(pa));
            }
            nodes.push(TopologyNode {
                id: node_id(region, m),
                ip: cp.nodes.advertised(&n.bind_ip),
                port: n.port,
                primary_id: (!is_primary).then(|| primary_id.clone()),
                slots: if is_primary {
                    s.slots.clone()
                } else {
                    Vec::new()
                },
                shard_id: shard_id.clone(),
                epoch: i as u64 + 1,
            });
        }
    }
    let mut names: Vec<String> = ms
        .iter()
        .filter_map(|c| c.nodes.first().map(|n| n.bind_ip.clone()))
        .collect();
    let config = cp.store.endpoint(region, &g.id, CONFIGURATION).await?;
    if let Some((ip, _)) = &config {
        names.push(ip.clone());
    }
    // Cluster mode compatible keeps the primary and reader endpoints of the
    // cluster-mode-disabled group it was.
    let mut plain = Vec::new();
    for kind in [Kind::Primary, Kind::Reader] {
        if let Some((ip, port)) = cp.store.endpoint(region, &g.id, kind.as_str()).await? {
            names.push(ip.clone());
            plain.push((kind, ip, port));
        }
    }
    for c in ms {
        let key = node_key(region, &c.id, CacheNodeId::new(1));
        cp.nodes.set_cert_names(&key, &names);
        let me = node_id(region, c.id.as_str());
        let (mut migrating, mut importing) = (Vec::new(), Vec::new());
        if let Some((from, to, slots)) = moving {
            if c.id.as_str() == from {
                let to_id = node_id(region, to);
                migrating = slots.iter().map(|s| (*s, to_id.clone())).collect();
            } else if c.id.as_str() == to {
                let from_id = node_id(region, from);
                importing = slots.iter().map(|s| (*s, from_id.clone())).collect();
            }
        }
        cp.nodes.set_cluster_topology(
            &key,
            Topology {
                myself: me,
                epoch: g.spec.config_epoch.max(g.spec.shards.len() as u64),
                nodes: nodes.clone(),
                migrating,
                importing,
                compatible: g.spec.cluster_compatible(),
            },
        );
    }
    let members: Vec<NodeKey> = ms
        .iter()
        .map(|c| node_key(region, &c.id, CacheNodeId::new(1)))
        .collect();
    cp.nodes.set_cluster_peers(&members);
    // The configuration endpoint forwards to the first shard's primary.
    let first = g
        .spec
        .shards
        .iter()
        .find(|s| !s.removing)
        .and_then(|s| by_id.get(s.primary.as_str()))
        .and_then(|c| rg::node_addr(c));
    if let Some((ip, port)) = config {
        cp.nodes
            .start_proxy(
                &config_key(region, &g.id),
                &ip,
                port,
                Kind::Primary,
                Targets {
                    primary: first,
                    replicas: Vec::new(),
                },
            )
            .await?;
    }
    if !plain.is_empty() {
        let replicas: Vec<_> = g
            .spec
            .shards
            .first()
            .map(|s| {
                s.members
                    .iter()
                    .filter(|m| **m != s.primary)
                    .filter_map(|m| by_id.get(m.as_str()).and_then(|c| rg::node_addr(c)))
                    .collect()
            })
            .unwrap_or_default();
        for (kind, ip, port) in plain {
            let key = rg::endpoint_key(region, &g.id, kind);
            cp.nodes
                .set_security_groups(&key, &g.spec.security_group_ids);
            cp.nodes
                .start_proxy(
                    &key,
                    &ip,
                    port,
                    kind,
                    Targets {
                        primary: first,
                        replicas: replicas.clone(),
                    },
                )
                .await?;
        }
    }
    Ok(())
}

/// Drop members that no longer exist from the shards; keep each shard's primary valid.
pub(crate) fn retain_members(spec: &mut GroupSpec, ms: &[ClusterRecord]) {
    for s in &mut spec.shards {
        s.members.retain(|m| ms.iter().any(|c| c.id.as_str() == m));
        if !s.members.contains(&s.primary) {
            s.primary = s.members.first().cloned().unwrap_or_default();
        }
    }
    spec.shards.retain(|s| !s.members.is_empty());
    spec.primary = spec
        .shards
        .first()
        .map(|s| s.primary.clone())
        .unwrap_or_default();
}

// ---------------------------------------------------------------- failover

pub(crate) fn shard_of<'a>(g: &'a GroupRecord, member: &str) -> Option<&'a Shard> {
    g.spec
        .shards
        .iter()
        .find(|s| s.members.iter().any(|m| m == member))
}

pub(crate) async fn test_failover(
    cp: &Arc<Inner>,
    g: &GroupRecord,
    ng: &str,
) -> Result<String, ApiError> {
    let s = g
        .spec
        .shards
        .iter()
        .find(|s| s.id == ng)
        .ok_or_else(|| ApiError::NodeGroupNotFound(ng.to_string()))?;
    g.require_available()?;
    if s.members.len() < 2 {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "Node group {ng} of replication group {} has no replica to fail over to.",
            g.id
        )));
    }
    events::record(
        cp,
        &g.region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!("Test Failover API called for node group {ng}"),
    )
    .await;
    let out = rg::render_one(cp, g).await?;
    schedule_failover(cp, &g.region, &g.id, ng, true);
    Ok(out)
}

pub(crate) fn schedule_failover(cp: &Arc<Inner>, region: &str, id: &str, shard: &str, test: bool) {
    let cp = Arc::clone(cp);
    let region = region.to_string();
    let id = id.to_string();
    let shard = shard.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(cp.config.provision_delay).await;
        let _guard = cp.lock.lock().await;
        if let Err(e) = failover_locked(&cp, &region, &id, &shard, test).await {
            tracing::error!(region, replication_group = %id, shard, error = %e, "shard failover failed");
        }
    });
}

/// Promote the replica of `shard` with the most data; the old primary restarts as
/// a replica (its connections drop, as on AWS) and every node learns the new
/// topology, so clients get `-MOVED` to the new primary.
async fn failover_locked(
    cp: &Arc<Inner>,
    region: &str,
    id: &str,
    shard: &str,
    test: bool,
) -> Result<(), ApiError> {
    let Some(mut g) = cp.store.replication_group(region, id).await? else {
        return Ok(());
    };
    let ms = rg::members(cp, &g).await?;
    let Some(s) = g.spec.shards.iter_mut().find(|s| s.id == shard) else {
        return Ok(());
    };
    let old = s.primary.clone();
    let new = ms
        .iter()
        .filter(|c| c.id.as_str() != old && s.members.iter().any(|m| m == c.id.as_str()))
        .max_by_key(|c| {
            cp.nodes
                .replication_offset(&node_key(region, &c.id, CacheNodeId::new(1)))
        })
        .map(|c| c.id.to_string())
        .ok_or_else(|| {
            ApiError::InvalidReplicationGroupState(format!("Node group {shard} has no replica."))
        })?;
    s.primary = new.clone();
    g.spec.config_epoch += 1;
    if let Some(first) = g.spec.shards.first() {
        g.spec.primary = first.primary.clone();
    }
    // The old primary stops taking writes, the replica catches up with everything it
    // acknowledged, then the old primary goes down (its clients' connections drop, as on
    // AWS, and they retry on the new primary).
    let old_record = ms.iter().find(|c| c.id.as_str() == old);
    let new_key = node_key(region, &CacheClusterId::parse(&new)?, CacheNodeId::new(1));
    if let Some(c) = old_record {
        let key = node_key(region, &c.id, CacheNodeId::new(1));
        if let Some(sent) = cp.nodes.hold_writes(&key) {
            cp.nodes.drain_to(&new_key, sent).await;
        }
        cp.nodes.stop(&key);
    }
    apply_topology(cp, &g, &ms, None).await?;
    if let Some(c) = old_record {
        let key = node_key(region, &c.id, CacheNodeId::new(1));
        let params = parameter_groups::effective(cp, region, &c.spec.parameter_group_name).await?;
        if let Some(n) = c.nodes.first() {
            cp.nodes
                .start(&key, &n.bind_ip, n.port, &c.spec, &params)
                .await?;
        }
        events::record(
            cp,
            region,
            &old,
            events::CACHE_CLUSTER,
            "Finished recovery for cache nodes 0001",
        )
        .await;
        apply_topology(cp, &g, &ms, None).await?;
    }
    g.status = status::AVAILABLE.to_string();
    cp.store.put_replication_group(&g, &[]).await?;
    let message = format!("Failover from master node {old} to replica node {new} completed");
    events::record(cp, region, id, events::REPLICATION_GROUP, &message).await;
    if test {
        events::record(
            cp,
            region,
            id,
            events::REPLICATION_GROUP,
            &format!("Failover to replica node {new} completed for node group {shard}"),
        )
        .await;
    }
    tracing::info!(region, replication_group = %id, shard, from = %old, to = %new, "shard failover completed");
    Ok(())
}

/// A member stopped by fault injection: a shard primary with a replica fails over.
pub(crate) async fn on_node_down(cp: &Arc<Inner>, g: &GroupRecord, member: &str) {
    let Some(s) = shard_of(g, member) else { return };
    if s.primary != member {
        return;
    }
    if s.members.len() > 1 {
        events::record(
            cp,
            &g.region,
            &g.id,
            events::REPLICATION_GROUP,
            &format!(
                "Primary node {member} of node group {} failed; failing over",
                s.id
            ),
        )
        .await;
        schedule_failover(cp, &g.region, &g.id, &s.id, false);
    } else {
        tracing::warn!(region = %g.region, replication_group = %g.id, shard = %s.id, "shard primary down without a replica: slots unavailable");
    }
}

// ---------------------------------------------------------------- replicas

/// IncreaseReplicaCount / DecreaseReplicaCount on a cluster-mode group: the same
/// count for every shard (`NewReplicaCount`) or per shard (`ReplicaConfiguration`).
pub(crate) async fn change_replicas(
    cp: &Arc<Inner>,
    g: &mut GroupRecord,
    p: &Params,
    increase: bool,
) -> Result<Vec<ClusterRecord>, ApiError> {
    let region = g.region.clone();
    let mut wanted: HashMap<String, i64> = HashMap::new();
    if let Some(list) = p.struct_list("ReplicaConfiguration", "ConfigureShard")? {
        for c in list {
            let ng = c
                .str("NodeGroupId")
                .ok_or_else(|| ApiError::MissingParameter("NodeGroupId".into()))?;
            if !g.spec.shards.iter().any(|s| s.id == ng) {
                return Err(ApiError::NodeGroupNotFound(ng.to_string()));
            }
            let n = c
                .int("NewReplicaCount")?
                .ok_or_else(|| ApiError::MissingParameter("NewReplicaCount".into()))?;
            wanted.insert(ng.to_string(), n);
        }
    } else if let Some(n) = p.int("NewReplicaCount")? {
        for s in &g.spec.shards {
            wanted.insert(s.id.clone(), n);
        }
    }
    let to_remove: Vec<String> = p
        .list("ReplicasToRemove", "member")?
        .unwrap_or_default()
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if wanted.is_empty() && to_remove.is_empty() {
        return Err(ApiError::MissingParameter("NewReplicaCount".into()));
    }
    let mut ms = rg::members(cp, g).await?;
    let mut changed = Vec::new();
    let group = subnet_groups::find(cp, &region, &g.spec.subnet_group_name).await?;
    let zones = subnet_groups::zones(&group);
    let total: usize = g.spec.shards.iter().map(|s| s.members.len()).sum();
    let mut added = 0usize;
    let mut new_members: Vec<(usize, CacheClusterId, String)> = Vec::new();
    let mut remove: Vec<String> = to_remove.clone();
    for (si, s) in g.spec.shards.iter().enumerate() {
        let current = s.members.len() as i64 - 1;
        let Some(&target) = wanted.get(&s.id) else {
            continue;
        };
        if !(0..=MAX_REPLICAS).contains(&target)
            || (increase && target < current)
            || (!increase && target > current)
        {
            return Err(ApiError::InvalidParameterValue(format!(
                "NewReplicaCount {target} for node group {} must be {} the current {current} and between 0 and {MAX_REPLICAS}.",
                s.id,
                if increase { "at least" } else { "at most" }
            )));
        }
        if increase {
            for i in 0..(target - current) as u16 {
                let mid = shard_member_id(&g.id, &s.id, s.last_member_number + 1 + i)?;
                if cp.store.cluster(&region, &mid).await?.is_some() {
                    return Err(ApiError::CacheClusterAlreadyExists(mid.to_string()));
                }
                let az = zones
                    .get((s.members.len() + usize::from(i)) % zones.len().max(1))
                    .cloned()
                    .unwrap_or_else(|| format!("{region}a"));
                new_members.push((si, mid, az));
            }
            added += (target - current) as usize;
        } else {
            remove.extend(
                s.members
                    .iter()
                    .rev()
                    .filter(|m| **m != s.primary)
                    .take((current - target) as usize)
                    .cloned(),
            );
        }
    }
    if total + added > MAX_NODES {
        return Err(ApiError::NodeQuotaForClusterExceeded(format!(
            "A cluster-mode replication group can have at most {MAX_NODES} nodes."
        )));
    }
    if increase {
        let keys: Vec<NodeKey> = new_members
            .iter()
            .map(|(_, m, _)| node_key(&region, m, CacheNodeId::new(1)))
            .collect();
        let used = cp.store.used_endpoints().await?;
        let addrs = cp.nodes.reserve(&keys, g.spec.port, &used)?;
        let created = now_ms();
        for ((si, mid, az), (ip, port)) in new_members.into_iter().zip(addrs) {
            changed.push(member_record(
                &region, &g.id, &mid, &g.spec, &az, ip, port, created,
            ));
            g.spec.members.push(mid.to_string());
            if let Some(s) = g.spec.shards.get_mut(si) {
                s.members.push(mid.to_string());
                s.last_member_number += 1;
            }
        }
    } else {
        for r in &remove {
            let Some(s) = shard_of(g, r) else {
                return Err(ApiError::InvalidParameterValue(format!(
                    "{r} is not a member of replication group {}.",
                    g.id
                )));
            };
            if s.primary == *r {
                return Err(ApiError::InvalidParameterValue(format!(
                    "{r} is the primary of node group {}; it cannot be removed.",
                    s.id
                )));
            }
        }
        for c in ms
            .iter_mut()
            .filter(|c| remove.iter().any(|r| r == c.id.as_str()))
        {
            c.status = status::DELETING.to_string();
            changed.push(c.clone());
        }
    }
    Ok(changed)
}

// ---------------------------------------------------------------- resharding

/// ModifyReplicationGroupShardConfiguration: scale out (new shards, then slots
/// moved onto them evenly) or in (slots moved off the removed shards, then their
/// nodes deleted), online.
pub(crate) async fn modify_shard_configuration(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let raw = p.required("ReplicationGroupId")?;
    let count = p
        .int("NodeGroupCount")?
        .ok_or_else(|| ApiError::MissingParameter("NodeGroupCount".into()))?;
    if p.bool("ApplyImmediately")? != Some(true) {
        return Err(ApiError::InvalidParameterValue(
            "ApplyImmediately must be true: shard configuration changes are applied immediately."
                .into(),
        ));
    }
    let to_remove = p
        .list("NodeGroupsToRemove", "NodeGroupToRemove")?
        .unwrap_or_default();
    let to_retain = p
        .list("NodeGroupsToRetain", "NodeGroupToRetain")?
        .unwrap_or_default();
    let resharding = p
        .struct_list("ReshardingConfiguration", "ReshardingConfiguration")?
        .unwrap_or_default();
    let _guard = cp.lock.lock().await;
    let mut g = rg::find(cp, region, raw).await?;
    if !g.spec.cluster_enabled() {
        return Err(ApiError::InvalidParameterValue(format!(
            "Replication group {} does not have cluster mode enabled.",
            g.id
        )));
    }
    g.require_available()?;
    crate::cluster_mode::refuse_in_compatible(&g, "Changing the number of node groups")?;
    if !(1..=500).contains(&count) {
        return Err(ApiError::InvalidParameterValue(
            "NodeGroupCount must be between 1 and 500.".into(),
        ));
    }
    let count = count as usize;
    let current = g.spec.shards.len();
    if count == current {
        return Err(ApiError::InvalidParameterValue(format!(
            "Replication group {} already has {count} node groups.",
            g.id
        )));
    }
    let mut changed = Vec::new();
    if count > current {
        let replicas = g
            .spec
            .shards
            .first()
            .map(|s| (s.members.len() as u16).saturating_sub(1))
            .unwrap_or(0);
        let nodes: usize = g.spec.members.len() + (count - current) * usize::from(replicas + 1);
        if nodes > MAX_NODES {
            return Err(ApiError::NodeQuotaForClusterExceeded(format!(
                "A cluster-mode replication group can have at most {MAX_NODES} nodes."
            )));
        }
        let group = subnet_groups::find(cp, region, &g.spec.subnet_group_name).await?;
        let zones = subnet_groups::zones(&group);
        let mut next = g
            .spec
            .shards
            .iter()
            .filter_map(|s| s.id.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        let mut planned = Vec::new();
        for k in 0..count - current {
            next += 1;
            let sid = format!("{next:04}");
            let azs: Vec<String> = resharding
                .get(current + k)
                .or_else(|| resharding.get(k))
                .map(|r| r.list("PreferredAvailabilityZones", "AvailabilityZone"))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let mut shard = Shard {
                id: sid.clone(),
                slots: Vec::new(),
                target_slots: None,
                members: Vec::new(),
                primary: String::new(),
                last_member_number: replicas + 1,
                removing: false,
            };
            for n in 1..=replicas + 1 {
                let mid = shard_member_id(&g.id, &sid, n)?;
                if cp.store.cluster(region, &mid).await?.is_some() {
                    return Err(ApiError::CacheClusterAlreadyExists(mid.to_string()));
                }
                let az = azs.get(usize::from(n) - 1).cloned().unwrap_or_else(|| {
                    zones
                        .get((current + k + usize::from(n) - 1) % zones.len().max(1))
                        .cloned()
                        .unwrap_or_else(|| format!("{region}a"))
                });
                shard.members.push(mid.to_string());
                planned.push((mid, az));
            }
            shard.primary = shard.members.first().cloned().unwrap_or_default();
            g.spec.shards.push(shard);
        }
        let keys: Vec<NodeKey> = planned
            .iter()
            .map(|(m, _)| node_key(region, m, CacheNodeId::new(1)))
            .collect();
        let used = cp.store.used_endpoints().await?;
        let addrs = cp.nodes.reserve(&keys, g.spec.port, &used)?;
        let created = now_ms();
        for ((mid, az), (ip, port)) in planned.into_iter().zip(addrs) {
            changed.push(member_record(
                region, &g.id, &mid, &g.spec, &az, ip, port, created,
            ));
            g.spec.members.push(mid.to_string());
        }
    } else {
        let removed: Vec<String> = if !to_remove.is_empty() {
            to_remove.clone()
        } else if !to_retain.is_empty() {
            g.spec
                .shards
                .iter()
                .filter(|s| !to_retain.contains(&s.id))
                .map(|s| s.id.clone())
                .collect()
        } else {
            return Err(ApiError::InvalidParameterValue(
                "NodeGroupsToRemove or NodeGroupsToRetain is required to reduce the number of node groups.".into(),
            ));
        };
        for r in &removed {
            if !g.spec.shards.iter().any(|s| s.id == *r) {
                return Err(ApiError::NodeGroupNotFound(r.clone()));
            }
        }
        if current - removed.len() != count {
            return Err(ApiError::InvalidParameterValue(format!(
                "Removing {} node groups from {current} does not leave NodeGroupCount {count}.",
                removed.len()
            )));
        }
        for s in &mut g.spec.shards {
            if removed.contains(&s.id) {
                s.removing = true;
            }
        }
    }
    // Where every slot ends up: an even split over the remaining shards, each
    // keeping as many of its own slots as it can (fewest keys moved).
    let targets = rebalance(&g.spec.shards);
    for (s, t) in g.spec.shards.iter_mut().zip(targets) {
        s.target_slots = Some(t);
    }
    g.spec.resharding_progress = Some(0.0);
    g.status = status::MODIFYING.to_string();
    cp.store.put_replication_group(&g, &changed).await?;
    events::record(
        cp,
        region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!(
            "Resharding replication group {} to {count} node groups",
            g.id
        ),
    )
    .await;
    tracing::info!(region, replication_group = %g.id, from = current, to = count, "resharding");
    let out = rg::render_one(cp, &g).await?;
    rg::schedule(cp, region, &g.id);
    Ok(out)
}

fn expand(r: &[(u16, u16)]) -> Vec<u16> {
    r.iter().flat_map(|&(a, b)| a..=b).collect()
}

fn compress(mut slots: Vec<u16>) -> Vec<(u16, u16)> {
    slots.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for s in slots {
        match out.last_mut() {
            Some(l) if l.1 + 1 == s => l.1 = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// Target slots per shard: removed shards get none; the others an even share,
/// keeping their current slots where possible.
fn rebalance(shards: &[Shard]) -> Vec<Vec<(u16, u16)>> {
    let live: Vec<usize> = (0..shards.len()).filter(|&i| !shards[i].removing).collect();
    let n = live.len().max(1);
    let mut quota = vec![0usize; shards.len()];
    for (k, &i) in live.iter().enumerate() {
        quota[i] = SLOTS / n + usize::from(k < SLOTS % n);
    }
    let mut keep: Vec<Vec<u16>> = vec![Vec::new(); shards.len()];
    let mut pool: Vec<u16> = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        let mine = expand(&s.slots);
        let q = quota[i];
        if mine.len() > q {
            // Give away the highest slots, keeping ranges contiguous.
            pool.extend_from_slice(&mine[q..]);
            keep[i] = mine[..q].to_vec();
        } else {
            keep[i] = mine;
        }
    }
    pool.sort_unstable();
    let mut pool = pool.into_iter();
    for &i in &live {
        while keep[i].len() < quota[i] {
            match pool.next() {
                Some(s) => keep[i].push(s),
                None => break,
            }
        }
    }
    keep.into_iter().map(compress).collect()
}

/// Run the resharding recorded in the group (target slots per shard) to its end;
/// resumable: every step is saved. The group lock is held.
pub(crate) async fn run_resharding(
    cp: &Arc<Inner>,
    g: &mut GroupRecord,
    ms: &[ClusterRecord],
) -> Result<(), ApiError> {
    let region = g.region.clone();
    let total: usize = moves_left(&g.spec.shards);
    let started = std::time::Instant::now();
    let mut moved_keys = 0usize;
    // Each step: slots one shard gives to another.
    while let Some((from, to, slots)) = next_step(&g.spec.shards) {
        let (src, dst) = (
            g.spec.shards[from].primary.clone(),
            g.spec.shards[to].primary.clone(),
        );
        apply_topology(cp, g, ms, Some((&src, &dst, &slots))).await?;
        let src_key = node_key(&region, &CacheClusterId::parse(&src)?, CacheNodeId::new(1));
        let dst_key = node_key(&region, &CacheClusterId::parse(&dst)?, CacheNodeId::new(1));
        loop {
            let n = cp
                .nodes
                .migrate_slots(&src_key, &dst_key, slots.clone(), BATCH_KEYS)
                .await?;
            if n == 0 {
                break;
            }
            moved_keys += n;
        }
        // Flip ownership on every node at once (one topology push).
        let moved = bitmap(&compress(slots.clone()));
        let mut from_slots = expand(&g.spec.shards[from].slots);
        from_slots.retain(|s| !moved[usize::from(*s)]);
        g.spec.shards[from].slots = compress(from_slots);
        let mut to_slots = expand(&g.spec.shards[to].slots);
        to_slots.extend_from_slice(&slots);
        g.spec.shards[to].slots = compress(to_slots);
        g.spec.config_epoch += 1;
        apply_topology(cp, g, ms, None).await?;
        let left = moves_left(&g.spec.shards);
        g.spec.resharding_progress =
            Some(100.0 * (total.saturating_sub(left)) as f64 / total.max(1) as f64);
        cp.store.put_replication_group(g, &[]).await?;
    }
    for s in &mut g.spec.shards {
        s.target_slots = None;
    }
    g.spec.resharding_progress = None;
    tracing::info!(region, replication_group = %g.id, slots = total, keys = moved_keys, ms = started.elapsed().as_millis() as u64, "resharding done");
    events::record(
        cp,
        &region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!(
            "Resharding of replication group {} completed: {total} slots, {moved_keys} keys moved in {} ms",
            g.id,
            started.elapsed().as_millis()
        ),
    )
    .await;
    Ok(())
}

fn moves_left(shards: &[Shard]) -> usize {
    shards
        .iter()
        .map(|s| {
            let Some(t) = &s.target_slots else { return 0 };
            let want = bitmap(t);
            expand(&s.slots)
                .into_iter()
                .filter(|x| !want[usize::from(*x)])
                .count()
        })
        .sum()
}

/// Which slots a set of ranges holds, indexed by slot.
fn bitmap(r: &[(u16, u16)]) -> Vec<bool> {
    let mut m = vec![false; SLOTS];
    for x in expand(r) {
        if let Some(b) = m.get_mut(usize::from(x)) {
            *b = true;
        }
    }
    m
}

/// Up to `STEP_SLOTS` slots one shard holds but must give to another.
fn next_step(shards: &[Shard]) -> Option<(usize, usize, Vec<u16>)> {
    let mut owner_target = vec![usize::MAX; SLOTS];
    for (i, s) in shards.iter().enumerate() {
        for x in expand(s.target_slots.as_deref().unwrap_or(&s.slots)) {
            owner_target[usize::from(x)] = i;
        }
    }
    for (from, s) in shards.iter().enumerate() {
        let mut to = None;
        let mut slots = Vec::new();
        for x in expand(&s.slots) {
            let t = owner_target[usize::from(x)];
            if t == from || t == usize::MAX {
                continue;
            }
            match to {
                None => to = Some(t),
                Some(cur) if cur != t => continue,
                _ => {}
            }
            slots.push(x);
            if slots.len() >= STEP_SLOTS {
                break;
            }
        }
        if let Some(t) = to {
            return Some((from, t, slots));
        }
    }
    None
}

/// After the slots moved: the removed shards' members are deleted.
pub(crate) fn removed_members(g: &GroupRecord) -> Vec<String> {
    g.spec
        .shards
        .iter()
        .filter(|s| s.removing)
        .flat_map(|s| s.members.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, slots: Vec<(u16, u16)>, removing: bool) -> Shard {
        Shard {
            id: id.into(),
            slots,
            target_slots: None,
            members: vec![format!("m{id}")],
            primary: format!("m{id}"),
            last_member_number: 1,
            removing,
        }
    }

    #[test]
    fn even_split_matches_redis_cli() {
        assert_eq!(even_split(1), vec![(0, 16383)]);
        assert_eq!(
            even_split(3),
            vec![(0, 5460), (5461, 10922), (10923, 16383)]
        );
        assert_eq!(even_split(2), vec![(0, 8191), (8192, 16383)]);
    }

    #[test]
    fn slots_parse_and_cover() {
        assert_eq!(parse_slots("0-5460").ok(), Some(vec![(0, 5460)]));
        assert_eq!(parse_slots("1,3-4").ok(), Some(vec![(1, 1), (3, 4)]));
        assert!(parse_slots("5-1").is_err());
        assert!(parse_slots("0-16384").is_err());
        assert!(parse_slots("x").is_err());
        let a = vec![(0, 8191)];
        let b = vec![(8192, 16383)];
        assert!(check_coverage([&a, &b].into_iter()).is_ok());
        let c = vec![(8000, 16383)];
        assert!(check_coverage([&a, &c].into_iter()).is_err());
        assert!(check_coverage([&a].into_iter()).is_err());
        assert_eq!(format_slots(&[(0, 5), (7, 7)]), "0-5,7");
    }

    #[test]
    fn rebalance_out_and_in() {
        let mut shards: Vec<Shard> = even_split(3)
            .into_iter()
            .enumerate()
            .map(|(i, r)| shard(&format!("{i}"), vec![r], false))
            .collect();
        shards.push(shard("3", vec![], false));
        let t = rebalance(&shards);
        let sizes: Vec<usize> = t.iter().map(|r| expand(r).len()).collect();
        assert_eq!(sizes, vec![4096; 4]);
        for (s, t) in shards.iter_mut().zip(t) {
            s.target_slots = Some(t);
        }
        assert!(check_coverage(
            shards
                .iter()
                .map(|s| s.target_slots.as_ref().unwrap_or(&s.slots))
        )
        .is_ok());
        // Run the steps on the records alone.
        let mut steps = 0;
        while let Some((from, to, slots)) = next_step(&shards) {
            let mut f = expand(&shards[from].slots);
            f.retain(|x| !slots.contains(x));
            shards[from].slots = compress(f);
            let mut d = expand(&shards[to].slots);
            d.extend(slots);
            shards[to].slots = compress(d);
            steps += 1;
            assert!(steps < 100);
        }
        assert_eq!(moves_left(&shards), 0);
        for s in &shards {
            assert_eq!(Some(&s.slots), s.target_slots.as_ref());
        }
        // Scale in: remove two of four.
        for s in &mut shards {
            s.target_slots = None;
        }
        shards[2].removing = true;
        shards[3].removing = true;
        let t = rebalance(&shards);
        assert!(t[2].is_empty() && t[3].is_empty());
        assert_eq!(expand(&t[0]).len() + expand(&t[1]).len(), SLOTS);
    }

    #[test]
    fn node_ids_are_stable_hex() {
        let a = node_id("us-east-1", "g-0001-001");
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, node_id("us-east-1", "g-0001-001"));
        assert_ne!(a, node_id("us-east-1", "g-0001-002"));
    }
}
