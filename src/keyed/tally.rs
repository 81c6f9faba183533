//! Rejections counted by the thread that made them, for the heavy-hitter sketch.
//!
//! # Why
//!
//! On a hot table most calls are refusals, and a refusal writes nothing of its key's
//! state: the table decides it from the bucket without taking its lock (`table`). Were
//! the rejection then counted in the key's slot, every refusal would still write the
//! bucket, and two threads refusing the same keys would pass its cache lines back and
//! forth on every call (measured: 0.6–0.7 of governor's time at 1 000 keys and 2
//! threads, against 0.3 with nothing written). So a refusal read without the lock is
//! counted here instead, in a table only its own thread writes.
//!
//! # How
//!
//! A tally is a set-associative array of words, `id | count` (the identity's low
//! bits, which are zero, hold the count): sets of [`WAYS`] words, one cache line
//! each, the set named by the identity's lowest bits. A rejection adds one to its key's word, or takes a free
//! word of the set; at [`BATCH`] the count goes to the sketch and the word is free again.
//! When the set has no word for it, the caller gives the one rejection to the sketch
//! directly. Counts wait here until they make a batch, however long: none is lost, and
//! [`KeyedLimiter::snapshot`](super::KeyedLimiter::snapshot) adds every tally's count
//! to the keys the sketch reports, as it adds what the table's slots still hold.
//!
//! Each thread slot (`metrics::thread_slot`) of a limiter gets its tally on its first
//! such refusal; only the slot's owner writes it (a load and a store, no
//! read-modify-write), and a snapshot reads it. Threads without a slot give each
//! rejection to the sketch directly. A tally has `4 × max_keys` words rounded up to a
//! power of two, between 64 and 4 096 (512 B to 32 KiB): with every key of a full
//! table refused at once, a set of 8 overflows for about one key in 8 000 (a
//! Poisson load of 2 per set) up to 1 000 keys; past 1 000 keys the tally stops
//! growing and holds the 4 096 keys refused most recently at most.
//!
//! The sketch is a lock shared by all threads: each visit moves its line between
//! cores, and with many keys rejected alike each visit also replaces a counter. At
//! 1 000 keys, 1 / 2 threads, batches of 15 (the slot's) cost 28.6 / 45 ns a call,
//! 32 cost 25.6 / 37, 64 cost 24.9 / 32.5 and 256 cost 23.9 / 30.5. Batches of 64
//! keep the sketch close to the truth: a key's count there lags by less than 64 per
//! thread that refused it (and 15 in its slot), which the snapshot adds back for the
//! keys it reports; with 256, a key rejected 199 times lost its counter to 500 keys
//! rejected once each (`tests/keyed.rs`), because the sketch had seen one of its 199.

use crate::sync::{AtomicU64, Ordering};

use super::table::{ID_SHIFT, LOW_MASK as COUNT_MASK};

/// Words per set: one cache line.
const WAYS: usize = 8;

/// Counts go to the sketch this many at a time (see the module docs).
pub(crate) const BATCH: u64 = 64;

// The count lives in the bits below the identity (`table`'s layout).
const _: () = assert!(BATCH < COUNT_MASK);

/// Where a rejection was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Here.
    Here,
    /// A batch is complete: give the sketch this many now.
    Batch(u64),
    /// The key's set is full: give the sketch this one now.
    NoRoom,
}

/// One set: a cache line of words.
#[repr(align(64))]
struct Set([AtomicU64; WAYS]);

/// One thread's tally for one limiter.
pub(crate) struct Tally {
    sets: Box<[Set]>,
    /// Sets − 1 (a power of two less one).
    set_mask: u64,
}

impl Tally {
    /// A tally sized for a table of `max_keys` keys (see the module docs).
    pub(crate) fn for_keys(max_keys: u32) -> Tally {
        let words = (u64::from(max_keys) * 4)
            .next_power_of_two()
            .clamp(64, 4096) as usize;
        let sets = words / WAYS;
        Tally {
            sets: (0..sets)
                .map(|_| Set(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            set_mask: sets as u64 - 1,
        }
    }

    /// The words of key `id`'s set.
    #[inline]
    fn set(&self, id: u64) -> &[AtomicU64] {
        // The identity's lowest bits: hash bits, spread like the keys.
        &self.sets[((id >> ID_SHIFT) & self.set_mask) as usize].0
    }

    /// Counts one rejection of key `id` (a table identity: low 20 bits zero, not 0).
    /// Only the thread that owns the tally may call it.
    #[inline]
    pub(crate) fn count(&self, id: u64) -> Counted {
        let set = self.set(id);
        let mut free = None;
        for word in set {
            // Relaxed load and store: only this thread writes the word (a new owner of
            // the slot sees the last one's stores through the slot hand-over); a
            // snapshot reads each word whole.
            let value = word.load(Ordering::Relaxed);
            if value & !COUNT_MASK == id {
                let count = (value & COUNT_MASK) + 1;
                if count == BATCH {
                    word.store(0, Ordering::Relaxed);
                    return Counted::Batch(BATCH);
                }
                word.store(value + 1, Ordering::Relaxed);
                return Counted::Here;
            }
            if value == 0 && free.is_none() {
                free = Some(word);
            }
        }
        match free {
            Some(word) => {
                // Relaxed: as above.
                word.store(id | 1, Ordering::Relaxed);
                Counted::Here
            }
            None => Counted::NoRoom,
        }
    }

    /// The rejections of key `id` counted here and not yet given to the sketch.
    pub(crate) fn pending(&self, id: u64) -> u64 {
        self.set(id)
            .iter()
            // Relaxed: a statistic; each word is read whole.
            .map(|word| word.load(Ordering::Relaxed))
            .find(|value| value & !COUNT_MASK == id)
            .map_or(0, |value| value & COUNT_MASK)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn id(n: u64) -> u64 {
        n << ID_SHIFT
    }

    #[test]
    fn a_key_is_counted_here_until_a_batch_goes_to_the_sketch() {
        let tally = Tally::for_keys(100);
        for n in 1..BATCH {
            assert_eq!(tally.count(id(3)), Counted::Here);
            assert_eq!(tally.pending(id(3)), n);
        }
        assert_eq!(tally.count(id(3)), Counted::Batch(BATCH));
        assert_eq!(tally.pending(id(3)), 0);
        assert_eq!(tally.count(id(3)), Counted::Here);
        assert_eq!(tally.pending(id(3)), 1);
    }

    #[test]
    fn a_full_set_sends_the_next_key_to_the_sketch_and_keeps_its_counts() {
        let tally = Tally::for_keys(100); // 512 words: 64 sets
        let sets = 64;
        let same_set: Vec<u64> = (0..=WAYS as u64).map(|k| id(5 + k * sets)).collect();
        for &key in &same_set[..WAYS] {
            assert_eq!(tally.count(key), Counted::Here);
        }
        assert_eq!(tally.count(same_set[WAYS]), Counted::NoRoom);
        assert_eq!(tally.pending(same_set[WAYS]), 0);
        for &key in &same_set[..WAYS] {
            assert_eq!(tally.pending(key), 1, "nothing lost");
        }
        assert_eq!(tally.count(id(6)), Counted::Here, "other sets have room");
    }

    #[test]
    fn tallies_are_sized_by_the_table_within_bounds() {
        let words = |keys| Tally::for_keys(keys).sets.len() * WAYS;
        assert_eq!(words(1), 64);
        assert_eq!(words(1_000), 4096);
        assert_eq!(words(10_000_000), 4096);
        assert_eq!(std::mem::size_of::<Set>(), 64, "a set is one line");
    }
}
