//! [`FleetStage`]: a policy's fleet-wide stage, its rate limit (`scope = "fleet"` on
//! the rate limiter) and its concurrency limit (`fleet.max_concurrent`), asked in that
//! order at one place of the pipeline.
//!
//! A policy permit carries nothing of the concurrency limit: the C permit has no word to
//! spare, and it needs none. A process's fleet slots are interchangeable (one sorted
//! set, one TTL, refreshed together), so the stage keeps the slots it took in a table of
//! its own and a completing permit gives back any one of them. That holds because every
//! permit the policy issues took exactly one admission of this stage (the pipeline asks
//! it for every call and never completes a permit it refused), so the table holds one
//! entry per permit in flight. Which kind of admission goes back (a leased slot, a
//! `local` fallback permit, an `allow` admission) can differ from the one the call
//! took; every kind's own bound holds at every moment all the same, since returning
//! one only lowers a count.

use super::concurrency::{FleetConcurrencyLimiter, FleetSlot};
use super::rate::{FleetRateLimiter, FleetToken};
use super::scope::Scope;
use super::snapshot::FleetLimiterSnapshot;
use crate::clock::AnyClock;
use crate::policy::PolicyConfig;
use crate::sync::Mutex;
use crate::{ConfigError, Rejection};

/// A policy's fleet limits; built only when it has at least one.
pub(crate) struct FleetStage {
    rate: Option<FleetRateLimiter>,
    slots: Option<Slots>,
}

/// The concurrency limit and the slots this policy's permits in flight hold.
struct Slots {
    limiter: FleetConcurrencyLimiter,
    /// One entry per permit in flight (cold: next to a Redis round trip each time).
    taken: Mutex<Vec<FleetSlot>>,
}

/// A fleet limit's error under the section that holds its key: the quota's under
/// `rate_limiter`, everything else (address, credentials, TLS files, fallback share,
/// `max_concurrent`) under `fleet`, so `fleet.ca_file` is named, not the rate limiter.
fn named(e: ConfigError) -> ConfigError {
    const QUOTA_KEYS: [&str; 3] = ["rate", "period", "burst"];
    if QUOTA_KEYS.contains(&e.field.as_ref()) {
        e.within("rate_limiter")
    } else {
        e.within("fleet")
    }
}

impl FleetStage {
    /// The stage of `config`: `None` when it has no fleet limit. An error names its key
    /// under the section that holds it (see [`named`]).
    pub(crate) fn build(
        config: &PolicyConfig,
        clock: AnyClock,
    ) -> Result<Option<Box<FleetStage>>, ConfigError> {
        let Some(fleet) = &config.fleet else {
            return Ok(None);
        };
        let rate = match &config.rate_limiter {
            Some(c) if c.scope == Scope::Fleet => Some(
                FleetRateLimiter::with_clock(&config.name, *c, (**fleet).clone(), clock.clone())
                    .map_err(named)?,
            ),
            _ => None,
        };
        let slots = match fleet.max_concurrent {
            Some(n) => Some(Slots {
                limiter: FleetConcurrencyLimiter::with_clock(
                    &config.name,
                    n,
                    (**fleet).clone(),
                    clock,
                )
                .map_err(named)?,
                taken: Mutex::new(Vec::new()),
            }),
            None => None,
        };
        if rate.is_none() && slots.is_none() {
            return Ok(None);
        }
        Ok(Some(Box::new(FleetStage { rate, slots })))
    }

    /// A rate token, then a concurrency slot; a refused slot gives the token back.
    #[inline]
    pub(crate) fn try_acquire_raw(&self) -> Result<FleetToken, Rejection> {
        let token = match &self.rate {
            Some(r) => r.try_acquire_raw()?,
            None => FleetToken::NO_RATE,
        };
        if let Some(s) = &self.slots {
            match s.limiter.try_acquire() {
                Ok(slot) => s.taken.lock().push(slot),
                Err(rejection) => {
                    if let Some(r) = &self.rate {
                        r.cancel_raw(token);
                    }
                    return Err(rejection);
                }
            }
        }
        Ok(token)
    }

    /// Gives back what [`try_acquire_raw`](Self::try_acquire_raw) took when a later
    /// stage refused: the token, and a slot.
    pub(crate) fn cancel_raw(&self, token: FleetToken) {
        if let Some(r) = &self.rate {
            r.cancel_raw(token);
        }
        self.complete();
    }

    /// A permit of the policy completed: one slot goes back (one Redis round trip, at
    /// most `timeout`; a failed one leaves the lease to expire). Without a concurrency
    /// limit, nothing.
    pub(crate) fn complete(&self) {
        if let Some(s) = &self.slots {
            let slot = s.taken.lock().pop();
            if let Some(slot) = slot {
                s.limiter.release(slot);
            }
        }
    }

    /// The policy replaced this stage (a reload changed its configuration): no new
    /// acquire will reach it, though one under way and the completions of its permits
    /// still may. The rate limit's refill thread stops now (its leased tokens are
    /// spent by nobody but those acquires); the concurrency limit's lease thread keeps
    /// the slots still held alive and stops once none is. Each closes its idle Redis
    /// connections as it exits.
    pub(crate) fn retire(&self) {
        if let Some(r) = &self.rate {
            r.retire();
        }
        if let Some(s) = &self.slots {
            s.limiter.retire();
        }
    }

    /// Both limits' state: the rate limit's fields (zero without one), the concurrency
    /// limit's in `concurrency`, and unavailable if either is.
    pub(crate) fn snapshot(&self) -> FleetLimiterSnapshot {
        let concurrency = self.slots.as_ref().map(|s| s.limiter.snapshot());
        let mut snap = match &self.rate {
            Some(r) => r.snapshot(),
            None => FleetLimiterSnapshot::default(),
        };
        if let Some(c) = &concurrency {
            snap.unavailable |= c.unavailable;
            if snap.message.is_none() {
                snap.message.clone_from(&c.message);
            }
        }
        snap.concurrency = concurrency;
        snap
    }
}
