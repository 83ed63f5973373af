//! Replication, speaking Redis 7's protocol (PSYNC2) so it interoperates with redis-server.
//!
//! Primary side: a replica connects as an ordinary client and sends `PING`, `REPLCONF
//! listening-port`, `REPLCONF capa …`, `PSYNC <replid> <offset>`. We answer `+CONTINUE` from the
//! backlog when we can, else `+FULLRESYNC <replid> <offset>` followed by an RDB snapshot
//! (`$<len>\r\n<bytes>`). Then every write executed on this node is appended, as the RESP
//! array it was (or a deterministic rewrite of it, see [`rewrite`]), to the backlog and to each
//! replica connection's output buffer. Lazy/active expiry and evictions are sent as `DEL`.
//!
//! Snapshot (no fork on a single-threaded node): point in time, streamed (see [`Snapshot`]).
//! A driver task serializes a couple of ms of keys at a time between client batches and hands
//! the bytes to the replicas' connections with backpressure; a write command about to change a
//! key not serialized yet serializes it first ("serialize before mutate"). Replicas that
//! announce `capa eof` (redis-server 7 and ours) get the diskless framing `$EOF:<mark>`, so
//! neither side buffers the whole file. `INFO stats` reports the longest slice as
//! `latest_fork_usec` and the count as `total_forks`.
//!
//! Replica side: a task on the node's thread connects to the primary, performs the handshake,
//! loads the RDB, and applies the command stream through the normal command path as the
//! "master client" (which is allowed to write while everyone else gets `-READONLY`). It
//! acknowledges its offset every second and on `REPLCONF GETACK`, proxies the exact stream
//! into its own backlog (so after promotion other replicas can `PSYNC` from it, keeping the old
//! replid as replid2), and reconnects every second if the link drops.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cmd::server::cmd;
use crate::cmd::{err, CmdDef, CmdInfo, CmdResult, Ctx, Error, Keys, F_WRITE};
use crate::db::{Blob, ExpireMode, Value};
use crate::node::{BlockState, Client, Node};
use crate::resp::{parse_command, push_int, Args, Parsed};

const ZERO_ID: &str = "0000000000000000000000000000000000000000";
/// client-output-buffer-limit replica hard limit.
const REPLICA_OUT_LIMIT: usize = 256 << 20;
/// repl-timeout.
const REPL_TIMEOUT: Duration = Duration::from_secs(60);
/// repl-ping-replica-period.
const PING_PERIOD: Duration = Duration::from_secs(10);

/// The replication backlog: the last `cap` bytes of the stream.
pub struct Backlog {
    buf: VecDeque<u8>,
    cap: usize,
    /// Stream offset of the byte just before `buf[0]`.
    start: u64,
}

impl Backlog {
    fn new(cap: usize, offset: u64) -> Backlog {
        Backlog {
            buf: VecDeque::new(),
            cap: cap.max(16 * 1024),
            start: offset,
        }
    }
    fn push(&mut self, b: &[u8]) {
        self.buf.extend(b.iter());
        if self.buf.len() > self.cap {
            let drop = self.buf.len() - self.cap;
            self.buf.drain(..drop);
            self.start += drop as u64;
        }
    }
    /// Bytes after stream offset `from` (the replica has everything up to `from`).
    fn since(&self, from: u64) -> Option<Vec<u8>> {
        if from < self.start || from > self.start + self.buf.len() as u64 {
            return None;
        }
        let skip = (from - self.start) as usize;
        Some(self.buf.range(skip..).copied().collect())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkState {
    Connect,
    Connecting,
    Sync,
    Connected,
}

impl LinkState {
    fn name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// This node's link to its primary.
pub struct Link {
    pub primary: SocketAddr,
    pub state: LinkState,
    pub master_client: Option<u64>,
    pub task: Option<tokio::task::JoinHandle<()>>,
    pub last_io: Instant,
    pub down_since: Instant,
    pub read_offset: u64,
    pub ack_requested: bool,
    /// The db the primary's stream was at when the link dropped (a partial resync continues
    /// the stream without a new SELECT, like Redis's cached master client).
    pub master_db: usize,
}

/// A replica connected to this node.
pub struct Peer {
    pub client_id: u64,
    pub ip: String,
    pub port: u16,
    pub ack: u64,
    pub last_ack: Instant,
    pub online: bool,
    pub phase: Phase,
    /// Stream bytes held back while the replica receives its RDB.
    pub pending: Vec<u8>,
}

/// Where a replica is in its synchronisation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Full resync asked while another snapshot runs: it gets the next one.
    Queued,
    /// Receiving the RDB; the command stream is held back in `pending`.
    Rdb,
    /// Sent a diskless RDB; the stream starts at its first `REPLCONF ACK` (as Redis 7 does:
    /// a replica finds the end mark in the last bytes it read, so nothing may follow it
    /// before the replica has loaded the data).
    AwaitAck,
    /// Receiving the command stream.
    Stream,
}

struct Waiter {
    client_id: u64,
    target: u64,
    num: usize,
    deadline: Option<Instant>,
}

#[derive(Default, Clone, Copy)]
pub struct Stats {
    /// How long the last snapshot blocked the node (Redis's latest_fork_usec), and how many.
    pub snapshot_usec: u64,
    pub snapshots: u64,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
}

pub struct Repl {
    pub replid: String,
    pub replid2: String,
    /// master_repl_offset (primary) / processed offset (replica).
    pub offset: u64,
    pub second_offset: i64,
    pub backlog: Option<Backlog>,
    pub snap: Option<Box<Snapshot>>,
    pub link: Option<Link>,
    pub replicas: Vec<Peer>,
    /// listening-port announced by connections before PSYNC.
    ports: HashMap<u64, u16>,
    /// Connections that announced `REPLCONF capa eof` (diskless framing).
    capa_eof: HashSet<u64>,
    /// Queued full resyncs asked with PSYNC (they get a `+FULLRESYNC` line).
    psync_clients: HashSet<u64>,
    /// Database the outgoing stream is at (None: next command gets a SELECT).
    stream_db: Option<usize>,
    /// 0: not in EXEC; 1: in EXEC, MULTI not sent yet; 2: MULTI sent.
    multi: u8,
    pub stats: Stats,
    /// Fault injection: partitioned off the network (see `Control::Isolate`).
    pub isolated: bool,
    waiters: Vec<Waiter>,
    getack_at: u64,
    last_ping: Instant,
    shared: Arc<AtomicU64>,
    me: Weak<RefCell<Node>>,
    buf: Vec<u8>,
}

impl Default for Repl {
    fn default() -> Self {
        Repl {
            replid: new_replid(),
            replid2: ZERO_ID.into(),
            offset: 0,
            second_offset: -1,
            backlog: None,
            snap: None,
            link: None,
            replicas: Vec::new(),
            ports: HashMap::new(),
            capa_eof: HashSet::new(),
            psync_clients: HashSet::new(),
            stream_db: None,
            multi: 0,
            stats: Stats::default(),
            isolated: false,
            waiters: Vec::new(),
            getack_at: u64::MAX,
            last_ping: Instant::now(),
            shared: Arc::new(AtomicU64::new(0)),
            me: Weak::new(),
            buf: Vec::new(),
        }
    }
}

impl Repl {
    pub fn is_replica(&self) -> bool {
        self.link.is_some()
    }
    fn is_master_client(&self, id: u64) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| l.master_client == Some(id))
    }
    fn set_offset(&mut self, o: u64) {
        self.offset = o;
        self.shared.store(o, Ordering::Relaxed);
    }
}

fn new_replid() -> String {
    let mut rng = crate::db::Rng::new();
    let mut s = String::with_capacity(40);
    // Mix in the address of a stack value so two nodes started in the same ns differ.
    let salt = &s as *const String as u64;
    for i in 0..5u64 {
        let v = rng.next_u64() ^ salt.rotate_left(i as u32 * 13);
        s.push_str(&format!("{:08x}", v as u32));
    }
    s
}

/// Called once when the node starts.
pub fn init(node: &Rc<RefCell<Node>>, shared: Arc<AtomicU64>) {
    {
        let mut n = node.borrow_mut();
        n.repl.shared = shared;
        n.repl.me = Rc::downgrade(node);
    }
    tokio::task::spawn_local(cron(node.clone()));
}

// ---------------------------------------------------------------------------
// Hooks called from the command path.

/// Replicas refuse writes from everyone but their primary.
/// Before a write command (or EXEC): replicas refuse writes from everyone but their primary
/// (an EXEC holding writes is discarded, as Redis does); a snapshot in progress is completed
/// first (it must not see the write). Returns the error line to reply with.
/// Whether `id` is this replica's link to its primary (its writes are applied as is).
pub(crate) fn is_master_client(node: &Node, id: u64) -> bool {
    node.repl.is_replica() && node.repl.is_master_client(id)
}

pub fn refuse_write(node: &mut Node, client: &Client, info: &CmdInfo) -> Option<&'static str> {
    let write = info.flags & F_WRITE != 0;
    if !write && info.def.name != "exec" {
        return None;
    }
    if node.repl.is_replica() && !node.repl.is_master_client(client.id) {
        if write {
            return Some("READONLY You can't write against a read only replica.");
        }
        let queued_write = client.multi.borrow().as_ref().is_some_and(|q| {
            q.iter().any(|c| {
                crate::cmd::lookup(c.args().get(0)).is_some_and(|i| i.flags & F_WRITE != 0)
            })
        });
        if queued_write {
            *client.multi.borrow_mut() = None;
            client.multi_error.set(false);
            node.unwatch_all(client);
            return Some("EXECABORT Transaction discarded because of: READONLY You can't write against a read only replica.");
        }
        return None;
    }
    None
}

/// Active expiry and eviction run only on primaries with no snapshot in progress.
pub fn may_expire(node: &Node) -> bool {
    !node.repl.is_replica() && node.repl.snap.is_none()
}

pub fn before_call(node: &mut Node, client: &Client, info: &CmdInfo, args: &Args<'_>) {
    let def = info.def;
    if node.repl.snap.is_some() && info.flags & F_WRITE != 0 {
        serialize_keys(node, def, client.db.get(), args);
    }
    if def.name == "exec" && node.repl.multi == 0 {
        node.repl.multi = 1;
    }
}

/// After every command: propagate its effects (a write, or PUBLISH) and any keys that expired
/// or were evicted while it ran.
pub fn after_call(
    node: &mut Node,
    client: &Rc<Client>,
    def: &CmdDef,
    args: &Args<'_>,
    reply: &[u8],
    wrote: bool,
) {
    if !node.ks.deleted.is_empty() {
        flush_deletes(node);
    }
    if node.repl.backlog.is_none() || node.repl.is_replica() {
        if def.name == "exec" {
            node.repl.multi = 0;
        }
        return;
    }
    // In cluster mode PUBLISH travels by the cluster bus to every node, replicas included,
    // and is not replicated (Redis: clusterPropagatePublish instead of PROPAGATE_REPL).
    if wrote || (def.name == "publish" && node.cluster_peers.is_empty()) {
        rewrite(node, def.name, client.db.get(), args, reply);
        client.woff.set(node.repl.offset);
    }
    if def.name == "exec" {
        if node.repl.multi == 2 {
            feed_cmd(node, None, &[b"EXEC"]);
            client.woff.set(node.repl.offset);
        }
        node.repl.multi = 0;
    }
}

/// Before a script runs: its writes reach replicas wrapped in MULTI/EXEC (as EXEC's do),
/// unless it runs inside an EXEC that already wraps them. Returns whether this call opened
/// the wrapper (pass it to [`script_end`]).
pub fn script_begin(node: &mut Node) -> bool {
    if node.repl.multi == 0 {
        node.repl.multi = 1;
        true
    } else {
        false
    }
}

/// After a script: close the MULTI/EXEC wrapper opened by [`script_begin`] and record the
/// caller's replication offset (WAIT).
pub fn script_end(node: &mut Node, caller: &Client, started: bool) {
    if !started {
        return;
    }
    if node.repl.multi == 2 && node.repl.backlog.is_some() && !node.repl.is_replica() {
        feed_cmd(node, None, &[b"EXEC"]);
        caller.woff.set(node.repl.offset);
    }
    node.repl.multi = 0;
}

/// Whether `id` is a replication link (our primary, or a replica of ours).
pub fn is_link_client(node: &Node, id: u64) -> bool {
    node.repl.is_master_client(id) || node.repl.replicas.iter().any(|p| p.client_id == id)
}

/// Whether `client` may not write here (a replica accepts writes from its primary only).
pub fn refuses_writes_from(node: &Node, client: &Client) -> bool {
    node.repl.is_replica() && !node.repl.is_master_client(client.id)
}

/// A blocked client was served (BLPOP & co.).
pub fn after_blocked(
    node: &mut Node,
    client: &Rc<Client>,
    def: &CmdDef,
    db: usize,
    args: &Args<'_>,
    reply: &[u8],
) {
    if !node.ks.deleted.is_empty() {
        flush_deletes(node);
    }
    if node.repl.backlog.is_none() || node.repl.is_replica() {
        return;
    }
    rewrite(node, def.name, db, args, reply);
    client.woff.set(node.repl.offset);
}

/// Send DELs for keys removed by expiry/eviction (the log is shared with the write hook:
/// `Node::flush_deleted` drains it and calls [`propagate_deletes`]).
pub fn flush_deletes(node: &mut Node) {
    node.flush_deleted();
}

/// Whether expiry/eviction deletions must be logged for replication.
pub fn wants_deletes(node: &Node) -> bool {
    node.repl.backlog.is_some() && !node.repl.is_replica()
}

/// Propagate logged expiry/eviction deletions as DEL.
pub fn propagate_deletes(node: &mut Node, list: &[(usize, Blob)]) {
    if list.is_empty() || !wants_deletes(node) {
        return;
    }
    let saved = node.repl.multi;
    for (db, k) in list {
        propagate(node, Some(*db), &[b"DEL", k]);
    }
    node.repl.multi = saved;
}

/// Propagate one command (primary only; no-op without a backlog).
pub fn propagate(node: &mut Node, db: Option<usize>, parts: &[&[u8]]) {
    if node.repl.backlog.is_none() || node.repl.is_replica() {
        return;
    }
    if node.repl.multi == 1 {
        node.repl.multi = 2;
        feed_cmd(node, None, &[b"MULTI"]);
    }
    feed_cmd(node, db, parts);
}

fn encode(buf: &mut Vec<u8>, parts: &[&[u8]]) {
    buf.push(b'*');
    push_int(buf, parts.len() as i64);
    buf.extend_from_slice(b"\r\n");
    for p in parts {
        buf.push(b'$');
        push_int(buf, p.len() as i64);
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(p);
        buf.extend_from_slice(b"\r\n");
    }
}

fn feed_cmd(node: &mut Node, db: Option<usize>, parts: &[&[u8]]) {
    let mut buf = std::mem::take(&mut node.repl.buf);
    buf.clear();
    if let Some(db) = db {
        if node.repl.stream_db != Some(db) {
            let d = db.to_string();
            encode(&mut buf, &[b"SELECT", d.as_bytes()]);
            node.repl.stream_db = Some(db);
        }
    }
    encode(&mut buf, parts);
    feed_raw(node, &buf);
    if buf.capacity() > 1 << 20 {
        buf = Vec::new();
    }
    node.repl.buf = buf;
}

/// Append stream bytes to the backlog and every replica's output buffer.
fn feed_raw(node: &mut Node, bytes: &[u8]) {
    let r = &mut node.repl;
    if let Some(b) = r.backlog.as_mut() {
        b.push(bytes);
    }
    let o = r.offset + bytes.len() as u64;
    r.set_offset(o);
    for p in &mut r.replicas {
        match p.phase {
            Phase::Queued => continue,
            Phase::Rdb | Phase::AwaitAck => {
                p.pending.extend_from_slice(bytes);
                if p.pending.len() > REPLICA_OUT_LIMIT {
                    if let Some(c) = node.clients.get(&p.client_id) {
                        c.killed.set(true);
                        c.notify.notify_one();
                    }
                }
                continue;
            }
            Phase::Stream => {}
        }
        if let Some(c) = node.clients.get(&p.client_id) {
            match c.out.try_borrow_mut() {
                Ok(mut out) => {
                    out.extend_from_slice(bytes);
                    if out.len() > REPLICA_OUT_LIMIT {
                        c.killed.set(true);
                    }
                }
                Err(_) => c.killed.set(true),
            }
            c.notify.notify_one();
        }
    }
}

// ---------------------------------------------------------------------------
// Deterministic rewrites.

/// A parsed reply (only what the rewrites need).
enum R {
    Bulk(Vec<u8>),
    Arr(Vec<R>),
    Other,
}

fn parse_reply(b: &[u8], pos: &mut usize, depth: u32) -> Option<R> {
    if depth > 8 || *pos >= b.len() {
        return None;
    }
    let t = b[*pos];
    let nl = memchr::memchr(b'\r', &b[*pos..])? + *pos;
    let head = std::str::from_utf8(&b[*pos + 1..nl]).ok()?;
    *pos = nl + 2;
    match t {
        b'$' | b'=' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(R::Other);
            }
            let end = pos.checked_add(usize::try_from(n).ok()?)?;
            let v = b.get(*pos..end)?.to_vec();
            *pos = end + 2;
            Some(R::Bulk(v))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(R::Other);
            }
            let n = if t == b'%' { n * 2 } else { n };
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(parse_reply(b, pos, depth + 1)?);
            }
            Some(R::Arr(v))
        }
        b',' | b'+' | b':' => Some(R::Bulk(head.as_bytes().to_vec())),
        _ => Some(R::Other),
    }
}

fn reply_tree(reply: &[u8]) -> Option<R> {
    let mut pos = 0;
    parse_reply(reply, &mut pos, 0)
}

fn has_opt(args: &Args<'_>, from: usize, opts: &[&str]) -> bool {
    (from..args.len()).any(|i| {
        opts.iter()
            .any(|o| args.get(i).eq_ignore_ascii_case(o.as_bytes()))
    })
}

/// Propagate a write in a form whose effect on a replica does not depend on time or chance.
fn rewrite(node: &mut Node, name: &str, db: usize, args: &Args<'_>, reply: &[u8]) {
    // The command said how it propagates (streams).
    if let Some(cmds) = node.propagate_as.take() {
        for c in cmds {
            propagate_args(node, db, &c.args());
        }
        return;
    }
    let key = if args.len() > 1 { args.get(1) } else { b"" };
    match name {
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            let exists = node.ks.dbs[db].map.contains_key(key);
            match (exists, node.ks.ttl(db, key)) {
                (false, _) => propagate(node, Some(db), &[b"DEL", key]),
                (true, Some(t)) => {
                    let t = t.to_string();
                    propagate(node, Some(db), &[b"PEXPIREAT", key, t.as_bytes()])
                }
                (true, None) => {}
            }
        }
        "set" | "setex" | "psetex"
            if name != "set" || has_opt(args, 3, &["ex", "px", "exat", "pxat"]) =>
        {
            let val = match node.ks.dbs[db].map.get(key).map(|e| &e.val) {
                Some(Value::Str(v)) => Some(v.clone()),
                _ => None,
            };
            match (val, node.ks.ttl(db, key)) {
                (Some(v), Some(t)) => {
                    let t = t.to_string();
                    propagate(node, Some(db), &[b"SET", key, &v, b"PXAT", t.as_bytes()])
                }
                (Some(v), None) => propagate(node, Some(db), &[b"SET", key, &v]),
                (None, _) => propagate(node, Some(db), &[b"DEL", key]),
            }
        }
        "getex" => {
            if args.len() <= 2 {
                return;
            }
            let exists = node.ks.dbs[db].map.contains_key(key);
            match (exists, node.ks.ttl(db, key)) {
                (false, _) => {}
                (true, Some(t)) => {
                    let t = t.to_string();
                    propagate(node, Some(db), &[b"PEXPIREAT", key, t.as_bytes()])
                }
                (true, None) => propagate(node, Some(db), &[b"PERSIST", key]),
            }
        }
        "incrbyfloat" => {
            let val = match node.ks.dbs[db].map.get(key).map(|e| &e.val) {
                Some(Value::Str(v)) => v.clone(),
                _ => return propagate_args(node, db, args),
            };
            propagate(node, Some(db), &[b"SET", key, &val, b"KEEPTTL"])
        }
        "hincrbyfloat" if args.len() > 2 => {
            let f = args.get(2);
            let val = match node.ks.dbs[db].map.get(key).map(|e| &e.val) {
                Some(Value::Hash(h)) => h.get(f).cloned(),
                _ => None,
            };
            match val {
                Some(v) => propagate(node, Some(db), &[b"HSET", key, f, &v]),
                None => propagate_args(node, db, args),
            }
        }
        "spop" => {
            let members: Vec<Vec<u8>> = match reply_tree(reply) {
                Some(R::Bulk(m)) => vec![m],
                Some(R::Arr(v)) => v
                    .into_iter()
                    .filter_map(|x| if let R::Bulk(b) = x { Some(b) } else { None })
                    .collect(),
                _ => return,
            };
            for chunk in members.chunks(1024) {
                let mut parts: Vec<&[u8]> = vec![b"SREM", key];
                parts.extend(chunk.iter().map(|m| m.as_slice()));
                propagate(node, Some(db), &parts);
            }
        }
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            let Some(R::Arr(v)) = reply_tree(reply) else {
                return;
            };
            let Some(R::Bulk(k)) = v.into_iter().next() else {
                return;
            };
            let op: &[u8] = match name {
                "blpop" => b"LPOP",
                "brpop" => b"RPOP",
                "bzpopmin" => b"ZPOPMIN",
                _ => b"ZPOPMAX",
            };
            propagate(node, Some(db), &[op, &k]);
        }
        "brpoplpush" if args.len() == 4 => {
            propagate(node, Some(db), &[b"RPOPLPUSH", args.get(1), args.get(2)]);
        }
        "blmove" if args.len() == 6 => {
            propagate(
                node,
                Some(db),
                &[b"LMOVE", args.get(1), args.get(2), args.get(3), args.get(4)],
            );
        }
        "blmpop" | "bzmpop" | "lmpop" | "zmpop" => {
            let Some(R::Arr(v)) = reply_tree(reply) else {
                return;
            };
            let mut it = v.into_iter();
            let (Some(R::Bulk(k)), Some(R::Arr(items))) = (it.next(), it.next()) else {
                return;
            };
            // The direction follows the keys: [timeout] numkeys key... LEFT|RIGHT|MIN|MAX.
            let nk_at = if name.starts_with('b') { 2 } else { 1 };
            let nk = if args.len() > nk_at {
                crate::cmd::parse_int_opt(args.get(nk_at))
                    .unwrap_or(0)
                    .max(0) as usize
            } else {
                0
            };
            let dir_at = nk_at + 1 + nk;
            let left = dir_at < args.len()
                && (args.get(dir_at).eq_ignore_ascii_case(b"left")
                    || args.get(dir_at).eq_ignore_ascii_case(b"min"));
            let op: &[u8] = match (name.contains('z'), left) {
                (false, true) => b"LPOP",
                (false, false) => b"RPOP",
                (true, true) => b"ZPOPMIN",
                (true, false) => b"ZPOPMAX",
            };
            let n = items.len().to_string();
            propagate(node, Some(db), &[op, &k, n.as_bytes()]);
        }
        // RESTORE key ttl payload ...: a relative TTL becomes absolute (ABSTTL), as Redis does.
        "restore" if args.len() > 3 && args.get(2) != b"0" && !has_opt(args, 4, &["absttl"]) => {
            match node.ks.ttl(db, key) {
                Some(t) => {
                    let t = t.to_string();
                    let mut parts: Vec<&[u8]> = args.iter().collect();
                    parts[2] = t.as_bytes();
                    parts.push(b"ABSTTL");
                    propagate(node, Some(db), &parts);
                }
                None => propagate(node, Some(db), &[b"DEL", key]),
            }
        }
        "publish" => propagate_args_nodb(node, args),
        _ => propagate_args(node, db, args),
    }
}

fn propagate_args(node: &mut Node, db: usize, args: &Args<'_>) {
    let parts: Vec<&[u8]> = args.iter().collect();
    propagate(node, Some(db), &parts);
}

fn propagate_args_nodb(node: &mut Node, args: &Args<'_>) {
    let parts: Vec<&[u8]> = args.iter().collect();
    propagate(node, None, &parts);
}

// ---------------------------------------------------------------------------
// Role changes.

/// REPLICAOF host port.
pub fn replicate_from(node: &mut Node, primary: SocketAddr) {
    if let Some(l) = &node.repl.link {
        if l.primary == primary {
            return;
        }
    }
    crate::monitor::engine_log(node, || {
        format!("Connecting to MASTER {}:{}", primary.ip(), primary.port())
    });
    abort_snapshot(node);
    stop_link(node);
    let master_db = match &node.repl.link {
        Some(l) => l.master_db,
        None => node.repl.stream_db.unwrap_or(0),
    };
    flush_deletes(node);
    node.ks.deleted.clear();
    // Our replicas must resync with us (they may PSYNC partially).
    for p in std::mem::take(&mut node.repl.replicas) {
        if let Some(c) = node.clients.get(&p.client_id) {
            c.killed.set(true);
            c.notify.notify_one();
        }
    }
    release_waiters(node, true);
    // Clients blocked on keys would otherwise be served by the primary's stream and change
    // the replica's data: Redis unblocks them with an error.
    let blocked: Vec<Rc<Client>> = node
        .clients
        .values()
        .filter(|c| c.blocked.borrow().is_some())
        .cloned()
        .collect();
    for c in blocked {
        node.unblock(&c);
        if let Ok(mut o) = c.out.try_borrow_mut() {
            crate::resp::Reply { out: &mut o, resp3: c.resp3.get() }.error(
                "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
            );
        }
        c.notify.notify_one();
    }
    node.repl.multi = 0;
    node.ks.expire_mode = ExpireMode::Hide;
    node.ks.log_deletes = node.write_hook.is_some();
    let now = Instant::now();
    node.repl.link = Some(Link {
        primary,
        state: LinkState::Connect,
        master_client: None,
        task: None,
        last_io: now,
        down_since: now,
        read_offset: node.repl.offset,
        ack_requested: false,
        master_db,
    });
    if let Some(rc) = node.repl.me.upgrade() {
        let h = tokio::task::spawn_local(link_task(rc, primary));
        if let Some(l) = node.repl.link.as_mut() {
            l.task = Some(h);
        }
    }
}

/// REPLICAOF NO ONE: keep the data, accept writes; PSYNC2 keeps the old replid as replid2.
pub fn promote(node: &mut Node) {
    if !node.repl.is_replica() {
        return;
    }
    abort_snapshot(node);
    stop_link(node);
    node.repl.link = None;

    let r = &mut node.repl;
    r.replid2 = std::mem::replace(&mut r.replid, new_replid());
    r.second_offset = r.offset as i64 + 1;
    if r.backlog.is_none() {
        r.backlog = Some(Backlog::new(backlog_size(&node.settings), r.offset));
    }
    r.stream_db = None;
    r.multi = 0;
    node.ks.expire_mode = ExpireMode::Normal;
    node.ks.log_deletes = true;
    crate::monitor::engine_log(node, || {
        format!(
            "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
            node.repl.replid2, node.repl.second_offset, node.repl.replid
        )
    });
    crate::monitor::engine_log(node, || {
        "MASTER MODE enabled (failover or user request)".into()
    });
    // Our own replicas (chained) must learn the new replid.
    for p in std::mem::take(&mut node.repl.replicas) {
        if let Some(c) = node.clients.get(&p.client_id) {
            c.killed.set(true);
            c.notify.notify_one();
        }
    }
}

/// Fault injection: a network partition around this node (`on`), or its end.
pub fn isolate(node: &mut Node, on: bool) {
    if node.repl.isolated == on {
        return;
    }
    node.repl.isolated = on;
    if on {
        // The link to our primary goes down (we keep its replid/offset: healed, we PSYNC).
        stop_link(node);
        if let Some(l) = node.repl.link.as_mut() {
            l.down_since = Instant::now();
        }
        abort_snapshot(node);
        for c in node.clients.values() {
            c.killed.set(true);
            c.notify.notify_one();
        }
        release_waiters(node, true);
    } else if let Some(primary) = node
        .repl
        .link
        .as_ref()
        .filter(|l| l.task.is_none())
        .map(|l| l.primary)
    {
        if let Some(rc) = node.repl.me.upgrade() {
            let h = tokio::task::spawn_local(link_task(rc, primary));
            if let Some(l) = node.repl.link.as_mut() {
                l.task = Some(h);
            }
        }
    }
}

fn stop_link(node: &mut Node) {
    let Some(l) = node.repl.link.as_mut() else {
        return;
    };
    if let Some(t) = l.task.take() {
        t.abort();
    }
    let mc = l.master_client.take();
    l.state = LinkState::Connect;
    if let Some(id) = mc {
        if let Some(c) = node.clients.get(&id) {
            let db = c.db.get();
            if let Some(l) = node.repl.link.as_mut() {
                l.master_db = db;
            }
        }
        drop_master_client(node, id);
    }
}

fn drop_master_client(node: &mut Node, id: u64) {
    if let Some(c) = node.clients.get(&id).cloned() {
        c.killed.set(true);
        node.remove_client(&c);
    }
}

fn backlog_size(s: &crate::node::Settings) -> usize {
    s.extra
        .get("repl-backlog-size")
        .and_then(|v| crate::parse_memory(v))
        .map(|v| v as usize)
        .unwrap_or(1 << 20)
}

// ---------------------------------------------------------------------------
// INFO / commands.

pub fn info_stats(node: &Node) -> String {
    let s = node.repl.stats;
    format!(
        "sync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\n",
        s.sync_full, s.sync_partial_ok, s.sync_partial_err
    )
}

/// `latest_fork_usec` / `total_forks`: our snapshots block the node instead of forking.
pub fn info_fork_stats(node: &Node) -> String {
    let s = node.repl.stats;
    format!(
        "latest_fork_usec:{}\r\ntotal_forks:{}\r\n",
        s.snapshot_usec, s.snapshots
    )
}

pub fn info_section(node: &Node) -> String {
    let r = &node.repl;
    let mut s = String::new();
    match &r.link {
        Some(l) => {
            let up = l.state == LinkState::Connected;
            s.push_str(&format!(
                "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                l.primary.ip(),
                l.primary.port(),
                if up { "up" } else { "down" },
                if up { l.last_io.elapsed().as_secs() as i64 } else { -1 },
                (l.state == LinkState::Sync) as u8,
                l.read_offset.max(r.offset),
                r.offset,
            ));
            if !up {
                s.push_str(&format!(
                    "master_link_down_since_seconds:{}\r\n",
                    l.down_since.elapsed().as_secs()
                ));
            }
            s.push_str("slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n");
        }
        None => s.push_str("role:master\r\n"),
    }
    let peers: Vec<&Peer> = r
        .replicas
        .iter()
        .filter(|p| node.clients.contains_key(&p.client_id))
        .collect();
    s.push_str(&format!("connected_slaves:{}\r\n", peers.len()));
    for (i, p) in peers.iter().enumerate() {
        s.push_str(&format!(
            "slave{}:ip={},port={},state={},offset={},lag={}\r\n",
            i,
            p.ip,
            p.port,
            if p.online { "online" } else { "wait_bgsave" },
            p.ack,
            p.last_ack.elapsed().as_secs()
        ));
    }
    let (first, hist) = match &r.backlog {
        Some(b) => (b.start + 1, b.buf.len()),
        None => (0, 0),
    };
    s.push_str(&format!(
        "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        r.replid,
        r.replid2,
        r.offset,
        r.second_offset,
        r.backlog.is_some() as u8,
        backlog_size(&node.settings),
        first,
        hist
    ));
    s
}

const N: Keys = Keys::None;

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "role",
        1,
        "noscript loading stale fast",
        "@admin @fast @dangerous",
        N,
        role
    ),
    cmd!("wait", 3, "noscript", "@slow @connection", N, wait),
    cmd!(
        "replicaof",
        3,
        "admin noscript stale no_multi restricted",
        "@admin @slow @dangerous",
        N,
        replicaof
    ),
    cmd!(
        "slaveof",
        3,
        "admin noscript stale no_multi restricted",
        "@admin @slow @dangerous",
        N,
        replicaof
    ),
    // Served to replicas even when restricted commands are off: the restriction is about clients.
    cmd!(
        "sync",
        1,
        "admin noscript no_multi",
        "@admin @slow @dangerous",
        N,
        sync
    ),
    cmd!(
        "psync",
        -3,
        "admin noscript no_multi",
        "@admin @slow @dangerous",
        N,
        psync
    ),
    cmd!(
        "replconf",
        -1,
        "admin noscript loading stale",
        "@admin @slow @dangerous",
        N,
        replconf
    ),
];

fn role(ctx: &mut Ctx<'_>) -> CmdResult {
    let node = &*ctx.node;
    let mut out = Vec::new();
    let mut r = crate::resp::Reply {
        out: &mut out,
        resp3: ctx.client.resp3.get(),
    };
    match &node.repl.link {
        Some(l) => {
            r.array(5);
            r.bulk(b"slave");
            r.bulk(l.primary.ip().to_string().as_bytes());
            r.int(l.primary.port() as i64);
            r.bulk(l.state.name().as_bytes());
            // Redis answers -1 while there is no live link.
            let off = if l.state == LinkState::Connected {
                node.repl.offset as i64
            } else {
                -1
            };
            r.int(off);
        }
        None => {
            let peers: Vec<&Peer> = node
                .repl
                .replicas
                .iter()
                .filter(|p| node.clients.contains_key(&p.client_id))
                .collect();
            r.array(3);
            r.bulk(b"master");
            r.int(node.repl.offset as i64);
            r.array(peers.len());
            for p in peers {
                r.array(3);
                r.bulk(p.ip.as_bytes());
                r.bulk(p.port.to_string().as_bytes());
                r.bulk(p.ack.to_string().as_bytes());
            }
        }
    }
    ctx.out.extend_from_slice(&out);
    Ok(())
}

fn acked(node: &Node, target: u64) -> usize {
    node.repl
        .replicas
        .iter()
        .filter(|p| p.ack >= target && node.clients.contains_key(&p.client_id))
        .count()
}

fn wait(ctx: &mut Ctx<'_>) -> CmdResult {
    let num = ctx.int(1)?;
    let t = ctx
        .int(2)
        .map_err(|_| err("timeout is not an integer or out of range"))?;
    if t < 0 {
        return Err(err("timeout is negative"));
    }
    if ctx.node.repl.is_replica() {
        return Err(err("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let target = ctx.client.woff.get();
    let n = acked(ctx.node, target);
    if n as i64 >= num || ctx.in_exec || num <= 0 {
        ctx.r().int(n as i64);
        return Ok(());
    }
    // Ask replicas for an ACK now (once per offset).
    if ctx.node.repl.getack_at != ctx.node.repl.offset && !ctx.node.repl.replicas.is_empty() {
        let saved = ctx.node.repl.multi;
        ctx.node.repl.multi = 0;
        feed_cmd(ctx.node, None, &[b"REPLCONF", b"GETACK", b"*"]);
        ctx.node.repl.multi = saved;
        ctx.node.repl.getack_at = ctx.node.repl.offset;
    }
    let deadline = if t == 0 {
        None
    } else {
        Some(Instant::now() + Duration::from_millis(t as u64))
    };
    ctx.node.repl.waiters.push(Waiter {
        client_id: ctx.client.id,
        target,
        num: num as usize,
        deadline,
    });
    ctx.block = Some(BlockState {
        db: ctx.db(),
        keys: Vec::new(),
        cmd: ctx.args.to_owned_cmd(),
        deadline: None,
    });
    Ok(())
}

/// Answer WAIT clients whose target was reached (or all, when `all`) or whose time is up.
fn release_waiters(node: &mut Node, all: bool) {
    if node.repl.waiters.is_empty() {
        return;
    }
    let now = Instant::now();
    let waiters = std::mem::take(&mut node.repl.waiters);
    let mut keep = Vec::new();
    for w in waiters {
        let Some(c) = node.clients.get(&w.client_id).cloned() else {
            continue;
        };
        if c.blocked.borrow().is_none() {
            continue;
        }
        let n = acked(node, w.target);
        if all || n >= w.num || w.deadline.is_some_and(|d| d <= now) {
            node.unblock(&c);
            if let Ok(mut o) = c.out.try_borrow_mut() {
                crate::resp::Reply {
                    out: &mut o,
                    resp3: c.resp3.get(),
                }
                .int(n as i64);
            }
            c.notify.notify_one();
        } else {
            keep.push(w);
        }
    }
    node.repl.waiters = keep;
}

fn replicaof(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.arg_eq(1, "no") && ctx.arg_eq(2, "one") {
        promote(ctx.node);
        ctx.r().ok();
        return Ok(());
    }
    let host = String::from_utf8_lossy(ctx.arg(1)).into_owned();
    let port = ctx
        .int(2)
        .ok()
        .filter(|p| (0..=65535).contains(p))
        .ok_or_else(|| err("Invalid master port"))?;
    use std::net::ToSocketAddrs;
    let addr = (host.as_str(), port as u16)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| err(format!("Can't resolve master hostname {host}")))?;
    if ctx
        .node
        .repl
        .link
        .as_ref()
        .is_some_and(|l| l.primary == addr)
    {
        ctx.r().simple("OK Already connected to specified master");
        return Ok(());
    }
    replicate_from(ctx.node, addr);
    ctx.r().ok();
    Ok(())
}

fn replconf(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.argc().is_multiple_of(2) {
        return Err(Error::Syntax);
    }
    let id = ctx.client.id;
    let mut i = 1;
    while i < ctx.argc() {
        let opt = String::from_utf8_lossy(ctx.arg(i)).to_ascii_lowercase();
        match opt.as_str() {
            "listening-port" => {
                let p = ctx.int(i + 1)?;
                ctx.node.repl.ports.insert(id, p.clamp(0, 65535) as u16);
            }
            "ack" => {
                let off = ctx.arg(i + 1);
                let off = std::str::from_utf8(off)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                if let Some(p) = ctx
                    .node
                    .repl
                    .replicas
                    .iter_mut()
                    .find(|p| p.client_id == id)
                {
                    p.ack = p.ack.max(off);
                    p.last_ack = Instant::now();
                    p.online = true;
                    if p.phase == Phase::AwaitAck {
                        p.phase = Phase::Stream;
                        let pending = std::mem::take(&mut p.pending);
                        ctx.out.extend_from_slice(&pending);
                    }
                }
                release_waiters(ctx.node, false);
                // No reply to ACKs.
                return Ok(());
            }
            "getack" => {
                if let Some(l) = ctx.node.repl.link.as_mut() {
                    if l.master_client == Some(id) {
                        l.ack_requested = true;
                    }
                }
                return Ok(());
            }
            "capa" => {
                if ctx.arg(i + 1).eq_ignore_ascii_case(b"eof") {
                    ctx.node.repl.capa_eof.insert(id);
                }
            }
            "ip-address" | "rdb-only" | "rdb-filter-only" | "fack" => {}
            _ => return Err(err(format!("Unrecognized REPLCONF option: {opt}"))),
        }
        i += 2;
    }
    ctx.r().ok();
    Ok(())
}

fn sync(ctx: &mut Ctx<'_>) -> CmdResult {
    serve_sync(ctx, None)
}

fn psync(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.argc() != 3 {
        return Err(ctx.arity_err());
    }
    let id = String::from_utf8_lossy(ctx.arg(1)).into_owned();
    let off = std::str::from_utf8(ctx.arg(2))
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(-1);
    serve_sync(ctx, Some((id, off)))
}

fn serve_sync(ctx: &mut Ctx<'_>, psync: Option<(String, i64)>) -> CmdResult {
    if ctx
        .node
        .repl
        .replicas
        .iter()
        .any(|p| p.client_id == ctx.client.id)
    {
        return Ok(());
    }
    if let Some(l) = &ctx.node.repl.link {
        if l.state != LinkState::Connected {
            return Err(Error::Raw(
                "NOMASTERLINK Can't SYNC while not connected with my master".into(),
            ));
        }
    }
    let node = &mut *ctx.node;
    flush_deletes(node);
    let ip = ctx
        .client
        .addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .unwrap_or_default();
    let port = node.repl.ports.remove(&ctx.client.id).unwrap_or(0);
    // Partial resync?
    if let Some((id, off)) = &psync {
        let r = &node.repl;
        let id_ok = *id == r.replid || (*id == r.replid2 && *off <= r.second_offset);
        if id_ok && *off >= 1 {
            if let Some(data) = r.backlog.as_ref().and_then(|b| b.since(*off as u64 - 1)) {
                node.repl.stats.sync_partial_ok += 1;
                crate::monitor::engine_log(node, || {
                    format!(
                        "Partial resynchronization request from {ip}:{port} accepted. Sending {} bytes of backlog starting from offset {off}.",
                        data.len()
                    )
                });
                ctx.out
                    .extend_from_slice(format!("+CONTINUE {}\r\n", node.repl.replid).as_bytes());
                ctx.out.extend_from_slice(&data);
                add_peer(
                    node,
                    ctx.client.id,
                    ip,
                    port,
                    *off as u64 - 1,
                    Phase::Stream,
                );
                return Ok(());
            }
        }
        if id != "?" {
            node.repl.stats.sync_partial_err += 1;
        }
    }
    // Full resync.
    node.repl.stats.sync_full += 1;
    crate::monitor::engine_log(node, || {
        format!("Replica {ip}:{port} asks for synchronization")
    });
    crate::monitor::engine_log(node, || {
        format!("Starting BGSAVE for SYNC with target: replicas sockets (replica {ip}:{port})")
    });
    if node.repl.backlog.is_none() {
        if !node.repl.is_replica() {
            node.repl.replid = new_replid();
            node.repl.replid2 = ZERO_ID.into();
            node.repl.second_offset = -1;
        }
        let o = node.repl.offset;
        node.repl.backlog = Some(Backlog::new(backlog_size(&node.settings), o));
    }
    if !node.repl.is_replica() {
        node.ks.log_deletes = true;
    }
    if psync.is_some() {
        node.repl.psync_clients.insert(ctx.client.id);
    }
    add_peer(node, ctx.client.id, ip, port, 0, Phase::Queued);
    // Starts now unless a snapshot is already running (then this replica gets the next one:
    // a running snapshot's point in time is already past).
    let id = ctx.client.id;
    start_snapshot(node, Some((id, &mut *ctx.out)))
        .map_err(|e| err(format!("snapshot failed: {e}")))?;
    Ok(())
}

fn add_peer(node: &mut Node, client_id: u64, ip: String, port: u16, ack: u64, phase: Phase) {
    node.repl.replicas.push(Peer {
        client_id,
        ip,
        port,
        ack,
        last_ack: Instant::now(),
        online: false,
        phase,
        pending: Vec::new(),
    });
    if !node.repl.is_replica() {
        node.ks.log_deletes = true;
    }
}

/// A fork-less point-in-time RDB snapshot, streamed to replicas while the node keeps serving.
///
/// Each database's key map keeps a partition (see `KeyMap::start_tracking`): slots before the
/// cursor are done (serialized, or created after the snapshot began), slots after it still hold
/// their values as of the start. A driver task serializes the next slots for a couple of ms at
/// a time and hands the bytes to the replicas' connections, waiting while a replica's output
/// buffer is full (backpressure: memory stays at a few MB, not a copy of the data set). Before
/// a write command changes a key not serialized yet, [`before_call`] serializes that key first
/// ("serialize before mutate"), so the file holds every key as it was when the snapshot began
/// and the write reaches the replica through the command stream that follows the RDB. Keys
/// may thus appear out of order: the file switches databases with `SELECTDB` as needed.
/// The few commands that change keys they do not name (FLUSHALL, FLUSHDB, SWAPDB, COPY … DB)
/// complete the snapshot synchronously first ([`barrier`]).
///
/// Replicas that announced `capa eof` get the diskless framing (`$EOF:<40-byte mark>` … mark);
/// others (SYNC, raw PSYNC) need the length up front, so their copy is buffered whole.
pub struct Snapshot {
    w: Option<rdb::Writer<Vec<u8>>>,
    /// Database the RDB stream is at.
    cur_db: Option<usize>,
    /// Database the cursor is in.
    db: usize,
    waiting: Vec<SnapWaiter>,
    mark: [u8; 40],
    /// Longest time a slice of work blocked the node.
    busy: Duration,
}

struct SnapWaiter {
    id: u64,
    eof: bool,
    /// The whole RDB, for replicas that need its length first.
    full: Vec<u8>,
}

/// A slice of snapshot work stops after this long (clients are served in between)...
const SNAPSHOT_SLICE: Duration = Duration::from_millis(2);
/// ... or once this many bytes are ready to send.
const SNAPSHOT_CHUNK: usize = 512 << 10;
/// A replica's output buffer above this makes the snapshot wait (backpressure).
const SNAPSHOT_HIGH_WATER: usize = 4 << 20;

fn rdb_writer(node: &Node, stream_db: usize) -> std::io::Result<rdb::Writer<Vec<u8>>> {
    let opts = rdb::WriterOptions {
        compress: false,
        used_mem: 0,
        extra_aux: vec![
            ("repl-stream-db".into(), stream_db.to_string()),
            ("repl-id".into(), node.repl.replid.clone()),
            ("repl-offset".into(), node.repl.offset.to_string()),
        ],
        ..Default::default()
    };
    let mut w = rdb::Writer::with_options(Vec::with_capacity(1 << 16), &opts)?;
    // Function libraries travel in the RDB, as Redis 7 sends them.
    if let Some(sc) = node.scripting.as_ref() {
        for lib in sc.libraries.values() {
            w.write_function(&lib.code)?;
        }
    }
    Ok(w)
}

/// Serialize one key (with its expiry) in `db`.
fn write_key(
    w: &mut rdb::Writer<Vec<u8>>,
    cur_db: &mut Option<usize>,
    db: usize,
    d: &crate::db::Db,
    k: &[u8],
    val: &Value,
) -> std::io::Result<()> {
    if *cur_db != Some(db) {
        w.switch_db(db as u64)?;
        *cur_db = Some(db);
    }
    let exp = if d.expires.is_empty() {
        None
    } else {
        d.expires.get(k).map(|&t| t as i64)
    };
    match val {
        Value::Str(v) => w.write_string_entry(k, v, exp),
        // Every other type through the generic encoder DUMP uses, so new types flow through.
        other => w.write_entry(k, &crate::cmd::hyperloglog::to_rdb(other), exp),
    }
}

/// Serialize the whole keyspace (point in time) as an RDB file, in one go.
pub fn make_rdb(node: &Node, stream_db: usize) -> std::io::Result<Vec<u8>> {
    let mut w = rdb_writer(node, stream_db)?;
    let mut cur = None;
    for (db, d) in node.ks.dbs.iter().enumerate() {
        for (k, e) in d.map.iter() {
            write_key(&mut w, &mut cur, db, d, k, &e.val)?;
        }
    }
    w.finish()
}

/// Serialize-before-mutate: `key` in `db` is about to change; if the snapshot in progress
/// has not serialized it yet, do it now.
pub fn before_write(node: &mut Node, db: usize, key: &[u8]) {
    let Some(snap) = node.repl.snap.as_mut() else {
        return;
    };
    let Some(d) = node.ks.dbs.get_mut(db) else {
        return;
    };
    let Some(n) = d.map.visited() else { return };
    let Some(i) = d.map.get_index_of(key) else {
        return;
    };
    if i < n {
        return;
    }
    let Some(w) = snap.w.as_mut() else { return };
    if let Some((k, e)) = d.map.get_index(i) {
        if let Err(e) = write_key(w, &mut snap.cur_db, db, d, k, &e.val) {
            tracing::warn!("snapshot: {e}");
        }
    }
    d.map.mark_visited(i);
}

/// Before a write command runs during a snapshot: serialize the keys it may change.
fn serialize_keys(node: &mut Node, def: &CmdDef, db: usize, args: &Args<'_>) {
    let keys = crate::cmd::key_indexes(def, args);
    // Commands changing keys they do not name as keys: complete the snapshot first.
    if keys.is_empty() || (def.name == "copy" && has_opt(args, 3, &["db"])) {
        barrier(node);
        return;
    }
    for i in keys {
        before_write(node, db, args.get(i));
    }
    // SORT … STORE dst, GEORADIUS … STORE|STOREDIST dst.
    for i in 2..args.len().saturating_sub(1) {
        let a = args.get(i);
        if a.eq_ignore_ascii_case(b"store") || a.eq_ignore_ascii_case(b"storedist") {
            before_write(node, db, args.get(i + 1));
        }
    }
}

/// A blocked client is about to be served (BLPOP & co.).
pub fn before_blocked(node: &mut Node, def: &CmdDef, db: usize, args: &Args<'_>) {
    if node.repl.snap.is_some() {
        serialize_keys(node, def, db, args);
    }
}

/// Move the bytes produced so far to the replicas.
fn distribute(node: &mut Node, snap: &mut Snapshot, last: bool) {
    let bytes = match snap.w.as_mut() {
        Some(w) => std::mem::take(w.get_mut()),
        None => Vec::new(),
    };
    for sw in &mut snap.waiting {
        if !sw.eof {
            sw.full.extend_from_slice(&bytes);
            continue;
        }
        if bytes.is_empty() && !last {
            continue;
        }
        if let Some(c) = node.clients.get(&sw.id) {
            match c.out.try_borrow_mut() {
                Ok(mut o) => o.extend_from_slice(&bytes),
                Err(_) => c.killed.set(true),
            }
            c.notify.notify_one();
        }
    }
}

/// Start a snapshot for every queued replica (none in progress). `current` is the client
/// executing PSYNC right now, whose reply buffer is `out` (its `Client::out` is borrowed).
fn start_snapshot(node: &mut Node, current: Option<(u64, &mut Vec<u8>)>) -> std::io::Result<()> {
    if node.repl.snap.is_some() {
        return Ok(());
    }
    let queued: Vec<u64> = node
        .repl
        .replicas
        .iter()
        .filter(|p| p.phase == Phase::Queued)
        .map(|p| p.client_id)
        .collect();
    if queued.is_empty() {
        return Ok(());
    }
    let stream_db = if node.repl.is_replica() {
        node.repl
            .link
            .as_ref()
            .and_then(|l| l.master_client)
            .and_then(|id| node.clients.get(&id))
            .map(|c| c.db.get())
            .unwrap_or(0)
    } else {
        node.repl.stream_db = None;
        0
    };
    flush_deletes(node);
    let w = rdb_writer(node, stream_db)?;
    let mut mark = [0u8; 40];
    let hex = new_replid();
    mark.copy_from_slice(&hex.as_bytes()[..40]);
    let mut waiting = Vec::new();
    let mut current = current;
    for id in queued {
        let psync = node.repl.psync_clients.remove(&id);
        let eof = node.repl.capa_eof.remove(&id);
        let mut head = Vec::new();
        if psync {
            head.extend_from_slice(
                format!("+FULLRESYNC {} {}\r\n", node.repl.replid, node.repl.offset).as_bytes(),
            );
        }
        if eof {
            head.extend_from_slice(b"$EOF:");
            head.extend_from_slice(&mark);
            head.extend_from_slice(b"\r\n");
        }
        match current.as_mut() {
            Some((cid, out)) if *cid == id => out.extend_from_slice(&head),
            _ => {
                if let Some(c) = node.clients.get(&id) {
                    match c.out.try_borrow_mut() {
                        Ok(mut o) => o.extend_from_slice(&head),
                        Err(_) => c.killed.set(true),
                    }
                    c.notify.notify_one();
                }
            }
        }
        if let Some(p) = node.repl.replicas.iter_mut().find(|p| p.client_id == id) {
            p.phase = Phase::Rdb;
        }
        waiting.push(SnapWaiter {
            id,
            eof,
            full: Vec::new(),
        });
    }
    for d in node.ks.dbs.iter_mut() {
        d.map.start_tracking();
    }
    node.repl.snap = Some(Box::new(Snapshot {
        w: Some(w),
        cur_db: None,
        db: 0,
        waiting,
        mark,
        busy: Duration::ZERO,
    }));
    node.repl.stats.snapshots += 1;
    if let Some(rc) = node.repl.me.upgrade() {
        tokio::task::spawn_local(snapshot_driver(rc));
    }
    Ok(())
}

/// Serialize keys at the cursor until `until` says stop; true when the keyspace is done.
fn advance(
    node: &mut Node,
    snap: &mut Snapshot,
    mut stop: impl FnMut(usize) -> bool,
) -> std::io::Result<bool> {
    let Some(w) = snap.w.as_mut() else {
        return Ok(true);
    };
    let mut n = 0usize;
    while snap.db < node.ks.dbs.len() {
        let db = snap.db;
        let d = &mut node.ks.dbs[db];
        match d.map.visited() {
            Some(i) if i < d.map.len() => {
                if let Some((k, e)) = d.map.get_index(i) {
                    write_key(w, &mut snap.cur_db, db, d, k, &e.val)?;
                }
                d.map.mark_visited(i);
                n += 1;
                if n.is_multiple_of(32) && stop(w.get_mut().len()) {
                    return Ok(false);
                }
            }
            _ => {
                d.map.stop_tracking();
                snap.db += 1;
            }
        }
    }
    Ok(true)
}

async fn snapshot_driver(node: Rc<RefCell<Node>>) {
    loop {
        // Backpressure: wait while any replica still has a full buffer to send.
        let full = {
            let n = node.borrow();
            match n.repl.snap.as_ref() {
                None => return,
                Some(s) => s.waiting.iter().any(|sw| {
                    sw.eof
                        && n.clients.get(&sw.id).is_some_and(|c| {
                            !c.killed.get()
                                && c.out.try_borrow().map(|o| o.len()).unwrap_or(0)
                                    > SNAPSHOT_HIGH_WATER
                        })
                }),
            }
        };
        if full {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            tokio::task::yield_now().await;
        }
        let mut n = node.borrow_mut();
        let n = &mut *n;
        let Some(mut snap) = n.repl.snap.take() else {
            return;
        };
        let clients = &n.clients;
        snap.waiting
            .retain(|sw| clients.get(&sw.id).is_some_and(|c| !c.killed.get()));
        if snap.waiting.is_empty() {
            for d in n.ks.dbs.iter_mut() {
                d.map.stop_tracking();
            }
            drop(snap);
            let _ = start_snapshot(n, None);
            return;
        }
        if full {
            n.repl.snap = Some(snap);
            continue;
        }
        let t = Instant::now();
        let r = advance(n, &mut snap, |bytes| {
            bytes >= SNAPSHOT_CHUNK || t.elapsed() >= SNAPSHOT_SLICE
        });
        snap.busy = snap.busy.max(t.elapsed());
        match r {
            Ok(false) => {
                distribute(n, &mut snap, false);
                n.repl.snap = Some(snap);
            }
            Ok(true) => {
                n.repl.snap = Some(snap);
                finish_snapshot(n);
                return;
            }
            Err(e) => {
                tracing::warn!("snapshot: {e}");
                n.repl.snap = Some(snap);
                abort_snapshot(n);
                return;
            }
        }
    }
}

/// Complete an in-progress snapshot now (synchronously) and queue it to its replicas.
pub fn barrier(node: &mut Node) {
    if node.repl.snap.is_some() {
        finish_snapshot(node);
    }
}

fn finish_snapshot(node: &mut Node) {
    let Some(mut snap) = node.repl.snap.take() else {
        return;
    };
    let t = Instant::now();
    let done = advance(node, &mut snap, |_| false);
    for d in node.ks.dbs.iter_mut() {
        d.map.stop_tracking();
    }
    let tail = match (done, snap.w.take()) {
        (Ok(_), Some(w)) => w.finish(),
        (Err(e), _) => Err(e),
        (Ok(_), None) => Ok(Vec::new()),
    };
    let tail = match tail {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("snapshot: {e}");
            for sw in &snap.waiting {
                if let Some(c) = node.clients.get(&sw.id) {
                    c.killed.set(true);
                    c.notify.notify_one();
                }
            }
            let _ = start_snapshot(node, None);
            return;
        }
    };
    snap.busy = snap.busy.max(t.elapsed());
    node.repl.stats.snapshot_usec = snap.busy.as_micros() as u64;
    for sw in std::mem::take(&mut snap.waiting) {
        let Some(c) = node.clients.get(&sw.id) else {
            continue;
        };
        let pending = node
            .repl
            .replicas
            .iter_mut()
            .find(|p| p.client_id == sw.id)
            .map(|p| {
                if sw.eof {
                    p.phase = Phase::AwaitAck;
                    Vec::new()
                } else {
                    p.phase = Phase::Stream;
                    std::mem::take(&mut p.pending)
                }
            })
            .unwrap_or_default();
        match c.out.try_borrow_mut() {
            Ok(mut o) => {
                if sw.eof {
                    o.extend_from_slice(&tail);
                    o.extend_from_slice(&snap.mark);
                } else {
                    o.push(b'$');
                    push_int(&mut o, (sw.full.len() + tail.len()) as i64);
                    o.extend_from_slice(b"\r\n");
                    o.extend_from_slice(&sw.full);
                    o.extend_from_slice(&tail);
                }
                o.extend_from_slice(&pending);
            }
            Err(_) => c.killed.set(true),
        }
        c.notify.notify_one();
    }
    // Replicas that asked while this one ran get the next.
    if let Err(e) = start_snapshot(node, None) {
        tracing::warn!("snapshot: {e}");
    }
}

/// Drop an in-progress snapshot (role change, resync from upstream): its replicas reconnect.
fn abort_snapshot(node: &mut Node) {
    if let Some(snap) = node.repl.snap.take() {
        for d in node.ks.dbs.iter_mut() {
            d.map.stop_tracking();
        }
        for sw in snap.waiting {
            if let Some(c) = node.clients.get(&sw.id) {
                c.killed.set(true);
                c.notify.notify_one();
            }
        }
    }
    // Replicas still waiting for a snapshot would get one of the old data: they reconnect.
    for p in &node.repl.replicas {
        if p.phase == Phase::Queued {
            if let Some(c) = node.clients.get(&p.client_id) {
                c.killed.set(true);
                c.notify.notify_one();
            }
        }
    }
}

/// Replace the keyspace with an RDB's contents. Returns the stream db from its aux fields.
pub fn load_rdb(node: &mut Node, data: &[u8]) -> Result<usize, String> {
    let mut rd = rdb::FileReader::new(data).map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    while let Some(e) = rd.next_entry().map_err(|e| e.to_string())? {
        entries.push(e);
    }
    let functions: Vec<Vec<u8>> = rd.functions().iter().map(|f| f.to_vec()).collect();
    crate::lua::load_rdb_functions(node, &functions)?;
    let stream_db = rd
        .aux_fields()
        .iter()
        .find(|(k, _)| &k[..] == b"repl-stream-db")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    for d in node.ks.dbs.iter_mut() {
        *d = Default::default();
    }
    let lru = node.ks.new_lru();
    let ndb = node.ks.dbs.len();
    for e in entries {
        let db = e.db as usize;
        if db >= ndb {
            continue;
        }
        let key: Blob = e.key[..].into();
        // The generic decoder RESTORE uses, so new types flow through.
        let Some(val) = crate::cmd::hyperloglog::from_rdb(e.value) else {
            continue;
        };
        let d = &mut node.ks.dbs[db];
        if let Some(t) = e.expire_at_ms {
            d.expires.insert(&key, t.max(0) as u64);
        }
        d.map.insert(&key, crate::db::Entry { val, lru });
    }
    node.touch_all_watched(None);
    Ok(stream_db.min(ndb.saturating_sub(1)))
}

// ---------------------------------------------------------------------------
// Periodic work: WAIT timeouts, replica bookkeeping, PINGs.

async fn cron(node: Rc<RefCell<Node>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut n = node.borrow_mut();
        let n = &mut *n;
        if !n.repl.waiters.is_empty() {
            release_waiters(n, false);
        }
        if !n.repl.replicas.is_empty() {
            // repl-timeout: an online replica silent for too long is disconnected.
            for p in &n.repl.replicas {
                if p.online && p.last_ack.elapsed() > REPL_TIMEOUT {
                    if let Some(c) = n.clients.get(&p.client_id) {
                        c.killed.set(true);
                        c.notify.notify_one();
                    }
                }
            }
            let clients = &n.clients;
            n.repl
                .replicas
                .retain(|p| clients.get(&p.client_id).is_some_and(|c| !c.killed.get()));
            if !n.repl.is_replica() && n.repl.last_ping.elapsed() >= PING_PERIOD {
                n.repl.last_ping = Instant::now();
                if !n.repl.replicas.is_empty() {
                    let saved = n.repl.multi;
                    n.repl.multi = 0;
                    feed_cmd(n, None, &[b"PING"]);
                    n.repl.multi = saved;
                }
            }
        }
        // CONFIG SET repl-backlog-size applies to the live backlog.
        let cap = backlog_size(&n.settings).max(16 * 1024);
        if let Some(b) = n.repl.backlog.as_mut() {
            if b.cap != cap {
                b.cap = cap;
                b.push(&[]);
            }
        }
        if n.repl.ports.len() > 1000 || n.repl.capa_eof.len() > 1000 {
            let clients = &n.clients;
            n.repl.ports.retain(|id, _| clients.contains_key(id));
            n.repl.capa_eof.retain(|id| clients.contains_key(id));
        }
    }
}

// ---------------------------------------------------------------------------
// Replica side: the link to the primary.

async fn link_task(node: Rc<RefCell<Node>>, primary: SocketAddr) {
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        first = false;
        if let Some(l) = node.borrow_mut().repl.link.as_mut() {
            l.state = LinkState::Connecting;
        }
        let mut mc: Option<u64> = None;
        let r = link_once(&node, primary, &mut mc).await;
        if let Err(e) = &r {
            tracing::info!("replication link to {primary}: {e}");
            let n = node.borrow();
            if mc.is_some() {
                crate::monitor::engine_log(&n, || "Connection with master lost.".into());
            } else {
                crate::monitor::engine_log_at(&n, '#', || {
                    format!("Error condition on socket for SYNC: {e}")
                });
            }
        }
        let mut n = node.borrow_mut();
        let n = &mut *n;
        n.ks.expire_mode = ExpireMode::Hide;
        let db = mc.and_then(|id| n.clients.get(&id)).map(|c| c.db.get());
        if let Some(l) = n.repl.link.as_mut() {
            l.state = LinkState::Connect;
            l.master_client = None;
            l.down_since = Instant::now();
            if let Some(db) = db {
                l.master_db = db;
            }
        }
        if let Some(id) = mc {
            drop_master_client(n, id);
        }
    }
}

struct LinkIo {
    s: TcpStream,
    buf: BytesMut,
}

impl LinkIo {
    async fn fill(&mut self) -> Result<(), String> {
        self.buf.reserve(64 * 1024);
        match tokio::time::timeout(REPL_TIMEOUT, self.s.read_buf(&mut self.buf)).await {
            Err(_) => Err("timeout".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(0)) => Err("connection closed by primary".into()),
            Ok(Ok(_)) => Ok(()),
        }
    }
    /// One reply line, skipping the bare newlines primaries send as keepalives.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            while self.buf.first() == Some(&b'\n') {
                self.buf.advance(1);
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf) {
                let l = self.buf.split_to(i + 1);
                let s = String::from_utf8_lossy(&l[..i])
                    .trim_end_matches('\r')
                    .to_string();
                return Ok(s);
            }
            if self.buf.len() > 64 * 1024 {
                return Err("protocol error: line too long".into());
            }
            self.fill().await?;
        }
    }
    async fn send(&mut self, parts: &[&[u8]]) -> Result<(), String> {
        let mut b = Vec::new();
        encode(&mut b, parts);
        match tokio::time::timeout(REPL_TIMEOUT, self.s.write_all(&b)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timeout".into()),
        }
    }
    async fn cmd(&mut self, parts: &[&[u8]]) -> Result<String, String> {
        self.send(parts).await?;
        self.line().await
    }
    /// The RDB payload: `$<len>` or `$EOF:<40-byte mark>` (diskless).
    async fn rdb(&mut self, node: &Rc<RefCell<Node>>) -> Result<Vec<u8>, String> {
        let head = self.line().await?;
        let Some(h) = head.strip_prefix('$') else {
            return Err(format!("bad RDB header from primary: {head:.64}"));
        };
        if let Some(mark) = h.strip_prefix("EOF:") {
            let mark = mark.as_bytes().to_vec();
            if mark.len() != 40 {
                return Err("bad EOF mark".into());
            }
            let finder = memchr::memmem::Finder::new(&mark);
            // Only the bytes not searched yet (plus a mark's length of overlap) are scanned.
            let mut searched = 0usize;
            loop {
                let from = searched.saturating_sub(mark.len() - 1);
                if let Some(pos) = finder.find(&self.buf[from..]) {
                    let data = self.buf.split_to(from + pos).to_vec();
                    self.buf.advance(mark.len());
                    return Ok(data);
                }
                searched = self.buf.len();
                if searched > (16usize << 30) {
                    return Err("RDB too large".into());
                }
                self.note_read(node);
                self.fill().await?;
            }
        }
        let len: usize = h.parse().map_err(|_| format!("bad RDB length {h:.32}"))?;
        if len > (16usize << 30) {
            return Err("RDB too large".into());
        }
        while self.buf.len() < len {
            self.note_read(node);
            self.fill().await?;
        }
        Ok(self.buf.split_to(len).to_vec())
    }
    fn note_read(&self, node: &Rc<RefCell<Node>>) {
        if let Some(l) = node.borrow_mut().repl.link.as_mut() {
            l.last_io = Instant::now();
        }
    }
}

async fn link_once(
    node: &Rc<RefCell<Node>>,
    primary: SocketAddr,
    mc: &mut Option<u64>,
) -> Result<(), String> {
    if node.borrow().repl.isolated {
        return Err("isolated (fault injection)".into());
    }
    // Marked internal: the primary's security groups are for clients.
    let (s, _internal) = tokio::time::timeout(
        Duration::from_secs(5),
        crate::sources::connect_internal(primary),
    )
    .await
    .map_err(|_| "connect timeout".to_string())?
    .map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    let laddr = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut io = LinkIo {
        s,
        buf: BytesMut::with_capacity(64 * 1024),
    };
    let port = node.borrow().port;
    // Nodes of one process trust each other's internal user (ACL users and
    // AUTH tokens of the primary are for clients).
    let l = io
        .cmd(&[
            b"AUTH",
            crate::acl::INTERNAL_USER.as_bytes(),
            crate::acl::internal_password().as_bytes(),
        ])
        .await?;
    // A primary that is not one of ours (REPLICAOF a real Redis) knows only its
    // own password: the one we have, as masterauth.
    if l.starts_with('-') {
        let pass = node.borrow().settings.requirepass.clone();
        if let Some(p) = pass {
            let l = io.cmd(&[b"AUTH", &p]).await?;
            if l.starts_with('-') {
                return Err(format!("AUTH: {l}"));
            }
        }
    }
    let l = io.cmd(&[b"PING"]).await?;
    if l.starts_with("-NOAUTH")
        || l.starts_with("-NOPERM")
        || l.starts_with("-ERR operation not permitted")
    {
        return Err(format!("PING: {l}"));
    }
    let p = port.to_string();
    io.cmd(&[b"REPLCONF", b"listening-port", p.as_bytes()])
        .await?;
    io.cmd(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        .await?;
    let (id, off) = {
        let n = node.borrow();
        if n.repl.backlog.is_none() && n.repl.offset == 0 {
            ("?".to_string(), "-1".to_string())
        } else {
            (n.repl.replid.clone(), (n.repl.offset + 1).to_string())
        }
    };
    let reply = io.cmd(&[b"PSYNC", id.as_bytes(), off.as_bytes()]).await?;
    let stream_db;
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut it = rest.split_whitespace();
        let (Some(nid), Some(noff)) = (it.next(), it.next().and_then(|o| o.parse::<u64>().ok()))
        else {
            return Err(format!("bad FULLRESYNC: {reply:.80}"));
        };
        if nid.len() != 40 {
            return Err("bad replid".into());
        }
        {
            let mut n = node.borrow_mut();
            crate::monitor::engine_log(&n, || format!("Full resync from master: {nid}:{noff}"));
            crate::monitor::engine_log(&n, || "MASTER <-> REPLICA sync started".into());
            if let Some(l) = n.repl.link.as_mut() {
                l.state = LinkState::Sync;
            }
        }
        let data = io.rdb(node).await?;
        let mut n = node.borrow_mut();
        let n = &mut *n;
        abort_snapshot(n);
        crate::monitor::engine_log(n, || {
            format!(
                "MASTER <-> REPLICA sync: receiving {} bytes from master to disk",
                data.len()
            )
        });
        crate::monitor::engine_log(n, || "MASTER <-> REPLICA sync: Flushing old data".into());
        crate::monitor::engine_log(n, || "MASTER <-> REPLICA sync: Loading DB in memory".into());
        stream_db = load_rdb(n, &data)?;
        crate::monitor::engine_log(n, || {
            "MASTER <-> REPLICA sync: Finished with success".into()
        });
        let cap = backlog_size(&n.settings);
        let r = &mut n.repl;
        r.replid = nid.to_string();
        r.replid2 = ZERO_ID.into();
        r.second_offset = -1;
        r.backlog = Some(Backlog::new(cap, noff));
        r.set_offset(noff);
        // Our own replicas hold another history now.
        for p in std::mem::take(&mut r.replicas) {
            if let Some(c) = n.clients.get(&p.client_id) {
                c.killed.set(true);
                c.notify.notify_one();
            }
        }
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let nid = rest.trim();
        let mut n = node.borrow_mut();
        let n = &mut *n;
        let cap = backlog_size(&n.settings);
        let r = &mut n.repl;
        if nid.len() == 40 && nid != r.replid {
            r.replid2 = std::mem::replace(&mut r.replid, nid.to_string());
            r.second_offset = r.offset as i64 + 1;
        }
        if r.backlog.is_none() {
            r.backlog = Some(Backlog::new(cap, r.offset));
        }
        // The stream continues in the db it was at when our link dropped.
        stream_db = n.repl.link.as_ref().map(|l| l.master_db).unwrap_or(0);
        crate::monitor::engine_log(n, || {
            "Successful partial resynchronization with master.".into()
        });
        crate::monitor::engine_log(n, || {
            "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.".into()
        });
    } else {
        return Err(format!("PSYNC: {reply:.120}"));
    }
    // Link is up: create the master client.
    let master = {
        let mut n = node.borrow_mut();
        let n = &mut *n;
        let id = n.next_client_id;
        n.next_client_id += 1;
        let c = Rc::new(Client::new(id, primary.to_string(), laddr, -1));
        c.authed.set(true);
        c.db.set(stream_db);
        *c.name.borrow_mut() = Vec::new();
        n.clients.insert(id, c.clone());
        *mc = Some(id);
        if let Some(l) = n.repl.link.as_mut() {
            l.master_client = Some(id);
            l.state = LinkState::Connected;
            l.last_io = Instant::now();
            l.read_offset = n.repl.offset;
        }
        c
    };
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    ack.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ranges = Vec::new();
    let mut scratch = Vec::new();
    let mut sink = Vec::new();
    loop {
        // Apply everything complete in the buffer.
        let need_ack = {
            let mut n = node.borrow_mut();
            let n = &mut *n;
            n.ks.expire_mode = ExpireMode::Keep;
            let max_bulk = n.settings.proto_max_bulk_len;
            let mut pos = 0;
            let mut res = Ok(());
            while pos < io.buf.len() {
                match parse_command(&io.buf[pos..], max_bulk, &mut ranges, &mut scratch) {
                    Ok(Parsed::Incomplete) => break,
                    Ok(Parsed::Command { consumed, inline }) => {
                        let base: &[u8] = if inline {
                            &scratch
                        } else {
                            &io.buf[pos..pos + consumed]
                        };
                        let args = Args {
                            buf: base,
                            ranges: &ranges,
                        };
                        if !args.is_empty() {
                            crate::cmd::execute(n, &master, args, &mut sink);
                            sink.clear();
                            if master.blocked.borrow().is_some() {
                                n.unblock(&master);
                            }
                        }
                        let raw = &io.buf[pos..pos + consumed];
                        feed_raw(n, raw);
                        pos += consumed;
                    }
                    Err(e) => {
                        res = Err(format!("bad stream from primary: {e}"));
                        break;
                    }
                }
            }
            io.buf.advance(pos);
            n.ks.expire_mode = ExpireMode::Hide;
            if !master.out.borrow().is_empty() {
                master.out.borrow_mut().clear();
            }
            res?;
            match n.repl.link.as_mut() {
                Some(l) => {
                    l.read_offset = n.repl.offset + io.buf.len() as u64;
                    std::mem::take(&mut l.ack_requested)
                }
                None => return Ok(()),
            }
        };
        if need_ack {
            send_ack(node, &mut io).await?;
        }
        tokio::select! {
            r = io.fill() => {
                r?;
                if let Some(l) = node.borrow_mut().repl.link.as_mut() {
                    l.last_io = Instant::now();
                }
            }
            _ = ack.tick() => send_ack(node, &mut io).await?,
        }
    }
}

async fn send_ack(node: &Rc<RefCell<Node>>, io: &mut LinkIo) -> Result<(), String> {
    let off = node.borrow().repl.offset.to_string();
    io.send(&[b"REPLCONF", b"ACK", off.as_bytes()]).await
}
