//! The TLS front against a tiny echo backend, with a rustls client that trusts only `ca.pem`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use node_tls::rustls::{self, ClientConfig, RootCertStore};
use node_tls::{Authority, Mode, TlsFront};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(10);

/// A backend that echoes everything it reads.
async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

struct Setup {
    _dir: tempfile::TempDir,
    ca: Authority,
    front: TlsFront,
    addr: SocketAddr,
}

async fn setup(mode: Mode) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (ca, created) = Authority::load_or_create(dir.path()).unwrap();
    assert!(created);
    let backend = echo_backend().await;
    let config = ca.server_config(&["127.0.0.1".to_string()]).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front = TlsFront::spawn(listener, backend, config, mode).unwrap();
    let addr = front.local_addr();
    Setup {
        _dir: dir,
        ca,
        front,
        addr,
    }
}

fn connector(ca_pem: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_client(
    ca_pem: &str,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    // Connect by IP: the certificate must carry 127.0.0.1 as an IP SAN.
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(WAIT, connector(ca_pem).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// Writes `msg` and expects it echoed back.
async fn echoes<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, msg: &[u8]) -> bool {
    if s.write_all(msg).await.is_err() || s.flush().await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; msg.len()];
    matches!(
        tokio::time::timeout(WAIT, s.read_exact(&mut buf)).await,
        Ok(Ok(_))
    ) && buf == msg
}

/// Reads until the peer closes (or errors); panics if it stays open past `WAIT`. Returns what
/// was read.
async fn closed_by_peer<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Err(_) => panic!("connection still open; read so far: {got:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A plaintext client: sends a Redis command, reports whether it came back.
async fn plaintext_echoes(addr: SocketAddr) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    echoes(&mut s, b"PING\r\n").await
}

#[tokio::test]
async fn required_mode_serves_tls_clients() {
    let s = setup(Mode::Required).await;
    let mut c = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut c, b"hello through TLS").await);
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    assert!(echoes(&mut c, &big).await, "1 MB round trip");
    assert_eq!(s.front.connections(), 1);
}

#[tokio::test]
async fn required_mode_refuses_plaintext() {
    let s = setup(Mode::Required).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"PING\r\n").await.unwrap();
    let got = closed_by_peer(&mut c).await;
    assert!(
        !got.windows(4).any(|w| w == b"PING"),
        "plaintext echoed: {got:?}"
    );
    // The front keeps serving.
    let mut t = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut t, b"still here").await);
}

#[tokio::test]
async fn a_client_trusting_another_ca_fails() {
    let s = setup(Mode::Required).await;
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = Authority::load_or_create(other.path()).unwrap();
    let err = tls_client(other_ca.ca_pem(), s.addr).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn preferred_mode_serves_both() {
    let s = setup(Mode::Preferred).await;
    assert!(plaintext_echoes(s.addr).await);
    let mut c = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut c, b"tls in preferred").await);
    // A plaintext request that starts with any byte but 0x16 is forwarded verbatim.
    let mut p = TcpStream::connect(s.addr).await.unwrap();
    assert!(echoes(&mut p, b"\x00\x01binary").await);
}

#[tokio::test]
async fn set_mode_switches_live() {
    let s = setup(Mode::Required).await;
    assert!(!plaintext_echoes(s.addr).await);

    s.front.set_mode(Mode::Preferred);
    assert_eq!(s.front.mode(), Mode::Preferred);
    assert!(plaintext_echoes(s.addr).await);
    let mut plain = TcpStream::connect(s.addr).await.unwrap();
    assert!(echoes(&mut plain, b"PING\r\n").await);
    let mut tls = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut tls, b"tls").await);

    // Back to required: the open plaintext connection is closed, the TLS one stays, new
    // plaintext clients are refused.
    s.front.set_mode(Mode::Required);
    closed_by_peer(&mut plain).await;
    assert!(echoes(&mut tls, b"tls still works").await);
    assert!(!plaintext_echoes(s.addr).await);
}

#[tokio::test]
async fn stop_closes_every_connection() {
    let s = setup(Mode::Preferred).await;
    let mut tls = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    let mut plain = TcpStream::connect(s.addr).await.unwrap();
    assert!(echoes(&mut tls, b"a").await);
    assert!(echoes(&mut plain, b"b").await);
    // One that connected but has not sent anything yet.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.front.connections(), 3);

    s.front.stop();
    closed_by_peer(&mut tls).await;
    closed_by_peer(&mut plain).await;
    closed_by_peer(&mut idle).await;
    tokio::time::timeout(WAIT, s.front.closed()).await.unwrap();
    assert_eq!(s.front.connections(), 0);
    // The listener is gone: the address can be bound again.
    std::net::TcpListener::bind(s.addr).unwrap();
}

#[tokio::test]
async fn dropping_the_front_stops_it() {
    let s = setup(Mode::Required).await;
    let mut tls = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut tls, b"x").await);
    drop(s.front);
    closed_by_peer(&mut tls).await;
}

#[tokio::test]
async fn garbage_and_bad_handshakes_close_only_that_connection() {
    let s = setup(Mode::Preferred).await;
    // Looks like a TLS record, isn't one.
    let mut g = TcpStream::connect(s.addr).await.unwrap();
    g.write_all(b"\x16\x03\x01\x00\x05garbagegarbage")
        .await
        .unwrap();
    closed_by_peer(&mut g).await;
    // A truncated ClientHello followed by EOF.
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(b"\x16\x03\x01\x02\x00\x01").await.unwrap();
    t.shutdown().await.unwrap();
    closed_by_peer(&mut t).await;
    // Connect and close at once.
    drop(TcpStream::connect(s.addr).await.unwrap());

    let mut c = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut c, b"fine").await);
    assert!(plaintext_echoes(s.addr).await);
}

#[tokio::test]
async fn a_silent_client_times_out_alone() {
    let s = setup(Mode::Required).await;
    let started = std::time::Instant::now();
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    // Meanwhile others are served.
    let mut c = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut c, b"not blocked").await);
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buf))
        .await
        .expect("the silent client was never closed");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "closed after {waited:?}"
    );
    assert!(echoes(&mut c, b"still fine").await);
}

#[tokio::test]
async fn set_backend_applies_to_new_connections() {
    let s = setup(Mode::Required).await;
    let mut old = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut old, b"old").await);

    // Nothing listens there: the client's connection is closed after the handshake.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    s.front.set_backend(dead);
    let mut c = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    let _ = c.write_all(b"lost").await;
    assert!(!closed_by_peer(&mut c).await.starts_with(b"lost"));
    assert!(echoes(&mut old, b"old connection keeps its backend").await);

    let other = echo_backend().await;
    s.front.set_backend(other);
    let mut c = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    assert!(echoes(&mut c, b"new backend").await);
}

#[tokio::test]
async fn half_close_is_forwarded() {
    let s = setup(Mode::Required).await;
    let mut c = tls_client(s.ca.ca_pem(), s.addr).await.unwrap();
    c.write_all(b"last words").await.unwrap();
    // close_notify + FIN: the backend sees EOF after the data, echoes, closes.
    c.shutdown().await.unwrap();
    let got = closed_by_peer(&mut c).await;
    assert_eq!(got, b"last words");
}
