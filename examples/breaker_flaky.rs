//! A circuit breaker protecting a flaky dependency.
//!
//! The dependency fails every call for a while, then recovers. The breaker opens after
//! enough failures, fails the next calls fast (the dependency is not called at all),
//! probes it after the open duration, and closes once the probes succeed.
//!
//! Run with `cargo run --example breaker_flaky` (well under a second).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use breakwater::breaker::{BreakerConfig, CircuitBreaker, WindowConfig};

/// The dependency: fails while `broken` is true.
struct Flaky {
    calls: AtomicU32,
}

impl Flaky {
    fn call(&self, broken: bool) -> Result<&'static str, &'static str> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if broken {
            Err("connection reset")
        } else {
            Ok("200 OK")
        }
    }
}

fn main() {
    let breaker = CircuitBreaker::new(
        BreakerConfig::default()
            .with_window(WindowConfig::Count { size: 10 })
            .with_minimum_calls(5)
            .with_failure_rate_threshold(50.0)
            .with_open_duration(Duration::from_millis(100))
            .with_half_open_permits(2),
    )
    .expect("valid configuration");
    let dependency = Flaky {
        calls: AtomicU32::new(0),
    };
    let start = Instant::now();
    let mut last_state = breaker.state();
    println!("{:>6}  {:<10} call", "ms", "breaker");
    for i in 0..40 {
        // Broken for the first 150 ms, then healthy.
        let broken = start.elapsed() < Duration::from_millis(150);
        let result = match breaker.try_acquire() {
            Ok(permit) => {
                let result = dependency.call(broken);
                match result {
                    Ok(_) => permit.success(),
                    Err(_) => permit.failure(),
                }
                format!("{result:?}")
            }
            Err(rejection) => rejection.to_string(),
        };
        let state = breaker.state();
        if i % 4 == 0 || state != last_state {
            println!(
                "{:>6}  {:<10} {result}",
                start.elapsed().as_millis(),
                state.as_str()
            );
        }
        last_state = state;
        std::thread::sleep(Duration::from_millis(8));
    }
    println!(
        "40 requests, {} reached the dependency; the breaker is {}.",
        dependency.calls.load(Ordering::Relaxed),
        breaker.state().as_str()
    );
}
