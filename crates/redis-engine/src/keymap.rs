//! The keyspace's hash map: a dense `Vec` of (key, value) slots indexed by a swiss table
//! of `u32` positions. Dense slots give O(1) random sampling (eviction, RANDOMKEY,
//! active expiry) and stable cursor iteration (SCAN); keys up to 22 bytes are stored
//! inline. About 56 + 5·(8/7) bytes per entry plus the value's own allocation.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::db::Hasher;

/// A key: inline up to 22 bytes, else boxed.
pub type Key = crate::small::SmallBytes;

struct Slot<V> {
    key: Key,
    val: V,
}

pub struct KeyMap<V> {
    table: HashTable<u32>,
    entries: Vec<Slot<V>>,
    hasher: Hasher,
    /// Snapshot partition (see [`KeyMap::start_tracking`]): `Some(n)` while a fork-less
    /// snapshot iterates this map; slots `[0, n)` are "visited" (serialized, or created after
    /// the snapshot began), slots `[n, len)` still hold their point-in-time values.
    visited: Option<usize>,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            table: HashTable::new(),
            entries: Vec::new(),
            hasher: Hasher::default(),
            visited: None,
        }
    }
}

impl<V> KeyMap<V> {
    #[inline]
    fn hash(&self, k: &[u8]) -> u64 {
        self.hasher.hash_one(k)
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    #[inline]
    pub fn get_index_of(&self, k: &[u8]) -> Option<usize> {
        let h = self.hash(k);
        let entries = &self.entries;
        self.table
            .find(h, |&i| &*entries[i as usize].key == k)
            .map(|&i| i as usize)
    }
    #[inline]
    pub fn contains_key(&self, k: &[u8]) -> bool {
        self.get_index_of(k).is_some()
    }
    #[inline]
    pub fn get(&self, k: &[u8]) -> Option<&V> {
        self.get_index_of(k).map(|i| &self.entries[i].val)
    }
    #[inline]
    pub fn get_mut(&mut self, k: &[u8]) -> Option<&mut V> {
        let i = self.get_index_of(k)?;
        Some(&mut self.entries[i].val)
    }
    pub fn get_key_value(&self, k: &[u8]) -> Option<(&Key, &V)> {
        self.get_index_of(k)
            .map(|i| (&self.entries[i].key, &self.entries[i].val))
    }
    pub fn get_index(&self, i: usize) -> Option<(&Key, &V)> {
        self.entries.get(i).map(|s| (&s.key, &s.val))
    }
    pub fn get_index_mut(&mut self, i: usize) -> Option<&mut V> {
        self.entries.get_mut(i).map(|s| &mut s.val)
    }
    /// Insert or replace; returns the slot index and the old value.
    pub fn insert_full(&mut self, k: &[u8], v: V) -> (usize, Option<V>) {
        let h = self.hash(k);
        let KeyMap {
            table,
            entries,
            hasher,
            ..
        } = self;
        if let Some(&i) = table.find(h, |&i| &*entries[i as usize].key == k) {
            let old = std::mem::replace(&mut entries[i as usize].val, v);
            return (i as usize, Some(old));
        }
        let i = entries.len();
        entries.push(Slot {
            key: Key::new(k),
            val: v,
        });
        let entries_ref = &*entries;
        table.insert_unique(h, i as u32, |&j| {
            hasher.hash_one(&*entries_ref[j as usize].key)
        });
        // A key created during a snapshot is not part of it: it joins the visited side.
        if let Some(n) = self.visited {
            self.swap_slots(i, n);
            self.visited = Some(n + 1);
            return (n, None);
        }
        (i, None)
    }

    /// Exchange two slots, keeping the index table in step.
    fn swap_slots(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        let ha = self.hash(&self.entries[a].key);
        let hb = self.hash(&self.entries[b].key);
        if let Some(s) = self.table.find_mut(ha, |&j| j as usize == a) {
            *s = u32::MAX;
        }
        if let Some(s) = self.table.find_mut(hb, |&j| j as usize == b) {
            *s = a as u32;
        }
        if let Some(s) = self.table.find_mut(ha, |&j| j == u32::MAX) {
            *s = b as u32;
        }
        self.entries.swap(a, b);
    }

    /// Begin a snapshot partition: every present slot is unvisited.
    pub fn start_tracking(&mut self) {
        self.visited = Some(0);
    }

    pub fn stop_tracking(&mut self) {
        self.visited = None;
    }

    /// The first unvisited slot, while tracking.
    pub fn visited(&self) -> Option<usize> {
        self.visited
    }

    /// Move unvisited slot `i` to the visited side; returns false if it was visited already
    /// (or no snapshot is tracking this map).
    pub fn mark_visited(&mut self, i: usize) -> bool {
        match self.visited {
            Some(n) if i >= n && i < self.entries.len() => {
                self.swap_slots(i, n);
                self.visited = Some(n + 1);
                true
            }
            _ => false,
        }
    }
    pub fn insert(&mut self, k: &[u8], v: V) -> Option<V> {
        self.insert_full(k, v).1
    }
    /// Remove the slot at `i`, moving the last slot into its place.
    pub fn swap_remove_index(&mut self, mut i: usize) -> Option<(Key, V)> {
        if i >= self.entries.len() {
            return None;
        }
        // During a snapshot the last slot (unvisited) must not land on the visited side:
        // move the removed slot to the visited side's end first, and shrink that side.
        if let Some(n) = self.visited {
            if i < n {
                self.swap_slots(i, n - 1);
                self.visited = Some(n - 1);
                i = n - 1;
            }
        }
        let h = self.hash(&self.entries[i].key);
        match self.table.find_entry(h, |&j| j as usize == i) {
            Ok(e) => {
                e.remove();
            }
            Err(_) => return None,
        }
        let last = self.entries.len() - 1;
        if i != last {
            let hl = self.hash(&self.entries[last].key);
            if let Some(slot) = self.table.find_mut(hl, |&j| j as usize == last) {
                *slot = i as u32;
            }
        }
        let s = self.entries.swap_remove(i);
        Some((s.key, s.val))
    }
    pub fn swap_remove(&mut self, k: &[u8]) -> Option<V> {
        let i = self.get_index_of(k)?;
        self.swap_remove_index(i).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.entries.iter().map(|s| (&s.key, &s.val))
    }
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.entries.iter().map(|s| &s.key)
    }
}

impl<V> std::ops::Index<usize> for KeyMap<V> {
    type Output = V;
    fn index(&self, i: usize) -> &V {
        &self.entries[i].val
    }
}

impl<V> std::ops::IndexMut<usize> for KeyMap<V> {
    fn index_mut(&mut self, i: usize) -> &mut V {
        &mut self.entries[i].val
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }

    proptest! {
        #[test]
        fn behaves_like_a_hashmap(ops in proptest::collection::vec((0u8..3, 0u16..64, any::<u32>()), 0..400)) {
            let mut m: KeyMap<u32> = KeyMap::default();
            let mut r: std::collections::HashMap<Vec<u8>, u32> = Default::default();
            for (op, k, v) in ops {
                let key = if k % 7 == 0 { format!("a-long-key-over-22-bytes-{k}") } else { format!("k{k}") }.into_bytes();
                match op {
                    0 => prop_assert_eq!(m.insert(&key, v), r.insert(key.clone(), v)),
                    1 => prop_assert_eq!(m.swap_remove(&key), r.remove(&key)),
                    _ => prop_assert_eq!(m.get(&key), r.get(&key)),
                }
                prop_assert_eq!(m.len(), r.len());
            }
            for (k, v) in m.iter() {
                prop_assert_eq!(r.get(&k[..]), Some(v));
            }
        }

        /// The snapshot partition: slots past `visited` are exactly the keys present when
        /// tracking began that were neither removed nor marked since, whatever the
        /// inserts/removals/marks in between; lookups stay correct throughout.
        #[test]
        fn tracking_keeps_the_partition(
            before in proptest::collection::vec(0u16..64, 0..64),
            ops in proptest::collection::vec((0u8..4, 0u16..96), 0..300),
        ) {
            let key = |k: u16| if k.is_multiple_of(5) { format!("a-long-key-over-22-bytes-{k}") } else { format!("k{k}") }.into_bytes();
            let mut m: KeyMap<u16> = KeyMap::default();
            for k in before {
                m.insert(&key(k), k);
            }
            m.start_tracking();
            let mut unvisited: std::collections::HashSet<Vec<u8>> = m.keys().map(|k| k.to_vec()).collect();
            for (op, k) in ops {
                let kb = key(k);
                match op {
                    0 => { m.insert(&kb, k); }
                    1 => { m.swap_remove(&kb); unvisited.remove(&kb); }
                    2 => {
                        if let Some(i) = m.get_index_of(&kb) {
                            let was = unvisited.remove(&kb);
                            prop_assert_eq!(m.mark_visited(i), was);
                        }
                    }
                    _ => {
                        // The snapshot cursor: serialize the next unvisited slot.
                        let n = m.visited().unwrap_or(0);
                        if let Some((k, _)) = m.get_index(n) {
                            let k = k.to_vec();
                            prop_assert!(m.mark_visited(n));
                            unvisited.remove(&k);
                        }
                    }
                }
                let n = m.visited().unwrap_or(0);
                let tail: std::collections::HashSet<Vec<u8>> = (n..m.len()).filter_map(|i| m.get_index(i).map(|(k, _)| k.to_vec())).collect();
                prop_assert_eq!(&tail, &unvisited);
                for i in 0..m.len() {
                    let (k, v) = m.get_index(i).unwrap();
                    let k = k.to_vec();
                    prop_assert_eq!(m.get_index_of(&k), Some(i));
                    prop_assert_eq!(m.get(&k), Some(v));
                }
            }
        }
    }
}
