//! The keys rejected most: a space-saving sketch (Metwally, Agrawal, El Abbadi 2005).
//!
//! `N` counters, allocated up front. A rejected key already counted adds one to its
//! counter; a new one takes a free counter, or replaces the key with the smallest
//! count `m` and starts at `m + 1`, remembering `m` as its possible overestimate. Then
//! every count is at most `m` above the truth, and every key rejected more than
//! `total / N` times is among the `N` (whatever the order of rejections). So a flood
//! of distinct keys costs `N` counters, never a label per key.
//!
//! Only rejections reach it, in weighted steps: the table counts a key's rejections in
//! its slot and hands them over the first at once, then in batches (see `table`; those
//! decided without the bucket's lock are counted in the rejecting thread's tally and
//! handed over in batches of 64, see `tally`), and
//! the weighted step is the same with `w` for one: a counted key adds `w`, a new one
//! starts at `m + w` with overestimate `m`. The guarantee holds for the counts handed
//! over; [`HeavyHitters::top`] adds each reported key's count still in the table and
//! the tallies.
//!
//! The sketch is split by key into [`SHARDS`] sketches of
//! `N` counters each, every one behind its own lock (held for a scan of at most `N`
//! counters), so that threads rejecting different keys do not queue on one lock. The
//! guarantee is unchanged: a key always goes to the same shard, so it is at most
//! `total_s / N ≤ total / N` over its truth there (`total_s`: the rejections of its
//! shard); and since the counts of all shards add up to `total`, fewer than `N`
//! counters can exceed any count above `total / N`, so a key rejected more than
//! `total / N` times is among the `N` largest counts of all shards, which is what
//! [`HeavyHitters::top`] returns.

use crossbeam_utils::CachePadded;

use crate::sync::Mutex;

/// Shards of the sketch (a power of two).
pub(crate) const SHARDS: usize = 8;

/// How many bytes of a key the sketch keeps for display.
pub(crate) const KEY_PREFIX: usize = 48;

/// One of the keys rejected most, as the sketch saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeavyHitter {
    /// The key's first bytes (at most 48).
    pub key: Vec<u8>,
    /// The key's whole length, in bytes (more than `key.len()` when cut).
    pub key_len: usize,
    /// Rejections counted for the key; at most `overestimate` more than the truth, and
    /// below it only by rejections still pending in the key's table slot when the key
    /// left the table while it had no counter here (fewer than 15 each time).
    pub rejections: u64,
    /// How much `rejections` may exceed the truth.
    pub overestimate: u64,
}

impl HeavyHitter {
    /// The key as a label value: printable ASCII as it is, other bytes as `\xNN`, and
    /// `…` after a cut key.
    pub fn display_key(&self) -> String {
        let mut out = String::with_capacity(self.key.len() + 4);
        for &b in &self.key {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                out.push(b as char);
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        if self.key_len > self.key.len() {
            out.push('…');
        }
        out
    }
}

/// A counted key's first bytes, for display.
#[derive(Clone, Copy)]
struct Prefix {
    len: usize,
    bytes: [u8; KEY_PREFIX],
}

/// One shard's counters, as parallel arrays: a rejection scans the identities and the
/// counts in one pass over two dense arrays, and touches a key's bytes only when the key
/// takes a counter.
struct Shard {
    /// Counters in use (the first `used` entries of each array).
    used: usize,
    ids: Box<[u64]>,
    /// The bucket of each counted key, to find the rejections its slot still holds.
    buckets: Box<[u32]>,
    counts: Box<[u64]>,
    errors: Box<[u64]>,
    keys: Box<[Prefix]>,
}

impl Shard {
    fn new(capacity: usize) -> Shard {
        Shard {
            used: 0,
            ids: vec![0; capacity].into_boxed_slice(),
            buckets: vec![0; capacity].into_boxed_slice(),
            counts: vec![0; capacity].into_boxed_slice(),
            errors: vec![0; capacity].into_boxed_slice(),
            keys: vec![
                Prefix {
                    len: 0,
                    bytes: [0; KEY_PREFIX],
                };
                capacity
            ]
            .into_boxed_slice(),
        }
    }

    /// The space-saving step for `weight` rejections of `key` (identity `id`, in
    /// `bucket` of the table).
    #[inline]
    fn record(&mut self, id: u64, bucket: u32, key: &[u8], weight: u64) {
        let used = self.used;
        // One pass: the key's counter if it has one, else the first smallest count.
        let (mut min, mut min_at) = (u64::MAX, 0);
        for (at, (&counted, &count)) in self.ids[..used]
            .iter()
            .zip(&self.counts[..used])
            .enumerate()
        {
            if counted == id {
                self.counts[at] += weight;
                return;
            }
            if count < min {
                (min, min_at) = (count, at);
            }
        }
        let at = if used < self.ids.len() {
            self.used += 1;
            (self.counts[used], self.errors[used]) = (weight, 0);
            used
        } else {
            (self.counts[min_at], self.errors[min_at]) = (min + weight, min);
            min_at
        };
        (self.ids[at], self.buckets[at]) = (id, bucket);
        let kept = key.len().min(KEY_PREFIX);
        let prefix = &mut self.keys[at];
        prefix.len = key.len();
        prefix.bytes[..kept].copy_from_slice(&key[..kept]);
    }

    /// Adds `weight` to the counter of `id`, if it has one.
    fn add_if_counted(&mut self, id: u64, weight: u64) {
        if let Some(at) = self.ids[..self.used].iter().position(|&c| c == id) {
            self.counts[at] += weight;
        }
    }

    /// Each counted key with its bucket and identity.
    fn hitters(&self) -> impl Iterator<Item = (u32, u64, HeavyHitter)> + '_ {
        (0..self.used).map(|at| {
            let prefix = &self.keys[at];
            let hitter = HeavyHitter {
                key: prefix.bytes[..prefix.len.min(KEY_PREFIX)].to_vec(),
                key_len: prefix.len,
                rejections: self.counts[at],
                overestimate: self.errors[at],
            };
            (self.buckets[at], self.ids[at], hitter)
        })
    }
}

/// The sketch.
pub(crate) struct HeavyHitters {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    capacity: usize,
}

impl HeavyHitters {
    /// A sketch reporting `capacity` keys (0: records nothing): [`SHARDS`] shards of
    /// `capacity` counters, all allocated now.
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = if capacity == 0 { 0 } else { SHARDS };
        Self {
            shards: (0..shards)
                .map(|_| CachePadded::new(Mutex::new(Shard::new(capacity))))
                .collect(),
            capacity,
        }
    }

    /// Whether the sketch counts anything (`top_keys` > 0).
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.capacity != 0
    }

    /// The shard of identity `id`.
    #[inline]
    fn shard(id: u64) -> usize {
        // The identity's top bits are hash bits (see `table`): they spread keys evenly.
        (id >> (64 - SHARDS.trailing_zeros())) as usize % SHARDS
    }

    /// Counts `weight` rejections of `key` (identity `id`, in `bucket` of the table).
    /// Allocation-free: every counter was allocated with the sketch.
    #[cold]
    pub(crate) fn record(&self, id: u64, bucket: u32, key: &[u8], weight: u64) {
        if self.capacity == 0 {
            return;
        }
        self.shards[Self::shard(id)]
            .lock()
            .record(id, bucket, key, weight);
    }

    /// Counts `weight` rejections of the key with identity `id` if it has a counter
    /// (its bytes are not at hand: a key without one keeps no count).
    #[cold]
    pub(crate) fn add_if_counted(&self, id: u64, weight: u64) {
        if self.capacity == 0 {
            return;
        }
        self.shards[Self::shard(id)]
            .lock()
            .add_if_counted(id, weight);
    }

    /// The `capacity` keys counted most, each with the count `pending(bucket, id)` (its
    /// rejections the table has not handed over yet) added, most rejected first (ties:
    /// the smaller overestimate first).
    pub(crate) fn top(&self, pending: impl Fn(u32, u64) -> u64) -> Vec<HeavyHitter> {
        // Collected before the table is asked, so no shard lock is held meanwhile.
        let counted: Vec<(u32, u64, HeavyHitter)> = self
            .shards
            .iter()
            .flat_map(|shard| shard.lock().hitters().collect::<Vec<_>>())
            .collect();
        let mut top: Vec<HeavyHitter> = counted
            .into_iter()
            .map(|(bucket, id, mut hitter)| {
                hitter.rejections += pending(bucket, id);
                hitter
            })
            .collect();
        top.sort_by(|a, b| {
            b.rejections
                .cmp(&a.rejections)
                .then(a.overestimate.cmp(&b.overestimate))
                .then(a.key.cmp(&b.key))
        });
        top.truncate(self.capacity);
        top
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn every_key_above_total_over_n_is_found_with_a_bounded_count() {
        let sketch = HeavyHitters::new(5);
        let mut truth: HashMap<u64, u64> = HashMap::new();
        let mut total = 0;
        // Three heavy keys among a stream of one-off keys, interleaved.
        for i in 0..3_000u64 {
            let id = match i % 10 {
                0..=2 => 1,
                3 | 4 => 2,
                5 => 3,
                _ => 1_000 + i,
            };
            sketch.record(id, 0, &id.to_le_bytes(), 1);
            *truth.entry(id).or_default() += 1;
            total += 1;
        }
        let top = sketch.top(|_, _| 0);
        assert_eq!(top.len(), 5);
        for h in &top {
            let id = u64::from_le_bytes(h.key.clone().try_into().unwrap());
            let real = truth[&id];
            assert!(h.rejections >= real && h.rejections - h.overestimate <= real);
        }
        for (&id, &count) in &truth {
            if count > total / 5 {
                assert!(
                    top.iter().any(|h| h.key == id.to_le_bytes()),
                    "{id} missing"
                );
            }
        }
        assert_eq!(top[0].key, 1u64.to_le_bytes());
    }

    #[test]
    fn long_and_binary_keys_are_cut_and_escaped() {
        let sketch = HeavyHitters::new(2);
        let long = [b'a'; 60];
        sketch.record(1, 0, &long, 1);
        sketch.record(2, 0, b"t\x00\"\\", 1);
        let top = sketch.top(|_, _| 0);
        let long_one = top.iter().find(|h| h.key_len == 60).unwrap();
        assert_eq!(long_one.key.len(), KEY_PREFIX);
        assert!(long_one.display_key().ends_with('…'));
        let binary = top.iter().find(|h| h.key_len == 4).unwrap();
        assert_eq!(binary.display_key(), "t\\x00\"\\x5c");
        assert!(HeavyHitters::new(0).top(|_, _| 0).is_empty());
    }

    #[test]
    fn shards_keep_the_guarantee_of_one_sketch() {
        // Identities whose top bits differ land in different shards; the heavy keys
        // must still be the top ones, with counts bounded as in one sketch.
        let sketch = HeavyHitters::new(3);
        let spread = |n: u64| n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 << 16;
        let mut truth: HashMap<u64, u64> = HashMap::new();
        let mut total = 0;
        for i in 0..4_000u64 {
            let id = match i % 8 {
                0..=2 => spread(1),
                3 | 4 => spread(2),
                _ => spread(1_000 + i),
            };
            sketch.record(id, 0, &id.to_le_bytes(), 1);
            *truth.entry(id).or_default() += 1;
            total += 1;
        }
        let top = sketch.top(|_, _| 0);
        assert_eq!(top.len(), 3, "truncated to the capacity");
        for h in &top {
            let id = u64::from_le_bytes(h.key.clone().try_into().unwrap());
            let real = truth[&id];
            assert!(h.rejections >= real && h.rejections - h.overestimate <= real);
            assert!(h.overestimate <= total / 3);
        }
        assert_eq!(top[0].key, spread(1).to_le_bytes());
        assert_eq!(top[1].key, spread(2).to_le_bytes());
    }
}
