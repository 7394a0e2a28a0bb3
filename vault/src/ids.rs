//! Object ids and API keys: a prefix plus base62 characters from the system CSPRNG.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Characters after the prefix of an object id (22 base62 characters hold 130 bits).
pub const ID_LEN: usize = 22;

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

/// A new id such as `tok_` followed by [`ID_LEN`] base62 characters.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", base62(ID_LEN))
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
    }
}
