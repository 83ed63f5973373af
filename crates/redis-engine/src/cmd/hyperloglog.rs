//! HyperLogLog commands over `crate::hll`, and DUMP/RESTORE over the `rdb` crate.

use super::server::cmd;
use super::*;
use crate::db::Value;
use crate::hll;

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "pfadd",
        -2,
        "write denyoom fast",
        "@write @hyperloglog @fast",
        Keys::Range(1, 1, 1),
        pfadd
    ),
    cmd!(
        "pfcount",
        -2,
        "readonly may_replicate",
        "@read @hyperloglog @slow",
        Keys::Range(1, -1, 1),
        pfcount
    ),
    cmd!(
        "pfmerge",
        -2,
        "write denyoom",
        "@write @hyperloglog @slow",
        Keys::Range(1, -1, 1),
        pfmerge
    ),
    cmd!(
        "dump",
        2,
        "readonly",
        "@keyspace @read @slow",
        Keys::Range(1, 1, 1),
        dump
    ),
    cmd!(
        "restore",
        -4,
        "write denyoom",
        "@keyspace @write @slow @dangerous",
        Keys::Range(1, 1, 1),
        restore
    ),
];

fn hll_err(e: hll::HllError) -> Error {
    Error::Raw(e.redis_message().to_string())
}

/// The string at `key` as an owned Vec (empty when missing); WRONGTYPE for other types.
fn take_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let db = ctx.db();
    match ctx.node.ks.get_w(db, key) {
        None => Ok(None),
        Some(e) => match &e.val {
            Value::Str(s) => Ok(Some(s.to_vec())),
            _ => Err(Error::WrongType),
        },
    }
}

/// `take_string` after a read lookup (Redis's lookupKeyRead: hit/miss stats, "keymiss").
fn take_string_read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let db = ctx.db();
    let _ = ctx.node.ks.get(db, key);
    take_string(ctx, key)
}

fn store_string(ctx: &mut Ctx<'_>, key: &[u8], v: Vec<u8>) {
    let db = ctx.db();
    match ctx.node.ks.get_w(db, key) {
        Some(e) => e.val = Value::Str(v.into()),
        None => ctx.node.ks.set(db, key, Value::Str(v.into()), false),
    }
}

fn pfadd(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let mut v = take_string(ctx, key)?.unwrap_or_default();
    let elems: Vec<&[u8]> = (2..ctx.argc()).map(|i| ctx.arg(i)).collect();
    let changed = hll::pfadd(&mut v, &elems).map_err(hll_err)?;
    if changed {
        store_string(ctx, key, v);
        ctx.notify(crate::notify::STRING, "pfadd", key);
    } else {
        ctx.no_dirty = true;
    }
    ctx.r().int(changed as i64);
    Ok(())
}

fn pfcount(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.argc() == 2 {
        let key = ctx.arg(1);
        let Some(mut v) = take_string(ctx, key)? else {
            ctx.no_dirty = true;
            ctx.r().int(0);
            return Ok(());
        };
        let (c, modified) = hll::pfcount_ext(&mut v).map_err(hll_err)?;
        if modified {
            store_string(ctx, key, v);
        } else {
            ctx.no_dirty = true;
        }
        ctx.r().int(c as i64);
        return Ok(());
    }
    let mut vals = Vec::new();
    for i in 1..ctx.argc() {
        let k = ctx.arg(i);
        if let Some(v) = take_string_read(ctx, k)? {
            vals.push(v);
        }
    }
    let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
    let c = hll::pfcount_many(&refs).map_err(hll_err)?;
    ctx.no_dirty = true;
    ctx.r().int(c as i64);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx<'_>) -> CmdResult {
    let dst = ctx.arg(1);
    let mut dv = take_string_read(ctx, dst)?.unwrap_or_default();
    let mut srcs = Vec::new();
    for i in 2..ctx.argc() {
        let k = ctx.arg(i);
        if k == dst {
            continue;
        }
        if let Some(v) = take_string_read(ctx, k)? {
            srcs.push(v);
        }
    }
    let refs: Vec<&[u8]> = srcs.iter().map(|v| v.as_slice()).collect();
    hll::pfmerge(&mut dv, &refs).map_err(hll_err)?;
    store_string(ctx, dst, dv);
    ctx.notify(crate::notify::STRING, "pfadd", dst);
    ctx.r().ok();
    Ok(())
}

/// Our value → the rdb crate's value.
pub fn to_rdb(v: &Value) -> rdb::Value {
    use bytes::Bytes;
    match v {
        Value::Str(s) => rdb::Value::String(Bytes::copy_from_slice(s)),
        Value::List(l) => rdb::Value::List(l.iter().map(|e| Bytes::copy_from_slice(e)).collect()),
        Value::Set(s) => rdb::Value::Set(s.iter().map(|e| Bytes::copy_from_slice(e)).collect()),
        Value::Hash(h) => rdb::Value::Hash(
            h.iter()
                .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
                .collect(),
        ),
        Value::ZSet(z) => rdb::Value::SortedSet(
            z.tree
                .iter()
                .map(|(s, m)| (Bytes::copy_from_slice(m), s.0))
                .collect(),
        ),
        Value::Stream(s) => rdb::Value::Stream(Box::new(s.to_rdb())),
    }
}

/// The rdb crate's value → ours (None for types this engine does not have yet).
pub fn from_rdb(v: rdb::Value) -> Option<Value> {
    Some(match v {
        rdb::Value::String(s) => Value::Str(s.to_vec().into()),
        rdb::Value::List(l) => {
            Value::List(Box::new(l.iter().map(|e| Blob::from(&e[..])).collect()))
        }
        rdb::Value::Set(s) => Value::Set(Box::new(s.iter().map(|e| Blob::from(&e[..])).collect())),
        rdb::Value::Hash(h) => Value::Hash(Box::new(
            h.iter()
                .map(|(k, v)| (Blob::from(&k[..]), Blob::from(&v[..])))
                .collect(),
        )),
        rdb::Value::SortedSet(z) => {
            let mut zs = crate::db::ZSet::default();
            for (m, s) in z {
                zs.insert(&m, s);
            }
            Value::ZSet(Box::new(zs))
        }
        rdb::Value::Stream(s) => {
            Value::Stream(Box::new(crate::cmd::streams::Stream::from_rdb(&s)?))
        }
    })
}

fn dump(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let key = ctx.arg(1);
    let payload = ctx.node.ks.get(db, key).map(|e| rdb::dump(&to_rdb(&e.val)));
    match payload {
        Some(p) => ctx.r().bulk(&p),
        None => ctx.r().null(),
    }
    Ok(())
}

fn restore(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut replace = false;
    let mut absttl = false;
    let mut i = 4;
    while i < ctx.argc() {
        if ctx.arg_eq(i, "replace") {
            replace = true;
        } else if ctx.arg_eq(i, "absttl") {
            absttl = true;
        } else if (ctx.arg_eq(i, "idletime") || ctx.arg_eq(i, "freq")) && i + 1 < ctx.argc() {
            let v = ctx.int(i + 1)?;
            if v < 0 {
                return Err(err(if ctx.arg_eq(i, "idletime") {
                    "Invalid IDLETIME value, must be >= 0"
                } else {
                    "Invalid FREQ value, must be >= 0 and <= 255"
                }));
            }
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    let ttl = ctx.int(2)?;
    if ttl < 0 {
        return Err(err("Invalid TTL value, must be >= 0"));
    }
    let db = ctx.db();
    let key = ctx.arg(1);
    if !replace && ctx.node.ks.exists(db, key) {
        return Err(Error::Raw("BUSYKEY Target key name already exists.".into()));
    }
    let v = rdb::restore(ctx.arg(3)).map_err(|e| Error::Raw(e.restore_reply().into()))?;
    let v = from_rdb(v).ok_or_else(|| err("Bad data format"))?;
    let now = ctx.now() as i64;
    let at = if ttl == 0 {
        None
    } else if absttl {
        Some(ttl)
    } else {
        Some(now.saturating_add(ttl))
    };
    let deleted = ctx.node.ks.del(db, key);
    if at.is_some_and(|t| t <= now) {
        // Already expired: Redis deletes (or does not create) the key.
        if deleted {
            ctx.notify(crate::notify::GENERIC, "del", key);
        }
        ctx.r().ok();
        return Ok(());
    }
    ctx.node.ks.set(db, key, v, false);
    if let Some(t) = at {
        ctx.node.ks.set_expire(db, key, t as u64);
    }
    ctx.notify(crate::notify::GENERIC, "restore", key);
    ctx.r().ok();
    Ok(())
}
