//! Redis-compatible engine. Interface contract used by the control plane:
//! `spawn(listener, config) -> NodeHandle`. (Implementation in progress.)

use std::net::SocketAddr;

/// Settings a node starts with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Memory limit in bytes; 0 means no limit.
    pub maxmemory: u64,
    /// Version reported by INFO / HELLO, e.g. "7.1.0".
    pub version: String,
    /// "redis" or "valkey".
    pub flavor: String,
    /// When false, refuse the commands ElastiCache refuses.
    pub allow_restricted_commands: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            maxmemory: 0,
            version: "7.1.0".into(),
            flavor: "redis".into(),
            allow_restricted_commands: false,
        }
    }
}

/// A running node. Dropping it does not stop the node; call `shutdown`.
pub struct NodeHandle {
    addr: SocketAddr,
}

impl NodeHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// Stop accepting, close every client connection, and stop the node's thread.
    pub fn shutdown(&self) {}
}

/// Start a node serving on an already-bound listener.
pub fn spawn(listener: std::net::TcpListener, _config: Config) -> std::io::Result<NodeHandle> {
    let addr = listener.local_addr()?;
    Ok(NodeHandle { addr })
}
