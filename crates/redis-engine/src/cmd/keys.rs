//! Generic key commands and expiry.

use super::server::cmd;
use super::*;
use crate::db::Value;
use crate::notify as N;

const K1: Keys = Keys::Range(1, 1, 1);
const K12: Keys = Keys::Range(1, 2, 1);
const KALL: Keys = Keys::Range(1, -1, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!("del", -2, "write", "@keyspace @write @slow", KALL, del),
    cmd!(
        "unlink",
        -2,
        "write fast",
        "@keyspace @write @fast",
        KALL,
        del
    ),
    cmd!(
        "exists",
        -2,
        "readonly fast",
        "@keyspace @read @fast",
        KALL,
        exists
    ),
    cmd!(
        "type",
        2,
        "readonly fast",
        "@keyspace @read @fast",
        K1,
        type_
    ),
    cmd!("rename", 3, "write", "@keyspace @write @slow", K12, rename),
    cmd!(
        "renamenx",
        3,
        "write fast",
        "@keyspace @write @fast",
        K12,
        renamenx
    ),
    cmd!(
        "copy",
        -3,
        "write denyoom",
        "@keyspace @write @slow",
        K12,
        copy
    ),
    cmd!("move", 3, "write fast", "@keyspace @write @fast", K1, move_),
    cmd!(
        "keys",
        2,
        "readonly",
        "@keyspace @read @slow @dangerous",
        Keys::None,
        keys
    ),
    cmd!(
        "scan",
        -2,
        "readonly",
        "@keyspace @read @slow",
        Keys::None,
        scan
    ),
    cmd!(
        "randomkey",
        1,
        "readonly",
        "@keyspace @read @slow",
        Keys::None,
        randomkey
    ),
    cmd!(
        "touch",
        -2,
        "readonly fast",
        "@keyspace @read @fast",
        KALL,
        touch
    ),
    cmd!(
        "expire",
        -3,
        "write fast",
        "@keyspace @write @fast",
        K1,
        expire
    ),
    cmd!(
        "pexpire",
        -3,
        "write fast",
        "@keyspace @write @fast",
        K1,
        pexpire
    ),
    cmd!(
        "expireat",
        -3,
        "write fast",
        "@keyspace @write @fast",
        K1,
        expireat
    ),
    cmd!(
        "pexpireat",
        -3,
        "write fast",
        "@keyspace @write @fast",
        K1,
        pexpireat
    ),
    cmd!("ttl", 2, "readonly fast", "@keyspace @read @fast", K1, ttl),
    cmd!(
        "pttl",
        2,
        "readonly fast",
        "@keyspace @read @fast",
        K1,
        pttl
    ),
    cmd!(
        "expiretime",
        2,
        "readonly fast",
        "@keyspace @read @fast",
        K1,
        expiretime
    ),
    cmd!(
        "pexpiretime",
        2,
        "readonly fast",
        "@keyspace @read @fast",
        K1,
        pexpiretime
    ),
    cmd!(
        "persist",
        2,
        "write fast",
        "@keyspace @write @fast",
        K1,
        persist
    ),
    cmd!(
        "object",
        -2,
        "readonly",
        "@keyspace @read @slow",
        Keys::Range(2, 2, 1),
        object
    ),
    cmd!(
        "sort",
        -2,
        "write denyoom",
        "@write @set @sortedset @list @slow @dangerous",
        K1,
        sort
    ),
    cmd!(
        "sort_ro",
        -2,
        "readonly",
        "@read @set @sortedset @list @slow @dangerous",
        K1,
        sort_ro
    ),
];

fn del(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for i in 1..ctx.argc() {
        if ctx.node.ks.del(db, ctx.args.get(i)) {
            n += 1;
            let k = ctx.args.get(i);
            ctx.notify(N::GENERIC, "del", k);
        }
    }
    if n == 0 {
        ctx.no_dirty = true;
    }
    ctx.r().int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for i in 1..ctx.argc() {
        if ctx.node.ks.get(db, ctx.args.get(i)).is_some() {
            n += 1;
        }
    }
    ctx.r().int(n);
    Ok(())
}

fn touch(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for i in 1..ctx.argc() {
        if ctx.node.ks.get_w(db, ctx.args.get(i)).is_some() {
            n += 1;
        }
    }
    ctx.r().int(n);
    Ok(())
}

fn type_(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let t = ctx
        .node
        .ks
        .peek(db, ctx.args.get(1))
        .map(|e| e.val.type_name())
        .unwrap_or("none");
    ctx.r().simple(t);
    Ok(())
}

fn rename_generic(ctx: &mut Ctx<'_>, nx: bool) -> CmdResult {
    let db = ctx.db();
    let (src, dst) = (ctx.arg(1), ctx.arg(2));
    if !ctx.node.ks.exists(db, src) {
        return Err(Error::NoSuchKey);
    }
    if src == dst {
        if nx {
            ctx.r().int(0);
        } else {
            ctx.r().ok();
        }
        ctx.no_dirty = true;
        return Ok(());
    }
    if nx && ctx.node.ks.exists(db, dst) {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    }
    if let Some((e, t)) = ctx.node.ks.take(db, src) {
        ctx.node.ks.del(db, dst);
        ctx.node.ks.set(db, dst, e.val, false);
        if let Some(t) = t {
            ctx.node.ks.set_expire(db, dst, t);
        }
        ctx.notify(N::GENERIC, "rename_from", src);
        ctx.notify(N::GENERIC, "rename_to", dst);
    }
    if nx {
        ctx.r().int(1);
    } else {
        ctx.r().ok();
    }
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>) -> CmdResult {
    rename_generic(ctx, false)
}

fn renamenx(ctx: &mut Ctx<'_>) -> CmdResult {
    rename_generic(ctx, true)
}

fn copy(ctx: &mut Ctx<'_>) -> CmdResult {
    let src_db = ctx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < ctx.argc() {
        if ctx.arg_eq(i, "replace") {
            replace = true;
        } else if ctx.arg_eq(i, "db") && i + 1 < ctx.argc() {
            let d = ctx.int(i + 1)?;
            if d < 0 || d as usize >= ctx.node.ks.dbs.len() {
                return Err(err("DB index is out of range"));
            }
            dst_db = d as usize;
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    let (src, dst) = (ctx.arg(1), ctx.arg(2));
    if src_db == dst_db && src == dst {
        return Err(err("source and destination objects are the same"));
    }
    let Some(e) = ctx.node.ks.peek(src_db, src) else {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    };
    let v = e.val.deep_clone();
    let t = ctx.node.ks.ttl(src_db, src);
    if ctx.node.ks.exists(dst_db, dst) {
        if !replace {
            ctx.no_dirty = true;
            ctx.r().int(0);
            return Ok(());
        }
        ctx.node.ks.del(dst_db, dst);
    }
    ctx.node.ks.set(dst_db, dst, v, false);
    if let Some(t) = t {
        ctx.node.ks.set_expire(dst_db, dst, t);
    }
    if dst_db != src_db {
        ctx.node.touch_key(dst_db, dst);
    }
    crate::notify::notify(ctx.node, ctx.out, N::GENERIC, "copy_to", dst_db, dst);
    ctx.r().int(1);
    Ok(())
}

fn move_(ctx: &mut Ctx<'_>) -> CmdResult {
    let src_db = ctx.db();
    let d = ctx
        .int(2)
        .map_err(|_| err("value is not an integer or out of range"))?;
    if d < 0 || d as usize >= ctx.node.ks.dbs.len() {
        return Err(err("DB index is out of range"));
    }
    let dst_db = d as usize;
    if dst_db == src_db {
        return Err(err("source and destination objects are the same"));
    }
    let key = ctx.arg(1);
    if !ctx.node.ks.exists(src_db, key) || ctx.node.ks.exists(dst_db, key) {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    }
    if let Some((e, t)) = ctx.node.ks.take(src_db, key) {
        ctx.node.ks.set(dst_db, key, e.val, false);
        if let Some(t) = t {
            ctx.node.ks.set_expire(dst_db, key, t);
        }
        crate::notify::notify(ctx.node, ctx.out, N::GENERIC, "move_from", src_db, key);
        crate::notify::notify(ctx.node, ctx.out, N::GENERIC, "move_to", dst_db, key);
    }
    ctx.node.touch_key(dst_db, key);
    ctx.r().int(1);
    Ok(())
}

fn live(ks: &crate::db::Keyspace, db: usize, k: &[u8]) -> bool {
    let d = &ks.dbs[db];
    d.expires.is_empty() || d.expires.get(k).is_none_or(|&t| t > ks.now)
}

fn keys(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let pat = ctx.arg(1);
    let all = pat == b"*";
    let ks = &ctx.node.ks;
    let list: Vec<&crate::keymap::Key> = ks.dbs[db]
        .map
        .keys()
        .filter(|k| (all || glob_match(pat, k, false)) && live(ks, db, k))
        .collect();
    let resp3 = ctx.client.resp3.get();
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(list.len());
    for k in list {
        r.bulk(k);
    }
    Ok(())
}

/// Parse a SCAN cursor ("ERR invalid cursor").
pub fn parse_cursor(s: &[u8]) -> Result<u64, Error> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| err("invalid cursor"))
}

/// Cursor iteration over an index-ordered collection of `len` items: visits indices
/// downward from the cursor so swap-removal never hides an element present all along.
/// Returns (next cursor, indices to visit).
pub fn scan_indices(cursor: u64, len: usize, count: usize) -> (u64, std::ops::Range<usize>) {
    let pos = if cursor == 0 {
        len
    } else {
        (cursor as usize).min(len)
    };
    let start = pos.saturating_sub(count);
    let next = start as u64;
    (next, start..pos)
}

/// HSCAN/SSCAN/ZSCAN look the key up before reading their options (t_hash.c
/// hscanCommand): a missing key answers the empty scan whatever follows the cursor,
/// a key of another type WRONGTYPE. True when the reply is written.
pub fn scan_key_answered(ctx: &mut Ctx<'_>, type_name: &str) -> Result<bool, Error> {
    let db = ctx.db();
    // The one read lookup (hit/miss counted here; the scan itself then uses `get_w`).
    match ctx.node.ks.get(db, ctx.args.get(1)) {
        Some(e) if e.val.type_name() != type_name => Err(Error::WrongType),
        Some(_) => Ok(false),
        None => {
            let mut r = ctx.r();
            r.array(2);
            r.bulk(b"0");
            r.array(0);
            Ok(true)
        }
    }
}

pub struct ScanOpts {
    pub pat: Option<Vec<u8>>,
    pub count: usize,
    pub ty: Option<String>,
    pub novalues: bool,
    /// ZSCAN ... NOSCORES (Valkey 8.0): members only.
    pub noscores: bool,
}

pub fn parse_scan_opts(ctx: &Ctx<'_>, from: usize, allow_type: bool) -> Result<ScanOpts, Error> {
    let mut o = ScanOpts {
        pat: None,
        count: 10,
        ty: None,
        novalues: false,
        noscores: false,
    };
    // NOVALUES / NOSCORES exist from Valkey 8.0 (db.c scanGenericCommand); elsewhere
    // they stay the syntax error Redis 7.0 answers.
    let valkey8 = ctx.node.settings.valkey_at_least(8, 0);
    let mut i = from;
    while i < ctx.argc() {
        let more = i + 1 < ctx.argc();
        if ctx.arg_eq(i, "match") && more {
            let p = ctx.arg(i + 1);
            o.pat = if p == b"*" { None } else { Some(p.to_vec()) };
            i += 2;
        } else if ctx.arg_eq(i, "count") && more {
            let c = ctx.int(i + 1)?;
            if c < 1 {
                return Err(Error::Syntax);
            }
            o.count = c as usize;
            i += 2;
        } else if ctx.arg_eq(i, "type") && more && allow_type {
            o.ty = Some(String::from_utf8_lossy(ctx.arg(i + 1)).to_ascii_lowercase());
            i += 2;
        } else if valkey8 && ctx.arg_eq(i, "novalues") {
            if ctx.def.name != "hscan" {
                return Err(err("NOVALUES option can only be used in HSCAN"));
            }
            o.novalues = true;
            i += 1;
        } else if valkey8 && ctx.arg_eq(i, "noscores") {
            if ctx.def.name != "zscan" {
                return Err(err("NOSCORES option can only be used in ZSCAN"));
            }
            o.noscores = true;
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(o)
}

fn scan(ctx: &mut Ctx<'_>) -> CmdResult {
    let cursor = parse_cursor(ctx.arg(1))?;
    let o = parse_scan_opts(ctx, 2, true)?;
    let db = ctx.db();
    let ks = &mut ctx.node.ks;
    let len = ks.dbs[db].map.len();
    let (next, range) = scan_indices(cursor, len, o.count);
    let mut found: Vec<Blob> = Vec::new();
    for i in range.rev() {
        let Some((k, e)) = ks.dbs[db].map.get_index(i) else {
            continue;
        };
        if let Some(p) = &o.pat {
            if !glob_match(p, k, false) {
                continue;
            }
        }
        if let Some(t) = &o.ty {
            if e.val.type_name() != t {
                continue;
            }
        }
        if !live(ks, db, k) {
            continue;
        }
        found.push(Blob::from(&k[..]));
    }
    let resp3 = ctx.client.resp3.get();
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(2);
    r.bulk(next.to_string().as_bytes());
    r.array(found.len());
    for k in found {
        r.bulk(&k);
    }
    Ok(())
}

fn randomkey(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let ks = &mut ctx.node.ks;
    let mut found = None;
    for _ in 0..100 {
        let n = ks.dbs[db].map.len();
        if n == 0 {
            break;
        }
        let i = ks.rng.below(n);
        let k = match ks.dbs[db].map.get_index(i) {
            Some((k, _)) => k.clone(),
            None => break,
        };
        if ks.expire_if_needed(db, &k) {
            continue;
        }
        found = Some(k);
        break;
    }
    match found {
        Some(k) => ctx.r().bulk(&k),
        None => ctx.r().null(),
    }
    Ok(())
}

fn expire_generic(ctx: &mut Ctx<'_>, ms: bool, abs: bool, name: &str) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for i in 3..ctx.argc() {
        let a = ctx.arg(i).to_ascii_lowercase();
        match a.as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                return Err(err(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(ctx.arg(i))
                )))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(err("GT and LT options at the same time are not compatible"));
    }
    let v = ctx.int(2)?;
    let inv = || err(format!("invalid expire time in '{name}' command"));
    let now = ctx.now() as i64;
    let mut when = if ms {
        v
    } else {
        v.checked_mul(1000).ok_or_else(inv)?
    };
    if !abs {
        when = when.checked_add(now).ok_or_else(inv)?;
    }
    let db = ctx.db();
    let key = ctx.arg(1);
    if !ctx.node.ks.exists(db, key) {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    }
    let cur = ctx.node.ks.ttl(db, key);
    let ok = match cur {
        None => !(xx || gt),
        Some(c) => !(nx || (gt && when <= c as i64) || (lt && when >= c as i64)),
    };
    if !ok {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    }
    // Redis: "del" before the reply, "expire" after it.
    if when <= now {
        ctx.node.ks.del(db, key);
        ctx.notify(N::GENERIC, "del", key);
        ctx.r().int(1);
    } else {
        ctx.node.ks.set_expire(db, key, when as u64);
        ctx.r().int(1);
        ctx.notify(N::GENERIC, "expire", key);
    }
    Ok(())
}

fn expire(ctx: &mut Ctx<'_>) -> CmdResult {
    expire_generic(ctx, false, false, "expire")
}
fn pexpire(ctx: &mut Ctx<'_>) -> CmdResult {
    expire_generic(ctx, true, false, "pexpire")
}
fn expireat(ctx: &mut Ctx<'_>) -> CmdResult {
    expire_generic(ctx, false, true, "expireat")
}
fn pexpireat(ctx: &mut Ctx<'_>) -> CmdResult {
    expire_generic(ctx, true, true, "pexpireat")
}

fn ttl_generic(ctx: &mut Ctx<'_>, ms: bool, abs: bool) -> CmdResult {
    let db = ctx.db();
    let key = ctx.arg(1);
    let now = ctx.now();
    let v = if ctx.node.ks.peek(db, key).is_none() {
        -2
    } else {
        match ctx.node.ks.ttl(db, key) {
            None => -1,
            Some(t) => {
                if abs {
                    if ms {
                        t as i64
                    } else {
                        ((t + 500) / 1000) as i64
                    }
                } else {
                    let left = t.saturating_sub(now) as i64;
                    if ms {
                        left
                    } else {
                        (left + 500) / 1000
                    }
                }
            }
        }
    };
    ctx.r().int(v);
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>) -> CmdResult {
    ttl_generic(ctx, false, false)
}
fn pttl(ctx: &mut Ctx<'_>) -> CmdResult {
    ttl_generic(ctx, true, false)
}
fn expiretime(ctx: &mut Ctx<'_>) -> CmdResult {
    ttl_generic(ctx, false, true)
}
fn pexpiretime(ctx: &mut Ctx<'_>) -> CmdResult {
    ttl_generic(ctx, true, true)
}

fn persist(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let key = ctx.arg(1);
    let n = ctx.node.ks.exists(db, key) && ctx.node.ks.persist(db, key);
    if !n {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::GENERIC, "persist", key);
    }
    ctx.r().int(n as i64);
    Ok(())
}

pub fn encoding(v: &Value) -> &'static str {
    match v {
        Value::Str(s) => {
            if s.len() <= 20 && parse_int_opt(s).is_some() {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        Value::List(l) => {
            if l.len() <= 128 && l.iter().all(|e| e.len() <= 64) {
                "listpack"
            } else {
                "quicklist"
            }
        }
        Value::Hash(h) => {
            if h.len() <= 128 && h.iter().all(|(k, v)| k.len() <= 64 && v.len() <= 64) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Set(s) => {
            if s.len() <= 512 && s.iter().all(|m| parse_int_opt(m).is_some()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            if z.len() <= 128 && z.dict.keys().all(|m| m.len() <= 64) {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Stream(_) => "stream",
    }
}

fn object(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    if sub == "help" {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "FREQ <key>",
            "IDLETIME <key>",
            "REFCOUNT <key>",
            "HELP",
        ];
        ctx.r().lines(&lines[..]);
        return Ok(());
    }
    if !matches!(sub.as_str(), "encoding" | "freq" | "idletime" | "refcount") {
        return Err(ctx.unknown_sub());
    }
    if ctx.argc() != 3 {
        return Err(Error::Arity(format!("object|{sub}")));
    }
    let db = ctx.db();
    let lfu = ctx.node.ks.policy.is_lfu();
    let key = ctx.arg(2);
    let Some(e) = ctx.node.ks.peek(db, key) else {
        ctx.r().null();
        return Ok(());
    };
    let lru = e.lru;
    let enc = encoding(&e.val);
    match sub.as_str() {
        "encoding" => ctx.r().bulk(enc.as_bytes()),
        "refcount" => ctx.r().int(1),
        "idletime" => {
            if lfu {
                return Err(err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            let s = ctx.node.ks.idle_secs(lru);
            ctx.r().int(s as i64);
        }
        _ => {
            if !lfu {
                return Err(err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
            }
            let f = ctx.node.ks.lfu_freq(lru);
            ctx.r().int(f as i64);
        }
    }
    Ok(())
}

fn sort(ctx: &mut Ctx<'_>) -> CmdResult {
    sort_generic(ctx, false)
}

fn sort_ro(ctx: &mut Ctx<'_>) -> CmdResult {
    sort_generic(ctx, true)
}

fn lookup_pattern(ctx: &mut Ctx<'_>, pat: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    if pat == b"#" {
        return Some(subst.to_vec());
    }
    let star = pat.iter().position(|&c| c == b'*')?;
    let (kpat, field) = match pat.windows(2).position(|w| w == b"->") {
        Some(p) if p > star && p + 2 < pat.len() => (&pat[..p], Some(&pat[p + 2..])),
        _ => (pat, None),
    };
    let mut key = Vec::with_capacity(kpat.len() + subst.len());
    key.extend_from_slice(&kpat[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(&kpat[star + 1..]);
    let db = ctx.db();
    let e = ctx.node.ks.peek(db, &key)?;
    match (&e.val, field) {
        (Value::Str(s), None) => Some(s.to_vec()),
        (Value::Hash(h), Some(f)) => h.get(f).map(|v| v.to_vec()),
        _ => None,
    }
}

fn sort_generic(ctx: &mut Ctx<'_>, ro: bool) -> CmdResult {
    let mut desc = false;
    let mut alpha = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut by: Option<Vec<u8>> = None;
    let mut gets: Vec<Vec<u8>> = Vec::new();
    let mut store: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < ctx.argc() {
        let left = ctx.argc() - i - 1;
        if ctx.arg_eq(i, "asc") {
            desc = false;
        } else if ctx.arg_eq(i, "desc") {
            desc = true;
        } else if ctx.arg_eq(i, "alpha") {
            alpha = true;
        } else if ctx.arg_eq(i, "limit") && left >= 2 {
            limit = Some((ctx.int(i + 1)?, ctx.int(i + 2)?));
            i += 2;
        } else if ctx.arg_eq(i, "store") && left >= 1 && !ro {
            store = Some(ctx.arg(i + 1).to_vec());
            i += 1;
        } else if ctx.arg_eq(i, "by") && left >= 1 {
            by = Some(ctx.arg(i + 1).to_vec());
            i += 1;
        } else if ctx.arg_eq(i, "get") && left >= 1 {
            gets.push(ctx.arg(i + 1).to_vec());
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    let db = ctx.db();
    let key = ctx.arg(1);
    let items: Vec<Vec<u8>> = match ctx.node.ks.get(db, key) {
        None => vec![],
        Some(e) => match &e.val {
            Value::List(l) => l.iter().map(|v| v.to_vec()).collect(),
            Value::Set(s) => s.iter().map(|v| v.to_vec()).collect(),
            Value::ZSet(z) => z.tree.iter().map(|(_, m)| m.to_vec()).collect(),
            _ => return Err(Error::WrongType),
        },
    };
    let dontsort = by.as_ref().is_some_and(|b| !b.contains(&b'*'));
    let mut keyed: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(items.len());
    for it in items {
        let k = match &by {
            Some(b) if !dontsort => lookup_pattern(ctx, b, &it),
            _ => Some(it.clone()),
        };
        keyed.push((it, k));
    }
    if !dontsort {
        let mut scored: Vec<(Vec<u8>, Option<Vec<u8>>, f64)> = Vec::with_capacity(keyed.len());
        for (it, k) in keyed {
            let s = if alpha {
                0.0
            } else {
                match &k {
                    Some(v) => parse_float_opt(v)
                        .ok_or_else(|| err("One or more scores can't be converted into double"))?,
                    None => 0.0,
                }
            };
            scored.push((it, k, s));
        }
        scored.sort_by(|a, b| {
            let o = if alpha {
                a.1.cmp(&b.1)
            } else {
                a.2.partial_cmp(&b.2)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.0.cmp(&b.0))
            };
            if desc {
                o.reverse()
            } else {
                o
            }
        });
        keyed = scored.into_iter().map(|(a, b, _)| (a, b)).collect();
    }
    let n = keyed.len() as i64;
    let (start, count) = limit.unwrap_or((0, -1));
    let start = start.max(0).min(n);
    let end = if count < 0 { n } else { (start + count).min(n) };
    let slice = &keyed[start as usize..end.max(start) as usize];
    let mut outv: Vec<Option<Vec<u8>>> = Vec::new();
    for (it, _) in slice {
        if gets.is_empty() {
            outv.push(Some(it.clone()));
        } else {
            for g in gets.clone() {
                outv.push(lookup_pattern(ctx, &g, it));
            }
        }
    }
    if let Some(dst) = store {
        let len = outv.len();
        if len == 0 {
            if ctx.node.ks.del(db, &dst) {
                ctx.notify(N::GENERIC, "del", &dst);
            }
        } else {
            let l: std::collections::VecDeque<Blob> = outv
                .into_iter()
                .map(|v| v.unwrap_or_default().into())
                .collect();
            ctx.node.ks.set(db, &dst, Value::List(Box::new(l)), false);
            ctx.notify(N::LIST, "sortstore", &dst);
        }
        ctx.node.touch_key(db, &dst);
        ctx.r().int(len as i64);
        return Ok(());
    }
    let mut r = ctx.r();
    r.array(outv.len());
    for v in outv {
        match v {
            Some(v) => r.bulk(&v),
            None => r.null(),
        }
    }
    Ok(())
}
