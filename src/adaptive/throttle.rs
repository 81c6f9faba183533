//! Client-side adaptive throttling (Google SRE book, "Handling Overload").

use crate::clock::{duration_to_nanos, AnyClock, Clock};
use crate::error::ConfigError;
use crate::rejection::{RejectReason, Rejection};
use crate::rng::{unit_f64, SharedRng};
use crate::sync::{AtomicU64, Ordering};
use std::fmt;
use std::time::Duration;

/// The most buckets a window may have (the state block is fixed-size).
pub(crate) const MAX_BUCKETS: u32 = 64;

const TAG_SHIFT: u32 = 32;
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;

#[inline]
fn tag_of(word: u64) -> u32 {
    (word >> TAG_SHIFT) as u32
}

#[inline]
fn count_of(word: u64) -> u64 {
    word & COUNT_MASK
}

#[inline]
fn pack(tag: u32, count: u64) -> u64 {
    (u64::from(tag) << TAG_SHIFT) | count.min(COUNT_MASK)
}

/// Configuration of a [`ClientThrottle`].
///
/// ```
/// use breakwater::adaptive::ThrottleConfig;
/// let c = ThrottleConfig::default();
/// assert_eq!((c.k, c.buckets, c.max_rejection_probability), (2.0, 12, 0.9));
/// assert_eq!(c.window, std::time::Duration::from_secs(120));
/// assert!(c.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ThrottleConfig {
    /// The multiplier on accepts, at least 1.0 (below 1 would reject calls even when the
    /// backend accepts them all). 2.0 lets through twice what the backend accepts;
    /// closer to 1 is more aggressive. Default: 2.0.
    pub k: f64,
    /// The sliding window (the SRE book uses two minutes), above 0. Default: 120 s.
    pub window: Duration,
    /// Buckets the window is split into, `1..=64` and at most `window` in ns. Default: 12.
    pub buckets: u32,
    /// The cap on the rejection probability, in `[0, 1]`. Default: 0.9.
    pub max_rejection_probability: f64,
    /// Seed of the random draws. Default: 0.
    pub seed: u64,
}

crate::builder::with_setters!(ThrottleConfig {
    k: f64 => with_k,
    window: Duration => with_window,
    buckets: u32 => with_buckets,
    max_rejection_probability: f64 => with_max_rejection_probability,
    seed: u64 => with_seed,
});

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            k: 2.0,
            window: Duration::from_secs(120),
            buckets: 12,
            max_rejection_probability: 0.9,
            seed: 0,
        }
    }
}

impl ThrottleConfig {
    /// Checks every field; errors name them as in the policy file (`k`, `window`,
    /// `buckets`, `max_rejection_probability`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.k >= 1.0 && self.k.is_finite()) {
            return Err(ConfigError::new(
                "k",
                format!("must be a finite number of at least 1.0, got {}", self.k),
            ));
        }
        if self.window.is_zero() || u64::try_from(self.window.as_nanos()).is_err() {
            return Err(ConfigError::new(
                "window",
                "must be above 0 and fit in 64-bit nanoseconds",
            ));
        }
        if !(1..=MAX_BUCKETS).contains(&self.buckets) {
            return Err(ConfigError::new(
                "buckets",
                format!("must be in 1..={MAX_BUCKETS}, got {}", self.buckets),
            ));
        }
        if duration_to_nanos(self.window) < u64::from(self.buckets) {
            return Err(ConfigError::new(
                "buckets",
                "must not exceed the window in nanoseconds (a bucket is at least 1 ns)",
            ));
        }
        if !(0.0..=1.0).contains(&self.max_rejection_probability) {
            return Err(ConfigError::new(
                "max_rejection_probability",
                format!("must be in [0, 1], got {}", self.max_rejection_probability),
            ));
        }
        Ok(())
    }

    /// The SRE formula for a window holding `requests` and `accepts`, capped.
    ///
    /// ```
    /// use breakwater::adaptive::ThrottleConfig;
    /// let c = ThrottleConfig::default();
    /// assert_eq!(c.rejection_probability(100, 50), 0.0);
    /// assert_eq!(c.rejection_probability(99, 20), 0.59);
    /// assert_eq!(c.rejection_probability(1000, 0), 0.9);
    /// ```
    #[inline]
    pub fn rejection_probability(&self, requests: u64, accepts: u64) -> f64 {
        let r = requests as f64;
        let p = (r - self.k * accepts as f64) / (r + 1.0);
        p.clamp(0.0, self.max_rejection_probability)
    }
}

/// The two bucket arrays, a fixed-size pointer-free block.
#[repr(C)]
struct ThrottleState {
    requests: [AtomicU64; MAX_BUCKETS as usize],
    accepts: [AtomicU64; MAX_BUCKETS as usize],
}

/// Counts of the current window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSnapshot {
    /// Requests attempted in the window (rejected ones included).
    pub requests: u64,
    /// Requests the backend accepted in the window.
    pub accepts: u64,
    /// The probability the next call is rejected.
    pub rejection_probability: f64,
}

/// Client-side adaptive throttling (see the module docs for the exact rule).
///
/// ```
/// use breakwater::adaptive::{ClientThrottle, ThrottleConfig};
/// use breakwater::clock::ManualClock;
///
/// let throttle = ClientThrottle::with_clock(ThrottleConfig::default(), ManualClock::new())?;
/// for _ in 0..10 {
///     if throttle.try_acquire().is_ok() {
///         throttle.record_accepted(); // the backend said yes
///     }
/// }
/// assert_eq!(throttle.rejection_probability(), 0.0);
/// # Ok::<(), breakwater::ConfigError>(())
/// ```
///
/// Over a sliding window the client counts `requests` (every call the application
/// attempted, including those this throttle rejected) and `accepts` (calls the backend
/// accepted, reported with [`ClientThrottle::record_accepted`]), and rejects a new call
/// locally with probability
///
/// ```text
/// p = min(max_rejection_probability, max(0, (requests − k·accepts) / (requests + 1)))
/// ```
///
/// so the client keeps sending about `k` times what the backend accepts and the excess
/// never leaves the process. `max_rejection_probability` < 1 keeps a trickle of probes
/// going to a backend that accepts nothing, so it is noticed when it recovers.
///
/// # Exact rule, for replay in every language
///
/// [`ClientThrottle::try_acquire`] reads the window as it stands, computes `p` from it
/// (before counting this request), then counts the request. If `p > 0` it takes exactly
/// one 64-bit draw `x` from the seeded SplitMix64 ([`SharedRng`]) and rejects iff
/// `unit_f64(x) < p` ([`crate::rng::unit_f64`]: the top 53 bits over 2^53). If `p == 0`
/// it draws nothing. So for one seed and one sequence of calls and clock readings, the
/// answers are identical everywhere.
///
/// # Window
///
/// `window` is split into `buckets` buckets of `floor(window / buckets)` ns each; a
/// reading covers the current (partial) bucket and the `buckets − 1` before it. Each
/// bucket is one `AtomicU64` per counter:
///
/// | bits | meaning |
/// |---|---|
/// | 63..32 | slot tag: `(now / bucket_ns) mod 2^32`, the time slot the count belongs to |
/// | 31..0 | count in that slot (saturating at 2^32 − 1) |
///
/// A count into a bucket whose tag is older restarts it at 1 for the new slot (one
/// compare-exchange), so stale buckets expire without a timer. Rejections carry no
/// `retry_after`: the decision is random and the very next call may pass.
pub struct ClientThrottle<C: Clock = AnyClock> {
    state: ThrottleState,
    rng: SharedRng,
    config: ThrottleConfig,
    bucket_ns: u64,
    clock: C,
}

impl ClientThrottle<AnyClock> {
    /// A throttle on [`AnyClock::Coarse`] (ample for second-sized buckets). See
    /// `clock.rs` for the rule every type follows.
    pub fn new(config: ThrottleConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, AnyClock::Coarse)
    }
}

impl<C: Clock> ClientThrottle<C> {
    /// A throttle reading time from `clock`; fails if `config` is invalid.
    pub fn with_clock(config: ThrottleConfig, clock: C) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            state: ThrottleState {
                requests: std::array::from_fn(|_| AtomicU64::new(0)),
                accepts: std::array::from_fn(|_| AtomicU64::new(0)),
            },
            rng: SharedRng::new(config.seed),
            bucket_ns: duration_to_nanos(config.window) / u64::from(config.buckets),
            config,
            clock,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Counts one request and decides whether to send it: `Ok` to send, or a
    /// [`RejectReason::LoadShed`] rejection (without `retry_after`) to fail it locally.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejection> {
        let slot = self.clock.now() / self.bucket_ns;
        let (requests, accepts) = self.sums(slot);
        let p = self.config.rejection_probability(requests, accepts);
        self.bump(&self.state.requests, slot);
        if p > 0.0 && unit_f64(self.rng.next_u64()) < p {
            return Err(Self::rejected());
        }
        Ok(())
    }

    #[cold]
    fn rejected() -> Rejection {
        Rejection::new(RejectReason::LoadShed, None)
    }

    /// Records that the backend accepted a request.
    #[inline]
    pub fn record_accepted(&self) {
        let slot = self.clock.now() / self.bucket_ns;
        self.bump(&self.state.accepts, slot);
    }

    /// The probability that a call now is rejected.
    pub fn rejection_probability(&self) -> f64 {
        let (requests, accepts) = self.sums(self.clock.now() / self.bucket_ns);
        self.config.rejection_probability(requests, accepts)
    }

    /// Restarts the random sequence from `seed`.
    pub fn reseed(&self, seed: u64) {
        self.rng.reseed(seed);
    }

    /// The window's counts and the current rejection probability.
    pub fn snapshot(&self) -> ThrottleSnapshot {
        let (requests, accepts) = self.sums(self.clock.now() / self.bucket_ns);
        ThrottleSnapshot {
            requests,
            accepts,
            rejection_probability: self.config.rejection_probability(requests, accepts),
        }
    }

    /// Adds one to the bucket of `slot` in `counters`, restarting it if it holds an
    /// older slot.
    #[inline]
    fn bump(&self, counters: &[AtomicU64; MAX_BUCKETS as usize], slot: u64) {
        let index = (slot % u64::from(self.config.buckets)) as usize;
        let tag = slot as u32;
        let Some(word) = counters.get(index) else {
            return;
        };
        // Relaxed: each bucket word is an independent counter; readers only sum them and
        // need no other memory. The compare-exchange keeps counts exact.
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let held = tag_of(current);
            // A bucket holding an older slot restarts; one holding this slot or (seen by a
            // thread whose clock reading is stale) a newer one is incremented.
            let next = if (tag.wrapping_sub(held) as i32) > 0 {
                pack(tag, 1)
            } else {
                pack(held, count_of(current) + 1)
            };
            match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Requests and accepts of the window ending in `slot`.
    #[inline]
    fn sums(&self, slot: u64) -> (u64, u64) {
        let tag = slot as u32;
        let buckets = self.config.buckets;
        let n = buckets as usize;
        let live = |word: u64| {
            let held = tag_of(word);
            tag.wrapping_sub(held) < buckets || held.wrapping_sub(tag) < buckets
        };
        let mut requests = 0u64;
        let mut accepts = 0u64;
        for (r, a) in self.state.requests[..n]
            .iter()
            .zip(&self.state.accepts[..n])
        {
            // Relaxed: see `bump`.
            let r = r.load(Ordering::Relaxed);
            let a = a.load(Ordering::Relaxed);
            if live(r) {
                requests += count_of(r);
            }
            if live(a) {
                accepts += count_of(a);
            }
        }
        (requests, accepts)
    }
}

impl<C: Clock> fmt::Debug for ClientThrottle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientThrottle")
            .field("config", &self.config)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            window: Duration::from_secs(10),
            buckets: 10,
            ..ThrottleConfig::default()
        }
    }

    #[test]
    fn counts_expire_with_the_window() {
        let clock = ManualClock::new();
        let t = ClientThrottle::with_clock(config(), clock.clone()).unwrap();
        for _ in 0..100 {
            let _ = t.try_acquire();
        }
        let snap = t.snapshot();
        assert_eq!((snap.requests, snap.accepts), (100, 0));
        assert_eq!(snap.rejection_probability, 0.9, "capped");
        clock.advance(Duration::from_secs(9));
        assert_eq!(
            t.snapshot().requests,
            100,
            "still in the window at {}",
            clock.now()
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(t.snapshot().requests, 0, "expired at {}", clock.now());
        assert_eq!(t.rejection_probability(), 0.0);
    }

    #[test]
    fn healthy_backend_is_never_throttled() {
        let clock = ManualClock::new();
        let t = ClientThrottle::with_clock(config(), clock.clone()).unwrap();
        for i in 0..10_000u64 {
            t.try_acquire().expect("all accepted so far");
            t.record_accepted();
            if i % 100 == 0 {
                clock.advance(Duration::from_millis(70));
            }
        }
    }

    #[test]
    fn validation_names_fields() {
        let d = config();
        let bad = |c: ThrottleConfig| c.validate().unwrap_err().field;
        assert_eq!(bad(ThrottleConfig { k: 0.5, ..d }), "k");
        assert_eq!(bad(ThrottleConfig { k: f64::NAN, ..d }), "k");
        assert_eq!(
            bad(ThrottleConfig {
                window: Duration::ZERO,
                ..d
            }),
            "window"
        );
        assert_eq!(bad(ThrottleConfig { buckets: 0, ..d }), "buckets");
        assert_eq!(bad(ThrottleConfig { buckets: 65, ..d }), "buckets");
        assert_eq!(
            bad(ThrottleConfig {
                window: Duration::from_nanos(5),
                ..d
            }),
            "buckets"
        );
        assert_eq!(
            bad(ThrottleConfig {
                max_rejection_probability: 1.1,
                ..d
            }),
            "max_rejection_probability"
        );
    }
}
