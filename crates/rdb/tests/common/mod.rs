//! Test helpers: start a real redis-server and talk RESP2 to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The server binary: `redis-server`, or `$RDB_TEST_REDIS_SERVER` (e.g. a valkey-server, for
/// manual cross-checks).
pub fn server_bin() -> String {
    std::env::var("RDB_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// Whether the default redis-server (7.0.x, whose exact outputs some tests check) is used.
pub fn is_default_server() -> bool {
    std::env::var_os("RDB_TEST_REDIS_SERVER").is_none()
}

/// Whether redis-server can be run. Panics when it can't and `CI` is set.
pub fn redis_available() -> bool {
    let ok = Command::new(server_bin())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("redis-server is not installed, and CI is set");
        }
        eprintln!("SKIPPED: redis-server is not installed");
    }
    ok
}

/// A real redis-server (or `$RDB_TEST_REDIS_SERVER`), started by the shared launcher: it counts
/// as up once the process answering is our child and PING says PONG (not -LOADING).
pub struct RedisServer {
    inner: real_servers::RealRedis,
    pub port: u16,
}

impl RedisServer {
    /// Starts redis-server with `--dir dir` plus `extra` args; None if redis-server is missing.
    pub fn start(dir: &Path, extra: &[&str]) -> Option<RedisServer> {
        if !redis_available() {
            return None;
        }
        let inner = real_servers::RealRedis::start_with(&server_bin(), Some(dir), extra)?;
        Some(RedisServer {
            port: inner.port,
            inner,
        })
    }

    pub fn client(&self) -> Client {
        Client::new(TcpStream::connect(self.inner.addr()).expect("connect"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Reply::Bulk(Some(b)) => b.clone(),
            other => panic!("expected bulk, got {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected int, got {other:?}"),
        }
    }
    pub fn array(&self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(a)) => a.clone(),
            other => panic!("expected array, got {other:?}"),
        }
    }
    pub fn ok(&self) {
        match self {
            Reply::Status(s) if s == "OK" => {}
            other => panic!("expected OK, got {other:?}"),
        }
    }
}

pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    pub fn new(s: TcpStream) -> Client {
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let w = s.try_clone().expect("clone");
        Client {
            r: BufReader::new(s),
            w,
        }
    }

    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send(args);
        self.read()
    }

    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out).expect("write");
    }

    pub fn read(&mut self) -> Reply {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).expect("read");
        assert!(line.ends_with(b"\r\n"), "bad line {line:?}");
        line.truncate(line.len() - 2);
        let rest = String::from_utf8_lossy(&line[1..]).to_string();
        match line[0] {
            b'+' => Reply::Status(rest),
            b'-' => Reply::Error(rest),
            b':' => Reply::Int(rest.parse().expect("int")),
            b'$' => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut buf).expect("read bulk");
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
            b'*' => {
                let n: i64 = rest.parse().expect("len");
                if n < 0 {
                    return Reply::Array(None);
                }
                Reply::Array(Some((0..n).map(|_| self.read()).collect()))
            }
            other => panic!("unexpected reply type {other}"),
        }
    }

    /// Sends many commands pipelined and returns all replies.
    pub fn pipeline<A: AsRef<[u8]>>(&mut self, cmds: &[Vec<A>]) -> Vec<Reply> {
        for c in cmds {
            self.send(c);
        }
        cmds.iter().map(|_| self.read()).collect()
    }
}
