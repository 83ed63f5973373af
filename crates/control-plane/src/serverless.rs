//! Serverless caches (Create/Describe/Modify/DeleteServerlessCache) and their
//! snapshots (Create/Describe/Copy/Delete/ExportServerlessCacheSnapshot).
//!
//! A serverless cache is one live engine node behind a TLS front (in-transit
//! encryption is always on, as on AWS). Redis/Valkey caches also get a reader
//! endpoint: the same address on the next port (6380), forwarding to the node —
//! on AWS reads there go to replicas; here there is one copy of the data, so it
//! answers the same data. `CacheUsageLimits.DataStorage.Maximum` is the node's
//! memory limit: Redis/Valkey evict keys with a TTL (volatile-lru) and then
//! refuse writes with the `OOM` error, as AWS documents for serverless caches.
//! `ECPUPerSecond.Maximum` is enforced: a token bucket charges each command
//! max(1, KB moved) ECPUs and delays commands while the cache is over its rate.

use crate::catalog::{self, Engine};
use crate::error::ApiError;
use crate::ids::Arn;
use crate::nodes::NodeKey;
use crate::proxy::{Kind, Targets};
use crate::store::ResourceRow;
use crate::{events, now_ms, rdb_io, snapshots, Inner};
use aws_query::{Params, XmlWriter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) const KIND: &str = "serverless-cache";
pub(crate) const SNAPSHOT_KIND: &str = "serverless-snapshot";
const ARN_KIND: &str = "serverlesscache";
const SNAPSHOT_ARN_KIND: &str = "serverlesscachesnapshot";
/// ElastiCache's default quota of serverless caches per region.
const MAX_CACHES: usize = 40;
const MAX_SNAPSHOTS: usize = 1000;
const CREATING: &str = "creating";
const AVAILABLE: &str = "available";
const MODIFYING: &str = "modifying";
const DELETING: &str = "deleting";
const CREATE_FAILED: &str = "create-failed";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CacheSpec {
    pub description: String,
    pub engine: Engine,
    pub major_engine_version: String,
    pub full_engine_version: String,
    /// The engine's own x.y.z version (what INFO reports).
    pub engine_version: String,
    pub data_storage_max: Option<i64>,
    pub data_storage_min: Option<i64>,
    pub ecpu_max: Option<i64>,
    pub ecpu_min: Option<i64>,
    pub kms_key_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub subnet_ids: Vec<String>,
    pub user_group_id: Option<String>,
    pub snapshot_retention_limit: i64,
    pub daily_snapshot_time: String,
    pub network_type: String,
    pub bind_ip: String,
    pub port: u16,
    pub reader_port: Option<u16>,
    /// Data to load once the node has started (SnapshotArnsToRestore).
    #[serde(default)]
    pub restore_from: Option<PathBuf>,
    /// The other shards' files of a cluster-mode-enabled group's snapshot.
    #[serde(default)]
    pub restore_more: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SnapshotSpec {
    pub serverless_cache_name: String,
    pub engine: Engine,
    pub major_engine_version: String,
    pub kms_key_id: Option<String>,
    /// `manual` or `automated`.
    pub snapshot_type: String,
    pub bytes: u64,
    pub file: String,
    pub expiry_ms: Option<i64>,
}

struct Cache {
    row: ResourceRow,
    spec: CacheSpec,
}

struct Snap {
    row: ResourceRow,
    spec: SnapshotSpec,
}

fn owner(name: &str) -> String {
    format!("serverless:{name}")
}

fn node_key(region: &str, name: &str) -> NodeKey {
    NodeKey {
        region: region.to_string(),
        cluster: owner(name),
        node: 1,
    }
}

fn reader_key(region: &str, name: &str) -> NodeKey {
    NodeKey {
        region: region.to_string(),
        cluster: owner(name),
        node: 2,
    }
}

fn validate_name(raw: &str, what: &str) -> Result<String, ApiError> {
    let name = raw.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !ok {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid {what} {raw}: it must begin with a letter, contain 1-40 letters, digits or hyphens, and not end with a hyphen or contain two consecutive hyphens."
        )));
    }
    Ok(name)
}

async fn find(cp: &Inner, region: &str, raw: &str) -> Result<Cache, ApiError> {
    let name = raw.to_ascii_lowercase();
    let row = cp
        .store
        .resource(region, KIND, &name)
        .await?
        .ok_or_else(|| ApiError::ServerlessCacheNotFound(raw.to_string()))?;
    let spec = serde_json::from_str(&row.spec)?;
    Ok(Cache { row, spec })
}

async fn save(cp: &Inner, c: &Cache) -> Result<(), ApiError> {
    let mut row = c.row.clone();
    row.spec = serde_json::to_string(&c.spec)?;
    cp.store.put_resource(&row).await
}

async fn find_snapshot(cp: &Inner, region: &str, raw: &str) -> Result<Snap, ApiError> {
    let row = cp
        .store
        .resource(region, SNAPSHOT_KIND, raw)
        .await?
        .ok_or_else(|| ApiError::ServerlessCacheSnapshotNotFound(raw.to_string()))?;
    let spec = serde_json::from_str(&row.spec)?;
    Ok(Snap { row, spec })
}

async fn save_snapshot(cp: &Inner, s: &Snap) -> Result<(), ApiError> {
    let mut row = s.row.clone();
    row.spec = serde_json::to_string(&s.spec)?;
    cp.store.put_resource(&row).await
}

/// The engine versions serverless caches offer: major → (full version reported,
/// engine version run).
fn versions(engine: Engine, major: Option<&str>) -> Result<(String, String, String), ApiError> {
    let (default, allowed): (&str, &[&str]) = match engine {
        Engine::Redis => ("7", &["7"]),
        Engine::Valkey => ("8", &["7", "8"]),
        Engine::Memcached => ("1.6", &["1.6"]),
    };
    let major = major.unwrap_or(default);
    if !allowed.contains(&major) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Major engine version {major} is not supported for serverless {} caches. Supported: {}.",
            engine.as_str(),
            allowed.join(", ")
        )));
    }
    let v = catalog::resolve_version(engine, Some(major))?;
    let full = if engine == Engine::Memcached {
        v.version.to_string()
    } else {
        v.version.split('.').take(2).collect::<Vec<_>>().join(".")
    };
    Ok((major.to_string(), full, v.version.to_string()))
}

/// `CacheUsageLimits` as sent; `None` for absent parts.
type Limits = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);

fn usage_limits(p: &Params) -> Result<Option<Limits>, ApiError> {
    if !p.has("CacheUsageLimits") {
        return Ok(None);
    }
    let l = p.nested("CacheUsageLimits");
    let ds = l.nested("DataStorage");
    let (mut ds_max, mut ds_min) = (None, None);
    if !ds.is_empty() {
        match ds.str("Unit") {
            Some("GB") => {}
            Some(u) => {
                return Err(ApiError::InvalidParameterValue(format!(
                    "Invalid DataStorage unit {u}: the only unit is GB."
                )))
            }
            None => {
                return Err(ApiError::MissingParameter(
                    "CacheUsageLimits.DataStorage.Unit".into(),
                ))
            }
        }
        ds_max = ds.int("Maximum")?;
        ds_min = ds.int("Minimum")?;
        for v in [ds_max, ds_min].into_iter().flatten() {
            if !(1..=5000).contains(&v) {
                return Err(ApiError::InvalidParameterValue(format!(
                    "DataStorage limits must be between 1 and 5000 GB, got {v}."
                )));
            }
        }
        if let (Some(max), Some(min)) = (ds_max, ds_min) {
            if min > max {
                return Err(ApiError::InvalidParameterCombination(
                    "DataStorage Minimum cannot be greater than Maximum.".into(),
                ));
            }
        }
    }
    let ecpu = l.nested("ECPUPerSecond");
    let ecpu_max = ecpu.int("Maximum")?;
    let ecpu_min = ecpu.int("Minimum")?;
    for v in [ecpu_max, ecpu_min].into_iter().flatten() {
        if !(1000..=15_000_000).contains(&v) {
            return Err(ApiError::InvalidParameterValue(format!(
                "ECPUPerSecond limits must be between 1000 and 15000000, got {v}."
            )));
        }
    }
    if let (Some(max), Some(min)) = (ecpu_max, ecpu_min) {
        if min > max {
            return Err(ApiError::InvalidParameterCombination(
                "ECPUPerSecond Minimum cannot be greater than Maximum.".into(),
            ));
        }
    }
    Ok(Some((ds_max, ds_min, ecpu_max, ecpu_min)))
}

fn daily_time(raw: &str) -> Result<String, ApiError> {
    let ok = raw.len() == 5
        && raw.as_bytes()[2] == b':'
        && raw[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && raw[3..].parse::<u8>().is_ok_and(|m| m < 60);
    if !ok {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid DailySnapshotTime {raw}: expected HH:MM (UTC)."
        )));
    }
    Ok(raw.to_string())
}

fn retention(p: &Params) -> Result<Option<i64>, ApiError> {
    match p.int("SnapshotRetentionLimit")? {
        Some(n) if !(0..=35).contains(&n) => Err(ApiError::InvalidParameterValue(format!(
            "SnapshotRetentionLimit must be between 0 and 35, got {n}."
        ))),
        other => Ok(other),
    }
}

fn ids(
    p: &Params,
    name: &str,
    member: &str,
    prefix: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = p.list(name, member)? else {
        return Ok(None);
    };
    for id in &list {
        if !id.starts_with(prefix) {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid {member} {id}."
            )));
        }
    }
    Ok(Some(list))
}

/// Where a restore's data comes from: a serverless snapshot's ARN, a node-based
/// snapshot's ARN (every shard's file of a cluster-mode-enabled group's), or an
/// RDB file (as `SnapshotArns` of clusters accepts).
async fn restore_source(
    cp: &Inner,
    region: &str,
    arns: &[String],
    engine: Engine,
) -> Result<Vec<PathBuf>, ApiError> {
    let Some(arn) = arns.first() else {
        return Ok(Vec::new());
    };
    if engine == Engine::Memcached {
        return Err(ApiError::InvalidParameterCombination(
            "Restoring from a snapshot is not supported for memcached serverless caches.".into(),
        ));
    }
    if arns.len() > 1 {
        return Err(ApiError::InvalidParameterValue(
            "Exactly one snapshot can be restored into a serverless cache here.".into(),
        ));
    }
    if let Ok(a) = Arn::parse(arn) {
        match a.kind.as_str() {
            SNAPSHOT_ARN_KIND => {
                let s = find_snapshot(cp, &a.region, &a.name).await?;
                if s.row.status != AVAILABLE {
                    return Err(ApiError::InvalidServerlessCacheSnapshotState(format!(
                        "Serverless cache snapshot {} is not available.",
                        a.name
                    )));
                }
                return Ok(vec![snapshot_path(cp, &a.region, &s.spec.file)]);
            }
            "snapshot" => {
                let p = Params::from_pairs([("SnapshotName", a.name.as_str())]);
                let r = snapshots::restore_files(cp, &a.region, &p, engine).await?;
                return Ok(r.map(|r| r.files).unwrap_or_default());
            }
            _ => {}
        }
    }
    let p = Params::from_pairs([("SnapshotArns.SnapshotArn.1", arn.as_str())]);
    let r = snapshots::restore_files(cp, region, &p, engine).await?;
    Ok(r.map(|r| r.files).unwrap_or_default())
}

fn snapshot_path(cp: &Inner, region: &str, file: &str) -> PathBuf {
    snapshots::dir(cp, region).join(file)
}

pub(crate) async fn create(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("ServerlessCacheName")?;
    let name = validate_name(raw, "ServerlessCacheName")?;
    let engine = Engine::parse(p.required("Engine")?)?;
    let (major, full, engine_version) = versions(engine, p.str("MajorEngineVersion"))?;
    let limits = usage_limits(p)?.unwrap_or_default();
    let network_type = p.str("NetworkType").unwrap_or("ipv4");
    if !matches!(network_type, "ipv4" | "ipv6" | "dual_stack") {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid NetworkType {network_type}."
        )));
    }
    if engine == Engine::Memcached
        && (p.has("SnapshotRetentionLimit") || p.has("DailySnapshotTime"))
    {
        return Err(ApiError::InvalidParameterCombination(
            "Snapshots are not supported for memcached serverless caches.".into(),
        ));
    }
    let user_group_id = p.str("UserGroupId").map(str::to_string);
    if user_group_id.is_some() && engine == Engine::Memcached {
        return Err(ApiError::InvalidParameterCombination(
            "UserGroupId is not supported for memcached serverless caches.".into(),
        ));
    }
    if let Some(ug) = &user_group_id {
        // Serverless caches always encrypt in transit and have no AUTH token.
        crate::users::check_attach(cp, region, std::slice::from_ref(ug), true, false).await?;
    }
    let tags = p.tags("Tags")?.unwrap_or_default();
    crate::clusters::check_tag_count(tags.len())?;
    let arns = p
        .list("SnapshotArnsToRestore", "SnapshotArn")?
        .unwrap_or_default();
    let mut restore_files = restore_source(cp, region, &arns, engine).await?.into_iter();
    let restore_from = restore_files.next();
    let restore_more: Vec<PathBuf> = restore_files.collect();
    let snapshot_retention_limit = retention(p)?.unwrap_or(0);
    let daily_snapshot_time = match p.str("DailySnapshotTime") {
        Some(t) => daily_time(t)?,
        None => "04:00".to_string(),
    };
    let security_group_ids =
        ids(p, "SecurityGroupIds", "SecurityGroupId", "sg-")?.unwrap_or_default();
    let subnet_ids = ids(p, "SubnetIds", "SubnetId", "subnet-")?.unwrap_or_default();

    let _guard = cp.lock.lock().await;
    if cp.store.resource(region, KIND, &name).await?.is_some() {
        return Err(ApiError::ServerlessCacheAlreadyExists(name));
    }
    if cp.store.resources(Some(region), KIND).await?.len() >= MAX_CACHES {
        return Err(ApiError::ServerlessCacheQuotaForCustomerExceeded(format!(
            "A region can have at most {MAX_CACHES} serverless caches."
        )));
    }
    let key = node_key(region, &name);
    let used = cp.store.used_endpoints().await?;
    let (ip, port) = cp
        .nodes
        .reserve(std::slice::from_ref(&key), engine.default_port(), &used)?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("no endpoint reserved".into()))?;
    let mut used = used;
    used.push((ip.clone(), port));
    let reader = if engine.is_redis_like() {
        match cp
            .nodes
            .reserve_beside(&reader_key(region, &name), &ip, port + 1, &used)
        {
            Ok(r) => Some(r),
            Err(e) => {
                cp.nodes.stop(&key);
                return Err(e);
            }
        }
    } else {
        None
    };
    let spec = CacheSpec {
        description: p.str("Description").unwrap_or("").to_string(),
        engine,
        major_engine_version: major,
        full_engine_version: full,
        engine_version,
        data_storage_max: limits.0,
        data_storage_min: limits.1,
        ecpu_max: limits.2,
        ecpu_min: limits.3,
        kms_key_id: p.str("KmsKeyId").map(str::to_string),
        security_group_ids,
        subnet_ids,
        user_group_id,
        snapshot_retention_limit,
        daily_snapshot_time,
        network_type: network_type.to_string(),
        bind_ip: ip.clone(),
        port,
        reader_port: reader.as_ref().map(|r| r.1),
        restore_from,
        restore_more,
    };
    let c = Cache {
        row: ResourceRow {
            region: region.to_string(),
            kind: KIND.to_string(),
            name: name.clone(),
            status: CREATING.to_string(),
            created_ms: now_ms(),
            spec: String::new(),
        },
        spec,
    };
    let stored = async {
        save(cp, &c).await?;
        cp.store
            .put_endpoint(region, &owner(&name), "node", &ip, port)
            .await?;
        if let Some((rip, rport)) = &reader {
            cp.store
                .put_endpoint(region, &owner(&name), "reader", rip, *rport)
                .await?;
        }
        cp.store
            .put_tags(&cp.arn(region, ARN_KIND, &name), &tags)
            .await
    }
    .await;
    if let Err(e) = stored {
        cp.nodes.stop(&key);
        cp.nodes.stop(&reader_key(region, &name));
        let _ = cp
            .store
            .delete_resource(
                region,
                KIND,
                &name,
                &cp.arn(region, ARN_KIND, &name),
                Some(&owner(&name)),
            )
            .await;
        return Err(e);
    }
    events::record(
        cp,
        region,
        &name,
        events::SERVERLESS_CACHE,
        &format!("Serverless cache {name} is being created"),
    )
    .await;
    tracing::info!(region, serverless_cache = %name, engine = engine.as_str(), "serverless cache creating");
    let out = render_one(cp, &c);
    schedule(cp, region, &name);
    Ok(out)
}

/// Finish the in-flight operation after the provisioning delay.
fn schedule(cp: &Arc<Inner>, region: &str, name: &str) {
    let cp = Arc::clone(cp);
    let region = region.to_string();
    let name = name.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(cp.config.provision_delay).await;
        if let Err(e) = finish(&cp, &region, &name).await {
            tracing::error!(region, serverless_cache = %name, error = %e, "could not finish serverless cache operation");
        }
    });
}

/// The settings the node runs with.
fn cluster_spec(spec: &CacheSpec) -> crate::model::ClusterSpec {
    crate::model::ClusterSpec {
        engine: spec.engine,
        engine_version: spec.engine_version.clone(),
        family: String::new(),
        // The node type only sizes the node until the data storage limit is set.
        node_type: "cache.r7g.xlarge".to_string(),
        num_nodes: 1,
        port: spec.port,
        preferred_availability_zone: String::new(),
        az_mode: "single-az".to_string(),
        parameter_group_name: String::new(),
        subnet_group_name: String::new(),
        security_group_ids: Vec::new(),
        cache_security_group_names: Vec::new(),
        maintenance_window: String::new(),
        snapshot_window: None,
        snapshot_retention_limit: 0,
        auto_minor_version_upgrade: true,
        notification_topic_arn: None,
        notification_topic_status: None,
        network_type: spec.network_type.clone(),
        ip_discovery: "ipv4".to_string(),
        transit_encryption_enabled: true,
        at_rest_encryption_enabled: true,
        auth_token_enabled: false,
        config_version: 1,
        last_node_number: 1,
        pending: Default::default(),
        pending_reboot_nodes: Vec::new(),
        restore_from: None,
        restore_more: Vec::new(),
        restore_slots: None,
        log_delivery: Vec::new(),
        transit_encryption_mode: Some("required".to_string()),
        auth_token: None,
        auth_token_last_modified_ms: None,
        acl: None,
    }
}

/// The node's data memory: the data storage maximum, else unlimited-ish (AWS
/// scales to 5 TB; here the machine's memory is the limit).
fn memory_limit(cp: &Inner, spec: &CacheSpec) -> u64 {
    match spec.data_storage_max {
        Some(gb) => (gb.max(1) as u64).saturating_mul(cp.config.serverless_gb_bytes),
        None => 0,
    }
}

fn engine_params(spec: &CacheSpec) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if spec.engine.is_redis_like() {
        // AWS: "ElastiCache will begin evicting data in your cache that has a
        // Time-To-Live (TTL) set, using LRU logic", then refuses writes with OOM.
        m.insert("maxmemory-policy".to_string(), "volatile-lru".to_string());
        // No COMMANDLOG on serverless Valkey 8.1 (AWS: not available on serverless).
        m.insert("elastilite-serverless".to_string(), "yes".to_string());
    } else {
        m.insert("error_on_memory_exhausted".to_string(), "0".to_string());
    }
    m
}

/// Start (or restart) the node of a cache, apply its limits and make it
/// available; on a fresh start also load its restore data.
async fn start_node(cp: &Arc<Inner>, region: &str, c: &Cache) -> Result<(), ApiError> {
    let key = node_key(region, &c.row.name);
    let acl = node_acl(cp, region, c).await?;
    if cp.nodes.is_running(&key) {
        cp.nodes.set_users(&key, acl.as_ref());
    } else {
        let mut spec = cluster_spec(&c.spec);
        spec.acl = acl;
        cp.nodes
            .start(
                &key,
                &c.spec.bind_ip,
                c.spec.port,
                &spec,
                &engine_params(&c.spec),
            )
            .await?;
    }
    apply_limits(cp, region, c);
    let mut names = vec![c.spec.bind_ip.clone()];
    if let Some(rport) = c.spec.reader_port {
        if let Some((ip, _)) = cp
            .store
            .endpoint(region, &owner(&c.row.name), "reader")
            .await?
        {
            names.push(ip.clone());
            let target: SocketAddr = SocketAddr::new(
                c.spec
                    .bind_ip
                    .parse()
                    .map_err(|_| ApiError::Internal("bad stored address".into()))?,
                c.spec.port,
            );
            cp.nodes
                .start_proxy(
                    &reader_key(region, &c.row.name),
                    &ip,
                    rport,
                    Kind::Reader,
                    Targets {
                        primary: Some(target),
                        replicas: Vec::new(),
                    },
                )
                .await?;
        }
    }
    cp.nodes.set_cert_names(&key, &names);
    Ok(())
}

/// The users of the cache's user group (None: no user group, no AUTH).
async fn node_acl(
    cp: &Inner,
    region: &str,
    c: &Cache,
) -> Result<Option<crate::model::NodeAcl>, ApiError> {
    let groups: Vec<String> = c.spec.user_group_id.iter().cloned().collect();
    crate::users::group_acl(cp, region, &c.row.name, &groups).await
}

/// Push the current users of a cache's user group to its node (a user or user
/// group changed, or the cache's `UserGroupId`).
pub(crate) async fn apply_users(cp: &Inner, region: &str, name: &str) -> Result<(), ApiError> {
    let c = find(cp, region, name).await?;
    let acl = node_acl(cp, region, &c).await?;
    cp.nodes
        .set_users(&node_key(region, &c.row.name), acl.as_ref());
    Ok(())
}

/// The serverless caches attached to a user group.
pub(crate) async fn using_user_group(
    cp: &Inner,
    region: &str,
    group: &str,
) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for row in cp.store.resources(Some(region), KIND).await? {
        let spec: CacheSpec = serde_json::from_str(&row.spec)?;
        if spec.user_group_id.as_deref() == Some(group) {
            out.push(row.name);
        }
    }
    Ok(out)
}

fn apply_limits(cp: &Inner, region: &str, c: &Cache) {
    let limit = memory_limit(cp, &c.spec);
    let key = node_key(region, &c.row.name);
    if limit > 0 {
        cp.nodes.set_memory_limit(&key, limit);
    } else if c.spec.engine == Engine::Memcached {
        // memcached needs some limit; a generous one stands for "no maximum".
        cp.nodes.set_memory_limit(&key, 64 * 1024 * 1024 * 1024);
    } else {
        cp.nodes.set_memory_limit(&key, 0);
    }
    // ECPUPerSecond.Maximum: a token bucket on the node, changed live.
    cp.nodes
        .set_ecpu_limit(&key, c.spec.ecpu_max.map(|m| m.max(1) as u64));
}

pub(crate) async fn finish(cp: &Arc<Inner>, region: &str, name: &str) -> Result<(), ApiError> {
    let _guard = cp.lock.lock().await;
    finish_locked(cp, region, name).await
}

async fn finish_locked(cp: &Arc<Inner>, region: &str, name: &str) -> Result<(), ApiError> {
    let Ok(mut c) = find(cp, region, name).await else {
        return Ok(());
    };
    if c.row.status == DELETING {
        cp.nodes.stop(&node_key(region, name));
        cp.nodes.stop_proxy(&reader_key(region, name));
        cp.store
            .delete_resource(
                region,
                KIND,
                name,
                &cp.arn(region, ARN_KIND, name),
                Some(&owner(name)),
            )
            .await?;
        events::record(
            cp,
            region,
            name,
            events::SERVERLESS_CACHE,
            &format!("Serverless cache {name} deleted"),
        )
        .await;
        tracing::info!(region, serverless_cache = %name, "serverless cache deleted");
        return Ok(());
    }
    if let Err(e) = start_node(cp, region, &c).await {
        c.row.status = CREATE_FAILED.to_string();
        save(cp, &c).await?;
        return Err(e);
    }
    let was_creating = c.row.status == CREATING;
    if let Some(file) = c.spec.restore_from.take() {
        let addr = cp
            .nodes
            .engine_addr(&node_key(region, name))
            .ok_or_else(|| ApiError::Internal("node not running".into()))?;
        let mut files = std::mem::take(&mut c.spec.restore_more);
        files.insert(0, file);
        let mut loaded = Ok(0);
        for f in &files {
            match snapshots::load(cp, addr, f).await {
                Ok(k) => loaded = loaded.map(|n| n + k),
                Err(e) => {
                    loaded = Err(e);
                    break;
                }
            }
        }
        match loaded {
            Ok(keys) => {
                tracing::info!(region, serverless_cache = %name, keys, "restored from snapshot")
            }
            Err(e) => {
                tracing::error!(region, serverless_cache = %name, error = %e, "restore failed");
                events::record(
                    cp,
                    region,
                    name,
                    events::SERVERLESS_CACHE,
                    &format!("Restore from snapshot failed: {e}"),
                )
                .await;
                c.row.status = CREATE_FAILED.to_string();
                save(cp, &c).await?;
                return Ok(());
            }
        }
    }
    c.row.status = AVAILABLE.to_string();
    save(cp, &c).await?;
    if was_creating {
        events::record(
            cp,
            region,
            name,
            events::SERVERLESS_CACHE,
            &format!("Serverless cache {name} created"),
        )
        .await;
    }
    Ok(())
}

/// At start-up: every serverless cache's node comes back on its endpoint, and
/// operations in flight are finished.
pub(crate) async fn restore_all(cp: &Arc<Inner>) -> Result<usize, ApiError> {
    let rows = cp.store.resources(None, KIND).await?;
    for r in &rows {
        if let Err(e) = finish(cp, &r.region, &r.name).await {
            tracing::error!(region = %r.region, serverless_cache = %r.name, error = %e, "could not restore serverless cache");
        }
    }
    Ok(rows.len())
}

pub(crate) async fn describe(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let caches = match p.str("ServerlessCacheName") {
        Some(n) => vec![find(cp, region, n).await?],
        None => {
            let mut out = Vec::new();
            for row in cp.store.resources(Some(region), KIND).await? {
                let spec = serde_json::from_str(&row.spec)?;
                out.push(Cache { row, spec });
            }
            out
        }
    };
    let (page, next) = page_by_token(caches, p, |c| c.row.name.clone())?;
    let mut w = XmlWriter::new();
    w.list("ServerlessCaches", "member", &page, |w, c| {
        write_cache(cp, w, c)
    });
    w.opt_text("NextToken", next.as_deref());
    Ok(w.finish())
}

/// `MaxResults` (1–100, default 50) and `NextToken` over a name-ordered list.
fn page_by_token<T>(
    items: Vec<T>,
    p: &Params,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = p.int("MaxResults")?.unwrap_or(50);
    if !(1..=100).contains(&max) {
        return Err(ApiError::InvalidParameterValue(format!(
            "MaxResults must be between 1 and 100, got {max}."
        )));
    }
    let start = match p.str("NextToken").filter(|t| !t.is_empty()) {
        Some(t) => items
            .iter()
            .position(|i| key(i).as_str() >= t)
            .unwrap_or(items.len()),
        None => 0,
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = if rest.len() > max as usize {
        let tail = rest.split_off(max as usize);
        tail.first().map(&key)
    } else {
        None
    };
    Ok((rest, next))
}

pub(crate) async fn modify(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("ServerlessCacheName")?;
    let limits = usage_limits(p)?;
    let retention_limit = retention(p)?;
    let daily = p.str("DailySnapshotTime").map(daily_time).transpose()?;
    let sgs = ids(p, "SecurityGroupIds", "SecurityGroupId", "sg-")?;
    let _guard = cp.lock.lock().await;
    let mut c = find(cp, region, raw).await?;
    if c.row.status != AVAILABLE {
        return Err(ApiError::InvalidServerlessCacheState(format!(
            "Serverless cache {} is not in available state (current state: {}).",
            c.row.name, c.row.status
        )));
    }
    if let Some(d) = p.str("Description") {
        c.spec.description = d.to_string();
    }
    if let Some((ds_max, ds_min, e_max, e_min)) = limits {
        if ds_max.is_some() || ds_min.is_some() {
            c.spec.data_storage_max = ds_max;
            c.spec.data_storage_min = ds_min;
        }
        if e_max.is_some() || e_min.is_some() {
            c.spec.ecpu_max = e_max;
            c.spec.ecpu_min = e_min;
        }
    }
    let remove_ug = p.bool("RemoveUserGroup")?.unwrap_or(false);
    match (remove_ug, p.str("UserGroupId")) {
        (true, Some(_)) => {
            return Err(ApiError::InvalidParameterCombination(
                "RemoveUserGroup and UserGroupId cannot both be given.".into(),
            ))
        }
        (true, None) => c.spec.user_group_id = None,
        (false, Some(ug)) => {
            if c.spec.engine == Engine::Memcached {
                return Err(ApiError::InvalidParameterCombination(
                    "UserGroupId is not supported for memcached serverless caches.".into(),
                ));
            }
            crate::users::check_attach(cp, region, &[ug.to_string()], true, false).await?;
            c.spec.user_group_id = Some(ug.to_string());
        }
        (false, None) => {}
    }
    if let Some(s) = sgs {
        c.spec.security_group_ids = s;
    }
    if retention_limit.is_some() || daily.is_some() {
        if c.spec.engine == Engine::Memcached {
            return Err(ApiError::InvalidParameterCombination(
                "Snapshots are not supported for memcached serverless caches.".into(),
            ));
        }
        if let Some(n) = retention_limit {
            c.spec.snapshot_retention_limit = n;
        }
        if let Some(d) = daily {
            c.spec.daily_snapshot_time = d;
        }
    }
    if let Some(e) = p.str("Engine") {
        let e = Engine::parse(e)?;
        // The one engine change AWS allows: Redis OSS to Valkey, keeping the data.
        if e != c.spec.engine && !(c.spec.engine == Engine::Redis && e == Engine::Valkey) {
            return Err(ApiError::InvalidParameterCombination(format!(
                "Cannot change engine from {} to {}.",
                c.spec.engine.as_str(),
                e.as_str()
            )));
        }
        if e != c.spec.engine {
            let (major, full, version) = versions(e, p.str("MajorEngineVersion"))?;
            c.spec.engine = e;
            c.spec.major_engine_version = major;
            c.spec.full_engine_version = full;
            c.spec.engine_version = version;
        }
    } else if let Some(m) = p.str("MajorEngineVersion") {
        let (major, full, version) = versions(c.spec.engine, Some(m))?;
        if major.parse::<f64>().unwrap_or(0.0)
            < c.spec.major_engine_version.parse::<f64>().unwrap_or(0.0)
        {
            return Err(ApiError::InvalidParameterValue(format!(
                "Cannot downgrade major engine version from {} to {major}.",
                c.spec.major_engine_version
            )));
        }
        c.spec.major_engine_version = major;
        c.spec.full_engine_version = full;
        c.spec.engine_version = version;
    }
    // The limits reach the running node at once; the cache passes through
    // `modifying` as on AWS.
    apply_limits(cp, region, &c);
    let acl = node_acl(cp, region, &c).await?;
    cp.nodes
        .set_users(&node_key(region, &c.row.name), acl.as_ref());
    let msg = format!("Serverless cache {} modified", c.row.name);
    enter(cp, region, &mut c, MODIFYING, &msg).await
}

pub(crate) async fn delete(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let raw = p.required("ServerlessCacheName")?;
    let final_name = p.str("FinalSnapshotName").map(str::to_string);
    let _guard = cp.lock.lock().await;
    let mut c = find(cp, region, raw).await?;
    if c.row.status != AVAILABLE && c.row.status != CREATE_FAILED {
        return Err(ApiError::InvalidServerlessCacheState(format!(
            "Serverless cache {} is not in available state (current state: {}).",
            c.row.name, c.row.status
        )));
    }
    if let Some(fin) = &final_name {
        if c.spec.engine == Engine::Memcached {
            return Err(ApiError::InvalidParameterCombination(
                "Snapshots are not supported for memcached serverless caches.".into(),
            ));
        }
        if cp
            .store
            .resource(region, SNAPSHOT_KIND, fin)
            .await?
            .is_some()
        {
            return Err(ApiError::ServerlessCacheSnapshotAlreadyExists(fin.clone()));
        }
        // The final snapshot is taken before the node goes away.
        let s = new_snapshot(cp, region, &c, fin, "manual", None).await?;
        capture_into(cp, region, &c, s).await?;
    }
    let msg = format!("Serverless cache {} is being deleted", c.row.name);
    enter(cp, region, &mut c, DELETING, &msg).await
}

/// Put a cache into a transitional state: saved, the event recorded, the answer rendered,
/// and the background step that finishes the transition scheduled.
async fn enter(
    cp: &Arc<Inner>,
    region: &str,
    c: &mut Cache,
    status: &str,
    event: &str,
) -> Result<String, ApiError> {
    c.row.status = status.to_string();
    save(cp, c).await?;
    events::record(cp, region, &c.row.name, events::SERVERLESS_CACHE, event).await;
    let out = render_one(cp, c);
    schedule(cp, region, &c.row.name);
    Ok(out)
}

fn render_one(cp: &Inner, c: &Cache) -> String {
    let mut w = XmlWriter::new();
    w.element("ServerlessCache", |w| write_cache(cp, w, c));
    w.finish()
}

fn write_cache(cp: &Inner, w: &mut XmlWriter, c: &Cache) {
    let s = &c.spec;
    w.text("ServerlessCacheName", &c.row.name)
        .text("Description", &s.description)
        .text("CreateTime", &crate::timestamp(c.row.created_ms))
        .text("Status", &c.row.status)
        .text("Engine", s.engine.as_str())
        .text("MajorEngineVersion", &s.major_engine_version)
        .text("FullEngineVersion", &s.full_engine_version);
    if s.data_storage_max.is_some()
        || s.data_storage_min.is_some()
        || s.ecpu_max.is_some()
        || s.ecpu_min.is_some()
    {
        w.element("CacheUsageLimits", |w| {
            if s.data_storage_max.is_some() || s.data_storage_min.is_some() {
                w.element("DataStorage", |w| {
                    if let Some(v) = s.data_storage_max {
                        w.int("Maximum", v);
                    }
                    if let Some(v) = s.data_storage_min {
                        w.int("Minimum", v);
                    }
                    w.text("Unit", "GB");
                });
            }
            if s.ecpu_max.is_some() || s.ecpu_min.is_some() {
                w.element("ECPUPerSecond", |w| {
                    if let Some(v) = s.ecpu_max {
                        w.int("Maximum", v);
                    }
                    if let Some(v) = s.ecpu_min {
                        w.int("Minimum", v);
                    }
                });
            }
        });
    }
    w.opt_text("KmsKeyId", s.kms_key_id.as_deref());
    w.string_list("SecurityGroupIds", "SecurityGroupId", &s.security_group_ids);
    if c.row.status != CREATING {
        w.element("Endpoint", |w| {
            w.text("Address", &cp.nodes.advertised(&s.bind_ip))
                .int("Port", i64::from(s.port));
        });
        if let Some(rp) = s.reader_port {
            w.element("ReaderEndpoint", |w| {
                w.text("Address", &cp.nodes.advertised(&s.bind_ip))
                    .int("Port", i64::from(rp));
            });
        }
    }
    w.text("ARN", &cp.arn(&c.row.region, ARN_KIND, &c.row.name));
    w.opt_text("UserGroupId", s.user_group_id.as_deref());
    w.string_list("SubnetIds", "SubnetId", &s.subnet_ids);
    if s.engine.is_redis_like() {
        w.int("SnapshotRetentionLimit", s.snapshot_retention_limit)
            .text("DailySnapshotTime", &s.daily_snapshot_time);
    }
    w.text("NetworkType", &s.network_type);
}

// ---- snapshots ----

async fn new_snapshot(
    cp: &Inner,
    region: &str,
    c: &Cache,
    name: &str,
    kind: &str,
    kms: Option<String>,
) -> Result<Snap, ApiError> {
    if cp
        .store
        .resource(region, SNAPSHOT_KIND, name)
        .await?
        .is_some()
    {
        return Err(ApiError::ServerlessCacheSnapshotAlreadyExists(
            name.to_string(),
        ));
    }
    if cp.store.resources(Some(region), SNAPSHOT_KIND).await?.len() >= MAX_SNAPSHOTS {
        return Err(ApiError::ServerlessCacheSnapshotQuotaExceeded(format!(
            "A region can have at most {MAX_SNAPSHOTS} serverless cache snapshots."
        )));
    }
    Ok(Snap {
        row: ResourceRow {
            region: region.to_string(),
            kind: SNAPSHOT_KIND.to_string(),
            name: name.to_string(),
            status: CREATING.to_string(),
            created_ms: now_ms(),
            spec: String::new(),
        },
        spec: SnapshotSpec {
            serverless_cache_name: c.row.name.clone(),
            engine: c.spec.engine,
            major_engine_version: c.spec.major_engine_version.clone(),
            kms_key_id: kms.or_else(|| c.spec.kms_key_id.clone()),
            snapshot_type: kind.to_string(),
            bytes: 0,
            file: format!("serverless-{name}.rdb"),
            expiry_ms: None,
        },
    })
}

/// Capture the cache's data into the snapshot's RDB file and mark it available
/// (the caller holds the lock; the capture runs while the node keeps serving).
async fn capture_into(cp: &Inner, region: &str, c: &Cache, mut s: Snap) -> Result<Snap, ApiError> {
    let addr = cp
        .nodes
        .engine_addr(&node_key(region, &c.row.name))
        .ok_or_else(|| {
            ApiError::InvalidServerlessCacheState(format!(
                "Serverless cache {} is not running.",
                c.row.name
            ))
        })?;
    tokio::fs::create_dir_all(snapshots::dir(cp, region))
        .await
        .map_err(|e| ApiError::Internal(format!("snapshot directory: {e}")))?;
    let size = rdb_io::capture(addr, None, &snapshot_path(cp, region, &s.spec.file))
        .await
        .map_err(|e| ApiError::Internal(format!("capture from {addr}: {e}")))?;
    s.spec.bytes = size;
    s.row.status = AVAILABLE.to_string();
    save_snapshot(cp, &s).await?;
    cp.store
        .put_tags(&cp.arn(region, SNAPSHOT_ARN_KIND, &s.row.name), &[])
        .await?;
    events::record(
        cp,
        region,
        &s.row.name,
        events::SERVERLESS_CACHE_SNAPSHOT,
        &format!(
            "Snapshot {} of serverless cache {} created",
            s.row.name, c.row.name
        ),
    )
    .await;
    Ok(s)
}

pub(crate) async fn create_snapshot(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let name = snapshot_name(p.required("ServerlessCacheSnapshotName")?)?;
    let cache = p.required("ServerlessCacheName")?;
    let tags = p.tags("Tags")?.unwrap_or_default();
    crate::clusters::check_tag_count(tags.len())?;
    let _guard = cp.lock.lock().await;
    let c = find(cp, region, cache).await?;
    if c.spec.engine == Engine::Memcached {
        return Err(ApiError::InvalidParameterCombination(
            "Snapshots are not supported for memcached serverless caches.".into(),
        ));
    }
    if c.row.status != AVAILABLE {
        return Err(ApiError::InvalidServerlessCacheState(format!(
            "Serverless cache {} is not in available state (current state: {}).",
            c.row.name, c.row.status
        )));
    }
    let s = new_snapshot(
        cp,
        region,
        &c,
        &name,
        "manual",
        p.str("KmsKeyId").map(str::to_string),
    )
    .await?;
    let s = capture_into(cp, region, &c, s).await?;
    cp.store
        .put_tags(&cp.arn(region, SNAPSHOT_ARN_KIND, &name), &tags)
        .await?;
    Ok(render_snapshot_one(cp, &s))
}

fn snapshot_name(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 255
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !ok {
        return Err(ApiError::InvalidParameterValue(format!(
            "Invalid snapshot name {raw}: use 1-255 letters, digits, hyphens, periods or underscores."
        )));
    }
    Ok(raw.to_string())
}

pub(crate) async fn describe_snapshots(
    cp: &Inner,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let cache = p.str("ServerlessCacheName").map(str::to_ascii_lowercase);
    if let Some(c) = &cache {
        // AWS answers ServerlessCacheNotFoundFault for a cache that does not exist.
        if cp.store.resource(region, KIND, c).await?.is_none() {
            return Err(ApiError::ServerlessCacheNotFound(c.clone()));
        }
    }
    let kind = p.str("SnapshotType");
    if let Some(k) = kind {
        if k != "manual" && k != "automated" {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid SnapshotType {k}: manual or automated."
            )));
        }
    }
    let snaps: Vec<Snap> = match p.str("ServerlessCacheSnapshotName") {
        Some(n) => vec![find_snapshot(cp, region, n).await?],
        None => {
            let mut out = Vec::new();
            for row in cp.store.resources(Some(region), SNAPSHOT_KIND).await? {
                let spec = serde_json::from_str(&row.spec)?;
                out.push(Snap { row, spec });
            }
            out
        }
    };
    let snaps: Vec<Snap> = snaps
        .into_iter()
        .filter(|s| {
            cache
                .as_deref()
                .is_none_or(|c| s.spec.serverless_cache_name == c)
        })
        .filter(|s| kind.is_none_or(|k| s.spec.snapshot_type == k))
        .collect();
    let (page, next) = page_by_token(snaps, p, |s| s.row.name.clone())?;
    let mut w = XmlWriter::new();
    w.opt_text("NextToken", next.as_deref());
    w.list(
        "ServerlessCacheSnapshots",
        "ServerlessCacheSnapshot",
        &page,
        |w, s| write_snapshot(cp, w, s),
    );
    Ok(w.finish())
}

pub(crate) async fn copy_snapshot(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let source = p.required("SourceServerlessCacheSnapshotName")?;
    let target = snapshot_name(p.required("TargetServerlessCacheSnapshotName")?)?;
    let tags = p.tags("Tags")?.unwrap_or_default();
    crate::clusters::check_tag_count(tags.len())?;
    let _guard = cp.lock.lock().await;
    let src = find_snapshot(cp, region, source).await?;
    if src.row.status != AVAILABLE {
        return Err(ApiError::InvalidServerlessCacheSnapshotState(format!(
            "Serverless cache snapshot {source} is not available (current state: {}).",
            src.row.status
        )));
    }
    if cp
        .store
        .resource(region, SNAPSHOT_KIND, &target)
        .await?
        .is_some()
    {
        return Err(ApiError::ServerlessCacheSnapshotAlreadyExists(target));
    }
    let file = format!("serverless-{target}.rdb");
    tokio::fs::copy(
        snapshot_path(cp, region, &src.spec.file),
        snapshot_path(cp, region, &file),
    )
    .await
    .map_err(|e| ApiError::Internal(format!("copy snapshot file: {e}")))?;
    let s = Snap {
        row: ResourceRow {
            region: region.to_string(),
            kind: SNAPSHOT_KIND.to_string(),
            name: target.clone(),
            status: AVAILABLE.to_string(),
            created_ms: now_ms(),
            spec: String::new(),
        },
        spec: SnapshotSpec {
            file,
            snapshot_type: "manual".to_string(),
            kms_key_id: p
                .str("KmsKeyId")
                .map(str::to_string)
                .or_else(|| src.spec.kms_key_id.clone()),
            ..src.spec.clone()
        },
    };
    save_snapshot(cp, &s).await?;
    cp.store
        .put_tags(&cp.arn(region, SNAPSHOT_ARN_KIND, &target), &tags)
        .await?;
    events::record(
        cp,
        region,
        &target,
        events::SERVERLESS_CACHE_SNAPSHOT,
        &format!("Snapshot {source} copied to {target}"),
    )
    .await;
    Ok(render_snapshot_one(cp, &s))
}

pub(crate) async fn delete_snapshot(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let name = p.required("ServerlessCacheSnapshotName")?;
    let _guard = cp.lock.lock().await;
    let mut s = find_snapshot(cp, region, name).await?;
    if s.row.status != AVAILABLE {
        return Err(ApiError::InvalidServerlessCacheSnapshotState(format!(
            "Serverless cache snapshot {name} is not available (current state: {}).",
            s.row.status
        )));
    }
    let _ = tokio::fs::remove_file(snapshot_path(cp, region, &s.spec.file)).await;
    cp.store
        .delete_resource(
            region,
            SNAPSHOT_KIND,
            name,
            &cp.arn(region, SNAPSHOT_ARN_KIND, name),
            None,
        )
        .await?;
    events::record(
        cp,
        region,
        name,
        events::SERVERLESS_CACHE_SNAPSHOT,
        &format!("Snapshot {name} deleted"),
    )
    .await;
    s.row.status = DELETING.to_string();
    Ok(render_snapshot_one(cp, &s))
}

/// Export to "S3": the RDB file is written to `<data-dir>/s3/<bucket>/<name>.rdb`,
/// where `SnapshotArns`/`SnapshotArnsToRestore` of `arn:aws:s3:::<bucket>/<name>.rdb`
/// read it back.
pub(crate) async fn export_snapshot(
    cp: &Arc<Inner>,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let name = p.required("ServerlessCacheSnapshotName")?;
    let bucket = p.required("S3BucketName")?;
    snapshots::validate_bucket(bucket)?;
    let _guard = cp.lock.lock().await;
    let s = find_snapshot(cp, region, name).await?;
    if s.row.status != AVAILABLE {
        return Err(ApiError::InvalidServerlessCacheSnapshotState(format!(
            "Serverless cache snapshot {name} is not available (current state: {}).",
            s.row.status
        )));
    }
    let dir = cp.config.data_dir.join("s3").join(bucket);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::Internal(format!("export directory: {e}")))?;
    tokio::fs::copy(
        snapshot_path(cp, region, &s.spec.file),
        dir.join(format!("{name}.rdb")),
    )
    .await
    .map_err(|e| ApiError::Internal(format!("export snapshot: {e}")))?;
    events::record(
        cp,
        region,
        name,
        events::SERVERLESS_CACHE_SNAPSHOT,
        &format!("Snapshot {name} exported to S3 bucket {bucket}"),
    )
    .await;
    Ok(render_snapshot_one(cp, &s))
}

fn render_snapshot_one(cp: &Inner, s: &Snap) -> String {
    let mut w = XmlWriter::new();
    w.element("ServerlessCacheSnapshot", |w| write_snapshot(cp, w, s));
    w.finish()
}

fn write_snapshot(cp: &Inner, w: &mut XmlWriter, s: &Snap) {
    w.text("ServerlessCacheSnapshotName", &s.row.name)
        .text(
            "ARN",
            &cp.arn(&s.row.region, SNAPSHOT_ARN_KIND, &s.row.name),
        )
        .opt_text("KmsKeyId", s.spec.kms_key_id.as_deref())
        .text("SnapshotType", &s.spec.snapshot_type)
        .text("Status", &s.row.status)
        .text("CreateTime", &crate::timestamp(s.row.created_ms));
    if let Some(e) = s.spec.expiry_ms {
        w.text("ExpiryTime", &crate::timestamp(e));
    }
    w.text("BytesUsedForCache", &s.spec.bytes.to_string())
        .element("ServerlessCacheConfiguration", |w| {
            w.text("ServerlessCacheName", &s.spec.serverless_cache_name)
                .text("Engine", s.spec.engine.as_str())
                .text("MajorEngineVersion", &s.spec.major_engine_version);
        });
}

/// The daily snapshot of every Redis/Valkey serverless cache with a retention
/// limit, and removal of automated snapshots beyond it (run with the cluster
/// backup window; the caller holds the lock).
pub(crate) async fn run_automatic(cp: &Inner, stamp: &str) -> Result<Vec<String>, ApiError> {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let mut taken = Vec::new();
    for row in cp.store.resources(None, KIND).await? {
        let spec: CacheSpec = serde_json::from_str(&row.spec)?;
        if spec.snapshot_retention_limit <= 0
            || !spec.engine.is_redis_like()
            || row.status != AVAILABLE
        {
            continue;
        }
        let region = row.region.clone();
        let c = Cache { row, spec };
        let name = format!("automatic.{}-{stamp}", c.row.name);
        let Ok(mut s) = new_snapshot(cp, &region, &c, &name, "automated", None).await else {
            continue;
        };
        s.spec.expiry_ms = Some(s.row.created_ms + c.spec.snapshot_retention_limit * DAY_MS);
        match capture_into(cp, &region, &c, s).await {
            Ok(_) => taken.push(name),
            Err(e) => {
                tracing::warn!(serverless_cache = %c.row.name, error = %e, "automatic snapshot failed")
            }
        }
        let mut autos = Vec::new();
        for r in cp.store.resources(Some(&region), SNAPSHOT_KIND).await? {
            let spec: SnapshotSpec = serde_json::from_str(&r.spec)?;
            if spec.snapshot_type == "automated" && spec.serverless_cache_name == c.row.name {
                autos.push(Snap { row: r, spec });
            }
        }
        autos.sort_by_key(|s| std::cmp::Reverse(s.row.created_ms));
        let keep = usize::try_from(c.spec.snapshot_retention_limit).unwrap_or(0);
        for old in autos.into_iter().skip(keep) {
            let _ = tokio::fs::remove_file(snapshot_path(cp, &region, &old.spec.file)).await;
            cp.store
                .delete_resource(
                    &region,
                    SNAPSHOT_KIND,
                    &old.row.name,
                    &cp.arn(&region, SNAPSHOT_ARN_KIND, &old.row.name),
                    None,
                )
                .await?;
        }
    }
    Ok(taken)
}

/// Tagging: the ARN kinds this module owns, and whether the resource exists.
pub(crate) async fn tag_target(cp: &Inner, arn: &Arn) -> Result<Option<String>, ApiError> {
    match arn.kind.as_str() {
        ARN_KIND => {
            let c = find(cp, &arn.region, &arn.name).await?;
            Ok(Some(cp.arn(&arn.region, ARN_KIND, &c.row.name)))
        }
        SNAPSHOT_ARN_KIND => {
            let s = find_snapshot(cp, &arn.region, &arn.name).await?;
            Ok(Some(cp.arn(&arn.region, SNAPSHOT_ARN_KIND, &s.row.name)))
        }
        _ => Ok(None),
    }
}

/// With `--persist-data`: capture every Redis/Valkey serverless cache's data.
pub(crate) async fn save_all(cp: &Inner) -> usize {
    let Ok(rows) = cp.store.resources(None, KIND).await else {
        return 0;
    };
    let mut saved = 0;
    for r in rows {
        let Ok(spec) = serde_json::from_str::<CacheSpec>(&r.spec) else {
            continue;
        };
        if !spec.engine.is_redis_like() {
            continue;
        }
        let Some(addr) = cp.nodes.engine_addr(&node_key(&r.region, &r.name)) else {
            continue;
        };
        let path = persist_file(cp, &r.region, &r.name);
        if let Some(dir) = path.parent() {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
        match rdb_io::capture(addr, None, &path).await {
            Ok(_) => saved += 1,
            Err(e) => {
                tracing::warn!(serverless_cache = %r.name, error = %e, "could not persist serverless cache data")
            }
        }
    }
    saved
}

/// With `--persist-data`: load what [`save_all`] wrote into the restarted nodes.
pub(crate) async fn load_all(cp: &Inner) -> usize {
    let Ok(rows) = cp.store.resources(None, KIND).await else {
        return 0;
    };
    let mut loaded = 0;
    for r in rows {
        let path = persist_file(cp, &r.region, &r.name);
        let Some(addr) = cp.nodes.engine_addr(&node_key(&r.region, &r.name)) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        match rdb_io::restore(addr, None, &path).await {
            Ok(_) => loaded += 1,
            Err(e) => {
                tracing::error!(serverless_cache = %r.name, error = %e, "could not load persisted data")
            }
        }
    }
    loaded
}

fn persist_file(cp: &Inner, region: &str, name: &str) -> PathBuf {
    cp.config
        .data_dir
        .join("persist")
        .join(region)
        .join(format!("serverless-{name}.rdb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("My-Cache", "n").unwrap(), "my-cache");
        for bad in ["", "1abc", "a--b", "a-", "a_b", &"a".repeat(41)] {
            assert!(validate_name(bad, "n").is_err(), "{bad}");
        }
    }

    #[test]
    fn engine_versions() {
        assert_eq!(
            versions(Engine::Redis, None).unwrap(),
            ("7".into(), "7.1".into(), "7.1.0".into())
        );
        assert_eq!(versions(Engine::Valkey, Some("7")).unwrap().1, "7.2");
        assert_eq!(versions(Engine::Memcached, None).unwrap().1, "1.6.22");
        assert!(versions(Engine::Redis, Some("6")).is_err());
    }

    #[test]
    fn usage_limits_are_validated() {
        let p = Params::from_pairs([
            ("CacheUsageLimits.DataStorage.Maximum", "10"),
            ("CacheUsageLimits.DataStorage.Unit", "GB"),
            ("CacheUsageLimits.ECPUPerSecond.Minimum", "1000"),
        ]);
        assert_eq!(
            usage_limits(&p).unwrap(),
            Some((Some(10), None, None, Some(1000)))
        );
        let no_unit = Params::from_pairs([("CacheUsageLimits.DataStorage.Maximum", "10")]);
        assert!(matches!(
            usage_limits(&no_unit),
            Err(ApiError::MissingParameter(_))
        ));
        let inverted = Params::from_pairs([
            ("CacheUsageLimits.DataStorage.Maximum", "1"),
            ("CacheUsageLimits.DataStorage.Minimum", "2"),
            ("CacheUsageLimits.DataStorage.Unit", "GB"),
        ]);
        assert!(usage_limits(&inverted).is_err());
        let too_slow = Params::from_pairs([("CacheUsageLimits.ECPUPerSecond.Maximum", "10")]);
        assert!(usage_limits(&too_slow).is_err());
        assert_eq!(
            usage_limits(&Params::from_pairs([("X", "1")])).unwrap(),
            None
        );
    }

    #[test]
    fn daily_snapshot_time() {
        assert_eq!(daily_time("05:30").unwrap(), "05:30");
        for bad in ["5:30", "24:00", "05:60", "0530", "ab:cd"] {
            assert!(daily_time(bad).is_err(), "{bad}");
        }
    }
}
