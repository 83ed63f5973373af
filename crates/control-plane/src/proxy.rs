//! A replication group's primary and reader endpoints. On AWS they are DNS names
//! that follow the primary; here each is an address of its own that forwards
//! connections: the primary endpoint to the current primary, the reader endpoint
//! round-robin over the replicas (the primary when there are none). When the
//! primary changes, connections forwarded to the old one are closed — what a
//! client sees on AWS when a failover reboots the old primary.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub primary: Option<SocketAddr>,
    pub replicas: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Primary,
    Reader,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Primary => "primary",
            Kind::Reader => "reader",
        }
    }

    /// Where a new connection goes.
    fn pick(self, t: &Targets, rr: &AtomicUsize) -> Option<SocketAddr> {
        match self {
            Kind::Primary => t.primary,
            Kind::Reader if t.replicas.is_empty() => t.primary,
            Kind::Reader => {
                let i = rr.fetch_add(1, Ordering::Relaxed);
                t.replicas.get(i % t.replicas.len()).copied()
            }
        }
    }

    /// Whether a connection to `addr` may stay open under `t`.
    fn still_valid(self, t: &Targets, addr: SocketAddr) -> bool {
        match self {
            Kind::Primary => t.primary == Some(addr),
            Kind::Reader => {
                t.replicas.contains(&addr) || (t.replicas.is_empty() && t.primary == Some(addr))
            }
        }
    }
}

pub struct Proxy {
    targets: watch::Sender<Targets>,
    stop: watch::Sender<bool>,
}

impl Proxy {
    /// Start forwarding on `listener` (must be called inside the tokio runtime).
    pub fn spawn(
        listener: std::net::TcpListener,
        kind: Kind,
        targets: Targets,
        filter: Arc<redis_engine::sources::SourceFilter>,
    ) -> std::io::Result<Proxy> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let (targets_tx, targets_rx) = watch::channel(targets);
        let (stop_tx, stop_rx) = watch::channel(false);
        let rr = Arc::new(AtomicUsize::new(0));
        tokio::spawn(accept_loop(listener, kind, targets_rx, stop_rx, rr, filter));
        Ok(Proxy {
            targets: targets_tx,
            stop: stop_tx,
        })
    }

    pub fn set_targets(&self, t: Targets) {
        self.targets.send_if_modified(|cur| {
            if *cur == t {
                false
            } else {
                *cur = t;
                true
            }
        });
    }

    /// Stop listening and close every forwarded connection.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    targets: watch::Receiver<Targets>,
    mut stop: watch::Receiver<bool>,
    rr: Arc<AtomicUsize>,
    filter: Arc<redis_engine::sources::SourceFilter>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        let Ok((client, peer)) = accepted else {
            // Out of descriptors and the like: back off rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        if !filter.admits(peer) {
            tracing::info!(%peer, "connection refused: no security group rule admits it");
            continue;
        }
        let target = kind.pick(&targets.borrow(), &rr);
        let Some(target) = target else {
            continue; // no node to send it to: the client sees the connection close
        };
        tokio::spawn(forward(client, target, kind, targets.clone(), stop.clone()));
    }
}

async fn forward(
    mut client: TcpStream,
    target: SocketAddr,
    kind: Kind,
    mut targets: watch::Receiver<Targets>,
    mut stop: watch::Receiver<bool>,
) {
    // The client was admitted here; the node must not check it again.
    let Ok((mut upstream, _internal)) = redis_engine::sources::connect_internal(target).await
    else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let moved = async {
        loop {
            if targets.changed().await.is_err() {
                return;
            }
            if !kind.still_valid(&targets.borrow(), target) {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = moved => {}
        _ = stop.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn reader_spreads_and_falls_back_to_the_primary() {
        let rr = AtomicUsize::new(0);
        let t = Targets {
            primary: Some(a(1)),
            replicas: vec![a(2), a(3)],
        };
        let picks: Vec<_> = (0..4).map(|_| Kind::Reader.pick(&t, &rr)).collect();
        assert_eq!(picks, vec![Some(a(2)), Some(a(3)), Some(a(2)), Some(a(3))]);
        assert_eq!(Kind::Primary.pick(&t, &rr), Some(a(1)));
        let alone = Targets {
            primary: Some(a(1)),
            replicas: vec![],
        };
        assert_eq!(Kind::Reader.pick(&alone, &rr), Some(a(1)));
        assert!(Kind::Reader.still_valid(&alone, a(1)));
        assert!(!Kind::Primary.still_valid(&t, a(2)));
    }

    #[tokio::test]
    async fn forwards_and_closes_on_failover() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let backend = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let backend_addr = backend.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = backend.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let front = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let proxy = Proxy::spawn(
            l,
            Kind::Primary,
            Targets {
                primary: Some(backend_addr),
                replicas: vec![],
            },
            Default::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut c = TcpStream::connect(front)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        c.write_all(b"ping").await.unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf, b"ping");
        proxy.set_targets(Targets {
            primary: Some(a(9)),
            replicas: vec![],
        });
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), c.read(&mut buf))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or(0);
        assert_eq!(n, 0, "connection to the old primary is closed");
    }
}
