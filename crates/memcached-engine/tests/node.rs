//! Node behaviour that needs no reference server: auto-discovery, shutdown/rebind, memory limit
//! and eviction, runtime settings, the seed's session use, and robustness against bad clients.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use memcached_engine::{Config, DiscoveryNode};

fn roundtrip(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    text_exchange(addr, req)
}

fn strip_end(mut v: Vec<u8>) -> String {
    let end = b"EN O424242\r\n";
    if v.ends_with(end) {
        v.truncate(v.len() - end.len());
    }
    String::from_utf8_lossy(&v).to_string()
}

#[test]
fn auto_discovery_config_get_cluster() {
    let node = start_node(Config::default());
    node.set_cluster_config(
        12,
        vec![
            DiscoveryNode {
                host: "mycluster.abc123.0001.use1.cache.localhost".into(),
                ip: "127.0.0.1".into(),
                port: 21211,
            },
            DiscoveryNode {
                host: "mycluster.abc123.0002.use1.cache.localhost".into(),
                ip: "127.0.0.2".into(),
                port: 21212,
            },
        ],
    );
    let got = strip_end(roundtrip(node.local_addr(), b"config get cluster\r\n"));
    let payload = "12\nmycluster.abc123.0001.use1.cache.localhost|127.0.0.1|21211 \
                   mycluster.abc123.0002.use1.cache.localhost|127.0.0.2|21212\n";
    let expected = format!("CONFIG cluster 0 {}\r\n{payload}\r\nEND\r\n", payload.len());
    assert_eq!(got, expected);
    // legacy form (engines < 1.4.14)
    let got = strip_end(roundtrip(
        node.local_addr(),
        b"get AmazonElastiCache:cluster\r\n",
    ));
    assert_eq!(
        got,
        format!(
            "VALUE AmazonElastiCache:cluster 0 {}\r\n{payload}\r\nEND\r\n",
            payload.len()
        )
    );
    // version bump is visible immediately
    node.set_cluster_config(13, vec![]);
    let got = strip_end(roundtrip(node.local_addr(), b"config get cluster\r\n"));
    assert_eq!(got, "CONFIG cluster 0 4\r\n13\n\n\r\nEND\r\n");
}

#[test]
fn seed_session_set_600s_ttl_and_get() {
    // What the Node `memcached` package sends for `set(key, obj, 600)` (JSON flag 2) and `get`.
    let node = start_node(Config::default());
    let v = r#"{"user":"alice","cart":[1,2,3]}"#;
    let req = format!(
        "set sess:8f2c 2 600 {}\r\n{v}\r\nget sess:8f2c\r\nmg sess:8f2c t\r\n",
        v.len()
    );
    let got = strip_end(roundtrip(node.local_addr(), req.as_bytes()));
    let ttl_ok = got.ends_with("HD t600\r\n") || got.ends_with("HD t599\r\n");
    assert!(
        got.starts_with(&format!(
            "STORED\r\nVALUE sess:8f2c 2 {}\r\n{v}\r\nEND\r\n",
            v.len()
        )) && ttl_ok,
        "{got}"
    );
}

#[test]
fn shutdown_closes_clients_and_port_is_rebindable() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let node = memcached_engine::spawn(l, Config::default()).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"set a 0 0 1\r\nx\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STORED\r\n");
    let t = std::thread::spawn(move || {
        node.shutdown();
        node
    });
    let node = t.join().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "client connection must be closed");
    drop(node);
    let l2 = TcpListener::bind(addr).expect("same address rebindable right after shutdown");
    let node2 = memcached_engine::spawn(l2, Config::default()).unwrap();
    let got = strip_end(roundtrip(addr, b"get a\r\n"));
    assert_eq!(got, "END\r\n");
    node2.shutdown();
    node2.shutdown(); // idempotent
}

fn stat(addr: SocketAddr, name: &str) -> u64 {
    let s = strip_end(roundtrip(addr, b"stats\r\n"));
    for line in s.lines() {
        let mut it = line.split(' ');
        if it.next() == Some("STAT") && it.next() == Some(name) {
            return it.next().unwrap_or("0").parse().unwrap_or(0);
        }
    }
    panic!("no stat {name}");
}

#[test]
fn lru_eviction_under_memory_limit() {
    let node = start_node(Config {
        memory_limit: 1024 * 1024,
        ..Config::default()
    });
    let addr = node.local_addr();
    let val = "v".repeat(1000);
    let mut req = String::new();
    for i in 0..3000 {
        req.push_str(&format!("set k{i} 0 0 {}\r\n{val}\r\n", val.len()));
        if i % 100 == 0 {
            // keep k0 recently used
            req.push_str("get k0\r\n");
        }
    }
    roundtrip(addr, req.as_bytes());
    assert!(stat(addr, "evictions") > 1000);
    assert!(stat(addr, "bytes") <= 1024 * 1024);
    let got = strip_end(roundtrip(addr, b"mg k0 s\r\nmg k1 s\r\nmg k2999 s\r\n"));
    assert_eq!(got, "HD s1000\r\nEN\r\nHD s1000\r\n");
}

#[test]
fn no_evict_mode_reports_out_of_memory_and_can_be_switched() {
    let node = start_node(Config {
        memory_limit: 64 * 1024,
        evict: false,
        ..Config::default()
    });
    let addr = node.local_addr();
    let val = "v".repeat(1000);
    let mut req = String::new();
    for i in 0..100 {
        req.push_str(&format!("set k{i} 0 0 {}\r\n{val}\r\n", val.len()));
    }
    let got = strip_end(roundtrip(addr, req.as_bytes()));
    assert!(
        got.contains("SERVER_ERROR out of memory storing object\r\n"),
        "{got}"
    );
    assert_eq!(stat(addr, "evictions"), 0);
    node.set_evict(true);
    let got = strip_end(roundtrip(
        addr,
        format!("set new 0 0 {}\r\n{val}\r\n", val.len()).as_bytes(),
    ));
    assert_eq!(got, "STORED\r\n");
    assert!(stat(addr, "evictions") >= 1);
    node.set_max_item_size(100);
    let got = strip_end(roundtrip(
        addr,
        format!("set big 0 0 {}\r\n{val}\r\n", val.len()).as_bytes(),
    ));
    assert_eq!(got, "SERVER_ERROR object too large for cache\r\n");
}

#[test]
fn large_multiget_and_values_near_the_limit() {
    let node = start_node(Config::default());
    let addr = node.local_addr();
    let big = "b".repeat(1024 * 1024 - 100);
    let mut req = format!("set big 0 0 {}\r\n{big}\r\n", big.len());
    let mut get = String::from("get");
    for i in 0..500 {
        req.push_str(&format!("set key{i:04} {i} 0 5\r\nv{i:04}\r\n"));
        get.push_str(&format!(" key{i:04}"));
    }
    get.push_str(" big\r\n");
    req.push_str(&get);
    let got = strip_end(roundtrip(addr, req.as_bytes()));
    assert_eq!(got.matches("VALUE ").count(), 501);
    assert!(got.contains("VALUE key0499 499 5\r\nv0499\r\n"));
    assert!(got.contains(&format!("VALUE big 0 {}\r\n", big.len())));
}

/// After each abuse, a well-behaved client must still be served.
fn assert_alive(addr: SocketAddr) {
    let got = strip_end(roundtrip(addr, b"set alive 0 0 2\r\nok\r\nget alive\r\n"));
    assert_eq!(got, "STORED\r\nVALUE alive 0 2\r\nok\r\nEND\r\n");
}

#[test]
fn robustness_bad_clients_affect_only_themselves() {
    let node = start_node(Config::default());
    let addr = node.local_addr();

    // oversized value: error, data swallowed, connection still usable
    let mut req = b"set huge 0 0 3000000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 3_000_000));
    req.extend_from_slice(b"\r\nget huge\r\n");
    let got = strip_end(roundtrip(addr, &req));
    assert_eq!(got, "SERVER_ERROR object too large for cache\r\nEND\r\n");
    assert_alive(addr);

    // truncated data block, then the client vanishes
    {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"set t 0 0 100\r\nabc").unwrap();
    }
    assert_alive(addr);

    // binary garbage on a text connection
    let mut r = Rng(42);
    for _ in 0..50 {
        let n = 1 + r.below(3000) as usize;
        let mut g: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
        if g[0] == 0x80 && r.below(2) == 0 {
            g[0] = b'x';
        }
        if let Ok(mut c) = TcpStream::connect(addr) {
            c.set_read_timeout(Some(Duration::from_millis(50))).ok();
            let _ = c.write_all(&g);
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
        }
    }
    assert_alive(addr);

    // a request line that never ends
    {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = c.write_all(&vec![b'z'; 10_000]);
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap_or(0);
        assert_eq!(
            n, 0,
            "a >2 KiB line that is not a get closes the connection"
        );
    }
    assert_alive(addr);

    // a client that pipelines big gets and never reads
    let val = "r".repeat(500_000);
    roundtrip(
        addr,
        format!("set bigval 0 0 {}\r\n{val}\r\n", val.len()).as_bytes(),
    );
    let mut hog = TcpStream::connect(addr).unwrap();
    hog.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let req = b"get bigval\r\n".repeat(2000);
    let start = Instant::now();
    let _ = hog.write_all(&req); // may block once buffers fill: fine
    assert!(start.elapsed() < Duration::from_secs(10));
    let t0 = Instant::now();
    assert_alive(addr);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "other clients must not wait for the hog"
    );
    drop(hog);
    assert_alive(addr);
}

#[test]
fn binary_garbage_on_binary_connection() {
    let node = start_node(Config::default());
    let addr = node.local_addr();
    let mut r = Rng(7);
    for _ in 0..100 {
        let n = 24 + r.below(200) as usize;
        let mut g: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
        g[0] = 0x80;
        if r.below(2) == 0 {
            g[8..12].copy_from_slice(&((n - 24) as u32).to_be_bytes());
        }
        let _ = bin_exchange(addr, &g);
    }
    assert_alive(addr);
}

#[test]
fn auto_discovery_binary_config_get() {
    // The ElastiCache cluster client's binary "config get" (opcode 0x60, key = config type);
    // response extras carry 4 bytes of flags, the value is the same payload as the ASCII form.
    let node = start_node(Config::default());
    node.set_cluster_config(
        2,
        vec![DiscoveryNode {
            host: "c.cfg.localhost".into(),
            ip: "127.0.0.1".into(),
            port: 11211,
        }],
    );
    let p = bin_exchange(
        node.local_addr(),
        &bin_request(0x60, b"cluster", b"", b"", 9, 0),
    );
    let payload = b"2\nc.cfg.localhost|127.0.0.1|11211\n";
    let r = &p[0];
    assert_eq!(r[0], 0x81);
    assert_eq!(r[1], 0x60);
    assert_eq!(&r[6..8], &[0, 0], "status OK");
    assert_eq!(r[4], 4, "extras length");
    assert_eq!(&r[12..16], &9u32.to_be_bytes());
    assert_eq!(&r[24 + 4..], payload);
}

#[test]
fn spawn_and_shutdown_from_inside_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = start_node(Config::default());
        let addr = node.local_addr();
        let got = tokio::task::spawn_blocking(move || strip_end(roundtrip(addr, b"version\r\n")))
            .await
            .unwrap();
        assert_eq!(got, "VERSION 1.6.22\r\n");
        node.shutdown();
        drop(node);
    });
}

#[test]
fn expiry_and_delayed_flush() {
    let node = start_node(Config::default());
    let addr = node.local_addr();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let req = format!(
        "set rel 0 1 1\r\nx\r\nset abs 0 {} 1\r\nx\r\nset past 0 {} 1\r\nx\r\nset neg 0 -1 1\r\nx\r\nset keep 0 0 1\r\nx\r\nget rel abs past neg keep\r\n",
        now + 1,
        now - 10
    );
    let got = strip_end(roundtrip(addr, req.as_bytes()));
    assert!(got.contains("VALUE keep"), "{got}");
    assert!(
        !got.contains("VALUE past") && !got.contains("VALUE neg"),
        "{got}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    let got = strip_end(roundtrip(addr, b"get rel abs past neg keep\r\n"));
    assert_eq!(got, "VALUE keep 0 1\r\nx\r\nEND\r\n");
    assert!(stat(addr, "get_expired") + stat(addr, "crawler_reclaimed") >= 2);

    // expired items are reclaimed in the background without being read
    roundtrip(addr, b"set t1 0 1 1\r\nx\r\nset t2 0 1 1\r\nx\r\n");
    assert_eq!(stat(addr, "curr_items"), 3);
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(stat(addr, "curr_items"), 1);
    assert!(stat(addr, "crawler_reclaimed") >= 2);

    // flush_all with a delay: items stored before it become invalid once it is reached
    let got = strip_end(roundtrip(addr, b"flush_all 2\r\nget keep\r\n"));
    assert_eq!(got, "OK\r\nVALUE keep 0 1\r\nx\r\nEND\r\n");
    std::thread::sleep(Duration::from_millis(2100));
    let got = strip_end(roundtrip(
        addr,
        b"get keep\r\nset after 0 0 1\r\ny\r\nget after\r\n",
    ));
    assert_eq!(got, "END\r\nSTORED\r\nVALUE after 0 1\r\ny\r\nEND\r\n");
}

#[test]
fn many_concurrent_connections() {
    let node = start_node(Config::default());
    let addr = node.local_addr();
    let threads: Vec<_> = (0..64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = vec![0u8; 4096];
                for i in 0..100 {
                    let v = format!("t{t}-i{i}");
                    let req = format!("set k{t} 0 0 {}\r\n{v}\r\nget k{t}\r\n", v.len());
                    s.write_all(req.as_bytes()).unwrap();
                    let want = format!("STORED\r\nVALUE k{t} 0 {}\r\n{v}\r\nEND\r\n", v.len());
                    let mut got = Vec::new();
                    while got.len() < want.len() {
                        let n = s.read(&mut buf).unwrap();
                        assert!(n > 0);
                        got.extend_from_slice(&buf[..n]);
                    }
                    assert_eq!(String::from_utf8_lossy(&got), want);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(stat(addr, "curr_items"), 64);
    assert!(stat(addr, "total_connections") >= 64);
}

/// Replays the kept fuzz corpus (tests/corpus: text, meta and binary inputs, including
/// truncated and garbage ones) through the protocol state machines, whole and split at
/// every 7th byte, and checks nothing panics and the node still answers.
#[test]
fn corpus_replay_never_panics() {
    use memcached_engine::node::{ConnState, Node, Proto};
    use memcached_engine::store::Settings;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::Arc;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut n_files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        n_files += 1;
        for split in (0..data.len().min(400)).step_by(7).chain([data.len()]) {
            let mut node = Node::detached(Arc::new(Settings {
                memory_limit: AtomicU64::new(1 << 20),
                max_item_size: AtomicU64::new(1 << 20),
                evict: AtomicBool::new(true),
            }));
            let mut conn = ConnState {
                id: 1,
                proto: Proto::Unknown,
                swallow: 0,
            };
            let _ = node.feed(&mut conn, &data[..split]);
            let _ = node.feed(&mut conn, &data[split..]);
            let mut fresh = ConnState {
                id: 2,
                proto: Proto::Unknown,
                swallow: 0,
            };
            let (out, closed) = node.feed(&mut fresh, b"version\r\n");
            assert!(!closed && out.starts_with(b"VERSION "), "{path:?}");
        }
    }
    assert!(n_files >= 100);
}
