//! Fleet-wide quotas on Redis (feature `fleet`): one rate limit and one concurrency
//! limit across every process that shares a Redis, at local speed, with a stated bound
//! when Redis fails (docs/design.md, "Fleet quotas").
//!
//! - `config.rs` — [`FleetConfig`], [`OnUnavailable`]: address, credentials, fallback
//! - `link.rs` — connections with a timeout on every call, scripts by SHA-1 (`NOSCRIPT`)
//! - `status.rs` — fleet or fallback, why, and the reconnection backoff
//! - `scripts.rs` — the Lua scripts: batch GCRA, slot acquire and refresh
//! - `batch.rs` — the pure batch-size decision and the local rate estimate
//! - `rate.rs` — [`FleetRateLimiter`]: leased tokens spent locally
//! - `concurrency.rs` — [`FleetConcurrencyLimiter`]: expiring slots in a sorted set

mod batch;
mod concurrency;
mod config;
mod link;
mod rate;
mod scripts;
mod status;

pub use concurrency::{FleetConcurrencyLimiter, FleetConcurrencySnapshot, FleetSlot};
pub use config::{FleetConfig, OnUnavailable};
pub use rate::{FleetLimiterSnapshot, FleetRateLimiter};
