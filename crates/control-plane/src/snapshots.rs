//! Snapshots with real data. A snapshot is one RDB file per node group under
//! `<data-dir>/snapshots/<region>/`, captured from the node through the
//! replication protocol (the node makes a point-in-time copy and keeps serving)
//! and restored by replaying it into a new cluster's primary. The files are
//! ordinary RDB files: redis-server loads them, and RDB files redis-server wrote
//! can seed a cluster here (`SnapshotArns`).
//!
//! A cluster-mode-enabled group's snapshot has one file per shard, captured from
//! each shard's primary at once, and records each shard's slots. Restoring
//! loads every file into every new shard primary, each keeping only the keys of
//! its own slots, so the new group may have another shard count or slot layout.

use crate::catalog::Engine;
use crate::error::ApiError;
use crate::ids::CacheClusterId;
use crate::model::{status, ClusterRecord, NodeSnapshot, SnapshotRecord, SnapshotSpec};
use crate::{events, now_ms, paginate_with, replication_groups, Inner};
use aws_query::{Params, XmlWriter};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub const MANUAL: &str = "manual";
pub const AUTOMATED: &str = "automated";
const MAX_SNAPSHOTS: usize = 1000;
pub const CREATING: &str = "creating";
pub const AVAILABLE: &str = "available";
const DELETING: &str = "deleting";

pub(crate) fn dir(cp: &Inner, region: &str) -> PathBuf {
    cp.config.data_dir.join("snapshots").join(region)
}

fn file_path(cp: &Inner, region: &str, file: &str) -> PathBuf {
    dir(cp, region).join(file)
}

fn validate_name(raw: &str) -> Result<String, ApiError> {
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

pub(crate) async fn find(cp: &Inner, region: &str, name: &str) -> Result<SnapshotRecord, ApiError> {
    cp.store
        .snapshot(region, name)
        .await?
        .ok_or_else(|| ApiError::SnapshotNotFound(name.to_string()))
}

/// The nodes whose data a snapshot of a cluster or group is taken from: one per
/// node group, in the order of `spec.nodes`.
struct Source {
    clusters: Vec<ClusterRecord>,
    spec: SnapshotSpec,
    nodes: Vec<SocketAddr>,
}

async fn source(cp: &Inner, region: &str, p: &Params) -> Result<Source, ApiError> {
    match (p.str("CacheClusterId"), p.str("ReplicationGroupId")) {
        (Some(_), Some(_)) => Err(ApiError::InvalidParameterCombination(
            "Specify either CacheClusterId or ReplicationGroupId, not both.".into(),
        )),
        (None, None) => Err(ApiError::InvalidParameterCombination(
            "Specify CacheClusterId or ReplicationGroupId.".into(),
        )),
        (Some(raw), None) => {
            let id = CacheClusterId::parse(raw)
                .map_err(|_| ApiError::CacheClusterNotFound(raw.to_string()))?;
            let c = cp
                .store
                .cluster(region, &id)
                .await?
                .ok_or_else(|| ApiError::CacheClusterNotFound(raw.to_string()))?;
            cluster_source(cp, c, None).await
        }
        (None, Some(raw)) => group_source(cp, region, raw).await,
    }
}

async fn group_source(cp: &Inner, region: &str, raw: &str) -> Result<Source, ApiError> {
    let g = replication_groups::find(cp, region, raw).await?;
    g.require_available()?;
    if g.spec.cluster_enabled() {
        return sharded_source(cp, &g).await;
    }
    let primary = CacheClusterId::parse(&g.spec.primary)?;
    let c = cp
        .store
        .cluster(region, &primary)
        .await?
        .ok_or_else(|| ApiError::CacheClusterNotFound(g.spec.primary.clone()))?;
    let mut s = cluster_source(cp, c, Some(&g)).await?;
    of_group(&mut s.spec, &g);
    Ok(s)
}

/// A snapshot of a replication group names the group, not the member it was read from.
fn of_group(spec: &mut SnapshotSpec, g: &crate::model::GroupRecord) {
    spec.replication_group_id = Some(g.id.clone());
    spec.replication_group_description = Some(g.spec.description.clone());
    spec.cache_cluster_id = None;
    spec.automatic_failover = g.spec.automatic_failover;
    spec.kms_key_id = g.spec.kms_key_id.clone();
    spec.num_cache_nodes = g.spec.members.len() as u16;
}

/// A cluster-mode-enabled group: one node snapshot per shard, taken from the
/// shard's primary, with the shard's slots, replica count and zones.
async fn sharded_source(cp: &Inner, g: &crate::model::GroupRecord) -> Result<Source, ApiError> {
    let ms = replication_groups::members(cp, g).await?;
    let find = |id: &str| ms.iter().find(|c| c.id.as_str() == id);
    let mut primaries = Vec::new();
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for s in g.spec.shards.iter().filter(|s| !s.removing) {
        let primary = find(&s.primary).ok_or_else(|| {
            ApiError::InvalidReplicationGroupState(format!(
                "Node group {} of replication group {} has no primary.",
                s.id, g.id
            ))
        })?;
        primary.require_available()?;
        let n = primary.nodes.first().ok_or_else(|| {
            ApiError::InvalidCacheClusterState(format!("Cache cluster {} has no node.", primary.id))
        })?;
        addrs.push(engine_addr(cp, primary, n)?);
        let replica_azs: Vec<String> = s
            .members
            .iter()
            .filter(|m| **m != s.primary)
            .filter_map(|m| find(m))
            .map(|c| c.spec.preferred_availability_zone.clone())
            .collect();
        nodes.push(NodeSnapshot {
            cache_cluster_id: primary.id.to_string(),
            node_group_id: s.id.clone(),
            cache_node_id: n.id.to_string(),
            cache_node_create_time_ms: n.created_ms,
            snapshot_create_time_ms: 0,
            size: 0,
            file: String::new(),
            slots: s.slots.clone(),
            replica_count: Some(replica_azs.len() as u16),
            primary_az: Some(primary.spec.preferred_availability_zone.clone()),
            replica_azs,
        });
        primaries.push(primary.clone());
    }
    let first = primaries.first().cloned().ok_or_else(|| {
        ApiError::InvalidReplicationGroupState(format!(
            "Replication group {} has no node groups.",
            g.id
        ))
    })?;
    let mut src = cluster_source(cp, first, Some(g)).await?;
    of_group(&mut src.spec, g);
    src.spec.parameter_group_name = g.spec.parameter_group_name.clone();
    src.spec.cluster_enabled = true;
    src.spec.nodes = nodes;
    src.nodes = addrs;
    src.clusters = primaries;
    Ok(src)
}

/// The engine itself, not the endpoint clients use: that one may be a TLS front.
fn engine_addr(
    cp: &Inner,
    c: &ClusterRecord,
    n: &crate::model::NodeRecord,
) -> Result<SocketAddr, ApiError> {
    match cp
        .nodes
        .engine_addr(&crate::clusters::node_key(&c.region, &c.id, n.id))
    {
        Some(a) => Ok(a),
        None => Ok(SocketAddr::new(
            n.bind_ip.parse().map_err(|_| {
                ApiError::Internal(format!("stored address {} is not an IP", n.bind_ip))
            })?,
            n.port,
        )),
    }
}

/// Capture every node group's file at once (each primary makes its own
/// point-in-time copy while it keeps serving). Returns the sizes in order.
async fn capture_all(
    cp: &Inner,
    region: &str,
    spec: &SnapshotSpec,
    addrs: &[SocketAddr],
) -> Result<Vec<u64>, ApiError> {
    tokio::fs::create_dir_all(dir(cp, region))
        .await
        .map_err(|e| ApiError::Internal(format!("snapshot directory: {e}")))?;
    if addrs.len() != spec.nodes.len() {
        return Err(ApiError::Internal(format!(
            "{} node snapshots for {} nodes",
            spec.nodes.len(),
            addrs.len()
        )));
    }
    let key = spec.at_rest_encryption.then(|| Arc::clone(&cp.at_rest_key));
    let mut set = tokio::task::JoinSet::new();
    for (i, (n, addr)) in spec.nodes.iter().zip(addrs).enumerate() {
        let path = file_path(cp, region, &n.file);
        let (key, addr) = (key.clone(), *addr);
        set.spawn(async move { (i, crate::at_rest::capture(key.as_ref(), addr, &path).await) });
    }
    let mut sizes = vec![0u64; addrs.len()];
    let mut failed = None;
    while let Some(done) = set.join_next().await {
        match done {
            Ok((i, Ok(size))) => {
                if let Some(s) = sizes.get_mut(i) {
                    *s = size;
                }
            }
            Ok((_, Err(e))) => failed = Some(e),
            Err(e) => failed = Some(ApiError::Internal(format!("snapshot task: {e}"))),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(sizes),
    }
}

async fn cluster_source(
    cp: &Inner,
    c: ClusterRecord,
    g: Option<&crate::model::GroupRecord>,
) -> Result<Source, ApiError> {
    if c.spec.engine == Engine::Memcached {
        return Err(ApiError::SnapshotFeatureNotSupported(
            "Snapshots are not supported for memcached clusters.".into(),
        ));
    }
    c.require_available()?;
    let n = c.nodes.first().ok_or_else(|| {
        ApiError::InvalidCacheClusterState(format!("Cache cluster {} has no node.", c.id))
    })?;
    let node = engine_addr(cp, &c, n)?;
    let s = &c.spec;
    let spec = SnapshotSpec {
        cache_cluster_id: Some(c.id.to_string()),
        replication_group_id: None,
        replication_group_description: None,
        engine: s.engine,
        engine_version: s.engine_version.clone(),
        node_type: s.node_type.clone(),
        num_cache_nodes: s.num_nodes,
        preferred_availability_zone: s.preferred_availability_zone.clone(),
        cache_cluster_create_time_ms: c.created_ms,
        maintenance_window: s.maintenance_window.clone(),
        port: s.port,
        parameter_group_name: s.parameter_group_name.clone(),
        subnet_group_name: s.subnet_group_name.clone(),
        auto_minor_version_upgrade: s.auto_minor_version_upgrade,
        snapshot_retention_limit: g.map_or(s.snapshot_retention_limit, |g| {
            g.spec.snapshot_retention_limit
        }),
        snapshot_window: g.map_or_else(
            || s.snapshot_window.clone().unwrap_or_default(),
            |g| g.spec.snapshot_window.clone(),
        ),
        automatic_failover: false,
        kms_key_id: None,
        at_rest_encryption: s.at_rest_encryption_enabled,
        nodes: vec![NodeSnapshot {
            cache_cluster_id: c.id.to_string(),
            node_group_id: replication_groups::NODE_GROUP_ID.to_string(),
            cache_node_id: n.id.to_string(),
            cache_node_create_time_ms: n.created_ms,
            snapshot_create_time_ms: 0,
            size: 0,
            file: String::new(),
            slots: Vec::new(),
            replica_count: None,
            primary_az: None,
            replica_azs: Vec::new(),
        }],
        cluster_enabled: false,
    };
    Ok(Source {
        clusters: vec![c],
        spec,
        nodes: vec![node],
    })
}

pub(crate) async fn create(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let name = validate_name(p.required("SnapshotName")?)?;
    let tags = p.tags("Tags")?.unwrap_or_default();
    let _guard = cp.lock.lock().await;
    let mut src = source(cp, region, p).await?;
    if let Some(k) = p.str("KmsKeyId") {
        src.spec.kms_key_id = Some(k.to_string());
    }
    take(cp, region, &name, MANUAL, src, &tags).await
}

/// Record a snapshot as `creating`, mark its source `snapshotting`, and capture it
/// in the background. The caller holds the lock.
async fn take(
    cp: &Arc<Inner>,
    region: &str,
    name: &str,
    kind: &str,
    mut src: Source,
    tags: &[(String, String)],
) -> Result<String, ApiError> {
    if cp.store.snapshot(region, name).await?.is_some() {
        return Err(ApiError::SnapshotAlreadyExists(name.to_string()));
    }
    if cp.store.snapshots(region).await?.len() >= MAX_SNAPSHOTS {
        return Err(ApiError::SnapshotQuotaExceeded(format!(
            "A region can have at most {MAX_SNAPSHOTS} snapshots."
        )));
    }
    for node in &mut src.spec.nodes {
        node.file = format!("{name}-{}.rdb", node.node_group_id);
    }
    let snap = SnapshotRecord {
        region: region.to_string(),
        name: name.to_string(),
        status: CREATING.to_string(),
        source: kind.to_string(),
        created_ms: now_ms(),
        spec: src.spec,
    };
    cp.store.put_snapshot(&snap).await?;
    cp.store
        .put_tags(&cp.arn(region, "snapshot", name), tags)
        .await?;
    set_source_status(cp, region, &snap, &src.clusters, "snapshotting").await?;
    let out = render_one(cp, &snap, true);
    let cp = Arc::clone(cp);
    let region = region.to_string();
    let nodes = src.nodes;
    let clusters = src.clusters;
    tokio::spawn(async move {
        let result = capture(&cp, &region, snap, nodes).await;
        let _guard = cp.lock.lock().await;
        if let Ok(Some(s)) = cp.store.snapshot(&region, &result.0).await {
            let _ = set_source_status(&cp, &region, &s, &clusters, status::AVAILABLE).await;
        }
        if let Err(e) = result.1 {
            tracing::error!(region, snapshot = %result.0, error = %e, "snapshot failed");
        }
    });
    Ok(out)
}

/// Capture the data and mark the snapshot available (or remove it on failure).
async fn capture(
    cp: &Arc<Inner>,
    region: &str,
    mut snap: SnapshotRecord,
    nodes: Vec<SocketAddr>,
) -> (String, Result<(), ApiError>) {
    let name = snap.name.clone();
    let started = std::time::Instant::now();
    let result = async {
        let sizes = capture_all(cp, region, &snap.spec, &nodes).await?;
        let _guard = cp.lock.lock().await;
        for (n, size) in snap.spec.nodes.iter_mut().zip(&sizes) {
            n.size = *size;
            n.snapshot_create_time_ms = now_ms();
        }
        snap.status = AVAILABLE.to_string();
        cp.store.put_snapshot(&snap).await?;
        tracing::info!(region, snapshot = %snap.name, files = sizes.len(), bytes = sizes.iter().sum::<u64>(), elapsed_ms = started.elapsed().as_millis() as u64, "snapshot available");
        Ok::<(), ApiError>(())
    }
    .await;
    if result.is_err() {
        // Files of the node groups that did get captured go too.
        let _guard = cp.lock.lock().await;
        let _ = remove(cp, &snap).await;
    }
    (name, result)
}

async fn set_source_status(
    cp: &Inner,
    region: &str,
    snap: &SnapshotRecord,
    clusters: &[ClusterRecord],
    new_status: &str,
) -> Result<(), ApiError> {
    for c in clusters {
        if let Some(mut fresh) = cp.store.cluster(region, &c.id).await? {
            if fresh.status == status::AVAILABLE || fresh.status == "snapshotting" {
                fresh.status = new_status.to_string();
                cp.store.update_cluster(&fresh).await?;
            }
        }
    }
    if let Some(rg) = &snap.spec.replication_group_id {
        if let Some(mut g) = cp.store.replication_group(region, rg).await? {
            if g.status == status::AVAILABLE || g.status == "snapshotting" {
                g.status = new_status.to_string();
                g.spec.snapshotting_cluster_id = (new_status == "snapshotting")
                    .then(|| {
                        clusters
                            .first()
                            .map(|c| c.id.to_string())
                            .unwrap_or_default()
                    })
                    .or(g.spec.snapshotting_cluster_id.clone());
                cp.store.put_replication_group(&g, &[]).await?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn describe(cp: &Inner, region: &str, p: &Params) -> Result<String, ApiError> {
    let show_config = p.bool("ShowNodeGroupConfig")?.unwrap_or(false);
    let snaps = match p.str("SnapshotName") {
        Some(n) => vec![find(cp, region, n).await?],
        None => cp.store.snapshots(region).await?,
    };
    let cluster = p.str("CacheClusterId").map(str::to_ascii_lowercase);
    let group = p.str("ReplicationGroupId").map(str::to_ascii_lowercase);
    let source = p.str("SnapshotSource");
    if let Some(s) = source {
        if s != MANUAL && s != AUTOMATED {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid SnapshotSource {s}: use manual or automated."
            )));
        }
    }
    let snaps: Vec<_> = snaps
        .into_iter()
        .filter(|s| {
            cluster.as_deref().is_none_or(|c| {
                s.spec.cache_cluster_id.as_deref() == Some(c)
                    || s.spec.nodes.iter().any(|n| n.cache_cluster_id == c)
            })
        })
        .filter(|s| {
            group
                .as_deref()
                .is_none_or(|g| s.spec.replication_group_id.as_deref() == Some(g))
        })
        .filter(|s| source.is_none_or(|src| s.source == src))
        .collect();
    // DescribeSnapshots pages by 20–50, default 50.
    let (page, marker) = paginate_with(snaps, p, 50, 50, |s| s.name.clone())?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.list("Snapshots", "Snapshot", &page, |w, s| {
        write_snapshot(cp, w, s, show_config)
    });
    Ok(w.finish())
}

pub(crate) async fn copy(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let src_name = p.required("SourceSnapshotName")?;
    let target = validate_name(p.required("TargetSnapshotName")?)?;
    if let Some(bucket) = p.str("TargetBucket") {
        return export(cp, region, src_name, &target, bucket).await;
    }
    let tags = p.tags("Tags")?.unwrap_or_default();
    let _guard = cp.lock.lock().await;
    let src = find(cp, region, src_name).await?;
    if src.status != AVAILABLE {
        return Err(ApiError::InvalidSnapshotState(format!(
            "Snapshot {src_name} is not available (current state: {}).",
            src.status
        )));
    }
    if cp.store.snapshot(region, &target).await?.is_some() {
        return Err(ApiError::SnapshotAlreadyExists(target));
    }
    let mut copy = src.clone();
    copy.name = target.clone();
    copy.source = MANUAL.to_string();
    copy.created_ms = now_ms();
    for n in &mut copy.spec.nodes {
        let new_file = format!("{target}-{}.rdb", n.node_group_id);
        tokio::fs::copy(
            file_path(cp, region, &n.file),
            file_path(cp, region, &new_file),
        )
        .await
        .map_err(|e| ApiError::Internal(format!("copying snapshot file: {e}")))?;
        n.file = new_file;
    }
    if let Some(k) = p.str("KmsKeyId") {
        copy.spec.kms_key_id = Some(k.to_string());
    }
    cp.store.put_snapshot(&copy).await?;
    cp.store
        .put_tags(&cp.arn(region, "snapshot", &target), &tags)
        .await?;
    Ok(render_one(cp, &copy, false))
}

/// An S3 bucket name as exports accept it (it becomes a directory under `<data-dir>/s3`).
pub(crate) fn validate_bucket(bucket: &str) -> Result<(), ApiError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidParameterValue(format!(
            "Invalid S3 bucket name {bucket}."
        )))
    }
}

/// CopySnapshot with `TargetBucket`: export for external access, as plain RDB files
/// (decrypted when the snapshot is sealed at rest) at `<data-dir>/s3/<bucket>/<target>-<shard>.rdb`,
/// loadable by redis-server and by `SnapshotArns` `arn:aws:s3:::<bucket>/<file>`.
async fn export(
    cp: &Arc<Inner>,
    region: &str,
    src_name: &str,
    target: &str,
    bucket: &str,
) -> Result<String, ApiError> {
    validate_bucket(bucket)?;
    let _guard = cp.lock.lock().await;
    let src = find(cp, region, src_name).await?;
    if src.status != AVAILABLE {
        return Err(ApiError::InvalidSnapshotState(format!(
            "Snapshot {src_name} is not available (current state: {}).",
            src.status
        )));
    }
    let dir = cp.config.data_dir.join("s3").join(bucket);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::Internal(format!("export directory: {e}")))?;
    for n in &src.spec.nodes {
        let from = file_path(cp, region, &n.file);
        let to = dir.join(format!("{target}-{}.rdb", n.node_group_id));
        if crate::at_rest::is_sealed(&from) {
            let key = cp.at_rest_key.clone();
            tokio::task::spawn_blocking(move || key.open(&from, &to))
                .await
                .map_err(|e| ApiError::Internal(format!("export: {e}")))??;
        } else {
            tokio::fs::copy(&from, &to)
                .await
                .map_err(|e| ApiError::Internal(format!("export snapshot: {e}")))?;
        }
    }
    tracing::info!(
        region,
        snapshot = src_name,
        bucket,
        target,
        "snapshot exported"
    );
    Ok(render_one(cp, &src, false))
}

pub(crate) async fn delete(cp: &Arc<Inner>, region: &str, p: &Params) -> Result<String, ApiError> {
    let name = p.required("SnapshotName")?;
    let _guard = cp.lock.lock().await;
    let mut s = find(cp, region, name).await?;
    if s.status != AVAILABLE {
        return Err(ApiError::InvalidSnapshotState(format!(
            "Snapshot {name} is not available (current state: {}).",
            s.status
        )));
    }
    remove(cp, &s).await?;
    s.status = DELETING.to_string();
    Ok(render_one(cp, &s, false))
}

async fn remove(cp: &Inner, s: &SnapshotRecord) -> Result<(), ApiError> {
    for n in &s.spec.nodes {
        let _ = tokio::fs::remove_file(file_path(cp, &s.region, &n.file)).await;
    }
    cp.store
        .delete_snapshot(&s.region, &s.name, &cp.arn(&s.region, "snapshot", &s.name))
        .await
}

/// `FinalSnapshotIdentifier` of a delete: capture now, synchronously, before the
/// nodes go. The caller holds the lock.
pub(crate) async fn final_snapshot(
    cp: &Arc<Inner>,
    region: &str,
    name: &str,
    cluster: Option<&ClusterRecord>,
    group: Option<&str>,
) -> Result<(), ApiError> {
    let name = validate_name(name)?;
    if cp.store.snapshot(region, &name).await?.is_some() {
        return Err(ApiError::SnapshotAlreadyExists(name));
    }
    let src = match (cluster, group) {
        (_, Some(rg)) => group_source(cp, region, rg).await?,
        (Some(c), None) => cluster_source(cp, c.clone(), None).await?,
        (None, None) => return Err(ApiError::Internal("final snapshot of nothing".into())),
    };
    let mut spec = src.spec;
    for node in &mut spec.nodes {
        node.file = format!("{name}-{}.rdb", node.node_group_id);
    }
    let snap = SnapshotRecord {
        region: region.to_string(),
        name: name.clone(),
        status: CREATING.to_string(),
        source: MANUAL.to_string(),
        created_ms: now_ms(),
        spec,
    };
    cp.store.put_snapshot(&snap).await?;
    match capture_all(cp, region, &snap.spec, &src.nodes).await {
        Ok(sizes) => {
            let mut snap = snap;
            for (n, size) in snap.spec.nodes.iter_mut().zip(&sizes) {
                n.size = *size;
                n.snapshot_create_time_ms = now_ms();
            }
            snap.status = AVAILABLE.to_string();
            cp.store.put_snapshot(&snap).await?;
            Ok(())
        }
        Err(e) => {
            remove(cp, &snap).await?;
            Err(ApiError::Internal(format!("final snapshot failed: {e}")))
        }
    }
}

/// The RDB files a new cluster or group is seeded from, and the snapshot they
/// belong to (None for `SnapshotArns`).
pub(crate) struct RestoreFiles {
    pub files: Vec<PathBuf>,
    pub snapshot: Option<SnapshotRecord>,
}

impl RestoreFiles {
    /// The files that may hold keys of `slots`: a cluster-mode snapshot's file
    /// holds only its shard's slots, so a shard of the same layout reads just its
    /// own file; other files (RDB files, cluster-mode-disabled snapshots) may
    /// hold any key.
    pub(crate) fn for_slots(&self, slots: &[(u16, u16)]) -> Vec<PathBuf> {
        let overlaps = |theirs: &[(u16, u16)]| {
            theirs
                .iter()
                .any(|&(a, b)| slots.iter().any(|&(c, d)| a <= d && c <= b))
        };
        let sharded = self.snapshot.as_ref().filter(|s| s.spec.cluster_enabled);
        self.files
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                sharded
                    .and_then(|s| s.spec.nodes.get(*i))
                    .is_none_or(|n| n.slots.is_empty() || overlaps(&n.slots))
            })
            .map(|(_, f)| f.clone())
            .collect()
    }

    /// The one file a cluster-mode-disabled cluster or group loads. As on AWS, a
    /// snapshot of a cluster-mode-enabled group seeds only a cluster-mode-enabled
    /// group (the other way round is allowed).
    pub(crate) fn single(self) -> Result<PathBuf, ApiError> {
        if let Some(s) = self.snapshot.as_ref().filter(|s| s.spec.cluster_enabled) {
            return Err(ApiError::InvalidParameterCombination(format!(
                "Snapshot {} was taken from a cluster-mode-enabled replication group; it can only be restored into a cluster-mode-enabled replication group.",
                s.name
            )));
        }
        let mut files = self.files;
        if files.len() != 1 {
            return Err(ApiError::InvalidParameterValue(
                "Exactly one SnapshotArn is needed for a cluster-mode-disabled cluster.".into(),
            ));
        }
        files
            .pop()
            .ok_or_else(|| ApiError::Internal("no file to restore".into()))
    }
}

/// [`restore_files`] for a cluster-mode-disabled cluster: exactly one file.
pub(crate) async fn restore_source(
    cp: &Inner,
    region: &str,
    p: &Params,
    engine: Engine,
) -> Result<Option<PathBuf>, ApiError> {
    restore_files(cp, region, p, engine)
        .await?
        .map(RestoreFiles::single)
        .transpose()
}

/// Where a new cluster's data comes from: a snapshot by name (one file per node
/// group), or RDB files named by `SnapshotArns`. Local forms accepted for an
/// ARN: an absolute path, `file:///abs/path.rdb`, or
/// `arn:aws:s3:::bucket/key.rdb`, which means `<data-dir>/s3/bucket/key.rdb`.
pub(crate) async fn restore_files(
    cp: &Inner,
    region: &str,
    p: &Params,
    engine: Engine,
) -> Result<Option<RestoreFiles>, ApiError> {
    let by_name = p.str("SnapshotName");
    let arns = p
        .list("SnapshotArns", "SnapshotArn")?
        .filter(|l| !l.is_empty());
    if by_name.is_none() && arns.is_none() {
        return Ok(None);
    }
    if engine == Engine::Memcached {
        return Err(ApiError::InvalidParameterCombination(
            "Restoring from a snapshot is not supported for memcached clusters.".into(),
        ));
    }
    if by_name.is_some() && arns.is_some() {
        return Err(ApiError::InvalidParameterCombination(
            "Specify either SnapshotName or SnapshotArns, not both.".into(),
        ));
    }
    if let Some(name) = by_name {
        let s = find(cp, region, name).await?;
        if s.status != AVAILABLE {
            return Err(ApiError::InvalidSnapshotState(format!(
                "Snapshot {name} is not available (current state: {}).",
                s.status
            )));
        }
        let files = s
            .spec
            .nodes
            .iter()
            .map(|n| file_path(cp, region, &n.file))
            .collect();
        return Ok(Some(RestoreFiles {
            files,
            snapshot: Some(s),
        }));
    }
    let mut files = Vec::new();
    for arn in arns.unwrap_or_default() {
        let path = if let Some(rest) = arn.strip_prefix("arn:aws:s3:::") {
            cp.config.data_dir.join("s3").join(rest)
        } else if let Some(rest) = arn.strip_prefix("file://") {
            PathBuf::from(rest)
        } else {
            PathBuf::from(&arn)
        };
        if !path.is_absolute() || !path.is_file() {
            return Err(ApiError::InvalidParameterValue(format!(
                "SnapshotArn {arn}: no RDB file at {}.",
                path.display()
            )));
        }
        files.push(path);
    }
    Ok(Some(RestoreFiles {
        files,
        snapshot: None,
    }))
}

/// At start-up: a snapshot still `creating` was interrupted by a crash; it is
/// removed (with any partial file), as a failed snapshot is on AWS.
pub(crate) async fn reconcile(cp: &Inner) -> Result<usize, ApiError> {
    let mut removed = 0;
    for s in cp.store.all_snapshots().await? {
        if s.status == AVAILABLE {
            continue;
        }
        for n in &s.spec.nodes {
            let _ = tokio::fs::remove_file(
                file_path(cp, &s.region, &n.file).with_extension("rdb.partial"),
            )
            .await;
        }
        remove(cp, &s).await?;
        events::record(
            cp,
            &s.region,
            &s.name,
            events::CACHE_CLUSTER,
            "Snapshot failed: interrupted by a restart",
        )
        .await;
        removed += 1;
    }
    Ok(removed)
}

/// Load `file` into a freshly started node.
pub(crate) async fn load(
    cp: &Inner,
    node: SocketAddr,
    file: &std::path::Path,
) -> Result<u64, ApiError> {
    crate::at_rest::restore(&cp.at_rest_key, node, file).await
}

/// Load `files` into a node, keeping only the keys of `slots` when given (a
/// shard primary of a cluster-mode group).
async fn load_all(
    cp: &Inner,
    node: SocketAddr,
    files: &[PathBuf],
    slots: Option<&[(u16, u16)]>,
) -> Result<u64, ApiError> {
    let mut keys = 0;
    for f in files {
        keys += crate::at_rest::restore_slots(&cp.at_rest_key, node, f, slots).await?;
    }
    Ok(keys)
}

/// Take today's automatic snapshot of every cluster and group with a retention
/// limit, and remove automatic snapshots beyond it (ElastiCache's backup window,
/// run now: the admin API calls this, and so does the daily scheduler).
pub(crate) async fn run_automatic(cp: &Arc<Inner>) -> Result<Vec<String>, ApiError> {
    let _guard = cp.lock.lock().await;
    let mut taken = Vec::new();
    let stamp = crate::timestamp(now_ms());
    let stamp = stamp.get(..19).unwrap_or(&stamp).replace([':', 'T'], "-");
    for c in cp.store.all_clusters().await? {
        if c.replication_group_id.is_some()
            || c.spec.snapshot_retention_limit <= 0
            || c.spec.engine == Engine::Memcached
        {
            continue;
        }
        let name = format!("automatic.{}-{stamp}", c.id);
        let region = c.region.clone();
        let limit = c.spec.snapshot_retention_limit;
        let id = c.id.to_string();
        if let Ok(src) = cluster_source(cp, c, None).await {
            if take(cp, &region, &name, AUTOMATED, src, &[]).await.is_ok() {
                taken.push(name);
            }
        }
        prune(
            cp,
            &region,
            |s| s.spec.cache_cluster_id.as_deref() == Some(id.as_str()),
            limit,
        )
        .await?;
    }
    for g in cp.store.all_replication_groups().await? {
        if g.spec.snapshot_retention_limit <= 0 {
            continue;
        }
        let name = format!("automatic.{}-{stamp}", g.id);
        if let Ok(src) = group_source(cp, &g.region, &g.id).await {
            if take(cp, &g.region, &name, AUTOMATED, src, &[])
                .await
                .is_ok()
            {
                taken.push(name);
            }
        }
        let id = g.id.clone();
        prune(
            cp,
            &g.region,
            |s| s.spec.replication_group_id.as_deref() == Some(id.as_str()),
            g.spec.snapshot_retention_limit,
        )
        .await?;
    }
    taken.extend(crate::serverless::run_automatic(cp, &stamp).await?);
    Ok(taken)
}

/// Keep the newest `keep` automated snapshots matching `of` (one a day is taken,
/// so this is the retention limit in days).
async fn prune(
    cp: &Inner,
    region: &str,
    of: impl Fn(&SnapshotRecord) -> bool,
    keep: i64,
) -> Result<(), ApiError> {
    let mut autos: Vec<_> = cp
        .store
        .snapshots(region)
        .await?
        .into_iter()
        .filter(|s| s.source == AUTOMATED && of(s))
        .collect();
    autos.sort_by_key(|s| std::cmp::Reverse(s.created_ms));
    for old in autos.into_iter().skip(usize::try_from(keep).unwrap_or(0)) {
        if old.status == AVAILABLE {
            remove(cp, &old).await?;
        }
    }
    Ok(())
}

fn render_one(cp: &Inner, s: &SnapshotRecord, show_config: bool) -> String {
    let mut w = XmlWriter::new();
    w.element("Snapshot", |w| write_snapshot(cp, w, s, show_config));
    w.finish()
}

fn write_snapshot(cp: &Inner, w: &mut XmlWriter, s: &SnapshotRecord, show_config: bool) {
    let sp = &s.spec;
    w.text("SnapshotName", &s.name)
        .opt_text("ReplicationGroupId", sp.replication_group_id.as_deref())
        .opt_text(
            "ReplicationGroupDescription",
            sp.replication_group_description.as_deref(),
        )
        .opt_text("CacheClusterId", sp.cache_cluster_id.as_deref())
        .text("SnapshotStatus", &s.status)
        .text("SnapshotSource", &s.source)
        .text("CacheNodeType", &sp.node_type)
        .text("Engine", sp.engine.as_str())
        .text("EngineVersion", &sp.engine_version);
    // A cluster-mode-enabled group's snapshot has no single source cluster: AWS
    // leaves these out and gives each shard's details in NodeSnapshots.
    if !sp.cluster_enabled {
        w.int("NumCacheNodes", i64::from(sp.num_cache_nodes))
            .text("PreferredAvailabilityZone", &sp.preferred_availability_zone)
            .text(
                "CacheClusterCreateTime",
                &crate::timestamp(sp.cache_cluster_create_time_ms),
            );
    }
    w.text("PreferredMaintenanceWindow", &sp.maintenance_window)
        .int("Port", i64::from(sp.port))
        .text("CacheParameterGroupName", &sp.parameter_group_name)
        .text("CacheSubnetGroupName", &sp.subnet_group_name)
        .bool("AutoMinorVersionUpgrade", sp.auto_minor_version_upgrade)
        .int("SnapshotRetentionLimit", sp.snapshot_retention_limit)
        .text("SnapshotWindow", &sp.snapshot_window)
        .int("NumNodeGroups", sp.nodes.len().max(1) as i64)
        .text(
            "AutomaticFailover",
            if sp.automatic_failover {
                "enabled"
            } else {
                "disabled"
            },
        )
        .list("NodeSnapshots", "NodeSnapshot", &sp.nodes, |w, n| {
            w.text("CacheClusterId", &n.cache_cluster_id)
                .text("NodeGroupId", &n.node_group_id)
                .text("CacheNodeId", &n.cache_node_id);
            if show_config {
                let slots = if n.slots.is_empty() {
                    "0-16383".to_string()
                } else {
                    crate::shards::format_slots(&n.slots)
                };
                let replicas = n
                    .replica_count
                    .unwrap_or(sp.num_cache_nodes.saturating_sub(1));
                w.element("NodeGroupConfiguration", |w| {
                    w.text("NodeGroupId", &n.node_group_id)
                        .text("Slots", &slots)
                        .int("ReplicaCount", i64::from(replicas))
                        .text(
                            "PrimaryAvailabilityZone",
                            n.primary_az
                                .as_deref()
                                .unwrap_or(&sp.preferred_availability_zone),
                        );
                    if !n.replica_azs.is_empty() {
                        w.string_list(
                            "ReplicaAvailabilityZones",
                            "AvailabilityZone",
                            &n.replica_azs,
                        );
                    }
                });
            }
            w.text("CacheSize", &format!("{} MB", n.size.div_ceil(1024 * 1024)))
                .text(
                    "CacheNodeCreateTime",
                    &crate::timestamp(n.cache_node_create_time_ms),
                );
            if n.snapshot_create_time_ms > 0 {
                w.text(
                    "SnapshotCreateTime",
                    &crate::timestamp(n.snapshot_create_time_ms),
                );
            }
        })
        .opt_text("KmsKeyId", sp.kms_key_id.as_deref())
        .text("ARN", &cp.arn(&s.region, "snapshot", &s.name))
        .text("DataTiering", "disabled");
}

/// Load a snapshot into a started cluster's node and make the cluster available;
/// on failure the cluster is `restore-failed`, as on AWS.
pub(crate) fn spawn_restore(cp: &Arc<Inner>, region: &str, id: &CacheClusterId, file: PathBuf) {
    let cp = Arc::clone(cp);
    let region = region.to_string();
    let id = id.clone();
    tokio::spawn(async move {
        let (node, mut files, slots) = match cp.store.cluster(&region, &id).await {
            // The engine behind a TLS front, when there is one.
            Ok(Some(c)) => (
                c.nodes.first().and_then(|n| {
                    cp.nodes
                        .engine_addr(&crate::clusters::node_key(&c.region, &c.id, n.id))
                        .or_else(|| Some(SocketAddr::new(n.bind_ip.parse().ok()?, n.port)))
                }),
                c.spec.restore_more.clone(),
                c.spec.restore_slots.clone(),
            ),
            _ => (None, Vec::new(), None),
        };
        files.insert(0, file);
        let started = std::time::Instant::now();
        let result = match node {
            Some(addr) => load_all(&cp, addr, &files, slots.as_deref()).await,
            None => Err(ApiError::Internal("cluster has no node".into())),
        };
        let _guard = cp.lock.lock().await;
        let Ok(Some(mut c)) = cp.store.cluster(&region, &id).await else {
            return;
        };
        match result {
            Ok(keys) => {
                tracing::info!(region, cluster = %id, keys, elapsed_ms = started.elapsed().as_millis() as u64, "restored from snapshot");
                c.status = status::AVAILABLE.to_string();
            }
            Err(e) => {
                tracing::error!(region, cluster = %id, error = %e, "restore failed");
                events::record(
                    &cp,
                    &region,
                    id.as_str(),
                    events::CACHE_CLUSTER,
                    &format!("Restore from snapshot failed: {e}"),
                )
                .await;
                c.status = "restore-failed".to_string();
            }
        }
        c.spec.restore_from = None;
        c.spec.restore_more.clear();
        c.spec.restore_slots = None;
        let _ = cp.store.update_cluster(&c).await;
        if let Some(rg) = c.replication_group_id.clone() {
            let _ = replication_groups::finish_locked(&cp, &region, &rg).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ng: &str, slots: Vec<(u16, u16)>) -> NodeSnapshot {
        NodeSnapshot {
            cache_cluster_id: format!("g-{ng}-001"),
            node_group_id: ng.to_string(),
            cache_node_id: "0001".to_string(),
            cache_node_create_time_ms: 0,
            snapshot_create_time_ms: 0,
            size: 0,
            file: format!("s-{ng}.rdb"),
            slots,
            replica_count: Some(0),
            primary_az: None,
            replica_azs: Vec::new(),
        }
    }

    fn snapshot(cluster_enabled: bool, nodes: Vec<NodeSnapshot>) -> SnapshotRecord {
        SnapshotRecord {
            region: "us-east-1".into(),
            name: "s".into(),
            status: AVAILABLE.into(),
            source: MANUAL.into(),
            created_ms: 0,
            spec: SnapshotSpec {
                cache_cluster_id: None,
                replication_group_id: Some("g".into()),
                replication_group_description: None,
                engine: Engine::Redis,
                engine_version: "7.1".into(),
                node_type: "cache.t3.micro".into(),
                num_cache_nodes: 3,
                preferred_availability_zone: "us-east-1a".into(),
                cache_cluster_create_time_ms: 0,
                maintenance_window: String::new(),
                port: 6379,
                parameter_group_name: "default.redis7.cluster.on".into(),
                subnet_group_name: "default".into(),
                auto_minor_version_upgrade: true,
                snapshot_retention_limit: 0,
                snapshot_window: String::new(),
                automatic_failover: true,
                kms_key_id: None,
                at_rest_encryption: false,
                nodes,
                cluster_enabled,
            },
        }
    }

    fn names(files: Vec<PathBuf>) -> Vec<String> {
        files
            .iter()
            .filter_map(|f| f.file_name()?.to_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn shards_read_only_the_files_that_may_hold_their_slots() {
        let nodes = vec![
            node("0001", vec![(0, 5460)]),
            node("0002", vec![(5461, 10922)]),
            node("0003", vec![(10923, 16383)]),
        ];
        let files: Vec<PathBuf> = nodes.iter().map(|n| PathBuf::from(&n.file)).collect();
        let r = RestoreFiles {
            files: files.clone(),
            snapshot: Some(snapshot(true, nodes.clone())),
        };
        // Same layout: one file each.
        assert_eq!(names(r.for_slots(&[(0, 5460)])), ["s-0001.rdb"]);
        assert_eq!(names(r.for_slots(&[(10923, 16383)])), ["s-0003.rdb"]);
        // Two shards: the middle file is split between them.
        assert_eq!(
            names(r.for_slots(&[(0, 8191)])),
            ["s-0001.rdb", "s-0002.rdb"]
        );
        assert_eq!(
            names(r.for_slots(&[(8192, 16383)])),
            ["s-0002.rdb", "s-0003.rdb"]
        );
        // Ranges touching at one slot overlap.
        assert_eq!(
            names(r.for_slots(&[(5460, 5460), (16383, 16383)])),
            ["s-0001.rdb", "s-0003.rdb"]
        );
        // A cluster-mode-disabled snapshot's or plain RDB files may hold any key.
        let plain = RestoreFiles {
            files: files.clone(),
            snapshot: Some(snapshot(false, nodes)),
        };
        assert_eq!(plain.for_slots(&[(0, 10)]).len(), 3);
        let arns = RestoreFiles {
            files,
            snapshot: None,
        };
        assert_eq!(arns.for_slots(&[(0, 10)]).len(), 3);
        assert!(arns.single().is_err(), "three files for one node");
    }

    #[test]
    fn cluster_mode_snapshots_do_not_seed_a_single_node() {
        let r = RestoreFiles {
            files: vec![PathBuf::from("s-0001.rdb")],
            snapshot: Some(snapshot(true, vec![node("0001", vec![(0, 16383)])])),
        };
        assert!(matches!(
            r.single(),
            Err(ApiError::InvalidParameterCombination(_))
        ));
        let ok = RestoreFiles {
            files: vec![PathBuf::from("s-0001.rdb")],
            snapshot: Some(snapshot(false, vec![node("0001", Vec::new())])),
        };
        assert_eq!(ok.single().ok(), Some(PathBuf::from("s-0001.rdb")));
    }
}
