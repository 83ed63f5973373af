//! Log delivery configurations (slow-log, engine-log): recorded and reported as
//! ElastiCache reports them. `Enabled=false` in a modify removes that log type.

use crate::error::ApiError;
use aws_query::{Params, XmlWriter};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDelivery {
    pub log_type: String,
    pub destination_type: String,
    /// CloudWatch log group or Firehose delivery stream.
    pub destination: String,
    pub log_format: String,
}

/// Apply `LogDeliveryConfigurations.LogDeliveryConfigurationRequest.N` to `current`.
pub fn apply(current: &mut Vec<LogDelivery>, p: &Params) -> Result<(), ApiError> {
    let Some(requests) = p.struct_list(
        "LogDeliveryConfigurations",
        "LogDeliveryConfigurationRequest",
    )?
    else {
        return Ok(());
    };
    for r in requests {
        let log_type = r.required("LogType")?.to_string();
        if log_type != "slow-log" && log_type != "engine-log" {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid LogType {log_type}: use slow-log or engine-log."
            )));
        }
        current.retain(|c| c.log_type != log_type);
        if r.bool("Enabled")? == Some(false) {
            continue;
        }
        let destination_type = r.required("DestinationType")?.to_string();
        let details = r.nested("DestinationDetails");
        let destination = match destination_type.as_str() {
            "cloudwatch-logs" => details
                .nested("CloudWatchLogsDetails")
                .required("LogGroup")?
                .to_string(),
            "kinesis-firehose" => details
                .nested("KinesisFirehoseDetails")
                .required("DeliveryStream")?
                .to_string(),
            other => {
                return Err(ApiError::InvalidParameterValue(format!(
                    "Invalid DestinationType {other}: use cloudwatch-logs or kinesis-firehose."
                )))
            }
        };
        let log_format = r.str("LogFormat").unwrap_or("text").to_string();
        if log_format != "text" && log_format != "json" {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid LogFormat {log_format}: use text or json."
            )));
        }
        current.push(LogDelivery {
            log_type,
            destination_type,
            destination,
            log_format,
        });
    }
    current.sort_by(|a, b| a.log_type.cmp(&b.log_type));
    Ok(())
}

pub fn write(w: &mut XmlWriter, items: &[LogDelivery]) {
    w.list(
        "LogDeliveryConfigurations",
        "LogDeliveryConfiguration",
        items,
        |w, l| {
            w.text("LogType", &l.log_type)
                .text("DestinationType", &l.destination_type)
                .element("DestinationDetails", |w| {
                    if l.destination_type == "cloudwatch-logs" {
                        w.element("CloudWatchLogsDetails", |w| {
                            w.text("LogGroup", &l.destination);
                        });
                    } else {
                        w.element("KinesisFirehoseDetails", |w| {
                            w.text("DeliveryStream", &l.destination);
                        });
                    }
                })
                .text("LogFormat", &l.log_format)
                .text("Status", "active");
        },
    );
}

// ---------------------------------------------------------------------------
// Delivery: every enabled configuration of a Redis/Valkey node appends lines to
// `<data-dir>/logs/<destination>/<cache-cluster-id>/<cache-node-id>/<log-type>.log`
// (the destination is the CloudWatch log group or Firehose delivery stream; the
// rest mirrors the log stream AWS creates per node and log type).

use crate::nodes::NodeKey;
use redis_engine::monitor::{LogEvent, LogSink};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, OnceLock, RwLock};

/// Where one node's lines of one log type go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub log_type: String,
    pub json: bool,
    pub path: PathBuf,
}

/// One node's log delivery (shared with its engine's sink).
#[derive(Debug)]
pub struct NodeLogs {
    cluster_id: String,
    node_id: String,
    dests: RwLock<Vec<Destination>>,
}

impl NodeLogs {
    fn set(&self, dests: Vec<Destination>) {
        *self.dests.write().unwrap_or_else(|p| p.into_inner()) = dests;
    }
}

enum Msg {
    Event(Arc<NodeLogs>, LogEvent),
    /// New destinations, applied in order with the events: lines produced before a
    /// change keep the old ones (an empty list: the node's delivery is over).
    Set(Arc<NodeLogs>, Vec<Destination>),
    /// Answered once every message sent before it is written.
    Sync(mpsc::Sender<()>),
}

/// The log files of every node, and the thread that writes them (so the node
/// threads never wait on disk).
#[derive(Default)]
pub struct Deliveries {
    root: OnceLock<PathBuf>,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    nodes: Mutex<HashMap<NodeKey, Arc<NodeLogs>>>,
}

/// A destination name as a relative path: its `/`-separated parts, each reduced
/// to characters safe in a file name (a log group like `/aws/elasticache/x`
/// becomes `aws/elasticache/x`; `..` cannot climb out).
fn destination_dir(name: &str) -> PathBuf {
    let mut p = PathBuf::new();
    for part in name.split('/') {
        let clean: String = part
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-#".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if clean.is_empty() || clean.chars().all(|c| c == '.') {
            continue;
        }
        p.push(clean);
    }
    if p.as_os_str().is_empty() {
        p.push("_");
    }
    p
}

/// The file a node's configuration writes to.
pub fn log_path(root: &Path, cfg: &LogDelivery, cluster_id: &str, node_id: &str) -> PathBuf {
    root.join(destination_dir(&cfg.destination))
        .join(destination_dir(cluster_id))
        .join(node_id)
        .join(format!("{}.log", cfg.log_type))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Deliveries {
    /// Set the root directory (once, at start-up).
    pub fn set_root(&self, root: PathBuf) {
        let _ = self.root.set(root);
    }

    fn sender(&self) -> Option<mpsc::Sender<Msg>> {
        let mut tx = lock(&self.tx);
        if tx.is_none() {
            let (s, r) = mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("log-delivery".into())
                .spawn(move || writer(r));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "log delivery: cannot start the writer thread");
                return None;
            }
            *tx = Some(s);
        }
        tx.clone()
    }

    /// Point a node's delivery at `configs` (empty: none). Returns the sink the
    /// engine must be given when it has none yet (Some(None): take it away).
    pub fn configure(
        &self,
        key: &NodeKey,
        cluster_id: &str,
        configs: &[LogDelivery],
    ) -> Option<Option<LogSink>> {
        let root = self.root.get()?;
        let node_id = format!("{:04}", key.node);
        let dests: Vec<Destination> = configs
            .iter()
            .map(|c| Destination {
                log_type: c.log_type.clone(),
                json: c.log_format == "json",
                path: log_path(root, c, cluster_id, &node_id),
            })
            .collect();
        let mut nodes = lock(&self.nodes);
        if dests.is_empty() {
            let gone = nodes.remove(key)?;
            drop(nodes);
            self.update(gone, Vec::new());
            return Some(None);
        }
        for d in &dests {
            tracing::info!(cluster = cluster_id, node = %node_id, log_type = %d.log_type, path = %d.path.display(), "log delivery");
        }
        if let Some(n) = nodes.get(key) {
            if n.cluster_id == cluster_id {
                let n = n.clone();
                drop(nodes);
                self.update(n, dests);
                return None;
            }
        }
        let logs = Arc::new(NodeLogs {
            cluster_id: cluster_id.to_string(),
            node_id,
            dests: RwLock::new(dests),
        });
        nodes.insert(key.clone(), logs.clone());
        drop(nodes);
        let tx = self.sender()?;
        let tx = Mutex::new(tx);
        Some(Some(LogSink(Arc::new(move |ev| {
            let _ = lock(&tx).send(Msg::Event(logs.clone(), ev));
        }))))
    }

    /// An engine-log line the control plane writes itself (node start and stop).
    pub fn emit(&self, key: &NodeKey, level: char, role: char, message: &str) {
        let Some(n) = lock(&self.nodes).get(key).cloned() else {
            return;
        };
        if let Some(tx) = self.sender() {
            let _ = tx.send(Msg::Event(
                n,
                LogEvent::Engine {
                    level,
                    role,
                    time_ms: crate::now_ms() as u64,
                    message: message.to_string(),
                },
            ));
        }
    }

    /// The node is gone: nothing more is written for it.
    pub fn forget(&self, key: &NodeKey) {
        let gone = lock(&self.nodes).remove(key);
        if let Some(n) = gone {
            self.update(n, Vec::new());
        }
    }

    fn update(&self, n: Arc<NodeLogs>, dests: Vec<Destination>) {
        match self.sender() {
            Some(tx) => {
                if let Err(mpsc::SendError(Msg::Set(n, d))) = tx.send(Msg::Set(n, dests)) {
                    n.set(d);
                }
            }
            None => n.set(dests),
        }
    }

    /// Wait (at most 2 s) until every line sent so far is on disk.
    pub fn sync(&self) {
        if lock(&self.tx).is_none() {
            return;
        }
        if let Some(tx) = self.sender() {
            let (s, r) = mpsc::channel();
            if tx.send(Msg::Sync(s)).is_ok() {
                let _ = r.recv_timeout(std::time::Duration::from_secs(2));
            }
        }
    }

    /// Every destination file, for the admin API.
    pub fn files(&self) -> Vec<(NodeKey, Destination)> {
        let nodes = lock(&self.nodes);
        let mut out = Vec::new();
        for (k, n) in nodes.iter() {
            for d in n.dests.read().unwrap_or_else(|p| p.into_inner()).iter() {
                out.push((k.clone(), d.clone()));
            }
        }
        out.sort_by(|a, b| a.1.path.cmp(&b.1.path));
        out
    }
}

fn writer(rx: mpsc::Receiver<Msg>) {
    let mut warned = false;
    while let Ok(first) = rx.recv() {
        let mut batch: HashMap<PathBuf, String> = HashMap::new();
        let mut syncs = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next {
            match m {
                Msg::Event(node, ev) => {
                    let log_type = match ev {
                        LogEvent::Slow { .. } => "slow-log",
                        LogEvent::Engine { .. } => "engine-log",
                    };
                    let dests = node.dests.read().unwrap_or_else(|p| p.into_inner());
                    for d in dests.iter().filter(|d| d.log_type == log_type) {
                        let line = format_event(&node.cluster_id, &node.node_id, &ev, d.json);
                        let buf = batch.entry(d.path.clone()).or_default();
                        buf.push_str(&line);
                        buf.push('\n');
                    }
                }
                Msg::Set(node, dests) => node.set(dests),
                Msg::Sync(s) => syncs.push(s),
            }
            next = rx.try_recv().ok();
        }
        for (path, text) in batch {
            if let Err(e) = append(&path, text.as_bytes()) {
                if !warned {
                    tracing::warn!(path = %path.display(), error = %e, "log delivery: cannot write");
                    warned = true;
                }
            }
        }
        for s in syncs {
            let _ = s.send(());
        }
    }
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// "GET ... (1 more arguments)": ElastiCache logs the command, never its keys and values.
fn command_text(command: &str, more_args: usize) -> String {
    if more_args == 0 {
        command.to_string()
    } else {
        format!("{command} ... ({more_args} more arguments)")
    }
}

/// "27 Nov 2026 01:20:04.123", the time format of Redis's log lines.
fn redis_time(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[day] [month repr:short] [year] [hour]:[minute]:[second].[subsecond digits:3]"
    );
    t.format(&f).unwrap_or_default()
}

fn level_name(c: char) -> &'static str {
    match c {
        '.' => "DEBUG",
        '-' => "VERBOSE",
        '#' => "WARNING",
        _ => "NOTICE",
    }
}

/// One line of a log file, in ElastiCache's JSON or TEXT format.
///
/// Slow log: JSON has the fields of AWS's example (`CacheClusterId`, `CacheNodeId`,
/// `Id`, `Timestamp`, `Duration (us)`, `Command`, `ClientAddress`, `ClientName`);
/// TEXT is AWS's comma-separated form `cluster,node,timestamp,duration,command,address,name`.
/// Engine log: JSON has `CacheClusterId`, `CacheNodeId`, `LogLevel`, `Time`, `Role`,
/// `Message`; TEXT is a redis-server log line `pid:role time level message`.
pub fn format_event(cluster_id: &str, node_id: &str, ev: &LogEvent, json: bool) -> String {
    match ev {
        LogEvent::Slow {
            id,
            timestamp,
            duration_us,
            command,
            more_args,
            client_addr,
            client_name,
        } => {
            let cmd = command_text(command, *more_args);
            if json {
                format!(
                    "{{\"CacheClusterId\":{},\"CacheNodeId\":{},\"Id\":{id},\"Timestamp\":{timestamp},\"Duration (us)\":{duration_us},\"Command\":{},\"ClientAddress\":{},\"ClientName\":{}}}",
                    json_str(cluster_id),
                    json_str(node_id),
                    json_str(&cmd),
                    json_str(client_addr),
                    json_str(client_name)
                )
            } else {
                format!("{cluster_id},{node_id},{timestamp},{duration_us},{cmd},{client_addr},{client_name}")
            }
        }
        LogEvent::Engine {
            level,
            role,
            time_ms,
            message,
        } => {
            if json {
                format!(
                    "{{\"CacheClusterId\":{},\"CacheNodeId\":{},\"LogLevel\":{},\"Time\":{},\"Role\":{},\"Message\":{}}}",
                    json_str(cluster_id),
                    json_str(node_id),
                    json_str(level_name(*level)),
                    json_str(&format!("{} UTC", redis_time(*time_ms))),
                    json_str(&role.to_string()),
                    json_str(message)
                )
            } else {
                format!(
                    "{}:{role} {} {level} {message}",
                    std::process::id(),
                    redis_time(*time_ms)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow() -> LogEvent {
        LogEvent::Slow {
            id: 296,
            timestamp: 1605631822,
            duration_us: 30,
            command: "GET".into(),
            more_args: 1,
            client_addr: "192.168.12.104:55452".into(),
            client_name: "app\"1".into(),
        }
    }

    #[test]
    fn slow_log_json_has_aws_fields() {
        let l = format_event("logslow", "0001", &slow(), true);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["CacheClusterId"], "logslow");
        assert_eq!(v["CacheNodeId"], "0001");
        assert_eq!(v["Id"], 296);
        assert_eq!(v["Timestamp"], 1605631822);
        assert_eq!(v["Duration (us)"], 30);
        assert_eq!(v["Command"], "GET ... (1 more arguments)");
        assert_eq!(v["ClientAddress"], "192.168.12.104:55452");
        assert_eq!(v["ClientName"], "app\"1");
        assert!(
            l.starts_with("{\"CacheClusterId\""),
            "field order as AWS: {l}"
        );
    }

    #[test]
    fn slow_log_text_is_aws_comma_form() {
        let l = format_event("logslow", "0001", &slow(), false);
        assert_eq!(
            l,
            "logslow,0001,1605631822,30,GET ... (1 more arguments),192.168.12.104:55452,app\"1"
        );
        let ping = LogEvent::Slow {
            id: 1,
            timestamp: 5,
            duration_us: 2,
            command: "PING".into(),
            more_args: 0,
            client_addr: "a:1".into(),
            client_name: String::new(),
        };
        assert_eq!(
            format_event("c", "0002", &ping, false),
            "c,0002,5,2,PING,a:1,"
        );
    }

    #[test]
    fn engine_log_formats() {
        let ev = LogEvent::Engine {
            level: '*',
            role: 'S',
            time_ms: 1_700_000_000_123,
            message: "MASTER <-> REPLICA sync started".into(),
        };
        let j: serde_json::Value =
            serde_json::from_str(&format_event("c1", "0001", &ev, true)).unwrap();
        assert_eq!(j["LogLevel"], "NOTICE");
        assert_eq!(j["Time"], "14 Nov 2023 22:13:20.123 UTC");
        assert_eq!(j["Role"], "S");
        assert_eq!(j["Message"], "MASTER <-> REPLICA sync started");
        assert_eq!(j["CacheClusterId"], "c1");
        let t = format_event("c1", "0001", &ev, false);
        assert!(
            t.ends_with(":S 14 Nov 2023 22:13:20.123 * MASTER <-> REPLICA sync started"),
            "{t}"
        );
    }

    #[test]
    fn destination_names_stay_under_the_root() {
        assert_eq!(
            destination_dir("/aws/elasticache/my-group"),
            PathBuf::from("aws/elasticache/my-group")
        );
        assert_eq!(destination_dir("../../etc"), PathBuf::from("etc"));
        assert_eq!(destination_dir("a b"), PathBuf::from("a_b"));
        assert_eq!(destination_dir("/"), PathBuf::from("_"));
    }

    #[test]
    fn writer_appends_and_stops_when_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let d = Deliveries::default();
        d.set_root(dir.path().to_path_buf());
        let key = NodeKey {
            region: "us-east-1".into(),
            cluster: "c1".into(),
            node: 1,
        };
        let cfg = LogDelivery {
            log_type: "slow-log".into(),
            destination_type: "cloudwatch-logs".into(),
            destination: "grp".into(),
            log_format: "json".into(),
        };
        let sink = d
            .configure(&key, "c1", std::slice::from_ref(&cfg))
            .unwrap()
            .unwrap();
        (sink.0)(slow());
        d.sync();
        let path = dir.path().join("grp/c1/0001/slow-log.log");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        // Disabled: the engine loses its sink; anything still sent is dropped.
        assert!(matches!(d.configure(&key, "c1", &[]), Some(None)));
        (sink.0)(slow());
        d.sync();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
