//! Connection and server commands.

use super::*;
use crate::db::Value;

macro_rules! cmd {
    ($name:expr, $arity:expr, $flags:expr, $acl:expr, $keys:expr, $h:expr) => {
        CmdDef {
            name: $name,
            arity: $arity,
            flags: $flags,
            acl: $acl,
            keys: $keys,
            handler: $h,
        }
    };
}
pub(crate) use cmd;

const N: Keys = Keys::None;

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "ping",
        -1,
        "fast stale loading",
        "@fast @connection",
        N,
        ping
    ),
    cmd!(
        "echo",
        2,
        "fast stale loading",
        "@fast @connection",
        N,
        echo
    ),
    cmd!(
        "hello",
        -1,
        "noscript loading stale fast no_auth",
        "@fast @connection",
        N,
        hello
    ),
    cmd!(
        "auth",
        -2,
        "noscript loading stale fast no_auth",
        "@fast @connection",
        N,
        auth
    ),
    cmd!(
        "select",
        2,
        "loading stale fast",
        "@fast @connection",
        N,
        select
    ),
    cmd!(
        "quit",
        -1,
        "noscript loading stale fast no_auth",
        "@fast @connection",
        N,
        quit
    ),
    cmd!(
        "reset",
        1,
        "noscript loading stale fast no_auth",
        "@fast @connection",
        N,
        reset
    ),
    cmd!(
        "client",
        -2,
        "noscript loading stale",
        "@slow @connection",
        N,
        client
    ),
    cmd!(
        "command",
        -1,
        "loading stale",
        "@slow @connection",
        N,
        command
    ),
    cmd!("info", -1, "loading stale", "@slow @dangerous", N, info),
    cmd!(
        "dbsize",
        1,
        "readonly fast",
        "@keyspace @read @fast",
        N,
        dbsize
    ),
    cmd!(
        "flushdb",
        -1,
        "write",
        "@keyspace @write @slow @dangerous",
        N,
        flushdb
    ),
    cmd!(
        "flushall",
        -1,
        "write",
        "@keyspace @write @slow @dangerous",
        N,
        flushall
    ),
    cmd!("time", 1, "loading stale fast", "@fast", N, time),
    cmd!(
        "lastsave",
        1,
        "loading stale fast",
        "@fast @admin @dangerous",
        N,
        lastsave
    ),
    cmd!(
        "swapdb",
        3,
        "write fast",
        "@keyspace @write @fast @dangerous",
        N,
        swapdb
    ),
    cmd!("memory", -2, "readonly", "@slow", Keys::None, memory),
    cmd!(
        "slowlog",
        -2,
        "admin loading stale",
        "@admin @slow @dangerous",
        N,
        slowlog
    ),
    cmd!(
        "commandlog",
        -2,
        "admin loading stale",
        "@admin @slow @dangerous",
        N,
        commandlog
    ),
    cmd!(
        "latency",
        -2,
        "admin noscript loading stale",
        "@admin @slow @dangerous",
        N,
        latency
    ),
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
        "readonly",
        1,
        "loading stale fast",
        "@fast @connection",
        N,
        ok
    ),
    cmd!(
        "readwrite",
        1,
        "loading stale fast",
        "@fast @connection",
        N,
        ok
    ),
    cmd!(
        "config",
        -2,
        "admin noscript loading stale restricted",
        "@admin @slow @dangerous",
        N,
        config
    ),
    cmd!(
        "debug",
        -2,
        "admin noscript loading stale restricted",
        "@admin @slow @dangerous",
        N,
        debug
    ),
    cmd!(
        "save",
        1,
        "admin noscript no_multi restricted",
        "@admin @slow @dangerous",
        N,
        save
    ),
    cmd!(
        "bgsave",
        -1,
        "admin noscript restricted",
        "@admin @slow @dangerous",
        N,
        bgsave
    ),
    cmd!(
        "bgrewriteaof",
        1,
        "admin noscript restricted",
        "@admin @slow @dangerous",
        N,
        bgrewriteaof
    ),
    cmd!(
        "shutdown",
        -1,
        "admin noscript loading stale no_multi restricted",
        "@admin @slow @dangerous",
        N,
        shutdown
    ),
    cmd!(
        "replicaof",
        3,
        "admin noscript stale no_multi restricted",
        "@admin @slow @dangerous",
        N,
        ok
    ),
    cmd!(
        "slaveof",
        3,
        "admin noscript stale no_multi restricted",
        "@admin @slow @dangerous",
        N,
        ok
    ),
    cmd!(
        "sync",
        1,
        "admin noscript no_multi restricted",
        "@admin @slow @dangerous",
        N,
        notsupp
    ),
    cmd!(
        "psync",
        -3,
        "admin noscript no_multi restricted",
        "@admin @slow @dangerous",
        N,
        notsupp
    ),
    cmd!(
        "module",
        -2,
        "admin noscript restricted",
        "@admin @slow @dangerous",
        N,
        notsupp
    ),
    cmd!(
        "migrate",
        -6,
        "write restricted",
        "@keyspace @write @slow @dangerous",
        N,
        notsupp
    ),
    cmd!(
        "failover",
        -1,
        "admin noscript stale restricted",
        "@admin @slow @dangerous",
        N,
        notsupp
    ),
    cmd!("lolwut", -1, "readonly fast", "@read @fast", N, lolwut),
];

fn ok(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.r().ok();
    Ok(())
}

fn notsupp(_ctx: &mut Ctx<'_>) -> CmdResult {
    Err(err("This command is not supported by this node"))
}

fn lolwut(ctx: &mut Ctx<'_>) -> CmdResult {
    let v = format!("Redis ver. {}\n", ctx.node.settings.version);
    ctx.r().verbatim(v.as_bytes());
    Ok(())
}

fn ping(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.argc() > 2 {
        return Err(ctx.arity_err());
    }
    if !ctx.client.resp3.get() && ctx.client.in_pubsub() {
        let a = if ctx.argc() == 2 { ctx.arg(1) } else { b"" };
        let mut r = ctx.r();
        r.array(2);
        r.bulk(b"pong");
        r.bulk(a);
        return Ok(());
    }
    if ctx.argc() == 2 {
        let a = ctx.arg(1);
        ctx.r().bulk(a);
    } else {
        ctx.out.extend_from_slice(b"+PONG\r\n");
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>) -> CmdResult {
    let a = ctx.arg(1);
    ctx.r().bulk(a);
    Ok(())
}

fn auth(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(Error::Syntax);
    }
    let (user, pass) = if ctx.argc() == 2 {
        if !crate::acl::auth_required(ctx.node) && ctx.node.acl.is_none() {
            return Err(err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
        }
        (&b"default"[..], ctx.arg(1))
    } else {
        (ctx.arg(1), ctx.arg(2))
    };
    crate::acl::authenticate(ctx.node, ctx.client, user, pass)?;
    ctx.r().ok();
    Ok(())
}

fn hello(ctx: &mut Ctx<'_>) -> CmdResult {
    let cluster_mode = ctx.node.cluster.is_some();
    let mut ver = None;
    let mut i = 1;
    if ctx.argc() >= 2 {
        let v = parse_int_opt(ctx.arg(1))
            .ok_or_else(|| err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(Error::Raw("NOPROTO unsupported protocol version".into()));
        }
        ver = Some(v);
        i = 2;
    }
    let mut auth: Option<(&[u8], &[u8])> = None;
    let mut name: Option<&[u8]> = None;
    while i < ctx.argc() {
        let more = ctx.argc() - i - 1;
        if ctx.arg_eq(i, "AUTH") && more >= 2 {
            auth = Some((ctx.arg(i + 1), ctx.arg(i + 2)));
            i += 3;
        } else if ctx.arg_eq(i, "SETNAME") && more >= 1 {
            name = Some(ctx.arg(i + 1));
            i += 2;
        } else {
            return Err(err(format!(
                "Syntax error in HELLO option '{}'",
                trunc(ctx.arg(i), 128)
            )));
        }
    }
    if let Some((u, p)) = auth {
        crate::acl::authenticate(ctx.node, ctx.client, u, p)?;
    }
    if !ctx.client.authed.get() {
        return Err(Error::Raw("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(n) = name {
        validate_name(n)?;
        *ctx.client.name.borrow_mut() = n.to_vec();
    }
    if let Some(v) = ver {
        ctx.client.resp3.set(v == 3);
    }
    let id = ctx.client.id as i64;
    let version = ctx.node.settings.version.clone();
    let flavor = ctx.node.settings.flavor.clone();
    let proto = if ctx.client.resp3.get() { 3 } else { 2 };
    let role_name: &[u8] = if ctx.node.repl.is_replica() {
        b"replica"
    } else {
        b"master"
    };
    let mut r = ctx.r();
    r.map(7);
    r.bulk(b"server");
    r.bulk(if flavor == "valkey" {
        b"valkey"
    } else {
        b"redis"
    });
    r.bulk(b"version");
    r.bulk(version.as_bytes());
    r.bulk(b"proto");
    r.int(proto);
    r.bulk(b"id");
    r.int(id);
    r.bulk(b"mode");
    r.bulk(if cluster_mode {
        b"cluster"
    } else {
        b"standalone"
    });
    r.bulk(b"role");
    r.bulk(role_name);
    r.bulk(b"modules");
    r.array(0);
    Ok(())
}

fn select(ctx: &mut Ctx<'_>) -> CmdResult {
    let i = ctx.int(1)?;
    if ctx.node.cluster.is_some() && i != 0 {
        return Err(err("SELECT is not allowed in cluster mode"));
    }
    if i < 0 || i as usize >= ctx.node.ks.dbs.len() {
        return Err(err("DB index is out of range"));
    }
    ctx.client.db.set(i as usize);
    ctx.r().ok();
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.client.close_after_reply.set(true);
    ctx.r().ok();
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>) -> CmdResult {
    let c = ctx.client.clone();
    *c.multi.borrow_mut() = None;
    c.multi_error.set(false);
    ctx.node.unwatch_all(&c);
    ctx.node.unblock(&c);
    super::pubsub::unsubscribe_all(ctx.node, &c);
    c.db.set(0);
    c.resp3.set(false);
    c.name.borrow_mut().clear();
    c.no_evict.set(false);
    c.no_touch.set(false);
    crate::tracking::disable(ctx.node, &c);
    c.reply_mode.set(crate::node::ReplyMode::On);
    c.authed.set(!crate::acl::auth_required(ctx.node));
    *c.user.borrow_mut() = b"default".to_vec();
    ctx.r().simple("RESET");
    Ok(())
}

fn validate_name(n: &[u8]) -> CmdResult {
    if n.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

pub fn client_line(node: &Node, c: &Client) -> String {
    let now = std::time::Instant::now();
    let multi = c
        .multi
        .borrow()
        .as_ref()
        .map(|q| q.len() as i64)
        .unwrap_or(-1);
    let mut flags = String::new();
    if c.in_pubsub() {
        flags.push('P');
    }
    if c.multi.borrow().is_some() {
        flags.push('x');
    }
    if c.blocked.borrow().is_some() {
        flags.push('b');
    }
    if c.tracking.get() {
        let t = c.trk.borrow();
        flags.push('t');
        if t.broken_redir {
            flags.push('R');
        }
        if t.bcast {
            flags.push('B');
        }
    }
    if c.dirty_cas.get() {
        flags.push('d');
    }
    if c.no_evict.get() {
        flags.push('e');
    }
    if c.no_touch.get() {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let _ = node;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem=0 events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&c.name.borrow()),
        now.duration_since(c.created).as_secs(),
        now.duration_since(c.last_cmd_at.get()).as_secs(),
        flags,
        c.db.get(),
        c.subs.borrow().len(),
        c.psubs.borrow().len(),
        multi,
        c.qbuf.get(),
        c.out.try_borrow().map(|o| o.len()).unwrap_or(0),
        c.last_cmd.borrow(),
        if c.tracking.get() {
            c.trk.borrow().redirect as i64
        } else {
            -1
        },
        if c.resp3.get() { 3 } else { 2 },
        String::from_utf8_lossy(&c.lib_name.borrow()),
        String::from_utf8_lossy(&c.lib_ver.borrow()),
    )
}

fn on_off(ctx: &Ctx<'_>, i: usize) -> Result<bool, Error> {
    if ctx.arg_eq(i, "on") {
        Ok(true)
    } else if ctx.arg_eq(i, "off") {
        Ok(false)
    } else {
        Err(Error::Syntax)
    }
}

fn client(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    *ctx.client.last_cmd.borrow_mut() = format!("client|{sub}").into();
    let argc = ctx.argc();
    let arity = |n: usize, exact: bool| -> CmdResult {
        if (exact && argc != n) || argc < n {
            Err(Error::Arity(format!("client|{sub}")))
        } else {
            Ok(())
        }
    };
    match sub.as_str() {
        "id" => {
            arity(2, true)?;
            let id = ctx.client.id as i64;
            ctx.r().int(id);
        }
        "setname" => {
            arity(3, true)?;
            let n = ctx.arg(2);
            validate_name(n)?;
            *ctx.client.name.borrow_mut() = n.to_vec();
            ctx.r().ok();
        }
        "getname" => {
            arity(2, true)?;
            let n = ctx.client.name.borrow().clone();
            if n.is_empty() {
                ctx.r().null();
            } else {
                ctx.r().bulk(&n);
            }
        }
        "info" => {
            arity(2, true)?;
            let mut s = client_line(ctx.node, ctx.client);
            s.push('\n');
            ctx.r().verbatim(s.as_bytes());
        }
        "list" => {
            let mut ty: Option<String> = None;
            let mut ids: Option<Vec<u64>> = None;
            let mut i = 2;
            while i < argc {
                if ctx.arg_eq(i, "type") && i + 1 < argc {
                    let t = String::from_utf8_lossy(ctx.arg(i + 1)).to_ascii_lowercase();
                    if !matches!(
                        t.as_str(),
                        "normal" | "master" | "replica" | "slave" | "pubsub"
                    ) {
                        return Err(err(format!(
                            "Unknown client type '{}'",
                            String::from_utf8_lossy(ctx.arg(i + 1))
                        )));
                    }
                    ty = Some(t);
                    i += 2;
                } else if ctx.arg_eq(i, "id") && i + 1 < argc {
                    let mut v = Vec::new();
                    for j in i + 1..argc {
                        let id = parse_int_opt(ctx.arg(j))
                            .filter(|&x| x > 0)
                            .ok_or_else(|| err("Invalid client ID"))?;
                        v.push(id as u64);
                    }
                    ids = Some(v);
                    i = argc;
                } else {
                    return Err(Error::Syntax);
                }
            }
            let mut s = String::new();
            for c in ctx.node.clients.values() {
                if let Some(ids) = &ids {
                    if !ids.contains(&c.id) {
                        continue;
                    }
                }
                if let Some(t) = &ty {
                    let is_pubsub = c.in_pubsub();
                    let ok = match t.as_str() {
                        "pubsub" => is_pubsub,
                        "normal" => !is_pubsub,
                        _ => false,
                    };
                    if !ok {
                        continue;
                    }
                }
                s.push_str(&client_line(ctx.node, c));
                s.push('\n');
            }
            ctx.r().verbatim(s.as_bytes());
        }
        "setinfo" => {
            arity(4, true)?;
            let v = ctx.arg(3);
            if ctx.arg_eq(2, "lib-name") {
                if v.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                    return Err(err(
                        "lib-name cannot contain spaces, newlines or special characters.",
                    ));
                }
                *ctx.client.lib_name.borrow_mut() = v.to_vec();
            } else if ctx.arg_eq(2, "lib-ver") {
                if v.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                    return Err(err(
                        "lib-ver cannot contain spaces, newlines or special characters.",
                    ));
                }
                *ctx.client.lib_ver.borrow_mut() = v.to_vec();
            } else {
                return Err(err(format!(
                    "Unrecognized option '{}'",
                    String::from_utf8_lossy(ctx.arg(2))
                )));
            }
            ctx.r().ok();
        }
        "no-evict" => {
            arity(3, true)?;
            let b = on_off(ctx, 2)?;
            ctx.client.no_evict.set(b);
            ctx.r().ok();
        }
        "no-touch" => {
            arity(3, true)?;
            let b = on_off(ctx, 2)?;
            ctx.client.no_touch.set(b);
            ctx.r().ok();
        }
        "pause" | "unpause" => return crate::monitor::client_pause(ctx, &sub),
        "tracking" | "caching" | "getredir" | "trackinginfo" => {
            return crate::tracking::client_sub(ctx, &sub)
        }
        "reply" => {
            arity(3, true)?;
            use crate::node::ReplyMode;
            if ctx.arg_eq(2, "on") {
                ctx.client.reply_mode.set(ReplyMode::On);
                ctx.r().ok();
            } else if ctx.arg_eq(2, "off") {
                ctx.client.reply_mode.set(ReplyMode::Off);
            } else if ctx.arg_eq(2, "skip") {
                if ctx.client.reply_mode.get() != ReplyMode::Off {
                    ctx.client.reply_mode.set(ReplyMode::SkipNext);
                }
            } else {
                return Err(Error::Syntax);
            }
        }
        "unblock" => {
            arity(3, false)?;
            let id = ctx.int(2)? as u64;
            let err_mode = argc > 3 && ctx.arg_eq(3, "error");
            let target = ctx.node.clients.get(&id).cloned();
            let mut done = false;
            if let Some(c) = target {
                if ctx.node.unblock(&c).is_some() {
                    let mut o = c.out.borrow_mut();
                    let mut r = Reply {
                        out: &mut o,
                        resp3: c.resp3.get(),
                    };
                    if err_mode {
                        r.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
                    } else {
                        r.null_array();
                    }
                    drop(o);
                    c.notify.notify_one();
                    done = true;
                }
            }
            ctx.r().int(done as i64);
        }
        "kill" => {
            arity(3, false)?;
            if argc == 3 {
                let addr = ctx.arg(2).to_vec();
                let target = ctx
                    .node
                    .clients
                    .values()
                    .find(|c| c.addr.as_bytes() == addr.as_slice())
                    .cloned();
                match target {
                    Some(c) => {
                        c.killed.set(true);
                        c.notify.notify_one();
                        ctx.r().ok();
                    }
                    None => return Err(err("No such client")),
                }
                return Ok(());
            }
            let mut id = None;
            let mut addr = None;
            let mut laddr = None;
            let mut ty = None;
            let mut skipme = true;
            // MAXAGE <seconds> (Valkey 8.0, networking.c clientCommand): only clients
            // connected at least that long.
            let mut max_age: Option<u64> = None;
            let maxage_ok = ctx.node.settings.valkey_at_least(8, 0);
            let mut i = 2;
            while i < argc {
                if i + 1 >= argc {
                    return Err(Error::Syntax);
                }
                let v = ctx.arg(i + 1);
                if ctx.arg_eq(i, "id") {
                    id = Some(
                        parse_int_opt(v)
                            .filter(|&x| x > 0)
                            .ok_or_else(|| err("client-id should be greater than 0"))?
                            as u64,
                    );
                } else if ctx.arg_eq(i, "addr") {
                    addr = Some(v.to_vec());
                } else if ctx.arg_eq(i, "laddr") {
                    laddr = Some(v.to_vec());
                } else if maxage_ok && ctx.arg_eq(i, "maxage") {
                    let n = parse_int_opt(v)
                        .ok_or_else(|| err("maxage is not an integer or out of range"))?;
                    if n <= 0 {
                        return Err(err("maxage should be greater than 0"));
                    }
                    max_age = Some(n as u64);
                } else if ctx.arg_eq(i, "type") {
                    ty = Some(String::from_utf8_lossy(v).to_ascii_lowercase());
                } else if ctx.arg_eq(i, "user") {
                } else if ctx.arg_eq(i, "skipme") {
                    skipme = on_off(ctx, i + 1).map_err(|_| Error::Syntax)?;
                } else {
                    return Err(Error::Syntax);
                }
                i += 2;
            }
            let mut n = 0;
            for c in ctx.node.clients.values() {
                if skipme && c.id == ctx.client.id {
                    continue;
                }
                if max_age.is_some_and(|m| c.created.elapsed().as_secs() < m) {
                    continue;
                }
                if id.is_some_and(|x| x != c.id)
                    || addr
                        .as_ref()
                        .is_some_and(|a| a.as_slice() != c.addr.as_bytes())
                    || laddr
                        .as_ref()
                        .is_some_and(|a| a.as_slice() != c.laddr.as_bytes())
                {
                    continue;
                }
                if let Some(t) = &ty {
                    if (t == "pubsub") != c.in_pubsub()
                        || !matches!(t.as_str(), "pubsub" | "normal")
                    {
                        continue;
                    }
                }
                c.killed.set(true);
                c.notify.notify_one();
                n += 1;
            }
            ctx.r().int(n);
        }
        "help" => {
            let lines: &[&str] = &[
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ID",
                "INFO",
                "LIST",
                "KILL",
                "GETNAME",
                "SETNAME",
                "SETINFO",
                "NO-EVICT",
                "NO-TOUCH",
                "PAUSE",
                "UNPAUSE",
                "UNBLOCK",
                "REPLY",
                "TRACKING",
                "CACHING",
                "GETREDIR",
                "TRACKINGINFO",
            ];
            ctx.r().lines(lines);
        }
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

fn write_command_info(r: &mut Reply<'_>, info: &CmdInfo) {
    let d = info.def;
    r.array(10);
    r.bulk(d.name.as_bytes());
    r.int(d.arity as i64);
    let flags: Vec<&str> = d
        .flags
        .split_whitespace()
        .filter(|f| *f != "restricted")
        .collect();
    r.set(flags.len());
    for f in flags {
        r.simple(f);
    }
    let (first, last, step) = match d.keys {
        Keys::None => (0, 0, 0),
        Keys::Range(a, b, c) => (a, b, c),
        Keys::NumKeys(_) | Keys::DestNumKeys(_) | Keys::Streams => (0, 0, 0),
    };
    r.int(first as i64);
    r.int(last as i64);
    r.int(step as i64);
    let mut acl: Vec<&str> = d.acl.split_whitespace().collect();
    let f = info.flags;
    if f & F_WRITE != 0 && !acl.contains(&"@write") {
        acl.insert(0, "@write");
    }
    if f & F_READONLY != 0 && !acl.contains(&"@read") {
        acl.insert(0, "@read");
    }
    r.set(acl.len());
    for a in acl {
        r.simple(a);
    }
    r.array(0);
    r.array(0);
    r.array(0);
}

fn visible(ctx: &Ctx<'_>, i: &CmdInfo) -> bool {
    (ctx.node.settings.allow_restricted || i.flags & F_RESTRICTED == 0)
        && super::in_version(ctx.node, i)
}

/// COMMAND INFO entry: Redis 7.0.15's metadata when it knows the command, else ours.
fn write_info(r: &mut Reply<'_>, info: &CmdInfo) {
    match super::meta::meta().info.get(info.def.name) {
        Some(e) => super::meta::write(r, e),
        None => write_command_info(r, info),
    }
}

/// A command or "container|subcommand" name we serve, as (full name, our table entry).
fn resolve_name(ctx: &Ctx<'_>, n: &[u8]) -> Option<(String, &'static CmdInfo)> {
    let s = String::from_utf8_lossy(n).to_ascii_lowercase();
    if let Some((base, _)) = s.split_once('|') {
        let i = lookup(base.as_bytes()).filter(|i| visible(ctx, i))?;
        super::meta::meta().info.get(&s)?;
        return Some((s, i));
    }
    let i = lookup(n).filter(|i| visible(ctx, i))?;
    Some((i.def.name.to_string(), i))
}

fn command(ctx: &mut Ctx<'_>) -> CmdResult {
    let argc = ctx.argc();
    if argc == 1 {
        let infos: Vec<&CmdInfo> = table().values().filter(|i| visible(ctx, i)).collect();
        let mut r = ctx.r();
        r.array(infos.len());
        for i in infos {
            write_info(&mut r, i);
        }
        return Ok(());
    }
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    let meta = super::meta::meta();
    match sub.as_str() {
        "count" => {
            if argc != 2 {
                return Err(Error::Arity("command|count".into()));
            }
            let n = table().values().filter(|i| visible(ctx, i)).count();
            ctx.r().int(n as i64);
        }
        "info" => {
            if argc == 2 {
                let infos: Vec<&CmdInfo> = table().values().filter(|i| visible(ctx, i)).collect();
                let mut r = ctx.r();
                r.array(infos.len());
                for i in infos {
                    write_info(&mut r, i);
                }
                return Ok(());
            }
            let found: Vec<Option<(String, &CmdInfo)>> =
                (2..argc).map(|i| resolve_name(ctx, ctx.arg(i))).collect();
            let mut r = ctx.r();
            r.array(found.len());
            for f in found {
                match f {
                    Some((full, i)) => match meta.info.get(&full) {
                        Some(e) => super::meta::write(&mut r, e),
                        None => write_command_info(&mut r, i),
                    },
                    None => r.null(),
                }
            }
        }
        "docs" => {
            let names: Vec<(String, &'static CmdInfo)> = if argc == 2 {
                table()
                    .values()
                    .filter(|i| visible(ctx, i))
                    .map(|i| (i.def.name.to_string(), i))
                    .collect()
            } else {
                (2..argc)
                    .filter_map(|i| resolve_name(ctx, ctx.arg(i)))
                    .collect()
            };
            let mut r = ctx.r();
            r.map(names.len());
            for (full, i) in names {
                r.bulk(full.as_bytes());
                match meta.docs.get(&full) {
                    Some(d) => super::meta::write(&mut r, d),
                    None => {
                        r.map(3);
                        r.bulk(b"summary");
                        r.bulk(format!("The {} command", full.to_uppercase()).as_bytes());
                        r.bulk(b"since");
                        r.bulk(b"1.0.0");
                        r.bulk(b"group");
                        r.bulk(group_of(i.def).as_bytes());
                    }
                }
            }
        }
        "list" => {
            enum Filter {
                None,
                Pattern(Vec<u8>),
                Cat(String),
                Module,
            }
            let mut filter = Filter::None;
            if argc > 2 {
                if argc != 5 || !ctx.arg_eq(2, "filterby") {
                    return Err(Error::Syntax);
                }
                if ctx.arg_eq(3, "pattern") {
                    filter = Filter::Pattern(ctx.arg(4).to_vec());
                } else if ctx.arg_eq(3, "aclcat") {
                    filter = Filter::Cat(format!(
                        "@{}",
                        String::from_utf8_lossy(ctx.arg(4)).to_ascii_lowercase()
                    ));
                } else if ctx.arg_eq(3, "module") {
                    filter = Filter::Module;
                } else {
                    return Err(Error::Syntax);
                }
            }
            // Redis lists subcommands ("config|get") too.
            let mut names: Vec<(String, &'static CmdInfo)> = Vec::new();
            for i in table().values().filter(|i| visible(ctx, i)) {
                names.push((i.def.name.to_string(), i));
                for s in super::meta::subcommands(i.def.name) {
                    names.push((s.to_string(), i));
                }
            }
            let keep = |full: &str, i: &CmdInfo| -> bool {
                match &filter {
                    Filter::None => true,
                    Filter::Module => false,
                    Filter::Pattern(p) => glob_match(p, full.as_bytes(), true),
                    Filter::Cat(c) => match super::meta::acl_categories(full) {
                        Some(cats) => cats.contains(&c.as_str()),
                        None => i.def.acl.split_whitespace().any(|a| a == c),
                    },
                }
            };
            let names: Vec<String> = names
                .into_iter()
                .filter(|(full, i)| keep(full, i))
                .map(|(n, _)| n)
                .collect();
            let mut r = ctx.r();
            r.array(names.len());
            for n in names {
                r.bulk(n.as_bytes());
            }
        }
        "getkeys" | "getkeysandflags" => {
            if argc < 4 {
                return Err(Error::Arity(format!("command|{sub}")));
            }
            let rest = Args {
                buf: ctx.args.buf,
                ranges: &ctx.args.ranges[2..],
            };
            getkeys(ctx, &rest, sub == "getkeysandflags")?;
        }
        "help" => {
            let mut r = ctx.r();
            r.array(1);
            r.simple("COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are: COUNT DOCS GETKEYS GETKEYSANDFLAGS INFO LIST");
        }
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS: key specs first, the command's own key finder
/// when Redis would not trust them (INCOMPLETE or variable flags).
fn getkeys(ctx: &mut Ctx<'_>, rest: &Args<'_>, with_flags: bool) -> CmdResult {
    use super::meta::{entry_for, has_keys, keys_from_specs, KeysFromSpecs};
    let info = lookup(rest.get(0))
        .filter(|i| visible(ctx, i))
        .ok_or_else(|| err("Invalid command specified"))?;
    let entry = entry_for(rest);
    let (arity, nokeys_ok) = match &entry {
        Some((e, full)) => {
            // lookupCommand: a container command needs a known subcommand.
            if rest.len() > 1 && !full.contains('|') && !super::meta::subcommands(full).is_empty() {
                return Err(err("Invalid command specified"));
            }
            let flags: Vec<&str> = e
                .items()
                .get(2)
                .map(|f| f.items().iter().map(|x| x.as_str()).collect())
                .unwrap_or_default();
            if !has_keys(e) && !matches!(info.def.keys, Keys::NumKeys(_) | Keys::DestNumKeys(_)) {
                return Err(err("The command has no key arguments"));
            }
            (
                e.items()
                    .get(1)
                    .map(|a| a.as_int() as i32)
                    .unwrap_or(info.def.arity),
                flags.contains(&"no_mandatory_keys"),
            )
        }
        None => {
            if matches!(info.def.keys, Keys::None) {
                return Err(err("The command has no key arguments"));
            }
            (info.def.arity, false)
        }
    };
    let n = rest.len() as i32;
    if (arity > 0 && n != arity) || n < -arity {
        return Err(err("Invalid number of arguments specified for command"));
    }
    let var_flags = entry.as_ref().is_some_and(|(e, _)| {
        e.items().get(8).is_some_and(|s| {
            s.items().iter().any(|spec| {
                spec.get("flags")
                    .is_some_and(|f| f.items().iter().any(|x| x.as_str() == "variable_flags"))
            })
        })
    });
    let from_specs = match &entry {
        Some((e, _)) if !var_flags => keys_from_specs(e, rest),
        _ => KeysFromSpecs::Fallback,
    };
    let keys: Vec<(usize, Vec<&str>)> = match from_specs {
        KeysFromSpecs::Keys(k) => k,
        KeysFromSpecs::Fallback if info.def.name == "sort" || info.def.name == "sort_ro" => {
            super::meta::sort_keys(rest)
        }
        KeysFromSpecs::Fallback => {
            let write = info.flags & F_WRITE != 0;
            if let Keys::NumKeys(at) | Keys::DestNumKeys(at) = info.def.keys {
                // genericGetKeys: a numkeys outside 1..=remaining arguments finds no keys.
                let first = at + 1;
                let ok = parse_int_opt(rest.get(at.min(rest.len().saturating_sub(1))))
                    .is_some_and(|n| n >= 1 && at < rest.len() && n as usize <= rest.len() - first);
                if !ok {
                    return Err(err("Invalid arguments specified for command"));
                }
            }
            let get_opt = (3..rest.len()).any(|i| rest.get(i).eq_ignore_ascii_case(b"get"));
            let flags: Vec<&str> = match info.def.name {
                // setGetKeys: the flags depend on the GET option.
                "set" if get_opt => vec!["RW", "access", "update"],
                "set" => vec!["OW", "update"],
                _ if write => vec!["RW"],
                _ => vec!["RO"],
            };
            key_indexes(info.def, rest)
                .into_iter()
                .map(|i| (i, flags.clone()))
                .collect()
        }
    };
    if keys.is_empty() {
        if nokeys_ok {
            ctx.r().array(0);
            return Ok(());
        }
        return Err(err("Invalid arguments specified for command"));
    }
    let mut r = ctx.r();
    r.array(keys.len());
    for (i, flags) in keys {
        if with_flags {
            r.array(2);
            r.bulk(rest.get(i));
            r.set(flags.len());
            for f in flags {
                r.simple(f);
            }
        } else {
            r.bulk(rest.get(i));
        }
    }
    Ok(())
}

fn group_of(d: &CmdDef) -> &'static str {
    let a = d.acl;
    if a.contains("@string") {
        "string"
    } else if a.contains("@hash") {
        "hash"
    } else if a.contains("@list") {
        "list"
    } else if a.contains("@sortedset") {
        "sorted-set"
    } else if a.contains("@set") {
        "set"
    } else if a.contains("@pubsub") {
        "pubsub"
    } else if a.contains("@transaction") {
        "transactions"
    } else if a.contains("@bitmap") {
        "bitmap"
    } else if a.contains("@keyspace") {
        "generic"
    } else if a.contains("@connection") {
        "connection"
    } else {
        "server"
    }
}

pub fn info_text(node: &Node, sections: &[String]) -> String {
    let all = sections.iter().any(|s| s == "all" || s == "everything");
    let default = sections.is_empty() || sections.iter().any(|s| s == "default");
    let want = |s: &str| all || default || sections.iter().any(|x| x == s);
    let mut out = String::new();
    let uptime = node.started.elapsed().as_secs();
    let used = node.used_memory();
    let rss = read_rss();
    let mut sec = |name: &str, body: String| {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str("# ");
        out.push_str(name);
        out.push_str("\r\n");
        out.push_str(&body);
    };
    if want("server") {
        let s = &node.settings;
        sec(
            "Server",
            format!(
                "redis_version:{v}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:{mode}\r\nos:{os}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{pid}\r\nprocess_supervised:no\r\nrun_id:{rid}\r\ntcp_port:{port}\r\nserver_time_usec:{usec}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{days}\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:{lru}\r\nexecutable:/usr/local/bin/redis-server\r\nconfig_file:\r\nio_threads_active:0\r\n{flavor}",
                v = s.version,
                mode = if node.cluster.is_some() { "cluster" } else { "standalone" },
                os = std::env::consts::OS,
                pid = std::process::id(),
                rid = node.run_id,
                port = node.port,
                usec = crate::db::now_ms() * 1000,
                up = uptime,
                days = uptime / 86400,
                lru = (node.ks.now / 1000) & 0xFF_FFFF,
                flavor = if s.flavor == "valkey" { format!("server_name:valkey\r\nvalkey_version:{}\r\n", s.version) } else { String::new() },
            ),
        );
    }
    if want("clients") {
        let pubsub = node.clients.values().filter(|c| c.in_pubsub()).count();
        sec(
            "Clients",
            format!(
                "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\npubsub_clients:{}\r\nclients_in_timeout_table:{}\r\n",
                node.clients.len(),
                node.settings.maxclients,
                node.blocked_count,
                node.tracking.clients,
                pubsub,
                node.blocked_count
            ),
        );
    }
    if want("memory") {
        sec(
            "Memory",
            format!(
                "used_memory:{used}\r\nused_memory_human:{uh}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{rh}\r\nused_memory_peak:{used}\r\nused_memory_peak_human:{uh}\r\nused_memory_dataset:{used}\r\ntotal_system_memory:0\r\nmaxmemory:{max}\r\nmaxmemory_human:{mh}\r\nmaxmemory_policy:{pol}\r\nmem_fragmentation_ratio:1.00\r\nmem_allocator:libc\r\nlazyfree_pending_objects:0\r\n",
                uh = human(used),
                rh = human(rss),
                max = node.settings.maxmemory,
                mh = human(node.settings.maxmemory),
                pol = node.settings.policy.name(),
            ),
        );
    }
    if want("persistence") {
        sec(
            "Persistence",
            format!(
                "loading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_last_bgrewrite_status:ok\r\naof_last_write_status:ok\r\n",
                node.dirty, node.lastsave
            ),
        );
    }
    if want("stats") {
        let st = node.ks.stats;
        let pubsub_channels = node.channels.len();
        sec(
            "Stats",
            format!(
                "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\n{}expired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n{}migrate_cached_sockets:0\r\ntotal_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\ntotal_error_replies:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\n",
                node.total_connections,
                node.total_commands,
                node.net_in,
                node.net_out,
                node.rejected_connections,
                crate::replication::info_stats(node),
                st.expired_keys,
                st.evicted_keys,
                st.hits,
                st.misses,
                pubsub_channels,
                node.patterns.len(),
                crate::replication::info_fork_stats(node),
                node.tracking.table.len(),
                node.tracking.items,
                node.tracking.prefixes.len(),
            ),
        );
    }
    if want("replication") {
        sec("Replication", crate::replication::info_section(node));
    }
    if want("cpu") {
        let (u, s) = thread_cpu();
        sec(
            "CPU",
            format!(
                "used_cpu_sys:{s:.6}\r\nused_cpu_user:{u:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{s:.6}\r\nused_cpu_user_main_thread:{u:.6}\r\n"
            ),
        );
    }
    if all || sections.iter().any(|x| x == "modules") {
        sec("Modules", String::new());
    }
    if all || sections.iter().any(|x| x == "commandstats") {
        let mut body = String::new();
        let mut v: Vec<(&str, u64)> = table()
            .values()
            .map(|i| (i.def.name, node.cmd_calls.get(i.idx).copied().unwrap_or(0)))
            .filter(|(_, c)| *c > 0)
            .collect();
        v.sort();
        for (name, calls) in v {
            body.push_str(&format!(
                "cmdstat_{name}:calls={calls},usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0\r\n"
            ));
        }
        sec("Commandstats", body);
    }
    if all || sections.iter().any(|x| x == "errorstats") {
        sec("Errorstats", String::new());
    }
    if want("cluster") {
        sec(
            "Cluster",
            format!("cluster_enabled:{}\r\n", u8::from(node.cluster.is_some())),
        );
    }
    if want("keyspace") {
        let mut body = String::new();
        for (i, d) in node.ks.dbs.iter().enumerate() {
            if !d.map.is_empty() {
                body.push_str(&format!(
                    "db{}:keys={},expires={},avg_ttl=0\r\n",
                    i,
                    d.map.len(),
                    d.expires.len()
                ));
            }
        }
        sec("Keyspace", body);
    }
    out
}

fn human(n: u64) -> String {
    let f = n as f64;
    if f < 1024.0 {
        format!("{n}B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.2}K", f / 1024.0)
    } else if f < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", f / 1048576.0)
    } else {
        format!("{:.2}G", f / 1073741824.0)
    }
}

fn read_rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|x| x.parse::<u64>().ok())
        })
        .map(|p| p * 4096)
        .unwrap_or(0)
}

fn thread_cpu() -> (f64, f64) {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((u / 100.0, st / 100.0))
        })
        .unwrap_or((0.0, 0.0))
}

fn info(ctx: &mut Ctx<'_>) -> CmdResult {
    let secs: Vec<String> = (1..ctx.argc())
        .map(|i| String::from_utf8_lossy(ctx.arg(i)).to_ascii_lowercase())
        .collect();
    let s = info_text(ctx.node, &secs);
    ctx.r().verbatim(s.as_bytes());
    Ok(())
}

fn dbsize(ctx: &mut Ctx<'_>) -> CmdResult {
    let n = ctx.node.ks.dbs[ctx.db()].map.len();
    ctx.r().int(n as i64);
    Ok(())
}

fn flush_mode(ctx: &Ctx<'_>) -> CmdResult {
    if ctx.argc() > 2 {
        return Err(Error::Syntax);
    }
    if ctx.argc() == 2 && !ctx.arg_eq(1, "async") && !ctx.arg_eq(1, "sync") {
        return Err(Error::Syntax);
    }
    Ok(())
}

fn flushdb(ctx: &mut Ctx<'_>) -> CmdResult {
    flush_mode(ctx)?;
    let db = ctx.db();
    ctx.node.ks.dbs[db] = Default::default();
    ctx.node.touch_all_watched(Some(db));
    crate::tracking::on_flush(ctx.node);
    ctx.r().ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>) -> CmdResult {
    flush_mode(ctx)?;
    for d in ctx.node.ks.dbs.iter_mut() {
        *d = Default::default();
    }
    ctx.node.touch_all_watched(None);
    crate::tracking::on_flush(ctx.node);
    ctx.r().ok();
    Ok(())
}

fn time(ctx: &mut Ctx<'_>) -> CmdResult {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut r = ctx.r();
    r.array(2);
    r.bulk_int(d.as_secs() as i64);
    r.bulk_int(d.subsec_micros() as i64);
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>) -> CmdResult {
    let t = ctx.node.lastsave as i64;
    ctx.r().int(t);
    Ok(())
}

fn swapdb(ctx: &mut Ctx<'_>) -> CmdResult {
    let a = ctx.int(1).map_err(|_| err("invalid first DB index"))?;
    let b = ctx.int(2).map_err(|_| err("invalid second DB index"))?;
    let n = ctx.node.ks.dbs.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(err("DB index is out of range"));
    }
    ctx.node.ks.dbs.swap(a as usize, b as usize);
    ctx.node.touch_all_watched(Some(a as usize));
    ctx.node.touch_all_watched(Some(b as usize));
    ctx.r().ok();
    Ok(())
}

fn memory(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    match sub.as_str() {
        "usage" => {
            if ctx.argc() < 3 {
                return Err(Error::Arity("memory|usage".into()));
            }
            if ctx.argc() > 3 {
                if ctx.argc() != 5 || !ctx.arg_eq(3, "samples") {
                    return Err(Error::Syntax);
                }
                ctx.int(4)?;
            }
            let db = ctx.db();
            let key = ctx.arg(2);
            let n = ctx
                .node
                .ks
                .peek(db, key)
                .map(|e| e.val.mem_estimate() + key.len() + 40);
            match n {
                Some(n) => ctx.r().int(n as i64),
                None => ctx.r().null(),
            }
        }
        "stats" => return crate::monitor::memory_stats(ctx),
        "doctor" => return crate::monitor::memory_doctor(ctx),
        "malloc-stats" => ctx
            .r()
            .verbatim(b"Stats not supported for the current allocator"),
        "purge" => ctx.r().ok(),
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

fn slowlog(ctx: &mut Ctx<'_>) -> CmdResult {
    crate::monitor::slowlog(ctx)
}

fn commandlog(ctx: &mut Ctx<'_>) -> CmdResult {
    crate::monitor::commandlog(ctx)
}

fn latency(ctx: &mut Ctx<'_>) -> CmdResult {
    crate::monitor::latency(ctx)
}

fn role(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut r = ctx.r();
    r.array(3);
    r.bulk(b"master");
    r.int(0);
    r.array(0);
    Ok(())
}

fn wait(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.int(1)?;
    let t = ctx
        .int(2)
        .map_err(|_| err("timeout is not an integer or out of range"))?;
    if t < 0 {
        return Err(err("timeout is negative"));
    }
    ctx.r().int(0);
    Ok(())
}

fn config_params(node: &Node) -> Vec<(String, String)> {
    let s = &node.settings;
    let mut v = vec![
        ("maxmemory".to_string(), s.maxmemory.to_string()),
        ("maxmemory-policy".into(), s.policy.name().into()),
        ("maxmemory-samples".into(), s.maxmemory_samples.to_string()),
        ("lfu-log-factor".into(), node.ks.lfu_log_factor.to_string()),
        ("lfu-decay-time".into(), node.ks.lfu_decay_time.to_string()),
        (
            "requirepass".into(),
            s.requirepass
                .as_ref()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
        ),
        (
            "proto-max-bulk-len".into(),
            s.proto_max_bulk_len.to_string(),
        ),
        ("timeout".into(), s.timeout.to_string()),
        ("maxclients".into(), s.maxclients.to_string()),
        ("databases".into(), node.ks.dbs.len().to_string()),
        ("port".into(), node.port.to_string()),
        ("save".into(), String::new()),
        ("appendonly".into(), "no".into()),
        (
            "slowlog-log-slower-than".into(),
            node.mon.slower_than.to_string(),
        ),
        (
            "slowlog-max-len".into(),
            node.mon.slowlog_max_len.to_string(),
        ),
        (
            "latency-monitor-threshold".into(),
            node.mon.latency_threshold.to_string(),
        ),
        (
            "tracking-table-max-keys".into(),
            node.tracking.max_keys.to_string(),
        ),
        (
            "notify-keyspace-events".into(),
            crate::notify::flags_to_string(node.ks.notify_flags),
        ),
    ];
    if node.mon.commandlog {
        let m = &node.mon;
        v.extend([
            (
                "commandlog-execution-slower-than".into(),
                m.slower_than.to_string(),
            ),
            (
                "commandlog-slow-execution-max-len".into(),
                m.slowlog_max_len.to_string(),
            ),
            (
                "commandlog-request-larger-than".into(),
                m.large_request.threshold.to_string(),
            ),
            (
                "commandlog-large-request-max-len".into(),
                m.large_request.max_len.to_string(),
            ),
            (
                "commandlog-reply-larger-than".into(),
                m.large_reply.threshold.to_string(),
            ),
            (
                "commandlog-large-reply-max-len".into(),
                m.large_reply.max_len.to_string(),
            ),
        ]);
    }
    for (k, val) in &s.extra {
        if !v.iter().any(|(n, _)| n == k) {
            v.push((k.clone(), val.clone()));
        }
    }
    v
}

fn config(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    match sub.as_str() {
        "get" => {
            if ctx.argc() < 3 {
                return Err(Error::Arity("config|get".into()));
            }
            let params = config_params(ctx.node);
            let mut found: Vec<(String, String)> = Vec::new();
            for i in 2..ctx.argc() {
                let p = ctx.arg(i);
                for (k, v) in &params {
                    if glob_match(p, k.as_bytes(), true) && !found.iter().any(|(f, _)| f == k) {
                        found.push((k.clone(), v.clone()));
                    }
                }
            }
            let mut r = ctx.r();
            r.map(found.len());
            for (k, v) in found {
                r.bulk(k.as_bytes());
                r.bulk(v.as_bytes());
            }
        }
        "set" => {
            if ctx.argc() < 4 || !ctx.argc().is_multiple_of(2) {
                return Err(Error::Arity("config|set".into()));
            }
            for i in (2..ctx.argc()).step_by(2) {
                let k = String::from_utf8_lossy(ctx.arg(i)).into_owned();
                let v = String::from_utf8_lossy(ctx.arg(i + 1)).into_owned();
                crate::apply_param(ctx.node, &k, &v).map_err(|e| {
                    err(format!(
                        "CONFIG SET failed (possibly related to argument '{k}') - {e}"
                    ))
                })?;
            }
            ctx.r().ok();
        }
        "resetstat" => {
            ctx.node.ks.stats = Default::default();
            ctx.node.cmd_calls.iter_mut().for_each(|c| *c = 0);
            ctx.r().ok();
        }
        "rewrite" => ctx.r().ok(),
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

fn debug(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    match sub.as_str() {
        "sleep" => {
            // Blocks the node, as in Redis (a restricted command: SLOWLOG/LATENCY tests).
            let secs = ctx.float(2)?;
            if secs > 0.0 {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
            }
            ctx.r().ok()
        }
        "set-active-expire" => ctx.r().ok(),
        "object" => {
            let db = ctx.db();
            let key = ctx.arg(2);
            let e = ctx.node.ks.peek(db, key).map(|e| e.val.type_name());
            match e {
                Some(_) => ctx.r().simple("Value at:0x0 refcount:1 encoding:raw serializedlength:0 lru:0 lru_seconds_idle:0"),
                None => return Err(Error::NoSuchKey),
            }
        }
        _ => ctx.r().ok(),
    }
    Ok(())
}

fn save(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.node.lastsave = crate::db::now_ms() / 1000;
    ctx.node.dirty = 0;
    ctx.r().ok();
    Ok(())
}

fn bgsave(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.node.lastsave = crate::db::now_ms() / 1000;
    ctx.r().simple("Background saving started");
    Ok(())
}

fn bgrewriteaof(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.r()
        .simple("Background append only file rewriting started");
    Ok(())
}

fn shutdown(ctx: &mut Ctx<'_>) -> CmdResult {
    Err(err("Errors trying to SHUTDOWN. Check logs."))?;
    let _ = ctx;
    Ok(())
}

#[allow(dead_code)]
fn _unused(_v: &Value) {}
