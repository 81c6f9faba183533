//! A host-wide segment with arbitrary bytes: whatever another process (or a bug, or a
//! stray write) left in it, attaching it gives `Ok` or a named error, and using a
//! segment whose header is valid but whose state words are garbage never panics, never
//! hangs, and never hands out more bulkhead permits than it has slots.
//!
//! Input: byte 0 chooses whether the valid header is written over the input (bit 0) and
//! which operations run (the rest); the remaining bytes are the segment's contents
//! (cycled to the layout's size, or cut short when bit 1 is set: a truncated segment).
#![no_main]

use std::sync::OnceLock;

use breakwater::breaker::BreakerConfig;
use breakwater::bulkhead::BulkheadConfig;
use breakwater::limiter::RateLimiterConfig;
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::shm;
use breakwater::Outcome;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

struct Fixture {
    name: String,
    config: PolicyConfig,
    header: Vec<u8>,
    total: usize,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let name = format!("fuzz-{}", std::process::id());
        let _ = shm::remove_segment(&name);
        let config = PolicyConfig::new("p")
            .with_circuit_breaker(
                BreakerConfig::default()
                    .with_minimum_calls(2)
                    .with_half_open_permits(2)
                    .with_open_duration(Duration::from_millis(1)),
            )
            .with_rate_limiter(RateLimiterConfig::new(1000, Duration::from_secs(1)))
            .with_bulkhead(BulkheadConfig::new(3))
            .with_host_scope(name.clone());
        drop(Policy::new(config.clone()).expect("a fresh segment attaches"));
        let bytes = std::fs::read(format!("/dev/shm/breakwater.{name}")).unwrap();
        Fixture {
            name,
            config,
            header: bytes[..128].to_vec(),
            total: bytes.len(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut image: Vec<u8> = if body.is_empty() {
        vec![0; f.total]
    } else {
        body.iter().copied().cycle().take(f.total).collect()
    };
    if mode & 1 != 0 {
        image[..128].copy_from_slice(&f.header);
    }
    if mode & 2 != 0 {
        image.truncate(body.len().min(f.total));
    }
    std::fs::write(format!("/dev/shm/breakwater.{}", f.name), &image).unwrap();
    let policy = match Policy::new(f.config.clone()) {
        Ok(policy) => policy,
        Err(e) => {
            assert!(e.host_error().is_some(), "a segment error is a named one: {e}");
            return;
        }
    };
    let mut permits = Vec::new();
    for step in 0..8u8 {
        match (mode >> 2).wrapping_add(step) % 4 {
            0 | 1 => {
                if let Ok(p) = policy.acquire() {
                    permits.push(p);
                }
            }
            2 => {
                if let Some(p) = permits.pop() {
                    p.record(Outcome::Failure);
                }
            }
            _ => {
                policy.breaker().unwrap().reclaim_dead_owners();
            }
        }
    }
    // Each permit holds its own slot word: never more than the bulkhead's size, whatever
    // the words held before (a reclaim may free garbage tokens of "dead" owners).
    assert!(permits.len() <= 3, "{} permits out of 3 slots", permits.len());
    for p in permits {
        p.record(Outcome::Success);
    }
});
