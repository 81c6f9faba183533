//! A value per thread slot (`thread_slot`), each created by its slot's first use and
//! kept until the owner is dropped: a policy's metrics shards, a per-key limiter's
//! rejection tallies.
//!
//! A table of null pointers costs its owner 65 words until threads use it; the first use
//! of a slot allocates that slot's value and publishes it with a compare-exchange, and
//! every later use finds it with one load. The owner of slot `i` is the only writer of
//! value `i` ([`Writer::Owner`]); threads without a slot share one more value
//! ([`Writer::Shared`]), whose racing creators agree on one.
//!
//! # Why `unsafe`
//!
//! A published value is reached through an `AtomicPtr` of the `src/sync.rs` shim, so
//! loom checks its publication (`published`, `get_or_publish`).
//! `once_cell::race::OnceBox` does the same safely, but with atomics loom cannot see.
//! The two `unsafe` uses (dereferencing a published pointer, and freeing a box never
//! published or at drop) state their conditions below.

use super::thread_slot::{Writer, SLOTS};
use crate::sync::{AtomicPtr, Ordering};
use crossbeam_utils::CachePadded;

/// Index of the value of threads without a slot.
const SHARED: usize = SLOTS;
/// Entries of a [`SlotTable`]: one per slot and the shared one.
const TABLE_LEN: usize = SLOTS + 1;

/// What `entry` points to, if published (by [`get_or_publish`]).
#[inline]
pub(crate) fn published<T>(entry: &AtomicPtr<T>) -> Option<&T> {
    // Acquire: pairs with the Release of the compare-exchange that published the value,
    // so it is seen initialized before any load of it.
    let ptr = entry.load(Ordering::Acquire);
    // SAFETY: `ptr` is null or came from `Box::into_raw` in `get_or_publish` and was
    // published by a compare-exchange (Release, acquired above, so the box is fully
    // written). Published pointers are never replaced or freed before `free_published`,
    // which takes `&mut` of the entry's owner, so the value lives at least as long as
    // this borrow. Only shared references to it exist (its fields are atomics).
    unsafe { ptr.as_ref() }
}

/// What `entry` points to, publishing `make()` there first if nothing is yet. Racing
/// creators: one wins the compare-exchange, the others free theirs and use the winner's.
#[cold]
pub(crate) fn get_or_publish<T>(entry: &AtomicPtr<T>, make: impl FnOnce() -> T) -> &T {
    if let Some(value) = published(entry) {
        return value;
    }
    let fresh = Box::into_raw(Box::new(make()));
    // Release on success: publishes the initialized value to every Acquire load of the
    // entry. Acquire on failure: another thread published first, and its value must be
    // visible before we use it.
    let ptr = match entry.compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::Release,
        Ordering::Acquire,
    ) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: `fresh` came from `Box::into_raw` just above and was never
            // published, so this is its only owner.
            drop(unsafe { Box::from_raw(fresh) });
            winner
        }
    };
    // SAFETY: `ptr` is now the entry's published pointer (ours, or the winner's, which
    // the failed compare-exchange acquired): non-null, from `Box::into_raw`, and never
    // freed before `free_published` (`&mut`), so it outlives this borrow.
    unsafe { &*ptr }
}

/// Frees what `entry` points to, if anything (its owner being dropped).
pub(crate) fn free_published<T>(entry: &mut AtomicPtr<T>) {
    // Acquire: with `&mut` nothing races; any ordering would do.
    let ptr = entry.swap(std::ptr::null_mut(), Ordering::Acquire);
    if !ptr.is_null() {
        // SAFETY: a non-null entry holds a pointer from `Box::into_raw` in
        // `get_or_publish`; swapping null in makes this the only owner, and no borrow of
        // the value outlives the `&mut`.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// A value per thread slot and one shared, each created on first use.
pub(crate) struct SlotTable<T> {
    /// Null until the slot's first use; then a pointer from `Box::into_raw`, never
    /// changed again until the table is dropped.
    entries: [AtomicPtr<CachePadded<T>>; TABLE_LEN],
}

impl<T> SlotTable<T> {
    pub(crate) fn new() -> Self {
        Self {
            entries: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
        }
    }

    /// The value of slot `slot`, if the slot owns one here (the fast path): one
    /// comparison (`SLOTS < TABLE_LEN`, so the index needs no second check), one load.
    #[inline(always)]
    pub(crate) fn owned(&self, slot: usize) -> Option<&T> {
        if slot < SLOTS {
            Self::published(&self.entries[slot])
        } else {
            None
        }
    }

    /// The value an entry points to, if published.
    #[inline]
    fn published(entry: &AtomicPtr<CachePadded<T>>) -> Option<&T> {
        published(entry).map(|padded| &**padded)
    }

    /// The value of `slot` (the shared one for any `slot ≥ SLOTS`) and how to write it,
    /// creating it with `make` on the slot's first use.
    #[cold]
    pub(crate) fn get_or_create_with(&self, slot: usize, make: impl FnOnce() -> T) -> (&T, Writer) {
        let (index, writer) = if slot < SLOTS {
            (slot, Writer::Owner)
        } else {
            (SHARED, Writer::Shared)
        };
        // Only the shared entry can have racing creators: a slot's has one writer at a
        // time.
        let value = get_or_publish(&self.entries[index], || CachePadded::new(make()));
        (value, writer)
    }

    /// The value of threads without a slot, if one of them created it.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn shared(&self) -> Option<&T> {
        Self::published(&self.entries[SHARED])
    }

    /// Every published value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + Clone {
        self.entries.iter().filter_map(Self::published)
    }
}

impl<T: Default> SlotTable<T> {
    /// [`get_or_create_with`](Self::get_or_create_with) a default value.
    #[cold]
    pub(crate) fn get_or_create(&self, slot: usize) -> (&T, Writer) {
        self.get_or_create_with(slot, T::default)
    }
}

impl<T> Drop for SlotTable<T> {
    fn drop(&mut self) {
        for entry in &mut self.entries {
            free_published(entry);
        }
    }
}
