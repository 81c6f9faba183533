//! Leases: which process holds which host-wide permit, and giving back the permits of
//! processes that died.
//!
//! Every word here is a single-word atomic in the segment; no step holds anything a
//! process killed at any instruction could leave held. Words (all `u64`):
//!
//! | array | word | meaning |
//! |---|---|---|
//! | `owners[i]` | owner word ([`owner_word`](super::process::owner_word)) or 0 | process entry `i` and who registered it |
//! | `reclaimers[i]` | owner word or 0 | the process giving back entry `i`'s permits, while it does |
//! | `slots[k]` | 0 or `i + 1` | bulkhead slot `k` is held by entry `i` |
//! | `probes[k]` | 0 or `(i + 1) << 48 \| generation` | entry `i` holds a half-open probe of that generation |
//!
//! **A bulkhead slot is its own lease**: one compare-exchange `0 → i + 1` takes the
//! permit and records its holder at once, so a kill at any instruction either took the
//! slot (and the reclaimer gives it back) or did not.
//!
//! **A probe lease is written after the breaker admitted the probe, and cleared before
//! the probe's outcome is applied.** A kill between the two steps can only lose a lease
//! (the probe is then a missing probe, and the breaker's `half_open_max_wait` decides
//! without it), never release a probe twice.
//!
//! **Reclaim** of a dead entry `i` (owner `o`): claim `reclaimers[i]` (`0` or a dead
//! reclaimer → me; one winner), check `owners[i]` is still `o`, give back every slot and
//! probe lease tagged `i + 1`, then `owners[i]: o → 0` and `reclaimers[i]: me → 0`. A
//! dead owner writes nothing more, and no other process can register entry `i` before
//! `owners[i]` is 0, so every token `i + 1` found is the dead owner's and is given back
//! exactly once (each by one compare-exchange). A reclaimer that dies part-way leaves
//! its claim to the next one, which finishes the job. `tests/loom_hostwide.rs` models
//! these races.

use crate::sync::{AtomicU64, Ordering};

/// Bits of the generation in a probe lease (the breaker's generations are 45 bits).
const PROBE_GEN_BITS: u32 = 48;
const PROBE_GEN_MASK: u64 = (1 << PROBE_GEN_BITS) - 1;

/// Most process entries a segment may have: an entry's token must fit the 16 bits above
/// a probe lease's generation.
pub const MAX_ENTRIES: usize = (1 << (64 - PROBE_GEN_BITS)) - 1;

/// The lease words of one segment (or of a model).
#[derive(Clone, Copy, Debug)]
pub struct Leases<'a> {
    owners: &'a [AtomicU64],
    reclaimers: &'a [AtomicU64],
    slots: &'a [AtomicU64],
    probes: &'a [AtomicU64],
}

impl<'a> Leases<'a> {
    /// Lease words over the given arrays; `None` unless `owners` and `reclaimers` have
    /// the same length, at most [`MAX_ENTRIES`].
    pub fn new(
        owners: &'a [AtomicU64],
        reclaimers: &'a [AtomicU64],
        slots: &'a [AtomicU64],
        probes: &'a [AtomicU64],
    ) -> Option<Self> {
        (owners.len() == reclaimers.len() && owners.len() <= MAX_ENTRIES).then_some(Self {
            owners,
            reclaimers,
            slots,
            probes,
        })
    }

    /// Lease words over arrays the caller has checked as [`new`](Self::new) does (a
    /// segment checks its arrays once, when it maps them).
    #[inline]
    pub(crate) fn trusted(
        owners: &'a [AtomicU64],
        reclaimers: &'a [AtomicU64],
        slots: &'a [AtomicU64],
        probes: &'a [AtomicU64],
    ) -> Self {
        debug_assert!(owners.len() == reclaimers.len() && owners.len() <= MAX_ENTRIES);
        Self {
            owners,
            reclaimers,
            slots,
            probes,
        }
    }

    fn token(entry: u32) -> u64 {
        u64::from(entry) + 1
    }

    /// Registers `me` and returns its entry: the one it already has, a free one, or one
    /// given back from a dead owner on the way. `None` when every entry belongs to a live
    /// process.
    pub fn register(
        &self,
        me: u64,
        alive: &dyn Fn(u64) -> bool,
        on_probe: &mut dyn FnMut(u64),
    ) -> Option<u32> {
        if let Some(i) = self
            .owners
            .iter()
            .position(|o| o.load(Ordering::SeqCst) == me)
        {
            return Some(i as u32);
        }
        for round in 0..2 {
            for (i, owner) in self.owners.iter().enumerate() {
                // SeqCst: the owner word orders against the reclaimer's claim and its
                // token scan (see the module docs); every access to both arrays is
                // SeqCst so the argument needs no pairwise reasoning.
                if owner
                    .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Some(i as u32);
                }
            }
            if round == 0 {
                // Whoever frees an entry (this process or another reclaimer), the
                // second round may take it.
                self.reclaim(me, alive, on_probe);
            }
        }
        None
    }

    /// Takes a free bulkhead slot for `entry`, scanning from `start`; false when all are
    /// taken.
    #[inline]
    pub fn take_slot(&self, entry: u32, start: usize) -> bool {
        self.move_slot(0, Self::token(entry), start)
    }

    /// Gives back one bulkhead slot held by `entry` (slots of one entry are
    /// interchangeable); false when it holds none.
    #[inline]
    pub fn give_slot(&self, entry: u32, start: usize) -> bool {
        self.move_slot(Self::token(entry), 0, start)
    }

    /// Turns one slot word `from` into `to`: first slot `start` itself (a process finds
    /// its own slots there while the bulkhead is not crowded, so the usual acquire and
    /// release is one compare-exchange), then every slot from there on.
    #[inline(always)]
    fn move_slot(&self, from: u64, to: u64, start: usize) -> bool {
        if let Some(slot) = self.slots.get(start) {
            // SeqCst: the slot word is the lease; the reclaimer's scan must see it after
            // it saw the owner dead (see the module docs). A release also publishes the
            // holder's work before the slot is seen free.
            if slot
                .compare_exchange(from, to, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
        }
        walk_slots(self.slots, from, to, start)
    }

    /// Slots held now (by anyone).
    pub fn slots_held(&self) -> usize {
        self.slots
            .iter()
            // Relaxed: a count for display and tests.
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Slots held now by `entry`.
    pub fn slots_held_by(&self, entry: u32) -> usize {
        let token = Self::token(entry);
        self.slots
            .iter()
            // Relaxed: a count for display and tests.
            .filter(|s| s.load(Ordering::Relaxed) == token)
            .count()
    }

    /// Records that `entry` holds a probe of `generation`; false when no lease word is
    /// free (the probe is then covered only by `half_open_max_wait`).
    pub fn hold_probe(&self, entry: u32, generation: u64) -> bool {
        let word = (Self::token(entry) << PROBE_GEN_BITS) | (generation & PROBE_GEN_MASK);
        self.probes.iter().any(|p| {
            // SeqCst: as `take_slot`.
            p.compare_exchange(0, word, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Clears `entry`'s lease on a probe of `generation`; false if there is none (it was
    /// never written, or a reclaimer took it, which only happens to dead owners).
    pub fn release_probe(&self, entry: u32, generation: u64) -> bool {
        let word = (Self::token(entry) << PROBE_GEN_BITS) | (generation & PROBE_GEN_MASK);
        self.probes.iter().any(|p| {
            // SeqCst: as `take_slot`.
            p.compare_exchange(word, 0, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Probe leases held now.
    pub fn probes_held(&self) -> usize {
        self.probes
            .iter()
            // Relaxed: a count for display and tests.
            .filter(|p| p.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Live registered entries (`alive` decides).
    pub fn processes(&self, alive: &dyn Fn(u64) -> bool) -> usize {
        self.owners
            .iter()
            // SeqCst: as everywhere on the owner words.
            .map(|o| o.load(Ordering::SeqCst))
            .filter(|&o| o != 0 && alive(o))
            .count()
    }

    /// Gives back every permit of every dead entry (`alive` decides), calling `on_probe`
    /// with the generation of each probe given back. `me` is the caller's owner word.
    /// Returns the entries freed.
    pub fn reclaim(
        &self,
        me: u64,
        alive: &dyn Fn(u64) -> bool,
        on_probe: &mut dyn FnMut(u64),
    ) -> usize {
        let mut freed = 0;
        for (i, (owner, reclaimer)) in self.owners.iter().zip(self.reclaimers).enumerate() {
            // SeqCst on every owner/reclaimer/slot access: the argument in the module
            // docs orders accesses across three arrays.
            let o = owner.load(Ordering::SeqCst);
            if o == 0 || o == me || alive(o) {
                continue;
            }
            let r = reclaimer.load(Ordering::SeqCst);
            if r != 0 && (r == me || alive(r)) {
                continue; // a live process is on it
            }
            if reclaimer
                .compare_exchange(r, me, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                continue;
            }
            if owner.load(Ordering::SeqCst) == o {
                self.give_back(i as u32, on_probe);
                // Only the claimed reclaimer writes a nonzero owner to 0.
                let _ = owner.compare_exchange(o, 0, Ordering::SeqCst, Ordering::SeqCst);
                freed += 1;
            }
            let _ = reclaimer.compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
        freed
    }

    fn give_back(&self, entry: u32, on_probe: &mut dyn FnMut(u64)) {
        let token = Self::token(entry);
        for slot in self.slots {
            // SeqCst: see `reclaim`.
            let _ = slot.compare_exchange(token, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
        for probe in self.probes {
            let w = probe.load(Ordering::SeqCst);
            if w >> PROBE_GEN_BITS == token
                && probe
                    .compare_exchange(w, 0, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                on_probe(w & PROBE_GEN_MASK);
            }
        }
    }
}

/// [`Leases::move_slot`] past its first try: every slot once, from `start`. Over the
/// slots alone, so that building the other arrays of an inlined `Leases` folds away.
#[inline(never)]
fn walk_slots(slots: &[AtomicU64], from: u64, to: u64, start: usize) -> bool {
    let n = slots.len();
    if n == 0 {
        return false;
    }
    // One division, then a wrapping walk (a `%` per step costs more than the CAS).
    let mut i = start % n;
    for _ in 0..n {
        let slot = &slots[i];
        i = if i + 1 == n { 0 } else { i + 1 };
        // Relaxed load: only a hint whether to try (a failing compare-exchange on a
        // crowded line costs more than a load); the compare-exchange decides.
        if slot.load(Ordering::Relaxed) == from
            // SeqCst: see `move_slot`.
            && slot
                .compare_exchange(from, to, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
    }
    false
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn words(v: &[u64]) -> Vec<AtomicU64> {
        v.iter().map(|&w| AtomicU64::new(w)).collect()
    }

    #[test]
    fn slots_are_taken_once_and_given_back_by_their_holder_only() {
        let (o, r, s, p) = (words(&[5, 6]), words(&[0, 0]), words(&[0, 0]), words(&[]));
        let leases = Leases::new(&o, &r, &s, &p).unwrap();
        assert!(leases.take_slot(0, 0));
        assert!(leases.take_slot(1, 0));
        assert!(!leases.take_slot(0, 1), "full");
        assert!(leases.give_slot(0, 5));
        assert_eq!(leases.slots_held_by(1), 1);
        assert!(!leases.give_slot(0, 0), "entry 0 holds nothing now");
        assert!(leases.give_slot(1, 0));
        assert_eq!(leases.slots_held(), 0);
    }

    #[test]
    fn a_dead_entrys_slots_and_probes_come_back_and_the_entry_is_reused() {
        let (o, r) = (words(&[5, 6]), words(&[0, 0]));
        let (s, p) = (words(&[0, 0, 0]), words(&[0, 0]));
        let leases = Leases::new(&o, &r, &s, &p).unwrap();
        let alive = |w: u64| w != 6;
        assert!(leases.take_slot(1, 0) && leases.take_slot(1, 0) && leases.take_slot(0, 0));
        assert!(leases.hold_probe(1, 42) && leases.hold_probe(0, 42));
        let mut given = Vec::new();
        assert_eq!(leases.reclaim(5, &alive, &mut |g| given.push(g)), 1);
        assert_eq!(given, [42]);
        assert_eq!(leases.slots_held(), 1, "entry 0's slot stays");
        assert_eq!(leases.probes_held(), 1);
        assert_eq!(
            leases.register(7, &alive, &mut |_| {}),
            Some(1),
            "entry 1 reused"
        );
        assert_eq!(
            leases.register(5, &alive, &mut |_| {}),
            Some(0),
            "already there"
        );
        assert_eq!(leases.register(8, &alive, &mut |_| {}), None, "all live");
        assert!(leases.release_probe(0, 42));
        assert!(!leases.release_probe(0, 42), "once");
    }

    #[test]
    fn corrupt_tokens_are_never_indices() {
        // Tokens for entries that do not exist, and a probe word of all ones.
        let (o, r) = (words(&[u64::MAX]), words(&[u64::MAX]));
        let (s, p) = (words(&[u64::MAX, 77]), words(&[u64::MAX]));
        let leases = Leases::new(&o, &r, &s, &p).unwrap();
        let mut given = 0;
        leases.reclaim(5, &|_| false, &mut |_| given += 1);
        assert_eq!(leases.slots_held(), 2, "foreign tokens are left alone");
        assert_eq!(given, 0);
        assert!(Leases::new(&o, &words(&[]), &s, &p).is_none());
    }
}
