//! Cluster mode: 16384 hash slots, the topology the control plane pushes
//! (`Control::SetClusterTopology`), redirections (`-MOVED`, `-ASK`, `-CROSSSLOT`,
//! `-TRYAGAIN`), the read-only CLUSTER subcommands clients use, and the slot
//! migration primitives online resharding is built from.
//!
//! There is no cluster bus: nodes never gossip. The control plane is the only
//! source of truth and pushes the whole topology to every node whenever it
//! changes (creation, failover, each resharding step).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use crate::cmd::server::cmd;
use crate::cmd::{err, key_indexes, parse_int, CmdDef, CmdInfo, CmdResult, Ctx, Error, Keys};
use crate::db::Blob;
use crate::node::{Client, Node};
use crate::resp::Args;

pub const SLOTS: usize = 16384;
const UNASSIGNED: u16 = u16::MAX;

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
pub fn crc16(buf: &[u8]) -> u16 {
    static TABLE: std::sync::OnceLock<[u16; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u16; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = (i as u16) << 8;
            for _ in 0..8 {
                c = if c & 0x8000 != 0 {
                    (c << 1) ^ 0x1021
                } else {
                    c << 1
                };
            }
            *e = c;
        }
        t
    });
    let mut crc = 0u16;
    for &b in buf {
        crc = (crc << 8) ^ t[(((crc >> 8) as u8) ^ b) as usize];
    }
    crc
}

/// The hash slot of a key: only the part between the first `{` and the next `}`
/// is hashed when that part is not empty (hash tags).
pub fn key_slot(key: &[u8]) -> u16 {
    let part = match key.iter().position(|&c| c == b'{') {
        Some(s) => match key[s + 1..].iter().position(|&c| c == b'}') {
            Some(0) | None => key,
            Some(e) => &key[s + 1..s + 1 + e],
        },
        None => key,
    };
    crc16(part) & (SLOTS as u16 - 1)
}

/// One node of the cluster as the control plane describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyNode {
    /// 40 hex characters, stable for the node's life.
    pub id: String,
    /// The address clients are told (exactly what the API reports).
    pub ip: String,
    pub port: u16,
    /// None for a primary; the primary's id for a replica.
    pub primary_id: Option<String>,
    /// Slot ranges (inclusive) a primary serves.
    pub slots: Vec<(u16, u16)>,
    /// 40 hex characters shared by a primary and its replicas.
    pub shard_id: String,
    pub epoch: u64,
}

/// The whole cluster as seen by one node (`myself` is its id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub myself: String,
    pub epoch: u64,
    pub nodes: Vec<TopologyNode>,
    /// Slots this node is handing over: (slot, target node id).
    pub migrating: Vec<(u16, String)>,
    /// Slots this node is receiving: (slot, source node id).
    pub importing: Vec<(u16, String)>,
    /// ElastiCache's "cluster mode compatible" (the step between disabled and
    /// enabled): clients may talk either protocol. Honoured only while this node's
    /// shard serves every slot; then keyed commands are never redirected (no
    /// `-MOVED` from a replica, no `-CROSSSLOT`), as on a node without cluster mode.
    pub compatible: bool,
}

/// Topology compiled for lookups on every keyed command.
pub struct ClusterState {
    pub topo: Topology,
    me: usize,
    owner: Vec<u16>,
    migrating: HashMap<u16, usize>,
    importing: HashMap<u16, usize>,
    messages: u64,
    /// `topo.compatible` and this node's shard serves all 16384 slots.
    compatible: bool,
}

impl ClusterState {
    pub fn new(topo: Topology) -> Option<ClusterState> {
        let me = topo.nodes.iter().position(|n| n.id == topo.myself)?;
        let mut owner = vec![UNASSIGNED; SLOTS];
        for (i, n) in topo.nodes.iter().enumerate() {
            if n.primary_id.is_some() {
                continue;
            }
            for &(a, b) in &n.slots {
                for s in a..=b.min(SLOTS as u16 - 1) {
                    owner[s as usize] = i as u16;
                }
            }
        }
        let index = |id: &str| topo.nodes.iter().position(|n| n.id == id);
        let migrating = topo
            .migrating
            .iter()
            .filter_map(|(s, id)| Some((*s, index(id)?)))
            .collect();
        let importing = topo
            .importing
            .iter()
            .filter_map(|(s, id)| Some((*s, index(id)?)))
            .collect();
        let my_primary = match &topo.nodes[me].primary_id {
            None => Some(me),
            Some(p) => topo.nodes.iter().position(|n| &n.id == p),
        };
        let compatible = topo.compatible
            && my_primary.is_some_and(|p| owner.iter().all(|&o| usize::from(o) == p));
        Some(ClusterState {
            me,
            owner,
            migrating,
            importing,
            messages: 0,
            compatible,
            topo,
        })
    }

    fn myself(&self) -> &TopologyNode {
        &self.topo.nodes[self.me]
    }

    /// The node serving `slot`, if any.
    fn owner(&self, slot: u16) -> Option<usize> {
        match self.owner.get(slot as usize) {
            Some(&i) if i != UNASSIGNED => Some(i as usize),
            _ => None,
        }
    }

    /// The primary whose data this node holds (itself, or its primary).
    fn my_primary(&self) -> Option<usize> {
        match &self.myself().primary_id {
            None => Some(self.me),
            Some(p) => self.topo.nodes.iter().position(|n| &n.id == p),
        }
    }

    fn addr(&self, i: usize) -> String {
        let n = &self.topo.nodes[i];
        format!("{}:{}", n.ip, n.port)
    }

    /// Whether this node (or its primary) owns `slot`: the keys it may hold.
    pub fn serves(&self, slot: u16) -> bool {
        self.owner(slot).is_some() && self.owner(slot) == self.my_primary()
    }
}

fn cport(port: u16) -> u32 {
    u32::from(port) + 10000
}

/// Apply a topology pushed by the control plane.
pub fn set_topology(node: &mut Node, topo: Topology) {
    match ClusterState::new(topo) {
        Some(cs) => {
            node.cluster = Some(Box::new(cs));
            drop_moved_shard_channels(node);
        }
        None => tracing::warn!("cluster topology without this node ignored"),
    }
}

/// Shard channels whose slot this node no longer serves lose their subscribers,
/// who are told with an `sunsubscribe` message (as Redis does when a slot moves).
fn drop_moved_shard_channels(node: &mut Node) {
    let Some(cs) = node.cluster.as_deref() else {
        return;
    };
    let gone: Vec<Blob> = node
        .shard_channels
        .keys()
        .filter(|ch| !cs.serves(key_slot(ch)))
        .cloned()
        .collect();
    // Not inside a command: every frame goes to its client's own buffer.
    let saved = std::mem::replace(&mut node.current_client, 0);
    for ch in gone {
        let Some(ids) = node.shard_channels.remove(&ch) else {
            continue;
        };
        for id in ids {
            let Some(c) = node.clients.get(&id).cloned() else {
                continue;
            };
            c.ssubs.borrow_mut().shift_remove(&ch);
            let n = c.ssubs.borrow().len();
            let mut scratch = Vec::new();
            node.deliver(id, &mut scratch, |r| {
                r.push(3);
                r.bulk(b"sunsubscribe");
                r.bulk(&ch);
                r.int(n as i64);
            });
        }
    }
    node.current_client = saved;
}

/// Calls `f` with every key of a command (for EXEC: of every queued command).
fn for_each_key(def: &CmdDef, args: &Args<'_>, client: &Client, f: &mut dyn FnMut(&[u8], bool)) {
    if def.name == "exec" {
        if let Some(q) = client.multi.borrow().as_ref() {
            for c in q {
                let a = c.args();
                if let Some(i) = crate::cmd::lookup(a.get(0)) {
                    let write = i.flags & crate::cmd::F_WRITE != 0;
                    for k in key_indexes(i.def, &a) {
                        f(a.get(k), write);
                    }
                }
            }
        }
        return;
    }
    for k in key_indexes(def, args) {
        f(args.get(k), false);
    }
}

/// Before a command runs in cluster mode: the error line redirecting the client
/// elsewhere, or None to run it here (Redis's `getNodeByQuery`).
pub fn redirect(
    node: &mut Node,
    client: &Client,
    info: &'static CmdInfo,
    args: &Args<'_>,
) -> Option<String> {
    let def = info.def;
    // ASKING lasts for exactly one command.
    let asking = def.name != "asking" && client.asking.replace(false);
    if crate::replication::is_master_client(node, client.id) {
        return None;
    }
    let cs = node.cluster.as_ref()?;
    if cs.compatible {
        // One shard owns every slot: this node holds (or replicates) every key, and
        // plain clients keep their single-node semantics. Writes on a replica are
        // still refused with -READONLY by the replication check.
        return None;
    }
    let mut slot: Option<u16> = None;
    let mut cross = false;
    let mut multiple = false;
    let mut write = info.flags & crate::cmd::F_WRITE != 0;
    for_each_key(def, args, client, &mut |k, w| {
        write |= w;
        let s = key_slot(k);
        match slot {
            None => slot = Some(s),
            Some(x) if x != s => cross = true,
            Some(_) => multiple = true,
        }
    });
    if cross {
        return Some("CROSSSLOT Keys in request don't hash to the same slot".into());
    }
    let slot = slot?;
    let Some(owner) = cs.owner(slot) else {
        return Some("CLUSTERDOWN Hash slot not served".into());
    };
    let migrating_to = (owner == cs.me)
        .then(|| cs.migrating.get(&slot).copied())
        .flatten();
    let importing = migrating_to.is_none() && cs.importing.contains_key(&slot) && asking;
    if migrating_to.is_some() || importing {
        let (mut existing, mut missing) = (0, 0);
        let db = client.db.get();
        let ks = &mut node.ks;
        for_each_key(def, args, client, &mut |k, _| {
            if ks.exists(db, k) {
                existing += 1;
            } else {
                missing += 1;
            }
        });
        let cs = node.cluster.as_ref()?;
        if let Some(to) = migrating_to {
            if missing > 0 {
                if existing > 0 {
                    return Some("TRYAGAIN Multiple keys request during rehashing of slot".into());
                }
                return Some(format!("ASK {slot} {}", cs.addr(to)));
            }
            return None;
        }
        if multiple && missing > 0 {
            return Some("TRYAGAIN Multiple keys request during rehashing of slot".into());
        }
        return None;
    }
    if owner == cs.me {
        return None;
    }
    let pubsub_shard = matches!(def.name, "ssubscribe" | "sunsubscribe" | "spublish");
    if (client.readonly.get() || pubsub_shard)
        && !write
        && cs.myself().primary_id.is_some()
        && cs.my_primary() == Some(owner)
    {
        return None;
    }
    Some(format!("MOVED {slot} {}", cs.addr(owner)))
}

// ---------------------------------------------------------------- commands

pub static COMMANDS: &[CmdDef] = &[
    cmd!("cluster", -2, "loading stale", "@slow", Keys::None, cluster),
    cmd!("asking", 1, "fast", "@fast @connection", Keys::None, asking),
    cmd!(
        "readonly",
        1,
        "loading stale fast",
        "@fast @connection",
        Keys::None,
        readonly
    ),
    cmd!(
        "readwrite",
        1,
        "loading stale fast",
        "@fast @connection",
        Keys::None,
        readwrite
    ),
    cmd!(
        "ssubscribe",
        -2,
        "pubsub noscript loading stale",
        "@pubsub @slow",
        Keys::Range(1, -1, 1),
        ssubscribe
    ),
    cmd!(
        "sunsubscribe",
        -1,
        "pubsub noscript loading stale",
        "@pubsub @slow",
        Keys::Range(1, -1, 1),
        sunsubscribe
    ),
    cmd!(
        "spublish",
        3,
        "pubsub loading stale fast",
        "@pubsub @fast",
        Keys::Range(1, 1, 1),
        spublish
    ),
];

fn shard_frame(ctx: &mut Ctx<'_>, kind: &[u8], ch: Option<&[u8]>) {
    let n = ctx.client.ssubs.borrow().len();
    let mut r = ctx.r();
    r.push(3);
    r.bulk(kind);
    match ch {
        Some(c) => r.bulk(c),
        None => r.null(),
    }
    r.int(n as i64);
}

/// SSUBSCRIBE: sharded pub/sub (the channel hashes to a slot like a key).
fn ssubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let c = ctx.client.clone();
    for i in 1..ctx.argc() {
        let ch = ctx.arg(i);
        if c.ssubs.borrow_mut().insert(ch.into()) {
            ctx.node
                .shard_channels
                .entry(ch.into())
                .or_default()
                .insert(c.id);
        }
        shard_frame(ctx, b"ssubscribe", Some(ch));
    }
    Ok(())
}

fn sunsubscribe_one(node: &mut Node, c: &Client, ch: &[u8]) {
    if c.ssubs.borrow_mut().shift_remove(ch) {
        if let Some(s) = node.shard_channels.get_mut(ch) {
            s.shift_remove(&c.id);
            if s.is_empty() {
                node.shard_channels.remove(ch);
            }
        }
    }
}

fn sunsubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let c = ctx.client.clone();
    let list: Vec<Blob> = if ctx.argc() == 1 {
        c.ssubs.borrow().iter().cloned().collect()
    } else {
        (1..ctx.argc()).map(|i| Blob::from(ctx.arg(i))).collect()
    };
    if list.is_empty() {
        shard_frame(ctx, b"sunsubscribe", None);
    }
    for ch in list {
        sunsubscribe_one(ctx.node, &c, &ch);
        shard_frame(ctx, b"sunsubscribe", Some(&ch));
    }
    Ok(())
}

fn spublish(ctx: &mut Ctx<'_>) -> CmdResult {
    let (ch, msg) = (ctx.arg(1), ctx.arg(2));
    let ids: Vec<u64> = ctx
        .node
        .shard_channels
        .get(ch)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    let mut n = 0;
    for id in ids {
        if ctx.node.deliver(id, ctx.out, |r| {
            r.push(3);
            r.bulk(b"smessage");
            r.bulk(ch);
            r.bulk(msg);
        }) {
            n += 1;
        }
    }
    ctx.r().int(n);
    Ok(())
}

const DISABLED: &str = "This instance has cluster support disabled";

fn asking(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.node.cluster.is_none() {
        return Err(err(DISABLED));
    }
    ctx.client.asking.set(true);
    ctx.r().ok();
    Ok(())
}

fn readonly(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.node.cluster.is_some() {
        ctx.client.readonly.set(true);
    }
    ctx.r().ok();
    Ok(())
}

fn readwrite(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.client.readonly.set(false);
    ctx.r().ok();
    Ok(())
}

/// Subcommands ElastiCache refuses: the cluster is managed through the API.
const ADMIN: &[&str] = &[
    "addslots",
    "addslotsrange",
    "delslots",
    "delslotsrange",
    "flushslots",
    "meet",
    "forget",
    "replicate",
    "failover",
    "setslot",
    "reset",
    "saveconfig",
    "set-config-epoch",
    "bumpepoch",
    "count-failure-reports",
    "links",
];

fn cluster(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.node.cluster.is_none() {
        if !ctx.node.settings.allow_restricted {
            // ElastiCache renames CLUSTER away on cluster-mode-disabled nodes.
            let mut rest = String::new();
            for i in 1..ctx.argc() {
                rest.push_str(&format!("'{}' ", crate::cmd::trunc(ctx.arg(i), 128)));
            }
            return Err(Error::Raw(format!(
                "ERR unknown command 'cluster', with args beginning with: {rest}"
            )));
        }
        return Err(err(DISABLED));
    }
    let sub = String::from_utf8_lossy(ctx.arg(1)).to_ascii_lowercase();
    if ADMIN.contains(&sub.as_str()) {
        return Err(ctx.unknown_sub());
    }
    let argc = ctx.argc();
    let arity = |ok: bool| -> CmdResult {
        if ok {
            Ok(())
        } else {
            Err(Error::Raw(format!(
                "ERR wrong number of arguments for 'cluster|{sub}' command"
            )))
        }
    };
    match sub.as_str() {
        "info" => {
            arity(argc == 2)?;
            let body = info_text(ctx.node);
            ctx.r().verbatim(body.as_bytes());
        }
        "myid" => {
            arity(argc == 2)?;
            let id = cs(ctx.node)?.myself().id.clone();
            ctx.r().bulk(id.as_bytes());
        }
        "myshardid" => {
            arity(argc == 2)?;
            let id = cs(ctx.node)?.myself().shard_id.clone();
            ctx.r().bulk(id.as_bytes());
        }
        "nodes" => {
            arity(argc == 2)?;
            let body = nodes_text(cs(ctx.node)?, None);
            ctx.r().verbatim(body.as_bytes());
        }
        "replicas" | "slaves" => {
            arity(argc == 3)?;
            let c = cs(ctx.node)?;
            let id = String::from_utf8_lossy(ctx.arg(2)).into_owned();
            let Some(n) = c.topo.nodes.iter().find(|n| n.id == id) else {
                return Err(err(format!("Unknown node {id}")));
            };
            if n.primary_id.is_some() {
                return Err(err("The specified node is not a master"));
            }
            let lines: Vec<String> = nodes_text(c, Some(&id))
                .lines()
                .map(str::to_string)
                .collect();
            let mut r = ctx.r();
            r.array(lines.len());
            for l in lines {
                r.bulk(l.as_bytes());
            }
        }
        "slots" => {
            arity(argc == 2)?;
            slots_reply(ctx)?;
        }
        "shards" => {
            arity(argc == 2)?;
            shards_reply(ctx)?;
        }
        "keyslot" => {
            arity(argc == 3)?;
            let s = key_slot(ctx.arg(2));
            ctx.r().int(i64::from(s));
        }
        "countkeysinslot" => {
            arity(argc == 3)?;
            let s = parse_int(ctx.arg(2))?;
            if !(0..SLOTS as i64).contains(&s) {
                return Err(err("Invalid slot"));
            }
            let n = keys_in_slot(ctx.node, s as u16, usize::MAX).len();
            ctx.r().int(n as i64);
        }
        "getkeysinslot" => {
            arity(argc == 4)?;
            let (s, n) = (parse_int(ctx.arg(2))?, parse_int(ctx.arg(3))?);
            if !(0..SLOTS as i64).contains(&s) || n < 0 {
                return Err(err("Invalid slot or number of keys"));
            }
            let keys = keys_in_slot(ctx.node, s as u16, n as usize);
            let mut r = ctx.r();
            r.array(keys.len());
            for k in keys {
                r.bulk(&k);
            }
        }
        "help" => {
            let lines = [
                "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "COUNTKEYSINSLOT <slot>",
                "    Return the number of keys in <slot>.",
                "GETKEYSINSLOT <slot> <count>",
                "    Return key names stored by current node in a slot.",
                "INFO",
                "    Return information about the cluster.",
                "KEYSLOT <key>",
                "    Return the hash slot for <key>.",
                "MYID",
                "    Return the node id.",
                "MYSHARDID",
                "    Return the node's shard id.",
                "NODES",
                "    Return cluster configuration seen by node. Output format:",
                "    <id> <ip:port@bus-port[,hostname]> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
                "REPLICAS <node-id>",
                "    Return <node-id> replicas.",
                "SLOTS",
                "    Return information about slots range mappings. Each range is made of:",
                "    start, end, master and replicas IP addresses, ports and ids",
                "SHARDS",
                "    Return information about slot range mappings and the nodes associated with them.",
                "HELP",
                "    Print this help.",
            ];
            ctx.r().lines(&lines[..]);
        }
        _ => return Err(ctx.unknown_sub()),
    }
    if let Some(c) = ctx.node.cluster.as_mut() {
        c.messages += 1;
    }
    Ok(())
}

fn cs(node: &Node) -> Result<&ClusterState, Error> {
    node.cluster.as_deref().ok_or_else(|| err(DISABLED))
}

/// Keys of db 0 hashing to `slot`, at most `max`, newest first (Redis keeps
/// each slot's keys in a list it prepends to).
fn keys_in_slot(node: &Node, slot: u16, max: usize) -> Vec<Blob> {
    let mut out: Vec<Blob> = node.ks.dbs[0]
        .map
        .keys()
        .filter(|k| key_slot(k) == slot)
        .map(|k| Blob::from(&k[..]))
        .collect();
    out.reverse();
    out.truncate(max);
    out
}

/// `CLUSTER INFO`.
pub fn info_text(node: &Node) -> String {
    let Some(c) = node.cluster.as_deref() else {
        return String::new();
    };
    let assigned = c.owner.iter().filter(|&&o| o != UNASSIGNED).count();
    let size = c
        .topo
        .nodes
        .iter()
        .filter(|n| n.primary_id.is_none() && !n.slots.is_empty())
        .count();
    let state = if assigned == SLOTS { "ok" } else { "fail" };
    let m = c.messages;
    format!(
        "cluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{}\r\ncluster_size:{size}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_ping_sent:{m}\r\ncluster_stats_messages_pong_sent:{m}\r\ncluster_stats_messages_sent:{}\r\ncluster_stats_messages_ping_received:{m}\r\ncluster_stats_messages_pong_received:{m}\r\ncluster_stats_messages_received:{}\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        c.topo.nodes.len(),
        c.topo.epoch,
        c.myself().epoch,
        2 * m,
        2 * m,
    )
}

/// `CLUSTER NODES` (or, with `replicas_of`, the lines of that primary's replicas).
fn nodes_text(c: &ClusterState, replicas_of: Option<&str>) -> String {
    let now = crate::db::now_ms();
    let mut out = String::new();
    for (i, n) in c.topo.nodes.iter().enumerate() {
        if let Some(p) = replicas_of {
            if n.primary_id.as_deref() != Some(p) {
                continue;
            }
        }
        let role = if n.primary_id.is_some() {
            "slave"
        } else {
            "master"
        };
        let flags = if i == c.me {
            format!("myself,{role}")
        } else {
            role.to_string()
        };
        out.push_str(&format!(
            "{} {}:{}@{} {} {} 0 {} {} connected",
            n.id,
            n.ip,
            n.port,
            cport(n.port),
            flags,
            n.primary_id.as_deref().unwrap_or("-"),
            if i == c.me { 0 } else { now / 1000 * 1000 },
            n.epoch
        ));
        for &(a, b) in &n.slots {
            if a == b {
                out.push_str(&format!(" {a}"));
            } else {
                out.push_str(&format!(" {a}-{b}"));
            }
        }
        if i == c.me {
            let mut m: Vec<_> = c.migrating.iter().collect();
            m.sort();
            for (s, to) in m {
                out.push_str(&format!(" [{s}->-{}]", c.topo.nodes[*to].id));
            }
            let mut im: Vec<_> = c.importing.iter().collect();
            im.sort();
            for (s, from) in im {
                out.push_str(&format!(" [{s}-<-{}]", c.topo.nodes[*from].id));
            }
        }
        out.push('\n');
    }
    out
}

/// Contiguous slot ranges with their owner, in slot order.
fn ranges(c: &ClusterState) -> Vec<(u16, u16, usize)> {
    let mut out: Vec<(u16, u16, usize)> = Vec::new();
    for s in 0..SLOTS as u16 {
        let Some(o) = c.owner(s) else { continue };
        match out.last_mut() {
            Some(last) if last.2 == o && last.1 + 1 == s => last.1 = s,
            _ => out.push((s, s, o)),
        }
    }
    out
}

fn slots_reply(ctx: &mut Ctx<'_>) -> CmdResult {
    let c = cs(ctx.node)?;
    let rs = ranges(c);
    let entries: Vec<(u16, u16, Vec<(String, u16, String)>)> = rs
        .iter()
        .map(|&(a, b, o)| {
            let p = &c.topo.nodes[o];
            let mut ns = vec![(p.ip.clone(), p.port, p.id.clone())];
            for r in &c.topo.nodes {
                if r.primary_id.as_deref() == Some(&p.id) {
                    ns.push((r.ip.clone(), r.port, r.id.clone()));
                }
            }
            (a, b, ns)
        })
        .collect();
    let mut r = ctx.r();
    r.array(entries.len());
    for (a, b, ns) in entries {
        r.array(2 + ns.len());
        r.int(i64::from(a));
        r.int(i64::from(b));
        for (ip, port, id) in ns {
            r.array(4);
            r.bulk(ip.as_bytes());
            r.int(i64::from(port));
            r.bulk(id.as_bytes());
            r.map(0);
        }
    }
    Ok(())
}

fn shards_reply(ctx: &mut Ctx<'_>) -> CmdResult {
    let c = cs(ctx.node)?;
    let primaries: Vec<&TopologyNode> = c
        .topo
        .nodes
        .iter()
        .filter(|n| n.primary_id.is_none())
        .collect();
    let offset = ctx.node.repl.offset as i64;
    let mut shards = Vec::new();
    for p in primaries {
        let mut members = vec![p];
        members.extend(
            c.topo
                .nodes
                .iter()
                .filter(|n| n.primary_id.as_deref() == Some(&p.id)),
        );
        let members: Vec<TopologyNode> = members.into_iter().cloned().collect();
        shards.push((p.slots.clone(), members));
    }
    let mut r = ctx.r();
    r.array(shards.len());
    for (slots, members) in shards {
        r.map(2);
        r.bulk(b"slots");
        r.array(slots.len() * 2);
        for (a, b) in slots {
            r.int(i64::from(a));
            r.int(i64::from(b));
        }
        r.bulk(b"nodes");
        r.array(members.len());
        for n in members {
            r.map(7);
            r.bulk(b"id");
            r.bulk(n.id.as_bytes());
            r.bulk(b"port");
            r.int(i64::from(n.port));
            r.bulk(b"ip");
            r.bulk(n.ip.as_bytes());
            r.bulk(b"endpoint");
            r.bulk(n.ip.as_bytes());
            r.bulk(b"role");
            r.bulk(if n.primary_id.is_some() {
                b"replica"
            } else {
                b"master"
            });
            r.bulk(b"replication-offset");
            r.int(offset);
            r.bulk(b"health");
            r.bulk(b"online");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- migration

/// One key on its way between shards: a DUMP payload and its absolute expiry.
#[derive(Debug, Clone)]
pub struct MovedKey {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub expire_at_ms: Option<u64>,
}

/// Where a migrating node sends keys: the target node's control channel.
#[derive(Debug, Clone)]
pub struct ImportTarget(pub(crate) tokio::sync::mpsc::UnboundedSender<crate::Control>);

/// Move up to `max_keys` keys of `slots` to `target`, like a batch of MIGRATE:
/// the keys are deleted here only once the target has stored them, and this node
/// serves nothing in between (it blocks), so no key is ever lost or served twice.
#[derive(Debug, Clone)]
pub struct Migration {
    pub slots: Vec<u16>,
    pub max_keys: usize,
    pub target: ImportTarget,
    /// Number of keys moved (0: the slots are empty here).
    pub reply: mpsc::Sender<Result<usize, String>>,
}

#[derive(Debug, Clone)]
pub struct ImportBatch {
    pub keys: Vec<MovedKey>,
    /// The keys come back so they are freed on the thread that allocated them
    /// (per-thread memory accounting).
    pub reply: mpsc::Sender<Result<Vec<MovedKey>, String>>,
}

pub(crate) fn migrate(node: &mut Node, m: &Migration) -> Result<usize, String> {
    let mut want = vec![false; SLOTS];
    for &s in &m.slots {
        if let Some(w) = want.get_mut(s as usize) {
            *w = true;
        }
    }
    let names: Vec<Blob> = node.ks.dbs[0]
        .map
        .keys()
        .filter(|k| want[key_slot(k) as usize])
        .take(m.max_keys.max(1))
        .map(|k| Blob::from(&k[..]))
        .collect();
    let mut batch = Vec::with_capacity(names.len());
    for k in &names {
        let Some(e) = node.ks.peek(0, k) else {
            continue;
        };
        let payload = crate::rdb_dump(&e.val);
        batch.push(MovedKey {
            key: k.to_vec(),
            payload,
            expire_at_ms: node.ks.ttl(0, k),
        });
    }
    if batch.is_empty() {
        // Only expired keys were found: they are gone now.
        node.flush_deleted();
        return Ok(names.len());
    }
    let (tx, rx) = mpsc::channel();
    m.target
        .0
        .send(crate::Control::ImportKeys(ImportBatch {
            keys: batch,
            reply: tx,
        }))
        .map_err(|_| "target node is gone".to_string())?;
    let back = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "target node did not answer".to_string())??;
    let moved = back.len();
    for k in &back {
        node.ks.del(0, &k.key);
        node.touch_key(0, &k.key);
        node.dirty += 1;
        crate::replication::propagate(node, Some(0), &[b"DEL", &k.key]);
    }
    drop(back);
    node.flush_deleted();
    Ok(moved)
}

pub(crate) fn import(node: &mut Node, b: ImportBatch) {
    let now = crate::db::now_ms();
    let mut res = Ok(());
    for k in &b.keys {
        let Some(v) = crate::rdb_restore(&k.payload) else {
            res = Err(format!(
                "cannot restore key {}",
                String::from_utf8_lossy(&k.key)
            ));
            break;
        };
        node.ks.set(0, &k.key, v, false);
        let ttl = match k.expire_at_ms {
            Some(t) => {
                node.ks.set_expire(0, &k.key, t.max(now));
                t.max(now).to_string()
            }
            None => "0".to_string(),
        };
        node.touch_key(0, &k.key);
        node.dirty += 1;
        crate::replication::propagate(
            node,
            Some(0),
            &[
                b"RESTORE",
                &k.key,
                ttl.as_bytes(),
                &k.payload,
                b"REPLACE",
                b"ABSTTL",
            ],
        );
    }
    let _ = b.reply.send(res.map(|_| b.keys));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_reference() {
        // The check value of CRC16/XMODEM and Redis's own test vector.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
    }

    #[test]
    fn hash_tags() {
        assert_eq!(key_slot(b"{user1}.x"), 8106);
        assert_eq!(key_slot(b"{user1}.x"), key_slot(b"user1"));
        assert_eq!(key_slot(b"a{user1}b"), key_slot(b"user1"));
        // Empty tag: the whole key is hashed.
        assert_eq!(key_slot(b"{}user1"), crc16(b"{}user1") & 16383);
        // Only the first tag counts; an unclosed brace hashes the whole key.
        assert_eq!(key_slot(b"{a}{b}"), key_slot(b"a"));
        assert_eq!(key_slot(b"{abc"), crc16(b"{abc") & 16383);
        assert_eq!(key_slot(b"x{}{y}"), crc16(b"x{}{y}") & 16383);
    }

    fn topo(me: &str) -> Topology {
        let n = |id: &str, port, primary: Option<&str>, slots: Vec<(u16, u16)>| TopologyNode {
            id: id.repeat(40),
            ip: "127.0.0.1".into(),
            port,
            primary_id: primary.map(|p| p.repeat(40)),
            slots,
            shard_id: id.repeat(40),
            epoch: 1,
        };
        Topology {
            myself: me.repeat(40),
            epoch: 3,
            nodes: vec![
                n("a", 7001, None, vec![(0, 8191)]),
                n("b", 7002, None, vec![(8192, 16383)]),
                n("c", 7003, Some("a"), vec![]),
            ],
            migrating: vec![],
            importing: vec![],
            compatible: false,
        }
    }

    #[test]
    fn ownership() {
        let c = ClusterState::new(topo("a")).expect("myself");
        assert!(c.serves(0) && c.serves(8191) && !c.serves(8192));
        let r = ClusterState::new(topo("c")).expect("myself");
        assert!(r.serves(100) && !r.serves(9000));
        assert_eq!(ranges(&c), vec![(0, 8191, 0), (8192, 16383, 1)]);
        assert!(ClusterState::new(topo("z")).is_none());
        let text = nodes_text(&c, None);
        assert!(text.starts_with(&format!(
            "{} 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-8191\n",
            "a".repeat(40)
        )));
        assert!(text.contains(&format!("slave {} 0 ", "a".repeat(40))));
    }
}
