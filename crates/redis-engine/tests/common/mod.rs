//! Shared helpers for the integration tests: a raw RESP client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A parsed reply (RESP2/RESP3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RVal {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(char, Option<Vec<RVal>>),
    Null,
    Other(char, Vec<u8>),
}

pub struct Conn {
    pub s: TcpStream,
    buf: Vec<u8>,
}

pub fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

impl Conn {
    pub fn connect(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.set_nodelay(true).ok();
        Conn { s, buf: Vec::new() }
    }

    pub fn send_raw(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("write");
    }

    pub fn send(&mut self, args: &[Vec<u8>]) {
        self.send_raw(&encode(args));
    }

    /// Read one complete reply; returns (raw bytes, parsed).
    pub fn read_reply(&mut self) -> Option<(Vec<u8>, RVal)> {
        loop {
            if let Some((n, v)) = parse(&self.buf) {
                let raw = self.buf[..n].to_vec();
                self.buf.drain(..n);
                return Some((raw, v));
            }
            let mut tmp = [0u8; 65536];
            match self.s.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    pub fn cmd(&mut self, args: &[&str]) -> (Vec<u8>, RVal) {
        let a: Vec<Vec<u8>> = args.iter().map(|s| s.as_bytes().to_vec()).collect();
        self.send(&a);
        self.read_reply().expect("reply")
    }
}

fn line(b: &[u8]) -> Option<(usize, &[u8])> {
    let p = b.windows(2).position(|w| w == b"\r\n")?;
    Some((p + 2, &b[1..p]))
}

pub fn parse(b: &[u8]) -> Option<(usize, RVal)> {
    let t = *b.first()? as char;
    let (n, l) = line(b)?;
    let num = || {
        std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
    };
    match t {
        '+' => Some((n, RVal::Simple(l.to_vec()))),
        '-' => Some((n, RVal::Error(l.to_vec()))),
        ':' => Some((n, RVal::Int(num()?))),
        '_' => Some((n, RVal::Null)),
        ',' | '#' | '(' => Some((n, RVal::Other(t, l.to_vec()))),
        '$' | '=' | '!' => {
            let len = num()?;
            if len < 0 {
                return Some((n, RVal::Bulk(None)));
            }
            let end = n + len as usize;
            if b.len() < end + 2 {
                return None;
            }
            Some((end + 2, RVal::Bulk(Some(b[n..end].to_vec()))))
        }
        '*' | '~' | '>' | '%' | '|' => {
            let len = num()?;
            if len < 0 {
                return Some((n, RVal::Array(t, None)));
            }
            let count = if t == '%' || t == '|' { len * 2 } else { len };
            let mut pos = n;
            let mut items = Vec::new();
            for _ in 0..count {
                let (m, v) = parse(&b[pos..])?;
                pos += m;
                items.push(v);
            }
            if t == '|' {
                // Attribute: skip it and parse the real reply.
                let (m, v) = parse(&b[pos..])?;
                return Some((pos + m, v));
            }
            Some((pos, RVal::Array(t, Some(items))))
        }
        _ => Some((b.len(), RVal::Other('?', b.to_vec()))),
    }
}

/// A port free a moment ago. Not for real servers (another test may take it before they bind):
/// use `start_redis` / `real_servers` for those.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn start_node(cfg: redis_engine::Config) -> (redis_engine::NodeHandle, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let h = redis_engine::spawn(l, cfg).expect("spawn");
    let p = h.local_addr().port();
    (h, p)
}

/// Debian's redis-server, started by the shared launcher (identity-checked, retried).
pub type RedisServer = real_servers::RealRedis;

/// Start Debian's redis-server, or None (skip) when missing; panics under CI.
pub fn start_redis() -> Option<RedisServer> {
    RedisServer::start(&[])
}
