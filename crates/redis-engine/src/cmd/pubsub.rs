//! Pub/sub: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

use super::server::cmd;
use super::*;

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "subscribe",
        -2,
        "pubsub noscript loading stale",
        "@pubsub @slow",
        Keys::None,
        subscribe
    ),
    cmd!(
        "psubscribe",
        -2,
        "pubsub noscript loading stale",
        "@pubsub @slow",
        Keys::None,
        psubscribe
    ),
    cmd!(
        "unsubscribe",
        -1,
        "pubsub noscript loading stale",
        "@pubsub @slow",
        Keys::None,
        unsubscribe
    ),
    cmd!(
        "punsubscribe",
        -1,
        "pubsub noscript loading stale",
        "@pubsub @slow",
        Keys::None,
        punsubscribe
    ),
    cmd!(
        "publish",
        3,
        "pubsub loading stale fast",
        "@pubsub @fast",
        Keys::None,
        publish
    ),
    cmd!(
        "pubsub",
        -2,
        "pubsub loading stale",
        "@pubsub @slow",
        Keys::None,
        pubsub
    ),
];

fn frame(r: &mut Reply<'_>, kind: &[u8], ch: Option<&[u8]>, n: usize) {
    r.push(3);
    r.bulk(kind);
    match ch {
        Some(c) => r.bulk(c),
        None => r.null(),
    }
    r.int(n as i64);
}

fn subscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let c = ctx.client.clone();
    for i in 1..ctx.argc() {
        let ch = ctx.arg(i);
        if c.subs.borrow_mut().insert(ch.into()) {
            ctx.node.channels.entry(ch.into()).or_default().insert(c.id);
        }
        let n = c.sub_count();
        frame(&mut ctx.r(), b"subscribe", Some(ch), n);
    }
    Ok(())
}

fn psubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let c = ctx.client.clone();
    for i in 1..ctx.argc() {
        let p = ctx.arg(i);
        if c.psubs.borrow_mut().insert(p.into()) {
            ctx.node.patterns.entry(p.into()).or_default().insert(c.id);
        }
        let n = c.sub_count();
        frame(&mut ctx.r(), b"psubscribe", Some(p), n);
    }
    Ok(())
}

fn unsub_one(node: &mut Node, c: &Client, ch: &[u8], pattern: bool) -> bool {
    let removed = if pattern {
        c.psubs.borrow_mut().shift_remove(ch)
    } else {
        c.subs.borrow_mut().shift_remove(ch)
    };
    if removed {
        if pattern {
            if let Some(s) = node.patterns.get_mut(ch) {
                s.shift_remove(&c.id);
                if s.is_empty() {
                    node.patterns.shift_remove(ch);
                }
            }
        } else if let Some(s) = node.channels.get_mut(ch) {
            s.shift_remove(&c.id);
            if s.is_empty() {
                node.channels.remove(ch);
            }
        }
    }
    removed
}

fn unsub_generic(ctx: &mut Ctx<'_>, pattern: bool) -> CmdResult {
    let c = ctx.client.clone();
    let kind: &[u8] = if pattern {
        b"punsubscribe"
    } else {
        b"unsubscribe"
    };
    if ctx.argc() == 1 {
        let list: Vec<Blob> = if pattern {
            c.psubs.borrow().iter().cloned().collect()
        } else {
            c.subs.borrow().iter().cloned().collect()
        };
        if list.is_empty() {
            let n = c.sub_count();
            frame(&mut ctx.r(), kind, None, n);
        }
        for ch in list {
            unsub_one(ctx.node, &c, &ch, pattern);
            let n = c.sub_count();
            frame(&mut ctx.r(), kind, Some(&ch), n);
        }
    } else {
        for i in 1..ctx.argc() {
            let ch = ctx.arg(i);
            unsub_one(ctx.node, &c, ch, pattern);
            let n = c.sub_count();
            frame(&mut ctx.r(), kind, Some(ch), n);
        }
    }
    Ok(())
}

/// Drop all subscriptions (RESET, disconnect) without replies.
pub fn unsubscribe_all(node: &mut Node, c: &Client) {
    let list: Vec<Blob> = c.subs.borrow().iter().cloned().collect();
    for ch in list {
        unsub_one(node, c, &ch, false);
    }
    let list: Vec<Blob> = c.psubs.borrow().iter().cloned().collect();
    for ch in list {
        unsub_one(node, c, &ch, true);
    }
    for ch in std::mem::take(&mut *c.ssubs.borrow_mut()) {
        if let Some(s) = node.shard_channels.get_mut(&ch) {
            s.shift_remove(&c.id);
            if s.is_empty() {
                node.shard_channels.remove(&ch);
            }
        }
    }
}

fn unsubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    unsub_generic(ctx, false)
}

fn punsubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    unsub_generic(ctx, true)
}

/// Publish to subscribers; returns the number of receivers.
pub fn publish_msg(node: &mut Node, out: &mut Vec<u8>, ch: &[u8], msg: &[u8]) -> usize {
    let mut n = 0;
    if let Some(ids) = node.channels.get(ch) {
        let ids: Vec<u64> = ids.iter().copied().collect();
        for id in ids {
            if node.deliver(id, out, |r| {
                r.push(3);
                r.bulk(b"message");
                r.bulk(ch);
                r.bulk(msg);
            }) {
                n += 1;
            }
        }
    }
    if !node.patterns.is_empty() {
        let pats: Vec<(Blob, Vec<u64>)> = node
            .patterns
            .iter()
            .filter(|(p, _)| glob_match(p, ch, false))
            .map(|(p, ids)| (p.clone(), ids.iter().copied().collect()))
            .collect();
        for (p, ids) in pats {
            for id in ids {
                if node.deliver(id, out, |r| {
                    r.push(4);
                    r.bulk(b"pmessage");
                    r.bulk(&p);
                    r.bulk(ch);
                    r.bulk(msg);
                }) {
                    n += 1;
                }
            }
        }
    }
    n
}

fn publish(ctx: &mut Ctx<'_>) -> CmdResult {
    let (ch, msg) = (ctx.arg(1), ctx.arg(2));
    let n = publish_msg(ctx.node, ctx.out, ch, msg);
    // Redis Cluster broadcasts PUBLISH over its bus to every node; the reply still counts
    // only this node's receivers, as there.
    for peer in &ctx.node.cluster_peers {
        peer.send(crate::Control::Publish(ch.into(), msg.into()));
    }
    ctx.r().int(n as i64);
    Ok(())
}

fn pubsub(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    match sub.as_str() {
        "channels" | "shardchannels" => {
            if ctx.argc() > 3 {
                return Err(Error::Arity(format!("pubsub|{sub}")));
            }
            let pat = if ctx.argc() == 3 {
                Some(ctx.arg(2))
            } else {
                None
            };
            let map = if sub == "channels" {
                &ctx.node.channels
            } else {
                &ctx.node.shard_channels
            };
            let list: Vec<Blob> = map
                .keys()
                .filter(|c| pat.is_none_or(|p| glob_match(p, c, false)))
                .cloned()
                .collect();
            let mut r = ctx.r();
            r.array(list.len());
            for c in list {
                r.bulk(&c);
            }
        }
        "numsub" | "shardnumsub" => {
            let n = ctx.argc() - 2;
            let counts: Vec<usize> = (2..ctx.argc())
                .map(|i| {
                    let map = if sub == "numsub" {
                        &ctx.node.channels
                    } else {
                        &ctx.node.shard_channels
                    };
                    map.get(ctx.arg(i)).map(|s| s.len()).unwrap_or(0)
                })
                .collect();
            let resp3 = ctx.client.resp3.get();
            let mut r = Reply {
                out: ctx.out,
                resp3,
            };
            r.array(n * 2);
            for (j, i) in (2..ctx.args.len()).enumerate() {
                r.bulk(ctx.args.get(i));
                r.int(counts[j] as i64);
            }
        }
        "numpat" => {
            if ctx.argc() != 2 {
                return Err(Error::Arity("pubsub|numpat".into()));
            }
            let n = ctx.node.patterns.len();
            ctx.r().int(n as i64);
        }
        "help" => {
            let mut r = ctx.r();
            r.array(1);
            r.simple("PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are: CHANNELS NUMPAT NUMSUB SHARDCHANNELS SHARDNUMSUB");
        }
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}
