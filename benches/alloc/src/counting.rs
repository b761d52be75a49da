//! A global allocator that counts: every allocation, zeroed allocation and reallocation
//! is tallied (calls and bytes requested) before being passed to the system allocator.
//!
//! Counters are process-wide atomics with relaxed ordering: the benchmark runs on one
//! thread (a current-thread tokio runtime), so a [`Snapshot`] taken before and after a call
//! sees exactly the allocations made in between, and nothing else runs concurrently to
//! add noise. Frees are counted too, for information.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocation calls so far: `alloc`, `alloc_zeroed` and `realloc`.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes requested so far; a `realloc` counts its whole new size, as if it allocated a new
/// block and copied (which is what it does whenever it cannot grow in place).
static BYTES: AtomicU64 = AtomicU64::new(0);
/// `dealloc` calls so far.
static FREES: AtomicU64 = AtomicU64::new(0);

/// Wraps [`System`], counting as it goes. Install with `#[global_allocator]`.
pub struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only extra work is relaxed atomic additions, which neither
// allocate nor unwind, so the wrapper inherits `System`'s guarantees.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed through unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: `ptr` and `layout` come from this allocator (hence from `System`) and
        // the caller's contract for `realloc` is passed through unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout`, per the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn record(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

/// The counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Allocation calls (`alloc`, `alloc_zeroed`, `realloc`).
    pub allocations: u64,
    /// Bytes requested by those calls.
    pub bytes: u64,
    /// `dealloc` calls.
    pub frees: u64,
}

impl Snapshot {
    /// Reads the counters (without allocating).
    pub fn now() -> Self {
        Snapshot {
            allocations: ALLOCATIONS.load(Ordering::Relaxed),
            bytes: BYTES.load(Ordering::Relaxed),
            frees: FREES.load(Ordering::Relaxed),
        }
    }

    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Snapshot) -> Snapshot {
        Snapshot {
            allocations: self.allocations - earlier.allocations,
            bytes: self.bytes - earlier.bytes,
            frees: self.frees - earlier.frees,
        }
    }

    /// Adds another interval's counts.
    pub fn add(&mut self, other: Snapshot) {
        self.allocations += other.allocations;
        self.bytes += other.bytes;
        self.frees += other.frees;
    }
}
