//! Accept loop and per-connection batch processing on the node's thread.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::node::{ClusterConfig, ConnInfo, ConnState, Node, Outcome, Proto};
use crate::store::{Settings, Store};
use crate::{binary, text};

/// Flush replies once this much output is pending, even mid-batch.
const OUT_HIGH_WATER: usize = 256 * 1024;

// Everything a node's accept loop owns, handed over once at spawn.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    listener: std::net::TcpListener,
    addr: SocketAddr,
    settings: Arc<Settings>,
    cluster: Arc<Mutex<ClusterConfig>>,
    version: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
    stats: Arc<Mutex<crate::NodeStats>>,
    admit: Option<crate::AdmitFn>,
    throttle: Arc<crate::ThrottleSlot>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("memcached node {addr}: cannot register listener: {e}");
            return;
        }
    };
    let node = Rc::new(RefCell::new(Node {
        store: Store::new(settings),
        version,
        cluster,
        verbosity: 0,
        curr_connections: 0,
        conns: BTreeMap::new(),
        listen_addr: addr,
        start: Instant::now(),
    }));
    // LRU-crawler equivalent: reclaim expired items in the background, a slice per 100 ms.
    {
        let node = node.clone();
        let tid = current_tid();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Ok(mut n) = node.try_borrow_mut() {
                    n.store.tick();
                    n.store.crawl(5_000);
                    publish(&n, tid, &stats);
                }
            }
        });
    }
    let mut next_id: u64 = 1;
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() { break; }
            }
            acc = listener.accept() => {
                match acc {
                    Ok((stream, peer)) => {
                        if admit.as_ref().is_some_and(|a| !a(peer)) {
                            tracing::info!(%peer, "memcached node {addr}: connection refused: no security group rule admits it");
                            drop(stream);
                            continue;
                        }
                        let id = next_id;
                        next_id += 1;
                        {
                            let mut n = node.borrow_mut();
                            n.curr_connections += 1;
                            n.store.stats.total_connections += 1;
                            let now = n.store.now;
                            n.conns.insert(id, ConnInfo { peer, last_cmd: now, binary: false });
                        }
                        tokio::task::spawn_local(serve(node.clone(), stream, id, throttle.clone()));
                    }
                    Err(e) => {
                        tracing::warn!("memcached node {addr}: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
}

struct ConnGuard {
    node: Rc<RefCell<Node>>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Ok(mut n) = self.node.try_borrow_mut() {
            n.curr_connections = n.curr_connections.saturating_sub(1);
            n.conns.remove(&self.id);
        }
    }
}

fn process(nd: &mut Node, conn: &mut ConnState, avail: &[u8], out: &mut Vec<u8>) -> Outcome {
    match conn.proto {
        Proto::Binary => binary::process(nd, conn, avail, out),
        _ => text::process(nd, conn, avail, out),
    }
}

async fn serve(
    node: Rc<RefCell<Node>>,
    mut stream: TcpStream,
    id: u64,
    throttle: Arc<crate::ThrottleSlot>,
) {
    let _guard = ConnGuard {
        node: node.clone(),
        id,
    };
    let _ = stream.set_nodelay(true);
    let mut rbuf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut start = 0usize;
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut conn = ConnState {
        id,
        proto: Proto::Unknown,
        swallow: 0,
    };
    let mut need_read = true;
    // The request at the head of the buffer waited for the throttle.
    let mut held = false;
    loop {
        if need_read {
            if start > 0 && (start == rbuf.len() || rbuf.capacity() - rbuf.len() < 4096) {
                rbuf.drain(..start);
                start = 0;
            }
            if rbuf.capacity() - rbuf.len() < 4096 {
                rbuf.reserve(rbuf.capacity().max(16 * 1024));
            }
            match stream.read_buf(&mut rbuf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        need_read = true;
        let mut close = false;
        // Throttled (ECPU/second maximum): how long to wait before the next request.
        let mut hold = None;
        let limit = throttle.current();
        {
            let mut nd = node.borrow_mut();
            let nd = &mut *nd;
            nd.store.tick();
            let before = start;
            loop {
                if conn.swallow > 0 {
                    let k = conn.swallow.min(rbuf.len() - start);
                    start += k;
                    conn.swallow -= k;
                    if conn.swallow > 0 {
                        break;
                    }
                }
                if start == rbuf.len() {
                    break;
                }
                let avail = &rbuf[start..];
                if conn.proto == Proto::Unknown {
                    conn.proto = if avail[0] == binary::REQ_MAGIC {
                        Proto::Binary
                    } else {
                        Proto::Text
                    };
                    if let Some(c) = nd.conns.get_mut(&id) {
                        c.binary = conn.proto == Proto::Binary;
                    }
                }
                let r = match &limit {
                    None => process(nd, &mut conn, avail, &mut out),
                    Some(l) => {
                        if let Some(d) = l.wait_time(Instant::now()) {
                            hold = Some(d);
                            held = true;
                            need_read = false;
                            break;
                        }
                        let before = out.len();
                        let r = process(nd, &mut conn, avail, &mut out);
                        if let Outcome::Consumed(k) = r {
                            l.charge(
                                k + out.len().saturating_sub(before),
                                std::mem::take(&mut held),
                            );
                        }
                        r
                    }
                };
                match r {
                    Outcome::Consumed(k) => start += k,
                    Outcome::NeedMore => break,
                    Outcome::Close => {
                        close = true;
                        break;
                    }
                    Outcome::Abort => {
                        out.truncate(nd.store.out_mark);
                        close = true;
                        break;
                    }
                }
                if out.len() >= OUT_HIGH_WATER {
                    need_read = false;
                    break;
                }
            }
            nd.store.pinned.clear();
            nd.store.out_mark = 0;
            nd.store.stats.bytes_read += (start - before) as u64;
            nd.store.stats.bytes_written += out.len() as u64;
            let now = nd.store.now;
            if let Some(c) = nd.conns.get_mut(&id) {
                c.last_cmd = now;
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            if out.capacity() > 4 * 1024 * 1024 {
                out = Vec::with_capacity(16 * 1024);
            } else {
                out.clear();
            }
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }
        if let Some(d) = hold {
            tokio::time::sleep(d).await;
        }
        if start == rbuf.len() {
            start = 0;
            rbuf.clear();
            if rbuf.capacity() > 4 * 1024 * 1024 {
                rbuf = Vec::with_capacity(16 * 1024);
            }
        }
    }
}

/// Copy the node's counters into the handle's shared [`crate::NodeStats`].
fn publish(n: &Node, tid: u32, out: &Mutex<crate::NodeStats>) {
    let st = &n.store;
    let s = &st.stats;
    let snapshot = crate::NodeStats {
        tid,
        curr_connections: n.curr_connections,
        total_connections: s.total_connections,
        cmd_get: s.cmd_get,
        cmd_set: s.cmd_set,
        get_hits: s.get_hits,
        get_misses: s.get_misses,
        evictions: s.evictions,
        reclaimed: s.reclaimed,
        curr_items: st.curr_items,
        bytes: st.mem_used,
        limit_maxbytes: st
            .settings
            .memory_limit
            .load(std::sync::atomic::Ordering::Relaxed),
        bytes_read: s.bytes_read,
        bytes_written: s.bytes_written,
    };
    *out.lock().unwrap_or_else(|p| p.into_inner()) = snapshot;
}

/// This thread's Linux thread id (0 where /proc is not available).
fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}
