//! Every error the API can return, and — in exactly one place — the AWS error
//! code, HTTP status and fault side each maps to (botocore's service-2.json).

use aws_query::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    // Protocol-level client mistakes.
    #[error("Could not find operation {0} for version 2015-02-02")]
    InvalidAction(String),
    #[error("The request must contain the parameter {0}")]
    MissingParameter(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    InvalidParameterCombination(String),

    // Modeled faults.
    #[error("CacheCluster not found: {0}")]
    CacheClusterNotFound(String),
    #[error("Cache cluster {0} already exists.")]
    CacheClusterAlreadyExists(String),
    #[error("{0}")]
    InvalidCacheClusterState(String),
    /// The admin API's fault injection cannot act on the node as it is (not running, not
    /// Redis): a conflict with the node's state, not a malformed request.
    #[error("{0}")]
    FaultRefused(String),
    #[error("{0}")]
    InsufficientCacheClusterCapacity(String),
    #[error("{0}")]
    NodeQuotaForClusterExceeded(String),
    #[error("CacheParameterGroup not found: {0}")]
    CacheParameterGroupNotFound(String),
    #[error("CacheSubnetGroup not found: {0}")]
    CacheSubnetGroupNotFound(String),
    #[error("ReplicationGroup not found: {0}")]
    ReplicationGroupNotFound(String),
    #[error("Replication group {0} already exists.")]
    ReplicationGroupAlreadyExists(String),
    #[error("{0}")]
    InvalidReplicationGroupState(String),
    #[error("NodeGroup not found: {0}")]
    NodeGroupNotFound(String),
    #[error("Snapshot not found: {0}")]
    SnapshotNotFound(String),
    #[error("Snapshot {0} already exists.")]
    SnapshotAlreadyExists(String),
    #[error("{0}")]
    SnapshotQuotaExceeded(String),
    #[error("{0}")]
    InvalidSnapshotState(String),
    #[error("{0}")]
    SnapshotFeatureNotSupported(String),
    #[error("Cache subnet group {0} already exists.")]
    CacheSubnetGroupAlreadyExists(String),
    #[error("{0}")]
    CacheSubnetGroupInUse(String),
    #[error("{0}")]
    CacheSubnetGroupQuotaExceeded(String),
    #[error("{0}")]
    CacheSubnetQuotaExceeded(String),
    #[error("{0}")]
    InvalidSubnet(String),
    #[error("{0}")]
    SubnetInUse(String),
    #[error("Parameter group {0} already exists.")]
    CacheParameterGroupAlreadyExists(String),
    #[error("{0}")]
    CacheParameterGroupQuotaExceeded(String),
    #[error("{0}")]
    InvalidCacheParameterGroupState(String),
    #[error("Service update not found: {0}")]
    ServiceUpdateNotFound(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    TagQuotaPerResourceExceeded(String),
    #[error("{0}")]
    TagNotFound(String),

    #[error("User not found: {0}")]
    UserNotFound(String),
    #[error("User {0} already exists.")]
    UserAlreadyExists(String),
    #[error("{0}")]
    UserQuotaExceeded(String),
    #[error("{0}")]
    DuplicateUserName(String),
    #[error("{0}")]
    InvalidUserState(String),
    #[error("User group not found: {0}")]
    UserGroupNotFound(String),
    #[error("User group {0} already exists.")]
    UserGroupAlreadyExists(String),
    #[error("{0}")]
    UserGroupQuotaExceeded(String),
    #[error("{0}")]
    InvalidUserGroupState(String),
    #[error("{0}")]
    DefaultUserRequired(String),
    #[error("{0}")]
    DefaultUserAssociatedToUserGroup(String),

    #[error("CacheSecurityGroup not found: {0}")]
    CacheSecurityGroupNotFound(String),
    #[error("Cache security group {0} already exists.")]
    CacheSecurityGroupAlreadyExists(String),
    #[error("{0}")]
    CacheSecurityGroupQuotaExceeded(String),
    #[error("{0}")]
    InvalidCacheSecurityGroupState(String),
    #[error("{0}")]
    AuthorizationAlreadyExists(String),
    #[error("{0}")]
    AuthorizationNotFound(String),
    // Serverless caches, global datastores, reserved nodes, migrations.
    #[error("Serverless cache not found: {0}")]
    ServerlessCacheNotFound(String),
    #[error("Serverless cache {0} already exists.")]
    ServerlessCacheAlreadyExists(String),
    #[error("{0}")]
    InvalidServerlessCacheState(String),
    #[error("{0}")]
    ServerlessCacheQuotaForCustomerExceeded(String),
    #[error("Serverless cache snapshot not found: {0}")]
    ServerlessCacheSnapshotNotFound(String),
    #[error("Serverless cache snapshot {0} already exists.")]
    ServerlessCacheSnapshotAlreadyExists(String),
    #[error("{0}")]
    InvalidServerlessCacheSnapshotState(String),
    #[error("{0}")]
    ServerlessCacheSnapshotQuotaExceeded(String),
    #[error("Global replication group not found: {0}")]
    GlobalReplicationGroupNotFound(String),
    #[error("Global replication group {0} already exists.")]
    GlobalReplicationGroupAlreadyExists(String),
    #[error("{0}")]
    InvalidGlobalReplicationGroupState(String),
    #[error("Reserved cache node {0} already exists.")]
    ReservedCacheNodeAlreadyExists(String),
    #[error("Reserved cache nodes offering not found: {0}")]
    ReservedCacheNodesOfferingNotFound(String),
    #[error("Reserved cache node not found: {0}")]
    ReservedCacheNodeNotFound(String),
    #[error("{0}")]
    ReservedCacheNodeQuotaExceeded(String),
    #[error("{0}")]
    ReplicationGroupNotUnderMigration(String),
    #[error("{0}")]
    ReplicationGroupAlreadyUnderMigration(String),

    /// Our own failure (database, I/O). Retried by SDKs, so never used for a
    /// client mistake.
    #[error("An internal error occurred: {0}")]
    Internal(String),
    /// The admin API's fault injection names a node the cluster does not have
    /// (elastilite's own code; no AWS operation returns it).
    #[error("Cache node {0} not found.")]
    CacheNodeNotFound(String),
}

impl ApiError {
    /// The `<Code>` SDKs match on.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidAction(_) => "InvalidAction",
            CacheNodeNotFound(_) => "CacheNodeNotFound",
            MissingParameter(_) => "MissingParameter",
            InvalidParameterValue(_) => "InvalidParameterValue",
            InvalidParameterCombination(_) => "InvalidParameterCombination",
            CacheClusterNotFound(_) => "CacheClusterNotFound",
            CacheClusterAlreadyExists(_) => "CacheClusterAlreadyExists",
            InvalidCacheClusterState(_) | FaultRefused(_) => "InvalidCacheClusterState",
            InsufficientCacheClusterCapacity(_) => "InsufficientCacheClusterCapacity",
            NodeQuotaForClusterExceeded(_) => "NodeQuotaForClusterExceeded",
            CacheParameterGroupNotFound(_) => "CacheParameterGroupNotFound",
            CacheSubnetGroupNotFound(_) => "CacheSubnetGroupNotFoundFault",
            ReplicationGroupNotFound(_) => "ReplicationGroupNotFoundFault",
            ReplicationGroupAlreadyExists(_) => "ReplicationGroupAlreadyExists",
            InvalidReplicationGroupState(_) => "InvalidReplicationGroupState",
            NodeGroupNotFound(_) => "NodeGroupNotFoundFault",
            SnapshotNotFound(_) => "SnapshotNotFoundFault",
            SnapshotAlreadyExists(_) => "SnapshotAlreadyExistsFault",
            SnapshotQuotaExceeded(_) => "SnapshotQuotaExceededFault",
            InvalidSnapshotState(_) => "InvalidSnapshotState",
            SnapshotFeatureNotSupported(_) => "SnapshotFeatureNotSupportedFault",
            CacheSubnetGroupAlreadyExists(_) => "CacheSubnetGroupAlreadyExists",
            CacheSubnetGroupInUse(_) => "CacheSubnetGroupInUse",
            CacheSubnetGroupQuotaExceeded(_) => "CacheSubnetGroupQuotaExceeded",
            CacheSubnetQuotaExceeded(_) => "CacheSubnetQuotaExceededFault",
            InvalidSubnet(_) => "InvalidSubnet",
            SubnetInUse(_) => "SubnetInUse",
            CacheParameterGroupAlreadyExists(_) => "CacheParameterGroupAlreadyExists",
            CacheParameterGroupQuotaExceeded(_) => "CacheParameterGroupQuotaExceeded",
            InvalidCacheParameterGroupState(_) => "InvalidCacheParameterGroupState",
            ServiceUpdateNotFound(_) => "ServiceUpdateNotFoundFault",
            InvalidArn(_) => "InvalidARN",
            TagQuotaPerResourceExceeded(_) => "TagQuotaPerResourceExceeded",
            TagNotFound(_) => "TagNotFound",
            UserNotFound(_) => "UserNotFound",
            UserAlreadyExists(_) => "UserAlreadyExists",
            UserQuotaExceeded(_) => "UserQuotaExceeded",
            DuplicateUserName(_) => "DuplicateUserName",
            InvalidUserState(_) => "InvalidUserState",
            UserGroupNotFound(_) => "UserGroupNotFound",
            UserGroupAlreadyExists(_) => "UserGroupAlreadyExists",
            UserGroupQuotaExceeded(_) => "UserGroupQuotaExceeded",
            InvalidUserGroupState(_) => "InvalidUserGroupState",
            DefaultUserRequired(_) => "DefaultUserRequired",
            DefaultUserAssociatedToUserGroup(_) => "DefaultUserAssociatedToUserGroup",
            CacheSecurityGroupNotFound(_) => "CacheSecurityGroupNotFound",
            CacheSecurityGroupAlreadyExists(_) => "CacheSecurityGroupAlreadyExists",
            CacheSecurityGroupQuotaExceeded(_) => "QuotaExceeded.CacheSecurityGroup",
            InvalidCacheSecurityGroupState(_) => "InvalidCacheSecurityGroupState",
            AuthorizationAlreadyExists(_) => "AuthorizationAlreadyExists",
            AuthorizationNotFound(_) => "AuthorizationNotFound",
            ServerlessCacheNotFound(_) => "ServerlessCacheNotFoundFault",
            ServerlessCacheAlreadyExists(_) => "ServerlessCacheAlreadyExistsFault",
            InvalidServerlessCacheState(_) => "InvalidServerlessCacheStateFault",
            ServerlessCacheQuotaForCustomerExceeded(_) => {
                "ServerlessCacheQuotaForCustomerExceededFault"
            }
            ServerlessCacheSnapshotNotFound(_) => "ServerlessCacheSnapshotNotFoundFault",
            ServerlessCacheSnapshotAlreadyExists(_) => "ServerlessCacheSnapshotAlreadyExistsFault",
            InvalidServerlessCacheSnapshotState(_) => "InvalidServerlessCacheSnapshotStateFault",
            ServerlessCacheSnapshotQuotaExceeded(_) => "ServerlessCacheSnapshotQuotaExceededFault",
            GlobalReplicationGroupNotFound(_) => "GlobalReplicationGroupNotFoundFault",
            GlobalReplicationGroupAlreadyExists(_) => "GlobalReplicationGroupAlreadyExistsFault",
            InvalidGlobalReplicationGroupState(_) => "InvalidGlobalReplicationGroupState",
            ReservedCacheNodeAlreadyExists(_) => "ReservedCacheNodeAlreadyExists",
            ReservedCacheNodesOfferingNotFound(_) => "ReservedCacheNodesOfferingNotFound",
            ReservedCacheNodeNotFound(_) => "ReservedCacheNodeNotFound",
            ReservedCacheNodeQuotaExceeded(_) => "ReservedCacheNodeQuotaExceeded",
            ReplicationGroupNotUnderMigration(_) => "ReplicationGroupNotUnderMigrationFault",
            ReplicationGroupAlreadyUnderMigration(_) => {
                "ReplicationGroupAlreadyUnderMigrationFault"
            }
            Internal(_) => "InternalFailure",
        }
    }

    /// The HTTP status from the model (most NotFound faults are 404, but
    /// `CacheSubnetGroupNotFoundFault` is 400).
    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            CacheClusterNotFound(_)
            | CacheParameterGroupNotFound(_)
            | ReplicationGroupNotFound(_)
            | NodeGroupNotFound(_)
            | ServiceUpdateNotFound(_)
            | SnapshotNotFound(_)
            | UserNotFound(_)
            | UserGroupNotFound(_)
            | CacheSecurityGroupNotFound(_)
            | AuthorizationNotFound(_)
            | ServerlessCacheNotFound(_)
            | ServerlessCacheSnapshotNotFound(_)
            | GlobalReplicationGroupNotFound(_)
            | ReservedCacheNodeAlreadyExists(_)
            | ReservedCacheNodesOfferingNotFound(_)
            | ReservedCacheNodeNotFound(_)
            | TagNotFound(_)
            | CacheNodeNotFound(_) => 404,
            Internal(_) => 500,
            FaultRefused(_) => 409,
            _ => 400,
        }
    }

    /// `Sender` for client faults, `Receiver` for ours.
    pub fn sender_fault(&self) -> bool {
        self.status() < 500
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::MissingParameter(p) => ApiError::MissingParameter(p),
            QueryError::InvalidParameterValue(m) => ApiError::InvalidParameterValue(m),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(format!("stored state: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_the_model() {
        let nf = ApiError::CacheClusterNotFound("x".into());
        assert_eq!((nf.code(), nf.status()), ("CacheClusterNotFound", 404));
        let sg = ApiError::CacheSubnetGroupNotFound("x".into());
        assert_eq!(
            (sg.code(), sg.status()),
            ("CacheSubnetGroupNotFoundFault", 400)
        );
        let rg = ApiError::ReplicationGroupNotFound("x".into());
        assert_eq!(rg.code(), "ReplicationGroupNotFoundFault");
        // Codes and statuses botocore's model gives the serverless, global
        // datastore and reserved-node faults (some without the Fault suffix,
        // some AlreadyExists faults with 404).
        for (e, code, status) in [
            (
                ApiError::ServerlessCacheNotFound("x".into()),
                "ServerlessCacheNotFoundFault",
                404,
            ),
            (
                ApiError::InvalidGlobalReplicationGroupState("x".into()),
                "InvalidGlobalReplicationGroupState",
                400,
            ),
            (
                ApiError::ReservedCacheNodeAlreadyExists("x".into()),
                "ReservedCacheNodeAlreadyExists",
                404,
            ),
            (
                ApiError::ReplicationGroupAlreadyUnderMigration("x".into()),
                "ReplicationGroupAlreadyUnderMigrationFault",
                400,
            ),
        ] {
            assert_eq!((e.code(), e.status()), (code, status));
        }
        assert!(ApiError::InvalidAction("X".into()).sender_fault());
        assert!(!ApiError::Internal("db".into()).sender_fault());
    }
}
