//! Spawning the binary and talking to it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub loopback_base: String,
    extra: Vec<String>,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with_args(&[]).await
    }

    pub async fn start_with_args(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        // A distinct loopback range per server, so tests running side by side
        // (and restarts) never compete for node endpoints.
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let base = format!("127.{}.{}.1", 20 + (pid % 200), 1 + (n % 250));
        let mut s = Server {
            child: None,
            port: 0,
            data_dir: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
            loopback_base: base,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn().await;
        s
    }

    /// (Re)start the process on a fresh API port with the same data directory.
    pub async fn spawn(&mut self) {
        self.port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_elastilite"));
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--loopback-base")
            .arg(&self.loopback_base)
            .args(&self.extra)
            .env("ELASTILITE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        self.child = Some(cmd.spawn().expect("spawn elastilite"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/_elastilite/health", self.endpoint());
        loop {
            if let Ok(r) = reqwest::get(&url).await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "elastilite did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGTERM and wait: a clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A raw query-protocol call; returns (status, body).
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> (u16, String) {
        self.call_in("us-east-1", action, params).await
    }

    pub async fn call_in(
        &self,
        region: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> (u16, String) {
        let mut form: Vec<(&str, &str)> = vec![("Action", action), ("Version", "2015-02-02")];
        form.extend_from_slice(params);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20261126/{region}/elasticache/aws4_request, SignedHeaders=host, Signature=0"
        );
        let r = reqwest::Client::new()
            .post(self.endpoint())
            .header("Authorization", auth)
            .form(&form)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub fn sdk(&self) -> aws_sdk_elasticache::Client {
        sdk_client(&self.endpoint(), "us-east-1")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn sdk_client(endpoint: &str, region: &str) -> aws_sdk_elasticache::Client {
    use aws_sdk_elasticache::config::{Credentials, Region};
    let http = aws_smithy_http_client::Builder::new().build_http();
    let conf = aws_sdk_elasticache::Config::builder()
        .http_client(http)
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .build();
    aws_sdk_elasticache::Client::from_conf(conf)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The text between `<tag>` and `</tag>` (first occurrence).
pub fn xml_value<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(&body[start..end])
}

/// Send raw bytes to a node and read until `done(reply)` or a timeout.
pub fn node_roundtrip(addr: &str, request: &[u8], done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&out) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

pub fn redis_ping(addr: &str) -> bool {
    let r = node_roundtrip(addr, b"*1\r\n$4\r\nPING\r\n", |b| b.ends_with(b"\r\n"));
    r == b"+PONG\r\n"
}

pub fn memcached_version(addr: &str) -> bool {
    let r = node_roundtrip(addr, b"version\r\n", |b| b.ends_with(b"\r\n"));
    r.starts_with(b"VERSION ")
}

/// Poll DescribeCacheClusters until the cluster has `status`.
pub async fn wait_status(server: &Server, id: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = server
            .call("DescribeCacheClusters", &[("CacheClusterId", id)])
            .await;
        if xml_value(&body, "CacheClusterStatus") == Some(status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never reached {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll until DescribeCacheClusters says CacheClusterNotFound.
pub async fn wait_gone(server: &Server, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server
            .call("DescribeCacheClusters", &[("CacheClusterId", id)])
            .await;
        if status == 404 && body.contains("<Code>CacheClusterNotFound</Code>") {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never went away: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `Address:Port` of every node of a cluster.
pub async fn node_endpoints(server: &Server, id: &str) -> Vec<String> {
    let (_, body) = server
        .call(
            "DescribeCacheClusters",
            &[("CacheClusterId", id), ("ShowCacheNodeInfo", "true")],
        )
        .await;
    let mut out = Vec::new();
    let mut rest = body.as_str();
    while let Some(i) = rest.find("<CacheNode>") {
        rest = &rest[i..];
        let end = rest.find("</CacheNode>").unwrap_or(rest.len());
        let node = &rest[..end];
        let addr = xml_value(node, "Address").expect("Address");
        let port = xml_value(node, "Port").expect("Port");
        out.push(format!("{addr}:{port}"));
        rest = &rest[end..];
    }
    out
}
