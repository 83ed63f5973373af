//! Small memcached text-protocol load generator (single thread, many connections, pipelining).
//!
//! Mix mode (default): each connection sends `--pipeline` requests at a time (get:set 1:1 over
//! `--keys` keys, `--value-size` bytes), waits for all replies, repeats `--requests` times per
//! connection. Prints one line: `ops_per_sec=.. p50_us=.. p99_us=.. ops=.. secs=..` (latency is
//! per pipelined batch round trip, as memtier reports it).
//!
//! Load mode (`--load N`): sets keys 1..=N once (pipelined) and exits.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    host: String,
    port: u16,
    conns: usize,
    pipeline: usize,
    requests: usize,
    keys: u64,
    value_size: usize,
    load: u64,
    ratio_set: u32,
    ratio_get: u32,
}

fn parse() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 11211,
        conns: 50,
        pipeline: 1,
        requests: 10_000,
        keys: 100_000,
        value_size: 32,
        load: 0,
        ratio_set: 1,
        ratio_get: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--host" => a.host = v,
            "--port" => a.port = v.parse().unwrap_or(a.port),
            "--conns" => a.conns = v.parse().unwrap_or(a.conns),
            "--pipeline" => a.pipeline = v.parse().unwrap_or(a.pipeline).max(1),
            "--requests" => a.requests = v.parse().unwrap_or(a.requests),
            "--keys" => a.keys = v.parse().unwrap_or(a.keys).max(1),
            "--value-size" => a.value_size = v.parse().unwrap_or(a.value_size),
            "--load" => a.load = v.parse().unwrap_or(0),
            "--ratio" => {
                let (s, g) = v.split_once(':').unwrap_or(("1", "1"));
                a.ratio_set = s.parse().unwrap_or(1);
                a.ratio_get = g.parse().unwrap_or(1);
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

/// Count complete replies in `buf[..]`; returns (replies, bytes consumed).
fn count_replies(buf: &[u8]) -> (usize, usize) {
    let mut pos = 0;
    let mut n = 0;
    loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
            return (n, pos);
        };
        let line = &buf[pos..pos + nl + 1];
        if line.starts_with(b"VALUE ") {
            // VALUE key flags bytes\r\n<data>\r\n ... END\r\n
            let len: usize = line
                .split(|&b| b == b' ')
                .nth(3)
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            let need = pos + nl + 1 + len + 2;
            if buf.len() < need {
                return (n, pos);
            }
            pos = need; // the END line follows and counts the reply
            continue;
        }
        pos += nl + 1;
        n += 1; // STORED / END / errors
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn conn_task(
    a: std::rc::Rc<Args>,
    idx: usize,
    lat: std::rc::Rc<std::cell::RefCell<Vec<u32>>>,
) -> std::io::Result<u64> {
    let mut s = TcpStream::connect((a.host.as_str(), a.port)).await?;
    s.set_nodelay(true)?;
    let value = vec![b'x'; a.value_size];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((idx as u64 + 1) * 0x1000_0001));
    let mut req = Vec::with_capacity(a.pipeline * (a.value_size + 64));
    let mut rbuf = vec![0u8; 0];
    let mut tmp = vec![0u8; 256 * 1024];
    let mut done: u64 = 0;
    let (batches, load_range) = if a.load > 0 {
        let per = a.load.div_ceil(a.conns as u64);
        let lo = idx as u64 * per + 1;
        let hi = (lo + per - 1).min(a.load);
        let n = if hi >= lo { hi - lo + 1 } else { 0 };
        ((n as usize).div_ceil(a.pipeline), Some((lo, hi)))
    } else {
        (a.requests.div_ceil(a.pipeline), None)
    };
    let mut next_load = load_range.map(|r| r.0).unwrap_or(0);
    let total_ratio = (a.ratio_set + a.ratio_get).max(1) as u64;
    for _ in 0..batches {
        req.clear();
        let mut sent = 0;
        for _ in 0..a.pipeline {
            if let Some((_, hi)) = load_range {
                if next_load > hi {
                    break;
                }
                let k = next_load;
                next_load += 1;
                req.extend_from_slice(
                    format!("set memtier-{k} 0 0 {}\r\n", value.len()).as_bytes(),
                );
                req.extend_from_slice(&value);
                req.extend_from_slice(b"\r\n");
            } else {
                let k = rng.next() % a.keys + 1;
                if rng.next() % total_ratio < a.ratio_set as u64 {
                    req.extend_from_slice(
                        format!("set memtier-{k} 0 0 {}\r\n", value.len()).as_bytes(),
                    );
                    req.extend_from_slice(&value);
                    req.extend_from_slice(b"\r\n");
                } else {
                    req.extend_from_slice(format!("get memtier-{k}\r\n").as_bytes());
                }
            }
            sent += 1;
        }
        if sent == 0 {
            break;
        }
        let t0 = Instant::now();
        s.write_all(&req).await?;
        let mut got = 0;
        rbuf.clear();
        while got < sent {
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                return Err(std::io::Error::other("server closed"));
            }
            rbuf.extend_from_slice(&tmp[..n]);
            let (c, used) = count_replies(&rbuf);
            got += c;
            rbuf.drain(..used);
        }
        lat.borrow_mut()
            .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        done += sent as u64;
    }
    Ok(done)
}

fn main() {
    let a = std::rc::Rc::new(parse());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let lat = std::rc::Rc::new(std::cell::RefCell::new(Vec::<u32>::new()));
    let start = Instant::now();
    let total: u64 = local.block_on(&rt, async {
        let mut hs = Vec::new();
        for i in 0..a.conns {
            hs.push(tokio::task::spawn_local(conn_task(
                a.clone(),
                i,
                lat.clone(),
            )));
        }
        let mut t = 0;
        for h in hs {
            match h.await {
                Ok(Ok(n)) => t += n,
                Ok(Err(e)) => eprintln!("connection error: {e}"),
                Err(e) => eprintln!("task error: {e}"),
            }
        }
        t
    });
    let secs = start.elapsed().max(Duration::from_micros(1)).as_secs_f64();
    let mut l = lat.borrow_mut();
    l.sort_unstable();
    let pct = |p: f64| -> u32 {
        if l.is_empty() {
            0
        } else {
            l[((l.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    println!(
        "ops_per_sec={:.0} p50_us={} p99_us={} ops={} secs={:.3}",
        total as f64 / secs,
        pct(0.50),
        pct(0.99),
        total,
        secs
    );
}
