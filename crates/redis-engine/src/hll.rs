//! Redis-compatible HyperLogLog (PFADD / PFCOUNT / PFMERGE).
//!
//! Byte-for-byte the representation of Redis's `hyperloglog.c` (Redis 7.x / Valkey):
//!
//! * 16-byte header: `"HYLL"`, encoding byte (0 = dense, 1 = sparse), 3 unused bytes, 8-byte
//!   little-endian cached cardinality whose most significant bit (bit 7 of `card[7]`) marks the
//!   cache as invalid;
//! * dense: 16384 registers of 6 bits, packed little-endian (12304 bytes in total);
//! * sparse: run-length opcodes `ZERO` (`00xxxxxx`), `XZERO` (`01xxxxxx yyyyyyyy`) and
//!   `VAL` (`1vvvvvxx`), promoted to dense when it would grow past `hll-sparse-max-bytes`
//!   (3000 by default) or when a register needs a value above 32;
//! * MurmurHash64A with seed `0xadc83b19`, 14 index bits, and Ertl's improved estimator.
//!
//! The functions operate on the string value stored at the key; an empty `Vec` stands for a key that
//! does not exist. Type checking of the key itself (non-string values) is the caller's job; the
//! functions here check that a string is a valid HLL (`HllError::WrongType`) and detect corrupt
//! sparse encodings (`HllError::Corrupted`), exactly where Redis does.

use std::fmt;

const HLL_P: u32 = 14;
const HLL_Q: u32 = 64 - HLL_P;
const HLL_REGISTERS: usize = 1 << HLL_P;
const HLL_P_MASK: u64 = (HLL_REGISTERS as u64) - 1;
const HLL_BITS: usize = 6;
const HLL_REGISTER_MAX: u8 = (1 << HLL_BITS) - 1;
/// Size of the header.
pub const HLL_HDR_SIZE: usize = 16;
/// Total size of a dense HLL string.
pub const HLL_DENSE_SIZE: usize = HLL_HDR_SIZE + (HLL_REGISTERS * HLL_BITS).div_ceil(8);
const HLL_DENSE: u8 = 0;
const HLL_SPARSE: u8 = 1;
const HLL_MAX_ENCODING: u8 = 1;

const SPARSE_XZERO_BIT: u8 = 0x40;
const SPARSE_VAL_BIT: u8 = 0x80;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;

const HLL_ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Redis's default `hll-sparse-max-bytes`.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;

/// Errors, as Redis reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HllError {
    /// The string is not an HLL: `WRONGTYPE Key is not a valid HyperLogLog string value.`
    WrongType,
    /// The HLL's sparse encoding is corrupt: `INVALIDOBJ Corrupted HLL object detected`.
    Corrupted,
}

impl HllError {
    /// The full error line Redis sends (without the leading `-`).
    pub fn redis_message(self) -> &'static str {
        match self {
            HllError::WrongType => "WRONGTYPE Key is not a valid HyperLogLog string value.",
            HllError::Corrupted => "INVALIDOBJ Corrupted HLL object detected",
        }
    }
}

impl fmt::Display for HllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.redis_message())
    }
}

impl std::error::Error for HllError {}

/// Redis's MurmurHash64A (little-endian reads, as on x86/ARM Redis builds).
pub fn murmurhash64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let len = key.len();
    let mut h: u64 = seed ^ (len as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Register index and run length ("000..1" pattern length) of an element.
fn pat_len(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmurhash64a(ele, 0xadc8_3b19);
    let index = (hash & HLL_P_MASK) as usize;
    hash >>= HLL_P;
    hash |= 1u64 << HLL_Q;
    let count = hash.trailing_zeros() + 1;
    (index, count as u8)
}

/// A new empty HLL, as `createHLLObject()` makes it (sparse, cached cardinality 0).
pub fn new_hll() -> Vec<u8> {
    let mut v = Vec::with_capacity(HLL_HDR_SIZE + 2);
    v.extend_from_slice(b"HYLL");
    v.push(HLL_SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut aux = HLL_REGISTERS;
    while aux > 0 {
        let xz = aux.min(SPARSE_XZERO_MAX_LEN);
        let l = xz - 1;
        v.push((l >> 8) as u8 | SPARSE_XZERO_BIT);
        v.push((l & 0xff) as u8);
        aux -= xz;
    }
    v
}

/// Whether `bytes` passes Redis's `isHLLObjectOrReply` check (magic, encoding, dense length).
pub fn is_valid(bytes: &[u8]) -> bool {
    if bytes.len() < HLL_HDR_SIZE || &bytes[..4] != b"HYLL" {
        return false;
    }
    let enc = bytes[4];
    if enc > HLL_MAX_ENCODING {
        return false;
    }
    !(enc == HLL_DENSE && bytes.len() != HLL_DENSE_SIZE)
}

fn check(bytes: &[u8]) -> Result<(), HllError> {
    if is_valid(bytes) {
        Ok(())
    } else {
        Err(HllError::WrongType)
    }
}

fn invalidate_cache(hll: &mut [u8]) {
    hll[15] |= 1 << 7;
}

fn valid_cache(hll: &[u8]) -> bool {
    hll[15] & (1 << 7) == 0
}

// ---- dense registers ----

#[inline]
fn dense_get(regs: &[u8], regnum: usize) -> u8 {
    let byte = regnum * HLL_BITS / 8;
    let fb = (regnum * HLL_BITS) & 7;
    let b0 = regs[byte] as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & HLL_REGISTER_MAX as u32) as u8
}

#[inline]
fn dense_set(regs: &mut [u8], regnum: usize, val: u8) {
    let byte = regnum * HLL_BITS / 8;
    let fb = (regnum * HLL_BITS) & 7;
    let fb8 = 8 - fb;
    let v = val as u32;
    regs[byte] &= !((HLL_REGISTER_MAX as u32) << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((HLL_REGISTER_MAX as u32) >> fb8) as u8;
        *b |= (v >> fb8) as u8;
    }
}

/// Sets the register if `count` is larger; returns whether it changed.
fn dense_set_if_greater(regs: &mut [u8], index: usize, count: u8) -> bool {
    if count > dense_get(regs, index) {
        dense_set(regs, index, count);
        true
    } else {
        false
    }
}

// ---- sparse opcodes ----

#[inline]
fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
#[inline]
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == SPARSE_XZERO_BIT
}
#[inline]
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
#[inline]
fn xzero_len(b0: u8, b1: u8) -> usize {
    ((((b0 & 0x3f) as usize) << 8) | b1 as usize) + 1
}
#[inline]
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
#[inline]
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
#[inline]
fn val_op(val: u8, len: usize) -> u8 {
    ((val - 1) << 2 | (len as u8 - 1)) | SPARSE_VAL_BIT
}
#[inline]
fn byte_at(s: &[u8], i: usize) -> u8 {
    // Redis reads one past the end of a truncated XZERO (the sds terminator, 0).
    s.get(i).copied().unwrap_or(0)
}

/// Sparse → dense conversion (`hllSparseToDense`): keeps header (magic, unused bytes, cache).
fn sparse_to_dense(hll: &mut Vec<u8>) -> Result<(), HllError> {
    if hll[4] == HLL_DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; HLL_DENSE_SIZE];
    dense[..HLL_HDR_SIZE].copy_from_slice(&hll[..HLL_HDR_SIZE]);
    dense[4] = HLL_DENSE;
    let mut idx = 0usize;
    let mut p = HLL_HDR_SIZE;
    let end = hll.len();
    {
        let regs = &mut dense[HLL_HDR_SIZE..];
        while p < end {
            let b = hll[p];
            if is_zero(b) {
                idx += zero_len(b);
                p += 1;
            } else if is_xzero(b) {
                idx += xzero_len(b, byte_at(hll, p + 1));
                p += 2;
            } else {
                let runlen = val_len(b);
                let regval = val_value(b);
                if runlen + idx > HLL_REGISTERS {
                    break;
                }
                for _ in 0..runlen {
                    dense_set(regs, idx, regval);
                    idx += 1;
                }
                p += 1;
            }
        }
    }
    if idx != HLL_REGISTERS {
        return Err(HllError::Corrupted);
    }
    *hll = dense;
    Ok(())
}

/// `hllSparseSet`: returns Ok(true) when a register changed.
fn sparse_set(
    hll: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, HllError> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(hll, index, count);
    }
    let sparse = HLL_HDR_SIZE;
    let mut end = hll.len();
    let mut p = sparse;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    while p < end {
        let b = hll[p];
        let mut oplen = 1;
        if is_zero(b) {
            span = zero_len(b);
        } else if b & SPARSE_VAL_BIT != 0 {
            span = val_len(b);
        } else {
            span = xzero_len(b, byte_at(hll, p + 1));
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(HllError::Corrupted);
    }
    let b = hll[p];
    let (op_zero, op_xzero, op_val) = (is_zero(b), is_xzero(b), b & SPARSE_VAL_BIT != 0);
    let runlen = if op_zero {
        zero_len(b)
    } else if op_xzero {
        xzero_len(b, byte_at(hll, p + 1))
    } else {
        val_len(b)
    };

    let mut goto_updated = false;
    if op_val {
        let oldcount = val_value(b);
        if oldcount >= count {
            return Ok(false);
        }
        if runlen == 1 {
            hll[p] = val_op(count, 1);
            goto_updated = true;
        }
    }
    if !goto_updated && op_zero && runlen == 1 {
        hll[p] = val_op(count, 1);
        goto_updated = true;
    }

    if !goto_updated {
        // General case: split the opcode into up to 5 bytes.
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        let last = first + span - 1;
        let push_zero = |seq: &mut Vec<u8>, len: usize| {
            if len > SPARSE_ZERO_MAX_LEN {
                let l = len - 1;
                seq.push((l >> 8) as u8 | SPARSE_XZERO_BIT);
                seq.push((l & 0xff) as u8);
            } else {
                seq.push((len - 1) as u8);
            }
        };
        if op_zero || op_xzero {
            if index != first {
                push_zero(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zero(&mut seq, last - index);
            }
        } else {
            let curval = val_value(b);
            if index != first {
                seq.push(val_op(curval, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(curval, last - index));
            }
        }
        let oldlen = if op_xzero { 2 } else { 1 };
        if seq.len() > oldlen && hll.len() + (seq.len() - oldlen) > max_bytes {
            return promote(hll, index, count);
        }
        let old_end = (p + oldlen).min(end);
        hll.splice(p..old_end, seq);
        end = hll.len();
    }

    // Step 4: merge adjacent VAL opcodes with the same value.
    let mut p = prev.unwrap_or(sparse);
    let mut scanlen = 5i32;
    while p < end {
        let go = scanlen > 0;
        scanlen -= 1;
        if !go {
            break;
        }
        let b = hll[p];
        if is_xzero(b) {
            p += 2;
            continue;
        } else if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < end && hll[p + 1] & SPARSE_VAL_BIT != 0 {
            let v1 = val_value(b);
            let v2 = val_value(hll[p + 1]);
            if v1 == v2 {
                let len = val_len(b) + val_len(hll[p + 1]);
                if len <= SPARSE_VAL_MAX_LEN {
                    hll[p + 1] = val_op(v1, len);
                    hll.remove(p);
                    end -= 1;
                    continue;
                }
            }
        }
        p += 1;
    }
    invalidate_cache(hll);
    Ok(true)
}

fn promote(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    sparse_to_dense(hll)?;
    dense_set_if_greater(&mut hll[HLL_HDR_SIZE..], index, count);
    Ok(true)
}

fn add_one(hll: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, HllError> {
    let (index, count) = pat_len(ele);
    match hll[4] {
        HLL_DENSE => Ok(dense_set_if_greater(&mut hll[HLL_HDR_SIZE..], index, count)),
        HLL_SPARSE => sparse_set(hll, index, count, max_bytes),
        _ => Err(HllError::Corrupted),
    }
}

/// `PFADD`: adds elements to the HLL string `hll` (an empty vec means the key does not exist and
/// creates a new HLL). Returns whether the reply is 1 (created or any register changed). On error
/// the value may have been partly updated, as in Redis.
pub fn pfadd(hll: &mut Vec<u8>, elements: &[&[u8]]) -> Result<bool, HllError> {
    pfadd_with_config(hll, elements, DEFAULT_SPARSE_MAX_BYTES)
}

/// `PFADD` with an explicit `hll-sparse-max-bytes`.
pub fn pfadd_with_config(
    hll: &mut Vec<u8>,
    elements: &[&[u8]],
    sparse_max_bytes: usize,
) -> Result<bool, HllError> {
    let mut updated = false;
    if hll.is_empty() {
        *hll = new_hll();
        updated = true;
    } else {
        check(hll)?;
    }
    for e in elements {
        if add_one(hll, e, sparse_max_bytes)? {
            updated = true;
        }
    }
    if updated {
        invalidate_cache(hll);
    }
    Ok(updated)
}

fn reg_histo(hll: &[u8], histo: &mut [u64; 64]) -> Result<(), HllError> {
    let regs = &hll[HLL_HDR_SIZE..];
    match hll[4] {
        HLL_DENSE => {
            for i in 0..HLL_REGISTERS {
                histo[dense_get(regs, i) as usize] += 1;
            }
            Ok(())
        }
        HLL_SPARSE => {
            let mut idx = 0usize;
            let mut p = 0usize;
            while p < regs.len() {
                let b = regs[p];
                if is_zero(b) {
                    let r = zero_len(b);
                    idx += r;
                    histo[0] += r as u64;
                    p += 1;
                } else if is_xzero(b) {
                    let r = xzero_len(b, byte_at(regs, p + 1));
                    idx += r;
                    histo[0] += r as u64;
                    p += 2;
                } else {
                    let r = val_len(b);
                    idx += r;
                    histo[val_value(b) as usize] += r as u64;
                    p += 1;
                }
            }
            if idx != HLL_REGISTERS {
                return Err(HllError::Corrupted);
            }
            Ok(())
        }
        _ => Err(HllError::Corrupted),
    }
}

fn hll_sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prime = z;
        z += x * y;
        y += y;
        if z_prime == z {
            return z;
        }
    }
}

fn hll_tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prime = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if z_prime == z {
            return z / 3.0;
        }
    }
}

fn count_from_histo(histo: &[u64; 64]) -> u64 {
    let m = HLL_REGISTERS as f64;
    let mut z = m * hll_tau((m - histo[HLL_Q as usize + 1] as f64) / m);
    for j in (1..=HLL_Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * hll_sigma(histo[0] as f64 / m);
    let e = (HLL_ALPHA_INF * m * m / z).round();
    e as u64
}

/// `PFCOUNT key` on one key: returns the cached cardinality if valid, else computes it and stores
/// it in the header (so a following `GET` returns the same bytes Redis would). An empty value
/// means a missing key (count 0). See [`pfcount_ext`] to learn whether the value was modified.
pub fn pfcount(hll: &mut [u8]) -> Result<u64, HllError> {
    pfcount_ext(hll).map(|(c, _)| c)
}

/// Like [`pfcount`], also telling whether the value was modified (cache written), in which case
/// Redis signals the key as modified and increments `dirty`.
pub fn pfcount_ext(hll: &mut [u8]) -> Result<(u64, bool), HllError> {
    if hll.is_empty() {
        // Missing key.
        return Ok((0, false));
    }
    check(hll)?;
    if valid_cache(hll) {
        let mut c = [0u8; 8];
        c.copy_from_slice(&hll[8..16]);
        return Ok((u64::from_le_bytes(c), false));
    }
    let mut histo = [0u64; 64];
    reg_histo(hll, &mut histo)?;
    let card = count_from_histo(&histo);
    hll[8..16].copy_from_slice(&card.to_le_bytes());
    Ok((card, true))
}

/// Max-merges `hll` into raw 8-bit registers (`hllMerge`).
fn merge_into(max: &mut [u8], hll: &[u8]) -> Result<(), HllError> {
    let regs = &hll[HLL_HDR_SIZE..];
    if hll[4] == HLL_DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            let v = dense_get(regs, i);
            if v > *m {
                *m = v;
            }
        }
        return Ok(());
    }
    let mut i = 0usize;
    let mut p = 0usize;
    while p < regs.len() {
        let b = regs[p];
        if is_zero(b) {
            i += zero_len(b);
            p += 1;
        } else if is_xzero(b) {
            i += xzero_len(b, byte_at(regs, p + 1));
            p += 2;
        } else {
            let runlen = val_len(b);
            let regval = val_value(b);
            if runlen + i > HLL_REGISTERS {
                break;
            }
            for m in &mut max[i..i + runlen] {
                if regval > *m {
                    *m = regval;
                }
            }
            i += runlen;
            p += 1;
        }
    }
    if i != HLL_REGISTERS {
        return Err(HllError::Corrupted);
    }
    Ok(())
}

/// `PFCOUNT k1 k2 ...` with more than one key: the cardinality of the union (no cache updates).
/// Pass the values of the keys that exist, in argument order.
pub fn pfcount_many(hlls: &[&[u8]]) -> Result<u64, HllError> {
    let mut max = vec![0u8; HLL_REGISTERS];
    for h in hlls {
        check(h)?;
        merge_into(&mut max, h)?;
    }
    let mut histo = [0u64; 64];
    for &r in &max {
        histo[r as usize] += 1;
    }
    Ok(count_from_histo(&histo))
}

/// `PFMERGE dest src...`: `dest` is the destination's current value (empty vec if the key does not
/// exist; it then gets created); `srcs` are the values of the source keys that exist, in argument
/// order, excluding the destination itself (Redis merges the destination's own registers too, and
/// this does so from `dest`).
pub fn pfmerge(dest: &mut Vec<u8>, srcs: &[&[u8]]) -> Result<(), HllError> {
    pfmerge_with_config(dest, srcs, DEFAULT_SPARSE_MAX_BYTES)
}

/// `PFMERGE` with an explicit `hll-sparse-max-bytes`.
pub fn pfmerge_with_config(
    dest: &mut Vec<u8>,
    srcs: &[&[u8]],
    sparse_max_bytes: usize,
) -> Result<(), HllError> {
    let mut max = vec![0u8; HLL_REGISTERS];
    let mut use_dense = false;
    if !dest.is_empty() {
        check(dest)?;
        use_dense |= dest[4] == HLL_DENSE;
        merge_into(&mut max, dest)?;
    }
    for s in srcs {
        check(s)?;
        use_dense |= s[4] == HLL_DENSE;
        merge_into(&mut max, s)?;
    }
    if dest.is_empty() {
        *dest = new_hll();
    }
    if use_dense {
        sparse_to_dense(dest)?;
    }
    for (j, &m) in max.iter().enumerate() {
        if m == 0 {
            continue;
        }
        if dest[4] == HLL_DENSE {
            dense_set_if_greater(&mut dest[HLL_HDR_SIZE..], j, m);
        } else {
            // Redis ignores errors here (the inputs were already validated).
            let _ = sparse_set(dest, j, m, sparse_max_bytes);
        }
    }
    invalidate_cache(dest);
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Expected values were produced by redis-server 7.0.15 (PFADD / PFCOUNT / PFMERGE, then GET).
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn fnv(b: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &c in b {
            h = (h ^ c as u64).wrapping_mul(0x100_0000_01b3);
        }
        h
    }

    fn elems(prefix: &str, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{prefix}{i}").into_bytes())
            .collect()
    }

    fn add_all(h: &mut Vec<u8>, es: &[Vec<u8>]) -> bool {
        let refs: Vec<&[u8]> = es.iter().map(|e| e.as_slice()).collect();
        let mut any = false;
        for chunk in refs.chunks(1000) {
            any |= pfadd(h, chunk).unwrap();
        }
        any
    }

    #[test]
    fn new_and_small() {
        let mut h = Vec::new();
        assert!(pfadd(&mut h, &[]).unwrap());
        assert_eq!(hex(&h), "48594c4c0100000000000000000000807fff");
        assert!(pfadd(&mut h, &[b"a", b"b", b"c"]).unwrap());
        assert_eq!(
            hex(&h),
            "48594c4c01000000000000000000008060f38050b1844bfb80425a"
        );
        assert_eq!(pfcount(&mut h).unwrap(), 3);
        assert_eq!(
            hex(&h),
            "48594c4c01000000030000000000000060f38050b1844bfb80425a"
        );
        assert!(!pfadd(&mut h, &[b"a"]).unwrap());
        assert_eq!(
            hex(&h),
            "48594c4c01000000030000000000000060f38050b1844bfb80425a"
        );

        let mut big = Vec::new();
        let e: Vec<Vec<u8>> = (0..3)
            .map(|i| format!("z{i}").repeat(7).into_bytes())
            .collect();
        assert!(add_all(&mut big, &e));
        assert_eq!(
            hex(&big),
            "48594c4c01000000000000000000008064748c4864884f91844390"
        );
    }

    #[test]
    fn progressive_sparse_and_dense() {
        // (n, len, encoding, fnv(GET before PFCOUNT), PFCOUNT, fnv(GET after PFCOUNT))
        let cases: &[(usize, usize, u8, u64, u64, u64)] = &[
            (1, 21, 1, 0xfffb6faeff77f7cd, 1, 0x546d16fdfd2c805a),
            (10, 48, 1, 0x4afcb65d27f7d346, 10, 0xd06c25fbeaa23420),
            (100, 285, 1, 0xb8de76dab4a4065e, 100, 0x40dec5e3b1513cfa),
            (500, 1068, 1, 0xae6801a053be0586, 506, 0x4785b546f1b4a8cb),
            (1000, 1906, 1, 0x5935de0232806824, 1008, 0x4ded8ea0046b668d),
            (1500, 2719, 1, 0xd67ee50b81f2a28c, 1509, 0xf02083a1232a1a76),
            (2000, 12304, 0, 0x1b5576fa1f6b8092, 2000, 0xdd4d26f186b57d33),
            (3000, 12304, 0, 0x1b31e02ee1b56bce, 2979, 0xb581fa7fa1f68d1c),
            (5000, 12304, 0, 0x805246753a1cdada, 4968, 0x9219c5a2921db657),
            (
                20000,
                12304,
                0,
                0x075d26396862b2bf,
                19901,
                0x5b776629ffcdd575,
            ),
            (
                100000,
                12304,
                0,
                0xafbf1713dc5ba3c8,
                100853,
                0xfd1fc23694773e63,
            ),
        ];
        for &(n, len, enc, f1, card, f2) in cases {
            let mut h = Vec::new();
            add_all(&mut h, &elems("e", n));
            assert_eq!(h.len(), len, "n={n}");
            assert_eq!(h[4], enc, "n={n}");
            assert!(is_valid(&h));
            assert_eq!(fnv(&h), f1, "n={n}");
            assert_eq!(pfcount(&mut h).unwrap(), card, "n={n}");
            assert_eq!(fnv(&h), f2, "n={n}");
            assert_eq!(pfcount_ext(&mut h).unwrap(), (card, false));
        }
    }

    #[test]
    fn merge() {
        let mut m1 = Vec::new();
        add_all(&mut m1, &elems("x", 50));
        let mut m2 = Vec::new();
        add_all(&mut m2, &elems("y", 5000));
        let mut m3 = Vec::new();
        pfmerge(&mut m3, &[&m1]).unwrap();
        assert_eq!(
            hex(&m3),
            "48594c4c010000000000000000000080388043389442a384404780148042148040fb904088801e8042\
             ca88414384410980409d8440ebb4404390404c8840dd8004840784429180414080413a8040508842988041\
             fe84405984258441088c40c88441199044908040cb88405d80412484440d98417f8c446d80409f88420880\
             24842d88407b9444558c4108842a8443be844126a433844074804050884061"
        );
        pfmerge(&mut m3, &[&m2]).unwrap();
        assert_eq!(fnv(&m3), 0xb9f8798f9694da3d);
        assert_eq!(pfcount(&mut m3).unwrap(), 5005);
        assert_eq!(pfcount_many(&[&m1, &m2]).unwrap(), 5005);
    }

    #[test]
    fn validation_and_corruption() {
        assert!(!is_valid(b""));
        assert!(!is_valid(b"HYLL"));
        assert!(!is_valid(b"HYLX\x01\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(!is_valid(b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(!is_valid(b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\0"));
        let mut s = b"hello".to_vec();
        assert_eq!(pfadd(&mut s, &[b"a"]), Err(HllError::WrongType));
        assert_eq!(pfcount(&mut s), Err(HllError::WrongType));
        // A sparse HLL whose opcodes cover too few registers.
        let mut bad = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x00".to_vec();
        assert_eq!(pfcount(&mut bad), Err(HllError::Corrupted));
        assert_eq!(pfadd(&mut bad, &[b"a", b"b"]), Err(HllError::Corrupted));
        assert_eq!(pfcount_many(&[&bad]), Err(HllError::Corrupted));
        let mut d = Vec::new();
        assert_eq!(pfmerge(&mut d, &[&bad]), Err(HllError::Corrupted));
        assert_eq!(
            HllError::WrongType.to_string(),
            "WRONGTYPE Key is not a valid HyperLogLog string value."
        );
    }

    #[test]
    fn arbitrary_sparse_never_panics() {
        // Deterministic pseudo-random garbage after a valid header.
        let mut x: u64 = 0x1234_5678;
        for len in 0..400 {
            let mut v = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.push(x as u8);
            }
            let mut a = v.clone();
            let _ = pfcount(&mut a);
            let mut a = v.clone();
            let _ = pfadd(&mut a, &[b"foo", b"bar", b"baz"]);
            let _ = pfcount_many(&[&v]);
            let mut d = Vec::new();
            let _ = pfmerge(&mut d, &[&v]);
            let mut d = v.clone();
            let _ = pfmerge(&mut d, &[]);
        }
    }
}
