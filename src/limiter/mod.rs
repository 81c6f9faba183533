//! Rate limiting: GCRA on one atomic word, weighted permits and reservations.
//!
//! - `config.rs` — [`RateLimiterConfig`], validation, the quota in exact integer units
//! - `gcra.rs` — the pure decision: old state + now → new state + answer
//! - `refund.rs` — the pure refund decision: a taken slot + state + now → what goes back
//! - `rate_limiter.rs` — [`RateLimiter`]: the compare-exchange loop, clock choice
//! - `reservation.rs` — [`Reservation`], [`RawReservation`]: committed future slots
//! - `error.rs` — [`LimiterError`]: rejected, or can never pass

pub(crate) mod config;
mod error;
pub(crate) mod gcra;
mod rate_limiter;
mod refund;
mod reservation;

pub use config::RateLimiterConfig;
pub use error::LimiterError;
pub use rate_limiter::{LimiterSnapshot, RateLimiter, COARSE_CLOCK_MIN_TICKS};
pub use reservation::{RawReservation, Reservation};
