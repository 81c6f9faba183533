//! Where a policy's state block lives: on the heap (one process) or in a mapped
//! host-wide segment (every process that attached it).

use std::ptr::NonNull;

use super::segment::Segment;
use crate::sync::Arc;

/// A state block of type `T`, on the heap or inside a [`Segment`].
///
/// Reading it is one pointer dereference either way, so the hot path does not branch
/// on where the state lives. `T` must be a pointer-free `#[repr(C)]` block of atomics
/// whose all-zero bytes are its initial state (a fresh segment is zero-filled).
pub(crate) struct Place<T> {
    ptr: NonNull<T>,
    /// Keeps the mapping alive; `None` = `ptr` came from `Box::into_raw`.
    segment: Option<Arc<Segment>>,
}

// SAFETY: a `Place<T>` hands out only `&T`, so it is as shareable as `&T` is: `T: Sync`
// for sending or sharing it. The mapping it may point into is kept alive by the `Arc`.
unsafe impl<T: Sync + Send> Send for Place<T> {}
// SAFETY: see `Send`: only shared references to `T` are ever produced.
unsafe impl<T: Sync + Send> Sync for Place<T> {}

impl<T> Place<T> {
    /// `value` on the heap.
    pub(crate) fn local(value: T) -> Self {
        Self {
            ptr: NonNull::from(Box::leak(Box::new(value))),
            segment: None,
        }
    }

    /// The block at `offset` in `segment`.
    ///
    /// # Safety
    ///
    /// `offset .. offset + size_of::<T>()` must lie inside the segment's mapping, be
    /// aligned for `T`, and hold a `T` for which every bit pattern is valid (atomics
    /// only): other processes write it at any time.
    pub(crate) unsafe fn mapped(segment: &Arc<Segment>, offset: usize) -> Self {
        // SAFETY: the caller guarantees the range is inside the mapping; the base is
        // non-null because the mapping is.
        let ptr = unsafe { NonNull::new_unchecked(segment.base().add(offset).cast::<T>()) };
        Self {
            ptr,
            segment: Some(segment.clone()),
        }
    }

    /// Whether this block is shared through a segment.
    #[allow(dead_code)]
    pub(crate) fn is_mapped(&self) -> bool {
        self.segment.is_some()
    }
}

impl<T> std::ops::Deref for Place<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: `ptr` is either our own leaked box (freed only in `drop`) or a block in
        // a mapping that `segment` keeps mapped for as long as `self` lives (the
        // constructor's contract); only shared references are made, and `T` is made of
        // atomics, so other threads and processes writing it concurrently is fine.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for Place<T> {
    fn drop(&mut self) {
        if self.segment.is_some() {
            return;
        }
        // SAFETY: without a segment, `ptr` came from `Box::leak` in `local` and no
        // reference derived from it outlives `self` (they borrow `self`).
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}
