//! Test-only launcher for the real servers the differential and interop tests compare against:
//! Debian's `redis-server` (or any binary speaking its INFO, e.g. valkey-server) and `memcached`.
//!
//! Why this exists: tests run in parallel threads, and a port picked by binding port 0 and
//! dropping the listener can be taken by another test's in-process node (ours bind port 0 too)
//! before the spawned server binds it. The server then fails to bind and exits, while a plain
//! "can I connect?" check reaches the *other* test's node and declares the server up. So a server
//! counts as started only when the process answering on the port proves to be our child
//! (`INFO server` `process_id:` / `stats` `STAT pid`); otherwise the child is killed and the
//! launch retried on a fresh port.
//!
//! Semantics shared by every caller: a missing binary skips (None, with a message on stderr)
//! unless the `CI` environment variable is set, in which case it panics; the child is killed
//! and reaped on drop, and a temporary `--dir` the launcher created is removed.

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Launch attempts (each on a fresh port) before giving up.
const ATTEMPTS: usize = 10;
/// How long one attempt may take: generous because redis may be loading an RDB file (it answers
/// -LOADING meanwhile); a bind failure ends an attempt at once since the child exits.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const PROBE_IO_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(20);

/// Where `name` is installed: a path containing `/` as is, otherwise the first match on `PATH`,
/// then the usual Debian locations (test runners sometimes have a minimal `PATH`).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/bin", "/usr/local/bin", "/usr/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// The binary, or None after printing a skip message; panics instead when `CI` is set, because
/// CI installs every server and a silent skip there would hide a broken setup.
pub fn require(name: &str) -> Option<PathBuf> {
    let found = find_binary(name);
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{name} is not installed (required when CI is set)");
        }
        eprintln!("SKIP: {name} is not installed");
    }
    found
}

/// A port that was free a moment ago (it may be taken again before the server binds it, which is
/// what the identity check and the retries are for).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Why one launch attempt failed.
#[derive(Debug)]
enum StartError {
    /// The child exited: typically it could not bind the port.
    Exited(ExitStatus),
    /// Something else answered on the port (pid when it said which).
    Stranger(Option<u32>),
    /// Never became ready; the last reason it was not.
    Timeout(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Exited(s) => write!(f, "exited ({s}); port taken?"),
            StartError::Stranger(Some(pid)) => {
                write!(f, "port answered by process {pid}, not our child")
            }
            StartError::Stranger(None) => {
                write!(f, "port answered by something that is not our child")
            }
            StartError::Timeout(last) => {
                write!(f, "not ready after {ATTEMPT_TIMEOUT:?} (last: {last})")
            }
        }
    }
}

/// One look at whatever answers on the port.
#[derive(Debug, PartialEq)]
enum Probe {
    Ready,
    /// Not (yet) answering usefully: refused, reset, timeout, -LOADING. Keep waiting.
    NotReady(String),
    /// A well-formed answer from a process that is not the child.
    Stranger(Option<u32>),
}

/// Runs `attempt` on ports from `next_port` until one succeeds; all failures otherwise.
fn launch<T>(
    mut next_port: impl FnMut() -> std::io::Result<u16>,
    mut attempt: impl FnMut(u16) -> Result<T, StartError>,
) -> Result<T, Vec<String>> {
    let mut failures = Vec::new();
    for _ in 0..ATTEMPTS {
        let port = match next_port() {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("no free port: {e}"));
                continue;
            }
        };
        match attempt(port) {
            Ok(server) => return Ok(server),
            Err(e) => failures.push(format!("port {port}: {e}")),
        }
    }
    Err(failures)
}

/// Waits until `probe` says ready, the child exits, or a stranger answers.
fn wait_ready(child: &mut Child, mut probe: impl FnMut() -> Probe) -> Result<(), StartError> {
    let deadline = Instant::now() + ATTEMPT_TIMEOUT;
    loop {
        // Checked first: once the child is gone, whatever answers is someone else.
        if let Ok(Some(status)) = child.try_wait() {
            return Err(StartError::Exited(status));
        }
        match probe() {
            Probe::Ready => return Ok(()),
            Probe::Stranger(pid) => return Err(StartError::Stranger(pid)),
            Probe::NotReady(why) => {
                if Instant::now() >= deadline {
                    return Err(StartError::Timeout(why));
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

fn probe_connect(port: u16) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let s = TcpStream::connect_timeout(&addr, PROBE_CONNECT_TIMEOUT)?;
    s.set_read_timeout(Some(PROBE_IO_TIMEOUT))?;
    s.set_write_timeout(Some(PROBE_IO_TIMEOUT))?;
    Ok(s)
}

/// One RESP2 reply, as far as the probe needs it.
enum Reply {
    Bulk(Vec<u8>),
    Status(String),
    Error(String),
    /// Anything else (not RESP, or a type the probe has no use for).
    Other,
}

fn read_reply(r: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed mid-reply",
        ));
    }
    let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
    let (kind, rest) = text.split_at(text.chars().next().map_or(0, char::len_utf8));
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        "$" => match rest.parse::<usize>() {
            // INFO replies are a few KB; anything huge is not a redis INFO.
            Ok(n) if n <= 1 << 20 => {
                let mut body = vec![0u8; n + 2];
                r.read_exact(&mut body)?;
                body.truncate(n);
                Reply::Bulk(body)
            }
            _ => Reply::Other,
        },
        _ => Reply::Other,
    })
}

/// Is the process answering on `port` the redis-server with pid `pid`, and done loading?
fn probe_redis(port: u16, pid: u32) -> Probe {
    let s = match probe_connect(port) {
        Ok(s) => s,
        Err(e) => return Probe::NotReady(format!("connect: {e}")),
    };
    let mut w = match s.try_clone() {
        Ok(w) => w,
        Err(e) => return Probe::NotReady(format!("clone: {e}")),
    };
    // INFO is served while loading, PING answers -LOADING until the data set is in: both are
    // needed (identity, then readiness).
    if let Err(e) = w.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n*1\r\n$4\r\nPING\r\n") {
        return Probe::NotReady(format!("write: {e}"));
    }
    let mut r = BufReader::new(s);
    let info = match read_reply(&mut r) {
        Ok(Reply::Bulk(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(Reply::Error(e)) => return Probe::NotReady(format!("INFO: -{e}")),
        // A well-formed answer that no redis gives to INFO: not our child.
        Ok(Reply::Status(_) | Reply::Other) => return Probe::Stranger(None),
        Err(e) => return Probe::NotReady(format!("read: {e}")),
    };
    let theirs = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse::<u32>().ok());
    if theirs != Some(pid) {
        return Probe::Stranger(theirs);
    }
    match read_reply(&mut r) {
        Ok(Reply::Status(s)) if s == "PONG" => Probe::Ready,
        Ok(Reply::Error(e)) => Probe::NotReady(format!("PING: -{e}")),
        Ok(_) => Probe::NotReady("PING: unexpected reply".into()),
        Err(e) => Probe::NotReady(format!("read: {e}")),
    }
}

/// Is the process answering on `port` the memcached with pid `pid`?
fn probe_memcached(port: u16, pid: u32) -> Probe {
    let mut s = match probe_connect(port) {
        Ok(s) => s,
        Err(e) => return Probe::NotReady(format!("connect: {e}")),
    };
    if let Err(e) = s.write_all(b"stats\r\n") {
        return Probe::NotReady(format!("write: {e}"));
    }
    let mut theirs = None;
    // `stats` is ~80 lines; the bound keeps a chatty stranger from holding the probe.
    for line in BufReader::new(s).lines().take(1000) {
        match line {
            Ok(l) if l.trim_end() == "END" => {
                return if theirs == Some(pid) {
                    Probe::Ready
                } else {
                    Probe::Stranger(theirs)
                };
            }
            Ok(l) => {
                if let Some(p) = l.strip_prefix("STAT pid ") {
                    theirs = p.trim().parse::<u32>().ok();
                }
            }
            Err(e) => return Probe::NotReady(format!("read: {e}")),
        }
    }
    Probe::NotReady("stats: no END".into())
}

static DIR_SEQ: AtomicU64 = AtomicU64::new(0);

/// A running redis-server (or compatible) on 127.0.0.1, proven to be our child.
pub struct RealRedis {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    /// Whether `dir` was created here (and is removed on drop).
    owns_dir: bool,
}

impl RealRedis {
    /// `redis-server --port <free> --bind 127.0.0.1 --save "" --appendonly no --dir <fresh temp
    /// dir>` plus `extra` (later arguments win, so `extra` can override any of these). None when
    /// redis-server is not installed (panics instead under `CI`).
    pub fn start(extra: &[&str]) -> Option<RealRedis> {
        RealRedis::start_with("redis-server", None, extra)
    }

    /// Like [`RealRedis::start`] with another binary (name on `PATH` or a path) and, when `dir`
    /// is given, that `--dir` (left in place on drop) instead of a fresh temp dir.
    pub fn start_with(bin: &str, dir: Option<&Path>, extra: &[&str]) -> Option<RealRedis> {
        let bin = require(bin)?;
        match launch(free_port, |port| {
            RealRedis::start_on(&bin, dir, port, extra)
        }) {
            Ok(server) => Some(server),
            Err(failures) => panic!(
                "{} did not start after {ATTEMPTS} attempts: {}",
                bin.display(),
                failures.join("; ")
            ),
        }
    }

    /// One attempt on `port`.
    fn start_on(
        bin: &Path,
        dir: Option<&Path>,
        port: u16,
        extra: &[&str],
    ) -> Result<RealRedis, StartError> {
        let (dir, owns_dir) = match dir {
            Some(d) => (d.to_path_buf(), false),
            None => {
                // A fresh dir per attempt: a failed attempt may have left files (nodes.conf).
                let d = std::env::temp_dir().join(format!(
                    "real-redis-{}-{}-{port}",
                    std::process::id(),
                    DIR_SEQ.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&d)
                    .unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
                (d, true)
            }
        };
        let spawned = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                if owns_dir {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                panic!("spawn {}: {e}", bin.display());
            }
        };
        // Built before waiting so that every failure path kills, reaps and cleans up via Drop.
        let mut server = RealRedis {
            child,
            port,
            dir,
            owns_dir,
        };
        let pid = server.child.id();
        wait_ready(&mut server.child, || probe_redis(port, pid))?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's `--dir`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running memcached on 127.0.0.1 (TCP only), proven to be our child.
pub struct RealMemcached {
    child: Child,
    pub port: u16,
}

impl RealMemcached {
    /// `memcached -p <free> -U 0 -l 127.0.0.1 -u root` plus `extra`. None when memcached is not
    /// installed (panics instead under `CI`).
    pub fn start(extra: &[&str]) -> Option<RealMemcached> {
        RealMemcached::start_with("memcached", extra)
    }

    /// Like [`RealMemcached::start`] with another binary (name on `PATH` or a path).
    pub fn start_with(bin: &str, extra: &[&str]) -> Option<RealMemcached> {
        let bin = require(bin)?;
        match launch(free_port, |port| RealMemcached::start_on(&bin, port, extra)) {
            Ok(server) => Some(server),
            Err(failures) => panic!(
                "{} did not start after {ATTEMPTS} attempts: {}",
                bin.display(),
                failures.join("; ")
            ),
        }
    }

    fn start_on(bin: &Path, port: u16, extra: &[&str]) -> Result<RealMemcached, StartError> {
        // `-u root` only matters when running as root (memcached refuses to without it).
        let child = Command::new(bin)
            .args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1"])
            .args(["-u", "root"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut server = RealMemcached { child, port };
        let pid = server.child.id();
        wait_ready(&mut server.child, || probe_memcached(port, pid))?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RealMemcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// A listener on a free port that answers every connection with `answer` (nothing: accepts
    /// and drops at once) until the guard is dropped.
    struct Squatter {
        port: u16,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Squatter {
        fn new(answer: &'static [u8]) -> Squatter {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            let port = l.local_addr().expect("addr").port();
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let thread = std::thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.write_all(answer);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            Squatter {
                port,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Squatter {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    const FAKE_REDIS: &[u8] = b"$36\r\n# Server\r\nprocess_id:1\r\ntcp_port:1\r\n\r\n+PONG\r\n";

    #[test]
    fn redis_probe_checks_the_pid() {
        let fake = Squatter::new(FAKE_REDIS);
        assert_eq!(probe_redis(fake.port, 4242), Probe::Stranger(Some(1)));
        // The same answer passes for the process it names: the pid is what decides.
        assert_eq!(probe_redis(fake.port, 1), Probe::Ready);
    }

    #[test]
    fn memcached_probe_checks_the_pid() {
        let fake = Squatter::new(b"STAT pid 1\r\nSTAT uptime 5\r\nEND\r\n");
        assert_eq!(probe_memcached(fake.port, 4242), Probe::Stranger(Some(1)));
        assert_eq!(probe_memcached(fake.port, 1), Probe::Ready);
    }

    #[test]
    fn resets_are_not_ready_not_up() {
        let dropper = Squatter::new(b"");
        assert!(matches!(probe_redis(dropper.port, 1), Probe::NotReady(_)));
        assert!(matches!(
            probe_memcached(dropper.port, 1),
            Probe::NotReady(_)
        ));
        // Nobody listening at all.
        let port = free_port().unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(probe_redis(port, 1), Probe::NotReady(_)));
    }

    /// The flake this crate fixes: the port is held by someone else that accepts connections.
    /// The old "connect succeeded" check would have called that up; here the attempt fails.
    #[test]
    fn redis_attempt_on_a_held_port_fails() {
        let Some(bin) = require("redis-server") else {
            return;
        };
        for answer in [b"" as &[u8], FAKE_REDIS] {
            let held = Squatter::new(answer);
            let r = RealRedis::start_on(&bin, None, held.port, &[]);
            assert!(
                matches!(r, Err(StartError::Exited(_) | StartError::Stranger(_))),
                "{:?}",
                r.as_ref().map(|s| s.port)
            );
        }
    }

    #[test]
    fn memcached_attempt_on_a_held_port_fails() {
        let Some(bin) = require("memcached") else {
            return;
        };
        let held = Squatter::new(b"");
        let r = RealMemcached::start_on(&bin, held.port, &[]);
        assert!(matches!(
            r,
            Err(StartError::Exited(_) | StartError::Stranger(_))
        ));
    }

    /// The retry: the first port offered is held, the launch moves on to a fresh one.
    #[test]
    fn redis_launch_retries_on_a_fresh_port() {
        let Some(bin) = require("redis-server") else {
            return;
        };
        let held = Squatter::new(b"");
        let mut ports = vec![held.port];
        let mut tried = Vec::new();
        let server = launch(
            || ports.pop().map_or_else(free_port, Ok),
            |port| {
                tried.push(port);
                RealRedis::start_on(&bin, None, port, &[])
            },
        )
        .unwrap_or_else(|f| panic!("{f:?}"));
        assert_eq!(tried.len(), 2, "{tried:?}");
        assert_eq!(tried[0], held.port);
        assert_eq!(server.port, tried[1]);
        assert_eq!(probe_redis(server.port, server.pid()), Probe::Ready);
    }

    #[test]
    fn redis_start_and_drop() {
        let Some(server) = RealRedis::start(&["--enable-debug-command", "yes"]) else {
            return;
        };
        let dir = server.dir().to_path_buf();
        assert!(dir.is_dir());
        assert_eq!(probe_redis(server.port, server.pid()), Probe::Ready);
        drop(server);
        assert!(!dir.exists(), "temp dir left behind");
        // A caller's dir is left alone.
        let mine = std::env::temp_dir().join(format!("real-servers-test-{}", std::process::id()));
        std::fs::create_dir_all(&mine).expect("mkdir");
        let server = RealRedis::start_with("redis-server", Some(&mine), &[])
            .expect("installed, as start() just showed");
        assert_eq!(server.dir(), mine);
        drop(server);
        assert!(mine.is_dir());
        let _ = std::fs::remove_dir_all(&mine);
    }

    #[test]
    fn memcached_start() {
        let Some(server) = RealMemcached::start(&["-t", "1"]) else {
            return;
        };
        assert_eq!(probe_memcached(server.port, server.pid()), Probe::Ready);
    }
}
