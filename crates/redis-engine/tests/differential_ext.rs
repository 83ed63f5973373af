//! Differential tests (byte for byte against Debian's redis-server 7.0.15) for keyspace
//! notifications, streams and geo commands.

mod common;

use std::time::Duration;

use common::*;

fn split(line: &str) -> Vec<Vec<u8>> {
    // Words separated by spaces; "''" is an empty argument; \s a space inside a word.
    line.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w == "''" {
                Vec::new()
            } else {
                w.replace("\\s", " ").into_bytes()
            }
        })
        .collect()
}

fn words(args: &[Vec<u8>]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Our node, with CONFIG allowed (the tests set notify-keyspace-events with it).
fn start_ours() -> (redis_engine::NodeHandle, u16) {
    start_node(redis_engine::Config {
        allow_restricted_commands: true,
        ..redis_engine::Config::default()
    })
}

struct Pair {
    a: Conn,
    b: Conn,
}

impl Pair {
    fn new(rp: u16, op: u16, resp3: bool) -> Pair {
        let mut p = Pair {
            a: Conn::connect(rp),
            b: Conn::connect(op),
        };
        if resp3 {
            p.a.cmd(&["HELLO", "3"]);
            p.b.cmd(&["HELLO", "3"]);
        }
        p
    }

    /// Run a command on both; returns the raw replies.
    fn both(&mut self, args: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        self.a.send(args);
        self.b.send(args);
        let ra = self.a.read_reply().map(|r| r.0).unwrap_or_default();
        let rb = self.b.read_reply().map(|r| r.0).unwrap_or_default();
        (ra, rb)
    }

    fn run(&mut self, script: &[&str]) -> Vec<String> {
        let mut errs = Vec::new();
        for line in script {
            if let Some(ms) = line.strip_prefix("#sleep ") {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(10)));
                continue;
            }
            let args = split(line);
            let (ra, rb) = self.both(&args);
            if ra != rb {
                errs.push(format!(
                    "{:?}\n  redis: {:?}\n  ours:  {:?}",
                    words(&args),
                    String::from_utf8_lossy(&ra),
                    String::from_utf8_lossy(&rb)
                ));
            }
        }
        errs
    }
}

fn report(what: &str, failures: Vec<String>) {
    if !failures.is_empty() {
        panic!(
            "{what}: {} differences:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Read pushed messages until the reply to a PING sent now (all earlier messages precede it).
fn collect_messages(c: &mut Conn) -> Vec<Vec<u8>> {
    c.send(&[b"PING".to_vec()]);
    let mut msgs = Vec::new();
    while let Some((raw, v)) = c.read_reply() {
        let is_pong = match &v {
            RVal::Array(_, Some(items)) => {
                items.first() == Some(&RVal::Bulk(Some(b"pong".to_vec())))
            }
            RVal::Simple(s) => s == b"PONG",
            _ => false,
        };
        if is_pong {
            break;
        }
        msgs.push(raw);
    }
    msgs
}

const NOTIFY_SCRIPT: &[&str] = &[
    "SET s 1",
    "SET s 2 EX 100",
    "SETNX s 3",
    "SETNX s2 3",
    "SETEX s3 100 v",
    "PSETEX s4 100000 v",
    "MSET m1 a m2 b",
    "MSETNX m3 a m4 b",
    "GETSET s x",
    "APPEND s y",
    "APPEND newapp y",
    "INCR n",
    "INCRBY n 5",
    "DECR n",
    "DECRBY n 2",
    "INCRBYFLOAT f 1.5",
    "SETRANGE s 1 zz",
    "SETRANGE s 0 ''",
    "SETRANGE sr 2 ab",
    "GETDEL m1",
    "GETEX m2 EX 100",
    "GETEX m2 PERSIST",
    "GETEX m2 PXAT 1",
    "SETBIT b 3 1",
    "BITFIELD b SET u8 0 7 GET u8 0",
    "BITOP OR bo b b",
    "BITOP AND bo nosuch1 nosuch2",
    "PFADD h a b c",
    "PFADD h a",
    "PFMERGE h2 h",
    "DEL s2 nosuch s3",
    "UNLINK s4",
    "EXPIRE n 100",
    "PEXPIRE n 100000",
    "PERSIST n",
    "PERSIST n",
    "EXPIRE f 0",
    "RENAME n n2",
    "RENAMENX n2 n3",
    "COPY n3 n4",
    "COPY n3 n4 REPLACE",
    "MOVE n4 1",
    "RPUSH l a b c d e",
    "LPUSH l z",
    "LPUSHX l y",
    "RPUSHX nol y",
    "LINSERT l BEFORE a q",
    "LSET l 0 w",
    "LPOP l",
    "RPOP l 2",
    "LREM l 1 q",
    "LTRIM l 0 1",
    "RPOPLPUSH l l2",
    "LMOVE l l2 LEFT RIGHT",
    "LMOVE l2 l3 RIGHT LEFT",
    "BLPOP l2 0",
    "LMPOP 1 l3 LEFT COUNT 5",
    "SORT l4 STORE sorted",
    "RPUSH l4 3 1 2",
    "SORT l4 STORE sorted",
    "HSET hh f v g w",
    "HSETNX hh f v",
    "HSETNX hh x v",
    "HMSET hh a b",
    "HINCRBY hh n 2",
    "HINCRBYFLOAT hh fl 2.5",
    "HDEL hh f g nosuch",
    "HDEL hh a n fl x",
    "SADD st a b c",
    "SADD st a",
    "SREM st a",
    "SMOVE st st2 b",
    "SMOVE st st2 c",
    "SADD u1 a b",
    "SADD u2 b c",
    "SINTERSTORE si u1 u2",
    "SUNIONSTORE su u1 u2",
    "SDIFFSTORE sd u1 u2",
    "SINTERSTORE su nosuch u1",
    "SADD u3 a",
    "SPOP u3",
    "SADD u3 b",
    "SPOP u3 5",
    "ZADD z 1 a 2 b 3 c 4 d",
    "ZADD z 1 a",
    "ZADD z INCR 5 a",
    "ZINCRBY z 1 b",
    "ZREM z c",
    "ZPOPMIN z",
    "ZPOPMAX z 1",
    "ZADD z 1 a 2 b 3 c 4 d",
    "ZREMRANGEBYSCORE z 1 1",
    "ZREMRANGEBYRANK z 0 0",
    "ZREMRANGEBYLEX z - +",
    "ZADD z1 1 a 2 b",
    "ZADD z2 2 b 3 c",
    "ZUNIONSTORE zu 2 z1 z2",
    "ZINTERSTORE zi 2 z1 z2",
    "ZDIFFSTORE zd 2 z1 z2",
    "ZRANGESTORE zr z1 0 -1",
    "ZRANGESTORE zr nosuch 0 -1",
    "BZPOPMIN z1 0",
    "ZMPOP 1 z1 MIN",
    "SET ex1 v PX 1",
    "#sleep 20",
    "GET ex1",
    "SET ex2 v PX 1",
    "#sleep 400",
    "SET done 1",
];

fn notify_run(resp3: bool, flags: &str) {
    let Some(redis) = start_redis() else { return };
    let (node, port) = start_ours();
    let mut subs = Vec::new();
    for p in [redis.port, port] {
        let mut c = Conn::connect(p);
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags]).0,
            b"+OK\r\n"
        );
        let mut s = Conn::connect(p);
        if resp3 {
            s.cmd(&["HELLO", "3"]);
        }
        s.cmd(&["PSUBSCRIBE", "__key*@*__:*"]);
        subs.push(s);
    }
    let mut p = Pair::new(redis.port, port, resp3);
    let mut failures = p.run(&["CONFIG GET notify-keyspace-events"]);
    failures.extend(p.run(NOTIFY_SCRIPT));
    let ma = collect_messages(&mut subs[0]);
    let mb = collect_messages(&mut subs[1]);
    if ma != mb {
        let show = |m: &[Vec<u8>]| {
            m.iter()
                .map(|x| String::from_utf8_lossy(x).replace("\r\n", " "))
                .collect::<Vec<_>>()
        };
        let (sa, sb) = (show(&ma), show(&mb));
        let first = sa
            .iter()
            .zip(&sb)
            .position(|(x, y)| x != y)
            .unwrap_or(sa.len().min(sb.len()));
        failures.push(format!(
            "messages differ (redis {}, ours {}) from #{first}:\n  redis: {:?}\n  ours:  {:?}",
            sa.len(),
            sb.len(),
            &sa[first..sa.len().min(first + 6)],
            &sb[first..sb.len().min(first + 6)]
        ));
    }
    node.shutdown();
    report(&format!("notifications {flags} resp3={resp3}"), failures);
}

#[test]
fn keyspace_notifications_all_events() {
    notify_run(false, "KEA");
}

#[test]
fn keyspace_notifications_resp3_and_new_keys() {
    notify_run(true, "KEAn");
}

#[test]
fn keyspace_notifications_class_filter() {
    notify_run(false, "Elx");
}

#[test]
fn notify_keyspace_events_validation() {
    let Some(redis) = start_redis() else { return };
    let (node, port) = start_ours();
    let mut p = Pair::new(redis.port, port, false);
    report(
        "notify-keyspace-events config",
        p.run(&[
            "CONFIG GET notify-keyspace-events",
            "CONFIG SET notify-keyspace-events KEq",
            "CONFIG SET notify-keyspace-events g$lshzxetdKE",
            "CONFIG GET notify-keyspace-events",
            "CONFIG SET notify-keyspace-events Knm",
            "CONFIG GET notify-keyspace-events",
            "CONFIG SET notify-keyspace-events ''",
            "CONFIG GET notify-keyspace-events",
        ]),
    );
    node.shutdown();
}
