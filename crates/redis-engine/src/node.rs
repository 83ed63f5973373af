//! Per-node state: keyspace, clients, pub/sub, blocking, WATCH, settings.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use crate::wake::LocalNotify;
use indexmap::{IndexMap, IndexSet};

use crate::db::{Blob, Hasher, Keyspace, Policy};
use crate::resp::{OwnedCmd, Reply};

/// Settings changeable at run time (CONFIG SET, parameter groups).
#[derive(Debug, Clone)]
pub struct Settings {
    pub maxmemory: u64,
    pub policy: Policy,
    pub maxmemory_samples: u32,
    pub requirepass: Option<Vec<u8>>,
    pub proto_max_bulk_len: usize,
    pub allow_restricted: bool,
    pub version: String,
    pub flavor: String,
    pub timeout: u64,
    pub maxclients: usize,
    pub pubsub_hard_limit: usize,
    pub extra: IndexMap<String, String>,
}

impl Settings {
    /// True on a Valkey node whose engine version is at least `major.minor`: the
    /// Valkey 8.x command additions answer only there, so Redis OSS and Valkey 7.2
    /// nodes keep Redis 7.0's replies.
    pub fn valkey_at_least(&self, major: u32, minor: u32) -> bool {
        if self.flavor != "valkey" {
            return false;
        }
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        have >= (major, minor)
    }
}

pub struct BlockState {
    pub db: usize,
    pub keys: Vec<Blob>,
    pub cmd: OwnedCmd,
    pub deadline: Option<Instant>,
}

/// A connection's state visible to the node (other clients read it for CLIENT LIST,
/// PUBLISH writes into `out`).
pub struct Client {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub created: Instant,
    pub last_cmd_at: Cell<Instant>,
    pub db: Cell<usize>,
    pub resp3: Cell<bool>,
    pub authed: Cell<bool>,
    pub out: RefCell<Vec<u8>>,
    pub notify: LocalNotify,
    pub killed: Cell<bool>,
    pub close_after_reply: Cell<bool>,
    pub name: RefCell<Vec<u8>>,
    pub lib_name: RefCell<Vec<u8>>,
    pub lib_ver: RefCell<Vec<u8>>,
    pub last_cmd: RefCell<std::borrow::Cow<'static, str>>,
    pub no_evict: Cell<bool>,
    pub no_touch: Cell<bool>,
    pub multi: RefCell<Option<Vec<OwnedCmd>>>,
    pub multi_error: Cell<bool>,
    pub dirty_cas: Cell<bool>,
    pub watched: RefCell<Vec<(usize, Blob)>>,
    pub subs: RefCell<IndexSet<Blob, Hasher>>,
    pub psubs: RefCell<IndexSet<Blob, Hasher>>,
    pub blocked: RefCell<Option<BlockState>>,
    pub qbuf: Cell<usize>,
    /// Replication offset after this client's last propagated write (WAIT).
    pub woff: Cell<u64>,
    /// CLIENT TRACKING is on (fast check on the read path).
    pub tracking: Cell<bool>,
    pub trk: RefCell<crate::tracking::ClientTracking>,
    /// CLIENT REPLY OFF (Off) / SKIP (Skip, for the next command).
    pub reply_mode: Cell<ReplyMode>,
    /// Input read from the socket while a busy script ran (see `lua::busy`); the
    /// connection loop consumes it first.
    pub pending_in: RefCell<Vec<u8>>,
    /// The connection task is in the middle of writing replies (busy scripts must not
    /// write to the socket then).
    pub flushing: Cell<bool>,
    /// The ACL user this connection is authenticated as (`default` until AUTH).
    pub user: RefCell<Vec<u8>>,
    /// Cluster mode: READONLY (reads served by a replica) and ASKING (next command only).
    pub readonly: Cell<bool>,
    pub asking: Cell<bool>,
    /// Shard channels (SSUBSCRIBE).
    pub ssubs: RefCell<IndexSet<Blob, Hasher>>,
}

/// CLIENT REPLY state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Skip the reply of the next command.
    SkipNext,
    /// Skipping the current command's reply.
    Skip,
}

impl Client {
    pub fn new(id: u64, addr: String, laddr: String, fd: i32) -> Client {
        let now = Instant::now();
        Client {
            id,
            addr,
            laddr,
            fd,
            created: now,
            last_cmd_at: Cell::new(now),
            db: Cell::new(0),
            resp3: Cell::new(false),
            authed: Cell::new(false),
            out: RefCell::new(Vec::new()),
            notify: LocalNotify::new(),
            killed: Cell::new(false),
            close_after_reply: Cell::new(false),
            name: RefCell::new(Vec::new()),
            lib_name: RefCell::new(Vec::new()),
            lib_ver: RefCell::new(Vec::new()),
            last_cmd: RefCell::new(std::borrow::Cow::Borrowed("NULL")),
            no_evict: Cell::new(false),
            no_touch: Cell::new(false),
            multi: RefCell::new(None),
            multi_error: Cell::new(false),
            dirty_cas: Cell::new(false),
            watched: RefCell::new(Vec::new()),
            subs: RefCell::new(IndexSet::default()),
            psubs: RefCell::new(IndexSet::default()),
            blocked: RefCell::new(None),
            qbuf: Cell::new(0),
            woff: Cell::new(0),
            tracking: Cell::new(false),
            trk: RefCell::new(Default::default()),
            reply_mode: Cell::new(ReplyMode::On),
            pending_in: RefCell::new(Vec::new()),
            flushing: Cell::new(false),
            user: RefCell::new(b"default".to_vec()),
            readonly: Cell::new(false),
            asking: Cell::new(false),
            ssubs: RefCell::new(IndexSet::default()),
        }
    }
    pub fn sub_count(&self) -> usize {
        self.subs.borrow().len() + self.psubs.borrow().len()
    }
    pub fn in_pubsub(&self) -> bool {
        self.sub_count() > 0 || !self.ssubs.borrow().is_empty()
    }
}

/// Hook called after every executed write command (replication, AOF later).
pub type WriteHook = Box<dyn FnMut(usize, &crate::resp::Args<'_>)>;

pub struct Node {
    pub ks: Keyspace,
    pub settings: Settings,
    pub clients: IndexMap<u64, Rc<Client>>,
    pub next_client_id: u64,
    pub channels: HashMap<Blob, IndexSet<u64>, Hasher>,
    pub patterns: IndexMap<Blob, IndexSet<u64>, Hasher>,
    pub blocking: HashMap<(usize, Blob), VecDeque<u64>>,
    pub ready: Vec<(usize, Blob)>,
    pub watched: HashMap<(usize, Blob), Vec<u64>>,
    pub current_client: u64,
    pub started: Instant,
    pub start_unix: u64,
    pub total_commands: u64,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub net_in: u64,
    pub net_out: u64,
    pub dirty: u64,
    pub lastsave: u64,
    pub run_id: String,
    pub port: u16,
    pub write_hook: Option<WriteHook>,
    pub cmd_calls: Vec<u64>,
    pub pubsub_clients_total: u64,
    pub blocked_count: usize,
    /// Replication state (see `replication.rs`).
    pub repl: crate::replication::Repl,
    /// Client-side caching (see `tracking.rs`).
    pub tracking: crate::tracking::Tracking,
    /// CLIENT PAUSE, SLOWLOG, LATENCY (see `monitor.rs`).
    pub mon: crate::monitor::Monitor,
    /// When the command about to be `call`ed was read off the clock (see `cmd::execute`).
    pub cmd_start: Option<std::time::Instant>,
    /// Within a connection's batch: the clock as last read (batch start, or the end of the
    /// previous command), which the next command takes as its start instead of reading again.
    pub clock_hint: Option<std::time::Instant>,
    /// A connection is executing a batch (`clock_hint` is only carried within one).
    pub in_batch: bool,
    /// Cluster mode: the other nodes PUBLISH is broadcast to.
    pub cluster_peers: Vec<crate::Bus>,
    /// Set by a command whose effect must be propagated in another form (XADD's generated
    /// ID, XREADGROUP's PEL changes as XCLAIM/XGROUP SETID); consumed by replication.
    pub propagate_as: Option<Vec<crate::resp::OwnedCmd>>,
    /// Lua scripts and function libraries (created on first use; see `lua/`).
    pub scripting: Option<Box<crate::lua::Scripting>>,
    /// ACL users; None = only the `default` user with `requirepass` (see `acl.rs`).
    pub acl: Option<Box<crate::acl::Acl>>,
    /// `ACL LOG`: denied commands and failed AUTHs, newest first.
    pub acl_log: std::collections::VecDeque<crate::acl::LogEntry>,
    /// Cluster mode state; None on a standalone node.
    pub cluster: Option<Box<crate::cluster::ClusterState>>,
    /// Shard channel → subscribed client ids (SSUBSCRIBE).
    pub shard_channels: HashMap<Blob, IndexSet<u64>, Hasher>,
}

impl Node {
    pub fn new(settings: Settings, port: u16) -> Node {
        let mut ks = Keyspace::new(16);
        ks.policy = settings.policy;
        let mut run_id = String::new();
        for _ in 0..5 {
            run_id.push_str(&format!("{:08x}", ks.rng.next_u64() as u32));
        }
        let commandlog = settings.valkey_at_least(8, 1);
        Node {
            ks,
            settings,
            clients: IndexMap::new(),
            next_client_id: 1,
            channels: HashMap::default(),
            patterns: IndexMap::default(),
            blocking: HashMap::new(),
            ready: Vec::new(),
            watched: HashMap::new(),
            current_client: 0,
            started: Instant::now(),
            start_unix: crate::db::now_ms() / 1000,
            total_commands: 0,
            total_connections: 0,
            rejected_connections: 0,
            net_in: 0,
            net_out: 0,
            dirty: 0,
            lastsave: crate::db::now_ms() / 1000,
            run_id,
            port,
            write_hook: None,
            cmd_calls: vec![0; crate::cmd::table().len()],
            pubsub_clients_total: 0,
            blocked_count: 0,
            repl: crate::replication::Repl::default(),
            tracking: Default::default(),
            mon: crate::monitor::Monitor {
                commandlog,
                ..Default::default()
            },
            cmd_start: None,
            clock_hint: None,
            in_batch: false,
            cluster_peers: Vec::new(),
            propagate_as: None,
            scripting: None,
            acl: None,
            acl_log: Default::default(),
            cluster: None,
            shard_channels: HashMap::default(),
        }
    }

    /// Bytes in use (counting allocator when installed, else an estimate).
    pub fn used_memory(&self) -> u64 {
        match crate::alloc::thread_used() {
            Some(u) => u as u64,
            None => {
                let mut total = 1_000_000u64;
                for d in &self.ks.dbs {
                    total += d.map.len() as u64 * 64 + d.expires.len() as u64 * 48;
                    if d.map.len() < 100_000 {
                        for (k, e) in d.map.iter() {
                            total += k.len() as u64 + e.val.mem_estimate() as u64;
                        }
                    } else {
                        total += d.map.len() as u64 * 120;
                    }
                }
                total
            }
        }
    }

    /// Install the hook called after every executed write command (replication, AOF).
    /// Keys removed by expiry or eviction are passed to it as `DEL key`, before the
    /// command that caused their removal.
    pub fn set_write_hook(&mut self, hook: Option<WriteHook>) {
        self.ks.log_deletes = hook.is_some() || crate::replication::wants_deletes(self);
        self.write_hook = hook;
    }

    /// Propagate logged expiry/eviction deletions to the write hook.
    pub fn flush_deleted(&mut self) {
        if self.ks.deleted.is_empty() {
            return;
        }
        let list = std::mem::take(&mut self.ks.deleted);
        if self.tracking.active() {
            crate::tracking::invalidate_deleted(self, &list);
        }
        if let Some(h) = self.write_hook.as_mut() {
            for (db, key) in &list {
                let cmd = crate::resp::OwnedCmd::from_parts(&[b"DEL", key]);
                h(*db, &cmd.args());
            }
        }
        crate::replication::propagate_deletes(self, &list);
    }

    /// Mark a key as modified: WATCH invalidation and wake-ups of blocked clients.
    pub fn touch_key(&mut self, db: usize, key: &[u8]) {
        if !self.watched.is_empty() {
            if let Some(ids) = self.watched.get(&(db, Blob::from(key))) {
                for id in ids {
                    if let Some(c) = self.clients.get(id) {
                        c.dirty_cas.set(true);
                    }
                }
            }
        }
        if !self.blocking.is_empty() {
            let k = (db, Blob::from(key));
            if self.blocking.contains_key(&k) && !self.ready.contains(&k) {
                self.ready.push(k);
            }
        }
    }

    pub fn touch_all_watched(&mut self, db: Option<usize>) {
        for ((d, _), ids) in self.watched.iter() {
            if db.is_none_or(|x| x == *d) {
                for id in ids {
                    if let Some(c) = self.clients.get(id) {
                        c.dirty_cas.set(true);
                    }
                }
            }
        }
    }

    pub fn unwatch_all(&mut self, c: &Client) {
        let list = std::mem::take(&mut *c.watched.borrow_mut());
        for k in list {
            if let Some(v) = self.watched.get_mut(&k) {
                v.retain(|&id| id != c.id);
                if v.is_empty() {
                    self.watched.remove(&k);
                }
            }
        }
        c.dirty_cas.set(false);
    }

    /// Remove a client's registrations (on disconnect).
    pub fn remove_client(&mut self, c: &Client) {
        crate::tracking::disable(self, c);
        self.unwatch_all(c);
        self.unblock(c);
        for ch in std::mem::take(&mut *c.subs.borrow_mut()) {
            if let Some(s) = self.channels.get_mut(&ch) {
                s.shift_remove(&c.id);
                if s.is_empty() {
                    self.channels.remove(&ch);
                }
            }
        }
        for ch in std::mem::take(&mut *c.ssubs.borrow_mut()) {
            if let Some(s) = self.shard_channels.get_mut(&ch) {
                s.shift_remove(&c.id);
                if s.is_empty() {
                    self.shard_channels.remove(&ch);
                }
            }
        }
        for p in std::mem::take(&mut *c.psubs.borrow_mut()) {
            if let Some(s) = self.patterns.get_mut(&p) {
                s.shift_remove(&c.id);
                if s.is_empty() {
                    self.patterns.shift_remove(&p);
                }
            }
        }
        self.clients.shift_remove(&c.id);
    }

    pub fn block(&mut self, c: &Client, st: BlockState) {
        for k in &st.keys {
            self.blocking
                .entry((st.db, k.clone()))
                .or_default()
                .push_back(c.id);
        }
        *c.blocked.borrow_mut() = Some(st);
        self.blocked_count += 1;
    }

    pub fn unblock(&mut self, c: &Client) -> Option<BlockState> {
        let st = c.blocked.borrow_mut().take()?;
        for k in &st.keys {
            let kk = (st.db, k.clone());
            if let Some(q) = self.blocking.get_mut(&kk) {
                q.retain(|&id| id != c.id);
                if q.is_empty() {
                    self.blocking.remove(&kk);
                }
            }
        }
        self.blocked_count = self.blocked_count.saturating_sub(1);
        Some(st)
    }

    /// Deliver a pub/sub message frame to a client.
    pub fn deliver(&self, id: u64, cur_out: &mut Vec<u8>, f: impl Fn(&mut Reply<'_>)) -> bool {
        let Some(c) = self.clients.get(&id) else {
            return false;
        };
        if id == self.current_client {
            f(&mut Reply {
                out: cur_out,
                resp3: c.resp3.get(),
            });
        } else {
            let mut o = c.out.borrow_mut();
            f(&mut Reply {
                out: &mut o,
                resp3: c.resp3.get(),
            });
            if o.len() > self.settings.pubsub_hard_limit && self.settings.pubsub_hard_limit > 0 {
                c.killed.set(true);
            }
            drop(o);
            c.notify.notify_one();
        }
        true
    }

    pub fn all_subscriber_ids(&self) -> HashSet<u64> {
        let mut s = HashSet::new();
        for v in self.channels.values() {
            s.extend(v.iter().copied());
        }
        for v in self.patterns.values() {
            s.extend(v.iter().copied());
        }
        s
    }
}
