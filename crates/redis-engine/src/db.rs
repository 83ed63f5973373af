//! The keyspace: 16 databases of keys → values, expiry, eviction bookkeeping.

use std::collections::{BTreeSet, HashMap, VecDeque};

use indexmap::{IndexMap, IndexSet};

use crate::keymap::KeyMap;

pub type Hasher = foldhash::fast::RandomState;
pub type Blob = crate::small::SmallBytes;
pub type HMap = IndexMap<Blob, Blob, Hasher>;
pub type HSet = IndexSet<Blob, Hasher>;

/// Totally ordered f64 for the sorted-set index (no NaN is ever stored).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(pub f64);
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Score {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0
            .partial_cmp(&o.0)
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

#[derive(Default, Clone)]
pub struct ZSet {
    pub dict: HashMap<Blob, f64, Hasher>,
    pub tree: BTreeSet<(Score, Blob)>,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.dict.len()
    }
    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }
    /// Insert or update; returns true when the member was new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        // Redis's listpack stores integral scores as integers: -0 reads back as 0.
        let score = if score == 0.0 { 0.0 } else { score };
        if let Some(old) = self.dict.get_mut(member) {
            if *old != score {
                let m: Blob = member.into();
                self.tree.remove(&(Score(*old), m.clone()));
                *old = score;
                self.tree.insert((Score(score), m));
            }
            false
        } else {
            let m: Blob = member.into();
            self.dict.insert(m.clone(), score);
            self.tree.insert((Score(score), m));
            true
        }
    }
    pub fn remove(&mut self, member: &[u8]) -> bool {
        if let Some((m, s)) = self.dict.remove_entry(member) {
            self.tree.remove(&(Score(s), m));
            true
        } else {
            false
        }
    }
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.dict.get(member).copied()
    }
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = self.score(member)?;
        let key = (Score(s), Blob::from(member));
        Some(self.tree.range(..key).count())
    }
}

pub enum Value {
    Str(crate::small::SmallBytes),
    Hash(Box<HMap>),
    List(Box<VecDeque<Blob>>),
    Set(Box<HSet>),
    ZSet(Box<ZSet>),
    Stream(Box<crate::cmd::streams::Stream>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
    pub fn deep_clone(&self) -> Value {
        match self {
            Value::Str(s) => Value::Str(s.clone()),
            Value::Hash(h) => Value::Hash(h.clone()),
            Value::List(l) => Value::List(l.clone()),
            Value::Set(s) => Value::Set(s.clone()),
            Value::ZSet(z) => Value::ZSet(z.clone()),
            Value::Stream(s) => Value::Stream(s.clone()),
        }
    }
    /// Approximate memory footprint (MEMORY USAGE).
    pub fn mem_estimate(&self) -> usize {
        match self {
            Value::Str(s) => 16 + s.heap_len(),
            Value::Hash(h) => 64 + h.iter().map(|(k, v)| k.len() + v.len() + 40).sum::<usize>(),
            Value::List(l) => 64 + l.iter().map(|v| v.len() + 24).sum::<usize>(),
            Value::Set(s) => 64 + s.iter().map(|v| v.len() + 32).sum::<usize>(),
            Value::ZSet(z) => 64 + z.dict.keys().map(|v| 2 * v.len() + 80).sum::<usize>(),
            Value::Stream(s) => s.mem_estimate(),
        }
    }
    pub fn is_empty_aggregate(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::Hash(h) => h.is_empty(),
            Value::List(l) => l.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            // An empty stream stays (Redis never deletes it on its own).
            Value::Stream(_) => false,
        }
    }
}

pub struct Entry {
    pub val: Value,
    /// LRU clock (seconds) or LFU (16-bit minutes << 8 | 8-bit log counter).
    pub lru: u32,
}

#[derive(Default)]
pub struct Db {
    pub map: KeyMap<Entry>,
    pub expires: KeyMap<u64>,
    pub avg_ttl: u64,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Policy {
    #[default]
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s.to_ascii_lowercase().as_str() {
            "noeviction" => Policy::NoEviction,
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => return None,
        })
    }
    pub fn name(&self) -> &'static str {
        match self {
            Policy::NoEviction => "noeviction",
            Policy::AllKeysLru => "allkeys-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
        }
    }
    pub fn is_lfu(&self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }
}

#[derive(Default, Clone, Copy)]
pub struct Stats {
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub hits: u64,
    pub misses: u64,
}

/// Small xorshift RNG (no client-controlled seeding).
pub struct Rng(u64);
impl Rng {
    pub fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E3779B97F4A7C15);
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}
impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Wall-clock milliseconds derived from a monotonic instant, so one clock read per command
/// serves both its expiry time base and its slow-log duration (three reads were ~5 % of a
/// pipelined GET). Re-anchored to the wall clock on every cron tick (100 ms), so a clock
/// step shows up as quickly as Redis's cached `mstime` would pick it up.
pub struct WallClock {
    base: std::time::Instant,
    /// The wall clock at `base`, in nanoseconds: kept exact so the derived milliseconds
    /// equal `now_ms()`'s (truncating at `base` and again at each read lags up to 1 ms).
    base_ns: u64,
}

impl WallClock {
    pub fn new() -> WallClock {
        let wall_ns = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        };
        // The instant is read between two wall-clock reads and paired with their midpoint:
        // a thread preempted between two reads would otherwise put the derived time up to
        // the preemption ahead of (or behind) the wall clock. A wide bracket is retried.
        let mut best: Option<(std::time::Instant, u64, u64)> = None;
        for _ in 0..5 {
            let w1 = wall_ns();
            let base = std::time::Instant::now();
            let w2 = wall_ns();
            let gap = w2.saturating_sub(w1);
            let mid = w1 + gap / 2;
            if best.is_none_or(|(_, _, g)| gap < g) {
                best = Some((base, mid, gap));
            }
            if gap < 10_000 {
                break;
            }
        }
        match best {
            Some((base, base_ns, _)) => WallClock { base, base_ns },
            None => WallClock {
                base: std::time::Instant::now(),
                base_ns: wall_ns(),
            },
        }
    }
    pub fn resync(&mut self) {
        *self = WallClock::new();
    }
    /// Wall-clock nanoseconds at `t`.
    #[inline]
    pub fn ns_at(&self, t: std::time::Instant) -> u64 {
        self.base_ns + t.saturating_duration_since(self.base).as_nanos() as u64
    }
    /// Wall-clock milliseconds at `t` (truncated once, as `now_ms()` truncates).
    #[inline]
    pub fn ms_at(&self, t: std::time::Instant) -> u64 {
        self.ns_at(t) / 1_000_000
    }
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::new()
    }
}

/// How lazy expiry behaves (replication: replicas never delete expired keys themselves).
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpireMode {
    /// Primary: delete expired keys (and log them when `log_deletes`).
    #[default]
    Normal,
    /// Replica serving clients: logically expired keys look missing but stay.
    Hide,
    /// Replica applying its primary's stream: keys are never expired.
    Keep,
}

pub struct Keyspace {
    pub dbs: Vec<Db>,
    /// Replication hook (see `replication.rs`): how lazy expiry behaves.
    pub expire_mode: ExpireMode,
    pub stats: Stats,
    pub now: u64,
    pub clock: WallClock,
    pub policy: Policy,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
    pub rng: Rng,
    /// Set while executing a NO-TOUCH client's command.
    pub no_touch: bool,
    /// When set (a write hook is installed, or replication has replicas), keys removed by
    /// expiry or eviction are logged in `deleted` so they can be propagated as DELs, as Redis does.
    pub log_deletes: bool,
    /// Client-side caching is active: expiry/eviction deletions are logged too, so they
    /// can be invalidated (see `tracking.rs`).
    pub track_deletes: bool,
    pub deleted: Vec<(usize, Blob)>,
    /// `notify-keyspace-events` flags (see `notify.rs`); 0 = off.
    pub notify_flags: u32,
    /// Keyspace events raised here (expired, evicted, new), published by `notify::drain`.
    pub events: Vec<(&'static str, usize, Blob)>,
}

const LFU_INIT_VAL: u32 = 5;

impl Keyspace {
    pub fn new(n: usize) -> Keyspace {
        Keyspace {
            dbs: (0..n).map(|_| Db::default()).collect(),
            expire_mode: ExpireMode::Normal,
            stats: Stats::default(),
            now: now_ms(),
            clock: WallClock::new(),
            policy: Policy::NoEviction,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            rng: Rng::new(),
            no_touch: false,
            log_deletes: false,
            track_deletes: false,
            deleted: Vec::new(),
            notify_flags: 0,
            events: Vec::new(),
        }
    }

    /// Queue a keyspace event (published by `notify::drain`); one bit test when off.
    #[inline]
    pub fn event(&mut self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        if self.notify_flags & class != 0 {
            self.events.push((event, db, key.into()));
        }
    }

    fn lru_clock(&self) -> u32 {
        ((self.now / 1000) & 0xFF_FFFF) as u32
    }

    pub fn new_lru(&self) -> u32 {
        if self.policy.is_lfu() {
            (((self.now / 60000) as u32 & 0xFFFF) << 8) | LFU_INIT_VAL
        } else {
            self.lru_clock()
        }
    }

    fn lfu_decr_and_return(&self, lru: u32) -> u32 {
        let ldt = lru >> 8;
        let counter = lru & 0xFF;
        let now_min = (self.now / 60000) as u32 & 0xFFFF;
        let elapsed = if now_min >= ldt {
            now_min - ldt
        } else {
            65535 - ldt + now_min
        };
        let periods = elapsed.checked_div(self.lfu_decay_time).unwrap_or(0);
        counter.saturating_sub(periods)
    }

    pub fn lfu_freq(&self, lru: u32) -> u32 {
        self.lfu_decr_and_return(lru)
    }

    fn touch(&mut self, lru: u32) -> u32 {
        if self.policy.is_lfu() {
            let mut counter = self.lfu_decr_and_return(lru);
            if counter < 255 {
                let r = (self.rng.next_u64() % 1_000_000) as f64 / 1_000_000.0;
                let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
                let p = 1.0 / (base * self.lfu_log_factor as f64 + 1.0);
                if r < p {
                    counter += 1;
                }
            }
            (((self.now / 60000) as u32 & 0xFFFF) << 8) | counter
        } else {
            self.lru_clock()
        }
    }

    /// Expire `key` if its time has come. Returns true when it was removed.
    #[inline]
    pub fn expire_if_needed(&mut self, db: usize, key: &[u8]) -> bool {
        let d = &mut self.dbs[db];
        if d.expires.is_empty() {
            return false;
        }
        match d.expires.get(key) {
            Some(&t) if t <= self.now => match self.expire_mode {
                ExpireMode::Hide => true,
                ExpireMode::Keep => false,
                ExpireMode::Normal => {
                    d.expires.swap_remove(key);
                    d.map.swap_remove(key);
                    self.stats.expired_keys += 1;
                    if self.log_deletes || self.track_deletes {
                        self.deleted.push((db, key.into()));
                    }
                    self.event(crate::notify::EXPIRED, "expired", db, key);
                    true
                }
            },
            _ => false,
        }
    }

    /// Lazy expiry; true when the key must be treated as missing (expired on a replica).
    #[inline]
    fn hidden(&mut self, db: usize, key: &[u8]) -> bool {
        self.expire_if_needed(db, key) && self.expire_mode == ExpireMode::Hide
    }

    /// Lookup for reading: expires, counts hits/misses, updates LRU/LFU.
    #[inline]
    pub fn get(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        if self.hidden(db, key) {
            self.stats.misses += 1;
            self.event(crate::notify::KEY_MISS, "keymiss", db, key);
            return None;
        }
        let no_touch = self.no_touch;
        let idx = self.dbs[db].map.get_index_of(key);
        match idx {
            Some(i) => {
                self.stats.hits += 1;
                if !no_touch {
                    let lru = self.dbs[db].map[i].lru;
                    let n = self.touch(lru);
                    self.dbs[db].map[i].lru = n;
                }
                Some(&mut self.dbs[db].map[i])
            }
            None => {
                self.stats.misses += 1;
                self.event(crate::notify::KEY_MISS, "keymiss", db, key);
                None
            }
        }
    }

    /// Lookup for writing: expires but does not count hits/misses.
    #[inline]
    pub fn get_w(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        if self.hidden(db, key) {
            return None;
        }
        let i = self.dbs[db].map.get_index_of(key)?;
        let lru = self.dbs[db].map[i].lru;
        let n = self.touch(lru);
        let e = &mut self.dbs[db].map[i];
        e.lru = n;
        Some(e)
    }

    /// Lookup for writing, creating the key with `make()` when missing.
    pub fn get_or_create(
        &mut self,
        db: usize,
        key: &[u8],
        make: impl FnOnce() -> Value,
    ) -> &mut Entry {
        self.expire_if_needed(db, key);
        let lru = self.new_lru();
        let d = &mut self.dbs[db];
        let i = match d.map.get_index_of(key) {
            Some(i) => {
                if !self.no_touch {
                    d.map[i].lru = lru;
                }
                i
            }
            None => {
                let i = d.map.insert_full(key, Entry { val: make(), lru }).0;
                self.event(crate::notify::NEW, "new", db, key);
                i
            }
        };
        &mut self.dbs[db].map[i]
    }

    /// Existence check without touching stats or LRU.
    pub fn exists(&mut self, db: usize, key: &[u8]) -> bool {
        if self.hidden(db, key) {
            return false;
        }
        self.dbs[db].map.contains_key(key)
    }

    /// Peek without side effects other than lazy expiry.
    pub fn peek(&mut self, db: usize, key: &[u8]) -> Option<&Entry> {
        if self.hidden(db, key) {
            return None;
        }
        self.dbs[db].map.get(key)
    }

    /// Set a value, removing any TTL unless `keep_ttl`.
    pub fn set(&mut self, db: usize, key: &[u8], val: Value, keep_ttl: bool) {
        let lru = self.new_lru();
        let d = &mut self.dbs[db];
        if let Some(e) = d.map.get_mut(key) {
            e.val = val;
            e.lru = lru;
        } else {
            d.map.insert(key, Entry { val, lru });
            if self.notify_flags & crate::notify::NEW != 0 {
                self.events.push(("new", db, key.into()));
            }
        }
        if !keep_ttl && !d.expires.is_empty() {
            d.expires.swap_remove(key);
        }
    }

    pub fn del(&mut self, db: usize, key: &[u8]) -> bool {
        self.expire_if_needed(db, key);
        let d = &mut self.dbs[db];
        if d.map.swap_remove(key).is_some() {
            if !d.expires.is_empty() {
                d.expires.swap_remove(key);
            }
            true
        } else {
            false
        }
    }

    /// Remove and return the entry (with its expire time).
    pub fn take(&mut self, db: usize, key: &[u8]) -> Option<(Entry, Option<u64>)> {
        self.expire_if_needed(db, key);
        let d = &mut self.dbs[db];
        let e = d.map.swap_remove(key)?;
        let t = if d.expires.is_empty() {
            None
        } else {
            d.expires.swap_remove(key)
        };
        Some((e, t))
    }

    pub fn ttl(&self, db: usize, key: &[u8]) -> Option<u64> {
        let d = &self.dbs[db];
        if d.expires.is_empty() {
            None
        } else {
            d.expires.get(key).copied()
        }
    }

    pub fn set_expire(&mut self, db: usize, key: &[u8], at: u64) {
        let d = &mut self.dbs[db];
        if d.map.contains_key(key) {
            d.expires.insert(key, at);
        }
    }

    pub fn persist(&mut self, db: usize, key: &[u8]) -> bool {
        self.dbs[db].expires.swap_remove(key).is_some()
    }

    /// Remove `key` if it holds an empty aggregate (after pops/removals).
    pub fn drop_if_empty(&mut self, db: usize, key: &[u8]) {
        let d = &mut self.dbs[db];
        if let Some(e) = d.map.get(key) {
            if e.val.is_empty_aggregate() {
                d.map.swap_remove(key);
                if !d.expires.is_empty() {
                    d.expires.swap_remove(key);
                }
            }
        }
    }

    pub fn key_count(&self) -> usize {
        self.dbs.iter().map(|d| d.map.len()).sum()
    }

    /// Active expiry: Redis's fast-cycle-like sampling. Returns keys expired.
    pub fn active_expire(&mut self, budget: usize) -> usize {
        let now = now_ms();
        self.now = now;
        let mut total = 0;
        for db in 0..self.dbs.len() {
            loop {
                let d = &mut self.dbs[db];
                let n = d.expires.len();
                if n == 0 {
                    break;
                }
                let mut expired = 0;
                let samples = 20.min(n);
                for _ in 0..samples {
                    let n = d.expires.len();
                    if n == 0 {
                        break;
                    }
                    let i = (self.rng.next_u64() % n as u64) as usize;
                    let Some((k, &t)) = d.expires.get_index(i) else {
                        break;
                    };
                    if t <= now {
                        let k = k.clone();
                        d.expires.swap_remove_index(i);
                        d.map.swap_remove(&k[..]);
                        expired += 1;
                        if self.log_deletes || self.track_deletes {
                            self.deleted.push((db, Blob::from(&k[..])));
                        }
                        if self.notify_flags & crate::notify::EXPIRED != 0 {
                            self.events.push(("expired", db, Blob::from(&k[..])));
                        }
                    }
                }
                self.stats.expired_keys += expired as u64;
                total += expired;
                // Repeat while more than 25% of the sample was expired.
                if expired * 4 <= samples || total >= budget {
                    break;
                }
            }
        }
        total
    }

    /// Evict one key according to the policy. Returns false when nothing can be evicted.
    pub fn evict_one(&mut self) -> bool {
        let policy = self.policy;
        if policy == Policy::NoEviction {
            return false;
        }
        let volatile = matches!(
            policy,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        );
        // Pick the best of 5 samples per non-empty db.
        let mut best: Option<(usize, Blob, u64)> = None; // (db, key, badness: higher = evict first)
        for db in 0..self.dbs.len() {
            let n = if volatile {
                self.dbs[db].expires.len()
            } else {
                self.dbs[db].map.len()
            };
            if n == 0 {
                continue;
            }
            for _ in 0..5 {
                let i = self.rng.below(n);
                let d = &self.dbs[db];
                let (key, score) = if volatile {
                    let Some((k, &t)) = d.expires.get_index(i) else {
                        continue;
                    };
                    let score = match policy {
                        Policy::VolatileTtl => u64::MAX - t,
                        Policy::VolatileRandom => self.rng.next_u64(),
                        _ => match d.map.get(k) {
                            Some(e) => self.badness(e.lru),
                            None => u64::MAX,
                        },
                    };
                    (k, score)
                } else {
                    let Some((k, e)) = d.map.get_index(i) else {
                        continue;
                    };
                    let score = match policy {
                        Policy::AllKeysRandom => self.rng.next_u64(),
                        _ => self.badness(e.lru),
                    };
                    (k, score)
                };
                if best.as_ref().map(|b| score > b.2).unwrap_or(true) {
                    best = Some((db, Blob::from(&key[..]), score));
                }
            }
        }
        match best {
            Some((db, key, _)) => {
                self.del(db, &key);
                self.stats.evicted_keys += 1;
                self.event(crate::notify::EVICTED, "evicted", db, &key);
                if self.log_deletes || self.track_deletes {
                    self.deleted.push((db, key));
                }
                true
            }
            None => false,
        }
    }

    fn badness(&self, lru: u32) -> u64 {
        if self.policy.is_lfu() {
            255 - self.lfu_decr_and_return(lru) as u64
        } else {
            let now = self.lru_clock();
            (if now >= lru {
                now - lru
            } else {
                0xFF_FFFF - lru + now
            }) as u64
        }
    }

    pub fn idle_secs(&self, lru: u32) -> u64 {
        let now = self.lru_clock();
        (if now >= lru {
            now - lru
        } else {
            0xFF_FFFF - lru + now
        }) as u64
    }
}

#[cfg(test)]
mod wall_clock_tests {
    use super::{now_ms, WallClock};

    fn wall_ns() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }

    /// The derived clock stays within a clock read or two of the wall clock (50 µs is
    /// generous; a lag from truncating twice would be up to 1 ms), and milliseconds are
    /// the nanoseconds truncated once, as `now_ms()` truncates them.
    #[test]
    fn derived_time_tracks_the_wall_clock() {
        let c = WallClock::new();
        let mut worst = 0i64;
        for _ in 0..2000 {
            let before = wall_ns();
            let t = std::time::Instant::now();
            let after = wall_ns();
            let derived = c.ns_at(t);
            let off = if derived < before {
                before as i64 - derived as i64
            } else if derived > after {
                derived as i64 - after as i64
            } else {
                0
            };
            worst = worst.max(off);
            assert_eq!(c.ms_at(t), derived / 1_000_000);
        }
        assert!(
            worst < 50_000,
            "derived time off the wall clock by {worst} ns"
        );
        let before = now_ms();
        let ms = c.ms_at(std::time::Instant::now());
        assert!(ms + 1 >= before && ms <= now_ms() + 1);
    }
}
