//! Streams: the `STREAM_LISTPACKS` (v1, v2 and v3) RDB encodings.

use std::io::Read;

use bytes::Bytes;

use crate::decode::{
    Input, TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_2, TYPE_STREAM_LISTPACKS_3,
};
use crate::encode::{write_len, write_string};
use crate::encodings::{listpack, Elem};
use crate::{Error, Result};

/// A stream entry ID `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    fn from_raw(raw: &[u8; 16]) -> StreamId {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&raw[..8]);
        b.copy_from_slice(&raw[8..]);
        StreamId {
            ms: u64::from_be_bytes(a),
            seq: u64::from_be_bytes(b),
        }
    }

    fn to_raw(self) -> [u8; 16] {
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&self.ms.to_be_bytes());
        r[8..].copy_from_slice(&self.seq.to_be_bytes());
        r
    }
}

/// One stream entry (not deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub id: StreamId,
    pub fields: Vec<(Bytes, Bytes)>,
}

/// An entry of a consumer group's pending entries list.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPendingEntry {
    pub id: StreamId,
    /// Last delivery, unix time in milliseconds.
    pub delivery_time_ms: i64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamConsumer {
    pub name: Bytes,
    /// Unix ms of the last interaction (`seen-time`).
    pub seen_time_ms: i64,
    /// Unix ms of the last successful read (`active-time`, Redis 7.2+); -1 when unknown.
    pub active_time_ms: i64,
    /// IDs of this consumer's pending entries (each also in the group's `pel`).
    pub pending: Vec<StreamId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamGroup {
    pub name: Bytes,
    pub last_id: StreamId,
    /// `entries-read`; -1 when unknown (as Redis's `SCG_INVALID_ENTRIES_READ`, and for v1 streams).
    pub entries_read: i64,
    pub pel: Vec<StreamPendingEntry>,
    pub consumers: Vec<StreamConsumer>,
}

/// A stream value. `entries` are in ascending ID order; the number of entries is the
/// stream's length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    pub entries: Vec<StreamEntry>,
    pub last_id: StreamId,
    /// For v1 (Redis < 7.0) streams: the first entry's ID, or 0-0.
    pub first_id: StreamId,
    /// For v1 streams: 0-0.
    pub max_deleted_entry_id: StreamId,
    /// For v1 streams: the number of entries.
    pub entries_added: u64,
    pub groups: Vec<StreamGroup>,
}

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

fn next<'a>(it: &mut std::slice::Iter<'_, Elem<'a>>) -> Result<Elem<'a>> {
    it.next()
        .copied()
        .ok_or(Error::Corrupt("stream listpack truncated"))
}

fn next_int(it: &mut std::slice::Iter<'_, Elem<'_>>) -> Result<i64> {
    next(it)?.to_i64()
}

fn decode_node(master: StreamId, lp: &[u8], out: &mut Vec<StreamEntry>) -> Result<()> {
    let elems = listpack::entries(lp)?;
    if elems.is_empty() {
        return Err(Error::Corrupt("empty listpack inside stream"));
    }
    let mut it = elems.iter();
    let _count = next_int(&mut it)?;
    let _deleted = next_int(&mut it)?;
    let nmaster = next_int(&mut it)?;
    if nmaster < 0 || nmaster as usize > elems.len() {
        return Err(Error::Corrupt("bad stream master field count"));
    }
    let mut master_fields = Vec::with_capacity(nmaster as usize);
    for _ in 0..nmaster {
        master_fields.push(next(&mut it)?.to_bytes());
    }
    if next_int(&mut it)? != 0 {
        return Err(Error::Corrupt("bad stream master entry terminator"));
    }
    while it.len() > 0 {
        let flags = next_int(&mut it)?;
        let ms_diff = next_int(&mut it)?;
        let seq_diff = next_int(&mut it)?;
        let id = StreamId {
            ms: master.ms.wrapping_add(ms_diff as u64),
            seq: master.seq.wrapping_add(seq_diff as u64),
        };
        let mut fields = Vec::new();
        if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                fields.push((f.clone(), next(&mut it)?.to_bytes()));
            }
        } else {
            let n = next_int(&mut it)?;
            if n < 0 || n as usize > it.len() {
                return Err(Error::Corrupt("bad stream entry field count"));
            }
            for _ in 0..n {
                let f = next(&mut it)?.to_bytes();
                let v = next(&mut it)?.to_bytes();
                fields.push((f, v));
            }
        }
        let _lp_count = next_int(&mut it)?;
        if flags & FLAG_DELETED == 0 {
            out.push(StreamEntry { id, fields });
        }
    }
    Ok(())
}

fn read_id<R: Read>(inp: &mut Input<R>) -> Result<StreamId> {
    Ok(StreamId {
        ms: inp.len()?,
        seq: inp.len()?,
    })
}

pub(crate) fn read<R: Read>(inp: &mut Input<R>, t: u8) -> Result<Stream> {
    let mut s = Stream::default();
    let nodes = inp.len()?;
    for _ in 0..nodes {
        let key = inp.string()?;
        let key: [u8; 16] = key
            .as_slice()
            .try_into()
            .map_err(|_| Error::Corrupt("stream node key is not 16 bytes"))?;
        let lp = inp.string()?;
        decode_node(StreamId::from_raw(&key), &lp, &mut s.entries)?;
    }
    let _length = inp.len()?;
    s.last_id = read_id(inp)?;
    if t >= TYPE_STREAM_LISTPACKS_2 {
        s.first_id = read_id(inp)?;
        s.max_deleted_entry_id = read_id(inp)?;
        s.entries_added = inp.len()?;
    } else {
        s.first_id = s.entries.first().map(|e| e.id).unwrap_or_default();
        s.entries_added = s.entries.len() as u64;
    }
    let ngroups = inp.len()?;
    for _ in 0..ngroups {
        let name = inp.bytes()?;
        let last_id = read_id(inp)?;
        let entries_read = if t >= TYPE_STREAM_LISTPACKS_2 {
            inp.len()? as i64
        } else {
            -1
        };
        let npel = inp.len()?;
        let mut pel = Vec::new();
        for _ in 0..npel {
            let raw: [u8; 16] = inp.array()?;
            let delivery_time_ms = inp.millis()?;
            let delivery_count = inp.len()?;
            pel.push(StreamPendingEntry {
                id: StreamId::from_raw(&raw),
                delivery_time_ms,
                delivery_count,
            });
        }
        let nconsumers = inp.len()?;
        let mut consumers = Vec::new();
        for _ in 0..nconsumers {
            let name = inp.bytes()?;
            let seen_time_ms = inp.millis()?;
            let active_time_ms = if t >= TYPE_STREAM_LISTPACKS_3 {
                inp.millis()?
            } else {
                -1
            };
            let n = inp.len()?;
            let mut pending = Vec::new();
            for _ in 0..n {
                let raw: [u8; 16] = inp.array()?;
                pending.push(StreamId::from_raw(&raw));
            }
            consumers.push(StreamConsumer {
                name,
                seen_time_ms,
                active_time_ms,
                pending,
            });
        }
        s.groups.push(StreamGroup {
            name,
            last_id,
            entries_read,
            pel,
            consumers,
        });
    }
    Ok(s)
}

/// Entries per listpack node (Redis's default `stream-node-max-entries`).
const NODE_MAX_ENTRIES: usize = 100;

/// Writes the stream object; returns its RDB type.
pub(crate) fn write(out: &mut Vec<u8>, s: &Stream, rdb_version: u16, compress: bool) -> u8 {
    let t = if rdb_version >= 11 {
        TYPE_STREAM_LISTPACKS_3
    } else if rdb_version >= 10 {
        TYPE_STREAM_LISTPACKS_2
    } else {
        TYPE_STREAM_LISTPACKS
    };
    let chunks: Vec<&[StreamEntry]> = s.entries.chunks(NODE_MAX_ENTRIES).collect();
    write_len(out, chunks.len() as u64);
    for chunk in chunks {
        let master = chunk[0].id;
        let master_fields: Vec<&Bytes> = chunk[0].fields.iter().map(|(f, _)| f).collect();
        let mut lp = listpack::Builder::new();
        lp.int(chunk.len() as i64);
        lp.int(0);
        lp.int(master_fields.len() as i64);
        for f in &master_fields {
            lp.str(f);
        }
        lp.int(0);
        for e in chunk {
            let same = e.fields.len() == master_fields.len()
                && e.fields
                    .iter()
                    .zip(&master_fields)
                    .all(|((f, _), m)| f == *m);
            lp.int(if same { FLAG_SAMEFIELDS } else { 0 });
            lp.int(e.id.ms.wrapping_sub(master.ms) as i64);
            lp.int(e.id.seq.wrapping_sub(master.seq) as i64);
            let n = e.fields.len() as i64;
            if same {
                for (_, v) in &e.fields {
                    lp.str(v);
                }
                lp.int(n + 3);
            } else {
                lp.int(n);
                for (f, v) in &e.fields {
                    lp.str(f);
                    lp.str(v);
                }
                lp.int(n * 2 + 1 + 3);
            }
        }
        write_string(out, &master.to_raw(), false);
        write_string(out, &lp.finish(), compress);
    }
    write_len(out, s.entries.len() as u64);
    write_len(out, s.last_id.ms);
    write_len(out, s.last_id.seq);
    if t >= TYPE_STREAM_LISTPACKS_2 {
        write_len(out, s.first_id.ms);
        write_len(out, s.first_id.seq);
        write_len(out, s.max_deleted_entry_id.ms);
        write_len(out, s.max_deleted_entry_id.seq);
        write_len(out, s.entries_added);
    }
    write_len(out, s.groups.len() as u64);
    for g in &s.groups {
        write_string(out, &g.name, compress);
        write_len(out, g.last_id.ms);
        write_len(out, g.last_id.seq);
        if t >= TYPE_STREAM_LISTPACKS_2 {
            write_len(out, g.entries_read as u64);
        }
        write_len(out, g.pel.len() as u64);
        for p in &g.pel {
            out.extend_from_slice(&p.id.to_raw());
            out.extend_from_slice(&p.delivery_time_ms.to_le_bytes());
            write_len(out, p.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for c in &g.consumers {
            write_string(out, &c.name, compress);
            out.extend_from_slice(&c.seen_time_ms.to_le_bytes());
            if t >= TYPE_STREAM_LISTPACKS_3 {
                let active = if c.active_time_ms < 0 {
                    c.seen_time_ms
                } else {
                    c.active_time_ms
                };
                out.extend_from_slice(&active.to_le_bytes());
            }
            write_len(out, c.pending.len() as u64);
            for id in &c.pending {
                out.extend_from_slice(&id.to_raw());
            }
        }
    }
    t
}
