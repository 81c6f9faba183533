//! Host scope in a policy's configuration, and attaching the segment it names.

use crate::clock::{AnyClock, Clock, MonotonicClock};
use crate::policy::PolicyConfig;
use crate::ConfigError;

use super::error::HostError;
use super::segment::{Layout, Segment};
use crate::breaker::CircuitBreaker;
use crate::limiter::RateLimiter;
use crate::sync::Arc;

/// `scope = "host"`: the policy's breaker, limiter and bulkhead are shared by every
/// process on this machine that loads a policy with the same segment name and the same
/// configuration of those three stages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct HostScope {
    /// The segment's name (`/dev/shm/breakwater.<segment>`): 1–200 characters of
    /// `A-Z a-z 0-9 . _ -`.
    pub segment: String,
}

impl HostScope {
    /// Host scope in the segment `segment`.
    pub fn new(segment: impl Into<String>) -> Self {
        Self {
            segment: segment.into(),
        }
    }
}

/// FNV-1a, 64 bits: a hash every process computes alike from the same bytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The hash a segment records for `config`: of the shared stages' settings only (breaker,
/// limiter, bulkhead), in their `Debug` form, which names every field and its value.
/// Stages that stay per process (throttle, adaptive, chaos, retry) and the timeout may
/// differ between processes sharing a segment.
pub fn config_hash(config: &PolicyConfig) -> u64 {
    let text = format!(
        "breaker={:?};limiter={:?};bulkhead={:?}",
        config.circuit_breaker, config.rate_limiter, config.bulkhead
    );
    fnv1a(text.as_bytes())
}

/// The segment layout `config` needs.
pub fn layout_for(config: &PolicyConfig) -> Result<Layout, ConfigError> {
    let (window_kind, breaker_bytes, probes) = match &config.circuit_breaker {
        Some(b) => {
            let (kind, bytes) = CircuitBreaker::<AnyClock>::host_block(b)
                .map_err(|e| e.within("circuit_breaker"))?;
            (kind, bytes, b.half_open_permits as usize)
        }
        None => (0, 0, 0),
    };
    let limiter_bytes = if config.rate_limiter.is_some() {
        RateLimiter::<AnyClock>::host_block()
    } else {
        0
    };
    let slots = match &config.bulkhead {
        Some(b) if b.max_concurrent <= crate::bulkhead::MAX_HOST_PERMITS => {
            b.max_concurrent as usize
        }
        Some(_) => {
            return Err(ConfigError::new(
                "bulkhead.max_concurrent",
                format!(
                    "must be at most {} in host scope",
                    crate::bulkhead::MAX_HOST_PERMITS
                ),
            ))
        }
        None => 0,
    };
    Ok(Layout::new(
        breaker_bytes,
        window_kind,
        limiter_bytes,
        slots,
        probes,
    ))
}

/// Attaches (creating it if needed) the segment of `config`'s host scope; `None` when the
/// policy is process-scoped. Refused on a manual or custom clock: processes can share
/// time only on the system's `CLOCK_MONOTONIC`.
pub(crate) fn attach(
    config: &PolicyConfig,
    clock: &AnyClock,
) -> Result<Option<Arc<Segment>>, ConfigError> {
    let Some(scope) = &config.host else {
        return Ok(None);
    };
    if !clock.is_system() {
        return Err(host_error(HostError::Unsupported {
            segment: scope.segment.clone(),
            reason:
                "host scope needs the system clock (CLOCK_MONOTONIC), not a manual or custom one",
        }));
    }
    let layout = layout_for(config)?;
    let now = MonotonicClock.now();
    let segment =
        Segment::attach(&scope.segment, layout, config_hash(config), now).map_err(host_error)?;
    if let Some(breaker) = &config.circuit_breaker {
        super::validate::check_breaker(&segment, breaker, now).map_err(host_error)?;
    }
    Ok(Some(segment))
}

/// A [`HostError`] as the configuration error of the `segment` field, keeping the typed
/// error ([`ConfigError::host_error`]).
pub(crate) fn host_error(error: HostError) -> ConfigError {
    ConfigError::new("segment", error.to_string()).with_host_error(error)
}
