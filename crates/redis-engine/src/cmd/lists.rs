//! List commands, including the blocking ones.

use std::collections::VecDeque;

use super::server::cmd;
use super::*;
use crate::notify as N;

const K1: Keys = Keys::Range(1, 1, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "lpush",
        -3,
        "write denyoom fast",
        "@write @list @fast",
        K1,
        lpush
    ),
    cmd!(
        "rpush",
        -3,
        "write denyoom fast",
        "@write @list @fast",
        K1,
        rpush
    ),
    cmd!(
        "lpushx",
        -3,
        "write denyoom fast",
        "@write @list @fast",
        K1,
        lpushx
    ),
    cmd!(
        "rpushx",
        -3,
        "write denyoom fast",
        "@write @list @fast",
        K1,
        rpushx
    ),
    cmd!("lpop", -2, "write fast", "@write @list @fast", K1, lpop),
    cmd!("rpop", -2, "write fast", "@write @list @fast", K1, rpop),
    cmd!("llen", 2, "readonly fast", "@read @list @fast", K1, llen),
    cmd!("lrange", 4, "readonly", "@read @list @slow", K1, lrange),
    cmd!("lindex", 3, "readonly", "@read @list @slow", K1, lindex),
    cmd!("lset", 4, "write denyoom", "@write @list @slow", K1, lset),
    cmd!(
        "linsert",
        5,
        "write denyoom",
        "@write @list @slow",
        K1,
        linsert
    ),
    cmd!("lrem", 4, "write", "@write @list @slow", K1, lrem),
    cmd!("ltrim", 4, "write", "@write @list @slow", K1, ltrim),
    cmd!("lpos", -3, "readonly", "@read @list @slow", K1, lpos),
    cmd!(
        "lmove",
        5,
        "write denyoom",
        "@write @list @slow",
        Keys::Range(1, 2, 1),
        lmove
    ),
    cmd!(
        "rpoplpush",
        3,
        "write denyoom",
        "@write @list @slow",
        Keys::Range(1, 2, 1),
        rpoplpush
    ),
    cmd!(
        "lmpop",
        -4,
        "write",
        "@write @list @slow",
        Keys::NumKeys(1),
        lmpop
    ),
    cmd!(
        "blpop",
        -3,
        "write noscript blocking",
        "@write @list @slow @blocking",
        Keys::Range(1, -2, 1),
        blpop
    ),
    cmd!(
        "brpop",
        -3,
        "write noscript blocking",
        "@write @list @slow @blocking",
        Keys::Range(1, -2, 1),
        brpop
    ),
    cmd!(
        "blmove",
        6,
        "write denyoom noscript blocking",
        "@write @list @slow @blocking",
        Keys::Range(1, 2, 1),
        blmove
    ),
    cmd!(
        "brpoplpush",
        4,
        "write denyoom noscript blocking",
        "@write @list @slow @blocking",
        Keys::Range(1, 2, 1),
        brpoplpush
    ),
    cmd!(
        "blmpop",
        -5,
        "write blocking",
        "@write @list @slow @blocking",
        Keys::NumKeys(2),
        blmpop
    ),
];

fn push_generic(ctx: &mut Ctx<'_>, left: bool, only_existing: bool) -> CmdResult {
    let db = ctx.db();
    let key = ctx.args.get(1);
    let l = if only_existing {
        match typed!(ctx.node.ks, db, key, List, get_w) {
            Some(l) => l,
            None => {
                ctx.no_dirty = true;
                ctx.r().int(0);
                return Ok(());
            }
        }
    } else {
        typed_create!(ctx.node.ks, db, key, List)
    };
    for i in 2..ctx.args.len() {
        let v: Blob = ctx.args.get(i).into();
        if left {
            l.push_front(v);
        } else {
            l.push_back(v);
        }
    }
    let n = l.len();
    ctx.r().int(n as i64);
    ctx.notify(N::LIST, if left { "lpush" } else { "rpush" }, key);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>) -> CmdResult {
    push_generic(ctx, true, false)
}
fn rpush(ctx: &mut Ctx<'_>) -> CmdResult {
    push_generic(ctx, false, false)
}
fn lpushx(ctx: &mut Ctx<'_>) -> CmdResult {
    push_generic(ctx, true, true)
}
fn rpushx(ctx: &mut Ctx<'_>) -> CmdResult {
    push_generic(ctx, false, true)
}

fn pop_generic(ctx: &mut Ctx<'_>, left: bool) -> CmdResult {
    let count = match ctx.argc() {
        2 => None,
        3 => {
            let c = ctx
                .int(2)
                .map_err(|_| err("value is out of range, must be positive"))?;
            if c < 0 {
                return Err(err("value is out of range, must be positive"));
            }
            Some(c as usize)
        }
        _ => return Err(ctx.arity_err()),
    };
    let db = ctx.db();
    let key = ctx.args.get(1);
    let resp3 = ctx.client.resp3.get();
    let Some(l) = typed!(ctx.node.ks, db, key, List, get_w) else {
        ctx.no_dirty = true;
        let mut r = Reply {
            out: ctx.out,
            resp3,
        };
        match count {
            None => r.null(),
            Some(_) => r.null_array(),
        }
        return Ok(());
    };
    let emptied = l.len() <= count.unwrap_or(1);
    let popped = count.unwrap_or(1).min(l.len()) > 0;
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match count {
        None => {
            let v = if left { l.pop_front() } else { l.pop_back() };
            match v {
                Some(v) => r.bulk(&v),
                None => r.null(),
            }
        }
        Some(c) => {
            let c = c.min(l.len());
            r.array(c);
            for _ in 0..c {
                if let Some(v) = if left { l.pop_front() } else { l.pop_back() } {
                    r.bulk(&v);
                }
            }
        }
    }
    if popped {
        ctx.notify(N::LIST, if left { "lpop" } else { "rpop" }, key);
    }
    if emptied {
        ctx.drop_if_empty_notify(key);
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>) -> CmdResult {
    pop_generic(ctx, true)
}
fn rpop(ctx: &mut Ctx<'_>) -> CmdResult {
    pop_generic(ctx, false)
}

fn llen(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let n = typed!(ctx.node.ks, db, ctx.args.get(1), List, get)
        .map(|l| l.len())
        .unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

/// Normalize a (start, stop) range over `len` items; None when empty.
pub fn norm_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { start + len } else { start };
    let mut e = if stop < 0 { stop + len } else { stop };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    if e < 0 {
        return None;
    }
    Some((s as usize, e as usize))
}

fn lrange(ctx: &mut Ctx<'_>) -> CmdResult {
    let (start, stop) = (ctx.int(2)?, ctx.int(3)?);
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let l = typed!(ctx.node.ks, db, ctx.args.get(1), List, get);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match l.and_then(|l| norm_range(start, stop, l.len()).map(|x| (l, x))) {
        None => r.array(0),
        Some((l, (s, e))) => {
            r.array(e - s + 1);
            for v in l.range(s..=e) {
                r.bulk(v);
            }
        }
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx<'_>) -> CmdResult {
    let i = ctx.int(2)?;
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let l = typed!(ctx.node.ks, db, ctx.args.get(1), List, get);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let v = l.and_then(|l| {
        let idx = if i < 0 { i + l.len() as i64 } else { i };
        if idx < 0 {
            None
        } else {
            l.get(idx as usize)
        }
    });
    match v {
        Some(v) => r.bulk(v),
        None => r.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx<'_>) -> CmdResult {
    let i = ctx.int(2)?;
    let db = ctx.db();
    let v = ctx.args.get(3);
    let Some(l) = typed!(ctx.node.ks, db, ctx.args.get(1), List, get_w) else {
        return Err(Error::NoSuchKey);
    };
    let idx = if i < 0 { i + l.len() as i64 } else { i };
    if idx < 0 || idx as usize >= l.len() {
        return Err(Error::IndexOutOfRange);
    }
    l[idx as usize] = v.into();
    ctx.r().ok();
    ctx.notify(N::LIST, "lset", ctx.arg(1));
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>) -> CmdResult {
    let after = if ctx.arg_eq(2, "after") {
        true
    } else if ctx.arg_eq(2, "before") {
        false
    } else {
        return Err(Error::Syntax);
    };
    let db = ctx.db();
    let (pivot, v) = (ctx.args.get(3), ctx.args.get(4));
    let Some(l) = typed!(ctx.node.ks, db, ctx.args.get(1), List, get_w) else {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    };
    let n = match l.iter().position(|x| &**x == pivot) {
        Some(p) => {
            l.insert(if after { p + 1 } else { p }, v.into());
            l.len() as i64
        }
        None => -1,
    };
    if n < 0 {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::LIST, "linsert", ctx.arg(1));
    }
    ctx.r().int(n);
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>) -> CmdResult {
    let count = ctx.int(2)?;
    let db = ctx.db();
    let key = ctx.args.get(1);
    let v = ctx.args.get(3);
    let mut removed = 0i64;
    if let Some(l) = typed!(ctx.node.ks, db, key, List, get_w) {
        let limit = if count == 0 { i64::MAX } else { count.abs() };
        if count >= 0 {
            let mut i = 0;
            while i < l.len() && removed < limit {
                if &*l[i] == v {
                    l.remove(i);
                    removed += 1;
                } else {
                    i += 1;
                }
            }
        } else {
            let mut i = l.len();
            while i > 0 && removed < limit {
                i -= 1;
                if &*l[i] == v {
                    l.remove(i);
                    removed += 1;
                }
            }
        }
    }
    if removed == 0 {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::LIST, "lrem", key);
        ctx.drop_if_empty_notify(key);
    }
    ctx.r().int(removed);
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>) -> CmdResult {
    let (start, stop) = (ctx.int(2)?, ctx.int(3)?);
    let db = ctx.db();
    let key = ctx.args.get(1);
    if let Some(l) = typed!(ctx.node.ks, db, key, List, get_w) {
        match norm_range(start, stop, l.len()) {
            None => l.clear(),
            Some((s, e)) => {
                l.truncate(e + 1);
                l.drain(..s);
            }
        }
        ctx.notify(N::LIST, "ltrim", key);
        ctx.drop_if_empty_notify(key);
    }
    ctx.r().ok();
    Ok(())
}

fn lpos(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut i = 3;
    while i < ctx.argc() {
        if i + 1 >= ctx.argc() {
            return Err(Error::Syntax);
        }
        if ctx.arg_eq(i, "rank") {
            rank = ctx.int(i + 1)?;
            if rank == 0 || rank == i64::MIN {
                return Err(err("RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
        } else if ctx.arg_eq(i, "count") {
            let c = ctx.int(i + 1)?;
            if c < 0 {
                return Err(err("COUNT can't be negative"));
            }
            count = Some(c);
        } else if ctx.arg_eq(i, "maxlen") {
            maxlen = ctx.int(i + 1)?;
            if maxlen < 0 {
                return Err(err("MAXLEN can't be negative"));
            }
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let v = ctx.args.get(2);
    let l = typed!(ctx.node.ks, db, ctx.args.get(1), List, get);
    let mut found = Vec::new();
    if let Some(l) = l {
        let want = match count {
            Some(0) => usize::MAX,
            Some(c) => c as usize,
            None => 1,
        };
        let mut skip = rank.unsigned_abs() - 1;
        let n = l.len();
        let lim = if maxlen == 0 {
            n
        } else {
            (maxlen as usize).min(n)
        };
        for step in 0..lim {
            let idx = if rank > 0 { step } else { n - 1 - step };
            if &*l[idx] == v {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                found.push(idx as i64);
                if found.len() >= want {
                    break;
                }
            }
        }
    }
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match count {
        Some(_) => {
            r.array(found.len());
            for f in found {
                r.int(f);
            }
        }
        None => match found.first() {
            Some(&f) => r.int(f),
            None => r.null(),
        },
    }
    Ok(())
}

fn parse_dir(ctx: &Ctx<'_>, i: usize) -> Result<bool, Error> {
    if ctx.arg_eq(i, "left") {
        Ok(true)
    } else if ctx.arg_eq(i, "right") {
        Ok(false)
    } else {
        Err(Error::Syntax)
    }
}

/// Move one element; Ok(None) when the source is empty.
fn do_move(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Option<Blob>, Error> {
    let db = ctx.db();
    let has = typed!(ctx.node.ks, db, src, List, get_w).is_some_and(|l| !l.is_empty());
    if !has {
        return Ok(None);
    }
    // Destination must be a list (or missing).
    let _ = typed!(ctx.node.ks, db, dst, List, get_w);
    let v = match typed!(ctx.node.ks, db, src, List, get_w) {
        Some(l) => {
            if from_left {
                l.pop_front()
            } else {
                l.pop_back()
            }
        }
        None => None,
    };
    let Some(v) = v else { return Ok(None) };
    let d = typed_create!(ctx.node.ks, db, dst, List);
    if to_left {
        d.push_front(v.clone());
    } else {
        d.push_back(v.clone());
    }
    // Redis's order: the push event, the reply, the pop event, then "del" of an emptied
    // source (`after_move`, called by the callers once they replied).
    ctx.notify(N::LIST, if to_left { "lpush" } else { "rpush" }, dst);
    if src != dst {
        ctx.node.touch_key(db, dst);
    }
    Ok(Some(v))
}

/// The source side of a move, after the reply: pop event, then "del" when emptied.
fn after_move(ctx: &mut Ctx<'_>, src: &[u8], from_left: bool) {
    ctx.notify(N::LIST, if from_left { "lpop" } else { "rpop" }, src);
    ctx.drop_if_empty_notify(src);
}

fn lmove(ctx: &mut Ctx<'_>) -> CmdResult {
    let (fl, tl) = (parse_dir(ctx, 3)?, parse_dir(ctx, 4)?);
    let (src, dst) = (ctx.arg(1), ctx.arg(2));
    match do_move(ctx, src, dst, fl, tl)? {
        Some(v) => {
            ctx.r().bulk(&v);
            after_move(ctx, src, fl);
        }
        None => {
            ctx.no_dirty = true;
            ctx.r().null()
        }
    }
    Ok(())
}

fn rpoplpush(ctx: &mut Ctx<'_>) -> CmdResult {
    let (src, dst) = (ctx.arg(1), ctx.arg(2));
    match do_move(ctx, src, dst, false, true)? {
        Some(v) => {
            ctx.r().bulk(&v);
            after_move(ctx, src, false);
        }
        None => {
            ctx.no_dirty = true;
            ctx.r().null()
        }
    }
    Ok(())
}

fn request_block(ctx: &mut Ctx<'_>, keys: Vec<Blob>, deadline: Option<std::time::Instant>) {
    if ctx.in_exec {
        ctx.r().null_array();
        ctx.no_dirty = true;
        return;
    }
    ctx.block = Some(BlockState {
        db: ctx.db(),
        keys,
        cmd: ctx.args.to_owned_cmd(),
        deadline,
    });
}

fn bpop_generic(ctx: &mut Ctx<'_>, left: bool) -> CmdResult {
    let deadline = parse_timeout(ctx.arg(ctx.argc() - 1))?;
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    for i in 1..ctx.argc() - 1 {
        let key = ctx.args.get(i);
        if let Some(l) = typed!(ctx.node.ks, db, key, List, get_w) {
            if let Some(v) = if left { l.pop_front() } else { l.pop_back() } {
                let mut r = Reply {
                    out: ctx.out,
                    resp3,
                };
                r.array(2);
                r.bulk(key);
                r.bulk(&v);
                ctx.notify(N::LIST, if left { "lpop" } else { "rpop" }, key);
                ctx.drop_if_empty_notify(key);
                return Ok(());
            }
        }
    }
    let keys = (1..ctx.argc() - 1).map(|i| blob(ctx.args.get(i))).collect();
    request_block(ctx, keys, deadline);
    Ok(())
}

fn blpop(ctx: &mut Ctx<'_>) -> CmdResult {
    bpop_generic(ctx, true)
}
fn brpop(ctx: &mut Ctx<'_>) -> CmdResult {
    bpop_generic(ctx, false)
}

fn blmove_generic(ctx: &mut Ctx<'_>, fl: bool, tl: bool, tidx: usize) -> CmdResult {
    let deadline = parse_timeout(ctx.arg(tidx))?;
    let (src, dst) = (ctx.arg(1), ctx.arg(2));
    match do_move(ctx, src, dst, fl, tl)? {
        Some(v) => {
            ctx.r().bulk(&v);
            after_move(ctx, src, fl);
        }
        None => request_block(ctx, vec![blob(src)], deadline),
    }
    Ok(())
}

fn blmove(ctx: &mut Ctx<'_>) -> CmdResult {
    let (fl, tl) = (parse_dir(ctx, 3)?, parse_dir(ctx, 4)?);
    blmove_generic(ctx, fl, tl, 5)
}

fn brpoplpush(ctx: &mut Ctx<'_>) -> CmdResult {
    blmove_generic(ctx, false, true, 3)
}

/// Parse `numkeys key... LEFT|RIGHT [COUNT n]` starting at `at`.
fn parse_mpop(
    ctx: &Ctx<'_>,
    at: usize,
    dirs: (&str, &str),
) -> Result<(Vec<Blob>, bool, usize), Error> {
    let n = ctx
        .int(at)
        .map_err(|_| err("numkeys should be greater than 0"))?;
    if n <= 0 {
        return Err(err("numkeys should be greater than 0"));
    }
    let n = n as usize;
    if at + 1 + n >= ctx.argc() {
        return Err(Error::Syntax);
    }
    let keys = (at + 1..at + 1 + n).map(|i| blob(ctx.arg(i))).collect();
    let d = at + 1 + n;
    let left = if ctx.arg_eq(d, dirs.0) {
        true
    } else if ctx.arg_eq(d, dirs.1) {
        false
    } else {
        return Err(Error::Syntax);
    };
    let mut count = 1usize;
    let mut i = d + 1;
    let mut seen = false;
    while i < ctx.argc() {
        if ctx.arg_eq(i, "count") && i + 1 < ctx.argc() && !seen {
            let c = ctx
                .int(i + 1)
                .map_err(|_| err("count should be greater than 0"))?;
            if c <= 0 {
                return Err(err("count should be greater than 0"));
            }
            count = c as usize;
            seen = true;
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok((keys, left, count))
}

fn mpop_try(ctx: &mut Ctx<'_>, keys: &[Blob], left: bool, count: usize) -> Result<bool, Error> {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    for key in keys {
        if let Some(l) = typed!(ctx.node.ks, db, key, List, get_w) {
            if l.is_empty() {
                continue;
            }
            let c = count.min(l.len());
            let vals: VecDeque<Blob> = (0..c)
                .filter_map(|_| if left { l.pop_front() } else { l.pop_back() })
                .collect();
            let mut r = Reply {
                out: ctx.out,
                resp3,
            };
            r.array(2);
            r.bulk(key);
            r.array(vals.len());
            for v in vals {
                r.bulk(&v);
            }
            ctx.notify(N::LIST, if left { "lpop" } else { "rpop" }, key);
            ctx.drop_if_empty_notify(key);
            return Ok(true);
        }
    }
    Ok(false)
}

fn lmpop(ctx: &mut Ctx<'_>) -> CmdResult {
    let (keys, left, count) = parse_mpop(ctx, 1, ("left", "right"))?;
    if !mpop_try(ctx, &keys, left, count)? {
        ctx.no_dirty = true;
        ctx.r().null_array();
    }
    Ok(())
}

fn blmpop(ctx: &mut Ctx<'_>) -> CmdResult {
    let deadline = parse_timeout(ctx.arg(1))?;
    let (keys, left, count) = parse_mpop(ctx, 2, ("left", "right"))?;
    if !mpop_try(ctx, &keys, left, count)? {
        request_block(ctx, keys, deadline);
    }
    Ok(())
}
