//! Busy scripts (`busy-reply-threshold`, alias `lua-time-limit`, default 5000 ms).
//!
//! The node serves every connection on the thread that runs the script, so while a script
//! runs past the threshold, a Lua count hook polls the other clients' sockets itself: it
//! reads what they sent (non-blocking, on their raw fds), answers `BUSY` to each command,
//! honours SCRIPT KILL / FUNCTION KILL (a script that has not written is stopped with
//! Redis's error) and FUNCTION STATS, and writes the replies straight to the sockets.
//! Incomplete input is left in `Client::pending_in` for the connection loop.
//!
//! Clients skipped (served when the script ends): the script's caller, blocked clients,
//! clients with unparsed input or replies being written by their task, replication links,
//! and connections accepted meanwhile.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::rc::Rc;
use std::time::Instant;

use crate::cmd::{self, Error};
use crate::node::{Client, Node};
use crate::resp::{parse_command, Args, Parsed, Reply};

/// Instructions between two hook calls (Redis uses the same count).
pub const HOOK_EVERY: u32 = 100_000;

/// The running script, as the hook and the poller see it.
pub struct Running {
    pub started: Instant,
    /// The node's threshold, read when first needed (most scripts end before any check).
    pub threshold: Cell<Option<u64>>,
    /// redis.call invocations so far.
    pub calls: Cell<u32>,
    pub is_eval: bool,
    pub caller: u64,
    pub killed: Cell<bool>,
    pub last_poll: Cell<Option<Instant>>,
    /// FUNCTION STATS: function name and the command line that runs it.
    pub name: String,
    pub command: Vec<Vec<u8>>,
    /// Clients answered meanwhile (woken when the script ends).
    pub touched: RefCell<Vec<u64>>,
    /// Library and function counts (the scripting state is out of the node meanwhile).
    pub libs: usize,
    pub funcs: usize,
}

thread_local! {
    /// The script running on this (node) thread, if any.
    pub static RUNNING: RefCell<Option<Rc<Running>>> = const { RefCell::new(None) };
}

pub fn current() -> Option<Rc<Running>> {
    RUNNING.with(|r| r.borrow().clone())
}

/// The threshold configured on the node.
pub fn threshold_ms(node: &Node) -> u64 {
    let e = &node.settings.extra;
    e.get("busy-reply-threshold")
        .or_else(|| e.get("lua-time-limit"))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5000)
}

impl Running {
    pub fn threshold_ms(&self, node: &Node) -> u64 {
        match self.threshold.get() {
            Some(t) => t,
            None => {
                let t = threshold_ms(node);
                self.threshold.set(Some(t));
                t
            }
        }
    }
}

const KILLED_MSG: &str = "ERR Script killed by user with SCRIPT KILL...";

/// Called from the count hook: past the threshold, serve the other clients.
/// Returns the error to raise in the script once it has been killed.
pub fn on_hook(node: &mut Node, wrote: bool) -> Option<&'static str> {
    let run = current()?;
    check(node, wrote, &run)
}

/// Called from redis.call. The first call of a run skips the clock: the script has run
/// less than a hook period of Lua since it started (the count hook covers longer stretches),
/// so it cannot be past any threshold yet; Redis too reads the clock once per script here.
pub fn on_call(node: &mut Node, wrote: bool) -> Option<&'static str> {
    let run = RUNNING.with(|r| {
        let r = r.borrow();
        let run = r.as_ref()?;
        let n = run.calls.get();
        run.calls.set(n.saturating_add(1));
        if n == 0 && !run.killed.get() {
            return None;
        }
        Some(run.clone())
    })?;
    check(node, wrote, &run)
}

fn check(node: &mut Node, wrote: bool, run: &Running) -> Option<&'static str> {
    if run.killed.get() {
        return Some(KILLED_MSG);
    }
    let now = Instant::now();
    if (now.duration_since(run.started).as_millis() as u64) < run.threshold_ms(node) {
        return None;
    }
    // At most every millisecond (redis.call can be much more frequent than the hook).
    if run
        .last_poll
        .get()
        .is_some_and(|t| now.duration_since(t).as_micros() < 1000)
    {
        return None;
    }
    run.last_poll.set(Some(now));
    poll_clients(node, run, wrote);
    if run.killed.get() {
        Some(KILLED_MSG)
    } else {
        None
    }
}

fn busy_msg(is_eval: bool) -> &'static str {
    if is_eval {
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    } else {
        // (sic: 7.0 says "script" for functions too)
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    }
}

fn poll_clients(node: &mut Node, run: &Running, wrote: bool) {
    let clients: Vec<Rc<Client>> = node
        .clients
        .values()
        .filter(|c| {
            c.id != run.caller
                && c.fd >= 0
                && c.blocked.borrow().is_none()
                && c.qbuf.get() == 0
                && !c.flushing.get()
                && !c.killed.get()
        })
        .cloned()
        .collect();
    let max_bulk = node.settings.proto_max_bulk_len;
    for c in clients {
        if crate::replication::is_link_client(node, c.id) {
            continue;
        }
        // SAFETY: the fd belongs to the client's live connection (owned by its task, which
        // cannot run now: we are on the same thread); ManuallyDrop keeps it open. The socket
        // is already non-blocking (tokio).
        let sock = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(c.fd) });
        let mut data = std::mem::take(&mut *c.pending_in.borrow_mut());
        let mut tmp = [0u8; 16 * 1024];
        let mut got = false;
        while data.len() < (1 << 20) {
            match (&*sock).read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => {
                    data.extend_from_slice(&tmp[..n]);
                    got = true;
                }
                Err(_) => break,
            }
        }
        if !got {
            *c.pending_in.borrow_mut() = data;
            continue;
        }
        let mut out = Vec::new();
        let mut ranges = Vec::new();
        let mut scratch = Vec::new();
        let mut pos = 0;
        while let Ok(Parsed::Command { consumed, inline }) =
            parse_command(&data[pos..], max_bulk, &mut ranges, &mut scratch)
        {
            let base: &[u8] = if inline {
                &scratch
            } else {
                &data[pos..pos + consumed]
            };
            let args = Args {
                buf: base,
                ranges: &ranges,
            };
            if !args.is_empty() {
                answer(node, &c, run, wrote, args, &mut out);
            }
            pos += consumed;
        }
        data.drain(..pos);
        *c.pending_in.borrow_mut() = data;
        run.touched.borrow_mut().push(c.id);
        // Replies already queued go first, then ours; write what the socket takes now.
        let mut o = c.out.borrow_mut();
        o.extend_from_slice(&out);
        let mut written = 0;
        while written < o.len() {
            match (&*sock).write(&o[written..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        node.net_out += written as u64;
        o.drain(..written);
    }
}

/// One command received while busy (Redis's processCommand checks, in order).
fn answer(
    node: &mut Node,
    c: &Rc<Client>,
    run: &Running,
    wrote: bool,
    args: Args<'_>,
    out: &mut Vec<u8>,
) {
    let resp3 = c.resp3.get();
    let mut r = Reply { out, resp3 };
    node.total_commands += 1;
    let in_multi = c.multi.borrow().is_some();
    let info = match cmd::lookup(args.get(0)) {
        Some(i)
            if (node.settings.allow_restricted || i.flags & cmd::F_RESTRICTED == 0)
                && cmd::in_version(node, i) =>
        {
            i
        }
        _ => {
            if in_multi {
                c.multi_error.set(true);
            }
            r.error(&cmd::unknown_command(&args));
            return;
        }
    };
    let def = info.def;
    let argc = args.len() as i32;
    if (def.arity > 0 && argc != def.arity) || argc < -def.arity {
        if in_multi {
            c.multi_error.set(true);
        }
        r.error(&Error::Arity(def.name.to_string()).to_string());
        return;
    }
    if node.settings.requirepass.is_some() && !c.authed.get() && info.flags & cmd::F_NOAUTH == 0 {
        r.error("NOAUTH Authentication required.");
        return;
    }
    let sub = if args.len() > 1 {
        args.get(1).to_ascii_lowercase()
    } else {
        Vec::new()
    };
    match (def.name, sub.as_slice()) {
        ("script", b"kill") | ("function", b"kill") if args.len() == 2 => {
            let is_eval = def.name == "script";
            if wrote {
                r.error("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
            } else if is_eval != run.is_eval {
                r.error(busy_msg(run.is_eval));
            } else {
                run.killed.set(true);
                r.ok();
            }
        }
        ("function", b"stats") if args.len() == 2 && !run.is_eval => {
            r.map(2);
            r.bulk(b"running_script");
            r.map(3);
            r.bulk(b"name");
            r.bulk(run.name.as_bytes());
            r.bulk(b"command");
            r.array(run.command.len());
            for a in &run.command {
                r.bulk(a);
            }
            r.bulk(b"duration_ms");
            r.int(run.started.elapsed().as_millis() as i64);
            r.bulk(b"engines");
            r.map(1);
            r.bulk(b"LUA");
            r.map(2);
            r.bulk(b"libraries_count");
            r.int(run.libs as i64);
            r.bulk(b"functions_count");
            r.int(run.funcs as i64);
        }
        _ => {
            if in_multi {
                c.multi_error.set(true);
            }
            r.error(busy_msg(run.is_eval));
        }
    }
}

/// Wake the clients answered while the script ran (their tasks consume `pending_in`).
pub fn finish(node: &Node, run: &Running) {
    for id in run.touched.borrow().iter() {
        if let Some(c) = node.clients.get(id) {
            c.notify.notify_one();
        }
    }
}
