//! Geo commands (Redis 7.0 geo.c): sorted sets whose scores are 52-bit geohashes.
//! GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS[_RO],
//! GEORADIUSBYMEMBER[_RO].

use super::server::cmd;
use super::*;
use crate::db::{Score, Value, ZSet};
use crate::geohash::{self as gh, Kind, Shape};
use crate::notify as N;
use crate::resp::OwnedCmd;

const K1: Keys = Keys::Range(1, 1, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "geoadd",
        -5,
        "write denyoom",
        "@write @geo @slow",
        K1,
        geoadd
    ),
    cmd!("geodist", -4, "readonly", "@read @geo @slow", K1, geodist),
    cmd!("geohash", -2, "readonly", "@read @geo @slow", K1, geohash),
    cmd!("geopos", -2, "readonly", "@read @geo @slow", K1, geopos),
    cmd!(
        "georadius",
        -6,
        "write denyoom",
        "@write @geo @slow",
        K1,
        georadius
    ),
    cmd!(
        "georadius_ro",
        -6,
        "readonly",
        "@read @geo @slow",
        K1,
        georadius_ro
    ),
    cmd!(
        "georadiusbymember",
        -5,
        "write denyoom",
        "@write @geo @slow",
        K1,
        georadiusbymember
    ),
    cmd!(
        "georadiusbymember_ro",
        -5,
        "readonly",
        "@read @geo @slow",
        K1,
        georadiusbymember_ro
    ),
    cmd!(
        "geosearch",
        -7,
        "readonly",
        "@read @geo @slow",
        K1,
        geosearch
    ),
    cmd!(
        "geosearchstore",
        -8,
        "write denyoom",
        "@write @geo @slow",
        Keys::Range(1, 2, 1),
        geosearchstore
    ),
];

/// `extractUnitOrReply`: meters per unit.
fn unit(u: &[u8]) -> Result<f64, Error> {
    if u.eq_ignore_ascii_case(b"m") {
        Ok(1.0)
    } else if u.eq_ignore_ascii_case(b"km") {
        Ok(1000.0)
    } else if u.eq_ignore_ascii_case(b"ft") {
        Ok(0.3048)
    } else if u.eq_ignore_ascii_case(b"mi") {
        Ok(1609.34)
    } else {
        Err(err("unsupported unit provided. please use M, KM, FT, MI"))
    }
}

fn float_or(s: &[u8], msg: &str) -> Result<f64, Error> {
    parse_float_opt(s).ok_or_else(|| err(msg))
}

/// `extractLongLatOrReply`.
fn long_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), Error> {
    let x = parse_float(lon)?;
    let y = parse_float(lat)?;
    if !(gh::LONG_MIN..=gh::LONG_MAX).contains(&x) || !(gh::LAT_MIN..=gh::LAT_MAX).contains(&y) {
        return Err(err(format!(
            "invalid longitude,latitude pair {x:.6},{y:.6}"
        )));
    }
    Ok((x, y))
}

/// `extractDistanceOrReply`: (radius, conversion).
fn distance_arg(d: &[u8], u: &[u8]) -> Result<(f64, f64), Error> {
    let r = float_or(d, "need numeric radius")?;
    if r < 0.0 {
        return Err(err("radius cannot be negative"));
    }
    Ok((r, unit(u)?))
}

/// `extractBoxOrReply`: (width, height, conversion).
fn box_arg(w: &[u8], h: &[u8], u: &[u8]) -> Result<(f64, f64, f64), Error> {
    let w = float_or(w, "need numeric width")?;
    let h = float_or(h, "need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err(err("height or width cannot be negative"));
    }
    Ok((w, h, unit(u)?))
}

/// `ld2string(.., LD_STR_HUMAN)` of a double: "%.17Lf" without trailing zeros.
fn human(d: f64) -> String {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// `addReplyHumanLongDouble`.
fn reply_human(r: &mut Reply<'_>, d: f64) {
    let s = human(d);
    if r.resp3 {
        r.out.push(b',');
        r.out.extend_from_slice(s.as_bytes());
        r.out.extend_from_slice(b"\r\n");
    } else {
        r.bulk(s.as_bytes());
    }
}

/// `addReplyDoubleDistance`.
fn reply_distance(r: &mut Reply<'_>, d: f64) {
    r.bulk(format!("{d:.4}").as_bytes());
}

fn get_zset<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut ZSet>, Error> {
    let db = ctx.db();
    Ok(typed!(ctx.node.ks, db, key, ZSet, get))
}

fn geoadd(ctx: &mut Ctx<'_>) -> CmdResult {
    let argc = ctx.argc();
    let (mut xx, mut nx) = (false, false);
    let mut longidx = 2;
    while longidx < argc {
        let a = ctx.arg(longidx);
        if a.eq_ignore_ascii_case(b"nx") {
            nx = true;
        } else if a.eq_ignore_ascii_case(b"xx") {
            xx = true;
        } else if !a.eq_ignore_ascii_case(b"ch") {
            break;
        }
        longidx += 1;
    }
    if !(argc - longidx).is_multiple_of(3) || (xx && nx) {
        return Err(Error::Syntax);
    }
    // ZADD key [options] score member ..., as Redis rewrites it.
    let mut parts: Vec<Vec<u8>> = vec![b"zadd".to_vec()];
    for i in 1..longidx {
        parts.push(ctx.arg(i).to_vec());
    }
    let mut i = longidx;
    while i < argc {
        let (x, y) = long_lat(ctx.arg(i), ctx.arg(i + 1))?;
        let bits = gh::score_of(x, y).unwrap_or(0);
        parts.push(bits.to_string().into_bytes());
        parts.push(ctx.arg(i + 2).to_vec());
        i += 3;
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let cmd = OwnedCmd::from_parts(&refs);
    let mut sub = Ctx {
        node: &mut *ctx.node,
        client: ctx.client,
        out: &mut *ctx.out,
        args: cmd.args(),
        def: ctx.def,
        in_exec: ctx.in_exec,
        block: None,
        no_dirty: false,
    };
    let r = super::zsets::zadd(&mut sub);
    let no_dirty = sub.no_dirty;
    ctx.no_dirty = no_dirty;
    r
}

fn geodist(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut to_meter = 1.0;
    if ctx.argc() == 5 {
        to_meter = unit(ctx.arg(4))?;
    } else if ctx.argc() > 5 {
        return Err(Error::Syntax);
    }
    let (key, a, b) = (ctx.arg(1), ctx.arg(2), ctx.arg(3));
    let resp3 = ctx.client.resp3.get();
    let db = ctx.db();
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let Some(z) = typed!(ctx.node.ks, db, key, ZSet, get) else {
        r.null();
        return Ok(());
    };
    let (Some(s1), Some(s2)) = (z.score(a), z.score(b)) else {
        r.null();
        return Ok(());
    };
    match (gh::decode_score(s1), gh::decode_score(s2)) {
        (Some((x1, y1)), Some((x2, y2))) => {
            reply_distance(&mut r, gh::distance(x1, y1, x2, y2) / to_meter)
        }
        _ => r.null(),
    }
    Ok(())
}

fn geohash(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let members: Vec<&[u8]> = (2..ctx.argc()).map(|i| ctx.arg(i)).collect();
    let resp3 = ctx.client.resp3.get();
    let db = ctx.db();
    let z = typed!(ctx.node.ks, db, key, ZSet, get);
    let hashes: Vec<Option<String>> = members
        .iter()
        .map(|m| {
            z.as_ref()
                .and_then(|z| z.score(m))
                .and_then(gh::geohash_string)
        })
        .collect();
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(hashes.len());
    for h in hashes {
        match h {
            Some(h) => r.bulk(h.as_bytes()),
            None => r.null(),
        }
    }
    Ok(())
}

fn geopos(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let members: Vec<&[u8]> = (2..ctx.argc()).map(|i| ctx.arg(i)).collect();
    let resp3 = ctx.client.resp3.get();
    let db = ctx.db();
    let z = typed!(ctx.node.ks, db, key, ZSet, get);
    let pos: Vec<Option<(f64, f64)>> = members
        .iter()
        .map(|m| {
            z.as_ref()
                .and_then(|z| z.score(m))
                .and_then(gh::decode_score)
        })
        .collect();
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    r.array(pos.len());
    for p in pos {
        match p {
            Some((x, y)) => {
                r.array(2);
                reply_human(&mut r, x);
                reply_human(&mut r, y);
            }
            None => r.null_array(),
        }
    }
    Ok(())
}

const RADIUS_COORDS: u32 = 1;
const RADIUS_MEMBER: u32 = 2;
const RADIUS_NOSTORE: u32 = 4;
const GEOSEARCH: u32 = 8;
const GEOSEARCHSTORE: u32 = 16;

struct Point {
    lon: f64,
    lat: f64,
    dist: f64,
    member: Blob,
    score: f64,
}

/// `membersOfAllNeighbors` + `geoGetPointsInRange`: points of the 9 boxes inside the shape,
/// in discovery order; stops at `limit` (ANY).
fn search(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let (hash, n) = gh::areas_by_shape(shape);
    let boxes = [
        hash,
        n.north,
        n.south,
        n.east,
        n.west,
        n.north_east,
        n.north_west,
        n.south_east,
        n.south_west,
    ];
    let mut out: Vec<Point> = Vec::new();
    let mut last: Option<usize> = None;
    for (i, b) in boxes.iter().enumerate() {
        if b.is_zero() {
            continue;
        }
        if let Some(l) = last {
            if boxes[l] == *b {
                continue;
            }
        }
        if !out.is_empty() && limit > 0 && out.len() >= limit {
            break;
        }
        let (min, max) = gh::score_range(*b);
        let lo = (Score(min as f64), Blob::default());
        let hi = (Score(max as f64), Blob::default());
        for (s, m) in z.tree.range(lo..hi) {
            let Some((x, y)) = gh::decode_score(s.0) else {
                continue;
            };
            let Some(d) = gh::within(shape, x, y) else {
                continue;
            };
            out.push(Point {
                lon: x,
                lat: y,
                dist: d,
                member: m.clone(),
                score: s.0,
            });
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
        last = Some(i);
    }
    out
}

fn lookup_member(z: &ZSet, m: &[u8]) -> Result<(f64, f64), Error> {
    z.score(m)
        .and_then(gh::decode_score)
        .ok_or_else(|| err("could not decode requested zset member"))
}

/// `georadiusGeneric`.
fn radius_generic(ctx: &mut Ctx<'_>, src_idx: usize, flags: u32) -> CmdResult {
    let db = ctx.db();
    let src = ctx.arg(src_idx);
    let exists = typed!(ctx.node.ks, db, src, ZSet, get).is_some();
    let mut store: Option<&[u8]> = None;
    let mut storedist = false;
    let mut xy = (0.0, 0.0);
    let mut kind = Kind::Radius(0.0);
    let mut conversion = 1.0;
    let base;
    if flags & RADIUS_COORDS != 0 {
        base = 6;
        xy = long_lat(ctx.arg(2), ctx.arg(3))?;
        let (r, c) = distance_arg(ctx.arg(4), ctx.arg(5))?;
        kind = Kind::Radius(r);
        conversion = c;
    } else if flags & RADIUS_MEMBER != 0 && !exists {
        base = 5;
    } else if flags & RADIUS_MEMBER != 0 {
        base = 5;
        let m = ctx.arg(2);
        xy = match get_zset(ctx, src)? {
            Some(z) => lookup_member(z, m)?,
            None => return Err(err("could not decode requested zset member")),
        };
        let (r, c) = distance_arg(ctx.arg(3), ctx.arg(4))?;
        kind = Kind::Radius(r);
        conversion = c;
    } else {
        base = if flags & GEOSEARCHSTORE != 0 { 3 } else { 2 };
        if flags & GEOSEARCHSTORE != 0 {
            store = Some(ctx.arg(1));
        }
    }
    let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort: i8 = 0;
    let mut any = false;
    let mut count: i64 = 0;
    let argc = ctx.argc();
    let remaining = argc.saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let a = ctx.arg(base + i);
        let is = |s: &str| a.eq_ignore_ascii_case(s.as_bytes());
        if is("withdist") {
            withdist = true;
        } else if is("withhash") {
            withhash = true;
        } else if is("withcoord") {
            withcoords = true;
        } else if is("any") {
            any = true;
        } else if is("asc") {
            sort = 1;
        } else if is("desc") {
            sort = -1;
        } else if is("count") && i + 1 < remaining {
            count = ctx.int(base + i + 1)?;
            if count <= 0 {
                return Err(err("COUNT must be > 0"));
            }
            i += 1;
        } else if (is("store") || is("storedist"))
            && i + 1 < remaining
            && flags & RADIUS_NOSTORE == 0
            && flags & GEOSEARCH == 0
        {
            store = Some(ctx.arg(base + i + 1));
            storedist = is("storedist");
            i += 1;
        } else if is("storedist") && flags & GEOSEARCH != 0 && flags & GEOSEARCHSTORE != 0 {
            storedist = true;
        } else if is("frommember") && i + 1 < remaining && flags & GEOSEARCH != 0 && !fromloc {
            if exists {
                let m = ctx.arg(base + i + 1);
                xy = match get_zset(ctx, src)? {
                    Some(z) => lookup_member(z, m)?,
                    None => return Err(err("could not decode requested zset member")),
                };
            }
            frommember = true;
            i += 1;
        } else if is("fromlonlat") && i + 2 < remaining && flags & GEOSEARCH != 0 && !frommember {
            xy = long_lat(ctx.arg(base + i + 1), ctx.arg(base + i + 2))?;
            fromloc = true;
            i += 2;
        } else if is("byradius") && i + 2 < remaining && flags & GEOSEARCH != 0 && !bybox {
            let (r, c) = distance_arg(ctx.arg(base + i + 1), ctx.arg(base + i + 2))?;
            kind = Kind::Radius(r);
            conversion = c;
            byradius = true;
            i += 2;
        } else if is("bybox") && i + 3 < remaining && flags & GEOSEARCH != 0 && !byradius {
            let (w, h, c) = box_arg(
                ctx.arg(base + i + 1),
                ctx.arg(base + i + 2),
                ctx.arg(base + i + 3),
            )?;
            kind = Kind::Box {
                width: w,
                height: h,
            };
            conversion = c;
            bybox = true;
            i += 3;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoords) {
        return Err(err(format!(
            "{} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if flags & GEOSEARCHSTORE != 0 {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )));
    }
    let name = String::from_utf8_lossy(ctx.arg(0)).into_owned();
    if flags & GEOSEARCH != 0 && !(frommember || fromloc) {
        return Err(err(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if flags & GEOSEARCH != 0 && !(byradius || bybox) {
        return Err(err(format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if any && count == 0 {
        return Err(err("the ANY argument requires COUNT argument"));
    }
    if !exists {
        match store {
            Some(dst) => {
                if ctx.node.ks.del(db, dst) {
                    ctx.node.touch_key(db, dst);
                    ctx.notify(N::GENERIC, "del", dst);
                } else {
                    ctx.no_dirty = true;
                }
                ctx.r().int(0);
            }
            None => {
                ctx.no_dirty = true;
                ctx.r().array(0);
            }
        }
        return Ok(());
    }
    if count != 0 && sort == 0 && !any {
        sort = 1;
    }
    let shape = Shape {
        xy,
        conversion,
        kind,
    };
    let limit = if any { count as usize } else { 0 };
    let mut points = match typed!(ctx.node.ks, db, src, ZSet, get) {
        Some(z) => search(z, &shape, limit),
        None => vec![],
    };
    if points.is_empty() && store.is_none() {
        ctx.no_dirty = true;
        ctx.r().array(0);
        return Ok(());
    }
    let total = points.len();
    let returned = if count == 0 || (total as i64) < count {
        total
    } else {
        count as usize
    };
    match sort {
        1 => points.sort_by(|a, b| {
            a.dist
                .partial_cmp(&b.dist)
                .unwrap_or(std::cmp::Ordering::Equal)
        }),
        -1 => points.sort_by(|a, b| {
            b.dist
                .partial_cmp(&a.dist)
                .unwrap_or(std::cmp::Ordering::Equal)
        }),
        _ => {}
    }
    points.truncate(returned);
    let Some(dst) = store else {
        ctx.no_dirty = true;
        let opts = withdist as usize + withcoords as usize + withhash as usize;
        let mut r = ctx.r();
        r.array(points.len());
        for p in &points {
            if opts > 0 {
                r.array(opts + 1);
            }
            r.bulk(&p.member);
            if withdist {
                reply_distance(&mut r, p.dist / conversion);
            }
            if withhash {
                r.int(p.score as i64);
            }
            if withcoords {
                r.array(2);
                reply_human(&mut r, p.lon);
                reply_human(&mut r, p.lat);
            }
        }
        return Ok(());
    };
    if points.is_empty() {
        if ctx.node.ks.del(db, dst) {
            ctx.node.touch_key(db, dst);
            ctx.notify(N::GENERIC, "del", dst);
        } else {
            ctx.no_dirty = true;
        }
        ctx.r().int(0);
        return Ok(());
    }
    let mut z = ZSet::default();
    for p in &points {
        z.insert(
            &p.member,
            if storedist {
                p.dist / conversion
            } else {
                p.score
            },
        );
    }
    ctx.node.ks.set(db, dst, Value::ZSet(Box::new(z)), false);
    ctx.node.touch_key(db, dst);
    ctx.notify(
        N::ZSET,
        if flags & GEOSEARCH != 0 {
            "geosearchstore"
        } else {
            "georadiusstore"
        },
        dst,
    );
    ctx.r().int(returned as i64);
    Ok(())
}

fn georadius(ctx: &mut Ctx<'_>) -> CmdResult {
    radius_generic(ctx, 1, RADIUS_COORDS)
}

fn georadius_ro(ctx: &mut Ctx<'_>) -> CmdResult {
    radius_generic(ctx, 1, RADIUS_COORDS | RADIUS_NOSTORE)
}

fn georadiusbymember(ctx: &mut Ctx<'_>) -> CmdResult {
    radius_generic(ctx, 1, RADIUS_MEMBER)
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>) -> CmdResult {
    radius_generic(ctx, 1, RADIUS_MEMBER | RADIUS_NOSTORE)
}

fn geosearch(ctx: &mut Ctx<'_>) -> CmdResult {
    radius_generic(ctx, 1, GEOSEARCH)
}

fn geosearchstore(ctx: &mut Ctx<'_>) -> CmdResult {
    radius_generic(ctx, 2, GEOSEARCH | GEOSEARCHSTORE)
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_doubles() {
        assert_eq!(human(13.361389338970184), "13.36138933897018433");
        assert_eq!(human(1.5), "1.5");
        assert_eq!(human(-0.0), "0");
        assert_eq!(human(2.0), "2");
    }
}
