//! The pure refund decision: a taken slot, the TAT now and the time → what goes back.
//!
//! GCRA keeps one number, the TAT; the permits granted so far can be pictured as slots
//! of `n × interval` laid end to end, the last one ending at the TAT. Each slot lies in
//! `[due, due + tolerance]`, where `due` is when its caller goes ahead: the reading it
//! was taken at, or for a reservation that waits, the end of its wait. Giving permits
//! back removes their slot: the slots after it move up by the part of it that has not
//! yet elapsed, and none moves to before the `floor`: now, and the latest instant a
//! waiting reservation falls due (its caller goes ahead then, whatever the schedule
//! says). Only the end of the schedule is stored, so that move is one subtraction from
//! the TAT.
//!
//! **Bound.** Invariant: the kept slots are disjoint and each lies in `[due, due +
//! tolerance]`. An admission keeps it (its slot starts at `max(TAT, now) ≥ due` and the
//! admission test puts its end at most `tolerance` after its due). A refund of a slot
//! that currently ends at `e`, with `back ≤ min(increment, e - floor)`, keeps it: the
//! slots before it stay; the ones after it start at `≥ e ≥ floor + back` and move up
//! by `back`, so they still start no earlier than `floor ≥` their due, and their ends
//! only come earlier. Hence the kept permits due in any `[a, b]` have disjoint slots in
//! `[a, b + tolerance]`: at most `burst + (b - a) / interval` of them. So every refund
//! only needs a *lower* bound of `e`:
//!
//! * the slot is the last one (nothing taken after it is still there): `e` is the TAT;
//! * otherwise `e ≥ end - moved`, where `end` is where the slot ended when taken and
//!   `moved` bounds how far refunds since have moved it (the limiter's ledger);
//! * and always `e ≥ taken_at + increment` (a slot starts no earlier than its reading,
//!   and a move never takes it before the refund's now).
//!
//! The slot is certainly the last one when `tat + moved ≤ end`: since it was taken,
//! every admission added at least its increment to the TAT, refunds of slots after it
//! took back at most theirs, and the other refunds at most `moved`.

/// A taken slot, as it was when taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The TAT right after it was taken.
    pub(crate) end: u64,
    /// Its length, `n × interval`.
    pub(crate) increment: u64,
    /// The reading it was taken at (any earlier value is a valid, weaker bound).
    pub(crate) taken_at: u64,
}

/// What [`step`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing goes back: the slot has elapsed (or its end is unknown).
    Nothing,
    /// The slot is the last one: subtract this from the TAT; no other slot moves.
    Last(u64),
    /// Slots after this one move up: subtract this from the TAT, and record the move.
    Inner(u64),
}

/// The refund of `slot` against the stored `tat` at `now`, when refunds since it was
/// taken can have moved it by at most `moved` units and waiting reservations fall due
/// up to `latest_due`.
#[inline]
pub(crate) fn step(slot: Slot, tat: u64, now: u64, latest_due: u64, moved: u64) -> Step {
    let last = tat.saturating_add(moved) <= slot.end;
    let (end, floor) = if last {
        (tat, now) // no slot follows: none moves
    } else {
        let end = slot
            .end
            .saturating_sub(moved)
            .max(slot.taken_at.saturating_add(slot.increment))
            .min(tat);
        (end, now.max(latest_due))
    };
    let back = end.saturating_sub(floor).min(slot.increment);
    match (back, last) {
        (0, _) => Step::Nothing,
        (back, true) => Step::Last(back),
        (back, false) => Step::Inner(back),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const I: u64 = 10;

    /// With no waiting reservation.
    fn step_at(slot: Slot, tat: u64, now: u64, moved: u64) -> Step {
        step(slot, tat, now, 0, moved)
    }

    fn slot(end: u64, taken_at: u64) -> Slot {
        Slot {
            end,
            increment: I,
            taken_at,
        }
    }

    #[test]
    fn the_last_slot_goes_back_down_to_now() {
        // Taken at 100 into an empty bucket: slot [100, 110).
        assert_eq!(step_at(slot(110, 100), 110, 100, 0), Step::Last(10));
        assert_eq!(
            step_at(slot(110, 100), 110, 104, 0),
            Step::Last(6),
            "4 spent"
        );
        assert_eq!(
            step_at(slot(110, 100), 110, 110, 0),
            Step::Nothing,
            "elapsed"
        );
        // Ahead of a queue: [150, 160) at 100 goes back whole.
        assert_eq!(step_at(slot(160, 100), 160, 120, 0), Step::Last(10));
    }

    #[test]
    fn a_slot_with_others_after_it_moves_them_up() {
        // [100, 110) then another [110, 120): both taken at 100.
        assert_eq!(step_at(slot(110, 100), 120, 100, 0), Step::Inner(10));
        assert_eq!(step_at(slot(110, 100), 120, 105, 0), Step::Inner(5));
        // Moved by up to 10 since: its end is only known to be ≥ max(100, 110).
        assert_eq!(step_at(slot(110, 100), 120, 100, 10), Step::Inner(10));
        assert_eq!(step_at(slot(130, 100), 140, 100, 10), Step::Inner(10));
        assert_eq!(step_at(slot(130, 90), 140, 115, 20), Step::Nothing);
        // A queue that broke after it (the next slot started later): already elapsed.
        assert_eq!(step_at(slot(110, 100), 510, 500, 0), Step::Nothing);
    }

    #[test]
    fn a_waiting_reservation_after_it_is_never_moved_before_it_falls_due() {
        // [100, 110) then a reservation [110, 120) that falls due at 112.
        assert_eq!(step(slot(110, 100), 120, 100, 112, 0), Step::Nothing);
        // Due at 105: the reservation may start 5 earlier.
        assert_eq!(step(slot(110, 100), 120, 100, 105, 0), Step::Inner(5));
        // Nothing follows: the due time of others does not matter.
        assert_eq!(step(slot(110, 100), 110, 100, 500, 0), Step::Last(10));
    }

    #[test]
    fn moved_refunds_make_a_slot_last_again() {
        // [100, 110) was moved up by 10 and nothing follows it: the TAT is its end.
        assert_eq!(step_at(slot(120, 100), 110, 100, 10), Step::Last(10));
        assert_eq!(step_at(slot(120, 100), 112, 100, 9), Step::Inner(10));
    }

    #[test]
    fn extremes_never_panic() {
        for end in [0, 1, u64::MAX] {
            for tat in [0, 1, u64::MAX] {
                for now in [0, u64::MAX] {
                    for moved in [0, u64::MAX] {
                        let s = Slot {
                            end,
                            increment: u64::MAX,
                            taken_at: u64::MAX,
                        };
                        if let Step::Last(b) | Step::Inner(b) = step(s, tat, now, now, moved) {
                            assert!(b <= tat - now.min(tat), "never below now");
                        }
                    }
                }
            }
        }
    }
}
