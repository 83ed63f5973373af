//! Moving a Redis node's data in and out through its own protocol, so snapshots
//! work the same against our engine and a real redis-server:
//!
//! - **capture**: open a replication link (`PSYNC ? -1`) and save the RDB the node
//!   sends for a full resynchronisation — a point-in-time copy made by the node
//!   itself, while it keeps serving;
//! - **restore**: read an RDB file and replay it as pipelined
//!   `RESTORE key <abs-ms> <payload> REPLACE ABSTTL` commands.

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};

#[derive(Debug, thiserror::Error)]
pub enum RdbIoError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("node refused: {0}")]
    Refused(String),
    #[error("unexpected reply: {0}")]
    Protocol(String),
    #[error("bad RDB file: {0}")]
    Rdb(String),
}

const TIMEOUT: Duration = Duration::from_secs(60);

/// elastilite's internal user passes whatever AUTH token or ACL users one of
/// its nodes has; another server (a real Redis) gets `password`, if any.
fn internal_auth() -> [&'static [u8]; 3] {
    [
        b"AUTH",
        redis_engine::acl::INTERNAL_USER.as_bytes(),
        redis_engine::acl::internal_password().as_bytes(),
    ]
}

/// Capture a node's data set into `dest` (written to a temporary file, then
/// renamed, so a half-written snapshot never appears). Returns its size.
pub async fn capture(
    addr: SocketAddr,
    password: Option<&str>,
    dest: &Path,
) -> Result<u64, RdbIoError> {
    let (stream, _internal) =
        tokio::time::timeout(TIMEOUT, redis_engine::sources::connect_internal(addr))
            .await
            .map_err(|_| RdbIoError::Protocol("connect timed out".into()))??;
    let mut r = TokioBufReader::with_capacity(1 << 16, stream);
    send(&mut r, &internal_auth()).await?;
    if read_line(&mut r).await? != "+OK" {
        if let Some(pw) = password {
            send(&mut r, &[b"AUTH", pw.as_bytes()]).await?;
            expect_ok(&mut r).await?;
        }
    }
    // `capa eof`: the node streams the RDB as it serializes it (diskless framing), so neither
    // side holds the whole file in memory; it is written to disk as it arrives.
    send(&mut r, &[b"REPLCONF", b"capa", b"eof"]).await?;
    expect_ok(&mut r).await?;
    send(&mut r, &[b"PSYNC", b"?", b"-1"]).await?;
    // redis-server may send keep-alive newlines first (while it waits
    // `repl-diskless-sync-delay` for other replicas).
    let line = loop {
        let l = read_line(&mut r).await?;
        if !l.is_empty() {
            break l;
        }
    };
    if !line.starts_with("+FULLRESYNC") {
        return Err(RdbIoError::Refused(line));
    }
    // The node may send bare newlines as keep-alives while it prepares the RDB.
    let header = loop {
        let l = read_line(&mut r).await?;
        if !l.is_empty() {
            break l;
        }
    };
    let tmp = dest.with_extension("rdb.partial");
    let mut file = tokio::fs::File::create(&tmp).await?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    if let Some(mark) = header.strip_prefix("$EOF:") {
        let mark = mark.as_bytes();
        if mark.len() != EOF_MARK_LEN {
            return Err(RdbIoError::Protocol(format!("bad EOF mark in {header:?}")));
        }
        // The payload ends with the mark; the node sends nothing after it until we ACK (we
        // never do), so the mark is the last thing read. Hold back the last bytes read, which
        // may be (part of) the mark.
        let mut held: Vec<u8> = Vec::with_capacity(2 * EOF_MARK_LEN);
        loop {
            let n = read_some(&mut r, &mut buf).await?;
            held.extend_from_slice(&buf[..n]);
            if held.ends_with(mark) {
                let body = held.len() - EOF_MARK_LEN;
                file.write_all(&held[..body]).await?;
                total += body as u64;
                break;
            }
            if held.len() > EOF_MARK_LEN {
                let body = held.len() - EOF_MARK_LEN;
                file.write_all(&held[..body]).await?;
                total += body as u64;
                held.drain(..body);
            }
        }
    } else {
        let len: u64 = header
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                RdbIoError::Protocol(format!("expected the RDB length, got {header:?}"))
            })?;
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = read_some(&mut r, &mut buf[..want]).await?;
            file.write_all(&buf[..n]).await?;
            left -= n as u64;
        }
        total = len;
    }
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, dest).await?;
    Ok(total)
}

/// Length of the diskless-sync end mark (`$EOF:<40 bytes>`).
const EOF_MARK_LEN: usize = 40;

async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
) -> Result<usize, RdbIoError> {
    let n = tokio::time::timeout(TIMEOUT, r.read(buf))
        .await
        .map_err(|_| RdbIoError::Protocol("the node stopped sending the RDB".into()))??;
    if n == 0 {
        return Err(RdbIoError::Protocol(
            "connection closed inside the RDB".into(),
        ));
    }
    Ok(n)
}

/// Load an RDB file into a node. Keys already expired are skipped, as a server
/// loading the file would. Returns how many keys were restored.
pub async fn restore(
    addr: SocketAddr,
    password: Option<&str>,
    src: &Path,
) -> Result<u64, RdbIoError> {
    restore_slots(addr, password, src, None).await
}

/// [`restore`] into one shard of a cluster-mode group: only the keys whose hash
/// slot is in `slots` (inclusive ranges) are loaded, so the same files can seed
/// every shard whatever the layout they were taken from. A cluster has only
/// database 0: a key in another database fails the restore rather than being
/// dropped silently.
pub async fn restore_slots(
    addr: SocketAddr,
    password: Option<&str>,
    src: &Path,
    slots: Option<&[(u16, u16)]>,
) -> Result<u64, RdbIoError> {
    let owned: Option<Vec<bool>> = slots.map(|ranges| {
        let mut mine = vec![false; redis_engine::cluster::SLOTS];
        for &(a, b) in ranges {
            for s in a..=b {
                if let Some(x) = mine.get_mut(usize::from(s)) {
                    *x = true;
                }
            }
        }
        mine
    });
    let (stream, _internal) =
        tokio::time::timeout(TIMEOUT, redis_engine::sources::connect_internal(addr))
            .await
            .map_err(|_| RdbIoError::Protocol("connect timed out".into()))??;
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = TokioBufReader::with_capacity(1 << 16, rd);
    wr.write_all(&encode(&internal_auth())).await?;
    if read_line(&mut rd).await? != "+OK" {
        if let Some(pw) = password {
            wr.write_all(&encode(&[b"AUTH", pw.as_bytes()])).await?;
            expect_ok(&mut rd).await?;
        }
    }
    // The file is decoded on a blocking thread and sent over in batches.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch, RdbIoError>>(4);
    let path = src.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e.into()));
                return;
            }
        };
        let mut entries = match rdb::FileReader::new(BufReader::with_capacity(1 << 16, file)) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(RdbIoError::Rdb(e.to_string())));
                return;
            }
        };
        let now = crate::now_ms();
        let mut db = 0u64;
        let mut batch = Batch {
            bytes: encode(&[b"SELECT", b"0"]),
            replies: 1,
            keys: 0,
        };
        loop {
            match entries.next_entry() {
                Ok(Some(e)) => {
                    if e.expire_at_ms.is_some_and(|t| t <= now) {
                        continue;
                    }
                    if let Some(mine) = &owned {
                        if e.db != 0 {
                            let _ = tx.blocking_send(Err(RdbIoError::Rdb(format!(
                                "a key in database {}: a cluster-mode-enabled group has only database 0",
                                e.db
                            ))));
                            return;
                        }
                        let slot = redis_engine::cluster::key_slot(&e.key);
                        if !mine.get(usize::from(slot)).copied().unwrap_or(false) {
                            continue;
                        }
                    }
                    if e.db != db {
                        db = e.db;
                        batch
                            .bytes
                            .extend_from_slice(&encode(&[b"SELECT", db.to_string().as_bytes()]));
                        batch.replies += 1;
                    }
                    let payload = rdb::dump(&e.value);
                    let ttl = e.expire_at_ms.unwrap_or(0).to_string();
                    batch.bytes.extend_from_slice(&encode(&[
                        b"RESTORE",
                        &e.key,
                        ttl.as_bytes(),
                        &payload,
                        b"REPLACE",
                        b"ABSTTL",
                    ]));
                    batch.replies += 1;
                    batch.keys += 1;
                    if batch.bytes.len() >= 1 << 20
                        && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.blocking_send(Err(RdbIoError::Rdb(e.to_string())));
                    return;
                }
            }
        }
        // Function libraries in the file (Redis 7) are restored too.
        let functions: Vec<Vec<u8>> = entries.functions().iter().map(|f| f.to_vec()).collect();
        if !functions.is_empty() {
            let payload = redis_engine::cmd::scripting::dump_functions(&functions);
            batch.bytes.extend_from_slice(&encode(&[
                b"FUNCTION",
                b"RESTORE",
                &payload,
                b"REPLACE",
            ]));
            batch.replies += 1;
        }
        let _ = tx.blocking_send(Ok(batch));
    });
    let mut restored = 0u64;
    while let Some(item) = rx.recv().await {
        let batch = item?;
        wr.write_all(&batch.bytes).await?;
        for _ in 0..batch.replies {
            let reply = read_line(&mut rd).await?;
            if reply != "+OK" {
                return Err(RdbIoError::Refused(reply));
            }
        }
        restored += batch.keys;
    }
    let _ = reader.await;
    Ok(restored)
}

/// Pipelined commands, how many replies they produce and how many keys they restore.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    replies: u64,
    keys: u64,
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn send<S: tokio::io::AsyncWrite + tokio::io::AsyncRead + Unpin>(
    s: &mut TokioBufReader<S>,
    args: &[&[u8]],
) -> Result<(), RdbIoError> {
    s.get_mut().write_all(&encode(args)).await?;
    Ok(())
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<String, RdbIoError> {
    let mut line = Vec::new();
    let n = tokio::time::timeout(TIMEOUT, r.read_until(b'\n', &mut line))
        .await
        .map_err(|_| RdbIoError::Protocol("no reply from the node".into()))??;
    if n == 0 {
        return Err(RdbIoError::Protocol("connection closed".into()));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

async fn expect_ok<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<(), RdbIoError> {
    let l = read_line(r).await?;
    if l == "+OK" {
        Ok(())
    } else {
        Err(RdbIoError::Refused(l))
    }
}
