//! State of one node, owned by its thread.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::store::Store;
use crate::DiscoveryNode;

#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    pub version: u64,
    pub nodes: Vec<DiscoveryNode>,
}

impl ClusterConfig {
    /// The payload of `config get cluster`: "<version>\n<host|ip|port ...>\n".
    pub fn payload(&self) -> Vec<u8> {
        let mut s = format!("{}\n", self.version);
        let list: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}|{}|{}", n.host, n.ip, n.port))
            .collect();
        s.push_str(&list.join(" "));
        s.push('\n');
        s.into_bytes()
    }
}

pub struct ConnInfo {
    pub peer: SocketAddr,
    pub last_cmd: u32,
    pub binary: bool,
}

pub struct Node {
    pub store: Store,
    pub version: String,
    pub cluster: Arc<Mutex<ClusterConfig>>,
    pub verbosity: u32,
    pub curr_connections: u64,
    pub conns: BTreeMap<u64, ConnInfo>,
    pub listen_addr: SocketAddr,
    pub start: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Unknown,
    Text,
    Binary,
}

pub struct ConnState {
    pub id: u64,
    pub proto: Proto,
    /// bytes still to discard (value of a refused store).
    pub swallow: usize,
}

/// Result of trying to process one request at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Consumed(usize),
    NeedMore,
    /// Close after flushing the output produced so far.
    Close,
}
