//! The circuit breaker: permits in, outcomes out, one lock-free state machine.
//!
//! The rules it follows are on the [module page](super).

use super::config::{BreakerConfig, ResolvedWindow, Tuning};
use super::core::{Admission, Core};
use super::permit::{BreakerPermit, RawBreakerPermit};
use super::snapshot::{BreakerSnapshot, Transition, TransitionCounts};
use super::state::{self, BreakerState, StateWord};
use super::window::{Claim, CountWindow, Ring, TimeWindow, Window, WindowCounts};
use crate::clock::{duration_to_nanos, AnyClock, Clock};
use crate::error::ConfigError;
use crate::outcome::Outcome;
use crate::rejection::{RejectReason, Rejection};
use crate::shm::{Place, Segment, RECLAIM_INTERVAL_NANOS};
use crate::sync::{Arc, OnceCell};
use crate::CallError;
use std::fmt;
use std::time::Duration;

type Listener = Box<dyn Fn(&Transition) + Send + Sync>;

/// A lock-free, allocation-free circuit breaker.
///
/// ```
/// use breakwater::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
/// use breakwater::clock::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::with_clock(
///     BreakerConfig::default()
///         .with_minimum_calls(4)
///         .with_open_duration(Duration::from_secs(10))
///         .with_half_open_permits(1),
///     clock.clone(),
/// )
/// .unwrap();
///
/// for _ in 0..2 { breaker.try_acquire().unwrap().success(); }
/// for _ in 0..2 { breaker.try_acquire().unwrap().failure(); } // 2 of 4 failed: 50 %
/// assert_eq!(breaker.state(), BreakerState::Open);
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert!(rejected.retry_after.unwrap() <= Duration::from_secs(10));
///
/// clock.advance(Duration::from_secs(11));
/// let probe = breaker.try_acquire().expect("the first acquire after open_duration probes");
/// assert_eq!(breaker.state(), BreakerState::HalfOpen);
/// assert!(breaker.try_acquire().is_err(), "one probe only");
/// probe.success();
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// ```
pub struct CircuitBreaker<C: Clock = AnyClock> {
    core: Place<Core>,
    window: Window,
    /// The host-wide segment the state lives in, for probe leases (`None`: this process
    /// only).
    host: Option<Arc<Segment>>,
    tuning: Tuning,
    config: BreakerConfig,
    clock: C,
    listener: OnceCell<Listener>,
}

/// An acquire decision in two words (see `CircuitBreaker::answer`).
///
/// | bits of `word` | meaning |
/// |---|---|
/// | 0..45 | generation (permit) |
/// | 61 | rejection with a known `retry_after` (`nanos`) |
/// | 62 | the permit is a probe |
/// | 63 | admitted (`nanos` = `started_at`) |
#[derive(Clone, Copy)]
struct Answer {
    word: u64,
    nanos: u64,
}

const ADMITTED: u64 = 1 << 63;
const PROBE: u64 = 1 << 62;
const HAS_RETRY: u64 = 1 << 61;

impl Answer {
    #[inline(always)]
    fn permit(generation: u64, started_at: u64, probe: bool) -> Self {
        Answer {
            word: ADMITTED | if probe { PROBE } else { 0 } | (generation & state::GEN_MASK),
            nanos: started_at,
        }
    }

    #[inline(always)]
    fn reject(retry_after: Option<u64>) -> Self {
        match retry_after {
            Some(nanos) => Answer {
                word: HAS_RETRY,
                nanos,
            },
            None => Answer { word: 0, nanos: 0 },
        }
    }

    #[inline(always)]
    fn decode(self) -> Result<RawBreakerPermit, Rejection> {
        if self.word & ADMITTED != 0 {
            Ok(RawBreakerPermit {
                generation: self.word & state::GEN_MASK,
                started_at: self.nanos,
                probe: self.word & PROBE != 0,
            })
        } else if self.word & HAS_RETRY != 0 {
            Err(Rejection::after_nanos(
                RejectReason::CircuitOpen,
                self.nanos,
            ))
        } else {
            Err(Rejection::new(RejectReason::CircuitOpen, None))
        }
    }
}

impl CircuitBreaker<AnyClock> {
    /// A breaker on [`AnyClock::Coarse`] (`CLOCK_MONOTONIC_COARSE`: a few ns a reading, a
    /// few ms of resolution, ample for breaker timing). See `clock.rs` for the rule every
    /// type follows.
    pub fn new(config: BreakerConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, AnyClock::Coarse)
    }
}

impl<C: Clock> CircuitBreaker<C> {
    /// A breaker reading time from `clock`. Validates `config` first.
    pub fn with_clock(config: BreakerConfig, clock: C) -> Result<Self, ConfigError> {
        Self::placed(config, clock, None)
    }

    /// The window kind (1 count, 2 time) and the bytes of the state block a breaker with
    /// `config` keeps in a host-wide segment (its core, then its window).
    pub(crate) fn host_block(config: &BreakerConfig) -> Result<(u64, usize), ConfigError> {
        let core = std::mem::size_of::<Core>().next_multiple_of(64);
        Ok(match config.resolve()?.window {
            ResolvedWindow::Count { .. } => (1, core + std::mem::size_of::<CountWindow>()),
            ResolvedWindow::Time { .. } => (2, core + std::mem::size_of::<TimeWindow>()),
        })
    }

    /// A breaker whose state block is at `segment`'s breaker offset when `segment` is
    /// given (laid out by [`host_block`](Self::host_block)), on the heap otherwise.
    pub(crate) fn placed(
        config: BreakerConfig,
        clock: C,
        segment: Option<&Arc<Segment>>,
    ) -> Result<Self, ConfigError> {
        let tuning = config.resolve()?;
        let core_bytes = std::mem::size_of::<Core>().next_multiple_of(64);
        // Every `mapped` call below: the segment's layout was computed from this
        // configuration by `host_block`, so the breaker block at `layout().breaker` holds
        // a `Core` and, 64 bytes aligned after it, the window this configuration resolves
        // to; both are atomics only, valid in every bit pattern, and the offsets are
        // 128-byte aligned within a mapping `Segment` checked to be long enough. The
        // breaker's `host` field (set below) keeps the segment mapped while it lives.
        let core = match segment {
            // SAFETY: see above: a `Core` at the breaker offset, kept mapped by `host`.
            Some(s) => unsafe { Place::mapped(s, s.layout().breaker) },
            None => Place::local(Core::new()),
        };
        let window_at = segment.map(|s| s.layout().breaker + core_bytes);
        let window = match tuning.window {
            ResolvedWindow::Count { size } => Window::Count {
                size,
                magic: Ring::new(size).parts().1,
                state: match (segment, window_at) {
                    // SAFETY: see above: the count window after the core.
                    (Some(s), Some(at)) => unsafe { Place::mapped(s, at) },
                    _ => Place::local(CountWindow::new()),
                },
            },
            ResolvedWindow::Time {
                bucket_nanos,
                buckets,
            } => Window::Time {
                bucket_nanos,
                buckets,
                state: match (segment, window_at) {
                    // SAFETY: see above: the time window after the core.
                    (Some(s), Some(at)) => unsafe { Place::mapped(s, at) },
                    _ => Place::local(TimeWindow::new()),
                },
            },
        };
        let breaker = Self {
            core,
            window,
            host: segment.cloned(),
            tuning,
            config,
            clock,
            listener: OnceCell::new(),
        };
        // In host scope only the first process applies it (the shared state is still
        // untouched): a process that attaches later must not reset the others' breaker.
        let untouched = breaker.host.is_none() || breaker.core.state() == StateWord::INITIAL;
        if breaker.config.initial_state != BreakerState::Closed && untouched {
            // Before any listener can be set: a starting state is not an event.
            breaker.manual(breaker.config.initial_state);
        }
        Ok(breaker)
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The current state (see [`BreakerSnapshot::state`] about an expired `Open`).
    #[inline]
    pub fn state(&self) -> BreakerState {
        self.core.state().state()
    }

    /// The current generation.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.core.state().generation()
    }

    /// Asks to make a call. `Err` says why not and, where known, when to try again.
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_, C>, Rejection> {
        match self.try_acquire_raw() {
            Ok(raw) => Ok(BreakerPermit::new(self, raw)),
            Err(rejection) => Err(rejection),
        }
    }

    /// [`try_acquire`](Self::try_acquire) returning a plain-data permit, to be completed
    /// with [`complete_raw`](Self::complete_raw).
    #[inline(always)]
    pub fn try_acquire_raw(&self) -> Result<RawBreakerPermit, Rejection> {
        self.answer().decode()
    }

    /// The acquire decision as two words: the fast paths and the out-of-line slow path
    /// all return this 16-byte value in registers, and it becomes a `Result` only after
    /// they merge (a 32-byte `Result` merged from both would go through the stack).
    #[inline(always)]
    fn answer(&self) -> Answer {
        let word = self.core.state();
        let st = word.state();
        if st.admits_freely() && !self.tuning.track_slow() {
            return Answer::permit(word.generation(), 0, false);
        }
        if st == BreakerState::Open {
            let now = self.clock.now();
            if let Some(until) = self.core.timing(word.generation()) {
                if now < until {
                    return Answer::reject(Some(until - now));
                }
            }
            return self.acquire_slow(word, Some(now));
        }
        self.acquire_slow(word, None)
    }

    /// Everything but an untimed `Closed`/`Disabled` acquire and a rejection inside the
    /// open period: timed permits, transitions, half-open probes, unpublished timing.
    #[inline(never)]
    fn acquire_slow(&self, mut word: StateWord, mut now: Option<u64>) -> Answer {
        // Every retry of this loop follows another thread's progress, so it ends; the
        // bound only stops a corrupt shared segment from holding a caller forever (it
        // is then refused, counted like any rejection).
        let mut retries = 0u32;
        loop {
            retries += 1;
            if retries > 1024 {
                return Answer::reject(None);
            }
            let generation = word.generation();
            match word.state() {
                BreakerState::Closed | BreakerState::Disabled => {
                    let started_at = if self.tuning.track_slow() {
                        now.unwrap_or_else(|| self.clock.now())
                    } else {
                        0
                    };
                    return Answer::permit(generation, started_at, false);
                }
                BreakerState::ForcedOpen => return Answer::reject(None),
                BreakerState::Open => {
                    let t = *now.get_or_insert_with(|| self.clock.now());
                    let Some(until) = self.instant_of(word, t) else {
                        word = self.next_word(word, t);
                        continue;
                    };
                    if t < until {
                        return Answer::reject(Some(until - t));
                    }
                    word = self.transition(word, state::begin_trial(word), t);
                }
                BreakerState::HalfOpen => {
                    let t = *now.get_or_insert_with(|| self.clock.now());
                    let Some(deadline) = self.instant_of(word, t) else {
                        word = self.next_word(word, t);
                        continue;
                    };
                    if t >= deadline {
                        // Probes are missing: decide with what was observed.
                        word = match self.core.trial(generation) {
                            Some(trial) => {
                                let passed = self.tuning.trial_passed(
                                    trial.completed,
                                    trial.failed,
                                    trial.slow,
                                );
                                self.transition(word, state::end_trial(word, passed), t)
                            }
                            None => self.core.state(),
                        };
                        continue;
                    }
                    match self.core.admit_probe(generation, self.tuning.permits) {
                        Admission::Admitted => {
                            if let Some(segment) = &self.host {
                                self.hold_probe_lease(segment, generation);
                            }
                            let started_at = if self.tuning.track_slow() { t } else { 0 };
                            return Answer::permit(generation, started_at, true);
                        }
                        Admission::Full => {
                            if let Some(segment) = &self.host {
                                if self.reclaim_dead_probes(segment, t) {
                                    continue;
                                }
                            }
                            return Answer::reject(Some(deadline - t));
                        }
                        Admission::Stale => word = self.core.state(),
                    }
                }
            }
        }
    }

    /// Performs `from` → `to` at time `now` if `from` is still current. Returns the word
    /// to continue with: `to` if this thread performed it, the current word otherwise.
    fn transition(&self, from: StateWord, to: StateWord, now: u64) -> StateWord {
        match self.core.transition(from, to) {
            Ok(()) => {
                self.core
                    .publish_timing(to.generation(), self.instant_for(to, now));
                self.core.count_transition(to.state());
                if let Some(listener) = self.listener.get() {
                    listener(&Transition {
                        from: from.state(),
                        to: to.state(),
                        generation: to.generation(),
                        at_nanos: now,
                    });
                }
                to
            }
            Err(current) => current,
        }
    }

    /// The instant that belongs to `word` if its transition happened at `now`: the end of
    /// the open period, the trial deadline, or `now` itself.
    fn instant_for(&self, word: StateWord, now: u64) -> u64 {
        match word.state() {
            BreakerState::Open => {
                let level = u32::try_from(word.level()).unwrap_or(u32::MAX);
                now.saturating_add(self.tuning.open_duration_nanos(level, word.generation()))
            }
            BreakerState::HalfOpen => now.saturating_add(self.tuning.max_wait_nanos),
            _ => now,
        }
    }

    /// The published instant of `word`'s generation; publishes it first if the
    /// transitioning thread has not yet (so no thread waits for another). `None` when the
    /// timing word already belongs to a newer generation (`word` is stale).
    /// The state word to retry with after `instant_of(word)` found the timing word of a
    /// newer generation. Normally the state has moved on (a transition publishes its
    /// timing after its state, so a newer timing implies a newer state). If it has not,
    /// the timing word is corrupt — only a shared segment that something other than a
    /// breaker wrote can get there — and it is repaired for this generation, so the loop
    /// makes progress instead of spinning forever.
    #[cold]
    fn next_word(&self, word: StateWord, now: u64) -> StateWord {
        let reloaded = self.core.state();
        if reloaded.0 == word.0 {
            self.core
                .repair_timing(word.generation(), self.instant_for(word, now));
        }
        reloaded
    }

    fn instant_of(&self, word: StateWord, now: u64) -> Option<u64> {
        match self.core.timing(word.generation()) {
            Some(instant) => Some(instant),
            None => self
                .core
                .publish_timing(word.generation(), self.instant_for(word, now)),
        }
    }

    /// Reports how the call of `permit` went. `duration` is the call's duration for the
    /// slow-call rule; `None` measures it from the permit's start if one was taken (else
    /// the call is not slow). Any parts are safe: a permit of another generation, or a
    /// probe completion when no probe is in flight, is counted as stale and changes
    /// nothing else.
    #[inline(always)]
    pub fn complete_raw(
        &self,
        permit: RawBreakerPermit,
        outcome: Outcome,
        duration: Option<Duration>,
    ) {
        let word = self.core.state();
        if word.generation() == permit.generation && word.state() == BreakerState::Closed {
            self.record_closed(word, &permit, outcome, duration, true);
        } else {
            self.complete_other(word, permit, outcome, duration);
        }
    }

    /// Completion in any case but "current generation, `Closed`".
    #[inline(never)]
    fn complete_other(
        &self,
        word: StateWord,
        permit: RawBreakerPermit,
        outcome: Outcome,
        duration: Option<Duration>,
    ) {
        if permit.probe {
            if let Some(segment) = &self.host {
                // Before the outcome is applied: a kill in between loses the lease
                // (`half_open_max_wait` covers the probe), never frees the probe twice.
                if let Ok(entry) = segment.entry() {
                    segment.leases().release_probe(entry, permit.generation);
                }
            }
        }
        if word.generation() != permit.generation {
            return self.core.count_stale();
        }
        match word.state() {
            BreakerState::Closed => self.record_closed(word, &permit, outcome, duration, true),
            BreakerState::Disabled => self.record_closed(word, &permit, outcome, duration, false),
            BreakerState::HalfOpen if permit.probe => {
                self.record_probe(word, &permit, outcome, duration)
            }
            _ => self.core.count_stale(),
        }
    }

    /// Whether the call was slow; reads the clock into `now` only if it must.
    #[inline]
    fn is_slow(
        &self,
        permit: &RawBreakerPermit,
        duration: Option<Duration>,
        now: &mut Option<u64>,
    ) -> bool {
        if !self.tuning.track_slow() {
            return false;
        }
        let elapsed = match duration {
            Some(d) => duration_to_nanos(d),
            None if permit.started_at != 0 => now
                .get_or_insert_with(|| self.clock.now())
                .saturating_sub(permit.started_at),
            None => return false,
        };
        elapsed > self.tuning.slow_nanos
    }

    #[inline(always)]
    fn record_closed(
        &self,
        word: StateWord,
        permit: &RawBreakerPermit,
        outcome: Outcome,
        duration: Option<Duration>,
        rules: bool,
    ) {
        if !outcome.is_recorded() {
            return;
        }
        let generation = word.generation();
        let failed = outcome.is_failure();
        let mut now = None;
        let slow = self.is_slow(permit, duration, &mut now);
        let minimum = u64::from(self.tuning.minimum_calls);
        // Whether this outcome may have brought the window to `minimum_calls`: then the
        // rates count for the first time and must be checked even after a fast success
        // (19 failures and then a success open a breaker with minimum 20 and threshold
        // 50 %, as in resilience4j). One comparison; the rates are summed only then.
        let reached_minimum = match &self.window {
            Window::Count { size, magic, state } => {
                let slow_bit = self.tuning.track_slow().then_some(slow);
                let ring = Ring::from_parts(*size, *magic);
                match state.record(generation, ring, failed, slow_bit) {
                    Claim::Recorded(before) => before + 1 == minimum,
                    Claim::Stale => return self.core.count_stale(),
                    Claim::Newer { tag, before } => {
                        return self.recorded_in_newer(tag, before + 1 == minimum, now)
                    }
                }
            }
            Window::Time { .. } => {
                let (t, in_bucket) = self.record_in_time_window(generation, failed, slow, now);
                now = Some(t);
                // The window holds at least its current bucket's calls, so a bucket past
                // `minimum_calls` proves the window was there before this outcome.
                in_bucket != 0 && in_bucket <= minimum
            }
        };
        let check_rates = failed || slow || reached_minimum;
        if rules && (check_rates || self.tuning.consecutive != 0) {
            self.apply_rules(word, failed, check_rates, now);
        }
    }

    /// A stale outcome that the count window had to record as a success of the newer
    /// generation `tag` (low 32 bits; see `Claim::Newer`): counted as stale, and if that
    /// success is the one that brought the newer window to `minimum_calls`, the rates
    /// are checked for it as for any outcome that does.
    #[cold]
    fn recorded_in_newer(&self, tag: u64, reached_minimum: bool, now: Option<u64>) {
        self.core.count_stale();
        let word = self.core.state();
        if reached_minimum
            && word.state() == BreakerState::Closed
            && word.generation() & 0xFFFF_FFFF == tag
        {
            self.evaluate(word, false, now);
        }
    }

    /// Records in the time window at `now` (read if not yet); returns the time used and
    /// the calls the bucket holds after the record (0: nothing recorded, stale).
    #[inline(never)]
    fn record_in_time_window(
        &self,
        generation: u64,
        failed: bool,
        slow: bool,
        now: Option<u64>,
    ) -> (u64, u64) {
        let t = now.unwrap_or_else(|| self.clock.now());
        let in_bucket = match &self.window {
            Window::Time {
                bucket_nanos,
                buckets,
                state,
            } => state.record(generation, t, *bucket_nanos, *buckets, failed, slow),
            Window::Count { .. } => 0,
        };
        (t, in_bucket)
    }

    /// After a record in `Closed`: the consecutive-failures run, then (after a failure,
    /// a slow call or the outcome that brought the window to `minimum_calls`) the rate
    /// rules.
    #[inline(never)]
    fn apply_rules(&self, word: StateWord, failed: bool, check_rates: bool, now: Option<u64>) {
        let generation = word.generation();
        let mut run_tripped = false;
        if self.tuning.consecutive != 0 {
            if failed {
                run_tripped =
                    self.core.add_consecutive(generation) >= u64::from(self.tuning.consecutive);
            } else {
                self.core.clear_consecutive(generation);
            }
        }
        if check_rates {
            self.evaluate(word, run_tripped, now);
        }
    }

    /// After a failure, a slow call or the outcome that brought the window to
    /// `minimum_calls`, in `Closed`: trips if a rule says so.
    #[cold]
    fn evaluate(&self, word: StateWord, run_tripped: bool, now: Option<u64>) {
        let trip = run_tripped || {
            let counts = self.counts(word.generation(), now);
            self.tuning
                .rates_trip(counts.calls, counts.failures, counts.slow)
        };
        if trip {
            let t = now.unwrap_or_else(|| self.clock.now());
            self.transition(word, state::trip(word), t);
        }
    }

    fn counts(&self, generation: u64, now: Option<u64>) -> WindowCounts {
        match &self.window {
            Window::Count { size, state, .. } => state.counts(generation, *size),
            Window::Time {
                bucket_nanos,
                buckets,
                state,
            } => {
                let t = now.unwrap_or_else(|| self.clock.now());
                state.counts(generation, t, *bucket_nanos, *buckets)
            }
        }
    }

    #[cold]
    fn record_probe(
        &self,
        word: StateWord,
        permit: &RawBreakerPermit,
        outcome: Outcome,
        duration: Option<Duration>,
    ) {
        let mut now = None;
        let result = outcome.is_recorded().then(|| {
            (
                outcome.is_failure(),
                self.is_slow(permit, duration, &mut now),
            )
        });
        match self.core.complete_probe(word.generation(), result) {
            Ok(trial) if result.is_some() && trial.completed == u64::from(self.tuning.permits) => {
                let passed = self
                    .tuning
                    .trial_passed(trial.completed, trial.failed, trial.slow);
                let t = now.unwrap_or_else(|| self.clock.now());
                self.transition(word, state::end_trial(word, passed), t);
            }
            Ok(_) => {}
            Err(_) => self.core.count_stale(),
        }
    }

    /// Records that this process holds a probe of `generation` in the segment.
    #[cold]
    fn hold_probe_lease(&self, segment: &Segment, generation: u64) {
        if let Ok(entry) = segment.entry() {
            segment.leases().hold_probe(entry, generation);
        }
    }

    /// The trial is full: gives back dead processes' probes if a scan is due; true when
    /// some were given back (the caller tries again).
    #[cold]
    fn reclaim_dead_probes(&self, segment: &Segment, now: u64) -> bool {
        segment.reclaim_if_due(now, RECLAIM_INTERVAL_NANOS) > 0
    }

    /// Gives back every permit of every dead process in this breaker's host-wide segment
    /// now; returns how many processes' permits were given back (0 in process scope).
    pub fn reclaim_dead_owners(&self) -> usize {
        match &self.host {
            Some(segment) => segment.reclaim(),
            None => 0,
        }
    }

    /// Runs `op` if the breaker lets the call through, and records its result (`Ok` =
    /// success, `Err` = failure, timed from the acquire when the slow-call rule is on).
    /// If `op` panics, the permit is dropped and records `Ignored`.
    ///
    /// `op` takes the attempt number, as [`Policy::call`](crate::policy::Policy::call)'s
    /// operation does (a breaker makes one attempt: always 1), so one closure fits both.
    ///
    /// ```
    /// use breakwater::breaker::{BreakerConfig, CallError, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new(BreakerConfig::default()).unwrap();
    /// let answer: Result<u32, CallError<&str>> = breaker.call(|_attempt| Ok(42));
    /// assert_eq!(answer, Ok(42));
    /// assert!(matches!(breaker.call(|_| Err::<u32, _>("boom")), Err(CallError::Failed("boom"))));
    /// ```
    pub fn call<T, E>(&self, op: impl FnOnce(u32) -> Result<T, E>) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = op(1);
        permit.record(Outcome::of(&result));
        result.map_err(CallError::Failed)
    }

    /// Opens the breaker until [`reset`](Self::reset): every call is rejected.
    pub fn force_open(&self) {
        self.manual(BreakerState::ForcedOpen);
    }

    /// Lets every call through and never trips, until [`reset`](Self::reset); outcomes
    /// are still recorded in the window.
    pub fn disable(&self) {
        self.manual(BreakerState::Disabled);
    }

    /// Back to `Closed` with an empty window and the open duration back to its base.
    pub fn reset(&self) {
        self.manual(BreakerState::Closed);
    }

    fn manual(&self, to: BreakerState) {
        let now = self.clock.now();
        let mut word = self.core.state();
        loop {
            let next = state::manual(word, to);
            let current = self.transition(word, next, now);
            if current == next {
                return;
            }
            word = current;
        }
    }

    /// Registers the function called after every transition, synchronously, by the one
    /// thread that performed it, holding no lock. Returns `false` (and drops `f`) if a
    /// listener is already set. Unset, it costs one load per transition; it never runs on
    /// the acquire/complete paths that do not transition. A panic in the listener unwinds
    /// into the call that caused the transition (the transition itself has happened).
    pub fn set_transition_listener(&self, f: impl Fn(&Transition) + Send + Sync + 'static) -> bool {
        self.listener.set(Box::new(f)).is_ok()
    }

    /// A snapshot of the state, window and counters.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = self.clock.now();
        let word = self.core.state();
        let generation = word.generation();
        let st = word.state();
        let counts = if st.admits_freely() {
            self.counts(generation, Some(now))
        } else {
            WindowCounts::default()
        };
        let trial = if st == BreakerState::HalfOpen {
            self.core.trial(generation).unwrap_or_default()
        } else {
            Default::default()
        };
        let open_until = matches!(st, BreakerState::Open | BreakerState::HalfOpen).then(|| {
            self.core
                .timing(generation)
                .unwrap_or_else(|| state::round_instant(self.instant_for(word, now)))
        });
        let field = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        BreakerSnapshot {
            state: st,
            generation,
            open_level: field(word.level()),
            calls: counts.calls,
            failures: counts.failures,
            slow_calls: counts.slow,
            consecutive_failures: self.core.consecutive(generation),
            half_open_in_flight: field(trial.in_flight()),
            half_open_completed: field(trial.completed),
            half_open_failures: field(trial.failed),
            open_until_nanos: open_until,
            retry_after: open_until.map(|u| Duration::from_nanos(u.saturating_sub(now))),
            transitions: TransitionCounts {
                to_closed: self.core.transitions_into(BreakerState::Closed),
                to_open: self.core.transitions_into(BreakerState::Open),
                to_half_open: self.core.transitions_into(BreakerState::HalfOpen),
                to_forced_open: self.core.transitions_into(BreakerState::ForcedOpen),
                to_disabled: self.core.transitions_into(BreakerState::Disabled),
            },
            stale_outcomes: self.core.stale_outcomes(),
            at_nanos: now,
        }
    }
}

impl<C: Clock> fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.core.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
    use std::sync::Arc as StdArc;

    fn breaker(config: BreakerConfig) -> (CircuitBreaker<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        (
            CircuitBreaker::with_clock(config, clock.clone()).unwrap(),
            clock,
        )
    }

    fn trip(b: &CircuitBreaker<ManualClock>) {
        while b.state() == BreakerState::Closed {
            b.try_acquire().unwrap().failure();
        }
    }

    #[test]
    fn a_breaker_starts_in_its_configured_state() {
        let (b, _) = breaker(BreakerConfig::default().with_initial_state(BreakerState::Disabled));
        assert_eq!(b.state(), BreakerState::Disabled);
        for _ in 0..200 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(
            b.state(),
            BreakerState::Disabled,
            "observe only: never trips"
        );
        assert_eq!(b.snapshot().failures, 100, "but the window records");
        b.reset();
        assert_eq!(b.state(), BreakerState::Closed);

        let (b, _) = breaker(BreakerConfig::default().with_initial_state(BreakerState::ForcedOpen));
        let rejection = b.try_acquire().unwrap_err();
        assert_eq!(rejection.reason, RejectReason::CircuitOpen);
        b.reset();
        assert!(b.try_acquire().is_ok());

        for state in [BreakerState::Open, BreakerState::HalfOpen] {
            let config = BreakerConfig::default().with_initial_state(state);
            let error = CircuitBreaker::new(config).unwrap_err();
            assert_eq!(error.field, "initial_state");
        }
    }

    #[test]
    fn memory_bounds_of_the_whole_state() {
        use std::mem::size_of;
        let core = size_of::<Core>();
        let handle = size_of::<Window>();
        let count = core + handle + size_of::<CountWindow>();
        let time = core + handle + size_of::<TimeWindow>();
        eprintln!("core {core} + handle {handle}: count window state {count} bytes, time window state {time} bytes");
        assert!(count <= 256, "count-window breaker state is {count} bytes");
        assert!(time <= 512, "time-window breaker state is {time} bytes");
    }

    #[test]
    fn trips_on_failure_rate_after_minimum_calls() {
        let (b, _) = breaker(
            BreakerConfig::default()
                .with_minimum_calls(4)
                .with_failure_rate_threshold(60.0),
        );
        for _ in 0..2 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.state(), BreakerState::Closed, "below minimum_calls");
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed, "2 of 4: 50 % < 60 %");
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Open, "3 of 5: 60 %");
        assert_eq!(b.snapshot().transitions.to_open, 1);
    }

    /// The bug: with minimum 20 and threshold 50 %, 19 failures and then a success left
    /// the breaker closed at 95 % until the next failure, because only failures and slow
    /// calls checked the rates. The success that brings the window to `minimum_calls`
    /// now checks them too (as resilience4j does), for both windows and both rates.
    #[test]
    fn success_reaching_minimum_calls_left_the_breaker_closed_at_95_percent() {
        let time = crate::breaker::WindowConfig::Time {
            duration: Duration::from_secs(10),
            buckets: 10,
        };
        for window in [crate::breaker::WindowConfig::Count { size: 100 }, time] {
            let (b, _) = breaker(
                BreakerConfig::default()
                    .with_window(window)
                    .with_minimum_calls(20)
                    .with_failure_rate_threshold(50.0),
            );
            for _ in 0..19 {
                b.try_acquire().unwrap().failure();
            }
            assert_eq!(b.state(), BreakerState::Closed, "{window:?}: 19 < minimum");
            b.try_acquire().unwrap().success();
            assert_eq!(b.state(), BreakerState::Open, "{window:?}: 19 of 20 = 95 %");

            // The slow-call rate too: 19 slow successes, then a fast one.
            let (b, clock) = breaker(
                BreakerConfig::default()
                    .with_window(window)
                    .with_minimum_calls(20)
                    .with_failure_rate_threshold(100.0)
                    .with_slow_calls(Duration::from_millis(10), 50.0),
            );
            for _ in 0..19 {
                b.try_acquire()
                    .unwrap()
                    .record_with_duration(Outcome::Success, Duration::from_millis(11));
            }
            assert_eq!(b.state(), BreakerState::Closed, "{window:?}: 19 < minimum");
            let fast = b.try_acquire().unwrap();
            clock.advance(Duration::from_millis(1));
            fast.success();
            assert_eq!(b.state(), BreakerState::Open, "{window:?}: 19 of 20 slow");
        }
    }

    #[test]
    fn consecutive_failures_trip_regardless_of_minimum() {
        let (b, _) = breaker(
            BreakerConfig::default()
                .with_failure_rate_threshold(100.0)
                .with_consecutive_failures(3),
        );
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.snapshot().consecutive_failures, 2);
        b.try_acquire().unwrap().record(Outcome::Timeout);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn slow_calls_trip_and_are_timed_from_acquire() {
        let (b, clock) = breaker(
            BreakerConfig::default()
                .with_minimum_calls(2)
                .with_failure_rate_threshold(100.0)
                .with_slow_calls(Duration::from_millis(100), 50.0),
        );
        b.try_acquire()
            .unwrap()
            .record_with_duration(Outcome::Success, Duration::from_millis(100));
        assert_eq!(
            b.snapshot().slow_calls,
            0,
            "not longer than slow_call_duration"
        );
        let p = b.try_acquire().unwrap();
        assert_ne!(p.raw().started_at(), 0);
        clock.advance(Duration::from_millis(101));
        p.success();
        assert_eq!(b.state(), BreakerState::Open, "1 of 2 slow = 50 %");
    }

    #[test]
    fn no_clock_reads_when_no_rule_needs_them() {
        #[derive(Clone, Default)]
        struct Counting(StdArc<AtomicUsize>);
        impl Clock for Counting {
            fn now(&self) -> u64 {
                self.0.fetch_add(1, StdOrdering::Relaxed) as u64 + 1
            }
        }
        let clock = Counting::default();
        let b = CircuitBreaker::with_clock(BreakerConfig::default(), clock.clone()).unwrap();
        for i in 0..1000 {
            let p = b.try_acquire().unwrap();
            if i % 10 == 0 {
                p.failure()
            } else {
                p.success()
            }
        }
        // Failures evaluate the window but read no clock unless they trip.
        assert_eq!(clock.0.load(StdOrdering::Relaxed), 0);
    }

    #[test]
    fn open_then_half_open_then_closed() {
        let (b, clock) = breaker(
            BreakerConfig::default()
                .with_minimum_calls(1)
                .with_open_duration(Duration::from_secs(1))
                .with_half_open_permits(2),
        );
        trip(&b);
        let r = b.try_acquire().unwrap_err();
        // open until (1 ns + 1 s) rounded down to 256 ns
        assert_eq!(r.retry_after, Some(Duration::from_nanos(999_999_999)));
        clock.advance(Duration::from_secs(1));
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire().unwrap();
        assert!(p1.is_probe() && p2.is_probe());
        assert!(b.try_acquire().is_err());
        drop(p2);
        let p3 = b.try_acquire().expect("a dropped probe frees its slot");
        p1.success();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        p3.success();
        assert_eq!(b.state(), BreakerState::Closed);
        let s = b.snapshot();
        assert_eq!(
            (s.calls, s.transitions.to_closed, s.transitions.to_half_open),
            (0, 1, 1)
        );
    }

    #[test]
    fn failed_trial_reopens_with_backoff() {
        let (b, clock) = breaker(
            BreakerConfig::default()
                .with_minimum_calls(1)
                .with_open_duration(Duration::from_secs(1))
                .with_open_backoff(2.0, Duration::from_secs(3))
                .with_half_open_permits(1),
        );
        trip(&b);
        for expected in [2, 3, 3] {
            clock.advance(Duration::from_secs(10));
            b.try_acquire().unwrap().failure();
            assert_eq!(b.state(), BreakerState::Open);
            let r = b.try_acquire().unwrap_err().retry_after.unwrap();
            assert_eq!(r.as_secs_f64().round() as u64, expected, "{r:?}");
        }
    }

    #[test]
    fn half_open_max_wait_decides_with_what_was_observed() {
        let (b, clock) = breaker(
            BreakerConfig::default()
                .with_minimum_calls(1)
                .with_open_duration(Duration::from_secs(1))
                .with_half_open_permits(3)
                .with_half_open_max_wait(Duration::from_secs(5)),
        );
        trip(&b);
        clock.advance(Duration::from_secs(1));
        let leaked = b.try_acquire().unwrap().into_raw();
        b.try_acquire().unwrap().success();
        clock.advance(Duration::from_secs(5));
        let p = b
            .try_acquire()
            .expect("1 of 1 completed probes passed: closed");
        assert!(!p.is_probe());
        assert_eq!(b.state(), BreakerState::Closed);
        b.complete_raw(leaked, Outcome::Failure, None);
        assert_eq!(b.snapshot().stale_outcomes, 1);
        drop(p);
        // none completed → open again
        trip(&b);
        clock.advance(Duration::from_secs(1));
        let _leaked = b.try_acquire().unwrap().into_raw();
        clock.advance(Duration::from_secs(5));
        assert!(b.try_acquire().is_err());
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn stale_permit_never_moves_the_state() {
        let (b, _) = breaker(BreakerConfig::default().with_minimum_calls(1));
        let old = b.try_acquire().unwrap();
        b.reset();
        old.failure();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.snapshot().stale_outcomes, 1);
        assert_eq!(b.snapshot().calls, 0);
    }

    #[test]
    fn forged_raw_permits_are_harmless() {
        let (b, clock) = breaker(BreakerConfig::default().with_minimum_calls(1));
        trip(&b);
        clock.advance(Duration::from_secs(30));
        let g = b.generation();
        let probe = b.try_acquire().unwrap().into_raw();
        for (gen, probe) in [(u64::MAX, true), (g + 1, true), (g + 1, false), (0, false)] {
            b.complete_raw(
                RawBreakerPermit::from_parts(gen, u64::MAX, probe),
                Outcome::Failure,
                None,
            );
        }
        // A forged duplicate of the real probe: the first completion counts, the second
        // finds nothing in flight.
        let (pg, ps, pp) = probe.to_parts();
        b.complete_raw(
            RawBreakerPermit::from_parts(pg, ps, pp),
            Outcome::Ignored,
            None,
        );
        b.complete_raw(probe, Outcome::Success, None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.snapshot().half_open_in_flight, 0);
        assert_eq!(b.snapshot().stale_outcomes, 5);
    }

    #[test]
    fn manual_states() {
        let (b, _) = breaker(BreakerConfig::default().with_minimum_calls(1));
        b.force_open();
        assert_eq!(b.try_acquire().unwrap_err().retry_after, None);
        b.disable();
        for _ in 0..50 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.state(), BreakerState::Disabled);
        assert_eq!(b.snapshot().failures, 50);
        b.reset();
        let s = b.snapshot();
        assert_eq!(
            (s.state, s.calls, s.generation),
            (BreakerState::Closed, 0, 3)
        );
        assert_eq!(
            s.transitions.to_forced_open + s.transitions.to_disabled + s.transitions.to_closed,
            3
        );
    }

    #[test]
    fn listener_sees_every_transition_once() {
        let (b, clock) = breaker(
            BreakerConfig::default()
                .with_minimum_calls(1)
                .with_half_open_permits(1),
        );
        let seen = StdArc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        assert!(
            b.set_transition_listener(move |t| sink.lock().unwrap().push((
                t.from,
                t.to,
                t.generation
            )))
        );
        assert!(!b.set_transition_listener(|_| {}));
        trip(&b);
        clock.advance(Duration::from_secs(30));
        b.try_acquire().unwrap().success();
        use BreakerState::*;
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (Closed, Open, 1),
                (Open, HalfOpen, 2),
                (HalfOpen, Closed, 3)
            ]
        );
    }

    #[test]
    fn time_window_trips_and_forgets() {
        let (b, clock) = breaker(
            BreakerConfig::default()
                .with_window(crate::breaker::WindowConfig::Time {
                    duration: Duration::from_secs(10),
                    buckets: 10,
                })
                .with_minimum_calls(3),
        );
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(10));
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "old failures expired: 1 of 3"
        );
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Open, "2 of 4");
    }

    #[test]
    fn call_records_and_panics_are_ignored() {
        let (b, _) = breaker(
            BreakerConfig::default()
                .with_minimum_calls(1)
                .with_half_open_permits(1),
        );
        assert_eq!(b.call(|_| Ok::<_, ()>(1)), Ok(1));
        assert_eq!(b.snapshot().calls, 1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = b.call(|_| -> Result<(), ()> { panic!("boom") });
        }));
        assert!(r.is_err());
        assert_eq!(b.snapshot().calls, 1, "a panicking call records Ignored");
        assert_eq!(b.call(|_| Err::<(), _>("x")), Err(CallError::Failed("x")));
        assert!(matches!(
            b.call(|_| Ok::<_, ()>(())),
            Err(CallError::Rejected(_))
        ));
    }
}
