//! Replication groups with cluster mode disabled: one node group (`0001`) of a
//! primary and up to five replicas. Members are ordinary cache clusters
//! (`<id>-001`, `<id>-002`, …) with one node each. The group's primary and reader
//! endpoints are addresses of their own (see `proxy`), stable across failovers and
//! restarts.

use crate::catalog::{self, Engine};
use crate::clusters::{self, node_key, Transition};
use crate::error::ApiError;
use crate::ids::{replication_group_id, CacheClusterId, CacheNodeId};
use crate::model::{
    status, ClusterRecord, ClusterSpec, GroupRecord, GroupSpec, NodeRecord, PendingModifiedValues,
};
use crate::nodes::{NodeKey, Role};
use crate::proxy::{Kind, Targets};
use crate::{
    events, now_ms, paginate, parameter_groups, security, shards, snapshots, subnet_groups, Inner,
};
use aws_query::{Params, XmlWriter};
use std::net::SocketAddr;
use std::sync::Arc;

const MAX_MEMBERS: usize = 6;
pub const NODE_GROUP_ID: &str = "0001";

pub(crate) fn endpoint_key(region: &str, rg: &str, kind: Kind) -> NodeKey {
    NodeKey {
        region: region.to_string(),
        cluster: format!("{rg}/{}", kind.as_str()),
        node: 0,
    }
}

fn member_id(rg: &str, n: u16) -> Result<CacheClusterId, ApiError> {
    CacheClusterId::parse(&format!("{rg}-{n:03}"))
}

pub(crate) async fn find(cp: &Inner, region: &str, raw: &str) -> Result<GroupRecord, ApiError> {
    let id = raw.to_ascii_lowercase();
    cp.store
        .replication_group(region, &id)
        .await?
        .ok_or_else(|| ApiError::ReplicationGroupNotFound(raw.to_string()))
}

pub(crate) async fn members(cp: &Inner, g: &GroupRecord) -> Result<Vec<ClusterRecord>, ApiError> {
    let mut out = Vec::with_capacity(g.spec.members.len());
    for m in &g.spec.members {
        if let Some(c) = cp
            .store
            .cluster(&g.region, &CacheClusterId::parse(m)?)
            .await?
        {
            out.push(c);
        }
    }
    Ok(out)
}

pub(crate) async fn create(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let id = replication_group_id(p.required("ReplicationGroupId")?)?;
    let description = p.required("ReplicationGroupDescription")?.to_string();
    let engine = Engine::parse(p.str("Engine").unwrap_or("redis"))?;
    if engine == Engine::Memcached {
        return Err(ApiError::InvalidParameterValue(
            "Replication groups are only supported for the redis and valkey engines.".into(),
        ));
    }
    let restore = snapshots::restore_files(cp, region, p, engine).await?;
    let adopt = p
        .str("PrimaryClusterId")
        .map(CacheClusterId::parse)
        .transpose()?;
    let version = catalog::resolve_version(engine, p.str("EngineVersion"))?;
    let from_snapshot = restore.as_ref().and_then(|r| r.snapshot.as_ref());
    let cluster_plan = shards::plan(cp, region, p, version.family, from_snapshot).await?;
    // A cluster-mode group loads every file into every shard (each keeps its
    // slots' keys); a cluster-mode-disabled one loads exactly one file.
    let (restore_from, cluster_restore) = match (&cluster_plan, restore) {
        (Some(_), r) => (None, r),
        (None, Some(r)) => (Some(r.single()?), None),
        (None, None) => (None, None),
    };
    let count = match (p.int("NumCacheClusters")?, p.int("ReplicasPerNodeGroup")?) {
        _ if cluster_plan.is_some() => 1,
        (Some(n), _) => n,
        (None, Some(r)) => r + 1,
        (None, None) => 1,
    };
    if !(1..=MAX_MEMBERS as i64).contains(&count) {
        return Err(ApiError::InvalidParameterValue(format!(
            "NumCacheClusters must be between 1 and {MAX_MEMBERS}."
        )));
    }
    let count = count as u16;
    let automatic_failover = p
        .bool("AutomaticFailoverEnabled")?
        .unwrap_or(cluster_plan.is_some());
    let multi_az = p.bool("MultiAZEnabled")?.unwrap_or(false);
    if automatic_failover && count < 2 && cluster_plan.is_none() {
        return Err(ApiError::InvalidParameterCombination(
            "Automatic failover needs at least 2 cache clusters (a primary and a replica).".into(),
        ));
    }
    if multi_az && !automatic_failover {
        return Err(ApiError::InvalidParameterCombination(
            "Multi-AZ requires automatic failover to be enabled.".into(),
        ));
    }
    let node_type = catalog::node_type(p.str("CacheNodeType").unwrap_or("cache.t3.micro"))?;
    let port = match p.int("Port")? {
        None => engine.default_port(),
        Some(n) => u16::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::InvalidParameterValue(format!(
                "Invalid port {n}: it must be between 1 and 65535."
            ))
        })?,
    };
    let parameter_group_name = match &cluster_plan {
        Some(plan) => plan.parameter_group.clone(),
        None => {
            parameter_groups::for_cluster(
                cp,
                region,
                p.str("CacheParameterGroupName"),
                version.family,
            )
            .await?
        }
    };
    let subnet_group = subnet_groups::find(
        cp,
        region,
        p.str("CacheSubnetGroupName")
            .unwrap_or(subnet_groups::DEFAULT),
    )
    .await?;
    let group_zones = subnet_groups::zones(&subnet_group);
    let zones = match p.list("PreferredCacheClusterAZs", "AvailabilityZone")?.filter(|l| !l.is_empty() && cluster_plan.is_none()) {
        Some(z) if z.len() != usize::from(count) => {
            return Err(ApiError::InvalidParameterValue(format!(
                "The number of PreferredCacheClusterAZs ({}) must match NumCacheClusters ({count}).",
                z.len()
            )))
        }
        Some(z) => z,
        // Members spread over the subnet group's zones, as Multi-AZ placement does.
        None => (0..usize::from(count)).map(|i| group_zones[i % group_zones.len().max(1)].clone()).collect(),
    };
    let maintenance_window = match p.str("PreferredMaintenanceWindow") {
        Some(w) => clusters::maintenance_window(w)?,
        None => "sun:05:00-sun:06:00".to_string(),
    };
    let snapshot_window = match p.str("SnapshotWindow") {
        Some(w) => clusters::time_window(w)?,
        None => "06:00-07:00".to_string(),
    };
    let tags = p.tags("Tags")?.unwrap_or_default();
    clusters::check_tag_count(tags.len())?;
    let (transit, transit_mode) = security::transit(p)?;
    let auth_token = p
        .str("AuthToken")
        .map(|t| security::auth_token(t, transit))
        .transpose()?;
    let user_group_ids = p.list("UserGroupIds", "member")?.unwrap_or_default();

    let _guard = cp.lock.lock().await;
    if cp.store.replication_group(region, &id).await?.is_some() {
        return Err(ApiError::ReplicationGroupAlreadyExists(id));
    }
    let mut spec = GroupSpec {
        description,
        engine,
        engine_version: version.version.to_string(),
        family: version.family.to_string(),
        node_type: node_type.name.to_string(),
        port,
        automatic_failover,
        multi_az,
        parameter_group_name,
        subnet_group_name: subnet_group.name.clone(),
        security_group_ids: p
            .list("SecurityGroupIds", "SecurityGroupId")?
            .unwrap_or_default(),
        maintenance_window,
        snapshot_window,
        snapshot_retention_limit: p.int("SnapshotRetentionLimit")?.unwrap_or(0),
        snapshotting_cluster_id: None,
        auto_minor_version_upgrade: p.bool("AutoMinorVersionUpgrade")?.unwrap_or(true),
        members: Vec::new(),
        primary: String::new(),
        last_member_number: 0,
        at_rest_encryption_enabled: p.bool("AtRestEncryptionEnabled")?.unwrap_or(false),
        retain_on_delete: None,
        log_delivery: {
            let mut l = Vec::new();
            crate::log_delivery::apply(&mut l, p)?;
            l
        },
        transit_encryption_enabled: transit,
        transit_encryption_mode: transit_mode,
        auth_token_last_modified_ms: auth_token.as_ref().map(|_| now_ms()),
        auth_token,
        user_group_ids: user_group_ids.clone(),
        previous_auth_token: None,
        kms_key_id: p.str("KmsKeyId").map(str::to_string),
        cluster_mode: None,
        shards: Vec::new(),
        config_epoch: 0,
        resharding_progress: None,
        global_replication_group_id: None,
        global_role: None,
        migration_source: None,
    };
    if let Some(gid) = p.str("GlobalReplicationGroupId") {
        // A secondary of a global datastore: settings come from its primary.
        crate::global_groups::join_as_secondary(cp, region, gid, &mut spec).await?;
    }
    if spec.kms_key_id.is_some() && !spec.at_rest_encryption_enabled {
        return Err(ApiError::InvalidParameterCombination(
            "KmsKeyId requires AtRestEncryptionEnabled.".into(),
        ));
    }
    crate::users::check_attach(
        cp,
        region,
        &user_group_ids,
        transit,
        spec.auth_token.is_some(),
    )
    .await?;
    if let Some(plan) = cluster_plan {
        return shards::create_locked(cp, region, &id, spec, plan, &tags, cluster_restore).await;
    }
    let mut adopted = None;
    if let Some(pid) = &adopt {
        let c = cp
            .store
            .cluster(region, pid)
            .await?
            .ok_or_else(|| ApiError::CacheClusterNotFound(pid.to_string()))?;
        if c.replication_group_id.is_some()
            || !c.spec.engine.is_redis_like()
            || c.status != status::AVAILABLE
        {
            return Err(ApiError::InvalidCacheClusterState(format!(
                "Cache cluster {pid} cannot become the primary of a replication group (engine {}, status {}).",
                c.spec.engine.as_str(),
                c.status
            )));
        }
        // The adopted cluster keeps its settings; the group takes them from it.
        spec.engine = c.spec.engine;
        spec.engine_version = c.spec.engine_version.clone();
        spec.family = c.spec.family.clone();
        spec.node_type = c.spec.node_type.clone();
        spec.port = c.spec.port;
        spec.parameter_group_name = c.spec.parameter_group_name.clone();
        spec.members.push(pid.to_string());
        spec.primary = pid.to_string();
        adopted = Some(c);
    }
    let new_count = count - u16::from(adopted.is_some());
    let mut new_ids = Vec::new();
    for n in 1..=new_count {
        let mid = member_id(&id, n)?;
        if cp.store.cluster(region, &mid).await?.is_some() {
            return Err(ApiError::CacheClusterAlreadyExists(mid.to_string()));
        }
        new_ids.push(mid);
    }
    spec.last_member_number = new_count;
    let used = cp.store.used_endpoints().await?;
    let mut keys: Vec<NodeKey> = new_ids
        .iter()
        .map(|m| node_key(region, m, CacheNodeId::new(1)))
        .collect();
    keys.push(endpoint_key(region, &id, Kind::Primary));
    keys.push(endpoint_key(region, &id, Kind::Reader));
    let mut addrs = cp.nodes.reserve(&keys, spec.port, &used)?;
    let reader = addrs.pop();
    let primary_ep = addrs.pop();
    let (Some(primary_ep), Some(reader)) = (primary_ep, reader) else {
        return Err(ApiError::Internal(
            "endpoint reservation came back short".into(),
        ));
    };
    let created_ms = now_ms();
    let zone_offset = usize::from(adopted.is_some());
    let mut member_records = Vec::new();
    for (i, (mid, (ip, node_port))) in new_ids.iter().zip(addrs).enumerate() {
        let az = zones
            .get(i + zone_offset)
            .cloned()
            .unwrap_or_else(|| format!("{region}a"));
        member_records.push(member_record(
            region, &id, mid, &spec, &az, ip, node_port, created_ms,
        ));
        spec.members.push(mid.to_string());
    }
    if spec.primary.is_empty() {
        spec.primary = spec.members.first().cloned().unwrap_or_default();
    }
    if let Some(mut c) = adopted {
        c.replication_group_id = Some(id.clone());
        member_records.insert(0, c);
        if let Some(first) = member_records.first() {
            // The adopted node is already running: it gets the users now.
            let key = node_key(region, &first.id, CacheNodeId::new(1));
            let acl = crate::users::node_acl(cp, region, &id, &spec).await?;
            cp.nodes.set_users(&key, acl.as_ref());
        }
    } else if let Some(first) = member_records.first_mut() {
        // The primary loads the snapshot; replicas copy it through replication.
        first.spec.restore_from = restore_from;
    }
    let acl = crate::users::node_acl(cp, region, &id, &spec).await?;
    for m in &mut member_records {
        m.spec.acl = acl.clone();
    }
    let g = GroupRecord {
        region: region.to_string(),
        id: id.clone(),
        status: status::CREATING.to_string(),
        created_ms,
        spec,
    };
    cp.store.put_replication_group(&g, &member_records).await?;
    cp.store
        .put_endpoint(
            region,
            &id,
            Kind::Primary.as_str(),
            &primary_ep.0,
            primary_ep.1,
        )
        .await?;
    cp.store
        .put_endpoint(region, &id, Kind::Reader.as_str(), &reader.0, reader.1)
        .await?;
    cp.store
        .put_tags(&cp.arn(region, "replicationgroup", &id), &tags)
        .await?;
    events::record(
        cp,
        region,
        &id,
        events::REPLICATION_GROUP,
        &format!("Replication group {id} created"),
    )
    .await;
    tracing::info!(region, replication_group = %id, members = count, "replication group creating");
    let out = render_one(cp, &g).await?;
    schedule(cp, region, &id);
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn member_record(
    region: &str,
    rg: &str,
    id: &CacheClusterId,
    g: &GroupSpec,
    az: &str,
    ip: String,
    port: u16,
    created_ms: i64,
) -> ClusterRecord {
    ClusterRecord {
        region: region.to_string(),
        id: id.clone(),
        replication_group_id: Some(rg.to_string()),
        status: status::CREATING.to_string(),
        created_ms,
        spec: ClusterSpec {
            engine: g.engine,
            engine_version: g.engine_version.clone(),
            family: g.family.clone(),
            node_type: g.node_type.clone(),
            num_nodes: 1,
            port: g.port,
            preferred_availability_zone: az.to_string(),
            az_mode: "single-az".into(),
            parameter_group_name: g.parameter_group_name.clone(),
            subnet_group_name: g.subnet_group_name.clone(),
            security_group_ids: g.security_group_ids.clone(),
            cache_security_group_names: Vec::new(),
            maintenance_window: g.maintenance_window.clone(),
            snapshot_window: Some(g.snapshot_window.clone()),
            snapshot_retention_limit: g.snapshot_retention_limit,
            auto_minor_version_upgrade: g.auto_minor_version_upgrade,
            notification_topic_arn: None,
            notification_topic_status: None,
            network_type: "ipv4".into(),
            ip_discovery: "ipv4".into(),
            transit_encryption_enabled: g.transit_encryption_enabled,
            at_rest_encryption_enabled: g.at_rest_encryption_enabled,
            auth_token_enabled: g.auth_token.is_some(),
            transit_encryption_mode: g.transit_encryption_mode.clone(),
            auth_token: g.auth_token.clone(),
            auth_token_last_modified_ms: g.auth_token_last_modified_ms,
            config_version: 1,
            last_node_number: 1,
            pending: PendingModifiedValues::default(),
            pending_reboot_nodes: Vec::new(),
            restore_from: None,
            restore_more: Vec::new(),
            restore_slots: None,
            log_delivery: g.log_delivery.clone(),
            acl: None,
        },
        nodes: vec![NodeRecord {
            id: CacheNodeId::new(1),
            status: status::CREATING.to_string(),
            bind_ip: ip,
            port,
            availability_zone: az.to_string(),
            created_ms,
        }],
    }
}

pub(crate) async fn describe(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let groups = match p.str("ReplicationGroupId") {
        Some(raw) => vec![find(cp, region, raw).await?],
        None => cp.store.replication_groups(region).await?,
    };
    let (page, marker) = paginate(groups, p, |g| g.id.clone())?;
    let mut w = XmlWriter::new();
    w.open("ReplicationGroups");
    for g in &page {
        let ms = members(cp, g).await?;
        let eps = endpoints(cp, g).await?;
        w.element("ReplicationGroup", |w| write_group(cp, w, g, &ms, &eps));
    }
    w.close("ReplicationGroups");
    w.opt_text("Marker", marker.as_deref());
    Ok(w.finish())
}

struct Endpoints {
    configuration: Option<(String, u16)>,
    primary: Option<(String, u16)>,
    reader: Option<(String, u16)>,
}

async fn endpoints(cp: &Inner, g: &GroupRecord) -> Result<Endpoints, ApiError> {
    Ok(Endpoints {
        configuration: cp
            .store
            .endpoint(&g.region, &g.id, shards::CONFIGURATION)
            .await?,
        primary: cp
            .store
            .endpoint(&g.region, &g.id, Kind::Primary.as_str())
            .await?,
        reader: cp
            .store
            .endpoint(&g.region, &g.id, Kind::Reader.as_str())
            .await?,
    })
}

pub(crate) async fn render_one(cp: &Inner, g: &GroupRecord) -> Result<String, ApiError> {
    let ms = members(cp, g).await?;
    let eps = endpoints(cp, g).await?;
    let mut w = XmlWriter::new();
    w.element("ReplicationGroup", |w| write_group(cp, w, g, &ms, &eps));
    Ok(w.finish())
}

fn write_group(
    cp: &Inner,
    w: &mut XmlWriter,
    g: &GroupRecord,
    members: &[ClusterRecord],
    eps: &Endpoints,
) {
    let s = &g.spec;
    let endpoint = |w: &mut XmlWriter, tag: &str, ep: &Option<(String, u16)>| {
        if let Some((ip, port)) = ep {
            w.element(tag, |w| {
                w.text("Address", &cp.nodes.advertised(ip))
                    .int("Port", i64::from(*port));
            });
        }
    };
    // The primary first: Terraform reads the first member as the primary.
    let mut ordered: Vec<&ClusterRecord> = members.iter().collect();
    ordered.sort_by_key(|c| c.id.as_str() != s.primary);
    let node_group_status = if g.status == status::CREATING
        || g.status == status::DELETING
        || g.status == status::MODIFYING
    {
        g.status.as_str()
    } else {
        status::AVAILABLE
    };
    w.text("ReplicationGroupId", &g.id)
        .text("Description", &s.description);
    if let (Some(gid), Some(role)) = (&s.global_replication_group_id, &s.global_role) {
        w.element("GlobalReplicationGroupInfo", |w| {
            w.text("GlobalReplicationGroupId", gid)
                .text("GlobalReplicationGroupMemberRole", role);
        });
    }
    w.text("Status", &g.status);
    shards::write_pending(w, g);
    w.string_list("MemberClusters", "ClusterId", s.members.iter());
    if s.cluster_enabled() && !s.cluster_compatible() {
        shards::write_node_groups(cp, w, g, members, node_group_status);
        endpoint(w, "ConfigurationEndpoint", &eps.configuration);
    } else {
        // Cluster mode compatible: the one node group keeps its primary and reader
        // endpoints for plain clients, and shows its slots and the configuration
        // endpoint for cluster clients.
        w.list("NodeGroups", "NodeGroup", [()], |w, ()| {
            w.text("NodeGroupId", NODE_GROUP_ID)
                .text("Status", node_group_status);
            endpoint(w, "PrimaryEndpoint", &eps.primary);
            endpoint(w, "ReaderEndpoint", &eps.reader);
            if s.cluster_compatible() {
                w.text("Slots", "0-16383");
            }
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
                )
                .text(
                    "CurrentRole",
                    if c.id.as_str() == s.primary {
                        "primary"
                    } else {
                        "replica"
                    },
                );
            });
        });
        if s.cluster_compatible() {
            endpoint(w, "ConfigurationEndpoint", &eps.configuration);
        }
    }
    w.opt_text(
        "SnapshottingClusterId",
        s.snapshotting_cluster_id.as_deref(),
    )
    .text(
        "AutomaticFailover",
        if s.automatic_failover {
            "enabled"
        } else {
            "disabled"
        },
    )
    .text("MultiAZ", if s.multi_az { "enabled" } else { "disabled" })
    .int("SnapshotRetentionLimit", s.snapshot_retention_limit)
    .text("SnapshotWindow", &s.snapshot_window)
    .bool("ClusterEnabled", s.cluster_enabled())
    .text("CacheNodeType", &s.node_type)
    .bool("AuthTokenEnabled", s.auth_token.is_some())
    .opt_text(
        "AuthTokenLastModifiedDate",
        s.auth_token_last_modified_ms
            .map(crate::timestamp)
            .as_deref(),
    )
    .bool("TransitEncryptionEnabled", s.transit_encryption_enabled)
    .opt_text(
        "TransitEncryptionMode",
        s.transit_encryption_mode.as_deref(),
    )
    .bool("AtRestEncryptionEnabled", s.at_rest_encryption_enabled)
    .opt_text("KmsKeyId", s.kms_key_id.as_deref())
    .text("ARN", &cp.arn(&g.region, "replicationgroup", &g.id))
    .string_list("UserGroupIds", "member", &s.user_group_ids);
    crate::log_delivery::write(w, &s.log_delivery);
    w.text(
        "ReplicationGroupCreateTime",
        &crate::timestamp(g.created_ms),
    )
    .text("DataTiering", "disabled")
    .bool("AutoMinorVersionUpgrade", s.auto_minor_version_upgrade)
    .text("NetworkType", "ipv4")
    .text("IpDiscovery", "ipv4")
    .text(
        "ClusterMode",
        s.cluster_mode.as_deref().unwrap_or("disabled"),
    )
    .text("Engine", s.engine.as_str());
}

pub(crate) async fn modify(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("ReplicationGroupId")?;
    let _guard = cp.lock.lock().await;
    let mut g = find(cp, region, raw).await?;
    g.require_available()?;
    if let Some(mode) = p.str("ClusterMode") {
        if mode != crate::cluster_mode::current(&g) {
            return crate::cluster_mode::change(cp, g, p, mode).await;
        }
    }
    if p.has("EngineVersion") || p.has("CacheNodeType") {
        crate::cluster_mode::refuse_in_compatible(&g, "Changing the engine version or node type")?;
    }
    let before = serde_json::to_string(&g.spec)?;
    let mut ms = members(cp, &g).await?;
    let s = &mut g.spec;
    if let Some(d) = p.str("ReplicationGroupDescription") {
        s.description = d.to_string();
    }
    if let Some(af) = p.bool("AutomaticFailoverEnabled")? {
        if af && s.members.len() < 2 {
            return Err(ApiError::InvalidParameterCombination(
                "Automatic failover needs at least one replica.".into(),
            ));
        }
        s.automatic_failover = af;
        if !af {
            s.multi_az = false;
        }
    }
    if let Some(maz) = p.bool("MultiAZEnabled")? {
        if maz && !s.automatic_failover {
            return Err(ApiError::InvalidParameterCombination(
                "Multi-AZ requires automatic failover to be enabled.".into(),
            ));
        }
        s.multi_az = maz;
    }
    if let Some(t) = p.str("CacheNodeType") {
        s.node_type = catalog::node_type(t)?.name.to_string();
    }
    if let Some(v) = p.str("EngineVersion") {
        let v = catalog::resolve_version(s.engine, Some(v))?;
        s.engine_version = v.version.to_string();
        s.family = v.family.to_string();
    }
    if let Some(pg) = p.str("CacheParameterGroupName") {
        s.parameter_group_name =
            parameter_groups::for_cluster(cp, region, Some(pg), &s.family).await?;
    }
    if let Some(ids) = p.list("SecurityGroupIds", "SecurityGroupId")? {
        s.security_group_ids = ids;
    }
    if let Some(w) = p.str("PreferredMaintenanceWindow") {
        s.maintenance_window = clusters::maintenance_window(w)?;
    }
    if let Some(w) = p.str("SnapshotWindow") {
        s.snapshot_window = clusters::time_window(w)?;
    }
    if let Some(n) = p.int("SnapshotRetentionLimit")? {
        s.snapshot_retention_limit = n;
    }
    if let Some(c) = p.str("SnapshottingClusterId") {
        if !s.members.iter().any(|m| m == c) {
            return Err(ApiError::InvalidParameterValue(format!(
                "{c} is not a member of replication group {}.",
                g.id
            )));
        }
        s.snapshotting_cluster_id = Some(c.to_string());
    }
    if let Some(b) = p.bool("AutoMinorVersionUpgrade")? {
        s.auto_minor_version_upgrade = b;
    }
    crate::log_delivery::apply(&mut s.log_delivery, p)?;
    let mut restart_nodes = false;
    if let Some(enable) = p.bool("TransitEncryptionEnabled")? {
        if enable != s.transit_encryption_enabled {
            // AWS turns encryption on in two steps: preferred first, then required.
            if enable && p.str("TransitEncryptionMode") != Some("preferred") {
                return Err(ApiError::InvalidParameterCombination(
                    "To enable in-transit encryption on an existing group, set TransitEncryptionMode to preferred first.".into(),
                ));
            }
            s.transit_encryption_enabled = enable;
            s.transit_encryption_mode = enable.then(|| "preferred".to_string());
            restart_nodes = true;
        }
    }
    if let Some(mode) = p.str("TransitEncryptionMode") {
        if !s.transit_encryption_enabled {
            return Err(ApiError::InvalidParameterCombination(
                "TransitEncryptionMode requires TransitEncryptionEnabled.".into(),
            ));
        }
        if mode != "preferred" && mode != "required" {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid TransitEncryptionMode {mode}: use preferred or required."
            )));
        }
        s.transit_encryption_mode = Some(mode.to_string());
    }
    if let Some(token) = p.str("AuthToken") {
        if !s.user_group_ids.is_empty() {
            return Err(ApiError::InvalidParameterCombination(
                "An AuthToken cannot be set on a replication group with user groups.".into(),
            ));
        }
        match p.str("AuthTokenUpdateStrategy").unwrap_or("ROTATE") {
            "SET" => {
                s.auth_token = Some(security::auth_token(token, s.transit_encryption_enabled)?);
                s.previous_auth_token = None;
                s.auth_token_last_modified_ms = Some(now_ms());
            }
            "ROTATE" => {
                // Both tokens work until the next SET (or DELETE), as on AWS.
                let new = security::auth_token(token, s.transit_encryption_enabled)?;
                s.previous_auth_token = s.auth_token.take().filter(|old| *old != new);
                s.auth_token = Some(new);
                s.auth_token_last_modified_ms = Some(now_ms());
            }
            other => {
                return Err(ApiError::InvalidParameterValue(format!(
                    "Invalid AuthTokenUpdateStrategy {other} with an AuthToken: use SET or ROTATE."
                )))
            }
        }
    } else if p.str("AuthTokenUpdateStrategy") == Some("DELETE") {
        if s.transit_encryption_mode.as_deref() == Some("required") {
            return Err(ApiError::InvalidParameterCombination(
                "The AUTH token can only be deleted while TransitEncryptionMode is preferred."
                    .into(),
            ));
        }
        s.auth_token = None;
        s.previous_auth_token = None;
        s.auth_token_last_modified_ms = Some(now_ms());
    }
    let to_add = p.list("UserGroupIdsToAdd", "member")?.unwrap_or_default();
    let to_remove = p
        .list("UserGroupIdsToRemove", "member")?
        .unwrap_or_default();
    if !to_add.is_empty() || !to_remove.is_empty() {
        for r in &to_remove {
            if !s.user_group_ids.contains(r) {
                return Err(ApiError::InvalidParameterValue(format!(
                    "User group {r} is not associated with replication group {}.",
                    g.id
                )));
            }
        }
        let mut ids: Vec<String> = s
            .user_group_ids
            .iter()
            .filter(|x| !to_remove.contains(x))
            .cloned()
            .collect();
        for a in &to_add {
            if !ids.contains(a) {
                ids.push(a.clone());
            }
        }
        let fresh: Vec<String> = to_add
            .iter()
            .filter(|a| !s.user_group_ids.contains(a))
            .cloned()
            .collect();
        crate::users::check_attach(
            cp,
            region,
            &fresh,
            s.transit_encryption_enabled,
            s.auth_token.is_some(),
        )
        .await?;
        if ids.len() > 1 {
            return Err(ApiError::InvalidParameterValue(
                "A replication group can be associated with one user group.".into(),
            ));
        }
        s.user_group_ids = ids;
    }
    let mut new_primary = None;
    if s.cluster_enabled()
        && (p.has("PrimaryClusterId") || p.bool("AutomaticFailoverEnabled")? == Some(false))
    {
        return Err(ApiError::InvalidParameterCombination(
            "PrimaryClusterId and disabling automatic failover are not supported for Redis (cluster mode enabled) replication groups.".into(),
        ));
    }
    if let Some(pc) = p.str("PrimaryClusterId") {
        let pc = pc.to_ascii_lowercase();
        if !s.members.contains(&pc) {
            return Err(ApiError::InvalidParameterValue(format!(
                "{pc} is not a member of replication group {}.",
                g.id
            )));
        }
        if pc != s.primary {
            new_primary = Some(pc);
        }
    }
    if serde_json::to_string(&g.spec)? == before && new_primary.is_none() {
        // Terraform treats exactly this as success.
        return Err(ApiError::InvalidParameterCombination(
            "No modifications were requested.".into(),
        ));
    }
    // Members follow the group's recorded settings, and running nodes get the
    // security changes at once.
    let acl = crate::users::node_acl(cp, region, &g.id, &g.spec).await?;
    for c in &mut ms {
        let acl_changed = c.spec.acl != acl;
        c.spec.acl = acl.clone();
        c.spec.transit_encryption_enabled = g.spec.transit_encryption_enabled;
        c.spec.transit_encryption_mode = g.spec.transit_encryption_mode.clone();
        c.spec.auth_token = g.spec.auth_token.clone();
        c.spec.auth_token_enabled = g.spec.auth_token.is_some();
        c.spec.auth_token_last_modified_ms = g.spec.auth_token_last_modified_ms;
        let key = node_key(region, &c.id, CacheNodeId::new(1));
        if c.spec.log_delivery != g.spec.log_delivery {
            c.spec.log_delivery = g.spec.log_delivery.clone();
            cp.nodes
                .set_log_delivery(&key, c.id.as_str(), &c.spec.log_delivery);
        }
        let params = parameter_groups::effective(cp, region, &c.spec.parameter_group_name).await?;
        cp.nodes.apply_node_type(&key, &c.spec, &params);
        if restart_nodes {
            cp.nodes.stop(&key);
        } else {
            cp.nodes.set_password(&key, g.spec.auth_token.clone());
            if acl_changed {
                cp.nodes.set_users(&key, acl.as_ref());
            }
            cp.nodes.set_transit_mode(
                &key,
                g.spec.transit_encryption_mode.as_deref() == Some("preferred"),
            );
        }
        c.spec.node_type = g.spec.node_type.clone();
        c.spec.engine_version = g.spec.engine_version.clone();
        c.spec.family = g.spec.family.clone();
        c.spec.parameter_group_name = g.spec.parameter_group_name.clone();
        c.spec.security_group_ids = g.spec.security_group_ids.clone();
        c.spec.maintenance_window = g.spec.maintenance_window.clone();
        c.spec.snapshot_window = Some(g.spec.snapshot_window.clone());
        c.spec.snapshot_retention_limit = g.spec.snapshot_retention_limit;
        c.spec.auto_minor_version_upgrade = g.spec.auto_minor_version_upgrade;
    }
    g.status = status::MODIFYING.to_string();
    cp.store.put_replication_group(&g, &ms).await?;
    let out = render_one(cp, &g).await?;
    match new_primary {
        Some(target) => schedule_failover(cp, region, &g.id, Some(target), false),
        None => schedule(cp, region, &g.id),
    }
    Ok(out)
}

pub(crate) async fn delete(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("ReplicationGroupId")?;
    let retain = p.bool("RetainPrimaryCluster")?.unwrap_or(false);
    let _guard = cp.lock.lock().await;
    let mut g = find(cp, region, raw).await?;
    g.require_available()?;
    if retain && g.spec.cluster_enabled() {
        return Err(ApiError::InvalidParameterCombination(
            "RetainPrimaryCluster is not supported for Redis (cluster mode enabled) replication groups.".into(),
        ));
    }
    if let Some(gid) = &g.spec.global_replication_group_id {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "Replication group {} is a member of global replication group {gid}; remove it from the global replication group first.",
            g.id
        )));
    }
    if let Some(name) = p.str("FinalSnapshotIdentifier") {
        snapshots::final_snapshot(cp, region, name, None, Some(&g.id)).await?;
    }
    let mut ms = members(cp, &g).await?;
    g.status = status::DELETING.to_string();
    g.spec.retain_on_delete = retain.then(|| g.spec.primary.clone());
    for c in &mut ms {
        if Some(c.id.as_str()) != g.spec.retain_on_delete.as_deref() {
            c.status = status::DELETING.to_string();
        }
    }
    cp.store.put_replication_group(&g, &ms).await?;
    tracing::info!(region, replication_group = %g.id, "replication group deleting");
    let out = render_one(cp, &g).await?;
    schedule(cp, region, &g.id);
    Ok(out)
}

/// IncreaseReplicaCount (cluster mode disabled: `NewReplicaCount`, or one
/// `ReplicaConfiguration` entry for node group 0001).
pub(crate) async fn increase_replicas(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    change_replicas(cp, region, p, true).await
}

pub(crate) async fn decrease_replicas(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    change_replicas(cp, region, p, false).await
}

async fn change_replicas(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
    increase: bool,
) -> Result<String, ApiError> {
    let raw = p.required("ReplicationGroupId")?;
    if p.bool("ApplyImmediately")? != Some(true) {
        return Err(ApiError::InvalidParameterValue(
            "ApplyImmediately must be true: replica count changes are applied immediately.".into(),
        ));
    }
    {
        let _guard = cp.lock.lock().await;
        let mut g = find(cp, region, raw).await?;
        if g.spec.cluster_enabled() {
            g.require_available()?;
            crate::cluster_mode::refuse_in_compatible(&g, "Changing the replica count")?;
            let changed = shards::change_replicas(cp, &mut g, p, increase).await?;
            g.status = status::MODIFYING.to_string();
            cp.store.put_replication_group(&g, &changed).await?;
            tracing::info!(region, replication_group = %g.id, increase, "replica count changing");
            let out = render_one(cp, &g).await?;
            schedule(cp, region, &g.id);
            return Ok(out);
        }
    }
    let configured = match p.struct_list("ReplicaConfiguration", "ConfigureShard")? {
        Some(shards) => {
            let mut count = None;
            for s in shards {
                if s.str("NodeGroupId").is_some_and(|n| n != NODE_GROUP_ID) {
                    return Err(ApiError::NodeGroupNotFound(
                        s.str("NodeGroupId").unwrap_or_default().to_string(),
                    ));
                }
                count = s.int("NewReplicaCount")?;
            }
            count
        }
        None => None,
    };
    let wanted = p.int("NewReplicaCount")?.or(configured);
    let to_remove = p.list("ReplicasToRemove", "member")?.unwrap_or_default();
    let _guard = cp.lock.lock().await;
    let mut g = find(cp, region, raw).await?;
    g.require_available()?;
    let mut ms = members(cp, &g).await?;
    let replicas = ms.len() as i64 - 1;
    let min = i64::from(g.spec.automatic_failover);
    let mut changed: Vec<ClusterRecord> = Vec::new();
    if increase {
        let target = wanted.ok_or_else(|| ApiError::MissingParameter("NewReplicaCount".into()))?;
        if target <= replicas || target > (MAX_MEMBERS as i64 - 1) {
            return Err(ApiError::InvalidParameterValue(format!(
                "NewReplicaCount must be greater than the current {replicas} and at most {}.",
                MAX_MEMBERS - 1
            )));
        }
        let add = (target - replicas) as u16;
        let group = subnet_groups::find(cp, region, &g.spec.subnet_group_name).await?;
        let zones = subnet_groups::zones(&group);
        let mut new_ids = Vec::new();
        for i in 1..=add {
            let mid = member_id(&g.id, g.spec.last_member_number + i)?;
            if cp.store.cluster(region, &mid).await?.is_some() {
                return Err(ApiError::CacheClusterAlreadyExists(mid.to_string()));
            }
            new_ids.push(mid);
        }
        let keys: Vec<NodeKey> = new_ids
            .iter()
            .map(|m| node_key(region, m, CacheNodeId::new(1)))
            .collect();
        let used = cp.store.used_endpoints().await?;
        let addrs = cp.nodes.reserve(&keys, g.spec.port, &used)?;
        let created = now_ms();
        for (i, (mid, (ip, port))) in new_ids.iter().zip(addrs).enumerate() {
            let az = zones
                .get((ms.len() + i) % zones.len().max(1))
                .cloned()
                .unwrap_or_else(|| format!("{region}a"));
            let mut c = member_record(region, &g.id, mid, &g.spec, &az, ip, port, created);
            c.spec.acl = crate::users::node_acl(cp, region, &g.id, &g.spec).await?;
            changed.push(c);
            g.spec.members.push(mid.to_string());
        }
        g.spec.last_member_number += add;
    } else {
        let remove: Vec<String> = if !to_remove.is_empty() {
            to_remove.iter().map(|s| s.to_ascii_lowercase()).collect()
        } else {
            let target =
                wanted.ok_or_else(|| ApiError::MissingParameter("NewReplicaCount".into()))?;
            if target >= replicas || target < 0 {
                return Err(ApiError::InvalidParameterValue(format!(
                    "NewReplicaCount must be less than the current {replicas}."
                )));
            }
            // The newest replicas go first.
            g.spec
                .members
                .iter()
                .rev()
                .filter(|m| **m != g.spec.primary)
                .take((replicas - target) as usize)
                .cloned()
                .collect()
        };
        for r in &remove {
            if *r == g.spec.primary {
                return Err(ApiError::InvalidParameterValue(format!(
                    "{r} is the primary of replication group {}; it cannot be removed.",
                    g.id
                )));
            }
            if !g.spec.members.contains(r) {
                return Err(ApiError::InvalidParameterValue(format!(
                    "{r} is not a member of replication group {}.",
                    g.id
                )));
            }
        }
        if replicas - (remove.len() as i64) < min {
            return Err(ApiError::InvalidParameterValue(
                "A replication group with automatic failover needs at least one replica.".into(),
            ));
        }
        for c in ms
            .iter_mut()
            .filter(|c| remove.iter().any(|r| r == c.id.as_str()))
        {
            c.status = status::DELETING.to_string();
            changed.push(c.clone());
        }
    }
    g.status = status::MODIFYING.to_string();
    cp.store.put_replication_group(&g, &changed).await?;
    tracing::info!(region, replication_group = %g.id, increase, "replica count changing");
    let out = render_one(cp, &g).await?;
    schedule(cp, region, &g.id);
    Ok(out)
}

/// CreateCacheCluster with `ReplicationGroupId`: one more replica, named by the caller.
pub(crate) async fn add_member_cluster(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
    rg: &str,
) -> Result<String, ApiError> {
    let id = CacheClusterId::parse(p.required("CacheClusterId")?)?;
    let _guard = cp.lock.lock().await;
    let mut g = find(cp, region, rg).await?;
    g.require_available()?;
    if g.spec.members.len() >= MAX_MEMBERS {
        return Err(ApiError::NodeQuotaForClusterExceeded(format!(
            "A replication group can have at most {MAX_MEMBERS} cache clusters."
        )));
    }
    if cp.store.cluster(region, &id).await?.is_some() {
        return Err(ApiError::CacheClusterAlreadyExists(id.to_string()));
    }
    let az = p
        .str("PreferredAvailabilityZone")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{region}a"));
    let keys = vec![node_key(region, &id, CacheNodeId::new(1))];
    let used = cp.store.used_endpoints().await?;
    let (ip, port) = cp
        .nodes
        .reserve(&keys, g.spec.port, &used)?
        .pop()
        .ok_or_else(|| ApiError::Internal("endpoint reservation came back empty".into()))?;
    let mut c = member_record(region, &g.id, &id, &g.spec, &az, ip, port, now_ms());
    c.spec.acl = crate::users::node_acl(cp, region, &g.id, &g.spec).await?;
    g.spec.members.push(id.to_string());
    g.status = status::MODIFYING.to_string();
    cp.store
        .put_replication_group(&g, std::slice::from_ref(&c))
        .await?;
    let out = clusters::render_one(cp, &c, true);
    schedule(cp, region, &g.id);
    Ok(out)
}

/// DeleteCacheCluster on a member: replicas leave the group; the primary cannot.
pub(crate) async fn remove_member_cluster(
    cp: &Arc<Inner>,
    c: &mut ClusterRecord,
    rg: &str,
) -> Result<String, ApiError> {
    let mut g = find(cp, &c.region, rg).await?;
    if g.spec.primary == c.id.as_str() {
        return Err(ApiError::InvalidCacheClusterState(format!(
            "Cache cluster {} is serving as primary for replication group {rg} and cannot be deleted.",
            c.id
        )));
    }
    g.require_available()?;
    if g.spec.automatic_failover && g.spec.members.len() <= 2 {
        return Err(ApiError::InvalidCacheClusterState(format!(
            "Cache cluster {} is the only replica of replication group {rg}, which has automatic failover enabled.",
            c.id
        )));
    }
    c.status = status::DELETING.to_string();
    for n in &mut c.nodes {
        n.status = status::DELETING.to_string();
    }
    g.status = status::MODIFYING.to_string();
    cp.store
        .put_replication_group(&g, std::slice::from_ref(c))
        .await?;
    let out = clusters::render_one(cp, c, false);
    schedule(cp, &c.region, &g.id);
    Ok(out)
}

pub(crate) async fn test_failover(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let raw = p.required("ReplicationGroupId")?;
    let ng = p.required("NodeGroupId")?;
    let _guard = cp.lock.lock().await;
    let g = find(cp, region, raw).await?;
    if g.spec.cluster_enabled() {
        return shards::test_failover(cp, &g, ng).await;
    }
    if ng != NODE_GROUP_ID {
        return Err(ApiError::NodeGroupNotFound(ng.to_string()));
    }
    g.require_available()?;
    if !g.spec.automatic_failover || g.spec.members.len() < 2 {
        return Err(ApiError::InvalidReplicationGroupState(format!(
            "Replication group {} must have automatic failover enabled and at least one replica to test failover.",
            g.id
        )));
    }
    events::record(
        cp,
        region,
        &g.id,
        events::REPLICATION_GROUP,
        &format!("Test Failover API called for node group {ng}"),
    )
    .await;
    let out = render_one(cp, &g).await?;
    schedule_failover(cp, region, &g.id, None, true);
    Ok(out)
}

pub(crate) fn schedule(cp: &Arc<Inner>, region: &str, id: &str) {
    let cp = Arc::clone(cp);
    let region = region.to_string();
    let id = id.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(cp.config.provision_delay).await;
        let _guard = cp.lock.lock().await;
        if let Err(e) = finish_locked(&cp, &region, &id).await {
            tracing::error!(region, replication_group = %id, error = %e, "could not finish replication group operation");
        }
    });
}

/// Bring a group from an in-flight status to its end state (also at start-up):
/// members started or removed, roles set, endpoints pointing at the right nodes.
pub(crate) async fn finish_locked(cp: &Arc<Inner>, region: &str, id: &str) -> Result<(), ApiError> {
    let Some(mut g) = cp.store.replication_group(region, id).await? else {
        return Ok(());
    };
    let ms = members(cp, &g).await?;
    if g.status == status::DELETING {
        let mut gone = Vec::new();
        for c in &ms {
            if Some(c.id.as_str()) == g.spec.retain_on_delete.as_deref() {
                continue;
            }
            for n in &c.nodes {
                cp.nodes.stop(&node_key(region, &c.id, n.id));
            }
            gone.push((c.id.clone(), cp.arn(region, "cluster", c.id.as_str())));
        }
        for kind in [Kind::Primary, Kind::Reader] {
            cp.nodes.stop_proxy(&endpoint_key(region, id, kind));
        }
        cp.nodes.stop_proxy(&shards::config_key(region, id));
        if let Some(kept) = &g.spec.retain_on_delete {
            if let Some(mut c) = ms.into_iter().find(|c| c.id.as_str() == kept) {
                c.replication_group_id = None;
                cp.store.update_cluster(&c).await?;
                cp.store
                    .put_replication_group(&g, std::slice::from_ref(&c))
                    .await?;
                cp.nodes
                    .set_role(&node_key(region, &c.id, CacheNodeId::new(1)), Role::Primary);
            }
        }
        cp.store
            .delete_replication_group(region, id, &cp.arn(region, "replicationgroup", id), &gone)
            .await?;
        events::record(
            cp,
            region,
            id,
            events::REPLICATION_GROUP,
            &format!("Replication group {id} deleted"),
        )
        .await;
        tracing::info!(region, replication_group = %id, "replication group deleted");
        return Ok(());
    }
    for c in &ms {
        if c.status == "restore-failed" {
            // Its snapshot did not load: it stays so, as a cluster does on AWS,
            // instead of turning available empty.
            continue;
        }
        let t = match c.status.as_str() {
            status::DELETING => Transition::Delete,
            status::CREATING => Transition::Provision,
            _ => Transition::Modify,
        };
        clusters::finish_locked(cp, region, &c.id, t).await?;
    }
    let ms = members(cp, &g).await?;
    if ms.iter().any(|c| c.spec.restore_from.is_some()) {
        // The primary is still loading its snapshot; it finishes the group after.
        return Ok(());
    }
    g.spec
        .members
        .retain(|m| ms.iter().any(|c| c.id.as_str() == m));
    if !g.spec.members.contains(&g.spec.primary) {
        g.spec.primary = g.spec.members.first().cloned().unwrap_or_default();
    }
    if g.spec.cluster_enabled() {
        shards::retain_members(&mut g.spec, &ms);
    }
    apply_topology(cp, &g, &ms).await?;
    if g.spec.shards.iter().any(|s| s.target_slots.is_some()) {
        shards::run_resharding(cp, &mut g, &ms).await?;
        // Scale in: the shards left without slots go away.
        let removed = shards::removed_members(&g);
        if !removed.is_empty() {
            let mut gone = Vec::new();
            for c in &ms {
                if removed.iter().any(|r| r == c.id.as_str()) {
                    let mut c = c.clone();
                    c.status = status::DELETING.to_string();
                    gone.push(c);
                }
            }
            cp.store.put_replication_group(&g, &gone).await?;
            for c in &gone {
                clusters::finish_locked(cp, region, &c.id, Transition::Delete).await?;
            }
            let ms = members(cp, &g).await?;
            g.spec
                .members
                .retain(|m| ms.iter().any(|c| c.id.as_str() == m));
            shards::retain_members(&mut g.spec, &ms);
            apply_topology(cp, &g, &ms).await?;
        }
    }
    g.status = status::AVAILABLE.to_string();
    cp.store.put_replication_group(&g, &[]).await?;
    tracing::info!(region, replication_group = %id, primary = %g.spec.primary, members = g.spec.members.len(), "replication group available");
    Ok(())
}

pub(crate) fn node_addr(c: &ClusterRecord) -> Option<SocketAddr> {
    let n = c.nodes.first()?;
    Some(SocketAddr::new(n.bind_ip.parse().ok()?, n.port))
}

/// Roles on the nodes and targets on the endpoints, from the group's record.
async fn apply_topology(cp: &Inner, g: &GroupRecord, ms: &[ClusterRecord]) -> Result<(), ApiError> {
    if g.spec.cluster_enabled() {
        return shards::apply_topology(cp, g, ms, None).await;
    }
    // A global secondary's (or a migrating group's) primary is itself a replica.
    let upstream = crate::global_groups::upstream(cp, g).await?;
    let primary = ms.iter().find(|c| c.id.as_str() == g.spec.primary);
    let primary_addr = primary.and_then(node_addr);
    // Replicas talk to the primary's engine directly, not through its TLS front.
    let primary_engine = primary.and_then(|p| {
        cp.nodes
            .engine_addr(&node_key(&g.region, &p.id, CacheNodeId::new(1)))
    });
    let mut replicas = Vec::new();
    for c in ms {
        let key = node_key(&g.region, &c.id, CacheNodeId::new(1));
        if Some(c.id.as_str()) == primary.map(|p| p.id.as_str()) {
            cp.nodes
                .set_role(&key, upstream.map_or(Role::Primary, Role::ReplicaOf));
        } else if let Some(pa) = primary_engine {
            cp.nodes.set_role(&key, Role::ReplicaOf(pa));
            replicas.extend(node_addr(c));
        }
    }
    let targets = Targets {
        primary: primary_addr,
        replicas,
    };
    // One certificate per group names every member and both endpoints, so TLS
    // clients verify whichever address they reach a node by.
    let mut names: Vec<String> = ms
        .iter()
        .filter_map(|c| c.nodes.first().map(|n| n.bind_ip.clone()))
        .collect();
    for kind in [Kind::Primary, Kind::Reader] {
        if let Some((ip, _)) = cp.store.endpoint(&g.region, &g.id, kind.as_str()).await? {
            names.push(ip);
        }
    }
    for c in ms {
        cp.nodes
            .set_cert_names(&node_key(&g.region, &c.id, CacheNodeId::new(1)), &names);
    }
    for c in ms {
        cp.nodes.set_security_groups(
            &node_key(&g.region, &c.id, CacheNodeId::new(1)),
            &g.spec.security_group_ids,
        );
    }
    for kind in [Kind::Primary, Kind::Reader] {
        if let Some((ip, port)) = cp.store.endpoint(&g.region, &g.id, kind.as_str()).await? {
            cp.nodes.set_security_groups(
                &endpoint_key(&g.region, &g.id, kind),
                &g.spec.security_group_ids,
            );
            cp.nodes
                .start_proxy(
                    &endpoint_key(&g.region, &g.id, kind),
                    &ip,
                    port,
                    kind,
                    targets.clone(),
                )
                .await?;
        }
    }
    crate::global_groups::after_topology(cp, g, primary_engine).await?;
    Ok(())
}

/// Re-run [`apply_topology`] for a group (a global datastore or migration
/// changed where its primary replicates from). The caller holds the lock.
pub(crate) async fn reapply_topology(cp: &Inner, region: &str, id: &str) -> Result<(), ApiError> {
    let Some(g) = cp.store.replication_group(region, id).await? else {
        return Ok(());
    };
    let ms = members(cp, &g).await?;
    apply_topology(cp, &g, &ms).await
}

/// A member's node was stopped by fault injection. A primary failure in a group
/// with automatic failover promotes a replica, as AWS does; otherwise the group
/// stays degraded until the node comes back.
pub(crate) async fn on_node_down(cp: &Arc<Inner>, region: &str, rg: &str, member: &str) {
    let Ok(Some(g)) = cp.store.replication_group(region, rg).await else {
        return;
    };
    if g.spec.cluster_enabled() {
        return shards::on_node_down(cp, &g, member).await;
    }
    if g.spec.primary != member {
        return;
    }
    if g.spec.automatic_failover && g.spec.members.len() > 1 {
        events::record(
            cp,
            region,
            rg,
            events::REPLICATION_GROUP,
            &format!("Primary node {member} failed; failing over"),
        )
        .await;
        schedule_failover(cp, region, rg, None, false);
    } else {
        tracing::warn!(
            region,
            replication_group = rg,
            "primary down and automatic failover disabled: group degraded"
        );
    }
}

/// A member was paused or isolated (fault injection). Like ElastiCache's health checks,
/// probe the group's primary: if it stays unreachable for the detection window and the
/// group has automatic failover, a replica is promoted (the old primary is replaced and
/// comes back as a replica, as after a stop). Ends when the member is not (or no longer)
/// the primary, answers again, or is stopped (`on_node_down` handles that).
pub(crate) fn watch_primary(cp: &Arc<Inner>, region: &str, rg: &str, member: &str, key: NodeKey) {
    let cp = Arc::clone(cp);
    let (region, rg, member) = (region.to_string(), rg.to_string(), member.to_string());
    tokio::spawn(async move {
        let window = cp.config.failover_detection;
        let mut down_since: Option<std::time::Instant> = None;
        loop {
            let Ok(Some(g)) = cp.store.replication_group(&region, &rg).await else {
                return;
            };
            if g.spec.primary != member || !g.spec.automatic_failover || g.spec.members.len() < 2 {
                return;
            }
            let Some(addr) = cp.nodes.engine_addr(&key) else {
                return;
            };
            if probe(addr).await {
                if cp.nodes.fault(&key).is_none() {
                    return;
                }
                down_since = None;
            } else {
                let since = *down_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= window {
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        events::record(
            &cp,
            &region,
            &rg,
            events::REPLICATION_GROUP,
            &format!("Primary node {member} failed; failing over"),
        )
        .await;
        let _guard = cp.lock.lock().await;
        // Still the primary (a TestFailover may have run meanwhile)?
        match cp.store.replication_group(&region, &rg).await {
            Ok(Some(g)) if g.spec.primary == member => {}
            _ => return,
        }
        if let Err(e) = failover_locked(&cp, &region, &rg, None, false).await {
            tracing::error!(region, replication_group = %rg, error = %e, "failover failed");
        }
    });
}

/// Whether a Redis node answers a PING within 250 ms (any reply counts: `-NOAUTH` too).
async fn probe(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n").await.ok()?;
        let mut b = [0u8; 64];
        match s.read(&mut b).await {
            Ok(n) if n > 0 => Some(()),
            _ => None,
        }
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_millis(250), attempt).await,
        Ok(Some(()))
    )
}

/// A stopped member came back: it rejoins as a replica of the current primary.
pub(crate) async fn on_node_up(cp: &Arc<Inner>, region: &str, rg: &str) {
    let Ok(Some(g)) = cp.store.replication_group(region, rg).await else {
        return;
    };
    if let Ok(ms) = members(cp, &g).await {
        if let Err(e) = apply_topology(cp, &g, &ms).await {
            tracing::warn!(region, replication_group = rg, error = %e, "could not restore topology");
        }
    }
}

/// Promote a replica (`target`, or the one with the most data) after the
/// configured delay.
fn schedule_failover(cp: &Arc<Inner>, region: &str, id: &str, target: Option<String>, test: bool) {
    let cp = Arc::clone(cp);
    let region = region.to_string();
    let id = id.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(cp.config.provision_delay).await;
        let _guard = cp.lock.lock().await;
        if let Err(e) = failover_locked(&cp, &region, &id, target, test).await {
            tracing::error!(region, replication_group = %id, error = %e, "failover failed");
        }
    });
}

pub(crate) async fn failover_locked(
    cp: &Arc<Inner>,
    region: &str,
    id: &str,
    target: Option<String>,
    test: bool,
) -> Result<(), ApiError> {
    let Some(mut g) = cp.store.replication_group(region, id).await? else {
        return Ok(());
    };
    let ms = members(cp, &g).await?;
    let old = g.spec.primary.clone();
    let new = match target {
        Some(t) => t,
        None => ms
            .iter()
            .filter(|c| c.id.as_str() != old)
            .max_by_key(|c| {
                cp.nodes
                    .replication_offset(&node_key(region, &c.id, CacheNodeId::new(1)))
            })
            .map(|c| c.id.to_string())
            .ok_or_else(|| {
                ApiError::InvalidReplicationGroupState(format!(
                    "Replication group {id} has no replica."
                ))
            })?,
    };
    g.spec.primary = new.clone();
    // The old primary stops taking writes until the new one has all it acknowledged,
    // then restarts as a replica: its clients' connections drop, as they do on AWS.
    if let Some(c) = ms.iter().find(|c| c.id.as_str() == old) {
        let key = node_key(region, &c.id, CacheNodeId::new(1));
        if let Some(sent) = cp.nodes.hold_writes(&key) {
            let new_key = node_key(region, &CacheClusterId::parse(&new)?, CacheNodeId::new(1));
            cp.nodes.drain_to(&new_key, sent).await;
        }
        cp.nodes.stop(&key);
        events::record(
            cp,
            region,
            &old,
            events::CACHE_CLUSTER,
            "Recovering cache nodes 0001",
        )
        .await;
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
    }
    apply_topology(cp, &g, &ms).await?;
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
            &format!("Failover to replica node {new} completed"),
        )
        .await;
    }
    tracing::info!(region, replication_group = %id, from = %old, to = %new, "failover completed");
    Ok(())
}
