//! Adaptive concurrency limits and load shedding (backpressure).
//!
//! - [`Priority`]: the classes a caller attaches to an acquire (`critical`,
//!   `default`, `sheddable`), numeric across the C ABI.
//! - [`Sample`]: one completed call as the limit algorithms see it.
//! - [`AimdConfig`]: loss-based AIMD (additive increase, multiplicative decrease).
//! - [`Gradient2Config`]: latency-gradient Gradient2, as in Netflix concurrency-limits.
//! - [`AdaptiveConfig`]: the algorithm choice, bounds and shedding thresholds.
//! - [`AdaptiveLimiter`]: lock-free in-flight tracking against the moving
//!   limit, with priorities, permits and snapshots.
//! - [`ClientThrottle`]: client-side adaptive throttling from the Google SRE
//!   book.

mod aimd;
mod config;
mod gradient;
mod limiter;
mod priority;
mod sample;
mod throttle;

pub use aimd::AimdConfig;
pub use config::{AdaptiveAlgorithm, AdaptiveConfig};
pub use gradient::{Gradient2Config, Gradient2State};
pub use limiter::{AdaptiveLimiter, AdaptivePermit, AdaptiveSnapshot, RawAdaptivePermit};
pub use priority::Priority;
pub use sample::Sample;
pub use throttle::{ClientThrottle, ThrottleConfig, ThrottleSnapshot};
