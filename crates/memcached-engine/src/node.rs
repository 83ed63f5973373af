//! State of one node, owned by its thread.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::store::Store;
use crate::DiscoveryNode;

#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    pub version: u64,
    pub nodes: Vec<DiscoveryNode>,
}

impl ClusterConfig {
    /// The payload of `config get cluster`: "<version>\n<host|ip|port ...>\n".
    pub fn payload(&self) -> Vec<u8> {
        let mut s = format!("{}\n", self.version);
        let list: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}|{}|{}", n.host, n.ip, n.port))
            .collect();
        s.push_str(&list.join(" "));
        s.push('\n');
        s.into_bytes()
    }
}

pub struct ConnInfo {
    pub peer: SocketAddr,
    pub last_cmd: u32,
    pub binary: bool,
}

pub struct Node {
    pub store: Store,
    pub version: String,
    pub cluster: Arc<Mutex<ClusterConfig>>,
    pub verbosity: u32,
    pub curr_connections: u64,
    pub conns: BTreeMap<u64, ConnInfo>,
    pub listen_addr: SocketAddr,
    pub start: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Unknown,
    Text,
    Binary,
}

pub struct ConnState {
    pub id: u64,
    pub proto: Proto,
    /// bytes still to discard (value of a refused store).
    pub swallow: usize,
}

/// Result of trying to process one request at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Consumed(usize),
    NeedMore,
    /// Close after flushing the output produced so far.
    Close,
    /// Close at once: output memcached would not have written yet (after `store.out_mark`) is
    /// dropped (invalid binary magic, an over-long text line).
    Abort,
}

impl Node {
    /// A node state not attached to any socket (tests, fuzzing).
    pub fn detached(settings: std::sync::Arc<crate::store::Settings>) -> Node {
        Node {
            store: Store::new(settings),
            version: "1.6.18".into(),
            cluster: Arc::new(Mutex::new(ClusterConfig::default())),
            verbosity: 0,
            curr_connections: 0,
            conns: BTreeMap::new(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            start: Instant::now(),
        }
    }

    /// Feed bytes through the protocol state machine exactly like a connection does; returns
    /// the replies and whether the connection would be closed.
    pub fn feed(&mut self, conn: &mut ConnState, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut pos = 0;
        self.store.tick();
        self.store.out_mark = 0;
        loop {
            if conn.swallow > 0 {
                let k = conn.swallow.min(input.len() - pos);
                pos += k;
                conn.swallow -= k;
                if conn.swallow > 0 {
                    break;
                }
            }
            if pos == input.len() {
                break;
            }
            let avail = &input[pos..];
            if conn.proto == Proto::Unknown {
                conn.proto = if avail[0] == crate::binary::REQ_MAGIC {
                    Proto::Binary
                } else {
                    Proto::Text
                };
            }
            let r = match conn.proto {
                Proto::Binary => crate::binary::process(self, conn, avail, &mut out),
                _ => crate::text::process(self, conn, avail, &mut out),
            };
            match r {
                Outcome::Consumed(k) => {
                    debug_assert!(k > 0 && k <= avail.len(), "consumed {k} of {}", avail.len());
                    pos += k
                }
                Outcome::NeedMore => break,
                Outcome::Close => {
                    self.store.pinned.clear();
                    return (out, true);
                }
                Outcome::Abort => {
                    out.truncate(self.store.out_mark);
                    self.store.pinned.clear();
                    return (out, true);
                }
            }
        }
        self.store.pinned.clear();
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Settings;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    fn node() -> Node {
        Node::detached(Arc::new(Settings {
            memory_limit: AtomicU64::new(1 << 20),
            max_item_size: AtomicU64::new(4096),
            evict: AtomicBool::new(true),
        }))
    }

    fn conn() -> ConnState {
        ConnState {
            id: 1,
            proto: Proto::Unknown,
            swallow: 0,
        }
    }

    /// Fragments of valid requests, glued randomly, to reach deep parser states.
    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        let frag = prop_oneof![
            Just(b"set a 0 0 1\r\nx\r\n".to_vec()),
            Just(b"get a b\r\n".to_vec()),
            Just(b"gets a\r\n".to_vec()),
            Just(b"gat 10 a\r\n".to_vec()),
            Just(b"incr a 1\r\n".to_vec()),
            Just(b"cas a 0 0 1 1\r\ny\r\n".to_vec()),
            Just(b"mg a v k c f s t h l O1 q N0 R1 T1\r\n".to_vec()),
            Just(b"ms a 2 T0 F1 I C1 MA c k b\r\nhi\r\n".to_vec()),
            Just(b"md a q I T1 C0 k\r\n".to_vec()),
            Just(b"ma a N0 J1 D2 MD v c t\r\n".to_vec()),
            Just(b"flush_all 0\r\n".to_vec()),
            Just(b"stats\r\nstats items\r\nstats slabs\r\nstats cachedump 1 0\r\n".to_vec()),
            Just(b"config get cluster\r\n".to_vec()),
            Just(b"set a 0 0 5000\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..64),
        ];
        proptest::collection::vec(frag, 1..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn text_random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut n = node();
            let mut c = conn();
            c.proto = Proto::Text;
            let _ = n.feed(&mut c, &input);
        }

        #[test]
        fn text_fragments_never_panic(input in pieces(), split in 0usize..600) {
            let mut n = node();
            let mut c = conn();
            // feed in two reads, like a split TCP segment
            let split = split.min(input.len());
            let _ = n.feed(&mut c, &input[..split]);
            let _ = n.feed(&mut c, &input);
        }

        #[test]
        fn binary_random_bytes_never_panic(mut input in proptest::collection::vec(any::<u8>(), 24..400), op in 0u8..0x70, kl in 0u16..300, el in 0u8..30, bl in 0u32..400) {
            input[0] = 0x80;
            input[1] = op;
            input[2..4].copy_from_slice(&kl.to_be_bytes());
            input[4] = el;
            input[8..12].copy_from_slice(&bl.to_be_bytes());
            let mut n = node();
            let mut c = conn();
            let _ = n.feed(&mut c, &input);
        }

        #[test]
        fn set_get_roundtrip(key in "[a-zA-Z0-9:_-]{1,250}", value in proptest::collection::vec(any::<u8>(), 0..3000), flags in any::<u32>()) {
            let mut n = node();
            let mut c = conn();
            let mut req = format!("set {key} {flags} 0 {}\r\n", value.len()).into_bytes();
            req.extend_from_slice(&value);
            req.extend_from_slice(format!("\r\nget {key}\r\n").as_bytes());
            let (out, closed) = n.feed(&mut c, &req);
            prop_assert!(!closed);
            let mut want = format!("STORED\r\nVALUE {key} {flags} {}\r\n", value.len()).into_bytes();
            want.extend_from_slice(&value);
            want.extend_from_slice(b"\r\nEND\r\n");
            prop_assert_eq!(out, want);
        }
    }
}
