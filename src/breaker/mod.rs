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
//! The semantics, including the decisions DESIGN.md leaves open, are documented on
//! [`CircuitBreaker`]'s module page and on each [`BreakerConfig`] field.

#[allow(clippy::module_inception)]
mod breaker;
mod config;
mod core;
mod permit;
mod snapshot;
mod state;
mod window;

pub use self::breaker::{CallError, CircuitBreaker};
pub use self::config::{
    BreakerConfig, WindowConfig, MAX_COUNT_WINDOW, MAX_HALF_OPEN_PERMITS, MAX_TIME_BUCKETS,
};
pub use self::permit::{BreakerPermit, RawBreakerPermit};
pub use self::snapshot::{BreakerSnapshot, Transition, TransitionCounts};
pub use self::state::BreakerState;
