//! Loom models of the bulkhead: the limit holds, and no permit or waiter is lost.
#![cfg(loom)]

use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use breakwater::clock::ManualClock;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

/// Three threads take a permit, hold it and give it back: never more than 2 out.
#[test]
fn never_more_than_max_concurrent() {
    loom::model(|| {
        let b = Arc::new(Bulkhead::new(BulkheadConfig::new(2)).unwrap());
        let inside = Arc::new(AtomicU32::new(0));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (b, inside) = (b.clone(), inside.clone());
                thread::spawn(move || {
                    if let Ok(permit) = b.try_acquire() {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 2, "{now} inside");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.waiting(), 0);
    });
}

/// Three threads on a bulkhead of 1, one of them willing to wait: the limit holds and
/// everyone who got a permit returns it; the waiter never waits forever.
#[test]
fn limit_holds_with_a_waiter() {
    loom::model(|| {
        let b = Arc::new(Bulkhead::new(BulkheadConfig::new(1)).unwrap());
        let inside = Arc::new(AtomicU32::new(0));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (b, inside) = (b.clone(), inside.clone());
                thread::spawn(move || {
                    let permit = if i == 0 {
                        b.try_acquire_for(Duration::from_secs(1))
                    } else {
                        b.try_acquire()
                    };
                    if let Ok(permit) = permit {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 1, "{now} inside");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                        true
                    } else {
                        false
                    }
                })
            })
            .collect();
        let got: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(got[0], "the waiter always gets a permit in the end");
        assert_eq!((b.in_flight(), b.waiting()), (0, 0));
    });
}

/// A waiter and a release: the waiter always gets the permit (no lost wake-up), and
/// a racing try_acquire never takes it from the waiter once it is queued.
#[test]
fn waiter_is_woken_by_release() {
    loom::model(|| {
        let b = Arc::new(Bulkhead::new(BulkheadConfig::new(1)).unwrap());
        b.try_acquire_raw().unwrap();
        let waiter = {
            let b = b.clone();
            thread::spawn(move || b.try_acquire_raw_for(Duration::from_secs(1)))
        };
        let releaser = {
            let b = b.clone();
            thread::spawn(move || assert!(b.release_raw()))
        };
        releaser.join().unwrap();
        // Loom never times out a wait, so Ok is the only possible outcome.
        waiter.join().unwrap().unwrap();
        assert_eq!(b.in_flight(), 1);
        assert_eq!(b.waiting(), 0);
        assert!(b.release_raw());
        assert_eq!(b.in_flight(), 0);
    });
}

/// A release while the waiter times out: either the waiter got the permit, or it left
/// and the permit is free for someone else. Never lost, never double-counted.
#[test]
fn release_during_timeout_keeps_the_permit() {
    release_during_timeout(|b| assert!(b.release_raw()));
}

/// The same with the permit dropped (one fetch-sub, even with the waiter queued, then
/// the hand-over under the queue's lock).
#[test]
fn a_dropped_permit_during_a_timeout_is_kept() {
    release_during_timeout(|b| b.release_held_for_model());
}

/// A permit out, a waiter with a short wait, its timer firing, and `release` returning
/// the permit meanwhile: the permit ends with the waiter or free, never lost.
fn release_during_timeout(release: fn(&Bulkhead<ManualClock>)) {
    loom::model(move || {
        let clock = ManualClock::new();
        let b = Arc::new(Bulkhead::with_clock(BulkheadConfig::new(1), clock.clone()).unwrap());
        b.try_acquire_raw().unwrap();
        let waiter = {
            let b = b.clone();
            thread::spawn(move || b.try_acquire_raw_for(Duration::from_nanos(10)))
        };
        let timer = {
            let (b, clock) = (b.clone(), clock.clone());
            thread::spawn(move || {
                clock.advance(Duration::from_nanos(100));
                b.fire_wait_timers_for_model();
            })
        };
        release(&b);
        timer.join().unwrap();
        let got = waiter.join().unwrap().is_ok();
        assert_eq!(b.waiting(), 0);
        if got {
            assert_eq!(b.in_flight(), 1, "the waiter holds it");
            release(&b);
        }
        assert_eq!(b.in_flight(), 0);
        assert!(
            b.try_acquire_raw().is_ok(),
            "the permit is available to someone"
        );
    });
}

/// A `try_acquire` on a full bulkhead overshoots (adds, then gives back) while a waiter
/// queues and the holder releases: the waiter always gets the permit (an overshoot that
/// made it queue hands over when it gives back), and never two permits are out.
#[test]
fn an_overshoot_never_strands_a_waiter_nor_doubles_a_permit() {
    overshoot_beside_a_waiter(|b| assert!(b.release_raw()));
}

/// The same with every permit dropped (one fetch-sub, even with a caller queued, then
/// the hand-over under the queue's lock): the waiter always gets the permit, and the
/// racing `try_acquire` never takes it from the waiter.
#[test]
fn a_dropped_permit_goes_to_the_waiter() {
    overshoot_beside_a_waiter(|b| b.release_held_for_model());
}

/// One permit out of one; a prober's `try_acquire`, a waiter and the holder's
/// `release` race: never two inside, and everyone ends with the permit back.
fn overshoot_beside_a_waiter(release: fn(&Bulkhead)) {
    loom::model(move || {
        let b = Arc::new(Bulkhead::new(BulkheadConfig::new(1)).unwrap());
        let inside = Arc::new(AtomicU32::new(1));
        b.try_acquire_raw().unwrap();
        let prober = {
            let (b, inside) = (b.clone(), inside.clone());
            thread::spawn(move || {
                if b.try_acquire_raw().is_ok() {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 1, "{now} inside");
                    inside.fetch_sub(1, Ordering::SeqCst);
                    release(&b);
                }
            })
        };
        let waiter = {
            let (b, inside) = (b.clone(), inside.clone());
            thread::spawn(move || {
                // Loom never times out a wait: a stranded waiter is a deadlock it reports.
                b.try_acquire_raw_for(Duration::from_secs(1)).unwrap();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(now <= 1, "{now} inside");
                inside.fetch_sub(1, Ordering::SeqCst);
                release(&b);
            })
        };
        inside.fetch_sub(1, Ordering::SeqCst);
        release(&b);
        prober.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(b.snapshot().in_flight, 0);
        assert_eq!(b.waiting(), 0);
        assert!(b.try_acquire_raw().is_ok());
    });
}

/// Two waiters and two permits dropped at once on a bulkhead of 2: each waiter gets
/// one, whichever drop hands over which.
#[test]
fn dropped_permits_serve_every_waiter() {
    loom::model(|| {
        let b = Arc::new(Bulkhead::new(BulkheadConfig::new(2)).unwrap());
        b.try_acquire_raw().unwrap();
        b.try_acquire_raw().unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || {
                    b.try_acquire_raw_for(Duration::from_secs(1)).unwrap();
                    b.release_held_for_model();
                })
            })
            .collect();
        let releaser = {
            let b = b.clone();
            thread::spawn(move || b.release_held_for_model())
        };
        b.release_held_for_model();
        releaser.join().unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!((b.snapshot().in_flight, b.waiting()), (0, 0));
    });
}
