//! The sliding windows: the last N outcomes, or the outcomes of the last T.
//!
//! Both are fixed-size, pointer-free blocks of atomics (so they could live in shared
//! memory), lock-free, and cleared lazily: every word carries a tag of the generation it
//! was written in, a word from an older generation reads as empty and is overwritten by
//! the first writer of the new one, and a writer that finds a newer tag is stale and
//! drops its outcome. A transition therefore never has to clear the window.
//!
//! Orderings: recording is "write, then evaluate", by several threads at once. That is
//! the store-buffering (Dekker) pattern: with anything weaker than `SeqCst` two threads
//! could each record a failure and each evaluate without the other's, so the trip that
//! both failures together call for would never happen. Every window access is therefore
//! `SeqCst` (on x86 a `SeqCst` load is a plain load and every read-modify-write is a full
//! barrier anyway, so this costs nothing there).

use super::config::{MAX_COUNT_WINDOW, MAX_TIME_BUCKETS};
use super::state::tag_newer;
use crate::shm::place::Place;
use crate::sync::{AtomicU64, Ordering};

/// What a window holds for one generation at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WindowCounts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

/// Outcome slots per bitset word (the top 8 bits hold the tag).
const SLOTS_PER_WORD: u32 = 56;
const SLOT_MASK: u64 = (1 << SLOTS_PER_WORD) - 1;
const BITS_TAG_SHIFT: u32 = SLOTS_PER_WORD;
const BITS_TAG_BITS: u32 = 8;
/// Bitset words per bitset: enough for [`MAX_COUNT_WINDOW`] slots.
const BIT_WORDS: usize = MAX_COUNT_WINDOW.div_ceil(SLOTS_PER_WORD) as usize;

const POS_MASK: u64 = 0xFFFF;
const FULL_BIT: u64 = 1 << 16;
const HEAD_TAG_SHIFT: u32 = 32;
const HEAD_TAG_BITS: u32 = 32;

/// The count window: the last `size` outcomes as two ring bitsets (failed, slow).
///
/// Head word:
///
/// | bits | field | meaning |
/// |---|---|---|
/// | 0..16 | pos | the slot the next outcome goes to (`< size`) |
/// | 16 | full | the ring has wrapped: all `size` slots hold outcomes |
/// | 17..32 | — | reserved, zero |
/// | 32..64 | tag | low 32 bits of the generation the window belongs to |
///
/// Bitset words (`failures[k]`, `slow[k]` hold slots `56k..56k+56`):
///
/// | bits | field | meaning |
/// |---|---|---|
/// | 0..56 | slots | bit `i`: the outcome in slot `56k+i` failed (was slow) |
/// | 56..64 | tag | low 8 bits of the generation of the bits |
///
/// A record claims a slot with one compare-exchange on the head, then sets or clears its
/// bit — and skips that second write when the bit already has the right value, which is
/// the common case of a success among successes. Counts are popcounts of the slots below
/// `pos` (all slots once full), so a bitset word whose 8-bit tag happens to alias an old
/// generation still never shows a slot that was not written in this generation.
///
/// Approximation, documented: if a thread that claimed a slot is preempted while `size`
/// later outcomes are recorded, it may write its bit after the one that overtook it
/// (last writer wins); the window then holds one outcome out of order. The counts stay
/// within `0..=calls`.
#[repr(C)]
pub(crate) struct CountWindow {
    head: AtomicU64,
    failures: [AtomicU64; BIT_WORDS],
    slow: [AtomicU64; BIT_WORDS],
}

impl CountWindow {
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU64::new(0),
            failures: std::array::from_fn(|_| AtomicU64::new(0)),
            slow: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Records one outcome of `generation` and returns how many outcomes the window held
    /// before it (`size` once full); `None` (and records nothing) when the window already
    /// belongs to a newer generation. The breaker compares the count with
    /// `minimum_calls`: the outcome that fills the window to it must check the rates.
    #[inline(always)]
    pub(crate) fn record(
        &self,
        generation: u64,
        size: u32,
        failed: bool,
        slow: Option<bool>,
    ) -> Option<u64> {
        let tag = generation & ((1 << HEAD_TAG_BITS) - 1);
        // SeqCst: see the module docs (record-then-evaluate on several words).
        let mut head = self.head.load(Ordering::SeqCst);
        let (slot, full) = loop {
            let head_tag = head >> HEAD_TAG_SHIFT;
            let (slot, full) = if head_tag == tag {
                (head & POS_MASK, head & FULL_BIT)
            } else if tag_newer(head_tag, tag, HEAD_TAG_BITS) {
                return None;
            } else {
                (0, 0)
            };
            let next_pos = slot + 1;
            let next = if next_pos == u64::from(size) {
                FULL_BIT
            } else {
                next_pos | full
            } | (tag << HEAD_TAG_SHIFT);
            // SeqCst: as above; the claim must be ordered before this thread's evaluation
            // and every other recorder's.
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break (slot as u32, full != 0),
                Err(actual) => head = actual,
            }
        };
        let word = (slot / SLOTS_PER_WORD) as usize;
        let bit = slot % SLOTS_PER_WORD;
        if let Some(word) = self.failures.get(word) {
            write_slot(word, bit, failed, generation);
        }
        if let (Some(slow), Some(word)) = (slow, self.slow.get(word)) {
            write_slot(word, bit, slow, generation);
        }
        Some(if full {
            u64::from(size)
        } else {
            u64::from(slot)
        })
    }

    /// The counts of `generation` (all zero if the window belongs to another one).
    pub(crate) fn counts(&self, generation: u64, size: u32) -> WindowCounts {
        let tag = generation & ((1 << HEAD_TAG_BITS) - 1);
        // SeqCst: see the module docs.
        let head = self.head.load(Ordering::SeqCst);
        if head >> HEAD_TAG_SHIFT != tag {
            return WindowCounts::default();
        }
        let calls = if head & FULL_BIT != 0 {
            u64::from(size)
        } else {
            head & POS_MASK
        };
        WindowCounts {
            calls,
            failures: popcount_below(&self.failures, calls, generation),
            slow: popcount_below(&self.slow, calls, generation),
        }
    }
}

/// Sets (`value`) or clears slot `bit` of `word` for `generation`.
#[inline(always)]
fn write_slot(word: &AtomicU64, bit: u32, value: bool, generation: u64) {
    let tag = generation & ((1 << BITS_TAG_BITS) - 1);
    let mask = 1u64 << bit;
    // SeqCst: see the module docs.
    let mut current = word.load(Ordering::SeqCst);
    loop {
        let current_tag = current >> BITS_TAG_SHIFT;
        let bits = if current_tag == tag {
            current & SLOT_MASK
        } else if tag_newer(current_tag, tag, BITS_TAG_BITS) {
            return; // stale writer: the word already belongs to a newer generation
        } else {
            0 // an older generation's bits read as empty
        };
        let new_bits = if value { bits | mask } else { bits & !mask };
        if new_bits == bits && (current_tag == tag || new_bits == 0) {
            return; // already right (a stale-tagged word reads as all zeros)
        }
        match word.compare_exchange_weak(
            current,
            new_bits | (tag << BITS_TAG_SHIFT),
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// Set bits of `generation` among the first `limit` slots.
fn popcount_below(words: &[AtomicU64; BIT_WORDS], limit: u64, generation: u64) -> u64 {
    let tag = generation & ((1 << BITS_TAG_BITS) - 1);
    let mut total = 0;
    for (k, word) in words.iter().enumerate() {
        let first = k as u64 * u64::from(SLOTS_PER_WORD);
        if first >= limit {
            break;
        }
        // SeqCst: see the module docs.
        let w = word.load(Ordering::SeqCst);
        if w >> BITS_TAG_SHIFT != tag {
            continue;
        }
        let in_word = (limit - first).min(u64::from(SLOTS_PER_WORD));
        let mask = if in_word == 64 {
            u64::MAX
        } else {
            (1u64 << in_word) - 1
        };
        total += u64::from((w & SLOT_MASK & mask).count_ones());
    }
    total
}

/// Bucket counters saturate here (2^28 − 1 = 268 million outcomes per bucket).
pub(crate) const BUCKET_COUNT_MAX: u64 = (1 << 28) - 1;
const STAMP_SHIFT: u32 = 28;
const EPOCH_BITS: u32 = 24;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;
const BUCKET_GEN_BITS: u32 = 12;
const BUCKET_GEN_MASK: u64 = (1 << BUCKET_GEN_BITS) - 1;

/// One bucket: three counters, each stamped with the bucket's epoch and generation.
#[repr(C)]
struct Bucket {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

/// The time window: `buckets` buckets of `bucket_nanos`, indexed by
/// `epoch = now / bucket_nanos` modulo `buckets`.
///
/// Each counter word:
///
/// | bits | field | meaning |
/// |---|---|---|
/// | 0..28 | count | outcomes counted (saturates at 2^28 − 1) |
/// | 28..52 | epoch | low 24 bits of the epoch the count belongs to |
/// | 52..64 | generation | low 12 bits of the generation |
///
/// A counter counts for the window at epoch `e` only if its stamp is exactly that of its
/// bucket's latest epoch `<= e` in the current generation; anything else reads as zero
/// and is reset by the next writer with a newer stamp. The three counters of a bucket
/// are independent words: writers bump `calls` first, readers read it last, so a
/// reader never sees a failure without its call (except across a bucket's reuse for a
/// newer epoch, which the cap at 100 % covers).
/// Aliasing needs a bucket untouched for 2^24 of its epochs while the breaker stays in
/// one generation's window (a generation aliases only after 4096 transitions within one
/// window span); both are documented limits, not clamps of configuration.
#[repr(C)]
pub(crate) struct TimeWindow {
    buckets: [Bucket; MAX_TIME_BUCKETS as usize],
}

#[inline]
fn stamp(generation: u64, epoch: u64) -> u64 {
    ((generation & BUCKET_GEN_MASK) << EPOCH_BITS) | (epoch & EPOCH_MASK)
}

/// Whether stamp `a` is newer than `b`: a later generation, or the same one and a later epoch.
#[inline]
fn stamp_newer(a: u64, b: u64) -> bool {
    let (ga, gb) = (a >> EPOCH_BITS, b >> EPOCH_BITS);
    if ga != gb {
        tag_newer(ga, gb, BUCKET_GEN_BITS)
    } else {
        tag_newer(a & EPOCH_MASK, b & EPOCH_MASK, EPOCH_BITS)
    }
}

/// Adds one to `word` under `mine` and returns the count after it (saturated: the
/// maximum; 0 when the word belongs to a newer stamp and nothing was counted); see
/// [`TimeWindow`].
#[inline]
fn bump(word: &AtomicU64, mine: u64) -> u64 {
    // SeqCst: see the module docs.
    let mut current = word.load(Ordering::SeqCst);
    loop {
        let theirs = current >> STAMP_SHIFT;
        let next = if theirs == mine {
            if current & BUCKET_COUNT_MAX == BUCKET_COUNT_MAX {
                return BUCKET_COUNT_MAX;
            }
            current + 1
        } else if stamp_newer(theirs, mine) {
            return 0;
        } else {
            (mine << STAMP_SHIFT) | 1
        };
        match word.compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next & BUCKET_COUNT_MAX,
            Err(actual) => current = actual,
        }
    }
}

#[inline]
fn read(word: &AtomicU64, mine: u64) -> u64 {
    // SeqCst: see the module docs.
    let w = word.load(Ordering::SeqCst);
    if w >> STAMP_SHIFT == mine {
        w & BUCKET_COUNT_MAX
    } else {
        0
    }
}

impl TimeWindow {
    pub(crate) fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| Bucket {
                calls: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                slow: AtomicU64::new(0),
            }),
        }
    }

    /// Records one outcome of `generation` completed at `now` and returns the calls its
    /// bucket holds after it (0 if nothing was recorded: the bucket belongs to a newer
    /// generation). The window's total is at least that, so a bucket holding more than
    /// `minimum_calls` means this outcome did not bring the window to `minimum_calls`:
    /// the breaker sums the window after a success only while the bucket is young.
    #[inline]
    pub(crate) fn record(
        &self,
        generation: u64,
        now: u64,
        bucket_nanos: u64,
        buckets: u32,
        failed: bool,
        slow: bool,
    ) -> u64 {
        let epoch = now / bucket_nanos.max(1);
        let Some(bucket) = self
            .buckets
            .get((epoch % u64::from(buckets.max(1))) as usize)
        else {
            return 0;
        };
        let mine = stamp(generation, epoch);
        let in_bucket = bump(&bucket.calls, mine);
        if failed {
            bump(&bucket.failures, mine);
        }
        if slow {
            bump(&bucket.slow, mine);
        }
        in_bucket
    }

    /// The counts of `generation` in the window that ends at `now`.
    pub(crate) fn counts(
        &self,
        generation: u64,
        now: u64,
        bucket_nanos: u64,
        buckets: u32,
    ) -> WindowCounts {
        let epoch = now / bucket_nanos.max(1);
        let n = u64::from(buckets.max(1));
        let mut counts = WindowCounts::default();
        for back in 0..n.min(epoch + 1) {
            let e = epoch - back;
            let Some(bucket) = self.buckets.get((e % n) as usize) else {
                continue;
            };
            let mine = stamp(generation, e);
            // Failures and slow calls first, then calls: a writer bumps `calls` before
            // `failures`, so every failure read here has its call counted by the later
            // read of `calls`. Read the other way round, a reader preempted between the
            // two loads would pair an old call count with newer failures and see a
            // failure rate far above the real one (a spurious trip; found by
            // `stress_breaker`, 1 run in 60). This order can only under-read the rate
            // for an instant, and the next failure evaluates again.
            counts.failures += read(&bucket.failures, mine);
            counts.slow += read(&bucket.slow, mine);
            counts.calls += read(&bucket.calls, mine);
        }
        counts.failures = counts.failures.min(counts.calls);
        counts.slow = counts.slow.min(counts.calls);
        counts
    }
}

/// The window of one breaker.
pub(crate) enum Window {
    /// A count window of `size` slots.
    Count {
        size: u32,
        state: Place<CountWindow>,
    },
    /// A time window.
    Time {
        bucket_nanos: u64,
        buckets: u32,
        state: Place<TimeWindow>,
    },
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn memory_bounds() {
        // The whole breaker state is the core block plus one of these windows; the
        // breaker's own test adds them up.
        assert!(
            std::mem::size_of::<CountWindow>() <= 152,
            "{}",
            std::mem::size_of::<CountWindow>()
        );
        assert!(
            std::mem::size_of::<TimeWindow>() <= 384,
            "{}",
            std::mem::size_of::<TimeWindow>()
        );
    }

    #[test]
    fn count_window_slides_and_counts_exactly() {
        let w = CountWindow::new();
        let g = 3;
        for i in 0..7u32 {
            let before = w.record(g, 5, i % 2 == 0, Some(i == 6));
            assert_eq!(
                before,
                Some(u64::from(i.min(5))),
                "outcomes held before #{i}"
            );
        }
        // slots hold outcomes 5,6,2,3,4 → failures at 6,2,4 → 3; slow only 6.
        assert_eq!(
            w.counts(g, 5),
            WindowCounts {
                calls: 5,
                failures: 3,
                slow: 1
            }
        );
        assert_eq!(
            w.counts(g + 1, 5),
            WindowCounts::default(),
            "other generation"
        );
        assert_eq!(w.record(g - 1, 5, true, None), None, "stale writer refused");
        assert_eq!(
            w.record(g + 1, 5, true, None),
            Some(0),
            "new generation starts over"
        );
        assert_eq!(
            w.counts(g + 1, 5),
            WindowCounts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn count_window_crosses_bitset_words() {
        let w = CountWindow::new();
        for i in 0..500u32 {
            w.record(1, 500, i % 3 == 0, None);
        }
        assert_eq!(
            w.counts(1, 500),
            WindowCounts {
                calls: 500,
                failures: 167,
                slow: 0
            }
        );
        for _ in 0..500 {
            w.record(1, 500, false, None);
        }
        assert_eq!(w.counts(1, 500).failures, 0);
    }

    #[test]
    fn stale_bits_are_invisible_after_a_generation_change() {
        let w = CountWindow::new();
        for _ in 0..60 {
            w.record(1, 100, true, None);
        }
        w.record(2, 100, false, None);
        assert_eq!(
            w.counts(2, 100),
            WindowCounts {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
    }

    #[test]
    fn time_window_expires_buckets_and_generations() {
        let w = TimeWindow::new();
        let width = 1_000;
        assert_eq!(w.record(1, 500, width, 3, true, false), 1);
        assert_eq!(w.record(1, 700, width, 3, false, false), 2, "same bucket");
        assert_eq!(w.record(1, 1_500, width, 3, false, true), 1);
        w.record(1, 2_500, width, 3, false, false);
        assert_eq!(
            w.counts(1, 2_999, width, 3),
            WindowCounts {
                calls: 4,
                failures: 1,
                slow: 1
            }
        );
        assert_eq!(
            w.counts(1, 3_000, width, 3),
            WindowCounts {
                calls: 2,
                failures: 0,
                slow: 1
            }
        );
        assert_eq!(w.counts(2, 2_999, width, 3), WindowCounts::default());
        w.record(1, 3_100, width, 3, true, false);
        assert_eq!(
            w.counts(1, 3_200, width, 3),
            WindowCounts {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        // a stale writer (older epoch) cannot reset the newer bucket
        assert_eq!(w.record(1, 100, width, 3, true, false), 0);
        assert_eq!(w.counts(1, 3_200, width, 3).calls, 3);
        assert_eq!(w.counts(1, 100_000, width, 3), WindowCounts::default());
    }
}
