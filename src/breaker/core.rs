//! The breaker's fixed state block and the small compare-exchange loops that apply the
//! pure functions of `state.rs` to it.
//!
//! `Core` is `#[repr(C)]`, pointer-free and ten words long, so that together with its
//! window it could be placed in shared memory later.

use super::state::{self, BreakerState, ProbeStep, ProbeWord, StateWord, TimingWord, Trial};
use crate::sync::{AtomicU64, Ordering};

/// Counter slots: one per target state (indexed by the state code), then stale outcomes.
const COUNTERS: usize = 6;
const STALE: usize = 5;

const CONSECUTIVE_MASK: u64 = 0xFFFF_FFFF;
const CONSECUTIVE_TAG_SHIFT: u32 = 32;
const CONSECUTIVE_TAG_BITS: u32 = 32;

/// What [`Core::admit_probe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// A probe slot was taken.
    Admitted,
    /// Every slot of the trial is taken.
    Full,
    /// The trial already belongs to a newer generation.
    Stale,
}

/// The breaker's state block.
///
/// | word | content |
/// |---|---|
/// | `state` | [`StateWord`]: state, open level, generation |
/// | `timing` | [`TimingWord`]: the instant that belongs to the current generation |
/// | `probes` | [`ProbeWord`]: the half-open trial |
/// | `consecutive` | bits 0..32 failures in a row (saturating), bits 32..64 low 32 bits of the generation |
/// | `counters` | transitions into each state (by state code), then stale outcomes |
#[repr(C)]
pub(crate) struct Core {
    state: AtomicU64,
    timing: AtomicU64,
    probes: AtomicU64,
    consecutive: AtomicU64,
    counters: [AtomicU64; COUNTERS],
}

impl Core {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU64::new(StateWord::INITIAL.0),
            timing: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            consecutive: AtomicU64::new(0),
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The current state word.
    #[inline]
    pub(crate) fn state(&self) -> StateWord {
        // Acquire: pairs with the AcqRel compare-exchange of the transition that stored
        // this word, so whoever sees generation g also sees everything the transitioning
        // thread wrote before it (the window and trial that decided it). Relaxed would
        // let a snapshot show a generation together with counts older than it.
        StateWord(self.state.load(Ordering::Acquire))
    }

    /// Performs one transition: `from` → `to`. Exactly one thread succeeds for each `from`
    /// word, since every transition changes the generation; the others get the word that
    /// beat them.
    #[inline]
    pub(crate) fn transition(&self, from: StateWord, to: StateWord) -> Result<(), StateWord> {
        // AcqRel: Release publishes this thread's window/trial writes with the new word
        // (see `state`); Acquire on success and failure reads the winner's writes before
        // this thread acts on the word it got. SeqCst is not needed: the only cross-word
        // decision (record, then evaluate) is ordered by the SeqCst window accesses.
        self.state
            .compare_exchange(from.0, to.0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(StateWord)
    }

    /// The instant of `generation`, if it has been published.
    #[inline]
    pub(crate) fn timing(&self, generation: u64) -> Option<u64> {
        // Acquire: pairs with the AcqRel publication in `publish_timing`; the value is
        // self-contained (tag and instant in one word), so this only orders the reading
        // after the state word it is checked against.
        let word = TimingWord(self.timing.load(Ordering::Acquire));
        word.belongs_to(generation).then(|| word.instant())
    }

    /// Replaces a timing word that claims a generation newer than the state word's
    /// (`generation`, unchanged since): corruption, since a transition publishes its
    /// timing only after its state. Leaves any other value alone.
    pub(crate) fn repair_timing(&self, generation: u64, instant: u64) {
        let mine = TimingWord::new(generation, instant);
        // Acquire: see `timing`.
        let current = TimingWord(self.timing.load(Ordering::Acquire));
        if current.is_newer_than(generation) {
            // AcqRel, as in `publish_timing`; a failure means another process repaired or
            // moved it first, which is as good.
            let _ = self.timing.compare_exchange(
                current.0,
                mine.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// Publishes `instant` for `generation` unless a value for it is already there, and
    /// returns the instant that now stands for `generation` (the first publisher's,
    /// rounded to 256 ns). `None` if the word already belongs to a newer generation: the
    /// caller's state word is stale and must be reloaded.
    pub(crate) fn publish_timing(&self, generation: u64, instant: u64) -> Option<u64> {
        let mine = TimingWord::new(generation, instant);
        // Acquire: see `timing`.
        let mut current = TimingWord(self.timing.load(Ordering::Acquire));
        loop {
            if current.belongs_to(generation) {
                return Some(current.instant());
            }
            if current.is_newer_than(generation) {
                return None;
            }
            // AcqRel: the first publisher wins and every later reader sees its value;
            // nothing else needs ordering.
            match self.timing.compare_exchange_weak(
                current.0,
                mine.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(mine.instant()),
                Err(actual) => current = TimingWord(actual),
            }
        }
    }

    /// The trial of `generation` (`None` if the probe word is newer).
    #[inline]
    pub(crate) fn trial(&self, generation: u64) -> Option<Trial> {
        // Acquire: pairs with the AcqRel updates below, so the counts read are the ones
        // the probes published.
        ProbeWord(self.probes.load(Ordering::Acquire)).trial(generation)
    }

    /// Takes a probe slot of `generation`'s trial.
    #[inline]
    pub(crate) fn admit_probe(&self, generation: u64, permits: u32) -> Admission {
        match self.update_probes(|w| state::admit_probe(w, generation, permits)) {
            Ok(_) => Admission::Admitted,
            Err(ProbeStep::Stale) => Admission::Stale,
            Err(_) => Admission::Full,
        }
    }

    /// Records a probe outcome (`None` = ignored, the slot is given back) and returns the
    /// trial after it, or why nothing was recorded.
    #[inline]
    pub(crate) fn complete_probe(
        &self,
        generation: u64,
        outcome: Option<(bool, bool)>,
    ) -> Result<Trial, ProbeStep> {
        self.update_probes(|w| state::complete_probe(w, generation, outcome))
            .map(|w| w.trial(generation).unwrap_or_default())
    }

    fn update_probes(&self, step: impl Fn(ProbeWord) -> ProbeStep) -> Result<ProbeWord, ProbeStep> {
        // Acquire: see `trial`.
        let mut current = self.probes.load(Ordering::Acquire);
        loop {
            let next = match step(ProbeWord(current)) {
                ProbeStep::Write(next) => next,
                other => return Err(other),
            };
            // AcqRel: the probe word is a counter that decides the trial; each update must
            // see the previous ones (RMW order gives that) and publish the counts to the
            // thread that completes the last probe.
            match self.probes.compare_exchange_weak(
                current,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(next),
                Err(actual) => current = actual,
            }
        }
    }

    /// Failures in a row in `generation`.
    pub(crate) fn consecutive(&self, generation: u64) -> u64 {
        // SeqCst: read together with the window (see `window.rs`).
        let word = self.consecutive.load(Ordering::SeqCst);
        if word >> CONSECUTIVE_TAG_SHIFT == generation & CONSECUTIVE_MASK {
            word & CONSECUTIVE_MASK
        } else {
            0
        }
    }

    /// Counts one more failure in a row for `generation`; returns the new count (0 if the
    /// caller is stale).
    #[inline]
    pub(crate) fn add_consecutive(&self, generation: u64) -> u64 {
        let tag = generation & CONSECUTIVE_MASK;
        // SeqCst: see `consecutive`.
        let mut current = self.consecutive.load(Ordering::SeqCst);
        loop {
            let theirs = current >> CONSECUTIVE_TAG_SHIFT;
            let count = if theirs == tag {
                (current & CONSECUTIVE_MASK)
                    .saturating_add(1)
                    .min(CONSECUTIVE_MASK)
            } else if state::tag_newer(theirs, tag, CONSECUTIVE_TAG_BITS) {
                return 0;
            } else {
                1
            };
            match self.consecutive.compare_exchange_weak(
                current,
                (tag << CONSECUTIVE_TAG_SHIFT) | count,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return count,
                Err(actual) => current = actual,
            }
        }
    }

    /// Ends a run of failures in `generation` (a load and nothing else when there is none).
    #[inline]
    pub(crate) fn clear_consecutive(&self, generation: u64) {
        let tag = generation & CONSECUTIVE_MASK;
        // SeqCst: see `consecutive`.
        let mut current = self.consecutive.load(Ordering::SeqCst);
        while current >> CONSECUTIVE_TAG_SHIFT == tag && current & CONSECUTIVE_MASK != 0 {
            match self.consecutive.compare_exchange_weak(
                current,
                tag << CONSECUTIVE_TAG_SHIFT,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts a transition into `to`.
    pub(crate) fn count_transition(&self, to: BreakerState) {
        if let Some(counter) = self.counters.get(to as usize) {
            // Relaxed: a statistics counter; it orders nothing.
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an outcome that could not be applied (stale generation, or forged).
    #[cold]
    pub(crate) fn count_stale(&self) {
        // Relaxed: a statistics counter.
        self.counters[STALE].fetch_add(1, Ordering::Relaxed);
    }

    /// Transitions into `to` so far.
    pub(crate) fn transitions_into(&self, to: BreakerState) -> u64 {
        // Relaxed: a statistics counter.
        self.counters
            .get(to as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Stale outcomes so far.
    pub(crate) fn stale_outcomes(&self) -> u64 {
        // Relaxed: a statistics counter.
        self.counters[STALE].load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_publisher_wins_and_stale_publishers_are_ignored() {
        let core = Core::new();
        assert_eq!(core.timing(1), None);
        assert_eq!(core.publish_timing(1, 1000), Some(768));
        assert_eq!(core.publish_timing(1, 5000), Some(768));
        assert_eq!(core.publish_timing(2, 7000), Some(6912));
        assert_eq!(core.publish_timing(1, 9000), None, "stale");
        assert_eq!(core.timing(2), Some(6912));
        assert_eq!(core.timing(1), None);
    }

    #[test]
    fn consecutive_failures_are_per_generation() {
        let core = Core::new();
        assert_eq!(core.add_consecutive(4), 1);
        assert_eq!(core.add_consecutive(4), 2);
        assert_eq!(core.add_consecutive(3), 0, "stale");
        core.clear_consecutive(4);
        assert_eq!(core.consecutive(4), 0);
        assert_eq!(core.add_consecutive(4), 1);
        assert_eq!(core.add_consecutive(5), 1, "new generation starts over");
        assert_eq!(core.consecutive(4), 0);
    }

    #[test]
    fn a_timing_word_from_a_newer_generation_is_repaired_only_when_asked() {
        let core = Core::new();
        // A segment written by something else: timing claims generation 9, state is 0.
        core.timing
            .store(TimingWord::new(9, 4096).0, Ordering::Relaxed);
        assert_eq!(
            core.publish_timing(0, 1024),
            None,
            "stale state word, as designed"
        );
        core.repair_timing(0, 1024);
        assert_eq!(core.timing(0), Some(1024));
        // A timing word of this or an older generation is never touched by a repair.
        core.repair_timing(0, 2048);
        assert_eq!(core.timing(0), Some(1024));
    }
}
