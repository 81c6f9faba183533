//! Recording metrics allocates nothing after a thread's first record on a policy (which
//! creates that thread's shard, once), and emitting events allocates nothing.
#![cfg(not(loom))]

mod common;

use common::counting_alloc::{allocations_in, Counting};

use breakwater::metrics::{Event, EventSink, LatencyHistogram, PolicyMetrics};
use breakwater::{Outcome, RejectReason};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn recording_allocates_nothing_after_a_threads_first_record() {
    let m = PolicyMetrics::new();
    let h = LatencyHistogram::new();
    // The first record of this thread on `m` creates its shard: one allocation.
    assert_eq!(allocations_in(|| m.on_permitted()), 1);
    let n = allocations_in(|| {
        for i in 0..10_000u64 {
            m.on_permitted();
            m.on_complete(Outcome::ALL[(i % 4) as usize], Some(i * 997), i % 5 == 0);
            m.on_complete(Outcome::Success, None, false);
            m.on_rejected(RejectReason::ALL[(i % 6) as usize]);
            m.on_retry();
            m.on_budget_refused();
            m.on_transition((i % 7) as u8);
            h.record_nanos(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
    });
    assert_eq!(n, 0, "hot path allocated {n} times");
    assert_eq!(m.snapshot().permitted, 10_001);
}

#[test]
fn a_new_policy_and_the_cold_counters_allocate_nothing() {
    let mut built = None;
    let n = allocations_in(|| built = Some(PolicyMetrics::new()));
    assert_eq!(n, 0, "a PolicyMetrics is one block, with no shard yet");
    let m = built.unwrap();
    let n = allocations_in(|| {
        m.on_rejected(RejectReason::LoadShed);
        m.on_retry();
        m.on_budget_refused();
        m.on_transition(1);
    });
    assert_eq!(n, 0, "counters outside the shards need no shard");
}

#[test]
fn emitting_allocates_nothing_with_or_without_listener() {
    let sink = EventSink::new();
    let n = allocations_in(|| {
        for i in 0..1_000u64 {
            sink.emit(&Event::transition("payments", 0, 1, i, i));
        }
    });
    assert_eq!(n, 0, "emit without listener allocated {n} times");
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    sink.set_listener(move |_: &Event<'_>| {
        s.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    let n = allocations_in(|| {
        for i in 0..1_000u64 {
            sink.emit(&Event::transition("payments", 0, 1, i, i));
            sink.emit(&Event::Rejected {
                policy: "payments",
                reason: RejectReason::LoadShed,
                retry_after: None,
                at_nanos: i,
                trace: None,
            });
        }
    });
    assert_eq!(n, 0, "emit with listener allocated {n} times");
    assert_eq!(seen.load(Ordering::Relaxed), 2_000);
}

#[test]
fn a_thread_allocates_one_shard_per_policy_on_its_first_record_then_nothing() {
    // A thread's first record claims its metrics slot and registers the thread-exit
    // give-back (glibc allocates its own record of that hook, which this allocator does
    // not see), and creates the slot's shard in the policy it records on: exactly one
    // allocation per (thread, policy), and none on any later call.
    let policies: Arc<Vec<PolicyMetrics>> =
        Arc::new((0..3).map(|_| PolicyMetrics::new()).collect());
    let ps = Arc::clone(&policies);
    let (first, later) = std::thread::spawn(move || {
        let first: Vec<u64> = ps
            .iter()
            .map(|m| {
                allocations_in(|| {
                    m.on_permitted();
                    m.on_complete(Outcome::Success, Some(5_000), false);
                })
            })
            .collect();
        let later = allocations_in(|| {
            for _ in 0..1_000 {
                for m in ps.iter() {
                    m.on_permitted();
                    m.on_complete(Outcome::Failure, Some(7_000), true);
                }
            }
        });
        (first, later)
    })
    .join()
    .unwrap();
    assert_eq!(first, [1, 1, 1], "one shard per policy on the first record");
    assert_eq!(later, 0, "after the first record on a thread, zero");
    for m in policies.iter() {
        assert_eq!(m.snapshot().completed(), 1_001);
    }
}

#[test]
fn threads_one_after_another_allocate_at_most_one_shard_and_counts_continue() {
    // Each thread exits before the next starts, so the next usually claims the same,
    // lowest free slot and finds its shard already made (another test's thread may take
    // the slot in between, so this is not asserted). Either way no thread allocates more
    // than one shard, none allocates after its first record, and the counts continue.
    let m = Arc::new(PolicyMetrics::new());
    let mut firsts = Vec::new();
    for _ in 0..8 {
        let mm = Arc::clone(&m);
        firsts.push(
            std::thread::spawn(move || {
                let first = allocations_in(|| mm.on_permitted());
                let later = allocations_in(|| {
                    for _ in 0..100 {
                        mm.on_permitted();
                    }
                });
                assert_eq!(later, 0);
                first
            })
            .join()
            .unwrap(),
        );
    }
    assert!(firsts.iter().all(|&n| n <= 1), "{firsts:?}");
    assert_eq!(m.snapshot().permitted, 8 * 101);
}
