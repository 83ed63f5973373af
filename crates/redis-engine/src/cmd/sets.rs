//! Set commands.

use super::hashes::rand_indices;
use super::keys::{parse_cursor, parse_scan_opts, scan_indices};
use super::server::cmd;
use super::*;
use crate::db::{HSet, Value};
use crate::notify as N;

const K1: Keys = Keys::Range(1, 1, 1);
const KALL: Keys = Keys::Range(1, -1, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "sadd",
        -3,
        "write denyoom fast",
        "@write @set @fast",
        K1,
        sadd
    ),
    cmd!("srem", -3, "write fast", "@write @set @fast", K1, srem),
    cmd!(
        "sismember",
        3,
        "readonly fast",
        "@read @set @fast",
        K1,
        sismember
    ),
    cmd!(
        "smismember",
        -3,
        "readonly fast",
        "@read @set @fast",
        K1,
        smismember
    ),
    cmd!("smembers", 2, "readonly", "@read @set @slow", K1, smembers),
    cmd!("scard", 2, "readonly fast", "@read @set @fast", K1, scard),
    cmd!("spop", -2, "write fast", "@write @set @fast", K1, spop),
    cmd!(
        "srandmember",
        -2,
        "readonly",
        "@read @set @slow",
        K1,
        srandmember
    ),
    cmd!(
        "smove",
        4,
        "write fast",
        "@write @set @fast",
        Keys::Range(1, 2, 1),
        smove
    ),
    cmd!("sinter", -2, "readonly", "@read @set @slow", KALL, sinter),
    cmd!(
        "sintercard",
        -3,
        "readonly",
        "@read @set @slow",
        Keys::NumKeys(1),
        sintercard
    ),
    cmd!(
        "sinterstore",
        -3,
        "write denyoom",
        "@write @set @slow",
        KALL,
        sinterstore
    ),
    cmd!("sunion", -2, "readonly", "@read @set @slow", KALL, sunion),
    cmd!(
        "sunionstore",
        -3,
        "write denyoom",
        "@write @set @slow",
        KALL,
        sunionstore
    ),
    cmd!("sdiff", -2, "readonly", "@read @set @slow", KALL, sdiff),
    cmd!(
        "sdiffstore",
        -3,
        "write denyoom",
        "@write @set @slow",
        KALL,
        sdiffstore
    ),
    cmd!("sscan", -3, "readonly", "@read @set @slow", K1, sscan),
];

fn is_intset(s: &HSet) -> bool {
    s.len() <= 512 && s.iter().all(|m| parse_int_opt(m).is_some())
}

/// Members in Redis's order where it is deterministic (intsets are sorted).
pub fn ordered(s: &HSet) -> Vec<&Blob> {
    let mut v: Vec<&Blob> = s.iter().collect();
    if is_intset(s) {
        v.sort_by_key(|m| parse_int_opt(m).unwrap_or(0));
    }
    v
}

fn sadd(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let key = ctx.args.get(1);
    let s = typed_create!(ctx.node.ks, db, key, Set);
    let mut n = 0;
    for i in 2..ctx.args.len() {
        let m = ctx.args.get(i);
        // Short members are stored inline (no allocation): insert straight away. Longer
        // ones are looked up first, so members already present allocate nothing.
        let added = if m.len() <= crate::small::INLINE {
            s.insert(m.into())
        } else {
            !s.contains(m) && s.insert(m.into())
        };
        if added {
            n += 1;
        }
    }
    if n == 0 {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::SET, "sadd", key);
    }
    ctx.r().int(n);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let key = ctx.args.get(1);
    let mut n = 0;
    if let Some(s) = typed!(ctx.node.ks, db, key, Set, get_w) {
        for i in 2..ctx.args.len() {
            if s.swap_remove(ctx.args.get(i)) {
                n += 1;
            }
        }
    }
    if n == 0 {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::SET, "srem", key);
        ctx.drop_if_empty_notify(key);
    }
    ctx.r().int(n);
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let m = ctx.args.get(2);
    let b = typed!(ctx.node.ks, db, ctx.args.get(1), Set, get).is_some_and(|s| s.contains(m));
    ctx.r().int(b as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let s = typed!(ctx.node.ks, db, ctx.args.get(1), Set, get);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(ctx.args.len() - 2);
    for i in 2..ctx.args.len() {
        r.int(s.as_ref().is_some_and(|s| s.contains(ctx.args.get(i))) as i64);
    }
    Ok(())
}

fn reply_set(r: &mut Reply<'_>, members: &[&Blob]) {
    r.set(members.len());
    for m in members {
        r.bulk(m);
    }
}

fn smembers(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let s = typed!(ctx.node.ks, db, ctx.args.get(1), Set, get);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match s {
        Some(s) => reply_set(&mut r, &ordered(s)),
        None => r.set(0),
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let n = typed!(ctx.node.ks, db, ctx.args.get(1), Set, get)
        .map(|s| s.len())
        .unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

fn spop(ctx: &mut Ctx<'_>) -> CmdResult {
    let count = if ctx.argc() == 3 {
        let c = ctx
            .int(2)
            .map_err(|_| err("value is out of range, must be positive"))?;
        if c < 0 {
            return Err(err("value is out of range, must be positive"));
        }
        Some(c as usize)
    } else if ctx.argc() > 3 {
        return Err(Error::Syntax);
    } else {
        None
    };
    let db = ctx.db();
    let key = ctx.args.get(1);
    let ks = &mut ctx.node.ks;
    let mut popped = Vec::new();
    let exists = {
        let len = typed!(ks, db, key, Set, get_w).map(|s| s.len());
        if let Some(len) = len {
            let want = count.unwrap_or(1).min(len);
            for _ in 0..want {
                let n = match typed!(ks, db, key, Set, get_w) {
                    Some(s) => s.len(),
                    None => 0,
                };
                if n == 0 {
                    break;
                }
                let i = ks.rng.below(n);
                if let Some(s) = typed!(ks, db, key, Set, get_w) {
                    if let Some(m) = s.swap_remove_index(i) {
                        popped.push(m);
                    }
                }
            }
            true
        } else {
            false
        }
    };
    // Redis: the "spop" event, the reply, then "del" of an emptied set.
    if popped.is_empty() {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::SET, "spop", key);
    }
    let mut r = ctx.r();
    match count {
        None => match popped.first() {
            Some(m) => r.bulk(m),
            None => r.null(),
        },
        Some(_) => {
            let _ = exists;
            r.set(popped.len());
            for m in &popped {
                r.bulk(m);
            }
        }
    }
    if !popped.is_empty() {
        ctx.drop_if_empty_notify(key);
    }
    Ok(())
}

fn srandmember(ctx: &mut Ctx<'_>) -> CmdResult {
    let count = match ctx.argc() {
        2 => None,
        3 => Some(ctx.int(2)?),
        _ => return Err(Error::Syntax),
    };
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let key = ctx.args.get(1);
    let ks = &mut ctx.node.ks;
    let len = typed!(ks, db, key, Set, get).map(|s| s.len());
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let Some(len) = len else {
        match count {
            None => r.null(),
            Some(_) => r.array(0),
        }
        return Ok(());
    };
    let idx = rand_indices(&mut ks.rng, len, count.unwrap_or(1));
    let Some(s) = typed!(ks, db, key, Set, get_w) else {
        return Ok(());
    };
    let picked: Vec<&Blob> = idx.iter().filter_map(|&i| s.get_index(i)).collect();
    match count {
        None => match picked.first() {
            Some(m) => r.bulk(m),
            None => r.null(),
        },
        Some(_) => {
            r.array(picked.len());
            for m in picked {
                r.bulk(m);
            }
        }
    }
    Ok(())
}

fn smove(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let (src, dst, m) = (ctx.arg(1), ctx.arg(2), ctx.arg(3));
    let has = match typed!(ctx.node.ks, db, src, Set, get_w) {
        Some(s) => s.contains(m),
        None => {
            ctx.no_dirty = true;
            ctx.r().int(0);
            return Ok(());
        }
    };
    // Type-check the destination first.
    let _ = typed!(ctx.node.ks, db, dst, Set, get_w);
    if !has {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    }
    if src == dst {
        ctx.r().int(1);
        return Ok(());
    }
    if let Some(s) = typed!(ctx.node.ks, db, src, Set, get_w) {
        s.swap_remove(m);
    }
    ctx.notify(N::SET, "srem", src);
    ctx.drop_if_empty_notify(src);
    let d = typed_create!(ctx.node.ks, db, dst, Set);
    if d.insert(m.into()) {
        ctx.notify(N::SET, "sadd", dst);
    }
    ctx.r().int(1);
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

fn compute(ctx: &mut Ctx<'_>, keys: &[&[u8]], op: Op) -> Result<HSet, Error> {
    let db = ctx.db();
    let mut sets: Vec<Option<HSet>> = Vec::with_capacity(keys.len());
    for k in keys {
        sets.push(typed!(ctx.node.ks, db, k, Set, get).map(|s| s.clone()));
    }
    let mut res = HSet::default();
    match op {
        Op::Union => {
            for s in sets.iter().flatten() {
                for m in s {
                    res.insert(m.clone());
                }
            }
        }
        Op::Diff => {
            if let Some(Some(first)) = sets.first() {
                'outer: for m in first {
                    for s in sets[1..].iter().flatten() {
                        if s.contains(m) {
                            continue 'outer;
                        }
                    }
                    res.insert(m.clone());
                }
            }
        }
        Op::Inter => {
            if sets.iter().any(|s| s.is_none()) {
                return Ok(res);
            }
            let mut all: Vec<HSet> = sets.into_iter().flatten().collect();
            all.sort_by_key(|s| s.len());
            if let Some(first) = all.first() {
                'o: for m in first {
                    for s in &all[1..] {
                        if !s.contains(m) {
                            continue 'o;
                        }
                    }
                    res.insert(m.clone());
                }
            }
        }
    }
    Ok(res)
}

fn set_op(ctx: &mut Ctx<'_>, op: Op) -> CmdResult {
    let keys: Vec<&[u8]> = (1..ctx.argc()).map(|i| ctx.args.get(i)).collect();
    let res = compute(ctx, &keys, op)?;
    let mut r = ctx.r();
    reply_set(&mut r, &ordered(&res));
    Ok(())
}

fn set_op_store(ctx: &mut Ctx<'_>, op: Op) -> CmdResult {
    let keys: Vec<&[u8]> = (2..ctx.argc()).map(|i| ctx.args.get(i)).collect();
    let res = compute(ctx, &keys, op)?;
    let db = ctx.db();
    let dst = ctx.arg(1);
    let n = res.len();
    // Redis replies first, then notifies; except SINTERSTORE with a missing source, which
    // returns early: "del" first.
    let early = op == Op::Inter && keys.iter().any(|k| !ctx.node.ks.exists(db, k));
    if n == 0 {
        let deleted = ctx.node.ks.del(db, dst);
        if deleted && early {
            ctx.notify(N::GENERIC, "del", dst);
        }
        ctx.r().int(0);
        if deleted && !early {
            ctx.notify(N::GENERIC, "del", dst);
        }
    } else {
        ctx.node.ks.set(db, dst, Value::Set(Box::new(res)), false);
        let ev = match op {
            Op::Inter => "sinterstore",
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
        };
        ctx.r().int(n as i64);
        ctx.notify(N::SET, ev, dst);
    }
    Ok(())
}

fn sinter(ctx: &mut Ctx<'_>) -> CmdResult {
    set_op(ctx, Op::Inter)
}
fn sunion(ctx: &mut Ctx<'_>) -> CmdResult {
    set_op(ctx, Op::Union)
}
fn sdiff(ctx: &mut Ctx<'_>) -> CmdResult {
    set_op(ctx, Op::Diff)
}
fn sinterstore(ctx: &mut Ctx<'_>) -> CmdResult {
    set_op_store(ctx, Op::Inter)
}
fn sunionstore(ctx: &mut Ctx<'_>) -> CmdResult {
    set_op_store(ctx, Op::Union)
}
fn sdiffstore(ctx: &mut Ctx<'_>) -> CmdResult {
    set_op_store(ctx, Op::Diff)
}

fn sintercard(ctx: &mut Ctx<'_>) -> CmdResult {
    let n = ctx
        .int(1)
        .map_err(|_| err("numkeys should be greater than 0"))?;
    if n <= 0 {
        return Err(err("numkeys should be greater than 0"));
    }
    let n = n as usize;
    if n > ctx.argc() - 2 {
        return Err(err("Number of keys can't be greater than number of args"));
    }
    let mut limit = 0usize;
    let mut i = 2 + n;
    while i < ctx.argc() {
        if ctx.arg_eq(i, "limit") && i + 1 < ctx.argc() {
            let l = ctx.int(i + 1).map_err(|_| err("LIMIT can't be negative"))?;
            if l < 0 {
                return Err(err("LIMIT can't be negative"));
            }
            limit = l as usize;
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let keys: Vec<&[u8]> = (2..2 + n).map(|i| ctx.args.get(i)).collect();
    let res = compute(ctx, &keys, Op::Inter)?;
    let c = if limit > 0 {
        res.len().min(limit)
    } else {
        res.len()
    };
    ctx.r().int(c as i64);
    Ok(())
}

fn sscan(ctx: &mut Ctx<'_>) -> CmdResult {
    let cursor = parse_cursor(ctx.arg(2))?;
    if super::keys::scan_key_answered(ctx, "set")? {
        return Ok(());
    }
    let o = parse_scan_opts(ctx, 3, false)?;
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let s = typed!(ctx.node.ks, db, ctx.args.get(1), Set, get_w);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let Some(s) = s else {
        r.array(2);
        r.bulk(b"0");
        r.array(0);
        return Ok(());
    };
    let items: Vec<&Blob>;
    let next;
    if is_intset(s) {
        items = ordered(s)
            .into_iter()
            .filter(|m| o.pat.as_ref().is_none_or(|p| glob_match(p, m, false)))
            .collect();
        next = 0;
    } else {
        let (n, range) = scan_indices(cursor, s.len(), o.count);
        next = n;
        items = range
            .rev()
            .filter_map(|i| s.get_index(i))
            .filter(|m| o.pat.as_ref().is_none_or(|p| glob_match(p, m, false)))
            .collect();
    }
    r.array(2);
    r.bulk(next.to_string().as_bytes());
    r.array(items.len());
    for m in items {
        r.bulk(m);
    }
    Ok(())
}
