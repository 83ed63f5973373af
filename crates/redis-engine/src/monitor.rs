//! CLIENT PAUSE state, SLOWLOG and LATENCY (Redis 7.0's slowlog.c / latency.c basics).

use std::collections::VecDeque;
use std::time::Instant;

use indexmap::IndexMap;

use crate::cmd::{err, CmdInfo, CmdResult, Ctx, Error, F_FAST, F_WRITE};
use crate::node::{Client, Node};
use crate::resp::Args;

/// Redis's SLOWLOG_ENTRY_MAX_ARGC / SLOWLOG_ENTRY_MAX_STRING.
const SLOWLOG_MAX_ARGC: usize = 32;
const SLOWLOG_MAX_STRING: usize = 128;
/// Redis's LATENCY_TS_LEN.
const LATENCY_TS_LEN: usize = 160;

#[derive(Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub time: u64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    pub peer: String,
    pub name: Vec<u8>,
}

#[derive(Default)]
pub struct LatencyEvent {
    /// (unix seconds, latency ms), oldest first.
    pub samples: VecDeque<(u64, u64)>,
    pub max: u64,
}

pub struct Monitor {
    /// CLIENT PAUSE: end of the pause, and whether it holds every command (ALL) or writes.
    pub pause_end: Option<Instant>,
    pub pause_all: bool,
    pub slowlog: VecDeque<SlowEntry>,
    pub slowlog_next_id: u64,
    /// slowlog-log-slower-than, µs (negative: off, 0: every command).
    pub slower_than: i64,
    pub slowlog_max_len: usize,
    /// latency-monitor-threshold, ms (0: off).
    pub latency_threshold: u64,
    pub latency: IndexMap<&'static str, LatencyEvent>,
    /// Commands must be timed (slowlog or latency monitor on): the one branch in call().
    pub timing: bool,
    /// MEMORY STATS peak.allocated / startup.allocated.
    pub peak_mem: u64,
    pub startup_mem: u64,
    /// Log delivery: where new slow-log entries and engine-log lines go (None: nowhere).
    pub log_sink: Option<LogSink>,
    /// A serverless cache's `ECPUPerSecond` maximum (None: no limit).
    pub ecpu: Option<std::sync::Arc<EcpuLimit>>,
    /// Valkey 8.1's COMMANDLOG: the large-request and large-reply logs are kept (the
    /// slow one is the slowlog above).
    pub commandlog: bool,
    pub large_request: CommandLog,
    pub large_reply: CommandLog,
}

/// One of Valkey's size-based command logs (commandlog.c): entries whose request or
/// reply is at least `threshold` bytes (negative: off), newest first.
pub struct CommandLog {
    pub entries: VecDeque<SlowEntry>,
    pub next_id: u64,
    pub threshold: i64,
    pub max_len: usize,
}

impl Default for CommandLog {
    fn default() -> Self {
        // commandlog-request-larger-than / commandlog-reply-larger-than default to 1 MB,
        // the *-max-len ones to 128.
        CommandLog {
            entries: VecDeque::new(),
            next_id: 0,
            threshold: 1 << 20,
            max_len: 128,
        }
    }
}

impl CommandLog {
    fn push(&mut self, args: &Args<'_>, client: &Client, value: u64) {
        if self.threshold < 0 || self.max_len == 0 || value < self.threshold as u64 {
            return;
        }
        let e = log_entry(args, client, self.next_id, value);
        self.next_id += 1;
        self.entries.push_front(e);
        self.entries.truncate(self.max_len);
    }
}

/// The RESP multibulk size of a command, what Valkey counts as its request bytes
/// (`net_input_bytes_curr_cmd`).
fn request_bytes(args: &Args<'_>) -> u64 {
    // Decimal digits without formatting (this runs for every command on 8.1 nodes).
    fn digits(mut n: usize) -> u64 {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }
    let mut n = 1 + digits(args.len()) + 2;
    for i in 0..args.len() {
        let l = args.get(i).len();
        n += 1 + digits(l) + 2 + l as u64 + 2;
    }
    n
}

/// A slowlog / commandlog entry: arguments trimmed as slowlog.c does.
fn log_entry(args: &Args<'_>, client: &Client, id: u64, value: u64) -> SlowEntry {
    let argc = args.len().min(SLOWLOG_MAX_ARGC);
    let mut v = Vec::with_capacity(argc);
    for i in 0..argc {
        if argc != args.len() && i == argc - 1 {
            v.push(format!("... ({} more arguments)", args.len() - argc + 1).into_bytes());
            break;
        }
        let a = args.get(i);
        if a.len() > SLOWLOG_MAX_STRING {
            let mut s = a[..SLOWLOG_MAX_STRING].to_vec();
            s.extend_from_slice(
                format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_STRING).as_bytes(),
            );
            v.push(s);
        } else {
            v.push(a.to_vec());
        }
    }
    SlowEntry {
        id,
        time: crate::db::now_ms() / 1000,
        duration_us: value,
        args: v,
        peer: client.addr.clone(),
        name: client.name.borrow().clone(),
    }
}

/// A slow-log entry or an engine-log line, as ElastiCache's log delivery sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    Slow {
        id: u64,
        /// Unix seconds.
        timestamp: u64,
        duration_us: u64,
        /// The command name as the client sent it (arguments are not logged: ElastiCache
        /// replaces them with "(N more arguments)").
        command: String,
        more_args: usize,
        client_addr: String,
        client_name: String,
    },
    Engine {
        /// Redis's level marks: '-' verbose, '*' notice, '#' warning.
        level: char,
        /// 'M' primary, 'S' replica.
        role: char,
        /// Unix milliseconds.
        time_ms: u64,
        message: String,
    },
}

/// Receives a node's log events (called on the node's thread: it must not block).
#[derive(Clone)]
pub struct LogSink(pub std::sync::Arc<dyn Fn(LogEvent) + Send + Sync>);

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogSink")
    }
}

/// An engine-log line at notice level ('*'), when log delivery is on.
pub fn engine_log(node: &Node, message: impl FnOnce() -> String) {
    engine_log_at(node, '*', message);
}

pub fn engine_log_at(node: &Node, level: char, message: impl FnOnce() -> String) {
    if let Some(s) = &node.mon.log_sink {
        (s.0)(LogEvent::Engine {
            level,
            role: if node.repl.link.is_some() { 'S' } else { 'M' },
            time_ms: crate::db::now_ms(),
            message: message(),
        });
    }
}

/// Token bucket of a serverless cache's ECPU/second maximum, shared by every node
/// of the cache. A command costs max(1, KB transferred) ECPUs (request plus
/// reply bytes / 1024, fractional, as AWS meters), charged after it ran; while the
/// bucket is in debt the next commands wait (AWS "throttles" them; no error).
#[derive(Debug)]
pub struct EcpuLimit {
    /// ECPUs per second.
    rate: std::sync::atomic::AtomicU64,
    /// (milli-ECPUs available, may be negative; last refill).
    state: std::sync::Mutex<(i64, Instant)>,
    /// Commands that had to wait (ThrottledCmds).
    pub throttled: std::sync::atomic::AtomicU64,
    /// Milli-ECPUs consumed (ElastiCacheProcessingUnits × 1000).
    pub consumed_milli: std::sync::atomic::AtomicU64,
}

impl EcpuLimit {
    /// How long a burst may run ahead of the rate: a tenth of a second of it.
    const BURST_DIVISOR: i64 = 10;

    pub fn new(per_second: u64) -> EcpuLimit {
        let rate = per_second.max(1);
        EcpuLimit {
            rate: rate.into(),
            state: std::sync::Mutex::new((Self::burst(rate), Instant::now())),
            throttled: 0.into(),
            consumed_milli: 0.into(),
        }
    }

    fn burst(rate: u64) -> i64 {
        (rate as i64).saturating_mul(1000) / Self::BURST_DIVISOR
    }

    pub fn rate(&self) -> u64 {
        self.rate.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Change the maximum of a live cache (ModifyServerlessCache).
    pub fn set_rate(&self, per_second: u64) {
        self.rate
            .store(per_second.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn refill(&self, st: &mut (i64, Instant), now: Instant) {
        let rate = self.rate();
        let dt = now.saturating_duration_since(st.1);
        // milli-ECPUs earned: rate × 1000 × seconds.
        let earned = (dt.as_nanos() * rate as u128 / 1_000_000) as i64;
        st.0 = st.0.saturating_add(earned).min(Self::burst(rate));
        st.1 = now;
    }

    /// None: the command may run now. Some(d): it must wait `d` first.
    pub fn wait_time(&self, now: Instant) -> Option<std::time::Duration> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut st, now);
        if st.0 > 0 {
            return None;
        }
        let rate = self.rate() as u128;
        let need = (1 - st.0) as u128; // milli-ECPUs until the bucket is positive
        let nanos = (need * 1_000_000).div_ceil(rate);
        Some(std::time::Duration::from_nanos(nanos as u64))
    }

    /// Charge a command that moved `bytes` (request + reply); `held`: it had to wait
    /// (ThrottledCmds counts each such command once, however often it was woken).
    pub fn charge(&self, bytes: usize, held: bool) {
        if held {
            self.throttled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let milli = (bytes as u64 * 1000 / 1024).max(1000);
        self.consumed_milli
            .fetch_add(milli, std::sync::atomic::Ordering::Relaxed);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.0 = st.0.saturating_sub(milli as i64);
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            pause_end: None,
            pause_all: false,
            slowlog: VecDeque::new(),
            slowlog_next_id: 0,
            slower_than: 10_000,
            slowlog_max_len: 128,
            latency_threshold: 0,
            latency: IndexMap::new(),
            timing: true,
            peak_mem: 0,
            startup_mem: crate::alloc::thread_used().unwrap_or(0) as u64,
            log_sink: None,
            ecpu: None,
            commandlog: false,
            large_request: CommandLog::default(),
            large_reply: CommandLog::default(),
        }
    }
}

impl Monitor {
    pub fn update_timing(&mut self) {
        self.timing = self.slower_than >= 0
            || self.latency_threshold > 0
            || (self.commandlog
                && (self.large_request.threshold >= 0 || self.large_reply.threshold >= 0));
    }
}

/// Commands that may replicate (Redis's CMD_MAY_REPLICATE): held by CLIENT PAUSE WRITE.
fn may_replicate(name: &str) -> bool {
    matches!(
        name,
        "publish" | "spublish" | "pfcount" | "eval" | "evalsha" | "fcall" | "script" | "function"
    )
}

/// CLIENT PAUSE: Some(end) when this command must wait for the pause to end.
/// Unknown commands and arity errors are answered at once, as Redis does (its pause
/// check comes after those).
pub fn paused_until(node: &mut Node, client: &Client, args: &Args<'_>) -> Option<Instant> {
    let end = node.mon.pause_end?;
    if Instant::now() >= end {
        node.mon.pause_end = None;
        return None;
    }
    // Replicas are never paused (their REPLCONF ACKs keep flowing).
    if args.is_empty() || node.repl.replicas.iter().any(|p| p.client_id == client.id) {
        return None;
    }
    let info = crate::cmd::lookup(args.get(0))?;
    let argc = args.len() as i32;
    let a = info.def.arity;
    if (a > 0 && argc != a) || argc < -a {
        return None;
    }
    if node.mon.pause_all {
        return Some(end);
    }
    let holds = if info.def.name == "exec" {
        client.multi.borrow().as_ref().is_some_and(|q| {
            q.iter().any(|c| {
                crate::cmd::lookup(c.args().get(0))
                    .is_some_and(|i| i.flags & F_WRITE != 0 || may_replicate(i.def.name))
            })
        })
    } else {
        info.flags & F_WRITE != 0 || may_replicate(info.def.name)
    };
    holds.then_some(end)
}

/// CLIENT PAUSE timeout [WRITE|ALL] / CLIENT UNPAUSE.
pub fn client_pause(ctx: &mut Ctx<'_>, sub: &str) -> CmdResult {
    let argc = ctx.argc();
    if sub == "unpause" {
        if argc != 2 {
            return Err(Error::Arity("client|unpause".into()));
        }
        unpause(ctx.node);
        ctx.r().ok();
        return Ok(());
    }
    if argc != 3 && argc != 4 {
        return Err(err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(ctx.arg(1))
        )));
    }
    let mut all = true;
    if argc == 4 {
        if ctx.arg_eq(3, "write") {
            all = false;
        } else if !ctx.arg_eq(3, "all") {
            return Err(err("CLIENT PAUSE mode must be WRITE or ALL"));
        }
    }
    let ms = ctx
        .int(2)
        .map_err(|_| err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(err("timeout is negative"));
    }
    let end = Instant::now() + std::time::Duration::from_millis(ms as u64);
    let m = &mut ctx.node.mon;
    // pauseClients: the later end and the more restrictive mode win.
    match m.pause_end {
        Some(e) if e > Instant::now() => {
            if end > e {
                m.pause_end = Some(end);
            }
            m.pause_all |= all;
        }
        _ => {
            m.pause_end = Some(end);
            m.pause_all = all;
        }
    }
    ctx.r().ok();
    Ok(())
}

/// CLIENT PAUSE WRITE for as long as the node lives (see `Control::HoldWrites`).
pub fn hold_writes(node: &mut Node) {
    node.mon.pause_end = Some(Instant::now() + std::time::Duration::from_secs(24 * 3600));
    node.mon.pause_all = false;
}

/// SLOWLOG GET / COMMANDLOG GET entries: id, time, duration (or size), arguments, peer, name.
fn reply_entries(r: &mut crate::resp::Reply<'_>, entries: &[SlowEntry]) {
    r.array(entries.len());
    for e in entries {
        r.array(6);
        r.int(e.id as i64);
        r.int(e.time as i64);
        r.int(e.duration_us as i64);
        r.array(e.args.len());
        for a in &e.args {
            r.bulk(a);
        }
        r.bulk(e.peer.as_bytes());
        r.bulk(&e.name);
    }
}

pub fn unpause(node: &mut Node) {
    if node.mon.pause_end.take().is_some() {
        for c in node.clients.values() {
            c.notify.notify_one();
        }
    }
}

/// After a command ran for `dur`: slowlog entry and latency sample when over the limits.
pub fn record(
    node: &mut Node,
    client: &Client,
    info: &CmdInfo,
    args: &Args<'_>,
    dur: std::time::Duration,
    reply_bytes: usize,
) {
    let us = dur.as_micros() as u64;
    let m = &mut node.mon;
    let logged = !matches!(info.def.name, "exec" | "auth" | "hello");
    if m.commandlog && logged {
        if m.large_request.threshold >= 0 {
            m.large_request.push(args, client, request_bytes(args));
        }
        m.large_reply.push(args, client, reply_bytes as u64);
    }
    if m.slower_than >= 0 && us >= m.slower_than as u64 && logged {
        if let Some(sink) = &m.log_sink {
            (sink.0)(LogEvent::Slow {
                id: m.slowlog_next_id,
                timestamp: crate::db::now_ms() / 1000,
                duration_us: us,
                command: String::from_utf8_lossy(args.get(0)).into_owned(),
                more_args: args.len().saturating_sub(1),
                client_addr: client.addr.clone(),
                client_name: String::from_utf8_lossy(&client.name.borrow()).into_owned(),
            });
        }
        let e = log_entry(args, client, m.slowlog_next_id, us);
        m.slowlog_next_id += 1;
        m.slowlog.push_front(e);
        while m.slowlog.len() > m.slowlog_max_len {
            m.slowlog.pop_back();
        }
    }
    let ms = us / 1000;
    if m.latency_threshold > 0 && ms >= m.latency_threshold {
        let ev = if info.flags & F_FAST != 0 {
            "fast-command"
        } else {
            "command"
        };
        add_latency_sample(node, ev, ms);
    }
}

/// latencyAddSample: one sample per second (the max within that second).
pub fn add_latency_sample(node: &mut Node, event: &'static str, ms: u64) {
    let now = crate::db::now_ms() / 1000;
    let e = node.mon.latency.entry(event).or_default();
    if ms > e.max {
        e.max = ms;
    }
    if let Some(last) = e.samples.back_mut() {
        if last.0 == now {
            last.1 = last.1.max(ms);
            return;
        }
    }
    e.samples.push_back((now, ms));
    while e.samples.len() > LATENCY_TS_LEN {
        e.samples.pop_front();
    }
}

pub fn slowlog(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    let argc = ctx.argc();
    match sub.as_str() {
        "get" => {
            if argc > 3 {
                return Err(Error::Arity("slowlog|get".into()));
            }
            let mut count = 10i64;
            if argc == 3 {
                count = ctx
                    .int(2)
                    .ok()
                    .filter(|&c| c >= -1)
                    .ok_or_else(|| err("count should be greater than or equal to -1"))?;
                if count == -1 {
                    count = i64::MAX;
                }
            }
            let n = (count as usize).min(ctx.node.mon.slowlog.len());
            let entries: Vec<SlowEntry> = ctx.node.mon.slowlog.iter().take(n).cloned().collect();
            reply_entries(&mut ctx.r(), &entries);
        }
        "len" => {
            if argc != 2 {
                return Err(Error::Arity("slowlog|len".into()));
            }
            let n = ctx.node.mon.slowlog.len();
            ctx.r().int(n as i64);
        }
        "reset" => {
            if argc != 2 {
                return Err(Error::Arity("slowlog|reset".into()));
            }
            ctx.node.mon.slowlog.clear();
            ctx.r().ok();
        }
        "help" => {
            let lines: &[&str] = &[
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
                "HELP",
                "    Prints this help.",
            ];
            ctx.r().lines(lines);
        }
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

/// Which of Valkey's three command logs a COMMANDLOG subcommand names.
#[derive(Clone, Copy)]
enum LogType {
    Slow,
    LargeRequest,
    LargeReply,
}

fn log_type(ctx: &Ctx<'_>, i: usize) -> Result<LogType, Error> {
    if ctx.arg_eq(i, "slow") {
        Ok(LogType::Slow)
    } else if ctx.arg_eq(i, "large-request") {
        Ok(LogType::LargeRequest)
    } else if ctx.arg_eq(i, "large-reply") {
        Ok(LogType::LargeReply)
    } else {
        Err(err(
            "type should be one of the following: slow, large-request, large-reply",
        ))
    }
}

fn log_entries(m: &mut Monitor, t: LogType) -> &mut VecDeque<SlowEntry> {
    match t {
        LogType::Slow => &mut m.slowlog,
        LogType::LargeRequest => &mut m.large_request.entries,
        LogType::LargeReply => &mut m.large_reply.entries,
    }
}

/// Valkey 8.1's COMMANDLOG (commandlog.c commandlogCommand): the slowlog plus the
/// large-request / large-reply logs, entries shaped like SLOWLOG GET's.
pub fn commandlog(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    let argc = ctx.argc();
    let arity = |want: usize, name: &str| {
        if argc == want {
            Ok(())
        } else {
            Err(Error::Arity(format!("commandlog|{name}")))
        }
    };
    match sub.as_str() {
        "get" => {
            arity(4, "get")?;
            let count = ctx
                .int(2)
                .ok()
                .filter(|&c| c >= -1)
                .ok_or_else(|| err("count should be greater than or equal to -1"))?;
            let t = log_type(ctx, 3)?;
            let list = log_entries(&mut ctx.node.mon, t);
            let n = if count == -1 {
                list.len()
            } else {
                (count as usize).min(list.len())
            };
            let entries: Vec<SlowEntry> = list.iter().take(n).cloned().collect();
            reply_entries(&mut ctx.r(), &entries);
        }
        "len" => {
            arity(3, "len")?;
            let t = log_type(ctx, 2)?;
            let n = log_entries(&mut ctx.node.mon, t).len();
            ctx.r().int(n as i64);
        }
        "reset" => {
            arity(3, "reset")?;
            let t = log_type(ctx, 2)?;
            log_entries(&mut ctx.node.mon, t).clear();
            ctx.r().ok();
        }
        "help" => {
            arity(2, "help")?;
            let lines: &[&str] = &[
                "COMMANDLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <count> <type>",
                "    Return top <count> entries of the specified <type> from the commandlog (-1 mean all).",
                "    Entries are made of:",
                "    id, timestamp,",
                "        time in microseconds for type of slow,",
                "        or size in bytes for type of large-request,",
                "        or size in bytes for type of large-reply",
                "    arguments array, client IP and port,",
                "    client name",
                "LEN <type>",
                "    Return the length of the specified type of commandlog.",
                "RESET <type>",
                "    Reset the specified type of commandlog.",
                "HELP",
                "    Prints this help.",
            ];
            ctx.r().lines(lines);
        }
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

pub fn latency(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    let argc = ctx.argc();
    match sub.as_str() {
        "latest" => {
            if argc != 2 {
                return Err(Error::Arity("latency|latest".into()));
            }
            let rows: Vec<(&'static str, u64, u64, u64)> = ctx
                .node
                .mon
                .latency
                .iter()
                .filter_map(|(k, e)| e.samples.back().map(|s| (*k, s.0, s.1, e.max)))
                .collect();
            let mut r = ctx.r();
            r.array(rows.len());
            for (k, t, l, m) in rows {
                r.array(4);
                r.bulk(k.as_bytes());
                r.int(t as i64);
                r.int(l as i64);
                r.int(m as i64);
            }
        }
        "history" => {
            if argc != 3 {
                return Err(Error::Arity("latency|history".into()));
            }
            let name = String::from_utf8_lossy(ctx.arg(2)).into_owned();
            let rows: Vec<(u64, u64)> = ctx
                .node
                .mon
                .latency
                .get(name.as_str())
                .map(|e| e.samples.iter().copied().collect())
                .unwrap_or_default();
            let mut r = ctx.r();
            r.array(rows.len());
            for (t, l) in rows {
                r.array(2);
                r.int(t as i64);
                r.int(l as i64);
            }
        }
        "reset" => {
            let n = if argc == 2 {
                let n = ctx.node.mon.latency.len();
                ctx.node.mon.latency.clear();
                n
            } else {
                let mut n = 0;
                for i in 2..argc {
                    let name = String::from_utf8_lossy(ctx.arg(i)).into_owned();
                    if ctx.node.mon.latency.shift_remove(name.as_str()).is_some() {
                        n += 1;
                    }
                }
                n
            };
            ctx.r().int(n as i64);
        }
        "doctor" => {
            if argc != 2 {
                return Err(Error::Arity("latency|doctor".into()));
            }
            let s = doctor(ctx.node);
            ctx.r().verbatim(s.as_bytes());
        }
        "help" => {
            let lines: &[&str] = &[
                "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DOCTOR",
                "    Return a human readable latency analysis report.",
                "HISTORY <event>",
                "    Return time-latency samples for the <event> class.",
                "LATEST",
                "    Return the latest latency samples for all events.",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)",
                "HELP",
                "    Prints this help.",
            ];
            ctx.r().lines(lines);
        }
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

/// LATENCY DOCTOR: Redis's wording for the no-data cases, a per-event summary otherwise.
fn doctor(node: &Node) -> String {
    let m = &node.mon;
    if m.latency.is_empty() {
        if m.latency_threshold == 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
        }
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into();
    }
    let mut s = String::from("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
    for (i, (name, e)) in m.latency.iter().enumerate() {
        let n = e.samples.len().max(1) as u64;
        let avg: u64 = e.samples.iter().map(|x| x.1).sum::<u64>() / n;
        let first = e.samples.front().map(|x| x.0).unwrap_or(0);
        let last = e.samples.back().map(|x| x.0).unwrap_or(0);
        let period = if e.samples.len() > 1 {
            (last - first) / (e.samples.len() as u64 - 1)
        } else {
            0
        };
        s.push_str(&format!(
            "{}. {}: {} latency spikes (average {}ms, mean deviation 0ms, period {} sec). Worst all time event {}ms.\n",
            i + 1,
            name,
            e.samples.len(),
            avg,
            period,
            e.max
        ));
    }
    s.push_str("\nI have a few advices for you:\n\n- Check your system for slow commands using SLOWLOG GET, and consider splitting large multi-key operations.\n");
    s
}

/// MEMORY STATS: Redis 7.0's field list and order. Allocator figures come from the
/// node's counting allocator (no jemalloc here), so fragmentation ratios are RSS-based.
pub fn memory_stats(ctx: &mut Ctx<'_>) -> CmdResult {
    let n = &mut *ctx.node;
    let used = n.used_memory();
    n.mon.peak_mem = n.mon.peak_mem.max(used);
    let peak = n.mon.peak_mem;
    let startup = n.mon.startup_mem.min(used);
    let rss = read_rss().max(used);
    let clients_normal: u64 = n
        .clients
        .values()
        .map(|c| c.out.try_borrow().map(|o| o.capacity()).unwrap_or(0) as u64 + 1024)
        .sum();
    let dbs: Vec<(usize, u64, u64)> =
        n.ks.dbs
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.map.is_empty())
            .map(|(i, d)| (i, d.map.len() as u64 * 24, d.expires.len() as u64 * 24))
            .collect();
    let keys = n.ks.key_count() as u64;
    let overhead = startup + clients_normal + dbs.iter().map(|(_, a, b)| a + b).sum::<u64>();
    let dataset = used.saturating_sub(overhead);
    let net = used.saturating_sub(startup).max(1);
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let mut r = ctx.r();
    r.map(27 + dbs.len());
    let kv = |r: &mut crate::resp::Reply<'_>, k: &str, v: u64| {
        r.bulk(k.as_bytes());
        r.int(v as i64);
    };
    kv(&mut r, "peak.allocated", peak);
    kv(&mut r, "total.allocated", used);
    kv(&mut r, "startup.allocated", startup);
    kv(&mut r, "replication.backlog", 0);
    kv(&mut r, "clients.slaves", 0);
    kv(&mut r, "clients.normal", clients_normal);
    kv(&mut r, "cluster.links", 0);
    kv(&mut r, "aof.buffer", 0);
    kv(&mut r, "lua.caches", 0);
    kv(&mut r, "functions.caches", 0);
    for (i, main, exp) in &dbs {
        r.bulk(format!("db.{i}").as_bytes());
        r.map(3);
        kv(&mut r, "overhead.hashtable.main", *main);
        kv(&mut r, "overhead.hashtable.expires", *exp);
        kv(&mut r, "overhead.hashtable.slot-to-keys", 0);
    }
    kv(&mut r, "overhead.total", overhead);
    kv(&mut r, "keys.count", keys);
    kv(
        &mut r,
        "keys.bytes-per-key",
        net.checked_div(keys).unwrap_or(0),
    );
    kv(&mut r, "dataset.bytes", dataset);
    r.bulk(b"dataset.percentage");
    r.double(pct(dataset, net));
    r.bulk(b"peak.percentage");
    r.double(pct(used, peak));
    kv(&mut r, "allocator.allocated", used);
    kv(&mut r, "allocator.active", used);
    kv(&mut r, "allocator.resident", rss);
    r.bulk(b"allocator-fragmentation.ratio");
    r.double(1.0);
    kv(&mut r, "allocator-fragmentation.bytes", 0);
    r.bulk(b"allocator-rss.ratio");
    r.double(rss as f64 / used.max(1) as f64);
    kv(&mut r, "allocator-rss.bytes", rss.saturating_sub(used));
    r.bulk(b"rss-overhead.ratio");
    r.double(1.0);
    kv(&mut r, "rss-overhead.bytes", 0);
    r.bulk(b"fragmentation");
    r.double(rss as f64 / used.max(1) as f64);
    kv(&mut r, "fragmentation.bytes", rss.saturating_sub(used));
    Ok(())
}

/// MEMORY DOCTOR: Redis's empty-instance and no-issue reports, and its peak check.
pub fn memory_doctor(ctx: &mut Ctx<'_>) -> CmdResult {
    let n = &mut *ctx.node;
    let used = n.used_memory();
    n.mon.peak_mem = n.mon.peak_mem.max(used);
    let s = if used < 5 << 20 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".to_string()
    } else if n.mon.peak_mem as f64 / used as f64 > 1.5 {
        "Sam, I detected a few issues in this Redis instance memory implants:\n\n * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\nI'm here to keep you safe, Sam. I want to help you.\n".to_string()
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".to_string()
    };
    ctx.r().verbatim(s.as_bytes());
    Ok(())
}

fn read_rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|x| x.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::EcpuLimit;
    use std::time::{Duration, Instant};

    #[test]
    fn ecpu_bucket_charges_per_kb_and_delays_at_the_rate() {
        let b = EcpuLimit::new(1000);
        let t0 = Instant::now();
        // A burst of a tenth of a second (100 ECPUs) runs at once.
        for _ in 0..100 {
            assert_eq!(b.wait_time(t0), None);
            b.charge(40, false);
        }
        // Then the next command waits about 1 ms (one ECPU at 1000/s).
        let w = b.wait_time(t0).expect("in debt");
        assert!(w <= Duration::from_micros(1001), "{w:?}");
        assert_eq!(b.throttled.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(b.wait_time(t0 + Duration::from_millis(2)), None);
        b.charge(10, true);
        assert_eq!(b.throttled.load(std::sync::atomic::Ordering::Relaxed), 1);
        // Small commands cost 1 ECPU; 3.2 KB costs 3.2 ECPUs (AWS's example).
        let before = b.consumed_milli.load(std::sync::atomic::Ordering::Relaxed);
        b.charge(3277, false);
        let after = b.consumed_milli.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(after - before, 3200);
        assert_eq!(before, 101_000);
        // A raised rate refills faster.
        b.set_rate(1_000_000);
        assert_eq!(b.rate(), 1_000_000);
        assert_eq!(b.wait_time(t0 + Duration::from_millis(3)), None);
    }
}
