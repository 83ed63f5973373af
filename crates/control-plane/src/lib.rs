//! The ElastiCache control plane: validates API calls, keeps resources in SQLite,
//! and drives the live engine nodes behind them.
//!
//! Entry point: [`ControlPlane::open`], then [`ControlPlane::handle`] for each
//! decoded query-protocol request.

mod admin;
mod at_rest;
mod cache_security_groups;
mod catalog;
mod cluster_mode;
mod clusters;
mod engine_versions;
mod error;
mod events;
mod global_groups;
mod ids;
mod log_delivery;
mod metrics;
mod misc;
mod model;
mod nodes;
mod parameter_groups;
mod persist;
mod proxy;
pub mod rdb_io;
mod replication_groups;
mod reserved;
mod security;
mod serverless;
mod shards;
mod snapshots;
mod store;
mod subnet_groups;
mod tags;
mod users;

pub use admin::{Fault, NodeInfo};
pub use catalog::{Engine, ENGINE_VERSIONS, NODE_TYPES};
pub use error::ApiError;
pub use metrics::{ConsoleState, EventView, GroupView, NodeView, ShardView};
pub use nodes::{Addressing, IamCredentials, NodeNetwork};

use aws_query::Params;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// The XML namespace of every ElastiCache response.
pub const NAMESPACE: &str = "http://elasticache.amazonaws.com/doc/2015-02-02/";
pub const API_VERSION: &str = "2015-02-02";

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database (and later snapshots) live.
    pub data_dir: PathBuf,
    pub account_id: String,
    /// How long `creating`, `modifying`, `rebooting` and `deleting` last.
    pub provision_delay: Duration,
    pub network: NodeNetwork,
    /// Let nodes run the commands ElastiCache refuses (a plain Redis).
    pub allow_restricted_commands: bool,
    /// Keep Redis data across restarts, saving at this interval (and on shutdown).
    pub persist_interval: Option<Duration>,
    /// How long a group's primary must be unreachable (paused or isolated by fault
    /// injection) before automatic failover replaces it.
    pub failover_detection: Duration,
    /// The access keys IAM auth tokens of RBAC users are verified against.
    pub iam_credentials: nodes::IamCredentials,
    /// Bytes per "GB" of a serverless cache's data storage limit.
    pub serverless_gb_bytes: u64,
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("cannot open database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot restore state: {0}")]
    Restore(#[from] ApiError),
    #[error("certificate authority: {0}")]
    Tls(String),
    #[error("{0}")]
    AtRest(String),
}

#[derive(Clone)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) ca_pem_path: PathBuf,
    /// The key of at-rest encryption (`<data-dir>/at-rest.key`).
    pub(crate) at_rest_key: Arc<at_rest::Key>,
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) nodes: nodes::Supervisor,
    /// Serialises mutations, so concurrent calls cannot interleave a
    /// check-then-act on the same resources (or endpoints).
    pub(crate) lock: tokio::sync::Mutex<()>,
    /// Recent per-node statistics (metrics, the console).
    pub(crate) history: metrics::History,
}

impl Inner {
    pub(crate) fn arn(&self, region: &str, kind: &str, name: &str) -> String {
        ids::Arn::format(region, &self.config.account_id, kind, name)
    }
}

impl ControlPlane {
    /// Open (or create) the database, then bring every node recorded in it back
    /// on its endpoint and finish whatever was in flight when the process stopped.
    pub async fn open(config: Config) -> Result<ControlPlane, OpenError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| OpenError::DataDir(config.data_dir.clone(), e))?;
        let store = Store::open(&config.data_dir.join("elastilite.db")).await?;
        let (authority, created) = node_tls::Authority::load_or_create(&config.data_dir)
            .map_err(|e| OpenError::Tls(e.to_string()))?;
        tracing::info!(ca = %authority.ca_pem_path().display(), created, "certificate authority for in-transit encryption");
        let ca_pem_path = authority.ca_pem_path().to_path_buf();
        let nodes = nodes::Supervisor::new(
            config.network.clone(),
            config.allow_restricted_commands,
            Some(authority),
            config.iam_credentials.clone(),
        );
        nodes.set_log_dir(config.data_dir.join("logs"));
        let at_rest_key = Arc::new(
            at_rest::Key::load_or_create(&config.data_dir)
                .map_err(|e| OpenError::AtRest(e.to_string()))?,
        );
        let inner = Arc::new(Inner {
            at_rest_key,
            ca_pem_path,
            config,
            store,
            nodes,
            lock: tokio::sync::Mutex::new(()),
            history: metrics::History::default(),
        });
        for (id, cidrs) in inner.store.security_group_rules().await? {
            let rules = cidrs
                .iter()
                .filter_map(|c| redis_engine::sources::Cidr::parse(c))
                .collect();
            inner.nodes.set_security_group_rules(&id, Some(rules));
        }
        metrics::spawn_sampler(&inner);
        let clusters = inner.store.all_clusters().await?;
        let count = clusters.len();
        for c in clusters {
            let t = match c.status.as_str() {
                model::status::DELETING => clusters::Transition::Delete,
                model::status::CREATING => clusters::Transition::Provision,
                model::status::AVAILABLE => clusters::Transition::Reboot,
                _ => clusters::Transition::Modify,
            };
            // A node that cannot come back is logged and the rest still start.
            if let Err(e) = clusters::finish(&inner, &c.region, &c.id, t).await {
                tracing::error!(region = %c.region, cluster = %c.id, error = %e, "could not restore cluster");
            }
        }
        let interrupted = snapshots::reconcile(&inner).await?;
        if interrupted > 0 {
            tracing::warn!(
                snapshots = interrupted,
                "removed snapshots interrupted by the last stop"
            );
        }
        let groups = inner.store.all_replication_groups().await?;
        for g in &groups {
            let _guard = inner.lock.lock().await;
            if let Err(e) = replication_groups::finish_locked(&inner, &g.region, &g.id).await {
                tracing::error!(region = %g.region, replication_group = %g.id, error = %e, "could not restore replication group");
            }
        }
        match serverless::restore_all(&inner).await {
            Ok(n) if n > 0 => tracing::info!(serverless_caches = n, "serverless caches restored"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not restore serverless caches"),
        }
        tracing::info!(
            clusters = count,
            replication_groups = groups.len(),
            "state restored"
        );
        if let Some(interval) = inner.config.persist_interval {
            let loaded = persist::load_all(&inner).await;
            tracing::info!(nodes = loaded, "persisted data loaded");
            persist::spawn_periodic(&inner, interval);
        }
        Ok(ControlPlane { inner })
    }

    /// Run one ElastiCache action. `Ok(Some(xml))` is the body of
    /// `<{Action}Result>`; `Ok(None)` means the operation has no output.
    pub async fn handle(
        &self,
        region: &str,
        action: &str,
        p: &Params,
    ) -> Result<Option<String>, ApiError> {
        let out = self.run_action(region, action, p).await?;
        events::after_action(&self.inner, region, action, p).await;
        Ok(out)
    }

    async fn run_action(
        &self,
        region: &str,
        action: &str,
        p: &Params,
    ) -> Result<Option<String>, ApiError> {
        let cp = &self.inner;
        let body = match action {
            "CreateCacheCluster" => clusters::create(cp, region, p).await?,
            "DescribeCacheClusters" => clusters::describe(cp, region, p).await?,
            "ModifyCacheCluster" => clusters::modify(cp, region, p).await?,
            "DeleteCacheCluster" => clusters::delete(cp, region, p).await?,
            "RebootCacheCluster" => clusters::reboot(cp, region, p).await?,
            "DescribeCacheEngineVersions" => engine_versions::describe(p)?,
            "CreateReplicationGroup" => replication_groups::create(cp, region, p).await?,
            "DescribeReplicationGroups" => replication_groups::describe(cp, region, p).await?,
            "ModifyReplicationGroup" => replication_groups::modify(cp, region, p).await?,
            "DeleteReplicationGroup" => replication_groups::delete(cp, region, p).await?,
            "IncreaseReplicaCount" => replication_groups::increase_replicas(cp, region, p).await?,
            "DecreaseReplicaCount" => replication_groups::decrease_replicas(cp, region, p).await?,
            "TestFailover" => replication_groups::test_failover(cp, region, p).await?,
            "ModifyReplicationGroupShardConfiguration" => {
                shards::modify_shard_configuration(cp, region, p).await?
            }
            "DescribeEvents" => events::describe(cp, region, p).await?,
            "ListAllowedNodeTypeModifications" => {
                misc::allowed_node_type_modifications(cp, region, p).await?
            }
            "DescribeServiceUpdates" => misc::describe_service_updates(p)?,
            "DescribeUpdateActions" => misc::describe_update_actions(p)?,
            "BatchApplyUpdateAction" | "BatchStopUpdateAction" => misc::batch_update_action(p)?,
            "CreateSnapshot" => snapshots::create(cp, region, p).await?,
            "DescribeSnapshots" => snapshots::describe(cp, region, p).await?,
            "CopySnapshot" => snapshots::copy(cp, region, p).await?,
            "DeleteSnapshot" => snapshots::delete(cp, region, p).await?,
            "CreateCacheParameterGroup" => parameter_groups::create(cp, region, p).await?,
            "DescribeCacheParameterGroups" => {
                parameter_groups::describe_groups(cp, region, p).await?
            }
            "ModifyCacheParameterGroup" => parameter_groups::modify(cp, region, p).await?,
            "ResetCacheParameterGroup" => parameter_groups::reset(cp, region, p).await?,
            "DeleteCacheParameterGroup" => {
                parameter_groups::delete(cp, region, p).await?;
                return Ok(None);
            }
            "DescribeCacheParameters" => {
                parameter_groups::describe_parameters(cp, region, p).await?
            }
            "DescribeEngineDefaultParameters" => {
                parameter_groups::describe_engine_defaults(p).await?
            }
            "CreateCacheSubnetGroup" => subnet_groups::create(cp, region, p).await?,
            "DescribeCacheSubnetGroups" => subnet_groups::describe(cp, region, p).await?,
            "ModifyCacheSubnetGroup" => subnet_groups::modify(cp, region, p).await?,
            "DeleteCacheSubnetGroup" => {
                subnet_groups::delete(cp, region, p).await?;
                return Ok(None);
            }
            "CreateCacheSecurityGroup" => cache_security_groups::create(cp, region, p).await?,
            "DescribeCacheSecurityGroups" => cache_security_groups::describe(cp, region, p).await?,
            "DeleteCacheSecurityGroup" => {
                cache_security_groups::delete(cp, region, p).await?;
                return Ok(None);
            }
            "AuthorizeCacheSecurityGroupIngress" => {
                cache_security_groups::authorize(cp, region, p, true).await?
            }
            "RevokeCacheSecurityGroupIngress" => {
                cache_security_groups::authorize(cp, region, p, false).await?
            }
            "CreateUser" => users::create_user(cp, region, p).await?,
            "DescribeUsers" => users::describe_users(cp, region, p).await?,
            "ModifyUser" => users::modify_user(cp, region, p).await?,
            "DeleteUser" => users::delete_user(cp, region, p).await?,
            "CreateUserGroup" => users::create_group(cp, region, p).await?,
            "DescribeUserGroups" => users::describe_groups(cp, region, p).await?,
            "ModifyUserGroup" => users::modify_group(cp, region, p).await?,
            "DeleteUserGroup" => users::delete_group(cp, region, p).await?,
            "AddTagsToResource" => tags::add(cp, region, p).await?,
            "RemoveTagsFromResource" => tags::remove(cp, region, p).await?,
            "ListTagsForResource" => tags::list(cp, region, p).await?,
            // Serverless caches and their snapshots, global datastores,
            // reserved nodes and migrations (the api helper's block).
            "CreateServerlessCache" => serverless::create(cp, region, p).await?,
            "DescribeServerlessCaches" => serverless::describe(cp, region, p).await?,
            "ModifyServerlessCache" => serverless::modify(cp, region, p).await?,
            "DeleteServerlessCache" => serverless::delete(cp, region, p).await?,
            "CreateServerlessCacheSnapshot" => serverless::create_snapshot(cp, region, p).await?,
            "DescribeServerlessCacheSnapshots" => {
                serverless::describe_snapshots(cp, region, p).await?
            }
            "CopyServerlessCacheSnapshot" => serverless::copy_snapshot(cp, region, p).await?,
            "DeleteServerlessCacheSnapshot" => serverless::delete_snapshot(cp, region, p).await?,
            "ExportServerlessCacheSnapshot" => serverless::export_snapshot(cp, region, p).await?,
            "CreateGlobalReplicationGroup" => global_groups::create(cp, region, p).await?,
            "DescribeGlobalReplicationGroups" => global_groups::describe(cp, p).await?,
            "ModifyGlobalReplicationGroup" => global_groups::modify(cp, p).await?,
            "DeleteGlobalReplicationGroup" => global_groups::delete(cp, p).await?,
            "DisassociateGlobalReplicationGroup" => global_groups::disassociate(cp, p).await?,
            "FailoverGlobalReplicationGroup" => global_groups::failover(cp, p).await?,
            "IncreaseNodeGroupsInGlobalReplicationGroup"
            | "DecreaseNodeGroupsInGlobalReplicationGroup"
            | "RebalanceSlotsInGlobalReplicationGroup" => global_groups::node_groups(cp, p).await?,
            "StartMigration" => global_groups::start_migration(cp, region, p).await?,
            "TestMigration" => global_groups::test_migration(cp, region, p).await?,
            "CompleteMigration" => global_groups::complete_migration(cp, region, p).await?,
            "DescribeReservedCacheNodesOfferings" => reserved::describe_offerings(p)?,
            "PurchaseReservedCacheNodesOffering" => reserved::purchase(cp, region, p).await?,
            "DescribeReservedCacheNodes" => reserved::describe(cp, region, p).await?,
            other => return Err(ApiError::InvalidAction(other.to_string())),
        };
        Ok(Some(body))
    }

    /// Every node in every region (admin API).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, ApiError> {
        admin::nodes(&self.inner).await
    }

    /// Fault injection on one node (admin API).
    pub async fn inject(
        &self,
        region: &str,
        cluster: &str,
        node: &str,
        fault: Fault,
    ) -> Result<(), ApiError> {
        admin::inject(&self.inner, region, cluster, node, fault).await
    }

    /// Take the automatic snapshots now, as the backup window would (admin API).
    pub async fn run_snapshot_window(&self) -> Result<Vec<String>, ApiError> {
        snapshots::run_automatic(&self.inner).await
    }

    /// Every node's metrics in the Prometheus text format (`GET /metrics`).
    pub async fn metrics_text(&self) -> Result<String, ApiError> {
        let mut page = metrics::render(&metrics::views(&self.inner).await?);
        page.push_str(&metrics::render_serverless(
            &self.inner.nodes.ecpu_counters(),
        ));
        Ok(page)
    }

    /// What the web console shows: nodes with live statistics and history,
    /// replication groups, recent events (of `also_region` too).
    pub async fn console_state(&self, also_region: &str) -> Result<ConsoleState, ApiError> {
        metrics::console(&self.inner, also_region).await
    }

    /// Forget all state and stop every node (admin API).
    pub async fn reset(&self) -> Result<(), ApiError> {
        admin::reset(&self.inner).await
    }

    /// Security groups, simulated (admin API): every configured group's ingress CIDRs.
    pub async fn security_group_rules(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, ApiError> {
        Ok(self
            .inner
            .store
            .security_group_rules()
            .await?
            .into_iter()
            .collect())
    }

    /// Set a security group's ingress CIDRs (None: back to admitting only the
    /// local machine). Nodes and endpoints in the group apply it to new connections.
    pub async fn set_security_group_rules(
        &self,
        id: &str,
        cidrs: Option<Vec<String>>,
    ) -> Result<(), ApiError> {
        let valid = id.len() > 3
            && id.len() <= 64
            && id.starts_with("sg-")
            && id[3..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid security group id {id}: it must look like sg-0123abcd."
            )));
        }
        let parsed = match &cidrs {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|c| {
                        // IPv4 blocks, as the admin API documents them.
                        let v4 = c.split_once('/').is_some_and(|(ip, bits)| {
                            ip.parse::<std::net::Ipv4Addr>().is_ok()
                                && (bits == "0" || !bits.starts_with('0'))
                                && bits.parse::<u8>().is_ok_and(|b| b <= 32)
                        });
                        v4.then(|| redis_engine::sources::Cidr::parse(c))
                            .flatten()
                            .ok_or_else(|| {
                                ApiError::InvalidParameterValue(format!("Invalid CIDR {c}"))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let _guard = self.inner.lock.lock().await;
        self.inner
            .store
            .put_security_group_rules(id, cidrs.as_deref())
            .await?;
        self.inner.nodes.set_security_group_rules(id, parsed);
        Ok(())
    }

    /// The CA certificate clients trust for TLS nodes (`<data-dir>/ca.pem`).
    pub fn ca_pem_path(&self) -> &std::path::Path {
        &self.inner.ca_pem_path
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.config.data_dir
    }

    /// Every log delivery file being written, once all lines so far are on disk
    /// (admin API `GET /_elastilite/log-delivery`).
    pub fn log_delivery_files(&self) -> serde_json::Value {
        self.inner.nodes.sync_logs();
        let files: Vec<serde_json::Value> = self
            .inner
            .nodes
            .log_files()
            .into_iter()
            .map(|(k, d)| {
                serde_json::json!({
                    "region": k.region,
                    "cache_cluster_id": k.cluster,
                    "cache_node_id": format!("{:04}", k.node),
                    "log_type": d.log_type,
                    "log_format": if d.json { "json" } else { "text" },
                    "path": d.path.display().to_string(),
                })
            })
            .collect();
        serde_json::json!({
            "root": self.inner.config.data_dir.join("logs").display().to_string(),
            "files": files,
        })
    }

    pub fn account_id(&self) -> &str {
        &self.inner.config.account_id
    }

    /// Stop every node and close the database.
    pub async fn shutdown(&self) {
        if self.inner.config.persist_interval.is_some() {
            let _guard = self.inner.lock.lock().await;
            let saved = persist::save_all(&self.inner).await;
            tracing::info!(nodes = saved, "node data persisted");
        }
        self.inner.nodes.stop_all();
        self.inner.store.close().await;
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// ISO-8601 UTC with milliseconds, as AWS writes timestamps.
pub(crate) fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// `MaxRecords` (20–100, default 100) and `Marker` over an id-ordered list. The
/// marker is the key of the first item of the next page; absent on the last page.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    p: &Params,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    paginate_with(items, p, 100, 100, key)
}

/// [`paginate`] with an operation's own default and maximum page size.
pub(crate) fn paginate_with<T>(
    items: Vec<T>,
    p: &Params,
    default: i64,
    limit: i64,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = p.int("MaxRecords")?.unwrap_or(default);
    if !(20..=limit).contains(&max) {
        return Err(ApiError::InvalidParameterValue(format!(
            "MaxRecords must be between 20 and {limit}, got {max}."
        )));
    }
    let start = match p.str("Marker").filter(|m| !m.is_empty()) {
        Some(m) => items
            .iter()
            .position(|i| key(i).as_str() >= m)
            .unwrap_or(items.len()),
        None => 0,
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let marker = if rest.len() > max as usize {
        let tail = rest.split_off(max as usize);
        tail.first().map(&key)
    } else {
        None
    };
    Ok((rest, marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn pagination() {
        let items: Vec<String> = (0..45).map(|i| format!("c{i:02}")).collect();
        let p = Params::from_pairs([("MaxRecords", "20")]);
        let (page, marker) = paginate(items.clone(), &p, |s| s.clone()).unwrap();
        assert_eq!(page.len(), 20);
        assert_eq!(marker.as_deref(), Some("c20"));
        let p = Params::from_pairs([("MaxRecords", "20"), ("Marker", "c40")]);
        let (page, marker) = paginate(items.clone(), &p, |s| s.clone()).unwrap();
        assert_eq!(page.len(), 5);
        assert_eq!(marker, None);
        assert!(
            paginate(items, &Params::from_pairs([("MaxRecords", "5")]), |s| s
                .clone())
            .is_err()
        );
    }
}
