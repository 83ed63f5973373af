//! Cluster mode against the real thing: a two-node redis-server 7.0 cluster
//! (slots 0-8191 and 8192-16383, joined with CLUSTER MEET) and our node given the
//! same topology by `Control::SetClusterTopology`, with our node in the first
//! real node's place. Replies to the same commands must be byte-identical,
//! redirections included (both point at the second real node).

mod common;

use common::*;
use redis_engine::cluster::{key_slot, Topology, TopologyNode};
use std::time::{Duration, Instant};

type Real = real_servers::RealRedis;

fn start_cluster_node() -> Option<Real> {
    Real::start(&[
        "--cluster-enabled",
        "yes",
        "--cluster-require-full-coverage",
        "no",
    ])
}

fn text(v: &RVal) -> String {
    match v {
        RVal::Bulk(Some(b)) | RVal::Simple(b) | RVal::Other(_, b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        other => format!("{other:?}"),
    }
}

fn cmd(c: &mut Conn, args: &[&str]) -> Vec<u8> {
    c.cmd(args).0
}

/// Every reply a command produces (subscribe commands answer once per channel):
/// a PING with a marker follows it, and everything before the PONG is returned.
fn all(c: &mut Conn, args: &[&str]) -> Vec<u8> {
    c.send(
        &args
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect::<Vec<_>>(),
    );
    c.send(&[b"PING".to_vec(), b"sync-marker".to_vec()]);
    let mut out = Vec::new();
    loop {
        let (raw, _) = c.read_reply().expect("reply");
        if String::from_utf8_lossy(&raw).contains("sync-marker") {
            return out;
        }
        out.extend_from_slice(&raw);
    }
}

#[test]
fn cluster_mode_matches_redis_server() {
    let (Some(r1), Some(r2)) = (start_cluster_node(), start_cluster_node()) else {
        return;
    };
    let mut a = Conn::connect(r1.port);
    let mut b = Conn::connect(r2.port);
    cmd(&mut a, &["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]);
    cmd(&mut b, &["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]);
    cmd(
        &mut a,
        &["CLUSTER", "MEET", "127.0.0.1", &r2.port.to_string()],
    );
    let b_id = text(&b.cmd(&["CLUSTER", "MYID"]).1);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait until the first node knows the second's slots.
    loop {
        let nodes = text(&a.cmd(&["CLUSTER", "NODES"]).1);
        let ok = text(&a.cmd(&["CLUSTER", "INFO"]).1).starts_with("cluster_state:ok");
        if ok
            && nodes
                .lines()
                .any(|l| l.starts_with(&b_id) && l.ends_with("8192-16383"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "real cluster did not form: {nodes}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (_h, port) = start_node(redis_engine::Config::default());
    let a_id = "a".repeat(40);
    _h.control(redis_engine::Control::SetClusterTopology(Box::new(
        Topology {
            myself: a_id.clone(),
            epoch: 2,
            nodes: vec![
                TopologyNode {
                    id: a_id.clone(),
                    ip: "127.0.0.1".into(),
                    port,
                    primary_id: None,
                    slots: vec![(0, 8191)],
                    shard_id: "1".repeat(40),
                    epoch: 1,
                },
                TopologyNode {
                    id: b_id.clone(),
                    ip: "127.0.0.1".into(),
                    port: r2.port,
                    primary_id: None,
                    slots: vec![(8192, 16383)],
                    shard_id: "2".repeat(40),
                    epoch: 2,
                },
            ],
            migrating: vec![],
            importing: vec![],
            compatible: false,
        },
    )));
    let mut o = Conn::connect(port);
    // The topology is applied asynchronously.
    let deadline = Instant::now() + Duration::from_secs(5);
    while text(&o.cmd(&["CLUSTER", "MYID"]).1) != a_id {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }

    // Keys of slot 0-8191 live on node 1; "foo" (12182) and "{b}x" go to node 2.
    assert!(key_slot(b"foo") > 8191 && key_slot(b"bar") <= 8191);
    let script: &[&[&str]] = &[
        &["CLUSTER", "KEYSLOT", "foo"],
        &["CLUSTER", "KEYSLOT", "{user1}.following"],
        &["CLUSTER", "KEYSLOT", "{}x"],
        &["CLUSTER", "KEYSLOT", "a{b"],
        &["CLUSTER", "KEYSLOT", ""],
        &["CLUSTER", "KEYSLOT"],
        &["SET", "bar", "1"],
        &["SET", "{bar}2", "2"],
        &["GET", "bar"],
        &["GET", "foo"],
        &["SET", "foo", "x"],
        &["MGET", "bar", "{bar}2"],
        &["MGET", "bar", "foo"],
        &["DEL", "bar", "x", "y"],
        &["EXISTS", "foo"],
        &["CLUSTER", "COUNTKEYSINSLOT", "5061"],
        &["CLUSTER", "COUNTKEYSINSLOT", "16384"],
        &["CLUSTER", "COUNTKEYSINSLOT", "x"],
        &["CLUSTER", "GETKEYSINSLOT", "5061", "10"],
        &["CLUSTER", "GETKEYSINSLOT", "5061", "-1"],
        &["CLUSTER", "GETKEYSINSLOT", "99999", "1"],
        &["CLUSTER", "NOSUCH"],
        &["SELECT", "1"],
        &["SELECT", "0"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
        &["GET", "foo"],
        &["DBSIZE"],
        &["MULTI"],
        &["SET", "bar", "3"],
        &["GET", "foo"],
        &["EXEC"],
        &["SPUBLISH", "foo", "m"],
        &["SPUBLISH", "bar", "m"],
        &["SSUBSCRIBE", "bar", "{bar}x"],
        &["SSUBSCRIBE", "foo"],
        &["SSUBSCRIBE", "bar", "foo"],
        // (Without arguments the order is redis-server's dict order.)
        &["SUNSUBSCRIBE", "bar", "{bar}x"],
        &["SUNSUBSCRIBE"],
        &["PUBSUB", "SHARDCHANNELS"],
        &["INFO", "cluster"],
        &["CLUSTER", "SLOTS"],
    ];
    let mut real = Conn::connect(r1.port);
    for args in script {
        let many = args[0].starts_with("SSUB") || args[0].starts_with("SUNSUB");
        let run = |c: &mut Conn| if many { all(c, args) } else { cmd(c, args) };
        let want = run(&mut real);
        let got = run(&mut o);
        // CLUSTER SLOTS names the node itself by its own port and id.
        if args == &["CLUSTER", "SLOTS"] {
            let fix = String::from_utf8_lossy(&want)
                .replace(&format!(":{}\r\n", r1.port), &format!(":{port}\r\n"))
                .replace(&text(&real.cmd(&["CLUSTER", "MYID"]).1), &a_id);
            assert_eq!(String::from_utf8_lossy(&got), fix, "{args:?}");
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{args:?}"
        );
    }
    // RESP3: HELLO reports cluster mode.
    let want = cmd(&mut real, &["HELLO", "3"]);
    let got = cmd(&mut o, &["HELLO", "3"]);
    let mode = |v: &[u8]| String::from_utf8_lossy(v).contains("$4\r\nmode\r\n$7\r\ncluster\r\n");
    assert!(
        mode(&want) && mode(&got),
        "{}\n{}",
        String::from_utf8_lossy(&want),
        String::from_utf8_lossy(&got)
    );
    // Published to a shard channel: the subscriber gets an smessage frame.
    let mut sub = Conn::connect(port);
    let mut rsub = Conn::connect(r1.port);
    assert_eq!(
        cmd(&mut sub, &["SSUBSCRIBE", "bar"]),
        cmd(&mut rsub, &["SSUBSCRIBE", "bar"])
    );
    assert_eq!(
        cmd(&mut o, &["SPUBLISH", "bar", "hi"]),
        cmd(&mut real, &["SPUBLISH", "bar", "hi"])
    );
    let (got, _) = sub.read_reply().expect("smessage");
    let (want, _) = rsub.read_reply().expect("smessage");
    assert_eq!(got, want);
    drop(r2);
}

fn topo(
    me: &str,
    a: (u16, Vec<(u16, u16)>),
    b: (u16, Vec<(u16, u16)>),
    moving: Option<(bool, u16)>,
) -> Topology {
    let node = |id: &str, port: u16, slots: Vec<(u16, u16)>| TopologyNode {
        id: id.repeat(40),
        ip: "127.0.0.1".into(),
        port,
        primary_id: None,
        slots,
        shard_id: id.repeat(40),
        epoch: 1,
    };
    let (mut migrating, mut importing) = (vec![], vec![]);
    if let Some((source, slot)) = moving {
        if source {
            migrating.push((slot, "b".repeat(40)));
        } else {
            importing.push((slot, "a".repeat(40)));
        }
    }
    Topology {
        myself: me.repeat(40),
        epoch: 2,
        nodes: vec![node("a", a.0, a.1), node("b", b.0, b.1)],
        migrating,
        importing,
        compatible: false,
    }
}

fn wait_for(c: &mut Conn, args: &[&str], want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = String::from_utf8_lossy(&c.cmd(args).0).into_owned();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?}: {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A slot moving from node A to node B: ASK for keys A no longer has, TRYAGAIN
/// for multi-key requests split between them, ASKING on B, the keys moved by
/// `Control::MigrateSlots` (TTL kept), then MOVED once ownership flips.
#[test]
fn slot_migration_ask_tryagain_and_moved() {
    let (ha, pa) = start_node(redis_engine::Config::default());
    let (hb, pb) = start_node(redis_engine::Config::default());
    let slot = key_slot(b"{t}");
    let all = vec![(0u16, 16383u16)];
    ha.control(redis_engine::Control::SetClusterTopology(Box::new(topo(
        "a",
        (pa, all.clone()),
        (pb, vec![]),
        None,
    ))));
    let mut a = Conn::connect(pa);
    wait_for(&mut a, &["SET", "{t}1", "v1"], "+OK\r\n");
    cmd(&mut a, &["SET", "{t}2", "v2", "PX", "100000"]);
    cmd(&mut a, &["SET", "other", "x"]);
    // Start moving the slot.
    ha.control(redis_engine::Control::SetClusterTopology(Box::new(topo(
        "a",
        (pa, all.clone()),
        (pb, vec![]),
        Some((true, slot)),
    ))));
    hb.control(redis_engine::Control::SetClusterTopology(Box::new(topo(
        "b",
        (pa, all.clone()),
        (pb, vec![]),
        Some((false, slot)),
    ))));
    let ask = format!("-ASK {slot} 127.0.0.1:{pb}\r\n");
    wait_for(&mut a, &["GET", "{t}missing"], &ask);
    // Present keys are still served by the source.
    assert_eq!(cmd(&mut a, &["GET", "{t}1"]), b"$2\r\nv1\r\n");
    assert_eq!(
        cmd(&mut a, &["MGET", "{t}1", "{t}missing"]),
        b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
    );
    let mut b = Conn::connect(pb);
    let moved = format!("-MOVED {slot} 127.0.0.1:{pa}\r\n");
    wait_for(&mut b, &["GET", "{t}missing"], &moved);
    assert_eq!(cmd(&mut b, &["ASKING"]), b"+OK\r\n");
    assert_eq!(cmd(&mut b, &["GET", "{t}missing"]), b"$-1\r\n");
    // ASKING covers one command only.
    assert_eq!(cmd(&mut b, &["GET", "{t}missing"]), moved.as_bytes());
    // Move the keys.
    let (tx, rx) = std::sync::mpsc::channel();
    ha.control(redis_engine::Control::MigrateSlots(
        redis_engine::cluster::Migration {
            slots: vec![slot],
            max_keys: 100,
            target: hb.import_target(),
            reply: tx,
        },
    ));
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(Ok(2)));
    assert_eq!(cmd(&mut a, &["GET", "{t}1"]), ask.as_bytes());
    assert_eq!(cmd(&mut a, &["GET", "other"]), b"$1\r\nx\r\n");
    cmd(&mut b, &["ASKING"]);
    assert_eq!(cmd(&mut b, &["GET", "{t}1"]), b"$2\r\nv1\r\n");
    cmd(&mut b, &["ASKING"]);
    let ttl = String::from_utf8_lossy(&cmd(&mut b, &["PTTL", "{t}2"])).into_owned();
    let ttl: i64 = ttl.trim_start_matches(':').trim().parse().expect("pttl");
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    // Flip ownership.
    let rest: Vec<(u16, u16)> = [(0, slot.wrapping_sub(1)), (slot + 1, 16383)]
        .into_iter()
        .filter(|(x, y)| x <= y && *y <= 16383 && !(slot == 0 && *x == 0))
        .collect();
    for (me, h) in [("a", &ha), ("b", &hb)] {
        h.control(redis_engine::Control::SetClusterTopology(Box::new(topo(
            me,
            (pa, rest.clone()),
            (pb, vec![(slot, slot)]),
            None,
        ))));
    }
    wait_for(
        &mut a,
        &["GET", "{t}1"],
        &format!("-MOVED {slot} 127.0.0.1:{pb}\r\n"),
    );
    wait_for(&mut b, &["GET", "{t}1"], "$2\r\nv1\r\n");
    assert_eq!(
        cmd(&mut b, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        b":2\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        b":0\r\n"
    );
}

/// A shard channel's subscribers are unsubscribed (with a `sunsubscribe` frame)
/// when its slot leaves the node, as Redis does.
#[test]
fn shard_subscribers_dropped_when_their_slot_moves() {
    let (h, p) = start_node(redis_engine::Config::default());
    let all = vec![(0u16, 16383u16)];
    h.control(redis_engine::Control::SetClusterTopology(Box::new(topo(
        "a",
        (p, all),
        (1, vec![]),
        None,
    ))));
    let mut c = Conn::connect(p);
    wait_for(
        &mut c,
        &["CLUSTER", "MYID"],
        &format!("$40\r\n{}\r\n", "a".repeat(40)),
    );
    let mut sub = Conn::connect(p);
    assert_eq!(
        cmd(&mut sub, &["SSUBSCRIBE", "news"]),
        b"*3\r\n$10\r\nssubscribe\r\n$4\r\nnews\r\n:1\r\n"
    );
    let slot = key_slot(b"news");
    let keep: Vec<(u16, u16)> = [(0, slot.saturating_sub(1)), (slot + 1, 16383)]
        .into_iter()
        .filter(|(x, y)| x <= y && !(slot == 0 && *y == 0))
        .collect();
    h.control(redis_engine::Control::SetClusterTopology(Box::new(topo(
        "a",
        (p, keep),
        (1, vec![(slot, slot)]),
        None,
    ))));
    let (raw, _) = sub.read_reply().expect("sunsubscribe frame");
    assert_eq!(raw, b"*3\r\n$12\r\nsunsubscribe\r\n$4\r\nnews\r\n:0\r\n");
    assert_eq!(
        cmd(&mut c, &["PUBSUB", "SHARDNUMSUB", "news"]),
        b"*2\r\n$4\r\nnews\r\n:0\r\n"
    );
}

/// ElastiCache's cluster mode compatible (no redis-server equivalent): while this
/// node's shard serves every slot, keyed commands are not redirected (plain clients
/// keep cross-slot commands and reads on a replica); with the flag off, or when the
/// shard does not serve every slot, the usual cluster redirections apply.
#[test]
fn compatible_mode_serves_plain_clients_only_while_one_shard_owns_every_slot() {
    let (h, port) = start_node(redis_engine::Config::default());
    let node = |id: &str, port: u16, primary: Option<&str>, slots: Vec<(u16, u16)>| TopologyNode {
        id: id.repeat(40),
        ip: "127.0.0.1".into(),
        port,
        primary_id: primary.map(|p| p.repeat(40)),
        slots,
        shard_id: "s".repeat(40),
        epoch: 1,
    };
    let set = |me: &str, nodes: Vec<TopologyNode>, compatible: bool| {
        h.control(redis_engine::Control::SetClusterTopology(Box::new(
            Topology {
                myself: me.repeat(40),
                epoch: 1,
                nodes,
                migrating: vec![],
                importing: vec![],
                compatible,
            },
        )));
    };
    let primary_all = |p| {
        vec![
            node("a", port, None, vec![(0, 16383)]),
            node("c", p, Some("a"), vec![]),
        ]
    };
    let mut c = Conn::connect(port);
    cmd(&mut c, &["SET", "k1", "v1"]);
    cmd(&mut c, &["SET", "k2", "v2"]);
    // This node as the primary owning every slot.
    set("a", primary_all(1), true);
    wait_for(
        &mut c,
        &["MGET", "k1", "k2"],
        "*2\r\n$2\r\nv1\r\n$2\r\nv2\r\n",
    );
    assert!(!cmd(&mut c, &["CLUSTER", "SHARDS"]).is_empty());
    set("a", primary_all(1), false);
    wait_for(
        &mut c,
        &["MGET", "k1", "k2"],
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
    );
    // This node as the replica of a primary owning every slot: reads are served.
    let as_replica = vec![
        node("a", 1, None, vec![(0, 16383)]),
        node("c", port, Some("a"), vec![]),
    ];
    set("c", as_replica.clone(), true);
    wait_for(&mut c, &["GET", "k1"], "$2\r\nv1\r\n");
    set("c", as_replica, false);
    let moved = format!("-MOVED {} 127.0.0.1:1\r\n", key_slot(b"k1"));
    wait_for(&mut c, &["GET", "k1"], &moved);
    // Two shards: the flag is not honoured (keys of the other shard move).
    let split = vec![
        node("a", port, None, vec![(0, 8191)]),
        node("b", 1, None, vec![(8192, 16383)]),
    ];
    set("a", split, true);
    let other = ["k1", "k2", "k3", "k4", "k5"]
        .into_iter()
        .find(|k| key_slot(k.as_bytes()) >= 8192)
        .expect("a key of the second half");
    let moved = format!("-MOVED {} 127.0.0.1:1\r\n", key_slot(other.as_bytes()));
    wait_for(&mut c, &["GET", other], &moved);
}
