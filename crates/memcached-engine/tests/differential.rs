//! Differential tests: the same request sequences go to a real memcached (1.6.18 from Debian)
//! and to our node (reporting version 1.6.18); replies must be byte-identical.
//!
//! Normalised: only the values of `STAT` lines (names and order must match). CAS unique values
//! are compared as-is: each test uses a fresh memcached and a fresh node, and our CAS counter
//! advances exactly like memcached's.
//!
//! Skips (with a message) when memcached is not installed, panics instead when `CI` is set.

mod common;

use common::*;

fn norm_text(r: &[u8]) -> Vec<u8> {
    // Replace "STAT <name> <value>" by "STAT <name>".
    let mut out = Vec::with_capacity(r.len());
    for line in r.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"STAT ") {
            let body = &line[5..];
            let name_end = body.iter().position(|&b| b == b' ').unwrap_or(body.len());
            out.extend_from_slice(b"STAT ");
            out.extend_from_slice(&body[..name_end]);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b).to_string();
    if s.len() > 3000 {
        format!("{}...(len {})", &s[..3000], s.len())
    } else {
        s
    }
}

struct Pair {
    _real: RealMemcached,
    real_addr: std::net::SocketAddr,
    ours: memcached_engine::NodeHandle,
}

fn pair() -> Option<Pair> {
    let bin = require("memcached")?;
    let real = start_memcached(&bin, &["-t", "1"]);
    let real_addr = real.addr();
    Some(Pair {
        _real: real,
        real_addr,
        ours: node_1_6_18(),
    })
}

impl Pair {
    fn reset(&self) {
        text_exchange(self.real_addr, b"flush_all\r\n");
        text_exchange(self.ours.local_addr(), b"flush_all\r\n");
    }
    fn text(&self, case: &[u8]) {
        self.reset();
        let a = norm_text(&text_exchange(self.real_addr, case));
        let b = norm_text(&text_exchange(self.ours.local_addr(), case));
        assert_eq!(
            show(&a),
            show(&b),
            "text case differs: {:?}",
            show(&case[..case.len().min(300)])
        );
    }
    fn binary(&self, case: &[u8]) {
        self.reset();
        let a = norm_bin_stats(bin_exchange(self.real_addr, case));
        let b = norm_bin_stats(bin_exchange(self.ours.local_addr(), case));
        if a != b {
            if let Ok(dir) = std::env::var("DIFF_DUMP") {
                let _ = std::fs::write(format!("{dir}/diffcase.bin"), case);
                let _ = std::fs::write(format!("{dir}/diff-a.bin"), a.concat());
                let _ = std::fs::write(format!("{dir}/diff-b.bin"), b.concat());
            }
        }
        assert_eq!(
            a,
            b,
            "binary case differs: {:?}",
            &case[..case.len().min(200)]
        );
    }
}

fn hand_written_text() -> Vec<Vec<u8>> {
    let k251 = "k".repeat(251);
    let mut v: Vec<Vec<u8>> = vec![
        b"\r\n".to_vec(),
        b"\n".to_vec(),
        b"x\r\n".to_vec(),
        b"ge\r\n".to_vec(),
        b"get\r\n".to_vec(),
        b"get a\r\n".to_vec(),
        b"GET a\r\nSet a 0 0 1\r\n".to_vec(),
        b"set a 0 0 1\r\nx\r\nget a b a\r\n".to_vec(),
        b"set a 4294967296 0 1\r\nx\r\nget a\r\n".to_vec(),
        b"set a 4294967295 0 1\r\nx\r\ngets a\r\n".to_vec(),
        b"set a -1 0 1\r\nx\r\nget a\r\n".to_vec(),
        b"set a 0 0 -1\r\nx\r\n".to_vec(),
        b"set a 0 0 4294967297\r\nx\r\nget a\r\n".to_vec(),
        b"set a 0 3000000000 1\r\nx\r\nget a\r\n".to_vec(),
        b"set a 0 99999999999999999999 1\r\nx\r\n".to_vec(),
        b"set a 0 0 2\r\nxyz\r\nget a\r\n".to_vec(),
        b"set a 0 0 2 noreply\r\nxyz\r\nget a\r\n".to_vec(),
        b"set a 0 0 1 foo\r\nx\r\n".to_vec(),
        b"set a 0 0 1 foo bar\r\nx\r\n".to_vec(),
        b"set a 0 0\r\nx\r\n".to_vec(),
        format!("set {k251} 0 0 1\r\nx\r\n").into_bytes(),
        format!("get {k251}\r\n").into_bytes(),
        format!("get a {k251}\r\n").into_bytes(),
        b"set a\tb 0 0 1\r\nx\r\nget a\tb\r\n".to_vec(),
        b"get a\x00b\r\n".to_vec(),
        b"set a 0 -1 1\r\nx\r\nget a\r\nset b 0 abc 1\r\nx\r\n".to_vec(),
        b"set a 0 0 2\r\n10\r\ndecr a 1\r\nget a\r\nincr a 18446744073709551615\r\nincr a 2\r\ndecr a 100\r\n".to_vec(),
        b"set a 0 0 2\r\nab\r\nincr a 1\r\nincr a x\r\nincr a -1\r\nincr b 1\r\nincr a\r\n".to_vec(),
        b"set a 0 0 3\r\n 12\r\nincr a 1\r\nset b 0 0 3\r\n1 2\r\nincr b 1\r\n".to_vec(),
        b"incr a 1\r\nset a 0 0 20\r\n18446744073709551615\r\nincr a 1\r\nget a\r\nset b 0 0 21\r\n118446744073709551615\r\nincr b 1\r\n".to_vec(),
        b"set a 0 0 0\r\n\r\nincr a 1\r\nget a\r\n".to_vec(),
        b"set a 0 0 1\r\n1\r\nincr a 99999\r\nget a\r\ngets a\r\n".to_vec(),
        // an item referenced by an unsent mg reply is not updated in place by decr
        b"set a 0 0 2\r\n10\r\nget a\r\ndecr a 1\r\nget a\r\n".to_vec(),
        b"set a 0 0 2\r\n10\r\nmg a v\r\ndecr a 1\r\nget a\r\n".to_vec(),
        b"set a 0 0 2\r\n10\r\nmg a\r\ndecr a 1\r\nget a\r\n".to_vec(),
        b"set a 0 0 2\r\n10\r\nmg a\r\nma a MD v\r\nget a\r\n".to_vec(),
        b"set a 0 0 2\r\n10\r\nmg a v\r\nget zz\r\ndecr a 1\r\nget a\r\n".to_vec(),
        b"set a 0 0 2\r\n10\r\nmg a v\r\nmg zz v\r\nversion\r\ndecr a 1\r\nget a\r\n".to_vec(),
        b"set a 0 0 2\r\n10\r\nmg a v\r\nmn\r\ndecr a 1\r\nget a\r\n".to_vec(),
        b"delete a 0\r\ndelete a noreply\r\ndelete a 1\r\ndelete a 0 noreply\r\ndelete a x y\r\n".to_vec(),
        b"touch a 10\r\ntouch a x\r\nset a 0 0 1\r\nx\r\ntouch a 10\r\ngat 10 a b\r\ngats x a\r\ngat\r\ngat 10\r\n".to_vec(),
        b"set a 0 0 1\r\nx\r\ntouch a -1\r\nget a\r\nset a 0 0 1\r\nx\r\ngat -1 a\r\nget a\r\n".to_vec(),
        b"flush_all\r\nflush_all 0\r\nflush_all noreply\r\nflush_all x\r\nflush_all 1 2\r\nflush_all -1\r\n".to_vec(),
        b"version\r\nversion x\r\nverbosity\r\nverbosity 1\r\nverbosity x\r\nverbosity 1 noreply\r\nverbosity 1 2 3\r\nverbosity 5\r\n".to_vec(),
        b"stats reset\r\nstats detail\r\nstats sizes\r\nstats foo\r\nstats detail dump\r\n".to_vec(),
        b"cas a 0 0 1 1\r\nx\r\nset a 0 0 1\r\nx\r\ngets a\r\ncas a 0 0 1 999\r\ny\r\ncas a 0 0 1 x\r\ny\r\n".to_vec(),
        b"set a 0 0 1\r\nx\r\ngets a\r\ncas a 0 0 1 2\r\ny\r\ngets a\r\ncas a 0 0 1 3 noreply\r\nz\r\ngets a\r\n".to_vec(),
        b"append a 0 0 1\r\nx\r\nset a 5 0 1\r\nx\r\nappend a 9 0 1\r\ny\r\nprepend a 0 0 1\r\nz\r\ngets a\r\n".to_vec(),
        b"add a 0 0 1\r\nx\r\nadd a 0 0 1\r\nx\r\nreplace b 0 0 1\r\nx\r\nreplace a 0 0 1\r\ny\r\nget a\r\n".to_vec(),
        b"set a 0 0 1 noreply\r\nx\r\nadd a 0 0 1 noreply\r\nx\r\nincr a 1 noreply\r\nget a\r\ntouch a 1 noreply\r\ndelete a noreply\r\nget a\r\n".to_vec(),
        b"incr a 1 2\r\ntouch a\r\ncas a 0 0 1\r\n".to_vec(),
        b"get a  b\r\n  get a\r\nget a \r\n".to_vec(),
        b"shutdown\r\ncache_memlimit\r\nmisbehave\r\n".to_vec(),
        b"quit\r\nget a\r\n".to_vec(),
        b"version\r\nquit\r\n".to_vec(),
        // an over-long line closes the connection; replies not yet written are dropped
        [b"version\r\n".to_vec(), vec![b'x'; 3000]].concat(),
        [b"mn\r\nversion\r\n".to_vec(), vec![b'x'; 3000]].concat(),
        b"set a 0 0 1\r\nx\r\nstats\r\n".to_vec(),
        b"stats settings\r\n".to_vec(),
        // (memcached dumps only its COLD LRU segment, so a fresh item is not listed there; ours
        // lists every item of the class: only the empty and error forms are compared)
        b"stats cachedump 2 0\r\nstats cachedump x\r\n".to_vec(),
        b"set a 0 0 1\r\nx\r\nstats items\r\n".to_vec(),
        // many keys: more than the 24-token tokenizer window
        {
            let mut s = b"set a 0 0 1\r\nx\r\nget".to_vec();
            for i in 0..60 {
                s.extend_from_slice(if i % 3 == 0 { b" a" } else { b" zz" });
            }
            s.extend_from_slice(b"\r\n");
            s
        },
        {
            let mut s = b"set".to_vec();
            for _ in 0..40 {
                s.extend_from_slice(b" a");
            }
            s.extend_from_slice(b"\r\n");
            s
        },
        // item size limit boundary (1 MiB): ntotal = 48 + nkey + 1 + vlen + 2 + 8 (+4 with flags)
        {
            let mut s = b"set a 0 0 1048515\r\n".to_vec();
            s.extend(std::iter::repeat_n(b'v', 1048515));
            s.extend_from_slice(b"\r\nset b 0 0 1048516\r\n");
            s.extend(std::iter::repeat_n(b'v', 1048516));
            s.extend_from_slice(b"\r\nset c 1 0 1048512\r\n");
            s.extend(std::iter::repeat_n(b'v', 1048512));
            s.extend_from_slice(b"\r\nmg a s\r\nmg b s\r\nmg c s\r\n");
            s
        },
        {
            let mut s = b"set a 0 0 1\r\nx\r\nset a 0 0 2000000\r\n".to_vec();
            s.extend(std::iter::repeat_n(b'x', 2000000));
            s.extend_from_slice(b"\r\nget a\r\n");
            s
        },
        // meta
        b"mn\r\nmg\r\nmg a\r\nms a 1\r\nx\r\nmg a\r\nmg a v\r\nmg a s v f c k\r\nmg b k O123 q\r\nmg b k O123\r\nmn\r\n".to_vec(),
        b"ms a 2 T0 F5 c k O1\r\nhi\r\nmg a v f\r\nms a 2 q\r\nhi\r\nms a 2 MX\r\nhi\r\nms a 2 ME\r\nhi\r\nms a 2 ZZ\r\nhi\r\n".to_vec(),
        b"ms a 2 C1\r\nhi\r\nms b 2 C1\r\nhi\r\nms b 2 MR\r\nhi\r\nms a 2 MA\r\nhi\r\nmg a v\r\nms a 2 MP q\r\nhi\r\nmg a v\r\n".to_vec(),
        b"md a\r\nms a 2\r\nhi\r\nmd a q\r\nmd a q\r\nmd a k O5\r\n".to_vec(),
        b"ma a\r\nma a q\r\nma a N0 J5\r\nma a v\r\nma a MD D100 v\r\nma a O9 k c v q\r\nms b 1\r\nx\r\nma b\r\n".to_vec(),
        b"mg a N30 s c v\r\nmg a N30 s c v\r\nmg a v\r\nms a 1 T30\r\nx\r\nmg a v c\r\n".to_vec(),
        b"ms a 1 T100\r\nx\r\nmg a R30 v c\r\nmg a R200 v c\r\nmg a R200 v c\r\nmd a I\r\nmg a v c\r\nmg a v c\r\n".to_vec(),
        b"ms YWJj 1 b k\r\nx\r\nmg YWJj b k v\r\nmg abc k v\r\nmg !!!! b\r\n".to_vec(),
        b"ms a 1 E5\r\nx\r\nmg a c\r\nmd a x\r\nmg a v f\r\nme a\r\nme zz\r\n".to_vec(),
        b"mg a v v\r\nmg a $\r\nms a x\r\nx\r\nms a\r\nms a -1\r\nmd\r\nmgx a\r\n".to_vec(),
        b"set a 0 0 1\r\nx\r\nmg a h t\r\nmg a h\r\nmg a u h\r\n".to_vec(),
        b"ma a $\r\nma a MX\r\nma a Dx\r\nma a Jx N0\r\nma\r\nms a 1 Tx\r\nx\r\nmg a Nx\r\nmg a Ox\r\n".to_vec(),
        format!("mg {k251} v\r\nms {k251} 1\r\nx\r\nmd {k251}\r\n").into_bytes(),
        b"set a 5 100 3\r\nabc\r\nme a\r\n".to_vec(),
        b"ms a 2 T0\r\nxyz\r\nmn\r\n".to_vec(),
        b"ms a 2 T0 q\r\nxyz\r\nmn\r\n".to_vec(),
        b"ms a 2 I\r\nxy\r\nmg a c v\r\nms a 2 C1 I\r\nzz\r\nmg a c v\r\n".to_vec(),
        format!("set a 0 0 1\r\nx\r\nmg a k O{}\r\nmg a O{}\r\nmg a O{}\r\n", "1".repeat(40), "1".repeat(32), "1".repeat(31)).into_bytes(),
        b"mg a k v s f O c q h\r\nmg a s c f h k O1 P L u\r\n".to_vec(),
        b"set a 0 0 1\r\nx\r\nmd a C1\r\nmd a C1 q\r\nmd a I T30\r\nmg a c\r\nms a 1 C1\r\ny\r\n".to_vec(),
        b"ma a N0 J18446744073709551615\r\nma a v\r\nma a c v T99 N5\r\n".to_vec(),
        b"set a 0 0 1\r\nx\r\nmg a s v q\r\nmg a q\r\nmg b q\r\n".to_vec(),
        b"mg a N0 q\r\nmg a q k v\r\n".to_vec(),
        b"ms a 1 MS\r\nx\r\nms a 1 Ms\r\ny\r\nms a 1 Ma\r\ny\r\nms a 1 MAB\r\ny\r\nmg a v\r\n".to_vec(),
        b"ms a 1 MA N0\r\nx\r\nmg a v\r\nms a S1\r\nx\r\n".to_vec(),
        b"mg a k v s f c h l u O1 P L q N1 R1 T1 I\r\n".to_vec(),
        b"mg a k v s f t c h l u O1 P L q N1 R1 T1 I b\r\n".to_vec(),
        b"md a k q O1 C1 I T1 b x y z 1 2 3 4 5 6 7 8 9\r\n".to_vec(),
        b"ms a 1 k q O1 C1 I T1 F1 MS x y z 1 2 3 4 5 6 7\r\nx\r\n".to_vec(),
        b"ma a O1 k\r\nma a N0 O1 k c\r\nma a q O2\r\nma a Mi\r\nma a M+ v\r\nma a M- v\r\nma a Md v\r\nma a C1\r\nma a C1 q\r\n".to_vec(),
        b"md a q\r\nmd a\r\nms a 1 F-1\r\nx\r\nms a 1 Fx T1\r\nx\r\nms a 1 F4294967296\r\nx\r\nmg a f v\r\n".to_vec(),
        b"ms a 1\r\nx\r\nmg a t v\r\nms a 1 T3000000000\r\nx\r\nmg a t v\r\n".to_vec(),
        b"set a 0 0 1\r\nx\r\nmg a s v k O1 c f t\r\nme a\r\n".to_vec(),
        b"mg \x80\r\nmg a\x80 v\r\n".to_vec(),
        format!("ms a 1 O{0}\r\nx\r\nmd a O{0}\r\nma a O{0}\r\n", "1".repeat(40)).into_bytes(),
        format!("set a 0 0 1\r\nx\r\nmd a O{0}\r\nma a O{0}\r\n", "1".repeat(40)).into_bytes(),
        b"ms YWJj 1 b\r\nx\r\nms YWJj 1 b MA k\r\ny\r\nmg abc k v\r\nms YWJj 1 b ME k\r\nz\r\n".to_vec(),
        b"ms YWJj 1 b I k c\r\nx\r\nmd YWJj b k q\r\nmd YWJj b k\r\nma YWJj b k N0 J3 v\r\n".to_vec(),
        b"ms YWJj 1 b\r\n9\r\nma YWJj b D99 v k\r\nmg abc k v\r\nma YWJj b k v\r\nmg abc k v\r\n".to_vec(),
        {
            let mut s = b"ms a 2000000 T0\r\n".to_vec();
            s.extend(std::iter::repeat_n(b'x', 2000000));
            s.extend_from_slice(b"\r\n");
            s
        },
    ];
    // noreply on every storage command
    for c in ["set", "add", "replace", "append", "prepend"] {
        v.push(
            format!("{c} a 1 0 1 noreply\r\nx\r\nget a\r\n{c} a 2 0 2 noreply\r\nyy\r\ngets a\r\n")
                .into_bytes(),
        );
    }
    v
}

#[test]
fn text_and_meta_hand_written() {
    let Some(p) = pair() else { return };
    for case in hand_written_text() {
        p.text(&case);
    }
}

/// Generated sequences per test: env `DIFF_ITER` (default 300); seed offset: env `DIFF_SEED`.
fn iterations() -> usize {
    std::env::var("DIFF_ITER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn seed(base: u64) -> u64 {
    base ^ std::env::var("DIFF_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

const KEYS: &[&str] = &["a", "b", "c", "key:1", "YWJj"];
const VALUES: &[&str] = &[
    "0",
    "1",
    "42",
    "18446744073709551615",
    "abc",
    "",
    "99999",
    "x y",
    " 7",
];
const EXPS: &[&str] = &["0", "0", "0", "-1", "1000", "3000000000", "4102444800"];

fn gen_text(r: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    let n = 1 + r.below(20);
    for _ in 0..n {
        let k = r.pick(KEYS);
        let v = r.pick(VALUES);
        let e = r.pick(EXPS);
        let flags = r.pick(&["0", "1", "4294967295", "12"]);
        let nr = if r.below(5) == 0 { " noreply" } else { "" };
        if r.below(8) == 0 {
            // malformed / unusual lines: random command with random arguments. (No flush_all:
            // a delayed flush_all after an immediate one makes memcached's lazily flushed items
            // visible again, a quirk we do not reproduce; see README.)
            let c = *r.pick(&[
                "get",
                "gets",
                "gat",
                "gats",
                "set",
                "add",
                "cas",
                "incr",
                "decr",
                "delete",
                "touch",
                "verbosity",
                "version",
                "mg",
                "ms",
                "md",
                "ma",
                "mn",
                "me",
                "stats",
                "GET",
                "sett",
                "",
                " ",
                "cache_memlimit",
            ]);
            let mut line = c.to_string();
            for _ in 0..r.below(8) {
                line.push(' ');
                line.push_str(r.pick::<&str>(&[
                    "a",
                    "b",
                    "0",
                    "1",
                    "2",
                    "-1",
                    "noreply",
                    "x",
                    "4294967296",
                    "v",
                    "q",
                    "k",
                    "O1",
                    "T-1",
                    "N0",
                    "C1",
                    "MX",
                    "b",
                    "99999999999999999999",
                    "+1",
                    "\t1",
                    "",
                    "E1",
                    "F1",
                    "D1",
                    "J1",
                    "s",
                    "t",
                    "c",
                    "f",
                ]));
            }
            line.push_str("\r\n");
            if r.below(2) == 0 {
                line.push_str("ab\r\n");
            }
            s.extend_from_slice(line.as_bytes());
            continue;
        }
        let cmd = match r.below(17) {
            0..=2 => {
                let c = r.pick(&["set", "add", "replace", "append", "prepend"]);
                format!("{c} {k} {flags} {e} {}{nr}\r\n{v}\r\n", v.len())
            }
            3 => format!(
                "cas {k} {flags} {e} {} {}{nr}\r\n{v}\r\n",
                v.len(),
                r.below(40)
            ),
            4 => format!("get {k} {}\r\n", r.pick(KEYS)),
            5 => format!("gets {k}\r\n"),
            6 => format!("{} {e} {k}\r\n", r.pick(&["gat", "gats"])),
            7 => format!(
                "{} {k} {}{nr}\r\n",
                r.pick(&["incr", "decr"]),
                r.pick(&["1", "0", "100", "18446744073709551615", "x"])
            ),
            8 => format!("delete {k}{nr}\r\n"),
            9 => format!("touch {k} {e}{nr}\r\n"),
            10 | 11 => {
                let mut f = String::new();
                for fl in [
                    "v", "s", "f", "c", "k", "O77", "q", "h", "N0", "T0", "R30", "u", "b",
                ] {
                    if r.below(3) == 0 {
                        f.push(' ');
                        f.push_str(fl);
                    }
                }
                format!("mg {k}{f}\r\n")
            }
            12 | 13 => {
                let mut f = String::new();
                for fl in ["T0", "F3", "c", "k", "O5", "q", "I", "b"] {
                    if r.below(3) == 0 {
                        f.push(' ');
                        f.push_str(fl);
                    }
                }
                if r.below(3) == 0 {
                    f.push_str(&format!(" C{}", r.below(40)));
                }
                if r.below(3) == 0 {
                    f.push_str(&format!(" M{}", r.pick(&["S", "E", "A", "P", "R"])));
                }
                format!("ms {k} {}{f}\r\n{v}\r\n", v.len())
            }
            14 => {
                let mut f = String::new();
                for fl in ["q", "k", "O1", "I", "T0", "b"] {
                    if r.below(3) == 0 {
                        f.push(' ');
                        f.push_str(fl);
                    }
                }
                if r.below(3) == 0 {
                    f.push_str(&format!(" C{}", r.below(40)));
                }
                format!("md {k}{f}\r\n")
            }
            15 => {
                let mut f = String::new();
                for fl in ["N0", "J10", "D5", "MD", "q", "v", "c", "k", "O2", "b"] {
                    if r.below(3) == 0 {
                        f.push(' ');
                        f.push_str(fl);
                    }
                }
                format!("ma {k}{f}\r\n")
            }
            _ => format!("me {k}\r\n"),
        };
        s.extend_from_slice(cmd.as_bytes());
    }
    s
}

#[test]
fn text_and_meta_generated() {
    let Some(p) = pair() else { return };
    let mut r = Rng(seed(0x9E37_79B9_7F4A_7C15));
    for _ in 0..iterations() {
        let case = gen_text(&mut r);
        p.text(&case);
    }
}

fn set_extras(flags: u32, exp: u32) -> Vec<u8> {
    let mut e = flags.to_be_bytes().to_vec();
    e.extend_from_slice(&exp.to_be_bytes());
    e
}

fn incr_extras(delta: u64, initial: u64, exp: u32) -> Vec<u8> {
    let mut e = delta.to_be_bytes().to_vec();
    e.extend_from_slice(&initial.to_be_bytes());
    e.extend_from_slice(&exp.to_be_bytes());
    e
}

fn hand_written_binary() -> Vec<Vec<u8>> {
    let b = bin_request;
    let mut v: Vec<Vec<u8>> = Vec::new();
    let set = |k: &[u8], val: &[u8]| b(0x01, k, &set_extras(7, 0), val, 1, 0);
    v.push(b(0x0a, b"", b"", b"", 5, 0));
    v.push(b(0x0b, b"", b"", b"", 5, 0));
    v.push(
        [
            set(b"a", b"hello"),
            b(0x00, b"a", b"", b"", 2, 0),
            b(0x0c, b"a", b"", b"", 3, 0),
        ]
        .concat(),
    );
    v.push(
        [
            b(0x00, b"zz", b"", b"", 2, 0),
            b(0x0c, b"zz", b"", b"", 3, 0),
            b(0x09, b"zz", b"", b"", 4, 0),
            b(0x0d, b"zz", b"", b"", 4, 0),
        ]
        .concat(),
    );
    v.push(
        [
            set(b"a", b"x"),
            b(0x09, b"a", b"", b"", 4, 0),
            b(0x0d, b"a", b"", b"", 4, 0),
        ]
        .concat(),
    );
    v.push(
        [
            set(b"a", b"x"),
            b(0x02, b"a", &set_extras(0, 0), b"y", 9, 0),
            b(0x03, b"b", &set_extras(0, 0), b"y", 9, 0),
            b(0x03, b"a", &set_extras(0, 0), b"y", 9, 0),
            b(0x00, b"a", b"", b"", 9, 0),
        ]
        .concat(),
    );
    v.push(
        [
            b(0x12, b"a", &set_extras(0, 0), b"y", 9, 0),
            b(0x12, b"a", &set_extras(0, 0), b"y", 9, 0),
            b(0x13, b"q", &set_extras(0, 0), b"y", 9, 0),
            b(0x11, b"a", &set_extras(0, 0), b"z", 9, 0),
        ]
        .concat(),
    );
    // cas on set
    v.push(
        [
            set(b"a", b"x"),
            b(0x01, b"a", &set_extras(0, 0), b"y", 1, 999),
            b(0x01, b"a", &set_extras(0, 0), b"y", 1, 1),
            b(0x01, b"nope", &set_extras(0, 0), b"y", 1, 5),
        ]
        .concat(),
    );
    v.push(
        [
            set(b"a", b"x"),
            b(0x04, b"a", b"", b"", 1, 0),
            b(0x04, b"a", b"", b"", 1, 0),
            b(0x14, b"a", b"", b"", 1, 0),
            set(b"a", b"x"),
            b(0x14, b"a", b"", b"", 1, 0),
            b(0x04, b"a", b"", b"", 1, 0),
        ]
        .concat(),
    );
    v.push(
        [
            set(b"n", b"10"),
            b(0x05, b"n", &incr_extras(5, 0, 0), b"", 1, 0),
            b(0x06, b"n", &incr_extras(100, 0, 0), b"", 1, 0),
            b(0x05, b"m", &incr_extras(1, 77, 0), b"", 1, 0),
            b(0x05, b"o", &incr_extras(1, 77, 0xffff_ffff), b"", 1, 0),
            b(0x15, b"m", &incr_extras(1, 0, 0), b"", 1, 0),
            b(0x00, b"m", b"", b"", 1, 0),
            b(0x00, b"n", b"", b"", 1, 0),
        ]
        .concat(),
    );
    v.push(
        [
            set(b"a", b"abc"),
            b(0x05, b"a", &incr_extras(1, 0, 0), b"", 1, 0),
            b(0x05, b"a", &incr_extras(1, 0, 0), b"", 1, 77),
        ]
        .concat(),
    );
    v.push(
        [
            set(b"a", b"mid"),
            b(0x0e, b"a", b"", b"-end", 1, 0),
            b(0x0f, b"a", b"", b"start-", 1, 0),
            b(0x19, b"a", b"", b"!", 1, 0),
            b(0x0e, b"zz", b"", b"x", 1, 0),
            b(0x00, b"a", b"", b"", 1, 0),
        ]
        .concat(),
    );
    v.push(
        [
            set(b"a", b"x"),
            b(0x1c, b"a", &100u32.to_be_bytes(), b"", 1, 0),
            b(0x1d, b"a", &100u32.to_be_bytes(), b"", 1, 0),
            b(0x23, b"a", &100u32.to_be_bytes(), b"", 1, 0),
            b(0x1e, b"zz", &100u32.to_be_bytes(), b"", 1, 0),
            b(0x1c, b"zz", &100u32.to_be_bytes(), b"", 1, 0),
            b(0x24, b"a", &100u32.to_be_bytes(), b"", 1, 0),
        ]
        .concat(),
    );
    v.push(
        [
            set(b"a", b"x"),
            b(0x08, b"", b"", b"", 1, 0),
            b(0x00, b"a", b"", b"", 1, 0),
            set(b"a", b"x"),
            b(0x18, b"", b"", b"", 1, 0),
            b(0x00, b"a", b"", b"", 1, 0),
        ]
        .concat(),
    );
    // protocol errors close the connection
    v.push(b(0x00, b"", b"", b"", 1, 0));
    v.push(b(0x01, b"a", b"", b"x", 1, 0));
    v.push(b(0x0a, b"a", b"", b"", 1, 0));
    v.push(b(0x07, b"", b"", b"", 1, 0));
    v.push(b(0x17, b"", b"", b"", 1, 0));
    v.push(b(0x55, b"abc", b"", b"zz", 1, 0));
    v.push(b(0x00, &[b'k'; 251], b"", b"", 1, 0));
    // too large value
    v.push(
        [
            set(b"a", b"x"),
            b(0x01, b"a", &set_extras(0, 0), &vec![b'x'; 1048576], 1, 0),
            b(0x00, b"a", b"", b"", 1, 0),
        ]
        .concat(),
    );
    // invalid magic: close, dropping replies memcached had not written yet
    v.push(
        [
            b(0x0c, b"zz", b"", b"", 1, 0),
            b"\x81".to_vec(),
            vec![0; 23],
        ]
        .concat(),
    );
    v.push(
        [
            b(0x00, b"zz", b"", b"", 1, 0),
            b"\x81".to_vec(),
            vec![0; 23],
        ]
        .concat(),
    );
    v.push(
        [
            b(0x0c, b"zz", b"", b"", 1, 0),
            b(0x0a, b"", b"", b"", 2, 0),
            b(0x0c, b"yy", b"", b"", 3, 0),
            b"\x81".to_vec(),
            vec![0; 23],
        ]
        .concat(),
    );
    // unknown opcodes and SASL without SASL
    v.push([b(0x29, b"k", b"", b"", 2, 0), b(0x0a, b"", b"", b"", 3, 0)].concat());
    v.push(
        [
            b(0x29, b"", b"", b"abc", 2, 0),
            b(0x0a, b"", b"", b"", 3, 0),
        ]
        .concat(),
    );
    v.push([b(0x20, b"", b"", b"", 2, 0), b(0x0a, b"", b"", b"", 3, 0)].concat());
    v.push(
        [
            b(0x21, b"PLAIN", b"", b"\0a\0b", 2, 0),
            b(0x0a, b"", b"", b"", 3, 0),
        ]
        .concat(),
    );
    v.push(b(0x10, b"nope", b"", b"", 1, 0));
    v.push(b(0x10, b"settings_nope", b"", b"", 1, 0));
    v.push(b(0x10, b"reset", b"", b"", 1, 0));
    v
}

fn norm_bin_stats(p: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    // Stat packets: keep the name, drop the value.
    p.into_iter()
        .map(|mut pk| {
            if pk.len() >= 24 && pk[1] == 0x10 {
                let kl = u16::from_be_bytes([pk[2], pk[3]]) as usize;
                pk.truncate(24 + kl);
                pk[8..12].copy_from_slice(&[0, 0, 0, 0]);
            }
            pk
        })
        .collect()
}

#[test]
fn binary_hand_written() {
    let Some(p) = pair() else { return };
    for case in hand_written_binary() {
        p.binary(&case);
    }
    // stats: names and order
    let req = bin_request(0x10, b"", b"", b"", 3, 0);
    let a = norm_bin_stats(bin_exchange(p.real_addr, &req));
    let b = norm_bin_stats(bin_exchange(p.ours.local_addr(), &req));
    let names = |v: &Vec<Vec<u8>>| -> Vec<String> {
        v.iter()
            .map(|pk| String::from_utf8_lossy(&pk[24.min(pk.len())..]).to_string())
            .collect()
    };
    assert_eq!(names(&a), names(&b));
}

fn gen_binary(r: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    let n = 1 + r.below(15);
    for i in 0..n {
        let k = r.pick(KEYS).as_bytes();
        let v = r.pick(VALUES).as_bytes();
        let opaque = i as u32;
        let cas = if r.below(4) == 0 { r.below(30) } else { 0 };
        let exp = *r.pick(&[0u32, 0, 1000, 4102444800, 0xffff_ffff]);
        // (No random framing here: memcached's handling of malformed binary frames has
        // corner cases we do not reproduce, e.g. a quiet opcode with bad framing closes
        // without the EINVAL reply; see README. Framing errors are covered by hand-written
        // cases and the never-panic fuzzing.)
        let pkt = match r.below(12) {
            0..=2 => bin_request(
                *r.pick(&[0x01, 0x02, 0x03, 0x11, 0x12, 0x13]),
                k,
                &set_extras(r.below(3) as u32, exp),
                v,
                opaque,
                cas,
            ),
            3..=4 => bin_request(*r.pick(&[0x00, 0x09, 0x0c, 0x0d]), k, b"", b"", opaque, 0),
            5 => bin_request(*r.pick(&[0x04, 0x14]), k, b"", b"", opaque, cas),
            6..=7 => bin_request(
                *r.pick(&[0x05, 0x06, 0x15, 0x16]),
                k,
                &incr_extras(r.below(100), r.below(100), exp),
                b"",
                opaque,
                cas,
            ),
            8 => bin_request(*r.pick(&[0x0e, 0x0f, 0x19, 0x1a]), k, b"", v, opaque, cas),
            9..=10 => bin_request(
                *r.pick(&[0x1c, 0x1d, 0x1e, 0x23, 0x24]),
                k,
                &exp.to_be_bytes(),
                b"",
                opaque,
                0,
            ),
            _ => bin_request(0x0a, b"", b"", b"", opaque, 0),
        };
        s.extend_from_slice(&pkt);
    }
    s
}

#[test]
fn binary_generated() {
    let Some(p) = pair() else { return };
    let mut r = Rng(seed(0x1234_5678_9ABC_DEF1));
    for _ in 0..iterations() {
        let case = gen_binary(&mut r);
        p.binary(&case);
    }
}
