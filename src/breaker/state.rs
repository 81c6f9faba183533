//! The breaker's packed words and the pure functions that move them.
//!
//! Three 64-bit words carry the state machine; each has a bit table below. The functions
//! here take an old word (and the time) and return the new word; they never touch an
//! atomic. The compare-exchange loops that apply them live in `core.rs`.
//!
//! Only the [`StateWord`] holds the full generation. The other words carry the low bits of
//! the generation they belong to (a *tag*), which is how they are reset lazily: a word
//! whose tag is older than the current generation reads as empty, and the first writer of
//! the new generation overwrites it. A word whose tag is *newer* than a writer's
//! generation tells the writer that it is stale, and it backs off. So no transition has to
//! clear several words at once, and a stale writer can never clobber newer data.

use std::fmt;

crate::codes::code_enum! {
    /// The state of a circuit breaker.
    ///
    /// The numeric codes are part of the C ABI (`BW_BREAKER_*`) and never change.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum BreakerState: u8 {
        /// Calls pass; outcomes are recorded in the window and may trip the breaker.
        Closed = 0 => "closed",
        /// Calls are rejected until the open duration has passed.
        Open = 1 => "open",
        /// A limited number of probe calls pass; their outcomes decide Closed or Open.
        HalfOpen = 2 => "half_open",
        /// Manually opened: every call is rejected until [`reset`](super::CircuitBreaker::reset).
        ForcedOpen = 3 => "forced_open",
        /// Manually disabled: every call passes and is recorded, nothing ever trips.
        Disabled = 4 => "disabled",
    }
}

impl BreakerState {
    /// Whether calls are let through without being probes (`Closed`, `Disabled`).
    #[inline]
    pub fn admits_freely(self) -> bool {
        matches!(self, BreakerState::Closed | BreakerState::Disabled)
    }
}

/// Low 3 bits: the [`BreakerState`] code.
pub(crate) const STATE_MASK: u64 = 0b111;
/// Bits 3..19: the open level (failed trials since the last close), saturating.
pub(crate) const LEVEL_SHIFT: u32 = 3;
/// The largest open level; growth of the open duration stops there.
pub(crate) const LEVEL_MAX: u64 = 0xFFFF;
/// Bits 19..64: the generation, bumped by every transition.
pub(crate) const GEN_SHIFT: u32 = 19;
/// Generations wrap at 2^45 (at a million transitions a second, after a year).
pub(crate) const GEN_MASK: u64 = (1 << (64 - GEN_SHIFT)) - 1;

/// The state word: which state, which generation, how many failed trials in a row.
///
/// | bits | field | meaning |
/// |---|---|---|
/// | 0..3 | state | [`BreakerState`] code (5..=7 reserved, never stored) |
/// | 3..19 | level | failed half-open trials since the last close (saturates at 65 535); the open duration grows with it |
/// | 19..64 | generation | bumped by every transition, wraps at 2^45; every permit carries it |
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateWord(pub(crate) u64);

impl StateWord {
    /// The word of a new breaker: `Closed`, generation 0.
    pub(crate) const INITIAL: StateWord = StateWord(0);

    #[inline]
    pub(crate) fn new(state: BreakerState, level: u64, generation: u64) -> Self {
        StateWord(
            (state as u64)
                | ((level.min(LEVEL_MAX)) << LEVEL_SHIFT)
                | ((generation & GEN_MASK) << GEN_SHIFT),
        )
    }

    #[inline]
    pub(crate) fn state(self) -> BreakerState {
        match self.0 & STATE_MASK {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::ForcedOpen,
            // Reserved codes are never stored; decode them as the safe "let through".
            _ => BreakerState::Disabled,
        }
    }

    #[inline]
    pub(crate) fn level(self) -> u64 {
        (self.0 >> LEVEL_SHIFT) & LEVEL_MAX
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.0 >> GEN_SHIFT
    }

    /// The word after a transition to `state` with open level `level`.
    #[inline]
    fn next(self, state: BreakerState, level: u64) -> StateWord {
        StateWord::new(state, level, self.generation().wrapping_add(1))
    }
}

impl fmt::Debug for StateWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}(level {})",
            self.state(),
            self.generation(),
            self.level()
        )
    }
}

/// `Closed` → `Open` because a rule tripped: the first open period (level 0).
#[inline]
pub(crate) fn trip(word: StateWord) -> StateWord {
    word.next(BreakerState::Open, 0)
}

/// `Open` → `HalfOpen` once the open duration has passed; the level is kept so that a
/// failed trial grows the next open period.
#[inline]
pub(crate) fn begin_trial(word: StateWord) -> StateWord {
    word.next(BreakerState::HalfOpen, word.level())
}

/// `HalfOpen` → `Closed` (level back to 0) if the trial passed, else → `Open` one level up.
#[inline]
pub(crate) fn end_trial(word: StateWord, passed: bool) -> StateWord {
    if passed {
        word.next(BreakerState::Closed, 0)
    } else {
        word.next(BreakerState::Open, (word.level() + 1).min(LEVEL_MAX))
    }
}

/// A manual transition (`force_open`, `disable`, `reset`): always a new generation, level 0.
#[inline]
pub(crate) fn manual(word: StateWord, to: BreakerState) -> StateWord {
    word.next(to, 0)
}

/// Whether tag `a` is newer than tag `b` among tags of `bits` bits (serial-number
/// arithmetic, RFC 1982): `a - b` taken modulo 2^bits lies in `1..2^(bits-1)`.
#[inline]
pub(crate) fn tag_newer(a: u64, b: u64, bits: u32) -> bool {
    let mask = (1u64 << bits) - 1;
    let d = a.wrapping_sub(b) & mask;
    d != 0 && d < (1u64 << (bits - 1))
}

/// Bits 0..8 of the timing word: the low 8 bits of its generation.
pub(crate) const TIMING_TAG_BITS: u32 = 8;
const TIMING_TAG_MASK: u64 = (1 << TIMING_TAG_BITS) - 1;

/// The timing word: one instant that belongs to one generation.
///
/// | bits | field | meaning |
/// |---|---|---|
/// | 0..8 | tag | low 8 bits of the generation this instant belongs to |
/// | 8..64 | instant | nanoseconds, rounded *down* to a multiple of 256 |
///
/// In `Open` the instant is the end of the open period; in `HalfOpen` the deadline
/// `half_open_max_wait` after the trial began; in other states the moment of the
/// transition. The thread that performs a transition publishes it; any thread that finds
/// an older tag can publish the same value first (it is a pure function of the state word
/// and the time), so no thread ever waits for another. The 256 ns rounding is invisible
/// at breaker time scales and keeps instant and tag in one word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TimingWord(pub(crate) u64);

impl TimingWord {
    #[inline]
    pub(crate) fn new(generation: u64, instant: u64) -> Self {
        TimingWord((round_instant(instant) & !TIMING_TAG_MASK) | (generation & TIMING_TAG_MASK))
    }

    #[inline]
    pub(crate) fn belongs_to(self, generation: u64) -> bool {
        self.0 & TIMING_TAG_MASK == generation & TIMING_TAG_MASK
    }

    /// Whether this word belongs to a generation after `generation`.
    #[inline]
    pub(crate) fn is_newer_than(self, generation: u64) -> bool {
        tag_newer(self.0, generation, TIMING_TAG_BITS)
    }

    #[inline]
    pub(crate) fn instant(self) -> u64 {
        self.0 & !TIMING_TAG_MASK
    }
}

/// An instant as the timing word stores it: rounded down to 256 ns.
#[inline]
pub(crate) fn round_instant(instant: u64) -> u64 {
    instant & !TIMING_TAG_MASK
}

const PROBE_FIELD_BITS: u32 = 10;
const PROBE_FIELD_MASK: u64 = (1 << PROBE_FIELD_BITS) - 1;
const ADMITTED_SHIFT: u32 = 0;
const COMPLETED_SHIFT: u32 = 10;
const FAILED_SHIFT: u32 = 20;
const SLOW_SHIFT: u32 = 30;
/// Bits 40..64 of the probe word: the low 24 bits of its generation.
pub(crate) const PROBE_TAG_SHIFT: u32 = 40;
pub(crate) const PROBE_TAG_BITS: u32 = 24;

/// The probe word: the half-open trial of one generation.
///
/// | bits | field | meaning |
/// |---|---|---|
/// | 0..10 | admitted | probes let through and not given back (an ignored probe gives its slot back) |
/// | 10..20 | completed | probes that reported success, failure or timeout |
/// | 20..30 | failed | completed probes that failed or timed out |
/// | 30..40 | slow | completed probes that were slow |
/// | 40..64 | tag | low 24 bits of the generation of the trial |
///
/// Invariants: `failed, slow <= completed <= admitted <= half_open_permits <= 1000`.
/// A word with an older tag is an empty trial.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ProbeWord(pub(crate) u64);

impl ProbeWord {
    #[inline]
    fn field(self, shift: u32) -> u64 {
        (self.0 >> shift) & PROBE_FIELD_MASK
    }

    #[inline]
    fn tag(self) -> u64 {
        self.0 >> PROBE_TAG_SHIFT
    }

    #[inline]
    fn pack(generation: u64, admitted: u64, completed: u64, failed: u64, slow: u64) -> Self {
        ProbeWord(
            (admitted << ADMITTED_SHIFT)
                | (completed << COMPLETED_SHIFT)
                | (failed << FAILED_SHIFT)
                | (slow << SLOW_SHIFT)
                | ((generation & ((1 << PROBE_TAG_BITS) - 1)) << PROBE_TAG_SHIFT),
        )
    }

    /// The trial of `generation` as this word shows it: its counts if the tag matches,
    /// an empty trial if the tag is older, `None` if it is newer (the caller is stale).
    #[inline]
    pub(crate) fn trial(self, generation: u64) -> Option<Trial> {
        let mine = generation & ((1 << PROBE_TAG_BITS) - 1);
        if self.tag() == mine {
            Some(Trial {
                admitted: self.field(ADMITTED_SHIFT),
                completed: self.field(COMPLETED_SHIFT),
                failed: self.field(FAILED_SHIFT),
                slow: self.field(SLOW_SHIFT),
            })
        } else if tag_newer(self.tag(), mine, PROBE_TAG_BITS) {
            None
        } else {
            Some(Trial::default())
        }
    }
}

/// The counts of one half-open trial.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Trial {
    pub(crate) admitted: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) slow: u64,
}

impl Trial {
    #[inline]
    pub(crate) fn in_flight(self) -> u64 {
        // Saturating: `completed <= admitted` holds for every word this crate writes; a
        // corrupted word (shared memory, later) must still not underflow.
        self.admitted.saturating_sub(self.completed)
    }

    #[inline]
    fn word(self, generation: u64) -> ProbeWord {
        ProbeWord::pack(
            generation,
            self.admitted,
            self.completed,
            self.failed,
            self.slow,
        )
    }
}

/// What a probe-word update did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ProbeStep {
    /// Apply this word.
    Write(ProbeWord),
    /// Nothing to do (no free slot to take, nothing in flight to complete).
    Refuse,
    /// The word belongs to a newer generation: the caller is stale.
    Stale,
}

/// Takes a probe slot of `generation`'s trial, if one is free.
#[inline]
pub(crate) fn admit_probe(word: ProbeWord, generation: u64, permits: u32) -> ProbeStep {
    match word.trial(generation) {
        None => ProbeStep::Stale,
        Some(t) if t.admitted >= u64::from(permits) => ProbeStep::Refuse,
        Some(t) => ProbeStep::Write(
            Trial {
                admitted: t.admitted + 1,
                ..t
            }
            .word(generation),
        ),
    }
}

/// Records one probe outcome. `None` outcome = ignored: the slot is given back.
/// Refuses when no probe is in flight, so a forged or repeated completion can never
/// push a count below zero or above the admitted probes.
#[inline]
pub(crate) fn complete_probe(
    word: ProbeWord,
    generation: u64,
    outcome: Option<(bool, bool)>,
) -> ProbeStep {
    match word.trial(generation) {
        None => ProbeStep::Stale,
        Some(t) if t.in_flight() == 0 => ProbeStep::Refuse,
        Some(t) => ProbeStep::Write(
            match outcome {
                None => Trial {
                    admitted: t.admitted.saturating_sub(1),
                    ..t
                },
                Some((failed, slow)) => Trial {
                    completed: t.completed + 1,
                    failed: t.failed + u64::from(failed),
                    slow: t.slow + u64::from(slow),
                    ..t
                },
            }
            .word(generation),
        ),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for s in BreakerState::ALL {
            assert_eq!(BreakerState::from_code(s as i64), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(BreakerState::from_code(5), None);
        assert_eq!(BreakerState::from_code(-1), None);
    }

    #[test]
    fn state_word_packs_and_transitions() {
        let w = StateWord::INITIAL;
        assert_eq!(w.state(), BreakerState::Closed);
        assert_eq!(w.generation(), 0);
        let open = trip(w);
        assert_eq!(
            (open.state(), open.generation(), open.level()),
            (BreakerState::Open, 1, 0)
        );
        let half = begin_trial(open);
        assert_eq!(
            (half.state(), half.generation()),
            (BreakerState::HalfOpen, 2)
        );
        let reopened = end_trial(half, false);
        assert_eq!(
            (reopened.state(), reopened.level()),
            (BreakerState::Open, 1)
        );
        let closed = end_trial(begin_trial(reopened), true);
        assert_eq!(
            (closed.state(), closed.level(), closed.generation()),
            (BreakerState::Closed, 0, 5)
        );
        let top = StateWord::new(BreakerState::HalfOpen, LEVEL_MAX, GEN_MASK);
        let next = end_trial(top, false);
        assert_eq!(
            (next.level(), next.generation()),
            (LEVEL_MAX, 0),
            "saturates and wraps"
        );
        assert_eq!(
            manual(top, BreakerState::Disabled).state(),
            BreakerState::Disabled
        );
    }

    #[test]
    fn tags_compare_as_serial_numbers() {
        assert!(tag_newer(5, 4, 8));
        assert!(!tag_newer(4, 5, 8));
        assert!(!tag_newer(4, 4, 8));
        assert!(tag_newer(0, 255, 8), "wraps");
        assert!(!tag_newer(255, 0, 8));
    }

    #[test]
    fn timing_word_rounds_down_and_tags() {
        let t = TimingWord::new(0x1_23, 1000);
        assert!(t.belongs_to(0x23) && t.belongs_to(0x5_23));
        assert_eq!(t.instant(), 768);
        assert!(TimingWord::new(7, 0).is_newer_than(6));
        assert_eq!(TimingWord::new(1, u64::MAX).instant(), !0xFF);
    }

    #[test]
    fn probes_never_exceed_permits_nor_underflow() {
        let mut w = ProbeWord(0);
        let g = 9;
        for _ in 0..3 {
            match admit_probe(w, g, 3) {
                ProbeStep::Write(n) => w = n,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(admit_probe(w, g, 3), ProbeStep::Refuse);
        let ProbeStep::Write(w) = complete_probe(w, g, None) else {
            panic!()
        };
        assert_eq!(
            w.trial(g).unwrap().admitted,
            2,
            "ignored gives the slot back"
        );
        let ProbeStep::Write(w) = complete_probe(w, g, Some((true, false))) else {
            panic!()
        };
        let ProbeStep::Write(w) = complete_probe(w, g, Some((false, true))) else {
            panic!()
        };
        assert_eq!(complete_probe(w, g, Some((true, true))), ProbeStep::Refuse);
        assert_eq!(complete_probe(w, g, None), ProbeStep::Refuse);
        let t = w.trial(g).unwrap();
        assert_eq!((t.admitted, t.completed, t.failed, t.slow), (2, 2, 1, 1));
        assert_eq!(
            w.trial(g + 1),
            Some(Trial::default()),
            "older tag reads empty"
        );
        assert_eq!(w.trial(g - 1), None, "newer tag means stale caller");
        assert_eq!(complete_probe(w, g - 1, None), ProbeStep::Stale);
    }
}
