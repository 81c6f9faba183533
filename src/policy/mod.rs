//! A named pipeline of the resilience stages, with one acquire and one complete.
//!
//! - `config`: [`PolicyConfig`], [`RetryOn`], [`RetryPolicyConfig`].
//! - `pipeline`: [`Policy`], the handle that follows reloads, [`PolicyPermit`],
//!   [`RawPolicyPermit`], [`TracedPermit`] (a permit of a call with a trace context).
//! - `stages`: the stages of one configuration, in order, with acquire and complete.
//! - `call`: the retry step ([`Policy::retry_begin`], [`Policy::retry_next`]),
//!   [`Policy::call`] (the retry loop with fallback), [`CallOptions`] and [`CallError`].
//! - `owned`: [`OwnedPolicyPermit`] ([`Policy::acquire_owned`]) and the non-blocking
//!   [`Policy::try_acquire_owned`] with [`NoWait`], for asynchronous callers.
//! - `snapshot`: [`PolicySnapshot`], the state of every stage and the counters.

mod call;
mod config;
mod owned;
mod pipeline;
mod snapshot;
mod stages;

pub use crate::call_error::CallError;
pub use call::CallOptions;
pub use config::{validate_policy_name, PolicyConfig, RetryOn, RetryPolicyConfig, MAX_POLICY_NAME};
pub use owned::{NoWait, OwnedPolicyPermit};
pub(crate) use pipeline::held;
pub use pipeline::{Policy, PolicyPermit, RawPolicyPermit, TracedPermit};
pub use snapshot::PolicySnapshot;
