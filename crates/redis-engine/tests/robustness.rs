//! Protocol robustness, pipelining, blocking, transactions, eviction, shutdown.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

#[global_allocator]
static ALLOC: redis_engine::CountingAlloc = redis_engine::CountingAlloc;

fn node() -> (redis_engine::NodeHandle, u16) {
    start_node(redis_engine::Config::default())
}

/// Wait until the node reports `n` blocked clients.
fn wait_blocked(c: &mut Conn, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    for _ in 0..500 {
        let (_, v) = c.cmd(&["INFO", "clients"]);
        if let RVal::Bulk(Some(b)) = v {
            if String::from_utf8_lossy(&b).contains(&want) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("never saw {n} blocked clients");
}

fn read_to_eof(c: &mut Conn) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = c.s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = c.s.read_to_end(&mut v);
    v
}

#[test]
fn pipeline_10k() {
    let (h, port) = node();
    let mut c = Conn::connect(port);
    let mut wire = Vec::new();
    for i in 0..10_000 {
        wire.extend(encode(&[
            b"SET".to_vec(),
            format!("key:{i}").into_bytes(),
            format!("v{i}").into_bytes(),
        ]));
        wire.extend(encode(&[b"GET".to_vec(), format!("key:{i}").into_bytes()]));
    }
    c.send_raw(&wire);
    for i in 0..10_000 {
        assert_eq!(c.read_reply().unwrap().0, b"+OK\r\n");
        let v = format!("v{i}");
        assert_eq!(
            c.read_reply().unwrap().0,
            format!("${}\r\n{}\r\n", v.len(), v).into_bytes()
        );
    }
    assert_eq!(c.cmd(&["DBSIZE"]).0, b":10000\r\n");
    h.shutdown();
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let (h, port) = node();
    let mut good = Conn::connect(port);
    good.cmd(&["SET", "k", "v"]);
    for (bad, err) in [
        (
            &b"*1\r\n$x\r\n"[..],
            &b"-ERR Protocol error: invalid bulk length\r\n"[..],
        ),
        (
            b"*1\r\n$2147483648\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n+OK\r\n",
            b"-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"SET \"a\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ] {
        let mut c = Conn::connect(port);
        c.send_raw(bad);
        assert_eq!(read_to_eof(&mut c), err);
        assert_eq!(good.cmd(&["GET", "k"]).0, b"$1\r\nv\r\n");
    }
    // Half-sent request: the node keeps serving others.
    let mut half = Conn::connect(port);
    half.send_raw(b"*2\r\n$3\r\nGET\r\n$10\r\nabc");
    assert_eq!(good.cmd(&["PING"]).0, b"+PONG\r\n");
    half.send_raw(b"defghij\r\n");
    assert_eq!(half.read_reply().unwrap().0, b"$-1\r\n");
    // Inline commands work.
    let mut t = Conn::connect(port);
    t.send_raw(b"PING\r\nGET k\r\n");
    assert_eq!(t.read_reply().unwrap().0, b"+PONG\r\n");
    assert_eq!(t.read_reply().unwrap().0, b"$1\r\nv\r\n");
    h.shutdown();
}

#[test]
fn client_that_never_reads_does_not_block_others() {
    let (h, port) = node();
    let mut c = Conn::connect(port);
    c.cmd(&["SET", "big", &"x".repeat(1 << 20)]);
    let mut lazy = Conn::connect(port);
    let one = encode(&[b"GET".to_vec(), b"big".to_vec()]);
    lazy.s
        .set_write_timeout(Some(Duration::from_millis(200)))
        .ok();
    let mut sent = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        match lazy.s.write(&one) {
            Ok(_) => sent += 1,
            Err(_) => break,
        }
        if sent > 5000 {
            break;
        }
    }
    let t = Instant::now();
    assert_eq!(c.cmd(&["PING"]).0, b"+PONG\r\n");
    assert!(t.elapsed() < Duration::from_secs(1));
    h.shutdown();
}

#[test]
fn blocking_pops_wake_in_order_and_time_out() {
    let (h, port) = node();
    let mut a = Conn::connect(port);
    let mut b = Conn::connect(port);
    let mut p = Conn::connect(port);
    a.send(&[b"BLPOP".to_vec(), b"q".to_vec(), b"0".to_vec()]);
    wait_blocked(&mut p, 1);
    b.send(&[b"BLPOP".to_vec(), b"q".to_vec(), b"0".to_vec()]);
    wait_blocked(&mut p, 2);
    assert_eq!(p.cmd(&["RPUSH", "q", "1", "2"]).0, b":2\r\n");
    assert_eq!(a.read_reply().unwrap().0, b"*2\r\n$1\r\nq\r\n$1\r\n1\r\n");
    assert_eq!(b.read_reply().unwrap().0, b"*2\r\n$1\r\nq\r\n$1\r\n2\r\n");
    assert_eq!(p.cmd(&["EXISTS", "q"]).0, b":0\r\n");
    // Timeout.
    let t = Instant::now();
    assert_eq!(a.cmd(&["BRPOP", "none", "0.2"]).0, b"*-1\r\n");
    assert!(t.elapsed() >= Duration::from_millis(190));
    // BLMOVE chain wakes a client blocked on the destination.
    b.send(&[b"BLPOP".to_vec(), b"dst".to_vec(), b"0".to_vec()]);
    wait_blocked(&mut p, 1);
    a.send(&[
        b"BLMOVE".to_vec(),
        b"src".to_vec(),
        b"dst".to_vec(),
        b"LEFT".to_vec(),
        b"RIGHT".to_vec(),
        b"0".to_vec(),
    ]);
    wait_blocked(&mut p, 2);
    p.cmd(&["LPUSH", "src", "v"]);
    assert_eq!(a.read_reply().unwrap().0, b"$1\r\nv\r\n");
    assert_eq!(b.read_reply().unwrap().0, b"*2\r\n$3\r\ndst\r\n$1\r\nv\r\n");
    // BZPOPMIN.
    a.send(&[b"BZPOPMIN".to_vec(), b"z".to_vec(), b"0".to_vec()]);
    wait_blocked(&mut p, 1);
    p.cmd(&["ZADD", "z", "1.5", "m"]);
    assert_eq!(
        a.read_reply().unwrap().0,
        b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n$3\r\n1.5\r\n"
    );
    h.shutdown();
}

#[test]
fn watch_aborts_exec() {
    let (h, port) = node();
    let mut a = Conn::connect(port);
    let mut b = Conn::connect(port);
    a.cmd(&["WATCH", "k"]);
    b.cmd(&["SET", "k", "1"]);
    a.cmd(&["MULTI"]);
    a.cmd(&["INCR", "k"]);
    assert_eq!(a.cmd(&["EXEC"]).0, b"*-1\r\n");
    a.cmd(&["WATCH", "k"]);
    a.cmd(&["MULTI"]);
    a.cmd(&["INCR", "k"]);
    assert_eq!(a.cmd(&["EXEC"]).0, b"*1\r\n:2\r\n");
    h.shutdown();
}

#[test]
fn expiry_is_ms_exact_and_active() {
    let (h, port) = node();
    let mut c = Conn::connect(port);
    c.cmd(&["SET", "a", "1", "PX", "100"]);
    assert_eq!(c.cmd(&["GET", "a"]).0, b"$1\r\n1\r\n");
    std::thread::sleep(Duration::from_millis(110));
    assert_eq!(c.cmd(&["GET", "a"]).0, b"$-1\r\n");
    // Active expiry reclaims keys nobody reads.
    for i in 0..200 {
        c.cmd(&["SET", &format!("e{i}"), "v", "PX", "50"]);
    }
    let t = Instant::now();
    while c.cmd(&["DBSIZE"]).0 != b":0\r\n" {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "active expiry did not reclaim keys"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The keys were reclaimed without being read.
    let (_, info) = c.cmd(&["INFO", "stats"]);
    let RVal::Bulk(Some(info)) = info else {
        panic!()
    };
    assert!(String::from_utf8_lossy(&info).contains("expired_keys:201\r\n"));
    h.shutdown();
}

#[test]
fn restricted_commands_are_refused_unless_allowed() {
    let (h, port) = node();
    let mut c = Conn::connect(port);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]).0,
        b"-ERR unknown command 'CONFIG', with args beginning with: 'GET' 'maxmemory' \r\n"
    );
    assert!(c
        .cmd(&["DEBUG", "SLEEP", "0"])
        .0
        .starts_with(b"-ERR unknown command 'DEBUG'"));
    assert!(c
        .cmd(&["SAVE"])
        .0
        .starts_with(b"-ERR unknown command 'SAVE'"));
    h.shutdown();
    let (h, port) = start_node(redis_engine::Config {
        allow_restricted_commands: true,
        ..Default::default()
    });
    let mut c = Conn::connect(port);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]).0,
        b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"
    );
    h.shutdown();
}

#[test]
fn maxmemory_noeviction_and_lru() {
    let (h, port) = start_node(redis_engine::Config {
        maxmemory: 4 << 20,
        ..Default::default()
    });
    let mut c = Conn::connect(port);
    let val = "x".repeat(1000);
    let mut oom = false;
    for i in 0..20_000 {
        let (raw, _) = c.cmd(&["SET", &format!("k{i}"), &val]);
        if raw.starts_with(b"-OOM") {
            assert_eq!(
                raw,
                b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
            );
            oom = true;
            break;
        }
    }
    assert!(oom, "noeviction must refuse writes over maxmemory");
    // Reads and deletes still work.
    assert_eq!(c.cmd(&["GET", "k0"]).0.len(), 1000 + 9);
    // Switch policy at run time: writes succeed by evicting.
    h.set_maxmemory_policy("allkeys-lru").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..2000 {
        let (raw, _) = c.cmd(&["SET", &format!("n{i}"), &val]);
        assert_eq!(raw, b"+OK\r\n");
    }
    let (_, info) = c.cmd(&["INFO", "stats"]);
    let RVal::Bulk(Some(info)) = info else {
        panic!()
    };
    let info = String::from_utf8(info).unwrap();
    let ev: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(ev > 0, "{info}");
    assert!(h.set_maxmemory_policy("bogus").is_err());
    h.shutdown();
}

#[test]
fn shutdown_closes_clients_and_frees_the_address() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = redis_engine::spawn(l, Default::default()).unwrap();
    let mut c = Conn::connect(addr.port());
    assert_eq!(c.cmd(&["PING"]).0, b"+PONG\r\n");
    let mut blocked = Conn::connect(addr.port());
    blocked.send(&[b"BLPOP".to_vec(), b"x".to_vec(), b"0".to_vec()]);
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    h.shutdown();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(read_to_eof(&mut c).is_empty());
    assert!(read_to_eof(&mut blocked).is_empty());
    // Same address again, immediately.
    let sock = socket_reuse(addr);
    let h2 = redis_engine::spawn(sock, Default::default()).unwrap();
    let mut c = Conn::connect(addr.port());
    assert_eq!(c.cmd(&["PING"]).0, b"+PONG\r\n");
    h2.shutdown();
}

fn socket_reuse(addr: std::net::SocketAddr) -> std::net::TcpListener {
    // SO_REUSEADDR as the control plane sets it (std sets it on Unix by default).
    std::net::TcpListener::bind(addr).expect("rebind")
}

#[test]
fn pubsub_resp3_push_and_publish_to_self() {
    let (h, port) = node();
    let mut s = Conn::connect(port);
    s.cmd(&["HELLO", "3"]);
    assert_eq!(
        s.cmd(&["SUBSCRIBE", "ch"]).0,
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
    );
    // RESP3 clients may run commands while subscribed.
    assert_eq!(
        s.cmd(&["PUBLISH", "ch", "hi"]).0,
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
    );
    assert_eq!(s.read_reply().unwrap().0, b":1\r\n");
    let mut p = Conn::connect(port);
    assert_eq!(p.cmd(&["PUBLISH", "ch", "x"]).0, b":1\r\n");
    assert_eq!(
        s.read_reply().unwrap().0,
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n"
    );
    h.shutdown();
}

#[test]
fn auth_and_client_kill() {
    let (h, port) = start_node(redis_engine::Config {
        password: Some("secret".into()),
        ..Default::default()
    });
    let mut c = Conn::connect(port);
    assert_eq!(
        c.cmd(&["GET", "a"]).0,
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        c.cmd(&["AUTH", "wrong"]).0,
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(c.cmd(&["AUTH", "secret"]).0, b"+OK\r\n");
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "victim"]).0, b"+OK\r\n");
    let (_, id) = c.cmd(&["CLIENT", "ID"]);
    let RVal::Int(id) = id else { panic!() };
    let mut k = Conn::connect(port);
    k.cmd(&["HELLO", "3", "AUTH", "default", "secret"]);
    assert_eq!(
        k.cmd(&["CLIENT", "KILL", "ID", &id.to_string()]).0,
        b":1\r\n"
    );
    assert!(read_to_eof(&mut c).is_empty());
    h.shutdown();
}

#[test]
fn redis_py_seed_programs() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/seed_check.py");
    let ok = std::process::Command::new("python3")
        .args(["-c", "import redis"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: python3 with redis-py not available");
        return;
    }
    let (h, port) = node();
    for proto in ["2", "3"] {
        let out = std::process::Command::new("python3")
            .args([script, &port.to_string(), proto])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    h.shutdown();
}

#[test]
fn scan_returns_every_key_present_throughout() {
    let (h, port) = node();
    let mut c = Conn::connect(port);
    let mut wire = Vec::new();
    for i in 0..2000 {
        wire.extend(encode(&[
            b"SET".to_vec(),
            format!("k{i}").into_bytes(),
            b"v".to_vec(),
        ]));
    }
    c.send_raw(&wire);
    for _ in 0..2000 {
        c.read_reply();
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut step = 0;
    loop {
        let (_, v) = c.cmd(&["SCAN", &cursor, "COUNT", "37"]);
        let RVal::Array(_, Some(items)) = v else {
            panic!()
        };
        let RVal::Bulk(Some(cur)) = &items[0] else {
            panic!()
        };
        let RVal::Array(_, Some(keys)) = &items[1] else {
            panic!()
        };
        for k in keys {
            if let RVal::Bulk(Some(k)) = k {
                seen.insert(String::from_utf8(k.clone()).unwrap());
            }
        }
        // Meanwhile delete odd keys with index >= 1000 and add new ones.
        c.cmd(&["DEL", &format!("k{}", 1001 + 2 * step)]);
        c.cmd(&["SET", &format!("new{step}"), "v"]);
        step += 1;
        cursor = String::from_utf8(cur.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    for i in 0..1000 {
        assert!(seen.contains(&format!("k{i}")), "k{i} missing");
    }
    for i in (1000..2000).step_by(2) {
        assert!(seen.contains(&format!("k{i}")), "k{i} missing");
    }
    h.shutdown();
}

#[test]
fn dropping_the_handle_keeps_the_node_running() {
    let (h, port) = node();
    drop(h);
    std::thread::sleep(Duration::from_millis(50));
    let mut c = Conn::connect(port);
    assert_eq!(c.cmd(&["PING"]).0, b"+PONG\r\n");
}

/// Replays the kept corpus of malformed and tricky frames (tests/corpus/resp): each on its
/// own connection; the node must answer or close that connection and keep serving others.
#[test]
fn corpus_replay_keeps_node_alive() {
    let (h, port) = node();
    let mut good = Conn::connect(port);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/resp");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let mut c = Conn::connect(port);
        c.send_raw(&data);
        c.s.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let mut sink = [0u8; 4096];
        while let Ok(k) = c.s.read(&mut sink) {
            if k == 0 {
                break;
            }
        }
        assert_eq!(good.cmd(&["PING"]).0, b"+PONG\r\n");
        n += 1;
    }
    assert!(n >= 20);
    // Random garbage too.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..50 {
        let mut data = Vec::new();
        for _ in 0..(seed % 500) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            data.push(b"*$\r\n0123456789-+:abcPING \"'\\"[(seed % 28) as usize]);
        }
        let mut c = Conn::connect(port);
        c.send_raw(&data);
        drop(c);
    }
    assert_eq!(good.cmd(&["PING"]).0, b"+PONG\r\n");
    h.shutdown();
}

/// xorshift64: a seeded generator, so a failing run can be replayed (ROBUST_FUZZ_SEED).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Words a mutated frame must not contain (see tests/corpus/seeds.txt).
const FUZZ_DENY: &[&str] = &[
    "pause",
    "kill",
    "setrange",
    "setbit",
    "bitfield",
    "randmember",
    "randfield",
    "debug",
    "shutdown",
    "config",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    const INTERESTING: &[&[u8]] = &[
        b"-1",
        b"0",
        b"1",
        b"-2147483648",
        b"2147483648",
        b"9223372036854775807",
        b"-9223372036854775808",
        b"18446744073709551616",
        b"",
        b"\r\n",
        b"*",
        b"$",
        b"inf",
        b"nan",
    ];
    let mut f = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = f.len().max(1);
        match rng.below(8) {
            0 => {
                let i = rng.below(len);
                if i < f.len() {
                    f[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(len + 1).min(f.len());
                f.insert(i, b"*$:+-\r\n0123456789 \"'\\x"[rng.below(22)]);
            }
            2 => {
                let a = rng.below(len).min(f.len());
                let b = (a + rng.below(8)).min(f.len());
                f.drain(a..b);
            }
            3 => {
                let a = rng.below(len).min(f.len());
                let b = (a + rng.below(16)).min(f.len());
                let piece = f[a..b].to_vec();
                let at = rng.below(len + 1).min(f.len());
                f.splice(at..at, piece);
            }
            4 => {
                // Replace a run of digits (a length or a count) with an interesting number.
                let digits: Vec<usize> = (0..f.len()).filter(|&i| f[i].is_ascii_digit()).collect();
                if !digits.is_empty() {
                    let s = digits[rng.below(digits.len())];
                    let mut e = s;
                    while e < f.len() && f[e].is_ascii_digit() {
                        e += 1;
                    }
                    let v = INTERESTING[rng.below(INTERESTING.len())];
                    f.splice(s..e, v.iter().copied());
                }
            }
            5 => {
                let n = rng.below(len);
                f.truncate(n);
            }
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len().max(1)).min(other.len());
                f.extend_from_slice(&other[cut..]);
            }
            _ => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let at = rng.below(len + 1).min(f.len());
                f.splice(at..at, v.iter().copied());
            }
        }
    }
    f
}

fn fuzz_seeds() -> Vec<Vec<u8>> {
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut seeds = Vec::new();
    let text = std::fs::read_to_string(format!("{base}/seeds.txt")).unwrap();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        seeds.push(encode(&words));
        // The inline (telnet) form too.
        seeds.push(format!("{line}\r\n").into_bytes());
    }
    for entry in std::fs::read_dir(format!("{base}/resp")).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        if data.len() <= 4096 {
            seeds.push(data);
        }
    }
    seeds
}

/// Mutation harness (cargo-fuzz needs a nightly toolchain): seeded random mutations of
/// the corpus (tests/corpus/seeds.txt and tests/corpus/resp) sent as pipelined batches
/// to a live node for ROBUST_FUZZ_ITERS iterations (default 3000); the node must keep
/// answering PING on another connection throughout.
#[test]
fn mutated_frames_keep_node_alive() {
    let (h, port) = start_node(redis_engine::Config {
        maxmemory: 256 << 20,
        ..Default::default()
    });
    let iters: usize = std::env::var("ROBUST_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("ROBUST_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_1234_ABCD_0001);
    let seeds = fuzz_seeds();
    assert!(seeds.len() > 100);
    let mut rng = Rng(seed);
    let mut good = Conn::connect(port);
    let mut fuzz: Option<std::net::TcpStream> = None;
    let mut sent = 0;
    for it in 0..iters {
        let mut batch = Vec::new();
        for _ in 0..1 + rng.below(4) {
            batch.extend(mutate(&mut rng, &seeds));
        }
        let lower = batch.to_ascii_lowercase();
        if FUZZ_DENY
            .iter()
            .any(|w| lower.windows(w.len()).any(|x| x == w.as_bytes()))
        {
            continue;
        }
        if fuzz.is_none() || it % 50 == 0 {
            let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_write_timeout(Some(Duration::from_millis(500))).ok();
            s.set_read_timeout(Some(Duration::from_millis(2))).ok();
            fuzz = Some(s);
        }
        let Some(s) = fuzz.as_mut() else { continue };
        if s.write_all(&batch).is_err() {
            fuzz = None;
            continue;
        }
        sent += 1;
        let mut sink = [0u8; 65536];
        loop {
            match s.read(&mut sink) {
                Ok(0) => {
                    fuzz = None;
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        if it % 100 == 0 {
            assert_eq!(
                good.cmd(&["PING"]).0,
                b"+PONG\r\n",
                "node stopped answering after iteration {it} (seed {seed})"
            );
        }
    }
    assert!(sent > iters / 2, "only {sent} batches sent");
    drop(fuzz);
    assert_eq!(good.cmd(&["PING"]).0, b"+PONG\r\n");
    let mut fresh = Conn::connect(port);
    assert_eq!(fresh.cmd(&["PING"]).0, b"+PONG\r\n");
    h.shutdown();
}
