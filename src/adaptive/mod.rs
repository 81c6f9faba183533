//! Adaptive concurrency limits and load shedding (backpressure).
//!
//! - [`priority`]: the priority classes a caller attaches to an acquire (`critical`,
//!   `default`, `sheddable`), numeric across the C ABI.
//! - [`sample`]: one completed call as the limit algorithms see it.
//! - [`aimd`]: loss-based AIMD (additive increase, multiplicative decrease).
//! - [`gradient`]: latency-gradient Gradient2, as in Netflix concurrency-limits.
//! - [`config`]: [`AdaptiveConfig`], the algorithm choice, bounds and shedding thresholds.
//! - [`limiter`]: [`AdaptiveLimiter`], lock-free in-flight tracking against the moving
//!   limit, with priorities, permits and snapshots.
//! - [`throttle`]: [`ClientThrottle`], client-side adaptive throttling from the Google SRE
//!   book.

pub mod aimd;
pub mod config;
pub mod gradient;
pub mod limiter;
pub mod priority;
pub mod sample;
pub mod throttle;

pub use aimd::AimdConfig;
pub use config::{AdaptiveAlgorithm, AdaptiveConfig};
pub use gradient::{Gradient2Config, Gradient2State};
pub use limiter::{AdaptiveLimiter, AdaptivePermit, AdaptiveSnapshot, RawAdaptivePermit};
pub use priority::Priority;
pub use sample::Sample;
pub use throttle::{ClientThrottle, ThrottleConfig, ThrottleSnapshot};
