//! String commands.

use super::server::cmd;
use super::*;
use crate::db::Value;
use crate::notify as N;

const K1: Keys = Keys::Range(1, 1, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!("get", 2, "readonly fast", "@read @string @fast", K1, get),
    cmd!("set", -3, "write denyoom", "@write @string @slow", K1, set),
    cmd!(
        "setnx",
        3,
        "write denyoom fast",
        "@write @string @fast",
        K1,
        setnx
    ),
    cmd!(
        "setex",
        4,
        "write denyoom",
        "@write @string @slow",
        K1,
        setex
    ),
    cmd!(
        "psetex",
        4,
        "write denyoom",
        "@write @string @slow",
        K1,
        psetex
    ),
    cmd!(
        "mget",
        -2,
        "readonly fast",
        "@read @string @fast",
        Keys::Range(1, -1, 1),
        mget
    ),
    cmd!(
        "mset",
        -3,
        "write denyoom",
        "@write @string @slow",
        Keys::Range(1, -1, 2),
        mset
    ),
    cmd!(
        "msetnx",
        -3,
        "write denyoom",
        "@write @string @slow",
        Keys::Range(1, -1, 2),
        msetnx
    ),
    cmd!(
        "getset",
        3,
        "write denyoom fast",
        "@write @string @fast",
        K1,
        getset
    ),
    cmd!(
        "getdel",
        2,
        "write fast",
        "@write @string @fast",
        K1,
        getdel
    ),
    cmd!("getex", -2, "write fast", "@write @string @fast", K1, getex),
    cmd!(
        "append",
        3,
        "write denyoom fast",
        "@write @string @fast",
        K1,
        append
    ),
    cmd!(
        "strlen",
        2,
        "readonly fast",
        "@read @string @fast",
        K1,
        strlen
    ),
    cmd!(
        "incr",
        2,
        "write denyoom fast",
        "@write @string @fast",
        K1,
        incr
    ),
    cmd!(
        "decr",
        2,
        "write denyoom fast",
        "@write @string @fast",
        K1,
        decr
    ),
    cmd!(
        "incrby",
        3,
        "write denyoom fast",
        "@write @string @fast",
        K1,
        incrby
    ),
    cmd!(
        "decrby",
        3,
        "write denyoom fast",
        "@write @string @fast",
        K1,
        decrby
    ),
    cmd!(
        "incrbyfloat",
        3,
        "write denyoom fast",
        "@write @string @fast",
        K1,
        incrbyfloat
    ),
    cmd!(
        "getrange",
        4,
        "readonly",
        "@read @string @slow",
        K1,
        getrange
    ),
    cmd!("substr", 4, "readonly", "@read @string @slow", K1, getrange),
    cmd!(
        "setrange",
        4,
        "write denyoom",
        "@write @string @slow",
        K1,
        setrange
    ),
    cmd!(
        "lcs",
        -3,
        "readonly",
        "@read @string @slow",
        Keys::Range(1, 2, 1),
        lcs
    ),
];

pub const MAX_STR: usize = 512 << 20;

/// Read a string value; Ok(None) when missing.
pub fn get_str<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a [u8]>, Error> {
    let db = ctx.db();
    match ctx.node.ks.get(db, key) {
        None => Ok(None),
        Some(e) => match &e.val {
            Value::Str(s) => Ok(Some(s)),
            _ => Err(Error::WrongType),
        },
    }
}

fn get(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.client.db.get();
    let resp3 = ctx.client.resp3.get();
    let key = ctx.args.get(1);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match ctx.node.ks.get(db, key) {
        None => r.null(),
        Some(e) => match &e.val {
            Value::Str(s) => r.bulk(s),
            _ => return Err(Error::WrongType),
        },
    }
    Ok(())
}

/// Parse EX/PX/EXAT/PXAT value into an absolute ms time.
fn expire_at(ctx: &Ctx<'_>, unit: &str, v: &[u8], cmdname: &str) -> Result<u64, Error> {
    let n = parse_int(v)?;
    let inv = || err(format!("invalid expire time in '{cmdname}' command"));
    if n <= 0 {
        return Err(inv());
    }
    let now = ctx.now() as i64;
    let at = match unit {
        "ex" => n.checked_mul(1000).and_then(|x| x.checked_add(now)),
        "px" => n.checked_add(now),
        "exat" => n.checked_mul(1000),
        _ => Some(n),
    };
    at.map(|x| x as u64).ok_or_else(inv)
}

fn set(ctx: &mut Ctx<'_>) -> CmdResult {
    let (key, val) = (ctx.arg(1), ctx.arg(2));
    let mut nx = false;
    let mut xx = false;
    let mut get = false;
    let mut keepttl = false;
    let mut exp: Option<(String, &[u8])> = None;
    // Valkey 8.1's IFEQ comparison value (t_string.c parseExtendedStringArgumentsOrReply:
    // exclusive with NX, XX and a second IFEQ).
    let ifeq_ok = ctx.node.settings.valkey_at_least(8, 1);
    let mut ifeq: Option<&[u8]> = None;
    let mut i = 3;
    while i < ctx.argc() {
        let a = ctx.arg(i).to_ascii_lowercase();
        let next = if i + 1 < ctx.argc() {
            Some(ctx.arg(i + 1))
        } else {
            None
        };
        match a.as_slice() {
            b"nx" if !xx && ifeq.is_none() => nx = true,
            b"xx" if !nx && ifeq.is_none() => xx = true,
            b"ifeq" if ifeq_ok && !nx && !xx && ifeq.is_none() && next.is_some() => {
                ifeq = next;
                i += 1;
            }
            b"get" => get = true,
            b"keepttl" if exp.is_none() => keepttl = true,
            b"ex" | b"px" | b"exat" | b"pxat" if !keepttl && exp.is_none() && next.is_some() => {
                exp = Some((
                    String::from_utf8_lossy(&a).into_owned(),
                    next.unwrap_or_default(),
                ));
                i += 1;
            }
            _ => return Err(Error::Syntax),
        }
        i += 1;
    }
    let at = match &exp {
        Some((u, v)) => Some(expire_at(ctx, u, v, "set")?),
        None => None,
    };
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let old: Option<Option<Vec<u8>>> = if get {
        match ctx.node.ks.get(db, key) {
            None => Some(None),
            Some(e) => match &e.val {
                Value::Str(s) => Some(Some(s.to_vec())),
                _ => return Err(Error::WrongType),
            },
        }
    } else {
        None
    };
    // IFEQ: a missing key or a different value aborts; without GET a non-string is
    // WRONGTYPE (with GET, the GET lookup above already answered that).
    let ifeq_abort = match ifeq {
        None => false,
        Some(want) => match ctx.node.ks.get(db, key) {
            None => true,
            Some(e) => match &e.val {
                Value::Str(s) => &s[..] != want,
                _ => return Err(Error::WrongType),
            },
        },
    };
    let exists = match &old {
        Some(o) => o.is_some(),
        None => (nx || xx) && ctx.node.ks.exists(db, key),
    };
    if ifeq_abort || (nx && exists) || (xx && !exists) {
        let mut r = Reply {
            out: ctx.out,
            resp3,
        };
        match old {
            Some(Some(o)) => r.bulk(&o),
            _ => r.null(),
        }
        ctx.no_dirty = true;
        return Ok(());
    }
    ctx.node.ks.set(db, key, Value::Str(val.into()), keepttl);
    if let Some(t) = at {
        ctx.node.ks.set_expire(db, key, t);
    }
    crate::notify::notify(ctx.node, ctx.out, N::STRING, "set", db, key);
    if at.is_some() {
        crate::notify::notify(ctx.node, ctx.out, N::GENERIC, "expire", db, key);
    }
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match old {
        Some(Some(o)) => r.bulk(&o),
        Some(None) => r.null(),
        None => r.ok(),
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let (key, val) = (ctx.arg(1), ctx.arg(2));
    if ctx.node.ks.exists(db, key) {
        ctx.no_dirty = true;
        ctx.r().int(0);
    } else {
        ctx.node.ks.set(db, key, Value::Str(val.into()), false);
        ctx.notify(N::STRING, "set", key);
        ctx.r().int(1);
    }
    Ok(())
}

fn setex_generic(ctx: &mut Ctx<'_>, unit: &str, name: &str) -> CmdResult {
    let at = expire_at(ctx, unit, ctx.arg(2), name)?;
    let db = ctx.db();
    let (key, val) = (ctx.arg(1), ctx.arg(3));
    ctx.node.ks.set(db, key, Value::Str(val.into()), false);
    ctx.node.ks.set_expire(db, key, at);
    ctx.notify(N::STRING, "set", key);
    ctx.notify(N::GENERIC, "expire", key);
    ctx.r().ok();
    Ok(())
}

fn setex(ctx: &mut Ctx<'_>) -> CmdResult {
    setex_generic(ctx, "ex", "setex")
}

fn psetex(ctx: &mut Ctx<'_>) -> CmdResult {
    setex_generic(ctx, "px", "psetex")
}

fn mget(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(ctx.args.len() - 1);
    for i in 1..ctx.args.len() {
        match ctx.node.ks.get(db, ctx.args.get(i)) {
            Some(e) => match &e.val {
                Value::Str(s) => r.bulk(s),
                _ => r.null(),
            },
            None => r.null(),
        }
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.argc().is_multiple_of(2) {
        return Err(ctx.arity_err());
    }
    let db = ctx.db();
    for i in (1..ctx.argc()).step_by(2) {
        ctx.node.ks.set(
            db,
            ctx.args.get(i),
            Value::Str(ctx.args.get(i + 1).into()),
            false,
        );
        let k = ctx.args.get(i);
        ctx.notify(N::STRING, "set", k);
    }
    ctx.r().ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.argc().is_multiple_of(2) {
        return Err(ctx.arity_err());
    }
    let db = ctx.db();
    for i in (1..ctx.argc()).step_by(2) {
        if ctx.node.ks.exists(db, ctx.args.get(i)) {
            ctx.no_dirty = true;
            ctx.r().int(0);
            return Ok(());
        }
    }
    for i in (1..ctx.argc()).step_by(2) {
        ctx.node.ks.set(
            db,
            ctx.args.get(i),
            Value::Str(ctx.args.get(i + 1).into()),
            false,
        );
        let k = ctx.args.get(i);
        ctx.notify(N::STRING, "set", k);
    }
    ctx.r().int(1);
    Ok(())
}

fn getset(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let old = get_str(ctx, key)?.map(|s| s.to_vec());
    let db = ctx.db();
    ctx.node
        .ks
        .set(db, key, Value::Str(ctx.args.get(2).into()), false);
    // Redis replies with the old value first, then sets (and notifies).
    match old {
        Some(o) => ctx.r().bulk(&o),
        None => ctx.r().null(),
    }
    ctx.notify(N::STRING, "set", key);
    Ok(())
}

fn getdel(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let old = get_str(ctx, key)?.map(|s| s.to_vec());
    match old {
        Some(o) => {
            let db = ctx.db();
            ctx.node.ks.del(db, key);
            ctx.r().bulk(&o);
            ctx.notify(N::GENERIC, "del", key);
        }
        None => {
            ctx.no_dirty = true;
            ctx.r().null();
        }
    }
    Ok(())
}

fn getex(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let mut persist = false;
    let mut at = None;
    let mut i = 2;
    while i < ctx.argc() {
        let a = ctx.arg(i).to_ascii_lowercase();
        match a.as_slice() {
            b"persist" if at.is_none() && !persist => persist = true,
            b"ex" | b"px" | b"exat" | b"pxat" if at.is_none() && !persist && i + 1 < ctx.argc() => {
                at = Some(expire_at(
                    ctx,
                    &String::from_utf8_lossy(&a),
                    ctx.arg(i + 1),
                    "getex",
                )?);
                i += 1;
            }
            _ => return Err(Error::Syntax),
        }
        i += 1;
    }
    let Some(v) = get_str(ctx, key)?.map(|s| s.to_vec()) else {
        ctx.no_dirty = true;
        ctx.r().null();
        return Ok(());
    };
    let db = ctx.db();
    // Redis replies before changing the TTL (and notifying).
    ctx.r().bulk(&v);
    if let Some(t) = at {
        if t <= ctx.now() {
            ctx.node.ks.del(db, key);
            ctx.notify(N::GENERIC, "del", key);
        } else {
            ctx.node.ks.set_expire(db, key, t);
            ctx.notify(N::GENERIC, "expire", key);
        }
    } else if persist {
        if ctx.node.ks.persist(db, key) {
            ctx.notify(N::GENERIC, "persist", key);
        }
    } else {
        ctx.no_dirty = true;
    }
    Ok(())
}

fn append(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let (key, add) = (ctx.arg(1), ctx.arg(2));
    let len = match ctx.node.ks.get_w(db, key) {
        Some(e) => match &mut e.val {
            Value::Str(s) => {
                if s.len() + add.len() > MAX_STR {
                    return Err(err(
                        "string exceeds maximum allowed size (proto-max-bulk-len)",
                    ));
                }
                let mut v = std::mem::take(s).into_vec();
                v.extend_from_slice(add);
                let n = v.len();
                *s = v.into();
                n
            }
            _ => return Err(Error::WrongType),
        },
        None => {
            ctx.node.ks.set(db, key, Value::Str(add.into()), false);
            add.len()
        }
    };
    ctx.notify(N::STRING, "append", key);
    ctx.r().int(len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let n = get_str(ctx, key)?.map(|s| s.len()).unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

fn incr_by(ctx: &mut Ctx<'_>, by: i64) -> CmdResult {
    let db = ctx.db();
    let key = ctx.arg(1);
    let resp3 = ctx.client.resp3.get();
    let v = match ctx.node.ks.get_w(db, key) {
        Some(e) => match &mut e.val {
            Value::Str(s) => {
                let cur = parse_int_opt(s).ok_or(Error::NotInt)?;
                let n = cur.checked_add(by).ok_or(Error::Overflow)?;
                let mut buf = [0u8; 24];
                let len = {
                    let mut w = &mut buf[..];
                    let _ = std::io::Write::write_fmt(&mut w, format_args!("{n}"));
                    24 - w.len()
                };
                if s.len() == len {
                    // Same width: rewrite in place, no allocation.
                    s.copy_from_slice(&buf[..len]);
                } else {
                    *s = buf[..len].into();
                }
                n
            }
            _ => return Err(Error::WrongType),
        },
        None => {
            let mut buf = Vec::with_capacity(20);
            crate::resp::push_int(&mut buf, by);
            ctx.node.ks.set(db, key, Value::Str(buf.into()), false);
            by
        }
    };
    crate::notify::notify(ctx.node, ctx.out, N::STRING, "incrby", db, key);
    Reply {
        out: ctx.out,
        resp3,
    }
    .int(v);
    Ok(())
}

fn incr(ctx: &mut Ctx<'_>) -> CmdResult {
    incr_by(ctx, 1)
}

fn decr(ctx: &mut Ctx<'_>) -> CmdResult {
    incr_by(ctx, -1)
}

fn incrby(ctx: &mut Ctx<'_>) -> CmdResult {
    let by = ctx.int(2)?;
    incr_by(ctx, by)
}

fn decrby(ctx: &mut Ctx<'_>) -> CmdResult {
    let by = ctx.int(2)?;
    if by == i64::MIN {
        return Err(err("decrement would overflow"));
    }
    incr_by(ctx, -by)
}

/// INCRBYFLOAT-style formatting (no exponent, shortest round-trip digits).
pub fn fmt_human(d: f64) -> String {
    let s = format!("{d}");
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

fn incrbyfloat(ctx: &mut Ctx<'_>) -> CmdResult {
    let by = ctx.float(2)?;
    let key = ctx.arg(1);
    let db = ctx.db();
    // A write lookup, as Redis's (no hit/miss accounting, no "keymiss" event).
    let cur = match ctx.node.ks.get_w(db, key) {
        Some(e) => match &e.val {
            Value::Str(s) => parse_float_opt(s).ok_or(Error::NotFloat)?,
            _ => return Err(Error::WrongType),
        },
        None => 0.0,
    };
    let n = cur + by;
    if !n.is_finite() {
        return Err(err("increment would produce NaN or Infinity"));
    }
    let s = fmt_human(n);
    let db = ctx.db();
    ctx.node
        .ks
        .set(db, key, Value::Str(s.as_bytes().into()), true);
    ctx.notify(N::STRING, "incrbyfloat", key);
    ctx.r().bulk(s.as_bytes());
    Ok(())
}

fn getrange(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut start = ctx.int(2)?;
    let mut end = ctx.int(3)?;
    let key = ctx.arg(1);
    let Some(s) = get_str(ctx, key)? else {
        ctx.r().bulk(b"");
        return Ok(());
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.r().bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.r().bulk(b"");
        return Ok(());
    }
    let v = s[start as usize..=end as usize].to_vec();
    ctx.r().bulk(&v);
    Ok(())
}

fn setrange(ctx: &mut Ctx<'_>) -> CmdResult {
    let off = ctx.int(2)?;
    if off < 0 {
        return Err(err("offset is out of range"));
    }
    let off = off as usize;
    let (key, val) = (ctx.arg(1), ctx.arg(3));
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    match ctx.node.ks.get_w(db, key) {
        Some(e) => match &mut e.val {
            Value::Str(s) => {
                if val.is_empty() {
                    let n = s.len();
                    ctx.no_dirty = true;
                    Reply {
                        out: ctx.out,
                        resp3,
                    }
                    .int(n as i64);
                    return Ok(());
                }
                if off + val.len() > MAX_STR {
                    return Err(err(
                        "string exceeds maximum allowed size (proto-max-bulk-len)",
                    ));
                }
                let mut v = std::mem::take(s).into_vec();
                if v.len() < off + val.len() {
                    v.resize(off + val.len(), 0);
                }
                v[off..off + val.len()].copy_from_slice(val);
                let n = v.len();
                *s = v.into();
                crate::notify::notify(ctx.node, ctx.out, N::STRING, "setrange", db, key);
                Reply {
                    out: ctx.out,
                    resp3,
                }
                .int(n as i64);
            }
            _ => return Err(Error::WrongType),
        },
        None => {
            if val.is_empty() {
                ctx.no_dirty = true;
                Reply {
                    out: ctx.out,
                    resp3,
                }
                .int(0);
                return Ok(());
            }
            if off + val.len() > MAX_STR {
                return Err(err(
                    "string exceeds maximum allowed size (proto-max-bulk-len)",
                ));
            }
            let mut v = vec![0u8; off + val.len()];
            v[off..].copy_from_slice(val);
            let n = v.len();
            ctx.node.ks.set(db, key, Value::Str(v.into()), false);
            crate::notify::notify(ctx.node, ctx.out, N::STRING, "setrange", db, key);
            Reply {
                out: ctx.out,
                resp3,
            }
            .int(n as i64);
        }
    }
    Ok(())
}

fn lcs(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut getlen = false;
    let mut getidx = false;
    let mut withmatchlen = false;
    let mut minmatchlen: i64 = 0;
    let mut i = 3;
    while i < ctx.argc() {
        if ctx.arg_eq(i, "len") {
            getlen = true;
        } else if ctx.arg_eq(i, "idx") {
            getidx = true;
        } else if ctx.arg_eq(i, "withmatchlen") {
            withmatchlen = true;
        } else if ctx.arg_eq(i, "minmatchlen") && i + 1 < ctx.argc() {
            minmatchlen = ctx.int(i + 1)?.max(0);
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    let (k1, k2) = (ctx.arg(1), ctx.arg(2));
    let a = get_str(ctx, k1)?.map(|s| s.to_vec()).unwrap_or_default();
    let b = get_str(ctx, k2)?.map(|s| s.to_vec()).unwrap_or_default();
    if getlen && getidx {
        return Err(err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    if (a.len() as u64 + 1) * (b.len() as u64 + 1) * 4 > MAX_STR as u64 {
        return Err(err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    let mut dp = vec![0u32; (n + 1) * w];
    for i in 1..=n {
        for j in 1..=m {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[n * w + m] as usize;
    let mut result = vec![0u8; total];
    let mut matches: Vec<((usize, usize), (usize, usize), usize)> = Vec::new();
    let (mut i, mut j) = (n, m);
    let mut idx = total;
    let mut arange: Option<(usize, usize)> = None;
    let mut brange = (0usize, 0usize);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            idx -= 1;
            result[idx] = a[i - 1];
            match arange {
                None => {
                    arange = Some((i - 1, i - 1));
                    brange = (j - 1, j - 1);
                }
                Some((s, e)) => {
                    if s == i && brange.0 == j {
                        arange = Some((i - 1, e));
                        brange.0 = j - 1;
                    } else {
                        emit = true;
                    }
                }
            }
            if i == 1 || j == 1 {
                emit = true;
            }
            if !emit {
                i -= 1;
                j -= 1;
                continue;
            }
            if let Some(r) = arange {
                if emit && (r.0 != i - 1 || brange.0 != j - 1) {
                    // Current char starts a new range; emit the old one first.
                    let len = r.1 - r.0 + 1;
                    if len as i64 >= minmatchlen {
                        matches.push((r, brange, len));
                    }
                    arange = Some((i - 1, i - 1));
                    brange = (j - 1, j - 1);
                    if i == 1 || j == 1 {
                        let len = 1;
                        if len as i64 >= minmatchlen {
                            matches.push(((i - 1, i - 1), (j - 1, j - 1), 1));
                        }
                        arange = None;
                    }
                } else {
                    let len = r.1 - r.0 + 1;
                    if len as i64 >= minmatchlen {
                        matches.push((r, brange, len));
                    }
                    arange = None;
                }
            }
            i -= 1;
            j -= 1;
        } else {
            if let Some(r) = arange.take() {
                let len = r.1 - r.0 + 1;
                if len as i64 >= minmatchlen {
                    matches.push((r, brange, len));
                }
            }
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
        }
    }
    if let Some(r) = arange {
        let len = r.1 - r.0 + 1;
        if len as i64 >= minmatchlen {
            matches.push((r, brange, len));
        }
    }
    let mut r = ctx.r();
    if getidx {
        r.map(2);
        r.bulk(b"matches");
        r.array(matches.len());
        for (ar, br, len) in matches {
            r.array(if withmatchlen { 3 } else { 2 });
            r.array(2);
            r.int(ar.0 as i64);
            r.int(ar.1 as i64);
            r.array(2);
            r.int(br.0 as i64);
            r.int(br.1 as i64);
            if withmatchlen {
                r.int(len as i64);
            }
        }
        r.bulk(b"len");
        r.int(total as i64);
    } else if getlen {
        r.int(total as i64);
    } else {
        r.bulk(&result);
    }
    Ok(())
}
