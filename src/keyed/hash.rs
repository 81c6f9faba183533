//! The seeded hash that places keys: SipHash-1-3 (the std `HashMap` hash) under a
//! 128-bit key drawn for each table.
//!
//! A client that chooses its keys can only aim them at one bucket if it can compute
//! the hash, which needs the seed; with a random seed per table, its keys spread like
//! any others. Written out here rather than taken from std because std does not
//! expose SipHash with a chosen key (tests and loom models need a fixed seed), and the
//! bytes are hashed as they are, with no length prefix.

/// A SipHash-1-3 instance with its 128-bit key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyHasher {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed is the table's secret: never printed.
        f.write_str("KeyHasher(..)")
    }
}

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// The last 0 to 7 bytes as a little-endian word, in at most three fixed-size loads (a
/// copy of a variable length is a call to `memcpy`, which cost more than the rest of
/// the tail on keys of a gateway's length).
#[inline(always)]
fn tail_word(rest: &[u8]) -> u64 {
    let mut word = 0u64;
    let mut at = 0;
    if let Some(four) = rest.first_chunk::<4>() {
        word = u64::from(u32::from_le_bytes(*four));
        at = 4;
    }
    if let Some(two) = rest[at..].first_chunk::<2>() {
        word |= u64::from(u16::from_le_bytes(*two)) << (8 * at);
        at += 2;
    }
    if let Some(&one) = rest.get(at) {
        word |= u64::from(one) << (8 * at);
    }
    word
}

impl KeyHasher {
    /// A hasher with the given key.
    pub(crate) fn with_seed(k0: u64, k1: u64) -> Self {
        Self { k0, k1 }
    }

    /// A hasher with a key nobody outside the process can know: drawn from the
    /// operating system's randomness through std's `RandomState`, a fresh one per call.
    pub(crate) fn random() -> Self {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        Self::with_seed(
            state.hash_one(0x6b65_7965_645f_6b30u64),
            state.hash_one(0x6b65_7965_645f_6b31u64),
        )
    }

    /// SipHash-1-3 of `bytes`.
    #[inline]
    pub(crate) fn hash(&self, bytes: &[u8]) -> u64 {
        let mut v = [
            self.k0 ^ 0x736f_6d65_7073_6575,
            self.k1 ^ 0x646f_7261_6e64_6f6d,
            self.k0 ^ 0x6c79_6765_6e65_7261,
            self.k1 ^ 0x7465_6462_7974_6573,
        ];
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let m = u64::from_le_bytes(word);
            v[3] ^= m;
            sip_round(&mut v);
            v[0] ^= m;
        }
        // The length's low byte goes in the top byte, as the reference does.
        let b = tail_word(chunks.remainder()) | ((bytes.len() as u64) << 56);
        v[3] ^= b;
        sip_round(&mut v);
        v[0] ^= b;
        v[2] ^= 0xff;
        sip_round(&mut v);
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::hash::Hasher;

    /// std's `DefaultHasher::new()` is SipHash-1-3 with a zero key, and `write` feeds
    /// the bytes as they are: the same function, so every length agrees.
    #[test]
    #[allow(deprecated)]
    fn agrees_with_std_siphash13_at_every_length() {
        let data: Vec<u8> = (0..64u8).collect();
        let ours = KeyHasher::with_seed(0, 0);
        for len in 0..=data.len() {
            let mut std_hasher = std::collections::hash_map::DefaultHasher::new();
            std_hasher.write(&data[..len]);
            assert_eq!(ours.hash(&data[..len]), std_hasher.finish(), "length {len}");
        }
    }

    #[test]
    fn seeds_change_everything() {
        let a = KeyHasher::with_seed(1, 2);
        let b = KeyHasher::with_seed(1, 3);
        assert_ne!(a.hash(b"tenant-1"), b.hash(b"tenant-1"));
        assert_ne!(KeyHasher::random(), KeyHasher::random());
        assert_eq!(format!("{a:?}"), "KeyHasher(..)");
    }
}
