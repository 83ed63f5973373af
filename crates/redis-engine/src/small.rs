//! Byte strings stored inline up to 22 bytes, else boxed: keys and string values.
//!
//! Most keys and many values (counters, flags, short tokens) are short. Keeping them inside
//! the keyspace slot saves an allocation per write and, on reads, the cache miss of
//! following a pointer — the single largest cost of an unpipelined GET after the syscalls.
//! The type is 24 bytes, the same as the `Box<[u8]>` plus tag it replaces.

use std::ops::{Deref, DerefMut};

/// Longest byte string stored inline.
pub const INLINE: usize = 22;

#[derive(Clone)]
pub enum SmallBytes {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

impl SmallBytes {
    #[inline]
    pub fn new(b: &[u8]) -> SmallBytes {
        if b.len() <= INLINE {
            let mut d = [0u8; INLINE];
            d[..b.len()].copy_from_slice(b);
            SmallBytes::Inline(b.len() as u8, d)
        } else {
            SmallBytes::Heap(b.into())
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        match self {
            SmallBytes::Inline(n, d) => d[..n as usize].to_vec(),
            SmallBytes::Heap(b) => b.into_vec(),
        }
    }

    /// Bytes on the heap beyond the inline representation (memory accounting).
    pub fn heap_len(&self) -> usize {
        match self {
            SmallBytes::Inline(..) => 0,
            SmallBytes::Heap(b) => b.len(),
        }
    }
}

impl Default for SmallBytes {
    fn default() -> Self {
        SmallBytes::Inline(0, [0; INLINE])
    }
}

impl Deref for SmallBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            SmallBytes::Inline(n, d) => &d[..*n as usize],
            SmallBytes::Heap(b) => b,
        }
    }
}

impl DerefMut for SmallBytes {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            SmallBytes::Inline(n, d) => &mut d[..*n as usize],
            SmallBytes::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for SmallBytes {
    #[inline]
    fn from(b: &[u8]) -> Self {
        SmallBytes::new(b)
    }
}

impl From<Vec<u8>> for SmallBytes {
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE {
            SmallBytes::new(&v)
        } else {
            SmallBytes::Heap(v.into_boxed_slice())
        }
    }
}

impl From<Box<[u8]>> for SmallBytes {
    fn from(b: Box<[u8]>) -> Self {
        if b.len() <= INLINE {
            SmallBytes::new(&b)
        } else {
            SmallBytes::Heap(b)
        }
    }
}

// Hash, equality and order are those of the bytes, so maps keyed by `SmallBytes` can be
// queried with `&[u8]` (`Borrow`).
impl std::hash::Hash for SmallBytes {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl PartialEq for SmallBytes {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SmallBytes {}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::borrow::Borrow<[u8]> for SmallBytes {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl AsRef<[u8]> for SmallBytes {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<&Vec<u8>> for SmallBytes {
    fn from(v: &Vec<u8>) -> Self {
        SmallBytes::new(v)
    }
}

impl<const N: usize> From<&[u8; N]> for SmallBytes {
    fn from(v: &[u8; N]) -> Self {
        SmallBytes::new(v)
    }
}

impl From<&str> for SmallBytes {
    fn from(v: &str) -> Self {
        SmallBytes::new(v.as_bytes())
    }
}

impl From<String> for SmallBytes {
    fn from(v: String) -> Self {
        v.into_bytes().into()
    }
}

impl std::fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::SmallBytes;

    #[test]
    fn same_size_as_a_boxed_slice_with_tag() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
    }

    #[test]
    fn inline_and_heap_round_trip() {
        for len in [0usize, 1, 21, 22, 23, 100] {
            let v: Vec<u8> = (0..len as u8).collect();
            let s = SmallBytes::from(v.clone());
            assert_eq!(&*s, &v[..]);
            assert_eq!(matches!(s, SmallBytes::Inline(..)), len <= 22);
            assert_eq!(s.clone().into_vec(), v);
            assert_eq!(&*SmallBytes::from(v.clone().into_boxed_slice()), &v[..]);
        }
    }

    #[test]
    fn mutate_in_place() {
        let mut s = SmallBytes::from(&b"abc"[..]);
        s.copy_from_slice(b"xyz");
        assert_eq!(&*s, b"xyz");
        let mut v = std::mem::take(&mut s).into_vec();
        v.extend_from_slice(&[b'!'; 30]);
        s = v.into();
        assert_eq!(s.len(), 33);
        assert!(s.heap_len() == 33);
    }
}
