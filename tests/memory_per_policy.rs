//! What a policy costs in memory, measured by a byte-counting global allocator (bytes
//! requested from the allocator, without its own per-block overhead): 1,000 small
//! policies (breaker + bulkhead) built in one engine, idle and after 8 threads have each
//! called the same 10 of them; the same for 1,000 bare `PolicyMetrics`; and 1,000 idle
//! policies with every common stage (breaker, rate limiter, bulkhead, retry with a
//! budget, adaptive limit, timeout).
//!
//! Nothing here depends on the core count: a policy has 64 thread slots on every
//! machine (the count a 64-core machine used to get) and allocates a slot's shard only
//! when a thread in it records. Run it pinned to one core (`taskset -c 0`) to see the
//! same numbers.
//!
//! One test only: the byte counter is process-wide, so no other test may run beside it.
//! Prints the table (`-- --nocapture`) and asserts the budget of issue 26.
#![cfg(not(loom))]

use breakwater::engine::Engine;
use breakwater::metrics::PolicyMetrics;
use breakwater::Outcome;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Barrier;

/// Counts live heap bytes (every thread: shards are allocated on the calling threads).
struct LiveBytes;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards unchanged to the system allocator, whose contract is
// the one `GlobalAlloc` requires; counting is one atomic add, which does not allocate.
unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above, i.e. from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: LiveBytes = LiveBytes;

const POLICIES: usize = 1_000;
const THREADS: usize = 8;
const CALLED: usize = 10;

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

fn policy_file() -> String {
    (0..POLICIES)
        .map(|i| {
            format!(
                "[policies.p{i}.circuit_breaker]\n[policies.p{i}.bulkhead]\nmax_concurrent = 8\n"
            )
        })
        .collect()
}

/// A policy with every common stage, each as configured in `examples/policies.toml`.
fn every_stage_file() -> String {
    (0..POLICIES)
        .map(|i| {
            format!(
                "[policies.f{i}]\ntimeout = \"3s\"\n\
                 [policies.f{i}.circuit_breaker]\n\
                 [policies.f{i}.rate_limiter]\nrate = 100\n\
                 [policies.f{i}.bulkhead]\nmax_concurrent = 32\n\
                 [policies.f{i}.retry]\nbudget = {{ ratio = 0.2, min_per_second = 10 }}\n\
                 [policies.f{i}.adaptive]\n"
            )
        })
        .collect()
}

/// Bytes the heap grew by while `f` ran (live bytes after minus before).
fn growth(f: impl FnOnce()) -> i64 {
    let before = live();
    f();
    live() - before
}

/// `THREADS` threads each run `calls`, all alive at once (so each holds its own slot:
/// a thread that starts after another exited would take its slot and shards over).
fn call_from_threads(calls: impl Fn() + Sync) {
    let all_called = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                calls();
                all_called.wait();
            });
        }
    });
}

#[test]
fn a_policy_costs_kilobytes_idle_and_about_one_more_per_calling_thread() {
    // Whole policies, as an engine holds them.
    let file = policy_file();
    let engine = Engine::new();
    let idle_policies = growth(|| {
        engine.reload_str(&file).unwrap();
    });
    let called: Vec<_> = (0..CALLED)
        .map(|i| engine.policy(&format!("p{i}")).unwrap())
        .collect();
    let used_policies = growth(|| {
        call_from_threads(|| {
            for p in &called {
                p.acquire().unwrap().success();
            }
        })
    });

    // The counters alone.
    let mut metrics = Vec::new();
    let idle_metrics = growth(|| metrics = (0..POLICIES).map(|_| PolicyMetrics::new()).collect());
    let used_metrics = growth(|| {
        call_from_threads(|| {
            for m in &metrics[..CALLED] {
                m.on_permitted();
                m.on_complete(Outcome::Success, Some(20_000), false);
            }
        })
    });

    // Every common stage, idle (a second engine, so its names do not replace the first's).
    let full = Engine::new();
    let file = every_stage_file();
    let idle_full = growth(|| {
        full.reload_str(&file).unwrap();
    });
    assert_eq!(full.names().len(), POLICIES);

    let per_policy = |bytes: i64| bytes / POLICIES as i64;
    let per_thread_and_policy = |bytes: i64| bytes / (THREADS * CALLED) as i64;
    // The README's table. The layout has no part that depends on the core count (64
    // thread slots on every machine, a slot's shard allocated on its first record), so
    // the 2-core and 64-core columns are one measurement; "in use" is a policy that
    // THREADS threads have called.
    println!(
        "cores seen: {}; thread slots per policy: 64 on every machine",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| bytes per policy | idle, 2 cores | idle, 64 cores | in use ({THREADS} threads call it), 2 cores | in use, 64 cores | added per calling thread |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |what: &str, idle: i64, used: Option<i64>| {
        let (in_use, per_thread) = match used {
            Some(used) => {
                let per_thread = per_thread_and_policy(used);
                let in_use = per_policy(idle) + THREADS as i64 * per_thread;
                (in_use.to_string(), per_thread.to_string())
            }
            None => ("—".to_string(), "—".to_string()),
        };
        let idle = per_policy(idle);
        println!("| {what} | {idle} | {idle} | {in_use} | {in_use} | {per_thread} |");
    };
    row(
        "policy (breaker + bulkhead)",
        idle_policies,
        Some(used_policies),
    );
    row(
        "its counters (`PolicyMetrics`)",
        idle_metrics,
        Some(used_metrics),
    );
    row(
        "policy with every common stage (breaker, limiter, bulkhead, retry budget, adaptive, timeout)",
        idle_full,
        None,
    );

    // Issue 26: the counters of an idle policy take well under 4 KiB, and a calling
    // thread adds about 1 KiB (its 1,152-byte shard) and nothing else.
    assert!(per_policy(idle_metrics) <= 2 * 1024, "{idle_metrics}");
    // And a whole idle policy (stages, configuration, handle, counters, name, the
    // engine's entry) at most 4 KiB.
    assert!(per_policy(idle_policies) <= 4 * 1024, "{idle_policies}");
    // So does an idle policy with every common stage.
    assert!(per_policy(idle_full) <= 4 * 1024, "{idle_full}");
    assert!(
        (1_024..=1_200).contains(&per_thread_and_policy(used_metrics)),
        "{used_metrics}"
    );
    // A whole policy adds exactly as much per calling thread as its counters do: the
    // other stages allocate nothing per thread.
    assert!(
        per_thread_and_policy(used_policies) <= per_thread_and_policy(used_metrics) + 16,
        "{used_policies} vs {used_metrics}"
    );
    for p in &called {
        assert_eq!(p.metrics().snapshot().success, THREADS as u64);
    }
    for m in &metrics[..CALLED] {
        assert_eq!(m.snapshot().latency.count, THREADS as u64);
    }
}
