//! Bounded memory under a flood of distinct keys: 10 million keys, each seen once, go
//! through a policy whose per-key table is sized for 100 000; the resident set
//! (`/proc/self/statm`) after the first million calls does not grow by a page-table's
//! worth after the next nine million, and the table forgot keys only by the rules
//! (expired for free, the least debt evicted).
//!
//! Runs in the release profile only (the test command's `cargo test --release` pass):
//! about 1 s there, 67 s unoptimised. One test only, so that no other test's
//! allocations move the resident set beside it.
#![cfg(not(loom))]

use std::time::Duration;

use breakwater::clock::{AnyClock, ManualClock};
use breakwater::keyed::PerKeyConfig;
use breakwater::policy::{Policy, PolicyConfig};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm: size resident ...");
    // SAFETY: sysconf reads a constant of the system; no pointer is involved.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).expect("a positive page size")
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "67 s unoptimised: runs in `cargo test --release`"
)]
fn ten_million_distinct_keys_keep_the_resident_set_flat() {
    const KEYS: u64 = 10_000_000;
    const WARM: u64 = 1_000_000;
    let clock = ManualClock::new();
    // Ten per second and bursts of 10: a key seen once stays active for 100 ms, and a
    // call comes every microsecond, so about 100 000 keys are active at any time.
    let policy = Policy::with_clock(
        PolicyConfig::new("gateway")
            .with_per_key(PerKeyConfig::new(10, Duration::from_secs(1)).with_max_keys(100_000)),
        AnyClock::Manual(clock.clone()),
    )
    .unwrap();
    let mut baseline = 0;
    let mut highest = 0;
    for i in 0..KEYS {
        clock.advance(Duration::from_micros(1));
        let key = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
        policy
            .acquire_keyed(&key)
            .expect("a key seen for the first time passes")
            .success();
        if i + 1 == WARM {
            baseline = resident_bytes();
        } else if (i + 1) % WARM == 0 {
            highest = highest.max(resident_bytes());
        }
    }
    let s = policy.snapshot().per_key.unwrap();
    let growth = highest.saturating_sub(baseline);
    println!(
        "resident after {WARM} keys: {} KiB; highest after {KEYS}: {} KiB; \
         table {} slots, {} active keys, {} evictions",
        baseline / 1024,
        highest / 1024,
        s.capacity,
        s.active_keys,
        s.evictions
    );
    assert!(growth <= 512 * 1024, "grew {growth} bytes");
    assert!(s.active_keys > 90_000 && s.active_keys <= 100_001, "{s:?}");
    assert_eq!(policy.metrics().snapshot().permitted, KEYS);
}
