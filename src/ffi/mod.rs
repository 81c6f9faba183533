//! The C ABI (`bw_` prefix), mirroring the core file for file.
//!
//! - `boundary`: panic catching, NULL checks, handle ownership (Arc vs Box).
//! - `status`: `bw_status` codes and the thread-local last-error message.
//! - `codes`: the codes several handles share (outcomes, priorities, breaker states,
//!   permit flags, `BW_DURATION_UNKNOWN`).
//! - `version`: library and ABI versions.
//! - `strings`: strings handed to C and `bw_string_free`.
//! - `clock`: `bw_clock`, the manual clock.
//! - `engine`: `bw_engine`, policies from a policy file.
//! - `policy`: `bw_policy` and `bw_permit`, acquire and complete; run-time controls.
//! - `keyed`: `bw_keyed_permit`, acquire and complete with a key (per-key limits).
//! - `policy_retry`: a policy's retry loop driven from C (`bw_policy_retry_*`).
//! - `policy_wait`: an acquire whose bulkhead wait the caller can cancel between
//!   slices (`bw_policy_acquire_within`), and `bw_policy_bulkhead_max_wait`.
//! - `breaker`, `limiter`, `bulkhead`: standalone handles with config builders.
//! - `metrics`: `bw_metrics`, the exact counters each standalone handle keeps (a core
//!   `Metered` primitive).
//! - `retry`: the retry schedule (`bw_backoff_delay`, `bw_retry_state`,
//!   `bw_retry_budget`).
//! - `events`: `bw_event` and event listeners.
//! - `trace`: `bw_trace_context` and the traced acquire, complete and retry step, whose
//!   events carry the caller's trace context.
//!
//! The core never imports this module. Every function here is documented for C
//! callers: who owns what, what NULL does, thread-safety, and that outputs are written
//! only on success, except where a function documents otherwise
//! (`bw_policy_retry_next` writes the give-up reason with `BW_RETRY_GIVE_UP`). The
//! generated header is `include/breakwater.h`.
#![allow(non_camel_case_types)]

// Public submodules, unlike the crate's other facades (private submodules plus
// re-exports): C reaches these items by symbol (`bw_*`), not by Rust path, so there is
// nothing to re-export; the modules only group the rustdoc as the core's files do.
pub(crate) mod boundary;
pub mod breaker;
pub mod bulkhead;
pub mod clock;
pub mod codes;
pub mod engine;
pub mod events;
#[cfg(test)]
mod header_tests;
pub mod keyed;
pub mod limiter;
pub mod metrics;
pub mod policy;
pub mod policy_retry;
pub mod policy_wait;
pub mod retry;
pub mod status;
pub mod strings;
pub mod trace;
pub mod version;
