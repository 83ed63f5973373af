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
    let (h, port) = start_node(redis_engine::Config {
        flavor: flavor.into(),
        version: version.into(),
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
