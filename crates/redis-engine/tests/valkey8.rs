//! Valkey 8.0 / 8.1 command additions, on nodes started as Valkey 8.x, with replies
//! asserted byte for byte against expectations read from valkey's source
//! (t_string.c, db.c scanGenericCommand, eval.c scriptCommand, networking.c
//! clientCommand): no valkey-server is installable here to compare with.
//!
//! Each addition is also checked on a Redis 7.x node and a Valkey 7.2 node (and, for
//! the 8.1-only ones, a Valkey 8.0 node), which must keep answering as redis-server
//! 7.0 does (syntax error / unknown subcommand).

mod common;

use common::*;

fn node(flavor: &str, version: &str) -> (redis_engine::NodeHandle, Conn) {
    node_with(flavor, version, false)
}

/// `admin`: CONFIG allowed (ElastiCache renames it away; parameter groups set the same
/// settings through `apply_param`).
fn node_with(flavor: &str, version: &str, admin: bool) -> (redis_engine::NodeHandle, Conn) {
    let (h, port) = start_node(redis_engine::Config {
        flavor: flavor.into(),
        version: version.into(),
        allow_restricted_commands: admin,
        ..Default::default()
    });
    (h, Conn::connect(port))
}

fn raw(c: &mut Conn, args: &[&str]) -> Vec<u8> {
    c.cmd(args).0
}

fn expect(c: &mut Conn, args: &[&str], want: &[u8]) {
    let got = raw(c, args);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "{args:?}"
    );
}

const SYNTAX: &[u8] = b"-ERR syntax error\r\n";
const WRONGTYPE: &[u8] = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[test]
fn set_ifeq_on_valkey_81() {
    let (_h, mut c) = node("valkey", "8.1.0");
    // Missing key: nil, nothing written.
    expect(&mut c, &["SET", "k", "v", "IFEQ", "x"], b"$-1\r\n");
    expect(&mut c, &["EXISTS", "k"], b":0\r\n");
    c.cmd(&["SET", "k", "old"]);
    // Different value: nil, unchanged.
    expect(&mut c, &["SET", "k", "new", "IFEQ", "other"], b"$-1\r\n");
    expect(&mut c, &["GET", "k"], b"$3\r\nold\r\n");
    // Equal value: OK, replaced; the option name is case-insensitive.
    expect(&mut c, &["SET", "k", "new", "ifeq", "old"], b"+OK\r\n");
    expect(&mut c, &["GET", "k"], b"$3\r\nnew\r\n");
    // Comparison is on the bytes (an integer-looking value compares as its string).
    c.cmd(&["SET", "n", "10"]);
    expect(&mut c, &["SET", "n", "11", "IFEQ", "010"], b"$-1\r\n");
    expect(&mut c, &["SET", "n", "11", "IFEQ", "10"], b"+OK\r\n");
    // With an expiry: set and the TTL applied.
    expect(
        &mut c,
        &["SET", "k", "ttl", "IFEQ", "new", "EX", "100"],
        b"+OK\r\n",
    );
    expect(&mut c, &["TTL", "k"], b":100\r\n");
    // KEEPTTL keeps it.
    expect(
        &mut c,
        &["SET", "k", "kept", "IFEQ", "ttl", "KEEPTTL"],
        b"+OK\r\n",
    );
    expect(&mut c, &["TTL", "k"], b":100\r\n");
    // Without options the TTL is dropped as any SET does.
    expect(&mut c, &["SET", "k", "plain", "IFEQ", "kept"], b"+OK\r\n");
    expect(&mut c, &["TTL", "k"], b":-1\r\n");

    // GET: the old value whether or not the set happened.
    expect(
        &mut c,
        &["SET", "k", "g1", "IFEQ", "nope", "GET"],
        b"$5\r\nplain\r\n",
    );
    expect(&mut c, &["GET", "k"], b"$5\r\nplain\r\n");
    expect(
        &mut c,
        &["SET", "k", "g1", "IFEQ", "plain", "GET"],
        b"$5\r\nplain\r\n",
    );
    expect(&mut c, &["GET", "k"], b"$2\r\ng1\r\n");
    expect(
        &mut c,
        &["SET", "missing", "v", "GET", "IFEQ", "x"],
        b"$-1\r\n",
    );
    expect(&mut c, &["EXISTS", "missing"], b":0\r\n");

    // Wrong type: WRONGTYPE with or without GET, key untouched.
    c.cmd(&["RPUSH", "l", "a"]);
    expect(&mut c, &["SET", "l", "v", "IFEQ", "a"], WRONGTYPE);
    expect(&mut c, &["SET", "l", "v", "IFEQ", "a", "GET"], WRONGTYPE);
    expect(&mut c, &["TYPE", "l"], b"+list\r\n");

    // IFEQ is exclusive with NX, XX and a second IFEQ, in any order; it needs a value.
    for args in [
        &["SET", "k", "v", "IFEQ", "g1", "NX"][..],
        &["SET", "k", "v", "NX", "IFEQ", "g1"],
        &["SET", "k", "v", "IFEQ", "g1", "XX"],
        &["SET", "k", "v", "XX", "IFEQ", "g1"],
        &["SET", "k", "v", "IFEQ", "g1", "IFEQ", "g1"],
        &["SET", "k", "v", "IFEQ"],
        &["SET", "k", "v", "IFEQ", "g1", "EX", "10", "KEEPTTL"],
    ] {
        expect(&mut c, args, SYNTAX);
    }
    expect(&mut c, &["GET", "k"], b"$2\r\ng1\r\n");
    // Expiry errors are reported before the comparison.
    expect(
        &mut c,
        &["SET", "k", "v", "IFEQ", "nope", "EX", "0"],
        b"-ERR invalid expire time in 'set' command\r\n",
    );

    // RESP3: the abort reply is RESP3's null.
    c.cmd(&["HELLO", "3"]);
    expect(&mut c, &["SET", "k", "v", "IFEQ", "nope"], b"_\r\n");
    expect(&mut c, &["SET", "k", "v", "IFEQ", "g1"], b"+OK\r\n");
}

#[test]
fn set_ifeq_refused_before_valkey_81() {
    for (flavor, version) in [("redis", "7.1.0"), ("valkey", "7.2.6"), ("valkey", "8.0.1")] {
        let (_h, mut c) = node(flavor, version);
        c.cmd(&["SET", "k", "old"]);
        expect(&mut c, &["SET", "k", "new", "IFEQ", "old"], SYNTAX);
        expect(&mut c, &["GET", "k"], b"$3\r\nold\r\n");
        // NX / XX unchanged.
        expect(&mut c, &["SET", "k", "x", "NX"], b"$-1\r\n");
        expect(&mut c, &["SET", "k", "x", "XX"], b"+OK\r\n");
    }
}

#[test]
fn hscan_novalues_zscan_noscores_on_valkey_80() {
    for version in ["8.0.1", "8.1.0"] {
        let (_h, mut c) = node("valkey", version);
        c.cmd(&["HSET", "h", "f1", "v1", "f2", "v2"]);
        c.cmd(&["ZADD", "z", "1", "a", "2.5", "b"]);
        c.cmd(&["SADD", "s", "m"]);
        expect(
            &mut c,
            &["HSCAN", "h", "0", "NOVALUES"],
            b"*2\r\n$1\r\n0\r\n*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n",
        );
        expect(
            &mut c,
            &["HSCAN", "h", "0", "MATCH", "*2", "novalues", "COUNT", "10"],
            b"*2\r\n$1\r\n0\r\n*1\r\n$2\r\nf2\r\n",
        );
        // Without the option: fields and values as before.
        expect(
            &mut c,
            &["HSCAN", "h", "0"],
            b"*2\r\n$1\r\n0\r\n*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n",
        );
        expect(
            &mut c,
            &["ZSCAN", "z", "0", "NOSCORES"],
            b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
        );
        expect(
            &mut c,
            &["ZSCAN", "z", "0"],
            b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n",
        );
        // The option on the wrong scan names the scan it belongs to.
        let nov = b"-ERR NOVALUES option can only be used in HSCAN\r\n";
        let nos = b"-ERR NOSCORES option can only be used in ZSCAN\r\n";
        expect(&mut c, &["ZSCAN", "z", "0", "NOVALUES"], nov);
        expect(&mut c, &["SSCAN", "s", "0", "NOVALUES"], nov);
        expect(&mut c, &["SCAN", "0", "NOVALUES"], nov);
        expect(&mut c, &["HSCAN", "h", "0", "NOSCORES"], nos);
        expect(&mut c, &["SCAN", "0", "NOSCORES"], nos);
    }
}

#[test]
fn scan_options_refused_before_valkey_80() {
    for (flavor, version) in [("redis", "7.1.0"), ("valkey", "7.2.6")] {
        let (_h, mut c) = node(flavor, version);
        c.cmd(&["HSET", "h", "f1", "v1"]);
        c.cmd(&["ZADD", "z", "1", "a"]);
        expect(&mut c, &["HSCAN", "h", "0", "NOVALUES"], SYNTAX);
        expect(&mut c, &["ZSCAN", "z", "0", "NOSCORES"], SYNTAX);
        expect(&mut c, &["SCAN", "0", "NOVALUES"], SYNTAX);
    }
}

#[test]
fn script_show_on_valkey_80() {
    let (_h, mut c) = node("valkey", "8.0.1");
    let body = "return redis.call('get', KEYS[1])";
    let (_, v) = c.cmd(&["SCRIPT", "LOAD", body]);
    let RVal::Bulk(Some(sha)) = v else {
        panic!("SCRIPT LOAD: {v:?}")
    };
    let sha = String::from_utf8(sha).expect("hex sha");
    let want = format!("${}\r\n{body}\r\n", body.len());
    expect(&mut c, &["SCRIPT", "SHOW", &sha], want.as_bytes());
    // The sha is matched case-insensitively, as the script cache is.
    expect(
        &mut c,
        &["SCRIPT", "show", &sha.to_uppercase()],
        want.as_bytes(),
    );
    let noscript = b"-NOSCRIPT No matching script. Please use EVAL.\r\n";
    expect(
        &mut c,
        &["SCRIPT", "SHOW", "ffffffffffffffffffffffffffffffffffffffff"],
        noscript,
    );
    // Not 40 characters: unknown whatever it holds.
    expect(&mut c, &["SCRIPT", "SHOW", &sha[..39]], noscript);
    expect(&mut c, &["SCRIPT", "SHOW", &format!("{sha}0")], noscript);
    expect(
        &mut c,
        &["SCRIPT", "SHOW"],
        b"-ERR wrong number of arguments for 'script|show' command\r\n",
    );
    // After a flush the body is gone.
    c.cmd(&["SCRIPT", "FLUSH"]);
    expect(&mut c, &["SCRIPT", "SHOW", &sha], noscript);
    // SCRIPT HELP lists SHOW.
    let (_, help) = c.cmd(&["SCRIPT", "HELP"]);
    let RVal::Array(_, Some(lines)) = help else {
        panic!("SCRIPT HELP: {help:?}")
    };
    assert!(lines.contains(&RVal::Simple(b"SHOW <sha1>".to_vec())));
}

#[test]
fn script_show_refused_before_valkey_80() {
    for (flavor, version) in [("redis", "7.1.0"), ("valkey", "7.2.6")] {
        let (_h, mut c) = node(flavor, version);
        let (_, v) = c.cmd(&["SCRIPT", "LOAD", "return 1"]);
        let RVal::Bulk(Some(sha)) = v else {
            panic!("SCRIPT LOAD: {v:?}")
        };
        let sha = String::from_utf8(sha).expect("hex sha");
        expect(
            &mut c,
            &["SCRIPT", "SHOW", &sha],
            b"-ERR unknown subcommand 'SHOW'. Try SCRIPT HELP.\r\n",
        );
        let (_, help) = c.cmd(&["SCRIPT", "HELP"]);
        let RVal::Array(_, Some(lines)) = help else {
            panic!("SCRIPT HELP: {help:?}")
        };
        assert!(!lines.contains(&RVal::Simple(b"SHOW <sha1>".to_vec())));
    }
}

#[test]
fn client_kill_maxage_on_valkey_80() {
    let (h, mut c) = node("valkey", "8.0.1");
    let port = h.local_addr().port();
    let mut old = Conn::connect(port);
    old.cmd(&["PING"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let mut young = Conn::connect(port);
    young.cmd(&["PING"]);
    expect(
        &mut c,
        &["CLIENT", "KILL", "MAXAGE", "abc"],
        b"-ERR maxage is not an integer or out of range\r\n",
    );
    expect(
        &mut c,
        &["CLIENT", "KILL", "MAXAGE", "0"],
        b"-ERR maxage should be greater than 0\r\n",
    );
    expect(
        &mut c,
        &["CLIENT", "KILL", "MAXAGE", "-5"],
        b"-ERR maxage should be greater than 0\r\n",
    );
    // A lone word is the old CLIENT KILL <addr> form; a trailing MAXAGE lacks its value.
    expect(
        &mut c,
        &["CLIENT", "KILL", "MAXAGE"],
        b"-ERR No such client\r\n",
    );
    expect(
        &mut c,
        &["CLIENT", "KILL", "SKIPME", "yes", "MAXAGE"],
        SYNTAX,
    );
    // Nobody is an hour old.
    expect(&mut c, &["CLIENT", "KILL", "MAXAGE", "3600"], b":0\r\n");
    // `old` (and `c`, skipped as SKIPME defaults to yes) are 2 s old; `young` is not.
    expect(&mut c, &["CLIENT", "KILL", "MAXAGE", "2"], b":1\r\n");
    assert!(old.read_reply().is_none(), "the old client is disconnected");
    expect(&mut young, &["PING"], b"+PONG\r\n");
    // MAXAGE combines with the other filters (AND).
    let id = match young.cmd(&["CLIENT", "ID"]).1 {
        RVal::Int(i) => i.to_string(),
        v => panic!("CLIENT ID: {v:?}"),
    };
    expect(
        &mut c,
        &["CLIENT", "KILL", "ID", &id, "MAXAGE", "1000"],
        b":0\r\n",
    );
    expect(&mut young, &["PING"], b"+PONG\r\n");
}

#[test]
fn client_kill_maxage_refused_before_valkey_80() {
    for (flavor, version) in [("redis", "7.1.0"), ("valkey", "7.2.6")] {
        let (_h, mut c) = node(flavor, version);
        expect(&mut c, &["CLIENT", "KILL", "MAXAGE", "1"], SYNTAX);
    }
}

/// An entry of SLOWLOG GET / COMMANDLOG GET: (id, value, args).
fn log_entries(v: &RVal) -> Vec<(i64, i64, Vec<Vec<u8>>)> {
    let RVal::Array(_, Some(items)) = v else {
        panic!("log: {v:?}")
    };
    items
        .iter()
        .map(|e| {
            let RVal::Array(_, Some(f)) = e else {
                panic!("entry: {e:?}")
            };
            assert_eq!(f.len(), 6, "{e:?}");
            let (RVal::Int(id), RVal::Int(_), RVal::Int(val), RVal::Array(_, Some(a))) =
                (&f[0], &f[1], &f[2], &f[3])
            else {
                panic!("entry: {e:?}")
            };
            let args = a
                .iter()
                .map(|x| match x {
                    RVal::Bulk(Some(b)) => b.clone(),
                    x => panic!("arg: {x:?}"),
                })
                .collect();
            (*id, *val, args)
        })
        .collect()
}

#[test]
fn commandlog_on_valkey_81() {
    let (_h, mut c) = node_with("valkey", "8.1.0", true);
    // Defaults: 1 MB thresholds, 128 entries.
    let (_, cfg) = c.cmd(&["CONFIG", "GET", "commandlog-*"]);
    let RVal::Array(_, Some(kv)) = cfg else {
        panic!("CONFIG GET: {cfg:?}")
    };
    let kv: Vec<String> = kv
        .iter()
        .map(|x| match x {
            RVal::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            x => panic!("{x:?}"),
        })
        .collect();
    for pair in [
        ["commandlog-request-larger-than", "1048576"],
        ["commandlog-reply-larger-than", "1048576"],
        ["commandlog-large-request-max-len", "128"],
        ["commandlog-large-reply-max-len", "128"],
        ["commandlog-execution-slower-than", "10000"],
        ["commandlog-slow-execution-max-len", "128"],
    ] {
        assert!(kv.windows(2).any(|w| w == pair), "{pair:?} in {kv:?}");
    }
    for t in ["slow", "large-request", "large-reply"] {
        expect(&mut c, &["COMMANDLOG", "RESET", t], b"+OK\r\n");
        expect(&mut c, &["COMMANDLOG", "LEN", t], b":0\r\n");
    }
    // A 1 MB value is a large request; reading it back is a large reply.
    let big = "x".repeat(1 << 20);
    expect(&mut c, &["SET", "big", &big], b"+OK\r\n");
    c.cmd(&["GET", "big"]);
    c.cmd(&["GET", "missing"]);
    expect(&mut c, &["COMMANDLOG", "LEN", "large-request"], b":1\r\n");
    expect(&mut c, &["COMMANDLOG", "LEN", "large-reply"], b":1\r\n");
    let req = log_entries(&c.cmd(&["COMMANDLOG", "GET", "-1", "large-request"]).1);
    // *3 $3 SET $3 big $1048576 <value>: the request's RESP size.
    let want_req = 4 + 4 + 5 + 4 + 5 + 10 + (1 << 20) + 2;
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].0, 0);
    assert_eq!(req[0].1, want_req as i64);
    assert_eq!(req[0].2[0], b"SET");
    assert_eq!(req[0].2[1], b"big");
    // Long arguments are trimmed as in the slowlog.
    assert_eq!(
        req[0].2[2],
        format!("{}... (1048448 more bytes)", "x".repeat(128)).into_bytes()
    );
    let rep = log_entries(&c.cmd(&["COMMANDLOG", "GET", "10", "large-reply"]).1);
    assert_eq!(rep.len(), 1);
    // $1048576\r\n<value>\r\n
    assert_eq!(rep[0].1, (1 + 7 + 2 + (1 << 20) + 2) as i64);
    assert_eq!(rep[0].2, vec![b"GET".to_vec(), b"big".to_vec()]);

    // Lower thresholds log small commands; ids grow, newest first.
    c.cmd(&["CONFIG", "SET", "commandlog-request-larger-than", "0"]);
    c.cmd(&["PING"]);
    let req = log_entries(&c.cmd(&["COMMANDLOG", "GET", "2", "large-request"]).1);
    assert_eq!(req.len(), 2);
    assert!(req[0].0 > req[1].0);
    assert_eq!(req[0].2, vec![b"PING".to_vec()]);
    assert_eq!(req[0].1, 14); // *1\r\n$4\r\nPING\r\n
                              // -1 turns it off.
    c.cmd(&["CONFIG", "SET", "commandlog-request-larger-than", "-1"]);
    c.cmd(&["COMMANDLOG", "RESET", "large-request"]);
    c.cmd(&["PING"]);
    expect(&mut c, &["COMMANDLOG", "LEN", "large-request"], b":0\r\n");
    // max-len trims.
    c.cmd(&["CONFIG", "SET", "commandlog-reply-larger-than", "0"]);
    c.cmd(&["CONFIG", "SET", "commandlog-large-reply-max-len", "2"]);
    for _ in 0..5 {
        c.cmd(&["PING"]);
    }
    expect(&mut c, &["COMMANDLOG", "LEN", "large-reply"], b":2\r\n");
    expect(
        &mut c,
        &["COMMANDLOG", "GET", "0", "large-reply"],
        b"*0\r\n",
    );

    // slow is the slowlog.
    c.cmd(&["CONFIG", "SET", "commandlog-execution-slower-than", "0"]);
    expect(
        &mut c,
        &["CONFIG", "GET", "slowlog-log-slower-than"],
        b"*2\r\n$23\r\nslowlog-log-slower-than\r\n$1\r\n0\r\n",
    );
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["ECHO", "hi"]);
    let slow = log_entries(&c.cmd(&["COMMANDLOG", "GET", "1", "slow"]).1);
    assert_eq!(slow[0].2, vec![b"ECHO".to_vec(), b"hi".to_vec()]);
    // SLOWLOG sees the same log (newest: the COMMANDLOG GET just logged).
    let via_slowlog = log_entries(&c.cmd(&["SLOWLOG", "GET", "2"]).1);
    assert_eq!(via_slowlog[1].2, slow[0].2);
    assert_eq!(via_slowlog[0].2[0], b"COMMANDLOG");
    expect(&mut c, &["COMMANDLOG", "RESET", "slow"], b"+OK\r\n");
    expect(&mut c, &["SLOWLOG", "LEN"], b":1\r\n"); // the RESET itself

    // Errors, as commandlog.c words them.
    let bad_type =
        b"-ERR type should be one of the following: slow, large-request, large-reply\r\n";
    expect(&mut c, &["COMMANDLOG", "LEN", "fast"], bad_type);
    expect(&mut c, &["COMMANDLOG", "RESET", "x"], bad_type);
    expect(&mut c, &["COMMANDLOG", "GET", "1", "x"], bad_type);
    let bad_count = b"-ERR count should be greater than or equal to -1\r\n";
    expect(&mut c, &["COMMANDLOG", "GET", "-2", "slow"], bad_count);
    expect(&mut c, &["COMMANDLOG", "GET", "x", "x"], bad_count);
    expect(
        &mut c,
        &["COMMANDLOG", "GET", "1"],
        b"-ERR wrong number of arguments for 'commandlog|get' command\r\n",
    );
    expect(
        &mut c,
        &["COMMANDLOG", "LEN"],
        b"-ERR wrong number of arguments for 'commandlog|len' command\r\n",
    );
    expect(
        &mut c,
        &["COMMANDLOG", "FOO"],
        b"-ERR unknown subcommand 'FOO'. Try COMMANDLOG HELP.\r\n",
    );
    let (_, help) = c.cmd(&["COMMANDLOG", "HELP"]);
    let RVal::Array(_, Some(lines)) = help else {
        panic!("HELP: {help:?}")
    };
    assert_eq!(lines[1], RVal::Simple(b"GET <count> <type>".to_vec()));
    assert_eq!(lines.len(), 16);
    let (_, cat) = c.cmd(&["ACL", "CAT", "admin"]);
    let RVal::Array(_, Some(names)) = cat else {
        panic!("ACL CAT: {cat:?}")
    };
    assert!(names.contains(&RVal::Bulk(Some(b"commandlog".to_vec()))));
    // Listed with its arity (the subcommand entries Valkey adds are not modelled).
    let info = raw(&mut c, &["COMMAND", "INFO", "commandlog"]);
    assert!(
        info.starts_with(b"*1\r\n*10\r\n$10\r\ncommandlog\r\n:-2\r\n"),
        "{}",
        String::from_utf8_lossy(&info)
    );
}

#[test]
fn commandlog_unknown_before_valkey_81() {
    for (flavor, version) in [("redis", "7.1.0"), ("valkey", "7.2.6"), ("valkey", "8.0.1")] {
        let (_h, mut c) = node_with(flavor, version, true);
        expect(
            &mut c,
            &["COMMANDLOG", "LEN", "slow"],
            b"-ERR unknown command 'COMMANDLOG', with args beginning with: 'LEN' 'slow' \r\n",
        );
        expect(&mut c, &["COMMAND", "INFO", "commandlog"], b"*1\r\n$-1\r\n");
        expect(&mut c, &["CONFIG", "GET", "commandlog-*"], b"*0\r\n");
        let (_, cat) = c.cmd(&["ACL", "CAT", "admin"]);
        let RVal::Array(_, Some(names)) = cat else {
            panic!("ACL CAT: {cat:?}")
        };
        assert!(names.contains(&RVal::Bulk(Some(b"slowlog".to_vec()))));
        assert!(!names.contains(&RVal::Bulk(Some(b"commandlog".to_vec()))));
        expect(
            &mut c,
            &["EVAL", "return redis.call('commandlog', 'len', 'slow')", "0"],
            b"-ERR Unknown Redis command called from script script: 2b7c7c6233eacd97742668db7bd90226fd2eeb48, on @user_script:1.\r\n",
        );
    }
}

#[test]
fn commandlog_not_on_serverless_nodes() {
    // The control plane marks a serverless cache's node (AWS: COMMANDLOG is not
    // available on serverless caches).
    let (h, mut c) = node("valkey", "8.1.0");
    expect(&mut c, &["COMMANDLOG", "LEN", "slow"], b":0\r\n");
    h.set_param("elastilite-serverless", "yes").expect("param");
    // Control messages are applied by the node thread asynchronously.
    for _ in 0..200 {
        if raw(&mut c, &["COMMANDLOG", "LEN", "slow"]).starts_with(b"-") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    expect(
        &mut c,
        &["COMMANDLOG", "LEN", "slow"],
        b"-ERR unknown command 'COMMANDLOG', with args beginning with: 'LEN' 'slow' \r\n",
    );
    // The other Valkey 8.1 additions stay.
    c.cmd(&["SET", "k", "a"]);
    expect(&mut c, &["SET", "k", "b", "IFEQ", "a"], b"+OK\r\n");
}

#[test]
fn scans_key_lookup_order_matches_redis_server() {
    let Some(redis) = start_redis() else { return };
    let mut a = Conn::connect(redis.addr().port());
    let (_h, mut b) = node("redis", "7.1.0");
    for c in [&mut a, &mut b] {
        c.cmd(&["FLUSHALL"]);
        c.cmd(&["SET", "str", "x"]);
        c.cmd(&["HSET", "h", "f", "v"]);
    }
    for cmd in ["HSCAN", "SSCAN", "ZSCAN"] {
        for args in [
            &[cmd, "missing", "0", "FOO"][..],
            &[cmd, "missing", "0", "NOVALUES"],
            &[cmd, "missing", "0", "COUNT", "0"],
            &[cmd, "str", "0", "FOO"],
            &[cmd, "missing", "x"],
            &[cmd, "h", "0", "NOVALUES"],
        ] {
            assert_eq!(
                String::from_utf8_lossy(&raw(&mut a, args)),
                String::from_utf8_lossy(&raw(&mut b, args)),
                "{args:?}"
            );
        }
    }
    let hits = |c: &mut Conn| {
        let (_, v) = c.cmd(&["INFO", "stats"]);
        let RVal::Bulk(Some(t)) = v else {
            panic!("INFO: {v:?}")
        };
        String::from_utf8_lossy(&t)
            .lines()
            .filter(|l| l.starts_with("keyspace_"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(hits(&mut a), hits(&mut b));
}

#[test]
fn scans_look_the_key_up_before_the_options() {
    // redis-server 7.0.15 answers these so (hscanCommand looks the key up first), and
    // Valkey keeps that order for NOVALUES / NOSCORES.
    for (flavor, version) in [("redis", "7.1.0"), ("valkey", "7.2.6"), ("valkey", "8.1.0")] {
        let (_h, mut c) = node(flavor, version);
        c.cmd(&["SET", "str", "x"]);
        for cmd in ["HSCAN", "SSCAN", "ZSCAN"] {
            expect(
                &mut c,
                &[cmd, "missing", "0", "FOO"],
                b"*2\r\n$1\r\n0\r\n*0\r\n",
            );
            expect(
                &mut c,
                &[cmd, "missing", "0", "COUNT", "0"],
                b"*2\r\n$1\r\n0\r\n*0\r\n",
            );
            expect(
                &mut c,
                &[cmd, "missing", "0", "NOSCORES"],
                b"*2\r\n$1\r\n0\r\n*0\r\n",
            );
            expect(&mut c, &[cmd, "str", "0", "FOO"], WRONGTYPE);
            expect(&mut c, &[cmd, "missing", "x"], b"-ERR invalid cursor\r\n");
        }
    }
}
