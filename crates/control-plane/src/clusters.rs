//! CreateCacheCluster, DescribeCacheClusters, ModifyCacheCluster,
//! DeleteCacheCluster and RebootCacheCluster, and how a cluster is rendered.

use crate::catalog::{self, Engine};
use crate::error::ApiError;
use crate::ids::{Arn, CacheClusterId, CacheNodeId};
use crate::model::{status, ClusterRecord, ClusterSpec, NodeRecord, PendingModifiedValues};
use crate::nodes::NodeKey;
use crate::{
    log_delivery, now_ms, paginate, parameter_groups, replication_groups, security, snapshots,
    subnet_groups, Inner,
};
use aws_query::{Params, XmlWriter};
use std::sync::Arc;

/// ElastiCache's limit of nodes in one memcached cluster.
const MAX_NODES_PER_CLUSTER: i64 = 40;
const DEFAULT_MAINTENANCE_WINDOW: &str = "sun:05:00-sun:06:00";
const DEFAULT_SNAPSHOT_WINDOW: &str = "06:00-07:00";

pub(crate) async fn create(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let id = CacheClusterId::parse(p.required("CacheClusterId")?)?;
    if let Some(rg) = p.str("ReplicationGroupId") {
        return replication_groups::add_member_cluster(cp, region, p, rg).await;
    }
    let engine = Engine::parse(p.str("Engine").unwrap_or("redis"))?;
    let version = catalog::resolve_version(engine, p.str("EngineVersion"))?;
    let node_type = catalog::node_type(p.str("CacheNodeType").unwrap_or("cache.t3.micro"))?;
    let num = p.int("NumCacheNodes")?.unwrap_or(1);
    if num < 1 {
        return Err(ApiError::InvalidParameterValue(
            "The parameter NumCacheNodes must be a positive integer.".into(),
        ));
    }
    if engine.is_redis_like() && num != 1 {
        return Err(ApiError::InvalidParameterValue(format!(
            "Cannot create a {} cluster with a NumCacheNodes parameter greater than 1.",
            engine.description()
        )));
    }
    if num > MAX_NODES_PER_CLUSTER {
        return Err(ApiError::NodeQuotaForClusterExceeded(format!(
            "A cluster may have at most {MAX_NODES_PER_CLUSTER} nodes."
        )));
    }
    let num = num as u16;
    let port = match p.int("Port")? {
        None => engine.default_port(),
        Some(n) => u16::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::InvalidParameterValue(format!(
                "Invalid port {n}: it must be between 1 and 65535."
            ))
        })?,
    };
    let az_mode = match p.str("AZMode") {
        None | Some("single-az") => "single-az",
        Some("cross-az") if engine == Engine::Memcached => "cross-az",
        Some("cross-az") => {
            return Err(ApiError::InvalidParameterCombination(
                "AZMode cross-az is only supported for the memcached engine.".into(),
            ))
        }
        Some(other) => {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid value for AZMode: {other}. Valid values are single-az and cross-az."
            )))
        }
    };
    let subnet_group = subnet_groups::find(
        cp,
        region,
        p.str("CacheSubnetGroupName")
            .unwrap_or(subnet_groups::DEFAULT),
    )
    .await?;
    let zones = node_zones(
        region,
        p,
        num,
        az_mode,
        &subnet_groups::zones(&subnet_group),
        0,
    )?;
    let parameter_group_name =
        parameter_groups::for_cluster(cp, region, p.str("CacheParameterGroupName"), version.family)
            .await?;
    let subnet_group_name = subnet_group.name.clone();
    let maintenance_window = match p.str("PreferredMaintenanceWindow") {
        Some(w) => maintenance_window(w)?,
        None => DEFAULT_MAINTENANCE_WINDOW.to_string(),
    };
    let snapshot_retention_limit = p.int("SnapshotRetentionLimit")?.unwrap_or(0);
    let snapshot_window = match (engine, p.str("SnapshotWindow")) {
        (Engine::Memcached, _) => None,
        (_, Some(w)) => Some(time_window(w)?),
        (_, None) => Some(DEFAULT_SNAPSHOT_WINDOW.to_string()),
    };
    let tags = p.tags("Tags")?.unwrap_or_default();
    check_tag_count(tags.len())?;
    let (transit, transit_mode) = security::transit(p)?;
    let auth_token = p
        .str("AuthToken")
        .map(|t| security::auth_token(t, transit))
        .transpose()?;

    let spec = ClusterSpec {
        engine,
        engine_version: version.version.to_string(),
        family: version.family.to_string(),
        node_type: node_type.name.to_string(),
        num_nodes: num,
        port,
        preferred_availability_zone: if az_mode == "cross-az" {
            "Multiple".to_string()
        } else {
            zones[0].clone()
        },
        az_mode: az_mode.to_string(),
        parameter_group_name,
        subnet_group_name,
        security_group_ids: p
            .list("SecurityGroupIds", "SecurityGroupId")?
            .unwrap_or_default(),
        cache_security_group_names: p
            .list("CacheSecurityGroupNames", "CacheSecurityGroupName")?
            .unwrap_or_default(),
        maintenance_window,
        snapshot_window,
        snapshot_retention_limit,
        auto_minor_version_upgrade: p.bool("AutoMinorVersionUpgrade")?.unwrap_or(true),
        notification_topic_arn: p.str("NotificationTopicArn").map(str::to_string),
        notification_topic_status: p.str("NotificationTopicArn").map(|_| "active".to_string()),
        network_type: p.str("NetworkType").unwrap_or("ipv4").to_string(),
        ip_discovery: p.str("IpDiscovery").unwrap_or("ipv4").to_string(),
        transit_encryption_enabled: transit,
        at_rest_encryption_enabled: false,
        auth_token_enabled: auth_token.is_some(),
        transit_encryption_mode: transit_mode,
        auth_token_last_modified_ms: auth_token.as_ref().map(|_| now_ms()),
        auth_token,
        config_version: 1,
        last_node_number: num,
        pending: PendingModifiedValues::default(),
        pending_reboot_nodes: Vec::new(),
        restore_from: snapshots::restore_source(cp, region, p, engine).await?,
        restore_more: Vec::new(),
        restore_slots: None,
        log_delivery: {
            let mut l = Vec::new();
            log_delivery::apply(&mut l, p)?;
            l
        },
        acl: None,
    };

    let _guard = cp.lock.lock().await;
    if cp.store.cluster(region, &id).await?.is_some() {
        return Err(ApiError::CacheClusterAlreadyExists(id.to_string()));
    }
    let node_ids: Vec<CacheNodeId> = (1..=num).map(CacheNodeId::new).collect();
    let keys: Vec<NodeKey> = node_ids.iter().map(|n| node_key(region, &id, *n)).collect();
    let used = cp.store.used_endpoints().await?;
    let endpoints = cp.nodes.reserve(&keys, port, &used)?;
    let created_ms = now_ms();
    let record = ClusterRecord {
        region: region.to_string(),
        id: id.clone(),
        replication_group_id: None,
        status: status::CREATING.to_string(),
        created_ms,
        nodes: node_ids
            .iter()
            .zip(endpoints)
            .zip(zones)
            .map(|((n, (ip, port)), az)| NodeRecord {
                id: *n,
                status: status::CREATING.to_string(),
                bind_ip: ip,
                port,
                availability_zone: az,
                created_ms,
            })
            .collect(),
        spec,
    };
    if let Err(e) = cp.store.insert_cluster(&record).await {
        for k in &keys {
            cp.nodes.stop(k);
        }
        return Err(e);
    }
    let arn = cp.arn(region, "cluster", id.as_str());
    cp.store.put_tags(&arn, &tags).await?;
    tracing::info!(region, cluster = %id, engine = engine.as_str(), nodes = num, "cache cluster creating");
    let out = render_one(cp, &record, true);
    schedule(cp, region, &id, Transition::Provision);
    Ok(out)
}

pub(crate) async fn describe(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let show_nodes = p.bool("ShowCacheNodeInfo")?.unwrap_or(false);
    let clusters = match p.str("CacheClusterId") {
        Some(raw) => {
            let id = CacheClusterId::parse(raw)
                .map_err(|_| ApiError::CacheClusterNotFound(raw.to_string()))?;
            let c = cp
                .store
                .cluster(region, &id)
                .await?
                .ok_or_else(|| ApiError::CacheClusterNotFound(raw.to_string()))?;
            vec![c]
        }
        None => {
            let mut all = cp.store.clusters(region).await?;
            if p.bool("ShowCacheClustersNotInReplicationGroups")?
                .unwrap_or(false)
            {
                all.retain(|c| c.replication_group_id.is_none());
            }
            all
        }
    };
    let (page, marker) = paginate(clusters, p, |c| c.id.as_str().to_string())?;
    let mut w = XmlWriter::new();
    w.list("CacheClusters", "CacheCluster", &page, |w, c| {
        write_cluster(cp, w, c, show_nodes)
    });
    w.opt_text("Marker", marker.as_deref());
    Ok(w.finish())
}

pub(crate) async fn modify(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("CacheClusterId")?;
    let id =
        CacheClusterId::parse(raw).map_err(|_| ApiError::CacheClusterNotFound(raw.to_string()))?;
    let apply_now = p.bool("ApplyImmediately")?.unwrap_or(false);
    let _guard = cp.lock.lock().await;
    let mut c = cp
        .store
        .cluster(region, &id)
        .await?
        .ok_or_else(|| ApiError::CacheClusterNotFound(raw.to_string()))?;
    c.require_available()?;
    let spec = &mut c.spec;
    let mut node_change: Option<(u16, Vec<CacheNodeId>)> = None;

    if let Some(n) = p.int("NumCacheNodes")? {
        if n < 1 {
            return Err(ApiError::InvalidParameterValue(
                "The parameter NumCacheNodes must be a positive integer.".into(),
            ));
        }
        if n > MAX_NODES_PER_CLUSTER {
            return Err(ApiError::NodeQuotaForClusterExceeded(format!(
                "A cluster may have at most {MAX_NODES_PER_CLUSTER} nodes."
            )));
        }
        let n = n as u16;
        if spec.engine.is_redis_like() && n != 1 {
            return Err(ApiError::InvalidParameterValue(format!(
                "The number of nodes of a {} cluster cannot be changed; use a replication group.",
                spec.engine.description()
            )));
        }
        let current = c.nodes.len() as u16;
        let to_remove = match p.list("CacheNodeIdsToRemove", "CacheNodeId")? {
            Some(ids) => ids
                .iter()
                .map(|s| CacheNodeId::parse(s))
                .collect::<Result<Vec<_>, _>>()?,
            None if n < current => {
                // Without explicit ids the highest-numbered nodes go, as Terraform
                // would name them.
                let mut ids: Vec<_> = c.nodes.iter().map(|n| n.id).collect();
                ids.sort();
                ids.split_off(n as usize)
            }
            None => Vec::new(),
        };
        if n < current && to_remove.len() != usize::from(current - n) {
            return Err(ApiError::InvalidParameterValue(format!(
                "The number of cache node ids to remove ({}) does not match the reduction in NumCacheNodes ({}).",
                to_remove.len(),
                current - n
            )));
        }
        if n >= current && !to_remove.is_empty() {
            return Err(ApiError::InvalidParameterCombination(
                "CacheNodeIdsToRemove can only be given when NumCacheNodes is reduced.".into(),
            ));
        }
        for r in &to_remove {
            if !c.nodes.iter().any(|node| node.id == *r) {
                return Err(ApiError::InvalidParameterValue(format!(
                    "Cache node {r} not found in cluster {id}."
                )));
            }
        }
        if n != current {
            if apply_now {
                node_change = Some((n, to_remove));
            } else {
                spec.pending.num_nodes = Some(n);
                spec.pending.node_ids_to_remove = to_remove.iter().map(|i| i.to_string()).collect();
            }
        }
    }
    let mut node_type_changed = false;
    if let Some(t) = p.str("CacheNodeType") {
        let t = catalog::node_type(t)?;
        if apply_now {
            node_type_changed = t.name != spec.node_type;
            spec.node_type = t.name.to_string();
        } else if t.name != spec.node_type {
            spec.pending.node_type = Some(t.name.to_string());
        }
    }
    if let Some(v) = p.str("EngineVersion") {
        let v = catalog::resolve_version(spec.engine, Some(v))?;
        if version_key(v.version) < version_key(&spec.engine_version) {
            return Err(ApiError::InvalidParameterValue(format!(
                "Cannot downgrade engine version from {} to {}.",
                spec.engine_version, v.version
            )));
        }
        if apply_now {
            spec.engine_version = v.version.to_string();
            spec.family = v.family.to_string();
        } else if v.version != spec.engine_version {
            spec.pending.engine_version = Some(v.version.to_string());
        }
    }
    if let Some(e) = p.str("Engine") {
        let e = Engine::parse(e)?;
        if e != spec.engine && !(spec.engine == Engine::Redis && e == Engine::Valkey) {
            return Err(ApiError::InvalidParameterCombination(format!(
                "Cannot change engine from {} to {}.",
                spec.engine.as_str(),
                e.as_str()
            )));
        }
    }
    let mut new_group = None;
    if let Some(g) = p.str("CacheParameterGroupName") {
        let g = parameter_groups::for_cluster(cp, region, Some(g), &spec.family).await?;
        if g != spec.parameter_group_name {
            new_group = Some(g);
        }
    }
    if let Some(ids) = p.list("SecurityGroupIds", "SecurityGroupId")? {
        // Security groups apply to the running nodes at once, as on AWS.
        for n in &c.nodes {
            cp.nodes
                .set_security_groups(&node_key(region, &c.id, n.id), &ids);
        }
        spec.security_group_ids = ids;
    }
    if let Some(names) = p.list("CacheSecurityGroupNames", "CacheSecurityGroupName")? {
        spec.cache_security_group_names = names;
    }
    if let Some(w) = p.str("PreferredMaintenanceWindow") {
        spec.maintenance_window = maintenance_window(w)?;
    }
    if let Some(w) = p.str("SnapshotWindow") {
        if spec.engine.is_redis_like() {
            spec.snapshot_window = Some(time_window(w)?);
        }
    }
    if let Some(n) = p.int("SnapshotRetentionLimit")? {
        spec.snapshot_retention_limit = n;
    }
    if let Some(b) = p.bool("AutoMinorVersionUpgrade")? {
        spec.auto_minor_version_upgrade = b;
    }
    if let Some(t) = p.str("NotificationTopicArn") {
        spec.notification_topic_arn = Some(t.to_string());
        spec.notification_topic_status = Some("active".into());
    }
    if let Some(s) = p.str("NotificationTopicStatus") {
        spec.notification_topic_status = Some(s.to_string());
    }
    let logs_before = spec.log_delivery.clone();
    log_delivery::apply(&mut spec.log_delivery, p)?;
    if spec.log_delivery != logs_before {
        // Log delivery changes apply at once (AWS requires ApplyImmediately for them).
        for n in &c.nodes {
            cp.nodes.set_log_delivery(
                &node_key(region, &c.id, n.id),
                c.id.as_str(),
                &spec.log_delivery,
            );
        }
    }
    if c.replication_group_id.is_none() && spec.engine.is_redis_like() {
        if let Some(changed) = crate::security::modify_auth_token(p, spec)? {
            // The running node follows at once: SET/DELETE change its password,
            // ROTATE gives its default user both tokens.
            for n in &c.nodes {
                let key = node_key(region, &c.id, n.id);
                cp.nodes.set_password(&key, changed.password.clone());
                cp.nodes.set_users(&key, changed.acl.as_ref());
            }
        }
    }
    if let Some(m) = p.str("AZMode") {
        if m != "single-az" && m != "cross-az" {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid value for AZMode: {m}"
            )));
        }
        if m == "cross-az" && spec.engine.is_redis_like() {
            return Err(ApiError::InvalidParameterCombination(
                "AZMode cross-az is only supported for the memcached engine.".into(),
            ));
        }
        if m == "single-az" {
            // ElastiCache: single-az is refused while nodes are in different zones.
            let removed: Vec<CacheNodeId> = match &node_change {
                Some((_, r)) => r.clone(),
                None => Vec::new(),
            };
            let mut zones: Vec<&str> = c
                .nodes
                .iter()
                .filter(|n| !removed.contains(&n.id))
                .map(|n| n.availability_zone.as_str())
                .collect();
            zones.sort_unstable();
            zones.dedup();
            if zones.len() > 1 {
                return Err(ApiError::InvalidParameterCombination(
                    "AZMode single-az cannot be specified while the cluster has nodes in different availability zones.".into(),
                ));
            }
            if let Some(z) = zones.first() {
                spec.preferred_availability_zone = z.to_string();
            }
        } else {
            spec.preferred_availability_zone = "Multiple".to_string();
        }
        spec.az_mode = m.to_string();
    }
    if let Some(g) = new_group {
        // The new group's values: immediate ones now, the rest at the next reboot.
        let before = parameter_groups::effective(cp, region, &c.spec.parameter_group_name).await?;
        let after = parameter_groups::effective(cp, region, &g).await?;
        let changed: Vec<(String, String)> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (now, later) = parameter_groups::split_by_change_type(&c.spec.family, changed);
        for n in &c.nodes {
            cp.nodes
                .set_params(&node_key(region, &id, n.id), &c.spec, &now);
        }
        if !later.is_empty() {
            c.spec.pending_reboot_nodes = c.nodes.iter().map(|n| n.id.number()).collect();
        }
        c.spec.parameter_group_name = g;
    }

    if let Some((n, remove)) = node_change {
        c.status = status::MODIFYING.to_string();
        let current = c.nodes.len() as u16;
        if n > current {
            let group = subnet_groups::find(cp, region, &c.spec.subnet_group_name).await?;
            let group_zones = subnet_groups::zones(&group);
            let zones = node_zones(
                region,
                p,
                n - current,
                &c.spec.az_mode.clone(),
                &group_zones,
                current,
            )?;
            let new_ids: Vec<CacheNodeId> = (1..=(n - current))
                .map(|i| CacheNodeId::new(c.spec.last_node_number + i))
                .collect();
            let keys: Vec<NodeKey> = new_ids.iter().map(|i| node_key(region, &id, *i)).collect();
            let used = cp.store.used_endpoints().await?;
            let endpoints = cp.nodes.reserve(&keys, c.spec.port, &used)?;
            let created_ms = now_ms();
            for ((nid, (ip, port)), az) in new_ids.iter().zip(endpoints).zip(zones) {
                c.nodes.push(NodeRecord {
                    id: *nid,
                    status: status::CREATING.to_string(),
                    bind_ip: ip,
                    port,
                    availability_zone: az,
                    created_ms,
                });
            }
            c.spec.last_node_number += n - current;
        } else {
            for node in c.nodes.iter_mut().filter(|node| remove.contains(&node.id)) {
                node.status = status::DELETING.to_string();
            }
        }
        c.spec.num_nodes = n;
        // Auto-discovery clients see a new membership version.
        c.spec.config_version += 1;
    } else {
        // Recorded changes take effect at once; the brief `modifying` is what
        // clients see on AWS too.
        c.status = status::MODIFYING.to_string();
    }
    if node_type_changed {
        let params = parameter_groups::effective(cp, region, &c.spec.parameter_group_name).await?;
        for n in &c.nodes {
            cp.nodes
                .apply_node_type(&node_key(region, &id, n.id), &c.spec, &params);
        }
    }
    cp.store.update_cluster(&c).await?;
    tracing::info!(region, cluster = %id, "cache cluster modifying");
    let out = render_one(cp, &c, true);
    schedule(cp, region, &id, Transition::Modify);
    Ok(out)
}

pub(crate) async fn delete(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("CacheClusterId")?;
    let id =
        CacheClusterId::parse(raw).map_err(|_| ApiError::CacheClusterNotFound(raw.to_string()))?;
    let _guard = cp.lock.lock().await;
    let mut c = cp
        .store
        .cluster(region, &id)
        .await?
        .ok_or_else(|| ApiError::CacheClusterNotFound(raw.to_string()))?;
    if let Some(rg) = c.replication_group_id.clone() {
        return replication_groups::remove_member_cluster(cp, &mut c, &rg).await;
    }
    if c.status != status::AVAILABLE {
        return Err(ApiError::InvalidCacheClusterState(format!(
            "Cache cluster {id} is not in a valid state to be deleted (current state: {}).",
            c.status
        )));
    }
    if let Some(name) = p.str("FinalSnapshotIdentifier") {
        if c.spec.engine == Engine::Memcached {
            return Err(ApiError::InvalidParameterCombination(
                "FinalSnapshotIdentifier is not supported for memcached clusters.".into(),
            ));
        }
        snapshots::final_snapshot(cp, region, name, Some(&c), None).await?;
    }
    c.status = status::DELETING.to_string();
    for n in &mut c.nodes {
        n.status = status::DELETING.to_string();
    }
    cp.store.update_cluster(&c).await?;
    tracing::info!(region, cluster = %id, "cache cluster deleting");
    let out = render_one(cp, &c, false);
    schedule(cp, region, &id, Transition::Delete);
    Ok(out)
}

pub(crate) async fn reboot(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("CacheClusterId")?;
    let id =
        CacheClusterId::parse(raw).map_err(|_| ApiError::CacheClusterNotFound(raw.to_string()))?;
    let wanted = p
        .list("CacheNodeIdsToReboot", "CacheNodeId")?
        .ok_or_else(|| ApiError::MissingParameter("CacheNodeIdsToReboot".into()))?;
    let wanted = wanted
        .iter()
        .map(|s| CacheNodeId::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    if wanted.is_empty() {
        return Err(ApiError::MissingParameter("CacheNodeIdsToReboot".into()));
    }
    let _guard = cp.lock.lock().await;
    let mut c = cp
        .store
        .cluster(region, &id)
        .await?
        .ok_or_else(|| ApiError::CacheClusterNotFound(raw.to_string()))?;
    c.require_available()?;
    for w in &wanted {
        if !c.nodes.iter().any(|n| n.id == *w) {
            return Err(ApiError::InvalidParameterValue(format!(
                "Cache node {w} not found in cluster {id}."
            )));
        }
    }
    c.status = status::REBOOTING.to_string();
    // Rebooted nodes start with every value of their group in force.
    c.spec
        .pending_reboot_nodes
        .retain(|n| !wanted.iter().any(|w| w.number() == *n));
    for n in c.nodes.iter_mut().filter(|n| wanted.contains(&n.id)) {
        n.status = status::NODE_REBOOTING.to_string();
        // The restart itself happens now: connections drop at once, as they do on AWS.
        cp.nodes.stop(&node_key(region, &id, n.id));
    }
    cp.store.update_cluster(&c).await?;
    tracing::info!(region, cluster = %id, nodes = wanted.len(), "cache cluster rebooting");
    let out = render_one(cp, &c, true);
    schedule(cp, region, &id, Transition::Reboot);
    Ok(out)
}

/// What a background step finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Provision,
    Modify,
    Reboot,
    Delete,
}

/// Finish an in-flight operation after the configured provisioning delay.
pub(crate) fn schedule(cp: &Arc<Inner>, region: &str, id: &CacheClusterId, t: Transition) {
    let cp = Arc::clone(cp);
    let region = region.to_string();
    let id = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(cp.config.provision_delay).await;
        if let Err(e) = finish(&cp, &region, &id, t).await {
            tracing::error!(region, cluster = %id, error = %e, transition = ?t, "could not finish cluster operation");
        }
    });
}

/// Bring a cluster from an in-flight status to its end state. Also run at
/// start-up for whatever was in flight when the process stopped.
pub(crate) async fn finish(
    cp: &Arc<Inner>,
    region: &str,
    id: &CacheClusterId,
    t: Transition,
) -> Result<(), ApiError> {
    let _guard = cp.lock.lock().await;
    finish_locked(cp, region, id, t).await
}

/// [`finish`] for a caller that already holds the control-plane lock.
pub(crate) async fn finish_locked(
    cp: &Arc<Inner>,
    region: &str,
    id: &CacheClusterId,
    t: Transition,
) -> Result<(), ApiError> {
    let Some(mut c) = cp.store.cluster(region, id).await? else {
        return Ok(());
    };
    if t == Transition::Delete || c.status == status::DELETING {
        for n in &c.nodes {
            cp.nodes.stop(&node_key(region, id, n.id));
        }
        let arn = cp.arn(region, "cluster", id.as_str());
        cp.store.delete_cluster(region, id, &arn).await?;
        tracing::info!(region, cluster = %id, "cache cluster deleted");
        return Ok(());
    }
    if c.spec.restore_from.is_some()
        && !c.nodes.is_empty()
        && c.nodes.iter().all(|n| {
            n.status == status::AVAILABLE && cp.nodes.is_running(&node_key(region, id, n.id))
        })
    {
        // Started and loading its snapshot in this process (several shards of a
        // group restore at once): the load finishes the cluster.
        return Ok(());
    }
    // Removed nodes go first so their endpoints are free.
    for n in c.nodes.iter().filter(|n| n.status == status::DELETING) {
        cp.nodes.stop(&node_key(region, id, n.id));
    }
    c.nodes.retain(|n| n.status != status::DELETING);
    let mut failed = None;
    let params = parameter_groups::effective(cp, region, &c.spec.parameter_group_name).await?;
    for n in &mut c.nodes {
        let key = node_key(region, id, n.id);
        if n.status != status::AVAILABLE || !cp.nodes.is_running(&key) {
            if let Err(e) = cp
                .nodes
                .start(&key, &n.bind_ip, n.port, &c.spec, &params)
                .await
            {
                failed = Some(e);
                continue;
            }
        }
        n.status = status::AVAILABLE.to_string();
    }

    if c.spec.engine == Engine::Memcached {
        publish_discovery(cp, &c);
    }
    if let Some(file) = c.spec.restore_from.clone() {
        // Still `creating` until the data is in.
        cp.store.update_cluster(&c).await?;
        snapshots::spawn_restore(cp, region, id, file);
        return match failed {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    c.status = status::AVAILABLE.to_string();
    cp.store.update_cluster(&c).await?;
    tracing::info!(region, cluster = %id, "cache cluster available");
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn publish_discovery(cp: &Inner, c: &ClusterRecord) {
    let keys: Vec<NodeKey> = c
        .nodes
        .iter()
        .map(|n| node_key(&c.region, &c.id, n.id))
        .collect();
    let nodes = c
        .nodes
        .iter()
        .map(|n| memcached_engine::DiscoveryNode {
            host: cp.nodes.advertised(&n.bind_ip),
            ip: n.bind_ip.clone(),
            port: n.port,
        })
        .collect();
    cp.nodes
        .publish_discovery(&keys, c.spec.config_version, nodes);
}

pub(crate) fn node_key(region: &str, id: &CacheClusterId, node: CacheNodeId) -> NodeKey {
    NodeKey {
        region: region.to_string(),
        cluster: id.as_str().to_string(),
        node: node.number(),
    }
}

pub(crate) fn render_one(cp: &Inner, c: &ClusterRecord, show_nodes: bool) -> String {
    let mut w = XmlWriter::new();
    w.element("CacheCluster", |w| write_cluster(cp, w, c, show_nodes));
    w.finish()
}

/// The CacheCluster shape, with every field the SDKs and Terraform read.
fn write_cluster(cp: &Inner, w: &mut XmlWriter, c: &ClusterRecord, show_nodes: bool) {
    let s = &c.spec;
    w.text("CacheClusterId", c.id.as_str());
    if s.engine == Engine::Memcached {
        if let Some(first) = c.nodes.first() {
            // AWS's configuration endpoint is a DNS name that resolves to a node;
            // here it is that node's address.
            w.element("ConfigurationEndpoint", |w| {
                w.text("Address", &cp.nodes.advertised(&first.bind_ip))
                    .int("Port", i64::from(first.port));
            });
        }
    }
    w.text(
        "ClientDownloadLandingPage",
        "https://console.aws.amazon.com/elasticache/home#client-download:",
    )
    .text("CacheNodeType", &s.node_type)
    .text("Engine", s.engine.as_str())
    .text("EngineVersion", &s.engine_version)
    .text("CacheClusterStatus", &c.status)
    .int("NumCacheNodes", i64::from(s.num_nodes))
    .text("PreferredAvailabilityZone", &s.preferred_availability_zone)
    .text("CacheClusterCreateTime", &crate::timestamp(c.created_ms))
    .text("PreferredMaintenanceWindow", &s.maintenance_window);
    w.element("PendingModifiedValues", |w| {
        let pm = &s.pending;
        if let Some(n) = pm.num_nodes {
            w.int("NumCacheNodes", i64::from(n));
        }
        if !pm.node_ids_to_remove.is_empty() {
            w.string_list(
                "CacheNodeIdsToRemove",
                "CacheNodeId",
                &pm.node_ids_to_remove,
            );
        }
        w.opt_text("EngineVersion", pm.engine_version.as_deref())
            .opt_text("CacheNodeType", pm.node_type.as_deref());
    });
    if let Some(topic) = &s.notification_topic_arn {
        w.element("NotificationConfiguration", |w| {
            w.text("TopicArn", topic)
                .opt_text("TopicStatus", s.notification_topic_status.as_deref());
        });
    }
    w.list(
        "CacheSecurityGroups",
        "CacheSecurityGroup",
        &s.cache_security_group_names,
        |w, name| {
            w.text("CacheSecurityGroupName", name)
                .text("Status", "active");
        },
    );
    let pending: Vec<String> = s
        .pending_reboot_nodes
        .iter()
        .map(|n| CacheNodeId::new(*n).to_string())
        .collect();
    w.element("CacheParameterGroup", |w| {
        w.text("CacheParameterGroupName", &s.parameter_group_name)
            .text(
                "ParameterApplyStatus",
                if pending.is_empty() {
                    "in-sync"
                } else {
                    "pending-reboot"
                },
            )
            .string_list("CacheNodeIdsToReboot", "CacheNodeId", &pending);
    });
    w.text("CacheSubnetGroupName", &s.subnet_group_name);
    if show_nodes {
        w.list("CacheNodes", "CacheNode", &c.nodes, |w, n| {
            w.text("CacheNodeId", &n.id.to_string())
                .text("CacheNodeStatus", &n.status)
                .text("CacheNodeCreateTime", &crate::timestamp(n.created_ms))
                .element("Endpoint", |w| {
                    w.text("Address", &cp.nodes.advertised(&n.bind_ip))
                        .int("Port", i64::from(n.port));
                })
                .text(
                    "ParameterGroupStatus",
                    if s.pending_reboot_nodes.contains(&n.id.number()) {
                        "pending-reboot"
                    } else {
                        "in-sync"
                    },
                )
                .text("CustomerAvailabilityZone", &n.availability_zone);
        });
    }
    w.bool("AutoMinorVersionUpgrade", s.auto_minor_version_upgrade);
    w.list(
        "SecurityGroups",
        "member",
        &s.security_group_ids,
        |w, sg| {
            w.text("SecurityGroupId", sg).text("Status", "active");
        },
    );
    w.opt_text("ReplicationGroupId", c.replication_group_id.as_deref());
    w.int("SnapshotRetentionLimit", s.snapshot_retention_limit);
    w.opt_text("SnapshotWindow", s.snapshot_window.as_deref());
    w.bool("AuthTokenEnabled", s.auth_token_enabled);
    if let Some(ms) = s.auth_token_last_modified_ms {
        w.text("AuthTokenLastModifiedDate", &crate::timestamp(ms));
    }
    w.bool("TransitEncryptionEnabled", s.transit_encryption_enabled)
        .bool("AtRestEncryptionEnabled", s.at_rest_encryption_enabled)
        .text("ARN", &cp.arn(&c.region, "cluster", c.id.as_str()))
        .bool("ReplicationGroupLogDeliveryEnabled", false);
    log_delivery::write(w, &s.log_delivery);
    w.text("NetworkType", &s.network_type)
        .text("IpDiscovery", &s.ip_discovery)
        .opt_text(
            "TransitEncryptionMode",
            s.transit_encryption_mode.as_deref(),
        );
}

/// Availability zones for `count` new nodes. Without explicit zones, single-AZ
/// clusters put every node in the subnet group's first zone and cross-AZ clusters
/// spread them round-robin over its zones (`offset` = nodes already placed).
pub(crate) fn node_zones(
    region: &str,
    p: &Params,
    count: u16,
    az_mode: &str,
    group_zones: &[String],
    offset: u16,
) -> Result<Vec<String>, ApiError> {
    let fallback = [format!("{region}a")];
    let group_zones = if group_zones.is_empty() {
        &fallback[..]
    } else {
        group_zones
    };
    let explicit = p
        .list("PreferredAvailabilityZones", "PreferredAvailabilityZone")?
        .or(p.list("NewAvailabilityZones", "PreferredAvailabilityZone")?)
        .filter(|l| !l.is_empty());
    let zones = match (explicit, p.str("PreferredAvailabilityZone")) {
        (Some(list), _) => {
            if list.len() != usize::from(count) {
                return Err(ApiError::InvalidParameterValue(format!(
                    "The number of PreferredAvailabilityZones ({}) must match the number of new nodes ({count}).",
                    list.len()
                )));
            }
            list
        }
        (None, Some(az)) => vec![az.to_string(); usize::from(count)],
        (None, None) if az_mode == "cross-az" => (0..count)
            .map(|i| group_zones[usize::from(offset + i) % group_zones.len()].clone())
            .collect(),
        (None, None) => vec![group_zones[0].clone(); usize::from(count)],
    };
    for z in &zones {
        let valid = z
            .strip_prefix(region)
            .is_some_and(|rest| rest.len() == 1 && rest.chars().all(|c| c.is_ascii_lowercase()));
        if !valid {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid availability zone {z} for region {region}."
            )));
        }
    }
    Ok(zones)
}

pub(crate) fn check_tag_count(n: usize) -> Result<(), ApiError> {
    if n > crate::tags::MAX_TAGS {
        return Err(ApiError::TagQuotaPerResourceExceeded(format!(
            "A resource can have at most {} tags.",
            crate::tags::MAX_TAGS
        )));
    }
    Ok(())
}

/// `ddd:hh24:mi-ddd:hh24:mi`, returned lower-case as AWS does.
pub(crate) fn maintenance_window(raw: &str) -> Result<String, ApiError> {
    let w = raw.to_ascii_lowercase();
    let ok = w
        .split_once('-')
        .is_some_and(|(a, b)| day_time(a) && day_time(b));
    if !ok {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid maintenance window {raw}: expected the format ddd:hh24:mi-ddd:hh24:mi."
        )));
    }
    Ok(w)
}

fn day_time(s: &str) -> bool {
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    s.split_once(':')
        .is_some_and(|(d, t)| DAYS.contains(&d) && hh_mm(t))
}

fn hh_mm(t: &str) -> bool {
    t.split_once(':').is_some_and(|(h, m)| {
        h.len() == 2
            && m.len() == 2
            && h.parse::<u8>().is_ok_and(|h| h < 24)
            && m.parse::<u8>().is_ok_and(|m| m < 60)
    })
}

/// `hh24:mi-hh24:mi`
pub(crate) fn time_window(raw: &str) -> Result<String, ApiError> {
    if raw
        .split_once('-')
        .is_some_and(|(a, b)| hh_mm(a) && hh_mm(b))
    {
        Ok(raw.to_string())
    } else {
        Err(ApiError::InvalidParameterValue(format!(
            "Invalid snapshot window {raw}: expected the format hh24:mi-hh24:mi."
        )))
    }
}

fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Used by tagging to check that an ARN names an existing cluster.
pub(crate) async fn exists(cp: &Inner, arn: &Arn) -> Result<bool, ApiError> {
    let Ok(id) = CacheClusterId::parse(&arn.name) else {
        return Ok(false);
    };
    Ok(cp.store.cluster(&arn.region, &id).await?.is_some())
}

/// Ids of the clusters of a region that use a parameter group.
pub(crate) async fn using_parameter_group(
    cp: &Inner,
    region: &str,
    group: &str,
) -> Result<Vec<String>, ApiError> {
    Ok(cp
        .store
        .clusters(region)
        .await?
        .into_iter()
        .filter(|c| c.spec.parameter_group_name == group)
        .map(|c| c.id.to_string())
        .collect())
}

/// A parameter group changed: push `immediate` values to the running nodes of
/// every cluster using it, and mark them pending a reboot if `needs_reboot`.
/// The caller holds the control-plane lock.
pub(crate) async fn apply_parameters(
    cp: &Inner,
    region: &str,
    group: &str,
    immediate: &[(String, String)],
    needs_reboot: bool,
) -> Result<(), ApiError> {
    for mut c in cp.store.clusters(region).await? {
        if c.spec.parameter_group_name != group || c.status == status::DELETING {
            continue;
        }
        for n in &c.nodes {
            cp.nodes
                .set_params(&node_key(region, &c.id, n.id), &c.spec, immediate);
        }
        if needs_reboot {
            c.spec.pending_reboot_nodes = c.nodes.iter().map(|n| n.id.number()).collect();
            cp.store.update_cluster(&c).await?;
        }
        tracing::info!(region, cluster = %c.id, parameter_group = group, applied = immediate.len(), pending_reboot = needs_reboot, "parameters applied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(
            maintenance_window("SUN:05:00-SUN:06:00").unwrap(),
            "sun:05:00-sun:06:00"
        );
        assert!(maintenance_window("sun:25:00-sun:06:00").is_err());
        assert!(maintenance_window("garbage").is_err());
        assert!(time_window("05:00-06:00").is_ok());
        assert!(time_window("5-6").is_err());
    }

    #[test]
    fn zones() {
        let p = Params::from_pairs([("PreferredAvailabilityZone", "us-east-1b")]);
        assert_eq!(
            node_zones("us-east-1", &p, 2, "single-az", &[], 0).unwrap(),
            vec!["us-east-1b"; 2]
        );
        let p = Params::from_pairs([("PreferredAvailabilityZone", "eu-west-1a")]);
        assert!(node_zones("us-east-1", &p, 1, "single-az", &[], 0).is_err());
        let p = Params::default();
        let abc: Vec<String> = ["us-east-1a", "us-east-1b", "us-east-1c"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            node_zones("us-east-1", &p, 4, "cross-az", &abc, 0).unwrap(),
            vec!["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a"]
        );
        assert_eq!(
            node_zones("us-east-1", &p, 2, "cross-az", &abc, 2).unwrap(),
            vec!["us-east-1c", "us-east-1a"]
        );
        assert_eq!(
            node_zones("us-east-1", &p, 2, "single-az", &abc[1..], 0).unwrap(),
            vec!["us-east-1b"; 2]
        );
    }
}
