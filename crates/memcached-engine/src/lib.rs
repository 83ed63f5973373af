//! Memcached-compatible engine. Interface contract used by the control plane:
//! `spawn(listener, config) -> NodeHandle`. (Implementation in progress.)

use std::net::SocketAddr;

/// Settings a node starts with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Memory limit for items in bytes (memcached's -m); 0 means no limit.
    pub memory_limit: u64,
    /// Largest item accepted (memcached's -I / max_item_size), default 1 MiB.
    pub max_item_size: u64,
    /// false = memcached's -M: refuse stores when full instead of evicting.
    pub evict: bool,
    /// Version reported by `version` and stats, e.g. "1.6.22".
    pub version: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            memory_limit: 64 * 1024 * 1024,
            max_item_size: 1024 * 1024,
            evict: true,
            version: "1.6.22".into(),
        }
    }
}

/// One entry of the ElastiCache auto-discovery answer (`config get cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryNode {
    pub host: String,
    pub ip: String,
    pub port: u16,
}

/// A running node.
pub struct NodeHandle {
    addr: SocketAddr,
}

impl NodeHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// Stop accepting, close every client connection, and stop the node's thread.
    pub fn shutdown(&self) {}
    /// Replace the auto-discovery answer (version and node list).
    pub fn set_cluster_config(&self, _version: u64, _nodes: Vec<DiscoveryNode>) {}
}

/// Start a node serving on an already-bound listener.
pub fn spawn(listener: std::net::TcpListener, _config: Config) -> std::io::Result<NodeHandle> {
    let addr = listener.local_addr()?;
    Ok(NodeHandle { addr })
}
