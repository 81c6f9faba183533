//! The codes several handles share: outcomes, priorities, breaker states, permit flags,
//! and `BW_DURATION_UNKNOWN`, with the fallible readers of codes that come from C.
//!
//! Each value is part of the ABI: never changed, never reused. The core enums carry the
//! same numbers (`Outcome`, `Priority`, `BreakerState`); the tests below tie them.

use super::status::{bw_status, fail};
use crate::adaptive::Priority;
use crate::Outcome;

/// The call succeeded.
pub const BW_OUTCOME_SUCCESS: i32 = 0;
/// The call failed.
pub const BW_OUTCOME_FAILURE: i32 = 1;
/// The call timed out (counts as a failure).
pub const BW_OUTCOME_TIMEOUT: i32 = 2;
/// The call says nothing about the dependency (cancelled); frees the permit only.
pub const BW_OUTCOME_IGNORED: i32 = 3;

/// Critical traffic: shed only at the adaptive limit's hard limit.
pub const BW_PRIORITY_CRITICAL: i32 = 0;
/// Default traffic.
pub const BW_PRIORITY_DEFAULT: i32 = 1;
/// Sheddable traffic: shed first under pressure.
pub const BW_PRIORITY_SHEDDABLE: i32 = 2;

/// Breaker state code: closed.
pub const BW_BREAKER_CLOSED: i32 = 0;
/// Breaker state code: open.
pub const BW_BREAKER_OPEN: i32 = 1;
/// Breaker state code: half-open.
pub const BW_BREAKER_HALF_OPEN: i32 = 2;
/// Breaker state code: forced open.
pub const BW_BREAKER_FORCED_OPEN: i32 = 3;
/// Breaker state code: disabled.
pub const BW_BREAKER_DISABLED: i32 = 4;

/// Pass as `duration_ns` to let the library use its own measurement.
pub const BW_DURATION_UNKNOWN: u64 = u64::MAX;

/// Permit flag (`bw_permit`): the policy's circuit breaker granted the permit.
/// Informational: completion does not read `flags`.
pub const BW_PERMIT_BREAKER: u32 = 1;
/// Permit flag (`bw_permit`, `bw_breaker_permit`): the breaker permit is a half-open
/// probe.
pub const BW_PERMIT_PROBE: u32 = 2;
/// Permit flag (`bw_permit`): the policy's adaptive limit granted the permit.
pub const BW_PERMIT_ADAPTIVE: u32 = 4;
/// Permit flag (`bw_permit`): the permit holds a slot of the policy's bulkhead.
pub const BW_PERMIT_BULKHEAD: u32 = 8;
/// Permit flag (`bw_permit`): fault injection decided that this call fails: skip the
/// real call and complete the permit with `BW_OUTCOME_FAILURE`.
pub const BW_PERMIT_INJECTED_FAILURE: u32 = 16;
/// Permit flag (`bw_permit`): fault injection adds latency to this call: wait
/// `injected_latency_ns` before the call (or before reporting an injected failure). Set
/// exactly when `injected_latency_ns` is not 0.
pub const BW_PERMIT_INJECTED_LATENCY: u32 = 32;

/// Reads an outcome code from C (`BW_OUTCOME_*`); anything else is
/// `BW_INVALID_ARGUMENT` with a message.
pub(crate) fn parse_outcome(code: i32) -> Result<Outcome, bw_status> {
    Outcome::from_code(i64::from(code)).ok_or_else(|| {
        fail(
            bw_status::BW_INVALID_ARGUMENT,
            format_args!(
                "unknown outcome {code} (expected 0 success, 1 failure, 2 timeout, 3 ignored)"
            ),
        )
    })
}

/// Reads a priority code from C (`BW_PRIORITY_*`); anything else is
/// `BW_INVALID_ARGUMENT` with a message.
pub(crate) fn parse_priority(code: i32) -> Result<Priority, bw_status> {
    Priority::from_code(i64::from(code)).ok_or_else(|| {
        fail(
            bw_status::BW_INVALID_ARGUMENT,
            format_args!("unknown priority {code} (expected 0 critical, 1 default, 2 sheddable)"),
        )
    })
}

/// A duration from C: `BW_DURATION_UNKNOWN` is `None`.
pub(crate) fn known_duration(duration_ns: u64) -> Option<u64> {
    (duration_ns != BW_DURATION_UNKNOWN).then_some(duration_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerState;

    #[test]
    fn the_codes_are_the_core_enums_numbers() {
        for (code, outcome) in [
            (BW_OUTCOME_SUCCESS, Outcome::Success),
            (BW_OUTCOME_FAILURE, Outcome::Failure),
            (BW_OUTCOME_TIMEOUT, Outcome::Timeout),
            (BW_OUTCOME_IGNORED, Outcome::Ignored),
        ] {
            assert_eq!(parse_outcome(code), Ok(outcome));
        }
        for (code, priority) in [
            (BW_PRIORITY_CRITICAL, Priority::Critical),
            (BW_PRIORITY_DEFAULT, Priority::Default),
            (BW_PRIORITY_SHEDDABLE, Priority::Sheddable),
        ] {
            assert_eq!(parse_priority(code), Ok(priority));
        }
        for (code, state) in [
            (BW_BREAKER_CLOSED, BreakerState::Closed),
            (BW_BREAKER_OPEN, BreakerState::Open),
            (BW_BREAKER_HALF_OPEN, BreakerState::HalfOpen),
            (BW_BREAKER_FORCED_OPEN, BreakerState::ForcedOpen),
            (BW_BREAKER_DISABLED, BreakerState::Disabled),
        ] {
            assert_eq!(state as i32, code);
        }
    }

    #[test]
    fn unknown_codes_are_refused_with_a_status() {
        assert_eq!(parse_outcome(4), Err(bw_status::BW_INVALID_ARGUMENT));
        assert_eq!(parse_outcome(-1), Err(bw_status::BW_INVALID_ARGUMENT));
        assert_eq!(parse_priority(3), Err(bw_status::BW_INVALID_ARGUMENT));
        assert_eq!(
            parse_priority(i32::MIN),
            Err(bw_status::BW_INVALID_ARGUMENT)
        );
    }

    #[test]
    fn the_permit_flags_are_distinct_bits() {
        let flags = [
            BW_PERMIT_BREAKER,
            BW_PERMIT_PROBE,
            BW_PERMIT_ADAPTIVE,
            BW_PERMIT_BULKHEAD,
            BW_PERMIT_INJECTED_FAILURE,
            BW_PERMIT_INJECTED_LATENCY,
        ];
        let mut seen = 0;
        for flag in flags {
            assert_eq!(flag.count_ones(), 1);
            assert_eq!(seen & flag, 0);
            seen |= flag;
        }
    }
}
