//! The pure GCRA decision: old theoretical arrival time + now → new one, or a refusal.
//!
//! GCRA (the generic cell rate algorithm, as in ATM networks and `governor`) keeps one
//! number, the *theoretical arrival time* (TAT): the instant at which the limiter would
//! be back to "empty" had every permit granted so far been spread at exactly one per
//! emission interval. A request for `n` permits at `now` is admitted when
//!
//! ```text
//! new_tat = max(tat, now) + n × interval   ≤   now + tolerance + max_wait
//! ```
//!
//! where `tolerance = burst × interval`. With `max_wait = 0` that is a plain admission;
//! with `max_wait > 0` it is a reservation that becomes due at `new_tat - tolerance`.
//!
//! Every quantity is a `u64` in the limiter's units (see `config::Quota`); the function
//! does no division and cannot overflow or panic for any input.
//!
//! **Bound.** For any admissions of `m` permits in total at readings `a_1 ≤ … ≤ a_k` the
//! TAT after the last is at least `a_1 + m × interval` (the base is never below the
//! reading, and each admission adds its permits), and at most `a_k + tolerance` (the
//! admission test). Hence `m ≤ burst + (a_k - a_1) / interval`. A stalled or backward
//! reading only makes `now` smaller, so it can only shrink what passes.

/// What [`decide`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Admitted: store `new_tat`; the permits are due `wait` units from now (0 unless a
    /// `max_wait` was allowed).
    Admit {
        /// The TAT to store.
        new_tat: u64,
        /// Units until the permits are due.
        wait: u64,
    },
    /// Refused: the same request would pass after `retry_after` more units if nothing
    /// else happened; `None` when no wait helps (the limiter's time horizon is reached).
    Deny {
        /// Units until the same request would pass, when known.
        retry_after: Option<u64>,
    },
}

/// Decides a request of `increment` units (`n × interval`, at most `tolerance`) at `now`
/// against the stored `tat`, allowing the permits to be due up to `max_wait` units later.
#[inline]
pub(crate) fn decide(
    tat: u64,
    now: u64,
    increment: u64,
    tolerance: u64,
    max_wait: u64,
) -> Decision {
    let base = if tat > now { tat } else { now };
    let Some(new_tat) = base.checked_add(increment) else {
        return Decision::Deny { retry_after: None };
    };
    let limit = now.saturating_add(tolerance).saturating_add(max_wait);
    if new_tat <= limit {
        // new_tat ≥ now + increment, so the subtraction cannot underflow when positive.
        let due = now.saturating_add(tolerance);
        let wait = new_tat.saturating_sub(due);
        Decision::Admit { new_tat, wait }
    } else {
        // new_tat > limit, so limit < u64::MAX and the difference is positive.
        Decision::Deny {
            retry_after: Some(new_tat - limit),
        }
    }
}

/// Permits that would pass now: `floor((tolerance - (max(tat, now) - now)) / interval)`.
#[inline]
pub(crate) fn available(tat: u64, now: u64, interval: u64, tolerance: u64) -> u64 {
    let ahead = tat.saturating_sub(now);
    tolerance.saturating_sub(ahead) / interval.max(1)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const I: u64 = 10;

    #[test]
    fn full_bucket_admits_burst_then_refuses_with_exact_wait() {
        let tol = 3 * I;
        let mut tat = 0;
        for _ in 0..3 {
            match decide(tat, 100, I, tol, 0) {
                Decision::Admit { new_tat, wait } => {
                    assert_eq!(wait, 0);
                    tat = new_tat;
                }
                d => panic!("refused: {d:?}"),
            }
        }
        assert_eq!(tat, 130);
        assert_eq!(
            decide(tat, 100, I, tol, 0),
            Decision::Deny {
                retry_after: Some(10)
            }
        );
        assert_eq!(
            decide(tat, 105, I, tol, 0),
            Decision::Deny {
                retry_after: Some(5)
            }
        );
        assert!(matches!(
            decide(tat, 110, I, tol, 0),
            Decision::Admit {
                new_tat: 140,
                wait: 0
            }
        ));
    }

    #[test]
    fn weighted_and_waiting() {
        let tol = 4 * I;
        assert_eq!(
            decide(0, 0, 4 * I, tol, 0),
            Decision::Admit {
                new_tat: 40,
                wait: 0
            }
        );
        assert_eq!(
            decide(40, 0, 2 * I, tol, 0),
            Decision::Deny {
                retry_after: Some(20)
            }
        );
        assert_eq!(
            decide(40, 0, 2 * I, tol, 25),
            Decision::Admit {
                new_tat: 60,
                wait: 20
            }
        );
        assert_eq!(
            decide(40, 0, 2 * I, tol, 15),
            Decision::Deny {
                retry_after: Some(5)
            }
        );
    }

    #[test]
    fn clock_going_backwards_never_helps() {
        let tol = 2 * I;
        let tat = 120; // full at 100
        assert!(matches!(decide(tat, 100, I, tol, 0), Decision::Deny { .. }));
        assert!(matches!(decide(tat, 0, I, tol, 0), Decision::Deny { .. }));
        assert_eq!(
            decide(tat, 0, I, tol, 0),
            Decision::Deny {
                retry_after: Some(110)
            }
        );
    }

    #[test]
    fn extremes_never_panic() {
        for tat in [0, 1, u64::MAX - 1, u64::MAX] {
            for now in [0, 1, u64::MAX - 1, u64::MAX] {
                for inc in [1, u64::MAX / 4] {
                    for wait in [0, u64::MAX] {
                        let _ = decide(tat, now, inc, inc, wait);
                        let _ = available(tat, now, inc, inc);
                    }
                }
            }
        }
        assert_eq!(
            decide(u64::MAX, 0, 1, 1, 0),
            Decision::Deny { retry_after: None }
        );
    }

    #[test]
    fn available_counts_whole_permits() {
        assert_eq!(available(0, 100, I, 3 * I), 3);
        assert_eq!(available(115, 100, I, 3 * I), 1);
        assert_eq!(available(130, 100, I, 3 * I), 0);
        assert_eq!(available(500, 100, I, 3 * I), 0);
    }
}
