//! Memcached-compatible engine: text, meta and binary protocols plus ElastiCache auto-discovery
//! (`config get cluster`).
//!
//! Interface contract used by the control plane: `spawn(listener, config) -> NodeHandle`.
//!
//! Architecture: each node runs on one dedicated OS thread with a tokio `current_thread` runtime
//! and a `LocalSet`. The thread owns the item store (no locks on the hot path) and serves all of
//! the node's connections; each connection parses every complete request in its buffer, executes
//! them and writes one reply buffer per batch.

pub mod binary;
pub mod node;
mod server;
pub mod stats;
pub mod store;
pub mod text;
pub mod util;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use node::ClusterConfig;
use store::Settings;

/// Decides whether a connection from this source address may stay open (simulated
/// security groups); the control plane owns the rules.
pub type AdmitFn = Arc<dyn Fn(std::net::SocketAddr) -> bool + Send + Sync>;

/// A rate limit on a node's requests (a serverless cache's ECPU/second maximum):
/// the control plane owns the bucket, shared by every connection of the node.
pub trait Throttle: Send + Sync {
    /// None: the request may run now. Some(d): it waits `d` first.
    fn wait_time(&self, now: std::time::Instant) -> Option<std::time::Duration>;
    /// Charge a request that moved `bytes` (request + reply); `held`: it had waited.
    fn charge(&self, bytes: usize, held: bool);
}

/// The node's current throttle; `on` lets connections skip the lock when there is none.
#[derive(Default)]
pub struct ThrottleSlot {
    on: AtomicBool,
    limit: Mutex<Option<Arc<dyn Throttle>>>,
}

impl ThrottleSlot {
    /// The throttle in force (read once per batch of requests).
    pub(crate) fn current(&self) -> Option<Arc<dyn Throttle>> {
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        self.limit.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Settings a node starts with.
#[derive(Clone)]
pub struct Config {
    /// None admits every source.
    pub admit: Option<AdmitFn>,
    /// Memory limit for items in bytes (memcached's -m); 0 means no limit.
    pub memory_limit: u64,
    /// Largest item accepted (memcached's -I / max_item_size), default 1 MiB.
    pub max_item_size: u64,
    /// false = memcached's -M: refuse stores when full instead of evicting.
    pub evict: bool,
    /// Version reported by `version` and stats, e.g. "1.6.22".
    pub version: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("admit", &self.admit.is_some())
            .field("memory_limit", &self.memory_limit)
            .field("max_item_size", &self.max_item_size)
            .field("evict", &self.evict)
            .field("version", &self.version)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            admit: None,
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

/// A running node. Dropping the handle shuts the node down.
pub struct NodeHandle {
    addr: SocketAddr,
    settings: Arc<Settings>,
    cluster: Arc<Mutex<ClusterConfig>>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<Mutex<NodeStats>>,
    throttle: Arc<ThrottleSlot>,
}

/// What the control plane reads about a node without talking to it (metrics, the
/// console): refreshed by the node's thread every 100 ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// The node thread's Linux thread id (its CPU time is in /proc/self/task/<tid>/stat).
    pub tid: u32,
    pub curr_connections: u64,
    pub total_connections: u64,
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub evictions: u64,
    /// Expired items whose memory was reused (memcached's `reclaimed`).
    pub reclaimed: u64,
    pub curr_items: u64,
    /// Bytes of items (memcached's `bytes`).
    pub bytes: u64,
    pub limit_maxbytes: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl NodeHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, close every client connection, and stop the node's thread. Returns once
    /// the listening socket is closed (unless called from the node's own thread).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handle = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    /// Replace the auto-discovery answer (version and node list).
    pub fn set_cluster_config(&self, version: u64, nodes: Vec<DiscoveryNode>) {
        let mut g = match self.cluster.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = ClusterConfig { version, nodes };
    }

    /// Change the item size limit (parameter group `max_item_size`).
    pub fn set_max_item_size(&self, bytes: u64) {
        self.settings.max_item_size.store(bytes, Ordering::Relaxed);
    }

    /// Change eviction policy (false = memcached's -M, parameter group `error_on_memory_exhausted`).
    pub fn set_evict(&self, evict: bool) {
        self.settings.evict.store(evict, Ordering::Relaxed);
    }

    /// The latest statistics the node published (at most ~100 ms old).
    pub fn stats(&self) -> NodeStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Change the memory limit (bytes, 0 = unlimited).
    pub fn set_memory_limit(&self, bytes: u64) {
        self.settings.memory_limit.store(bytes, Ordering::Relaxed);
    }

    /// Throttle the node's requests (None: no limit); applies to new batches at once.
    pub fn set_throttle(&self, t: Option<Arc<dyn Throttle>>) {
        let on = t.is_some();
        *self
            .throttle
            .limit
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = t;
        self.throttle.on.store(on, Ordering::Relaxed);
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Start a node serving on an already-bound listener.
pub fn spawn(listener: std::net::TcpListener, config: Config) -> std::io::Result<NodeHandle> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let settings = Arc::new(Settings {
        memory_limit: AtomicU64::new(config.memory_limit),
        max_item_size: AtomicU64::new(config.max_item_size),
        evict: AtomicBool::new(config.evict),
    });
    let cluster = Arc::new(Mutex::new(ClusterConfig::default()));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let s2 = settings.clone();
    let c2 = cluster.clone();
    let version = config.version.clone();
    let admit = config.admit.clone();
    let stats = Arc::new(Mutex::new(NodeStats::default()));
    let stats_shared = stats.clone();
    let throttle = Arc::new(ThrottleSlot::default());
    let throttle_node = throttle.clone();
    // The runtime is built and dropped on the node's own thread, so `spawn`/`shutdown` may be
    // called from inside another tokio runtime.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let thread = std::thread::Builder::new()
        .name(format!("memcached-{}", addr.port()))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let local = tokio::task::LocalSet::new();
            local.block_on(
                &rt,
                server::run(
                    listener,
                    addr,
                    s2,
                    c2,
                    version,
                    stop_rx,
                    stats_shared,
                    admit,
                    throttle_node,
                ),
            );
            drop(local);
            drop(rt);
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(std::io::Error::other(
                "memcached node thread failed to start",
            ));
        }
    }
    Ok(NodeHandle {
        addr,
        settings,
        cluster,
        stop,
        thread: Mutex::new(Some(thread)),
        stats,
        throttle,
    })
}
