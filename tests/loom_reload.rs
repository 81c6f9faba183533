//! Loom models of a held policy handle racing a reload: the handle follows the new
//! configuration, a permit completes against the stages that issued it whichever side of
//! the reload it was taken on, and replaced stages are freed only once no handle is held
//! outside the engine.
#![cfg(loom)]

use breakwater::adaptive::Priority;
use breakwater::bulkhead::BulkheadConfig;
use breakwater::clock::{AnyClock, ManualClock};
use breakwater::config::PolicyFile;
use breakwater::engine::Engine;
use breakwater::policy::PolicyConfig;
use breakwater::Outcome;
use loom::sync::Arc;
use loom::thread;

fn file(max_concurrent: u32) -> PolicyFile {
    PolicyFile {
        policies: vec![PolicyConfig::new("p").with_bulkhead(BulkheadConfig::new(max_concurrent))],
    }
}

fn engine() -> Arc<Engine> {
    let engine = Arc::new(Engine::with_clock(AnyClock::Manual(ManualClock::new())));
    engine.reload(file(1)).unwrap();
    engine
}

/// One thread acquires and completes through a held handle while another reloads a
/// changed configuration: the permit is released in the bulkhead that granted it (the
/// old one or the new one), the other is untouched, and the handle ends on the new
/// configuration.
#[test]
fn acquire_and_complete_race_a_reload() {
    loom::model(|| {
        let engine = engine();
        let handle = engine.policy("p").unwrap();
        // Borrowed before the reload: the first configuration's bulkhead, kept alive by
        // the handle held here.
        let first_bulkhead = handle.bulkhead().unwrap();
        let first = handle.instance();
        let caller = {
            let handle = handle.clone();
            thread::spawn(move || {
                let permit = handle
                    .acquire_raw(Priority::Default)
                    .expect("each configuration has a free slot");
                let issuer = permit.instance();
                handle.complete_raw(permit, Outcome::Success, None);
                issuer
            })
        };
        let reloader = {
            let engine = engine.clone();
            thread::spawn(move || {
                engine.reload(file(2)).unwrap();
            })
        };
        let issuer = caller.join().unwrap();
        reloader.join().unwrap();
        let second = handle.instance();
        assert_ne!(first, second, "the handle follows the reload");
        assert!(issuer == first || issuer == second, "issued by {issuer}");
        assert_eq!(handle.config().bulkhead.unwrap().max_concurrent, 2);
        // Both bulkheads are empty: the permit went back to the one that granted it.
        assert_eq!(first_bulkhead.snapshot().in_flight, 0);
        assert_eq!(handle.bulkhead().unwrap().snapshot().in_flight, 0);
        let m = handle.metrics().snapshot();
        assert_eq!((m.permitted, m.success), (1, 1));
        let a = handle.acquire().unwrap();
        let b = handle.acquire().unwrap();
        assert!(handle.acquire().is_err(), "the new bulkhead holds two");
        drop((a, b));
    });
}

/// A permit taken before the reload completes on another thread after it; the old
/// bulkhead gets its slot back and the new one never saw it.
#[test]
fn a_permit_from_before_the_reload_completes_against_its_issuer() {
    loom::model(|| {
        let engine = engine();
        let handle = engine.policy("p").unwrap();
        let permit = handle.acquire_raw(Priority::Default).unwrap();
        let old = handle.instance();
        let completer = {
            let handle = handle.clone();
            thread::spawn(move || handle.complete_raw(permit, Outcome::Failure, None))
        };
        let reloader = {
            let engine = engine.clone();
            thread::spawn(move || {
                engine.reload(file(2)).unwrap();
            })
        };
        completer.join().unwrap();
        reloader.join().unwrap();
        assert!(handle.issued(old), "kept: a handle is held");
        assert_eq!(handle.retained_configurations(), 2);
        assert_eq!(handle.bulkhead().unwrap().snapshot().in_flight, 0);
        let m = handle.metrics().snapshot();
        assert_eq!((m.permitted, m.failure), (1, 1));
    });
}

/// A caller uses its handle and lets go while the engine reloads twice: whenever a
/// reload frees replaced stages, the caller is done with them (loom checks every
/// object is freed once, and none while borrowed), and afterwards one reload leaves
/// only the stages in force.
#[test]
fn replaced_stages_are_freed_only_after_the_last_outside_handle() {
    loom::model(|| {
        let engine = engine();
        let handle = engine.policy("p").unwrap();
        let caller = thread::spawn(move || {
            if let Ok(permit) = handle.acquire() {
                permit.success();
            }
            drop(handle);
        });
        let reloader = {
            let engine = engine.clone();
            thread::spawn(move || {
                engine.reload(file(2)).unwrap();
                engine.reload(file(3)).unwrap();
            })
        };
        caller.join().unwrap();
        reloader.join().unwrap();
        engine.reload(file(3)).unwrap();
        let handle = engine.policy("p").unwrap();
        assert_eq!(handle.retained_configurations(), 1);
        assert_eq!(handle.config().bulkhead.unwrap().max_concurrent, 3);
    });
}
