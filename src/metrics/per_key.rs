//! The `breakwater_per_key_*` families: a policy's per-key table and the keys it
//! rejected most, with a label set bounded by `top_keys` (at most 64 keys per policy).

use super::exposition::{Exposition, ExpositionError};
use crate::keyed::KeyedSnapshot;

/// `breakwater_per_key_active_keys{policy}`: keys that limit now.
pub const PER_KEY_ACTIVE_KEYS: &str = "breakwater_per_key_active_keys";
/// `breakwater_per_key_capacity{policy}`: slots in the table (fixed).
pub const PER_KEY_CAPACITY: &str = "breakwater_per_key_capacity";
/// `breakwater_per_key_evictions_total{policy}`: keys forgotten with a debt.
pub const PER_KEY_EVICTIONS_TOTAL: &str = "breakwater_per_key_evictions_total";
/// `breakwater_per_key_evicted_debt_total{policy}`: the most extra calls those
/// evictions can have let through, in permits.
pub const PER_KEY_EVICTED_DEBT_TOTAL: &str = "breakwater_per_key_evicted_debt_total";
/// `breakwater_per_key_shed_total{policy}`: calls refused because the key's bucket was
/// full of keys holding permits.
pub const PER_KEY_SHED_TOTAL: &str = "breakwater_per_key_shed_total";
/// `breakwater_per_key_top_rejections{policy,rank,key}`: the keys rejected most (a
/// space-saving sketch: counts may exceed the truth by the sketch's overestimate).
/// `rank` is `1..=top_keys`; `key` is the key's first 48 bytes, non-printable bytes as
/// `\xNN`. A gauge, since a key can leave the sketch.
pub const PER_KEY_TOP_REJECTIONS: &str = "breakwater_per_key_top_rejections";

/// Writes every `breakwater_per_key_*` family for one policy.
pub fn write_per_key(
    exp: &mut Exposition,
    policy: &str,
    snap: &KeyedSnapshot,
) -> Result<(), ExpositionError> {
    let p = [("policy", policy)];
    exp.gauge_family(PER_KEY_ACTIVE_KEYS, "Keys whose per-key limits bind now.")?
        .sample(&p, snap.active_keys)?;
    exp.gauge_family(PER_KEY_CAPACITY, "Slots of the per-key table (fixed).")?
        .sample(&p, snap.capacity)?;
    exp.counter_family(
        PER_KEY_EVICTIONS_TOTAL,
        "Keys forgotten while their quota was not refilled (their bucket was full).",
    )?
    .sample(&p, snap.evictions)?;
    exp.counter_family(
        PER_KEY_EVICTED_DEBT_TOTAL,
        "The most calls evictions can have let through beyond exact per-key limits.",
    )?
    .sample(&p, snap.evicted_debt)?;
    exp.counter_family(
        PER_KEY_SHED_TOTAL,
        "Calls refused because their key's bucket was full of keys holding permits.",
    )?
    .sample(&p, snap.shed)?;
    let top = exp.gauge_family(
        PER_KEY_TOP_REJECTIONS,
        "Rejections of the keys rejected most (space-saving sketch, by rank).",
    )?;
    for (rank, hitter) in snap.top_rejected.iter().enumerate() {
        let rank = (rank + 1).to_string();
        let key = hitter.display_key();
        top.sample(
            &[("policy", policy), ("rank", &rank), ("key", &key)],
            hitter.rejections,
        )?;
    }
    Ok(())
}
