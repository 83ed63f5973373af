//! Decoding: a buffered input with a running CRC, and the object loader.

use std::io::Read;

use bytes::Bytes;

use crate::encodings::{intset, listpack, ziplist, zipmap, Elem};
use crate::{crc64, lzf, stream, version_supported, Error, Result, Value};

pub(crate) const TYPE_STRING: u8 = 0;
pub(crate) const TYPE_LIST: u8 = 1;
pub(crate) const TYPE_SET: u8 = 2;
pub(crate) const TYPE_ZSET: u8 = 3;
pub(crate) const TYPE_HASH: u8 = 4;
pub(crate) const TYPE_ZSET_2: u8 = 5;
pub(crate) const TYPE_HASH_ZIPMAP: u8 = 9;
pub(crate) const TYPE_LIST_ZIPLIST: u8 = 10;
pub(crate) const TYPE_SET_INTSET: u8 = 11;
pub(crate) const TYPE_ZSET_ZIPLIST: u8 = 12;
pub(crate) const TYPE_HASH_ZIPLIST: u8 = 13;
pub(crate) const TYPE_LIST_QUICKLIST: u8 = 14;
pub(crate) const TYPE_STREAM_LISTPACKS: u8 = 15;
pub(crate) const TYPE_HASH_LISTPACK: u8 = 16;
pub(crate) const TYPE_ZSET_LISTPACK: u8 = 17;
pub(crate) const TYPE_LIST_QUICKLIST_2: u8 = 18;
pub(crate) const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub(crate) const TYPE_SET_LISTPACK: u8 = 20;
pub(crate) const TYPE_STREAM_LISTPACKS_3: u8 = 21;

const CHUNK: usize = 64 * 1024;
/// Initial capacity bound for collections read from untrusted length prefixes.
pub(crate) const MAX_PREALLOC: usize = 4096;

/// Buffered input that keeps a CRC-64 of everything consumed.
pub(crate) struct Input<R> {
    r: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    crc: u64,
    crc_pos: usize,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(r: R) -> Self {
        Self::with_buf_size(r, CHUNK)
    }

    pub(crate) fn with_buf_size(r: R, size: usize) -> Self {
        Input {
            r,
            buf: vec![0u8; size.clamp(16, CHUNK)].into_boxed_slice(),
            pos: 0,
            end: 0,
            crc: 0,
            crc_pos: 0,
        }
    }

    /// Refills the buffer; false at end of input.
    fn fill(&mut self) -> Result<bool> {
        self.crc = crc64(self.crc, &self.buf[self.crc_pos..self.pos]);
        self.pos = 0;
        self.end = 0;
        self.crc_pos = 0;
        loop {
            match self.r.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// CRC of everything consumed so far.
    pub(crate) fn crc(&mut self) -> u64 {
        self.crc = crc64(self.crc, &self.buf[self.crc_pos..self.pos]);
        self.crc_pos = self.pos;
        self.crc
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        if self.pos == self.end && !self.fill()? {
            return Err(Error::UnexpectedEof);
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn read_exact(&mut self, out: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.pos == self.end && !self.fill()? {
                return Err(Error::UnexpectedEof);
            }
            let n = (self.end - self.pos).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
        Ok(())
    }

    /// Reads `n` bytes, growing the buffer as data actually arrives (a bogus huge length fails
    /// with `UnexpectedEof` without allocating it).
    pub(crate) fn read_vec(&mut self, n: u64) -> Result<Vec<u8>> {
        let n = usize::try_from(n).map_err(|_| Error::Corrupt("length too large"))?;
        let mut v = Vec::with_capacity(n.min(CHUNK));
        while v.len() < n {
            if self.pos == self.end && !self.fill()? {
                return Err(Error::UnexpectedEof);
            }
            let k = (self.end - self.pos).min(n - v.len());
            v.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
        }
        Ok(v)
    }

    pub(crate) fn skip(&mut self, n: u64) -> Result<()> {
        let mut left = n;
        while left > 0 {
            if self.pos == self.end && !self.fill()? {
                return Err(Error::UnexpectedEof);
            }
            let k = ((self.end - self.pos) as u64).min(left) as usize;
            self.pos += k;
            left -= k as u64;
        }
        Ok(())
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        self.read_exact(&mut a)?;
        Ok(a)
    }

    /// An RDB length; `Err` if it is a special encoding.
    pub(crate) fn len(&mut self) -> Result<u64> {
        match self.len_or_enc()? {
            (l, false) => Ok(l),
            (_, true) => Err(Error::Corrupt("encoded value where a length was expected")),
        }
    }

    /// An RDB length or (value, true) for a special string encoding.
    pub(crate) fn len_or_enc(&mut self) -> Result<(u64, bool)> {
        let b = self.u8()?;
        match b >> 6 {
            0 => Ok(((b & 0x3f) as u64, false)),
            1 => {
                let b2 = self.u8()?;
                Ok(((((b & 0x3f) as u64) << 8) | b2 as u64, false))
            }
            2 => match b {
                0x80 => Ok((u32::from_be_bytes(self.array()?) as u64, false)),
                0x81 => Ok((u64::from_be_bytes(self.array()?), false)),
                _ => Err(Error::Corrupt("unknown length encoding")),
            },
            _ => Ok(((b & 0x3f) as u64, true)),
        }
    }

    /// An RDB string (raw, integer-encoded or LZF-compressed).
    pub(crate) fn string(&mut self) -> Result<Vec<u8>> {
        let (len, enc) = self.len_or_enc()?;
        if !enc {
            return self.read_vec(len);
        }
        match len {
            0 => Ok((self.u8()? as i8).to_string().into_bytes()),
            1 => Ok(i16::from_le_bytes(self.array()?).to_string().into_bytes()),
            2 => Ok(i32::from_le_bytes(self.array()?).to_string().into_bytes()),
            3 => {
                let clen = self.len()?;
                let ulen = self.len()?;
                let ulen = usize::try_from(ulen).map_err(|_| Error::Corrupt("length too large"))?;
                let data = self.read_vec(clen)?;
                lzf::decompress(&data, ulen)
            }
            _ => Err(Error::Corrupt("unknown string encoding")),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<Bytes> {
        self.string().map(Bytes::from)
    }

    /// A double in the old string form (ZSET v1).
    fn string_double(&mut self) -> Result<f64> {
        let l = self.u8()?;
        match l {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let mut b = [0u8; 255];
                self.read_exact(&mut b[..l as usize])?;
                parse_f64(&b[..l as usize])
            }
        }
    }

    pub(crate) fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// Millisecond time, 8 bytes little-endian.
    pub(crate) fn millis(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
}

pub(crate) fn parse_f64(b: &[u8]) -> Result<f64> {
    let s = std::str::from_utf8(b).map_err(|_| Error::Corrupt("bad double"))?;
    s.trim()
        .parse::<f64>()
        .map_err(|_| Error::Corrupt("bad double"))
}

fn prealloc<T>(n: u64) -> Vec<T> {
    Vec::with_capacity((n as usize).min(MAX_PREALLOC))
}

fn elems_to_bytes(v: Vec<Elem<'_>>) -> Vec<Bytes> {
    v.into_iter().map(Elem::to_bytes).collect()
}

fn pairs<'a>(v: Vec<Elem<'a>>) -> Result<Vec<(Elem<'a>, Elem<'a>)>> {
    if !v.len().is_multiple_of(2) {
        return Err(Error::Corrupt("odd number of elements in a pair encoding"));
    }
    let mut out = Vec::with_capacity(v.len() / 2);
    let mut it = v.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

fn hash_pairs(v: Vec<Elem<'_>>) -> Result<Vec<(Bytes, Bytes)>> {
    Ok(pairs(v)?
        .into_iter()
        .map(|(a, b)| (a.to_bytes(), b.to_bytes()))
        .collect())
}

fn zset_pairs(v: Vec<Elem<'_>>) -> Result<Vec<(Bytes, f64)>> {
    pairs(v)?
        .into_iter()
        .map(|(m, s)| Ok((m.to_bytes(), s.to_f64()?)))
        .collect()
}

fn has_duplicates<'a>(mut keys: impl ExactSizeIterator<Item = &'a [u8]>) -> bool {
    if keys.len() < 2 {
        return false;
    }
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    keys.any(|k| !seen.insert(k))
}

/// Redis refuses sets, hashes and sorted sets with repeated members ("Duplicate ... detected").
fn check_duplicates(v: &Value) -> Result<()> {
    let dup = match v {
        Value::Set(m) => has_duplicates(m.iter().map(|b| b.as_ref())),
        Value::Hash(m) => has_duplicates(m.iter().map(|(f, _)| f.as_ref())),
        Value::SortedSet(m) => has_duplicates(m.iter().map(|(f, _)| f.as_ref())),
        _ => false,
    };
    if dup {
        Err(Error::Corrupt("duplicate member"))
    } else {
        Ok(())
    }
}

/// Loads an object of RDB type `t`.
pub(crate) fn read_object<R: Read>(inp: &mut Input<R>, t: u8) -> Result<Value> {
    let v = read_object_unchecked(inp, t)?;
    check_duplicates(&v)?;
    Ok(v)
}

fn read_object_unchecked<R: Read>(inp: &mut Input<R>, t: u8) -> Result<Value> {
    Ok(match t {
        TYPE_STRING => Value::String(inp.bytes()?),
        TYPE_LIST | TYPE_SET => {
            let n = inp.len()?;
            let mut v = prealloc(n);
            for _ in 0..n {
                v.push(inp.bytes()?);
            }
            if t == TYPE_LIST {
                Value::List(v)
            } else {
                Value::Set(v)
            }
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = inp.len()?;
            let mut v = prealloc(n);
            for _ in 0..n {
                let m = inp.bytes()?;
                let s = if t == TYPE_ZSET {
                    inp.string_double()?
                } else {
                    inp.binary_double()?
                };
                v.push((m, s));
            }
            Value::SortedSet(v)
        }
        TYPE_HASH => {
            let n = inp.len()?;
            let mut v = prealloc(n);
            for _ in 0..n {
                let f = inp.bytes()?;
                let val = inp.bytes()?;
                v.push((f, val));
            }
            Value::Hash(v)
        }
        TYPE_HASH_ZIPMAP => {
            let blob = inp.string()?;
            Value::Hash(zipmap::entries(&blob)?)
        }
        TYPE_LIST_ZIPLIST => {
            let blob = inp.string()?;
            Value::List(elems_to_bytes(ziplist::entries(&blob)?))
        }
        TYPE_SET_INTSET => {
            let blob = inp.string()?;
            Value::Set(intset::entries(&blob)?)
        }
        TYPE_SET_LISTPACK => {
            let blob = inp.string()?;
            Value::Set(elems_to_bytes(listpack::entries(&blob)?))
        }
        TYPE_ZSET_ZIPLIST => {
            let blob = inp.string()?;
            Value::SortedSet(zset_pairs(ziplist::entries(&blob)?)?)
        }
        TYPE_ZSET_LISTPACK => {
            let blob = inp.string()?;
            Value::SortedSet(zset_pairs(listpack::entries(&blob)?)?)
        }
        TYPE_HASH_ZIPLIST => {
            let blob = inp.string()?;
            Value::Hash(hash_pairs(ziplist::entries(&blob)?)?)
        }
        TYPE_HASH_LISTPACK => {
            let blob = inp.string()?;
            Value::Hash(hash_pairs(listpack::entries(&blob)?)?)
        }
        TYPE_LIST_QUICKLIST => {
            let nodes = inp.len()?;
            let mut v = Vec::new();
            for _ in 0..nodes {
                let blob = inp.string()?;
                v.extend(elems_to_bytes(ziplist::entries(&blob)?));
            }
            Value::List(v)
        }
        TYPE_LIST_QUICKLIST_2 => {
            let nodes = inp.len()?;
            let mut v = Vec::new();
            for _ in 0..nodes {
                let container = inp.len()?;
                let blob = inp.string()?;
                match container {
                    1 => v.push(Bytes::from(blob)),
                    2 => v.extend(elems_to_bytes(listpack::entries(&blob)?)),
                    _ => return Err(Error::Corrupt("unknown quicklist container")),
                }
            }
            Value::List(v)
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(stream::read(inp, t)?))
        }
        other => return Err(Error::UnsupportedType(other)),
    })
}

/// Decodes a `DUMP` payload (as `RESTORE` does): checks the RDB version (≤ 11, or Valkey 9's
/// 80/81) and CRC-64 trailer, then decodes the object. Trailing bytes after the object are
/// ignored and empty lists/sets/zsets/hashes are refused, as in Redis.
pub fn restore(payload: &[u8]) -> Result<Value> {
    if payload.len() < 10 {
        return Err(Error::BadPayload);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if !version_supported(ver) {
        return Err(Error::BadPayload);
    }
    let mut crc_bytes = [0u8; 8];
    crc_bytes.copy_from_slice(&footer[2..]);
    let crc = crc64(0, &payload[..payload.len() - 8]);
    if crc != u64::from_le_bytes(crc_bytes) {
        return Err(Error::BadPayload);
    }
    let mut inp = Input::with_buf_size(body, body.len());
    let t = inp.u8()?;
    let v = read_object(&mut inp, t)?;
    if is_empty_collection(&v) {
        // Redis refuses empty keys ("Bad data format").
        return Err(Error::Corrupt("empty collection"));
    }
    Ok(v)
}

/// A list, set, zset or hash with no elements: Redis never holds one; `RESTORE` refuses it and
/// loading a file skips it.
pub(crate) fn is_empty_collection(v: &Value) -> bool {
    match v {
        Value::List(x) | Value::Set(x) => x.is_empty(),
        Value::SortedSet(x) => x.is_empty(),
        Value::Hash(x) => x.is_empty(),
        Value::String(_) | Value::Stream(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::write_string;
    use crate::encodings::listpack::Builder;

    fn payload(t: u8, blob: &[u8]) -> Vec<u8> {
        let mut p = vec![t];
        write_string(&mut p, blob, true);
        p.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    #[test]
    fn listpack_set_and_zset() {
        // Redis 7.2's listpack sets (type 20).
        let mut b = Builder::new();
        b.str(b"a");
        b.int(-5);
        b.str(b"hello");
        let v = restore(&payload(TYPE_SET_LISTPACK, &b.finish())).unwrap();
        assert_eq!(
            v,
            Value::Set(vec![
                Bytes::from("a"),
                Bytes::from("-5"),
                Bytes::from("hello")
            ])
        );
        let mut b = Builder::new();
        b.str(b"m");
        b.str(b"1.5");
        b.str(b"n");
        b.int(-7);
        let v = restore(&payload(TYPE_ZSET_LISTPACK, &b.finish())).unwrap();
        assert_eq!(
            v,
            Value::SortedSet(vec![(Bytes::from("m"), 1.5), (Bytes::from("n"), -7.0)])
        );
        // Odd number of elements in a pair encoding.
        let mut b = Builder::new();
        b.str(b"m");
        assert!(restore(&payload(TYPE_HASH_LISTPACK, &b.finish())).is_err());
        // Unknown quicklist container.
        let mut p = vec![TYPE_LIST_QUICKLIST_2, 1, 3, 1, b'x'];
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert!(restore(&p).is_err());
    }
}
