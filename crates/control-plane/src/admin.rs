//! The emulator's own controls (not part of the AWS API): listing every node,
//! fault injection, and resetting all state between tests.

use crate::clusters::node_key;
use crate::error::ApiError;
use crate::ids::{CacheClusterId, CacheNodeId};
use crate::model::status;
use crate::nodes::NodeKey;
use crate::{events, replication_groups, Inner};
use std::sync::Arc;

/// One node as the admin API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    pub region: String,
    pub cache_cluster_id: String,
    pub cache_node_id: String,
    pub engine: String,
    pub address: String,
    pub port: u16,
    pub status: String,
    /// Whether the engine is serving (false after a fault-injection stop).
    pub running: bool,
    /// A fault injected into the running node: `paused` or `isolated`.
    pub fault: Option<String>,
    pub replication_group_id: Option<String>,
    /// `primary` / `replica` inside a replication group.
    pub role: Option<String>,
}

/// What fault injection can do to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Kill the node: connections drop, nothing answers on its endpoint.
    Stop,
    /// Bring a stopped node back (empty, as after a crash; a replica resyncs).
    Start,
    /// Freeze a Redis node (like SIGSTOP) for a while, or until `Resume`: connections stay
    /// open and hang. A paused primary with automatic failover is replaced once the
    /// detection window passes.
    Pause(Option<std::time::Duration>),
    Resume,
    /// Partition a Redis node off the network: it keeps running, but its client and
    /// replication connections are cut and new ones closed until `Heal`.
    Isolate,
    Heal,
}

pub(crate) async fn nodes(cp: &Inner) -> Result<Vec<NodeInfo>, ApiError> {
    Ok(nodes_keyed(cp).await?.into_iter().map(|(i, _)| i).collect())
}

/// Every node with the key the supervisor knows it by.
pub(crate) async fn nodes_keyed(cp: &Inner) -> Result<Vec<(NodeInfo, NodeKey)>, ApiError> {
    let mut out = Vec::new();
    for c in cp.store.all_clusters().await? {
        let primary = match &c.replication_group_id {
            Some(rg) => cp
                .store
                .replication_group(&c.region, rg)
                .await?
                // Cluster mode: the primary of the member's own shard.
                .map(|g| match crate::shards::shard_of(&g, c.id.as_str()) {
                    Some(s) => s.primary.clone(),
                    None => g.spec.primary,
                }),
            None => None,
        };
        for n in &c.nodes {
            let key = node_key(&c.region, &c.id, n.id);
            let info = NodeInfo {
                region: c.region.clone(),
                cache_cluster_id: c.id.to_string(),
                cache_node_id: n.id.to_string(),
                engine: c.spec.engine.as_str().to_string(),
                address: cp.nodes.advertised(&n.bind_ip),
                port: n.port,
                status: n.status.clone(),
                running: cp.nodes.is_running(&key),
                fault: cp.nodes.fault(&key).map(str::to_string),
                replication_group_id: c.replication_group_id.clone(),
                role: primary.as_ref().map(|p| {
                    if p == c.id.as_str() {
                        "primary"
                    } else {
                        "replica"
                    }
                    .to_string()
                }),
            };
            out.push((info, key));
        }
    }
    Ok(out)
}

pub(crate) async fn inject(
    cp: &Arc<Inner>,
    region: &str,
    cluster: &str,
    node: &str,
    fault: Fault,
) -> Result<(), ApiError> {
    let id = CacheClusterId::parse(cluster)
        .map_err(|_| ApiError::CacheClusterNotFound(cluster.to_string()))?;
    let node_id = CacheNodeId::parse(node)
        .map_err(|_| ApiError::CacheNodeNotFound(format!("{cluster}/{node}")))?;
    let _guard = cp.lock.lock().await;
    let c = cp
        .store
        .cluster(region, &id)
        .await?
        .ok_or_else(|| ApiError::CacheClusterNotFound(cluster.to_string()))?;
    let n = c
        .nodes
        .iter()
        .find(|n| n.id == node_id)
        .ok_or_else(|| ApiError::CacheNodeNotFound(format!("{id}/{node}")))?;
    let key = node_key(region, &id, node_id);
    let fault_err = |e: crate::nodes::FaultError| match e {
        crate::nodes::FaultError::NotRunning => ApiError::FaultRefused(format!(
            "Cache node {node_id} of cluster {id} is not running."
        )),
        crate::nodes::FaultError::NotRedis => ApiError::FaultRefused(e.to_string()),
    };
    match fault {
        Fault::Pause(d) => {
            cp.nodes.pause(&key, d).map_err(fault_err)?;
            tracing::warn!(region, cluster = %id, node = %node_id, seconds = ?d.map(|d| d.as_secs_f64()), "fault injected: node paused");
            if let Some(rg) = &c.replication_group_id {
                replication_groups::watch_primary(cp, region, rg, id.as_str(), key);
            }
        }
        Fault::Resume => {
            cp.nodes.resume(&key).map_err(fault_err)?;
            tracing::info!(region, cluster = %id, node = %node_id, "fault cleared: node resumed");
        }
        Fault::Isolate => {
            cp.nodes.isolate(&key, true).map_err(fault_err)?;
            tracing::warn!(region, cluster = %id, node = %node_id, "fault injected: node isolated");
            if let Some(rg) = &c.replication_group_id {
                replication_groups::watch_primary(cp, region, rg, id.as_str(), key);
            }
        }
        Fault::Heal => {
            cp.nodes.isolate(&key, false).map_err(fault_err)?;
            tracing::info!(region, cluster = %id, node = %node_id, "fault cleared: node healed");
        }
        Fault::Stop => {
            cp.nodes.stop(&key);
            tracing::warn!(region, cluster = %id, node = %node_id, "fault injected: node stopped");
            events::record(
                cp,
                region,
                id.as_str(),
                events::CACHE_CLUSTER,
                &format!("Cache node {node_id} failed"),
            )
            .await;
            if let Some(rg) = &c.replication_group_id {
                replication_groups::on_node_down(cp, region, rg, id.as_str()).await;
            }
        }
        // Already serving: nothing to bring back (its endpoint is in use by itself).
        Fault::Start if cp.nodes.is_running(&key) => {}
        Fault::Start => {
            if c.status == status::DELETING {
                return Err(ApiError::InvalidCacheClusterState(format!(
                    "Cache cluster {id} is being deleted."
                )));
            }
            let params =
                crate::parameter_groups::effective(cp, region, &c.spec.parameter_group_name)
                    .await?;
            cp.nodes
                .start(&key, &n.bind_ip, n.port, &c.spec, &params)
                .await?;
            tracing::info!(region, cluster = %id, node = %node_id, "fault cleared: node started");
            events::record(
                cp,
                region,
                id.as_str(),
                events::CACHE_CLUSTER,
                &format!("Cache node {node_id} restarted"),
            )
            .await;
            if let Some(rg) = &c.replication_group_id {
                replication_groups::on_node_up(cp, region, rg).await;
            }
        }
    }
    Ok(())
}

/// Forget every resource in every region and stop every node.
pub(crate) async fn reset(cp: &Inner) -> Result<(), ApiError> {
    let started = std::time::Instant::now();
    let _guard = cp.lock.lock().await;
    let locked = started.elapsed();
    cp.nodes.stop_all();
    let stopped = started.elapsed();
    cp.store.reset().await?;
    tracing::info!(
        lock_us = locked.as_micros() as u64,
        nodes_us = (stopped - locked).as_micros() as u64,
        store_us = (started.elapsed() - stopped).as_micros() as u64,
        "all state reset"
    );
    Ok(())
}
