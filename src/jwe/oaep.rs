//! RSAES-OAEP encoding (RFC 8017 §7.1.1) with SHA-256, MGF1-SHA-256 and an empty label: the
//! padding of `RSA-OAEP-256` (RFC 7518 §4.3).

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::Error;

/// Length of the SHA-256 output, and so of the OAEP seed.
pub(crate) const HASH_LEN: usize = 32;

/// SHA-256 of the empty label.
const EMPTY_LABEL_HASH: [u8; HASH_LEN] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Writes `EM = 0x00 || maskedSeed || maskedDB` for `msg` into `em`, whose length is the
/// modulus size `k` in bytes.
///
/// # Errors
/// [`Error::Crypto`] if `msg` is longer than `k - 2·32 - 2` bytes.
pub(crate) fn encode(msg: &[u8], seed: &[u8; HASH_LEN], em: &mut [u8]) -> Result<(), Error> {
    let k = em.len();
    if msg.len() + 2 * HASH_LEN + 2 > k {
        return Err(Error::Crypto);
    }
    let (zero, rest) = em.split_at_mut(1);
    zero[0] = 0;
    let (masked_seed, db) = rest.split_at_mut(HASH_LEN);
    // DB = lHash || PS (zeros) || 0x01 || M
    let one_at = db.len() - msg.len() - 1;
    db[..HASH_LEN].copy_from_slice(&EMPTY_LABEL_HASH);
    db[HASH_LEN..one_at].fill(0);
    db[one_at] = 1;
    db[one_at + 1..].copy_from_slice(msg);
    mgf1_xor(db, seed);
    masked_seed.copy_from_slice(seed);
    mgf1_xor(masked_seed, db);
    Ok(())
}

/// `out ^= MGF1-SHA-256(seed, out.len())`.
fn mgf1_xor(out: &mut [u8], seed: &[u8]) {
    // The seed is hashed once; each counter block continues from a copy of that state.
    let mut seeded = Sha256::new();
    seeded.update(seed);
    let mut mask = [0u8; HASH_LEN];
    for (counter, chunk) in (0u32..).zip(out.chunks_mut(HASH_LEN)) {
        let mut hasher = seeded.clone();
        hasher.update(counter.to_be_bytes());
        mask.copy_from_slice(&hasher.finalize());
        for (byte, m) in chunk.iter_mut().zip(&mask) {
            *byte ^= m;
        }
    }
    mask.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_label_hash_is_sha256_of_nothing() {
        assert_eq!(Sha256::digest([]).as_slice(), &EMPTY_LABEL_HASH);
    }

    #[test]
    fn too_long_messages_are_refused() {
        let mut em = [0u8; 256];
        assert!(encode(&[1; 190], &[2; 32], &mut em).is_ok());
        assert_eq!(encode(&[1; 191], &[2; 32], &mut em), Err(Error::Crypto));
    }
}
