//! Number parsing with the exact semantics of memcached's `safe_strto*` helpers (which wrap C's
//! `strtol`/`strtoul`/`strtoull`), number formatting and base64 for meta keys.

#[inline]
pub fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

struct Strto {
    /// Magnitude (saturated on overflow).
    mag: u64,
    neg: bool,
    overflow: bool,
    /// Index just past the last digit; 0 when no digits were found (C sets endptr = str).
    end: usize,
}

fn strto(s: &[u8]) -> Strto {
    let mut i = 0;
    while i < s.len() && c_isspace(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut mag: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        let d = (s[i] - b'0') as u64;
        match mag.checked_mul(10).and_then(|m| m.checked_add(d)) {
            Some(v) => mag = v,
            None => overflow = true,
        }
        i += 1;
    }
    let end = if i == start { 0 } else { i };
    Strto {
        mag,
        neg,
        overflow,
        end,
    }
}

#[inline]
fn tail_ok(s: &[u8], end: usize) -> bool {
    end != 0 && (end == s.len() || c_isspace(s[end]))
}

/// memcached `safe_strtoull`.
pub fn safe_strtoull(s: &[u8]) -> Option<u64> {
    let r = strto(s);
    if r.overflow || r.end == 0 || !tail_ok(s, r.end) {
        return None;
    }
    let v = if r.neg { r.mag.wrapping_neg() } else { r.mag };
    if (v as i64) < 0 && s[..r.end].contains(&b'-') {
        return None;
    }
    Some(v)
}

/// memcached `safe_strtoul` into a 32-bit out value (the unsigned long is truncated, as in C).
pub fn safe_strtoul32(s: &[u8]) -> Option<u32> {
    safe_strtoull(s).map(|v| v as u32)
}

/// memcached `safe_strtol` into an int32.
pub fn safe_strtol(s: &[u8]) -> Option<i32> {
    let r = strto(s);
    if r.end == 0 || !tail_ok(s, r.end) {
        return None;
    }
    if r.overflow || (!r.neg && r.mag > i64::MAX as u64) || (r.neg && r.mag > 1u64 << 63) {
        return None; // ERANGE
    }
    let v: i64 = if r.neg {
        (r.mag as i64).wrapping_neg()
    } else {
        r.mag as i64
    };
    // memcached 1.6.18 stores the long into an int32 without a range check.
    Some(v as i32)
}

/// `strtoull` over an item's value as `do_add_delta` does it (the data is followed by "\r\n").
pub fn value_as_u64(v: &[u8]) -> Option<u64> {
    safe_strtoull(v)
}

pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
        push_u64(out, v.unsigned_abs());
    } else {
        push_u64(out, v as u64);
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        out.push(B64[(n >> 18) as usize & 63]);
        out.push(B64[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63]
        } else {
            b'='
        });
    }
}

fn b64_val(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        b'=' => 0,
        _ => return None,
    })
}

/// memcached's base64_decode (hostap-derived): characters outside the alphabet are skipped, the
/// count of the rest must be a non-zero multiple of 4. `None` where memcached returns 0.
pub fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let count = input.iter().filter(|&&c| b64_val(c).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let mut block = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    for &c in input {
        let Some(v) = b64_val(c) else { continue };
        if c == b'=' {
            pad += 1;
        }
        block[n] = v;
        n += 1;
        if n == 4 {
            out.push((block[0] << 2) | (block[1] >> 4));
            out.push((block[1] << 4) | (block[2] >> 2));
            out.push((block[2] << 6) | block[3]);
            n = 0;
            if pad > 0 {
                match pad {
                    1 => {
                        out.pop();
                    }
                    2 => {
                        out.pop();
                        out.pop();
                    }
                    _ => return None,
                }
                break;
            }
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strto_semantics() {
        assert_eq!(safe_strtoul32(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul32(b"-1"), None);
        assert_eq!(safe_strtoul32(b"-0"), Some(0));
        assert_eq!(safe_strtol(b"-1"), Some(-1));
        assert_eq!(safe_strtol(b"abc"), None);
        assert_eq!(safe_strtol(b"1x"), None);
        assert_eq!(safe_strtol(b"4294967297"), Some(1));
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"-5"), None);
        assert_eq!(value_as_u64(b" 12"), Some(12));
        assert_eq!(value_as_u64(b"1 2"), Some(1));
        assert_eq!(value_as_u64(b""), None);
    }

    proptest! {
        #[test]
        fn base64_roundtrip(v in proptest::collection::vec(any::<u8>(), 1..300)) {
            let mut e = Vec::new();
            base64_encode(&v, &mut e);
            prop_assert_eq!(base64_decode(&e), Some(v));
        }
        #[test]
        fn numbers_roundtrip(v in any::<u64>()) {
            let mut s = Vec::new();
            push_u64(&mut s, v);
            prop_assert_eq!(s.clone(), v.to_string().into_bytes());
            prop_assert_eq!(safe_strtoull(&s), Some(v));
        }
        #[test]
        fn parsers_never_panic(v in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = safe_strtoull(&v);
            let _ = safe_strtol(&v);
            let _ = base64_decode(&v);
        }
    }
}
