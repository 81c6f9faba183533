//! Arithmetic that must give the same bits on every platform, build and binding: the
//! exponential growth of retry backoff and of the breaker's open duration.

/// `base^exp` by binary exponentiation: a fixed sequence of correctly rounded IEEE
/// multiplications, so the result is the same everywhere (unlike `powi`/`powf`, whose
/// precision and lowering are unspecified). Overflows to infinity; callers cap it.
#[inline]
pub(crate) fn pow_u32(base: f64, mut exp: u32) -> f64 {
    let mut result = 1.0;
    let mut square = base;
    while exp > 0 {
        if exp & 1 == 1 {
            result *= square;
        }
        exp >>= 1;
        if exp > 0 {
            square *= square;
        }
    }
    result
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::pow_u32;

    #[test]
    fn exact_for_powers_of_two_and_overflows_to_infinity() {
        for e in 0..60 {
            assert_eq!(pow_u32(2.0, e), (1u64 << e) as f64);
        }
        assert_eq!(pow_u32(3.0, 0), 1.0);
        assert_eq!(pow_u32(1.5, 2), 2.25);
        assert_eq!(pow_u32(2.0, 2000), f64::INFINITY);
        assert!(pow_u32(2.0, 65535).is_infinite());
    }
}
