//! Retries: backoff schedules with jitter, a lock-free retry budget, and the per-call
//! retry state machine (docs/design.md §3 "Retry").
//!
//! - [`BackoffConfig`], [`Jitter`]: the pure delay schedule (exact
//!   formulas in [`BackoffConfig`]'s docs).
//! - [`BudgetConfig`] and [`RetryBudget`]: retries limited to a ratio of the
//!   traffic plus a floor per second over a sliding window; lock-free, allocation-free.
//! - [`RetryConfig`] and the per-call [`RetryState`] with its
//!   [`RetryDecision`]s and [`GiveUpReason`]s (the one retry step every retry loop
//!   runs).
//! - [`Retry`]: a blocking retry loop built from a config with everything else
//!   defaulted, and its [`RetryError`].

mod backoff;
mod budget;
mod runner;
mod state;

pub use backoff::{BackoffConfig, Jitter};
pub use budget::{BudgetConfig, BudgetSnapshot, RetryBudget};
pub use runner::{EveryError, Retry, RetryError, RetryWhen};
pub use state::{GiveUpReason, RetryConfig, RetryDecision, RetryState};
