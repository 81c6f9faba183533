//! Checking the breaker words of a segment that is being attached: a word that no
//! breaker ever writes (a stray write, another program, a bug) is refused at attach
//! with [`HostError::CorruptState`] naming the word, instead of being found by the
//! decisions that use it (the breaker's retry bound in its slow path stays as a net for
//! a word corrupted after attach).
//!
//! The words are decoded by the bit tables in `breaker/state.rs`, `breaker/core.rs` and
//! `breaker/window.rs` (whose types are private to the breaker). What is refused:
//!
//! | word | refused when |
//! |---|---|
//! | state | its state code is 5, 6 or 7 (reserved, never stored) |
//! | timing | its tag is newer than the state's generation (every transition publishes its own timing after its state), or it belongs to the state's generation and lies further ahead than the longest open period or trial deadline the configuration allows |
//! | probes | its tag is newer than the state's generation (the trial could never be entered), or its counts break `failed, slow <= completed <= admitted <= half_open_permits` |
//! | consecutive | its tag is newer than the state's generation |
//! | count window head | its tag is newer than the state's generation (its claim count, the low 32 bits, is any value: slots are `claims % size`) |
//!
//! A time window's counters carry 12-bit generation tags, which alias in a long-lived
//! segment; they are not checked (a garbage count only misjudges rates, bounded by the
//! cap at 100 %).
//!
//! The words are read as one snapshot: the state word before and after them must be the
//! same (every transition changes it), else live processes are moving the breaker and
//! the read is retried; a breaker that keeps moving is in use, and accepted.

use super::error::HostError;
use super::segment::Segment;
use crate::breaker::core::Core;
use crate::breaker::{BreakerConfig, WindowConfig};

/// Words of the core read (state, timing, probes, consecutive).
const CORE_WORDS: usize = 4;
/// Tries at a stable snapshot before a moving breaker is accepted.
const SNAPSHOT_TRIES: usize = 4;

/// Whether tag `a` is newer than tag `b` among tags of `bits` bits (serial-number
/// arithmetic, as the breaker compares them).
fn newer(a: u64, b: u64, bits: u32) -> bool {
    let mask = (1u64 << bits) - 1;
    let d = a.wrapping_sub(b) & mask;
    d != 0 && d < 1 << (bits - 1)
}

/// Checks the breaker words of `segment` against `config` (the words a live breaker can
/// hold); `now` is a `CLOCK_MONOTONIC` reading. A segment without a breaker passes.
pub(crate) fn check_breaker(
    segment: &Segment,
    config: &BreakerConfig,
    now: u64,
) -> Result<(), HostError> {
    let at = segment.layout().breaker;
    if at == 0 {
        return Ok(());
    }
    let head_at = at + std::mem::size_of::<Core>().next_multiple_of(64);
    let window = matches!(config.window, WindowConfig::Count { .. });
    for _ in 0..SNAPSHOT_TRIES {
        let mut words = segment.load_words(at, CORE_WORDS);
        if window {
            words.extend(segment.load_words(head_at, 1));
        }
        let again = segment.load_words(at, 1);
        if again.first() == words.first() {
            return check_breaker_words(segment.name(), &words, config, now);
        }
    }
    Ok(())
}

/// The check of a segment's breaker words at attach (module docs), on words already
/// read: `words` are the core's state, timing, probes and consecutive words, then (for a
/// count window) the window's head word. Missing words are not checked (the caller read
/// what the mapping holds).
pub fn check_breaker_words(
    segment: &str,
    words: &[u64],
    config: &BreakerConfig,
    now: u64,
) -> Result<(), HostError> {
    let corrupt = |field: &'static str, found: u64| HostError::CorruptState {
        segment: segment.to_string(),
        field,
        found,
    };
    let word = |i: usize| words.get(i).copied();
    let Some(state) = word(0) else {
        return Ok(());
    };
    // State word: bits 0..3 state code (0..=4 used), 19..64 generation.
    let code = state & 0b111;
    if code > 4 {
        return Err(corrupt("breaker.state", state));
    }
    let generation = state >> 19;
    if let Some(timing) = word(1) {
        // Timing word: bits 0..8 tag, 8..64 instant in 256 ns units.
        if newer(timing & 0xFF, generation, 8) {
            return Err(corrupt("breaker.timing", timing));
        }
        let open_or_trial = code == 1 || code == 2;
        if open_or_trial && (timing ^ generation) & 0xFF == 0 {
            let longest = config
                .open_duration
                .max(config.max_open_duration)
                .saturating_mul(2)
                .saturating_add(config.half_open_max_wait);
            let horizon = now
                .saturating_add(u64::try_from(longest.as_nanos()).unwrap_or(u64::MAX))
                .saturating_add(1_000_000_000);
            if timing & !0xFF > horizon {
                return Err(corrupt("breaker.timing", timing));
            }
        }
    }
    if let Some(probes) = word(2) {
        // Probe word: 10-bit admitted, completed, failed, slow; bits 40..64 tag.
        let tag = probes >> 40;
        if newer(tag, generation, 24) {
            return Err(corrupt("breaker.probes", probes));
        }
        if tag == generation & 0xFF_FFFF {
            let field = |shift: u32| (probes >> shift) & 0x3FF;
            let (admitted, completed, failed, slow) = (field(0), field(10), field(20), field(30));
            if failed > completed
                || slow > completed
                || completed > admitted
                || admitted > u64::from(config.half_open_permits)
            {
                return Err(corrupt("breaker.probes", probes));
            }
        }
    }
    if let Some(consecutive) = word(3) {
        // Bits 0..32 failures in a row, 32..64 generation tag.
        if newer(consecutive >> 32, generation, 32) {
            return Err(corrupt("breaker.consecutive", consecutive));
        }
    }
    if let (Some(head), WindowConfig::Count { .. }) = (word(4), config.window) {
        // Head word: bits 0..32 the generation's claim count (every value is a valid
        // claim: a slot is `claims % size`), 32..64 tag.
        if newer(head >> 32, generation, 32) {
            return Err(corrupt("breaker.window", head));
        }
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> BreakerConfig {
        BreakerConfig::default()
            .with_half_open_permits(2)
            .with_open_duration(Duration::from_secs(1))
    }

    fn field(words: &[u64]) -> Option<&'static str> {
        match check_breaker_words("s", words, &config(), 1 << 40) {
            Ok(()) => None,
            Err(HostError::CorruptState { field, .. }) => Some(field),
            Err(e) => panic!("{e}"),
        }
    }

    /// Generation 5, open (code 1).
    const OPEN_5: u64 = (5 << 19) | 1;

    #[test]
    fn words_a_breaker_writes_pass() {
        assert_eq!(field(&[0, 0, 0, 0, 0]), None, "a fresh segment");
        let timing = ((1u64 << 40) + 1_000) & !0xFF | 5;
        let probes = (5 << 40) | (1 << 10) | 2;
        // A claim count past the window's size (and past 2^31, before its fold) is valid.
        for head in [(5 << 32) | 99, (5 << 32) | 100, (5 << 32) | (1 << 31) | 7] {
            assert_eq!(field(&[OPEN_5, timing, probes, 5 << 32, head]), None);
        }
        assert_eq!(
            field(&[OPEN_5, 4, 4 << 40, 4 << 32, 4 << 32]),
            None,
            "older tags"
        );
        assert_eq!(field(&[OPEN_5]), None, "words not read are not checked");
    }

    #[test]
    fn each_corrupt_word_is_named() {
        assert_eq!(field(&[(5 << 19) | 6]), Some("breaker.state"));
        assert_eq!(field(&[OPEN_5, 6]), Some("breaker.timing"));
        assert_eq!(field(&[OPEN_5, !0xFF_u64 | 5]), Some("breaker.timing"));
        assert_eq!(field(&[OPEN_5, 5, 6 << 40]), Some("breaker.probes"));
        assert_eq!(field(&[OPEN_5, 5, (5 << 40) | 3]), Some("breaker.probes"));
        assert_eq!(
            field(&[OPEN_5, 5, (5 << 40) | (2 << 10) | 1]),
            Some("breaker.probes")
        );
        assert_eq!(field(&[OPEN_5, 5, 0, 6 << 32]), Some("breaker.consecutive"));
        assert_eq!(field(&[OPEN_5, 5, 0, 0, 6 << 32]), Some("breaker.window"));
    }
}
