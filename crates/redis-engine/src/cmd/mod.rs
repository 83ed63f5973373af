//! Command table and dispatch. One file per command family.

/// Typed lookup: `typed!(ks, db, key, Hash, get)` → Option<&mut HMap>, WRONGTYPE otherwise.
macro_rules! typed {
    ($ks:expr, $db:expr, $key:expr, $var:ident, $lookup:ident) => {
        match $ks.$lookup($db, $key) {
            None => None,
            Some(e) => match &mut e.val {
                crate::db::Value::$var(x) => Some(&mut **x),
                _ => return Err(Error::WrongType),
            },
        }
    };
}
/// Typed lookup that creates an empty value when missing.
macro_rules! typed_create {
    ($ks:expr, $db:expr, $key:expr, $var:ident) => {
        match &mut $ks
            .get_or_create($db, $key, || crate::db::Value::$var(Default::default()))
            .val
        {
            crate::db::Value::$var(x) => &mut **x,
            _ => return Err(Error::WrongType),
        }
    };
}

pub mod bitmaps;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod meta;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod streams;
pub mod strings;
pub mod tx;
pub mod zsets;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use crate::db::Blob;
use crate::node::{BlockState, Client, Node, ReplyMode};
use crate::resp::{Args, Reply};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInt,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR {0}")]
    Msg(String),
    /// A complete error line with its own prefix (NOAUTH, OOM, EXECABORT, ...).
    #[error("{0}")]
    Raw(String),
}

pub type CmdResult = Result<(), Error>;

pub fn err(s: impl Into<String>) -> Error {
    Error::Msg(s.into())
}

pub type Handler = fn(&mut Ctx<'_>) -> CmdResult;

/// Key positions, as in Redis's legacy (first, last, step) triple, plus numkeys forms.
#[derive(Clone, Copy, Debug)]
pub enum Keys {
    None,
    /// first, last (negative counts from the end), step
    Range(i32, i32, i32),
    /// index of numkeys argument; keys follow it
    NumKeys(usize),
    /// numkeys at index, keys follow; plus a destination key at index 1 (ZUNIONSTORE…)
    DestNumKeys(usize),
    /// XREAD / XREADGROUP: the first half of the arguments after `STREAMS`.
    Streams,
}

pub struct CmdDef {
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static str,
    pub acl: &'static str,
    pub keys: Keys,
    pub handler: Handler,
}

pub const F_WRITE: u32 = 1;
pub const F_READONLY: u32 = 2;
pub const F_DENYOOM: u32 = 4;
pub const F_ADMIN: u32 = 8;
pub const F_PUBSUB: u32 = 16;
pub const F_NOSCRIPT: u32 = 32;
pub const F_LOADING: u32 = 64;
pub const F_STALE: u32 = 128;
pub const F_FAST: u32 = 256;
pub const F_NOAUTH: u32 = 512;
pub const F_BLOCKING: u32 = 1024;
pub const F_NOMULTI: u32 = 2048;
pub const F_RESTRICTED: u32 = 4096;

pub struct CmdInfo {
    pub def: &'static CmdDef,
    pub flags: u32,
    /// Dense index (per-node call counters).
    pub idx: usize,
}

fn parse_flags(s: &str) -> u32 {
    let mut f = 0;
    for w in s.split_whitespace() {
        f |= match w {
            "write" => F_WRITE,
            "readonly" => F_READONLY,
            "denyoom" => F_DENYOOM,
            "admin" => F_ADMIN,
            "pubsub" => F_PUBSUB,
            "noscript" => F_NOSCRIPT,
            "loading" => F_LOADING,
            "stale" => F_STALE,
            "fast" => F_FAST,
            "no_auth" => F_NOAUTH,
            "blocking" => F_BLOCKING,
            "no_multi" => F_NOMULTI,
            "restricted" => F_RESTRICTED,
            _ => 0,
        };
    }
    f
}

pub type Table = HashMap<&'static str, CmdInfo, crate::db::Hasher>;

pub fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = Table::default();
        for defs in [
            server::COMMANDS,
            strings::COMMANDS,
            keys::COMMANDS,
            hashes::COMMANDS,
            lists::COMMANDS,
            sets::COMMANDS,
            zsets::COMMANDS,
            pubsub::COMMANDS,
            tx::COMMANDS,
            bitmaps::COMMANDS,
            hyperloglog::COMMANDS,
            streams::COMMANDS,
            geo::COMMANDS,
            scripting::COMMANDS,
            crate::acl::COMMANDS,
            crate::cluster::COMMANDS,
            // Last: replaces server.rs's placeholders (ROLE, WAIT, REPLICAOF, PSYNC, ...).
            crate::replication::COMMANDS,
        ] {
            for d in defs {
                // A later definition replaces an earlier one and keeps its slot.
                let idx = m.get(d.name).map(|i| i.idx).unwrap_or(m.len());
                m.insert(
                    d.name,
                    CmdInfo {
                        def: d,
                        flags: parse_flags(d.flags),
                        idx,
                    },
                );
            }
        }
        m
    })
}

pub fn lookup(name: &[u8]) -> Option<&'static CmdInfo> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (i, &c) in name.iter().enumerate() {
        buf[i] = c.to_ascii_lowercase();
    }
    let s = std::str::from_utf8(&buf[..name.len()]).ok()?;
    table().get(s)
}

/// Key arguments of a command, per its key spec.
pub fn key_indexes(def: &CmdDef, args: &Args<'_>) -> Vec<usize> {
    let argc = args.len() as i32;
    match def.keys {
        Keys::None => vec![],
        Keys::Range(first, last, step) => {
            let last = if last < 0 { argc + last } else { last };
            let mut v = Vec::new();
            let mut i = first;
            while i <= last && i < argc && step > 0 {
                v.push(i as usize);
                i += step;
            }
            v
        }
        Keys::Streams => {
            let Some(at) = (1..args.len()).find(|&i| args.get(i).eq_ignore_ascii_case(b"streams"))
            else {
                return vec![];
            };
            let rest = args.len() - at - 1;
            if rest == 0 || !rest.is_multiple_of(2) {
                return vec![];
            }
            (at + 1..at + 1 + rest / 2).collect()
        }
        Keys::NumKeys(idx) | Keys::DestNumKeys(idx) => {
            let mut v = Vec::new();
            if matches!(def.keys, Keys::DestNumKeys(_)) {
                v.push(1);
            }
            if idx < args.len() {
                if let Some(n) = parse_int_opt(args.get(idx)) {
                    let n = (n.max(0) as usize).min(args.len());
                    for i in 0..n {
                        if idx + 1 + i < args.len() {
                            v.push(idx + 1 + i);
                        }
                    }
                }
            }
            v
        }
    }
}

pub struct Ctx<'a> {
    pub node: &'a mut Node,
    pub client: &'a Rc<Client>,
    pub out: &'a mut Vec<u8>,
    pub args: Args<'a>,
    pub def: &'static CmdDef,
    /// Running inside EXEC (blocking commands must not block).
    pub in_exec: bool,
    /// Set by blocking commands that found nothing to serve.
    pub block: Option<BlockState>,
    /// Set when a write command actually changed nothing (skip propagation).
    pub no_dirty: bool,
}

impl<'a> Ctx<'a> {
    #[inline]
    pub fn r(&mut self) -> Reply<'_> {
        Reply {
            out: self.out,
            resp3: self.client.resp3.get(),
        }
    }
    #[inline]
    pub fn db(&self) -> usize {
        self.client.db.get()
    }
    #[inline]
    pub fn arg(&self, i: usize) -> &'a [u8] {
        self.args.get(i)
    }
    #[inline]
    pub fn argc(&self) -> usize {
        self.args.len()
    }
    pub fn arg_eq(&self, i: usize, s: &str) -> bool {
        i < self.args.len() && self.args.get(i).eq_ignore_ascii_case(s.as_bytes())
    }
    pub fn arity_err(&self) -> Error {
        Error::Arity(self.def.name.to_string())
    }
    pub fn int(&self, i: usize) -> Result<i64, Error> {
        parse_int(self.arg(i))
    }
    pub fn float(&self, i: usize) -> Result<f64, Error> {
        parse_float(self.arg(i))
    }
    pub fn sub_name(&self) -> String {
        if self.argc() > 1 {
            format!(
                "{}|{}",
                self.def.name,
                String::from_utf8_lossy(self.arg(1)).to_lowercase()
            )
        } else {
            self.def.name.to_string()
        }
    }
    pub fn unknown_sub(&self) -> Error {
        err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            trunc(self.arg(1), 128),
            self.def.name.to_uppercase()
        ))
    }
    pub fn now(&self) -> u64 {
        self.node.ks.now
    }
    /// Keyspace notification for `key` in the client's db (Redis's `notifyKeyspaceEvent`).
    #[inline]
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        let db = self.db();
        crate::notify::notify(self.node, self.out, class, event, db, key);
    }
    /// Delete `key` if it became an empty aggregate, with Redis's "del" event.
    pub fn drop_if_empty_notify(&mut self, key: &[u8]) {
        let db = self.db();
        let empty = self
            .node
            .ks
            .dbs
            .get(db)
            .and_then(|d| d.map.get(key))
            .is_some_and(|e| e.val.is_empty_aggregate());
        if empty {
            self.node.ks.drop_if_empty(db, key);
            self.notify(crate::notify::GENERIC, "del", key);
        }
    }
}

pub fn trunc(b: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(n)]).into_owned();
    s
}

pub fn parse_int_opt(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, d) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if d.is_empty() || !(b'1'..=b'9').contains(&d[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

#[inline]
pub fn parse_int(s: &[u8]) -> Result<i64, Error> {
    parse_int_opt(s).ok_or(Error::NotInt)
}

pub fn parse_float_opt(s: &[u8]) -> Option<f64> {
    let st = std::str::from_utf8(s).ok()?;
    if st.is_empty()
        || st.starts_with(|c: char| c.is_whitespace())
        || st.ends_with(|c: char| c.is_whitespace())
    {
        return None;
    }
    let l = st.to_ascii_lowercase();
    let v: f64 = match l.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            if l.contains("inf") || l.contains("nan") || l.starts_with("0x") {
                return None;
            }
            l.parse().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

pub fn parse_float(s: &[u8]) -> Result<f64, Error> {
    parse_float_opt(s).ok_or(Error::NotFloat)
}

/// Redis's `stringmatchlen` glob matching.
pub fn glob_match(pat: &[u8], s: &[u8], nocase: bool) -> bool {
    fn eq(a: u8, b: u8, nocase: bool) -> bool {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    }
    fn m(p: &[u8], s: &[u8], nocase: bool, depth: u32) -> bool {
        if depth > 1000 {
            return false;
        }
        let (mut pi, mut si) = (0, 0);
        while pi < p.len() {
            match p[pi] {
                b'*' => {
                    while pi + 1 < p.len() && p[pi + 1] == b'*' {
                        pi += 1;
                    }
                    if pi + 1 == p.len() {
                        return true;
                    }
                    for k in si..=s.len() {
                        if m(&p[pi + 1..], &s[k..], nocase, depth + 1) {
                            return true;
                        }
                    }
                    return false;
                }
                b'?' => {
                    if si >= s.len() {
                        return false;
                    }
                    si += 1;
                }
                b'[' => {
                    if si >= s.len() {
                        return false;
                    }
                    pi += 1;
                    let not = pi < p.len() && p[pi] == b'^';
                    if not {
                        pi += 1;
                    }
                    let mut matched = false;
                    loop {
                        if pi >= p.len() {
                            pi -= 1;
                            break;
                        }
                        if p[pi] == b'\\' && pi + 2 < p.len() {
                            pi += 1;
                            if p[pi] == s[si] {
                                matched = true;
                            }
                        } else if p[pi] == b']' {
                            break;
                        } else if pi + 2 < p.len() && p[pi + 1] == b'-' {
                            let (mut a, mut b) = (p[pi], p[pi + 2]);
                            if a > b {
                                std::mem::swap(&mut a, &mut b);
                            }
                            let mut c = s[si];
                            if nocase {
                                a = a.to_ascii_lowercase();
                                b = b.to_ascii_lowercase();
                                c = c.to_ascii_lowercase();
                            }
                            pi += 2;
                            if c >= a && c <= b {
                                matched = true;
                            }
                        } else if eq(p[pi], s[si], nocase) {
                            matched = true;
                        }
                        pi += 1;
                    }
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    si += 1;
                }
                b'\\' if pi + 1 < p.len() => {
                    pi += 1;
                    if si >= s.len() || !eq(p[pi], s[si], nocase) {
                        return false;
                    }
                    si += 1;
                }
                c => {
                    if si >= s.len() || !eq(c, s[si], nocase) {
                        return false;
                    }
                    si += 1;
                }
            }
            pi += 1;
        }
        si == s.len()
    }
    m(pat, s, nocase, 0)
}

/// Commands ElastiCache refuses (renamed away) unless restricted commands are allowed.
pub const RESTRICTED: &[&str] = &[
    "bgrewriteaof",
    "bgsave",
    "config",
    "debug",
    "migrate",
    "module",
    "psync",
    "replicaof",
    "save",
    "slaveof",
    "shutdown",
    "sync",
    "failover",
    "cluster",
    "acl",
];

/// Commands that exist only from some engine version on (Valkey 8.1's COMMANDLOG):
/// elsewhere they are unknown, as on the servers that lack them.
pub fn in_version(node: &Node, i: &CmdInfo) -> bool {
    i.def.name != "commandlog" || node.mon.commandlog
}

pub(crate) fn unknown_command(args: &Args<'_>) -> String {
    let mut rest = String::new();
    let mut i = 1;
    while i < args.len() && rest.len() < 128 {
        let room = 128 - rest.len();
        let a = args.get(i);
        rest.push_str(&format!(
            "'{}' ",
            String::from_utf8_lossy(&a[..a.len().min(room)])
        ));
        i += 1;
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(&args.get(0)[..args.get(0).len().min(128)]),
        rest
    )
}

fn write_err(out: &mut Vec<u8>, resp3: bool, e: &str) {
    Reply { out, resp3 }.error(e);
}

/// Execute one command from `client`, appending its reply to `out`.
pub fn execute(node: &mut Node, client: &Rc<Client>, args: Args<'_>, out: &mut Vec<u8>) {
    if client.tracking.get() {
        crate::tracking::before_command(client);
    }
    let start = out.len();
    execute_cmd(node, client, args, out);
    if client.reply_mode.get() != ReplyMode::On {
        apply_reply_mode(client, out, start);
    }
    if node.tracking.has_pending() {
        crate::tracking::flush_pending(node, client, out);
    }
}

/// CLIENT REPLY OFF|SKIP: drop this command's reply (pushes sent after it still go out).
fn apply_reply_mode(client: &Client, out: &mut Vec<u8>, start: usize) {
    match client.reply_mode.get() {
        ReplyMode::Off => out.truncate(start),
        ReplyMode::Skip => {
            out.truncate(start);
            client.reply_mode.set(ReplyMode::On);
        }
        ReplyMode::SkipNext => client.reply_mode.set(ReplyMode::Skip),
        ReplyMode::On => {}
    }
}

fn execute_cmd(node: &mut Node, client: &Rc<Client>, args: Args<'_>, out: &mut Vec<u8>) {
    if args.is_empty() {
        return;
    }
    node.total_commands += 1;
    let t0 = node
        .clock_hint
        .take()
        .unwrap_or_else(std::time::Instant::now);
    node.ks.now = node.ks.clock.ms_at(t0);
    node.current_client = client.id;
    let resp3 = client.resp3.get();
    let info = match lookup(args.get(0)) {
        Some(i)
            if (node.settings.allow_restricted || i.flags & F_RESTRICTED == 0)
                && in_version(node, i) =>
        {
            i
        }
        _ => {
            if client.multi.borrow().is_some() {
                client.multi_error.set(true);
            }
            write_err(out, resp3, &unknown_command(&args));
            return;
        }
    };
    let def = info.def;
    let argc = args.len() as i32;
    if (def.arity > 0 && argc != def.arity) || argc < -def.arity {
        if client.multi.borrow().is_some() {
            client.multi_error.set(true);
        }
        write_err(out, resp3, &Error::Arity(def.name.to_string()).to_string());
        return;
    }
    if !client.authed.get() && info.flags & F_NOAUTH == 0 && crate::acl::auth_required(node) {
        if client.multi.borrow().is_some() {
            client.multi_error.set(true);
        }
        write_err(out, resp3, "NOAUTH Authentication required.");
        return;
    }
    if node.acl.is_some() {
        if let Err(denied) = crate::acl::check(node, client, info, &args) {
            let in_multi = client.multi.borrow().is_some();
            if in_multi {
                client.multi_error.set(true);
            }
            let context = if in_multi { "multi" } else { "toplevel" };
            crate::acl::log_denied(node, client, &denied, context);
            write_err(out, resp3, &denied.message());
            return;
        }
    }
    // Cluster mode: redirect keyed commands for slots served elsewhere.
    if node.cluster.is_some() {
        if let Some(e) = crate::cluster::redirect(node, client, info, &args) {
            if client.multi.borrow().is_some() {
                client.multi_error.set(true);
            }
            write_err(out, resp3, &e);
            return;
        }
    }
    if let Some(e) = crate::replication::refuse_write(node, client, info) {
        if client.multi.borrow().is_some() {
            client.multi_error.set(true);
        }
        write_err(out, resp3, e);
        return;
    }
    if !resp3 && client.in_pubsub() {
        let allowed = matches!(
            def.name,
            "subscribe"
                | "psubscribe"
                | "unsubscribe"
                | "punsubscribe"
                | "ping"
                | "quit"
                | "reset"
                | "ssubscribe"
                | "sunsubscribe"
        );
        if !allowed {
            write_err(
                out,
                resp3,
                &format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    def.name
                ),
            );
            return;
        }
    }
    // MULTI queueing.
    if client.multi.borrow().is_some()
        && !matches!(
            def.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        )
    {
        if info.flags & F_DENYOOM != 0 && over_maxmemory(node, client) {
            client.multi_error.set(true);
            write_err(
                out,
                resp3,
                "OOM command not allowed when used memory > 'maxmemory'.",
            );
            return;
        }
        if let Some(q) = client.multi.borrow_mut().as_mut() {
            q.push(args.to_owned_cmd());
        }
        out.extend_from_slice(b"+QUEUED\r\n");
        return;
    }
    if info.flags & F_DENYOOM != 0 && over_maxmemory(node, client) {
        write_err(
            out,
            resp3,
            "OOM command not allowed when used memory > 'maxmemory'.",
        );
        node.flush_deleted();
        crate::notify::drain(node, out);
        return;
    }
    node.flush_deleted();
    crate::notify::drain(node, out);
    node.cmd_start = Some(t0);
    call(node, client, info, args, out, false);
    if !node.ready.is_empty() {
        serve_blocked(node);
    }
}

/// Evict as needed; true when still over the limit.
fn over_maxmemory(node: &mut Node, client: &Client) -> bool {
    let max = node.settings.maxmemory;
    if max == 0 || node.repl.is_replica() {
        return false;
    }
    let _ = client;
    let mut guard = 0;
    while node.used_memory() > max {
        if !node.ks.evict_one() {
            return true;
        }
        guard += 1;
        if guard > 100_000 {
            return node.used_memory() > max;
        }
    }
    false
}

/// Run a command (already validated). Returns the block request, if any.
pub fn call(
    node: &mut Node,
    client: &Rc<Client>,
    info: &'static CmdInfo,
    args: Args<'_>,
    out: &mut Vec<u8>,
    in_exec: bool,
) -> Option<BlockState> {
    let def = info.def;
    node.ks.no_touch = client.no_touch.get() && def.name != "touch";
    *client.last_cmd.borrow_mut() = std::borrow::Cow::Borrowed(def.name);
    let out_start = out.len();
    crate::replication::before_call(node, client, info, &args);
    let absent_before = if info.flags & F_WRITE != 0 && node.tracking.active() {
        crate::tracking::absent_written(node, client.db.get(), def, &args)
    } else {
        Vec::new()
    };
    let mut ctx = Ctx {
        node,
        client,
        out,
        args,
        def,
        in_exec,
        block: None,
        no_dirty: false,
    };
    // The top-level call reuses the instant `execute` read; nested ones (EXEC, scripts,
    // unblocked clients) read their own.
    let started = ctx.node.cmd_start.take();
    let t0 = if ctx.node.mon.timing {
        Some(started.unwrap_or_else(std::time::Instant::now))
    } else {
        None
    };
    let res = run_handler(def, &mut ctx);
    let block = ctx.block.take();
    let no_dirty = ctx.no_dirty;
    if let Some(t0) = t0 {
        let end = std::time::Instant::now();
        if started.is_some() && node.in_batch {
            node.clock_hint = Some(end);
        }
        if block.is_none() {
            let reply_bytes = out.len().saturating_sub(out_start);
            crate::monitor::record(
                node,
                client,
                info,
                &args,
                end.saturating_duration_since(t0),
                reply_bytes,
            );
        }
    }
    let res_wrote = res.is_ok() && info.flags & F_WRITE != 0 && !no_dirty && block.is_none();
    node.flush_deleted();
    // After the deletions the command caused (lazy expiry), as Redis remembers after proc().
    if client.tracking.get() && info.flags & F_READONLY != 0 {
        crate::tracking::remember(node, client, def, &args);
    }
    crate::notify::drain(node, out);
    match res {
        Err(e) => {
            let resp3 = client.resp3.get();
            write_err(out, resp3, &e.to_string());
        }
        Ok(()) => {
            if info.flags & F_WRITE != 0 && !no_dirty && block.is_none() {
                node.dirty += 1;
                let db = client.db.get();
                if !node.watched.is_empty() || !node.blocking.is_empty() {
                    for i in key_indexes(def, &args) {
                        node.touch_key(db, args.get(i));
                    }
                }
                if node.tracking.active() {
                    crate::tracking::invalidate_args(node, client, db, def, &args, &absent_before);
                }
                if let Some(h) = node.write_hook.as_mut() {
                    h(db, &args);
                }
            }
        }
    }
    crate::replication::after_call(
        node,
        client,
        def,
        &args,
        out.get(out_start..).unwrap_or(&[]),
        res_wrote,
    );
    if let Some(c) = node.cmd_calls.get_mut(info.idx) {
        *c += 1;
    }
    node.ks.no_touch = false;
    node.propagate_as = None;
    if let Some(b) = block {
        if in_exec {
            return None;
        }
        node.block(client, BlockState { ..b });
        return None;
    }
    None
}

/// Run a handler; a bug that panics answers an error instead of taking the node down.
fn run_handler(def: &'static CmdDef, ctx: &mut Ctx<'_>) -> CmdResult {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (def.handler)(ctx))) {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("redis-engine: command '{}' panicked", def.name);
            Err(err(format!(
                "internal error while executing '{}'",
                def.name
            )))
        }
    }
}

/// Serve clients blocked on keys that became ready, FIFO per key.
pub fn serve_blocked(node: &mut Node) {
    let mut guard = 0;
    while !node.ready.is_empty() && guard < 10_000 {
        guard += 1;
        let ready = std::mem::take(&mut node.ready);
        for (db, key) in ready {
            while let Some(q) = node.blocking.get(&(db, key.clone())) {
                let Some(&id) = q.front() else { break };
                let Some(c) = node.clients.get(&id).cloned() else {
                    if let Some(q) = node.blocking.get_mut(&(db, key.clone())) {
                        q.pop_front();
                    }
                    continue;
                };
                let Some(st) = node.unblock(&c) else { break };
                let Some(info) = lookup(st.cmd.args().get(0)) else {
                    break;
                };
                crate::replication::before_blocked(node, info.def, st.db, &st.cmd.args());
                let mut out = std::mem::take(&mut *c.out.borrow_mut());
                let out_start = out.len();
                let saved_db = c.db.get();
                c.db.set(st.db);
                let prev = node.current_client;
                node.current_client = c.id;
                let mut ctx = Ctx {
                    node,
                    client: &c,
                    out: &mut out,
                    args: st.cmd.args(),
                    def: info.def,
                    in_exec: false,
                    block: None,
                    no_dirty: false,
                };
                let res = run_handler(info.def, &mut ctx);
                let again = ctx.block.take();
                crate::notify::drain(node, &mut out);
                node.current_client = prev;
                c.db.set(saved_db);
                if let Err(e) = res {
                    write_err(&mut out, c.resp3.get(), &e.to_string());
                }
                if again.is_some() {
                    // Still nothing for this client: re-block at the front of the queues.
                    for k in &st.keys {
                        node.blocking
                            .entry((st.db, k.clone()))
                            .or_default()
                            .push_front(c.id);
                    }
                    *c.blocked.borrow_mut() = Some(st);
                    node.blocked_count += 1;
                    *c.out.borrow_mut() = out;
                    break;
                }
                // Served: propagate as a write and wake the client.
                node.dirty += 1;
                let cargs = st.cmd.args();
                for i in key_indexes(info.def, &cargs) {
                    node.touch_key(st.db, cargs.get(i));
                }
                if node.tracking.active() {
                    crate::tracking::invalidate_args(node, &c, st.db, info.def, &cargs, &[]);
                }
                if let Some(h) = node.write_hook.as_mut() {
                    h(st.db, &cargs);
                }
                crate::replication::after_blocked(
                    node,
                    &c,
                    info.def,
                    st.db,
                    &cargs,
                    out.get(out_start..).unwrap_or(&[]),
                );
                node.propagate_as = None;
                {
                    let mut o = c.out.borrow_mut();
                    if o.is_empty() {
                        *o = out;
                    } else {
                        o.extend_from_slice(&out);
                    }
                }
                c.notify.notify_one();
            }
        }
    }
}

/// Parse a blocking timeout (seconds, float) into an optional deadline.
pub fn parse_timeout(s: &[u8]) -> Result<Option<std::time::Instant>, Error> {
    let t = parse_float_opt(s).ok_or_else(|| err("timeout is not a float or out of range"))?;
    if t < 0.0 {
        return Err(err("timeout is negative"));
    }
    if !t.is_finite() || t > 1e10 {
        return Err(err("timeout is out of range"));
    }
    if t == 0.0 {
        return Ok(None);
    }
    Ok(Some(
        std::time::Instant::now() + std::time::Duration::from_secs_f64(t),
    ))
}

pub fn blob(b: &[u8]) -> Blob {
    b.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Settings;
    use std::cell::RefCell;

    fn node() -> Node {
        Node::new(
            Settings {
                maxmemory: 0,
                policy: crate::db::Policy::NoEviction,
                maxmemory_samples: 5,
                requirepass: None,
                proto_max_bulk_len: 512 << 20,
                allow_restricted: false,
                version: "7.1.0".into(),
                flavor: "redis".into(),
                timeout: 0,
                maxclients: 100,
                pubsub_hard_limit: 0,
                extra: Default::default(),
            },
            0,
        )
    }

    fn run(n: &mut Node, c: &Rc<Client>, args: &[&str]) -> Vec<u8> {
        let parts: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let cmd = crate::resp::OwnedCmd::from_parts(&parts);
        let mut out = Vec::new();
        execute(n, c, cmd.args(), &mut out);
        out
    }

    #[test]
    fn write_hook_sees_writes_then_expiry_dels() {
        let mut n = node();
        let log: Rc<RefCell<Vec<String>>> = Rc::default();
        let l2 = log.clone();
        n.set_write_hook(Some(Box::new(move |db, args| {
            let words: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            l2.borrow_mut().push(format!("{db}:{}", words.join(" ")));
        })));
        let c = Rc::new(Client::new(1, "a".into(), "b".into(), 0));
        c.authed.set(true);
        n.clients.insert(1, c.clone());
        assert_eq!(run(&mut n, &c, &["SET", "a", "1"]), b"+OK\r\n");
        run(&mut n, &c, &["GET", "a"]);
        run(&mut n, &c, &["DEL", "nokey"]);
        run(&mut n, &c, &["SET", "b", "1", "PX", "1"]);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(run(&mut n, &c, &["GET", "b"]), b"$-1\r\n");
        run(&mut n, &c, &["SELECT", "2"]);
        run(&mut n, &c, &["LPUSH", "l", "x"]);
        assert_eq!(
            *log.borrow(),
            vec!["0:SET a 1", "0:SET b 1 PX 1", "0:DEL b", "2:LPUSH l x"]
        );
    }

    #[test]
    fn stream_reads_name_the_keys_after_streams() {
        let def = lookup(b"xreadgroup").map(|i| i.def);
        let Some(def) = def else { panic!("xreadgroup") };
        let words: Vec<&[u8]> = vec![
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"c",
            b"COUNT",
            b"1",
            b"STREAMS",
            b"a",
            b"b",
            b">",
            b">",
        ];
        let cmd = crate::resp::OwnedCmd::from_parts(&words);
        assert_eq!(key_indexes(def, &cmd.args()), vec![7, 8]);
        let odd = crate::resp::OwnedCmd::from_parts(&words[..10]);
        assert!(key_indexes(def, &odd.args()).is_empty());
    }

    #[test]
    fn glob() {
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h*o", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-f]llo", b"hello", false));
        assert!(glob_match(b"h\\*", b"h*", false));
        assert!(!glob_match(b"a*b", b"acd", false));
    }
}
