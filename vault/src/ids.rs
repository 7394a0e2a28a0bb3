//! Object ids and API keys: a prefix plus base62 characters from the system CSPRNG.
//!
//! Object ids are time-ordered, like UUIDv7: 128 bits of which the top 48 are the Unix time in
//! milliseconds and the other 80 random, written as 22 base62 digits, most significant first.
//! The alphabet below is in ASCII order, so ids compare as strings the way their numbers do:
//! a new id sorts after older ones, and an insert lands at the right edge of the primary key's
//! B-tree instead of on a random page (measured in `npm run bench -- --only scale`).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Base62 digits in ASCII (byte) order: `0` < `9` < `A` < `Z` < `a` < `z`.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Characters after the prefix of an object id (22 base62 characters hold 130 bits; an id
/// uses 128 of them).
pub const ID_LEN: usize = 22;

/// Random bits of an object id; the rest is its creation time in milliseconds.
pub const ID_RANDOM_BITS: u32 = 80;

/// Characters after the prefix of an API key (32 base62 characters hold 190 bits).
pub const KEY_LEN: usize = 32;

/// `len` uniformly distributed base62 characters.
///
/// Rejection sampling keeps the distribution uniform: bytes 248..=255 are drawn again.
pub fn base62(len: usize) -> String {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        if rng.fill(&mut buf).is_err() {
            // The system CSPRNG failing is not recoverable, and an id must never be guessable.
            std::process::abort();
        }
        for &b in &buf {
            if out.len() == len {
                break;
            }
            if b < 248 {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// A new id such as `tok_` followed by [`ID_LEN`] base62 characters: the time now, in
/// milliseconds, then [`ID_RANDOM_BITS`] random bits. Ids made in one millisecond sort among
/// themselves at random; ids of different milliseconds sort by time.
pub fn new_id(prefix: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    id_at(prefix, millis, random_bytes::<10>())
}

/// The id of `prefix` for Unix time `millis` (its low 48 bits, enough until the year 10889)
/// and 80 random bits.
fn id_at(prefix: &str, millis: u64, random: [u8; 10]) -> String {
    let mut value = u128::from(millis & ((1 << 48) - 1)) << ID_RANDOM_BITS;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    // Fixed width, most significant digit first: string order is numeric order.
    let mut digits = [b'0'; ID_LEN];
    for d in digits.iter_mut().rev() {
        // `value % 62` is below 62, so the index is in range and the cast loses nothing.
        *d = BASE62[(value % 62) as usize];
        value /= 62;
    }
    let mut out = String::with_capacity(prefix.len() + ID_LEN);
    out.push_str(prefix);
    out.extend(digits.iter().map(|&b| char::from(b)));
    out
}

/// Whether `id` has the shape of an id with `prefix`; cheap rejection before any lookup.
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == ID_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `n` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if SystemRandom::new().fill(&mut out).is_err() {
        // See `base62`: without randomness no key or id is safe to hand out.
        std::process::abort();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_shape() {
        let id = new_id("tok_");
        assert!(is_id(&id, "tok_"), "{id}");
        assert_eq!(id.len(), 4 + ID_LEN);
        assert_ne!(new_id("tok_"), new_id("tok_"));
        assert!(!is_id("tok_short", "tok_"));
        assert!(!is_id(&id, "card_"));
        assert!(!is_id("tok_../../../etc/passwd0000000", "tok_"));
        for prefix in ["tok_", "card_", "ch_", "evt_"] {
            let id = new_id(prefix);
            assert!(is_id(&id, prefix), "{id}");
            assert_eq!(id.len(), prefix.len() + ID_LEN);
        }
    }

    #[test]
    fn the_alphabet_is_in_byte_order() {
        assert!(BASE62.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn ids_sort_by_time_as_strings() {
        // The largest random part of one millisecond still sorts before the smallest of the next.
        let times = [
            0,
            1,
            61,
            62,
            1_000,
            1_765_000_000_000,
            1_765_000_000_001,
            (1 << 48) - 1,
        ];
        let mut ids = Vec::new();
        for &ms in &times {
            ids.push(id_at("tok_", ms, [0; 10]));
            ids.push(id_at("tok_", ms, [0x5a; 10]));
            ids.push(id_at("tok_", ms, [0xff; 10]));
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "no two ids are equal");
        // And a real id, made now, sorts after one of a millisecond in the past.
        let millis = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits");
        assert!(id_at("tok_", millis - 1, [0xff; 10]) < new_id("tok_"));
        // The widest value still fits 22 digits (62^22 > 2^128), so no id wraps.
        assert!(is_id(&id_at("tok_", u64::MAX, [0xff; 10]), "tok_"));
    }

    #[test]
    fn eighty_bits_of_each_id_are_random() {
        // The random part decodes back exactly: all 80 bits reach the id, none are lost.
        let decode = |id: &str| {
            id.bytes().fold(0u128, |v, b| {
                let digit = BASE62.iter().position(|&c| c == b).expect("a base62 digit");
                v * 62 + digit as u128
            })
        };
        let random = [0xa5, 0x01, 0xff, 0x00, 0x7e, 0x80, 0x13, 0x37, 0xc0, 0xde];
        let value = decode(&id_at("", 1_765_000_000_123, random)[..]);
        assert_eq!(value >> ID_RANDOM_BITS, 1_765_000_000_123);
        let low = value & ((1u128 << ID_RANDOM_BITS) - 1);
        assert_eq!(low.to_be_bytes()[6..], random);
        // Real ids of one millisecond differ, and each of the 80 bits takes both values.
        let mut ones = [0u32; 80];
        let n = 2_000;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..n {
            let id = new_id("");
            assert!(seen.insert(id.clone()));
            let low = decode(&id) & ((1u128 << ID_RANDOM_BITS) - 1);
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += u32::from(low >> bit & 1 == 1);
            }
        }
        // Each bit is a fair coin: 2,000 flips land within 1,000 ± 200 (more than 8 sigma).
        for (bit, count) in ones.iter().enumerate() {
            assert!((800..=1200).contains(count), "bit {bit}: {count} of {n}");
        }
    }
}
