//! Loom models of the snapshot invariant of `PolicyMetrics`:
//! `latency.count ≤ success + failure + timeout + ignored ≤ permitted` and
//! `slow ≤ completions`, in every interleaving; of the publication of a shard by a
//! thread's first record; of the carry of a full latency bucket; and of the hand-over of
//! a thread slot.
//!
//! Under loom a policy has one thread slot: the first thread of a model to record owns
//! it (plain loads and stores), the others write the shared shard (atomic adds), so
//! every model mixes both writers. Every shard is created inside the model, by its
//! first record. A latency bucket carries every second record (instead of every 2^32).
//!
//! Run: `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom -C debug-assertions"
//! CARGO_TARGET_DIR=target/loom cargo test --release --test loom_metrics`
#![cfg(loom)]

use breakwater::metrics::{MetricsSnapshot, PolicyMetrics};
use breakwater::Outcome;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::AtomicBool as StdAtomicBool;

fn check(s: &MetricsSnapshot) {
    assert!(s.completed() <= s.permitted, "{s:?}");
    assert!(s.slow <= s.completed(), "{s:?}");
    assert!(s.latency.count <= s.completed(), "{s:?}");
}

/// Two callers each acquire and complete on their own thread; the main thread snapshots
/// concurrently.
#[test]
fn snapshot_never_sees_a_completion_without_its_permit() {
    loom::model(|| {
        let m = Arc::new(PolicyMetrics::new());
        let callers: Vec<_> = [
            (Outcome::Success, Some(5_000), true),
            (Outcome::Failure, None, false),
        ]
        .into_iter()
        .map(|(outcome, nanos, slow)| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.on_permitted();
                m.on_complete(outcome, nanos, slow);
            })
        })
        .collect();
        check(&m.snapshot());
        for c in callers {
            c.join().unwrap();
        }
        let s = m.snapshot();
        check(&s);
        assert_eq!(
            (s.permitted, s.success, s.failure, s.slow, s.latency.count),
            (2, 1, 1, 1, 1)
        );
    });
}

/// The permit is acquired on one thread and completed on another (a hand-off with
/// Release/Acquire, as moving a permit through a channel does); a third snapshots.
#[test]
fn invariant_holds_when_the_permit_moves_between_threads() {
    loom::model(|| {
        let m = Arc::new(PolicyMetrics::new());
        let handed = Arc::new(AtomicBool::new(false));
        let acquirer = {
            let (m, handed) = (Arc::clone(&m), Arc::clone(&handed));
            thread::spawn(move || {
                m.on_permitted();
                handed.store(true, Ordering::Release);
            })
        };
        let completer = {
            let (m, handed) = (Arc::clone(&m), Arc::clone(&handed));
            thread::spawn(move || {
                if handed.load(Ordering::Acquire) {
                    m.on_complete(Outcome::Timeout, Some(2_000_000), true);
                }
            })
        };
        check(&m.snapshot());
        acquirer.join().unwrap();
        completer.join().unwrap();
        check(&m.snapshot());
    });
}

/// A thread records and exits, giving its slot back; another records concurrently and
/// may take the slot over. The new owner must find the shard the old one created and
/// its first load must see the old owner's last store (the bitmap's Release/Acquire), or
/// a count is lost.
#[test]
fn a_slot_handed_to_a_new_thread_keeps_its_counts() {
    static HANDED_OVER: StdAtomicBool = StdAtomicBool::new(false);
    loom::model(|| {
        let m = Arc::new(PolicyMetrics::new());
        let record = |m: Arc<PolicyMetrics>| {
            move || {
                m.on_permitted();
                m.on_complete(Outcome::Success, Some(5_000), false);
                let slot = breakwater::metrics::current_thread_slot();
                breakwater::metrics::exit_current_thread();
                slot
            }
        };
        let first = thread::spawn(record(Arc::clone(&m)));
        let second = thread::spawn(record(Arc::clone(&m)));
        let slots = (first.join().unwrap(), second.join().unwrap());
        if slots == (0, 0) {
            HANDED_OVER.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let s = m.snapshot();
        check(&s);
        assert_eq!(
            (s.permitted, s.success, s.latency.count),
            (2, 2, 2),
            "{slots:?}"
        );
    });
    assert!(
        HANDED_OVER.load(std::sync::atomic::Ordering::Relaxed),
        "no execution handed the slot over: the model checks nothing"
    );
}

/// Shards are created by a thread's first record and published with a compare-exchange;
/// under loom a latency bucket carries every second record. One thread records twice in
/// the same bucket (creating its shard, then carrying); the main thread snapshots twice
/// meanwhile. A snapshot must never see half a carry: the reset without the carry would
/// make the count go down, the carry without the reset would count more latencies than
/// completions.
#[test]
fn a_new_shard_and_its_first_carry_are_never_seen_half_done() {
    loom::model(|| {
        let m = Arc::new(PolicyMetrics::new());
        let recorder = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for _ in 0..2 {
                    m.on_permitted();
                    m.on_complete(Outcome::Success, Some(5_000), false);
                }
            })
        };
        let first = m.snapshot();
        check(&first);
        let second = m.snapshot();
        check(&second);
        assert!(
            first.latency.count <= second.latency.count,
            "{first:?} {second:?}"
        );
        recorder.join().unwrap();
        let s = m.snapshot();
        assert_eq!(
            (s.permitted, s.success, s.latency.count),
            (2, 2, 2),
            "{s:?}"
        );
        assert_eq!(s.latency.sum_nanos, 10_000);
    });
}

/// Two threads without a slot race to create the shared shard, then each records once
/// into the same bucket, so the second record carries through a compare-exchange; the
/// main thread (which owns the only slot) snapshots meanwhile.
#[test]
fn threads_without_a_slot_share_one_shard_and_carry_exactly() {
    loom::model(|| {
        let m = Arc::new(PolicyMetrics::new());
        // The main thread takes the only slot, so the two others share.
        assert_eq!(breakwater::metrics::current_thread_slot(), 0);
        // Different outcomes, so the carrier's own completion count does not bring the
        // other's along.
        let sharers: Vec<_> = [Outcome::Success, Outcome::Failure]
            .into_iter()
            .map(|outcome| {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    m.on_permitted();
                    m.on_complete(outcome, Some(5_000), false);
                })
            })
            .collect();
        let during = m.snapshot();
        check(&during);
        for s in sharers {
            s.join().unwrap();
        }
        let s = m.snapshot();
        assert_eq!(
            (s.permitted, s.success, s.failure, s.latency.count),
            (2, 1, 1, 2),
            "{s:?}"
        );
        assert!(during.latency.count <= s.latency.count);
    });
}
