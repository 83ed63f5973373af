//! Streams (Redis 7.0 t_stream.c): XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XREAD,
//! XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO, XSETID.
//!
//! Entries live in a B-tree by ID. Redis keeps them in listpack "nodes" of at most 100
//! entries / 4096 bytes; that layout is visible (approximate `~` trimming removes whole
//! nodes only, XINFO STREAM reports radix-tree keys and nodes), so the node boundaries and
//! listpack byte sizes are modelled exactly (`LpNode`) while the data stays in the B-tree.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::server::cmd;
use super::*;
use crate::db::Value;
use crate::notify as N;
use crate::resp::OwnedCmd;

pub use rdb::StreamId as Id;

const K1: Keys = Keys::Range(1, 1, 1);
const K2: Keys = Keys::Range(2, 2, 1);

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "xadd",
        -5,
        "write denyoom fast",
        "@write @stream @fast",
        K1,
        xadd
    ),
    cmd!("xlen", 2, "readonly fast", "@read @stream @fast", K1, xlen),
    cmd!("xrange", -4, "readonly", "@read @stream @slow", K1, xrange),
    cmd!(
        "xrevrange",
        -4,
        "readonly",
        "@read @stream @slow",
        K1,
        xrevrange
    ),
    cmd!("xdel", -3, "write fast", "@write @stream @fast", K1, xdel),
    cmd!("xtrim", -4, "write", "@write @stream @slow", K1, xtrim),
    cmd!(
        "xread",
        -4,
        "readonly blocking",
        "@read @stream @slow @blocking",
        Keys::Streams,
        xread
    ),
    cmd!(
        "xreadgroup",
        -7,
        "write blocking",
        "@write @stream @slow @blocking",
        Keys::Streams,
        xreadgroup
    ),
    cmd!("xgroup", -2, "write", "@write @stream @slow", K2, xgroup),
    cmd!("xack", -4, "write fast", "@write @stream @fast", K1, xack),
    cmd!(
        "xpending",
        -3,
        "readonly",
        "@read @stream @slow",
        K1,
        xpending
    ),
    cmd!(
        "xclaim",
        -6,
        "write fast",
        "@write @stream @fast",
        K1,
        xclaim
    ),
    cmd!(
        "xautoclaim",
        -6,
        "write fast",
        "@write @stream @fast",
        K1,
        xautoclaim
    ),
    cmd!("xinfo", -2, "readonly", "@read @stream @slow", K2, xinfo),
    cmd!(
        "xsetid",
        -3,
        "write denyoom fast",
        "@write @stream @fast",
        K1,
        xsetid
    ),
];

// ---------------------------------------------------------------------------
// Data structure.

const NODE_MAX_ENTRIES: u64 = 100;
const NODE_MAX_BYTES: usize = 4096;
const MIN_ID: Id = Id { ms: 0, seq: 0 };
const MAX_ID: Id = Id {
    ms: u64::MAX,
    seq: u64::MAX,
};

/// One listpack node's bookkeeping (its entries are those of `Stream::entries` in
/// [master, next master)).
#[derive(Clone, Debug)]
pub struct LpNode {
    /// Valid entries ("count" in the master entry).
    pub live: u64,
    /// Entries flagged deleted but still in the listpack.
    pub deleted: u64,
    /// Listpack size in bytes (header and terminator included).
    pub bytes: usize,
    pub master_fields: Box<[Blob]>,
    /// ID of the last entry appended (tombstones included).
    pub last: Id,
}

#[derive(Clone, Debug)]
pub struct Nack {
    pub time: u64,
    pub count: u64,
    pub consumer: Blob,
}

#[derive(Clone, Debug, Default)]
pub struct Consumer {
    pub seen: u64,
    pub pel: BTreeSet<Id>,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub last_id: Id,
    /// -1 = unknown (SCG_INVALID_ENTRIES_READ).
    pub entries_read: i64,
    pub pel: BTreeMap<Id, Nack>,
    pub consumers: BTreeMap<Blob, Consumer>,
}

#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// Entry ID → field, value, field, value, ...
    pub entries: BTreeMap<Id, Box<[Blob]>>,
    pub nodes: BTreeMap<Id, LpNode>,
    pub last_id: Id,
    pub max_deleted: Id,
    pub entries_added: u64,
    pub groups: BTreeMap<Blob, Group>,
}

/// Listpack element sizes (encoding + data + backlen), as listpack.c.
fn lp_int_size(v: i64) -> usize {
    let enc = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        5
    } else {
        9
    };
    enc + 1
}

fn lp_backlen(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn lp_str_size(s: &[u8]) -> usize {
    if s.len() <= 20 {
        if let Some(v) = parse_int_opt(s) {
            return lp_int_size(v);
        }
    }
    let enc = if s.len() < 64 {
        1 + s.len()
    } else if s.len() < 4096 {
        2 + s.len()
    } else {
        5 + s.len()
    };
    enc + lp_backlen(enc)
}

pub fn fmt_id(id: Id) -> String {
    // Not `format!`: XADD formats an ID per call and the fmt machinery was ~3 % of it.
    let mut b = Vec::with_capacity(41);
    crate::resp::push_u64(&mut b, id.ms);
    b.push(b'-');
    crate::resp::push_u64(&mut b, id.seq);
    String::from_utf8(b).unwrap_or_default()
}

fn incr_id(id: Id) -> Option<Id> {
    if id.seq == u64::MAX {
        if id.ms == u64::MAX {
            None
        } else {
            Some(Id {
                ms: id.ms + 1,
                seq: 0,
            })
        }
    } else {
        Some(Id {
            ms: id.ms,
            seq: id.seq + 1,
        })
    }
}

fn decr_id(id: Id) -> Option<Id> {
    if id.seq == 0 {
        if id.ms == 0 {
            None
        } else {
            Some(Id {
                ms: id.ms - 1,
                seq: u64::MAX,
            })
        }
    } else {
        Some(Id {
            ms: id.ms,
            seq: id.seq - 1,
        })
    }
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// `first_id`: the first valid entry, 0-0 when empty (Redis keeps it so).
    pub fn first_id(&self) -> Id {
        self.entries.keys().next().copied().unwrap_or(MIN_ID)
    }
    /// `streamLastValidID`.
    fn last_valid(&self) -> Id {
        self.entries.keys().next_back().copied().unwrap_or(MIN_ID)
    }

    /// Append an entry (ID already validated as > last_id), keeping the node layout.
    pub fn append(&mut self, id: Id, fv: Box<[Blob]>) {
        let nfields = fv.len() / 2;
        let totelelen: usize = fv.iter().map(|b| b.len()).sum();
        let mut tail = self.nodes.iter_mut().next_back();
        if let Some((_, n)) = &tail {
            if n.bytes + totelelen >= NODE_MAX_BYTES || n.live + n.deleted >= NODE_MAX_ENTRIES {
                tail = None;
            }
        }
        let (master, node) = match tail {
            Some((m, n)) => (*m, n),
            None => {
                let fields: Box<[Blob]> = fv.iter().step_by(2).cloned().collect();
                let mut bytes = 7 + lp_int_size(0) + lp_int_size(0) + lp_int_size(nfields as i64);
                bytes += fields.iter().map(|f| lp_str_size(f)).sum::<usize>();
                bytes += lp_int_size(0);
                self.nodes.insert(
                    id,
                    LpNode {
                        live: 0,
                        deleted: 0,
                        bytes,
                        master_fields: fields,
                        last: id,
                    },
                );
                match self.nodes.get_mut(&id) {
                    Some(n) => (id, n),
                    None => return,
                }
            }
        };
        let same = node.master_fields.len() == nfields
            && node
                .master_fields
                .iter()
                .zip(fv.iter().step_by(2))
                .all(|(a, b)| a == b);
        let mut b = lp_int_size(if same { 2 } else { 0 });
        b += lp_int_size(id.ms.wrapping_sub(master.ms) as i64);
        b += lp_int_size(id.seq.wrapping_sub(master.seq) as i64);
        let lp_count = if same {
            b += fv
                .iter()
                .skip(1)
                .step_by(2)
                .map(|v| lp_str_size(v))
                .sum::<usize>();
            nfields as i64 + 3
        } else {
            b += lp_int_size(nfields as i64);
            b += fv.iter().map(|v| lp_str_size(v)).sum::<usize>();
            nfields as i64 * 2 + 1 + 3
        };
        b += lp_int_size(lp_count);
        node.bytes += b;
        node.live += 1;
        node.last = id;
        self.entries.insert(id, fv);
        self.entries_added += 1;
        self.last_id = id;
    }

    fn node_of(&self, id: Id) -> Option<Id> {
        self.nodes.range(..=id).next_back().map(|(m, _)| *m)
    }

    /// `streamDeleteItem`: true when the entry existed.
    pub fn delete(&mut self, id: Id) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        if let Some(m) = self.node_of(id) {
            if let Some(n) = self.nodes.get_mut(&m) {
                if n.live <= 1 {
                    self.nodes.remove(&m);
                } else {
                    n.live -= 1;
                    n.deleted += 1;
                }
            }
        }
        true
    }

    /// `streamTrim`: returns the number of entries removed.
    fn trim(&mut self, t: &Trim) -> u64 {
        let mut deleted = 0u64;
        let masters: Vec<Id> = self.nodes.keys().copied().collect();
        for (i, m) in masters.iter().enumerate() {
            let Some(node) = self.nodes.get(m) else {
                continue;
            };
            if let Strategy::MaxLen(max) = t.strategy {
                if self.len() as u64 <= max {
                    break;
                }
            }
            let entries = node.live;
            if t.limit > 0 && deleted + entries > t.limit {
                break;
            }
            let remove_node = match t.strategy {
                Strategy::MaxLen(max) => (self.len() as u64).saturating_sub(entries) >= max,
                Strategy::MinId(min) => node.last < min,
            };
            let end = masters.get(i + 1).copied();
            let range = |s: &Stream| -> Vec<Id> {
                match end {
                    Some(e) => s.entries.range(*m..e).map(|(k, _)| *k).collect(),
                    None => s.entries.range(*m..).map(|(k, _)| *k).collect(),
                }
            };
            if remove_node {
                for k in range(self) {
                    self.entries.remove(&k);
                }
                self.nodes.remove(m);
                deleted += entries;
                continue;
            }
            if t.approx {
                break;
            }
            let mut from_node = 0;
            for k in range(self) {
                let stop = match t.strategy {
                    Strategy::MaxLen(max) => self.len() as u64 <= max,
                    Strategy::MinId(min) => k >= min,
                };
                if stop {
                    break;
                }
                self.entries.remove(&k);
                from_node += 1;
            }
            if let Some(n) = self.nodes.get_mut(m) {
                n.live = n.live.saturating_sub(from_node);
                n.deleted += from_node;
            }
            deleted += from_node;
            break;
        }
        deleted
    }

    /// Number of nodes in Redis's radix tree (rax) holding the listpacks' 16-byte keys.
    fn rax_nodes(&self) -> usize {
        fn count(keys: &[[u8; 16]], depth: usize) -> usize {
            if keys.len() == 1 {
                return if depth == 16 { 1 } else { 2 };
            }
            // Common prefix from `depth`.
            let first = &keys[0];
            let last = &keys[keys.len() - 1];
            let mut d = depth;
            while d < 16 && first[d] == last[d] {
                d += 1;
            }
            let mut n = if d > depth { 1 } else { 0 };
            // A branching node, one child per distinct byte at `d`.
            n += 1;
            let mut i = 0;
            while i < keys.len() {
                let b = keys[i][d];
                let mut j = i;
                while j < keys.len() && keys[j][d] == b {
                    j += 1;
                }
                n += count(&keys[i..j], d + 1);
                i = j;
            }
            n
        }
        if self.nodes.is_empty() {
            return 1;
        }
        let keys: Vec<[u8; 16]> = self
            .nodes
            .keys()
            .map(|id| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&id.ms.to_be_bytes());
                k[8..].copy_from_slice(&id.seq.to_be_bytes());
                k
            })
            .collect();
        count(&keys, 0)
    }

    /// `streamRangeHasTombstones(s, start, NULL)`.
    fn has_tombstones_from(&self, start: Id) -> bool {
        if self.is_empty() || self.max_deleted == MIN_ID {
            return false;
        }
        start <= self.max_deleted
    }

    /// `streamEstimateDistanceFromFirstEverEntry`; None = unknown.
    fn estimate_distance(&self, id: Id) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last_id {
            return Some(self.entries_added as i64);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added as i64),
            std::cmp::Ordering::Greater => return None,
            _ => {}
        }
        let first = self.first_id();
        if self.max_deleted == MIN_ID || self.max_deleted < first {
            match id.cmp(&first) {
                std::cmp::Ordering::Less => {
                    return Some(self.entries_added as i64 - self.len() as i64)
                }
                std::cmp::Ordering::Equal => {
                    return Some(self.entries_added as i64 - self.len() as i64 + 1)
                }
                _ => {}
            }
        }
        None
    }

    /// `streamReplyWithCGLag`'s value.
    fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != -1 && !self.has_tombstones_from(g.last_id) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        self.estimate_distance(g.last_id)
            .map(|r| self.entries_added as i64 - r)
    }

    /// The rdb crate's form (DUMP, snapshots, full sync).
    pub fn to_rdb(&self) -> rdb::Stream {
        use bytes::Bytes;
        let b = |x: &Blob| Bytes::copy_from_slice(x);
        rdb::Stream {
            entries: self
                .entries
                .iter()
                .map(|(id, fv)| rdb::StreamEntry {
                    id: *id,
                    fields: fv.chunks(2).map(|c| (b(&c[0]), b(&c[1]))).collect(),
                })
                .collect(),
            last_id: self.last_id,
            first_id: self.first_id(),
            max_deleted_entry_id: self.max_deleted,
            entries_added: self.entries_added,
            groups: self
                .groups
                .iter()
                .map(|(name, g)| rdb::StreamGroup {
                    name: b(name),
                    last_id: g.last_id,
                    entries_read: g.entries_read,
                    pel: g
                        .pel
                        .iter()
                        .map(|(id, n)| rdb::StreamPendingEntry {
                            id: *id,
                            delivery_time_ms: n.time as i64,
                            delivery_count: n.count,
                        })
                        .collect(),
                    consumers: g
                        .consumers
                        .iter()
                        .map(|(cn, c)| rdb::StreamConsumer {
                            name: b(cn),
                            seen_time_ms: c.seen as i64,
                            active_time_ms: -1,
                            pending: c.pel.iter().copied().collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// From the rdb crate's form; None when it is inconsistent (a PEL entry owned by no
    /// consumer, entries out of order).
    pub fn from_rdb(r: &rdb::Stream) -> Option<Stream> {
        let mut s = Stream::default();
        let mut prev: Option<Id> = None;
        for e in &r.entries {
            if prev.is_some_and(|p| p >= e.id) {
                return None;
            }
            prev = Some(e.id);
            let fv: Box<[Blob]> = e
                .fields
                .iter()
                .flat_map(|(f, v)| [Blob::from(&f[..]), Blob::from(&v[..])])
                .collect();
            s.append(e.id, fv);
        }
        s.last_id = r.last_id.max(s.last_id);
        s.max_deleted = r.max_deleted_entry_id;
        s.entries_added = r.entries_added.max(s.len() as u64);
        for g in &r.groups {
            let mut grp = Group {
                last_id: g.last_id,
                entries_read: g.entries_read,
                pel: BTreeMap::new(),
                consumers: BTreeMap::new(),
            };
            let times: BTreeMap<Id, (i64, u64)> = g
                .pel
                .iter()
                .map(|p| (p.id, (p.delivery_time_ms, p.delivery_count)))
                .collect();
            for c in &g.consumers {
                let name: Blob = c.name[..].into();
                let mut cons = Consumer {
                    seen: c.seen_time_ms.max(0) as u64,
                    pel: BTreeSet::new(),
                };
                for id in &c.pending {
                    let (t, n) = times.get(id).copied()?;
                    cons.pel.insert(*id);
                    grp.pel.insert(
                        *id,
                        Nack {
                            time: t.max(0) as u64,
                            count: n,
                            consumer: name.clone(),
                        },
                    );
                }
                grp.consumers.insert(name, cons);
            }
            if grp.pel.len() != times.len() {
                return None;
            }
            s.groups.insert(g.name[..].into(), grp);
        }
        Some(s)
    }

    pub fn mem_estimate(&self) -> usize {
        128 + self.nodes.values().map(|n| n.bytes + 64).sum::<usize>()
            + self.entries.len() * 48
            + self
                .groups
                .values()
                .map(|g| 128 + g.pel.len() * 96)
                .sum::<usize>()
    }
}

// ---------------------------------------------------------------------------
// Parsing.

fn invalid_id() -> Error {
    err("Invalid stream ID specified as stream command argument")
}

/// `string2ull`: strict integer first, then strtoull's leniency (leading blanks, '+').
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_int_opt(s) {
        return if v < 0 { None } else { Some(v as u64) };
    }
    let t = std::str::from_utf8(s).ok()?;
    let t = t.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<u64>().ok()
}

/// `streamGenericParseIDOrReply`. Returns (id, seq_given).
fn parse_id_generic(
    s: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_seq_star: bool,
) -> Result<(Id, bool), Error> {
    if s.len() > 127 {
        return Err(invalid_id());
    }
    if s == b"-" || s == b"+" {
        if strict {
            return Err(invalid_id());
        }
        return Ok((if s == b"-" { MIN_ID } else { MAX_ID }, true));
    }
    let (ms_part, seq_part) = match memchr::memchr(b'-', s) {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let ms = string2ull(ms_part).ok_or_else(invalid_id)?;
    match seq_part {
        Some(b"*") if allow_seq_star => Ok((Id { ms, seq: 0 }, false)),
        Some(sp) => {
            let seq = string2ull(sp).ok_or_else(invalid_id)?;
            Ok((Id { ms, seq }, true))
        }
        None => Ok((
            Id {
                ms,
                seq: missing_seq,
            },
            true,
        )),
    }
}

fn parse_id(s: &[u8], missing_seq: u64) -> Result<Id, Error> {
    parse_id_generic(s, missing_seq, false, false).map(|x| x.0)
}

fn parse_strict_id(s: &[u8]) -> Result<Id, Error> {
    parse_id_generic(s, 0, true, false).map(|x| x.0)
}

/// `streamParseIntervalIDOrReply` plus the exclusive-bound adjustment.
fn parse_range_start(s: &[u8]) -> Result<Id, Error> {
    if s.len() > 1 && s[0] == b'(' {
        let id = parse_id_generic(&s[1..], 0, true, false)?.0;
        incr_id(id).ok_or_else(|| err("invalid start ID for the interval"))
    } else {
        parse_id(s, 0)
    }
}

fn parse_range_end(s: &[u8]) -> Result<Id, Error> {
    if s.len() > 1 && s[0] == b'(' {
        let id = parse_id_generic(&s[1..], u64::MAX, true, false)?.0;
        decr_id(id).ok_or_else(|| err("invalid end ID for the interval"))
    } else {
        parse_id(s, u64::MAX)
    }
}

#[derive(Clone, Copy)]
enum Strategy {
    MaxLen(u64),
    MinId(Id),
}

struct Trim {
    strategy: Strategy,
    approx: bool,
    limit: u64,
    /// Index of the threshold argument (for the propagated rewrite).
    arg_idx: usize,
}

struct AddArgs {
    trim: Option<Trim>,
    nomkstream: bool,
    id: Option<(Id, bool)>,
    /// Index of the ID argument.
    id_idx: usize,
}

/// `streamParseAddOrTrimArgsOrReply`.
fn parse_add_trim(ctx: &Ctx<'_>, xadd: bool) -> Result<AddArgs, Error> {
    let mut a = AddArgs {
        trim: None,
        nomkstream: false,
        id: None,
        id_idx: 0,
    };
    let mut strategy: Option<Strategy> = None;
    let mut approx = false;
    let mut arg_idx = 0;
    let mut limit: i64 = 0;
    let mut limit_given = false;
    let argc = ctx.argc();
    let mut i = 2;
    while i < argc {
        let moreargs = argc - 1 - i;
        let opt = ctx.arg(i);
        if xadd && opt == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid"))
            && moreargs > 0
        {
            if strategy.is_some() {
                return Err(err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            let next = ctx.arg(i + 1);
            if moreargs >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if moreargs >= 2 && next == b"=" {
                i += 1;
            }
            if opt.eq_ignore_ascii_case(b"maxlen") {
                let v = ctx.int(i + 1)?;
                if v < 0 {
                    return Err(err("The MAXLEN argument must be >= 0."));
                }
                strategy = Some(Strategy::MaxLen(v as u64));
            } else {
                strategy = Some(Strategy::MinId(parse_strict_id(ctx.arg(i + 1))?));
            }
            i += 1;
            arg_idx = i;
        } else if opt.eq_ignore_ascii_case(b"limit") && moreargs > 0 {
            limit = ctx.int(i + 1)?;
            if limit < 0 {
                return Err(err("The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(parse_id_generic(opt, 0, true, true)?);
            break;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    a.id_idx = i;
    if limit != 0 && strategy.is_none() {
        return Err(err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && strategy.is_none() {
        return Err(err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given {
        if !approx {
            return Err(err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if approx {
        limit = 100 * NODE_MAX_ENTRIES as i64;
    } else {
        limit = 0;
    }
    if ctx.node.repl.is_replica() {
        // Commands applied from a primary's stream: never limit (the primary rewrote them).
        limit = 0;
    }
    a.trim = strategy.map(|strategy| Trim {
        strategy,
        approx,
        limit: limit as u64,
        arg_idx,
    });
    Ok(a)
}

// ---------------------------------------------------------------------------
// Helpers.

fn get_stream<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut Stream>, Error> {
    let db = ctx.db();
    Ok(typed!(ctx.node.ks, db, key, Stream, get))
}

fn get_stream_w<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a mut Stream>, Error> {
    let db = ctx.db();
    Ok(typed!(ctx.node.ks, db, key, Stream, get_w))
}

/// XCLAIM/XAUTOCLAIM: hand pending entry `id` to consumer `cname` (delivery time, retry
/// count: the given one, else one more unless JUSTID) and reply with the entry, its ID
/// (JUSTID), or nil when the entry was deleted meanwhile.
#[allow(clippy::too_many_arguments)]
fn claim_to(
    g: &mut Group,
    entries: &BTreeMap<Id, Box<[Blob]>>,
    id: Id,
    cname: &[u8],
    time: u64,
    retrycount: Option<u64>,
    justid: bool,
    r: &mut Reply<'_>,
) {
    if let Some(nack) = g.pel.get_mut(&id) {
        nack.time = time;
        match retrycount {
            Some(c) => nack.count = c,
            None if !justid => nack.count += 1,
            None => {}
        }
        nack.consumer = cname.into();
    }
    if let Some(c) = g.consumers.get_mut(cname) {
        c.pel.insert(id);
    }
    if justid {
        reply_id(r, id);
    } else {
        match entries.get(&id) {
            Some(fv) => reply_entry(r, id, fv),
            None => r.null(),
        }
    }
}

fn reply_id(r: &mut Reply<'_>, id: Id) {
    r.bulk(fmt_id(id).as_bytes());
}

fn reply_entry(r: &mut Reply<'_>, id: Id, fv: &[Blob]) {
    r.array(2);
    reply_id(r, id);
    r.array(fv.len());
    for x in fv {
        r.bulk(x);
    }
}

/// Entries in [start, end], forward or reverse, at most `count` (0 = all).
fn range_ids(s: &Stream, start: Id, end: Id, count: usize, rev: bool) -> Vec<Id> {
    if start > end {
        return vec![];
    }
    let it = s.entries.range(start..=end).map(|(k, _)| *k);
    let lim = if count == 0 { usize::MAX } else { count };
    if rev {
        it.rev().take(lim).collect()
    } else {
        it.take(lim).collect()
    }
}

fn set_propagate(ctx: &mut Ctx<'_>, cmds: Vec<OwnedCmd>) {
    ctx.node.propagate_as = Some(cmds);
}

/// The propagated forms of a command's effects, built only when this node feeds replicas
/// (they cost string formatting per entry).
struct Props {
    on: bool,
    cmds: Vec<OwnedCmd>,
    changed: bool,
}

impl Props {
    fn new(on: bool) -> Props {
        Props {
            on,
            cmds: Vec::new(),
            changed: false,
        }
    }
    fn push(&mut self, f: impl FnOnce() -> OwnedCmd) {
        self.changed = true;
        if self.on {
            self.cmds.push(f());
        }
    }
    fn install(self, ctx: &mut Ctx<'_>) {
        if self.on {
            set_propagate(ctx, self.cmds);
        }
    }
}

fn owned(parts: &[&[u8]]) -> OwnedCmd {
    OwnedCmd::from_parts(parts)
}

/// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID last`, Redis's
/// propagation of a PEL change.
fn xclaim_prop(key: &[u8], group: &[u8], g: &Group, id: Id, n: &Nack) -> OwnedCmd {
    let ids = fmt_id(id);
    let t = n.time.to_string();
    let c = n.count.to_string();
    let last = fmt_id(g.last_id);
    owned(&[
        b"XCLAIM",
        key,
        group,
        &n.consumer,
        b"0",
        ids.as_bytes(),
        b"TIME",
        t.as_bytes(),
        b"RETRYCOUNT",
        c.as_bytes(),
        b"FORCE",
        b"JUSTID",
        b"LASTID",
        last.as_bytes(),
    ])
}

fn setid_prop(key: &[u8], group: &[u8], g: &Group) -> OwnedCmd {
    let last = fmt_id(g.last_id);
    let er = g.entries_read.to_string();
    owned(&[
        b"XGROUP",
        b"SETID",
        key,
        group,
        last.as_bytes(),
        b"ENTRIESREAD",
        er.as_bytes(),
    ])
}

fn nogroup(key: &[u8], group: &[u8]) -> Error {
    Error::Raw(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

// ---------------------------------------------------------------------------
// Commands.

fn xadd(ctx: &mut Ctx<'_>) -> CmdResult {
    let a = parse_add_trim(ctx, true)?;
    let field_pos = a.id_idx + 1;
    let argc = ctx.argc();
    if argc < field_pos + 2 || !(argc - field_pos).is_multiple_of(2) {
        return Err(ctx.arity_err());
    }
    if let Some((id, true)) = a.id {
        if id == MIN_ID {
            return Err(err("The ID specified in XADD must be greater than 0-0"));
        }
    }
    let db = ctx.db();
    let key = ctx.arg(1);
    let now = ctx.now();
    let exists = match ctx.node.ks.get_w(db, key) {
        Some(e) => match &e.val {
            Value::Stream(_) => true,
            _ => return Err(Error::WrongType),
        },
        None => false,
    };
    if !exists && a.nomkstream {
        ctx.no_dirty = true;
        ctx.r().null();
        return Ok(());
    }
    let fv: Box<[Blob]> = (field_pos..argc).map(|i| Blob::from(ctx.arg(i))).collect();
    let s = typed_create!(ctx.node.ks, db, key, Stream);
    if s.last_id == MAX_ID {
        return Err(err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let id = match a.id {
        None => {
            if now > s.last_id.ms {
                Id { ms: now, seq: 0 }
            } else {
                incr_id(s.last_id).unwrap_or(MAX_ID)
            }
        }
        Some((id, true)) => {
            if id <= s.last_id {
                return Err(err(
                    "The ID specified in XADD is equal or smaller than the target stream top item",
                ));
            }
            id
        }
        Some((id, false)) => {
            // ms-*: next sequence within that millisecond.
            if id.ms == s.last_id.ms {
                if s.last_id.seq == u64::MAX {
                    return Err(err("The ID specified in XADD is equal or smaller than the target stream top item"));
                }
                Id {
                    ms: id.ms,
                    seq: s.last_id.seq + 1,
                }
            } else if id.ms > s.last_id.ms {
                Id { ms: id.ms, seq: 0 }
            } else {
                return Err(err(
                    "The ID specified in XADD is equal or smaller than the target stream top item",
                ));
            }
        }
    };
    s.append(id, fv);
    let idstr = fmt_id(id);
    let mut trimmed = 0;
    let mut rewrite_trim: Option<(usize, String)> = None;
    if let Some(t) = &a.trim {
        trimmed = s.trim(t);
        if t.approx {
            let v = match t.strategy {
                Strategy::MaxLen(_) => s.len().to_string(),
                Strategy::MinId(_) => fmt_id(s.first_id()),
            };
            rewrite_trim = Some((t.arg_idx, v));
        }
    }
    ctx.r().bulk(idstr.as_bytes());
    ctx.notify(N::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(N::STREAM, "xtrim", key);
    }
    if !crate::replication::wants_deletes(ctx.node) {
        return Ok(());
    }
    // Propagate the generated ID and an exact trim, as Redis rewrites them.
    let mut parts: Vec<Vec<u8>> = ctx.args.iter().map(|x| x.to_vec()).collect();
    parts[a.id_idx] = idstr.into_bytes();
    if let Some((idx, v)) = rewrite_trim {
        parts[idx - 1] = b"=".to_vec();
        parts[idx] = v.into_bytes();
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    set_propagate(ctx, vec![owned(&refs)]);
    Ok(())
}

fn xlen(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let n = get_stream(ctx, key)?.map(|s| s.len()).unwrap_or(0);
    ctx.r().int(n as i64);
    Ok(())
}

fn xrange_generic(ctx: &mut Ctx<'_>, rev: bool) -> CmdResult {
    let (sa, ea) = if rev { (3, 2) } else { (2, 3) };
    let start = parse_range_start(ctx.arg(sa))?;
    let end = parse_range_end(ctx.arg(ea))?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < ctx.argc() {
        if ctx.arg_eq(j, "count") && j + 1 < ctx.argc() {
            count = ctx.int(j + 1)?.max(0);
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let key = ctx.arg(1);
    let resp3 = ctx.client.resp3.get();
    let db = ctx.db();
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    let Some(s) = typed!(ctx.node.ks, db, key, Stream, get) else {
        r.array(0);
        return Ok(());
    };
    if count == 0 {
        r.null_array();
        return Ok(());
    }
    let ids = range_ids(s, start, end, count.max(0) as usize, rev);
    r.array(ids.len());
    for id in ids {
        if let Some(fv) = s.entries.get(&id) {
            reply_entry(&mut r, id, fv);
        }
    }
    Ok(())
}

fn xrange(ctx: &mut Ctx<'_>) -> CmdResult {
    xrange_generic(ctx, false)
}

fn xrevrange(ctx: &mut Ctx<'_>) -> CmdResult {
    xrange_generic(ctx, true)
}

fn xdel(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let argc = ctx.argc();
    let args: Vec<&[u8]> = (2..argc).map(|i| ctx.arg(i)).collect();
    let Some(s) = get_stream_w(ctx, key)? else {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    };
    let mut ids = Vec::with_capacity(args.len());
    for a in args {
        ids.push(parse_strict_id(a)?);
    }
    let mut deleted = 0;
    for id in ids {
        if s.delete(id) {
            if id > s.max_deleted {
                s.max_deleted = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        ctx.notify(N::STREAM, "xdel", key);
    } else {
        ctx.no_dirty = true;
    }
    ctx.r().int(deleted);
    Ok(())
}

fn xtrim(ctx: &mut Ctx<'_>) -> CmdResult {
    let a = parse_add_trim(ctx, false)?;
    let key = ctx.arg(1);
    let Some(s) = get_stream_w(ctx, key)? else {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    };
    let Some(t) = a.trim else {
        return Err(Error::Syntax);
    };
    let deleted = s.trim(&t);
    let rewrite = if t.approx {
        Some(match t.strategy {
            Strategy::MaxLen(_) => s.len().to_string(),
            Strategy::MinId(_) => fmt_id(s.first_id()),
        })
    } else {
        None
    };
    if deleted > 0 {
        ctx.notify(N::STREAM, "xtrim", key);
        if let Some(v) = rewrite.filter(|_| crate::replication::wants_deletes(ctx.node)) {
            let mut parts: Vec<Vec<u8>> = ctx.args.iter().map(|x| x.to_vec()).collect();
            parts[t.arg_idx - 1] = b"=".to_vec();
            parts[t.arg_idx] = v.into_bytes();
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            set_propagate(ctx, vec![owned(&refs)]);
        }
    } else {
        ctx.no_dirty = true;
    }
    ctx.r().int(deleted as i64);
    Ok(())
}

struct ReadArgs {
    block: Option<Option<std::time::Instant>>,
    count: usize,
    streams_arg: usize,
    nstreams: usize,
    group: Option<(Blob, Blob)>,
    noack: bool,
}

fn parse_read(ctx: &Ctx<'_>, group: bool) -> Result<ReadArgs, Error> {
    let mut a = ReadArgs {
        block: None,
        count: 0,
        streams_arg: 0,
        nstreams: 0,
        group: None,
        noack: false,
    };
    let argc = ctx.argc();
    let mut i = 1;
    while i < argc {
        let moreargs = argc - i - 1;
        let o = ctx.arg(i);
        if o.eq_ignore_ascii_case(b"block") && moreargs > 0 {
            i += 1;
            let ms = parse_int_opt(ctx.arg(i))
                .ok_or_else(|| err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(err("timeout is negative"));
            }
            a.block = Some(if ms == 0 {
                None
            } else {
                Some(std::time::Instant::now() + std::time::Duration::from_millis(ms as u64))
            });
        } else if o.eq_ignore_ascii_case(b"count") && moreargs > 0 {
            i += 1;
            a.count = ctx.int(i)?.max(0) as usize;
        } else if o.eq_ignore_ascii_case(b"streams") && moreargs > 0 {
            a.streams_arg = i + 1;
            let n = argc - a.streams_arg;
            if !n.is_multiple_of(2) {
                // The same text for XREADGROUP in 7.0.
                return Err(err("Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            a.nstreams = n / 2;
            break;
        } else if o.eq_ignore_ascii_case(b"group") && moreargs >= 2 {
            if !group {
                return Err(err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            a.group = Some((ctx.arg(i + 1).into(), ctx.arg(i + 2).into()));
            i += 2;
        } else if o.eq_ignore_ascii_case(b"noack") {
            if !group {
                return Err(err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            a.noack = true;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if a.streams_arg == 0 {
        return Err(Error::Syntax);
    }
    if group && a.group.is_none() {
        return Err(err("Missing GROUP option for XREADGROUP"));
    }
    Ok(a)
}

fn request_block(
    ctx: &mut Ctx<'_>,
    keys: Vec<Blob>,
    deadline: Option<std::time::Instant>,
    cmd: OwnedCmd,
) {
    if ctx.in_exec {
        ctx.no_dirty = true;
        ctx.r().null_array();
        return;
    }
    ctx.block = Some(BlockState {
        db: ctx.db(),
        keys,
        cmd,
        deadline,
    });
}

fn xread(ctx: &mut Ctx<'_>) -> CmdResult {
    let a = parse_read(ctx, false)?;
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let mut ids = Vec::with_capacity(a.nstreams);
    for i in 0..a.nstreams {
        let key = ctx.arg(a.streams_arg + i);
        let ida = ctx.arg(a.streams_arg + a.nstreams + i);
        let s = typed!(ctx.node.ks, db, key, Stream, get);
        if ida == b"$" {
            ids.push(s.map(|s| s.last_id).unwrap_or(MIN_ID));
            continue;
        }
        if ida == b">" {
            return Err(err("The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
        }
        ids.push(parse_strict_id(ida)?);
    }
    let mut found: Vec<(usize, Vec<Id>)> = Vec::new();
    for (i, gt) in ids.iter().enumerate() {
        let key = ctx.arg(a.streams_arg + i);
        let Some(s) = typed!(ctx.node.ks, db, key, Stream, get) else {
            continue;
        };
        if s.last_valid() > *gt && !s.is_empty() {
            let start = incr_id(*gt).unwrap_or(MAX_ID);
            found.push((i, range_ids(s, start, MAX_ID, a.count, false)));
        }
    }
    if !found.is_empty() {
        let mut r = Reply {
            out: ctx.out,
            resp3,
        };
        if resp3 {
            r.map(found.len());
        } else {
            r.array(found.len());
        }
        for (i, list) in found {
            let key = ctx.args.get(a.streams_arg + i);
            if !resp3 {
                r.array(2);
            }
            r.bulk(key);
            let s = match ctx.node.ks.dbs[db].map.get(key).map(|e| &e.val) {
                Some(Value::Stream(s)) => s,
                _ => {
                    r.array(0);
                    continue;
                }
            };
            r.array(list.len());
            for id in list {
                if let Some(fv) = s.entries.get(&id) {
                    reply_entry(&mut r, id, fv);
                }
            }
        }
        return Ok(());
    }
    match a.block {
        Some(deadline) => {
            // Block with `$` resolved: a wake-up must serve only entries newer than now.
            let mut parts: Vec<Vec<u8>> = ctx.args.iter().map(|x| x.to_vec()).collect();
            for (i, id) in ids.iter().enumerate() {
                parts[a.streams_arg + a.nstreams + i] = fmt_id(*id).into_bytes();
            }
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            let keys = (0..a.nstreams)
                .map(|i| blob(ctx.arg(a.streams_arg + i)))
                .collect();
            request_block(ctx, keys, deadline, owned(&refs));
        }
        None => ctx.r().null_array(),
    }
    Ok(())
}

fn create_consumer(g: &mut Group, name: &[u8], now: u64) -> bool {
    if g.consumers.contains_key(name) {
        return false;
    }
    g.consumers.insert(
        name.into(),
        Consumer {
            seen: now,
            pel: BTreeSet::new(),
        },
    );
    true
}

fn xreadgroup(ctx: &mut Ctx<'_>) -> CmdResult {
    let prop_on = crate::replication::wants_deletes(ctx.node);
    let a = parse_read(ctx, true)?;
    let Some((gname, cname)) = a.group.clone() else {
        return Err(err("Missing GROUP option for XREADGROUP"));
    };
    let db = ctx.db();
    let resp3 = ctx.client.resp3.get();
    let now = ctx.now();
    // Parse IDs and check groups first: errors before any side effect.
    let mut ids: Vec<Option<Id>> = Vec::with_capacity(a.nstreams);
    for i in 0..a.nstreams {
        let key = ctx.arg(a.streams_arg + i);
        let ida = ctx.arg(a.streams_arg + a.nstreams + i);
        let s = typed!(ctx.node.ks, db, key, Stream, get);
        if s.is_none_or(|s| !s.groups.contains_key(&gname)) {
            return Err(Error::Raw(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(&gname)
            )));
        }
        if ida == b"$" {
            return Err(err("The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
        }
        if ida == b">" {
            ids.push(None);
            continue;
        }
        ids.push(Some(parse_strict_id(ida)?));
    }
    let mut props = Props::new(prop_on);
    let mut body: Vec<u8> = Vec::new();
    let mut served = 0usize;
    let mut events: Vec<Blob> = Vec::new();
    for (i, gt) in ids.iter().enumerate() {
        let key = ctx.args.get(a.streams_arg + i);
        let Some(Value::Stream(s)) = ctx.node.ks.dbs[db].map.get_mut(key).map(|e| &mut e.val)
        else {
            continue;
        };
        let s: &mut Stream = s;
        let last_valid = s.last_valid();
        let nonempty = !s.is_empty();
        let Some(g) = s.groups.get(&gname) else {
            continue;
        };
        let glast = g.last_id;
        let (serve, start) = match gt {
            Some(id) => (true, incr_id(*id)),
            None => (nonempty && last_valid > glast, incr_id(glast)),
        };
        if !serve {
            continue;
        }
        // The consumer exists from its first served read on (as Redis 7.0).
        let created = s
            .groups
            .get_mut(&gname)
            .map(|g| create_consumer(g, &cname, now))
            .unwrap_or(false);
        if created {
            events.push(key.into());
            props.push(|| owned(&[b"XGROUP", b"CREATECONSUMER", key, &gname, &cname]));
        }
        if let Some(c) = s
            .groups
            .get_mut(&gname)
            .and_then(|g| g.consumers.get_mut(&cname[..]))
        {
            c.seen = now;
        }
        served += 1;
        let mut r = Reply {
            out: &mut body,
            resp3,
        };
        if !resp3 {
            r.array(2);
        }
        r.bulk(key);
        let Some(start) = start else {
            r.array(0);
            continue;
        };
        if gt.is_some() {
            // History: this consumer's pending entries from `start`.
            let Some(g) = s.groups.get_mut(&gname) else {
                continue;
            };
            let lim = if a.count == 0 { usize::MAX } else { a.count };
            let pend: Vec<Id> = g
                .consumers
                .get(&cname[..])
                .map(|c| c.pel.range(start..).take(lim).copied().collect())
                .unwrap_or_default();
            r.array(pend.len());
            for id in pend {
                match s.entries.get(&id) {
                    Some(fv) => {
                        reply_entry(&mut r, id, fv);
                        if let Some(n) = g.pel.get_mut(&id) {
                            n.time = now;
                            n.count += 1;
                        }
                    }
                    None => {
                        r.array(2);
                        reply_id(&mut r, id);
                        r.null_array();
                    }
                }
            }
            continue;
        }
        let list = range_ids(s, start, MAX_ID, a.count, false);
        r.array(list.len());
        let mut last_changed = false;
        for id in list {
            if let Some(fv) = s.entries.get(&id) {
                reply_entry(&mut r, id, fv);
            }
            let has_tomb = s.has_tombstones_from(id);
            let added = s.entries_added;
            let est = s.estimate_distance(id);
            let Some(g) = s.groups.get_mut(&gname) else {
                continue;
            };
            if id > g.last_id {
                if g.entries_read != -1 && !has_tomb {
                    g.entries_read += 1;
                } else if added > 0 {
                    g.entries_read = est.unwrap_or(-1);
                }
                g.last_id = id;
                last_changed = true;
            }
            if !a.noack {
                if let Some(old) = g.pel.get(&id).map(|n| n.consumer.clone()) {
                    if let Some(c) = g.consumers.get_mut(&old) {
                        c.pel.remove(&id);
                    }
                }
                g.pel.insert(
                    id,
                    Nack {
                        time: now,
                        count: 1,
                        consumer: cname.clone(),
                    },
                );
                if let Some(c) = g.consumers.get_mut(&cname[..]) {
                    c.pel.insert(id);
                }
                if let Some(n) = g.pel.get(&id) {
                    props.push(|| xclaim_prop(key, &gname, g, id, n));
                }
            }
        }
        if last_changed {
            if let Some(g) = s.groups.get(&gname) {
                props.push(|| setid_prop(key, &gname, g));
            }
        }
    }
    for k in events {
        ctx.notify(N::STREAM, "xgroup-createconsumer", &k);
    }
    if served > 0 {
        let mut r = ctx.r();
        if resp3 {
            r.map(served);
        } else {
            r.array(served);
        }
        ctx.out.extend_from_slice(&body);
        props.install(ctx);
        return Ok(());
    }
    match a.block {
        Some(deadline) => {
            let keys = (0..a.nstreams)
                .map(|i| blob(ctx.arg(a.streams_arg + i)))
                .collect();
            let cmd = ctx.args.to_owned_cmd();
            request_block(ctx, keys, deadline, cmd);
        }
        None => {
            ctx.no_dirty = true;
            ctx.r().null_array();
        }
    }
    Ok(())
}

fn xack(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.arg(1);
    let gname = ctx.arg(2);
    let db = ctx.db();
    // A missing key or group answers 0 before the IDs are parsed.
    let has_group =
        typed!(ctx.node.ks, db, key, Stream, get).is_some_and(|s| s.groups.contains_key(gname));
    if !has_group {
        ctx.no_dirty = true;
        ctx.r().int(0);
        return Ok(());
    }
    let mut ids = Vec::new();
    for i in 3..ctx.argc() {
        ids.push(parse_strict_id(ctx.arg(i))?);
    }
    let mut n = 0;
    if let Some(s) = get_stream_w(ctx, key)? {
        if let Some(g) = s.groups.get_mut(gname) {
            for id in ids {
                if let Some(nack) = g.pel.remove(&id) {
                    if let Some(c) = g.consumers.get_mut(&nack.consumer) {
                        c.pel.remove(&id);
                    }
                    n += 1;
                }
            }
        }
    }
    if n == 0 {
        ctx.no_dirty = true;
    }
    ctx.r().int(n);
    Ok(())
}

fn xpending(ctx: &mut Ctx<'_>) -> CmdResult {
    let argc = ctx.argc();
    let justinfo = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(Error::Syntax);
    }
    let mut minidle: i64 = 0;
    let mut start = MIN_ID;
    let mut end = MAX_ID;
    let mut count: i64 = 0;
    let mut consumer: Option<&[u8]> = None;
    if argc >= 6 {
        let mut si = 3;
        if ctx.arg_eq(3, "idle") {
            minidle = ctx.int(4)?;
            if argc < 8 {
                return Err(Error::Syntax);
            }
            si += 2;
        }
        count = ctx.int(si + 2)?.max(0);
        start = parse_range_start(ctx.arg(si))?;
        end = parse_range_end(ctx.arg(si + 1))?;
        if si + 3 < argc {
            consumer = Some(ctx.arg(si + 3));
        }
    }
    let key = ctx.arg(1);
    let gname = ctx.arg(2);
    let now = ctx.now();
    let resp3 = ctx.client.resp3.get();
    let db = ctx.db();
    let s = typed!(ctx.node.ks, db, key, Stream, get);
    let Some(g) = s.and_then(|s| s.groups.get(gname)) else {
        return Err(nogroup(key, gname));
    };
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    if justinfo {
        r.array(4);
        r.int(g.pel.len() as i64);
        match (g.pel.keys().next(), g.pel.keys().next_back()) {
            (Some(f), Some(l)) => {
                reply_id(&mut r, *f);
                reply_id(&mut r, *l);
                let cons: Vec<(&Blob, usize)> = g
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .map(|(n, c)| (n, c.pel.len()))
                    .collect();
                r.array(cons.len());
                for (n, c) in cons {
                    r.array(2);
                    r.bulk(n);
                    r.bulk(c.to_string().as_bytes());
                }
            }
            _ => {
                r.null();
                r.null();
                r.null_array();
            }
        }
        return Ok(());
    }
    let ids: Vec<Id> = match consumer {
        Some(cn) => match g.consumers.get(cn) {
            Some(c) => {
                if start > end {
                    vec![]
                } else {
                    c.pel.range(start..=end).copied().collect()
                }
            }
            None => {
                r.array(0);
                return Ok(());
            }
        },
        None => {
            if start > end {
                vec![]
            } else {
                g.pel.range(start..=end).map(|(k, _)| *k).collect()
            }
        }
    };
    let mut rows = Vec::new();
    for id in ids {
        if count == 0 {
            break;
        }
        let Some(n) = g.pel.get(&id) else { continue };
        let idle = now as i64 - n.time as i64;
        if minidle != 0 && idle < minidle {
            continue;
        }
        count -= 1;
        rows.push((id, n.consumer.clone(), idle.max(0), n.count));
    }
    r.array(rows.len());
    for (id, c, idle, cnt) in rows {
        r.array(4);
        reply_id(&mut r, id);
        r.bulk(&c);
        r.int(idle);
        r.int(cnt as i64);
    }
    Ok(())
}

fn xclaim(ctx: &mut Ctx<'_>) -> CmdResult {
    let prop_on = crate::replication::wants_deletes(ctx.node);
    let key = ctx.arg(1);
    let gname = ctx.arg(2);
    let cname = ctx.arg(3);
    let db = ctx.db();
    {
        let s = typed!(ctx.node.ks, db, key, Stream, get);
        if s.is_none_or(|s| !s.groups.contains_key(gname)) {
            return Err(nogroup(key, gname));
        }
    }
    let minidle = parse_int_opt(ctx.arg(4))
        .ok_or_else(|| err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let argc = ctx.argc();
    let mut j = 5;
    let mut ids = Vec::new();
    while j < argc {
        match parse_strict_id(ctx.arg(j)) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now() as i64;
    let mut force = false;
    let mut justid = false;
    let mut retrycount: i64 = -1;
    let mut deliverytime: i64 = -1;
    let mut last_id = MIN_ID;
    while j < argc {
        let moreargs = argc - 1 - j;
        let o = ctx.arg(j);
        if o.eq_ignore_ascii_case(b"force") {
            force = true;
        } else if o.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else if o.eq_ignore_ascii_case(b"idle") && moreargs > 0 {
            j += 1;
            let v = parse_int_opt(ctx.arg(j))
                .ok_or_else(|| err("Invalid IDLE option argument for XCLAIM"))?;
            deliverytime = now - v;
        } else if o.eq_ignore_ascii_case(b"time") && moreargs > 0 {
            j += 1;
            deliverytime = parse_int_opt(ctx.arg(j))
                .ok_or_else(|| err("Invalid TIME option argument for XCLAIM"))?;
        } else if o.eq_ignore_ascii_case(b"retrycount") && moreargs > 0 {
            j += 1;
            retrycount = parse_int_opt(ctx.arg(j))
                .ok_or_else(|| err("Invalid RETRYCOUNT option argument for XCLAIM"))?;
        } else if o.eq_ignore_ascii_case(b"lastid") && moreargs > 0 {
            j += 1;
            last_id = parse_strict_id(ctx.arg(j))?;
        } else {
            return Err(err(format!(
                "Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(o)
            )));
        }
        j += 1;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
        deliverytime = now;
    }
    let resp3 = ctx.client.resp3.get();
    let Some(Value::Stream(s)) = ctx.node.ks.dbs[db].map.get_mut(key).map(|e| &mut e.val) else {
        return Err(nogroup(key, gname));
    };
    let s: &mut Stream = s;
    let mut props = Props::new(prop_on);
    let mut body = Vec::new();
    let mut n = 0usize;
    let mut created = false;
    let Some(g) = s.groups.get_mut(gname) else {
        return Err(nogroup(key, gname));
    };
    let mut propagate_last = false;
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last = true;
    }
    let mut consumer_ready = false;
    for id in ids {
        let exists = s.entries.contains_key(&id);
        if !exists {
            if let Some(nack) = g.pel.remove(&id) {
                props.push(|| xclaim_prop(key, gname, g, id, &nack));
                propagate_last = false;
                if let Some(c) = g.consumers.get_mut(&nack.consumer) {
                    c.pel.remove(&id);
                }
            }
            continue;
        }
        let mut fresh = false;
        if force && !g.pel.contains_key(&id) {
            g.pel.insert(
                id,
                Nack {
                    time: 0,
                    count: 1,
                    consumer: Blob::default(),
                },
            );
            fresh = true;
        }
        let Some((ntime, old)) = g.pel.get(&id).map(|n| (n.time, n.consumer.clone())) else {
            continue;
        };
        if !fresh && minidle > 0 && now - (ntime as i64) < minidle {
            continue;
        }
        if !consumer_ready {
            created |= create_consumer(g, cname, now as u64);
            if let Some(c) = g.consumers.get_mut(cname) {
                c.seen = now as u64;
            }
            consumer_ready = true;
        }
        if !fresh && &old[..] != cname {
            if let Some(c) = g.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        let retry = (retrycount >= 0).then_some(retrycount as u64);
        let mut r = Reply {
            out: &mut body,
            resp3,
        };
        claim_to(
            g,
            &s.entries,
            id,
            cname,
            deliverytime as u64,
            retry,
            justid,
            &mut r,
        );
        n += 1;
        if let Some(nack) = g.pel.get(&id) {
            props.push(|| xclaim_prop(key, gname, g, id, nack));
        }
        propagate_last = false;
    }
    if propagate_last {
        props.push(|| setid_prop(key, gname, g));
    }
    if created {
        ctx.notify(N::STREAM, "xgroup-createconsumer", key);
    }
    ctx.r().array(n);
    ctx.out.extend_from_slice(&body);
    if !props.changed {
        ctx.no_dirty = true;
    }
    props.install(ctx);
    Ok(())
}

fn xautoclaim(ctx: &mut Ctx<'_>) -> CmdResult {
    let prop_on = crate::replication::wants_deletes(ctx.node);
    let key = ctx.arg(1);
    let gname = ctx.arg(2);
    let cname = ctx.arg(3);
    let minidle = parse_int_opt(ctx.arg(4))
        .ok_or_else(|| err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = parse_range_start(ctx.arg(5))?;
    let mut count: i64 = 100;
    let mut justid = false;
    let argc = ctx.argc();
    let mut j = 6;
    while j < argc {
        let moreargs = argc - 1 - j;
        if ctx.arg_eq(j, "count") && moreargs > 0 {
            let max = i64::MAX / 16;
            count = match parse_int_opt(ctx.arg(j + 1)) {
                Some(v) if (1..=max).contains(&v) => v,
                _ => return Err(err("COUNT must be > 0")),
            };
            j += 1;
        } else if ctx.arg_eq(j, "justid") {
            justid = true;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    let db = ctx.db();
    let now = ctx.now();
    let resp3 = ctx.client.resp3.get();
    let s = typed!(ctx.node.ks, db, key, Stream, get);
    let Some(s) = s else {
        return Err(nogroup(key, gname));
    };
    if !s.groups.contains_key(gname) {
        return Err(nogroup(key, gname));
    }
    let mut attempts = count * 10;
    let mut deleted_ids = Vec::new();
    let mut props = Props::new(prop_on);
    let mut body = Vec::new();
    let mut n = 0usize;
    let mut created = false;
    let mut consumer_ready = false;
    let mut from = Bound::Included(start);
    let mut eof = false;
    let Some(g) = s.groups.get_mut(gname) else {
        return Err(nogroup(key, gname));
    };
    loop {
        if attempts == 0 || count == 0 {
            break;
        }
        attempts -= 1;
        let Some(id) = g
            .pel
            .range((from, Bound::Unbounded))
            .next()
            .map(|(k, _)| *k)
        else {
            eof = true;
            break;
        };
        from = Bound::Excluded(id);
        if !s.entries.contains_key(&id) {
            if let Some(nack) = g.pel.remove(&id) {
                props.push(|| xclaim_prop(key, gname, g, id, &nack));
                if let Some(c) = g.consumers.get_mut(&nack.consumer) {
                    c.pel.remove(&id);
                }
            }
            deleted_ids.push(id);
            count -= 1;
            continue;
        }
        let Some((ntime, old)) = g.pel.get(&id).map(|n| (n.time, n.consumer.clone())) else {
            continue;
        };
        if minidle > 0 && (now as i64 - ntime as i64) < minidle {
            continue;
        }
        if !consumer_ready {
            created |= create_consumer(g, cname, now);
            if let Some(c) = g.consumers.get_mut(cname) {
                c.seen = now;
            }
            consumer_ready = true;
        }
        if &old[..] != cname {
            if let Some(c) = g.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        let mut r = Reply {
            out: &mut body,
            resp3,
        };
        claim_to(g, &s.entries, id, cname, now, None, justid, &mut r);
        n += 1;
        count -= 1;
        if let Some(nack) = g.pel.get(&id) {
            props.push(|| xclaim_prop(key, gname, g, id, nack));
        }
    }
    let endid = if eof {
        MIN_ID
    } else {
        g.pel
            .range((from, Bound::Unbounded))
            .next()
            .map(|(k, _)| *k)
            .unwrap_or(MIN_ID)
    };
    if created {
        ctx.notify(N::STREAM, "xgroup-createconsumer", key);
    }
    let mut r = ctx.r();
    r.array(3);
    reply_id(&mut r, endid);
    r.array(n);
    ctx.out.extend_from_slice(&body);
    let mut r = ctx.r();
    r.array(deleted_ids.len());
    for id in deleted_ids {
        reply_id(&mut r, id);
    }
    if !props.changed {
        ctx.no_dirty = true;
    }
    props.install(ctx);
    Ok(())
}

fn sub_syntax(ctx: &Ctx<'_>) -> Error {
    err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        trunc(ctx.arg(1), 128),
        ctx.def.name.to_uppercase()
    ))
}

fn xgroup(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    let argc = ctx.argc() as i32;
    let arity = match sub.as_str() {
        "create" => -5,
        "setid" => -5,
        "destroy" => 4,
        "createconsumer" => 5,
        "delconsumer" => 5,
        "help" => 2,
        _ => return Err(ctx.unknown_sub()),
    };
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(Error::Arity(format!("xgroup|{sub}")));
    }
    if sub == "help" {
        let lines = [
            "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
            "HELP",
            "    Prints this help.",
        ];
        ctx.r().lines(&lines[..]);
        return Ok(());
    }
    let key = ctx.arg(2);
    let gname = ctx.arg(3);
    let db = ctx.db();
    let now = ctx.now();
    let mut mkstream = false;
    let mut entries_read: i64 = -1;
    if sub == "create" {
        let mut i = 5;
        while i < ctx.argc() {
            if ctx.arg_eq(i, "mkstream") {
                mkstream = true;
                i += 1;
            } else if ctx.arg_eq(i, "entriesread") && i + 1 < ctx.argc() {
                entries_read = ctx.int(i + 1)?;
                if entries_read < -1 {
                    return Err(err("value for ENTRIESREAD must be positive or -1"));
                }
                i += 2;
            } else {
                return Err(sub_syntax(ctx));
            }
        }
    }
    if sub == "setid"
        && ((ctx.argc() != 5 && ctx.argc() != 7)
            || (ctx.argc() == 7 && !ctx.arg_eq(5, "entriesread")))
    {
        return Err(sub_syntax(ctx));
    }
    let exists = typed!(ctx.node.ks, db, key, Stream, get_w).is_some();
    if !exists && !mkstream {
        return Err(err("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
    }
    let has_group = exists
        && typed!(ctx.node.ks, db, key, Stream, get_w)
            .is_some_and(|s| s.groups.contains_key(gname));
    if !has_group && matches!(sub.as_str(), "setid" | "createconsumer" | "delconsumer") {
        return Err(Error::Raw(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(gname),
            String::from_utf8_lossy(key)
        )));
    }
    match sub.as_str() {
        "create" => {
            if ctx.argc() > 8 {
                return Err(sub_syntax(ctx));
            }
            let ida = ctx.arg(4);
            let id = if ida == b"$" {
                typed!(ctx.node.ks, db, key, Stream, get_w)
                    .map(|s| s.last_id)
                    .unwrap_or(MIN_ID)
            } else {
                parse_strict_id(ida)?
            };
            let s = typed_create!(ctx.node.ks, db, key, Stream);
            if s.groups.contains_key(gname) {
                return Err(Error::Raw(
                    "BUSYGROUP Consumer Group name already exists".into(),
                ));
            }
            s.groups.insert(
                gname.into(),
                Group {
                    last_id: id,
                    entries_read,
                    pel: BTreeMap::new(),
                    consumers: BTreeMap::new(),
                },
            );
            ctx.r().ok();
            ctx.notify(N::STREAM, "xgroup-create", key);
        }
        "setid" => {
            if ctx.argc() != 5 && ctx.argc() != 7 {
                return Err(sub_syntax(ctx));
            }
            let ida = ctx.arg(4);
            let Some(s) = typed!(ctx.node.ks, db, key, Stream, get_w) else {
                return Err(Error::NoSuchKey);
            };
            let id = if ida == b"$" {
                s.last_id
            } else {
                parse_id(ida, 0)?
            };
            if ctx.argc() == 7 {
                if !ctx.arg_eq(5, "entriesread") {
                    return Err(sub_syntax(ctx));
                }
                entries_read = ctx.int(6)?;
                if entries_read < -1 {
                    return Err(err("value for ENTRIESREAD must be positive or -1"));
                }
            }
            let Some(s) = typed!(ctx.node.ks, db, key, Stream, get_w) else {
                return Err(Error::NoSuchKey);
            };
            if let Some(g) = s.groups.get_mut(gname) {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            ctx.r().ok();
            ctx.notify(N::STREAM, "xgroup-setid", key);
        }
        "destroy" => {
            let removed = typed!(ctx.node.ks, db, key, Stream, get_w)
                .is_some_and(|s| s.groups.remove(gname).is_some());
            if removed {
                ctx.r().int(1);
                ctx.notify(N::STREAM, "xgroup-destroy", key);
            } else {
                ctx.no_dirty = true;
                ctx.r().int(0);
            }
        }
        "createconsumer" => {
            let cname = ctx.arg(4);
            let created = typed!(ctx.node.ks, db, key, Stream, get_w)
                .and_then(|s| s.groups.get_mut(gname))
                .is_some_and(|g| create_consumer(g, cname, now));
            if created {
                ctx.notify(N::STREAM, "xgroup-createconsumer", key);
            } else {
                ctx.no_dirty = true;
            }
            ctx.r().int(created as i64);
        }
        _ => {
            let cname = ctx.arg(4);
            let pending = typed!(ctx.node.ks, db, key, Stream, get_w)
                .and_then(|s| s.groups.get_mut(gname))
                .and_then(|g| {
                    let c = g.consumers.remove(cname)?;
                    for id in &c.pel {
                        g.pel.remove(id);
                    }
                    Some(c.pel.len())
                });
            match pending {
                Some(p) => {
                    ctx.notify(N::STREAM, "xgroup-delconsumer", key);
                    ctx.r().int(p as i64);
                }
                None => {
                    ctx.no_dirty = true;
                    ctx.r().int(0);
                }
            }
        }
    }
    Ok(())
}

fn xsetid(ctx: &mut Ctx<'_>) -> CmdResult {
    let id = parse_strict_id(ctx.arg(2))?;
    let mut entries_added: i64 = -1;
    let mut max_xdel = MIN_ID;
    let argc = ctx.argc();
    let mut i = 3;
    while i < argc {
        let moreargs = argc - 1 - i;
        if ctx.arg_eq(i, "entriesadded") && moreargs > 0 {
            entries_added = ctx.int(i + 1)?;
            if entries_added < 0 {
                return Err(err("entries_added must be positive"));
            }
            i += 2;
        } else if ctx.arg_eq(i, "maxdeletedid") && moreargs > 0 {
            max_xdel = parse_strict_id(ctx.arg(i + 1))?;
            if id < max_xdel {
                return Err(err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let key = ctx.arg(1);
    let Some(s) = get_stream_w(ctx, key)? else {
        return Err(Error::NoSuchKey);
    };
    if !s.is_empty() {
        if id < s.last_valid() {
            return Err(err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added != -1 && s.len() as i64 > entries_added {
            return Err(err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    if id < s.max_deleted {
        return Err(err(
            "The ID specified in XSETID is smaller than current max_deleted_entry_id",
        ));
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if max_xdel != MIN_ID {
        s.max_deleted = max_xdel;
    }
    ctx.r().ok();
    ctx.notify(N::STREAM, "xsetid", key);
    Ok(())
}

fn reply_opt_int(r: &mut Reply<'_>, v: Option<i64>) {
    match v {
        Some(v) => r.int(v),
        None => r.null(),
    }
}

fn xinfo(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    let argc = ctx.argc() as i32;
    let arity = match sub.as_str() {
        "stream" => -3,
        "groups" => 3,
        "consumers" => 4,
        "help" => 2,
        _ => return Err(ctx.unknown_sub()),
    };
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(Error::Arity(format!("xinfo|{sub}")));
    }
    if sub == "help" {
        let lines = [
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
            "HELP",
            "    Prints this help.",
        ];
        ctx.r().lines(&lines[..]);
        return Ok(());
    }
    let key = ctx.arg(2);
    let db = ctx.db();
    // The key is looked up before STREAM's options are parsed.
    match ctx.node.ks.peek(db, key) {
        None => return Err(Error::NoSuchKey),
        Some(e) if !matches!(e.val, Value::Stream(_)) => return Err(Error::WrongType),
        _ => {}
    }
    let mut full = false;
    let mut count: i64 = 10;
    if sub == "stream" && ctx.argc() > 3 {
        if ctx.argc() > 6 || !ctx.arg_eq(3, "full") {
            return Err(sub_syntax(ctx));
        }
        full = true;
        if ctx.argc() > 4 {
            if ctx.argc() != 6 || !ctx.arg_eq(4, "count") {
                return Err(sub_syntax(ctx));
            }
            count = ctx.int(5)?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let now = ctx.now();
    let resp3 = ctx.client.resp3.get();
    let Some(s) = typed!(ctx.node.ks, db, key, Stream, get) else {
        return Err(Error::NoSuchKey);
    };
    let mut r = Reply {
        out: ctx.out,
        resp3,
    };
    match sub.as_str() {
        "consumers" => {
            let gname = ctx.args.get(3);
            let Some(g) = s.groups.get(gname) else {
                return Err(Error::Raw(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(gname),
                    String::from_utf8_lossy(key)
                )));
            };
            r.array(g.consumers.len());
            for (name, c) in &g.consumers {
                r.map(3);
                r.bulk(b"name");
                r.bulk(name);
                r.bulk(b"pending");
                r.int(c.pel.len() as i64);
                r.bulk(b"idle");
                r.int((now as i64 - c.seen as i64).max(0));
            }
        }
        "groups" => {
            r.array(s.groups.len());
            for (name, g) in &s.groups {
                r.map(6);
                r.bulk(b"name");
                r.bulk(name);
                r.bulk(b"consumers");
                r.int(g.consumers.len() as i64);
                r.bulk(b"pending");
                r.int(g.pel.len() as i64);
                r.bulk(b"last-delivered-id");
                reply_id(&mut r, g.last_id);
                r.bulk(b"entries-read");
                reply_opt_int(&mut r, (g.entries_read != -1).then_some(g.entries_read));
                r.bulk(b"lag");
                reply_opt_int(&mut r, s.group_lag(g));
            }
        }
        _ => {
            r.map(if full { 9 } else { 10 });
            r.bulk(b"length");
            r.int(s.len() as i64);
            r.bulk(b"radix-tree-keys");
            r.int(s.nodes.len() as i64);
            r.bulk(b"radix-tree-nodes");
            r.int(s.rax_nodes() as i64);
            r.bulk(b"last-generated-id");
            reply_id(&mut r, s.last_id);
            r.bulk(b"max-deleted-entry-id");
            reply_id(&mut r, s.max_deleted);
            r.bulk(b"entries-added");
            r.int(s.entries_added as i64);
            r.bulk(b"recorded-first-entry-id");
            reply_id(&mut r, s.first_id());
            if !full {
                r.bulk(b"groups");
                r.int(s.groups.len() as i64);
                r.bulk(b"first-entry");
                match s.entries.iter().next() {
                    Some((id, fv)) => reply_entry(&mut r, *id, fv),
                    None => r.null(),
                }
                r.bulk(b"last-entry");
                match s.entries.iter().next_back() {
                    Some((id, fv)) => reply_entry(&mut r, *id, fv),
                    None => r.null(),
                }
                return Ok(());
            }
            r.bulk(b"entries");
            let lim = if count == 0 {
                usize::MAX
            } else {
                count as usize
            };
            let list: Vec<(&Id, &Box<[Blob]>)> = s.entries.iter().take(lim).collect();
            r.array(list.len());
            for (id, fv) in list {
                reply_entry(&mut r, *id, fv);
            }
            r.bulk(b"groups");
            r.array(s.groups.len());
            for (name, g) in &s.groups {
                r.map(7);
                r.bulk(b"name");
                r.bulk(name);
                r.bulk(b"last-delivered-id");
                reply_id(&mut r, g.last_id);
                r.bulk(b"entries-read");
                reply_opt_int(&mut r, (g.entries_read != -1).then_some(g.entries_read));
                r.bulk(b"lag");
                reply_opt_int(&mut r, s.group_lag(g));
                r.bulk(b"pel-count");
                r.int(g.pel.len() as i64);
                r.bulk(b"pending");
                let pel: Vec<(&Id, &Nack)> = g.pel.iter().take(lim).collect();
                r.array(pel.len());
                for (id, n) in pel {
                    r.array(4);
                    reply_id(&mut r, *id);
                    r.bulk(&n.consumer);
                    r.int(n.time as i64);
                    r.int(n.count as i64);
                }
                r.bulk(b"consumers");
                r.array(g.consumers.len());
                for (cn, c) in &g.consumers {
                    r.map(4);
                    r.bulk(b"name");
                    r.bulk(cn);
                    r.bulk(b"seen-time");
                    r.int(c.seen as i64);
                    r.bulk(b"pel-count");
                    r.int(c.pel.len() as i64);
                    r.bulk(b"pending");
                    let pel: Vec<&Id> = c.pel.iter().take(lim).collect();
                    r.array(pel.len());
                    for id in pel {
                        r.array(3);
                        reply_id(&mut r, *id);
                        let (t, n) = g.pel.get(id).map(|n| (n.time, n.count)).unwrap_or((0, 0));
                        r.int(t as i64);
                        r.int(n as i64);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> Id {
        Id { ms, seq }
    }

    fn fv(n: usize) -> Box<[Blob]> {
        (0..n * 2)
            .map(|i| Blob::from(format!("x{i}").as_bytes()))
            .collect()
    }

    #[test]
    fn nodes_split_at_100_entries() {
        let mut s = Stream::default();
        for i in 1..=250 {
            s.append(id(i, 0), fv(1));
        }
        assert_eq!(s.nodes.len(), 3);
        assert_eq!(s.rax_nodes(), 8);
    }

    #[test]
    fn id_parsing() {
        assert_eq!(parse_id(b"5", u64::MAX).ok(), Some(id(5, u64::MAX)));
        assert_eq!(parse_id(b"5-3", 0).ok(), Some(id(5, 3)));
        assert!(parse_strict_id(b"-").is_err());
        assert!(parse_id(b"1-x", 0).is_err());
        assert!(parse_id(b"-1", 0).is_err());
        assert_eq!(parse_range_start(b"(5-3").ok(), Some(id(5, 4)));
        assert_eq!(parse_range_end(b"(5-0").ok(), Some(id(4, u64::MAX)));
        assert!(parse_range_end(b"(0-0").is_err());
    }
}
