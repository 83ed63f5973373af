//! The compact blob encodings found inside RDB values: ziplist, listpack, intset, zipmap.

use bytes::Bytes;

use crate::decode::parse_f64;
use crate::{Error, Result};

/// An element of a ziplist or listpack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    pub(crate) fn to_bytes(self) -> Bytes {
        match self {
            Elem::Str(s) => Bytes::copy_from_slice(s),
            Elem::Int(i) => Bytes::from(i.to_string()),
        }
    }

    pub(crate) fn to_f64(self) -> Result<f64> {
        match self {
            Elem::Str(s) => parse_f64(s),
            Elem::Int(i) => Ok(i as f64),
        }
    }

    pub(crate) fn to_i64(self) -> Result<i64> {
        match self {
            Elem::Int(i) => Ok(i),
            Elem::Str(s) => std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(Error::Corrupt("expected an integer")),
        }
    }
}

fn slice(b: &[u8], from: usize, len: usize) -> Result<&[u8]> {
    from.checked_add(len)
        .and_then(|end| b.get(from..end))
        .ok_or(Error::Corrupt("element past end of blob"))
}

fn le_int(b: &[u8]) -> i64 {
    // Sign-extends a little-endian integer of 1..=8 bytes.
    let mut v: u64 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= (x as u64) << (8 * i);
    }
    let bits = 8 * b.len() as u32;
    if bits < 64 {
        let shift = 64 - bits;
        ((v << shift) as i64) >> shift
    } else {
        v as i64
    }
}

pub(crate) mod ziplist {
    use super::*;

    pub(crate) fn entries(b: &[u8]) -> Result<Vec<Elem<'_>>> {
        if b.len() < 11 {
            return Err(Error::Corrupt("ziplist too short"));
        }
        let zlbytes = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if zlbytes != b.len() {
            return Err(Error::Corrupt("ziplist size mismatch"));
        }
        let mut out = Vec::new();
        let mut p = 10usize;
        loop {
            let first = *b
                .get(p)
                .ok_or(Error::Corrupt("ziplist without end marker"))?;
            if first == 0xff {
                break;
            }
            p += match first {
                0..=253 => 1,
                _ => 5,
            };
            let enc = *b.get(p).ok_or(Error::Corrupt("ziplist truncated"))?;
            match enc >> 6 {
                0 => {
                    let len = (enc & 0x3f) as usize;
                    out.push(Elem::Str(slice(b, p + 1, len)?));
                    p += 1 + len;
                }
                1 => {
                    let lo = *slice(b, p + 1, 1)?.first().unwrap_or(&0);
                    let len = (((enc & 0x3f) as usize) << 8) | lo as usize;
                    out.push(Elem::Str(slice(b, p + 2, len)?));
                    p += 2 + len;
                }
                2 => {
                    if enc != 0x80 {
                        return Err(Error::Corrupt("bad ziplist string encoding"));
                    }
                    let l = slice(b, p + 1, 4)?;
                    let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                    out.push(Elem::Str(slice(b, p + 5, len)?));
                    p = p
                        .checked_add(5 + len)
                        .ok_or(Error::Corrupt("ziplist overflow"))?;
                }
                _ => {
                    let (n, imm) = match enc {
                        0xc0 => (2, None),
                        0xd0 => (4, None),
                        0xe0 => (8, None),
                        0xf0 => (3, None),
                        0xfe => (1, None),
                        0xf1..=0xfd => (0, Some((enc & 0x0f) as i64 - 1)),
                        _ => return Err(Error::Corrupt("bad ziplist integer encoding")),
                    };
                    let v = match imm {
                        Some(v) => v,
                        None => le_int(slice(b, p + 1, n)?),
                    };
                    out.push(Elem::Int(v));
                    p += 1 + n;
                }
            }
        }
        Ok(out)
    }
}

pub(crate) mod listpack {
    use super::*;

    pub(crate) fn entries(b: &[u8]) -> Result<Vec<Elem<'_>>> {
        if b.len() < 7 {
            return Err(Error::Corrupt("listpack too short"));
        }
        let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if total != b.len() {
            return Err(Error::Corrupt("listpack size mismatch"));
        }
        let mut out = Vec::new();
        let mut p = 6usize;
        loop {
            let e = *b
                .get(p)
                .ok_or(Error::Corrupt("listpack without end marker"))?;
            if e == 0xff {
                break;
            }
            let (elem, len) = if e & 0x80 == 0 {
                (Elem::Int((e & 0x7f) as i64), 1)
            } else if e & 0xc0 == 0x80 {
                let l = (e & 0x3f) as usize;
                (Elem::Str(slice(b, p + 1, l)?), 1 + l)
            } else if e & 0xe0 == 0xc0 {
                let lo = slice(b, p + 1, 1)?[0];
                let mut v = (((e & 0x1f) as i64) << 8) | lo as i64;
                if v >= 1 << 12 {
                    v -= 1 << 13;
                }
                (Elem::Int(v), 2)
            } else if e & 0xf0 == 0xe0 {
                let lo = slice(b, p + 1, 1)?[0];
                let l = (((e & 0x0f) as usize) << 8) | lo as usize;
                (Elem::Str(slice(b, p + 2, l)?), 2 + l)
            } else {
                match e {
                    0xf0 => {
                        let lb = slice(b, p + 1, 4)?;
                        let l = u32::from_le_bytes([lb[0], lb[1], lb[2], lb[3]]) as usize;
                        (Elem::Str(slice(b, p + 5, l)?), 5 + l)
                    }
                    0xf1 => (Elem::Int(le_int(slice(b, p + 1, 2)?)), 3),
                    0xf2 => (Elem::Int(le_int(slice(b, p + 1, 3)?)), 4),
                    0xf3 => (Elem::Int(le_int(slice(b, p + 1, 4)?)), 5),
                    0xf4 => (Elem::Int(le_int(slice(b, p + 1, 8)?)), 9),
                    _ => return Err(Error::Corrupt("bad listpack encoding")),
                }
            };
            out.push(elem);
            p = p
                .checked_add(len + backlen_size(len))
                .ok_or(Error::Corrupt("listpack overflow"))?;
        }
        Ok(out)
    }

    pub(crate) fn backlen_size(l: usize) -> usize {
        if l <= 127 {
            1
        } else if l < 16383 {
            2
        } else if l < 2_097_151 {
            3
        } else if l < 268_435_455 {
            4
        } else {
            5
        }
    }

    fn push_backlen(out: &mut Vec<u8>, l: usize) {
        let n = backlen_size(l);
        let l = l as u64;
        for i in (0..n).rev() {
            let chunk = ((l >> (7 * i)) & 127) as u8;
            // The first (leftmost) byte has no continuation bit; the others have 128 set.
            if i == n - 1 {
                out.push(chunk);
            } else {
                out.push(chunk | 128);
            }
        }
    }

    /// Builds listpacks.
    pub(crate) struct Builder {
        buf: Vec<u8>,
        count: usize,
    }

    impl Builder {
        pub(crate) fn new() -> Self {
            Builder {
                buf: vec![0; 6],
                count: 0,
            }
        }

        pub(crate) fn int(&mut self, v: i64) {
            let start = self.buf.len();
            if (0..=127).contains(&v) {
                self.buf.push(v as u8);
            } else if (-4096..=4095).contains(&v) {
                let u = if v < 0 { (1 << 13) + v } else { v } as u16;
                self.buf.push((u >> 8) as u8 | 0xc0);
                self.buf.push((u & 0xff) as u8);
            } else if (-32768..=32767).contains(&v) {
                self.buf.push(0xf1);
                self.buf.extend_from_slice(&(v as i16).to_le_bytes());
            } else if (-8_388_608..=8_388_607).contains(&v) {
                self.buf.push(0xf2);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
                self.buf.push(0xf3);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes());
            } else {
                self.buf.push(0xf4);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
            let l = self.buf.len() - start;
            push_backlen(&mut self.buf, l);
            self.count += 1;
        }

        pub(crate) fn str(&mut self, s: &[u8]) {
            let start = self.buf.len();
            let l = s.len();
            if l < 64 {
                self.buf.push(0x80 | l as u8);
            } else if l < 4096 {
                self.buf.push(0xe0 | (l >> 8) as u8);
                self.buf.push((l & 0xff) as u8);
            } else {
                self.buf.push(0xf0);
                self.buf.extend_from_slice(&(l as u32).to_le_bytes());
            }
            self.buf.extend_from_slice(s);
            let el = self.buf.len() - start;
            push_backlen(&mut self.buf, el);
            self.count += 1;
        }

        pub(crate) fn finish(mut self) -> Vec<u8> {
            self.buf.push(0xff);
            let total = self.buf.len() as u32;
            self.buf[..4].copy_from_slice(&total.to_le_bytes());
            let n = self.count.min(65535) as u16;
            self.buf[4..6].copy_from_slice(&n.to_le_bytes());
            self.buf
        }
    }
}

pub(crate) mod intset {
    use super::*;

    pub(crate) fn entries(b: &[u8]) -> Result<Vec<Bytes>> {
        if b.len() < 8 {
            return Err(Error::Corrupt("intset too short"));
        }
        let enc = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let n = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if !matches!(enc, 2 | 4 | 8) {
            return Err(Error::Corrupt("bad intset encoding"));
        }
        if n.checked_mul(enc).and_then(|x| x.checked_add(8)) != Some(b.len()) {
            return Err(Error::Corrupt("intset size mismatch"));
        }
        Ok(b[8..]
            .chunks_exact(enc)
            .map(|c| Bytes::from(le_int(c).to_string()))
            .collect())
    }
}

pub(crate) mod zipmap {
    use super::*;

    fn zm_len(b: &[u8], p: &mut usize) -> Result<usize> {
        let f = *b.get(*p).ok_or(Error::Corrupt("zipmap truncated"))?;
        match f {
            0..=253 => {
                *p += 1;
                Ok(f as usize)
            }
            254 => {
                let l = slice(b, *p + 1, 4)?;
                *p += 5;
                Ok(u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
            }
            _ => Err(Error::Corrupt("bad zipmap length")),
        }
    }

    pub(crate) fn entries(b: &[u8]) -> Result<Vec<(Bytes, Bytes)>> {
        let mut out = Vec::new();
        let mut p = 1usize;
        loop {
            let f = *b
                .get(p)
                .ok_or(Error::Corrupt("zipmap without end marker"))?;
            if f == 255 {
                break;
            }
            let kl = zm_len(b, &mut p)?;
            let k = slice(b, p, kl)?;
            p += kl;
            let vl = zm_len(b, &mut p)?;
            let free = *b.get(p).ok_or(Error::Corrupt("zipmap truncated"))? as usize;
            p += 1;
            let v = slice(b, p, vl)?;
            p = p
                .checked_add(vl + free)
                .ok_or(Error::Corrupt("zipmap overflow"))?;
            out.push((Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_round_trip() {
        let ints = [
            0i64,
            1,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            40000,
            -8_388_608,
            8_388_607,
            8_388_608,
            i32::MIN as i64,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ];
        let strs: Vec<Vec<u8>> = vec![
            vec![],
            b"a".to_vec(),
            vec![b'x'; 63],
            vec![b'y'; 64],
            vec![b'z'; 4095],
            vec![b'w'; 4096],
            vec![b'v'; 20000],
        ];
        let mut b = listpack::Builder::new();
        for &i in &ints {
            b.int(i);
        }
        for s in &strs {
            b.str(s);
        }
        let lp = b.finish();
        let got = listpack::entries(&lp).unwrap();
        let mut want: Vec<Elem> = ints.iter().map(|&i| Elem::Int(i)).collect();
        want.extend(strs.iter().map(|s| Elem::Str(s)));
        assert_eq!(got, want);
    }
}
