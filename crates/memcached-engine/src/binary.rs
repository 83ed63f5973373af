//! Binary protocol (memcached proto_bin.c semantics).

use std::sync::atomic::Ordering;

use crate::node::{ConnState, Node, Outcome};
use crate::stats;
use crate::store::{AllocError, Comm, Delta, Store, StoreResult, KEY_MAX_LENGTH};
use crate::util::push_u64;

pub const REQ_MAGIC: u8 = 0x80;
const RES_MAGIC: u8 = 0x81;
const HEADER: usize = 24;

const ST_OK: u16 = 0x00;
const ST_ENOENT: u16 = 0x01;
const ST_EEXISTS: u16 = 0x02;
const ST_E2BIG: u16 = 0x03;
const ST_EINVAL: u16 = 0x04;
const ST_NOT_STORED: u16 = 0x05;
const ST_DELTA_BADVAL: u16 = 0x06;
const ST_UNKNOWN: u16 = 0x81;
const ST_ENOMEM: u16 = 0x82;

pub mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
    /// ElastiCache's auto-discovery command in the binary protocol.
    pub const CONFIG_GET: u8 = 0x60;
}

#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub opcode: u8,
    pub keylen: u16,
    pub extlen: u8,
    pub bodylen: u32,
    pub opaque: u32,
    pub cas: u64,
}

pub fn parse_header(b: &[u8]) -> Header {
    Header {
        opcode: b[1],
        keylen: u16::from_be_bytes([b[2], b[3]]),
        extlen: b[4],
        bodylen: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        opaque: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
        cas: u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_header(
    out: &mut Vec<u8>,
    opcode: u8,
    keylen: usize,
    extlen: usize,
    status: u16,
    bodylen: usize,
    opaque: u32,
    cas: u64,
) {
    out.push(RES_MAGIC);
    out.push(opcode);
    out.extend_from_slice(&(keylen as u16).to_be_bytes());
    out.push(extlen as u8);
    out.push(0);
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&(bodylen as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
}

/// An error reply. memcached transmits everything pending at an error (conn_mwrite), which
/// releases the item references held by earlier replies of the batch.
fn write_error(st: &mut Store, out: &mut Vec<u8>, h: &Header, status: u16) {
    write_error_swallow(out, h, status);
    st.flush_point(out.len());
}

/// An error reply after which memcached swallows the body (conn_swallow): no write-back yet.
fn write_error_swallow(out: &mut Vec<u8>, h: &Header, status: u16) {
    let msg: &[u8] = match status {
        ST_ENOMEM => b"Out of memory",
        ST_UNKNOWN => b"Unknown command",
        ST_ENOENT => b"Not found",
        ST_EINVAL => b"Invalid arguments",
        ST_EEXISTS => b"Data exists for key.",
        ST_E2BIG => b"Too large.",
        ST_DELTA_BADVAL => b"Non-numeric server-side value for incr or decr",
        ST_NOT_STORED => b"Not stored.",
        _ => b"",
    };
    write_header(out, h.opcode, 0, 0, status, msg.len(), h.opaque, 0);
    out.extend_from_slice(msg);
}

fn is_quiet(opcode: u8) -> bool {
    matches!(
        opcode,
        op::GETQ
            | op::GETKQ
            | op::SETQ
            | op::ADDQ
            | op::REPLACEQ
            | op::DELETEQ
            | op::INCREMENTQ
            | op::DECREMENTQ
            | op::QUITQ
            | op::FLUSHQ
            | op::APPENDQ
            | op::PREPENDQ
            | op::GATQ
            | op::GATKQ
    )
}

fn base_cmd(opcode: u8) -> u8 {
    match opcode {
        op::GETQ => op::GET,
        op::GETKQ => op::GETK,
        op::SETQ => op::SET,
        op::ADDQ => op::ADD,
        op::REPLACEQ => op::REPLACE,
        op::DELETEQ => op::DELETE,
        op::INCREMENTQ => op::INCREMENT,
        op::DECREMENTQ => op::DECREMENT,
        op::QUITQ => op::QUIT,
        op::FLUSHQ => op::FLUSH,
        op::APPENDQ => op::APPEND,
        op::PREPENDQ => op::PREPEND,
        op::GATQ => op::GAT,
        op::GATKQ => op::GATK,
        o => o,
    }
}

/// EINVAL then close (memcached's handle_binary_protocol_error).
fn protocol_error(out: &mut Vec<u8>, h: &Header) -> Outcome {
    write_error_swallow(out, h, ST_EINVAL);
    Outcome::Close
}

pub fn process(node: &mut Node, conn: &mut ConnState, buf: &[u8], out: &mut Vec<u8>) -> Outcome {
    if buf.len() < HEADER {
        return Outcome::NeedMore;
    }
    if buf[0] != REQ_MAGIC {
        return Outcome::Abort;
    }
    let h = parse_header(buf);
    let keylen = h.keylen as usize;
    let extlen = h.extlen as usize;
    let bodylen = h.bodylen as usize;
    if keylen > KEY_MAX_LENGTH {
        return protocol_error(out, &h);
    }
    let quiet = is_quiet(h.opcode);
    let cmd = base_cmd(h.opcode);

    // Validate framing like dispatch_bin_command.
    let valid = match cmd {
        op::VERSION | op::NOOP | op::QUIT => extlen == 0 && keylen == 0 && bodylen == 0,
        op::FLUSH => keylen == 0 && bodylen == extlen && (extlen == 0 || extlen == 4),
        op::SET | op::ADD | op::REPLACE => extlen == 8 && keylen != 0 && bodylen >= keylen + 8,
        op::GET | op::GETK => extlen == 0 && bodylen == keylen && keylen > 0,
        op::DELETE => keylen > 0 && extlen == 0 && bodylen == keylen,
        op::INCREMENT | op::DECREMENT => keylen > 0 && extlen == 20 && bodylen == keylen + extlen,
        op::APPEND | op::PREPEND => keylen > 0 && extlen == 0 && bodylen >= keylen,
        op::STAT => extlen == 0 && bodylen == keylen,
        op::TOUCH | op::GAT | op::GATK => extlen == 4 && keylen != 0 && bodylen == keylen + 4,
        op::CONFIG_GET => extlen == 0 && bodylen == keylen,
        // SASL (not enabled): framing is still checked, then "Unknown command"
        0x20 if !(extlen == 0 && keylen == 0 && bodylen == 0) => false,
        0x21 | 0x22 if !(extlen == 0 && keylen != 0) => false,
        _ => {
            // unknown: error, then (like memcached 1.6.18, which has already read the key and
            // extras) swallow `bodylen` further bytes.
            let head = HEADER + extlen + keylen;
            if buf.len() < head {
                return Outcome::NeedMore;
            }
            // SASL auth/step (no SASL here) swallow only their value.
            let swallow = if matches!(h.opcode, 0x21 | 0x22) {
                bodylen.saturating_sub(extlen + keylen)
            } else {
                bodylen
            };
            if swallow > 0 {
                write_error_swallow(out, &h, ST_UNKNOWN);
            } else {
                write_error(&mut node.store, out, &h, ST_UNKNOWN);
            }
            conn.swallow = swallow;
            return Outcome::Consumed(head);
        }
    };
    if !valid {
        return protocol_error(out, &h);
    }

    // Storage commands: refuse oversized values before buffering them.
    if matches!(
        cmd,
        op::SET | op::ADD | op::REPLACE | op::APPEND | op::PREPEND
    ) {
        let head = HEADER + extlen + keylen;
        if buf.len() < head {
            return Outcome::NeedMore;
        }
        let vlen = bodylen - keylen - extlen;
        let key = &buf[HEADER + extlen..head];
        let (flags, exptime) = if extlen == 8 {
            let e = &buf[HEADER..HEADER + 8];
            (
                u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
                u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
            )
        } else {
            (0, 0)
        };
        let max = node.store.settings.max_item_size.load(Ordering::Relaxed);
        let too_large = crate::store::ntotal(keylen, flags, vlen) > max;
        if !too_large && buf.len() < HEADER + bodylen {
            return Outcome::NeedMore;
        }
        let alloc = if too_large {
            Err(AllocError::TooLarge)
        } else {
            node.store.alloc(keylen, flags, vlen)
        };
        if let Err(e) = alloc {
            let st = match e {
                AllocError::TooLarge => {
                    node.store.stats.store_too_large += 1;
                    ST_E2BIG
                }
                AllocError::NoMemory => {
                    node.store.stats.store_no_memory += 1;
                    ST_ENOMEM
                }
            };
            if vlen > 0 {
                write_error_swallow(out, &h, st);
            } else {
                write_error(&mut node.store, out, &h, st);
            }
            if cmd == op::SET {
                if let Some(idx) = node.store.lookup(key, false) {
                    node.store.unlink(idx);
                }
            }
            conn.swallow = vlen;
            return Outcome::Consumed(head);
        }
        let value = &buf[head..HEADER + bodylen];
        let mut comm = match cmd {
            op::SET => Comm::Set,
            op::ADD => Comm::Add,
            op::REPLACE => Comm::Replace,
            op::APPEND => Comm::Append,
            _ => Comm::Prepend,
        };
        if h.cas != 0 && matches!(comm, Comm::Set | Comm::Add | Comm::Replace) {
            comm = Comm::Cas;
        }
        let exptime = node.store.realtime(exptime as i64);
        node.store.stats.cmd_set += 1;
        let r = node
            .store
            .store(comm, key, flags, exptime, value, h.cas, false, false);
        match r {
            StoreResult::Stored(cas) => {
                if !quiet {
                    write_header(out, h.opcode, 0, 0, ST_OK, 0, h.opaque, cas);
                }
            }
            StoreResult::Exists => write_error(&mut node.store, out, &h, ST_EEXISTS),
            StoreResult::NotFound => write_error(&mut node.store, out, &h, ST_ENOENT),
            StoreResult::NotStored => {
                let st = match cmd {
                    op::ADD => ST_EEXISTS,
                    op::REPLACE => ST_ENOENT,
                    _ => ST_NOT_STORED,
                };
                write_error(&mut node.store, out, &h, st)
            }
        }
        return Outcome::Consumed(HEADER + bodylen);
    }

    if buf.len() < HEADER + bodylen {
        return Outcome::NeedMore;
    }
    let consumed = HEADER + bodylen;
    let ext = &buf[HEADER..HEADER + extlen];
    let key = &buf[HEADER + extlen..HEADER + extlen + keylen];
    match cmd {
        op::NOOP => {
            // memcached flushes pending replies at a noop (releasing item references).
            write_header(out, h.opcode, 0, 0, ST_OK, 0, h.opaque, 0);
            node.store.flush_point(out.len());
        }
        op::VERSION => {
            let v = node.version.as_bytes();
            write_header(out, h.opcode, 0, 0, ST_OK, v.len(), h.opaque, 0);
            out.extend_from_slice(v);
        }
        op::QUIT => {
            if !quiet {
                write_header(out, h.opcode, 0, 0, ST_OK, 0, h.opaque, 0);
            }
            return Outcome::Close;
        }
        op::FLUSH => {
            let delay = if extlen == 4 {
                u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) as i64
            } else {
                0
            };
            node.store.stats.cmd_flush += 1;
            node.store.flush_all(delay);
            if !quiet {
                write_header(out, h.opcode, 0, 0, ST_OK, 0, h.opaque, 0);
            }
        }
        op::GET | op::GETK | op::TOUCH | op::GAT | op::GATK => {
            let touch = matches!(cmd, op::TOUCH | op::GAT | op::GATK);
            let st = &mut node.store;
            if touch {
                st.stats.cmd_touch += 1;
            } else {
                st.stats.cmd_get += 1;
            }
            match st.lookup(key, true) {
                Some(idx) => {
                    if touch {
                        let e = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
                        let rt = st.realtime(e as i64);
                        st.item_mut(idx).exptime = rt;
                        st.stats.touch_hits += 1;
                    } else {
                        st.stats.get_hits += 1;
                    }
                    st.bump(idx);
                    let with_key = matches!(cmd, op::GETK | op::GATK);
                    let with_value = cmd != op::TOUCH;
                    st.pin(idx);
                    let it = st.item(idx);
                    let kl = if with_key { keylen } else { 0 };
                    let vl = if with_value { it.value().len() } else { 0 };
                    write_header(out, h.opcode, kl, 4, ST_OK, 4 + kl + vl, h.opaque, it.cas);
                    out.extend_from_slice(&it.flags.to_be_bytes());
                    if with_key {
                        out.extend_from_slice(key);
                    }
                    if with_value {
                        out.extend_from_slice(it.value());
                    }
                }
                None => {
                    if touch {
                        st.stats.touch_misses += 1;
                    } else {
                        st.stats.get_misses += 1;
                    }
                    if !quiet {
                        if matches!(cmd, op::GETK | op::GATK) {
                            write_header(out, h.opcode, keylen, 0, ST_ENOENT, keylen, h.opaque, 0);
                            out.extend_from_slice(key);
                        } else {
                            write_error(st, out, &h, ST_ENOENT);
                        }
                    }
                }
            }
        }
        op::DELETE => {
            let st = &mut node.store;
            match st.lookup(key, false) {
                Some(idx) => {
                    if h.cas == 0 || h.cas == st.item(idx).cas {
                        st.stats.delete_hits += 1;
                        st.unlink(idx);
                        if !quiet {
                            write_header(out, h.opcode, 0, 0, ST_OK, 0, h.opaque, 0);
                        }
                    } else {
                        write_error(st, out, &h, ST_EEXISTS);
                    }
                }
                None => {
                    st.stats.delete_misses += 1;
                    write_error(st, out, &h, ST_ENOENT);
                }
            }
        }
        op::INCREMENT | op::DECREMENT => {
            let incr = cmd == op::INCREMENT;
            let delta = u64::from_be_bytes(ext[0..8].try_into().unwrap_or([0; 8]));
            let initial = u64::from_be_bytes(ext[8..16].try_into().unwrap_or([0; 8]));
            let exp = u32::from_be_bytes(ext[16..20].try_into().unwrap_or([0; 4]));
            let st = &mut node.store;
            let mut item = None;
            match st.add_delta(key, incr, delta, h.cas, &mut item) {
                Delta::Ok(v) => {
                    let cas = item.map(|i| st.item(i).cas).unwrap_or(0);
                    if !quiet {
                        write_header(out, h.opcode, 0, 0, ST_OK, 8, h.opaque, cas);
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
                Delta::NonNumeric => write_error(st, out, &h, ST_DELTA_BADVAL),
                Delta::CasMismatch => write_error(st, out, &h, ST_EEXISTS),
                Delta::NotFound => {
                    if exp != 0xffff_ffff {
                        let mut vb = Vec::new();
                        push_u64(&mut vb, initial);
                        if st.alloc(keylen, 0, vb.len()).is_err() {
                            write_error(st, out, &h, ST_ENOMEM);
                            return Outcome::Consumed(consumed);
                        }
                        let rt = st.realtime(exp as i64);
                        match st.store(Comm::Add, key, 0, rt, &vb, 0, false, false) {
                            StoreResult::Stored(cas) => {
                                if !quiet {
                                    write_header(out, h.opcode, 0, 0, ST_OK, 8, h.opaque, cas);
                                    out.extend_from_slice(&initial.to_be_bytes());
                                }
                            }
                            _ => write_error(st, out, &h, ST_NOT_STORED),
                        }
                    } else {
                        if incr {
                            st.stats.incr_misses += 1;
                        } else {
                            st.stats.decr_misses += 1;
                        }
                        write_error(st, out, &h, ST_ENOENT);
                    }
                }
            }
        }
        op::STAT => match stats::group_binary(node, key) {
            Some(v) => {
                for (k, val) in v {
                    write_header(
                        out,
                        h.opcode,
                        k.len(),
                        0,
                        ST_OK,
                        k.len() + val.len(),
                        h.opaque,
                        0,
                    );
                    out.extend_from_slice(k.as_bytes());
                    out.extend_from_slice(val.as_bytes());
                }
                write_header(out, h.opcode, 0, 0, ST_OK, 0, h.opaque, 0);
            }
            None => write_error(&mut node.store, out, &h, ST_ENOENT),
        },
        op::CONFIG_GET => {
            if key == b"cluster" {
                let payload = crate::text::cluster_payload(node);
                write_header(out, h.opcode, 0, 4, ST_OK, 4 + payload.len(), h.opaque, 0);
                out.extend_from_slice(&0u32.to_be_bytes());
                out.extend_from_slice(&payload);
            } else {
                write_error(&mut node.store, out, &h, ST_ENOENT);
            }
        }
        _ => write_error(&mut node.store, out, &h, ST_UNKNOWN),
    }
    Outcome::Consumed(consumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let mut out = Vec::new();
        write_header(&mut out, op::GETK, 3, 4, ST_OK, 10, 0xdeadbeef, 42);
        assert_eq!(out.len(), HEADER);
        let h = parse_header(&out);
        assert_eq!(h.opcode, op::GETK);
        assert_eq!(h.keylen, 3);
        assert_eq!(h.extlen, 4);
        assert_eq!(h.bodylen, 10);
        assert_eq!(h.opaque, 0xdeadbeef);
        assert_eq!(h.cas, 42);
    }
}
