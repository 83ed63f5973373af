//! The records the control plane keeps for each resource.

use crate::catalog::Engine;
use crate::ids::{CacheClusterId, CacheNodeId};
use serde::{Deserialize, Serialize};

/// Cluster statuses exactly as ElastiCache spells them (clients and waiters
/// compare these strings).
pub mod status {
    pub const CREATING: &str = "creating";
    pub const AVAILABLE: &str = "available";
    pub const MODIFYING: &str = "modifying";
    pub const DELETING: &str = "deleting";
    pub const REBOOTING: &str = "rebooting cluster nodes";
    pub const NODE_REBOOTING: &str = "rebooting";
}

#[derive(Debug, Clone)]
pub struct ClusterRecord {
    pub region: String,
    pub id: CacheClusterId,
    pub replication_group_id: Option<String>,
    pub status: String,
    pub created_ms: i64,
    pub spec: ClusterSpec,
    pub nodes: Vec<NodeRecord>,
}

impl ClusterRecord {
    /// Operations other than describe need an `available` cluster.
    pub fn require_available(&self) -> Result<(), crate::error::ApiError> {
        if self.status == status::AVAILABLE {
            return Ok(());
        }
        Err(crate::error::ApiError::InvalidCacheClusterState(format!(
            "Cache cluster {} is not in available state (current state: {}).",
            self.id, self.status
        )))
    }
}

#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub id: CacheNodeId,
    pub status: String,
    /// The address the node listens on.
    pub bind_ip: String,
    pub port: u16,
    pub availability_zone: String,
    pub created_ms: i64,
}

/// Everything a cluster was created or modified with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub engine: Engine,
    pub engine_version: String,
    pub family: String,
    pub node_type: String,
    pub num_nodes: u16,
    pub port: u16,
    pub preferred_availability_zone: String,
    pub az_mode: String,
    pub parameter_group_name: String,
    pub subnet_group_name: String,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub cache_security_group_names: Vec<String>,
    pub maintenance_window: String,
    pub snapshot_window: Option<String>,
    pub snapshot_retention_limit: i64,
    pub auto_minor_version_upgrade: bool,
    pub notification_topic_arn: Option<String>,
    pub notification_topic_status: Option<String>,
    pub network_type: String,
    pub ip_discovery: String,
    pub transit_encryption_enabled: bool,
    pub at_rest_encryption_enabled: bool,
    pub auth_token_enabled: bool,
    /// Auto-discovery config version (memcached); bumped when nodes come or go.
    #[serde(default)]
    pub config_version: u64,
    /// Highest node number ever used, so a removed node's id is never reused.
    #[serde(default)]
    pub last_node_number: u16,
    #[serde(default)]
    pub pending: PendingModifiedValues,
    /// Nodes that must reboot before their parameter group's values are in force.
    #[serde(default)]
    pub pending_reboot_nodes: Vec<u16>,
    /// An RDB file to load once the node has started (restore from a snapshot).
    #[serde(default)]
    pub restore_from: Option<std::path::PathBuf>,
    /// Further files to load after `restore_from` (the other shards of a
    /// cluster-mode snapshot, or more `SnapshotArns`).
    #[serde(default)]
    pub restore_more: Vec<std::path::PathBuf>,
    /// A shard primary of a cluster-mode group loads only the keys of its slots.
    #[serde(default)]
    pub restore_slots: Option<Vec<(u16, u16)>>,
    #[serde(default)]
    pub log_delivery: Vec<crate::log_delivery::LogDelivery>,
    /// `preferred` or `required` when transit encryption is on.
    #[serde(default)]
    pub transit_encryption_mode: Option<String>,
    /// The AUTH token (kept locally in the database, as the node needs it).
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub auth_token_last_modified_ms: Option<i64>,
    /// The users the node enforces (from the replication group's user group).
    #[serde(default)]
    pub acl: Option<NodeAcl>,
}

/// What a node enforces for RBAC: its users and, for IAM tokens, the cache name
/// they must be signed for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAcl {
    pub cache_name: String,
    pub users: Vec<NodeAclUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAclUser {
    /// The Redis user name (`UserName`, not `UserId`).
    pub name: String,
    /// Full rule string: passwords then the access string.
    pub rules: String,
    pub iam: bool,
}

/// Changes requested without `ApplyImmediately`, applied in the maintenance window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PendingModifiedValues {
    pub num_nodes: Option<u16>,
    #[serde(default)]
    pub node_ids_to_remove: Vec<String>,
    pub engine_version: Option<String>,
    pub node_type: Option<String>,
}

/// A user-created parameter group and the values set in it (the rest are the
/// family's defaults).
#[derive(Debug, Clone)]
pub struct ParameterGroupRecord {
    pub region: String,
    pub name: String,
    pub family: String,
    pub description: String,
    pub values: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct SubnetGroupRecord {
    pub region: String,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub subnets: Vec<Subnet>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
}

/// A replication group (cluster mode disabled: one node group). Its members are
/// cache clusters whose `replication_group_id` names it.
#[derive(Debug, Clone)]
pub struct GroupRecord {
    pub region: String,
    pub id: String,
    pub status: String,
    pub created_ms: i64,
    pub spec: GroupSpec,
}

impl GroupRecord {
    /// Operations other than describe need an `available` group.
    pub fn require_available(&self) -> Result<(), crate::error::ApiError> {
        if self.status == status::AVAILABLE {
            return Ok(());
        }
        Err(crate::error::ApiError::InvalidReplicationGroupState(
            format!(
                "Replication group {} is not in available state (current state: {}).",
                self.id, self.status
            ),
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupSpec {
    pub description: String,
    pub engine: Engine,
    pub engine_version: String,
    pub family: String,
    pub node_type: String,
    pub port: u16,
    pub automatic_failover: bool,
    pub multi_az: bool,
    pub parameter_group_name: String,
    pub subnet_group_name: String,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub maintenance_window: String,
    pub snapshot_window: String,
    pub snapshot_retention_limit: i64,
    pub snapshotting_cluster_id: Option<String>,
    pub auto_minor_version_upgrade: bool,
    /// Member clusters in the order they joined; the first is not necessarily primary.
    pub members: Vec<String>,
    pub primary: String,
    /// Highest member number used (`<id>-003` → 3), so ids are never reused.
    pub last_member_number: u16,
    pub at_rest_encryption_enabled: bool,
    /// Set while deleting with `RetainPrimaryCluster`.
    #[serde(default)]
    pub retain_on_delete: Option<String>,
    #[serde(default)]
    pub log_delivery: Vec<crate::log_delivery::LogDelivery>,
    #[serde(default)]
    pub transit_encryption_enabled: bool,
    #[serde(default)]
    pub transit_encryption_mode: Option<String>,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub auth_token_last_modified_ms: Option<i64>,
    #[serde(default)]
    pub user_group_ids: Vec<String>,
    /// Recorded and reported with at-rest encryption (no KMS here).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// AuthTokenUpdateStrategy=ROTATE: the previous token, valid until the next SET.
    #[serde(default)]
    pub previous_auth_token: Option<String>,
    /// `enabled` or `compatible` for a cluster-mode group; None otherwise.
    #[serde(default)]
    pub cluster_mode: Option<String>,
    /// Cluster mode enabled: the node groups (shards). Empty otherwise.
    #[serde(default)]
    pub shards: Vec<Shard>,
    /// Cluster topology version, bumped by every failover and slot move.
    #[serde(default)]
    pub config_epoch: u64,
    /// Slot migration progress (percent) while resharding.
    #[serde(default)]
    pub resharding_progress: Option<f64>,
    /// The global datastore this group belongs to, and its role there
    /// (`PRIMARY` / `SECONDARY`).
    #[serde(default)]
    pub global_replication_group_id: Option<String>,
    #[serde(default)]
    pub global_role: Option<String>,
    /// While an online migration runs: the customer's node (`ip:port`) the
    /// group's primary replicates from.
    #[serde(default)]
    pub migration_source: Option<String>,
}

impl GroupSpec {
    pub fn cluster_enabled(&self) -> bool {
        !self.shards.is_empty()
    }

    /// ClusterMode `compatible`: one shard that answers both protocols, with the
    /// primary/reader endpoints and the configuration endpoint (see `cluster_mode`).
    pub fn cluster_compatible(&self) -> bool {
        self.cluster_mode.as_deref() == Some("compatible") && self.shards.len() == 1
    }
}

/// A node group of a cluster-mode-enabled replication group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Shard {
    /// `0001`, `0002`, … (or the caller's `NodeGroupId`).
    pub id: String,
    /// Inclusive slot ranges the shard serves now.
    pub slots: Vec<(u16, u16)>,
    /// Slots it must serve once the resharding in progress is done.
    #[serde(default)]
    pub target_slots: Option<Vec<(u16, u16)>>,
    /// Member clusters (`<rg>-0001-001`, …), primary included.
    pub members: Vec<String>,
    pub primary: String,
    pub last_member_number: u16,
    /// Being removed by ModifyReplicationGroupShardConfiguration (scale in).
    #[serde(default)]
    pub removing: bool,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: i64,
    pub source_identifier: String,
    pub source_type: String,
    pub message: String,
    pub date_ms: i64,
}

/// A snapshot: the settings of what it was taken from, and one RDB file per node
/// group.
#[derive(Debug, Clone)]
pub struct SnapshotRecord {
    pub region: String,
    pub name: String,
    pub status: String,
    /// `manual` or `automated`.
    pub source: String,
    pub created_ms: i64,
    pub spec: SnapshotSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotSpec {
    pub cache_cluster_id: Option<String>,
    pub replication_group_id: Option<String>,
    pub replication_group_description: Option<String>,
    pub engine: Engine,
    pub engine_version: String,
    pub node_type: String,
    pub num_cache_nodes: u16,
    pub preferred_availability_zone: String,
    pub cache_cluster_create_time_ms: i64,
    pub maintenance_window: String,
    pub port: u16,
    pub parameter_group_name: String,
    pub subnet_group_name: String,
    pub auto_minor_version_upgrade: bool,
    pub snapshot_retention_limit: i64,
    pub snapshot_window: String,
    pub automatic_failover: bool,
    pub kms_key_id: Option<String>,
    /// The source had at-rest encryption: the files are sealed (see `at_rest.rs`).
    #[serde(default)]
    pub at_rest_encryption: bool,
    pub nodes: Vec<NodeSnapshot>,
    /// Taken from a cluster-mode-enabled group: one node snapshot per shard.
    #[serde(default)]
    pub cluster_enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub cache_cluster_id: String,
    pub node_group_id: String,
    pub cache_node_id: String,
    pub cache_node_create_time_ms: i64,
    pub snapshot_create_time_ms: i64,
    /// Bytes of the RDB file.
    pub size: u64,
    /// File name under the snapshot directory.
    pub file: String,
    /// The shard's layout when the snapshot was taken (cluster mode; empty
    /// slots means all of them).
    #[serde(default)]
    pub slots: Vec<(u16, u16)>,
    #[serde(default)]
    pub replica_count: Option<u16>,
    #[serde(default)]
    pub primary_az: Option<String>,
    #[serde(default)]
    pub replica_azs: Vec<String>,
}
