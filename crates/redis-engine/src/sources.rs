//! Security groups, simulated: which client source addresses a node's endpoint
//! admits. A [`SourceFilter`] holds CIDR rules (none = admit everything); the
//! listener closes connections no rule admits.
//!
//! elastilite's own connections to its nodes (replication links, snapshots,
//! group endpoints forwarding clients they already admitted) are exempt: they
//! bind their source address before connecting ([`connect_internal`]), which is
//! recorded here until the connection is dropped.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, RwLock};

/// One ingress rule: an address prefix (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parse `a.b.c.d/n`, `addr` (a single host) or an IPv6 form.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The rules of one endpoint; shared with the listener, changed live.
#[derive(Debug, Default)]
pub struct SourceFilter {
    rules: RwLock<Option<Vec<Cidr>>>,
}

impl SourceFilter {
    /// None admits every source (no security groups).
    pub fn set(&self, rules: Option<Vec<Cidr>>) {
        if let Ok(mut r) = self.rules.write() {
            *r = rules;
        }
    }

    /// Whether a connection from `peer` may stay open.
    pub fn admits(&self, peer: SocketAddr) -> bool {
        let by_rule = match self.rules.read() {
            Ok(r) => match &*r {
                None => true,
                Some(rules) => rules.iter().any(|c| c.contains(peer.ip())),
            },
            Err(_) => false,
        };
        by_rule || is_internal(peer)
    }
}

fn internal() -> &'static Mutex<HashSet<SocketAddr>> {
    static S: std::sync::OnceLock<Mutex<HashSet<SocketAddr>>> = std::sync::OnceLock::new();
    S.get_or_init(Default::default)
}

pub fn is_internal(peer: SocketAddr) -> bool {
    internal()
        .lock()
        .map(|s| s.contains(&peer))
        .unwrap_or(false)
}

/// Keeps a connection's source address marked internal while it lives.
#[derive(Debug)]
pub struct InternalGuard(Option<SocketAddr>);

impl Drop for InternalGuard {
    fn drop(&mut self) {
        if let (Some(a), Ok(mut s)) = (self.0, internal().lock()) {
            s.remove(&a);
        }
    }
}

/// Connect to one of this process's endpoints as elastilite itself: the source
/// address is bound (next to the target's) and recorded before connecting, so
/// the target's security-group check knows it without a race.
pub async fn connect_internal(
    target: SocketAddr,
) -> std::io::Result<(tokio::net::TcpStream, InternalGuard)> {
    let sock = if target.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A local target's own address is always a usable local source.
    let source = SocketAddr::new(target.ip(), 0);
    let guard = match sock.bind(source).and_then(|_| sock.local_addr()) {
        Ok(local) => {
            if let Ok(mut s) = internal().lock() {
                s.insert(local);
            }
            InternalGuard(Some(local))
        }
        Err(_) => InternalGuard(None),
    };
    let stream = sock.connect(target).await?;
    Ok((stream, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap_or_else(|| panic!("parse"));
        assert!(c.contains("10.1.2.3".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(!c.contains("11.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"))));
        let all = Cidr::parse("0.0.0.0/0").unwrap_or_else(|| panic!("parse"));
        assert!(all.contains("1.2.3.4".parse().unwrap_or_else(|e| panic!("{e}"))));
        let host = Cidr::parse("127.0.0.1").unwrap_or_else(|| panic!("parse"));
        assert!(!host.contains("127.0.0.2".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(Cidr::parse("10.0.0.0/33").is_none() && Cidr::parse("nope").is_none());
        let f = SourceFilter::default();
        assert!(f.admits("9.9.9.9:1".parse().unwrap_or_else(|e| panic!("{e}"))));
        f.set(Some(vec![c]));
        assert!(!f.admits("9.9.9.9:1".parse().unwrap_or_else(|e| panic!("{e}"))));
    }
}
