//! ASCII protocol (classic and meta commands), following memcached 1.6.18's proto_text.c.

use std::sync::atomic::Ordering;

use memchr::memchr;

use crate::node::{ConnState, Node, Outcome};
use crate::stats;
use crate::store::{
    slab_class, AllocError, Comm, Delta, StoreResult, F_FETCHED, F_KEY_BINARY, F_STALE,
    F_TOKEN_SENT, KEY_MAX_LENGTH,
};
use crate::util::{
    base64_decode, base64_encode, push_i64, push_u64, safe_strtol, safe_strtoul32, safe_strtoull,
};

const MAX_TOKENS: usize = 24;
const MFLAG_MAX_OPT_LENGTH: usize = 20;
const MFLAG_MAX_OPAQUE_LENGTH: usize = 32;
/// Longest request line we buffer before giving up on the connection (get lines are unbounded
/// in memcached; we stop at this).
const MAX_GET_LINE: usize = 16 * 1024 * 1024;

/// Tokens of one command line, as memcached's tokenize_command produces them.
pub struct Tokens<'a> {
    pub toks: [&'a [u8]; MAX_TOKENS],
    /// number of real tokens (memcached's ntokens - 1).
    pub n: usize,
    /// unprocessed remainder when the line had more tokens than fit.
    pub rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    /// memcached's ntokens (real tokens + the terminal one).
    #[inline]
    pub fn ntokens(&self) -> usize {
        self.n + 1
    }
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            self.toks[i]
        } else {
            b""
        }
    }
}

pub fn tokenize(cmd: &[u8]) -> Tokens<'_> {
    let mut t = Tokens {
        toks: [b""; MAX_TOKENS],
        n: 0,
        rest: None,
    };
    let mut s = 0;
    let mut e = 0;
    let len = cmd.len();
    while e < len {
        if cmd[e] == b' ' {
            if s != e {
                t.toks[t.n] = &cmd[s..e];
                t.n += 1;
                if t.n == MAX_TOKENS - 1 {
                    e += 1;
                    s = e;
                    break;
                }
            }
            s = e + 1;
        }
        e += 1;
    }
    if s != e && e <= len && s < len {
        t.toks[t.n] = &cmd[s..e];
        t.n += 1;
    }
    if e < len {
        t.rest = Some(&cmd[e..]);
    }
    t
}

#[inline]
fn out_str(out: &mut Vec<u8>, noreply: bool, s: &[u8]) {
    if !noreply {
        out.extend_from_slice(s);
        out.extend_from_slice(b"\r\n");
    }
}

fn set_noreply_maybe(t: &Tokens) -> bool {
    t.n >= 1 && t.toks[t.n - 1] == b"noreply"
}

/// Process the request at the start of `buf`.
pub fn process(node: &mut Node, conn: &mut ConnState, buf: &[u8], out: &mut Vec<u8>) -> Outcome {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > 2048 {
            let mut p = 0;
            while p < buf.len() && buf[p] == b' ' {
                p += 1;
            }
            let rest = &buf[p..];
            if p > 100 || !(rest.starts_with(b"get ") || rest.starts_with(b"gets ")) {
                return Outcome::Abort;
            }
            if buf.len() > MAX_GET_LINE {
                return Outcome::Abort;
            }
        }
        return Outcome::NeedMore;
    };
    let line_end = nl + 1;
    let mut el = nl;
    if el > 1 && buf[el - 1] == b'\r' {
        el -= 1;
    }
    let mut line = &buf[..el];
    if let Some(z) = memchr(0, line) {
        line = &line[..z];
    }
    let t = tokenize(line);
    let ntokens = t.ntokens();
    if ntokens < 2 || t.toks[0].len() < 2 {
        out_str(out, false, b"ERROR");
        return Outcome::Consumed(line_end);
    }
    let cmd = t.toks[0];
    let first = cmd[0];
    if first == b'm' && cmd.len() == 2 {
        node.store.stats.cmd_meta += 1;
        return match cmd[1] {
            b'g' => {
                meta_get(node, &t, out);
                Outcome::Consumed(line_end)
            }
            b's' => meta_set(node, conn, &t, buf, line_end, out),
            b'n' => {
                // mn forces a write-back in memcached (releasing item references).
                out.extend_from_slice(b"MN\r\n");
                node.store.flush_point(out.len());
                Outcome::Consumed(line_end)
            }
            b'd' => {
                meta_delete(node, &t, out);
                Outcome::Consumed(line_end)
            }
            b'e' => {
                meta_debug(node, &t, out);
                Outcome::Consumed(line_end)
            }
            b'a' => {
                meta_arith(node, &t, out);
                Outcome::Consumed(line_end)
            }
            _ => {
                out_str(out, false, b"ERROR");
                Outcome::Consumed(line_end)
            }
        };
    }
    match cmd {
        b"get" | b"gets" | b"gat" | b"gats" => {
            if ntokens < 3 {
                out_str(out, false, b"ERROR");
            } else {
                process_get(
                    node,
                    &t,
                    cmd == b"gets" || cmd == b"gats",
                    cmd[1] == b'a',
                    out,
                );
            }
            Outcome::Consumed(line_end)
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" => {
            if ntokens != 6 && ntokens != 7 {
                out_str(out, false, b"ERROR");
                return Outcome::Consumed(line_end);
            }
            let comm = match cmd {
                b"set" => Comm::Set,
                b"add" => Comm::Add,
                b"replace" => Comm::Replace,
                b"append" => Comm::Append,
                _ => Comm::Prepend,
            };
            process_update(node, conn, &t, comm, buf, line_end, out)
        }
        b"cas" => {
            if ntokens != 7 && ntokens != 8 {
                out_str(out, false, b"ERROR");
                return Outcome::Consumed(line_end);
            }
            process_update(node, conn, &t, Comm::Cas, buf, line_end, out)
        }
        b"incr" | b"decr" => {
            if ntokens != 4 && ntokens != 5 {
                out_str(out, false, b"ERROR");
            } else {
                process_arith(node, &t, cmd == b"incr", out);
            }
            Outcome::Consumed(line_end)
        }
        b"delete" => {
            if !(3..=5).contains(&ntokens) {
                out_str(out, false, b"ERROR");
            } else {
                process_delete(node, &t, out);
            }
            Outcome::Consumed(line_end)
        }
        b"touch" => {
            if ntokens != 4 && ntokens != 5 {
                out_str(out, false, b"ERROR");
            } else {
                process_touch(node, &t, out);
            }
            Outcome::Consumed(line_end)
        }
        b"stats" => {
            stats::process_stats(node, &t, out);
            Outcome::Consumed(line_end)
        }
        b"flush_all" => {
            if !(2..=4).contains(&ntokens) {
                out_str(out, false, b"ERROR");
            } else {
                let noreply = set_noreply_maybe(&t);
                node.store.stats.cmd_flush += 1;
                let mut delay = 0;
                if ntokens != if noreply { 3 } else { 2 } {
                    match safe_strtol(t.get(1)) {
                        Some(d) => delay = d,
                        None => {
                            out_str(out, noreply, b"CLIENT_ERROR invalid exptime argument");
                            return Outcome::Consumed(line_end);
                        }
                    }
                }
                node.store.flush_all(delay as i64);
                out_str(out, noreply, b"OK");
            }
            Outcome::Consumed(line_end)
        }
        b"version" => {
            out.extend_from_slice(b"VERSION ");
            out.extend_from_slice(node.version.as_bytes());
            out.extend_from_slice(b"\r\n");
            Outcome::Consumed(line_end)
        }
        b"quit" => Outcome::Close,
        b"verbosity" => {
            if ntokens != 3 && ntokens != 4 {
                out_str(out, false, b"ERROR");
            } else {
                let noreply = set_noreply_maybe(&t);
                match safe_strtoul32(t.get(1)) {
                    Some(l) => {
                        node.verbosity = l.min(2);
                        out_str(out, noreply, b"OK");
                    }
                    None => out_str(out, noreply, b"CLIENT_ERROR bad command line format"),
                }
            }
            Outcome::Consumed(line_end)
        }
        b"config" => {
            // ElastiCache auto-discovery.
            if t.n == 3 && t.toks[1] == b"get" && t.toks[2] == b"cluster" {
                let payload = cluster_payload(node);
                out.extend_from_slice(b"CONFIG cluster 0 ");
                push_u64(out, payload.len() as u64);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&payload);
                out.extend_from_slice(b"\r\nEND\r\n");
            } else {
                out_str(out, false, b"ERROR");
            }
            Outcome::Consumed(line_end)
        }
        b"lru" if ntokens >= 3 => {
            out_str(out, false, b"OK");
            Outcome::Consumed(line_end)
        }
        b"slabs" if t.n >= 2 && t.toks[1] == b"automove" => {
            out_str(out, false, b"OK");
            Outcome::Consumed(line_end)
        }
        b"shutdown" => {
            out_str(out, false, b"ERROR: shutdown not enabled");
            Outcome::Consumed(line_end)
        }
        b"cache_memlimit" => {
            if ntokens != 3 && ntokens != 4 {
                out_str(out, false, b"ERROR");
            } else {
                let noreply = set_noreply_maybe(&t);
                match safe_strtoul32(t.get(1)) {
                    Some(mb) if mb > 1_000_000_000 => out_str(
                        out,
                        noreply,
                        b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes",
                    ),
                    Some(mb) if mb >= 8 => {
                        node.store
                            .settings
                            .memory_limit
                            .store(mb as u64 * 1024 * 1024, Ordering::Relaxed);
                        out_str(out, noreply, b"OK");
                    }
                    Some(_) => out_str(
                        out,
                        noreply,
                        b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
                    ),
                    None => out_str(out, noreply, b"ERROR"),
                }
            }
            Outcome::Consumed(line_end)
        }
        _ => {
            if t.n >= 1 && t.toks[t.n - 1].starts_with(b"HTTP/") {
                return Outcome::Close;
            }
            out_str(out, false, b"ERROR");
            Outcome::Consumed(line_end)
        }
    }
}

pub fn cluster_payload(node: &Node) -> Vec<u8> {
    match node.cluster.lock() {
        Ok(c) => c.payload(),
        Err(p) => p.into_inner().payload(),
    }
}

fn write_value_line(out: &mut Vec<u8>, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    push_u64(out, flags as u64);
    out.push(b' ');
    push_u64(out, len as u64);
    if let Some(c) = cas {
        out.push(b' ');
        push_u64(out, c);
    }
    out.extend_from_slice(b"\r\n");
}

fn process_get(node: &mut Node, t: &Tokens, return_cas: bool, touch: bool, out: &mut Vec<u8>) {
    let start = out.len();
    let mut first_key = 1;
    let mut exptime = 0;
    if touch {
        match safe_strtol(t.get(1)) {
            Some(e) => exptime = node.store.realtime(e as i64),
            None => {
                out_str(out, false, b"CLIENT_ERROR invalid exptime argument");
                return;
            }
        }
        first_key = 2;
    }
    // memcached releases the item references of earlier replies here (observable through
    // whether a later incr/decr updates in place).
    node.store.pinned.clear();
    let mut toks = Tokens {
        toks: t.toks,
        n: t.n,
        rest: t.rest,
    };
    loop {
        for i in first_key..toks.n {
            let key = toks.toks[i];
            if key.len() > KEY_MAX_LENGTH {
                out.truncate(start);
                out_str(out, false, b"CLIENT_ERROR bad command line format");
                return;
            }
            get_one(node, key, return_cas, touch, exptime, out);
        }
        match toks.rest {
            Some(r) => {
                toks = tokenize(r);
                first_key = 0;
            }
            None => break,
        }
    }
    if is_legacy_discovery(t) {
        // handled in get_one
    }
    out.extend_from_slice(b"END\r\n");
}

fn is_legacy_discovery(_t: &Tokens) -> bool {
    false
}

#[inline]
fn get_one(
    node: &mut Node,
    key: &[u8],
    return_cas: bool,
    touch: bool,
    exptime: u32,
    out: &mut Vec<u8>,
) {
    let st = &mut node.store;
    if touch {
        st.stats.cmd_touch += 1;
    } else {
        st.stats.cmd_get += 1;
    }
    match st.lookup(key, true) {
        Some(idx) => {
            if touch {
                st.stats.touch_hits += 1;
                st.item_mut(idx).exptime = exptime;
            } else {
                st.stats.get_hits += 1;
            }
            st.bump(idx);
            let it = st.item(idx);
            let v = it.value();
            write_value_line(out, key, it.flags, v.len(), return_cas.then_some(it.cas));
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        None => {
            if touch {
                st.stats.touch_misses += 1;
            } else {
                st.stats.get_misses += 1;
            }
            if key == b"AmazonElastiCache:cluster" {
                // Auto-discovery for engines < 1.4.14.
                let payload = cluster_payload(node);
                write_value_line(out, key, 0, payload.len(), return_cas.then_some(0));
                out.extend_from_slice(&payload);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn process_update(
    node: &mut Node,
    conn: &mut ConnState,
    t: &Tokens,
    comm: Comm,
    buf: &[u8],
    line_end: usize,
    out: &mut Vec<u8>,
) -> Outcome {
    let noreply = set_noreply_maybe(t);
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        out_str(out, noreply, b"CLIENT_ERROR bad command line format");
        return Outcome::Consumed(line_end);
    }
    let (Some(flags), Some(exptime), Some(vlen)) = (
        safe_strtoul32(t.get(2)),
        safe_strtol(t.get(3)),
        safe_strtol(t.get(4)),
    ) else {
        out_str(out, noreply, b"CLIENT_ERROR bad command line format");
        return Outcome::Consumed(line_end);
    };
    let mut req_cas = 0;
    if comm == Comm::Cas {
        match safe_strtoull(t.get(5)) {
            Some(c) => req_cas = c,
            None => {
                out_str(out, noreply, b"CLIENT_ERROR bad command line format");
                return Outcome::Consumed(line_end);
            }
        }
    }
    if !(0..=i32::MAX - 2).contains(&vlen) {
        out_str(out, noreply, b"CLIENT_ERROR bad command line format");
        return Outcome::Consumed(line_end);
    }
    let vlen = vlen as usize;
    let max = node.store.settings.max_item_size.load(Ordering::Relaxed);
    let too_large = crate::store::ntotal(key.len(), flags, vlen) > max;
    if !too_large && buf.len() < line_end + vlen + 2 {
        return Outcome::NeedMore;
    }
    let alloc = if too_large {
        Err(AllocError::TooLarge)
    } else {
        node.store.alloc(key.len(), flags, vlen)
    };
    if let Err(e) = alloc {
        match e {
            AllocError::TooLarge => node.store.stats.store_too_large += 1,
            AllocError::NoMemory => node.store.stats.store_no_memory += 1,
        }
        out_str(out, noreply, e.to_string().as_bytes());
        conn.swallow = vlen + 2;
        if comm == Comm::Set {
            if let Some(idx) = node.store.lookup(key, false) {
                node.store.unlink(idx);
            }
        }
        return Outcome::Consumed(line_end);
    }
    let data = &buf[line_end..line_end + vlen + 2];
    let consumed = line_end + vlen + 2;
    node.store.stats.cmd_set += 1;
    if &data[vlen..] != b"\r\n" {
        out_str(out, noreply, b"CLIENT_ERROR bad data chunk");
        return Outcome::Consumed(consumed);
    }
    let exptime = node.store.realtime(exptime as i64);
    let r = node.store.store(
        comm,
        key,
        flags,
        exptime,
        &data[..vlen],
        req_cas,
        false,
        false,
    );
    let s: &[u8] = match r {
        StoreResult::Stored(_) => b"STORED",
        StoreResult::Exists => b"EXISTS",
        StoreResult::NotFound => b"NOT_FOUND",
        StoreResult::NotStored => b"NOT_STORED",
    };
    out_str(out, noreply, s);
    Outcome::Consumed(consumed)
}

fn process_arith(node: &mut Node, t: &Tokens, incr: bool, out: &mut Vec<u8>) {
    let noreply = set_noreply_maybe(t);
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        out_str(out, noreply, b"CLIENT_ERROR bad command line format");
        return;
    }
    let Some(delta) = safe_strtoull(t.get(2)) else {
        out_str(out, noreply, b"CLIENT_ERROR invalid numeric delta argument");
        return;
    };
    let mut it = None;
    match node.store.add_delta(key, incr, delta, 0, &mut it) {
        Delta::Ok(v) => {
            if !noreply {
                push_u64(out, v);
                out.extend_from_slice(b"\r\n");
            }
        }
        Delta::NonNumeric => out_str(
            out,
            noreply,
            b"CLIENT_ERROR cannot increment or decrement non-numeric value",
        ),
        Delta::NotFound => {
            if incr {
                node.store.stats.incr_misses += 1;
            } else {
                node.store.stats.decr_misses += 1;
            }
            out_str(out, noreply, b"NOT_FOUND")
        }
        Delta::CasMismatch => {}
    }
}

fn process_delete(node: &mut Node, t: &Tokens, out: &mut Vec<u8>) {
    let ntokens = t.ntokens();
    let mut noreply = false;
    if ntokens > 3 {
        let hold_is_zero = t.get(2) == b"0";
        noreply = set_noreply_maybe(t);
        let valid = (ntokens == 4 && (hold_is_zero || noreply))
            || (ntokens == 5 && hold_is_zero && noreply);
        if !valid {
            out_str(
                out,
                noreply,
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
            );
            return;
        }
    }
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        out_str(out, noreply, b"CLIENT_ERROR bad command line format");
        return;
    }
    match node.store.lookup(key, false) {
        Some(idx) => {
            node.store.stats.delete_hits += 1;
            node.store.unlink(idx);
            out_str(out, noreply, b"DELETED");
        }
        None => {
            node.store.stats.delete_misses += 1;
            out_str(out, noreply, b"NOT_FOUND");
        }
    }
}

fn process_touch(node: &mut Node, t: &Tokens, out: &mut Vec<u8>) {
    let noreply = set_noreply_maybe(t);
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        out_str(out, noreply, b"CLIENT_ERROR bad command line format");
        return;
    }
    let Some(e) = safe_strtol(t.get(2)) else {
        out_str(out, noreply, b"CLIENT_ERROR invalid exptime argument");
        return;
    };
    let exptime = node.store.realtime(e as i64);
    node.store.stats.cmd_touch += 1;
    match node.store.lookup(key, false) {
        Some(idx) => {
            node.store.stats.touch_hits += 1;
            node.store.item_mut(idx).exptime = exptime;
            node.store.bump(idx);
            out_str(out, noreply, b"TOUCHED");
        }
        None => {
            node.store.stats.touch_misses += 1;
            out_str(out, noreply, b"NOT_FOUND");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Meta commands

#[derive(Default)]
struct MetaFlags {
    key_binary: bool,
    vivify: bool,
    autoviv_exptime: u32,
    exptime: u32,
    new_ttl: bool,
    recache_time: u32,
    value: bool,
    no_update: bool,
    no_reply: bool,
    client_flags: u32,
    has_cas: bool,
    req_cas: u64,
    mode: u8,
    initial: u64,
    delta: u64,
    set_stale: bool,
    /// `E<cas>`: explicit new CAS value (memcached >= 1.6.21).
    explicit_cas: Option<u64>,
}

/// memcached's _meta_flag_preparse. Returns the (possibly base64-decoded) key.
fn meta_preparse(
    node: &Node,
    t: &Tokens,
    start: usize,
    of: &mut MetaFlags,
) -> Result<Vec<u8>, &'static str> {
    let mut key = t.get(1).to_vec();
    let mut seen = [false; 128];
    let mut err: Option<&'static str> = None;
    let mut generic_err = false;
    for i in start..t.n {
        let tok = t.toks[i];
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            return Err("CLIENT_ERROR duplicate flag");
        }
        seen[o as usize] = true;
        let arg = &tok[1..];
        match o {
            b'b' => match base64_decode(&key) {
                Some(k) => {
                    key = k;
                    of.key_binary = true;
                }
                None => {
                    err = Some("CLIENT_ERROR error decoding key");
                    key.clear();
                    of.key_binary = true;
                }
            },
            b'N' | b'T' | b'R' => match safe_strtol(arg) {
                Some(v) => {
                    let rt = node.store.realtime(v as i64);
                    match o {
                        b'N' => {
                            of.vivify = true;
                            of.autoviv_exptime = rt;
                        }
                        b'T' => {
                            of.exptime = rt;
                            of.new_ttl = true;
                        }
                        _ => of.recache_time = rt,
                    }
                }
                None => {
                    if o == b'N' {
                        of.vivify = true;
                    }
                    err = Some("CLIENT_ERROR bad token in command line format")
                }
            },
            b'l' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' => {}
            b'v' => of.value = true,
            b'u' => of.no_update = true,
            b'q' => of.no_reply = true,
            b'F' => match safe_strtoul32(arg) {
                Some(f) => of.client_flags = f,
                None => generic_err = true,
            },
            b'C' => match safe_strtoull(arg) {
                Some(c) => {
                    of.req_cas = c;
                    of.has_cas = true;
                }
                None => err = Some("CLIENT_ERROR bad token in command line format"),
            },
            b'E' if version_at_least(&node.version, (1, 6, 21)) => match safe_strtoull(arg) {
                Some(c) => of.explicit_cas = Some(c),
                None => err = Some("CLIENT_ERROR bad token in command line format"),
            },
            b'M' => {
                if tok.len() != 2 {
                    err = Some("CLIENT_ERROR incorrect length for M token");
                } else {
                    of.mode = tok[1];
                }
            }
            b'J' => match safe_strtoull(arg) {
                Some(v) => of.initial = v,
                None => err = Some("CLIENT_ERROR invalid numeric initial value"),
            },
            b'D' => match safe_strtoull(arg) {
                Some(v) => of.delta = v,
                None => err = Some("CLIENT_ERROR invalid numeric delta value"),
            },
            b'I' => of.set_stale = true,
            _ => return Err("CLIENT_ERROR invalid flag"),
        }
    }
    match err {
        Some(e) => Err(e),
        None if generic_err => Err("CLIENT_ERROR bad command line format"),
        None => Ok(key),
    }
}

fn version_at_least(v: &str, want: (u32, u32, u32)) -> bool {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let got = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    );
    got >= want
}

fn meta_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64_encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

fn meta_get(node: &mut Node, t: &Tokens, out: &mut Vec<u8>) {
    let ntokens = t.ntokens();
    if ntokens < 3 {
        out_str(out, false, b"ERROR");
        return;
    }
    if t.get(1).len() > KEY_MAX_LENGTH {
        out_str(out, false, b"CLIENT_ERROR bad command line format");
        return;
    }
    if ntokens > MFLAG_MAX_OPT_LENGTH {
        out_str(out, false, b"CLIENT_ERROR options flags are too long");
        return;
    }
    let mut of = MetaFlags::default();
    let key = match meta_preparse(node, t, 2, &mut of) {
        Ok(k) => k,
        Err(e) => {
            out_str(out, false, e.as_bytes());
            return;
        }
    };
    let start = out.len();
    let st = &mut node.store;
    st.stats.cmd_get += 1;
    let mut found = st.lookup(&key, true);
    let mut created = false;
    if found.is_none() && of.vivify {
        // memcached does not mark a vivified item's key as binary.
        found = Some(st.link(&key, &[], 0, 0, 0, None));
        created = true;
    }
    let Some(idx) = found else {
        st.stats.get_misses += 1;
        if of.no_reply {
            return;
        }
        out.extend_from_slice(b"EN");
        for i in 2..t.n {
            let tok = t.toks[i];
            match tok[0] {
                b'O' => {
                    if tok.len() > MFLAG_MAX_OPAQUE_LENGTH {
                        out.truncate(start);
                        out_str(out, false, b"CLIENT_ERROR opaque token too long");
                        return;
                    }
                    out.push(b' ');
                    out.extend_from_slice(tok);
                }
                b'k' => meta_key(out, &key, of.key_binary),
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
        return;
    };
    if !created {
        st.stats.get_hits += 1;
    }
    let now = st.now;
    let started = st.started;
    let (fetched_before, item_time) = {
        let it = st.item(idx);
        (it.iflags & F_FETCHED != 0, it.time)
    };
    let vlen = st.item(idx).value().len();
    st.pin(idx);
    if of.value {
        out.extend_from_slice(b"VA ");
        push_u64(out, vlen as u64);
    } else {
        out.extend_from_slice(b"HD");
    }
    let mut won = false;
    for i in 2..t.n {
        let tok = t.toks[i];
        match tok[0] {
            b'T' => {
                st.item_mut(idx).exptime = of.exptime;
            }
            b'N' if created => {
                st.item_mut(idx).exptime = of.autoviv_exptime;
                won = true;
            }
            b'R' => {
                let it = st.item(idx);
                if it.iflags & F_TOKEN_SENT == 0
                    && !created
                    && it.exptime != 0
                    && it.exptime < of.recache_time
                {
                    won = true;
                }
            }
            b's' => {
                out.extend_from_slice(b" s");
                push_u64(out, vlen as u64);
            }
            b't' => {
                out.extend_from_slice(b" t");
                push_ttl(out, st.item(idx).exptime, now, started);
            }
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, st.item(idx).cas);
            }
            b'f' => {
                out.extend_from_slice(b" f");
                push_u64(out, st.item(idx).flags as u64);
            }
            b'l' => {
                out.extend_from_slice(b" l");
                push_u64(out, now.saturating_sub(item_time) as u64);
            }
            b'h' => {
                out.extend_from_slice(if fetched_before { b" h1" } else { b" h0" });
            }
            b'O' => {
                if tok.len() > MFLAG_MAX_OPAQUE_LENGTH {
                    out.truncate(start);
                    out_str(out, false, b"CLIENT_ERROR opaque token too long");
                    return;
                }
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => {
                let it = st.item(idx);
                meta_key(out, it.key(), it.iflags & F_KEY_BINARY != 0);
            }
            _ => {}
        }
    }
    let it = st.item_mut(idx);
    if it.iflags & F_TOKEN_SENT != 0 {
        out.extend_from_slice(b" Z");
    }
    if it.iflags & F_STALE != 0 {
        out.extend_from_slice(b" X");
        if it.iflags & F_TOKEN_SENT == 0 {
            won = true;
        }
    }
    if won {
        out.extend_from_slice(b" W");
        it.iflags |= F_TOKEN_SENT;
    }
    out.extend_from_slice(b"\r\n");
    if of.value {
        out.extend_from_slice(st.item(idx).value());
        out.extend_from_slice(b"\r\n");
    }
    if !of.no_update {
        st.bump(idx);
    }
}

/// TTL as memcached prints it: relative seconds, -1 for none; memcached's unsigned wrap for
/// already-expired markers.
fn push_ttl(out: &mut Vec<u8>, exptime: u32, now: u32, started: u32) {
    if exptime == 0 {
        out.extend_from_slice(b"-1");
    } else if exptime == 1 {
        let current_rel = now.wrapping_sub(started).wrapping_add(62);
        push_u64(out, 1u32.wrapping_sub(current_rel) as u64);
    } else {
        push_u64(out, exptime.wrapping_sub(now) as u64);
    }
}

fn meta_set(
    node: &mut Node,
    conn: &mut ConnState,
    t: &Tokens,
    buf: &[u8],
    line_end: usize,
    out: &mut Vec<u8>,
) -> Outcome {
    let ntokens = t.ntokens();
    if ntokens < 3 {
        out_str(out, false, b"ERROR");
        return Outcome::Consumed(line_end);
    }
    if t.get(1).len() > KEY_MAX_LENGTH || ntokens == 3 {
        out_str(out, false, b"CLIENT_ERROR bad command line format");
        return Outcome::Consumed(line_end);
    }
    if ntokens > MFLAG_MAX_OPT_LENGTH {
        out_str(out, false, b"CLIENT_ERROR options flags too long");
        return Outcome::Consumed(line_end);
    }
    let vlen = match safe_strtol(t.get(2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => {
            out_str(out, false, b"CLIENT_ERROR bad command line format");
            return Outcome::Consumed(line_end);
        }
    };
    let mut of = MetaFlags::default();
    let pre = meta_preparse(node, t, 3, &mut of);
    let fail = |out: &mut Vec<u8>, conn: &mut ConnState, e: &[u8]| {
        out_str(out, false, e);
        conn.swallow = vlen + 2;
        Outcome::Consumed(line_end)
    };
    let key = match pre {
        Ok(k) => k,
        Err(e) => return fail(out, conn, e.as_bytes()),
    };
    if t.toks[3..t.n]
        .iter()
        .any(|tok| tok[0] == b'O' && tok.len() > MFLAG_MAX_OPAQUE_LENGTH)
    {
        return fail(out, conn, b"CLIENT_ERROR opaque token too long");
    }
    let mut comm = match of.mode {
        0 | b'S' => Comm::Set,
        b'E' => Comm::Add,
        b'A' => Comm::Append,
        b'P' => Comm::Prepend,
        b'R' => Comm::Replace,
        _ => return fail(out, conn, b"CLIENT_ERROR invalid mode for ms M token"),
    };
    if of.has_cas && (comm == Comm::Set || comm == Comm::Replace) {
        comm = Comm::Cas;
    }
    let max = node.store.settings.max_item_size.load(Ordering::Relaxed);
    let too_large = crate::store::ntotal(key.len(), of.client_flags, vlen) > max;
    if !too_large && buf.len() < line_end + vlen + 2 {
        return Outcome::NeedMore;
    }
    let alloc = if too_large {
        Err(AllocError::TooLarge)
    } else {
        node.store.alloc(key.len(), of.client_flags, vlen)
    };
    if let Err(e) = alloc {
        match e {
            AllocError::TooLarge => node.store.stats.store_too_large += 1,
            AllocError::NoMemory => node.store.stats.store_no_memory += 1,
        }
        if let Some(idx) = node.store.lookup(&key, false) {
            node.store.unlink(idx);
        }
        return fail(out, conn, e.to_string().as_bytes());
    }
    let consumed = line_end + vlen + 2;
    let data = &buf[line_end..consumed];
    node.store.stats.cmd_set += 1;
    if &data[vlen..] != b"\r\n" {
        out_str(out, false, b"CLIENT_ERROR bad data chunk");
        return Outcome::Consumed(consumed);
    }
    let req_cas = if of.has_cas { of.req_cas } else { 0 };
    let stale_ok = of.set_stale && comm == Comm::Cas;
    let r = node.store.store(
        comm,
        &key,
        of.client_flags,
        of.exptime,
        &data[..vlen],
        req_cas,
        stale_ok,
        of.key_binary,
    );
    let mut cas = 0;
    let code: &[u8] = match r {
        StoreResult::Stored(c) => {
            cas = c;
            if let Some(e) = of.explicit_cas {
                if let Some(idx) = node.store.lookup(&key, false) {
                    node.store.item_mut(idx).cas = e;
                    cas = e;
                }
            }
            if of.no_reply {
                return Outcome::Consumed(consumed);
            }
            b"HD"
        }
        StoreResult::Exists => b"EX",
        StoreResult::NotFound => b"NF",
        StoreResult::NotStored => b"NS",
    };
    out.extend_from_slice(code);
    let stored_binary = of.key_binary;
    for i in 3..t.n {
        let tok = t.toks[i];
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => meta_key(out, &key, stored_binary),
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, cas);
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    Outcome::Consumed(consumed)
}

fn meta_delete(node: &mut Node, t: &Tokens, out: &mut Vec<u8>) {
    let ntokens = t.ntokens();
    if ntokens < 3 {
        out_str(out, false, b"ERROR");
        return;
    }
    if t.get(1).len() > KEY_MAX_LENGTH {
        out_str(out, false, b"CLIENT_ERROR bad command line format");
        return;
    }
    if ntokens > MFLAG_MAX_OPT_LENGTH {
        out_str(out, false, b"CLIENT_ERROR options flags too long");
        return;
    }
    let mut of = MetaFlags::default();
    let Ok(key) = meta_preparse(node, t, 2, &mut of) else {
        out_str(out, false, b"CLIENT_ERROR invalid or duplicate flag");
        return;
    };
    let mut flags_out = Vec::new();
    for i in 2..t.n {
        let tok = t.toks[i];
        match tok[0] {
            b'O' => {
                if tok.len() > MFLAG_MAX_OPAQUE_LENGTH {
                    out_str(out, false, b"CLIENT_ERROR opaque token too long");
                    return;
                }
                flags_out.push(b' ');
                flags_out.extend_from_slice(tok);
            }
            b'k' => meta_key(&mut flags_out, &key, of.key_binary),
            _ => {}
        }
    }
    let st = &mut node.store;
    let code: &[u8] = match st.lookup(&key, false) {
        Some(idx) => {
            if of.has_cas && st.item(idx).cas != of.req_cas {
                st.stats.delete_misses += 1;
                b"EX"
            } else if of.set_stale {
                let cas = match of.explicit_cas {
                    Some(c) => c,
                    None => st.next_cas(),
                };
                let it = st.item_mut(idx);
                if of.new_ttl {
                    it.exptime = of.exptime;
                }
                it.iflags |= F_STALE;
                it.iflags &= !F_TOKEN_SENT;
                it.cas = cas;
                if of.no_reply {
                    return;
                }
                b"HD"
            } else {
                st.stats.delete_hits += 1;
                st.unlink(idx);
                if of.no_reply {
                    return;
                }
                b"HD"
            }
        }
        None => {
            st.stats.delete_misses += 1;
            b"NF"
        }
    };
    out.extend_from_slice(code);
    out.extend_from_slice(&flags_out);
    out.extend_from_slice(b"\r\n");
}

fn meta_arith(node: &mut Node, t: &Tokens, out: &mut Vec<u8>) {
    let ntokens = t.ntokens();
    if ntokens < 3 {
        out_str(out, false, b"ERROR");
        return;
    }
    if t.get(1).len() > KEY_MAX_LENGTH {
        out_str(out, false, b"CLIENT_ERROR bad command line format");
        return;
    }
    if ntokens > MFLAG_MAX_OPT_LENGTH {
        out_str(out, false, b"CLIENT_ERROR options flags too long");
        return;
    }
    let mut of = MetaFlags {
        delta: 1,
        ..Default::default()
    };
    let Ok(key) = meta_preparse(node, t, 2, &mut of) else {
        out_str(out, false, b"CLIENT_ERROR invalid or duplicate flag");
        return;
    };
    let incr = match of.mode {
        0 | b'I' | b'+' => true,
        b'D' | b'-' => false,
        _ => {
            out_str(out, false, b"CLIENT_ERROR invalid mode for ma M token");
            return;
        }
    };
    let st = &mut node.store;
    let mut item = None;
    let mut created = false;
    let mut value = 0u64;
    let mut head: Vec<u8> = Vec::new();
    let mut skip = false;
    let req_cas = if of.has_cas { of.req_cas } else { 0 };
    match st.add_delta(&key, incr, of.delta, req_cas, &mut item) {
        Delta::Ok(v) => {
            value = v;
            if of.no_reply {
                skip = true;
            }
        }
        Delta::NonNumeric => {
            out_str(
                out,
                false,
                b"CLIENT_ERROR cannot increment or decrement non-numeric value",
            );
            return;
        }
        Delta::NotFound => {
            if of.vivify {
                let mut buf = Vec::new();
                push_u64(&mut buf, of.initial);
                if st.alloc(key.len(), 0, buf.len()).is_err() {
                    out_str(
                        out,
                        false,
                        b"SERVER_ERROR Out of memory allocating new item",
                    );
                    return;
                }
                // memcached's vivified item carries no binary-key mark
                item = Some(st.link(&key, &[&buf], 0, 0, 0, None));
                value = of.initial;
                created = true;
            } else {
                if incr {
                    st.stats.incr_misses += 1;
                } else {
                    st.stats.decr_misses += 1;
                }
                head.extend_from_slice(b"NF");
            }
        }
        Delta::CasMismatch => head.extend_from_slice(b"EX"),
    }
    let now = st.now;
    let started = st.started;
    if let Some(idx) = item {
        if let Some(c) = of.explicit_cas {
            st.item_mut(idx).cas = c;
        }
        // When the value could not be updated in place, memcached hands the loop below the old,
        // unlinked item: T then changes only that copy (and what `t` prints), not the stored
        // item.
        let in_place = created || st.last_delta_in_place;
        let mut shadow_exptime = st.item(idx).exptime;
        let mut vbuf = Vec::new();
        push_u64(&mut vbuf, value);
        if of.value {
            head.extend_from_slice(b"VA ");
            push_u64(&mut head, vbuf.len() as u64);
        } else {
            head.extend_from_slice(b"HD");
        }
        for i in 2..t.n {
            let tok = t.toks[i];
            match tok[0] {
                b'c' => {
                    head.extend_from_slice(b" c");
                    push_u64(&mut head, st.item(idx).cas);
                }
                b't' => {
                    head.extend_from_slice(b" t");
                    let e = if in_place {
                        st.item(idx).exptime
                    } else {
                        shadow_exptime
                    };
                    push_ttl(&mut head, e, now, started);
                }
                b'T' => {
                    if in_place {
                        st.item_mut(idx).exptime = of.exptime;
                    } else {
                        shadow_exptime = of.exptime;
                    }
                }
                b'N' if created => st.item_mut(idx).exptime = of.autoviv_exptime,
                b'O' => {
                    if tok.len() > MFLAG_MAX_OPAQUE_LENGTH {
                        out_str(out, false, b"CLIENT_ERROR opaque token too long");
                        return;
                    }
                    head.push(b' ');
                    head.extend_from_slice(tok);
                }
                b'k' => meta_key(&mut head, &key, of.key_binary),
                _ => {}
            }
        }
        if of.value {
            head.extend_from_slice(b"\r\n");
            head.extend_from_slice(&vbuf);
        }
    } else {
        for i in 2..t.n {
            let tok = t.toks[i];
            match tok[0] {
                b'O' => {
                    if tok.len() > MFLAG_MAX_OPAQUE_LENGTH {
                        out_str(out, false, b"CLIENT_ERROR opaque token too long");
                        return;
                    }
                    head.push(b' ');
                    head.extend_from_slice(tok);
                }
                b'k' => meta_key(&mut head, &key, of.key_binary),
                _ => {}
            }
        }
    }
    if !skip {
        out.extend_from_slice(&head);
        out.extend_from_slice(b"\r\n");
    }
}

fn meta_debug(node: &mut Node, t: &Tokens, out: &mut Vec<u8>) {
    if t.ntokens() < 3 {
        out_str(out, false, b"CLIENT_ERROR bad command line format");
        return;
    }
    let mut key = t.get(1).to_vec();
    if key.len() > KEY_MAX_LENGTH {
        out_str(out, false, b"CLIENT_ERROR bad command line format");
        return;
    }
    let binary = t.n > 2 && t.toks[2] == b"b";
    if binary {
        match base64_decode(&key) {
            Some(k) => key = k,
            None => {
                out_str(out, false, b"CLIENT_ERROR bad command line format");
                return;
            }
        }
    }
    let st = &mut node.store;
    match st.lookup(&key, false) {
        Some(idx) => {
            let now = st.now;
            let it = st.item(idx);
            out.extend_from_slice(b"ME ");
            if binary {
                base64_encode(&key, out);
            } else {
                out.extend_from_slice(&key);
            }
            out.extend_from_slice(b" exp=");
            if it.exptime == 0 {
                out.extend_from_slice(b"-1");
            } else {
                push_i64(out, now as i64 - it.exptime as i64);
            }
            out.extend_from_slice(b" la=");
            push_u64(out, now.saturating_sub(it.time) as u64);
            out.extend_from_slice(b" cas=");
            push_u64(out, it.cas);
            out.extend_from_slice(if it.iflags & F_FETCHED != 0 {
                b" fetch=yes"
            } else {
                b" fetch=no"
            });
            out.extend_from_slice(b" cls=");
            let total = it.ntotal();
            push_u64(out, slab_class(total).0 as u64);
            out.extend_from_slice(b" size=");
            push_u64(out, total);
            out.extend_from_slice(b"\r\n");
        }
        None => out_str(out, false, b"EN"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_like_memcached() {
        let t = tokenize(b"get a  b ");
        assert_eq!(t.n, 3);
        assert_eq!(t.toks[2], b"b");
        assert!(t.rest.is_none());
        let line: Vec<u8> = (0..30).flat_map(|_| b"k ".iter().copied()).collect();
        let t = tokenize(&line);
        assert_eq!(t.n, 23);
        assert!(t.rest.is_some());
        let t = tokenize(b"");
        assert_eq!(t.n, 0);
    }
}
