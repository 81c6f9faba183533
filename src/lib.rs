//! # breakwater
//!
//! An embedded, in-process resilience runtime. Around every call to a dependency a
//! service asks breakwater "may I?" and afterwards says how the call went; the answers
//! come from circuit breakers, rate limiters, bulkheads, adaptive concurrency limits,
//! retries with budgets, deadlines and fault injection. Decisions are lock-free and
//! allocation-free; time is injected through a [`Clock`](clock::Clock) so every rule is
//! tested deterministically.
//!
//! The core API is *permits, not callbacks*: `try_acquire()` returns a permit or a
//! [`Rejection`], and the permit is completed with an [`Outcome`]. Closure wrappers are
//! thin layers over that, and the same shape crosses the C ABI.
//!
//! One naming rule for taking a permit, on every type: `try_acquire*` never waits;
//! `try_acquire*_for(max_wait)` waits at most `max_wait` (as parking_lot's
//! `try_lock_for`); `acquire*` waits at most the wait its configuration gives (a
//! bulkhead's `max_wait`, zero unless set), so a [`Policy::acquire`](policy::Policy::acquire)
//! and a [`Bulkhead::acquire`](bulkhead::Bulkhead::acquire) wait alike.
//!
//! ```
//! use breakwater::breaker::{BreakerConfig, CircuitBreaker};
//! use breakwater::clock::ManualClock;
//!
//! let breaker = CircuitBreaker::with_clock(
//!     BreakerConfig::default().with_minimum_calls(2).with_failure_rate_threshold(50.0),
//!     ManualClock::new(),
//! )
//! .expect("valid configuration");
//!
//! breaker.try_acquire().expect("closed").failure();
//! breaker.try_acquire().expect("closed").failure();
//! let rejection = breaker.try_acquire().unwrap_err();
//! assert_eq!(rejection.reason, breakwater::RejectReason::CircuitOpen);
//! ```
//!
//! # Modules
//!
//! The stages, outermost first as a policy runs them:
//! - [`breaker`]: circuit breaker (count and time windows, half-open probes, generations).
//! - [`limiter`]: rate limiter (GCRA on one word; weighted permits, reservations).
//! - [`bulkhead`]: concurrency limit with an optional bounded wait.
//! - [`adaptive`]: adaptive concurrency limits (AIMD, Gradient2), priorities, the SRE
//!   client-side throttle.
//! - [`chaos`]: seeded fault and latency injection, switchable at run time.
//! - [`retry`]: backoff schedules, jitter, retry budgets and the retry step.
//!
//! Putting them together:
//! - [`keyed`]: per-key rate and concurrency limits in a fixed table (clients, API
//!   keys, tenants), with the keys rejected most.
//! - [`policy`]: a named pipeline of the stages with one acquire and one completion.
//! - [`engine`]: the registry of named policies, loading, reload, the global engine, and
//!   its reports (Prometheus text, health).
//! - [`config`]: the policy file (TOML): schema, reader, `explain`.
//! - [`shm`]: host scope, one breaker, limiter and bulkhead shared by every process on a
//!   machine through shared memory (pre-fork servers).
//! - [`fleet`]: fleet scope, limits shared by every host through Redis (feature
//!   `fleet`; without it, the configuration and snapshot types only).
//!
//! Around them:
//! - [`metrics`]: exact counters, latency histograms, Prometheus text, health, events.
//! - [`telemetry`]: the OpenTelemetry names table, W3C trace context on events, and
//!   (feature `opentelemetry`) observable instruments over the snapshots.
//! - [`clock`]: the injected clocks (system, coarse, manual).
//! - [`outcome`], [`rejection`], [`error`]: what a call reports, what a stage answers,
//!   what a bad configuration gets.
//! - [`rng`]: the seeded generator every language replays bit for bit.
//! - `ffi` (feature `capi`): the C ABI, `bw_*`, mirrored file for file.
//! - `tower` (feature `tower`): `PolicyLayer`, one policy around a tower service on
//!   tokio's timers (async waits, real timeouts, retries, hedging).
#![deny(missing_docs)]
#![warn(unreachable_pub)]

mod builder;
mod call_error;
mod codes;
mod num;
pub(crate) mod sync;

pub mod adaptive;
pub mod breaker;
pub mod bulkhead;
pub mod chaos;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
#[cfg(all(feature = "capi", not(loom)))]
pub mod ffi;
pub mod fleet;
pub mod keyed;
pub mod limiter;
pub mod metrics;
pub mod outcome;
pub mod policy;
pub mod rejection;
pub mod retry;
pub mod rng;
pub mod shm;
pub mod telemetry;
#[cfg(all(feature = "tower", not(loom)))]
pub mod tower;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use call_error::CallError;
pub use error::ConfigError;
pub use outcome::Outcome;
pub use rejection::{RejectReason, Rejection};
