//! Fault injection: forced rejections, failures and latency, switchable at run time.
//!
//! A [`Chaos`] stage sits innermost in a policy's pipeline (like Polly's Simmy or Envoy's
//! fault filter). [`Chaos::decide`] says, for one call, whether to reject it
//! (the pipeline answers `Rejection { reason: Injected }` and makes no call), fail it
//! (the wrapper skips the real call and reports a failure) and/or delay it first.
//!
//! # Replay: the exact draw rule
//!
//! The random source is SplitMix64 seeded with `seed` (as [`crate::rng::Rng`]). Each
//! `decide()` while enabled takes exactly **four** consecutive 64-bit draws `d1..d4`
//! (the counter advances by four steps in one atomic add), whatever the probabilities;
//! while disabled it takes none. With `t(p) = floor(p · 2^64)` for `p < 1`:
//!
//! | draw | decides | rule |
//! |---|---|---|
//! | `d1` | reject | `p_reject == 1` or `d1 < t(p_reject)` |
//! | `d2` | fail | `p_fail == 1` or `d2 < t(p_fail)` |
//! | `d3` | latency injected | `p_latency == 1` or `d3 < t(p_latency)` |
//! | `d4` | how much | `Fixed(d)`: `d`; `Uniform { min, max }`: `min + floor(d4 · (max − min + 1) / 2^64)` ns |
//!
//! A rejection wins: when `reject` is set, `fail` is false and `latency` zero (a call
//! that is not made neither fails nor waits). So for one seed and one sequence of calls
//! every language gets identical decisions; two runs with the same seed are identical.
//!
//! # Run-time switching without locks on `decide`
//!
//! The tuning lives in two slots of atomics and a generation counter. A reconfiguration
//! (serialized by a mutex; it is not a hot path) writes the slot not in use, then
//! publishes it by bumping the generation. `decide` reads the generation, the slot it
//! names, and the generation again; if a reconfiguration completed in between it reads
//! again. So `decide` never waits for a writer and always sees one whole configuration.
//! `enabled` is a separate flag, checked first, so a disabled stage costs one load.

use crate::clock::duration_to_nanos;
use crate::error::ConfigError;
use crate::rng::{nth_draw, GOLDEN_GAMMA};
use crate::sync::{fence, AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering};
use std::fmt;
use std::time::Duration;

/// Draws per enabled `decide()`.
pub const DRAWS_PER_DECISION: u64 = 4;

const KIND_NONE: u32 = 0;
const KIND_FIXED: u32 = 1;
const KIND_UNIFORM: u32 = 2;

/// Injected latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatencyFault {
    /// No latency.
    #[default]
    None,
    /// Always this long.
    Fixed(Duration),
    /// Uniform in `min..=max` (nanosecond resolution).
    Uniform {
        /// Shortest delay.
        min: Duration,
        /// Longest delay, at least `min`.
        max: Duration,
    },
}

/// Configuration of a [`Chaos`] stage. Probabilities are in `[0, 1]`.
///
/// ```
/// use breakwater::chaos::{ChaosConfig, LatencyFault};
/// use std::time::Duration;
/// let c = ChaosConfig::default()
///     .with_enabled(true)
///     .with_failure_probability(0.1)
///     .with_latency_probability(0.5)
///     .with_latency(LatencyFault::Fixed(Duration::from_millis(100)));
/// assert!(c.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct ChaosConfig {
    /// Whether faults are injected at all. Default: false.
    pub enabled: bool,
    /// Probability that a call is failed without being made. Default: 0.
    pub failure_probability: f64,
    /// Probability that a call is rejected (`Injected`). Default: 0.
    pub rejection_probability: f64,
    /// Probability that `latency` is injected before a call. Default: 0.
    pub latency_probability: f64,
    /// The latency to inject; must not be `None` when `latency_probability > 0`. Default: None.
    pub latency: LatencyFault,
    /// Seed of the random draws. Default: 0.
    pub seed: u64,
}

crate::builder::with_setters!(ChaosConfig {
    enabled: bool => with_enabled,
    failure_probability: f64 => with_failure_probability,
    rejection_probability: f64 => with_rejection_probability,
    latency_probability: f64 => with_latency_probability,
    latency: LatencyFault => with_latency,
    seed: u64 => with_seed,
});

impl ChaosConfig {
    /// Checks every field; errors name them as in the policy file
    /// (`failure_probability`, `rejection_probability`, `latency_probability`, `latency`,
    /// `latency.min`, `latency.max`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, p) in [
            ("failure_probability", self.failure_probability),
            ("rejection_probability", self.rejection_probability),
            ("latency_probability", self.latency_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::new(
                    field,
                    format!("must be in [0, 1], got {p}"),
                ));
            }
        }
        let fits = |d: Duration| u64::try_from(d.as_nanos()).is_ok();
        match self.latency {
            LatencyFault::None if self.latency_probability > 0.0 => Err(ConfigError::new(
                "latency",
                "must be set when latency_probability is above 0",
            )),
            LatencyFault::None => Ok(()),
            LatencyFault::Fixed(d) if !fits(d) => Err(ConfigError::new(
                "latency",
                "must fit in 64-bit nanoseconds (584 years)",
            )),
            LatencyFault::Fixed(_) => Ok(()),
            LatencyFault::Uniform { min, .. } if !fits(min) => Err(ConfigError::new(
                "latency.min",
                "must fit in 64-bit nanoseconds (584 years)",
            )),
            LatencyFault::Uniform { max, .. } if !fits(max) => Err(ConfigError::new(
                "latency.max",
                "must fit in 64-bit nanoseconds (584 years)",
            )),
            LatencyFault::Uniform { min, max } if max < min => Err(ConfigError::new(
                "latency.max",
                format!("must be at least latency.min ({min:?}), got {max:?}"),
            )),
            LatencyFault::Uniform { .. } => Ok(()),
        }
    }
}

/// What to inject into one call. All false/zero: make the call normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChaosDecision {
    /// Refuse the call with `Rejection { reason: Injected }`; when set, `fail` is false
    /// and `latency` zero.
    pub reject: bool,
    /// Do not make the call; report it as failed.
    pub fail: bool,
    /// Wait this long before the call (or before reporting the injected failure).
    pub latency: Duration,
}

impl ChaosDecision {
    /// Whether nothing is injected.
    #[inline]
    pub fn is_none(&self) -> bool {
        *self == ChaosDecision::default()
    }
}

/// The probability `p` as a threshold on a 64-bit draw: `floor(p · 2^64)`, and
/// `u64::MAX` standing for "always" when `p == 1`.
#[inline]
fn threshold(p: f64) -> u64 {
    if p >= 1.0 {
        u64::MAX
    } else {
        // p · 2^64 < 2^64 is exact (a power-of-two scale); `as` floors it.
        (p * 18_446_744_073_709_551_616.0) as u64
    }
}

#[inline]
fn hit(draw: u64, threshold: u64) -> bool {
    threshold == u64::MAX || draw < threshold
}

/// One tuning slot, all atomics.
#[repr(C)]
struct Slot {
    reject_threshold: AtomicU64,
    fail_threshold: AtomicU64,
    latency_threshold: AtomicU64,
    latency_min_ns: AtomicU64,
    latency_max_ns: AtomicU64,
    reject_bits: AtomicU64,
    fail_bits: AtomicU64,
    latency_bits: AtomicU64,
    latency_kind: AtomicU32,
}

/// A plain copy of a slot.
#[derive(Clone, Copy)]
struct Tuning {
    reject_threshold: u64,
    fail_threshold: u64,
    latency_threshold: u64,
    latency_min_ns: u64,
    latency_max_ns: u64,
    reject_bits: u64,
    fail_bits: u64,
    latency_bits: u64,
    latency_kind: u32,
}

impl Tuning {
    fn of(config: &ChaosConfig) -> Self {
        let (kind, min, max) = match config.latency {
            LatencyFault::None => (KIND_NONE, 0, 0),
            LatencyFault::Fixed(d) => (KIND_FIXED, duration_to_nanos(d), duration_to_nanos(d)),
            LatencyFault::Uniform { min, max } => {
                (KIND_UNIFORM, duration_to_nanos(min), duration_to_nanos(max))
            }
        };
        Self {
            reject_threshold: threshold(config.rejection_probability),
            fail_threshold: threshold(config.failure_probability),
            latency_threshold: threshold(config.latency_probability),
            latency_min_ns: min,
            latency_max_ns: max,
            reject_bits: config.rejection_probability.to_bits(),
            fail_bits: config.failure_probability.to_bits(),
            latency_bits: config.latency_probability.to_bits(),
            latency_kind: kind,
        }
    }

    /// The pure decision for four draws.
    #[inline]
    fn decide(&self, draws: [u64; 4]) -> ChaosDecision {
        if hit(draws[0], self.reject_threshold) {
            return ChaosDecision {
                reject: true,
                fail: false,
                latency: Duration::ZERO,
            };
        }
        let fail = hit(draws[1], self.fail_threshold);
        let latency = if self.latency_kind != KIND_NONE && hit(draws[2], self.latency_threshold) {
            let span = u128::from(self.latency_max_ns.saturating_sub(self.latency_min_ns)) + 1;
            let offset = ((u128::from(draws[3]) * span) >> 64) as u64;
            Duration::from_nanos(self.latency_min_ns.saturating_add(offset))
        } else {
            Duration::ZERO
        };
        ChaosDecision {
            reject: false,
            fail,
            latency,
        }
    }
}

impl Slot {
    fn new(t: Tuning) -> Self {
        Self {
            reject_threshold: AtomicU64::new(t.reject_threshold),
            fail_threshold: AtomicU64::new(t.fail_threshold),
            latency_threshold: AtomicU64::new(t.latency_threshold),
            latency_min_ns: AtomicU64::new(t.latency_min_ns),
            latency_max_ns: AtomicU64::new(t.latency_max_ns),
            reject_bits: AtomicU64::new(t.reject_bits),
            fail_bits: AtomicU64::new(t.fail_bits),
            latency_bits: AtomicU64::new(t.latency_bits),
            latency_kind: AtomicU32::new(t.latency_kind),
        }
    }

    // Relaxed loads and stores: the generation counter and fences in `Chaos` order them.
    #[inline]
    fn load(&self) -> Tuning {
        Tuning {
            reject_threshold: self.reject_threshold.load(Ordering::Relaxed),
            fail_threshold: self.fail_threshold.load(Ordering::Relaxed),
            latency_threshold: self.latency_threshold.load(Ordering::Relaxed),
            latency_min_ns: self.latency_min_ns.load(Ordering::Relaxed),
            latency_max_ns: self.latency_max_ns.load(Ordering::Relaxed),
            reject_bits: self.reject_bits.load(Ordering::Relaxed),
            fail_bits: self.fail_bits.load(Ordering::Relaxed),
            latency_bits: self.latency_bits.load(Ordering::Relaxed),
            latency_kind: self.latency_kind.load(Ordering::Relaxed),
        }
    }

    fn store(&self, t: Tuning) {
        self.reject_threshold
            .store(t.reject_threshold, Ordering::Relaxed);
        self.fail_threshold
            .store(t.fail_threshold, Ordering::Relaxed);
        self.latency_threshold
            .store(t.latency_threshold, Ordering::Relaxed);
        self.latency_min_ns
            .store(t.latency_min_ns, Ordering::Relaxed);
        self.latency_max_ns
            .store(t.latency_max_ns, Ordering::Relaxed);
        self.reject_bits.store(t.reject_bits, Ordering::Relaxed);
        self.fail_bits.store(t.fail_bits, Ordering::Relaxed);
        self.latency_bits.store(t.latency_bits, Ordering::Relaxed);
        self.latency_kind.store(t.latency_kind, Ordering::Relaxed);
    }
}

/// A fault-injection stage (see the module docs for the draw rule and switching).
///
/// ```
/// use breakwater::chaos::{Chaos, ChaosConfig};
/// let chaos = Chaos::new(ChaosConfig::default().with_enabled(true).with_failure_probability(1.0))?;
/// assert!(chaos.decide().fail);
/// chaos.set_enabled(false);
/// assert!(chaos.decide().is_none());
/// # Ok::<(), breakwater::ConfigError>(())
/// ```
pub struct Chaos {
    /// Slot `generation % 2` is the live one.
    slots: [Slot; 2],
    generation: AtomicU64,
    enabled: AtomicBool,
    /// SplitMix64 state: advanced by four steps per enabled decision.
    rng_state: AtomicU64,
    seed: AtomicU64,
    writer: Mutex<()>,
}

impl Chaos {
    /// A stage with `config`; fails if it is invalid.
    pub fn new(config: ChaosConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let tuning = Tuning::of(&config);
        Ok(Self {
            slots: [Slot::new(tuning), Slot::new(tuning)],
            generation: AtomicU64::new(0),
            enabled: AtomicBool::new(config.enabled),
            rng_state: AtomicU64::new(config.seed),
            seed: AtomicU64::new(config.seed),
            writer: Mutex::new(()),
        })
    }

    /// Decides what to inject into one call. Lock-free and allocation-free; takes no
    /// draw while disabled and exactly four while enabled.
    #[inline]
    pub fn decide(&self) -> ChaosDecision {
        // Acquire: pairs with the Release store in `reconfigure`, so a reader that sees
        // `enabled` set by a reconfiguration also sees its generation and slot.
        if !self.enabled.load(Ordering::Acquire) {
            return ChaosDecision::default();
        }
        let tuning = self.tuning();
        // Relaxed: the counter only hands out distinct positions in the sequence.
        let base = self.rng_state.fetch_add(
            GOLDEN_GAMMA.wrapping_mul(DRAWS_PER_DECISION),
            Ordering::Relaxed,
        );
        let draw = |i: u64| nth_draw(base, i);
        tuning.decide([draw(1), draw(2), draw(3), draw(4)])
    }

    /// The live tuning, read consistently (see the module docs).
    #[inline]
    fn tuning(&self) -> Tuning {
        loop {
            // Acquire: pairs with the Release bump in `reconfigure`, so the slot it names
            // is seen fully written.
            let generation = self.generation.load(Ordering::Acquire);
            let tuning = self.slots[(generation & 1) as usize].load();
            // Acquire fence: if a slot load above saw a store of a later reconfiguration
            // (whose Release fence precedes its stores), the generation re-read below sees
            // that reconfiguration's predecessor bump at least, and we retry.
            fence(Ordering::Acquire);
            // Relaxed: ordered by the fence above.
            if self.generation.load(Ordering::Relaxed) == generation {
                return tuning;
            }
        }
    }

    /// Turns injection on or off; the tuning is kept.
    pub fn set_enabled(&self, enabled: bool) {
        // Release: pairs with the Acquire in `decide` (see there).
        self.enabled.store(enabled, Ordering::Release);
    }

    /// Whether injection is on.
    pub fn is_enabled(&self) -> bool {
        // Relaxed: a reading.
        self.enabled.load(Ordering::Relaxed)
    }

    /// Replaces the whole configuration atomically for `decide` (it sees the old or the
    /// new tuning, never a mix). The random sequence restarts from `config.seed` only if
    /// the seed changed; otherwise it continues. Fails, changing nothing, if `config` is
    /// invalid.
    pub fn reconfigure(&self, config: ChaosConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let _writer = self.writer.lock();
        // Relaxed: writers are serialized by the mutex, which orders them.
        let generation = self.generation.load(Ordering::Relaxed);
        // Release fence before writing the spare slot: a reader whose slot loads see these
        // stores then sees (through its Acquire fence) every write before this fence,
        // including the bump that made the other slot live, and retries.
        fence(Ordering::Release);
        self.slots[((generation + 1) & 1) as usize].store(Tuning::of(&config));
        // Release: publishes the slot written above to `tuning`'s Acquire load.
        self.generation.store(generation + 1, Ordering::Release);
        // Relaxed: the seed is read only by `config()` and by writers under the mutex.
        if self.seed.swap(config.seed, Ordering::Relaxed) != config.seed {
            // Relaxed: the counter publishes nothing but itself.
            self.rng_state.store(config.seed, Ordering::Relaxed);
        }
        // Release: see `set_enabled`.
        self.enabled.store(config.enabled, Ordering::Release);
        Ok(())
    }

    /// Restarts the random sequence from `seed` (even if it is the current seed).
    pub fn reseed(&self, seed: u64) {
        let _writer = self.writer.lock();
        // Relaxed: see `reconfigure`.
        self.seed.store(seed, Ordering::Relaxed);
        self.rng_state.store(seed, Ordering::Relaxed);
    }

    /// The current configuration.
    pub fn config(&self) -> ChaosConfig {
        let t = self.tuning();
        let latency = match t.latency_kind {
            KIND_FIXED => LatencyFault::Fixed(Duration::from_nanos(t.latency_min_ns)),
            KIND_UNIFORM => LatencyFault::Uniform {
                min: Duration::from_nanos(t.latency_min_ns),
                max: Duration::from_nanos(t.latency_max_ns),
            },
            _ => LatencyFault::None,
        };
        ChaosConfig {
            enabled: self.is_enabled(),
            failure_probability: f64::from_bits(t.fail_bits),
            rejection_probability: f64::from_bits(t.reject_bits),
            latency_probability: f64::from_bits(t.latency_bits),
            latency,
            // Relaxed: a reading.
            seed: self.seed.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("config", &self.config())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn thresholds_cover_the_ends() {
        assert_eq!(threshold(0.0), 0);
        assert!(!hit(0, threshold(0.0)));
        assert!(hit(u64::MAX, threshold(1.0)));
        assert_eq!(threshold(0.5), 1 << 63);
        assert_eq!(threshold(0.25), 1 << 62);
    }

    #[test]
    fn draws_follow_the_documented_rule() {
        let config = ChaosConfig {
            enabled: true,
            failure_probability: 0.3,
            rejection_probability: 0.2,
            latency_probability: 0.5,
            latency: LatencyFault::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(9),
            },
            seed: 42,
        };
        let chaos = Chaos::new(config).unwrap();
        let mut rng = Rng::new(42);
        for _ in 0..1000 {
            let d = [
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
            ];
            assert_eq!(chaos.decide(), Tuning::of(&config).decide(d));
        }
    }

    #[test]
    fn uniform_latency_is_inclusive_and_in_range() {
        let t = Tuning::of(&ChaosConfig {
            enabled: true,
            latency_probability: 1.0,
            latency: LatencyFault::Uniform {
                min: Duration::from_nanos(10),
                max: Duration::from_nanos(12),
            },
            ..ChaosConfig::default()
        });
        assert_eq!(
            t.decide([u64::MAX, 0, 0, 0]).latency,
            Duration::from_nanos(10)
        );
        assert_eq!(
            t.decide([u64::MAX, 0, 0, u64::MAX]).latency,
            Duration::from_nanos(12)
        );
        let full = Tuning::of(&ChaosConfig {
            enabled: true,
            latency_probability: 1.0,
            latency: LatencyFault::Uniform {
                min: Duration::ZERO,
                max: Duration::from_nanos(u64::MAX),
            },
            ..ChaosConfig::default()
        });
        assert_eq!(
            full.decide([u64::MAX, 0, 0, u64::MAX]).latency,
            Duration::from_nanos(u64::MAX)
        );
    }

    #[test]
    fn reconfigure_round_trips_and_keeps_or_restarts_the_sequence() {
        let base = ChaosConfig {
            enabled: true,
            failure_probability: 0.5,
            seed: 7,
            ..ChaosConfig::default()
        };
        let chaos = Chaos::new(base).unwrap();
        let first: Vec<_> = (0..8).map(|_| chaos.decide()).collect();
        let tuned = ChaosConfig {
            latency_probability: 0.25,
            latency: LatencyFault::Fixed(Duration::from_millis(3)),
            ..base
        };
        chaos.reconfigure(tuned).unwrap();
        assert_eq!(chaos.config(), tuned);
        chaos.reseed(7);
        chaos.reconfigure(base).unwrap();
        let again: Vec<_> = (0..8).map(|_| chaos.decide()).collect();
        assert_eq!(first, again);
        let bad = ChaosConfig {
            failure_probability: 2.0,
            ..base
        };
        assert_eq!(
            chaos.reconfigure(bad).unwrap_err().field,
            "failure_probability"
        );
        assert_eq!(chaos.config(), base, "nothing changed");
    }

    #[test]
    fn validation_names_fields() {
        let bad = |c: ChaosConfig| c.validate().unwrap_err().field;
        let d = ChaosConfig::default();
        assert_eq!(
            bad(ChaosConfig {
                rejection_probability: -0.1,
                ..d
            }),
            "rejection_probability"
        );
        assert_eq!(
            bad(ChaosConfig {
                latency_probability: f64::NAN,
                ..d
            }),
            "latency_probability"
        );
        assert_eq!(
            bad(ChaosConfig {
                latency_probability: 0.1,
                ..d
            }),
            "latency"
        );
        let inverted = LatencyFault::Uniform {
            min: Duration::from_secs(2),
            max: Duration::from_secs(1),
        };
        assert_eq!(
            bad(ChaosConfig {
                latency: inverted,
                ..d
            }),
            "latency.max"
        );
        assert_eq!(
            bad(ChaosConfig {
                latency: LatencyFault::Fixed(Duration::MAX),
                ..d
            }),
            "latency"
        );
    }
}
