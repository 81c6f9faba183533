//! `bw_metrics`: the exact counters of a standalone handle (`bw_breaker`, `bw_limiter`,
//! `bw_bulkhead`), read with `bw_breaker_get_metrics` and its siblings.
//!
//! Each handle is a [`Metered`] primitive (the core's opt-in counters); this file only
//! translates its snapshot into `bw_metrics`.

use super::boundary::{write_out, ArcHandle};
use super::status::bw_status;
use crate::metrics::{Metered, MetricsSnapshot};

/// The counters of a standalone handle, filled by `bw_breaker_get_metrics`,
/// `bw_limiter_get_metrics` and `bw_bulkhead_get_metrics`. Exact under concurrency;
/// taken while other threads call, `success + failure + timeout + ignored ≤ permitted`.
///
/// What each handle counts:
/// - breaker: acquires answered `BW_OK` (permitted) or `BW_CIRCUIT_OPEN` (rejected);
///   completions by outcome; slow calls (with a slow-call rule and a given duration);
///   the durations passed to `bw_breaker_complete`.
/// - limiter: `bw_limiter_try_acquire`, `bw_limiter_reserve` and `bw_limiter_acquire`
///   answered `BW_OK` (permitted, once per call whatever the token count) or
///   `BW_RATE_LIMITED` (rejected). A limiter hands out nothing to give back: its
///   completion counters stay zero, and a cancelled reservation stays permitted.
/// - bulkhead: acquires answered `BW_OK` (permitted) or `BW_BULKHEAD_FULL` (rejected);
///   each `bw_bulkhead_release` of a permit counts as a completion with outcome
///   ignored (a bulkhead learns no outcome), so `permitted − ignored` is in flight.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct bw_metrics {
    /// Acquires let through.
    pub permitted: u64,
    /// Acquires refused.
    pub rejected: u64,
    /// Completions with `BW_OUTCOME_SUCCESS`.
    pub success: u64,
    /// Completions with `BW_OUTCOME_FAILURE`.
    pub failure: u64,
    /// Completions with `BW_OUTCOME_TIMEOUT`.
    pub timeout: u64,
    /// Completions with `BW_OUTCOME_IGNORED` (for a bulkhead: releases).
    pub ignored: u64,
    /// Completions slower than the slow-call duration.
    pub slow: u64,
    /// Completions with a known duration (in the latency histogram).
    pub latency_count: u64,
    /// Sum of those durations, ns.
    pub latency_sum_ns: u64,
    /// Median latency, ns (0 when no call was timed).
    pub latency_p50_ns: u64,
    /// 90th percentile latency, ns.
    pub latency_p90_ns: u64,
    /// 99th percentile latency, ns.
    pub latency_p99_ns: u64,
    /// 99.9th percentile latency, ns.
    pub latency_p999_ns: u64,
}

impl From<&MetricsSnapshot> for bw_metrics {
    fn from(s: &MetricsSnapshot) -> Self {
        let nanos = |d: Option<std::time::Duration>| d.map_or(0, crate::clock::duration_to_nanos);
        bw_metrics {
            permitted: s.permitted,
            rejected: s.rejected_total(),
            success: s.success,
            failure: s.failure,
            timeout: s.timeout,
            ignored: s.ignored,
            slow: s.slow,
            latency_count: s.latency.count,
            latency_sum_ns: s.latency.sum_nanos,
            latency_p50_ns: nanos(s.latency.p50()),
            latency_p90_ns: nanos(s.latency.p90()),
            latency_p99_ns: nanos(s.latency.p99()),
            latency_p999_ns: nanos(s.latency.p999()),
        }
    }
}

/// The body of `bw_breaker_get_metrics`, `bw_limiter_get_metrics` and
/// `bw_bulkhead_get_metrics`, after their NULL checks: one contract, one implementation
/// (cbindgen cannot see functions a macro writes, so each stays a thin function).
///
/// # Safety
/// `handle` must be a live handle of type `H`; `out` valid for a write.
pub(crate) unsafe fn write_metrics<H, P>(handle: *const H, out: *mut bw_metrics) -> bw_status
where
    H: ArcHandle<Rust = Metered<P>>,
    P: Send + Sync,
{
    // SAFETY: live by this function's contract.
    let metered = unsafe { H::borrow(handle) };
    let metrics = bw_metrics::from(&metered.metrics().snapshot());
    // SAFETY: writable by this function's contract.
    unsafe { write_out(out, metrics) };
    bw_status::BW_OK
}
