//! Client-side caching (CLIENT TRACKING), as Redis 7.0 implements it (tracking.c).
//!
//! Default mode: keys read by a tracking client are remembered in a table (key name →
//! client ids, across databases, as Redis does); a write, expiry or eviction of such a key
//! sends one `invalidate` message per client and forgets the key. BCAST mode: clients
//! subscribe to key prefixes; modified keys are collected per prefix and sent in one
//! message per prefix once the current batch of commands has run (Redis: beforeSleep).
//! FLUSHDB/FLUSHALL send a null invalidation to every tracking client.
//!
//! Messages go to the client itself as RESP3 pushes (`>2 invalidate [keys]`) or, with
//! REDIRECT, to another connection: as a push when that one speaks RESP3, as a Pub/Sub
//! `message` on `__redis__:invalidate` when it speaks RESP2 and is subscribed.
//! Invalidations for the client that is executing a command are sent after its reply
//! (after the whole EXEC reply inside a transaction).

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::cmd::{key_indexes, CmdDef, CmdResult, Ctx, Error};
use crate::db::{Blob, Hasher};
use crate::node::{Client, Node};
use crate::resp::{push_int, Args};

/// Per-client tracking options (CLIENT TRACKING ON ...).
#[derive(Default, Debug, Clone)]
pub struct ClientTracking {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES|NO was given for the next command.
    pub caching: bool,
    /// CLIENT CACHING was the previous command: keep `caching` for the next one.
    pub caching_fresh: bool,
    pub broken_redir: bool,
    /// Client id invalidations go to (0 = the client itself).
    pub redirect: u64,
    /// BCAST prefixes, sorted (Redis keeps them in a radix tree).
    pub prefixes: Vec<Blob>,
}

#[derive(Default)]
pub struct Prefix {
    clients: Vec<u64>,
    /// Keys modified since the last broadcast → id of the client that modified them
    /// (0 for expiry/eviction), for NOLOOP.
    keys: BTreeMap<Blob, u64>,
}

pub struct Tracking {
    /// Key → ids of the clients that may cache it.
    pub table: HashMap<Blob, Vec<u64>, Hasher>,
    /// Sum of the id lists (INFO tracking_total_items).
    pub items: usize,
    pub prefixes: BTreeMap<Blob, Prefix>,
    /// Clients with tracking on (INFO tracking_clients).
    pub clients: usize,
    bcast_pending: bool,
    /// Deferred invalidations of the executing client (None = flush), sent after its reply.
    pending: Vec<Option<Blob>>,
    /// Bytes for the executing client produced where its output buffer was not at hand.
    pending_raw: Vec<u8>,
    /// tracking-table-max-keys.
    pub max_keys: usize,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            table: HashMap::default(),
            items: 0,
            prefixes: BTreeMap::new(),
            clients: 0,
            bcast_pending: false,
            pending: Vec::new(),
            pending_raw: Vec::new(),
            max_keys: 1_000_000,
        }
    }
}

impl Tracking {
    /// Anything to invalidate? The write path's cheap early exit.
    #[inline]
    pub fn active(&self) -> bool {
        !self.table.is_empty() || !self.prefixes.is_empty()
    }
    #[inline]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.pending_raw.is_empty()
    }
    #[inline]
    pub fn bcast_pending(&self) -> bool {
        self.bcast_pending
    }
}

fn write_to(node: &mut Node, c: &Rc<Client>, bytes: &[u8], cur_out: &mut Option<&mut Vec<u8>>) {
    if c.id == node.current_client {
        match cur_out {
            Some(o) => o.extend_from_slice(bytes),
            None => node.tracking.pending_raw.extend_from_slice(bytes),
        }
        return;
    }
    match c.out.try_borrow_mut() {
        Ok(mut o) => o.extend_from_slice(bytes),
        Err(_) => return,
    }
    c.notify.notify_one();
}

/// sendTrackingMessage: `value` is the already encoded key array (or null).
fn send(node: &mut Node, tc: &Rc<Client>, value: &[u8], cur_out: &mut Option<&mut Vec<u8>>) {
    let redir = tc.trk.borrow().redirect;
    let (target, redirected) = if redir != 0 {
        match node.clients.get(&redir) {
            Some(r) => (r.clone(), true),
            None => {
                tc.trk.borrow_mut().broken_redir = true;
                if tc.resp3.get() {
                    let mut m = b">2\r\n$21\r\ntracking-redir-broken\r\n:".to_vec();
                    push_int(&mut m, redir as i64);
                    m.extend_from_slice(b"\r\n");
                    write_to(node, tc, &m, cur_out);
                }
                return;
            }
        }
    } else {
        (tc.clone(), false)
    };
    let mut m = Vec::with_capacity(40 + value.len());
    if target.resp3.get() {
        m.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else if redirected && target.in_pubsub() {
        m.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    } else {
        // RESP2 without a subscribed redirect target: nothing can carry the message.
        return;
    }
    m.extend_from_slice(value);
    write_to(node, &target, &m, cur_out);
}

fn encode_keys<'a>(keys: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut v = Vec::new();
    v.push(b'*');
    push_int(&mut v, keys.len() as i64);
    v.extend_from_slice(b"\r\n");
    for k in keys {
        v.push(b'$');
        push_int(&mut v, k.len() as i64);
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(k);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn null_for(c: &Client) -> &'static [u8] {
    if c.resp3.get() {
        b"_\r\n"
    } else {
        b"$-1\r\n"
    }
}

/// Remember the keys a read-only command of a tracking client accessed.
pub fn remember(node: &mut Node, c: &Rc<Client>, def: &CmdDef, args: &Args<'_>) {
    {
        let t = c.trk.borrow();
        if t.bcast || (t.optin && !t.caching) || (t.optout && t.caching) {
            return;
        }
    }
    for i in key_indexes(def, args) {
        let key = args.get(i);
        let tr = &mut node.tracking;
        let ids = match tr.table.get_mut(key) {
            Some(v) => v,
            None => tr.table.entry(Blob::from(key)).or_default(),
        };
        if !ids.contains(&c.id) {
            ids.push(c.id);
            tr.items += 1;
        }
    }
    // trackingLimitUsedSlots: over the limit, invalidate keys to make room.
    let mut guard = 0;
    while node.tracking.table.len() > node.tracking.max_keys && guard < 1000 {
        guard += 1;
        let Some(k) = node.tracking.table.keys().next().cloned() else {
            break;
        };
        invalidate(node, &k, 0, &mut None);
    }
}

/// A key was modified (write, expiry, eviction): trackingInvalidateKey.
/// `modifier` is the client that changed it (0 when none), for BCAST NOLOOP.
pub fn invalidate(node: &mut Node, key: &[u8], modifier: u64, cur_out: &mut Option<&mut Vec<u8>>) {
    if !node.tracking.prefixes.is_empty() {
        let mut any = false;
        for (p, bs) in node.tracking.prefixes.iter_mut() {
            if key.starts_with(p) {
                bs.keys.insert(Blob::from(key), modifier);
                any = true;
            }
        }
        node.tracking.bcast_pending |= any;
    }
    let Some(ids) = node.tracking.table.remove(key) else {
        return;
    };
    node.tracking.items = node.tracking.items.saturating_sub(ids.len());
    let mut value: Option<Vec<u8>> = None;
    for id in ids {
        let Some(target) = node.clients.get(&id).cloned() else {
            continue;
        };
        let (noloop, bcast) = {
            let t = target.trk.borrow();
            (t.noloop, t.bcast)
        };
        if !target.tracking.get() || bcast {
            continue;
        }
        if id == node.current_client {
            if noloop {
                continue;
            }
            // After the reply of the command being executed.
            node.tracking.pending.push(Some(Blob::from(key)));
            continue;
        }
        let v = value.get_or_insert_with(|| encode_keys(std::iter::once(key)));
        let v = std::mem::take(v);
        send(node, &target, &v, cur_out);
        value = Some(v);
    }
}

/// Before a write command: the written keys that do not exist yet. A key absent before
/// and after the command was not modified (DEL of a missing key, an empty *STORE result),
/// and Redis does not signal it.
pub fn absent_written(node: &Node, db: usize, def: &CmdDef, args: &Args<'_>) -> Vec<usize> {
    let Some(d) = node.ks.dbs.get(db) else {
        return Vec::new();
    };
    crate::cmd::meta::written_keys(def, args)
        .into_iter()
        .filter(|&i| !d.map.contains_key(args.get(i)))
        .collect()
}

/// Invalidate the keys a write command modified (`absent_before`: see `absent_written`).
pub fn invalidate_args(
    node: &mut Node,
    c: &Client,
    db: usize,
    def: &CmdDef,
    args: &Args<'_>,
    absent_before: &[usize],
) {
    for i in crate::cmd::meta::written_keys(def, args) {
        let key = args.get(i);
        if absent_before.contains(&i)
            && !node.ks.dbs.get(db).is_some_and(|d| d.map.contains_key(key))
        {
            continue;
        }
        invalidate(node, key, c.id, &mut None);
    }
}

/// Keys removed by expiry/eviction (the node's deletion log).
pub fn invalidate_deleted(node: &mut Node, list: &[(usize, Blob)]) {
    for (_, k) in list {
        invalidate(node, k, 0, &mut None);
    }
}

/// FLUSHDB/FLUSHALL: null invalidation to every tracking client; forget every key.
pub fn on_flush(node: &mut Node) {
    if node.tracking.clients > 0 {
        let list: Vec<Rc<Client>> = node
            .clients
            .values()
            .filter(|c| c.tracking.get())
            .cloned()
            .collect();
        for c in list {
            if c.id == node.current_client {
                node.tracking.pending.push(None);
            } else {
                send(node, &c, null_for(&c), &mut None);
            }
        }
    }
    node.tracking.table.clear();
    node.tracking.items = 0;
}

/// After a top-level command: deliver the executing client's deferred invalidations.
pub fn flush_pending(node: &mut Node, c: &Rc<Client>, out: &mut Vec<u8>) {
    out.append(&mut node.tracking.pending_raw);
    let list = std::mem::take(&mut node.tracking.pending);
    let mut cur = Some(out);
    for k in list {
        match k {
            Some(k) => send(node, c, &encode_keys(std::iter::once(&k[..])), &mut cur),
            None => send(node, c, null_for(c), &mut cur),
        }
    }
}

/// Send the collected BCAST invalidations (one message per prefix and client).
/// `cur_out` is the output buffer of `node.current_client` when it is at hand.
pub fn flush_bcast(node: &mut Node, mut cur_out: Option<&mut Vec<u8>>) {
    if !node.tracking.bcast_pending {
        return;
    }
    node.tracking.bcast_pending = false;
    let mut jobs: Vec<(Rc<Client>, Vec<u8>)> = Vec::new();
    for bs in node.tracking.prefixes.values_mut() {
        if bs.keys.is_empty() {
            continue;
        }
        let keys = std::mem::take(&mut bs.keys);
        let mut full: Option<Vec<u8>> = None;
        for id in &bs.clients {
            let Some(c) = node.clients.get(id) else {
                continue;
            };
            if c.trk.borrow().noloop {
                let mine: Vec<&[u8]> = keys
                    .iter()
                    .filter(|(_, m)| **m != *id)
                    .map(|(k, _)| &k[..])
                    .collect();
                if !mine.is_empty() {
                    jobs.push((c.clone(), encode_keys(mine.into_iter())));
                }
            } else {
                let v = full
                    .get_or_insert_with(|| encode_keys(keys.keys().map(|k| &k[..])))
                    .clone();
                jobs.push((c.clone(), v));
            }
        }
    }
    for (c, v) in jobs {
        send(node, &c, &v, &mut cur_out);
    }
}

/// disableTracking (CLIENT TRACKING OFF, RESET, disconnect).
pub fn disable(node: &mut Node, c: &Client) {
    if !c.tracking.get() {
        return;
    }
    let prefixes = std::mem::take(&mut c.trk.borrow_mut().prefixes);
    for p in prefixes {
        if let Some(bs) = node.tracking.prefixes.get_mut(&p) {
            bs.clients.retain(|&x| x != c.id);
            if bs.clients.is_empty() {
                node.tracking.prefixes.remove(&p);
            }
        }
    }
    *c.trk.borrow_mut() = ClientTracking::default();
    c.tracking.set(false);
    node.tracking.clients = node.tracking.clients.saturating_sub(1);
    if node.tracking.clients == 0 {
        // Nobody can receive invalidations any more: stop logging deletions.
        node.tracking.table.clear();
        node.tracking.items = 0;
        node.ks.track_deletes = false;
    }
}

/// Before each top-level command: CLIENT CACHING applies to the next command only
/// (to the whole transaction when given before MULTI ... EXEC).
#[inline]
pub fn before_command(c: &Client) {
    let mut t = c.trk.borrow_mut();
    if t.caching_fresh {
        t.caching_fresh = false;
    } else if t.caching && c.multi.borrow().is_none() {
        t.caching = false;
    }
}

fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// CLIENT TRACKING | CACHING | GETREDIR | TRACKINGINFO.
pub fn client_sub(ctx: &mut Ctx<'_>, sub: &str) -> CmdResult {
    let argc = ctx.argc();
    let arity_err = || Error::Arity(format!("client|{sub}"));
    match sub {
        "tracking" => {
            if argc < 3 {
                return Err(arity_err());
            }
            let mut redir: u64 = 0;
            let mut opt = ClientTracking::default();
            let mut prefixes: Vec<Blob> = Vec::new();
            let mut j = 3;
            while j < argc {
                let more = j + 1 < argc;
                if ctx.arg_eq(j, "redirect") && more {
                    j += 1;
                    if redir != 0 {
                        return Err(crate::cmd::err(
                            "A client can only redirect to a single other client",
                        ));
                    }
                    let id = ctx.int(j)?;
                    if id <= 0 || !ctx.node.clients.contains_key(&(id as u64)) {
                        return Err(crate::cmd::err(
                            "The client ID you want redirect to does not exist",
                        ));
                    }
                    redir = id as u64;
                } else if ctx.arg_eq(j, "bcast") {
                    opt.bcast = true;
                } else if ctx.arg_eq(j, "optin") {
                    opt.optin = true;
                } else if ctx.arg_eq(j, "optout") {
                    opt.optout = true;
                } else if ctx.arg_eq(j, "noloop") {
                    opt.noloop = true;
                } else if ctx.arg_eq(j, "prefix") && more {
                    j += 1;
                    prefixes.push(Blob::from(ctx.arg(j)));
                } else {
                    return Err(Error::Syntax);
                }
                j += 1;
            }
            let c = ctx.client.clone();
            if ctx.arg_eq(2, "on") {
                if !opt.bcast && !prefixes.is_empty() {
                    return Err(crate::cmd::err(
                        "PREFIX option requires BCAST mode to be enabled",
                    ));
                }
                let cur = c.trk.borrow().clone();
                if c.tracking.get() && cur.bcast != opt.bcast {
                    return Err(crate::cmd::err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
                }
                if opt.bcast && (opt.optin || opt.optout) {
                    return Err(crate::cmd::err(
                        "OPTIN and OPTOUT are not compatible with BCAST",
                    ));
                }
                if opt.optin && opt.optout {
                    return Err(crate::cmd::err(
                        "You can't specify both OPTIN mode and OPTOUT mode",
                    ));
                }
                if (opt.optin && cur.optout) || (opt.optout && cur.optin) {
                    return Err(crate::cmd::err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
                }
                if opt.bcast {
                    for (i, p) in prefixes.iter().enumerate() {
                        if let Some(e) = cur.prefixes.iter().find(|e| overlaps(e, p)) {
                            return Err(crate::cmd::err(format!("Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.", String::from_utf8_lossy(p), String::from_utf8_lossy(e))));
                        }
                        if let Some(o) = prefixes[i + 1..].iter().find(|o| overlaps(p, o)) {
                            return Err(crate::cmd::err(format!("Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.", String::from_utf8_lossy(p), String::from_utf8_lossy(o))));
                        }
                    }
                }
                enable(ctx.node, &c, redir, opt, prefixes);
            } else if ctx.arg_eq(2, "off") {
                disable(ctx.node, &c);
            } else {
                return Err(Error::Syntax);
            }
            ctx.r().ok();
        }
        "caching" => {
            if argc != 3 {
                return Err(arity_err());
            }
            if !ctx.client.tracking.get() {
                return Err(crate::cmd::err("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
            }
            let (optin, optout) = {
                let t = ctx.client.trk.borrow();
                (t.optin, t.optout)
            };
            if ctx.arg_eq(2, "yes") {
                if !optin {
                    return Err(crate::cmd::err(
                        "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
                    ));
                }
            } else if ctx.arg_eq(2, "no") {
                if !optout {
                    return Err(crate::cmd::err(
                        "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
                    ));
                }
            } else {
                return Err(Error::Syntax);
            }
            {
                let mut t = ctx.client.trk.borrow_mut();
                t.caching = true;
                t.caching_fresh = true;
            }
            ctx.r().ok();
        }
        "getredir" => {
            if argc != 2 {
                return Err(arity_err());
            }
            let v = if ctx.client.tracking.get() {
                ctx.client.trk.borrow().redirect as i64
            } else {
                -1
            };
            ctx.r().int(v);
        }
        "trackinginfo" => {
            if argc != 2 {
                return Err(arity_err());
            }
            let on = ctx.client.tracking.get();
            let t = ctx.client.trk.borrow().clone();
            let mut flags: Vec<&str> = vec![if on { "on" } else { "off" }];
            if t.bcast {
                flags.push("bcast");
            }
            if t.optin {
                flags.push("optin");
                if t.caching {
                    flags.push("caching-yes");
                }
            }
            if t.optout {
                flags.push("optout");
                if t.caching {
                    flags.push("caching-no");
                }
            }
            if t.noloop {
                flags.push("noloop");
            }
            if t.broken_redir {
                flags.push("broken_redirect");
            }
            let mut r = ctx.r();
            r.map(3);
            r.bulk(b"flags");
            r.set(flags.len());
            for f in flags {
                r.bulk(f.as_bytes());
            }
            r.bulk(b"redirect");
            r.int(if on { t.redirect as i64 } else { -1 });
            r.bulk(b"prefixes");
            r.array(t.prefixes.len());
            for p in &t.prefixes {
                r.bulk(p);
            }
        }
        _ => return Err(ctx.unknown_sub()),
    }
    Ok(())
}

/// enableTracking: options replace the previous ones; BCAST prefixes accumulate.
fn enable(node: &mut Node, c: &Rc<Client>, redir: u64, opt: ClientTracking, prefixes: Vec<Blob>) {
    if !c.tracking.get() {
        node.tracking.clients += 1;
        c.tracking.set(true);
    }
    node.ks.track_deletes = true;
    let mut t = c.trk.borrow_mut();
    t.broken_redir = false;
    t.redirect = redir;
    t.bcast = opt.bcast;
    t.optin = opt.optin;
    t.optout = opt.optout;
    t.noloop = opt.noloop;
    if opt.bcast {
        let list = if prefixes.is_empty() {
            vec![Blob::from(&b""[..])]
        } else {
            prefixes
        };
        for p in list {
            let bs = node.tracking.prefixes.entry(p.clone()).or_default();
            if !bs.clients.contains(&c.id) {
                bs.clients.push(c.id);
            }
            if let Err(i) = t.prefixes.binary_search(&p) {
                t.prefixes.insert(i, p);
            }
        }
    }
}

/// INFO fields: (tracking_clients, tracking_total_keys, tracking_total_items, tracking_total_prefixes).
pub fn info_counts(node: &Node) -> (usize, usize, usize, usize) {
    (
        node.tracking.clients,
        node.tracking.table.len(),
        node.tracking.items,
        node.tracking.prefixes.len(),
    )
}
