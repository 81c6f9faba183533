//! Small, seedable, portable randomness for jitter, throttling and fault injection.
//!
//! SplitMix64 (Steele, Lea, Flood 2014): one `u64` of state, a handful of arithmetic
//! operations a number, no allocation, and the same sequence on every platform and in
//! every language binding, so a seeded chaos run or jitter schedule replays bit for bit.
//! Not for cryptography.
//!
//! [`Rng`] is a plain value owned by one caller (a retry loop). [`SharedRng`] is the same
//! generator over an atomic counter for state shared by threads (chaos, throttles): each
//! draw takes the next counter value, so draws never repeat and, taken in one order,
//! give the same sequence as [`Rng`] with the same seed.
//!
//! ```
//! use breakwater::rng::{Rng, SharedRng};
//! let mut a = Rng::new(7);
//! let b = SharedRng::new(7);
//! assert_eq!(a.next_u64(), b.next_u64());
//! ```

use crate::sync::{AtomicU64, Ordering};

/// SplitMix64's increment: the state advances by this much per draw.
pub(crate) const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective mix of one 64-bit word.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `n`-th draw (counting from 1) of `Rng::new(seed)`, computed directly: SplitMix64
/// is counter-based, so any thread can compute any position of a sequence without
/// shared generator state (the breaker's open-duration jitter, chaos decisions).
#[inline]
pub fn nth_draw(seed: u64, n: u64) -> u64 {
    mix64(seed.wrapping_add(n.wrapping_mul(GOLDEN_GAMMA)))
}

/// Maps 64 random bits to a float in `[0, 1)` with 53 bits of precision.
#[inline]
pub fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A SplitMix64 generator owned by one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The state word, so a caller across the C ABI can store and resume the generator.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A float uniform in `[0, 1)`.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }

    /// A value uniform in `[0, bound)`; `0` when `bound` is 0. Uses Lemire's
    /// multiply-shift, whose bias is below 2^-64 per draw for any bound.
    #[inline]
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }
}

/// A SplitMix64 generator shared by threads: one atomic counter, lock-free draws.
#[derive(Debug)]
pub struct SharedRng {
    state: AtomicU64,
}

impl SharedRng {
    /// A shared generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// Restarts the sequence from `seed`.
    pub fn reseed(&self, seed: u64) {
        // Relaxed: the counter publishes nothing but itself; draws only need uniqueness.
        self.state.store(seed, Ordering::Relaxed);
    }

    /// The next 64 random bits. Each call gets a distinct counter value (the add is one
    /// atomic read-modify-write), so concurrent draws never return the same number twice.
    #[inline]
    pub fn next_u64(&self) -> u64 {
        // Relaxed: only atomicity matters here, not ordering with other memory.
        let previous = self.state.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed);
        mix64(previous.wrapping_add(GOLDEN_GAMMA))
    }

    /// A float uniform in `[0, 1)`.
    #[inline]
    pub fn next_f64(&self) -> f64 {
        unit_f64(self.next_u64())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn known_answer_vector() {
        // Reference values of SplitMix64 for seed 1234567 (from the original C code),
        // pinned so that every language binding can check the same sequence.
        let mut rng = Rng::new(1234567);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423
            ]
        );
    }

    #[test]
    fn nth_draw_is_the_sequence_at_that_position() {
        let mut rng = Rng::new(1234567);
        for n in 1..=100 {
            assert_eq!(nth_draw(1234567, n), rng.next_u64());
        }
    }

    #[test]
    fn shared_and_owned_agree() {
        let mut a = Rng::new(99);
        let b = SharedRng::new(99);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn unit_and_below_stay_in_range() {
        let mut rng = Rng::new(5);
        for _ in 0..10_000 {
            let f = rng.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(rng.below(7) < 7);
        }
        assert_eq!(rng.below(0), 0);
    }
}
