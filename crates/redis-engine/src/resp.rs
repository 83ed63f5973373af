//! Hand-written RESP parser (multibulk + inline) and RESP2/RESP3 reply encoder.

use memchr::memchr;

/// Redis's `PROTO_INLINE_MAX_SIZE`.
pub const INLINE_MAX: usize = 64 * 1024;
/// Redis's limit on the number of arguments of a multibulk request.
pub const MAX_MULTIBULK: i64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("Protocol error: invalid multibulk length")]
    MultibulkLen,
    #[error("Protocol error: invalid bulk length")]
    BulkLen,
    #[error("Protocol error: too big mbulk count string")]
    MbulkCountTooBig,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    Unbalanced,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
}

/// Arguments of one command: ranges into a base buffer (zero copy).
#[derive(Clone, Copy)]
pub struct Args<'a> {
    pub buf: &'a [u8],
    pub ranges: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    #[inline]
    pub fn len(&self) -> usize {
        self.ranges.len()
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (s, e) = self.ranges[i];
        &self.buf[s..e]
    }
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.ranges.iter().map(move |&(s, e)| &self.buf[s..e])
    }
    pub fn to_owned_cmd(&self) -> OwnedCmd {
        let mut buf = Vec::new();
        let mut ranges = Vec::with_capacity(self.len());
        for a in self.iter() {
            let s = buf.len();
            buf.extend_from_slice(a);
            ranges.push((s, buf.len()));
        }
        OwnedCmd { buf, ranges }
    }
}

/// An owned command (MULTI queue, blocked clients).
#[derive(Clone, Debug, Default)]
pub struct OwnedCmd {
    pub buf: Vec<u8>,
    pub ranges: Vec<(usize, usize)>,
}

impl OwnedCmd {
    pub fn args(&self) -> Args<'_> {
        Args {
            buf: &self.buf,
            ranges: &self.ranges,
        }
    }
    pub fn from_parts(parts: &[&[u8]]) -> Self {
        let mut c = OwnedCmd::default();
        for p in parts {
            let s = c.buf.len();
            c.buf.extend_from_slice(p);
            c.ranges.push((s, c.buf.len()));
        }
        c
    }
}

/// Result of parsing one command.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// `consumed` bytes; `inline` tells whether ranges point into the scratch buffer.
    Command {
        consumed: usize,
        inline: bool,
    },
    Incomplete,
}

#[inline]
fn parse_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

/// Parse one command from `buf`. Multibulk argument ranges are relative to `buf`;
/// inline arguments are copied (unescaped) into `scratch` and ranges refer to it.
pub fn parse_command(
    buf: &[u8],
    max_bulk: usize,
    ranges: &mut Vec<(usize, usize)>,
    scratch: &mut Vec<u8>,
) -> Result<Parsed, ProtoError> {
    ranges.clear();
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    if buf[0] != b'*' {
        return parse_inline(buf, ranges, scratch);
    }
    let Some(nl) = memchr(b'\r', buf) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtoError::MbulkCountTooBig);
        }
        return Ok(Parsed::Incomplete);
    };
    if nl > INLINE_MAX {
        return Err(ProtoError::MbulkCountTooBig);
    }
    if nl + 1 >= buf.len() {
        return Ok(Parsed::Incomplete);
    }
    let n = parse_int(&buf[1..nl]).ok_or(ProtoError::MultibulkLen)?;
    if n > MAX_MULTIBULK {
        return Err(ProtoError::MultibulkLen);
    }
    let mut pos = nl + 2;
    if n <= 0 {
        return Ok(Parsed::Command {
            consumed: pos,
            inline: false,
        });
    }
    ranges.reserve(n as usize);
    for _ in 0..n {
        if pos >= buf.len() {
            return Ok(Parsed::Incomplete);
        }
        if buf[pos] != b'$' {
            return Err(ProtoError::ExpectedDollar(buf[pos] as char));
        }
        let Some(rel) = memchr(b'\r', &buf[pos..]) else {
            if buf.len() - pos > INLINE_MAX {
                return Err(ProtoError::BulkCountTooBig);
            }
            return Ok(Parsed::Incomplete);
        };
        if rel > INLINE_MAX {
            return Err(ProtoError::BulkCountTooBig);
        }
        let len = parse_int(&buf[pos + 1..pos + rel]).ok_or(ProtoError::BulkLen)?;
        if len < 0 || len as u64 > max_bulk as u64 {
            return Err(ProtoError::BulkLen);
        }
        let start = pos + rel + 2;
        let end = start + len as usize;
        if end + 2 > buf.len() {
            return Ok(Parsed::Incomplete);
        }
        ranges.push((start, end));
        pos = end + 2;
    }
    Ok(Parsed::Command {
        consumed: pos,
        inline: false,
    })
}

fn parse_inline(
    buf: &[u8],
    ranges: &mut Vec<(usize, usize)>,
    scratch: &mut Vec<u8>,
) -> Result<Parsed, ProtoError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtoError::InlineTooBig);
        }
        return Ok(Parsed::Incomplete);
    };
    if nl > INLINE_MAX {
        return Err(ProtoError::InlineTooBig);
    }
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    scratch.clear();
    split_args(line, ranges, scratch)?;
    Ok(Parsed::Command {
        consumed: nl + 1,
        inline: true,
    })
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// sdssplitargs-compatible splitting.
fn split_args(
    line: &[u8],
    ranges: &mut Vec<(usize, usize)>,
    out: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n || line[i] == 0 {
            return Ok(());
        }
        let start = out.len();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return Err(ProtoError::Unbalanced);
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    out.push(
                        hex_val(line[i + 2]).unwrap_or(0) * 16 + hex_val(line[i + 3]).unwrap_or(0),
                    );
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    out.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        o => o,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return Err(ProtoError::Unbalanced);
                    }
                    inq = false;
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else if insq {
                if i >= n {
                    return Err(ProtoError::Unbalanced);
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return Err(ProtoError::Unbalanced);
                    }
                    insq = false;
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    0 => {
                        // Like sdssplitargs: a NUL ends the request line.
                        ranges.push((start, out.len()));
                        return Ok(());
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => out.push(c),
                }
            }
            i += 1;
        }
        let _ = (inq, insq);
        ranges.push((start, out.len()));
    }
}

// ---------------------------------------------------------------------------
// Encoder

/// Decimal digits of an unsigned integer, without the `fmt` machinery.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut u: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[inline]
pub fn push_int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// Writer for replies in the protocol version of the client.
pub struct Reply<'a> {
    pub out: &'a mut Vec<u8>,
    pub resp3: bool,
}

impl Reply<'_> {
    #[inline]
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }
    #[inline]
    pub fn simple(&mut self, s: &str) {
        self.out.push(b'+');
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }
    /// Full error line without the leading '-', e.g. "ERR syntax error".
    pub fn error(&mut self, s: &str) {
        self.out.push(b'-');
        for &c in s.as_bytes() {
            // Redis replaces newlines in error strings with spaces.
            self.out
                .push(if c == b'\r' || c == b'\n' { b' ' } else { c });
        }
        self.out.extend_from_slice(b"\r\n");
    }
    #[inline]
    pub fn int(&mut self, v: i64) {
        self.out.push(b':');
        push_int(self.out, v);
        self.out.extend_from_slice(b"\r\n");
    }
    #[inline]
    pub fn bulk(&mut self, b: &[u8]) {
        self.out.push(b'$');
        push_int(self.out, b.len() as i64);
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(b);
        self.out.extend_from_slice(b"\r\n");
    }
    pub fn bulk_int(&mut self, v: i64) {
        let mut tmp = Vec::with_capacity(20);
        push_int(&mut tmp, v);
        self.bulk(&tmp);
    }
    #[inline]
    pub fn null(&mut self) {
        if self.resp3 {
            self.out.extend_from_slice(b"_\r\n");
        } else {
            self.out.extend_from_slice(b"$-1\r\n");
        }
    }
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.out.extend_from_slice(b"_\r\n");
        } else {
            self.out.extend_from_slice(b"*-1\r\n");
        }
    }
    #[inline]
    pub fn array(&mut self, n: usize) {
        self.out.push(b'*');
        push_int(self.out, n as i64);
        self.out.extend_from_slice(b"\r\n");
    }
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.out.push(b'%');
            push_int(self.out, n as i64);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.array(n * 2);
        }
    }
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            self.out.push(b'~');
            push_int(self.out, n as i64);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.array(n);
        }
    }
    pub fn push(&mut self, n: usize) {
        if self.resp3 {
            self.out.push(b'>');
            push_int(self.out, n as i64);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.array(n);
        }
    }
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.out
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }
    /// A double as Redis 7.0 replies it (bulk "%.17g" in RESP2, ',' in RESP3).
    /// A HELP reply: one simple string per line.
    pub fn lines(&mut self, lines: &[&str]) {
        self.array(lines.len());
        for l in lines {
            self.simple(l);
        }
    }
    pub fn double(&mut self, d: f64) {
        let s = fmt_double(d);
        if self.resp3 {
            self.out.push(b',');
            self.out.extend_from_slice(s.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }
    /// Verbatim string (RESP3 '=' with "txt:"), bulk in RESP2.
    pub fn verbatim(&mut self, s: &[u8]) {
        if self.resp3 {
            self.out.push(b'=');
            push_int(self.out, s.len() as i64 + 4);
            self.out.extend_from_slice(b"\r\ntxt:");
            self.out.extend_from_slice(s);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }
}

/// printf("%.17g") as Redis 7.0 uses for doubles (integral values print as integers).
pub fn fmt_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    fmt_g(d, 17)
}

/// C's `%.{prec}g`.
pub fn fmt_g(d: f64, prec: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:.*e}", prec - 1, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mut m = mant.to_string();
        if m.contains('.') {
            while m.ends_with('0') {
                m.pop();
            }
            if m.ends_with('.') {
                m.pop();
            }
        }
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", m, sign, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        let mut s = format!("{:.*}", decimals, d);
        if s.contains('.') {
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.pop();
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtoError> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut ranges = Vec::new();
        let mut scratch = Vec::new();
        loop {
            match parse_command(&input[pos..], 512 << 20, &mut ranges, &mut scratch)? {
                Parsed::Incomplete => return Ok(out),
                Parsed::Command { consumed, inline } => {
                    let base: &[u8] = if inline { &scratch } else { &input[pos..] };
                    out.push(ranges.iter().map(|&(s, e)| base[s..e].to_vec()).collect());
                    pos += consumed;
                }
            }
        }
    }

    fn encode(args: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            v.extend_from_slice(a);
            v.extend_from_slice(b"\r\n");
        }
        v
    }

    #[test]
    fn multibulk() {
        let r = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(
            r,
            vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec()]]
        );
    }

    #[test]
    fn inline_quotes() {
        let r = parse_all(b"SET k \"a b\\x41\" 'c\\'d'\r\n").unwrap();
        assert_eq!(
            r,
            vec![vec![
                b"SET".to_vec(),
                b"k".to_vec(),
                b"a bA".to_vec(),
                b"c'd".to_vec()
            ]]
        );
        assert_eq!(parse_all(b"SET \"a\r\n"), Err(ProtoError::Unbalanced));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_all(b"*1\r\n$2147483648\r\n"),
            Err(ProtoError::BulkLen)
        );
        assert_eq!(
            parse_all(b"*1\r\n+OK\r\n"),
            Err(ProtoError::ExpectedDollar('+'))
        );
        assert_eq!(parse_all(b"*x\r\n"), Err(ProtoError::MultibulkLen));
        assert_eq!(parse_all(b"*99999999\r\n"), Err(ProtoError::MultibulkLen));
        let big = vec![b'a'; INLINE_MAX + 10];
        assert_eq!(parse_all(&big), Err(ProtoError::InlineTooBig));
    }

    #[test]
    fn incomplete() {
        let full = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
        for i in 0..full.len() {
            assert_eq!(parse_all(&full[..i]).unwrap().len(), 0, "prefix {i}");
        }
        assert_eq!(parse_all(full).unwrap().len(), 1);
    }

    #[test]
    fn doubles() {
        assert_eq!(fmt_double(1.1), "1.1000000000000001");
        assert_eq!(fmt_double(3.0), "3");
        assert_eq!(fmt_double(-2.5), "-2.5");
        assert_eq!(fmt_double(1e20), "1e+20");
        assert_eq!(fmt_double(0.0001), "0.0001");
        assert_eq!(fmt_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(fmt_double(f64::INFINITY), "inf");
    }

    #[test]
    fn encoder() {
        let mut v = Vec::new();
        let mut r = Reply {
            out: &mut v,
            resp3: false,
        };
        r.int(-42);
        r.bulk(b"hi");
        r.null();
        r.map(1);
        assert_eq!(v, b":-42\r\n$2\r\nhi\r\n$-1\r\n*2\r\n");
        let mut v = Vec::new();
        let mut r = Reply {
            out: &mut v,
            resp3: true,
        };
        r.null();
        r.map(1);
        r.double(1.5);
        r.boolean(true);
        assert_eq!(v, b"_\r\n%1\r\n,1.5\r\n#t\r\n");
    }

    proptest! {
        #[test]
        fn roundtrip(cmds in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6), 1..8), split in 0usize..2000) {
            let mut wire = Vec::new();
            for c in &cmds { wire.extend(encode(c)); }
            prop_assert_eq!(parse_all(&wire).unwrap(), cmds.clone());
            // Any prefix parses to a prefix of the commands, never an error.
            let cut = split % (wire.len() + 1);
            let part = parse_all(&wire[..cut]).unwrap();
            prop_assert!(part.len() <= cmds.len());
            prop_assert_eq!(&cmds[..part.len()], &part[..]);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_all(&data);
        }
    }
}
