//! A named pipeline of the resilience stages, with one acquire and one complete.
//!
//! - `config`: [`PolicyConfig`], [`RetryOn`], [`RetryPolicyConfig`].
//! - `pipeline`: [`Policy`], [`PolicyPermit`], [`RawPolicyPermit`] — the stages in order.
//! - `call`: the retry step ([`Policy::retry_begin`], [`Policy::retry_next`]),
//!   [`Policy::call`] (the retry loop with fallback), [`CallOptions`] and [`CallError`].
//! - `snapshot`: [`PolicySnapshot`], the state of every stage and the counters.

mod call;
mod config;
mod pipeline;
mod snapshot;

pub use call::{CallError, CallOptions};
pub use config::{PolicyConfig, RetryOn, RetryPolicyConfig};
pub use pipeline::{Policy, PolicyPermit, RawPolicyPermit};
pub use snapshot::PolicySnapshot;
