//! Small operations that read the catalogue or report that nothing applies
//! locally: node-type modifications, service updates and update actions.

use crate::catalog::{self, NODE_TYPES};
use crate::error::ApiError;
use crate::ids::CacheClusterId;
use crate::{paginate_with, replication_groups, Inner};
use aws_query::{Params, XmlWriter};

/// ListAllowedNodeTypeModifications: every node type with more memory is a scale
/// up; a smaller one is a scale down when it still fits the data set's limit.
pub(crate) async fn allowed_node_type_modifications(
    cp: &Inner,
    region: &str,
    p: &Params,
) -> Result<String, ApiError> {
    let current = match (p.str("CacheClusterId"), p.str("ReplicationGroupId")) {
        (Some(raw), _) => {
            let id = CacheClusterId::parse(raw)
                .map_err(|_| ApiError::CacheClusterNotFound(raw.to_string()))?;
            let c = cp
                .store
                .cluster(region, &id)
                .await?
                .ok_or_else(|| ApiError::CacheClusterNotFound(raw.to_string()))?;
            c.spec.node_type
        }
        (None, Some(raw)) => {
            replication_groups::find(cp, region, raw)
                .await?
                .spec
                .node_type
        }
        (None, None) => {
            return Err(ApiError::InvalidParameterCombination(
                "Specify CacheClusterId or ReplicationGroupId.".into(),
            ))
        }
    };
    let here = catalog::node_type(&current)?;
    let mut up: Vec<&str> = NODE_TYPES
        .iter()
        .filter(|t| t.memory_mib > here.memory_mib)
        .map(|t| t.name)
        .collect();
    let mut down: Vec<&str> = NODE_TYPES
        .iter()
        .filter(|t| t.memory_mib < here.memory_mib)
        .map(|t| t.name)
        .collect();
    up.sort_unstable();
    down.sort_unstable();
    let mut w = XmlWriter::new();
    w.string_list("ScaleUpModifications", "member", up)
        .string_list("ScaleDownModifications", "member", down);
    Ok(w.finish())
}

/// No service updates exist for a local emulator.
pub(crate) fn describe_service_updates(p: &Params) -> Result<String, ApiError> {
    if let Some(name) = p.str("ServiceUpdateName") {
        return Err(ApiError::ServiceUpdateNotFound(name.to_string()));
    }
    let (page, marker) = paginate_with(Vec::<String>::new(), p, 100, 100, Clone::clone)?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.string_list("ServiceUpdates", "ServiceUpdate", page);
    Ok(w.finish())
}

pub(crate) fn describe_update_actions(p: &Params) -> Result<String, ApiError> {
    if let Some(name) = p.str("ServiceUpdateName") {
        return Err(ApiError::ServiceUpdateNotFound(name.to_string()));
    }
    let (page, marker) = paginate_with(Vec::<String>::new(), p, 100, 100, Clone::clone)?;
    let mut w = XmlWriter::new();
    w.opt_text("Marker", marker.as_deref());
    w.string_list("UpdateActions", "UpdateAction", page);
    Ok(w.finish())
}

/// Batch{Apply,Stop}UpdateAction name a service update, and none exists here.
pub(crate) fn batch_update_action(p: &Params) -> Result<String, ApiError> {
    Err(ApiError::ServiceUpdateNotFound(
        p.required("ServiceUpdateName")?.to_string(),
    ))
}
