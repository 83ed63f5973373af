//! Sorted set commands.

use std::ops::Bound;

use super::hashes::rand_indices;
use super::keys::{parse_cursor, parse_scan_opts};
use super::lists::norm_range;
use super::server::cmd;
use super::*;
use crate::db::{Score, Value, ZSet};
use crate::notify as N;

const K1: Keys = Keys::Range(1, 1, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "zadd",
        -4,
        "write denyoom fast",
        "@write @sortedset @fast",
        K1,
        zadd
    ),
    cmd!(
        "zincrby",
        4,
        "write denyoom fast",
        "@write @sortedset @fast",
        K1,
        zincrby
    ),
    cmd!(
        "zrem",
        -3,
        "write fast",
        "@write @sortedset @fast",
        K1,
        zrem
    ),
    cmd!(
        "zcard",
        2,
        "readonly fast",
        "@read @sortedset @fast",
        K1,
        zcard
    ),
    cmd!(
        "zscore",
        3,
        "readonly fast",
        "@read @sortedset @fast",
        K1,
        zscore
    ),
    cmd!(
        "zmscore",
        -3,
        "readonly fast",
        "@read @sortedset @fast",
        K1,
        zmscore
    ),
    cmd!(
        "zrank",
        3,
        "readonly fast",
        "@read @sortedset @fast",
        K1,
        zrank
    ),
    cmd!(
        "zrevrank",
        3,
        "readonly fast",
        "@read @sortedset @fast",
        K1,
        zrevrank
    ),
    cmd!(
        "zcount",
        4,
        "readonly fast",
        "@read @sortedset @fast",
        K1,
        zcount
    ),
    cmd!(
        "zlexcount",
        4,
        "readonly fast",
        "@read @sortedset @fast",
        K1,
        zlexcount
    ),
    cmd!(
        "zrange",
        -4,
        "readonly",
        "@read @sortedset @slow",
        K1,
        zrange
    ),
    cmd!(
        "zrangestore",
        -5,
        "write denyoom",
        "@write @sortedset @slow",
        Keys::Range(1, 2, 1),
        zrangestore
    ),
    cmd!(
        "zrevrange",
        -4,
        "readonly",
        "@read @sortedset @slow",
        K1,
        zrevrange
    ),
    cmd!(
        "zrangebyscore",
        -4,
        "readonly",
        "@read @sortedset @slow",
        K1,
        zrangebyscore
    ),
    cmd!(
        "zrevrangebyscore",
        -4,
        "readonly",
        "@read @sortedset @slow",
        K1,
        zrevrangebyscore
    ),
    cmd!(
        "zrangebylex",
        -4,
        "readonly",
        "@read @sortedset @slow",
        K1,
        zrangebylex
    ),
    cmd!(
        "zrevrangebylex",
        -4,
        "readonly",
        "@read @sortedset @slow",
        K1,
        zrevrangebylex
    ),
    cmd!(
        "zremrangebyrank",
        4,
        "write",
        "@write @sortedset @slow",
        K1,
        zremrangebyrank
    ),
    cmd!(
        "zremrangebyscore",
        4,
        "write",
        "@write @sortedset @slow",
        K1,
        zremrangebyscore
    ),
    cmd!(
        "zremrangebylex",
        4,
        "write",
        "@write @sortedset @slow",
        K1,
        zremrangebylex
    ),
    cmd!(
        "zpopmin",
        -2,
        "write fast",
        "@write @sortedset @fast",
        K1,
        zpopmin
    ),
    cmd!(
        "zpopmax",
        -2,
        "write fast",
        "@write @sortedset @fast",
        K1,
        zpopmax
    ),
    cmd!(
        "bzpopmin",
        -3,
        "write noscript blocking fast",
        "@write @sortedset @fast @blocking",
        Keys::Range(1, -2, 1),
        bzpopmin
    ),
    cmd!(
        "bzpopmax",
        -3,
        "write noscript blocking fast",
        "@write @sortedset @fast @blocking",
        Keys::Range(1, -2, 1),
        bzpopmax
    ),
    cmd!(
        "zmpop",
        -4,
        "write",
        "@write @sortedset @slow",
        Keys::NumKeys(1),
        zmpop
    ),
    cmd!(
        "bzmpop",
        -5,
        "write blocking",
        "@write @sortedset @slow @blocking",
        Keys::NumKeys(2),
        bzmpop
    ),
    cmd!(
        "zrandmember",
        -2,
        "readonly",
        "@read @sortedset @slow",
        K1,
        zrandmember
    ),
    cmd!(
        "zunion",
        -3,
        "readonly",
        "@read @sortedset @slow",
        Keys::NumKeys(1),
        zunion
    ),
    cmd!(
        "zinter",
        -3,
        "readonly",
        "@read @sortedset @slow",
        Keys::NumKeys(1),
        zinter
    ),
    cmd!(
        "zdiff",
        -3,
        "readonly",
        "@read @sortedset @slow",
        Keys::NumKeys(1),
        zdiff
    ),
    cmd!(
        "zunionstore",
        -4,
        "write denyoom",
        "@write @sortedset @slow",
        Keys::DestNumKeys(2),
        zunionstore
    ),
    cmd!(
        "zinterstore",
        -4,
        "write denyoom",
        "@write @sortedset @slow",
        Keys::DestNumKeys(2),
        zinterstore
    ),
    cmd!(
        "zdiffstore",
        -4,
        "write denyoom",
        "@write @sortedset @slow",
        Keys::DestNumKeys(2),
        zdiffstore
    ),
    cmd!(
        "zintercard",
        -3,
        "readonly",
        "@read @sortedset @slow",
        Keys::NumKeys(1),
        zintercard
    ),
    cmd!("zscan", -3, "readonly", "@read @sortedset @slow", K1, zscan),
];

pub(crate) fn zadd(ctx: &mut Ctx<'_>) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 2;
    while i < ctx.argc() {
        let a = ctx.arg(i).to_ascii_lowercase();
        match a.as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            b"ch" => ch = true,
            b"incr" => incr = true,
            _ => break,
        }
        i += 1;
    }
    let rest = ctx.argc() - i;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Err(Error::Syntax);
    }
    if nx && xx {
        return Err(err("XX and NX options at the same time are not compatible"));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && rest > 2 {
        return Err(err("INCR option supports a single increment-element pair"));
    }
    let mut pairs = Vec::with_capacity(rest / 2);
    for j in (i..ctx.argc()).step_by(2) {
        pairs.push((ctx.float(j)?, ctx.args.get(j + 1)));
    }
    let db = ctx.db();
    let key = ctx.args.get(1);
    let resp3 = ctx.client.resp3.get();
    if xx && !ctx.node.ks.exists(db, key) {
        // Type check only.
        let _ = typed!(ctx.node.ks, db, key, ZSet, get_w);
        ctx.no_dirty = true;
        let mut r = Reply {
            out: ctx.out,
            resp3,
        };
        if incr {
            r.null();
        } else {
            r.int(0);
        }
        return Ok(());
    }
    let z = typed_create!(ctx.node.ks, db, key, ZSet);
    let (mut added, mut changed) = (0, 0);
    let mut incr_result: Option<f64> = None;
    for (score, m) in pairs {
        match z.score(m) {
            Some(cur) => {
                if nx {
                    continue;
                }
                let new = if incr { cur + score } else { score };
                if new.is_nan() {
                    ctx.node.ks.drop_if_empty(db, key);
                    return Err(err("resulting score is not a number (NaN)"));
                }
                if (gt && new <= cur) || (lt && new >= cur) {
                    continue;
                }
                if new != cur {
                    z.insert(m, new);
                    changed += 1;
                }
                incr_result = Some(new);
            }
            None => {
                if xx {
                    continue;
                }
                z.insert(m, score);
                added += 1;
                incr_result = Some(score);
            }
        }
    }
    ctx.node.ks.drop_if_empty(db, key);
    if added + changed == 0 {
        ctx.no_dirty = true;
    }
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    if incr {
        match incr_result {
            Some(s) => r.double(s),
            None => r.null(),
        }
    } else {
        r.int(if ch { added + changed } else { added });
    }
    if added + changed > 0 {
        ctx.notify(N::ZSET, if incr { "zincr" } else { "zadd" }, key);
    }
    Ok(())
}

fn zincrby(ctx: &mut Ctx<'_>) -> CmdResult {
    let by = ctx.float(2)?;
    let db = ctx.db();
    let (key, m) = (ctx.args.get(1), ctx.args.get(3));
    let z = typed_create!(ctx.node.ks, db, key, ZSet);
    let new = z.score(m).unwrap_or(0.0) + by;
    if new.is_nan() {
        ctx.node.ks.drop_if_empty(db, key);
        return Err(err("resulting score is not a number (NaN)"));
    }
    let changed = z.score(m) != Some(new);
    z.insert(m, new);
    ctx.r().double(new);
    if changed {
        ctx.notify(N::ZSET, "zincr", key);
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let key = ctx.args.get(1);
    let mut n = 0;
    if let Some(z) = typed!(ctx.node.ks, db, key, ZSet, get_w) {
        for i in 2..ctx.args.len() {
            if z.remove(ctx.args.get(i)) {
                n += 1;
            }
        }
    }
    if n == 0 {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::ZSET, "zrem", key);
        ctx.drop_if_empty_notify(key);
    }
    ctx.r().int(n);
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let n = typed!(ctx.node.ks, db, ctx.args.get(1), ZSet, get)
        .map(|z| z.len())
        .unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let m = ctx.args.get(2);
    let s = typed!(ctx.node.ks, db, ctx.args.get(1), ZSet, get).and_then(|z| z.score(m));
    match s {
        Some(s) => ctx.r().double(s),
        None => ctx.r().null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>) -> CmdResult {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let z = typed!(ctx.node.ks, db, ctx.args.get(1), ZSet, get);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(ctx.args.len() - 2);
    for i in 2..ctx.args.len() {
        match z.as_ref().and_then(|z| z.score(ctx.args.get(i))) {
            Some(s) => r.double(s),
            None => r.null(),
        }
    }
    Ok(())
}

fn rank_generic(ctx: &mut Ctx<'_>, rev: bool) -> CmdResult {
    let db = ctx.db();
    let m = ctx.args.get(2);
    let rk = typed!(ctx.node.ks, db, ctx.args.get(1), ZSet, get)
        .and_then(|z| z.rank(m).map(|r| if rev { z.len() - 1 - r } else { r }));
    match rk {
        Some(r) => ctx.r().int(r as i64),
        None => ctx.r().null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>) -> CmdResult {
    rank_generic(ctx, false)
}
fn zrevrank(ctx: &mut Ctx<'_>) -> CmdResult {
    rank_generic(ctx, true)
}

#[derive(Clone, Copy)]
pub struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }
    fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

fn parse_score_bound(b: &[u8]) -> Option<(f64, bool)> {
    if let Some(rest) = b.strip_prefix(b"(") {
        parse_float_opt(rest).map(|v| (v, true))
    } else {
        parse_float_opt(b).map(|v| (v, false))
    }
}

pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Error> {
    let e = || err("min or max is not a float");
    let (min, minex) = parse_score_bound(min).ok_or_else(e)?;
    let (max, maxex) = parse_score_bound(max).ok_or_else(e)?;
    Ok(ScoreRange {
        min,
        minex,
        max,
        maxex,
    })
}

#[derive(Clone)]
enum LexBound {
    NegInf,
    PosInf,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

#[derive(Clone)]
pub struct LexRange {
    min: LexBound,
    max: LexBound,
}

fn parse_lex_bound(b: &[u8]) -> Option<LexBound> {
    match b.first() {
        Some(b'-') if b.len() == 1 => Some(LexBound::NegInf),
        Some(b'+') if b.len() == 1 => Some(LexBound::PosInf),
        Some(b'[') => Some(LexBound::Incl(b[1..].to_vec())),
        Some(b'(') => Some(LexBound::Excl(b[1..].to_vec())),
        _ => None,
    }
}

pub fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Error> {
    let e = || err("min or max not valid string range item");
    Ok(LexRange {
        min: parse_lex_bound(min).ok_or_else(e)?,
        max: parse_lex_bound(max).ok_or_else(e)?,
    })
}

impl LexRange {
    fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(v) => m >= v.as_slice(),
            LexBound::Excl(v) => m > v.as_slice(),
        }
    }
    fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(v) => m <= v.as_slice(),
            LexBound::Excl(v) => m < v.as_slice(),
        }
    }
}

fn score_iter<'a>(
    z: &'a ZSet,
    r: ScoreRange,
    rev: bool,
) -> Box<dyn Iterator<Item = &'a (Score, Blob)> + 'a> {
    if rev {
        Box::new(
            z.tree
                .iter()
                .rev()
                .skip_while(move |(s, _)| !r.lte_max(s.0))
                .take_while(move |(s, _)| r.gte_min(s.0)),
        )
    } else {
        let lo: (Bound<(Score, Blob)>, Bound<(Score, Blob)>) =
            if r.min.is_finite() || r.min == f64::NEG_INFINITY {
                (
                    Bound::Included((Score(r.min), Blob::default())),
                    Bound::Unbounded,
                )
            } else {
                (Bound::Unbounded, Bound::Unbounded)
            };
        Box::new(
            z.tree
                .range(lo)
                .skip_while(move |(s, _)| !r.gte_min(s.0))
                .take_while(move |(s, _)| r.lte_max(s.0)),
        )
    }
}

fn lex_iter<'a>(
    z: &'a ZSet,
    r: LexRange,
    rev: bool,
) -> Box<dyn Iterator<Item = &'a (Score, Blob)> + 'a> {
    if rev {
        let r2 = r.clone();
        Box::new(
            z.tree
                .iter()
                .rev()
                .skip_while(move |(_, m)| !r.lte_max(m))
                .take_while(move |(_, m)| r2.gte_min(m)),
        )
    } else {
        let r2 = r.clone();
        Box::new(
            z.tree
                .iter()
                .skip_while(move |(_, m)| !r.gte_min(m))
                .take_while(move |(_, m)| r2.lte_max(m)),
        )
    }
}

enum RangeKind {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

struct RangeSpec {
    kind: RangeKind,
    rev: bool,
    limit: Option<(i64, i64)>,
    withscores: bool,
}

/// Collect (member, score) for a range request.
fn collect_range(z: &ZSet, spec: &RangeSpec) -> Vec<(Blob, f64)> {
    let (off, cnt) = spec.limit.unwrap_or((0, -1));
    if off < 0 {
        return vec![];
    }
    let take = if cnt < 0 { usize::MAX } else { cnt as usize };
    match &spec.kind {
        RangeKind::Rank(s, e) => match norm_range(*s, *e, z.len()) {
            None => vec![],
            Some((s, e)) => {
                let it: Box<dyn Iterator<Item = &(Score, Blob)>> = if spec.rev {
                    Box::new(z.tree.iter().rev())
                } else {
                    Box::new(z.tree.iter())
                };
                it.skip(s)
                    .take(e - s + 1)
                    .map(|(sc, m)| (m.clone(), sc.0))
                    .collect()
            }
        },
        RangeKind::Score(r) => score_iter(z, *r, spec.rev)
            .skip(off as usize)
            .take(take)
            .map(|(sc, m)| (m.clone(), sc.0))
            .collect(),
        RangeKind::Lex(r) => lex_iter(z, r.clone(), spec.rev)
            .skip(off as usize)
            .take(take)
            .map(|(sc, m)| (m.clone(), sc.0))
            .collect(),
    }
}

fn reply_members(r: &mut Reply<'_>, items: &[(Blob, f64)], withscores: bool) {
    if withscores && r.resp3 {
        r.array(items.len());
        for (m, s) in items {
            r.array(2);
            r.bulk(m);
            r.double(*s);
        }
    } else {
        r.array(if withscores {
            items.len() * 2
        } else {
            items.len()
        });
        for (m, s) in items {
            r.bulk(m);
            if withscores {
                r.double(*s);
            }
        }
    }
}

/// Parse ZRANGE-family arguments. `style`: 0 = ZRANGE unified, 1 = BYSCORE legacy,
/// 2 = BYLEX legacy, 3 = ZREVRANGE legacy (rank).
fn parse_range(
    ctx: &Ctx<'_>,
    kidx: usize,
    style: u8,
    legacy_rev: bool,
) -> Result<RangeSpec, Error> {
    let (a, b) = (ctx.arg(kidx + 1), ctx.arg(kidx + 2));
    let mut byscore = style == 1;
    let mut bylex = style == 2;
    let mut rev = legacy_rev;
    let mut limit = None;
    let mut withscores = false;
    let mut i = kidx + 3;
    while i < ctx.argc() {
        if ctx.arg_eq(i, "withscores") && style != 2 {
            withscores = true;
        } else if ctx.arg_eq(i, "limit") && i + 2 < ctx.argc() && style != 3 {
            limit = Some((ctx.int(i + 1)?, ctx.int(i + 2)?));
            i += 2;
        } else if style == 0 && ctx.arg_eq(i, "byscore") {
            byscore = true;
        } else if style == 0 && ctx.arg_eq(i, "bylex") {
            bylex = true;
        } else if style == 0 && ctx.arg_eq(i, "rev") {
            rev = true;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if limit.is_some() && !byscore && !bylex {
        return Err(err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && bylex {
        return Err(err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if byscore && bylex {
        return Err(Error::Syntax);
    }
    // In REV mode the unified syntax takes max first; legacy ZREV*BY* too.
    let (lo, hi) = if rev && (byscore || bylex) {
        (b, a)
    } else {
        (a, b)
    };
    let kind = if byscore {
        RangeKind::Score(parse_score_range(lo, hi)?)
    } else if bylex {
        RangeKind::Lex(parse_lex_range(lo, hi)?)
    } else {
        RangeKind::Rank(parse_int(a)?, parse_int(b)?)
    };
    Ok(RangeSpec {
        kind,
        rev,
        limit,
        withscores,
    })
}

fn range_cmd(ctx: &mut Ctx<'_>, style: u8, rev: bool) -> CmdResult {
    let spec = parse_range(ctx, 1, style, rev)?;
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let z = typed!(ctx.node.ks, db, ctx.args.get(1), ZSet, get);
    let items = z.map(|z| collect_range(z, &spec)).unwrap_or_default();
    reply_members(
        &mut Reply {
            out: ctx.out,
            resp3,
        },
        &items,
        spec.withscores,
    );
    Ok(())
}

fn zrange(ctx: &mut Ctx<'_>) -> CmdResult {
    range_cmd(ctx, 0, false)
}
fn zrevrange(ctx: &mut Ctx<'_>) -> CmdResult {
    range_cmd(ctx, 3, true)
}
fn zrangebyscore(ctx: &mut Ctx<'_>) -> CmdResult {
    range_cmd(ctx, 1, false)
}
fn zrevrangebyscore(ctx: &mut Ctx<'_>) -> CmdResult {
    range_cmd(ctx, 1, true)
}
fn zrangebylex(ctx: &mut Ctx<'_>) -> CmdResult {
    range_cmd(ctx, 2, false)
}
fn zrevrangebylex(ctx: &mut Ctx<'_>) -> CmdResult {
    range_cmd(ctx, 2, true)
}

fn zrangestore(ctx: &mut Ctx<'_>) -> CmdResult {
    let spec = parse_range(ctx, 2, 0, false)?;
    if spec.withscores {
        return Err(Error::Syntax);
    }
    let db = ctx.db();
    let z = typed!(ctx.node.ks, db, ctx.args.get(2), ZSet, get);
    let items = z.map(|z| collect_range(z, &spec)).unwrap_or_default();
    let dst = ctx.arg(1);
    store_items(ctx, dst, items, "zrangestore")
}

fn store_items(ctx: &mut Ctx<'_>, dst: &[u8], items: Vec<(Blob, f64)>, event: &str) -> CmdResult {
    let db = ctx.db();
    let n = items.len();
    // Redis replies first, then notifies.
    if n == 0 {
        let deleted = ctx.node.ks.del(db, dst);
        ctx.r().int(0);
        if deleted {
            ctx.notify(N::GENERIC, "del", dst);
        }
    } else {
        let mut z = ZSet::default();
        for (m, s) in items {
            z.insert(&m, s);
        }
        ctx.node.ks.set(db, dst, Value::ZSet(Box::new(z)), false);
        ctx.r().int(n as i64);
        ctx.notify(N::ZSET, event, dst);
    }
    Ok(())
}

fn zcount(ctx: &mut Ctx<'_>) -> CmdResult {
    let r = parse_score_range(ctx.arg(2), ctx.arg(3))?;
    let db = ctx.db();
    let n = typed!(ctx.node.ks, db, ctx.args.get(1), ZSet, get)
        .map(|z| score_iter(z, r, false).count())
        .unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx<'_>) -> CmdResult {
    let r = parse_lex_range(ctx.arg(2), ctx.arg(3))?;
    let db = ctx.db();
    let n = typed!(ctx.node.ks, db, ctx.args.get(1), ZSet, get)
        .map(|z| lex_iter(z, r, false).count())
        .unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

fn zremrange(ctx: &mut Ctx<'_>, kind: RangeKind) -> CmdResult {
    let ev = match kind {
        RangeKind::Rank(..) => "zremrangebyrank",
        RangeKind::Score(..) => "zremrangebyscore",
        RangeKind::Lex(..) => "zremrangebylex",
    };
    let db = ctx.db();
    let key = ctx.args.get(1);
    let spec = RangeSpec {
        kind,
        rev: false,
        limit: None,
        withscores: false,
    };
    let mut n = 0;
    if let Some(z) = typed!(ctx.node.ks, db, key, ZSet, get_w) {
        let items = collect_range(z, &spec);
        for (m, _) in &items {
            z.remove(m);
        }
        n = items.len();
    }
    if n == 0 {
        ctx.no_dirty = true;
    } else {
        ctx.notify(N::ZSET, ev, key);
        ctx.drop_if_empty_notify(key);
    }
    ctx.r().int(n as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx<'_>) -> CmdResult {
    let k = RangeKind::Rank(ctx.int(2)?, ctx.int(3)?);
    zremrange(ctx, k)
}
fn zremrangebyscore(ctx: &mut Ctx<'_>) -> CmdResult {
    let k = RangeKind::Score(parse_score_range(ctx.arg(2), ctx.arg(3))?);
    zremrange(ctx, k)
}
fn zremrangebylex(ctx: &mut Ctx<'_>) -> CmdResult {
    let k = RangeKind::Lex(parse_lex_range(ctx.arg(2), ctx.arg(3))?);
    zremrange(ctx, k)
}

fn pop_n(z: &mut ZSet, max: bool, n: usize) -> Vec<(Blob, f64)> {
    let mut v = Vec::new();
    for _ in 0..n {
        let e = if max {
            z.tree.pop_last()
        } else {
            z.tree.pop_first()
        };
        match e {
            Some((s, m)) => {
                z.dict.remove(&m);
                v.push((m, s.0));
            }
            None => break,
        }
    }
    v
}

fn zpop_generic(ctx: &mut Ctx<'_>, max: bool) -> CmdResult {
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
        _ => return Err(Error::Syntax),
    };
    let db = ctx.db();
    let key = ctx.args.get(1);
    let resp3 = ctx.client.resp3.get();
    let items = match typed!(ctx.node.ks, db, key, ZSet, get_w) {
        Some(z) => pop_n(z, max, count.unwrap_or(1)),
        None => vec![],
    };
    if items.is_empty() {
        ctx.no_dirty = true;
    }
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    if count.is_some() && resp3 {
        reply_members(&mut r, &items, true);
    } else {
        r.array(items.len() * 2);
        for (m, s) in &items {
            r.bulk(m);
            r.double(*s);
        }
    }
    if !items.is_empty() {
        ctx.notify(N::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
        ctx.drop_if_empty_notify(key);
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx<'_>) -> CmdResult {
    zpop_generic(ctx, false)
}
fn zpopmax(ctx: &mut Ctx<'_>) -> CmdResult {
    zpop_generic(ctx, true)
}

fn request_block(ctx: &mut Ctx<'_>, keys: Vec<Blob>, deadline: Option<std::time::Instant>) {
    if ctx.in_exec {
        ctx.no_dirty = true;
        ctx.r().null_array();
        return;
    }
    ctx.block = Some(BlockState {
        db: ctx.db(),
        keys,
        cmd: ctx.args.to_owned_cmd(),
        deadline,
    });
}

fn bzpop_generic(ctx: &mut Ctx<'_>, max: bool) -> CmdResult {
    let deadline = parse_timeout(ctx.arg(ctx.argc() - 1))?;
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    for i in 1..ctx.argc() - 1 {
        let key = ctx.args.get(i);
        if let Some(z) = typed!(ctx.node.ks, db, key, ZSet, get_w) {
            if let Some((m, s)) = pop_n(z, max, 1).pop() {
                let mut r = Reply {
                    out: ctx.out,
                    resp3,
                };
                r.array(3);
                r.bulk(key);
                r.bulk(&m);
                r.double(s);
                ctx.notify(N::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
                ctx.drop_if_empty_notify(key);
                return Ok(());
            }
        }
    }
    let keys = (1..ctx.argc() - 1).map(|i| blob(ctx.args.get(i))).collect();
    request_block(ctx, keys, deadline);
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx<'_>) -> CmdResult {
    bzpop_generic(ctx, false)
}
fn bzpopmax(ctx: &mut Ctx<'_>) -> CmdResult {
    bzpop_generic(ctx, true)
}

fn parse_zmpop(ctx: &Ctx<'_>, at: usize) -> Result<(Vec<Blob>, bool, usize), Error> {
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
    let max = if ctx.arg_eq(d, "min") {
        false
    } else if ctx.arg_eq(d, "max") {
        true
    } else {
        return Err(Error::Syntax);
    };
    let mut count = 1;
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
    Ok((keys, max, count))
}

fn zmpop_try(ctx: &mut Ctx<'_>, keys: &[Blob], max: bool, count: usize) -> Result<bool, Error> {
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    for key in keys {
        if let Some(z) = typed!(ctx.node.ks, db, key, ZSet, get_w) {
            if z.is_empty() {
                continue;
            }
            let items = pop_n(z, max, count);
            ctx.notify(N::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
            ctx.drop_if_empty_notify(key);
            let mut r = Reply {
                out: ctx.out,
                resp3,
            };
            r.array(2);
            r.bulk(key);
            r.array(items.len());
            for (m, s) in &items {
                r.array(2);
                r.bulk(m);
                r.double(*s);
            }
            return Ok(true);
        }
    }
    Ok(false)
}

fn zmpop(ctx: &mut Ctx<'_>) -> CmdResult {
    let (keys, max, count) = parse_zmpop(ctx, 1)?;
    if !zmpop_try(ctx, &keys, max, count)? {
        ctx.no_dirty = true;
        ctx.r().null_array();
    }
    Ok(())
}

fn bzmpop(ctx: &mut Ctx<'_>) -> CmdResult {
    let deadline = parse_timeout(ctx.arg(1))?;
    let (keys, max, count) = parse_zmpop(ctx, 2)?;
    if !zmpop_try(ctx, &keys, max, count)? {
        request_block(ctx, keys, deadline);
    }
    Ok(())
}

fn zrandmember(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut count = None;
    let mut withscores = false;
    if ctx.argc() >= 3 {
        let c = ctx.int(2)?;
        if ctx.argc() == 4 {
            if !ctx.arg_eq(3, "withscores") {
                return Err(Error::Syntax);
            }
            withscores = true;
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
    let members: Option<Vec<(Blob, f64)>> = typed!(ks, db, key, ZSet, get)
        .map(|z| z.tree.iter().map(|(s, m)| (m.clone(), s.0)).collect());
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let Some(members) = members else {
        match count {
            None => r.null(),
            Some(_) => r.array(0),
        }
        return Ok(());
    };
    let idx = rand_indices(&mut ks.rng, members.len(), count.unwrap_or(1));
    let picked: Vec<(Blob, f64)> = idx.iter().map(|&i| members[i].clone()).collect();
    match count {
        None => match picked.first() {
            Some((m, _)) => r.bulk(m),
            None => r.null(),
        },
        Some(_) => reply_members(&mut r, &picked, withscores),
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// Parse `numkeys key... [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES]` from `at`.
fn setop(
    ctx: &mut Ctx<'_>,
    at: usize,
    op: SetOp,
    allow_withscores: bool,
    name: &str,
) -> Result<(Vec<(Blob, f64)>, bool), Error> {
    let n = ctx.int(at)?;
    if n <= 0 {
        return Err(err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    let n = n as usize;
    if at + 1 + n > ctx.argc() {
        return Err(Error::Syntax);
    }
    let mut weights = vec![1.0; n];
    let mut agg = Agg::Sum;
    let mut withscores = false;
    let mut i = at + 1 + n;
    while i < ctx.argc() {
        if ctx.arg_eq(i, "weights") && op != SetOp::Diff && i + n < ctx.argc() {
            for (j, w) in weights.iter_mut().enumerate() {
                *w = parse_float_opt(ctx.arg(i + 1 + j))
                    .ok_or_else(|| err("weight value is not a float"))?;
            }
            i += n + 1;
        } else if ctx.arg_eq(i, "aggregate") && op != SetOp::Diff && i + 1 < ctx.argc() {
            agg = if ctx.arg_eq(i + 1, "sum") {
                Agg::Sum
            } else if ctx.arg_eq(i + 1, "min") {
                Agg::Min
            } else if ctx.arg_eq(i + 1, "max") {
                Agg::Max
            } else {
                return Err(Error::Syntax);
            };
            i += 2;
        } else if ctx.arg_eq(i, "withscores") && allow_withscores {
            withscores = true;
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
    }
    let db = ctx.db();
    let mut inputs: Vec<Option<Vec<(Blob, f64)>>> = Vec::with_capacity(n);
    for j in 0..n {
        let key = ctx.args.get(at + 1 + j);
        let v = match ctx.node.ks.get(db, key) {
            None => None,
            Some(e) => match &e.val {
                Value::ZSet(z) => Some(z.tree.iter().map(|(s, m)| (m.clone(), s.0)).collect()),
                Value::Set(s) => Some(s.iter().map(|m| (m.clone(), 1.0)).collect()),
                _ => return Err(Error::WrongType),
            },
        };
        inputs.push(v);
    }
    let mut acc: indexmap::IndexMap<Blob, f64> = indexmap::IndexMap::new();
    let combine = |a: f64, b: f64| -> f64 {
        let r = match agg {
            Agg::Sum => a + b,
            Agg::Min => a.min(b),
            Agg::Max => a.max(b),
        };
        if r.is_nan() {
            0.0
        } else {
            r
        }
    };
    let wmul = |s: f64, w: f64| -> f64 {
        let r = s * w;
        if r.is_nan() {
            0.0
        } else {
            r
        }
    };
    match op {
        SetOp::Union => {
            for (j, inp) in inputs.iter().enumerate() {
                for (m, s) in inp.iter().flatten() {
                    let v = wmul(*s, weights[j]);
                    match acc.get_mut(m) {
                        Some(cur) => *cur = combine(*cur, v),
                        None => {
                            acc.insert(m.clone(), v);
                        }
                    }
                }
            }
        }
        SetOp::Inter => {
            if inputs.iter().all(|i| i.is_some()) {
                let maps: Vec<std::collections::HashMap<&Blob, f64>> = inputs
                    .iter()
                    .map(|i| i.iter().flatten().map(|(m, s)| (m, *s)).collect())
                    .collect();
                if let Some(Some(first)) = inputs.first() {
                    'o: for (m, s) in first {
                        let mut v = wmul(*s, weights[0]);
                        for (j, mp) in maps.iter().enumerate().skip(1) {
                            match mp.get(m) {
                                Some(s2) => v = combine(v, wmul(*s2, weights[j])),
                                None => continue 'o,
                            }
                        }
                        acc.insert(m.clone(), v);
                    }
                }
            }
        }
        SetOp::Diff => {
            if let Some(Some(first)) = inputs.first() {
                let others: Vec<std::collections::HashSet<&Blob>> = inputs[1..]
                    .iter()
                    .map(|i| i.iter().flatten().map(|(m, _)| m).collect())
                    .collect();
                for (m, s) in first {
                    if !others.iter().any(|o| o.contains(m)) {
                        acc.insert(m.clone(), *s);
                    }
                }
            }
        }
    }
    let mut items: Vec<(Blob, f64)> = acc.into_iter().collect();
    items.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    Ok((items, withscores))
}

fn zunion(ctx: &mut Ctx<'_>) -> CmdResult {
    let (items, ws) = setop(ctx, 1, SetOp::Union, true, "zunion")?;
    reply_members(&mut ctx.r(), &items, ws);
    Ok(())
}
fn zinter(ctx: &mut Ctx<'_>) -> CmdResult {
    let (items, ws) = setop(ctx, 1, SetOp::Inter, true, "zinter")?;
    reply_members(&mut ctx.r(), &items, ws);
    Ok(())
}
fn zdiff(ctx: &mut Ctx<'_>) -> CmdResult {
    let (items, ws) = setop(ctx, 1, SetOp::Diff, true, "zdiff")?;
    reply_members(&mut ctx.r(), &items, ws);
    Ok(())
}
fn zunionstore(ctx: &mut Ctx<'_>) -> CmdResult {
    let (items, _) = setop(ctx, 2, SetOp::Union, false, "zunionstore")?;
    let dst = ctx.arg(1);
    store_items(ctx, dst, items, "zunionstore")
}
fn zinterstore(ctx: &mut Ctx<'_>) -> CmdResult {
    let (items, _) = setop(ctx, 2, SetOp::Inter, false, "zinterstore")?;
    let dst = ctx.arg(1);
    store_items(ctx, dst, items, "zinterstore")
}
fn zdiffstore(ctx: &mut Ctx<'_>) -> CmdResult {
    let (items, _) = setop(ctx, 2, SetOp::Diff, false, "zdiffstore")?;
    let dst = ctx.arg(1);
    store_items(ctx, dst, items, "zdiffstore")
}

fn zintercard(ctx: &mut Ctx<'_>) -> CmdResult {
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
    // Reuse setop over a synthetic argument list: numkeys at index 1.
    let sub = Args {
        buf: ctx.args.buf,
        ranges: &ctx.args.ranges[..2 + n],
    };
    let saved = ctx.args;
    ctx.args = sub;
    let res = setop(ctx, 1, SetOp::Inter, false, "zintercard");
    ctx.args = saved;
    let (items, _) = res?;
    let c = if limit > 0 {
        items.len().min(limit)
    } else {
        items.len()
    };
    ctx.r().int(c as i64);
    Ok(())
}

fn zscan(ctx: &mut Ctx<'_>) -> CmdResult {
    let _cursor = parse_cursor(ctx.arg(2))?;
    if super::keys::scan_key_answered(ctx, "zset")? {
        return Ok(());
    }
    let o = parse_scan_opts(ctx, 3, false)?;
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let z = typed!(ctx.node.ks, db, ctx.args.get(1), ZSet, get_w);
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let items: Vec<(Blob, f64)> = match z {
        None => vec![],
        Some(z) => z
            .tree
            .iter()
            .filter(|(_, m)| o.pat.as_ref().is_none_or(|p| glob_match(p, m, false)))
            .map(|(s, m)| (m.clone(), s.0))
            .collect(),
    };
    // Sorted sets are returned in one pass (cursor 0), like Redis does for listpacks.
    r.array(2);
    r.bulk(b"0");
    r.array(items.len() * if o.noscores { 1 } else { 2 });
    for (m, s) in items {
        r.bulk(&m);
        if !o.noscores {
            r.bulk(crate::resp::fmt_double(s).as_bytes());
        }
    }
    Ok(())
}
