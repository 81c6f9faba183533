//! Where a policy's state block lives: on the heap (one process) or in a mapped
//! host-wide segment (every process that attached it).

use std::marker::PhantomData;
use std::ptr::NonNull;

use super::segment::Segment;

/// Marks a pointer into a segment (state blocks are 8-aligned, so bit 0 is free).
const MAPPED: usize = 1;

/// A state block of type `T`, on the heap or inside a [`Segment`], in one word.
///
/// Reading it is one pointer dereference either way (and one `and`), so the hot path
/// does not branch on where the state lives, and a handle holding places stays as small
/// as with boxes. `T` must be a pointer-free `#[repr(C)]` block of atomics whose
/// all-zero bytes are its initial state (a fresh segment is zero-filled). A mapped place
/// does not keep its segment mapped: its owner holds the segment's `Arc` beside it.
pub(crate) struct Place<T> {
    /// The block's address, with [`MAPPED`] set for a block in a segment.
    tagged: NonNull<u8>,
    _block: PhantomData<T>,
}

// SAFETY: a `Place<T>` hands out only `&T`, so it is as shareable as `&T` is: `T: Sync`
// for sending or sharing it.
unsafe impl<T: Sync + Send> Send for Place<T> {}
// SAFETY: see `Send`: only shared references to `T` are ever produced.
unsafe impl<T: Sync + Send> Sync for Place<T> {}

impl<T> Place<T> {
    const ALIGNED: () = assert!(std::mem::align_of::<T>() > MAPPED);

    /// `value` on the heap.
    pub(crate) fn local(value: T) -> Self {
        let () = Self::ALIGNED;
        Self {
            tagged: NonNull::from(Box::leak(Box::new(value))).cast(),
            _block: PhantomData,
        }
    }

    /// The block at `offset` in `segment`.
    ///
    /// # Safety
    ///
    /// `offset .. offset + size_of::<T>()` must lie inside the segment's mapping, be
    /// aligned for `T`, and hold a `T` for which every bit pattern is valid (atomics
    /// only): other processes write it at any time. The caller keeps `segment` mapped
    /// (holds an `Arc` of it) for as long as the place lives.
    pub(crate) unsafe fn mapped(segment: &Segment, offset: usize) -> Self {
        let () = Self::ALIGNED;
        // SAFETY: the caller guarantees the range is inside the mapping; the address is
        // non-null because the mapping is, and stays so with bit 0 set.
        let tagged = unsafe {
            let at = segment.base().add(offset);
            NonNull::new_unchecked(at.map_addr(|a| a | MAPPED))
        };
        Self {
            tagged,
            _block: PhantomData,
        }
    }

    #[inline(always)]
    fn ptr(&self) -> *mut T {
        self.tagged.as_ptr().map_addr(|a| a & !MAPPED).cast()
    }

    /// Whether this block is shared through a segment.
    #[allow(dead_code)]
    pub(crate) fn is_mapped(&self) -> bool {
        self.tagged.as_ptr().addr() & MAPPED != 0
    }
}

impl<T> std::ops::Deref for Place<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the address is either our own leaked box (freed only in `drop`) or a
        // block in a mapping its owner keeps mapped for as long as `self` lives (the
        // constructor's contract); only shared references are made, and `T` is made of
        // atomics, so other threads and processes writing it concurrently is fine.
        unsafe { &*self.ptr() }
    }
}

impl<T> Drop for Place<T> {
    fn drop(&mut self) {
        if self.is_mapped() {
            return;
        }
        // SAFETY: an unmapped place came from `Box::leak` in `local`, and no reference
        // derived from it outlives `self` (they borrow `self`).
        drop(unsafe { Box::from_raw(self.ptr()) });
    }
}
