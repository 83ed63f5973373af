//! LZF (liblzf) decompression and compression, as used for RDB strings.

use crate::Error;

/// Decompresses `input` into exactly `out_len` bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, Error> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(input.len().saturating_mul(256)));
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input
                .get(ip..ip + run)
                .ok_or(Error::Corrupt("LZF literal past end of input"))?;
            if out.len() + run > out_len {
                return Err(Error::Corrupt("LZF output too long"));
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(ip).ok_or(Error::Corrupt("LZF truncated"))? as usize;
                ip += 1;
            }
            len += 2;
            let low = *input.get(ip).ok_or(Error::Corrupt("LZF truncated"))? as usize;
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            if back > out.len() {
                return Err(Error::Corrupt("LZF back reference before start"));
            }
            if out.len() + len > out_len {
                return Err(Error::Corrupt("LZF output too long"));
            }
            let start = out.len() - back;
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    if out.len() != out_len {
        return Err(Error::Corrupt("LZF output length mismatch"));
    }
    Ok(out)
}

const HLOG: u32 = 14;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// Compresses `input`; returns None when the result would not be shorter than `max_out` bytes.
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    if n < 4 {
        return None;
    }
    // Hash table sized to the input (a 100-byte value needs no 16K-entry table).
    let hlog = (usize::BITS - n.leading_zeros()).clamp(8, HLOG);
    let hmask = (1usize << hlog) - 1;
    let mut htab = vec![0u32; 1 << hlog]; // position + 1 (0 = empty)
    let mut out: Vec<u8> = Vec::with_capacity(max_out.min(n + n / 16 + 64));
    let mut lit_start = 0usize; // index in `out` of the current literal run's control byte
    let mut lit = 0usize;
    out.push(0);
    let hash = |p: usize| -> usize {
        let v = ((input[p] as u32) << 16) | ((input[p + 1] as u32) << 8) | input[p + 2] as u32;
        ((v.wrapping_mul(0x9E37_79B1)) >> (32 - hlog)) as usize & hmask
    };
    let mut ip = 0usize;
    while ip + 2 < n {
        let h = hash(ip);
        let r = htab[h] as usize;
        htab[h] = (ip + 1) as u32;
        if r > 0 {
            let rp = r - 1;
            let off = ip - rp - 1;
            if off < MAX_OFF && input[rp..rp + 3] == input[ip..ip + 3] {
                // Match: find its length.
                let maxlen = (n - ip).min(MAX_REF);
                let mut len = 3;
                while len < maxlen && input[rp + len] == input[ip + len] {
                    len += 1;
                }
                // Close the literal run.
                if lit > 0 {
                    out[lit_start] = (lit - 1) as u8;
                } else {
                    out.pop();
                }
                let l = len - 2;
                if l < 7 {
                    out.push(((off >> 8) + (l << 5)) as u8);
                } else {
                    out.push(((off >> 8) + (7 << 5)) as u8);
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                ip += len;
                // Index the positions inside the match (cheaply: only the last two).
                if ip + 2 < n {
                    for p in ip.saturating_sub(2)..ip {
                        let h = hash(p);
                        htab[h] = (p + 1) as u32;
                    }
                }
                lit = 0;
                lit_start = out.len();
                out.push(0);
                if out.len() >= max_out {
                    return None;
                }
                continue;
            }
        }
        out.push(input[ip]);
        lit += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[lit_start] = (MAX_LIT - 1) as u8;
            lit = 0;
            lit_start = out.len();
            out.push(0);
        }
        if out.len() >= max_out {
            return None;
        }
    }
    while ip < n {
        out.push(input[ip]);
        lit += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[lit_start] = (MAX_LIT - 1) as u8;
            lit = 0;
            lit_start = out.len();
            out.push(0);
        }
    }
    if lit > 0 {
        out[lit_start] = (lit - 1) as u8;
    } else {
        out.pop();
    }
    if out.len() >= max_out {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let cases: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"hello hello hello hello hello world world world".to_vec(),
            (0..10_000u32).map(|i| (i % 251) as u8).collect(),
            (0..5000u32).map(|i| (i / 100) as u8).collect(),
            b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcab".repeat(50),
        ];
        for c in cases {
            let z = compress(&c, c.len()).expect("compressible");
            assert!(z.len() < c.len());
            assert_eq!(decompress(&z, c.len()).unwrap(), c);
        }
        assert!(compress(b"abcdefgh", 8).is_none());
    }

    #[test]
    fn corrupt_input_errors() {
        assert!(decompress(&[0x20, 0x00], 10).is_err());
        assert!(decompress(&[0x05, b'a'], 6).is_err());
        assert!(decompress(&[0x00, b'a'], 2).is_err());
        assert!(decompress(&[0xe0], 2).is_err());
    }
}
