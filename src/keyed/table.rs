//! The fixed table of key states.
//!
//! # Layout
//!
//! `buckets` is a power of two of buckets (at least `1.6 × max_keys` slots), allocated
//! when the limiter is built and never resized. A bucket is one 128-byte block (two cache lines, which x86 fetches as a
//! pair) holding a version word (its lock) and [`WAYS`] slots of two words:
//!
//! | word | bits | meaning |
//! |------|------|---------|
//! | `word` | 20–63 | the key's identity: its hash with the low 20 bits cleared (never 0 for a key; 0 = empty slot) |
//! | `word` | 16–19 | the key's rejections not yet given to the heavy-hitter sketch, plus one (0: none since the key took the slot) |
//! | `word` | 0–15 | permits of this key held now (only with a per-key `max_concurrent`) |
//! | `tat` | 0–63 | the key's GCRA theoretical arrival time, in the limiter's units (0 = never) |
//!
//! A key lives in one of two buckets, in any slot: its *first*, named by its hash's low
//! bits, or its *second*, named by the top 22 bits (part of the identity, so the
//! second bucket of a slot's key is known from the slot). Its identity is the hash's
//! top 44 bits. Two keys with the same identity in one bucket share one state (a chance
//! of about 14 in 2^44 per new key with the table's random seed): both are then limited
//! together, never more loosely.
//!
//! # Why two buckets
//!
//! With one bucket per key, chance alone fills some buckets past their 7 slots long
//! before the table is: at `max_keys` = 1 000 (256 buckets, 56% of the slots used)
//! about 2% of the keys found their bucket full and evicted an active key, and more
//! near the sizing's highest load. A key that may go to the emptier of two buckets
//! ("two choices") makes an overfull bucket vanishingly rare: `max_keys` active keys
//! fit with no eviction at every load the sizing gives (at most 62.5% of the slots;
//! `tests/keyed.rs` checks 1 000, 4 480 and 100 000 keys under many seeds). A new key
//! goes to its first bucket while that has at least 4 free slots, and otherwise to the
//! emptier one (the first on a tie): the first holds 85 to 90% of the keys at the
//! sizing's loads, so most calls find their key at the first lock, and in simulation
//! (1 000 to 1 000 000 keys) this left no key without a slot up to 65% of the slots
//! used, as always taking the emptier did (past 70% both start to fail).
//!
//! A refusal is decided without a lock when it can be (see "Refusals without the lock"
//! below). Otherwise a call locks its key's first bucket and decides there when the
//! key is in it (the common case: one lock, as with one bucket per key). Otherwise it also locks the
//! second, the lower index first (holding the higher, it only tries the lower; when
//! that fails it lets go and takes both in order, then looks in the first again), and
//! decides in whichever holds the key, or inserts it. Holding both locks for the
//! lookup and the insert is what keeps one state per key: two calls inserting one new
//! key are serialised by the first bucket's lock, and the second of them sees the
//! first's slot (`tests/loom_keyed.rs` models both lock orders). A permit names the
//! bucket and way of its slot, so giving it back takes one lock, as before.
//!
//! # Refusals without the lock
//!
//! A refusal changes nothing of its key's state, and on a hot table most calls are
//! refusals. Each bucket's lock is a sequence lock: its version is odd while a writer
//! holds it, and each writer moves it up by two. A call reads the version, then the
//! key's slot, decides, and reads the version again: unchanged (and even), the slot
//! read was one state of the bucket, and a refusal from it stands as if decided under
//! the lock at that moment; otherwise, or when the rules admit the call, the lock
//! decides. A key not in its first bucket is looked for in its second the same way: a
//! key lives in one of its buckets at a time and every move holds both locks, so one
//! consistent reading of the second that finds the key is the key's state then. The
//! writer's side is a compare-exchange to take the lock (Acquire) followed by a Release
//! fence, so a reader that sees any of the writer's slot writes also sees its odd
//! version; the unlock is a Release store (`tests/loom_keyed.rs` fails without the
//! version check, and without the fence).
//!
//! Such a refusal writes nothing: two threads refusing the same keys keep the bucket's
//! lines shared instead of passing them back and forth (at 1 000 keys and 2 threads,
//! 63 ns a call before, 30 after; governor takes 105). The key's first rejection
//! since it took its slot is still decided under the lock (below), and a refusal read
//! without it is counted by the calling thread (`tally`).
//!
//! # Rejections counted in the slot
//!
//! The heavy-hitter sketch (`heavy`) is a scan under a lock of its own; paying it on
//! every rejection made a rejection about a third dearer. A key's rejections decided
//! under the lock are counted in its slot instead, under the bucket's lock already
//! held: the first one since the key took the slot goes to the sketch at once (so every
//! rejected key reaches it, as before; a slot whose count field is still 0 sends its
//! key's refusals to the lock), later ones in batches of [`REJECTION_BATCH`]. The snapshot adds the count
//! still in the slot, and in every thread's tally, to each key the sketch reports, so a
//! key that keeps its slot is counted exactly; a key that leaves its slot hands its count to the sketch's counter
//! for it, or loses it (fewer than [`REJECTION_BATCH`]) when it has none.
//!
//! # Why a lock per bucket, and why this one
//!
//! A decision reads and writes two words of one slot, and an insert may replace another
//! key's slot; doing that lock-free would need a double-word compare-exchange. A lock
//! word held for a scan of seven slots and one GCRA step (fourteen, on an insert or a
//! key in its second bucket) keeps the critical section at a few nanoseconds, and two
//! threads contend only when their keys share a bucket (and only when one of them
//! writes: refusals read without it).
//!
//! The lock is a test-and-test-and-set spin lock on the version (spinning briefly, then
//! yielding the thread), not parking_lot's mutex: taking it is one compare-exchange and
//! releasing it one plain release store, where parking_lot's release is a second
//! compare-exchange (it must look for parked threads), and the version lets refusals
//! read without it. Sampled on a table in cache, the two locked
//! instructions were a quarter of a decision's time, about half of it each; the
//! critical section is too short for parking to pay. The slots' words are atomics read
//! and written with relaxed order (under the lock, its Acquire and Release order them;
//! without it, the version check validates them): no `unsafe`, and loom sees every access (`tests/loom_keyed.rs`; with a relaxed
//! release, three of its models fail).
//!
//! # Dropping, evicting, refusing (a new key whose buckets are full)
//!
//! A new key takes, in order of preference (in the bucket chosen as above):
//!
//! 1. an empty slot, or else the slot of a key whose state carries no information: TAT
//!    not after now and no permit held. A key in that state decides exactly like a key
//!    never seen (GCRA takes `max(tat, now)`), so dropping it changes no decision
//!    (lossless). Empty slots go first so that an expired key that comes back is
//!    found where it was, instead of taking another expired key's slot, whose key then
//!    does the same (on a table of a million keys each seen once a second, most calls
//!    were such misses);
//! 2. otherwise (no such slot in either bucket) the slot of the key with the smallest
//!    TAT among those of both buckets that hold no permit (the first bucket's on a tie):
//!    an *eviction*. That key comes back fresh, which can let it through at most
//!    `ceil((tat - now) / interval)` more times than an exact (unbounded) limiter would,
//!    ever — its *debt*, at most `burst`. The limiter counts evictions and the sum of
//!    debts ([`KeyedSnapshot`](super::KeyedSnapshot)), so the over-admission is measured,
//!    not guessed; the least-debt key is the cheapest one to forget;
//! 3. otherwise (every slot of both buckets holds permits, which must stay counted to
//!    be released) the call is refused with `LoadShed`: the table is full of calls in
//!    progress.
//!
//! The bound of rule 2, for one key and unit-weight calls, as a potential argument: let
//! `x` and `y` be the tokens (`(tolerance - max(0, tat - now)) / interval`) of this
//! limiter and of the exact one, and `E` the calls only this one admitted minus the calls
//! only the exact one admitted. An eviction raises `x` by the debt `D`. `Φ = E + (x - y)`
//! is unchanged by an admission of either limiter, only falls when a refill caps `x`,
//! and rises only when a refill caps `y`, which happens at `y = burst ≥ x`, leaving
//! `Φ ≤ E`. An admission by this limiter alone needs `y < 1 ≤ x` and one by the exact
//! limiter alone `x < 1 ≤ y`, so `x > y - 1` always and `E < Φ + 1`; hence
//! `E ≤ ceil(ΣD)`. `tests/prop_keyed.rs` checks it against an unbounded model.

use crossbeam_utils::CachePadded;

use crate::limiter::gcra::{decide, Decision};
#[cfg(not(loom))]
use crate::sync::thread;
use crate::sync::{fence, spin_loop, AtomicU64, Ordering};
use crate::RejectReason;

use super::hash::KeyHasher;

/// Slots per bucket: seven two-word slots and the lock fill 128 bytes.
pub(crate) const WAYS: usize = 7;

/// The top bits of the hash that index a key's second bucket: enough for the most
/// buckets a table has (`MAX_KEYS` at 1.6 slots a key is 2^22 buckets), disjoint from
/// the low bits that index its first.
const SECOND_BITS: u32 = 22;

const HELD_BITS: u32 = 16;
const HELD_MASK: u64 = (1 << HELD_BITS) - 1;
/// The pending-rejection field: 4 bits above the held count.
const PENDING_SHIFT: u32 = HELD_BITS;
const PENDING_MASK: u64 = 0xF << PENDING_SHIFT;
/// The identity is the word above the held count and the pending rejections.
pub(crate) const ID_SHIFT: u32 = HELD_BITS + 4;
/// The bits of the first word below the identity (a thread's tally keeps a count there).
pub(crate) const LOW_MASK: u64 = (1 << ID_SHIFT) - 1;
/// The identity given to a key whose hash has no identity bits set (0 means empty).
const ID_ZERO_STANDIN: u64 = 1 << ID_SHIFT;

/// A key's rejections after its first go to the sketch this many at a time (the
/// pending field holds `1 + pending`, at most 15).
pub(crate) const REJECTION_BATCH: u64 = 15;

/// One key's state (see the module docs for the words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    word: u64,
    tat: u64,
}

impl Slot {
    #[inline]
    fn id(self) -> u64 {
        self.word & !LOW_MASK
    }

    /// Rejections counted here and not yet given to the sketch.
    #[inline]
    fn pending(self) -> u64 {
        ((self.word & PENDING_MASK) >> PENDING_SHIFT).saturating_sub(1)
    }

    /// Counts one rejection; returns how many to give the sketch now: 1 for the first
    /// since the key took the slot, [`REJECTION_BATCH`] when a batch is full, else 0.
    #[inline]
    fn note_rejection(&mut self) -> u64 {
        let field = (self.word & PENDING_MASK) >> PENDING_SHIFT;
        if field == 0 {
            self.word += 1 << PENDING_SHIFT;
            1
        } else if field == REJECTION_BATCH {
            self.word = (self.word & !PENDING_MASK) | 1 << PENDING_SHIFT;
            REJECTION_BATCH
        } else {
            self.word += 1 << PENDING_SHIFT;
            0
        }
    }

    #[inline]
    fn held(self) -> u64 {
        self.word & HELD_MASK
    }
}

/// The slots of one bucket, as the decision step reads and writes them: a plain array
/// (the step's unit tests) or a locked bucket.
pub(crate) trait Slots {
    /// The first word of slot `way` (identity, pending rejections, held permits).
    fn word(&self, way: usize) -> u64;
    /// Slot `way`.
    fn get(&self, way: usize) -> Slot;
    /// Sets the first word of slot `way`.
    fn set_word(&mut self, way: usize, word: u64);
    /// Sets slot `way`.
    fn set(&mut self, way: usize, slot: Slot);
}

impl Slots for [Slot; WAYS] {
    #[inline]
    fn word(&self, way: usize) -> u64 {
        self[way].word
    }

    #[inline]
    fn get(&self, way: usize) -> Slot {
        self[way]
    }

    #[inline]
    fn set_word(&mut self, way: usize, word: u64) {
        self[way].word = word;
    }

    #[inline]
    fn set(&mut self, way: usize, slot: Slot) {
        self[way] = slot;
    }
}

/// The rule every key follows, in the limiter's units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    /// Units per permit.
    pub(crate) interval: u64,
    /// `burst × interval`.
    pub(crate) tolerance: u64,
    /// Permits one key may hold; 0 when there is no per-key concurrency limit (then
    /// permits are not counted and do not keep a key in the table).
    pub(crate) max_held: u64,
}

/// What an admitted call holds in the table: plain data, so it crosses the C ABI.
/// Give it back exactly once, to the limiter that issued it (a [`KeyedPermit`]
/// does that itself).
///
/// [`KeyedPermit`]: super::KeyedPermit
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySlot {
    pub(crate) bucket: u32,
    pub(crate) way: u8,
    /// Whether the call counts toward the key's `max_concurrent`.
    pub(crate) pinned: bool,
    pub(crate) id: u64,
}

impl KeySlot {
    /// Two words for a foreign caller to keep: the identity, then the place (bucket,
    /// way, pinned). [`KeySlot::from_parts`] takes them back; forged words are refused
    /// by the limiter, never trusted.
    pub fn to_parts(self) -> [u64; 2] {
        [
            self.id,
            u64::from(self.bucket) << 16 | u64::from(self.way) << 8 | u64::from(self.pinned),
        ]
    }

    /// The slot two words from [`KeySlot::to_parts`] describe; `None` for words no slot
    /// has (the limiter checks the rest when the slot is given back).
    pub fn from_parts(parts: [u64; 2]) -> Option<KeySlot> {
        let [id, place] = parts;
        let pinned = place & 0xFF;
        let way = (place >> 8) & 0xFF;
        let bucket = place >> 16;
        if id == 0 || id & LOW_MASK != 0 || pinned > 1 || way >= WAYS as u64 {
            return None;
        }
        Some(KeySlot {
            bucket: u32::try_from(bucket).ok()?,
            way: way as u8,
            pinned: pinned == 1,
            id,
        })
    }
}

/// How a bucket answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Admitted in slot `way`; `evicted_debt` is the debt (units) of the key this call
    /// evicted, 0 when none; `left` is the identity and pending rejections of the key
    /// whose slot this call took, when it had rejections pending (else 0 and 0).
    Admitted {
        way: u8,
        evicted_debt: u64,
        left: (u64, u64),
    },
    /// Refused; `retry_after` in units where known; `report` rejections of the key to
    /// give the heavy-hitter sketch now (see the module docs); `caller_counts` when the
    /// refusal was read without the lock and the slot did not count it: the caller
    /// counts it (in its thread's tally).
    Refused {
        reason: RejectReason,
        retry_after: Option<u64>,
        report: u64,
        caller_counts: bool,
    },
}

/// The way of `slots` that holds key `id`, if any.
#[inline]
fn find<S: Slots>(slots: &S, id: u64) -> Option<usize> {
    (0..WAYS).find(|&way| slots.word(way) & !LOW_MASK == id)
}

/// The decision for key `id` at `now` in one bucket, as the table makes it when both of
/// the key's buckets are this one (the unit tests' entry to the rules of the module
/// docs).
#[cfg(test)]
fn decide_in<S: Slots>(slots: &mut S, id: u64, now: u64, rule: &Rule, retry_within: u64) -> Answer {
    match find(slots, id) {
        Some(way) => decide_at(slots, way, now, rule, retry_within),
        None => insert_cold(slots, id, now, rule),
    }
}

/// The decision for the key in slot `way` at `now`: the pure step the table runs under
/// the lock of the key's bucket. A `RateLimited` refusal with a wait of at most
/// `retry_within` units is not counted as a rejection: the caller asks again with a
/// later reading.
#[inline]
fn decide_at<S: Slots>(
    slots: &mut S,
    way: usize,
    now: u64,
    rule: &Rule,
    retry_within: u64,
) -> Answer {
    let mut slot = slots.get(way);
    let (reason, retry_after) = match verdict(slot, now, rule) {
        Verdict::Admit { new_tat } => {
            slot.tat = new_tat;
            slot.word += u64::from(rule.max_held != 0);
            slots.set(way, slot);
            return Answer::Admitted {
                way: way as u8,
                evicted_debt: 0,
                left: (0, 0),
            };
        }
        Verdict::Refuse {
            reason,
            retry_after,
        } => (reason, retry_after),
    };
    let report = if counts(reason, retry_after, retry_within) {
        let report = slot.note_rejection();
        slots.set_word(way, slot.word);
        report
    } else {
        0
    };
    Answer::Refused {
        reason,
        retry_after,
        report,
        caller_counts: false,
    }
}

/// What the rules say of the key in `slot` at `now`, before anything is written.
enum Verdict {
    Admit {
        new_tat: u64,
    },
    Refuse {
        reason: RejectReason,
        retry_after: Option<u64>,
    },
}

#[inline]
fn verdict(slot: Slot, now: u64, rule: &Rule) -> Verdict {
    if rule.max_held != 0 && slot.held() >= rule.max_held {
        return Verdict::Refuse {
            reason: RejectReason::BulkheadFull,
            retry_after: None,
        };
    }
    match decide(slot.tat, now, rule.interval, rule.tolerance, 0) {
        Decision::Admit { new_tat, .. } => Verdict::Admit { new_tat },
        Decision::Deny { retry_after } => Verdict::Refuse {
            reason: RejectReason::RateLimited,
            retry_after,
        },
    }
}

/// Whether a refusal counts as a rejection of its key: all do but a `RateLimited` one
/// whose wait is at most `retry_within` units (the caller asks again with a later
/// reading).
#[inline]
fn counts(reason: RejectReason, retry_after: Option<u64>, retry_within: u64) -> bool {
    !(reason == RejectReason::RateLimited
        && matches!(retry_after, Some(after) if after <= retry_within))
}

/// What a reading of a bucket without its lock found for a key.
enum Unlocked {
    /// The key is refused: the answer stands.
    Refused(Answer),
    /// The key was not in the bucket as read (it may be in its other bucket).
    Absent,
    /// The lock must decide: the key is there but the rules may admit it, or its first
    /// rejection since it took the slot is not reported yet, or a writer took the
    /// bucket meanwhile.
    Lock,
}

/// The refusal of key `id` decided from `bucket` without its lock, at version `seen`
/// (even: no writer held it then): when the bucket holds the key, its first rejection
/// since it took the slot is already reported (the sketch then knows the key), the
/// rules refuse it, and no writer took the bucket meanwhile. Then the slots read were
/// one state of the bucket, which refused the key at the moment `now` was read.
/// Nothing is written.
#[inline]
fn refuse_unlocked(
    bucket: &Bucket,
    seen: u64,
    id: u64,
    now: u64,
    rule: &Rule,
    retry_within: u64,
) -> Unlocked {
    // Relaxed: the version check below validates every value read here.
    let Some((cell, word)) = bucket.slots.iter().find_map(|cell| {
        let word = cell.word.load(Ordering::Relaxed);
        (word & !LOW_MASK == id).then_some((cell, word))
    }) else {
        return Unlocked::Absent;
    };
    if word & PENDING_MASK == 0 {
        return Unlocked::Lock;
    }
    let slot = Slot {
        word,
        tat: cell.tat.load(Ordering::Relaxed),
    };
    let Verdict::Refuse {
        reason,
        retry_after,
    } = verdict(slot, now, rule)
    else {
        return Unlocked::Lock;
    };
    if !bucket.unchanged_since(seen) {
        return Unlocked::Lock;
    }
    Unlocked::Refused(Answer::Refused {
        reason,
        retry_after,
        report: 0,
        caller_counts: counts(reason, retry_after, retry_within),
    })
}

/// The slots of a bucket free for a new key (empty, or no information left: TAT not
/// after `now` and no permit held): how many, and the one to take, an empty slot
/// before an expired one (the first of each). A key whose state expired keeps its slot
/// while an empty one is left, so that when it comes back it is found where it was
/// rather than taking another expired key's slot, and so on down a chain of misses.
#[inline]
fn free_slots<S: Slots>(slots: &S, now: u64) -> (usize, Option<usize>) {
    let (mut free, mut empty, mut expired) = (0, None, None);
    for way in 0..WAYS {
        let word = slots.word(way);
        if word & !LOW_MASK == 0 {
            free += 1;
            empty.get_or_insert(way);
        } else if word & HELD_MASK == 0 && slots.get(way).tat <= now {
            free += 1;
            expired.get_or_insert(way);
        }
    }
    (free, empty.or(expired))
}

/// In a bucket with no free slot: the slot of least debt among those holding no
/// permit, with its debt (the first of equals).
fn least_debt<S: Slots>(slots: &S, now: u64) -> Option<(usize, u64)> {
    let mut least: Option<(usize, u64)> = None;
    for way in 0..WAYS {
        let s = slots.get(way);
        if s.held() != 0 {
            continue;
        }
        let debt = s.tat.saturating_sub(now);
        if least.is_none_or(|(_, d)| debt < d) {
            least = Some((way, debt));
        }
    }
    least
}

/// A new key's first bucket takes it while it has at least this many free slots, so
/// that most keys are found at the first lock; past that, the emptier bucket does (see
/// the module docs).
const FIRST_WHILE_FREE: usize = 4;

/// The refusal of a key whose buckets are full of held permits.
const SHED: Answer = Answer::Refused {
    reason: RejectReason::LoadShed,
    retry_after: None,
    report: 1,
    caller_counts: false,
};

#[cfg(test)]
fn insert_cold<S: Slots>(slots: &mut S, id: u64, now: u64, rule: &Rule) -> Answer {
    insert_one(slots, id, now, rule)
}

/// A new key in a table whose two buckets for it are one: the first free slot, else
/// the least debt, else `LoadShed`.
#[cold]
#[inline(never)]
fn insert_one<S: Slots>(slots: &mut S, id: u64, now: u64, rule: &Rule) -> Answer {
    let victim = match free_slots(slots, now) {
        (_, Some(way)) => Some((way, 0)),
        (_, None) => least_debt(slots, now),
    };
    match victim {
        Some((way, evicted_debt)) => take(slots, way, evicted_debt, id, now, rule),
        None => SHED,
    }
}

/// Key `id` takes slot `way`, whose key (if any) leaves with `evicted_debt`.
fn take<S: Slots>(
    slots: &mut S,
    way: usize,
    evicted_debt: u64,
    id: u64,
    now: u64,
    rule: &Rule,
) -> Answer {
    let pin = u64::from(rule.max_held != 0);
    let old = slots.get(way);
    let left = match old.pending() {
        0 => (0, 0),
        pending => (old.id(), pending),
    };
    // A fresh key always passes: `interval ≤ tolerance` (burst ≥ 1) and `max_held ≥ 1`.
    match decide(0, now, rule.interval, rule.tolerance, 0) {
        Decision::Admit { new_tat, .. } => {
            slots.set(
                way,
                Slot {
                    word: id | pin,
                    tat: new_tat,
                },
            );
            Answer::Admitted {
                way: way as u8,
                evicted_debt,
                left,
            }
        }
        // Only at the end of the time horizon (`now + interval` overflows).
        Decision::Deny { retry_after } => Answer::Refused {
            reason: RejectReason::RateLimited,
            retry_after,
            report: 1,
            caller_counts: false,
        },
    }
}

/// One slot's words (see the module docs: relaxed atomics, ordered by the bucket's lock,
/// or read without it and validated by its version).
struct SlotCell {
    word: AtomicU64,
    tat: AtomicU64,
}

/// How many times a thread that finds a bucket locked spins before it yields.
#[cfg(not(loom))]
const SPINS: u32 = 64;

/// A bucket: its version (a sequence lock) and its slots.
struct Bucket {
    /// Odd while a writer holds the bucket; each writer moves it up by two.
    version: AtomicU64,
    slots: [SlotCell; WAYS],
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            version: AtomicU64::new(0),
            slots: std::array::from_fn(|_| SlotCell {
                word: AtomicU64::new(0),
                tat: AtomicU64::new(0),
            }),
        }
    }

    /// The version, read before slots are read without the lock.
    #[inline]
    fn version(&self) -> u64 {
        // Acquire: pairs with the Release of the unlock that wrote it, so the slots
        // read after it hold at least that writer's values.
        self.version.load(Ordering::Acquire)
    }

    /// Whether no writer took the bucket since version `seen` was read: then the slots
    /// read in between were one state of the bucket.
    #[inline]
    fn unchanged_since(&self, seen: u64) -> bool {
        // Acquire fence: had a slot read returned a later writer's value, this fence
        // synchronizes with that writer's Release fence (after its lock), so the load
        // below sees the writer's odd version or a later one.
        fence(Ordering::Acquire);
        // Relaxed: ordered after the slot reads by the fence.
        self.version.load(Ordering::Relaxed) == seen
    }

    #[inline]
    fn lock(&self) -> Locked<'_> {
        // Relaxed: only the compare-exchange's expected value; it is the Acquire.
        self.lock_from(self.version.load(Ordering::Relaxed))
    }

    /// The lock, expecting version `seen` (the compare-exchange's first guess).
    #[inline]
    fn lock_from(&self, seen: u64) -> Locked<'_> {
        let seen = if seen & 1 == 0 {
            match self.take(seen) {
                Ok(locked) => return locked,
                Err(actual) => actual,
            }
        } else {
            seen
        };
        self.lock_contended(seen)
    }

    /// The lock if it is free now; `None` without waiting otherwise.
    #[inline]
    fn try_lock(&self) -> Option<Locked<'_>> {
        // Relaxed: as in `lock`.
        let seen = self.version.load(Ordering::Relaxed);
        if seen & 1 == 0 {
            self.take(seen).ok()
        } else {
            None
        }
    }

    /// Takes the lock if the version is still `seen` (even); else the version found.
    #[inline]
    fn take(&self, seen: u64) -> Result<Locked<'_>, u64> {
        debug_assert_eq!(seen & 1, 0, "an odd version is a held lock");
        // Acquire: every slot write of the previous holder (made before its Release
        // store) is seen by this one.
        self.version
            .compare_exchange(seen, seen + 1, Ordering::Acquire, Ordering::Relaxed)?;
        // Release fence: orders the odd version before this holder's slot writes, for a
        // reader without the lock that sees one of them (see `unchanged_since`).
        fence(Ordering::Release);
        Ok(Locked {
            bucket: self,
            version: seen + 1,
        })
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self, mut seen: u64) -> Locked<'_> {
        #[cfg(not(loom))]
        let mut spins = 0;
        loop {
            if seen & 1 == 1 {
                // Relaxed: only a hint of when to try; the compare-exchange is the
                // Acquire. Waiting on a read keeps the line shared instead of bouncing it
                // between waiters. (Not under loom, where a relaxed load may return a
                // stale version for ever: there the compare-exchange for the version
                // the holder's unlock writes reads the latest value, after a yield.)
                #[cfg(not(loom))]
                while seen & 1 == 1 {
                    if spins < SPINS {
                        spins += 1;
                        spin_loop();
                    } else {
                        // The holder may have been preempted: let it run.
                        thread::yield_now();
                    }
                    seen = self.version.load(Ordering::Relaxed);
                }
                #[cfg(loom)]
                {
                    spin_loop();
                    seen += 1;
                }
            }
            match self.take(seen) {
                Ok(locked) => return locked,
                // The latest version (a failed compare-exchange reads it).
                Err(actual) => seen = actual,
            }
        }
    }
}

/// A locked bucket (at its odd `version`); unlocks when dropped.
struct Locked<'a> {
    bucket: &'a Bucket,
    version: u64,
}

impl Drop for Locked<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: this holder's slot writes happen before the next holder's Acquire,
        // and before the slot reads of a reader without the lock that reads this
        // version.
        self.bucket
            .version
            .store(self.version + 1, Ordering::Release);
    }
}

// Relaxed throughout: only the lock holder reads or writes the slots, and the lock's
// Acquire and Release order its accesses after the previous holder's.
impl Slots for Locked<'_> {
    #[inline]
    fn word(&self, way: usize) -> u64 {
        self.bucket.slots[way].word.load(Ordering::Relaxed)
    }

    #[inline]
    fn get(&self, way: usize) -> Slot {
        let cell = &self.bucket.slots[way];
        Slot {
            word: cell.word.load(Ordering::Relaxed),
            tat: cell.tat.load(Ordering::Relaxed),
        }
    }

    #[inline]
    fn set_word(&mut self, way: usize, word: u64) {
        self.bucket.slots[way].word.store(word, Ordering::Relaxed);
    }

    #[inline]
    fn set(&mut self, way: usize, slot: Slot) {
        let cell = &self.bucket.slots[way];
        cell.word.store(slot.word, Ordering::Relaxed);
        cell.tat.store(slot.tat, Ordering::Relaxed);
    }
}

/// The table: buckets of slots behind tiny locks, and the seeded hash that places keys.
pub(crate) struct Table {
    buckets: Box<[CachePadded<Bucket>]>,
    mask: u64,
    hasher: KeyHasher,
}

impl Table {
    /// A table for `max_keys` keys: at least `1.6 × max_keys` slots (at `max_keys`
    /// active keys a bucket then holds 4.4 of its 7 on average, at most), a power of
    /// two of buckets, all allocated now.
    pub(crate) fn new(max_keys: u32, hasher: KeyHasher) -> Table {
        let wanted = (u64::from(max_keys) * 8).div_ceil(5 * WAYS as u64).max(1);
        debug_assert!(wanted <= 1 << SECOND_BITS, "MAX_KEYS fits the second index");
        let count = wanted.next_power_of_two();
        let buckets = (0..count)
            .map(|_| CachePadded::new(Bucket::new()))
            .collect();
        Table {
            buckets,
            mask: count - 1,
            hasher,
        }
    }

    /// Slots in all.
    pub(crate) fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// The second bucket of the key of identity `id` (its first is in [`locate`]'s
    /// answer): the identity's top bits, which the first bucket's index (the hash's low
    /// bits) does not use.
    ///
    /// [`locate`]: Table::locate
    #[inline]
    pub(crate) fn second(&self, id: u64) -> u32 {
        // The mask keeps the index below the bucket count, which fits u32 (MAX_KEYS).
        ((id >> (64 - SECOND_BITS)) & self.mask) as u32
    }

    /// The first bucket and the identity of `key`.
    #[inline]
    pub(crate) fn locate(&self, key: &[u8]) -> (u32, u64) {
        let hash = self.hasher.hash(key);
        let id = match hash & !LOW_MASK {
            0 => ID_ZERO_STANDIN,
            id => id,
        };
        // The mask keeps the index below the bucket count, which fits u32 (MAX_KEYS).
        ((hash & self.mask) as u32, id)
    }

    /// Starts fetching `bucket` (a table far larger than the cache misses on every
    /// call): a plain read of its lock word, which the clock reading that follows does
    /// not wait for.
    #[inline]
    pub(crate) fn touch(&self, bucket: u32) {
        // Relaxed: the value is not used; only the line's arrival matters.
        let _ = self.buckets[bucket as usize]
            .version
            .load(Ordering::Relaxed);
    }

    /// Decides for key `id` of first bucket `bucket` at `now`: the bucket that decided
    /// (where an admitted call's slot is) and the answer (`retry_within`: see
    /// [`decide_at`]). Inlined into its hot caller: it returns a large value, which an
    /// out-of-line call passes through memory.
    #[inline(always)]
    pub(crate) fn acquire(
        &self,
        bucket: u32,
        id: u64,
        now: u64,
        rule: &Rule,
        retry_within: u64,
    ) -> (u32, Answer) {
        let first = &self.buckets[bucket as usize];
        let seen = first.version();
        // Most calls to a hot table are refusals: those need no write, so they are read
        // without the lock and leave the bucket's lines shared between cores.
        let in_first = if seen & 1 == 0 {
            refuse_unlocked(first, seen, id, now, rule, retry_within)
        } else {
            Unlocked::Lock
        };
        match in_first {
            Unlocked::Refused(answer) => return (bucket, answer),
            // A key not in its first bucket is looked for in its second the same way.
            // (Only there: a key lives in one of its buckets at a time, every move
            // holding both locks, so one consistent reading of the second finding the
            // key is the key's state then, whatever the first held.)
            Unlocked::Absent => {
                let other = self.second(id);
                let second = &self.buckets[other as usize];
                let seen = second.version();
                if other != bucket && seen & 1 == 0 {
                    if let Unlocked::Refused(answer) =
                        refuse_unlocked(second, seen, id, now, rule, retry_within)
                    {
                        return (other, answer);
                    }
                }
            }
            Unlocked::Lock => {}
        }
        let mut slots = first.lock_from(seen);
        match find(&slots, id) {
            Some(way) => (bucket, decide_at(&mut slots, way, now, rule, retry_within)),
            None => self.acquire_missed(slots, bucket, id, now, rule, retry_within),
        }
    }

    /// The key is not in its first bucket (`first`, locked): it is in its second, or
    /// new. Both buckets are locked, lower index first, so that two inserts of one key
    /// cannot both miss it: the one that locks second sees the other's slot.
    #[cold]
    #[inline(never)]
    fn acquire_missed<'a>(
        &'a self,
        first: Locked<'a>,
        bucket: u32,
        id: u64,
        now: u64,
        rule: &Rule,
        retry_within: u64,
    ) -> (u32, Answer) {
        let other = self.second(id);
        if other == bucket {
            let mut first = first;
            return (bucket, insert_one(&mut first, id, now, rule));
        }
        let second_bucket = &self.buckets[other as usize];
        // Holding the lower index, wait for the higher; holding the higher, only try
        // the lower (never wait on it), else let go and take both in order. No thread
        // waits for a lock while holding a higher one: no deadlock.
        let (mut first, mut second) = if bucket < other {
            (first, second_bucket.lock())
        } else if let Some(second) = second_bucket.try_lock() {
            (first, second)
        } else {
            drop(first);
            let second = second_bucket.lock();
            let mut first = self.buckets[bucket as usize].lock();
            // Unlocked for a moment: another call may have put the key there.
            if let Some(way) = find(&first, id) {
                drop(second);
                return (bucket, decide_at(&mut first, way, now, rule, retry_within));
            }
            (first, second)
        };
        if let Some(way) = find(&second, id) {
            drop(first);
            return (other, decide_at(&mut second, way, now, rule, retry_within));
        }
        // A new key: the first bucket while it has room to spare, else the emptier
        // (the first of equals), else the least debt of either, else `LoadShed`.
        let (free1, way1) = free_slots(&first, now);
        let (in_second, way, debt) = match way1 {
            Some(way) if free1 >= FIRST_WHILE_FREE => (false, way, 0),
            _ => match (way1, free_slots(&second, now)) {
                (Some(way), (free2, _)) if free1 >= free2 => (false, way, 0),
                (_, (_, Some(way))) => (true, way, 0),
                (Some(way), (_, None)) => (false, way, 0),
                (None, (_, None)) => match (least_debt(&first, now), least_debt(&second, now)) {
                    (Some((_, d1)), Some((way, d2))) if d2 < d1 => (true, way, d2),
                    (Some((way, d)), _) => (false, way, d),
                    (None, Some((way, d))) => (true, way, d),
                    (None, None) => return (bucket, SHED),
                },
            },
        };
        if in_second {
            drop(first);
            (other, take(&mut second, way, debt, id, now, rule))
        } else {
            drop(second);
            (bucket, take(&mut first, way, debt, id, now, rule))
        }
    }

    /// The rejections of key `id` of first bucket `bucket` counted in its slot (in
    /// either of its buckets) and not yet given to the sketch (0 when the key has no
    /// slot).
    pub(crate) fn pending(&self, bucket: u32, id: u64) -> u64 {
        let in_bucket = |index: u32| {
            let Some(bucket) = self.buckets.get(index as usize) else {
                return 0;
            };
            let slots = bucket.lock();
            find(&slots, id).map_or(0, |way| slots.get(way).pending())
        };
        // One lock at a time: a key is in one of the two, and a count that moves
        // between the reads is a statistic's blur, not a lost permit.
        match in_bucket(bucket) {
            0 => in_bucket(self.second(id)),
            pending => pending,
        }
    }

    /// Releases the permit `slot` counted; false (and nothing changed) when the slot
    /// does not hold one of this key's permits (forged, or given back already).
    #[inline]
    pub(crate) fn release(&self, slot: KeySlot) -> bool {
        if !slot.pinned {
            return self.valid_place(slot);
        }
        let Some(bucket) = self.buckets.get(slot.bucket as usize) else {
            return false;
        };
        let mut slots = bucket.lock();
        let way = usize::from(slot.way) % WAYS;
        let s = slots.get(way);
        if s.id() != slot.id || s.held() == 0 {
            return false;
        }
        slots.set_word(way, s.word - 1);
        true
    }

    /// Undoes an admission a later stage refused: the permit is released and the
    /// key's schedule moves back by one interval (as if the call had not come, up to
    /// the interleaving of other calls of the key). False when `slot` holds nothing.
    #[cold]
    pub(crate) fn cancel(&self, slot: KeySlot, rule: &Rule) -> bool {
        let Some(bucket) = self.buckets.get(slot.bucket as usize) else {
            return false;
        };
        let mut slots = bucket.lock();
        let way = usize::from(slot.way) % WAYS;
        let mut s = slots.get(way);
        if s.id() != slot.id {
            // Not pinned and evicted meanwhile: nothing left to give back.
            return !slot.pinned && self.valid_place(slot);
        }
        if slot.pinned {
            if s.held() == 0 {
                return false;
            }
            s.word -= 1;
        }
        s.tat = s.tat.saturating_sub(rule.interval);
        slots.set(way, s);
        true
    }

    fn valid_place(&self, slot: KeySlot) -> bool {
        (slot.bucket as usize) < self.buckets.len() && usize::from(slot.way) < WAYS
    }

    /// Keys that still limit at `now` (TAT ahead, or permits held), and permits held.
    pub(crate) fn count_live(&self, now: u64) -> (u64, u64) {
        let (mut keys, mut held) = (0, 0);
        for bucket in self.buckets.iter() {
            let slots = bucket.lock();
            for s in (0..WAYS).map(|way| slots.get(way)) {
                if s.id() != 0 && (s.held() != 0 || s.tat > now) {
                    keys += 1;
                    held += s.held();
                }
            }
        }
        (keys, held)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const I: u64 = 10;

    fn rule(burst: u64, max_held: u64) -> Rule {
        Rule {
            interval: I,
            tolerance: burst * I,
            max_held,
        }
    }

    fn id(n: u64) -> u64 {
        n << ID_SHIFT
    }

    /// A bucket under the rule of `burst` and `max_held` whose first slot holds key 1,
    /// admitted once at time 100.
    fn key_1_admitted(burst: u64, max_held: u64) -> ([Slot; WAYS], Rule) {
        let mut b = [Slot::default(); WAYS];
        let r = rule(burst, max_held);
        admitted(decide_in(&mut b, id(1), 100, &r, 0));
        (b, r)
    }

    fn admitted(a: Answer) -> (u8, u64) {
        match a {
            Answer::Admitted {
                way, evicted_debt, ..
            } => (way, evicted_debt),
            other => panic!("refused: {other:?}"),
        }
    }

    #[test]
    fn a_key_gets_its_burst_then_its_rate() {
        let (mut b, r) = key_1_admitted(2, 0);
        admitted(decide_in(&mut b, id(1), 100, &r, 0));
        assert_eq!(
            decide_in(&mut b, id(1), 100, &r, 0),
            Answer::Refused {
                reason: RejectReason::RateLimited,
                retry_after: Some(I),
                report: 1,
                caller_counts: false,
            }
        );
        // Another key is untouched.
        admitted(decide_in(&mut b, id(2), 100, &r, 0));
        admitted(decide_in(&mut b, id(1), 110, &r, 0));
    }

    #[test]
    fn concurrency_is_checked_before_the_rate_is_spent() {
        let (mut b, r) = key_1_admitted(5, 1);
        let tat = b[0].tat;
        assert_eq!(
            decide_in(&mut b, id(1), 100, &r, 0),
            Answer::Refused {
                reason: RejectReason::BulkheadFull,
                retry_after: None,
                report: 1,
                caller_counts: false,
            }
        );
        assert_eq!(b[0].tat, tat, "a concurrency refusal spends no quota");
    }

    #[test]
    fn expired_keys_are_dropped_for_free_then_least_debt_is_evicted() {
        let mut b = [Slot::default(); WAYS];
        let r = rule(3, 0);
        for k in 1..=WAYS as u64 {
            // Key k spends k permits (capped at the burst): debts 1, 2, 3, 3, ...
            for _ in 0..k.min(3) {
                admitted(decide_in(&mut b, id(k), 100, &r, 0));
            }
        }
        // At 115 key 1 (TAT 110) has expired: dropped with no debt.
        assert_eq!(admitted(decide_in(&mut b, id(50), 115, &r, 0)), (0, 0));
        // At 115 nobody else has expired: key 2 (TAT 120, debt 5) is the cheapest.
        assert_eq!(admitted(decide_in(&mut b, id(51), 115, &r, 0)), (1, 5));
    }

    #[test]
    fn an_expired_key_keeps_its_slot_while_an_empty_one_is_left() {
        let (mut b, r) = key_1_admitted(1, 0);
        // At 200 key 1 has expired; the newcomer takes an empty slot all the same.
        assert_eq!(admitted(decide_in(&mut b, id(2), 200, &r, 0)), (1, 0));
        assert_eq!(b[0].id(), id(1));
        assert!(matches!(
            decide_in(&mut b, id(1), 200, &r, 0),
            Answer::Admitted { way: 0, .. }
        ));
    }

    #[test]
    fn a_bucket_of_held_permits_sheds_new_keys() {
        let mut b = [Slot::default(); WAYS];
        let r = rule(1, 1);
        for k in 1..=WAYS as u64 {
            admitted(decide_in(&mut b, id(k), 100, &r, 0));
        }
        assert_eq!(
            decide_in(&mut b, id(99), 1_000_000, &r, 0),
            Answer::Refused {
                reason: RejectReason::LoadShed,
                retry_after: None,
                report: 1,
                caller_counts: false,
            }
        );
    }

    fn report(a: Answer) -> u64 {
        match a {
            Answer::Refused { report, .. } => report,
            other => panic!("admitted: {other:?}"),
        }
    }

    #[test]
    fn rejections_go_to_the_sketch_first_at_once_then_in_batches() {
        let (mut b, r) = key_1_admitted(1, 0);
        // A refusal the caller will ask again about is not counted.
        assert_eq!(report(decide_in(&mut b, id(1), 100, &r, I)), 0);
        assert_eq!(b[0].pending(), 0);
        assert_eq!(report(decide_in(&mut b, id(1), 100, &r, 0)), 1);
        let n = 3 * REJECTION_BATCH + 4;
        let reported: Vec<u64> = (1..n)
            .map(|_| report(decide_in(&mut b, id(1), 100, &r, 0)))
            .collect();
        assert_eq!(reported.iter().sum::<u64>() + b[0].pending(), n - 1);
        assert_eq!(b[0].pending(), 3, "{reported:?}");
        assert!(reported.iter().all(|&w| w == 0 || w == REJECTION_BATCH));
        // The other slots taken (expired by 1 000 too, but after key 1's)...
        for k in 10..10 + WAYS as u64 - 1 {
            admitted(decide_in(&mut b, id(k), 100, &r, 0));
        }
        // ...the count still in the slot leaves with the key, and its identity with it.
        let (way, debt) = match decide_in(&mut b, id(2), 1_000, &r, 0) {
            Answer::Admitted {
                way,
                evicted_debt,
                left,
            } => {
                assert_eq!(left, (id(1), 3));
                (way, evicted_debt)
            }
            other => panic!("{other:?}"),
        };
        assert_eq!((way, debt), (0, 0));
        assert_eq!(
            b[0].pending(),
            0,
            "the newcomer starts with nothing pending"
        );
    }

    #[test]
    fn slots_round_trip_and_forged_parts_are_refused() {
        let slot = KeySlot {
            bucket: 12345,
            way: 6,
            pinned: true,
            id: id(77),
        };
        assert_eq!(KeySlot::from_parts(slot.to_parts()), Some(slot));
        assert_eq!(KeySlot::from_parts([0, 0]), None);
        assert_eq!(KeySlot::from_parts([id(1) | 1, 0]), None);
        assert_eq!(KeySlot::from_parts([id(1), 7 << 8]), None);
        assert_eq!(KeySlot::from_parts([id(1), 2]), None);
        assert_eq!(KeySlot::from_parts([id(1), u64::MAX << 16]), None);
    }

    #[test]
    fn release_checks_identity_and_count() {
        let table = Table::new(10, KeyHasher::with_seed(1, 2));
        let r = rule(5, 2);
        let (bucket, key) = table.locate(b"k");
        let (at, answer) = table.acquire(bucket, key, 100, &r, 0);
        let (way, _) = admitted(answer);
        let slot = KeySlot {
            bucket: at,
            way,
            pinned: true,
            id: key,
        };
        assert!(!table.release(KeySlot { id: id(3), ..slot }));
        assert!(!table.release(KeySlot {
            bucket: u32::MAX,
            ..slot
        }));
        assert!(table.release(slot));
        assert!(!table.release(slot), "given back twice");
        assert_eq!(table.count_live(100), (1, 0));
        assert_eq!(table.count_live(u64::MAX), (0, 0));
    }

    /// Keys `key-N` of `table` whose first bucket is `first` and second `second`.
    fn keys_placed(table: &Table, first: u32, second: u32, n: usize) -> Vec<Vec<u8>> {
        (0u64..)
            .map(|i| format!("key-{i}").into_bytes())
            .filter(|k| {
                let (b, id) = table.locate(k);
                b == first && table.second(id) == second
            })
            .take(n)
            .collect()
    }

    /// Admits `key` at `now`; the bucket and way of its slot.
    fn admit(table: &Table, key: &[u8], now: u64, r: &Rule) -> (u32, u8, u64) {
        let (bucket, id) = table.locate(key);
        let (at, answer) = table.acquire(bucket, id, now, r, 0);
        let (way, debt) = admitted(answer);
        (at, way, debt)
    }

    #[test]
    fn a_new_key_takes_its_first_bucket_then_the_emptier_one() {
        // max_keys 5: two buckets.
        let table = Table::new(5, KeyHasher::with_seed(3, 4));
        assert_eq!(table.capacity(), 2 * WAYS);
        let r = rule(1, 0);
        let only_0 = keys_placed(&table, 0, 0, 3);
        let either = keys_placed(&table, 0, 1, 2);
        for k in &only_0 {
            assert_eq!(admit(&table, k, 100, &r).0, 0);
        }
        // Four free slots left in bucket 0: it still takes a key that could go to 1.
        assert_eq!(admit(&table, &either[0], 100, &r).0, 0);
        // Three free in bucket 0, seven in bucket 1: the emptier one.
        assert_eq!(admit(&table, &either[1], 100, &r).0, 1);
        // The key is found in its second bucket: refused there, not given a second slot.
        let (b, id) = table.locate(&either[1]);
        assert!(matches!(
            table.acquire(b, id, 100, &r, 0),
            (
                1,
                Answer::Refused {
                    reason: RejectReason::RateLimited,
                    ..
                }
            )
        ));
        assert_eq!(table.count_live(100), (5, 0));
        // Its first rejection went to the sketch; the next is read without a lock in
        // the second bucket too, and left to the caller to count.
        assert_eq!(table.pending(b, id), 0);
        assert!(matches!(
            table.acquire(b, id, 100, &r, 0),
            (
                1,
                Answer::Refused {
                    report: 0,
                    caller_counts: true,
                    ..
                }
            )
        ));
        assert_eq!(table.pending(b, id), 0);
        // Rejections counted in a slot of the second bucket (under its lock, as when a
        // writer held it) are found from the first's index.
        {
            let mut slots = table.buckets[1].lock();
            let way = find(&slots, id).expect("the key is in its second bucket");
            let mut slot = slots.get(way);
            assert_eq!(slot.note_rejection(), 0);
            slots.set_word(way, slot.word);
        }
        assert_eq!(table.pending(b, id), 1);
    }

    #[test]
    fn both_buckets_full_evict_the_least_debt_of_either_and_shed_only_when_both_hold() {
        let table = Table::new(5, KeyHasher::with_seed(3, 4));
        let r = rule(3, 1);
        let in_0 = keys_placed(&table, 0, 0, WAYS);
        let in_1 = keys_placed(&table, 1, 1, WAYS);
        let newcomer = &keys_placed(&table, 1, 0, 1)[0];
        let mut slots = Vec::new();
        for k in in_0.iter().chain(&in_1) {
            let (bucket, id) = table.locate(k);
            let (at, answer) = table.acquire(bucket, id, 100, &r, 0);
            let (way, _) = admitted(answer);
            slots.push(KeySlot {
                bucket: at,
                way,
                pinned: true,
                id,
            });
        }
        // Every slot of both buckets holds a permit: the newcomer is shed.
        let (b, id) = table.locate(newcomer);
        assert_eq!(table.acquire(b, id, 100, &r, 0).1, SHED);
        // Released permits in each bucket (debt 1 interval); the one in bucket 0 has
        // spent one more call, so bucket 1's (the first bucket) is the least debt.
        assert!(table.release(slots[2]));
        assert!(table.release(slots[WAYS + 4]));
        let (b2, id2) = table.locate(&in_0[2]);
        let _ = table.acquire(b2, id2, 100, &r, 0);
        assert!(table.release(KeySlot {
            bucket: 0,
            ..slots[2]
        }));
        assert_eq!(
            admit(&table, newcomer, 100, &r),
            (1, slots[WAYS + 4].way, I)
        );
    }

    #[test]
    fn a_key_found_in_its_second_bucket_releases_there() {
        let table = Table::new(5, KeyHasher::with_seed(3, 4));
        let r = rule(5, 2);
        for k in &keys_placed(&table, 1, 1, 5) {
            admit(&table, k, 100, &r);
        }
        let key = &keys_placed(&table, 1, 0, 1)[0];
        let (at, way, _) = admit(&table, key, 100, &r);
        assert_eq!(
            at, 0,
            "two free slots in its first bucket, seven in its second"
        );
        let (_, id) = table.locate(key);
        let slot = KeySlot {
            bucket: at,
            way,
            pinned: true,
            id,
        };
        assert_eq!(admit(&table, key, 100, &r).0, 0, "found where it is");
        assert!(table.release(slot));
        assert!(table.release(slot));
        assert!(!table.release(slot), "given back more than taken");
        assert_eq!(table.count_live(100), (6, 5), "the other keys' permits");
    }

    #[test]
    fn sized_for_six_tenths_more_than_max_keys() {
        let t = Table::new(100_000, KeyHasher::with_seed(0, 0));
        assert_eq!(t.capacity(), 32_768 * WAYS);
        let t = Table::new(1_000_000, KeyHasher::with_seed(0, 0));
        assert_eq!(t.capacity(), 262_144 * WAYS);
        // 4 480 keys fill 1 024 buckets to 0.625, the most a table is loaded; one more
        // key takes the next power of two.
        let t = Table::new(4_480, KeyHasher::with_seed(0, 0));
        assert_eq!(t.capacity(), 1_024 * WAYS);
        let t = Table::new(4_481, KeyHasher::with_seed(0, 0));
        assert_eq!(t.capacity(), 2_048 * WAYS);
        // The largest table's second index has bits enough.
        let t = Table::new(crate::keyed::MAX_KEYS, KeyHasher::with_seed(0, 0));
        assert_eq!(t.capacity(), (1 << SECOND_BITS) * WAYS);
        assert_eq!(Table::new(1, KeyHasher::with_seed(0, 0)).capacity(), WAYS);
        assert_eq!(std::mem::size_of::<CachePadded<Bucket>>(), 128);
    }
}
