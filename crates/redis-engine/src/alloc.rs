//! Optional counting allocator: per-thread (= per-node) byte counts for `used_memory`
//! and `maxmemory`. A binary installs it with
//! `#[global_allocator] static A: redis_engine::CountingAlloc = redis_engine::CountingAlloc;`.
//! Without it, nodes fall back to an estimate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct CountingAlloc;

static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static USED: Cell<isize> = const { Cell::new(0) };
}

#[inline]
fn add(n: isize) {
    let _ = USED.try_with(|u| u.set(u.get() + n));
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

/// Bytes allocated (net) by the current thread, if the counting allocator is installed.
pub fn thread_used() -> Option<usize> {
    let v = USED.with(|u| u.get());
    if INSTALLED.load(Ordering::Relaxed) || v != 0 {
        Some(v.max(0) as usize)
    } else {
        None
    }
}
