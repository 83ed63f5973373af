//! Helpers shared by the integration tests: a real memcached next to one of our nodes.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use std::time::{Duration, Instant};

use memcached_engine::{Config, NodeHandle};

pub fn find_binary(name: &str) -> Option<String> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = format!("{dir}/{name}");
        if std::path::Path::new(&p).is_file() {
            return Some(p);
        }
    }
    None
}

/// The binary, or None after printing a skip message (panics instead when `CI` is set).
pub fn require(name: &str) -> Option<String> {
    match find_binary(name) {
        Some(p) => Some(p),
        None => {
            if std::env::var_os("CI").is_some() {
                panic!("{name} is not installed (required when CI is set)");
            }
            eprintln!("SKIP: {name} is not installed");
            None
        }
    }
}

/// A real memcached, started by the shared launcher (identity-checked, retried on a fresh port).
pub type RealMemcached = real_servers::RealMemcached;

/// memcached `bin` on a free loopback port with `extra` arguments (the caller found `bin` with
/// `require`).
pub fn start_memcached(bin: &str, extra: &[&str]) -> RealMemcached {
    RealMemcached::start_with(bin, extra).unwrap_or_else(|| panic!("{bin} missing"))
}

pub fn start_node(cfg: Config) -> NodeHandle {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    memcached_engine::spawn(l, cfg).expect("spawn node")
}

pub fn node_1_6_18() -> NodeHandle {
    start_node(Config {
        version: "1.6.18".into(),
        ..Config::default()
    })
}

const END_REQ: &[u8] = b"mg __differential_end__ O424242\r\n";
const END_REPLY: &[u8] = b"EN O424242\r\n";

/// Send `req` followed by a unique `mg` miss and read until its reply (or EOF / timeout).
pub fn text_exchange(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let mut data = req.to_vec();
    data.extend_from_slice(END_REQ);
    s.write_all(&data).expect("write");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => {
                out.extend_from_slice(b"<CLOSED>");
                break;
            }
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.ends_with(END_REPLY) {
                    break;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                out.extend_from_slice(b"<RESET>");
                break;
            }
        }
    }
    out
}

pub const NOOP_OPAQUE: u32 = 0xFEED_FACE;

pub fn bin_request(
    opcode: u8,
    key: &[u8],
    extras: &[u8],
    value: &[u8],
    opaque: u32,
    cas: u64,
) -> Vec<u8> {
    let mut v = vec![0x80, opcode];
    v.extend_from_slice(&(key.len() as u16).to_be_bytes());
    v.push(extras.len() as u8);
    v.push(0);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    v.extend_from_slice(&opaque.to_be_bytes());
    v.extend_from_slice(&cas.to_be_bytes());
    v.extend_from_slice(extras);
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

/// Send binary `req` followed by a NOOP and read packets until the NOOP's reply.
pub fn bin_exchange(addr: SocketAddr, req: &[u8]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let mut data = req.to_vec();
    data.extend_from_slice(&bin_request(0x0a, b"", b"", b"", NOOP_OPAQUE, 0));
    s.write_all(&data).expect("write");
    let mut raw = Vec::new();
    let mut packets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 65536];
    'outer: while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => {
                packets.push(b"<CLOSED>".to_vec());
                break;
            }
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => {
                packets.push(b"<RESET>".to_vec());
                break;
            }
        }
        while raw.len() >= 24 {
            let body = u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]) as usize;
            if raw.len() < 24 + body {
                break;
            }
            let p: Vec<u8> = raw.drain(..24 + body).collect();
            let is_end = p[1] == 0x0a && p[12..16] == NOOP_OPAQUE.to_be_bytes();
            packets.push(p);
            if is_end {
                break 'outer;
            }
        }
    }
    if !raw.is_empty() {
        packets.push(raw);
    }
    packets
}

/// Tiny deterministic PRNG for generated sequences.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}
