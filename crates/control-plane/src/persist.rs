//! Opt-in data persistence across restarts (`--persist-data`): every Redis node
//! that holds data of its own (standalone clusters and replication-group
//! primaries) is captured to `<data-dir>/persist/<region>/<cluster>.rdb` on a
//! clean shutdown and every interval, and loaded back when it starts again. A
//! crash loses at most the writes of the last interval — periodic snapshots
//! rather than an append-only log, because a snapshot costs the node nothing
//! between captures and reuses the snapshot path that is tested against
//! redis-server. Replicas resynchronise from their primary; memcached nodes start
//! empty, as memcached does.

use crate::catalog::Engine;
use crate::error::ApiError;
use crate::model::ClusterRecord;
use crate::Inner;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

fn file(cp: &Inner, c: &ClusterRecord) -> PathBuf {
    cp.config
        .data_dir
        .join("persist")
        .join(&c.region)
        .join(format!("{}.rdb", c.id))
}

/// The engine itself (behind its TLS front, when it has one).
fn node_addr(cp: &Inner, c: &ClusterRecord) -> Option<SocketAddr> {
    let n = c.nodes.first()?;
    cp.nodes
        .engine_addr(&crate::clusters::node_key(&c.region, &c.id, n.id))
        .or_else(|| Some(SocketAddr::new(n.bind_ip.parse().ok()?, n.port)))
}

/// The clusters whose data is their own.
async fn holders(cp: &Inner) -> Result<Vec<ClusterRecord>, ApiError> {
    let mut out = Vec::new();
    for c in cp.store.all_clusters().await? {
        if c.spec.engine == Engine::Memcached {
            continue;
        }
        if let Some(rg) = &c.replication_group_id {
            match cp.store.replication_group(&c.region, rg).await? {
                // A global secondary's or migrating group's primary is itself a
                // replica: it resynchronises from its upstream.
                Some(g)
                    if g.spec.primary == c.id.as_str()
                        && g.spec.global_role.as_deref()
                            != Some(crate::global_groups::SECONDARY)
                        && g.spec.migration_source.is_none() => {}
                _ => continue,
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// Capture every data-holding node. Failures are logged; one node's failure does
/// not stop the others.
pub(crate) async fn save_all(cp: &Inner) -> usize {
    let Ok(clusters) = holders(cp).await else {
        return 0;
    };
    let mut saved = crate::serverless::save_all(cp).await;
    for c in clusters {
        let (Some(addr), path) = (node_addr(cp, &c), file(cp, &c)) else {
            continue;
        };
        if let Some(dir) = path.parent() {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
        let key = c.spec.at_rest_encryption_enabled.then_some(&cp.at_rest_key);
        match crate::at_rest::capture(key, addr, &path).await {
            Ok(_) => saved += 1,
            Err(e) => tracing::warn!(cluster = %c.id, error = %e, "could not persist node data"),
        }
    }
    saved
}

/// Load persisted data into the nodes that just started.
pub(crate) async fn load_all(cp: &Inner) -> usize {
    let Ok(clusters) = holders(cp).await else {
        return 0;
    };
    let mut loaded = crate::serverless::load_all(cp).await;
    for c in clusters {
        let path = file(cp, &c);
        let Some(addr) = node_addr(cp, &c) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        match crate::at_rest::restore(&cp.at_rest_key, addr, &path).await {
            Ok(keys) => {
                tracing::info!(cluster = %c.id, keys, "persisted data loaded");
                loaded += 1;
            }
            Err(e) => tracing::error!(cluster = %c.id, error = %e, "could not load persisted data"),
        }
    }
    loaded
}

/// Save every `interval` until the process stops.
pub(crate) fn spawn_periodic(cp: &Arc<Inner>, interval: std::time::Duration) {
    let cp = Arc::downgrade(cp);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(cp) = cp.upgrade() else { return };
            let n = save_all(&cp).await;
            tracing::debug!(nodes = n, "periodic persistence");
        }
    });
}
