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
            InvalidCacheClusterState(_) => "InvalidCacheClusterState",
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
            | TagNotFound(_)
            | CacheNodeNotFound(_) => 404,
            Internal(_) => 500,
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
        assert!(ApiError::InvalidAction("X".into()).sender_fault());
        assert!(!ApiError::Internal("db".into()).sender_fault());
    }
}
