//! Loom models of host-wide leases: reclaimers racing each other, a process registering
//! into the entry being reclaimed, a live process taking and returning slots during a
//! reclaim, and a reclaimer that died part-way. Processes are threads here; a dead
//! process is one whose owner word `alive` refuses (its permits are already in the
//! words when the model starts, as a killed process leaves them).
#![cfg(loom)]

use breakwater::shm::Leases;
use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// The words of a segment's lease arrays.
struct Words {
    owners: Vec<AtomicU64>,
    reclaimers: Vec<AtomicU64>,
    slots: Vec<AtomicU64>,
    probes: Vec<AtomicU64>,
    probes_given: AtomicUsize,
}

impl Words {
    fn new(owners: &[u64], reclaimers: &[u64], slots: &[u64], probes: &[u64]) -> Arc<Words> {
        let words = |v: &[u64]| v.iter().map(|&w| AtomicU64::new(w)).collect();
        Arc::new(Words {
            owners: words(owners),
            reclaimers: words(reclaimers),
            slots: words(slots),
            probes: words(probes),
            probes_given: AtomicUsize::new(0),
        })
    }

    fn leases(&self) -> Leases<'_> {
        Leases::new(&self.owners, &self.reclaimers, &self.slots, &self.probes).unwrap()
    }

    fn reclaim(&self, me: u64, dead: &'static [u64]) -> usize {
        self.leases()
            .reclaim(me, &|o| !dead.contains(&o), &mut |_| {
                self.probes_given.fetch_add(1, Ordering::SeqCst);
            })
    }

    fn load(v: &[AtomicU64]) -> Vec<u64> {
        v.iter().map(|w| w.load(Ordering::SeqCst)).collect()
    }
}

const DEAD: u64 = 1;
/// A probe lease of entry 0 (token 1) for generation 5.
const DEAD_PROBE: u64 = (1 << 48) | 5;

/// Two reclaimers and a newcomer race for the one entry of a dead process that held a
/// slot and a probe: the slot and the probe are given back exactly once, and if the
/// newcomer got the entry, the slot it then took is still its own at the end (no late
/// reclaimer took it back).
#[test]
fn reclaimers_and_a_newcomer_race_for_a_dead_entry() {
    loom::model(|| {
        let w = Words::new(&[DEAD], &[0], &[1, 0], &[DEAD_PROBE]);
        let reclaimers: Vec<_> = [2u64, 3]
            .into_iter()
            .map(|me| {
                let w = w.clone();
                thread::spawn(move || w.reclaim(me, &[DEAD]))
            })
            .collect();
        let newcomer = {
            let w = w.clone();
            thread::spawn(move || {
                let leases = w.leases();
                let entry = leases.register(4, &|o| o != DEAD, &mut |_| {
                    w.probes_given.fetch_add(1, Ordering::SeqCst);
                })?;
                Some((entry, leases.take_slot(entry, 0)))
            })
        };
        let freed: usize = reclaimers.into_iter().map(|h| h.join().unwrap()).sum();
        let registered = newcomer.join().unwrap();
        assert_eq!(
            w.probes_given.load(Ordering::SeqCst),
            1,
            "probe given back once"
        );
        assert_eq!(Words::load(&w.probes), [0]);
        assert_eq!(Words::load(&w.reclaimers), [0]);
        let leases = w.leases();
        match registered {
            Some((entry, took)) => {
                assert_eq!(entry, 0);
                assert!(took, "a slot was free for it");
                assert_eq!(Words::load(&w.owners), [4]);
                assert_eq!(leases.slots_held(), 1, "only the newcomer's slot");
                assert_eq!(leases.slots_held_by(0), 1);
            }
            None => {
                // The newcomer found the entry still being given back: it is free now.
                assert_eq!(Words::load(&w.owners), [0]);
                assert_eq!(leases.slots_held(), 0);
                assert!(freed <= 1);
            }
        }
    });
}

/// A live process returns and retakes its slot while another process reclaims a dead
/// one's: the dead one's slot comes back, the live one's count stays exact.
#[test]
fn a_live_holder_is_untouched_by_a_reclaim() {
    loom::model(|| {
        // Entry 0 live (owner 7), entry 1 dead; one slot each.
        let w = Words::new(&[7, DEAD], &[0, 0], &[1, 2, 0], &[]);
        let live = {
            let w = w.clone();
            thread::spawn(move || {
                let leases = w.leases();
                assert!(leases.give_slot(0, 0));
                assert!(leases.take_slot(0, 1));
            })
        };
        let freed = w.reclaim(3, &[DEAD]);
        live.join().unwrap();
        assert_eq!(freed, 1);
        let leases = w.leases();
        assert_eq!(leases.slots_held_by(0), 1);
        assert_eq!(leases.slots_held_by(1), 0);
        assert_eq!(leases.slots_held(), 1);
        assert_eq!(Words::load(&w.owners), [7, 0]);
    });
}

/// A reclaimer died after claiming a dead entry: two later reclaimers race to finish
/// its job, and the permits come back exactly once.
#[test]
fn a_dead_reclaimers_claim_is_taken_over_once() {
    loom::model(|| {
        const DEAD_RECLAIMER: u64 = 9;
        let w = Words::new(&[DEAD], &[DEAD_RECLAIMER], &[1, 1], &[DEAD_PROBE]);
        let other = {
            let w = w.clone();
            thread::spawn(move || w.reclaim(2, &[DEAD, DEAD_RECLAIMER]))
        };
        let mine = w.reclaim(3, &[DEAD, DEAD_RECLAIMER]);
        let theirs = other.join().unwrap();
        assert_eq!(mine + theirs, 1, "one of them finished the job");
        assert_eq!(w.leases().slots_held(), 0);
        assert_eq!(w.probes_given.load(Ordering::SeqCst), 1);
        assert_eq!(Words::load(&w.owners), [0]);
        assert_eq!(Words::load(&w.reclaimers), [0]);
    });
}
