//! One task per client connection, all on the node's thread.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::cmd;
use crate::node::{Client, Node};
use crate::resp::{parse_command, Args, Parsed, Reply};

/// Stop executing a pipeline batch once this much reply data is pending.
const MAX_BATCH_OUT: usize = 64 << 20;
/// Redis's client-query-buffer-limit.
const MAX_QUERY_BUF: usize = 1 << 30;

async fn wait_killed(client: &Client) {
    loop {
        if client.killed.get() {
            return;
        }
        client.notify.notified().await;
    }
}

pub async fn handle(node: Rc<RefCell<Node>>, mut stream: TcpStream, client: Rc<Client>) {
    let _ = stream.set_nodelay(true);
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut scratch: Vec<u8> = Vec::new();
    let mut wbuf: Vec<u8> = Vec::new();
    // CLIENT PAUSE: the command at the head of the buffer waits until this instant.
    let mut paused: Option<std::time::Instant> = None;
    // The command at the head of the buffer waited for the ECPU bucket.
    let mut ecpu_held = false;
    'outer: loop {
        let mut close = false;
        if !client.pending_in.borrow().is_empty() {
            inbuf.extend_from_slice(&std::mem::take(&mut *client.pending_in.borrow_mut()));
        }
        // 1. Execute every complete command in the buffer.
        if client.blocked.borrow().is_none() && !inbuf.is_empty() && !client.killed.get() {
            let mut n = node.borrow_mut();
            let n = &mut *n;
            let mut out = client.out.borrow_mut();
            let max_bulk = n.settings.proto_max_bulk_len;
            let now = std::time::Instant::now();
            client.last_cmd_at.set(now);
            n.clock_hint = Some(now);
            n.in_batch = true;
            paused = None;
            let mut pos = 0;
            loop {
                match parse_command(&inbuf[pos..], max_bulk, &mut ranges, &mut scratch) {
                    Ok(Parsed::Incomplete) => break,
                    Ok(Parsed::Command { consumed, inline }) => {
                        let base: &[u8] = if inline {
                            &scratch
                        } else {
                            &inbuf[pos..pos + consumed]
                        };
                        let args = Args {
                            buf: base,
                            ranges: &ranges,
                        };
                        if n.mon.pause_end.is_some() {
                            paused = crate::monitor::paused_until(n, &client, &args);
                            if paused.is_some() {
                                break;
                            }
                        }
                        if let Some(limit) = n.mon.ecpu.clone() {
                            // Serverless ECPU/second maximum: wait while the cache's
                            // bucket is in debt, then charge what the command moved.
                            if let Some(d) = limit.wait_time(std::time::Instant::now()) {
                                paused = Some(std::time::Instant::now() + d);
                                ecpu_held = true;
                                break;
                            }
                            let before = out.len();
                            cmd::execute(n, &client, args, &mut out);
                            limit.charge(
                                consumed + out.len().saturating_sub(before),
                                std::mem::take(&mut ecpu_held),
                            );
                        } else {
                            cmd::execute(n, &client, args, &mut out);
                        }
                        pos += consumed;
                        if client.blocked.borrow().is_some()
                            || client.close_after_reply.get()
                            || client.killed.get()
                            || out.len() > MAX_BATCH_OUT
                        {
                            break;
                        }
                    }
                    Err(e) => {
                        Reply {
                            out: &mut out,
                            resp3: client.resp3.get(),
                        }
                        .error(&format!("ERR {e}"));
                        close = true;
                        break;
                    }
                }
            }
            n.clock_hint = None;
            n.in_batch = false;
            if n.tracking.bcast_pending() {
                crate::tracking::flush_bcast(n, Some(&mut out));
            }
            n.net_in += pos as u64;
            inbuf.advance(pos);
            client.qbuf.set(inbuf.len());
        }
        // 2. Flush replies (and anything other clients queued for us).
        loop {
            {
                let mut o = client.out.borrow_mut();
                if o.is_empty() {
                    break;
                }
                std::mem::swap(&mut *o, &mut wbuf);
            }
            node.borrow_mut().net_out += wbuf.len() as u64;
            // Most replies fit in the socket buffer: write them directly, and only build
            // the wait below (for a slow reader, or a kill) when they do not.
            let written = match stream.try_write(&wbuf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(_) => break 'outer,
            };
            if written < wbuf.len() {
                client.flushing.set(true);
                tokio::select! {
                    r = stream.write_all(&wbuf[written..]) => {
                        if r.is_err() {
                            break 'outer;
                        }
                    }
                    _ = wait_killed(&client) => break 'outer,
                }
                client.flushing.set(false);
            }
            wbuf.clear();
            if wbuf.capacity() > (1 << 20) {
                wbuf = Vec::new();
            }
        }
        if close || client.killed.get() || client.close_after_reply.get() {
            break;
        }
        // 3. Wait for input, a wake-up, or a blocking timeout.
        let mut blocked_deadline = client.blocked.borrow().as_ref().map(|b| b.deadline);
        if let Some(p) = paused {
            // Paused: wake at the end of the pause (or on CLIENT UNPAUSE), keep reading.
            blocked_deadline = Some(Some(p));
        }
        match blocked_deadline {
            Some(deadline) => {
                let sleep = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d.into()).await,
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = client.notify.notified() => {}
                    _ = sleep => {
                        let mut n = node.borrow_mut();
                        if paused.is_some() {
                            // The pause is over: run the held command next round.
                        } else if n.unblock(&client).is_some() {
                            let mut o = client.out.borrow_mut();
                            Reply { out: &mut o, resp3: client.resp3.get() }.null_array();
                        }
                    }
                    r = stream.readable() => {
                        if r.is_err() {
                            break;
                        }
                        if inbuf.len() < MAX_QUERY_BUF {
                            inbuf.reserve(16 * 1024);
                            match stream.try_read_buf(&mut inbuf) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(_) => break,
                            }
                        } else {
                            // Stop reading; wait for the unblock.
                            client.notify.notified().await;
                        }
                    }
                }
            }
            None => {
                if inbuf.len() >= MAX_QUERY_BUF {
                    break;
                }
                if inbuf.capacity() - inbuf.len() < 4096 {
                    inbuf.reserve(16 * 1024);
                }
                let spare = inbuf.capacity() - inbuf.len();
                tokio::select! {
                    // Fixed order: saves the random draw; both branches only wake the loop.
                    biased;
                    r = stream.readable() => {
                        if r.is_err() {
                            break;
                        }
                        match stream.try_read_buf(&mut inbuf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if n < spare {
                                    // A short read drained the socket. Clear tokio's readiness now
                                    // instead of paying a read() that returns EAGAIN next time.
                                    // Safe on a current_thread runtime: the I/O driver cannot run
                                    // between the read above and this clear, so an edge for data
                                    // arriving meanwhile is still delivered later.
                                    let _ = stream.try_io(tokio::io::Interest::READABLE, || {
                                        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                                    });
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => break,
                        }
                    }
                    _ = client.notify.notified() => {}
                }
            }
        }
    }
    node.borrow_mut().remove_client(&client);
}
