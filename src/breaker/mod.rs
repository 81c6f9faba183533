//! Circuit breaker: stop calling a dependency that keeps failing, probe it, recover.
//!
//! - `config.rs` — [`BreakerConfig`], [`WindowConfig`], validation with field-named errors.
//! - `state.rs` — [`BreakerState`], the packed state/timing/probe words and the pure
//!   functions that move them.
//! - `window.rs` — the count and time sliding windows (fixed-size, atomic, lazily cleared).
//! - `core.rs` — the fixed state block and its compare-exchange loops.
//! - `breaker.rs` — [`CircuitBreaker`]: acquire, complete, transitions, snapshots.
//! - `permit.rs` — [`BreakerPermit`] (guard) and [`RawBreakerPermit`] (plain data).
//! - `snapshot.rs` — [`BreakerSnapshot`], [`Transition`], [`TransitionCounts`].
//!
//! # Semantics (docs/design.md §3, and the decisions taken where it is silent)
//!
//! - **Closed**: every acquire passes. Each success, failure or timeout is recorded in
//!   the window (`Ignored` is not). The rules are checked after recording a failure, a
//!   timeout or a slow call, and after the outcome that brings the window to
//!   `minimum_calls` outcomes, whatever it was (19 failures then a success, minimum 20,
//!   threshold 50 %: open, as in resilience4j). Any other fast success can only lower
//!   the rates and checks nothing. Rates count once the window holds `minimum_calls`
//!   outcomes; `consecutive_failures` ignores `minimum_calls`. In a time window the
//!   window's total is not tracked on the hot path, so a fast success checks the rates
//!   while its own bucket holds at most `minimum_calls` calls (which includes every
//!   success that brings the window to `minimum_calls`, also when several race); it then
//!   also notices a rate that rose because older successes expired.
//! - **Open**: acquires are rejected with `retry_after` = the rest of the open period.
//!   The first acquire after it moves the breaker to `HalfOpen` and becomes its first
//!   probe. The open period of the `k`-th failed trial in a row is
//!   [`BreakerConfig::open_duration_for`]`(k, generation)`.
//! - **HalfOpen**: at most `half_open_permits` probes are let through; others are
//!   rejected with `retry_after` = time left until `half_open_max_wait`. An ignored (or
//!   dropped) probe gives its slot back and does not count: the trial waits for
//!   `half_open_permits` probes that *completed* (success, failure or timeout). When the
//!   last one completes, the thread completing it decides: `Closed` (new, empty window)
//!   if the probes' failure rate is under `failure_rate_threshold` and their slow rate
//!   under `slow_call_rate_threshold`, `Open` one level up otherwise. If
//!   `half_open_max_wait` passes first, the next acquire decides with the probes
//!   completed so far (none completed = failed trial); probes still out then become stale.
//! - **ForcedOpen** rejects everything (`retry_after` unknown); **Disabled** lets
//!   everything through and records outcomes in the window (visible in snapshots) but
//!   never trips. `force_open`, `disable` and `reset` (→ `Closed`, empty window, level 0)
//!   are transitions like the others, even from the same state.
//! - Every transition bumps the generation; a permit of another generation is stale: its
//!   outcome is counted in [`BreakerSnapshot::stale_outcomes`] and changes nothing else.
//! - A half-open trial is judged by the rate thresholds only (`consecutive_failures` is a
//!   `Closed` rule); a probe that failed and was slow counts for both rates.
//!
//! # Concurrency and memory
//!
//! Every decision is a few atomic operations on fixed, pointer-free words: a state word
//! (state, open level, generation), a timing word, a probe word, a consecutive-failures
//! word and the window. Each transition is one compare-exchange on the state word from a
//! word that carries the generation, so exactly one thread performs it (also
//! `Open` → `HalfOpen`, done by the first acquire after the open period, with no timer
//! thread); that thread then calls the transition listener. The other words carry a tag
//! of their generation and are reset lazily, so stale writers never touch newer data.
//! The whole state is 256 bytes for a count window (up to [`MAX_COUNT_WINDOW`] outcomes)
//! and 488 bytes for a time window (up to [`MAX_TIME_BUCKETS`] buckets). Acquire and
//! complete are lock-free and never allocate; the proofs are `tests/loom_breaker.rs`,
//! `tests/prop_breaker.rs`, `tests/alloc_breaker.rs` and `tests/stress_breaker.rs`.
//!
//! # Time
//!
//! The clock is read only where a rule needs it: on every rejection while `Open` (and
//! the acquire after it), in `HalfOpen`, at completion with a time window, at acquire and
//! completion with the slow-call rule, and at transitions. A `Closed` count-window breaker
//! without the slow-call rule does not read the clock at all to acquire and complete.
//! Instants of open periods and deadlines are kept to 256 ns (rounded down, so a
//! `retry_after` is never longer than the exact remainder).

#[allow(clippy::module_inception)]
mod breaker;
mod config;
pub(crate) mod core;
mod permit;
mod snapshot;
mod state;
mod window;

pub use self::breaker::CircuitBreaker;
pub(crate) use self::config::STARTING_STATES;
pub use self::config::{
    BreakerConfig, WindowConfig, MAX_COUNT_WINDOW, MAX_HALF_OPEN_PERMITS, MAX_TIME_BUCKETS,
};
pub use self::permit::{BreakerPermit, RawBreakerPermit};
pub use self::snapshot::{BreakerSnapshot, Transition, TransitionCounts};
pub use self::state::BreakerState;
pub use crate::call_error::CallError;
