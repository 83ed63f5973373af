//! Hash commands.

use super::keys::{parse_cursor, parse_scan_opts, scan_indices};
use super::server::cmd;
use super::*;
use crate::db::HMap;
use crate::notify as N;

const K1: Keys = Keys::Range(1, 1, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "hset",
        -4,
        "write denyoom fast",
        "@write @hash @fast",
        K1,
        hset
    ),
    cmd!(
        "hmset",
        -4,
        "write denyoom fast",
        "@write @hash @fast",
        K1,
        hmset
    ),
    cmd!(
        "hsetnx",
        4,
        "write denyoom fast",
        "@write @hash @fast",
        K1,
        hsetnx
    ),
    cmd!("hget", 3, "readonly fast", "@read @hash @fast", K1, hget),
    cmd!("hmget", -3, "readonly fast", "@read @hash @fast", K1, hmget),
    cmd!("hdel", -3, "write fast", "@write @hash @fast", K1, hdel),
    cmd!("hlen", 2, "readonly fast", "@read @hash @fast", K1, hlen),
    cmd!(
        "hstrlen",
        3,
        "readonly fast",
        "@read @hash @fast",
        K1,
        hstrlen
    ),
    cmd!(
        "hexists",
        3,
        "readonly fast",
        "@read @hash @fast",
        K1,
        hexists
    ),
    cmd!("hkeys", 2, "readonly", "@read @hash @slow", K1, hkeys),
    cmd!("hvals", 2, "readonly", "@read @hash @slow", K1, hvals),
    cmd!("hgetall", 2, "readonly", "@read @hash @slow", K1, hgetall),
    cmd!(
        "hincrby",
        4,
        "write denyoom fast",
        "@write @hash @fast",
        K1,
        hincrby
    ),
    cmd!(
        "hincrbyfloat",
        4,
        "write denyoom fast",
        "@write @hash @fast",
        K1,
        hincrbyfloat
    ),
    cmd!(
        "hrandfield",
        -2,
        "readonly",
        "@read @hash @slow",
        K1,
        hrandfield
    ),
    cmd!("hscan", -3, "readonly", "@read @hash @slow", K1, hscan),
];

/// Remove keeping order for small (listpack-like) hashes.
pub fn hremove(h: &mut HMap, f: &[u8]) -> bool {
    if h.len() <= 128 {
        h.shift_remove(f).is_some()
    } else {
        h.swap_remove(f).is_some()
    }
}

fn hset_generic(ctx: &mut Ctx<'_>, mset: bool) -> CmdResult {
    if !ctx.argc().is_multiple_of(2) {
        return Err(ctx.arity_err());
    }
    let db = ctx.db();
    let key = ctx.args.get(1);
    let resp3 = ctx.client.resp3.get();
    let h = typed_create!(ctx.node.ks, db, key, Hash);
    let mut added = 0;
    for i in (2..ctx.args.len()).step_by(2) {
        let (f, v) = (ctx.args.get(i), ctx.args.get(i + 1));
        match h.get_mut(f) {
            Some(old) => *old = v.into(),
            None => {
                h.insert(f.into(), v.into());
                added += 1;
            }
        }
    }
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    if mset {
        r.ok();
    } else {
        r.int(added);
    }
    // Redis notifies after the reply.
    crate::notify::notify(ctx.node, ctx.out, N::HASH, "hset", db, key);
    Ok(())
}

fn hset(ctx: &mut Ctx<'_>) -> CmdResult {
    hset_generic(ctx, false)
}

fn hmset(ctx: &mut Ctx<'_>) -> CmdResult {
    hset_generic(ctx, true)
}

fn hsetnx(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let (key, f, v) = (ctx.arg(1), ctx.arg(2), ctx.arg(3));
    let h = typed_create!(ctx.node.ks, db, key, Hash);
    let n = if h.contains_key(f) {
        0
    } else {
        h.insert(f.into(), v.into());
        1
    };
    if n == 0 {
        ctx.no_dirty = true;
    }
    ctx.r().int(n);
    if n != 0 {
        ctx.notify(N::HASH, "hset", key);
    }
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let (key, f) = (ctx.args.get(1), ctx.args.get(2));
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match typed!(ctx.node.ks, db, key, Hash, get).and_then(|h| h.get(f)) {
        Some(v) => r.bulk(v),
        None => r.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let key = ctx.args.get(1);
    let h = typed!(ctx.node.ks, db, key, Hash, get);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(ctx.args.len() - 2);
    for i in 2..ctx.args.len() {
        match h.as_ref().and_then(|h| h.get(ctx.args.get(i))) {
            Some(v) => r.bulk(v),
            None => r.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let key = ctx.args.get(1);
    let mut n = 0;
    if let Some(h) = typed!(ctx.node.ks, db, key, Hash, get_w) {
        for i in 2..ctx.args.len() {
            if hremove(h, ctx.args.get(i)) {
                n += 1;
            }
        }
    }
    if n == 0 {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::HASH, "hdel", key);
        ctx.drop_if_empty_notify(key);
    }
    ctx.r().int(n);
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let n = typed!(ctx.node.ks, db, ctx.args.get(1), Hash, get)
        .map(|h| h.len())
        .unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let f = ctx.args.get(2);
    let n = typed!(ctx.node.ks, db, ctx.args.get(1), Hash, get)
        .and_then(|h| h.get(f))
        .map(|v| v.len())
        .unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let f = ctx.args.get(2);
    let n = typed!(ctx.node.ks, db, ctx.args.get(1), Hash, get).is_some_and(|h| h.contains_key(f));
    ctx.r().int(n as i64);
    Ok(())
}

fn hall(ctx: &mut Ctx<'_>, keys: bool, vals: bool) -> CmdResult {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let h = typed!(ctx.node.ks, db, ctx.args.get(1), Hash, get);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let Some(h) = h else {
        if keys && vals {
            r.map(0);
        } else {
            r.array(0);
        }
        return Ok(());
    };
    if keys && vals {
        r.map(h.len());
    } else {
        r.array(h.len());
    }
    for (k, v) in h.iter() {
        if keys {
            r.bulk(k);
        }
        if vals {
            r.bulk(v);
        }
    }
    Ok(())
}

fn hkeys(ctx: &mut Ctx<'_>) -> CmdResult {
    hall(ctx, true, false)
}
fn hvals(ctx: &mut Ctx<'_>) -> CmdResult {
    hall(ctx, false, true)
}
fn hgetall(ctx: &mut Ctx<'_>) -> CmdResult {
    hall(ctx, true, true)
}

fn hincrby(ctx: &mut Ctx<'_>) -> CmdResult {
    let by = ctx.int(3)?;
    let db = ctx.db();
    let (key, f) = (ctx.arg(1), ctx.arg(2));
    let h = typed_create!(ctx.node.ks, db, key, Hash);
    let cur = match h.get(f) {
        Some(v) => parse_int_opt(v).ok_or_else(|| err("hash value is not an integer"))?,
        None => 0,
    };
    let n = cur.checked_add(by).ok_or(Error::Overflow)?;
    h.insert(f.into(), n.to_string().into_bytes().into());
    ctx.r().int(n);
    ctx.notify(N::HASH, "hincrby", key);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>) -> CmdResult {
    let by = ctx.float(3)?;
    let db = ctx.db();
    let (key, f) = (ctx.arg(1), ctx.arg(2));
    let h = typed_create!(ctx.node.ks, db, key, Hash);
    let cur = match h.get(f) {
        Some(v) => parse_float_opt(v).ok_or_else(|| err("hash value is not a float"))?,
        None => 0.0,
    };
    let n = cur + by;
    if !n.is_finite() {
        ctx.node.ks.drop_if_empty(db, key);
        return Err(err("increment would produce NaN or Infinity"));
    }
    let s = super::strings::fmt_human(n);
    h.insert(f.into(), s.as_bytes().into());
    ctx.r().bulk(s.as_bytes());
    ctx.notify(N::HASH, "hincrbyfloat", key);
    Ok(())
}

/// Cap on negative-count random replies (elements with repetition).
pub const MAX_RAND_REPEAT: usize = 16 << 20;

/// Shared by HRANDFIELD/SRANDMEMBER/ZRANDMEMBER: pick indices per Redis's count rules.
pub fn rand_indices(rng: &mut crate::db::Rng, len: usize, count: i64) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    if count >= 0 {
        let c = (count as usize).min(len);
        if c == len {
            return (0..len).collect();
        }
        // Partial Fisher-Yates over indices.
        let mut idx: Vec<usize> = (0..len).collect();
        for i in 0..c {
            let j = i + rng.below(len - i);
            idx.swap(i, j);
        }
        idx.truncate(c);
        idx
    } else {
        // Bounded (Redis would stream an unbounded reply until the output limit kills it).
        let c = (count.unsigned_abs() as usize).min(MAX_RAND_REPEAT);
        (0..c).map(|_| rng.below(len)).collect()
    }
}

fn hrandfield(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut count = None;
    let mut withvalues = false;
    if ctx.argc() >= 3 {
        let c = ctx.int(2)?;
        if ctx.argc() == 4 {
            if !ctx.arg_eq(3, "withvalues") {
                return Err(Error::Syntax);
            }
            withvalues = true;
            if c < -(i64::MAX / 2) {
                return Err(err("value is out of range"));
            }
        } else if ctx.argc() > 4 {
            return Err(Error::Syntax);
        }
        count = Some(c);
    }
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let key = ctx.args.get(1);
    let ks = &mut ctx.node.ks;
    let picked: Option<Vec<(Blob, Blob)>> = {
        let len = typed!(ks, db, key, Hash, get).map(|h| h.len());
        match len {
            None => None,
            Some(len) => {
                let idx = rand_indices(&mut ks.rng, len, count.unwrap_or(1));
                let h = typed!(ks, db, key, Hash, get_w);
                h.map(|h| {
                    idx.iter()
                        .filter_map(|&i| h.get_index(i).map(|(k, v)| (k.clone(), v.clone())))
                        .collect()
                })
            }
        }
    };
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match (count, picked) {
        (None, None) => r.null(),
        (None, Some(p)) => match p.first() {
            Some((k, _)) => r.bulk(k),
            None => r.null(),
        },
        (Some(_), None) => r.array(0),
        (Some(_), Some(p)) => {
            if withvalues && resp3 {
                r.array(p.len());
                for (k, v) in p {
                    r.array(2);
                    r.bulk(&k);
                    r.bulk(&v);
                }
            } else {
                r.array(if withvalues { p.len() * 2 } else { p.len() });
                for (k, v) in p {
                    r.bulk(&k);
                    if withvalues {
                        r.bulk(&v);
                    }
                }
            }
        }
    }
    Ok(())
}

fn hscan(ctx: &mut Ctx<'_>) -> CmdResult {
    let cursor = parse_cursor(ctx.arg(2))?;
    if super::keys::scan_key_answered(ctx, "hash")? {
        return Ok(());
    }
    let o = parse_scan_opts(ctx, 3, false)?;
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let key = ctx.args.get(1);
    let h = typed!(ctx.node.ks, db, key, Hash, get_w);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let Some(h) = h else {
        r.array(2);
        r.bulk(b"0");
        r.array(0);
        return Ok(());
    };
    // Small hashes are returned whole, as Redis does for listpacks.
    let count = if h.len() <= 128 { h.len() } else { o.count };
    let (next, range) = scan_indices(if h.len() <= 128 { 0 } else { cursor }, h.len(), count);
    let mut items = Vec::new();
    let small = h.len() <= 128;
    let it: Box<dyn Iterator<Item = usize>> = if small {
        Box::new(range)
    } else {
        Box::new(range.rev())
    };
    for i in it {
        if let Some((k, v)) = h.get_index(i) {
            if o.pat.as_ref().is_none_or(|p| glob_match(p, k, false)) {
                items.push((k, v));
            }
        }
    }
    r.array(2);
    r.bulk(next.to_string().as_bytes());
    r.array(items.len() * if o.novalues { 1 } else { 2 });
    for (k, v) in items {
        r.bulk(k);
        if !o.novalues {
            r.bulk(v);
        }
    }
    Ok(())
}
