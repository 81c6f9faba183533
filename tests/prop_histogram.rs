//! Property tests of the latency histogram against plain sorted vectors.
//!
//! Case count: env `PROPTEST_CASES` (default 2000).
#![cfg(not(loom))]

use breakwater::metrics::{HistogramSnapshot, LatencyHistogram};
use proptest::prelude::*;

const LAST_REGULAR: usize = LatencyHistogram::BUCKETS - 2;
const OVERFLOW: usize = LatencyHistogram::BUCKETS - 1;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

/// Values spread over every scale: sub-µs, log-uniform 1 µs..70 s, huge, and exact edges.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => 0u64..2048,
        6 => (10.0f64..36.1).prop_map(|e| 2f64.powf(e) as u64),
        1 => any::<u64>(),
        1 => (0usize..LatencyHistogram::BUCKETS - 1, -1i64..=1)
            .prop_map(|(i, d)| LatencyHistogram::upper_bound_nanos(i).saturating_add_signed(d)),
    ]
}

fn reference_quantile(sorted: &[u64], q: f64) -> u64 {
    let n = sorted.len() as u64;
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    sorted[(rank - 1) as usize]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Every value lands in the bucket whose bounds contain it, and regular buckets are at
    /// most 10 % wide relative to their lower bound (plus the rounding to a whole
    /// nanosecond), so a bucket's upper bound is within 10 % of every value in it.
    #[test]
    fn every_value_lands_in_a_bucket_that_contains_it(v in value()) {
        let i = LatencyHistogram::bucket_index(v);
        prop_assert!(i < LatencyHistogram::BUCKETS);
        let lo = LatencyHistogram::lower_bound_nanos(i);
        let hi = LatencyHistogram::upper_bound_nanos(i);
        prop_assert!(v <= hi, "v={v} i={i} hi={hi}");
        prop_assert!(i == 0 || v > lo, "v={v} i={i} lo={lo}");
        if (1..=LAST_REGULAR).contains(&i) {
            let width = (hi - lo) as f64 / lo as f64;
            prop_assert!(width <= 0.10 + 1.0 / lo as f64, "i={i} width={width}");
            // Reporting the bucket's upper bound errs by at most 10 %.
            prop_assert!((hi - v) as f64 / v as f64 <= 0.10, "v={v} hi={hi}");
        }
        if (1000..=60_000_000_000).contains(&v) {
            prop_assert!(i <= LAST_REGULAR);
            prop_assert!((hi - v) as f64 / v as f64 <= 0.10);
        }
        if v > LatencyHistogram::upper_bound_nanos(LAST_REGULAR) {
            prop_assert_eq!(i, OVERFLOW);
        }
    }

    /// Quantiles, mean and cumulative counts agree with a sorted-vector reference.
    #[test]
    fn quantiles_match_a_sorted_reference(
        mut values in prop::collection::vec(value(), 1..300),
        qs in prop::collection::vec(0.0f64..=1.0, 1..8),
    ) {
        let h = LatencyHistogram::new();
        for &v in &values {
            h.record_nanos(v);
        }
        let snap: HistogramSnapshot = h.snapshot();
        values.sort_unstable();
        prop_assert_eq!(snap.count, values.len() as u64);
        let sum = values.iter().fold(0u64, |a, &v| a.wrapping_add(v));
        prop_assert_eq!(snap.sum_nanos, sum);
        if let Some(exact) = sum.checked_div(values.len() as u64) {
            if values.iter().try_fold(0u64, |a, &v| a.checked_add(v)).is_some() {
                prop_assert_eq!(snap.mean().unwrap().as_nanos() as u64, exact);
            }
        }
        for q in qs.into_iter().chain([0.0, 0.5, 0.9, 0.99, 0.999, 1.0]) {
            let want = reference_quantile(&values, q);
            let got = snap.quantile(q).unwrap().as_nanos() as u64;
            let i = LatencyHistogram::bucket_index(want);
            if i == 0 {
                prop_assert_eq!(got, 512);
            } else if i == OVERFLOW {
                prop_assert_eq!(got, LatencyHistogram::upper_bound_nanos(LAST_REGULAR));
                prop_assert!(want > got);
            } else {
                let err = (got as f64 - want as f64).abs() / want as f64;
                // The midpoint: half a bucket, at most 5 %.
                prop_assert!(err <= 0.05 + 1e-9, "q={q} want={want} got={got} err={err}");
            }
        }
        for i in [0, 1, 100, 200, 250, LAST_REGULAR, OVERFLOW] {
            let bound = LatencyHistogram::upper_bound_nanos(i);
            let want = values.iter().filter(|&&v| v <= bound).count() as u64;
            prop_assert_eq!(snap.cumulative_count(i), want, "i={}", i);
        }
    }
}

#[test]
fn named_quantiles_are_the_generic_ones() {
    let h = LatencyHistogram::new();
    for us in 1..=10_000u64 {
        h.record_nanos(us * 1000);
    }
    let s = h.snapshot();
    assert_eq!(s.p50(), s.quantile(0.5));
    assert_eq!(s.p90(), s.quantile(0.9));
    assert_eq!(s.p99(), s.quantile(0.99));
    assert_eq!(s.p999(), s.quantile(0.999));
    let p99 = s.p99().unwrap().as_nanos() as f64;
    assert!((p99 - 9_900_000.0).abs() / 9_900_000.0 <= 0.05, "{p99}");
}
