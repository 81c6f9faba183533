//! Retries: backoff schedules with jitter, a lock-free retry budget, and the per-call
//! retry state machine (docs/design.md §3 "Retry").
//!
//! - [`backoff`]: [`BackoffConfig`], [`Jitter`] and the pure delay schedule (exact
//!   formulas in its docs).
//! - [`budget`]: [`BudgetConfig`] and [`RetryBudget`], retries limited to a ratio of the
//!   traffic plus a floor per second over a sliding window; lock-free, allocation-free.
//! - [`retrier`]: [`RetryConfig`], the per-call [`RetryState`] with its
//!   [`RetryDecision`]s and [`GiveUpReason`]s (the one retry step every retry loop
//!   runs), and the blocking [`retry`] helpers.

pub mod backoff;
pub mod budget;
pub mod retrier;

pub use backoff::{BackoffConfig, Jitter};
pub use budget::{BudgetConfig, BudgetSnapshot, RetryBudget};
pub use retrier::{
    retry, retry_from_state, retry_with_sleep, GiveUpReason, RetryConfig, RetryDecision,
    RetryError, RetryState,
};
