//! Encoding values in the RDB object format and `DUMP` payloads.

use crate::decode::{TYPE_HASH, TYPE_LIST, TYPE_SET, TYPE_STRING, TYPE_ZSET_2};
use crate::{crc64, lzf, stream, Value, RDB_VERSION_REDIS_7_0};

pub(crate) fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(((len >> 8) as u8) | 0x40);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// The integer a string holds if it is the canonical decimal form of an i64 (Redis's
/// `string2ll` + `ll2string` round trip).
fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (v.to_string().as_bytes() == s).then_some(v)
}

/// Writes a string as Redis's `rdbSaveRawString` does: integer encoding for short canonical
/// integers that fit 32 bits, LZF for strings over 20 bytes when `compress` and it saves space,
/// raw otherwise.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = canonical_int(s) {
            if let Ok(b) = i8::try_from(v) {
                out.push(0xc0);
                out.push(b as u8);
                return;
            } else if let Ok(h) = i16::try_from(v) {
                out.push(0xc1);
                out.extend_from_slice(&h.to_le_bytes());
                return;
            } else if let Ok(w) = i32::try_from(v) {
                out.push(0xc2);
                out.extend_from_slice(&w.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(z) = lzf::compress(s, s.len() - 4) {
            out.push(0xc3);
            write_len(out, z.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&z);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends the RDB encoding of `v` (without the type byte); returns the type byte.
pub(crate) fn write_object(out: &mut Vec<u8>, v: &Value, rdb_version: u16, compress: bool) -> u8 {
    match v {
        Value::String(s) => {
            write_string(out, s, compress);
            TYPE_STRING
        }
        Value::List(items) | Value::Set(items) => {
            write_len(out, items.len() as u64);
            for i in items {
                write_string(out, i, compress);
            }
            if matches!(v, Value::List(_)) {
                TYPE_LIST
            } else {
                TYPE_SET
            }
        }
        Value::SortedSet(items) => {
            write_len(out, items.len() as u64);
            for (m, s) in items {
                write_string(out, m, compress);
                out.extend_from_slice(&s.to_le_bytes());
            }
            TYPE_ZSET_2
        }
        Value::Hash(items) => {
            write_len(out, items.len() as u64);
            for (f, val) in items {
                write_string(out, f, compress);
                write_string(out, val, compress);
            }
            TYPE_HASH
        }
        Value::Stream(s) => stream::write(out, s, rdb_version, compress),
    }
}

/// Serializes `value` as a `DUMP` payload that `RESTORE` on redis-server 7.0+ and Valkey accepts
/// (RDB version 10 in the trailer).
pub fn dump(value: &Value) -> Vec<u8> {
    dump_with_version(value, RDB_VERSION_REDIS_7_0)
}

/// Like [`dump`] with a chosen RDB version in the trailer. `RESTORE` refuses payloads newer than
/// the server's own version, so 9 makes payloads Redis 6.x accepts; 11 is what Redis 7.2 and
/// Valkey 7.2/8 write. Streams are written as `STREAM_LISTPACKS` (< 10), `_2` (10) or `_3` (≥ 11).
pub fn dump_with_version(value: &Value, rdb_version: u16) -> Vec<u8> {
    let mut out = vec![0u8];
    let t = write_object(&mut out, value, rdb_version, true);
    out[0] = t;
    out.extend_from_slice(&rdb_version.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}
