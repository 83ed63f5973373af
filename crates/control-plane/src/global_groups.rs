//! Global datastores (global replication groups), with the regions of this one
//! emulator as the "other regions", and online migration from a customer's Redis
//! (StartMigration / TestMigration / CompleteMigration).
//!
//! Replication is real in both: the primary node of a global secondary group is
//! a replica of the global primary group's primary node (its replicas chain from
//! it), so writes in the primary region appear in the others; a failover
//! switches the roles and re-points every member. A migrating group's primary is
//! a replica of the customer's node until CompleteMigration promotes it.
//!
//! A global datastore is recorded under the region `''` (it spans regions); its
//! members are the replication groups whose `global_replication_group_id` names
//! it, each with its role.

use crate::error::ApiError;
use crate::model::{status, GroupRecord, GroupSpec};
use crate::nodes::NodeKey;
use crate::store::ResourceRow;
use crate::{events, now_ms, paginate, replication_groups, Inner};
use aws_query::{Params, XmlWriter};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const KIND: &str = "global-replication-group";
const GLOBAL: &str = "";
pub(crate) const PRIMARY: &str = "PRIMARY";
pub(crate) const SECONDARY: &str = "SECONDARY";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GlobalSpec {
    description: String,
    primary_region: String,
    primary_group: String,
}

struct Global {
    row: ResourceRow,
    spec: GlobalSpec,
}

/// The 5-letter prefix AWS puts before the suffix of a global datastore's id;
/// it is fixed per account here, derived from the account id.
fn prefix(account: &str) -> String {
    let mut h: u32 = 2_166_136_261;
    for b in account.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(16_777_619);
    }
    (0..5)
        .map(|i| (b'a' + ((h >> (i * 5)) % 26) as u8) as char)
        .collect()
}

fn arn(cp: &Inner, id: &str) -> String {
    format!(
        "arn:aws:elasticache::{}:globalreplicationgroup:{id}",
        cp.config.account_id
    )
}

async fn find(cp: &Inner, raw: &str) -> Result<Global, ApiError> {
    let row = cp
        .store
        .resource(GLOBAL, KIND, raw)
        .await?
        .ok_or_else(|| ApiError::GlobalReplicationGroupNotFound(raw.to_string()))?;
    let spec = serde_json::from_str(&row.spec)?;
    Ok(Global { row, spec })
}

async fn save(cp: &Inner, g: &Global) -> Result<(), ApiError> {
    let mut row = g.row.clone();
    row.spec = serde_json::to_string(&g.spec)?;
    cp.store.put_resource(&row).await
}

/// Every replication group (any region) that belongs to the global datastore,
/// the primary first.
async fn members(cp: &Inner, id: &str) -> Result<Vec<GroupRecord>, ApiError> {
    let mut out: Vec<GroupRecord> = Vec::new();
    for r in regions(cp).await? {
        for g in cp.store.replication_groups(&r).await? {
            if g.spec.global_replication_group_id.as_deref() == Some(id) {
                out.push(g);
            }
        }
    }
    out.sort_by_key(|g| g.spec.global_role.as_deref() != Some(PRIMARY));
    Ok(out)
}

/// Regions that have replication groups.
async fn regions(cp: &Inner) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = cp
        .store
        .all_replication_groups()
        .await?
        .into_iter()
        .map(|g| g.region)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Global datastores need a current-generation node type, as on AWS.
fn supported_node_type(t: &str) -> bool {
    let family = t.split('.').nth(1).unwrap_or("");
    !(family.starts_with('t') || matches!(family, "m3" | "m4" | "r3" | "r4"))
}

pub(crate) async fn create(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let suffix = p.required("GlobalReplicationGroupIdSuffix")?;
    let ok = !suffix.is_empty()
        && suffix.len() <= 40
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid GlobalReplicationGroupIdSuffix {suffix}."
        )));
    }
    let primary = p.required("PrimaryReplicationGroupId")?;
    let id = format!(
        "{}-{}",
        prefix(&cp.config.account_id),
        suffix.to_ascii_lowercase()
    );
    let _guard = cp.lock.lock().await;
    if cp.store.resource(GLOBAL, KIND, &id).await?.is_some() {
        return Err(ApiError::GlobalReplicationGroupAlreadyExists(id));
    }
    let mut g = replication_groups::find(cp, region, primary).await?;
    g.require_available()?;
    if let Some(other) = &g.spec.global_replication_group_id {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "Replication group {} is already a member of global replication group {other}.",
            g.id
        )));
    }
    if g.spec.migration_source.is_some() {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "Replication group {} is under migration.",
            g.id
        )));
    }
    if !supported_node_type(&g.spec.node_type) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Global replication groups are not supported for node type {}.",
            g.spec.node_type
        )));
    }
    let global = Global {
        row: ResourceRow {
            region: GLOBAL.to_string(),
            kind: KIND.to_string(),
            name: id.clone(),
            status: status::AVAILABLE.to_string(),
            created_ms: now_ms(),
            spec: String::new(),
        },
        spec: GlobalSpec {
            description: p
                .str("GlobalReplicationGroupDescription")
                .unwrap_or("")
                .to_string(),
            primary_region: region.to_string(),
            primary_group: g.id.clone(),
        },
    };
    save(cp, &global).await?;
    g.spec.global_replication_group_id = Some(id.clone());
    g.spec.global_role = Some(PRIMARY.to_string());
    cp.store.put_replication_group(&g, &[]).await?;
    events::record(
        cp,
        region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!(
            "Replication group {} added to global replication group {id}",
            g.id
        ),
    )
    .await;
    render(cp, &global, true).await
}

/// CreateReplicationGroup with `GlobalReplicationGroupId`: the new group takes
/// its engine, version and node type from the global primary. Called with the
/// lock held.
pub(crate) async fn join_as_secondary(
    cp: &Inner,
    region: &str,
    id: &str,
    spec: &mut GroupSpec,
) -> Result<(), ApiError> {
    let global = find(cp, id).await?;
    for m in members(cp, id).await? {
        if m.region == region {
            return Err(ApiError::InvalidGlobalReplicationGroupState(format!(
                "Global replication group {id} already has a member in region {region}."
            )));
        }
    }
    let primary = cp
        .store
        .replication_group(&global.spec.primary_region, &global.spec.primary_group)
        .await?
        .ok_or_else(|| {
            ApiError::InvalidGlobalReplicationGroupState(format!(
                "Global replication group {id} has no primary."
            ))
        })?;
    spec.engine = primary.spec.engine;
    spec.engine_version = primary.spec.engine_version.clone();
    spec.family = primary.spec.family.clone();
    spec.node_type = primary.spec.node_type.clone();
    spec.at_rest_encryption_enabled = primary.spec.at_rest_encryption_enabled;
    spec.global_replication_group_id = Some(id.to_string());
    spec.global_role = Some(SECONDARY.to_string());
    Ok(())
}

/// Where a group's primary node replicates from, if anywhere: the customer's
/// node during a migration, the global primary's primary for a secondary.
pub(crate) async fn upstream(cp: &Inner, g: &GroupRecord) -> Result<Option<SocketAddr>, ApiError> {
    if let Some(src) = &g.spec.migration_source {
        return Ok(src.parse().ok());
    }
    if g.spec.global_role.as_deref() != Some(SECONDARY) {
        return Ok(None);
    }
    let Some(id) = &g.spec.global_replication_group_id else {
        return Ok(None);
    };
    let Ok(global) = find(cp, id).await else {
        return Ok(None);
    };
    let Some(primary) = cp
        .store
        .replication_group(&global.spec.primary_region, &global.spec.primary_group)
        .await?
    else {
        return Ok(None);
    };
    Ok(primary_engine(cp, &primary))
}

fn primary_engine(cp: &Inner, g: &GroupRecord) -> Option<SocketAddr> {
    cp.nodes.engine_addr(&NodeKey {
        region: g.region.clone(),
        cluster: g.spec.primary.clone(),
        node: 1,
    })
}

/// After a global primary group's topology changed (a failover inside it), the
/// secondaries' primaries follow its new primary.
pub(crate) async fn after_topology(
    cp: &Inner,
    g: &GroupRecord,
    primary_engine_addr: Option<SocketAddr>,
) -> Result<(), ApiError> {
    if g.spec.global_role.as_deref() != Some(PRIMARY) {
        return Ok(());
    }
    let (Some(id), Some(addr)) = (&g.spec.global_replication_group_id, primary_engine_addr) else {
        return Ok(());
    };
    for m in members(cp, id).await? {
        if m.spec.global_role.as_deref() == Some(SECONDARY) {
            cp.nodes.set_role(
                &NodeKey {
                    region: m.region.clone(),
                    cluster: m.spec.primary.clone(),
                    node: 1,
                },
                crate::nodes::Role::ReplicaOf(addr),
            );
        }
    }
    Ok(())
}

pub(crate) async fn describe(cp: &Inner, p: &Params) -> Result<String, ApiError> {
    let show_members = p.bool("ShowMemberInfo")?.unwrap_or(false);
    let rows = match p.str("GlobalReplicationGroupId") {
        Some(id) => vec![find(cp, id).await?.row],
        None => cp.store.resources(Some(GLOBAL), KIND).await?,
    };
    let (page, marker) = paginate(rows, p, |r| r.name.clone())?;
    let mut parts = Vec::new();
    for row in page {
        let spec = serde_json::from_str(&row.spec)?;
        parts.push(body(cp, &Global { row, spec }, show_members).await?);
    }
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    let mut out = w.finish();
    out.push_str("<GlobalReplicationGroups>");
    for part in parts {
        out.push_str("<GlobalReplicationGroup>");
        out.push_str(&part);
        out.push_str("</GlobalReplicationGroup>");
    }
    out.push_str("</GlobalReplicationGroups>");
    Ok(out)
}

async fn render(cp: &Inner, g: &Global, show_members: bool) -> Result<String, ApiError> {
    Ok(format!(
        "<GlobalReplicationGroup>{}</GlobalReplicationGroup>",
        body(cp, g, show_members).await?
    ))
}

/// The inner XML of a `GlobalReplicationGroup`.
async fn body(cp: &Inner, g: &Global, show_members: bool) -> Result<String, ApiError> {
    let ms = members(cp, &g.row.name).await?;
    let primary = ms
        .iter()
        .find(|m| m.spec.global_role.as_deref() == Some(PRIMARY));
    let status = if g.row.status != status::AVAILABLE {
        g.row.status.as_str()
    } else if ms.len() <= 1 {
        "primary-only"
    } else {
        status::AVAILABLE
    };
    let mut w = XmlWriter::new();
    w.text("GlobalReplicationGroupId", &g.row.name)
        .text("GlobalReplicationGroupDescription", &g.spec.description)
        .text("Status", status);
    if let Some(p) = primary {
        w.text("CacheNodeType", &p.spec.node_type)
            .text("Engine", p.spec.engine.as_str())
            .text("EngineVersion", &p.spec.engine_version);
    }
    if show_members {
        w.list("Members", "GlobalReplicationGroupMember", &ms, |w, m| {
            w.text("ReplicationGroupId", &m.id)
                .text("ReplicationGroupRegion", &m.region)
                .text("Role", m.spec.global_role.as_deref().unwrap_or(SECONDARY))
                .text(
                    "AutomaticFailover",
                    if m.spec.automatic_failover {
                        "enabled"
                    } else {
                        "disabled"
                    },
                )
                .text(
                    "Status",
                    if m.status == status::AVAILABLE {
                        "associated"
                    } else {
                        m.status.as_str()
                    },
                );
        });
    }
    w.bool("ClusterEnabled", false);
    if let Some(p) = primary {
        w.bool("AuthTokenEnabled", p.spec.auth_token.is_some())
            .bool(
                "TransitEncryptionEnabled",
                p.spec.transit_encryption_enabled,
            )
            .bool("AtRestEncryptionEnabled", p.spec.at_rest_encryption_enabled);
    }
    w.text("ARN", &arn(cp, &g.row.name));
    Ok(w.finish())
}

pub(crate) async fn modify(cp: &Arc<Inner>, p: &Params) -> Result<String, ApiError> {
    let id = p.required("GlobalReplicationGroupId")?.to_string();
    if p.bool("ApplyImmediately")?.is_none() {
        return Err(ApiError::MissingParameter("ApplyImmediately".into()));
    }
    // Settings that belong to the member groups are applied to each of them, as
    // AWS rolls them out region by region.
    let mut member_params: Vec<(&str, String)> = vec![("ApplyImmediately", "true".into())];
    for name in ["CacheNodeType", "EngineVersion", "Engine"] {
        if let Some(v) = p.str(name) {
            member_params.push((name, v.to_string()));
        }
    }
    if let Some(t) = p.str("CacheNodeType") {
        if !supported_node_type(t) {
            return Err(ApiError::InvalidParameterValue(format!(
                "Global replication groups are not supported for node type {t}."
            )));
        }
    }
    let members = {
        let _guard = cp.lock.lock().await;
        let mut g = find(cp, &id).await?;
        if let Some(d) = p.str("GlobalReplicationGroupDescription") {
            g.spec.description = d.to_string();
            save(cp, &g).await?;
        }
        if let Some(af) = p.bool("AutomaticFailoverEnabled")? {
            let ms = members(cp, &id).await?;
            if af && ms.iter().any(|m| m.spec.members.len() < 2) {
                return Err(ApiError::InvalidParameterCombination(
                    "Automatic failover needs at least one replica in every member.".into(),
                ));
            }
            for mut m in ms {
                m.spec.automatic_failover = af;
                cp.store.put_replication_group(&m, &[]).await?;
            }
        }
        members(cp, &id).await?
    };
    if p.str("CacheParameterGroupName").is_some() {
        return Err(ApiError::InvalidParameterValue(
            "CacheParameterGroupName can only be changed together with a major engine version upgrade.".into(),
        ));
    }
    if member_params.len() > 1 {
        for m in &members {
            let mut pairs = member_params.clone();
            pairs.push(("ReplicationGroupId", m.id.clone()));
            replication_groups::modify(cp, &m.region, &Params::from_pairs(pairs)).await?;
        }
    }
    let g = find(cp, &id).await?;
    render(cp, &g, false).await
}

pub(crate) async fn delete(cp: &Arc<Inner>, p: &Params) -> Result<String, ApiError> {
    let id = p.required("GlobalReplicationGroupId")?.to_string();
    let retain = p
        .bool("RetainPrimaryReplicationGroup")?
        .ok_or_else(|| ApiError::MissingParameter("RetainPrimaryReplicationGroup".into()))?;
    let (out, primary) = {
        let _guard = cp.lock.lock().await;
        let mut g = find(cp, &id).await?;
        let ms = members(cp, &id).await?;
        if ms.len() > 1 {
            return Err(ApiError::InvalidGlobalReplicationGroupState(format!(
                "Global replication group {id} still has secondary members; disassociate them first."
            )));
        }
        g.row.status = "deleting".to_string();
        let out = render(cp, &g, false).await?;
        let mut primary = None;
        for mut m in ms {
            m.spec.global_replication_group_id = None;
            m.spec.global_role = None;
            cp.store.put_replication_group(&m, &[]).await?;
            events::record(
                cp,
                &m.region,
                &m.id,
                events::REPLICATION_GROUP,
                &format!(
                    "Replication group {} removed from global replication group {id}",
                    m.id
                ),
            )
            .await;
            primary = Some((m.region.clone(), m.id.clone()));
        }
        cp.store
            .delete_resource(GLOBAL, KIND, &id, &arn(cp, &id), None)
            .await?;
        (out, primary)
    };
    if !retain {
        if let Some((region, rg)) = primary {
            replication_groups::delete(
                cp,
                &region,
                &Params::from_pairs([("ReplicationGroupId", rg.as_str())]),
            )
            .await?;
        }
    }
    Ok(out)
}

pub(crate) async fn disassociate(cp: &Arc<Inner>, p: &Params) -> Result<String, ApiError> {
    let id = p.required("GlobalReplicationGroupId")?;
    let rg = p.required("ReplicationGroupId")?;
    let region = p.required("ReplicationGroupRegion")?;
    let _guard = cp.lock.lock().await;
    let g = find(cp, id).await?;
    let mut m = replication_groups::find(cp, region, rg).await?;
    if m.spec.global_replication_group_id.as_deref() != Some(g.row.name.as_str()) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Replication group {rg} in {region} is not a member of global replication group {id}."
        )));
    }
    if m.spec.global_role.as_deref() == Some(PRIMARY) {
        return Err(ApiError::InvalidParameterValue(format!(
            "The primary replication group {rg} cannot be disassociated; fail over to another member or delete the global replication group."
        )));
    }
    m.spec.global_replication_group_id = None;
    m.spec.global_role = None;
    cp.store.put_replication_group(&m, &[]).await?;
    // Its primary stops replicating and becomes writable, keeping the data.
    replication_groups::reapply_topology(cp, region, &m.id).await?;
    events::record(
        cp,
        region,
        &m.id,
        events::REPLICATION_GROUP,
        &format!(
            "Replication group {} removed from global replication group {id}",
            m.id
        ),
    )
    .await;
    render(cp, &g, true).await
}

pub(crate) async fn failover(cp: &Arc<Inner>, p: &Params) -> Result<String, ApiError> {
    let id = p.required("GlobalReplicationGroupId")?;
    let region = p.required("PrimaryRegion")?;
    let rg = p.required("PrimaryReplicationGroupId")?;
    let _guard = cp.lock.lock().await;
    let mut g = find(cp, id).await?;
    let mut target = replication_groups::find(cp, region, rg).await?;
    if target.spec.global_replication_group_id.as_deref() != Some(g.row.name.as_str()) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Replication group {rg} in {region} is not a member of global replication group {id}."
        )));
    }
    if target.spec.global_role.as_deref() == Some(PRIMARY) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Replication group {rg} is already the primary of global replication group {id}."
        )));
    }
    let ms = members(cp, id).await?;
    for m in &ms {
        m.require_available().map_err(|_| {
            ApiError::InvalidGlobalReplicationGroupState(format!(
                "Member {} of global replication group {id} is not available.",
                m.id
            ))
        })?;
    }
    // The new primary first stops replicating, then everyone else follows it.
    target.spec.global_role = Some(PRIMARY.to_string());
    cp.store.put_replication_group(&target, &[]).await?;
    g.spec.primary_region = target.region.clone();
    g.spec.primary_group = target.id.clone();
    save(cp, &g).await?;
    for mut m in ms {
        if m.region == target.region && m.id == target.id {
            continue;
        }
        m.spec.global_role = Some(SECONDARY.to_string());
        cp.store.put_replication_group(&m, &[]).await?;
    }
    replication_groups::reapply_topology(cp, &target.region, &target.id).await?;
    for m in members(cp, id).await? {
        if m.spec.global_role.as_deref() == Some(SECONDARY) {
            replication_groups::reapply_topology(cp, &m.region, &m.id).await?;
        }
    }
    events::record(
        cp,
        region,
        &target.id,
        events::REPLICATION_GROUP,
        &format!(
            "Failover of global replication group {id} to replication group {} in {region} completed",
            target.id
        ),
    )
    .await;
    render(cp, &g, true).await
}

/// Increase/DecreaseNodeGroupsInGlobalReplicationGroup and
/// RebalanceSlotsInGlobalReplicationGroup act on cluster-mode-enabled global
/// datastores; these members are cluster mode disabled, which AWS refuses.
pub(crate) async fn node_groups(cp: &Inner, p: &Params) -> Result<String, ApiError> {
    let id = p.required("GlobalReplicationGroupId")?;
    if p.bool("ApplyImmediately")?.is_none() {
        return Err(ApiError::MissingParameter("ApplyImmediately".into()));
    }
    find(cp, id).await?;
    Err(ApiError::InvalidGlobalReplicationGroupState(format!(
        "Global replication group {id} is not cluster mode enabled; node groups can only be changed or rebalanced on a cluster-mode-enabled global replication group."
    )))
}

// ---- online migration ----

fn migration_endpoint(p: &Params) -> Result<(String, u16), ApiError> {
    let list = p
        .struct_list("CustomerNodeEndpointList", "member")?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ApiError::MissingParameter("CustomerNodeEndpointList".into()))?;
    if list.len() != 1 {
        return Err(ApiError::InvalidParameterValue(
            "Exactly one customer node endpoint is needed for a cluster-mode-disabled replication group.".into(),
        ));
    }
    let ep = &list[0];
    let address = ep.str("Address").filter(|a| !a.is_empty()).ok_or_else(|| {
        ApiError::MissingParameter("CustomerNodeEndpointList.member.1.Address".into())
    })?;
    let port = match ep.int("Port")? {
        None => 6379,
        Some(n) => u16::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::InvalidParameterValue(format!("Invalid port {n}.")))?,
    };
    Ok((address.to_string(), port))
}

/// Check that the customer's node answers as a Redis primary (what TestMigration
/// reports and StartMigration needs).
async fn probe(address: &str, port: u16) -> Result<SocketAddr, ApiError> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let unreachable = |why: String| {
        ApiError::InvalidParameterValue(format!(
            "Cannot connect to the customer node {address}:{port}: {why}"
        ))
    };
    let addr = tokio::net::lookup_host((address, port))
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| unreachable("no address".into()))?;
    let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let mut r = BufReader::new(stream);
    r.get_mut()
        .write_all(b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n")
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut header = String::new();
    tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut header))
        .await
        .map_err(|_| unreachable("no reply".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    if header.starts_with("-NOAUTH") {
        return Err(ApiError::InvalidParameterValue(format!(
            "The customer node {address}:{port} requires AUTH; online migration needs a node without AUTH."
        )));
    }
    let len: usize = header
        .trim()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| unreachable(format!("unexpected reply {:?}", header.trim())))?;
    let mut body = vec![0u8; len.min(1 << 20) + 2];
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_exact(&mut r, &mut body),
    )
    .await
    .map_err(|_| unreachable("no reply".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let info = String::from_utf8_lossy(&body);
    if !info.lines().any(|l| l.trim() == "role:master") {
        return Err(ApiError::InvalidParameterValue(format!(
            "The customer node {address}:{port} is not a primary."
        )));
    }
    Ok(addr)
}

async fn migration_group(cp: &Inner, region: &str, p: &Params) -> Result<GroupRecord, ApiError> {
    let g = replication_groups::find(cp, region, p.required("ReplicationGroupId")?).await?;
    g.require_available()?;
    if g.spec.migration_source.is_some() {
        return Err(ApiError::ReplicationGroupAlreadyUnderMigration(format!(
            "Replication group {} is already under migration.",
            g.id
        )));
    }
    if g.spec.transit_encryption_enabled || g.spec.auth_token.is_some() {
        return Err(ApiError::InvalidParameterValue(format!(
            "Online migration needs replication group {} without in-transit encryption or AUTH.",
            g.id
        )));
    }
    if g.spec.global_replication_group_id.is_some() {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "Replication group {} is a member of a global replication group.",
            g.id
        )));
    }
    Ok(g)
}

pub(crate) async fn test_migration(
    cp: &Inner,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let (address, port) = migration_endpoint(p)?;
    let g = {
        let _guard = cp.lock.lock().await;
        migration_group(cp, region, p).await?
    };
    probe(&address, port).await?;
    events::record(
        cp,
        region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!(
            "Test migration from {address}:{port} to replication group {} succeeded",
            g.id
        ),
    )
    .await;
    replication_group_result(cp, &g).await
}

pub(crate) async fn start_migration(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let (address, port) = migration_endpoint(p)?;
    let addr = probe(&address, port).await?;
    let _guard = cp.lock.lock().await;
    let mut g = migration_group(cp, region, p).await?;
    g.spec.migration_source = Some(addr.to_string());
    cp.store.put_replication_group(&g, &[]).await?;
    // The primary turns into a replica of the customer's node: a full copy, then
    // the write stream, until CompleteMigration.
    replication_groups::reapply_topology(cp, region, &g.id).await?;
    events::record(
        cp,
        region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!(
            "Migration from {address}:{port} to replication group {} started",
            g.id
        ),
    )
    .await;
    replication_group_result(cp, &g).await
}

pub(crate) async fn complete_migration(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let _force = p.bool("Force")?;
    let _guard = cp.lock.lock().await;
    let mut g = replication_groups::find(cp, region, p.required("ReplicationGroupId")?).await?;
    let Some(src) = g.spec.migration_source.take() else {
        return Err(ApiError::ReplicationGroupNotUnderMigration(format!(
            "Replication group {} is not under migration.",
            g.id
        )));
    };
    cp.store.put_replication_group(&g, &[]).await?;
    // Promotion keeps the data copied so far; replicas keep following it.
    replication_groups::reapply_topology(cp, region, &g.id).await?;
    events::record(
        cp,
        region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!(
            "Migration from {src} to replication group {} completed",
            g.id
        ),
    )
    .await;
    replication_group_result(cp, &g).await
}

async fn replication_group_result(cp: &Inner, g: &GroupRecord) -> Result<String, ApiError> {
    replication_groups::render_one(cp, g).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_prefix_is_five_letters_and_stable() {
        let p = prefix("000000000000");
        assert_eq!(p.len(), 5);
        assert!(p.chars().all(|c| c.is_ascii_lowercase()));
        assert_eq!(p, prefix("000000000000"));
        assert_ne!(p, prefix("123456789012"));
    }

    #[test]
    fn node_types_of_global_datastores() {
        assert!(supported_node_type("cache.r6g.large"));
        assert!(supported_node_type("cache.m5.xlarge"));
        for t in [
            "cache.t3.micro",
            "cache.t4g.small",
            "cache.m4.large",
            "cache.r4.large",
        ] {
            assert!(!supported_node_type(t), "{t}");
        }
    }

    #[test]
    fn migration_endpoints() {
        let p = Params::from_pairs([
            ("CustomerNodeEndpointList.member.1.Address", "10.0.0.1"),
            ("CustomerNodeEndpointList.member.1.Port", "6380"),
        ]);
        assert_eq!(migration_endpoint(&p).unwrap(), ("10.0.0.1".into(), 6380));
        let default_port = Params::from_pairs([("CustomerNodeEndpointList.member.1.Address", "h")]);
        assert_eq!(migration_endpoint(&default_port).unwrap().1, 6379);
        assert!(migration_endpoint(&Params::from_pairs([("X", "1")])).is_err());
        let two = Params::from_pairs([
            ("CustomerNodeEndpointList.member.1.Address", "a"),
            ("CustomerNodeEndpointList.member.2.Address", "b"),
        ]);
        assert!(migration_endpoint(&two).is_err());
    }
}
