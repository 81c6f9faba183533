//! Per-key limits: a rate and a concurrency limit for each client, API key or tenant,
//! in memory fixed when the limiter is built.
//!
//! - `config`: [`PerKeyConfig`], the `per_key` section of a policy.
//! - `hash`: the seeded SipHash-1-3 that places keys (a client choosing keys cannot aim
//!   them at one bucket without the seed).
//! - `table`: the fixed table of key states: buckets of a few slots, each behind a tiny
//!   lock, a key in either of two; what is dropped, what is evicted and what is refused
//!   when both are full.
//! - `heavy`: [`HeavyHitter`], the space-saving sketch of the keys rejected most.
//! - `tally`: the rejections a thread counts itself before they go to the sketch.
//! - `limiter`: [`KeyedLimiter`], the table on a clock, with [`KeyedPermit`] and the
//!   plain-data [`KeySlot`]; [`KeyedSnapshot`].

mod config;
mod hash;
mod heavy;
mod limiter;
mod table;
mod tally;

pub use config::{PerKeyConfig, MAX_CONCURRENT_PER_KEY, MAX_KEYS, MAX_TOP_KEYS};
pub use heavy::HeavyHitter;
pub use limiter::{KeyedLimiter, KeyedPermit, KeyedSnapshot};
pub use table::KeySlot;
