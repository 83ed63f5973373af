//! The item store of one node: open-addressing hash table of slot indices, a slab of items, an
//! intrusive doubly-linked LRU, memory accounting like memcached's item header and CAS counter.
//! Owned by the node's single thread: no locks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use hashbrown::HashTable;
use std::hash::BuildHasher;

pub const KEY_MAX_LENGTH: usize = 250;
/// memcached's `sizeof(item)` on 64-bit.
pub const ITEM_HEADER: u64 = 48;
/// 30 days: larger exptimes are absolute unix times.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

const NIL: u32 = u32::MAX;

pub const F_FETCHED: u8 = 1;
pub const F_STALE: u8 = 2;
pub const F_TOKEN_SENT: u8 = 4;
pub const F_KEY_BINARY: u8 = 8;

/// Settings changeable at runtime (parameter groups).
#[derive(Debug)]
pub struct Settings {
    pub memory_limit: AtomicU64,
    pub max_item_size: AtomicU64,
    pub evict: AtomicBool,
}

pub struct Item {
    /// key bytes followed by value bytes (no trailing CRLF).
    data: Box<[u8]>,
    pub cas: u64,
    pub flags: u32,
    /// absolute unix seconds; 0 = never.
    pub exptime: u32,
    /// last store/access, unix seconds.
    pub time: u32,
    klen: u8,
    pub iflags: u8,
    prev: u32,
    next: u32,
}

impl Item {
    #[inline]
    pub fn key(&self) -> &[u8] {
        &self.data[..self.klen as usize]
    }
    #[inline]
    pub fn value(&self) -> &[u8] {
        &self.data[self.klen as usize..]
    }
    #[inline]
    pub fn is_free(&self) -> bool {
        self.klen == 0
    }
    /// memcached's ITEM_ntotal (header + key + NUL + flags suffix + value + CRLF + cas).
    #[inline]
    pub fn ntotal(&self) -> u64 {
        ntotal(self.klen as usize, self.flags, self.value().len())
    }
}

#[inline]
pub fn ntotal(nkey: usize, flags: u32, vlen: usize) -> u64 {
    ITEM_HEADER + nkey as u64 + 1 + if flags != 0 { 4 } else { 0 } + vlen as u64 + 2 + 8
}

/// memcached's slab class for a total item size (factor 1.25, first chunk 96 bytes).
pub fn slab_class(total: u64) -> (u32, u64) {
    let mut size: u64 = 96;
    let mut cls = 1;
    while size < total && size < 524288 {
        let next = ((size as f64 * 1.25) as u64).div_ceil(8) * 8;
        size = next.min(524288);
        cls += 1;
    }
    (cls, size)
}

#[derive(Default, Debug, Clone)]
pub struct Stats {
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_flush: u64,
    pub cmd_touch: u64,
    pub cmd_meta: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
    pub delete_misses: u64,
    pub delete_hits: u64,
    pub incr_misses: u64,
    pub incr_hits: u64,
    pub decr_misses: u64,
    pub decr_hits: u64,
    pub cas_misses: u64,
    pub cas_hits: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub store_too_large: u64,
    pub store_no_memory: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub total_items: u64,
    pub expired_unfetched: u64,
    pub evicted_unfetched: u64,
    pub evictions: u64,
    pub reclaimed: u64,
    pub crawler_reclaimed: u64,
    pub total_connections: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comm {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreResult {
    Stored(u64),
    Exists,
    NotFound,
    NotStored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("SERVER_ERROR object too large for cache")]
    TooLarge,
    #[error("SERVER_ERROR out of memory storing object")]
    NoMemory,
}

pub enum Delta {
    Ok(u64),
    NonNumeric,
    NotFound,
    CasMismatch,
}

pub struct Store {
    items: Vec<Item>,
    table: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    head: u32,
    tail: u32,
    free: u32,
    pub mem_used: u64,
    pub curr_items: u64,
    cas_id: u64,
    /// delayed flush_all: items stored at or before this unix second are invalid once it is reached.
    oldest_live: u32,
    pub stats: Stats,
    pub settings: Arc<Settings>,
    pub now: u32,
    pub started: u32,
    crawl_cursor: usize,
    /// Items referenced by replies of the current batch that are not written yet, as (slot,
    /// cas). memcached holds a reference on those (mg, binary get family), which makes a
    /// following incr/decr build a new item instead of updating in place.
    pub pinned: Vec<(u32, u64)>,
    /// Whether the last successful `add_delta` updated the item in place.
    pub last_delta_in_place: bool,
    /// Length of the connection's pending output that memcached would already have written
    /// (it writes at `mn`, binary noop and binary errors); an abort drops the rest.
    pub out_mark: usize,
}

#[inline]
fn hash_key(h: &hashbrown::DefaultHashBuilder, key: &[u8]) -> u64 {
    h.hash_one(key)
}

impl Store {
    pub fn new(settings: Arc<Settings>) -> Store {
        let now = unix_now();
        Store {
            items: Vec::new(),
            table: HashTable::new(),
            hasher: Default::default(),
            head: NIL,
            tail: NIL,
            free: NIL,
            mem_used: 0,
            curr_items: 0,
            cas_id: 0,
            oldest_live: 0,
            stats: Stats::default(),
            settings,
            now,
            started: now,
            crawl_cursor: 0,
            pinned: Vec::new(),
            last_delta_in_place: false,
            out_mark: 0,
        }
    }

    pub fn tick(&mut self) {
        self.now = unix_now();
    }

    #[inline]
    pub fn next_cas(&mut self) -> u64 {
        self.cas_id += 1;
        self.cas_id
    }

    /// memcached's `realtime(EXPTIME_TO_POSITIVE_TIME(x))` in absolute unix seconds (1 = expired).
    pub fn realtime(&self, exptime: i64) -> u32 {
        let e = exptime;
        if e == 0 {
            return 0;
        }
        let e = if e < 0 { REALTIME_MAXDELTA + 1 } else { e };
        if e > REALTIME_MAXDELTA {
            // memcached's process_started is start time - 62.
            if e <= self.started as i64 - 62 {
                1
            } else {
                e.min(u32::MAX as i64) as u32
            }
        } else {
            (self.now as i64 + e).min(u32::MAX as i64) as u32
        }
    }

    #[inline]
    pub fn item(&self, idx: u32) -> &Item {
        &self.items[idx as usize]
    }
    #[inline]
    pub fn item_mut(&mut self, idx: u32) -> &mut Item {
        &mut self.items[idx as usize]
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        if self.curr_items == 0 {
            return None;
        }
        let h = hash_key(&self.hasher, key);
        let items = &self.items;
        self.table
            .find(h, |&i| items[i as usize].key() == key)
            .copied()
    }

    #[inline]
    fn is_expired(&self, it: &Item) -> bool {
        it.exptime != 0 && it.exptime <= self.now
    }
    #[inline]
    fn is_flushed(&self, it: &Item) -> bool {
        self.oldest_live != 0 && self.oldest_live <= self.now && it.time <= self.oldest_live
    }

    /// Look an item up, reaping it if expired or flushed. `count` = account get_expired/flushed.
    pub fn lookup(&mut self, key: &[u8], count: bool) -> Option<u32> {
        let idx = self.find(key)?;
        let it = &self.items[idx as usize];
        if self.is_flushed(it) {
            if count {
                self.stats.get_flushed += 1;
            }
            self.unlink(idx);
            return None;
        }
        if self.is_expired(it) {
            if count {
                self.stats.get_expired += 1;
            }
            if it.iflags & F_FETCHED == 0 {
                self.stats.expired_unfetched += 1;
            }
            self.stats.reclaimed += 1;
            self.unlink(idx);
            return None;
        }
        Some(idx)
    }

    /// memcached writes all pending replies here: item references are released.
    #[inline]
    pub fn flush_point(&mut self, out_len: usize) {
        self.pinned.clear();
        self.out_mark = out_len;
    }

    /// Mark an item as referenced by a not-yet-written reply (see `pinned`).
    #[inline]
    pub fn pin(&mut self, idx: u32) {
        let cas = self.items[idx as usize].cas;
        self.pinned.push((idx, cas));
    }

    /// A fetch that updates LRU position and the fetched bit.
    #[inline]
    pub fn bump(&mut self, idx: u32) {
        let now = self.now;
        let it = &mut self.items[idx as usize];
        it.iflags |= F_FETCHED;
        it.time = now;
        if self.head != idx {
            self.lru_remove(idx);
            self.lru_push_head(idx);
        }
    }

    fn lru_remove(&mut self, idx: u32) {
        let (prev, next) = {
            let it = &self.items[idx as usize];
            (it.prev, it.next)
        };
        if prev != NIL {
            self.items[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.items[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
    }

    fn lru_push_head(&mut self, idx: u32) {
        let old = self.head;
        {
            let it = &mut self.items[idx as usize];
            it.prev = NIL;
            it.next = old;
        }
        if old != NIL {
            self.items[old as usize].prev = idx;
        } else {
            self.tail = idx;
        }
        self.head = idx;
    }

    /// Remove an item from table, LRU and memory accounting.
    pub fn unlink(&mut self, idx: u32) {
        let h = hash_key(&self.hasher, self.items[idx as usize].key());
        if let Ok(e) = self.table.find_entry(h, |&i| i == idx) {
            e.remove();
        }
        self.lru_remove(idx);
        let it = &mut self.items[idx as usize];
        self.mem_used = self.mem_used.saturating_sub(it.ntotal());
        self.curr_items -= 1;
        it.data = Box::new([]);
        it.klen = 0;
        it.next = self.free;
        self.free = idx;
        if self.curr_items == 0 && self.items.len() > 1024 {
            // Everything gone (flush): give memory back.
            self.items = Vec::new();
            self.table = HashTable::new();
            self.free = NIL;
            self.head = NIL;
            self.tail = NIL;
        }
    }

    /// Make room for an item of `total` bytes (memcached's item_alloc): size check, then reclaim
    /// expired items / evict from the LRU tail.
    pub fn alloc(&mut self, nkey: usize, flags: u32, vlen: usize) -> Result<(), AllocError> {
        let total = ntotal(nkey, flags, vlen);
        if total > self.settings.max_item_size.load(Ordering::Relaxed) {
            return Err(AllocError::TooLarge);
        }
        let limit = self.settings.memory_limit.load(Ordering::Relaxed);
        if limit == 0 {
            return Ok(());
        }
        if total > limit {
            return Err(AllocError::NoMemory);
        }
        let evict = self.settings.evict.load(Ordering::Relaxed);
        let mut searched = 0;
        while self.mem_used + total > limit {
            let t = self.tail;
            if t == NIL {
                return Err(AllocError::NoMemory);
            }
            let it = &self.items[t as usize];
            if self.is_expired(it) || self.is_flushed(it) {
                if it.iflags & F_FETCHED == 0 {
                    self.stats.expired_unfetched += 1;
                }
                self.stats.reclaimed += 1;
                self.unlink(t);
                continue;
            }
            if !evict {
                // -M: only reclaim expired items near the tail.
                searched += 1;
                if searched > 5 {
                    return Err(AllocError::NoMemory);
                }
                // look further along the tail for expired items
                let mut cur = self.items[t as usize].prev;
                let mut found = NIL;
                for _ in 0..5 {
                    if cur == NIL {
                        break;
                    }
                    let c = &self.items[cur as usize];
                    if self.is_expired(c) || self.is_flushed(c) {
                        found = cur;
                        break;
                    }
                    cur = c.prev;
                }
                if found == NIL {
                    return Err(AllocError::NoMemory);
                }
                self.stats.reclaimed += 1;
                self.unlink(found);
                continue;
            }
            if it.iflags & F_FETCHED == 0 {
                self.stats.evicted_unfetched += 1;
            }
            self.stats.evictions += 1;
            self.unlink(t);
        }
        Ok(())
    }

    /// Insert a new item (key must not be present). Assigns a new CAS unless `cas` is given.
    pub fn link(
        &mut self,
        key: &[u8],
        value_parts: &[&[u8]],
        flags: u32,
        exptime: u32,
        iflags: u8,
        cas: Option<u64>,
    ) -> u32 {
        let vlen: usize = value_parts.iter().map(|p| p.len()).sum();
        let mut data = Vec::with_capacity(key.len() + vlen);
        data.extend_from_slice(key);
        for p in value_parts {
            data.extend_from_slice(p);
        }
        let cas = match cas {
            Some(c) => c,
            None => self.next_cas(),
        };
        let item = Item {
            data: data.into_boxed_slice(),
            cas,
            flags,
            exptime,
            time: self.now,
            klen: key.len() as u8,
            iflags,
            prev: NIL,
            next: NIL,
        };
        self.mem_used += item.ntotal();
        let idx = if self.free != NIL {
            let idx = self.free;
            self.free = self.items[idx as usize].next;
            self.items[idx as usize] = item;
            idx
        } else {
            self.items.push(item);
            (self.items.len() - 1) as u32
        };
        let h = hash_key(&self.hasher, key);
        let items = &self.items;
        let hasher = &self.hasher;
        self.table
            .insert_unique(h, idx, |&i| hash_key(hasher, items[i as usize].key()));
        self.lru_push_head(idx);
        self.curr_items += 1;
        self.stats.total_items += 1;
        idx
    }

    /// memcached's do_store_item. `req_cas` 0 = none. `stale_ok`: meta `I` with CAS.
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        &mut self,
        comm: Comm,
        key: &[u8],
        flags: u32,
        exptime: u32,
        value: &[u8],
        req_cas: u64,
        stale_ok: bool,
        key_binary: bool,
    ) -> StoreResult {
        let old = self.lookup(key, false);
        let base_iflags = if key_binary { F_KEY_BINARY } else { 0 };
        match old {
            Some(o) => {
                let (old_cas, old_exptime, old_iflags, old_flags) = {
                    let it = self.item(o);
                    (it.cas, it.exptime, it.iflags, it.flags)
                };
                #[derive(PartialEq)]
                enum CasRes {
                    None,
                    Match,
                    BadVal,
                    Stale,
                }
                let cr = if req_cas == 0 {
                    CasRes::None
                } else if req_cas == old_cas {
                    CasRes::Match
                } else if stale_ok && req_cas < old_cas {
                    CasRes::Stale
                } else {
                    CasRes::BadVal
                };
                match comm {
                    Comm::Add => {
                        self.touch_lru(o);
                        StoreResult::NotStored
                    }
                    Comm::Cas => match cr {
                        CasRes::Match => {
                            self.stats.cas_hits += 1;
                            self.unlink(o);
                            let i = self.link(key, &[value], flags, exptime, base_iflags, None);
                            StoreResult::Stored(self.item(i).cas)
                        }
                        CasRes::Stale => {
                            self.stats.cas_hits += 1;
                            self.unlink(o);
                            let fl = base_iflags | F_STALE | (old_iflags & F_TOKEN_SENT);
                            let i = self.link(key, &[value], flags, old_exptime, fl, None);
                            StoreResult::Stored(self.item(i).cas)
                        }
                        _ => {
                            self.stats.cas_badval += 1;
                            StoreResult::Exists
                        }
                    },
                    Comm::Append | Comm::Prepend => {
                        if cr != CasRes::None && cr != CasRes::Match {
                            return StoreResult::Exists;
                        }
                        let old_val_len = self.item(o).value().len();
                        let total = ntotal(key.len(), old_flags, old_val_len + value.len());
                        if total > self.settings.max_item_size.load(Ordering::Relaxed) {
                            return StoreResult::NotStored;
                        }
                        let old_data = std::mem::take(&mut self.items[o as usize].data);
                        let old_val = &old_data[key.len()..];
                        // restore for accounting in unlink
                        let parts: [&[u8]; 2] = if comm == Comm::Append {
                            [old_val, value]
                        } else {
                            [value, old_val]
                        };
                        let mut data = Vec::with_capacity(old_val.len() + value.len());
                        data.extend_from_slice(parts[0]);
                        data.extend_from_slice(parts[1]);
                        self.items[o as usize].data = old_data;
                        self.unlink(o);
                        // memcached builds a fresh item: the binary-key mark is not carried.
                        let i = self.link(key, &[&data], old_flags, old_exptime, 0, None);
                        StoreResult::Stored(self.item(i).cas)
                    }
                    Comm::Set | Comm::Replace => {
                        self.unlink(o);
                        let i = self.link(key, &[value], flags, exptime, base_iflags, None);
                        StoreResult::Stored(self.item(i).cas)
                    }
                }
            }
            None => match comm {
                Comm::Add | Comm::Set => {
                    let i = self.link(key, &[value], flags, exptime, base_iflags, None);
                    StoreResult::Stored(self.item(i).cas)
                }
                Comm::Cas => {
                    self.stats.cas_misses += 1;
                    StoreResult::NotFound
                }
                _ => StoreResult::NotStored,
            },
        }
    }

    fn touch_lru(&mut self, idx: u32) {
        if self.head != idx {
            self.lru_remove(idx);
            self.lru_push_head(idx);
        }
    }

    /// memcached do_add_delta. Returns the new value; `item` gets the item index.
    pub fn add_delta(
        &mut self,
        key: &[u8],
        incr: bool,
        delta: u64,
        req_cas: u64,
        item: &mut Option<u32>,
    ) -> Delta {
        let Some(idx) = self.lookup(key, false) else {
            return Delta::NotFound;
        };
        let it = &self.items[idx as usize];
        if it.value().is_empty() {
            return Delta::NonNumeric;
        }
        if req_cas != 0 && it.cas != req_cas {
            return Delta::CasMismatch;
        }
        let Some(value) = crate::util::value_as_u64(it.value()) else {
            return Delta::NonNumeric;
        };
        let nv = if incr {
            value.wrapping_add(delta)
        } else {
            value.saturating_sub(delta)
        };
        let cur_len = it.value().len();
        let (flags, exptime) = (it.flags, it.exptime);
        if incr {
            self.stats.incr_hits += 1;
        } else {
            self.stats.decr_hits += 1;
        }
        let mut buf = Vec::with_capacity(20);
        crate::util::push_u64(&mut buf, nv);
        let cas_now = it.cas;
        let pinned = self.pinned.iter().any(|&(i, c)| i == idx && c == cas_now);
        if buf.len() <= cur_len && !pinned {
            // in place, padded with spaces, new CAS
            let cas = self.next_cas();
            let now = self.now;
            let it = &mut self.items[idx as usize];
            let k = it.klen as usize;
            let v = &mut it.data[k..];
            v[..buf.len()].copy_from_slice(&buf);
            for b in &mut v[buf.len()..] {
                *b = b' ';
            }
            it.cas = cas;
            it.time = now;
            self.touch_lru(idx);
            *item = Some(idx);
            self.last_delta_in_place = true;
        } else {
            self.unlink(idx);
            // a fresh item, as in memcached: the binary-key mark is not carried over
            let i = self.link(key, &[&buf], flags, exptime, 0, None);
            *item = Some(i);
            self.last_delta_in_place = false;
        }
        Delta::Ok(nv)
    }

    /// flush_all: delay <= 0 flushes now.
    pub fn flush_all(&mut self, delay: i64) {
        // memcached (with CAS): oldest_live = new_oldest - 1, where new_oldest is now or the
        // delayed time; when that is already reached, oldest_cas = get_cas_id() flushes every
        // existing item (a CAS id is consumed). Items whose last-update second is <= oldest_live
        // stay invisible, which for `flush_all 1` includes items stored later in this second.
        let new_oldest = if delay > 0 {
            self.realtime(delay)
        } else {
            self.now
        };
        self.oldest_live = new_oldest.saturating_sub(1);
        if self.oldest_live <= self.now {
            self.next_cas();
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.items = Vec::new();
        self.table = HashTable::new();
        self.free = NIL;
        self.head = NIL;
        self.tail = NIL;
        self.mem_used = 0;
        self.curr_items = 0;
    }

    /// Iterate live items (for stats items/slabs).
    pub fn for_each_item(&self, mut f: impl FnMut(&Item)) {
        for it in &self.items {
            if !it.is_free() {
                f(it)
            }
        }
    }

    /// Background reclaim of expired/flushed items (memcached's LRU crawler): look at up to
    /// `budget` slots from a rotating cursor. Returns how many items were reclaimed.
    pub fn crawl(&mut self, budget: usize) -> usize {
        let mut reclaimed = 0;
        let len = self.items.len();
        if len == 0 {
            return 0;
        }
        for _ in 0..budget.min(len) {
            if self.crawl_cursor >= self.items.len() {
                self.crawl_cursor = 0;
            }
            let idx = self.crawl_cursor as u32;
            self.crawl_cursor += 1;
            let it = &self.items[idx as usize];
            if it.is_free() {
                continue;
            }
            if self.is_expired(it) || self.is_flushed(it) {
                if it.iflags & F_FETCHED == 0 {
                    self.stats.expired_unfetched += 1;
                }
                self.stats.crawler_reclaimed += 1;
                self.stats.reclaimed += 1;
                self.unlink(idx);
                reclaimed += 1;
                if self.items.is_empty() {
                    break;
                }
            }
        }
        reclaimed
    }

    pub fn table_capacity(&self) -> usize {
        self.table.capacity()
    }
}

pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(limit: u64, evict: bool) -> Store {
        Store::new(Arc::new(Settings {
            memory_limit: AtomicU64::new(limit),
            max_item_size: AtomicU64::new(1024 * 1024),
            evict: AtomicBool::new(evict),
        }))
    }

    #[test]
    fn lru_eviction_counts() {
        let mut s = store(10_000, true);
        for i in 0..200u32 {
            let k = format!("key{i}");
            s.alloc(k.len(), 0, 100).unwrap();
            s.store(Comm::Set, k.as_bytes(), 0, 0, &[b'x'; 100], 0, false, false);
            // keep key0 hot
            if let Some(i0) = s.lookup(b"key0", false) {
                s.bump(i0);
            }
        }
        assert!(s.mem_used <= 10_000);
        assert!(s.stats.evictions > 100);
        assert!(s.lookup(b"key0", false).is_some());
        assert!(s.lookup(b"key1", false).is_none());
    }

    #[test]
    fn no_evict_mode() {
        let mut s = store(1000, false);
        let mut failed = false;
        for i in 0..20u32 {
            let k = format!("key{i}");
            match s.alloc(k.len(), 0, 100) {
                Ok(()) => {
                    s.store(Comm::Set, k.as_bytes(), 0, 0, &[b'x'; 100], 0, false, false);
                }
                Err(e) => {
                    assert_eq!(e, AllocError::NoMemory);
                    failed = true;
                }
            }
        }
        assert!(failed);
        assert_eq!(s.stats.evictions, 0);
    }

    #[test]
    fn slab_classes() {
        assert_eq!(slab_class(61).0, 1);
        assert_eq!(slab_class(97), (2, 120));
    }
}
