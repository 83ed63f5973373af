//! The live engine behind every cache node: where it listens, and starting and
//! stopping it.
//!
//! Endpoints are stable and honour the requested port: by default every node gets
//! its own loopback address (Linux routes all of 127.0.0.0/8 to the machine), so
//! any number of nodes can all listen on 6379. Where that does not fit (macOS,
//! containers) nodes share one host address and get a port each.

use crate::catalog::{self, Engine};
use crate::error::ApiError;
use crate::model::ClusterSpec;
use crate::proxy::{Kind, Proxy, Targets};
use node_tls::{Authority, Mode, TlsFront};
use redis_engine::sources::{Cidr, SourceFilter};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How node endpoints are chosen.
#[derive(Debug, Clone)]
pub enum Addressing {
    /// One loopback address per node, counting up from `first`; the requested port.
    Loopback { first: Ipv4Addr },
    /// One bind address for all nodes, a distinct port each: the requested port
    /// when free, else the next free one from `first_port`.
    Ports { bind: IpAddr, first_port: u16 },
}

#[derive(Debug, Clone)]
pub struct NodeNetwork {
    pub addressing: Addressing,
    /// Reported in endpoints instead of the bind address (a host name other
    /// containers resolve, say).
    pub advertise_host: Option<String>,
}

impl Default for NodeNetwork {
    fn default() -> Self {
        NodeNetwork {
            addressing: Addressing::Loopback {
                first: Ipv4Addr::new(127, 10, 0, 1),
            },
            advertise_host: None,
        }
    }
}

/// Identifies one node across regions and clusters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeKey {
    pub region: String,
    pub cluster: String,
    pub node: u16,
}

enum Running {
    Redis(redis_engine::NodeHandle),
    Memcached(memcached_engine::NodeHandle),
}

/// What a node's engine last published about itself (metrics, the console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineStats {
    Redis(redis_engine::NodeStats),
    Memcached(memcached_engine::NodeStats),
}

impl Running {
    fn stats(&self) -> EngineStats {
        match self {
            Running::Redis(h) => EngineStats::Redis(h.stats()),
            Running::Memcached(h) => EngineStats::Memcached(h.stats()),
        }
    }
}

/// A running node and, with in-transit encryption, the TLS front on its endpoint.
struct Node {
    engine: Running,
    tls: Option<TlsFront>,
}

impl Node {
    fn shutdown(&self) {
        if let Some(f) = &self.tls {
            f.stop();
        }
        match &self.engine {
            Running::Redis(h) => h.shutdown(),
            Running::Memcached(h) => h.shutdown(),
        }
    }
}

/// Owns every running node and every listener reserved for a node still being
/// created.
pub struct Supervisor {
    network: NodeNetwork,
    allow_restricted_commands: bool,
    running: Mutex<HashMap<NodeKey, Node>>,
    authority: Option<Authority>,
    reserved: Mutex<HashMap<NodeKey, TcpListener>>,
    proxies: Mutex<HashMap<NodeKey, Proxy>>,
    /// Faults injected into running nodes ("paused", "isolated"), for the node list.
    faults: Mutex<HashMap<NodeKey, (&'static str, Option<std::time::Instant>)>>,
    /// The keys IAM auth tokens must be signed with.
    iam_credentials: Arc<IamCredentials>,
    /// Security groups: ingress CIDRs by group id (set through the admin API).
    sg_rules: Mutex<HashMap<String, Vec<Cidr>>>,
    /// Each endpoint's security groups and the filter its listener checks.
    filters: Mutex<HashMap<NodeKey, EndpointFilter>>,
    /// Log delivery files of Redis nodes.
    logs: crate::log_delivery::Deliveries,
    /// Serverless caches' ECPU/second buckets, by node.
    ecpu: Mutex<HashMap<NodeKey, Arc<redis_engine::monitor::EcpuLimit>>>,
}

/// An endpoint's security group ids and the filter its listener checks.
type EndpointFilter = (Vec<String>, Arc<SourceFilter>);

/// What a security group without configured rules admits: the local machine.
fn local_machine() -> Vec<Cidr> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|c| Cidr::parse(c))
        .collect()
}

/// The access keys an IAM auth token may be signed with: `--credentials` in
/// strict mode; otherwise those, and any other access key id with the secret
/// `test` (what local tooling configures by convention).
#[derive(Debug, Clone, Default)]
pub struct IamCredentials {
    pub keys: HashMap<String, String>,
    pub strict: bool,
}

impl sigv4::CredentialStore for IamCredentials {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        match self.keys.get(access_key_id) {
            Some(s) => Some(s.clone()),
            None if !self.strict => Some("test".to_string()),
            None => None,
        }
    }
}

/// Why a fault cannot be injected.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("the node is not running")]
    NotRunning,
    #[error("pause and isolate are available for Redis nodes only")]
    NotRedis,
}

/// The ECPU bucket as a memcached node's throttle (same accounting as Redis nodes).
struct MemcachedEcpu(Arc<redis_engine::monitor::EcpuLimit>);

impl memcached_engine::Throttle for MemcachedEcpu {
    fn wait_time(&self, now: std::time::Instant) -> Option<Duration> {
        self.0.wait_time(now)
    }
    fn charge(&self, bytes: usize, held: bool) {
        self.0.charge(bytes, held)
    }
}

/// What a Redis node does in its replication group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    ReplicaOf(SocketAddr),
}

impl Supervisor {
    pub fn new(
        network: NodeNetwork,
        allow_restricted_commands: bool,
        authority: Option<Authority>,
        iam_credentials: IamCredentials,
    ) -> Supervisor {
        Supervisor {
            iam_credentials: Arc::new(iam_credentials),
            sg_rules: Mutex::new(HashMap::new()),
            filters: Mutex::new(HashMap::new()),
            authority,
            network,
            allow_restricted_commands,
            running: Mutex::new(HashMap::new()),
            reserved: Mutex::new(HashMap::new()),
            proxies: Mutex::new(HashMap::new()),
            faults: Mutex::new(HashMap::new()),
            logs: Default::default(),
            ecpu: Mutex::new(HashMap::new()),
        }
    }

    /// Where log delivery writes (`<data-dir>/logs`).
    pub fn set_log_dir(&self, dir: std::path::PathBuf) {
        self.logs.set_root(dir);
    }

    /// Make a running Redis node's log delivery follow `configs` (empty: stop).
    pub fn set_log_delivery(
        &self,
        key: &NodeKey,
        cluster_id: &str,
        configs: &[crate::log_delivery::LogDelivery],
    ) {
        let running = lock(&self.running);
        let Some(Node {
            engine: Running::Redis(h),
            ..
        }) = running.get(key)
        else {
            return;
        };
        if let Some(sink) = self.logs.configure(key, cluster_id, configs) {
            h.control(redis_engine::Control::SetLogSink(sink));
        }
    }

    /// Every log delivery file of a running node (admin API).
    pub fn log_files(&self) -> Vec<(NodeKey, crate::log_delivery::Destination)> {
        self.logs.files()
    }

    /// Wait until every log line produced so far is written (tests, admin API).
    pub fn sync_logs(&self) {
        self.logs.sync();
    }

    /// Set, change or remove the ECPU/second maximum of a serverless cache's node:
    /// a live change of the rate keeps the bucket (and its counters).
    pub fn set_ecpu_limit(&self, key: &NodeKey, per_second: Option<u64>) {
        let running = lock(&self.running);
        let Some(node) = running.get(key) else {
            return;
        };
        let mut buckets = lock(&self.ecpu);
        let give = |b: Option<Arc<redis_engine::monitor::EcpuLimit>>| match &node.engine {
            Running::Redis(h) => h.control(redis_engine::Control::SetEcpuLimit(b)),
            Running::Memcached(h) => h.set_throttle(
                b.map(|b| Arc::new(MemcachedEcpu(b)) as Arc<dyn memcached_engine::Throttle>),
            ),
        };
        match per_second {
            Some(rate) => {
                if let Some(b) = buckets.get(key) {
                    b.set_rate(rate);
                } else {
                    let b = Arc::new(redis_engine::monitor::EcpuLimit::new(rate));
                    buckets.insert(key.clone(), b.clone());
                    give(Some(b));
                }
            }
            None => {
                if buckets.remove(key).is_some() {
                    give(None);
                }
            }
        }
    }

    /// (node, ECPU/s maximum, ThrottledCmds, ECPUs consumed) of every node with an
    /// ECPU/second maximum.
    pub fn ecpu_counters(&self) -> Vec<(NodeKey, u64, u64, f64)> {
        let mut v: Vec<_> = lock(&self.ecpu)
            .iter()
            .map(|(k, b)| {
                (
                    k.clone(),
                    b.rate(),
                    b.throttled.load(std::sync::atomic::Ordering::Relaxed),
                    b.consumed_milli.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0,
                )
            })
            .collect();
        v.sort_by(|a, b| (&a.0.region, &a.0.cluster).cmp(&(&b.0.region, &b.0.cluster)));
        v
    }

    fn redis<T>(
        &self,
        key: &NodeKey,
        f: impl FnOnce(&redis_engine::NodeHandle) -> T,
    ) -> Result<T, FaultError> {
        match lock(&self.running).get(key) {
            Some(Node {
                engine: Running::Redis(h),
                ..
            }) => Ok(f(h)),
            Some(_) => Err(FaultError::NotRedis),
            None => Err(FaultError::NotRunning),
        }
    }

    /// Fault injection: freeze a Redis node (for `d`, or until `resume`).
    pub fn pause(&self, key: &NodeKey, d: Option<Duration>) -> Result<(), FaultError> {
        self.redis(key, |h| h.pause(d))?;
        let until = d.map(|d| std::time::Instant::now() + d);
        lock(&self.faults).insert(key.clone(), ("paused", until));
        Ok(())
    }

    /// Before a failover: the primary stops taking writes (held, not refused) and the
    /// replica is told how far it must get; see [`Supervisor::drain_to`].
    pub fn hold_writes(&self, key: &NodeKey) -> Option<u64> {
        // A frozen node cannot answer (and takes no writes anyway): do not wait on it.
        if self.fault(key) == Some("paused") {
            return None;
        }
        self.redis(key, |h| h.hold_writes()).ok().flatten()
    }

    /// Wait (at most 2 s) until `replica` has applied the stream up to `offset`.
    pub async fn drain_to(&self, replica: &NodeKey, offset: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while self.replication_offset(replica) < offset && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn resume(&self, key: &NodeKey) -> Result<(), FaultError> {
        self.redis(key, |h| h.resume())?;
        lock(&self.faults).remove(key);
        Ok(())
    }

    /// Fault injection: partition a Redis node off the network (`on`) or heal it.
    pub fn isolate(&self, key: &NodeKey, on: bool) -> Result<(), FaultError> {
        self.redis(key, |h| h.isolate(on))?;
        if on {
            lock(&self.faults).insert(key.clone(), ("isolated", None));
        } else {
            lock(&self.faults).remove(key);
        }
        Ok(())
    }

    /// The fault injected into a node, if any (a timed pause ends by itself).
    pub fn fault(&self, key: &NodeKey) -> Option<&'static str> {
        let mut faults = lock(&self.faults);
        match faults.get(key).copied() {
            Some((_, Some(until))) if until <= std::time::Instant::now() => {
                faults.remove(key);
                None
            }
            other => other.map(|(f, _)| f),
        }
    }

    /// The address clients are told for a node listening on `bind_ip`.
    pub fn advertised(&self, bind_ip: &str) -> String {
        self.network
            .advertise_host
            .clone()
            .unwrap_or_else(|| bind_ip.to_string())
    }

    /// Pick endpoints for new nodes, bind them now (so a failure is reported to the
    /// API caller, not discovered later) and hold the listeners until `start`.
    pub fn reserve(
        &self,
        keys: &[NodeKey],
        port: u16,
        used: &[(String, u16)],
    ) -> Result<Vec<(String, u16)>, ApiError> {
        let mut taken_ips: HashSet<String> = used.iter().map(|(ip, _)| ip.clone()).collect();
        let mut taken: HashSet<(String, u16)> = used.iter().cloned().collect();
        let mut out = Vec::with_capacity(keys.len());
        let mut bound = Vec::with_capacity(keys.len());
        for key in keys {
            let (ip, port, listener) = match &self.network.addressing {
                Addressing::Loopback { first } => self.bind_loopback(*first, port, &taken_ips)?,
                Addressing::Ports { bind, first_port } => {
                    self.bind_port(*bind, port, *first_port, &taken)?
                }
            };
            taken_ips.insert(ip.clone());
            taken.insert((ip.clone(), port));
            out.push((ip, port));
            bound.push((key.clone(), listener));
        }
        let mut reserved = lock(&self.reserved);
        for (k, l) in bound {
            reserved.insert(k, l);
        }
        Ok(out)
    }

    fn bind_loopback(
        &self,
        first: Ipv4Addr,
        port: u16,
        taken_ips: &HashSet<String>,
    ) -> Result<(String, u16, TcpListener), ApiError> {
        let base = u32::from(first);
        let mut last_err = None;
        for i in 0..65_000u32 {
            let ip = Ipv4Addr::from(base.wrapping_add(i));
            if ip.octets()[0] != 127 {
                break;
            }
            if ip.octets()[3] == 0 || ip.octets()[3] == 255 {
                continue;
            }
            let s = ip.to_string();
            if taken_ips.contains(&s) {
                continue;
            }
            match bind(SocketAddr::new(IpAddr::V4(ip), port)) {
                Ok(l) => return Ok((s, port, l)),
                // Someone outside elastilite holds it: try the next address.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_err = Some(e),
                Err(e) => return Err(bind_error(&s, port, &e)),
            }
        }
        Err(ApiError::InsufficientCacheClusterCapacity(format!(
            "No free loopback address for port {port}: {}",
            last_err
                .map(|e| e.to_string())
                .unwrap_or_else(|| "address range exhausted".into())
        )))
    }

    fn bind_port(
        &self,
        ip: IpAddr,
        requested: u16,
        first_port: u16,
        taken: &HashSet<(String, u16)>,
    ) -> Result<(String, u16, TcpListener), ApiError> {
        let s = ip.to_string();
        let candidates = std::iter::once(requested).chain(first_port..=u16::MAX);
        for port in candidates {
            if taken.contains(&(s.clone(), port)) {
                continue;
            }
            match bind(SocketAddr::new(ip, port)) {
                Ok(l) => return Ok((s, port, l)),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(bind_error(&s, port, &e)),
            }
        }
        Err(ApiError::InsufficientCacheClusterCapacity(format!(
            "No free port on {s}"
        )))
    }

    /// Start the engine for a node: on its reserved listener, or on a fresh bind
    /// of its recorded endpoint (after a restart or a reboot).
    pub async fn start(
        &self,
        key: &NodeKey,
        bind_ip: &str,
        port: u16,
        spec: &ClusterSpec,
        params: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let reserved = lock(&self.reserved).remove(key);
        let listener = match reserved {
            Some(l) => l,
            None => bind_with_retry(bind_ip, port).await?,
        };
        self.set_security_groups(key, &spec.security_group_ids);
        let filter = self.filter(key);
        let node = if spec.transit_encryption_enabled {
            // The engine listens privately; the reported endpoint speaks TLS.
            let private = bind(SocketAddr::new(
                listener.local_addr().map(|a| a.ip()).map_err(io_err)?,
                0,
            ))
            .map_err(io_err)?;
            let backend = private.local_addr().map_err(io_err)?;
            let engine = self
                .spawn_engine(private, spec, params, None)
                .map_err(io_err)?;
            let authority = self
                .authority
                .as_ref()
                .ok_or_else(|| ApiError::Internal("no certificate authority".into()))?;
            let names = vec![bind_ip.to_string(), self.advertised(bind_ip)];
            let config = authority
                .server_config(&names)
                .map_err(|e| ApiError::Internal(format!("node certificate: {e}")))?;
            listener.set_nonblocking(true).map_err(io_err)?;
            let mode = if spec.transit_encryption_mode.as_deref() == Some("preferred") {
                Mode::Preferred
            } else {
                Mode::Required
            };
            let front = TlsFront::spawn(listener, backend, config, mode).map_err(io_err)?;
            let f = filter.clone();
            front.set_filter(Some(Arc::new(move |peer| f.admits(peer))));
            Node {
                engine,
                tls: Some(front),
            }
        } else {
            Node {
                engine: self
                    .spawn_engine(listener, spec, params, Some(filter))
                    .map_err(io_err)?,
                tls: None,
            }
        };
        lock(&self.faults).remove(key);
        let old = lock(&self.running).insert(key.clone(), node);
        if let Some(old) = old {
            old.shutdown();
        }
        // A fresh engine: a bucket of a previous one is not its own.
        lock(&self.ecpu).remove(key);
        // A fresh engine has no sink yet: its delivery starts over.
        self.logs.forget(key);
        if !spec.log_delivery.is_empty() && spec.engine.is_redis_like() {
            self.set_log_delivery(key, &key.cluster, &spec.log_delivery);
            let name = match spec.engine {
                Engine::Valkey => "Valkey",
                _ => "Redis",
            };
            let v = format!(
                "{name} version={}, bits=64, port={port}, just started",
                spec.engine_version
            );
            self.logs.emit(key, '#', 'M', &v);
            self.logs.emit(key, '*', 'M', "Server initialized");
            self.logs.emit(key, '*', 'M', "Ready to accept connections");
        }
        tracing::info!(region = %key.region, cluster = %key.cluster, node = key.node, endpoint = %format!("{bind_ip}:{port}"), engine = spec.engine.as_str(), "node started");
        Ok(())
    }

    fn spawn_engine(
        &self,
        listener: TcpListener,
        spec: &ClusterSpec,
        params: &BTreeMap<String, String>,
        filter: Option<Arc<SourceFilter>>,
    ) -> std::io::Result<Running> {
        listener.set_nonblocking(true)?;
        let memory = node_memory(spec);
        Ok(match spec.engine {
            Engine::Redis | Engine::Valkey => {
                let config = redis_engine::Config {
                    maxmemory: redis_maxmemory(memory, params),
                    maxmemory_policy: params
                        .get("maxmemory-policy")
                        .cloned()
                        .unwrap_or_else(|| "volatile-lru".to_string()),
                    version: spec.engine_version.clone(),
                    flavor: spec.engine.as_str().to_string(),
                    allow_restricted_commands: self.allow_restricted_commands,
                    password: spec.auth_token.clone(),
                    users: spec.acl.as_ref().map(engine_users),
                    iam_verifier: spec.acl.as_ref().map(|a| self.iam_verifier(&a.cache_name)),
                    source_filter: filter,
                };
                let handle = redis_engine::spawn(listener, config)?;
                for (name, value) in params {
                    // Values the engine does not model are ElastiCache's own
                    // bookkeeping (reserved-memory-percent, …); skip them.
                    let _ = handle.set_param(name, value);
                }
                Running::Redis(handle)
            }
            Engine::Memcached => {
                let defaults = memcached_engine::Config::default();
                let config = memcached_engine::Config {
                    admit: filter
                        .map(|f| Arc::new(move |peer| f.admits(peer)) as memcached_engine::AdmitFn),
                    memory_limit: memcached_memory(memory, params),
                    max_item_size: param_u64(params, "max_item_size")
                        .unwrap_or(defaults.max_item_size),
                    evict: !param_bool(params, "error_on_memory_exhausted").unwrap_or(false),
                    version: spec.engine_version.clone(),
                };
                Running::Memcached(memcached_engine::spawn(listener, config)?)
            }
        })
    }

    /// Stop a node (connections drop) and release anything reserved for it.
    pub fn stop(&self, key: &NodeKey) {
        lock(&self.reserved).remove(key);
        lock(&self.faults).remove(key);
        lock(&self.ecpu).remove(key);
        let role = match lock(&self.running).get(key) {
            Some(Node {
                engine: Running::Redis(h),
                ..
            }) if !h.stats().is_master => 'S',
            _ => 'M',
        };
        self.logs.emit(key, '#', role, "User requested shutdown...");
        self.logs
            .emit(key, '#', role, "Redis is now ready to exit, bye bye...");
        self.logs.forget(key);
        if let Some(r) = lock(&self.running).remove(key) {
            r.shutdown();
            tracing::info!(region = %key.region, cluster = %key.cluster, node = key.node, "node stopped");
        }
    }

    /// Apply parameter values to a running node at once (the `immediate` ones).
    pub fn set_params(&self, key: &NodeKey, spec: &ClusterSpec, params: &[(String, String)]) {
        let running = lock(&self.running);
        let Some(node) = running.get(key) else {
            return;
        };
        let map: BTreeMap<String, String> = params.iter().cloned().collect();
        match &node.engine {
            Running::Memcached(h) => {
                if let Some(v) = param_u64(&map, "max_item_size") {
                    h.set_max_item_size(v);
                }
                if let Some(v) = param_bool(&map, "error_on_memory_exhausted") {
                    h.set_evict(!v);
                }
            }
            Running::Redis(h) => {
                for (name, value) in params {
                    if name == "reserved-memory-percent" {
                        h.set_maxmemory(redis_maxmemory(node_memory(spec), &map));
                    } else if let Err(e) = h.set_param(name, value) {
                        tracing::warn!(param = %name, error = %e, "node refused a parameter value");
                    }
                }
            }
        }
    }

    pub fn is_running(&self, key: &NodeKey) -> bool {
        lock(&self.running).contains_key(key)
    }

    /// Tell every memcached node of a cluster the auto-discovery answer.
    pub fn publish_discovery(
        &self,
        keys: &[NodeKey],
        version: u64,
        nodes: Vec<memcached_engine::DiscoveryNode>,
    ) {
        let running = lock(&self.running);
        for k in keys {
            if let Some(Node {
                engine: Running::Memcached(h),
                ..
            }) = running.get(k)
            {
                h.set_cluster_config(version, nodes.clone());
            }
        }
    }

    /// Start (or retarget) a group endpoint: on its reserved listener, or a fresh
    /// bind of its recorded address.
    pub async fn start_proxy(
        &self,
        key: &NodeKey,
        bind_ip: &str,
        port: u16,
        kind: Kind,
        targets: Targets,
    ) -> Result<(), ApiError> {
        if let Some(p) = lock(&self.proxies).get(key) {
            p.set_targets(targets);
            return Ok(());
        }
        let reserved = lock(&self.reserved).remove(key);
        let listener = match reserved {
            Some(l) => l,
            None => bind_with_retry(bind_ip, port).await?,
        };
        let proxy = Proxy::spawn(listener, kind, targets, self.filter(key)).map_err(|e| {
            ApiError::InsufficientCacheClusterCapacity(format!(
                "Could not serve {bind_ip}:{port}: {e}"
            ))
        })?;
        lock(&self.proxies).insert(key.clone(), proxy);
        tracing::info!(region = %key.region, group = %key.cluster, endpoint = %format!("{bind_ip}:{port}"), kind = kind.as_str(), "group endpoint started");
        Ok(())
    }

    pub fn stop_proxy(&self, key: &NodeKey) {
        lock(&self.reserved).remove(key);
        if let Some(p) = lock(&self.proxies).remove(key) {
            p.stop();
        }
    }

    /// A node type change: the node's memory limit follows, its data stays.
    pub fn apply_node_type(
        &self,
        key: &NodeKey,
        spec: &ClusterSpec,
        params: &BTreeMap<String, String>,
    ) {
        let memory = node_memory(spec);
        match lock(&self.running).get(key).map(|n| &n.engine) {
            Some(Running::Redis(h)) => h.set_maxmemory(redis_maxmemory(memory, params)),
            Some(Running::Memcached(h)) => h.set_memory_limit(memcached_memory(memory, params)),
            None => {}
        }
    }

    /// Change the AUTH token of a running Redis node (None removes it).
    pub fn set_password(&self, key: &NodeKey, password: Option<String>) {
        if let Some(Node {
            engine: Running::Redis(h),
            ..
        }) = lock(&self.running).get(key)
        {
            h.control(redis_engine::Control::SetPassword(password));
        }
    }

    /// The rules an endpoint with these security groups enforces: none without
    /// groups (everything is admitted); else every group's ingress CIDRs, a group
    /// without configured rules admitting the local machine.
    fn rules_for(&self, groups: &[String]) -> Option<Vec<Cidr>> {
        if groups.is_empty() {
            return None;
        }
        let rules = lock(&self.sg_rules);
        let mut out = Vec::new();
        for g in groups {
            match rules.get(g) {
                Some(r) => out.extend(r.iter().copied()),
                None => out.extend(local_machine()),
            }
        }
        Some(out)
    }

    /// The filter of an endpoint (created on first use, shared with its listener).
    fn filter(&self, key: &NodeKey) -> Arc<SourceFilter> {
        lock(&self.filters)
            .entry(key.clone())
            .or_insert_with(|| (Vec::new(), Arc::new(SourceFilter::default())))
            .1
            .clone()
    }

    /// Set an endpoint's security groups; its listener applies them to new connections.
    pub fn set_security_groups(&self, key: &NodeKey, groups: &[String]) {
        let rules = self.rules_for(groups);
        let mut filters = lock(&self.filters);
        let entry = filters
            .entry(key.clone())
            .or_insert_with(|| (Vec::new(), Arc::new(SourceFilter::default())));
        entry.0 = groups.to_vec();
        entry.1.set(rules);
    }

    /// Replace a security group's ingress rules (None: back to the default).
    pub fn set_security_group_rules(&self, id: &str, rules: Option<Vec<Cidr>>) {
        match rules {
            Some(r) => lock(&self.sg_rules).insert(id.to_string(), r),
            None => lock(&self.sg_rules).remove(id),
        };
        let all: Vec<EndpointFilter> = lock(&self.filters).values().cloned().collect();
        for (groups, f) in all {
            if groups.iter().any(|g| g == id) {
                f.set(self.rules_for(&groups));
            }
        }
    }

    /// Replace a running Redis node's users (None: the AUTH token only). Users
    /// that disappear or are disabled lose their connections.
    pub fn set_users(&self, key: &NodeKey, acl: Option<&crate::model::NodeAcl>) {
        if let Some(Node {
            engine: Running::Redis(h),
            ..
        }) = lock(&self.running).get(key)
        {
            h.control(redis_engine::Control::SetUsers(
                acl.map(engine_users),
                acl.map(|a| self.iam_verifier(&a.cache_name)),
            ));
        }
    }

    /// Checks `AUTH <user> <token>` for IAM users: a SigV4-presigned
    /// `connect` request for this cache and user, at most 15 minutes old.
    fn iam_verifier(&self, cache_name: &str) -> redis_engine::acl::IamVerifier {
        let creds = self.iam_credentials.clone();
        let cache = cache_name.to_string();
        redis_engine::acl::IamVerifier(Arc::new(move |user: &str, token: &str| {
            match sigv4::verify_iam_auth_token(
                token,
                &cache,
                user,
                creds.as_ref(),
                std::time::SystemTime::now(),
            ) {
                Ok(_) => true,
                Err(e) => {
                    tracing::info!(cache = %cache, user, error = %e, "IAM auth token refused");
                    false
                }
            }
        }))
    }

    /// Give a TLS node a certificate for these names too (a group's members and
    /// endpoints share one certificate, as on AWS), for new connections.
    pub fn set_cert_names(&self, key: &NodeKey, names: &[String]) {
        let Some(authority) = &self.authority else {
            return;
        };
        let running = lock(&self.running);
        let Some(Node {
            tls: Some(front), ..
        }) = running.get(key)
        else {
            return;
        };
        let mut all: Vec<String> = names.to_vec();
        all.extend(names.iter().map(|n| self.advertised(n)));
        match authority.server_config(&all) {
            Ok(config) => front.set_config(config),
            Err(e) => tracing::warn!(error = %e, "could not issue a group certificate"),
        }
    }

    /// Switch a node's TLS front between `preferred` and `required`.
    pub fn set_transit_mode(&self, key: &NodeKey, preferred: bool) {
        if let Some(Node { tls: Some(f), .. }) = lock(&self.running).get(key) {
            f.set_mode(if preferred {
                Mode::Preferred
            } else {
                Mode::Required
            });
        }
    }

    /// Make a Redis node a primary (keeping its data) or a replica of another
    /// node (full sync, then the primary's write stream).
    pub fn set_role(&self, key: &NodeKey, role: Role) {
        let running = lock(&self.running);
        if let Some(Node {
            engine: Running::Redis(h),
            ..
        }) = running.get(key)
        {
            match role {
                Role::Primary => h.promote(),
                Role::ReplicaOf(primary) => h.replicate_from(primary),
            }
        }
    }

    /// Push the cluster topology (cluster mode) to a running Redis node.
    pub fn set_cluster_topology(&self, key: &NodeKey, topo: redis_engine::cluster::Topology) {
        if let Some(Node {
            engine: Running::Redis(h),
            ..
        }) = lock(&self.running).get(key)
        {
            h.control(redis_engine::Control::SetClusterTopology(Box::new(topo)));
        }
    }

    /// Connect the running Redis nodes of one cluster-mode group by the cluster bus:
    /// each gets the others, so a PUBLISH on any node reaches every node's subscribers.
    /// Called after every topology change and node (re)start; a stopped node's bus is
    /// dropped with it (its peers' sends to it then go nowhere).
    pub fn set_cluster_peers(&self, members: &[NodeKey]) {
        let running = lock(&self.running);
        let buses: Vec<(usize, redis_engine::Bus)> = members
            .iter()
            .enumerate()
            .filter_map(|(i, k)| match running.get(k) {
                Some(Node {
                    engine: Running::Redis(h),
                    ..
                }) => Some((i, h.bus())),
                _ => None,
            })
            .collect();
        for (i, k) in members.iter().enumerate() {
            if let Some(Node {
                engine: Running::Redis(h),
                ..
            }) = running.get(k)
            {
                let peers = buses
                    .iter()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, b)| b.clone())
                    .collect();
                h.control(redis_engine::Control::SetClusterPeers(peers));
            }
        }
    }

    /// Move one batch (at most `max_keys`) of the keys of `slots` from one running
    /// node to another; returns how many moved (0: none left).
    pub async fn migrate_slots(
        &self,
        from: &NodeKey,
        to: &NodeKey,
        slots: Vec<u16>,
        max_keys: usize,
    ) -> Result<usize, ApiError> {
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let running = lock(&self.running);
            let (
                Some(Node {
                    engine: Running::Redis(src),
                    ..
                }),
                Some(Node {
                    engine: Running::Redis(dst),
                    ..
                }),
            ) = (running.get(from), running.get(to))
            else {
                return Err(ApiError::InvalidReplicationGroupState(
                    "A node taking part in the slot migration is not running.".into(),
                ));
            };
            src.control(redis_engine::Control::MigrateSlots(
                redis_engine::cluster::Migration {
                    slots,
                    max_keys,
                    target: dst.import_target(),
                    reply: tx,
                },
            ));
        }
        let r = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .map_err(|e| ApiError::Internal(format!("slot migration task: {e}")))?;
        match r {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(ApiError::Internal(format!("slot migration: {e}"))),
            Err(_) => Err(ApiError::Internal(
                "slot migration: the source node did not answer".into(),
            )),
        }
    }

    /// Where a node's engine itself listens (behind its TLS front, if any): the
    /// address replicas and snapshots connect to.
    pub fn engine_addr(&self, key: &NodeKey) -> Option<SocketAddr> {
        match &lock(&self.running).get(key)?.engine {
            Running::Redis(h) => Some(h.local_addr()),
            Running::Memcached(h) => Some(h.local_addr()),
        }
    }

    /// How much of the replication stream a node has (for choosing the replica to
    /// promote); 0 for a node that is not running.
    pub fn replication_offset(&self, key: &NodeKey) -> u64 {
        match lock(&self.running).get(key) {
            Some(Node {
                engine: Running::Redis(h),
                ..
            }) => h.replication_offset(),
            _ => 0,
        }
    }

    /// Set a node's data memory limit directly (a serverless cache's data storage
    /// maximum), whatever its node type says.
    pub fn set_memory_limit(&self, key: &NodeKey, bytes: u64) {
        match lock(&self.running).get(key).map(|n| &n.engine) {
            Some(Running::Redis(h)) => h.set_maxmemory(bytes),
            Some(Running::Memcached(h)) => h.set_memory_limit(bytes),
            None => {}
        }
    }

    /// Reserve one more endpoint next to an existing one: the same address on
    /// `port` (loopback addressing), or the next free port on the bind address
    /// (ports addressing). A serverless cache's reader endpoint.
    pub fn reserve_beside(
        &self,
        key: &NodeKey,
        ip: &str,
        port: u16,
        used: &[(String, u16)],
    ) -> Result<(String, u16), ApiError> {
        let taken: HashSet<(String, u16)> = used.iter().cloned().collect();
        let (ip, port, listener) = match &self.network.addressing {
            Addressing::Loopback { .. } => {
                let addr: IpAddr = ip.parse().map_err(|_| {
                    ApiError::Internal(format!("stored address {ip} is not an IP address"))
                })?;
                if taken.contains(&(ip.to_string(), port)) {
                    return Err(ApiError::InsufficientCacheClusterCapacity(format!(
                        "{ip}:{port} is already in use"
                    )));
                }
                let l = bind(SocketAddr::new(addr, port)).map_err(|e| bind_error(ip, port, &e))?;
                (ip.to_string(), port, l)
            }
            Addressing::Ports { bind, first_port } => {
                self.bind_port(*bind, port, *first_port, &taken)?
            }
        };
        lock(&self.reserved).insert(key.clone(), listener);
        Ok((ip, port))
    }

    /// The statistics a running node last published.
    pub fn engine_stats(&self, key: &NodeKey) -> Option<EngineStats> {
        lock(&self.running).get(key).map(|n| n.engine.stats())
    }

    /// Every running node's statistics (one lock, no waiting on any node).
    pub fn all_engine_stats(&self) -> Vec<(NodeKey, EngineStats)> {
        lock(&self.running)
            .iter()
            .map(|(k, n)| (k.clone(), n.engine.stats()))
            .collect()
    }

    pub fn stop_all(&self) {
        lock(&self.proxies).clear();
        lock(&self.reserved).clear();
        let all: Vec<_> = lock(&self.running).drain().collect();
        if all.len() <= 1 {
            for (_, r) in &all {
                r.shutdown();
            }
            return;
        }
        // Each shutdown waits for its node's thread to close the listener: wait for
        // all of them at once, so a reset costs one node's stop, not the sum.
        std::thread::scope(|s| {
            for (_, r) in &all {
                s.spawn(move || r.shutdown());
            }
        });
    }
}

fn engine_users(a: &crate::model::NodeAcl) -> Vec<redis_engine::acl::UserSpec> {
    a.users
        .iter()
        .map(|u| redis_engine::acl::UserSpec {
            name: u.name.clone(),
            rules: u.rules.clone(),
            iam: u.iam,
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn io_err(e: std::io::Error) -> ApiError {
    ApiError::InsufficientCacheClusterCapacity(format!("Could not start node: {e}"))
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = match addr {
        SocketAddr::V4(_) => socket2::Domain::IPV4,
        SocketAddr::V6(_) => socket2::Domain::IPV6,
    };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    // A rebooted node must get its endpoint back while old connections linger in
    // TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

async fn bind_with_retry(ip: &str, port: u16) -> Result<TcpListener, ApiError> {
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| ApiError::Internal(format!("stored address {ip} is not an IP address")))?;
    let mut last = None;
    // The previous engine on this endpoint may still be closing its listener.
    for _ in 0..100 {
        match bind(SocketAddr::new(addr, port)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("bind failed"));
    Err(bind_error(ip, port, &e))
}

fn bind_error(ip: &str, port: u16, e: &std::io::Error) -> ApiError {
    tracing::error!(endpoint = %format!("{ip}:{port}"), error = %e, "cannot bind node endpoint");
    ApiError::InsufficientCacheClusterCapacity(format!("Cannot listen on {ip}:{port}: {e}"))
}

fn node_memory(spec: &ClusterSpec) -> u64 {
    catalog::node_type(&spec.node_type)
        .map(|t| t.memory_mib)
        .unwrap_or(512)
        * 1024
        * 1024
}

/// ElastiCache keeps `reserved-memory-percent` (25 by default) of a node's memory
/// out of the data set.
fn redis_maxmemory(memory: u64, params: &BTreeMap<String, String>) -> u64 {
    let reserved = param_u64(params, "reserved-memory-percent")
        .unwrap_or(25)
        .min(100);
    memory / 100 * (100 - reserved)
}

/// memcached's cache memory: the node's memory less `memcached_connections_overhead`
/// (MiB, 100 by default).
fn memcached_memory(memory: u64, params: &BTreeMap<String, String>) -> u64 {
    let overhead = param_u64(params, "memcached_connections_overhead").unwrap_or(100) * 1024 * 1024;
    memory.saturating_sub(overhead).max(16 * 1024 * 1024)
}

fn param_u64(params: &BTreeMap<String, String>, name: &str) -> Option<u64> {
    params.get(name).and_then(|v| v.trim().parse().ok())
}

fn param_bool(params: &BTreeMap<String, String>, name: &str) -> Option<bool> {
    params
        .get(name)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}
