//! The per-thread shards of a [`PolicyMetrics`](super::PolicyMetrics): what a shard
//! holds, how a policy publishes a thread's shard on that thread's first record, and how
//! a full 32-bit latency bucket carries into the policy.
//!
//! # Memory: shards grow with use, not with cores
//!
//! A new policy has no shard. It has a [`ShardTable`] of null pointers, one per thread
//! slot ([`SLOTS`] = 64 on every machine) plus one for threads without a slot, and its
//! [`Carries`] (two counters and a null pointer): about 0.75 KiB with the other
//! counters, whatever the core count. The first record of a thread on a
//! policy allocates the shard of the thread's slot (1,152 bytes with its cache padding)
//! and publishes it with a compare-exchange. Every later record of that thread finds it
//! there, and so does the next thread that takes the slot over when this one exits: it
//! continues the counts (the slot hand-over orders the two owners, see
//! `thread_slot.rs`). So a policy costs its fixed part plus one shard per slot that ever
//! recorded on it, at most 65 shards; shards are freed with the policy.
//!
//! Allocation happens at most once per (thread slot, policy), on the thread's first
//! record there, never on a later call. Threads without a slot share one shard, created
//! the same way by the first of them (racing creators: one wins the compare-exchange, the
//! others free theirs and use the winner's).
//!
//! # Carries: exact counts in 32-bit buckets
//!
//! A shard's latency buckets are 32-bit, so a shard is 1 KiB rather than 2. When one
//! would reach 2^32 (under loom: 2, so models reach it), its writer resets it to 0 and
//! adds one to the policy's carry counter of that bucket. The carry counters (260 × 4 bytes) are
//! allocated by the policy's first carry, published as a shard is: most policies never
//! carry, and they would be most of an idle policy's counters. A bucket's count is then the sum
//! over the shards plus 2^32 × its carries, exact up to 2^64 like every other counter.
//!
//! A snapshot must never see half a carry: the reset without the carry loses 2^32 counts
//! (a counter that goes down), the carry without the reset adds 2^32 (and breaks
//! `latency.count ≤ completions`). Carries are therefore bracketed like a sequence lock,
//! by two counters: a carrier increments `begun`, writes the reset and the carry (both
//! Release), then increments `ended` (Release). A reader loads `ended` (Acquire), then the
//! buckets and carries (Acquire), then `begun`, and retries unless `begun == ended`:
//!
//! - if its `ended` counts a carry, that carry's writes happened-before the reader's
//!   bucket loads, which see both halves;
//! - if it does not, but the reader saw either half, its Acquire load synchronized with
//!   a Release write that follows the carrier's `begun` increment, so the later `begun`
//!   load counts it, while `ended` does not: `begun > ended`, and the reader retries.
//!   (Every carry counted in `ended` is also counted in `begun`, so only carries not yet
//!   ended make the two differ.)
//!
//! A carry happens once per 2^32 records of one bucket in one shard, so a retry is rare;
//! a reader that meets one waits (yielding) until the carrier's next two instructions run.
//!
//! The table of shards and the publication of the carry counters are `slot_table`'s
//! (published once by a compare-exchange, freed with the policy).

use super::counters::OUTCOMES;
use super::histogram::LatencyHistogram;
use super::slot_table::{free_published, get_or_publish, published, SlotTable};
use super::thread_slot::Writer;
use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use crate::Outcome;

/// A policy's shards: one per thread slot and one shared, each created on first use.
pub(crate) type ShardTable = SlotTable<Shard>;

/// A bucket carries when its count would reach this.
#[cfg(not(loom))]
const CARRY: u64 = 1 << 32;
/// Under loom a bucket carries every second record, so the models cover carries.
#[cfg(loom)]
const CARRY: u64 = 2;

/// The counters of every call, for one writer (or, for the shared shard, for many).
pub(crate) struct Shard {
    pub(super) permitted: AtomicU64,
    /// Completions, indexed by `Outcome as usize`.
    pub(super) completed: [AtomicU64; OUTCOMES],
    pub(super) slow: AtomicU64,
    /// Sum of the recorded durations, nanoseconds (wrapping).
    pub(super) latency_sum: AtomicU64,
    /// The low 32 bits of each latency bucket's count (the rest is in [`Carries`]).
    latency: [AtomicU32; LatencyHistogram::BUCKETS],
}

impl Default for Shard {
    fn default() -> Self {
        Self {
            permitted: AtomicU64::new(0),
            completed: std::array::from_fn(|_| AtomicU64::new(0)),
            slow: AtomicU64::new(0),
            latency_sum: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

impl Shard {
    #[inline]
    pub(super) fn on_permitted(&self, writer: Writer) {
        // Relaxed: this increment publishes nothing by itself. It must happen-before the
        // permit's completion store, which program order (same thread) or the permit
        // hand-off (another thread) already guarantees; the completion's Release then
        // carries it to a snapshot.
        writer.add(&self.permitted, 1, Ordering::Relaxed);
    }

    #[inline]
    pub(super) fn on_complete(
        &self,
        writer: Writer,
        outcome: Outcome,
        nanos: Option<u64>,
        slow: bool,
        carries: &Carries,
    ) {
        if let Some(c) = self.completed.get(outcome as usize) {
            // Release: a snapshot that sees this count with its Acquire load must also
            // see this permit's `permitted` increment, which happened-before this point.
            // Relaxed would break `completions ≤ permitted` in snapshots.
            writer.add(c, 1, Ordering::Release);
        }
        if let Some(nanos) = nanos {
            self.record_latency(writer, nanos, carries);
        }
        if slow {
            // Release: a snapshot reads `slow` first with Acquire, so it then sees the
            // outcome count above: keeps `slow ≤ completions`.
            writer.add(&self.slow, 1, Ordering::Release);
        }
    }

    #[inline]
    fn record_latency(&self, writer: Writer, nanos: u64, carries: &Carries) {
        let index = LatencyHistogram::bucket_index(nanos);
        if let Some(bucket) = self.latency.get(index) {
            match writer {
                Writer::Owner => {
                    // Relaxed: only this thread stores to the bucket (see `Writer::add`).
                    let next = u64::from(bucket.load(Ordering::Relaxed)) + 1;
                    if next < CARRY {
                        // Release: a snapshot that sees this count with its Acquire load
                        // must also see the completion counted before it (and, through
                        // it, the permit's `permitted`): keeps `latency.count ≤
                        // completions ≤ permitted`. `next < CARRY ≤ 2^32`: no truncation.
                        bucket.store(next as u32, Ordering::Release);
                    } else {
                        carries.carry_owned(bucket, index);
                    }
                }
                Writer::Shared => carries.add_shared(bucket, index),
            }
        }
        // Relaxed: the sum is a statistic read on its own; nothing is published with it.
        writer.add(&self.latency_sum, nanos, Ordering::Relaxed);
    }

    /// Sets bucket `index` to `count` (tests only: reaching a carry by recording would
    /// take 2^32 records).
    #[cfg(all(test, not(loom)))]
    pub(super) fn preset_bucket(&self, index: usize, count: u32) {
        self.latency[index].store(count, Ordering::Relaxed);
    }
}

/// The high part of every latency bucket of a policy: how many times a shard's 32-bit
/// bucket carried, and the bracket that keeps snapshots from seeing half a carry.
pub(crate) struct Carries {
    /// Carries started (incremented before a reset).
    begun: AtomicU64,
    /// Carries finished (incremented after the carry is added).
    ended: AtomicU64,
    /// Per bucket, the number of `CARRY` units moved out of shards (wrapping: the count
    /// is exact up to 2^64). Null until the first carry (see the module docs).
    counts: AtomicPtr<CarryCounts>,
}

/// The carry counter of every latency bucket.
type CarryCounts = [AtomicU32; LatencyHistogram::BUCKETS];

impl Carries {
    pub(super) fn new() -> Self {
        Self {
            begun: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            counts: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The owner's bucket would reach `CARRY`: reset it and carry one.
    #[cold]
    #[inline(never)]
    fn carry_owned(&self, bucket: &AtomicU32, index: usize) {
        // Relaxed: the Release store below makes it visible to any reader that sees the
        // reset (see the module docs).
        self.begun.fetch_add(1, Ordering::Relaxed);
        // Release: a reader that sees the reset also sees `begun` above, and the
        // completion of this record (as for every bucket store).
        bucket.store(0, Ordering::Release);
        self.finish(index);
    }

    /// The second half of a carry: add it, and close the bracket.
    fn finish(&self, index: usize) {
        let counts = get_or_publish(&self.counts, || std::array::from_fn(|_| AtomicU32::new(0)));
        if let Some(carried) = counts.get(index) {
            // Release: a reader that sees the carry sees `begun`, the reset and the
            // completions of the records it stands for.
            carried.fetch_add(1, Ordering::Release);
        }
        // Release: a reader whose Acquire load of `ended` counts this carry sees both
        // of its halves.
        self.ended.fetch_add(1, Ordering::Release);
    }

    /// Adds one to a bucket that other threads may write at the same time (the shared
    /// shard), carrying when it would reach `CARRY`.
    fn add_shared(&self, bucket: &AtomicU32, index: usize) {
        // Relaxed: only a guess for the first compare-exchange, which re-reads on failure.
        let mut seen = bucket.load(Ordering::Relaxed);
        loop {
            if u64::from(seen) + 1 < CARRY {
                // Release on success, as the owner's store (the invariant). Relaxed on
                // failure: the loop only retries.
                match bucket.compare_exchange_weak(
                    seen,
                    seen + 1,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return,
                    Err(now) => seen = now,
                }
            } else {
                // Relaxed: published by the Release of the compare-exchange below.
                self.begun.fetch_add(1, Ordering::Relaxed);
                // Release on success, as in `carry_owned`. No Acquire is needed for the
                // records other threads added before: a snapshot that counts this carry
                // (its `ended` includes it) also reads this reset or a later value of
                // the bucket, which continues the release sequence of their
                // compare-exchanges, so it synchronizes with them. Relaxed on failure:
                // nothing was written.
                match bucket.compare_exchange(seen, 0, Ordering::Release, Ordering::Relaxed) {
                    Ok(_) => return self.finish(index),
                    Err(now) => {
                        // Close the empty bracket (it only makes a reader retry), retry.
                        // Release, as in `finish`.
                        self.ended.fetch_add(1, Ordering::Release);
                        seen = now;
                    }
                }
            }
        }
    }

    /// Writes into `counts` every shard's latency buckets plus the carries, with no
    /// carry half done, and returns the shards' sum of recorded durations.
    pub(super) fn add_latency<'a>(
        &self,
        shards: impl Iterator<Item = &'a Shard> + Clone,
        counts: &mut [u64],
    ) -> u64 {
        loop {
            // Acquire: pairs with the Release increments of `finish`; a carry counted
            // here is wholly visible to the loads below.
            let ended = self.ended.load(Ordering::Acquire);
            counts.fill(0);
            let mut sum = 0u64;
            for shard in shards.clone() {
                for (total, bucket) in counts.iter_mut().zip(shard.latency.iter()) {
                    // Acquire: pairs with the Release bucket writes (the invariant, and
                    // the carry bracket).
                    *total = total.wrapping_add(u64::from(bucket.load(Ordering::Acquire)));
                }
                // Relaxed: a statistic, not tied to the buckets (documented as such).
                sum = sum.wrapping_add(shard.latency_sum.load(Ordering::Relaxed));
            }
            // Null: no carry yet, or one not ended (it was published before the Release
            // increment of `ended` of the carry that made it, so a carry counted in
            // `ended` finds it; one not counted makes `begun` differ below).
            for (total, carried) in counts
                .iter_mut()
                .zip(published(&self.counts).into_iter().flatten())
            {
                // Acquire: pairs with the Release increment in `finish`.
                let units = u64::from(carried.load(Ordering::Acquire));
                *total = total.wrapping_add(units.wrapping_mul(CARRY));
            }
            // Relaxed: any carry whose write was seen above has its `begun` increment
            // ordered before that Acquire load, so this later load counts it.
            if self.begun.load(Ordering::Relaxed) == ended {
                return sum;
            }
            // A carry is half done on another thread: let it finish.
            crate::sync::thread::yield_now();
        }
    }
}

impl Drop for Carries {
    fn drop(&mut self) {
        free_published(&mut self.counts);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::metrics::thread_slot::SLOTS;
    use crossbeam_utils::CachePadded;

    fn total(table: &ShardTable, carries: &Carries, index: usize) -> u64 {
        let mut counts = vec![0u64; LatencyHistogram::BUCKETS];
        carries.add_latency(table.iter(), &mut counts);
        counts[index]
    }

    #[test]
    fn a_full_owned_bucket_carries_without_losing_a_count() {
        let (table, carries) = (ShardTable::new(), Carries::new());
        let (shard, writer) = table.get_or_create(0);
        assert_eq!(writer, Writer::Owner);
        let index = LatencyHistogram::bucket_index(5_000);
        shard.preset_bucket(index, u32::MAX - 1);
        for _ in 0..3 {
            shard.record_latency(writer, 5_000, &carries);
        }
        assert_eq!(total(&table, &carries, index), u64::from(u32::MAX) + 2);
        assert_eq!(shard.latency[index].load(Ordering::Relaxed), 1);
        assert_eq!(
            published(&carries.counts).unwrap()[index].load(Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn a_full_shared_bucket_carries_once_under_racing_writers() {
        let (table, carries) = (ShardTable::new(), Carries::new());
        let (shard, writer) = table.get_or_create(SLOTS + 7);
        assert_eq!(writer, Writer::Shared);
        let index = LatencyHistogram::bucket_index(2_000_000);
        shard.preset_bucket(index, u32::MAX - 100);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1_000 {
                        shard.record_latency(Writer::Shared, 2_000_000, &carries);
                    }
                });
            }
        });
        assert_eq!(
            total(&table, &carries, index),
            u64::from(u32::MAX) - 100 + 4_000
        );
        assert_eq!(
            published(&carries.counts).unwrap()[index].load(Ordering::Relaxed),
            1
        );
        assert_eq!(shard.latency_sum.load(Ordering::Relaxed), 4_000 * 2_000_000);
    }

    #[test]
    fn shards_are_created_once_per_entry_and_shared_beyond_the_slots() {
        let table = ShardTable::new();
        assert_eq!(table.iter().count(), 0);
        assert!(table.owned(3).is_none());
        let (a, _) = table.get_or_create(3);
        let (b, _) = table.get_or_create(3);
        assert!(std::ptr::eq(a, b));
        assert!(std::ptr::eq(table.owned(3).unwrap(), a));
        let (s1, _) = table.get_or_create(SLOTS);
        let (s2, _) = table.get_or_create(usize::MAX - 1);
        assert!(std::ptr::eq(s1, s2));
        assert!(
            table.owned(SLOTS).is_none(),
            "the shared shard is nobody's own"
        );
        assert_eq!(table.iter().count(), 2);
    }

    #[test]
    fn racing_creators_of_the_shared_shard_agree_on_one() {
        let table = ShardTable::new();
        let seen: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| table.get_or_create(SLOTS).0 as *const Shard as usize))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(seen.iter().all(|&p| p == seen[0]));
        assert_eq!(table.iter().count(), 1);
    }

    #[test]
    fn a_shard_fills_whole_cache_lines_of_about_a_kibibyte() {
        let line = std::mem::align_of::<CachePadded<u8>>();
        assert!(line >= 64);
        let size = std::mem::size_of::<CachePadded<Shard>>();
        assert_eq!(size % line, 0);
        assert!(size <= 1_152, "{size}");
    }
}
