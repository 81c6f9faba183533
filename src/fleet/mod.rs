//! Fleet-wide quotas on Redis: one rate limit and one concurrency limit across every
//! process that shares a Redis, at local speed, with a stated bound when Redis fails
//! (docs/design.md, "Fleet quotas"). The configuration is always built, so a policy
//! file reads the same everywhere; the limits themselves need the feature `fleet`.
//!
//! - `scope.rs` — [`Scope`]: a limit counts this process or the fleet
//! - `snapshot.rs` — [`FleetLimiterSnapshot`]: metrics, bounds, and why it is degraded
//! - `config.rs` — [`FleetConfig`], [`OnUnavailable`]: address, credentials, fallback
//! - `link.rs` — connections with a timeout on every call, scripts by SHA-1 (`NOSCRIPT`)
//! - `tls.rs` — `rediss://`: the CA, client certificate and key files, checked at build
//! - `status.rs` — fleet or fallback, why, and the reconnection backoff
//! - `scripts.rs` — the Lua scripts: batch GCRA, slot acquire and refresh
//! - `batch.rs` — the pure batch-size decision and the local rate estimate
//! - `rate.rs` — `FleetRateLimiter`: leased tokens spent locally
//! - `concurrency.rs` — `FleetConcurrencyLimiter`: expiring slots in a sorted set
//! - `stage.rs` — a policy's fleet stage: its rate limit and concurrency limit

// Built in every configuration (no Redis in them), so their unit tests run in every
// test build; only the fleet limits use them.
#[cfg_attr(not(all(feature = "fleet", not(loom))), allow(dead_code))]
mod batch;
mod config;
mod scope;
mod snapshot;
#[cfg_attr(not(all(feature = "fleet", not(loom))), allow(dead_code))]
mod status;

pub use config::{FleetConfig, OnUnavailable};
pub use scope::Scope;
pub use snapshot::{FleetConcurrencySnapshot, FleetLimiterSnapshot};

#[cfg(all(feature = "fleet", not(loom)))]
mod concurrency;
#[cfg(all(feature = "fleet", not(loom)))]
mod link;
#[cfg(all(feature = "fleet", not(loom)))]
mod rate;
#[cfg(all(feature = "fleet", not(loom)))]
mod scripts;
#[cfg(all(feature = "fleet", not(loom)))]
mod stage;
#[cfg(all(feature = "fleet", not(loom)))]
mod tls;

#[cfg(all(feature = "fleet", not(loom)))]
pub use concurrency::{FleetConcurrencyLimiter, FleetSlot};
#[cfg(all(feature = "fleet", not(loom)))]
pub use rate::{FleetRateLimiter, FleetToken};
#[cfg(all(feature = "fleet", not(loom)))]
pub(crate) use stage::FleetStage;
