//! [`FleetRateLimiter`]: one GCRA quota across every process, spent at local speed.
//!
//! A background thread leases batches of tokens from Redis (debited there at grant, by
//! [`GCRA_BATCH`](super::scripts::GCRA_BATCH)) and the hot path spends them with one
//! compare-exchange on a local counter; it never waits on the network.
//!
//! # Bounds (N processes, batch cap `B = min(max_batch, burst)`)
//!
//! - Fleet mode: Redis grants at most `rate·T/period + burst` tokens in any interval
//!   `T`, and a process admits only tokens it was granted, so from a start with no
//!   tokens held the fleet admits at most `rate·T/period + burst`. In a window that
//!   starts later, tokens leased before it may be spent in it: at most `N·B` more
//!   (the stranded tokens, [`FleetLimiterSnapshot::stranded_bound`]).
//! - `on_unavailable = "local"`: each process adds at most its share's quota,
//!   `⌊share·rate⌋·T/period + ⌊share·burst⌋` (at least 1 of each), over the outage.
//! - `"deny"`: nothing beyond the tokens already leased (`N·B`).
//! - `"allow"`: no bound while Redis is unavailable.
//! - A Redis restart without persistence forgets the schedule: one more `burst`.

use std::fmt;
use std::time::Duration;

use super::batch::{batch_size, RateEstimate};
use super::config::{FleetConfig, OnUnavailable};
use super::link::{Link, LuaScript};
use super::scripts::GCRA_BATCH;
use super::snapshot::FleetLimiterSnapshot;
use crate::clock::{duration_to_nanos, AnyClock, Clock};
use crate::limiter::{RateLimiter, RateLimiterConfig, RawReservation};
use crate::sync::{thread, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use crate::{ConfigError, RejectReason, Rejection};
use crossbeam_utils::CachePadded;

/// The largest `burst × period` in microseconds: the script's products stay exact in
/// Lua's doubles below 2^53.
const MAX_BURST_PERIOD_US: u128 = 1 << 53;

/// The longest the refill thread sleeps without being woken (it wakes earlier when the
/// local batch runs low, and at a backoff's end).
const MAX_IDLE_WAIT: Duration = Duration::from_millis(10);

/// A rate limit shared by every process that uses the same Redis, namespace and name.
pub struct FleetRateLimiter {
    shared: Arc<Shared>,
    worker: Option<thread::JoinHandle<()>>,
}

/// What [`FleetRateLimiter::try_acquire_raw`] took.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a token not used must be given back with cancel_raw"]
pub struct FleetToken(TokenKind);

#[derive(Debug, PartialEq, Eq)]
enum TokenKind {
    /// One of the tokens leased from Redis.
    Leased,
    /// A slot of the `local` fallback's schedule.
    Local(RawReservation),
    /// Admitted by `allow`.
    Unbounded,
    /// Nothing: a policy's fleet stage without a fleet rate limit (see `stage.rs`).
    NoRate,
}

impl FleetToken {
    /// What a fleet stage without a fleet rate limit hands out.
    pub(super) const NO_RATE: FleetToken = FleetToken(TokenKind::NoRate);
}

struct Shared {
    /// Leased tokens not yet spent. Only a count: nothing is published with it, so every
    /// access is Relaxed (a grant adds, an admission takes one, never below zero).
    tokens: CachePadded<AtomicU64>,
    /// When `tokens` falls to this, the hot path wakes the refill thread (half a batch).
    low_mark: AtomicU64,
    /// Tokens leased in all (Relaxed: a metric; with `tokens` it gives the spent count).
    leased: AtomicU64,
    batch: AtomicU64,
    /// Calls that found no token (the demand the leased tokens did not meet).
    starved: AtomicU64,
    admitted_fallback: AtomicU64,
    rejected: AtomicU64,
    /// The last GCRA wait Redis reported, for a rejection's `retry_after` (Relaxed: a hint).
    retry_after_ns: AtomicU64,
    /// Set when the refill thread must stop; Relaxed: it is re-read after every wait and
    /// nothing else is published with it.
    stop: AtomicBool,
    /// Whether the refill thread has been asked to run early. Set before its mutex is
    /// taken to notify, and read by the thread under that mutex before it waits, so the
    /// mutex orders the two and no wake-up is lost; Relaxed suffices for the flag.
    wake: AtomicBool,
    wake_lock: Mutex<()>,
    wake_cv: Condvar,
    link: Link,
    key: String,
    quota: RateLimiterConfig,
    period_us: u64,
    /// The fleet's emission interval in nanoseconds (rounded up), for pacing requests.
    interval_ns: u64,
    cap: u64,
    fleet: FleetConfig,
    /// The `on_unavailable = "local"` share of the quota.
    local: Option<RateLimiter<AnyClock>>,
    clock: AnyClock,
}

impl FleetRateLimiter {
    /// A fleet limit named `name` (its Redis key is `NAMESPACE:NAME:gcra`) with `quota`
    /// across the fleet, on the system clock. Starts its refill thread.
    pub fn new(
        name: &str,
        quota: RateLimiterConfig,
        fleet: FleetConfig,
    ) -> Result<Self, ConfigError> {
        Self::with_clock(name, quota, fleet, AnyClock::default())
    }

    /// The same on `clock` (the fallback limiter and the rate estimate read it; the
    /// fleet's schedule runs on the Redis server's `TIME`).
    pub fn with_clock(
        name: &str,
        quota: RateLimiterConfig,
        fleet: FleetConfig,
        clock: AnyClock,
    ) -> Result<Self, ConfigError> {
        quota.validate()?;
        fleet.validate()?;
        if name.is_empty() {
            return Err(ConfigError::new("name", "a fleet limit needs a name"));
        }
        let period_us = u64::try_from(quota.period.as_nanos().div_ceil(1000))
            .map_err(|_| ConfigError::new("period", "too long for a fleet limit"))?;
        if u128::from(quota.burst) * u128::from(period_us) >= MAX_BURST_PERIOD_US {
            return Err(ConfigError::new(
                "burst",
                "burst × period must stay below 2^53 µs (285 years) for a fleet limit",
            ));
        }
        let local = match fleet.on_unavailable {
            OnUnavailable::Local => {
                let share = |v: u64| ((v as f64 * fleet.local_share) as u64).max(1);
                let config = RateLimiterConfig::new(share(quota.rate), quota.period)
                    .with_burst(share(quota.burst));
                Some(
                    RateLimiter::with_clock(config, clock.clone())
                        .map_err(|e| e.within("local_share"))?,
                )
            }
            OnUnavailable::Deny | OnUnavailable::Allow => None,
        };
        let link = Link::new(&fleet, clock.clone())?;
        let shared = Arc::new(Shared {
            tokens: CachePadded::new(AtomicU64::new(0)),
            low_mark: AtomicU64::new(0),
            leased: AtomicU64::new(0),
            batch: AtomicU64::new(1),
            starved: AtomicU64::new(0),
            admitted_fallback: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            retry_after_ns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            wake: AtomicBool::new(false),
            wake_lock: Mutex::new(()),
            wake_cv: Condvar::new(),
            link,
            key: format!("{}:{name}:gcra", fleet.namespace),
            quota,
            period_us,
            interval_ns: duration_to_nanos(quota.period).div_ceil(quota.rate),
            cap: fleet.max_batch.min(quota.burst),
            fleet,
            local,
            clock,
        });
        let worker_shared = shared.clone();
        let worker = thread::Builder::new()
            .name(format!("bw-fleet-{name}"))
            .spawn(move || worker_shared.refill_loop())
            .map_err(|e| {
                ConfigError::new("fleet", format!("cannot start the refill thread: {e}"))
            })?;
        Ok(Self {
            shared,
            worker: Some(worker),
        })
    }

    /// Takes one permit: a leased token if there is one (one compare-exchange), else
    /// the rejection, or the `on_unavailable` fallback while Redis is unavailable.
    /// Never waits on the network.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejection> {
        self.try_acquire_raw().map(|_| ())
    }

    /// [`try_acquire`](Self::try_acquire), returning what was taken so that a caller
    /// whose later stage refuses can give it back with [`cancel_raw`](Self::cancel_raw).
    #[inline]
    pub fn try_acquire_raw(&self) -> Result<FleetToken, Rejection> {
        let s = &*self.shared;
        let mut current = s.tokens.load(Ordering::Relaxed);
        while current > 0 {
            match s.tokens.compare_exchange_weak(
                current,
                current - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if current - 1 == s.low_mark.load(Ordering::Relaxed) {
                        s.wake_refill();
                    }
                    return Ok(FleetToken(TokenKind::Leased));
                }
                Err(actual) => current = actual,
            }
        }
        s.without_token()
    }

    /// Gives back a permit that was not used: a leased token returns to the local batch
    /// (it stays debited in Redis, so the fleet bound is unchanged), a fallback one
    /// leaves the local schedule.
    pub fn cancel_raw(&self, token: FleetToken) {
        let s = &*self.shared;
        match token.0 {
            TokenKind::Leased => {
                s.tokens.fetch_add(1, Ordering::Relaxed);
            }
            TokenKind::Local(raw) => {
                if let Some(l) = &s.local {
                    l.cancel_raw(raw);
                }
                s.admitted_fallback.fetch_sub(1, Ordering::Relaxed);
            }
            TokenKind::Unbounded => {
                s.admitted_fallback.fetch_sub(1, Ordering::Relaxed);
            }
            TokenKind::NoRate => {}
        }
    }

    /// The limit's metrics.
    pub fn snapshot(&self) -> FleetLimiterSnapshot {
        let s = &*self.shared;
        let status = &s.link.status;
        // Read `tokens` before `leased`: a grant adds to `tokens` first, so the spent
        // count `leased - tokens` never comes out negative.
        let local_tokens = s.tokens.load(Ordering::Relaxed);
        let leased = s.leased.load(Ordering::Relaxed).max(local_tokens);
        FleetLimiterSnapshot {
            unavailable: status.is_unavailable(),
            message: status.message(),
            leased,
            local_tokens,
            batch: s.batch.load(Ordering::Relaxed),
            stranded_bound: s.cap,
            burst_bound: s.quota.burst,
            round_trips: status.round_trips.load(Ordering::Relaxed),
            failures: status.failures.load(Ordering::Relaxed),
            recoveries: status.recoveries.load(Ordering::Relaxed),
            admitted_fallback: s.admitted_fallback.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            concurrency: None,
        }
    }

    /// The health message while Redis is unavailable, `None` on the fleet quota.
    pub fn unavailable_message(&self) -> Option<String> {
        self.shared.link.status.message()
    }

    /// The fleet quota.
    pub fn quota(&self) -> &RateLimiterConfig {
        &self.shared.quota
    }

    /// The connection settings.
    pub fn fleet_config(&self) -> &FleetConfig {
        &self.shared.fleet
    }
}

impl Shared {
    #[cold]
    fn without_token(&self) -> Result<FleetToken, Rejection> {
        self.starved.fetch_add(1, Ordering::Relaxed);
        if self.link.status.is_unavailable() {
            let fallback = match self.fleet.on_unavailable {
                OnUnavailable::Allow => Ok(TokenKind::Unbounded),
                OnUnavailable::Deny => Err(Rejection::new(RejectReason::RateLimited, None)),
                OnUnavailable::Local => match &self.local {
                    Some(l) => l.try_acquire_raw().map(TokenKind::Local),
                    None => Err(Rejection::new(RejectReason::RateLimited, None)),
                },
            };
            match fallback {
                Ok(kind) => {
                    self.admitted_fallback.fetch_add(1, Ordering::Relaxed);
                    return Ok(FleetToken(kind));
                }
                Err(r) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(r);
                }
            }
        }
        self.wake_refill();
        self.rejected.fetch_add(1, Ordering::Relaxed);
        // Redis's last word on the next token, and never less than one interval.
        let wait = self
            .retry_after_ns
            .load(Ordering::Relaxed)
            .max(self.interval_ns);
        Err(Rejection::new(
            RejectReason::RateLimited,
            Some(Duration::from_nanos(wait)),
        ))
    }

    /// Asks the refill thread to run now; only the first caller since its last run
    /// takes the mutex, so starved callers do not queue on it.
    #[cold]
    fn wake_refill(&self) {
        if !self.wake.swap(true, Ordering::Relaxed) {
            let _guard = self.wake_lock.lock();
            self.wake_cv.notify_one();
        }
    }

    /// The refill thread: keeps at least half a batch leased while Redis grants it.
    fn refill_loop(&self) {
        let gcra = LuaScript::new(GCRA_BATCH);
        let mut estimate = RateEstimate::default();
        let mut last_at = self.clock.now();
        let mut last_spent = 0u64;
        let mut last_starved = 0u64;
        let mut next_grant_at = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.clock.now();
            // Demand since the last look: tokens spent plus calls that found none.
            let tokens = self.tokens.load(Ordering::Relaxed);
            let spent = self.leased.load(Ordering::Relaxed).saturating_sub(tokens);
            let starved = self.starved.load(Ordering::Relaxed);
            if now > last_at {
                estimate.observe(
                    spent.saturating_sub(last_spent) + starved.saturating_sub(last_starved),
                    now - last_at,
                );
                (last_at, last_spent, last_starved) = (now, spent, starved);
            }
            let batch = batch_size(
                estimate.per_sec(),
                self.fleet.lease_horizon,
                self.cap,
                self.batch.load(Ordering::Relaxed),
            );
            self.batch.store(batch, Ordering::Relaxed);
            self.low_mark.store(batch / 2, Ordering::Relaxed);
            let mut wait = MAX_IDLE_WAIT.min(self.fleet.lease_horizon);
            if tokens <= batch / 2 && now >= next_grant_at && self.link.may_attempt() {
                let wanted = batch - tokens;
                let args = (self.period_us, self.quota.rate, self.quota.burst, wanted);
                match self
                    .link
                    .eval::<(u64, u64)>(&gcra, &[self.key.as_str()], args)
                {
                    Ok((granted, wait_us)) => {
                        let granted = granted.min(wanted);
                        // `tokens` first, then `leased`: see `snapshot`.
                        self.tokens.fetch_add(granted, Ordering::Relaxed);
                        self.leased.fetch_add(granted, Ordering::Relaxed);
                        let wait_ns = wait_us.saturating_mul(1000);
                        self.retry_after_ns.store(wait_ns, Ordering::Relaxed);
                        if granted == wanted {
                            continue;
                        }
                        // Short: the fleet is at its quota. Ask again once Redis has
                        // accrued what was missing (at most a horizon away), not at
                        // every call, so an oversubscribed fleet does not spend a round
                        // trip per token.
                        let accrue = (wanted - granted).saturating_mul(self.interval_ns);
                        let pause = accrue
                            .min(duration_to_nanos(self.fleet.lease_horizon))
                            .max(if granted == 0 { wait_ns } else { 0 });
                        next_grant_at = now.saturating_add(pause);
                        wait = wait.min(Duration::from_nanos(pause.max(1)));
                    }
                    Err(_) => {
                        // The status has the message and the backoff; try again then.
                        wait = wait.min(self.fleet.timeout);
                    }
                }
            }
            let mut guard = self.wake_lock.lock();
            if !self.wake.load(Ordering::Relaxed) && !self.stop.load(Ordering::Relaxed) {
                self.wake_cv.wait_timeout(&mut guard, wait);
            }
            drop(guard);
            self.wake.store(false, Ordering::Relaxed);
        }
        self.link.close_idle();
    }
}

impl FleetRateLimiter {
    /// Stops the refill thread (its owner will take no more tokens; see
    /// `FleetStage::retire`); it exits after at most the Redis call under way, closing
    /// the idle connections.
    pub(crate) fn retire(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.store(false, Ordering::Relaxed);
        self.shared.wake_refill();
    }
}

impl Drop for FleetRateLimiter {
    fn drop(&mut self) {
        self.retire();
        // Not joined: the thread exits by itself after at most one Redis call (bounded
        // by the timeout), and the last holder of a policy may be a caller's thread
        // that must not wait for it.
        drop(self.worker.take());
    }
}

impl fmt::Debug for FleetRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetRateLimiter")
            .field("key", &self.shared.key)
            .field("quota", &self.shared.quota)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}
