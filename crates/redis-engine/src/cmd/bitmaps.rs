//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.

use super::server::cmd;
use super::strings::get_str;
use super::*;
use crate::db::Value;

const K1: Keys = Keys::Range(1, 1, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "setbit",
        4,
        "write denyoom",
        "@write @bitmap @slow",
        K1,
        setbit
    ),
    cmd!(
        "getbit",
        3,
        "readonly fast",
        "@read @bitmap @fast",
        K1,
        getbit
    ),
    cmd!(
        "bitcount",
        -2,
        "readonly",
        "@read @bitmap @slow",
        K1,
        bitcount
    ),
    cmd!("bitpos", -3, "readonly", "@read @bitmap @slow", K1, bitpos),
    cmd!(
        "bitop",
        -4,
        "write denyoom",
        "@write @bitmap @slow",
        Keys::Range(2, -1, 1),
        bitop
    ),
    cmd!(
        "bitfield",
        -2,
        "write denyoom",
        "@write @bitmap @slow",
        K1,
        bitfield
    ),
    cmd!(
        "bitfield_ro",
        -2,
        "readonly fast",
        "@read @bitmap @fast",
        K1,
        bitfield_ro
    ),
];

fn bit_offset(b: &[u8], hash_ok: bool, width: u64) -> Result<u64, Error> {
    let e = || err("bit offset is not an integer or out of range");
    let (mul, s) = match b.strip_prefix(b"#") {
        Some(r) if hash_ok => (width, r),
        _ => (1, b),
    };
    let v = parse_int_opt(s).ok_or_else(e)?;
    if v < 0 {
        return Err(e());
    }
    let v = (v as u64).checked_mul(mul).ok_or_else(e)?;
    if v >= 512 * 1024 * 1024 * 8 {
        return Err(e());
    }
    Ok(v)
}

/// Mutable string at key (created empty when missing), WRONGTYPE otherwise.
fn str_mut<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
) -> Result<&'a mut crate::small::SmallBytes, Error> {
    let db = ctx.db();
    let e = ctx
        .node
        .ks
        .get_or_create(db, key, || Value::Str(Default::default()));
    match &mut e.val {
        Value::Str(s) => Ok(s),
        _ => Err(Error::WrongType),
    }
}

fn grow(s: &mut crate::small::SmallBytes, bytes: usize) {
    if s.len() < bytes {
        let mut v = std::mem::take(s).into_vec();
        v.resize(bytes, 0);
        *s = v.into();
    }
}

fn setbit(ctx: &mut Ctx<'_>) -> CmdResult {
    let off = bit_offset(ctx.arg(2), false, 1)?;
    let bit = match ctx.arg(3) {
        b"1" => 1u8,
        b"0" => 0u8,
        _ => return Err(err("bit is not an integer or out of range")),
    };
    let key = ctx.arg(1);
    // Type check before creating.
    let db = ctx.db();
    if let Some(e) = ctx.node.ks.get_w(db, key) {
        if !matches!(e.val, Value::Str(_)) {
            return Err(Error::WrongType);
        }
    }
    let s = str_mut(ctx, key)?;
    let byte = (off >> 3) as usize;
    grow(s, byte + 1);
    let mask = 1u8 << (7 - (off & 7));
    let old = (s[byte] & mask != 0) as i64;
    if bit == 1 {
        s[byte] |= mask;
    } else {
        s[byte] &= !mask;
    }
    ctx.notify(crate::notify::STRING, "setbit", key);
    ctx.r().int(old);
    Ok(())
}

fn getbit(ctx: &mut Ctx<'_>) -> CmdResult {
    let off = bit_offset(ctx.arg(2), false, 1)?;
    let key = ctx.arg(1);
    let v = get_str(ctx, key)?.map(|s| {
        let byte = (off >> 3) as usize;
        byte < s.len() && s[byte] & (1 << (7 - (off & 7))) != 0
    });
    ctx.r().int(v.unwrap_or(false) as i64);
    Ok(())
}

fn bit_at(s: &[u8], i: u64) -> bool {
    s[(i >> 3) as usize] & (1 << (7 - (i & 7))) != 0
}

/// Normalize a (start, end) pair over `total`; None when the range is empty.
fn norm(mut start: i64, mut end: i64, total: i64) -> Option<(i64, i64)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end || total == 0 {
        None
    } else {
        Some((start, end))
    }
}

fn bit_mode(ctx: &Ctx<'_>, i: usize) -> Result<bool, Error> {
    if ctx.arg_eq(i, "bit") {
        Ok(true)
    } else if ctx.arg_eq(i, "byte") {
        Ok(false)
    } else {
        Err(Error::Syntax)
    }
}

fn bitcount(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let argc = ctx.argc();
    let Some(s) = get_str(ctx, key)?.map(|s| s.to_vec()) else {
        ctx.r().int(0);
        return Ok(());
    };
    let n = match argc {
        2 => s.iter().map(|b| b.count_ones() as i64).sum(),
        4 | 5 => {
            let (a, b) = (ctx.int(2)?, ctx.int(3)?);
            let bits = argc == 5 && bit_mode(ctx, 4)?;
            let total = if bits {
                s.len() as i64 * 8
            } else {
                s.len() as i64
            };
            match norm(a, b, total) {
                None => 0,
                Some((a, b)) => {
                    if bits {
                        (a..=b).filter(|&i| bit_at(&s, i as u64)).count() as i64
                    } else {
                        s[a as usize..=b as usize]
                            .iter()
                            .map(|x| x.count_ones() as i64)
                            .sum()
                    }
                }
            }
        }
        _ => return Err(Error::Syntax),
    };
    ctx.r().int(n);
    Ok(())
}

fn bitpos(ctx: &mut Ctx<'_>) -> CmdResult {
    let bit = ctx.int(2)?;
    if bit != 0 && bit != 1 {
        return Err(err("The bit argument must be 1 or 0."));
    }
    let want = bit == 1;
    let key = ctx.arg(1);
    let argc = ctx.argc();
    let Some(s) = get_str(ctx, key)?.map(|s| s.to_vec()) else {
        ctx.r().int(if want { -1 } else { 0 });
        return Ok(());
    };
    if argc > 6 {
        return Err(Error::Syntax);
    }
    let start = if argc >= 4 { ctx.int(3)? } else { 0 };
    let end_given = argc >= 5;
    let end = if end_given { ctx.int(4)? } else { -1 };
    let bits = argc == 6 && bit_mode(ctx, 5)?;
    let total = if bits {
        s.len() as i64 * 8
    } else {
        s.len() as i64
    };
    let Some((a, b)) = norm(start, end, total) else {
        ctx.r().int(-1);
        return Ok(());
    };
    let (lo, hi) = if bits {
        (a as u64, b as u64)
    } else {
        (a as u64 * 8, b as u64 * 8 + 7)
    };
    let mut found = -1i64;
    for i in lo..=hi {
        if bit_at(&s, i) == want {
            found = i as i64;
            break;
        }
    }
    if found < 0 && !want && !end_given {
        found = hi as i64 + 1;
    }
    ctx.r().int(found);
    Ok(())
}

fn bitop(ctx: &mut Ctx<'_>) -> CmdResult {
    let op = ctx.arg(1).to_ascii_lowercase();
    if !matches!(op.as_slice(), b"and" | b"or" | b"xor" | b"not") {
        return Err(Error::Syntax);
    }
    if op == b"not" && ctx.argc() != 4 {
        return Err(err("BITOP NOT must be called with a single source key."));
    }
    let mut srcs: Vec<Vec<u8>> = Vec::new();
    for i in 3..ctx.argc() {
        let k = ctx.arg(i);
        srcs.push(get_str(ctx, k)?.map(|s| s.to_vec()).unwrap_or_default());
    }
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    for (j, r) in res.iter_mut().enumerate() {
        let get = |s: &Vec<u8>| s.get(j).copied().unwrap_or(0);
        *r = match op.as_slice() {
            b"not" => !get(&srcs[0]),
            b"and" => srcs.iter().fold(0xff, |a, s| a & get(s)),
            b"or" => srcs.iter().fold(0, |a, s| a | get(s)),
            _ => srcs.iter().fold(0, |a, s| a ^ get(s)),
        };
    }
    let db = ctx.db();
    let dst = ctx.arg(2);
    if res.is_empty() {
        if ctx.node.ks.del(db, dst) {
            ctx.notify(crate::notify::GENERIC, "del", dst);
        }
    } else {
        ctx.node.ks.set(db, dst, Value::Str(res.into()), false);
        ctx.notify(crate::notify::STRING, "set", dst);
    }
    ctx.r().int(maxlen as i64);
    Ok(())
}

#[derive(Clone, Copy)]
struct FieldType {
    signed: bool,
    bits: u32,
}

fn parse_type(b: &[u8]) -> Result<FieldType, Error> {
    let e = || {
        err("Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
    };
    let signed = match b.first() {
        Some(b'i') | Some(b'I') => true,
        Some(b'u') | Some(b'U') => false,
        _ => return Err(e()),
    };
    let bits = parse_int_opt(&b[1..]).ok_or_else(e)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(e());
    }
    Ok(FieldType {
        signed,
        bits: bits as u32,
    })
}

fn read_field(s: &[u8], off: u64, t: FieldType) -> i64 {
    let mut v: u64 = 0;
    for i in 0..t.bits as u64 {
        let idx = off + i;
        let byte = (idx >> 3) as usize;
        let b = byte < s.len() && s[byte] & (1 << (7 - (idx & 7))) != 0;
        v = (v << 1) | b as u64;
    }
    if t.signed && t.bits < 64 && v & (1 << (t.bits - 1)) != 0 {
        (v | (!0u64 << t.bits)) as i64
    } else {
        v as i64
    }
}

fn write_field(s: &mut crate::small::SmallBytes, off: u64, t: FieldType, v: i64) {
    grow(s, ((off + t.bits as u64 + 7) >> 3) as usize);
    let v = v as u64;
    for i in 0..t.bits as u64 {
        let bit = (v >> (t.bits as u64 - 1 - i)) & 1;
        let idx = off + i;
        let byte = (idx >> 3) as usize;
        let mask = 1u8 << (7 - (idx & 7));
        if bit == 1 {
            s[byte] |= mask;
        } else {
            s[byte] &= !mask;
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// Apply overflow rules; None when FAIL triggers.
fn overflow(t: FieldType, value: i128, ov: Overflow) -> Option<i64> {
    let (min, max): (i128, i128) = if t.signed {
        (-(1i128 << (t.bits - 1)), (1i128 << (t.bits - 1)) - 1)
    } else {
        (0, (1i128 << t.bits) - 1)
    };
    if value >= min && value <= max {
        return Some(value as i64);
    }
    match ov {
        Overflow::Fail => None,
        Overflow::Sat => Some(if value > max { max as i64 } else { min as i64 }),
        Overflow::Wrap => {
            let m = 1i128 << t.bits;
            let mut w = value.rem_euclid(m);
            if t.signed && w > max {
                w -= m;
            }
            Some(w as i64)
        }
    }
}

enum Op {
    Get(FieldType, u64),
    Set(FieldType, u64, i64),
    Incr(FieldType, u64, i64),
    Ov(Overflow),
}

fn bitfield_generic(ctx: &mut Ctx<'_>, ro: bool) -> CmdResult {
    let mut ops = Vec::new();
    let mut i = 2;
    let mut writes = false;
    while i < ctx.argc() {
        let left = ctx.argc() - i - 1;
        if ctx.arg_eq(i, "get") && left >= 2 {
            let t = parse_type(ctx.arg(i + 1))?;
            ops.push(Op::Get(t, bit_offset(ctx.arg(i + 2), true, t.bits as u64)?));
            i += 3;
        } else if (ctx.arg_eq(i, "set") || ctx.arg_eq(i, "incrby")) && left >= 3 {
            if ro {
                return Err(err("BITFIELD_RO only supports the GET subcommand"));
            }
            let t = parse_type(ctx.arg(i + 1))?;
            let off = bit_offset(ctx.arg(i + 2), true, t.bits as u64)?;
            let v = ctx.int(i + 3)?;
            writes = true;
            ops.push(if ctx.arg_eq(i, "set") {
                Op::Set(t, off, v)
            } else {
                Op::Incr(t, off, v)
            });
            i += 4;
        } else if ctx.arg_eq(i, "overflow") && left >= 1 {
            if ro {
                return Err(err("BITFIELD_RO only supports the GET subcommand"));
            }
            let o = if ctx.arg_eq(i + 1, "wrap") {
                Overflow::Wrap
            } else if ctx.arg_eq(i + 1, "sat") {
                Overflow::Sat
            } else if ctx.arg_eq(i + 1, "fail") {
                Overflow::Fail
            } else {
                return Err(err("Invalid OVERFLOW type specified"));
            };
            ops.push(Op::Ov(o));
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let key = ctx.arg(1);
    let db = ctx.db();
    let mut results: Vec<Option<i64>> = Vec::new();
    if !writes {
        let s = get_str(ctx, key)?.map(|s| s.to_vec()).unwrap_or_default();
        for op in &ops {
            if let Op::Get(t, off) = op {
                results.push(Some(read_field(&s, *off, *t)));
            }
        }
        ctx.no_dirty = true;
    } else {
        if let Some(e) = ctx.node.ks.get_w(db, key) {
            if !matches!(e.val, Value::Str(_)) {
                return Err(Error::WrongType);
            }
        }
        let s = str_mut(ctx, key)?;
        let mut ov = Overflow::Wrap;
        let mut changes = 0;
        for op in &ops {
            match *op {
                Op::Ov(o) => ov = o,
                Op::Get(t, off) => results.push(Some(read_field(s, off, t))),
                Op::Set(t, off, v) => {
                    let old = read_field(s, off, t);
                    match overflow(t, v as i128, ov) {
                        Some(nv) => {
                            write_field(s, off, t, nv);
                            results.push(Some(old));
                            changes += 1;
                        }
                        None => results.push(None),
                    }
                }
                Op::Incr(t, off, by) => {
                    let old = read_field(s, off, t);
                    match overflow(t, old as i128 + by as i128, ov) {
                        Some(nv) => {
                            write_field(s, off, t, nv);
                            results.push(Some(nv));
                            changes += 1;
                        }
                        None => results.push(None),
                    }
                }
            }
        }
        // Redis notifies after the replies.
        let mut r = ctx.r();
        r.array(results.len());
        for v in &results {
            match v {
                Some(v) => r.int(*v),
                None => r.null(),
            }
        }
        if changes > 0 {
            ctx.notify(crate::notify::STRING, "setbit", key);
        }
        return Ok(());
    }
    let mut r = ctx.r();
    r.array(results.len());
    for v in results {
        match v {
            Some(v) => r.int(v),
            None => r.null(),
        }
    }
    Ok(())
}

fn bitfield(ctx: &mut Ctx<'_>) -> CmdResult {
    bitfield_generic(ctx, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>) -> CmdResult {
    bitfield_generic(ctx, true)
}
