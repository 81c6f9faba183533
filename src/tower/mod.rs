//! Tower middleware (feature `tower`): [`PolicyLayer`] runs one [`Policy`] around a
//! tower [`Service`](tower_service::Service) on tokio's timers.
//!
//! - `layer`: [`PolicyLayer`], [`PolicyService`] and their options.
//! - `call`: one call through the policy — retries with backoff under the policy's
//!   budget and an overall deadline, hedging, fault injection.
//! - `attempt`: one attempt — the permit, the timeout that drops the inner future.
//! - `gate`: waiting for a full bulkhead without blocking a thread.
//! - `classify`: [`Classify`], [`Classification`], the default [`HttpClassifier`] and
//!   [`ResultClassifier`].
//! - `hedge`: [`Hedge`], when a second attempt is sent.
//! - `error`: [`PolicyError`], what the service returns when it has no response.
//! - `clock`: [`TokioClock`], a policy clock that reads tokio's time (so a test on
//!   tokio's paused clock drives the policy too).
//!
//! The synchronous core knows nothing of this module; a user without the feature compiles
//! none of it, nor tokio.
//!
//! [`Policy`]: crate::policy::Policy

mod attempt;
mod call;
mod classify;
mod clock;
mod error;
mod gate;
mod hedge;
mod layer;

pub use classify::{Classification, Classify, HttpClassifier, ResultClassifier};
pub use clock::TokioClock;
pub use error::PolicyError;
pub use hedge::Hedge;
pub use layer::{Attempts, PolicyFuture, PolicyLayer, PolicyService, Retrying, SingleAttempt};
