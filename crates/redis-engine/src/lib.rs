//! Redis-compatible engine. Interface contract used by the control plane:
//! `spawn(listener, config) -> NodeHandle`.
//!
//! Architecture: one OS thread per node runs a tokio `current_thread` runtime with a
//! `LocalSet`; that thread owns the keyspace (`Rc<RefCell<Node>>`) and serves all of
//! the node's connections. Each connection parses every complete command in its read
//! buffer, executes the batch, and writes one reply buffer.

#![allow(clippy::type_complexity)]

pub mod acl;
mod alloc;
pub mod cluster;
pub mod cmd;
mod conn;
pub mod db;
pub mod geohash;
pub mod hll;
pub mod keymap;
pub mod lua;
pub mod monitor;
pub mod node;
pub mod notify;
pub mod replication;
pub mod resp;
pub mod small;
pub mod sources;
pub mod tracking;
mod wake;

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
    /// ACL users (an ElastiCache user group); None = only `default` with `password`.
    pub users: Option<Vec<acl::UserSpec>>,
    /// Verifies IAM auth tokens of users in `iam` mode.
    pub iam_verifier: Option<acl::IamVerifier>,
    /// Security groups: sources the listener admits (None: all).
    pub source_filter: Option<std::sync::Arc<sources::SourceFilter>>,
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
            users: None,
            iam_verifier: None,
            source_filter: None,
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
    /// Before a failover: hold every client write (as CLIENT PAUSE WRITE, until the node
    /// stops) while replica links keep flowing; the sender gets the final offset.
    HoldWrites(std::sync::mpsc::Sender<u64>),
    /// Fault injection: freeze the node's thread (like SIGSTOP) until this deadline or
    /// `NodeHandle::resume`. Connections stay open but nothing is read, written or accepted.
    Pause(Option<std::time::Instant>),
    /// Fault injection: a network partition around the node (true) or its end (false).
    /// Isolated, the node keeps running but every connection (clients, replicas, its link
    /// to its primary) is cut and new ones are closed at once; healed, a replica reconnects
    /// to its primary (partial resync when the backlog allows).
    /// The sender, when given, is told once the partition is in place.
    Isolate(bool, Option<std::sync::mpsc::Sender<()>>),
    /// Replace the node's ACL users (None: back to the AUTH token only), with the
    /// verifier of IAM auth tokens (None keeps the current one).
    SetUsers(Option<Vec<acl::UserSpec>>, Option<acl::IamVerifier>),
    /// Enter (or update) cluster mode with this view of the cluster.
    SetClusterTopology(Box<cluster::Topology>),
    /// The other nodes of this cluster-mode cluster: PUBLISH reaches their subscribers
    /// too, as Redis Cluster's bus broadcasts it (empty: not in a cluster).
    SetClusterPeers(Vec<Bus>),
    /// A PUBLISH made on a peer (delivered here only, never forwarded again).
    Publish(db::Blob, db::Blob),
    /// Move a batch of keys of some slots to another node (resharding).
    MigrateSlots(cluster::Migration),
    /// Store keys another node is migrating here.
    ImportKeys(cluster::ImportBatch),
    /// Log delivery: send new slow-log entries and engine-log lines here (None: stop).
    SetLogSink(Option<monitor::LogSink>),
    /// A serverless cache's ECPU/second maximum (None: no limit).
    SetEcpuLimit(Option<std::sync::Arc<monitor::EcpuLimit>>),
}

/// Wakes a paused node's thread (see `Control::Pause`).
#[derive(Default)]
struct PauseGate {
    paused: Mutex<bool>,
    cv: std::sync::Condvar,
    /// How many pauses the node thread has entered: `pause` returns once its own has,
    /// so a command sent after the pause call is really held.
    entered: Mutex<u64>,
    entered_cv: std::sync::Condvar,
}

impl PauseGate {
    /// Block the calling (node) thread while paused, at most until `until`.
    fn wait(&self, until: Option<std::time::Instant>) {
        if let Ok(mut e) = self.entered.lock() {
            *e += 1;
        }
        self.entered_cv.notify_all();
        let Ok(mut p) = self.paused.lock() else {
            return;
        };
        while *p {
            let left = match until {
                Some(t) => match t.checked_duration_since(std::time::Instant::now()) {
                    Some(d) if !d.is_zero() => d,
                    _ => break,
                },
                None => Duration::from_secs(3600),
            };
            match self.cv.wait_timeout(p, left) {
                Ok((g, _)) => p = g,
                Err(_) => return,
            }
        }
        // A pause that timed out is over (the next one sets it again).
        *p = false;
    }
    fn set(&self, v: bool) {
        if let Ok(mut p) = self.paused.lock() {
            *p = v;
        }
        self.cv.notify_all();
    }
    fn entered_count(&self) -> u64 {
        self.entered.lock().map(|e| *e).unwrap_or(0)
    }
    /// Wait (at most `max`) until the node thread has entered a pause after `before`.
    fn await_entered(&self, before: u64, max: Duration) {
        let deadline = std::time::Instant::now() + max;
        let Ok(mut e) = self.entered.lock() else {
            return;
        };
        while *e <= before {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return;
            };
            match self.entered_cv.wait_timeout(e, left) {
                Ok((g, _)) => e = g,
                Err(_) => return,
            }
        }
    }
}

/// A way to send a node run-time changes from another node (the cluster bus).
#[derive(Clone, Debug)]
pub struct Bus(tokio::sync::mpsc::UnboundedSender<Control>);

impl Bus {
    pub fn send(&self, c: Control) {
        let _ = self.0.send(c);
    }
}

/// A running node. Dropping it does not stop the node; call `shutdown`.
pub struct NodeHandle {
    addr: SocketAddr,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    ctl: tokio::sync::mpsc::UnboundedSender<Control>,
    repl_offset: std::sync::Arc<std::sync::atomic::AtomicU64>,
    gate: std::sync::Arc<PauseGate>,
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
    /// Keys in databases other than 0 (cluster mode allows only database 0).
    pub keys_outside_db0: u64,
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
        // A paused node must run again to stop.
        self.gate.set(false);
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

    /// This node's end of the cluster bus, for its peers.
    pub fn bus(&self) -> Bus {
        Bus(self.ctl.clone())
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

    /// Hold every client write from now on (replicas keep receiving the stream) and
    /// return the replication offset no write can pass: a failover promotes a replica
    /// once it has reached it, so no acknowledged write is lost. None if the node did
    /// not answer within 2 s.
    pub fn hold_writes(&self) -> Option<u64> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.control(Control::HoldWrites(tx));
        rx.recv_timeout(Duration::from_secs(2)).ok()
    }

    /// Fault injection: freeze the node for `d` (None: until `resume`).
    /// Returns once the node's thread is frozen (or after 2 s if it is busy).
    pub fn pause(&self, d: Option<Duration>) {
        let before = self.gate.entered_count();
        self.gate.set(true);
        self.control(Control::Pause(d.map(|d| std::time::Instant::now() + d)));
        self.gate.await_entered(before, Duration::from_secs(2));
    }

    /// End a pause.
    pub fn resume(&self) {
        self.gate.set(false);
    }

    /// Fault injection: cut the node off the network (true) or heal it (false).
    pub fn isolate(&self, on: bool) {
        // Returns once the node has cut its connections (or after 2 s if it is busy), so
        // whatever a caller sends next already meets the partition.
        let (tx, rx) = std::sync::mpsc::channel();
        self.control(Control::Isolate(on, Some(tx)));
        let _ = rx.recv_timeout(Duration::from_secs(2));
    }

    /// Where another node sends keys migrated to this one.
    pub fn import_target(&self) -> cluster::ImportTarget {
        cluster::ImportTarget(self.ctl.clone())
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
        "notify-keyspace-events" => notify::parse_flags(value)
            .map(|_| ())
            .ok_or_else(|| format!("invalid notify-keyspace-events '{value}'")),
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
        "notify-keyspace-events" => {
            let f = notify::parse_flags(value).ok_or(notify::INVALID)?;
            node.ks.notify_flags = f;
            node.settings.extra.insert(name, notify::flags_to_string(f));
            return Ok(());
        }
        "timeout" => {
            node.settings.timeout = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
        }
        "maxclients" => {
            node.settings.maxclients = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
        }
        // Not a server parameter: the control plane marks a serverless cache's node
        // with it, as AWS does not offer COMMANDLOG on serverless caches. Kept out of
        // CONFIG GET.
        "elastilite-serverless" => {
            if value == "yes" {
                node.mon.commandlog = false;
                node.mon.update_timing();
            }
            return Ok(());
        }
        // Valkey 8.1's COMMANDLOG settings; the slow-execution pair are new names for
        // the slowlog's (config.c aliases).
        "commandlog-execution-slower-than" if node.mon.commandlog => {
            return apply_param(node, "slowlog-log-slower-than", value);
        }
        "commandlog-slow-execution-max-len" if node.mon.commandlog => {
            return apply_param(node, "slowlog-max-len", value);
        }
        "commandlog-request-larger-than" | "commandlog-reply-larger-than"
            if node.mon.commandlog =>
        {
            let v: i64 = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            if v < -1 {
                return Err("argument must be between -1 and 9223372036854775807 inclusive".into());
            }
            if name == "commandlog-request-larger-than" {
                node.mon.large_request.threshold = v;
            } else {
                node.mon.large_reply.threshold = v;
            }
            node.mon.update_timing();
        }
        "commandlog-large-request-max-len" | "commandlog-large-reply-max-len"
            if node.mon.commandlog =>
        {
            let v: usize = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            let log = if name == "commandlog-large-request-max-len" {
                &mut node.mon.large_request
            } else {
                &mut node.mon.large_reply
            };
            log.max_len = v;
            log.entries.truncate(v);
        }
        "slowlog-log-slower-than" => {
            node.mon.slower_than = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            node.mon.update_timing();
        }
        "slowlog-max-len" => {
            node.mon.slowlog_max_len = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            let m = node.mon.slowlog_max_len;
            node.mon.slowlog.truncate(m);
        }
        "latency-monitor-threshold" => {
            node.mon.latency_threshold = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            node.mon.update_timing();
        }
        "tracking-table-max-keys" => {
            node.tracking.max_keys = value
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
    let gate = std::sync::Arc::new(PauseGate::default());
    let gate_node = gate.clone();
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
                let mut n = node::Node::new(settings, addr.port());
                if let Some(users) = &config.users {
                    let mut a = acl::Acl::from_specs(users);
                    a.iam = config.iam_verifier.clone();
                    n.acl = Some(Box::new(a));
                }
                let node = Rc::new(RefCell::new(n));
                replication::init(&node, repl_shared);
                tokio::task::spawn_local(background(
                    node.clone(),
                    ctl_rx,
                    gate_node,
                    config.iam_verifier.clone(),
                    stats_shared,
                ));
                tokio::select! {
                    _ = accept_loop(node.clone(), listener, config.source_filter.clone()) => {}
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
        gate,
        stats,
    })
}

async fn accept_loop(
    node: Rc<RefCell<node::Node>>,
    listener: tokio::net::TcpListener,
    filter: Option<std::sync::Arc<sources::SourceFilter>>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Partitioned off (fault injection): the connection goes nowhere.
        if node.borrow().repl.isolated {
            drop(stream);
            continue;
        }
        if filter.as_ref().is_some_and(|f| !f.admits(peer)) {
            tracing::info!(%peer, "connection refused: no security group rule admits it");
            drop(stream);
            continue;
        }
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
            if n.clients.len() >= n.settings.maxclients {
                // acceptCommonHandler: tell the client why, then close.
                n.rejected_connections += 1;
                monitor::engine_log_at(&n, '#', || {
                    format!("Error accepting a client connection: max number of clients reached (conn: {peer})")
                });
                drop(n);
                let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
                continue;
            }
            let id = n.next_client_id;
            n.next_client_id += 1;
            n.total_connections += 1;
            let c = Rc::new(node::Client::new(id, peer.to_string(), laddr, fd));
            if !acl::auth_required(&n) {
                c.authed.set(true);
            }
            n.clients.insert(id, c.clone());
            c
        };
        tokio::task::spawn_local(conn::handle(node.clone(), stream, client));
    }
}

/// `timeout`: close clients idle longer than that many seconds, as Redis's clientsCron
/// does (not replicas, blocked clients or Pub/Sub subscribers).
fn close_idle_clients(n: &node::Node) {
    let t = n.settings.timeout;
    // Clients held by CLIENT PAUSE are blocked ones in Redis, exempt too.
    if t == 0 || n.mon.pause_end.is_some() {
        return;
    }
    let master = n.repl.link.as_ref().and_then(|l| l.master_client);
    let now = std::time::Instant::now();
    for c in n.clients.values() {
        if c.blocked.borrow().is_some()
            || c.in_pubsub()
            || Some(c.id) == master
            || n.repl.replicas.iter().any(|p| p.client_id == c.id)
        {
            continue;
        }
        if now.duration_since(c.last_cmd_at.get()).as_millis() > t as u128 * 1000 {
            c.killed.set(true);
            c.notify.notify_one();
        }
    }
}

async fn background(
    node: Rc<RefCell<node::Node>>,
    mut ctl: tokio::sync::mpsc::UnboundedReceiver<Control>,
    gate: std::sync::Arc<PauseGate>,
    iam: Option<acl::IamVerifier>,
    stats: std::sync::Arc<Mutex<NodeStats>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ctl_open = true;
    let mut ticks: u64 = 0;
    let mut publisher = StatsPublisher::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let mut n = node.borrow_mut();
                // No client is executing: invalidations go straight to their connections.
                n.current_client = 0;
                n.ks.clock.resync();
                ticks += 1;
                if ticks.is_multiple_of(5) {
                    close_idle_clients(&n);
                }
                publisher.publish(&n, &stats);
                // Replicas never expire or evict on their own: their primary sends DELs.
                if replication::may_expire(&n) {
                    n.ks.active_expire(10_000);
                }
                n.flush_deleted();
                notify::drain_background(&mut n);
                // Evict in the background too, so memory drops without writes.
                let max = n.settings.maxmemory;
                if max > 0 && replication::may_expire(&n) {
                    let mut guard = 0;
                    while n.used_memory() > max && guard < 10_000 && n.ks.evict_one() {
                        guard += 1;
                    }
                    n.flush_deleted();
                    notify::drain_background(&mut n);
                }
                tracking::flush_bcast(&mut n, None);
            }
            c = ctl.recv(), if ctl_open => {
                let Some(c) = c else { ctl_open = false; continue };
                if let Control::Pause(until) = c {
                    // Blocks the whole node thread: nothing is served until resumed.
                    gate.wait(until);
                    continue;
                }
                let mut n = node.borrow_mut();
                // A snapshot in progress must not see a flush (it has not named the keys).
                if matches!(c, Control::FlushAll) {
                    replication::barrier(&mut n);
                }
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
                        n.current_client = 0;
                        tracking::on_flush(&mut n);
                        replication::propagate(&mut n, None, &[b"FLUSHALL"]);
                    }
                    Control::ReplicateFrom(addr) => replication::replicate_from(&mut n, addr),
                    Control::Promote => replication::promote(&mut n),
                    Control::HoldWrites(done) => {
                        monitor::hold_writes(&mut n);
                        let _ = done.send(n.repl.offset);
                    }
                    Control::Isolate(on, done) => {
                        replication::isolate(&mut n, on);
                        if let Some(d) = done {
                            let _ = d.send(());
                        }
                    }
                    Control::Pause(_) => {}
                    Control::SetUsers(users, verifier) => {
                        let iam = verifier
                            .or_else(|| n.acl.as_ref().and_then(|a| a.iam.clone()))
                            .or_else(|| iam.clone());
                        let acl = users.map(|u| {
                            let mut a = acl::Acl::from_specs(&u);
                            a.iam = iam;
                            a
                        });
                        acl::set_users(&mut n, acl);
                    }
                    Control::SetClusterTopology(t) => cluster::set_topology(&mut n, *t),
                    Control::SetClusterPeers(peers) => n.cluster_peers = peers,
                    Control::Publish(ch, msg) => {
                        // No client is running a command: subscribers get it in their own buffers.
                        let prev = n.current_client;
                        n.current_client = 0;
                        let mut scratch = Vec::new();
                        cmd::pubsub::publish_msg(&mut n, &mut scratch, &ch, &msg);
                        n.current_client = prev;
                    }
                    Control::MigrateSlots(m) => {
                        let r = cluster::migrate(&mut n, &m);
                        let _ = m.reply.send(r);
                    }
                    Control::ImportKeys(b) => cluster::import(&mut n, b),
                    Control::SetLogSink(sink) => n.mon.log_sink = sink,
                    Control::SetEcpuLimit(limit) => n.mon.ecpu = limit,
                }
            }
        }
    }
}

/// A value as a DUMP payload (cluster slot migration).
pub(crate) fn rdb_dump(v: &db::Value) -> Vec<u8> {
    rdb::dump(&cmd::hyperloglog::to_rdb(v)).to_vec()
}

/// A DUMP payload back into a value; None when it is not one this engine stores.
pub(crate) fn rdb_restore(payload: &[u8]) -> Option<db::Value> {
    cmd::hyperloglog::from_rdb(rdb::restore(payload).ok()?)
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
            keys_outside_db0: n.ks.dbs.iter().skip(1).map(|d| d.map.len() as u64).sum(),
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
