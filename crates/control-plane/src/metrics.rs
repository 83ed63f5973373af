//! Node metrics under ElastiCache's CloudWatch names: a Prometheus text page
//! (`GET /metrics`) and the data behind the web console.
//!
//! Values come from the engines themselves: each node thread publishes its
//! counters every 100 ms ([`EngineStats`]), and a sampler here records them once a
//! second (with the node thread's CPU time from /proc) for five minutes, which
//! gives rates (CPU %, ops/s, hit rate) and replication lag without ever waiting
//! on a node.

use crate::admin::NodeInfo;
use crate::error::ApiError;
use crate::nodes::{EngineStats, NodeKey};
use crate::Inner;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Five minutes of one-second samples per node.
const KEEP: usize = 300;
/// Rates (CPU, hit rate) are averaged over this window, or all history if shorter.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Linux reports thread CPU time in clock ticks of 1/100 s (USER_HZ).
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    at: Instant,
    unix_ms: i64,
    /// utime + stime of the node's thread, in clock ticks.
    cpu_ticks: Option<u64>,
    stats: EngineStats,
}

/// Recent samples of every running node.
#[derive(Default)]
pub(crate) struct History {
    nodes: Mutex<HashMap<NodeKey, VecDeque<Sample>>>,
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeKey, VecDeque<Sample>>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record one sample of every running node; forget nodes that stopped.
    pub(crate) fn sample(&self, running: Vec<(NodeKey, EngineStats)>) {
        let at = Instant::now();
        let unix_ms = crate::now_ms();
        let mut nodes = self.lock();
        let mut seen = std::collections::HashSet::with_capacity(running.len());
        for (key, stats) in running {
            let s = Sample {
                at,
                unix_ms,
                cpu_ticks: cpu_ticks(tid(&stats)),
                stats,
            };
            let h = nodes.entry(key.clone()).or_default();
            // A restarted node starts its counters again: so does its history.
            if h.back().is_some_and(|last| restarted(&last.stats, &stats)) {
                h.clear();
            }
            h.push_back(s);
            while h.len() > KEEP {
                h.pop_front();
            }
            seen.insert(key);
        }
        nodes.retain(|k, _| seen.contains(k));
    }

    fn get(&self, key: &NodeKey) -> Vec<Sample> {
        self.lock()
            .get(key)
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }
}

fn tid(s: &EngineStats) -> u32 {
    match s {
        EngineStats::Redis(r) => r.tid,
        EngineStats::Memcached(m) => m.tid,
    }
}

fn restarted(old: &EngineStats, new: &EngineStats) -> bool {
    tid(old) != tid(new)
}

/// Sample every second until the control plane is gone.
pub(crate) fn spawn_sampler(cp: &Arc<Inner>) {
    let weak = Arc::downgrade(cp);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(cp) = weak.upgrade() else { return };
            cp.history.sample(cp.nodes.all_engine_stats());
        }
    });
}

/// utime + stime (clock ticks) of one of this process's threads.
fn cpu_ticks(tid: u32) -> Option<u64> {
    if tid == 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn cores() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0)
}

/// The sample to measure rates against: the newest one at least `window` old,
/// else the oldest there is.
fn baseline(h: &[Sample], now: Instant, window: Duration) -> Option<&Sample> {
    h.iter()
        .rev()
        .find(|s| now.duration_since(s.at) >= window)
        .or_else(|| h.first())
}

/// Percent of one core the node's thread used over the rate window.
fn engine_cpu_percent(tid: u32, h: &[Sample]) -> f64 {
    let now = Instant::now();
    let (Some(base), Some(ticks)) = (baseline(h, now, RATE_WINDOW), cpu_ticks(tid)) else {
        return 0.0;
    };
    let Some(base_ticks) = base.cpu_ticks else {
        return 0.0;
    };
    let secs = now.duration_since(base.at).as_secs_f64();
    if secs < 0.2 {
        return 0.0;
    }
    (ticks.saturating_sub(base_ticks) as f64 / TICKS_PER_SEC / secs * 100.0).clamp(0.0, 100.0)
}

/// One node's metric values: (CloudWatch name, value).
#[derive(Debug, Clone, Default)]
struct Values(Vec<(&'static str, f64)>);

impl Values {
    fn push(&mut self, name: &'static str, v: f64) {
        self.0.push((name, v));
    }
}

/// How a metric is typed for Prometheus and combined over a cluster's nodes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Cumulative since the node started (Prometheus `counter`); summed.
    Counter,
    /// Summed over nodes.
    GaugeSum,
    /// Averaged over nodes.
    GaugeAvg,
    /// The largest over nodes.
    GaugeMax,
}

struct Def {
    name: &'static str,
    kind: Kind,
    help: &'static str,
}

const DEFS: &[Def] = &[
    Def { name: "CPUUtilization", kind: Kind::GaugeAvg, help: "Percent of the host's CPU (all cores) used by the node's thread, averaged over the last 10 s" },
    Def { name: "EngineCPUUtilization", kind: Kind::GaugeAvg, help: "Percent of one core used by the node's engine thread, averaged over the last 10 s" },
    Def { name: "CurrConnections", kind: Kind::GaugeSum, help: "Client connections open now" },
    Def { name: "NewConnections", kind: Kind::Counter, help: "Connections accepted since the node started" },
    Def { name: "CacheHits", kind: Kind::Counter, help: "Successful key lookups (memcached: get_hits)" },
    Def { name: "CacheMisses", kind: Kind::Counter, help: "Unsuccessful key lookups (memcached: get_misses)" },
    Def { name: "CacheHitRate", kind: Kind::GaugeAvg, help: "Percent of lookups that hit over the last 10 s (0 without lookups)" },
    Def { name: "Evictions", kind: Kind::Counter, help: "Keys evicted because of the memory limit" },
    Def { name: "Reclaimed", kind: Kind::Counter, help: "Keys expired (Redis) / expired items whose memory was reused (memcached)" },
    Def { name: "CurrItems", kind: Kind::GaugeSum, help: "Items (keys) stored" },
    Def { name: "BytesUsedForCache", kind: Kind::GaugeSum, help: "Bytes allocated for the data set (Redis used_memory, memcached bytes)" },
    Def { name: "DatabaseMemoryUsagePercentage", kind: Kind::GaugeAvg, help: "BytesUsedForCache as a percent of maxmemory" },
    Def { name: "ReplicationLag", kind: Kind::GaugeMax, help: "Seconds the replica's applied stream is behind its primary's" },
    Def { name: "ReplicationBytes", kind: Kind::Counter, help: "Replication stream bytes the primary sent, summed over its replicas" },
    Def { name: "GetTypeCmds", kind: Kind::Counter, help: "Read-only commands run (memcached: cmd_get)" },
    Def { name: "SetTypeCmds", kind: Kind::Counter, help: "Write commands run (memcached: cmd_set)" },
    Def { name: "NetworkBytesIn", kind: Kind::Counter, help: "Bytes read from clients" },
    Def { name: "NetworkBytesOut", kind: Kind::Counter, help: "Bytes written to clients" },
    Def { name: "IsMaster", kind: Kind::GaugeMax, help: "1 on a primary, 0 on a replica" },
    Def { name: "CmdGet", kind: Kind::Counter, help: "memcached get commands (cmd_get)" },
    Def { name: "CmdSet", kind: Kind::Counter, help: "memcached set commands (cmd_set)" },
    Def { name: "GetHits", kind: Kind::Counter, help: "memcached get hits (get_hits)" },
    Def { name: "GetMisses", kind: Kind::Counter, help: "memcached get misses (get_misses)" },
    Def { name: "BytesUsedForCacheItems", kind: Kind::GaugeSum, help: "memcached bytes used by items (bytes)" },
    Def { name: "BytesReadIntoMemcached", kind: Kind::Counter, help: "memcached bytes read from clients (bytes_read)" },
    Def { name: "BytesWrittenOutFromMemcached", kind: Kind::Counter, help: "memcached bytes written to clients (bytes_written)" },
];

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Percent of lookups that hit between the baseline sample and now.
fn hit_rate(
    now_hits: u64,
    now_misses: u64,
    base: Option<&Sample>,
    pick: fn(&EngineStats) -> (u64, u64),
) -> f64 {
    let (bh, bm) = base.map(|b| pick(&b.stats)).unwrap_or((0, 0));
    let (h, m) = (now_hits.saturating_sub(bh), now_misses.saturating_sub(bm));
    percent(h, h + m)
}

fn redis_hits(s: &EngineStats) -> (u64, u64) {
    match s {
        EngineStats::Redis(r) => (r.keyspace_hits, r.keyspace_misses),
        EngineStats::Memcached(m) => (m.get_hits, m.get_misses),
    }
}

/// Seconds a replica is behind: 0 when it has everything its primary had; else
/// how long ago the primary first had more than the replica has now.
fn replication_lag(replica_offset: u64, primary_now: u64, primary: &[Sample]) -> f64 {
    if replica_offset >= primary_now {
        return 0.0;
    }
    let now = Instant::now();
    let offset = |s: &Sample| match s.stats {
        EngineStats::Redis(r) => r.repl_offset,
        EngineStats::Memcached(_) => 0,
    };
    primary
        .iter()
        .find(|s| offset(s) > replica_offset)
        .or_else(|| primary.first())
        .map(|s| now.duration_since(s.at).as_secs_f64())
        .unwrap_or(0.0)
}

/// A node with everything the console and /metrics show about it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeView {
    #[serde(flatten)]
    pub info: NodeInfo,
    /// `primary`/`replica` as the engine sees itself right now (Redis), which
    /// follows a failover at once.
    pub engine_role: Option<String>,
    pub node_type: String,
    pub cluster_status: String,
    pub used_memory: u64,
    pub max_memory: u64,
    pub items: u64,
    pub connections: u64,
    pub ops_per_sec: f64,
    pub engine_cpu_percent: f64,
    /// `[unix ms, ops/s, bytes used]`, oldest first, one a second.
    pub series: Vec<(i64, f64, u64)>,
    #[serde(skip)]
    values: Values,
}

fn ops(s: &EngineStats) -> u64 {
    match s {
        EngineStats::Redis(r) => r.total_commands,
        EngineStats::Memcached(m) => m.cmd_get + m.cmd_set,
    }
}

fn used(s: &EngineStats) -> u64 {
    match s {
        EngineStats::Redis(r) => r.used_memory,
        EngineStats::Memcached(m) => m.bytes,
    }
}

fn series(h: &[Sample]) -> Vec<(i64, f64, u64)> {
    h.windows(2)
        .map(|w| {
            let secs = w[1].at.duration_since(w[0].at).as_secs_f64().max(0.001);
            let rate = ops(&w[1].stats).saturating_sub(ops(&w[0].stats)) as f64 / secs;
            (
                w[1].unix_ms,
                (rate * 10.0).round() / 10.0,
                used(&w[1].stats),
            )
        })
        .collect()
}

/// Every node with its live statistics and recent history.
pub(crate) async fn views(cp: &Inner) -> Result<Vec<NodeView>, ApiError> {
    let keyed = crate::admin::nodes_keyed(cp).await?;
    let clusters: HashMap<(String, String), (String, String)> = cp
        .store
        .all_clusters()
        .await?
        .into_iter()
        .map(|c| {
            (
                (c.region.clone(), c.id.to_string()),
                (c.spec.node_type.clone(), c.status.clone()),
            )
        })
        .collect();
    // Primaries' live offsets and histories, for their replicas' lag.
    let mut primaries: HashMap<(String, String), (u64, Vec<Sample>)> = HashMap::new();
    for (info, key) in &keyed {
        if let (Some(rg), Some(EngineStats::Redis(r))) =
            (&info.replication_group_id, cp.nodes.engine_stats(key))
        {
            if r.is_master {
                primaries.insert(
                    (info.region.clone(), rg.clone()),
                    (r.repl_offset, cp.history.get(key)),
                );
            }
        }
    }
    let now = Instant::now();
    let mut out = Vec::with_capacity(keyed.len());
    for (info, key) in keyed {
        let (node_type, cluster_status) = clusters
            .get(&(info.region.clone(), info.cache_cluster_id.clone()))
            .cloned()
            .unwrap_or_default();
        let live = cp.nodes.engine_stats(&key);
        let h = cp.history.get(&key);
        let base = baseline(&h, now, RATE_WINDOW);
        let mut v = Values::default();
        let mut view = NodeView {
            engine_role: None,
            node_type,
            cluster_status,
            used_memory: 0,
            max_memory: 0,
            items: 0,
            connections: 0,
            ops_per_sec: series(&h).last().map(|s| s.1).unwrap_or(0.0),
            engine_cpu_percent: 0.0,
            series: series(&h),
            values: Values::default(),
            info,
        };
        let Some(live) = live else {
            out.push(view);
            continue;
        };
        let engine_cpu = engine_cpu_percent(tid(&live), &h);
        view.engine_cpu_percent = (engine_cpu * 10.0).round() / 10.0;
        v.push("CPUUtilization", engine_cpu / cores());
        match live {
            EngineStats::Redis(r) => {
                v.push("EngineCPUUtilization", engine_cpu);
                v.push("CurrConnections", r.connected_clients as f64);
                v.push("NewConnections", r.total_connections as f64);
                v.push("CacheHits", r.keyspace_hits as f64);
                v.push("CacheMisses", r.keyspace_misses as f64);
                v.push(
                    "CacheHitRate",
                    hit_rate(r.keyspace_hits, r.keyspace_misses, base, redis_hits),
                );
                v.push("Evictions", r.evicted_keys as f64);
                v.push("Reclaimed", r.expired_keys as f64);
                v.push("CurrItems", r.keys as f64);
                v.push("BytesUsedForCache", r.used_memory as f64);
                v.push(
                    "DatabaseMemoryUsagePercentage",
                    percent(r.used_memory, r.maxmemory),
                );
                let lag = if r.is_master {
                    0.0
                } else {
                    view.info
                        .replication_group_id
                        .as_ref()
                        .and_then(|rg| primaries.get(&(view.info.region.clone(), rg.clone())))
                        .map(|(p_now, p_hist)| replication_lag(r.repl_offset, *p_now, p_hist))
                        .unwrap_or(0.0)
                };
                if view.info.replication_group_id.is_some() {
                    v.push("ReplicationLag", lag);
                    v.push("ReplicationBytes", r.replication_bytes as f64);
                }
                v.push("GetTypeCmds", r.read_commands as f64);
                v.push("SetTypeCmds", r.write_commands as f64);
                v.push("NetworkBytesIn", r.net_input_bytes as f64);
                v.push("NetworkBytesOut", r.net_output_bytes as f64);
                v.push("IsMaster", if r.is_master { 1.0 } else { 0.0 });
                view.engine_role = Some(if r.is_master { "primary" } else { "replica" }.into());
                view.used_memory = r.used_memory;
                view.max_memory = r.maxmemory;
                view.items = r.keys;
                view.connections = r.connected_clients;
            }
            EngineStats::Memcached(m) => {
                v.push("CurrConnections", m.curr_connections as f64);
                v.push("NewConnections", m.total_connections as f64);
                v.push("CmdGet", m.cmd_get as f64);
                v.push("CmdSet", m.cmd_set as f64);
                v.push("GetHits", m.get_hits as f64);
                v.push("GetMisses", m.get_misses as f64);
                v.push(
                    "CacheHitRate",
                    hit_rate(m.get_hits, m.get_misses, base, redis_hits),
                );
                v.push("Evictions", m.evictions as f64);
                v.push("Reclaimed", m.reclaimed as f64);
                v.push("CurrItems", m.curr_items as f64);
                v.push("BytesUsedForCacheItems", m.bytes as f64);
                v.push("BytesReadIntoMemcached", m.bytes_read as f64);
                v.push("BytesWrittenOutFromMemcached", m.bytes_written as f64);
                v.push("NetworkBytesIn", m.bytes_read as f64);
                v.push("NetworkBytesOut", m.bytes_written as f64);
                // The Redis names too, derived from memcached's counters, so one
                // dashboard covers both engines.
                v.push("CacheHits", m.get_hits as f64);
                v.push("CacheMisses", m.get_misses as f64);
                v.push("GetTypeCmds", m.cmd_get as f64);
                v.push("SetTypeCmds", m.cmd_set as f64);
                v.push("BytesUsedForCache", m.bytes as f64);
                view.used_memory = m.bytes;
                view.max_memory = m.limit_maxbytes;
                view.items = m.curr_items;
                view.connections = m.curr_connections;
            }
        }
        view.values = v;
        out.push(view);
    }
    Ok(out)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Serverless caches with an `ECPUPerSecond` maximum: their limit, throttled
/// commands (`ThrottledCmds`) and ECPUs consumed (`ElastiCacheProcessingUnits`),
/// one line per cache (its reader endpoint shares the cache's bucket).
pub(crate) fn render_serverless(caches: &[(NodeKey, u64, u64, f64)]) -> String {
    let mut out = String::new();
    if caches.is_empty() {
        return out;
    }
    let families: [(&str, &str, &str); 3] = [
        (
            "elasticache_serverless_ECPUPerSecondMaximum",
            "gauge",
            "The cache's CacheUsageLimits.ECPUPerSecond.Maximum",
        ),
        (
            "elasticache_serverless_ThrottledCmds_total",
            "counter",
            "Commands delayed because the cache was over its ECPU/second maximum",
        ),
        (
            "elasticache_serverless_ElastiCacheProcessingUnits_total",
            "counter",
            "ECPUs consumed: each command max(1, KB transferred in and out)",
        ),
    ];
    for (i, (family, typ, help)) in families.iter().enumerate() {
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} {typ}");
        for (key, rate, throttled, ecpus) in caches {
            let name = key
                .cluster
                .strip_prefix("serverless:")
                .unwrap_or(&key.cluster);
            let v = match i {
                0 => *rate as f64,
                1 => *throttled as f64,
                _ => *ecpus,
            };
            let _ = writeln!(
                out,
                "{family}{} {}",
                labels(&[("region", &key.region), ("serverless_cache_name", name)]),
                fmt_value(v)
            );
        }
    }
    out
}

/// Render the Prometheus text exposition format (version 0.0.4).
pub(crate) fn render(views: &[NodeView]) -> String {
    let mut out = String::new();
    out.push_str(
        "# HELP elastilite_node_up 1 when the node's engine is serving, 0 when it is stopped\n# TYPE elastilite_node_up gauge\n",
    );
    for n in views {
        let i = &n.info;
        let _ = writeln!(
            out,
            "elastilite_node_up{} {}",
            labels(&[
                ("region", &i.region),
                ("cache_cluster_id", &i.cache_cluster_id),
                ("cache_node_id", &i.cache_node_id),
                ("engine", &i.engine),
            ]),
            u8::from(i.running)
        );
    }
    for def in DEFS {
        let (typ, suffix) = match def.kind {
            Kind::Counter => ("counter", "_total"),
            _ => ("gauge", ""),
        };
        let family = format!("elasticache_{}", def.name);
        let mut node_lines = String::new();
        // (region, cluster) -> (labels, values)
        let mut clusters: Vec<((String, String), String, Vec<f64>)> = Vec::new();
        for n in views {
            let Some(value) = n.values.0.iter().find(|(k, _)| *k == def.name).map(|x| x.1) else {
                continue;
            };
            let i = &n.info;
            let rg = i.replication_group_id.as_deref().unwrap_or("");
            let role = n.engine_role.as_deref().or(i.role.as_deref()).unwrap_or("");
            let _ = writeln!(
                node_lines,
                "{family}{suffix}{} {}",
                labels(&[
                    ("region", &i.region),
                    ("cache_cluster_id", &i.cache_cluster_id),
                    ("cache_node_id", &i.cache_node_id),
                    ("replication_group_id", rg),
                    ("role", role),
                    ("engine", &i.engine),
                ]),
                fmt_value(value)
            );
            let key = (i.region.clone(), i.cache_cluster_id.clone());
            match clusters.iter_mut().find(|c| c.0 == key) {
                Some(c) => c.2.push(value),
                None => clusters.push((
                    key,
                    labels(&[
                        ("region", &i.region),
                        ("cache_cluster_id", &i.cache_cluster_id),
                        ("replication_group_id", rg),
                        ("engine", &i.engine),
                    ]),
                    vec![value],
                )),
            }
        }
        if node_lines.is_empty() {
            continue;
        }
        // Text format 0.0.4 names a counter's family by its sample name (`…_total`).
        let _ = writeln!(out, "# HELP {family}{suffix} {} (per node)", def.help);
        let _ = writeln!(out, "# TYPE {family}{suffix} {typ}");
        out.push_str(&node_lines);
        let cfamily = format!("elasticache_cluster_{}", def.name);
        let _ = writeln!(
            out,
            "# HELP {cfamily}{suffix} {} (per cluster: {} over its nodes)",
            def.help,
            match def.kind {
                Kind::Counter | Kind::GaugeSum => "sum",
                Kind::GaugeAvg => "average",
                Kind::GaugeMax => "maximum",
            }
        );
        let _ = writeln!(out, "# TYPE {cfamily}{suffix} {typ}");
        for (_, l, vals) in &clusters {
            let agg = match def.kind {
                Kind::Counter | Kind::GaugeSum => vals.iter().sum(),
                Kind::GaugeAvg => vals.iter().sum::<f64>() / vals.len() as f64,
                Kind::GaugeMax => vals.iter().cloned().fold(f64::MIN, f64::max),
            };
            let _ = writeln!(out, "{cfamily}{suffix}{l} {}", fmt_value(agg));
        }
    }
    out
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// A replication group as the console draws it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupView {
    pub region: String,
    pub replication_group_id: String,
    pub status: String,
    pub description: String,
    pub automatic_failover: bool,
    pub primary_cluster_id: String,
    /// Node groups (shards) and their member clusters.
    pub shards: Vec<ShardView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ShardView {
    pub node_group_id: String,
    pub members: Vec<String>,
}

/// One DescribeEvents entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventView {
    pub region: String,
    pub source_identifier: String,
    pub source_type: String,
    pub message: String,
    pub date: String,
    pub date_ms: i64,
}

/// Everything the web console shows, in one poll.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsoleState {
    pub now_ms: i64,
    pub nodes: Vec<NodeView>,
    pub replication_groups: Vec<GroupView>,
    /// The newest events of every region with resources (and `also_region`), newest first.
    pub events: Vec<EventView>,
}

const CONSOLE_EVENTS: usize = 50;

pub(crate) async fn console(cp: &Inner, also_region: &str) -> Result<ConsoleState, ApiError> {
    let nodes = views(cp).await?;
    let groups = cp.store.all_replication_groups().await?;
    let mut regions: Vec<String> = vec![also_region.to_string()];
    regions.extend(nodes.iter().map(|n| n.info.region.clone()));
    regions.extend(groups.iter().map(|g| g.region.clone()));
    regions.sort();
    regions.dedup();
    let now = crate::now_ms();
    let mut events = Vec::new();
    for r in &regions {
        for e in cp.store.events(r, now - 14 * 24 * 3600 * 1000, now).await? {
            events.push(EventView {
                region: r.clone(),
                source_identifier: e.source_identifier,
                source_type: e.source_type,
                message: e.message,
                date: crate::timestamp(e.date_ms),
                date_ms: e.date_ms,
            });
        }
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.date_ms));
    events.truncate(CONSOLE_EVENTS);
    let replication_groups = groups
        .into_iter()
        .map(|g| GroupView {
            shards: vec![ShardView {
                // Cluster mode disabled: one node group, as AWS numbers it.
                node_group_id: "0001".into(),
                members: g.spec.members.clone(),
            }],
            region: g.region,
            replication_group_id: g.id,
            status: g.status,
            description: g.spec.description,
            automatic_failover: g.spec.automatic_failover,
            primary_cluster_id: g.spec.primary,
        })
        .collect();
    Ok(ConsoleState {
        now_ms: now,
        nodes,
        replication_groups,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_sample(at: Instant, offset: u64) -> Sample {
        Sample {
            at,
            unix_ms: 0,
            cpu_ticks: None,
            stats: EngineStats::Redis(redis_engine::NodeStats {
                repl_offset: offset,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn lag_is_zero_when_caught_up_and_counts_from_when_the_primary_moved_ahead() {
        let now = Instant::now();
        let h = vec![
            redis_sample(now - Duration::from_secs(5), 100),
            redis_sample(now - Duration::from_secs(3), 200),
            redis_sample(now - Duration::from_secs(1), 300),
        ];
        assert_eq!(replication_lag(300, 300, &h), 0.0);
        let lag = replication_lag(150, 300, &h);
        assert!((2.9..4.0).contains(&lag), "{lag}");
        // Behind everything in the history: at least its whole span.
        assert!(replication_lag(50, 300, &h) >= 4.9);
    }

    #[test]
    fn text_format_escapes_labels_and_names_counters_by_their_samples() {
        let view = NodeView {
            info: NodeInfo {
                region: "us-east-1".into(),
                cache_cluster_id: "a\"b".into(),
                cache_node_id: "0001".into(),
                engine: "redis".into(),
                address: "127.0.0.1".into(),
                port: 6379,
                status: "available".into(),
                running: true,
                fault: None,
                replication_group_id: None,
                role: None,
            },
            engine_role: Some("primary".into()),
            node_type: "cache.t3.micro".into(),
            cluster_status: "available".into(),
            used_memory: 0,
            max_memory: 0,
            items: 0,
            connections: 0,
            ops_per_sec: 0.0,
            engine_cpu_percent: 0.0,
            series: vec![],
            values: Values(vec![("CacheHits", 7.0), ("CacheHitRate", 12.5)]),
        };
        let text = render(&[view]);
        assert!(text.contains("# TYPE elasticache_CacheHits_total counter\n"));
        assert!(text.contains("elasticache_CacheHits_total{region=\"us-east-1\",cache_cluster_id=\"a\\\"b\",cache_node_id=\"0001\",replication_group_id=\"\",role=\"primary\",engine=\"redis\"} 7\n"));
        assert!(text.contains("# TYPE elasticache_cluster_CacheHitRate gauge\n"));
        assert!(text.contains("} 12.500\n"));
        assert!(!text.contains("CurrItems"));
    }
}
