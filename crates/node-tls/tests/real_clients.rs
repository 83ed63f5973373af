//! Real clients through the TLS front, with a real `redis-server` behind it: `redis-cli --tls
//! --cacert ca.pem`, redis-py `ssl=True`, `openssl s_client`; plaintext clients refused in
//! required mode. Skipped (with a message) when redis-server is missing, except under CI.
//!
//! `bench_redis_benchmark` (ignored; run with `--release -- --ignored --nocapture`) measures
//! `redis-benchmark -t set,get -n 100000 -c 50` direct, through the front in plaintext and TLS,
//! and against redis-server's own TLS.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use node_tls::{Authority, Mode, TlsFront};

const REDIS_SERVER: &str = "/usr/bin/redis-server";

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether the real-client tests can run; panics under CI when they should but can't.
fn redis_available() -> bool {
    let ok = Path::new(REDIS_SERVER).exists() && have("redis-cli");
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{REDIS_SERVER} / redis-cli missing under CI (apt-get install redis-server redis-tools)");
        }
        eprintln!("SKIP: {REDIS_SERVER} or redis-cli not installed");
    }
    ok
}

type RedisServer = real_servers::RealRedis;

/// Starts redis-server on a free loopback port (extra arguments appended); callers checked
/// `redis_available()` first.
fn start_redis(extra: &[&str]) -> RedisServer {
    let mut args = vec!["--daemonize", "no"];
    args.extend_from_slice(extra);
    RedisServer::start_with(REDIS_SERVER, None, &args)
        .unwrap_or_else(|| panic!("{REDIS_SERVER} missing"))
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    ca_pem: PathBuf,
    front: TlsFront,
    port: u16,
    _redis: RedisServer,
}

fn fixture(mode: Mode) -> Fixture {
    let redis = start_redis(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ca, _) = Authority::load_or_create(dir.path()).unwrap();
    let config = ca
        .server_config(&["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend: SocketAddr = ([127, 0, 0, 1], redis.port).into();
    let front = {
        let _enter = rt.enter();
        TlsFront::spawn(listener, backend, config, mode).unwrap()
    };
    let port = front.local_addr().port();
    Fixture {
        rt,
        ca_pem: ca.ca_pem_path().to_path_buf(),
        _dir: dir,
        front,
        port,
        _redis: redis,
    }
}

/// Runs a command with a time limit (coreutils `timeout`), so a hanging client fails the test.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("30")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn redis_cli(f: &Fixture, tls: bool, cmd: &[&str]) -> Output {
    let port = f.port.to_string();
    let ca = f.ca_pem.to_str().unwrap();
    let mut args = vec!["-h", "127.0.0.1", "-p", &port];
    if tls {
        args.extend(["--tls", "--cacert", ca]);
    }
    args.extend(cmd);
    run("redis-cli", &args)
}

#[test]
fn redis_cli_tls_through_the_front() {
    if !redis_available() {
        return;
    }
    let f = fixture(Mode::Required);
    let o = redis_cli(&f, true, &["PING"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "PONG",
        "{}",
        text(&o)
    );
    let o = redis_cli(&f, true, &["SET", "greeting", "hello over tls"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "OK",
        "{}",
        text(&o)
    );
    let o = redis_cli(&f, true, &["GET", "greeting"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hello over tls",
        "{}",
        text(&o)
    );

    // Without --tls: refused, as on AWS.
    let o = redis_cli(&f, false, &["PING"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("PONG"),
        "{}",
        text(&o)
    );
    assert!(!o.status.success() || o.stdout.is_empty(), "{}", text(&o));

    // --tls without our CA: the certificate does not verify against the system roots.
    let port = f.port.to_string();
    let o = run(
        "redis-cli",
        &["-h", "127.0.0.1", "-p", &port, "--tls", "PING"],
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("PONG"),
        "{}",
        text(&o)
    );

    // Preferred: both.
    f.front.set_mode(Mode::Preferred);
    let o = redis_cli(&f, false, &["PING"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "PONG",
        "{}",
        text(&o)
    );
    let o = redis_cli(&f, true, &["PING"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "PONG",
        "{}",
        text(&o)
    );
    drop(f.front);
    drop(f.rt);
}

#[test]
fn openssl_s_client_verifies_the_chain() {
    if !redis_available() {
        return;
    }
    if !have("openssl") {
        eprintln!("SKIP: openssl not installed");
        return;
    }
    let f = fixture(Mode::Required);
    let connect = format!("127.0.0.1:{}", f.port);
    let o = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            f.ca_pem.to_str().unwrap(),
            "-verify_ip",
            "127.0.0.1",
            "-verify_return_error",
            "-brief",
        ],
    );
    let all = text(&o);
    assert!(all.contains("Verification: OK"), "{all}");
    assert!(all.contains("TLSv1.3"), "{all}");
}

#[test]
fn redis_py_ssl_through_the_front() {
    if !redis_available() {
        return;
    }
    let importable = Command::new("python3")
        .args(["-c", "import redis"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !importable {
        eprintln!("SKIP: python3 with redis-py not available");
        return;
    }
    let f = fixture(Mode::Required);
    let script = r#"
import sys, time, redis
t0 = time.time()
port, ca = int(sys.argv[1]), sys.argv[2]
r = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=ca,
                ssl_check_hostname=True, socket_timeout=5)
assert r.ping() is True
r.set("py", "over tls")
assert r.get("py") == b"over tls"
print("TLS OK %.2fs" % (time.time() - t0))
t0 = time.time()
from redis.retry import Retry
from redis.backoff import NoBackoff
plain = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
try:
    plain.ping()
    print("PLAINTEXT ACCEPTED")
except redis.exceptions.ConnectionError as e:
    print("PLAINTEXT REFUSED %.2fs" % (time.time() - t0), type(e).__name__, e)
"#;
    let port = f.port.to_string();
    let o = run(
        "python3",
        &["-c", script, &port, f.ca_pem.to_str().unwrap()],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    println!("{out}");
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.contains("TLS OK"), "{}", text(&o));
    assert!(out.contains("PLAINTEXT REFUSED"), "{}", text(&o));
}

/// Runs redis-benchmark and returns its `-q` lines.
fn benchmark(port: u16, tls: &[&str]) -> String {
    let port = port.to_string();
    let mut args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "set,get",
        "-n",
        "100000",
        "-c",
        "50",
        "-q",
    ];
    args.extend(tls);
    let o = Command::new("redis-benchmark")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // -q prints progress with carriage returns; keep the final lines.
    String::from_utf8_lossy(&o.stdout)
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .map(|l| l.trim().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "benchmark: cargo test -p node-tls --release --test real_clients -- --ignored --nocapture"]
fn bench_redis_benchmark() {
    if !redis_available() || !have("redis-benchmark") {
        return;
    }
    let f = fixture(Mode::Preferred);
    let ca = f.ca_pem.to_str().unwrap().to_string();
    println!("direct (no front):\n{}", benchmark(f._redis.port, &[]));
    println!("front, plaintext (preferred):\n{}", benchmark(f.port, &[]));
    println!(
        "front, TLS (rustls/ring):\n{}",
        benchmark(f.port, &["--tls", "--cacert", &ca])
    );

    // redis-server's own TLS (OpenSSL), when Debian's build has it.
    if have("openssl") {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let o = run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let tls_port = real_servers::free_port()
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        let native = start_redis(&[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
            "--tls-ca-cert-file",
            cert.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
        ]);
        let port: u16 = tls_port.parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server TLS port not up");
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "redis-server native TLS (OpenSSL):\n{}",
            benchmark(port, &["--tls", "--cacert", cert.to_str().unwrap()])
        );
        drop(native);
    }
}
