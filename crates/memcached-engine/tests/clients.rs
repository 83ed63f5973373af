//! Real client libraries against our node, when they are installed (skipped with a message
//! otherwise; these are not required in CI):
//! - pymemcache (`pip install pymemcache==4.0.0`): the common API surface;
//! - the Node `memcached` package 2.2.2 (directory with node_modules given by env
//!   `MEMCACHED_NODE_MODULES`, e.g. after `npm install memcached@2.2.2` there): the seed's session
//!   use, set with a 600 s TTL and get back.

mod common;

use std::process::Command;

use memcached_engine::{Config, DiscoveryNode};

fn python_has_pymemcache() -> bool {
    Command::new("python3")
        .args(["-c", "import pymemcache"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

const PY: &str = r#"
import sys
from pymemcache.client.base import Client
port = int(sys.argv[1])
c = Client(("127.0.0.1", port), default_noreply=False)
assert c.set("k", b"v", expire=600) is True
assert c.get("k") == b"v"
assert c.add("k", b"w") is False
assert c.add("k2", b"w") is True
assert c.replace("k3", b"x") is False
assert c.append("k", b"+") is True
assert c.prepend("k", b"-") is True
assert c.get("k") == b"-v+"
val, cas = c.gets("k")
assert val == b"-v+"
assert c.cas("k", b"new", cas) is True
assert c.cas("k", b"newer", cas) is False
c.set("n", b"10")
assert c.incr("n", 5) == 15
assert c.decr("n", 20) == 0
assert c.incr("missing", 1) is None
assert c.touch("k", 100) is True
assert c.delete("k") is True
assert c.delete("k", noreply=False) is False
assert c.get_many(["k2", "n", "nope"]) == {"k2": b"w", "n": b"0 "}
big = b"x" * (1000 * 1000)
assert c.set("big", big) is True and c.get("big") == big
st = c.stats()
assert st[b"curr_items"] >= 1 and b"evictions" in st
assert c.version().startswith(b"1.6")
c.flush_all()
assert c.get("k2") is None
# the auto-discovery exchange as cluster clients do it
c.close()
import socket
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"config get cluster\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    data += s.recv(4096)
head, rest = data.split(b"\r\n", 1)
_, _, _, n = head.split()
payload = rest[: int(n)]
version, nodes, _ = payload.split(b"\n")
assert version == b"7", payload
assert nodes.split(b" ") == [b"n1.cfg.local|127.0.0.1|11211", b"n2.cfg.local|127.0.0.2|11212"], nodes
print("pymemcache OK")
"#;

#[test]
fn pymemcache_client() {
    if !python_has_pymemcache() {
        eprintln!("SKIP: python3 with pymemcache is not available");
        return;
    }
    let node = common::start_node(Config::default());
    node.set_cluster_config(
        7,
        vec![
            DiscoveryNode {
                host: "n1.cfg.local".into(),
                ip: "127.0.0.1".into(),
                port: 11211,
            },
            DiscoveryNode {
                host: "n2.cfg.local".into(),
                ip: "127.0.0.2".into(),
                port: 11212,
            },
        ],
    );
    let out = Command::new("python3")
        .args(["-c", PY, &node.local_addr().port().to_string()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const JS: &str = r#"
const Memcached = require('memcached');
const port = process.argv[process.argv.length - 1];
const mc = new Memcached('127.0.0.1:' + port, { retries: 0, timeout: 2000 });
const session = { user: 'alice', cart: [1, 2, 3], at: 1700000000 };
mc.set('sess:8f2c', session, 600, (err) => {
  if (err) { console.error('set', err); process.exit(1); }
  mc.get('sess:8f2c', (err, data) => {
    if (err) { console.error('get', err); process.exit(1); }
    if (JSON.stringify(data) !== JSON.stringify(session)) { console.error('mismatch', data); process.exit(1); }
    mc.set('plain', 'hello', 600, () => mc.get('plain', (e, v) => {
      if (v !== 'hello') { console.error('plain', v); process.exit(1); }
      console.log('node memcached OK');
      mc.end();
    }));
  });
});
"#;

#[test]
fn node_memcached_package_seed_session() {
    let Ok(dir) = std::env::var("MEMCACHED_NODE_MODULES") else {
        eprintln!("SKIP: set MEMCACHED_NODE_MODULES to a directory with node_modules/memcached");
        return;
    };
    if common::find_binary("node").is_none() {
        eprintln!("SKIP: node is not installed");
        return;
    }
    let node = common::start_node(Config::default());
    let out = Command::new("node")
        .current_dir(&dir)
        .args(["-e", JS, "--", &node.local_addr().port().to_string()])
        .output()
        .expect("node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("node memcached OK"),
        "{text}"
    );
}
