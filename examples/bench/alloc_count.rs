//! A counting global allocator: how many heap allocations a call costs, so `qps` can say what
//! the balanced channel allocates beyond a plain channel. Per-thread slots keep the counting
//! off a shared cache line (one uncontended atomic add per allocation).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The system allocator, counting allocations.
pub struct Counting;

const SLOTS: usize = 64;
static COUNTS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialised, no destructor: safe to touch from inside the allocator.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn count() {
    let slot = SLOT
        .try_with(|s| {
            let mut slot = s.get();
            if slot == usize::MAX {
                slot = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
                s.set(slot);
            }
            slot
        })
        .unwrap_or(0);
    COUNTS[slot].fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as given.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded as given.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (and reallocations) so far, all threads.
pub fn allocations() -> u64 {
    COUNTS.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}
