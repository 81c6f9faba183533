//! Which shard of a [`PolicyMetrics`](super::PolicyMetrics) the current thread writes,
//! and how it writes it.
//!
//! # Why
//!
//! An uncontended lock-prefixed read-modify-write (`lock xadd`) costs about 5 ns on the
//! machines we measure; a call records three or four counters, so atomic adds alone would
//! triple the cost of a cheap policy. A counter that only one thread ever writes needs no
//! read-modify-write: a plain load and a plain store are exact, cost well under a
//! nanosecond, and never move the cache line between cores.
//!
//! # How
//!
//! Each thread claims a *slot* (`0..SLOTS`, 64 on every machine) from a process-wide
//! bitmap the first time it records, and keeps it in a thread-local until it exits; a
//! thread-local destructor gives it back. A `PolicyMetrics` has room for one shard per
//! slot, created by the slot's first record on that policy (`shard.rs`), so the owner
//! of slot `i` is the only writer of shard `i` of every policy ([`Writer::Owner`]).
//! Threads that find every slot taken, and code running after its thread's slot was
//! given back (other thread-local destructors), write a shared shard with atomic adds
//! ([`Writer::Shared`]): correct, only slower.
//!
//! The slot count does not depend on the machine: a slot costs a policy nothing until
//! a thread in it records there, so there is no reason to have fewer slots on a small
//! machine (a thread pool larger than the core count still gets a slot per thread) or
//! more on a large one (the bitmap is one word).
//!
//! The bitmap hands a slot from a dying thread to the next with Release (give back) and
//! Acquire (claim), so the next owner finds the shards the previous one created, and its
//! first load of a counter sees the last store of the previous owner: it continues the
//! count.
//!
//! # Limits
//!
//! - A thread's first record registers the thread-exit hook with the C library, which
//!   allocates a few bytes for it (once per thread, freed at exit). Every later record
//!   allocates nothing.
//! - Recording from a signal handler that interrupted the same thread mid-record can lose
//!   that one update (the load and store of the owner are not one instruction). The
//!   library is not async-signal-safe anyway: it takes no locks but it reads clocks and
//!   calls listeners.
//! - After `fork()` in a multi-threaded process the child inherits slots claimed by
//!   threads that do not exist in it; those slots are never given back, so fewer threads
//!   of the child get one. Counts stay exact.

use crate::sync::{AtomicU64, Ordering};
use std::cell::Cell;

/// The slots a process hands out, on every machine: the bitmap is one `u64`.
#[cfg(not(loom))]
pub(crate) const SLOTS: usize = 64;
/// Under loom one slot: the first thread of a model to record owns it, the others share,
/// so the models cover both writers and a permit moving between them.
#[cfg(loom)]
pub(crate) const SLOTS: usize = 1;
/// The thread has not asked for a slot yet.
const UNCLAIMED: usize = usize::MAX;
/// The thread writes the shared shard: it found no free slot, or already gave its slot
/// back (it is exiting). Any value `≥ SLOTS` means the same.
const NO_SLOT: usize = usize::MAX - 1;
// `peek` relies on it: an unclaimed thread is no slot's owner (`UNCLAIMED` is larger).
const _: () = assert!(NO_SLOT >= SLOTS);

/// Which slots are taken: bit `i` set means slot `i` has an owner.
struct SlotMap(AtomicU64);

impl SlotMap {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Takes the lowest free slot below `limit` (at most 64), if any.
    fn claim(&self, limit: usize) -> Option<usize> {
        // Relaxed: only a guess for the first compare-exchange, which re-reads on failure.
        let mut claimed = self.0.load(Ordering::Relaxed);
        loop {
            let free = !claimed & low_bits(limit);
            if free == 0 {
                return None;
            }
            let slot = free.trailing_zeros() as usize;
            // Acquire on success: pairs with the Release of the previous owner's
            // `give_back`. Relaxed on failure: the loop only retries.
            match self.0.compare_exchange_weak(
                claimed,
                claimed | (1u64 << slot),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(slot),
                Err(now) => claimed = now,
            }
        }
    }

    /// Frees `slot` (ignored if `≥ 64`).
    fn give_back(&self, slot: usize) {
        if slot < 64 {
            // Release: the next thread to claim this slot (Acquire in `claim`) must see
            // every store this thread made to the slot's shards, or its first
            // load-and-store would overwrite them with an older count (the shards' own
            // publication is Release/Acquire too, so it finds them either way).
            self.0.fetch_and(!(1u64 << slot), Ordering::Release);
        }
    }
}

crate::sync::lazy_static! {
    static ref CLAIMED: SlotMap = const { SlotMap::new() };
}

crate::sync::thread_locals! {
    // No destructor, so reading it is a plain thread-local load with no registration
    // check: this is the hot path.
    static SLOT: Cell<usize> = const { Cell::new(UNCLAIMED) };
    // Registered only when a slot is claimed; gives the slot back at thread exit.
    static GIVE_BACK: SlotGuard = const { SlotGuard(Cell::new(NO_SLOT)) };
}

/// Gives the thread's slot (the one it holds, if any) back when the thread exits.
struct SlotGuard(Cell<usize>);

impl SlotGuard {
    /// Stops using the slot and gives it back.
    fn release(&self) {
        // First stop using the slot: thread-local destructors that run after this one
        // and record (`SLOT` has no destructor, so it stays readable) must write the
        // shared shard, since the slot may have a new owner by then.
        let _ = SLOT.try_with(|s| s.set(NO_SLOT));
        CLAIMED.give_back(self.0.replace(NO_SLOT));
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        // loom cannot run atomic operations in thread-local destructors (they run after
        // the thread left the model); its models call `exit_current_thread` instead.
        #[cfg(not(loom))]
        self.release();
    }
}

/// What the thread-exit destructor does, for loom models to call at the end of a thread.
#[cfg(loom)]
pub(crate) fn exit_current_thread() {
    GIVE_BACK.with(SlotGuard::release);
}

/// How the current thread writes a shard's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writer {
    /// The thread owns the shard: no other thread writes it.
    Owner,
    /// Other threads may write the shard at the same time.
    Shared,
}

impl Writer {
    /// Adds `n` to `counter` (wrapping); the store (or the read-modify-write) uses `order`.
    #[inline(always)]
    pub(crate) fn add(self, counter: &AtomicU64, n: u64, order: Ordering) {
        match self {
            // Relaxed load: only this thread stores to the counter, so the load returns
            // its own last store (or, for a new owner, the previous owner's last store,
            // made visible by the slot hand-over).
            Writer::Owner => counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), order),
            Writer::Shared => {
                counter.fetch_add(n, order);
            }
        }
    }
}

/// The current thread's slot as last set, without claiming one: `< SLOTS` if it owns
/// one; anything larger if it writes the shared shard or has not asked yet (then
/// [`current`] claims). The hot path: one thread-local load, and the caller's one
/// comparison with `SLOTS` covers every case but the owner's.
#[inline(always)]
pub(crate) fn peek() -> usize {
    SLOT.with(Cell::get)
}

/// The current thread's slot: `< SLOTS` if it owns one, anything larger if it writes
/// the shared shard.
#[inline]
pub(crate) fn current() -> usize {
    let slot = SLOT.with(Cell::get);
    if slot != UNCLAIMED {
        return slot;
    }
    claim()
}

/// First record of this thread: take the lowest free slot, or settle for the shared shard.
#[cold]
#[inline(never)]
fn claim() -> usize {
    // Register the guard first. If the thread is already tearing down its thread-locals
    // this fails, and the thread must not take a slot it could never give back.
    let slot = GIVE_BACK
        .try_with(|guard| {
            let slot = CLAIMED.claim(SLOTS).unwrap_or(NO_SLOT);
            guard.0.set(slot);
            slot
        })
        .unwrap_or(NO_SLOT);
    SLOT.with(|s| s.set(slot));
    slot
}

/// A mask of the lowest `n` bits (`n ≤ 64`).
fn low_bits(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_slot() {
        let (first, again) = std::thread::spawn(|| (current(), current()))
            .join()
            .unwrap();
        assert_eq!(first, again);
        assert_ne!(first, UNCLAIMED);
    }

    #[test]
    fn slots_are_taken_lowest_first_and_given_back() {
        let map = SlotMap::new();
        assert_eq!(
            [map.claim(3), map.claim(3), map.claim(3), map.claim(3)],
            [Some(0), Some(1), Some(2), None]
        );
        map.give_back(1);
        map.give_back(200); // not a slot: ignored
        assert_eq!(map.claim(3), Some(1));
        assert_eq!(map.claim(3), None);
        assert_eq!(map.claim(4), Some(3));
        let all = SlotMap::new();
        assert!((0..64).all(|i| all.claim(64) == Some(i)));
        assert_eq!(all.claim(64), None);
    }

    #[test]
    fn owner_and_shared_writers_add_the_same() {
        let c = AtomicU64::new(u64::MAX);
        Writer::Owner.add(&c, 2, Ordering::Release);
        assert_eq!(c.load(Ordering::Relaxed), 1);
        Writer::Shared.add(&c, 5, Ordering::Release);
        assert_eq!(c.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn low_bits_covers_the_whole_word() {
        assert_eq!(low_bits(0), 0);
        assert_eq!(low_bits(4), 0b1111);
        assert_eq!(low_bits(64), u64::MAX);
    }
}
