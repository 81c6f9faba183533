//! The sliding windows: the last N outcomes, or the outcomes of the last T.
//!
//! Both are fixed-size, pointer-free blocks of atomics (so they could live in shared
//! memory), lock-free, and cleared lazily: every word carries a tag of the generation it
//! was written in, a word from an older generation reads as empty and is overwritten by
//! the first writer of the new one, and a writer that finds a newer tag is stale and
//! drops its outcome (except a count-window claim, one unconditional fetch-add, that
//! lands in the newer window: it is written there as a success; see [`CountWindow`]). A
//! transition therefore never has to clear the window.
//!
//! Orderings: recording is "write, then evaluate", by several threads at once. That is
//! the store-buffering (Dekker) pattern: with anything weaker than `SeqCst` two threads
//! could each record a failure and each evaluate without the other's, so the trip that
//! both failures together call for would never happen. Every window access is therefore
//! `SeqCst` (on x86 a `SeqCst` load is a plain load and every read-modify-write is a full
//! barrier anyway, so this costs nothing there).

use super::config::{MAX_COUNT_WINDOW, MAX_TIME_BUCKETS};
use super::state::tag_newer;
use crate::shm::Place;
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
/// The largest window (in bitset words, 56 slots each) whose success first checks
/// whether it needs a slot at all; a larger window would load more words than the claim
/// costs.
const QUIET_WORDS: usize = 4;

const CLAIMS_MASK: u64 = 0xFFFF_FFFF;
/// Claims are folded back (by a multiple of the size) once they pass this, far below
/// the 2^32 where an add would carry into the tag.
const FOLD_AT: u64 = 1 << 31;
const HEAD_TAG_SHIFT: u32 = 32;
const HEAD_TAG_BITS: u32 = 32;

/// A count window's size with what finds a claim's slot without a division: Lemire's
/// remainder by multiplication, exact for every 32-bit claim and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ring {
    size: u32,
    magic: u64,
}

impl Ring {
    pub(crate) fn new(size: u32) -> Self {
        let size = size.max(1);
        Self {
            size,
            magic: (u64::MAX / u64::from(size)).wrapping_add(1),
        }
    }

    /// The parts a [`Window::Count`] keeps.
    pub(crate) fn parts(self) -> (u32, u64) {
        (self.size, self.magic)
    }

    /// A ring from its [`parts`](Self::parts).
    #[inline(always)]
    pub(crate) fn from_parts(size: u32, magic: u64) -> Self {
        Self { size, magic }
    }

    /// `claims % size` (claims stay below 2^32, see `FOLD_AT`).
    #[inline(always)]
    fn slot(self, claims: u64) -> u32 {
        let low = self.magic.wrapping_mul(claims & CLAIMS_MASK);
        ((u128::from(low) * u128::from(self.size)) >> 64) as u32
    }
}

impl From<u32> for Ring {
    fn from(size: u32) -> Self {
        Self::new(size)
    }
}

/// What [`CountWindow::record`] did with an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Recorded; the window held this many outcomes before it (`size` once full).
    Recorded(u64),
    /// Nothing recorded: the window already belonged to a newer generation when the
    /// outcome arrived.
    Stale,
    /// The outcome arrived just after a newer generation (low 32 bits `tag`) started
    /// the window, and its claim counted there before it could tell: it is recorded there
    /// as a success, which the window held `before` outcomes before (see
    /// [`CountWindow`]).
    Newer { tag: u64, before: u64 },
}

/// What [`CountWindow::restart`] did.
enum Restart {
    /// The window is ours, and our claim is slot 0.
    Done,
    /// Another thread started it over for our generation first; we added again, and this
    /// is the head before that add.
    Added(u64),
    /// It already belongs to a newer generation; nothing of ours is in it.
    Stale,
}

/// The count window: the last `size` outcomes as two ring bitsets (failed, slow).
///
/// Head word:
///
/// | bits | field | meaning |
/// |---|---|---|
/// | 0..32 | claims | outcomes claimed in this generation, less a multiple of `size` once past 2^31: slot `claims % size` is the next; the ring is full from `size` on |
/// | 32..64 | tag | low 32 bits of the generation the window belongs to |
///
/// Bitset words (`failures[k]`, `slow[k]` hold slots `56k..56k+56`):
///
/// | bits | field | meaning |
/// |---|---|---|
/// | 0..56 | slots | bit `i`: the outcome in slot `56k+i` failed (was slow) |
/// | 56..64 | tag | low 8 bits of the generation of the bits |
///
/// A record claims a slot with one fetch-add on the head — never retried, so two
/// threads recording at once each pay one cache-line transfer and no failed
/// compare-exchange — then sets or clears its bit, and skips that second write when the
/// bit already has the right value, which is the common case of a success among
/// successes. Only the first record of a generation (the add came back with an older
/// tag) starts the window over, with a compare-exchange; every ~2^31 outcomes one
/// compare-exchange folds the claims back. Counts are popcounts of the claimed slots
/// (all of them once full), so a bitset word whose 8-bit tag happens to alias an old
/// generation still never shows a slot that was not written in this generation.
///
/// **A success among successes.** A success that finds the window full of this
/// generation's outcomes, none of them failed (nor slow, when slow calls are tracked),
/// claims no slot and writes nothing: it is recorded as it stands, without a single
/// read-modify-write. That is exact. The window holds `size` successes before and after
/// it, and which slot the next outcome overwrites does not matter while every slot
/// holds a success: each outcome recorded later still leaves the window `size` outcomes
/// after it. A failure racing with it whose bit it did not see is ordered after it (a
/// failure is recorded when its bit is written), and one it saw makes it claim a slot as
/// before. So successes on a healthy breaker cost loads only and leave the window's
/// cache line shared between the threads that record them.
///
/// Approximations, documented:
/// - If a thread that claimed a slot is preempted while `size` later outcomes are
///   recorded, it may write its bit after the one that overtook it (last writer wins);
///   the window then holds one outcome out of order. The counts stay within
///   `0..=calls`.
/// - The add cannot be made conditional on the tag. An outcome whose breaker moved to a
///   new `Closed` (or `Disabled`) generation between its completion's state read and its
///   add, *after* the new generation's first record, therefore holds a slot of the new
///   window: it is written there as a success ([`Claim::Newer`]) and counted as stale.
///   No older outcome ever lands in a newer window as a failure or slow call.
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

    /// Records one outcome of `generation` (see [`Claim`]). The breaker compares the
    /// outcomes held before it with `minimum_calls`: the outcome that fills the window to
    /// it must check the rates.
    #[inline(always)]
    pub(crate) fn record(
        &self,
        generation: u64,
        ring: Ring,
        failed: bool,
        slow: Option<bool>,
    ) -> Claim {
        let size = ring.size;
        let tag = generation & ((1 << HEAD_TAG_BITS) - 1);
        if !failed && slow != Some(true) && self.holds_only_successes(tag, generation, size, slow) {
            return Claim::Recorded(u64::from(size));
        }
        // SeqCst: see the module docs (record-then-evaluate on several words).
        let mut before = self.head.fetch_add(1, Ordering::SeqCst);
        let claims = loop {
            let head_tag = before >> HEAD_TAG_SHIFT;
            if head_tag == tag {
                break before & CLAIMS_MASK;
            }
            if tag_newer(head_tag, tag, HEAD_TAG_BITS) {
                // Our add claimed a slot of the newer window: fill it with a success.
                let claims = before & CLAIMS_MASK;
                self.write(ring.slot(claims), head_tag, false, slow.map(|_| false));
                return Claim::Newer {
                    tag: head_tag,
                    before: claims.min(u64::from(size)),
                };
            }
            // The window still belongs to an older generation (our add went to its dead
            // count): start it over for ours, taking slot 0.
            match self.restart(before.wrapping_add(1), tag) {
                Restart::Done => break 0,
                Restart::Added(word) => before = word,
                Restart::Stale => return Claim::Stale,
            }
        };
        if claims >= FOLD_AT {
            self.fold(tag, size);
        }
        self.write(ring.slot(claims), generation, failed, slow);
        let size = u64::from(size);
        Claim::Recorded(if claims >= size { size } else { claims })
    }

    /// Whether the window is full of `generation`'s outcomes and none of them failed
    /// (nor was slow, when `slow` is tracked): then a success needs no slot (see
    /// [`CountWindow`], "a success among successes"). Loads only; `false` whenever it
    /// cannot tell cheaply (a window of more than [`QUIET_WORDS`] bitset words).
    #[inline(always)]
    fn holds_only_successes(
        &self,
        tag: u64,
        generation: u64,
        size: u32,
        slow: Option<bool>,
    ) -> bool {
        let words = size.div_ceil(SLOTS_PER_WORD) as usize;
        if words > QUIET_WORDS {
            return false;
        }
        // SeqCst: see the module docs. The head first: a failure whose bit the loads
        // below miss is recorded after this success (its bit is its record).
        let head = self.head.load(Ordering::SeqCst);
        if head >> HEAD_TAG_SHIFT != tag || head & CLAIMS_MASK < u64::from(size) {
            return false;
        }
        let bits_tag = generation & ((1 << BITS_TAG_BITS) - 1);
        // Empty for `generation`, as `counts` reads it: its tag with no bits (the
        // steady state, one comparison), or an older tag. A newer tag: the window is
        // being taken over, so claim a slot as before and let `record` sort it out.
        let clear = |w: u64| {
            w == bits_tag << BITS_TAG_SHIFT || {
                let theirs = w >> BITS_TAG_SHIFT;
                theirs != bits_tag && !tag_newer(theirs, bits_tag, BITS_TAG_BITS)
            }
        };
        // A plain loop over at most `QUIET_WORDS` words (against the iterator adapters
        // it replaced: 18 instructions fewer a policy acquire + completion through the
        // C ABI, 12.8 → 11.9 ns in fastest batches).
        let all_clear = |bits: &[AtomicU64; BIT_WORDS]| {
            for word in &bits[..words] {
                // SeqCst: see the module docs.
                if !clear(word.load(Ordering::SeqCst)) {
                    return false;
                }
            }
            true
        };
        all_clear(&self.failures) && (slow.is_none() || all_clear(&self.slow))
    }

    /// Writes the outcome of `generation` into `slot`.
    #[inline(always)]
    fn write(&self, slot: u32, generation: u64, failed: bool, slow: Option<bool>) {
        let word = (slot / SLOTS_PER_WORD) as usize;
        let bit = slot % SLOTS_PER_WORD;
        if let Some(word) = self.failures.get(word) {
            write_slot(word, bit, failed, generation);
        }
        if let (Some(slow), Some(word)) = (slow, self.slow.get(word)) {
            write_slot(word, bit, slow, generation);
        }
    }

    /// Starts the window over for `tag` with one claim (slot 0), from the guess
    /// `current`.
    #[cold]
    fn restart(&self, mut current: u64, tag: u64) -> Restart {
        loop {
            let theirs = current >> HEAD_TAG_SHIFT;
            if theirs == tag {
                // SeqCst: as in `record`.
                return Restart::Added(self.head.fetch_add(1, Ordering::SeqCst));
            }
            if tag_newer(theirs, tag, HEAD_TAG_BITS) {
                return Restart::Stale;
            }
            // SeqCst: as in `record`; other adds to the dead count only make it retry.
            match self.head.compare_exchange_weak(
                current,
                (tag << HEAD_TAG_SHIFT) | 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Restart::Done,
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes a multiple of `size` off the claims, keeping every slot and "full", so
    /// they never carry into the tag; several threads may try, one suffices.
    #[cold]
    fn fold(&self, tag: u64, size: u32) {
        let size = u64::from(size.max(1));
        // SeqCst: as in `record`.
        let mut current = self.head.load(Ordering::SeqCst);
        while current >> HEAD_TAG_SHIFT == tag && current & CLAIMS_MASK >= FOLD_AT {
            let claims = current & CLAIMS_MASK;
            let folded = size + claims % size;
            match self.head.compare_exchange_weak(
                current,
                (tag << HEAD_TAG_SHIFT) | folded,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// The counts of `generation` (all zero if the window belongs to another one).
    pub(crate) fn counts(&self, generation: u64, size: u32) -> WindowCounts {
        let tag = generation & ((1 << HEAD_TAG_BITS) - 1);
        // SeqCst: see the module docs.
        let head = self.head.load(Ordering::SeqCst);
        if head >> HEAD_TAG_SHIFT != tag {
            return WindowCounts::default();
        }
        let calls = (head & CLAIMS_MASK).min(u64::from(size));
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
    /// A count window of `size` slots; `magic` is its [`Ring`]'s (kept apart so the
    /// enum stays three words).
    Count {
        size: u32,
        magic: u64,
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

    /// The claims the head word holds (white box).
    fn claims(w: &CountWindow) -> u64 {
        w.head.load(Ordering::SeqCst) & CLAIMS_MASK
    }

    #[test]
    fn a_success_among_successes_claims_no_slot() {
        let w = CountWindow::new();
        let (g, ring) = (7, Ring::new(5));
        for _ in 0..5 {
            w.record(g, ring, false, None);
        }
        assert_eq!(claims(&w), 5);
        for _ in 0..3 {
            assert_eq!(w.record(g, ring, false, None), Claim::Recorded(5));
        }
        assert_eq!(claims(&w), 5, "full of successes: nothing claimed");
        assert_eq!(w.record(g, ring, true, None), Claim::Recorded(5));
        assert_eq!(claims(&w), 6, "a failure claims its slot");
        for i in 0..4 {
            w.record(g, ring, false, None);
            assert_eq!(claims(&w), 7 + i, "the failure is still in the window");
        }
        assert_eq!(w.counts(g, 5).failures, 1);
        w.record(g, ring, false, None);
        assert_eq!(
            (claims(&w), w.counts(g, 5).failures),
            (11, 0),
            "the failure left the window"
        );
        w.record(g, ring, false, None);
        assert_eq!(claims(&w), 11, "successes only again");
        // A slow bit counts when slow calls are tracked, and only then.
        w.record(g, ring, false, Some(true));
        assert_eq!(claims(&w), 12);
        w.record(g, ring, false, None);
        assert_eq!(claims(&w), 12, "slow calls not tracked by this record");
        w.record(g, ring, false, Some(false));
        assert_eq!(claims(&w), 13);
        // A bitset word of a newer generation: claim, and let `record` sort it out.
        w.failures[0].store((g + 1) << BITS_TAG_SHIFT, Ordering::SeqCst);
        assert_eq!(w.record(g, ring, false, None), Claim::Recorded(5));
        assert_eq!(claims(&w), 14);
        // Another generation's head: claimed (and started over) as before.
        assert_eq!(w.record(g + 1, ring, false, None), Claim::Recorded(0));
        assert_eq!(claims(&w), 1);
        // A window of more than four bitset words always claims.
        let big = CountWindow::new();
        let ring = Ring::new(300);
        for i in 0..301 {
            big.record(g, ring, false, None);
            assert_eq!(claims(&big), i + 1);
        }
    }

    proptest::proptest! {
        /// Any sequence of outcomes, mostly successes so that the window often holds
        /// nothing else: the counts are those of the last `size` outcomes.
        #[test]
        fn count_window_counts_the_last_outcomes(
            size in 1u32..=300,
            outcomes in proptest::collection::vec((0u8..10, proptest::option::of(0u8..10)), 1..700),
        ) {
            let w = CountWindow::new();
            let ring = Ring::new(size);
            let mut last = std::collections::VecDeque::new();
            let track_slow = outcomes[0].1.is_some();
            for (f, s) in outcomes {
                let failed = f == 0;
                let slow = track_slow.then_some(s.unwrap_or(1) == 0);
                let held = last.len() as u64;
                proptest::prop_assert_eq!(w.record(5, ring, failed, slow), Claim::Recorded(held));
                last.push_back((failed, slow == Some(true)));
                if last.len() > size as usize {
                    last.pop_front();
                }
                let counts = w.counts(5, size);
                proptest::prop_assert_eq!(counts, WindowCounts {
                    calls: last.len() as u64,
                    failures: last.iter().filter(|o| o.0).count() as u64,
                    slow: last.iter().filter(|o| o.1).count() as u64,
                });
            }
        }
    }

    #[test]
    fn count_window_slides_and_counts_exactly() {
        let w = CountWindow::new();
        let g = 3;
        for i in 0..7u32 {
            let before = w.record(g, 5.into(), i % 2 == 0, Some(i == 6));
            assert_eq!(
                before,
                Claim::Recorded(u64::from(i.min(5))),
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
        assert_eq!(
            w.record(g + 1, 5.into(), true, None),
            Claim::Recorded(0),
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
        for before in 1..3 {
            assert_eq!(
                w.record(g - 1 + before % 2, 5.into(), true, Some(true)),
                Claim::Newer { tag: g + 1, before },
                "a stale writer's add lands in the newer window: its slot holds a success"
            );
        }
        assert_eq!(
            w.counts(g + 1, 5),
            WindowCounts {
                calls: 3,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn ring_slots_are_remainders() {
        for size in [1u32, 2, 3, 5, 7, 56, 100, 499, 500] {
            let ring = Ring::new(size);
            for claims in (0..2_000u64).chain([
                FOLD_AT - 1,
                FOLD_AT,
                FOLD_AT + 12_345,
                CLAIMS_MASK - 1,
                CLAIMS_MASK,
            ]) {
                assert_eq!(u64::from(ring.slot(claims)), claims % u64::from(size));
            }
        }
    }

    #[test]
    fn claims_fold_back_keeping_slots_and_fullness() {
        let w = CountWindow::new();
        for i in 0..7u32 {
            w.record(4, 5.into(), i == 6, None);
        }
        let full = w.counts(4, 5);
        // Just below the fold: the next record folds the claims back by a multiple of 5.
        let claims = FOLD_AT + 3;
        w.head
            .store((4 << HEAD_TAG_SHIFT) | claims, Ordering::SeqCst);
        assert_eq!(w.record(4, 5.into(), false, None), Claim::Recorded(5));
        let head = w.head.load(Ordering::SeqCst);
        assert_eq!(head >> HEAD_TAG_SHIFT, 4);
        assert_eq!(head & CLAIMS_MASK, 5 + (claims + 1) % 5);
        assert_eq!(w.counts(4, 5).calls, full.calls);
    }

    #[test]
    fn count_window_crosses_bitset_words() {
        let w = CountWindow::new();
        for i in 0..500u32 {
            w.record(1, 500.into(), i % 3 == 0, None);
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
            w.record(1, 500.into(), false, None);
        }
        assert_eq!(w.counts(1, 500).failures, 0);
    }

    #[test]
    fn stale_bits_are_invisible_after_a_generation_change() {
        let w = CountWindow::new();
        for _ in 0..60 {
            w.record(1, 100.into(), true, None);
        }
        w.record(2, 100.into(), false, None);
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
