//! A fixed-bucket, log-linear latency histogram: atomic, allocation-free on record.

use crate::sync::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per octave.
const SUBS: u64 = 10;
/// The first octave with regular buckets: `2^10 ns = 1024 ns ≈ 1 µs`.
const FIRST_EXP: u32 = 10;
/// Values (nanoseconds) at or below this land in bucket 0.
const FIRST_UPPER: u64 = 1 << FIRST_EXP;
/// The largest value covered by regular buckets: 60 s.
#[cfg(not(loom))]
const MAX_TRACKED: u64 = 60_000_000_000;
/// Under loom the same scheme is cut after two regular buckets (4 buckets in all), so a
/// snapshot is a handful of loads instead of 414 and the models stay small (as tokio
/// shrinks its queues under loom). Only the orderings are modelled, not the bucket math.
#[cfg(loom)]
const MAX_TRACKED: u64 = 1_100;
/// Index of the last regular bucket (the one containing [`MAX_TRACKED`]).
const LAST_REGULAR: usize = raw_index(MAX_TRACKED);
/// Index of the overflow bucket.
const OVERFLOW: usize = LAST_REGULAR + 1;

/// The octave of the last regular bucket: 60 s is below `2^36` ns.
const LAST_EXP: u32 = 63 - MAX_TRACKED.leading_zeros();

/// The bucket of `nanos` before the overflow cut: any value beyond the last regular
/// octave maps to `LAST_REGULAR + 1` or above.
#[inline]
const fn raw_index(nanos: u64) -> usize {
    let w = nanos.saturating_sub(1);
    if w < FIRST_UPPER {
        return 0;
    }
    let k = 63 - w.leading_zeros(); // ⌊log2 w⌋ ≥ FIRST_EXP
    if k > LAST_EXP {
        // Beyond every regular bucket; the multiplication below could overflow here.
        return 1 + ((LAST_EXP + 1 - FIRST_EXP) as u64 * SUBS) as usize;
    }
    // `w − 2^k < 2^k ≤ 2^35`, so the product fits easily.
    let sub = ((w - (1u64 << k)) * SUBS) >> k;
    1 + ((k - FIRST_EXP) as u64 * SUBS + sub) as usize
}

/// A latency histogram with fixed log-linear buckets from 1 µs to 60 s.
///
/// Recording is two atomic adds and allocates nothing; a snapshot copies the counters.
///
/// ```
/// use breakwater::metrics::LatencyHistogram;
/// use std::time::Duration;
///
/// let h = LatencyHistogram::new();
/// for ms in 1..=100 {
///     h.record_nanos(ms * 1_000_000);
/// }
/// let s = h.snapshot();
/// assert_eq!(s.count, 100);
/// let p50 = s.p50().unwrap().as_secs_f64();
/// assert!((p50 - 0.050).abs() / 0.050 <= 0.05, "{p50}");
/// ```
///
/// # Bucket scheme
///
/// Buckets are half-open on the left and closed on the right, `(lower, upper]`, like a
/// Prometheus `le` bucket, so "count of values ≤ an upper bound" is exact.
///
/// | index                  | range (nanoseconds)                                      |
/// |------------------------|----------------------------------------------------------|
/// | `0`                    | `[0, 1024]` — everything up to ~1 µs                     |
/// | `1 ..= LAST_REGULAR`   | octave `k` (10 ≤ k ≤ 35) split into 10 equal sub-buckets |
/// | `OVERFLOW`             | above 61.85 s (`upper_bound_nanos` = `u64::MAX`)          |
///
/// For `v > 1024`, let `w = v - 1`, `k = ⌊log2 w⌋` and `s = ⌊10·(w − 2^k) / 2^k⌋` (which
/// tenth of its octave `w` is in); the index is `1 + 10·(k − 10) + s`. Bucket
/// `1 + 10·(k − 10) + s` is `(2^k + ⌈s·2^k/10⌉, 2^k + ⌈(s+1)·2^k/10⌉]`: it is at most
/// `2^k/10` wide and every value in it is above `2^k`, so its upper bound (a Prometheus
/// `le`) is within **10 %** of every value in it, and its midpoint (what quantiles report)
/// within **5 %**. The last regular bucket is the one holding 60 s, `(58.41 s, 61.85 s]`;
/// there are [`LatencyHistogram::BUCKETS`] = 260 buckets.
///
/// Ten sub-buckets rather than sixteen keep the promised 10 % and make a policy's
/// per-thread shard small (260 32-bit counters, 1 KiB; see `src/metrics/shard.rs`).
///
/// Computing an index is a subtraction, a `leading_zeros`, a multiplication and two
/// shifts: no float, no table, no loop. A `LatencyHistogram` records with two atomic adds
/// (the bucket and the running sum); inside a [`PolicyMetrics`](super::PolicyMetrics)
/// the recording thread's own shard takes two plain stores.
///
/// # Consistency
///
/// The count is not stored separately: a snapshot's `count` is the sum of its bucket
/// counts, so `_count` always equals the `+Inf` bucket. `sum_nanos` is read on its own and
/// may be a few records ahead of or behind the buckets in a snapshot taken while others
/// record; it wraps after 2^64 ns (584 years) of summed latency.
pub struct LatencyHistogram {
    /// Sum of all recorded values, nanoseconds (wrapping).
    sum_nanos: AtomicU64,
    /// One counter per bucket.
    buckets: [AtomicU64; LatencyHistogram::BUCKETS],
}

impl LatencyHistogram {
    /// Number of buckets, including bucket 0 (≤ 1024 ns) and the overflow bucket.
    pub const BUCKETS: usize = OVERFLOW + 1;

    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            sum_nanos: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The bucket index a value of `nanos` lands in; always `< BUCKETS`.
    #[inline]
    pub const fn bucket_index(nanos: u64) -> usize {
        let raw = raw_index(nanos);
        if raw > LAST_REGULAR {
            OVERFLOW
        } else {
            raw
        }
    }

    /// The inclusive upper bound of bucket `index`, nanoseconds: `1024` for bucket 0,
    /// `u64::MAX` for the overflow bucket and for any index `≥ BUCKETS`.
    pub const fn upper_bound_nanos(index: usize) -> u64 {
        if index == 0 {
            return FIRST_UPPER;
        }
        if index > LAST_REGULAR {
            return u64::MAX;
        }
        let k = FIRST_EXP + ((index - 1) as u64 / SUBS) as u32;
        let sub = (index - 1) as u64 % SUBS;
        // 2^k + ⌈(s+1)·2^k / 10⌉, the largest value whose `w = v − 1` is in tenth `s`.
        (1u64 << k) + ((sub + 1) * (1u64 << k)).div_ceil(SUBS)
    }

    /// The exclusive lower bound of bucket `index`, nanoseconds (`0` for bucket 0, whose
    /// range includes 0).
    pub const fn lower_bound_nanos(index: usize) -> u64 {
        if index == 0 {
            0
        } else if index > OVERFLOW {
            u64::MAX
        } else {
            Self::upper_bound_nanos(index - 1)
        }
    }

    /// Records one value.
    #[inline]
    pub fn record_nanos(&self, nanos: u64) {
        if let Some(bucket) = self.buckets.get(Self::bucket_index(nanos)) {
            // Release: a snapshot's Acquire load of the bucket then also sees whatever was
            // recorded before it (a caller's own counters, as `PolicyMetrics` shards do).
            bucket.fetch_add(1, Ordering::Release);
        }
        // Relaxed: the sum is a statistic read on its own; nothing is published with it.
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Records one duration (saturating at `u64::MAX` nanoseconds).
    #[inline]
    pub fn record(&self, duration: Duration) {
        self.record_nanos(crate::clock::duration_to_nanos(duration));
    }

    /// Copies the counters (allocates the snapshot's bucket array).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut counts = vec![0u64; Self::BUCKETS].into_boxed_slice();
        let sum_nanos = self.add_counts_to(&mut counts);
        let count = counts.iter().fold(0u64, |a, &c| a.wrapping_add(c));
        HistogramSnapshot {
            counts,
            count,
            sum_nanos,
        }
    }

    /// Adds each bucket's count to `counts` (wrapping; `counts` shorter than
    /// [`Self::BUCKETS`] takes what fits) and returns the sum of the recorded values.
    fn add_counts_to(&self, counts: &mut [u64]) -> u64 {
        for (total, bucket) in counts.iter_mut().zip(self.buckets.iter()) {
            // Acquire: pairs with the Release add in `record_nanos`.
            *total = total.wrapping_add(bucket.load(Ordering::Acquire));
        }
        // Relaxed: a statistic, not tied to the buckets (documented as such).
        self.sum_nanos.load(Ordering::Relaxed)
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        f.debug_struct("LatencyHistogram")
            .field("count", &s.count)
            .field("sum_nanos", &s.sum_nanos)
            .finish()
    }
}

/// A copy of a [`LatencyHistogram`]'s counters.
///
/// `counts[i]` is the number of values in bucket `i` (see
/// [`LatencyHistogram::upper_bound_nanos`]); a snapshot built by hand with fewer entries is
/// treated as having zeros in the missing buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Count per bucket, `LatencyHistogram::BUCKETS` entries.
    pub counts: Box<[u64]>,
    /// Total number of values (the sum of `counts`).
    pub count: u64,
    /// Sum of all values, nanoseconds (wrapping).
    pub sum_nanos: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        Self {
            counts: vec![0; LatencyHistogram::BUCKETS].into_boxed_slice(),
            count: 0,
            sum_nanos: 0,
        }
    }
}

impl HistogramSnapshot {
    /// The estimated `q`-quantile (`0.0 ≤ q ≤ 1.0`); `None` when empty or `q` is out of
    /// range or NaN.
    ///
    /// The rank is `max(1, ⌈q·count⌉)`; the answer is the midpoint of the bucket holding
    /// that rank, within 5 % of the true value of that rank for values above 1 µs.
    /// Below 1 µs it is 512 ns; in the overflow bucket (above 61.85 s) it is the overflow's
    /// lower bound, 61.85 s ("at least").
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let total: u64 = self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
        if total == 0 {
            return None;
        }
        // Ceil in f64 is exact enough: total < 2^53 in any realistic run, and an error of
        // one rank still lands in an adjacent, equally valid estimate.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (index, &c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(c);
            if seen >= rank {
                return Some(Duration::from_nanos(Self::estimate(index)));
            }
        }
        None
    }

    /// The value reported for bucket `index`: its midpoint, or the overflow's lower bound.
    fn estimate(index: usize) -> u64 {
        if index > LAST_REGULAR {
            return LatencyHistogram::upper_bound_nanos(LAST_REGULAR);
        }
        let lo = LatencyHistogram::lower_bound_nanos(index);
        let hi = LatencyHistogram::upper_bound_nanos(index);
        lo + (hi - lo) / 2
    }

    /// The bucket-wise sum of `parts` (counts, count and sum add up, wrapping).
    pub fn merged(parts: &[HistogramSnapshot]) -> HistogramSnapshot {
        let mut out = HistogramSnapshot::default();
        for p in parts {
            for (o, &c) in out.counts.iter_mut().zip(p.counts.iter()) {
                *o = o.wrapping_add(c);
            }
            out.count = out.count.wrapping_add(p.count);
            out.sum_nanos = out.sum_nanos.wrapping_add(p.sum_nanos);
        }
        out
    }

    /// The median estimate.
    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.5)
    }

    /// The 90th percentile estimate.
    pub fn p90(&self) -> Option<Duration> {
        self.quantile(0.9)
    }

    /// The 99th percentile estimate.
    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }

    /// The 99.9th percentile estimate.
    pub fn p999(&self) -> Option<Duration> {
        self.quantile(0.999)
    }

    /// The exact mean (`sum_nanos / count`); `None` when empty.
    pub fn mean(&self) -> Option<Duration> {
        self.sum_nanos
            .checked_div(self.count)
            .map(Duration::from_nanos)
    }

    /// How many values are `≤ LatencyHistogram::upper_bound_nanos(index)` (exact).
    pub fn cumulative_count(&self, index: usize) -> u64 {
        self.counts
            .iter()
            .take(index.saturating_add(1))
            .fold(0u64, |a, &c| a.wrapping_add(c))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_constants() {
        assert_eq!(LAST_REGULAR, 258);
        assert_eq!(LatencyHistogram::BUCKETS, 260);
        assert_eq!(
            LatencyHistogram::upper_bound_nanos(LAST_REGULAR),
            61_847_529_063
        );
        assert_eq!(LatencyHistogram::upper_bound_nanos(OVERFLOW), u64::MAX);
        assert_eq!(LatencyHistogram::upper_bound_nanos(10_000), u64::MAX);
    }

    #[test]
    fn edges_are_inclusive_on_the_right() {
        assert_eq!(LatencyHistogram::bucket_index(0), 0);
        assert_eq!(LatencyHistogram::bucket_index(1024), 0);
        assert_eq!(LatencyHistogram::bucket_index(1025), 1);
        assert_eq!(LatencyHistogram::upper_bound_nanos(1), 1024 + 103);
        assert_eq!(LatencyHistogram::bucket_index(1127), 1);
        assert_eq!(LatencyHistogram::bucket_index(1128), 2);
        assert_eq!(LatencyHistogram::upper_bound_nanos(10), 2048);
        assert_eq!(LatencyHistogram::upper_bound_nanos(11), 2048 + 205);
        assert_eq!(LatencyHistogram::bucket_index(60_000_000_000), LAST_REGULAR);
        assert_eq!(LatencyHistogram::bucket_index(61_847_529_063), LAST_REGULAR);
        assert_eq!(LatencyHistogram::bucket_index(61_847_529_064), OVERFLOW);
        assert_eq!(LatencyHistogram::bucket_index(u64::MAX), OVERFLOW);
        for i in 1..LatencyHistogram::BUCKETS {
            assert!(
                LatencyHistogram::upper_bound_nanos(i) > LatencyHistogram::upper_bound_nanos(i - 1)
            );
            let up = LatencyHistogram::upper_bound_nanos(i - 1);
            assert_eq!(LatencyHistogram::bucket_index(up), i - 1);
            assert_eq!(LatencyHistogram::bucket_index(up + 1), i);
        }
    }

    #[test]
    fn empty_and_out_of_range_quantiles() {
        let s = LatencyHistogram::new().snapshot();
        assert_eq!(s.p50(), None);
        assert_eq!(s.mean(), None);
        let h = LatencyHistogram::new();
        h.record_nanos(5_000);
        let s = h.snapshot();
        assert_eq!(s.quantile(-0.1), None);
        assert_eq!(s.quantile(1.1), None);
        assert_eq!(s.quantile(f64::NAN), None);
        assert!(s.quantile(0.0).is_some());
        assert_eq!(s.mean(), Some(Duration::from_nanos(5_000)));
    }

    #[test]
    fn overflow_reports_its_lower_bound() {
        let h = LatencyHistogram::new();
        h.record(Duration::from_secs(3600));
        let s = h.snapshot();
        assert_eq!(s.p99(), Some(Duration::from_nanos(61_847_529_063)));
        assert_eq!(s.counts[OVERFLOW], 1);
    }

    #[test]
    fn short_snapshots_do_not_panic() {
        let s = HistogramSnapshot {
            counts: vec![0, 3].into_boxed_slice(),
            count: 3,
            sum_nanos: 3000,
        };
        assert!(s.p50().is_some());
        assert_eq!(s.cumulative_count(400), 3);
    }
}
