//! Redis-compatible engine. Interface contract used by the control plane:
//! `spawn(listener, config) -> NodeHandle`.
//!
//! Architecture: one OS thread per node runs a tokio `current_thread` runtime with a
//! `LocalSet`; that thread owns the keyspace (`Rc<RefCell<Node>>`) and serves all of
//! the node's connections. Each connection parses every complete command in its read
//! buffer, executes the batch, and writes one reply buffer.

#![allow(clippy::type_complexity)]

mod alloc;
pub mod cmd;
mod conn;
pub mod db;
pub mod hll;
pub mod keymap;
pub mod node;
pub mod replication;
pub mod resp;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

pub use alloc::CountingAlloc;
pub use db::Policy;

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
    /// maxmemory-policy name (e.g. "volatile-lru", ElastiCache's default).
    pub maxmemory_policy: String,
    /// AUTH token (requirepass); None = no auth.
    pub password: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            maxmemory: 0,
            version: "7.1.0".into(),
            flavor: "redis".into(),
            allow_restricted_commands: false,
            maxmemory_policy: "noeviction".into(),
            password: None,
        }
    }
}

/// Run-time changes sent to a node (parameter groups, auth token changes).
#[derive(Debug, Clone)]
pub enum Control {
    /// A parameter by its Redis name (maxmemory, maxmemory-policy, ...).
    SetParam(String, String),
    SetPassword(Option<String>),
    FlushAll,
    /// Become a replica of this primary (REPLICAOF host port).
    ReplicateFrom(SocketAddr),
    /// Stop replicating, accept writes (REPLICAOF NO ONE).
    Promote,
}

/// A running node. Dropping it does not stop the node; call `shutdown`.
pub struct NodeHandle {
    addr: SocketAddr,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    ctl: tokio::sync::mpsc::UnboundedSender<Control>,
    repl_offset: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stats: std::sync::Arc<Mutex<NodeStats>>,
}

/// What the control plane reads about a node without talking to it (metrics, the
/// console): refreshed by the node's thread every background tick (100 ms), so
/// reading it never waits for the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// The node thread's Linux thread id (its CPU time is in /proc/self/task/<tid>/stat).
    pub tid: u32,
    pub connected_clients: u64,
    pub total_connections: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub evicted_keys: u64,
    pub expired_keys: u64,
    /// Keys in every database.
    pub keys: u64,
    pub used_memory: u64,
    pub maxmemory: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub total_commands: u64,
    /// Calls of read-only commands (ElastiCache's GetTypeCmds).
    pub read_commands: u64,
    /// Calls of write commands (SetTypeCmds).
    pub write_commands: u64,
    /// false while replicating from a primary.
    pub is_master: bool,
    /// A replica's link to its primary is up.
    pub master_link_up: bool,
    pub repl_offset: u64,
    pub connected_replicas: u64,
    /// Replication stream bytes sent to replicas, summed over replicas.
    pub replication_bytes: u64,
}

impl NodeHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, close every client connection, and stop the node's thread.
    /// Waits (at most a few seconds) until the listener is closed.
    pub fn shutdown(&self) {
        let stop = self.stop.lock().ok().and_then(|mut s| s.take());
        if let Some(tx) = stop {
            let _ = tx.send(());
        }
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(rx) = done {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Send a run-time change to the node (applied asynchronously, in order).
    pub fn control(&self, c: Control) {
        let _ = self.ctl.send(c);
    }

    /// Change a parameter; validates the value before sending it.
    pub fn set_param(&self, name: &str, value: &str) -> Result<(), String> {
        validate_param(name, value)?;
        self.control(Control::SetParam(name.to_string(), value.to_string()));
        Ok(())
    }

    pub fn set_maxmemory_policy(&self, policy: &str) -> Result<(), String> {
        self.set_param("maxmemory-policy", policy)
    }

    pub fn set_maxmemory(&self, bytes: u64) {
        self.control(Control::SetParam("maxmemory".into(), bytes.to_string()));
    }

    /// Become a replica of the node at `primary` (like REPLICAOF host port): connect, full
    /// sync (or partial resync), then apply the primary's write stream in order; reconnects
    /// and resyncs on its own if the link drops.
    pub fn replicate_from(&self, primary: SocketAddr) {
        self.control(Control::ReplicateFrom(primary));
    }

    /// Stop replicating and accept writes (REPLICAOF NO ONE); keeps the data.
    pub fn promote(&self) {
        self.control(Control::Promote);
    }

    /// master_repl_offset (primary) / processed offset (replica).
    pub fn replication_offset(&self) -> u64 {
        self.repl_offset.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The latest statistics the node published (at most ~100 ms old).
    pub fn stats(&self) -> NodeStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn validate_param(name: &str, value: &str) -> Result<(), String> {
    match name.to_ascii_lowercase().as_str() {
        "maxmemory-policy" => Policy::parse(value)
            .map(|_| ())
            .ok_or_else(|| format!("invalid maxmemory-policy '{value}'")),
        "maxmemory" => parse_memory(value)
            .map(|_| ())
            .ok_or_else(|| format!("invalid maxmemory '{value}'")),
        _ => Ok(()),
    }
}

/// "100mb", "1gb", "12345" → bytes.
pub fn parse_memory(s: &str) -> Option<u64> {
    let l = s.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = l.strip_suffix("gb") {
        (n, 1u64 << 30)
    } else if let Some(n) = l.strip_suffix("mb") {
        (n, 1 << 20)
    } else if let Some(n) = l.strip_suffix("kb") {
        (n, 1 << 10)
    } else if let Some(n) = l.strip_suffix('g') {
        (n, 1_000_000_000)
    } else if let Some(n) = l.strip_suffix('m') {
        (n, 1_000_000)
    } else if let Some(n) = l.strip_suffix('k') {
        (n, 1000)
    } else if let Some(n) = l.strip_suffix('b') {
        (n, 1)
    } else {
        (l.as_str(), 1)
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

pub(crate) fn apply_param(node: &mut node::Node, name: &str, value: &str) -> Result<(), String> {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "maxmemory" => {
            node.settings.maxmemory =
                parse_memory(value).ok_or("argument must be a memory value")?;
        }
        "maxmemory-policy" => {
            let p = Policy::parse(value).ok_or("argument(s) must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, volatile-random, allkeys-random, volatile-ttl, noeviction")?;
            node.settings.policy = p;
            node.ks.policy = p;
        }
        "maxmemory-samples" => {
            node.settings.maxmemory_samples = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
        }
        "lfu-log-factor" => {
            node.ks.lfu_log_factor = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
        }
        "lfu-decay-time" => {
            node.ks.lfu_decay_time = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
        }
        "requirepass" => {
            node.settings.requirepass = if value.is_empty() {
                None
            } else {
                Some(value.as_bytes().to_vec())
            };
        }
        "proto-max-bulk-len" => {
            node.settings.proto_max_bulk_len =
                parse_memory(value).ok_or("argument must be a memory value")? as usize;
        }
        "timeout" => {
            node.settings.timeout = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
        }
        _ => {}
    }
    node.settings.extra.insert(name, value.to_string());
    Ok(())
}

/// Start a node serving on an already-bound listener.
pub fn spawn(listener: std::net::TcpListener, config: Config) -> std::io::Result<NodeHandle> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (ctl_tx, ctl_rx) = tokio::sync::mpsc::unbounded_channel::<Control>();
    let policy = Policy::parse(&config.maxmemory_policy).unwrap_or_default();
    let settings = node::Settings {
        maxmemory: config.maxmemory,
        policy,
        maxmemory_samples: 5,
        requirepass: config.password.clone().map(|p| p.into_bytes()),
        proto_max_bulk_len: 512 << 20,
        allow_restricted: config.allow_restricted_commands,
        version: config.version.clone(),
        flavor: config.flavor.clone(),
        timeout: 0,
        maxclients: 65000,
        pubsub_hard_limit: 32 << 20,
        extra: Default::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let repl_offset = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let repl_shared = repl_offset.clone();
    let stats = std::sync::Arc::new(Mutex::new(NodeStats::default()));
    let stats_shared = stats.clone();
    std::thread::Builder::new()
        .name(format!("redis-node-{}", addr.port()))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("redis node {addr}: {e}");
                        return;
                    }
                };
                let node = Rc::new(RefCell::new(node::Node::new(settings, addr.port())));
                replication::init(&node, repl_shared);
                tokio::task::spawn_local(background(node.clone(), ctl_rx, stats_shared));
                tokio::select! {
                    _ = accept_loop(node.clone(), listener) => {}
                    _ = async {
                        // A dropped handle (sender gone) does not stop the node.
                        if stop_rx.await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    } => {}
                }
                // Kill every client; the LocalSet drop below closes their sockets.
                for c in node.borrow().clients.values() {
                    c.killed.set(true);
                    c.notify.notify_one();
                }
            });
            drop(local);
            drop(rt);
            let _ = done_tx.send(());
        })?;
    Ok(NodeHandle {
        addr,
        stop: Mutex::new(Some(stop_tx)),
        done: Mutex::new(Some(done_rx)),
        ctl: ctl_tx,
        repl_offset,
        stats,
    })
}

async fn accept_loop(node: Rc<RefCell<node::Node>>, listener: tokio::net::TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let laddr = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        #[cfg(unix)]
        let fd = {
            use std::os::unix::io::AsRawFd;
            stream.as_raw_fd()
        };
        #[cfg(not(unix))]
        let fd = 0;
        let client = {
            let mut n = node.borrow_mut();
            let id = n.next_client_id;
            n.next_client_id += 1;
            n.total_connections += 1;
            let c = Rc::new(node::Client::new(id, peer.to_string(), laddr, fd));
            if n.settings.requirepass.is_none() {
                c.authed.set(true);
            }
            n.clients.insert(id, c.clone());
            c
        };
        tokio::task::spawn_local(conn::handle(node.clone(), stream, client));
    }
}

async fn background(
    node: Rc<RefCell<node::Node>>,
    mut ctl: tokio::sync::mpsc::UnboundedReceiver<Control>,
    stats: std::sync::Arc<Mutex<NodeStats>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ctl_open = true;
    let mut publisher = StatsPublisher::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let mut n = node.borrow_mut();
                publisher.publish(&n, &stats);
                // Replicas never expire or evict on their own: their primary sends DELs.
                if replication::may_expire(&n) {
                    n.ks.active_expire(10_000);
                }
                n.flush_deleted();
                // Evict in the background too, so memory drops without writes.
                let max = n.settings.maxmemory;
                if max > 0 && replication::may_expire(&n) {
                    let mut guard = 0;
                    while n.used_memory() > max && guard < 10_000 && n.ks.evict_one() {
                        guard += 1;
                    }
                    n.flush_deleted();
                }
            }
            c = ctl.recv(), if ctl_open => {
                let Some(c) = c else { ctl_open = false; continue };
                let mut n = node.borrow_mut();
                // A snapshot in progress must not see the change.
                replication::barrier(&mut n);
                match c {
                    Control::SetParam(k, v) => {
                        if let Err(e) = apply_param(&mut n, &k, &v) {
                            tracing::warn!("set {k}: {e}");
                        }
                    }
                    Control::SetPassword(p) => {
                        n.settings.requirepass = p.map(|p| p.into_bytes());
                    }
                    Control::FlushAll => {
                        for d in n.ks.dbs.iter_mut() {
                            *d = Default::default();
                        }
                        n.touch_all_watched(None);
                        replication::propagate(&mut n, None, &[b"FLUSHALL"]);
                    }
                    Control::ReplicateFrom(addr) => replication::replicate_from(&mut n, addr),
                    Control::Promote => replication::promote(&mut n),
                }
            }
        }
    }
}

/// Copies a node's counters into its shared [`NodeStats`].
struct StatsPublisher {
    tid: u32,
    last_offset: u64,
    replication_bytes: u64,
    /// Command-table indexes of read-only and of write commands.
    read_idx: Vec<usize>,
    write_idx: Vec<usize>,
}

impl StatsPublisher {
    fn new() -> StatsPublisher {
        let (mut read_idx, mut write_idx) = (Vec::new(), Vec::new());
        for i in cmd::table().values() {
            if i.flags & cmd::F_READONLY != 0 {
                read_idx.push(i.idx);
            } else if i.flags & cmd::F_WRITE != 0 {
                write_idx.push(i.idx);
            }
        }
        // Aliases share an index: count each command once.
        for v in [&mut read_idx, &mut write_idx] {
            v.sort_unstable();
            v.dedup();
        }
        StatsPublisher {
            tid: current_tid(),
            last_offset: 0,
            replication_bytes: 0,
            read_idx,
            write_idx,
        }
    }

    fn publish(&mut self, n: &node::Node, out: &Mutex<NodeStats>) {
        let replicas = n
            .repl
            .replicas
            .iter()
            .filter(|p| p.online && n.clients.contains_key(&p.client_id))
            .count() as u64;
        let is_master = n.repl.link.is_none();
        let offset = n.repl.offset;
        if is_master && offset > self.last_offset {
            // Every byte of the stream goes to each connected replica.
            self.replication_bytes += (offset - self.last_offset) * replicas;
        }
        self.last_offset = offset;
        let sum = |idx: &[usize]| idx.iter().filter_map(|&i| n.cmd_calls.get(i)).sum::<u64>();
        let s = NodeStats {
            tid: self.tid,
            connected_clients: n.clients.len() as u64,
            total_connections: n.total_connections,
            keyspace_hits: n.ks.stats.hits,
            keyspace_misses: n.ks.stats.misses,
            evicted_keys: n.ks.stats.evicted_keys,
            expired_keys: n.ks.stats.expired_keys,
            keys: n.ks.dbs.iter().map(|d| d.map.len() as u64).sum(),
            used_memory: n.used_memory(),
            maxmemory: n.settings.maxmemory,
            net_input_bytes: n.net_in,
            net_output_bytes: n.net_out,
            total_commands: n.total_commands,
            read_commands: sum(&self.read_idx),
            write_commands: sum(&self.write_idx),
            is_master,
            master_link_up: n
                .repl
                .link
                .as_ref()
                .is_some_and(|l| l.state == replication::LinkState::Connected),
            repl_offset: offset,
            connected_replicas: replicas,
            replication_bytes: self.replication_bytes,
        };
        *out.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

/// This thread's Linux thread id (0 where /proc is not available).
fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}
