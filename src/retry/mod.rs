//! Retries: backoff schedules with jitter, a lock-free retry budget, and the per-call
//! retry state machine (docs/design.md §3 "Retry").
//!
//! - [`backoff`]: [`BackoffConfig`], [`Jitter`] and the pure delay schedule (exact
//!   formulas in its docs).
//! - [`budget`]: [`BudgetConfig`] and [`RetryBudget`], retries limited to a ratio of the
//!   traffic plus a floor per second over a sliding window; lock-free, allocation-free.
//! - [`state`]: [`RetryConfig`], the per-call [`RetryState`] with its
//!   [`RetryDecision`]s and [`GiveUpReason`]s (the one retry step every retry loop
//!   runs).
//! - [`runner`]: [`Retry`], a blocking retry loop built from a config with everything else
//!   defaulted, and its [`RetryError`].

pub mod backoff;
pub mod budget;
pub mod runner;
pub mod state;

pub use backoff::{BackoffConfig, Jitter};
pub use budget::{BudgetConfig, BudgetSnapshot, RetryBudget};
pub use runner::{EveryError, Retry, RetryError, RetryWhen};
pub use state::{GiveUpReason, RetryConfig, RetryDecision, RetryState};
