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

/// The verbs every policy permit guard shares, over its field `$held` (an `Option` of
/// the `$inner` permit, `None` once completed): what fault injection decided, and the
/// two common outcomes, which go through the guard's own `record`.
macro_rules! permit_verbs {
    ($held:ident, $inner:ty) => {
        /// Whether fault injection decided that this call fails (skip the real call).
        pub fn injected_failure(&self) -> bool {
            self.$held.as_ref().is_some_and(<$inner>::injected_failure)
        }

        /// Latency to inject before the call.
        pub fn injected_latency(&self) -> Duration {
            self.$held
                .as_ref()
                .map_or(Duration::ZERO, <$inner>::injected_latency)
        }

        /// The call succeeded.
        pub fn success(self) {
            self.record(Outcome::Success)
        }

        /// The call failed.
        pub fn failure(self) {
            self.record(Outcome::Failure)
        }
    };
}

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
#[cfg(all(feature = "capi", not(loom)))]
pub(crate) use pipeline::held;
pub use pipeline::{Policy, PolicyPermit, RawPolicyPermit, TracedPermit};
pub use snapshot::PolicySnapshot;
