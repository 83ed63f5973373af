//! Tests for the engine's HyperLogLog (`crates/redis-engine/src/hll.rs`), compiled here because
//! that file is a module of the engine crate: its unit tests run here too, plus a differential
//! test against a real redis-server.

#[allow(dead_code)]
#[path = "../../redis-engine/src/hll.rs"]
mod hll;

mod common;

use common::{RedisServer, Reply};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random PFADD / PFCOUNT / PFMERGE sequences against redis-server and our implementation;
/// every value is compared byte for byte after every command.
#[test]
fn differential_against_redis_server() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let mut c = server.client();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    const KEYS: usize = 4;
    let mut ours: Vec<Vec<u8>> = vec![Vec::new(); KEYS];
    for step in 0..600 {
        let k = rng.below(KEYS as u64) as usize;
        let key = format!("hll{k}");
        match rng.below(10) {
            0..=5 => {
                let n = match rng.below(10) {
                    0 => 0,
                    1 => 300 + rng.below(700),
                    _ => 1 + rng.below(20),
                };
                let space = if rng.below(2) == 0 { 200 } else { 1_000_000 };
                let els: Vec<Vec<u8>> = (0..n)
                    .map(|_| format!("el:{}", rng.below(space)).into_bytes())
                    .collect();
                let mut args: Vec<Vec<u8>> = vec![b"PFADD".to_vec(), key.clone().into_bytes()];
                args.extend(els.iter().cloned());
                let theirs = c.cmd(&args).int();
                let refs: Vec<&[u8]> = els.iter().map(|e| e.as_slice()).collect();
                let mine = hll::pfadd(&mut ours[k], &refs).unwrap();
                assert_eq!(theirs == 1, mine, "step {step}: PFADD reply");
            }
            6 | 7 => {
                let theirs = c.cmd(&["PFCOUNT", key.as_str()]).int();
                let mine = hll::pfcount(&mut ours[k]).unwrap();
                assert_eq!(theirs as u64, mine, "step {step}: PFCOUNT");
            }
            8 => {
                let k2 = rng.below(KEYS as u64) as usize;
                let key2 = format!("hll{k2}");
                let theirs = c.cmd(&["PFCOUNT", key.as_str(), key2.as_str()]).int();
                let srcs: Vec<&[u8]> = [k, k2]
                    .iter()
                    .filter(|&&i| !ours[i].is_empty())
                    .map(|&i| ours[i].as_slice())
                    .collect();
                let mine = if srcs.is_empty() {
                    0
                } else {
                    hll::pfcount_many(&srcs).unwrap()
                };
                assert_eq!(theirs as u64, mine, "step {step}: PFCOUNT 2 keys");
            }
            _ => {
                let srcs_idx: Vec<usize> = (0..1 + rng.below(2))
                    .map(|_| rng.below(KEYS as u64) as usize)
                    .collect();
                let mut args = vec!["PFMERGE".to_string(), key.clone()];
                args.extend(srcs_idx.iter().map(|i| format!("hll{i}")));
                assert_eq!(c.cmd(&args), Reply::Status("OK".into()));
                let copies: Vec<Vec<u8>> = srcs_idx
                    .iter()
                    .filter(|&&i| i != k && !ours[i].is_empty())
                    .map(|&i| ours[i].clone())
                    .collect();
                let refs: Vec<&[u8]> = copies.iter().map(|v| v.as_slice()).collect();
                hll::pfmerge(&mut ours[k], &refs).unwrap();
            }
        }
        let theirs = match c.cmd(&["GET", key.as_str()]) {
            Reply::Bulk(b) => b.unwrap_or_default(),
            other => panic!("{other:?}"),
        };
        assert_eq!(theirs.len(), ours[k].len(), "step {step}: length of {key}");
        assert!(theirs == ours[k], "step {step}: bytes of {key} differ");
    }
}

/// A value redis-server built (fetched with GET) keeps working here.
#[test]
fn value_from_redis_server_works_here() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let mut c = server.client();
    let els: Vec<String> = (0..2500).map(|i| format!("v{i}")).collect();
    let mut args = vec!["PFADD".to_string(), "h".into()];
    args.extend(els.iter().take(700).cloned());
    c.cmd(&args);
    let mut v = c.cmd(&["GET", "h"]).bytes();
    assert!(hll::is_valid(&v));
    let mut args = vec!["PFADD".to_string(), "h".into()];
    args.extend(els.iter().skip(700).cloned());
    c.cmd(&args);
    let refs: Vec<&[u8]> = els.iter().skip(700).map(|e| e.as_bytes()).collect();
    hll::pfadd(&mut v, &refs).unwrap();
    assert_eq!(v, c.cmd(&["GET", "h"]).bytes());
    assert_eq!(
        hll::pfcount(&mut v).unwrap(),
        c.cmd(&["PFCOUNT", "h"]).int() as u64
    );
}
