//! The retry hot paths allocate nothing: `RetryState::next_delay` (with and without a
//! budget), the policy's step `Policy::retry_begin`/`retry_next` (granting, refusing
//! and counting), `BackoffConfig::delay`, `RetryBudget::record_request`, `try_withdraw`
//! and `snapshot`. A counting global allocator counts per thread, so other test threads do
//! not disturb the count.
#![cfg(not(loom))]

mod common;

use common::counting_alloc::{allocations_in, Counting};

use breakwater::clock::{AnyClock, Clock, ManualClock};
use breakwater::policy::{Policy, PolicyConfig, RetryOn};
use breakwater::retry::{
    BackoffConfig, BudgetConfig, Jitter, RetryBudget, RetryConfig, RetryDecision, RetryState,
};
use breakwater::rng::Rng;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn counter_sees_allocations() {
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn backoff_delay_allocates_nothing() {
    let mut rng = Rng::new(3);
    for jitter in Jitter::ALL {
        let b = BackoffConfig::default().with_jitter(jitter);
        let n = allocations_in(|| {
            let mut previous = Duration::ZERO;
            for retry in 0..1_000 {
                previous = b.delay(retry, previous, &mut rng);
                std::hint::black_box(b.bounds(retry, previous));
            }
        });
        assert_eq!(n, 0, "{jitter}");
    }
}

#[test]
fn budget_hot_paths_allocate_nothing() {
    let clock = ManualClock::new();
    let budget = RetryBudget::with_clock(BudgetConfig::default(), clock.clone()).unwrap();
    let n = allocations_in(|| {
        for i in 0..10_000u32 {
            budget.record_request();
            std::hint::black_box(budget.try_withdraw());
            if i % 100 == 0 {
                clock.advance(Duration::from_millis(150));
                std::hint::black_box(budget.snapshot());
            }
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn next_delay_allocates_nothing() {
    let clock = ManualClock::new();
    let budget = RetryBudget::with_clock(BudgetConfig::default(), clock.clone()).unwrap();
    let config = RetryConfig::default()
        .with_max_attempts(50)
        .with_max_elapsed(Some(Duration::from_secs(3600)));
    let mut decisions = 0;
    let n = allocations_in(|| {
        for seed in 0..200 {
            budget.record_request();
            let deadline = Some(clock.now() + 1_000_000_000_000);
            let mut state = RetryState::new(&config, seed, clock.now(), deadline);
            let with_budget = seed % 2 == 0;
            loop {
                let retry_after = (seed % 3 == 0).then_some(Duration::from_millis(5));
                let decision = if with_budget {
                    state.next_delay(clock.now(), retry_after, Some(&budget))
                } else {
                    state.next_delay::<ManualClock>(clock.now(), retry_after, None)
                };
                decisions += 1;
                match decision {
                    RetryDecision::RetryAfter(d) => clock.advance(d),
                    RetryDecision::GiveUp(_) => break,
                }
            }
        }
    });
    assert_eq!(n, 0);
    assert!(decisions > 1_000, "{decisions}");
}

#[test]
fn the_policy_retry_step_allocates_nothing() {
    let clock = ManualClock::new();
    let budget = BudgetConfig::default()
        .with_ratio(0.5)
        .with_min_per_second(1)
        .with_window(Duration::from_secs(1));
    let retry = RetryConfig::default()
        .with_max_attempts(5)
        .with_budget(Some(budget));
    let policy = Policy::with_clock(
        PolicyConfig::new("p").with_retry(retry),
        AnyClock::Manual(clock.clone()),
    )
    .unwrap();
    let (mut granted, mut refused) = (0, 0);
    let n = allocations_in(|| {
        for seed in 0..500 {
            let deadline = Some(policy.now() + 1_000_000_000_000);
            let mut state = policy.retry_begin(seed, deadline).unwrap();
            loop {
                match policy.retry_next(&mut state, RetryOn::FAILURE, None) {
                    RetryDecision::RetryAfter(_) => granted += 1,
                    RetryDecision::GiveUp(reason) => {
                        refused += u32::from(reason.as_str() == "budget_exhausted");
                        break;
                    }
                }
            }
        }
    });
    assert_eq!(n, 0);
    assert!(
        granted > 100 && refused > 100,
        "{granted} granted, {refused} refused"
    );
}
