//! The RSA public-key operation `m^e mod n`, with Montgomery multiplication.
//!
//! Sealing spends most of its time here, so this is the fast path: the Montgomery constants
//! are computed once per [`VaultKey`](super::VaultKey), and each multiplication is one fused
//! CIOS loop (Koç, Acar and Kaliski, "Analyzing and Comparing Montgomery Multiplication
//! Algorithms", 1996). The arithmetic is generic over the limb: `u64` limbs with `u128`
//! products natively, `u32` limbs with `u64` products in wasm, where `i64.mul` is native but a
//! 64×64→128 product is a slow library call. Both are tested everywhere against the `rsa` crate.
//!
//! No branch or memory access depends on the message, only on the public modulus and
//! exponent: the message is the OAEP block, which hides the content key.

use zeroize::{Zeroize, Zeroizing};

/// A machine word of a big number, and the double-width arithmetic the loops need.
pub(crate) trait Limb: Copy + Default + Eq + Zeroize {
    /// Bits per limb.
    const BITS: usize;

    /// `a + b * c + carry`, as (low, high). Cannot overflow: the maximum is `W² - 1`.
    fn mac(a: Self, b: Self, c: Self, carry: Self) -> (Self, Self);
    /// `a + b + carry` with `carry` in {0, 1}, as (sum, carry out).
    fn adc(a: Self, b: Self, carry: Self) -> (Self, Self);
    /// `a - b - borrow` with `borrow` in {0, 1}, as (difference, borrow out).
    fn sbb(a: Self, b: Self, borrow: Self) -> (Self, Self);
    /// `a * b mod W`.
    fn wrapping_mul(a: Self, b: Self) -> Self;
    /// `-a mod W`.
    fn wrapping_neg(a: Self) -> Self;
    /// `mask` is all ones or all zeros: `a` where ones, `b` where zeros.
    fn select(mask: Self, a: Self, b: Self) -> Self;
    /// All ones if `bit` is 1, zero if 0.
    fn mask_from_bit(bit: Self) -> Self;
    /// One byte as a limb.
    fn from_u8(byte: u8) -> Self;
    /// Byte `i` (little-endian) of the limb.
    fn byte(self, i: usize) -> u8;
    /// Shift left by 8 bits.
    fn shl8(self) -> Self;
    /// `(self << 1) | carry_in`, and the bit shifted out.
    fn shl1(self, carry_in: Self) -> (Self, Self);
    /// The number of significant bits.
    fn bit_length(self) -> usize;
    /// The value 1.
    const ONE: Self;
    /// The value 0.
    const ZERO: Self;
}

macro_rules! limb {
    ($limb:ty, $wide:ty) => {
        impl Limb for $limb {
            const BITS: usize = <$limb>::BITS as usize;
            const ONE: Self = 1;
            const ZERO: Self = 0;
            #[inline(always)]
            fn mac(a: Self, b: Self, c: Self, carry: Self) -> (Self, Self) {
                let wide =
                    <$wide>::from(a) + <$wide>::from(b) * <$wide>::from(c) + <$wide>::from(carry);
                // Truncation is the point: low and high halves.
                #[allow(clippy::cast_possible_truncation)]
                (wide as $limb, (wide >> Self::BITS) as $limb)
            }

            #[inline(always)]
            fn adc(a: Self, b: Self, carry: Self) -> (Self, Self) {
                let wide = <$wide>::from(a) + <$wide>::from(b) + <$wide>::from(carry);
                #[allow(clippy::cast_possible_truncation)]
                (wide as $limb, (wide >> Self::BITS) as $limb)
            }

            #[inline(always)]
            fn sbb(a: Self, b: Self, borrow: Self) -> (Self, Self) {
                let wide = <$wide>::from(a)
                    .wrapping_sub(<$wide>::from(b))
                    .wrapping_sub(<$wide>::from(borrow));
                // The borrow is the top bit of the wrapped double-width difference.
                #[allow(clippy::cast_possible_truncation)]
                (wide as $limb, (wide >> (2 * Self::BITS - 1)) as $limb)
            }

            #[inline(always)]
            fn wrapping_mul(a: Self, b: Self) -> Self {
                a.wrapping_mul(b)
            }

            #[inline(always)]
            fn wrapping_neg(a: Self) -> Self {
                a.wrapping_neg()
            }

            #[inline(always)]
            fn select(mask: Self, a: Self, b: Self) -> Self {
                (a & mask) | (b & !mask)
            }

            #[inline(always)]
            fn mask_from_bit(bit: Self) -> Self {
                bit.wrapping_neg()
            }

            #[inline(always)]
            fn from_u8(byte: u8) -> Self {
                Self::from(byte)
            }

            #[inline(always)]
            fn byte(self, i: usize) -> u8 {
                self.to_le_bytes()[i]
            }

            #[inline(always)]
            fn shl8(self) -> Self {
                self << 8
            }

            #[inline(always)]
            fn shl1(self, carry_in: Self) -> (Self, Self) {
                ((self << 1) | carry_in, self >> (Self::BITS - 1))
            }

            #[inline(always)]
            fn bit_length(self) -> usize {
                (<$limb>::BITS - self.leading_zeros()) as usize
            }
        }
    };
}

limb!(u32, u64);
limb!(u64, u128);

/// The limb the fast path uses on this target.
#[cfg(target_arch = "wasm32")]
pub(crate) type FastLimb = u32;
/// The limb the fast path uses on this target.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type FastLimb = u64;

/// An odd modulus with its Montgomery constants, `R = W^s` for `s` limbs of `W` values.
#[derive(Clone)]
pub(crate) struct Modulus<L: Limb> {
    /// `n`, little-endian limbs; the top limb is non-zero.
    n: Vec<L>,
    /// `-n⁻¹ mod W`.
    n0_inv: L,
    /// `R² mod n`, to bring a number into Montgomery form with one multiplication.
    rr: Vec<L>,
    /// Bytes of `n` (big-endian, no leading zeros): the size of every input and output.
    len: usize,
}

impl<L: Limb> Modulus<L> {
    /// Precomputes the constants for the big-endian modulus `n`, which must be odd and at
    /// least 2 limbs long. Returns `None` otherwise.
    pub(crate) fn new(n_be: &[u8]) -> Option<Self> {
        let first = n_be.iter().position(|b| *b != 0)?;
        let n_be = &n_be[first..];
        if n_be.last().is_none_or(|b| b & 1 == 0) {
            return None;
        }
        let n = from_be_bytes::<L>(n_be, n_be.len().div_ceil(L::BITS / 8));
        let s = n.len();
        if s < 2 {
            return None;
        }

        // Newton's iteration doubles the correct low bits of the inverse each step; an odd
        // `n0` is its own inverse modulo 8, so 3 bits are right from the start.
        let mut inv = n[0];
        let two = L::adc(L::ONE, L::ONE, L::ZERO).0;
        let mut good_bits = 3;
        while good_bits < L::BITS {
            let (t, _) = L::sbb(two, L::wrapping_mul(n[0], inv), L::ZERO);
            inv = L::wrapping_mul(inv, t);
            good_bits *= 2;
        }
        let n0_inv = L::wrapping_neg(inv);

        let mut modulus = Self {
            n,
            n0_inv,
            rr: Vec::new(),
            len: n_be.len(),
        };
        modulus.rr = modulus.compute_rr();
        Some(modulus)
    }

    /// `R² mod n`: `R mod n` by doubling, then `2^(W·s)` in Montgomery form by
    /// square-and-multiply, which is `R · R`. The key is public, so this may branch.
    fn compute_rr(&self) -> Vec<L> {
        let s = self.n.len();
        let bits = self.bit_len();
        // 2^(bits-1) < n, since n is odd and its top bit is bit `bits - 1`.
        let mut r = vec![L::ZERO; s];
        set_bit(&mut r, bits - 1);
        for _ in bits - 1..L::BITS * s {
            self.double_mod(&mut r);
        }
        // `r` is now R mod n, which is 1 in Montgomery form; `two` is 2 in Montgomery form.
        let mut two = r.clone();
        self.double_mod(&mut two);
        let exponent = L::BITS * s;
        let mut acc = r;
        let mut tmp = vec![L::ZERO; s];
        let mut scratch = vec![L::ZERO; s + 1];
        for i in (0..usize::BITS - exponent.leading_zeros()).rev() {
            self.mont_mul(&acc, &acc, &mut tmp, &mut scratch);
            std::mem::swap(&mut acc, &mut tmp);
            if exponent >> i & 1 == 1 {
                self.mont_mul(&acc, &two, &mut tmp, &mut scratch);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        acc
    }

    fn bit_len(&self) -> usize {
        let s = self.n.len();
        (s - 1) * L::BITS + self.n[s - 1].bit_length()
    }

    /// `x = 2x mod n`, for `x < n`.
    fn double_mod(&self, x: &mut [L]) {
        let mut carry = L::ZERO;
        for limb in x.iter_mut() {
            let (shifted, out) = limb.shl1(carry);
            *limb = shifted;
            carry = out;
        }
        // Subtract n if the doubled value overflowed or is still ≥ n.
        let mut diff = x.to_vec();
        let mut borrow = L::ZERO;
        for (d, &n) in diff.iter_mut().zip(&self.n) {
            let (v, b) = L::sbb(*d, n, borrow);
            *d = v;
            borrow = b;
        }
        if carry == L::ONE || borrow == L::ZERO {
            x.copy_from_slice(&diff);
        }
    }

    /// The size of the modulus in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `out = a · b · R⁻¹ mod n`, fully reduced, for `a, b < n`. `t` is scratch of `s + 1`
    /// limbs. Constant-time in `a` and `b`.
    #[inline]
    fn mont_mul(&self, a: &[L], b: &[L], out: &mut [L], t: &mut [L]) {
        let s = self.n.len();
        // Re-slicing to exactly `s` lets the compiler drop the bounds checks in the loop.
        let (n, a, b, out, t) = (&self.n[..s], &a[..s], &b[..s], &mut out[..s], &mut t[..=s]);
        t.fill(L::ZERO);
        for &bi in b {
            // t = (t + a·bi + m·n) / W, with m chosen so that the low limb vanishes.
            let (x0, mut c1) = L::mac(t[0], a[0], bi, L::ZERO);
            let m = L::wrapping_mul(x0, self.n0_inv);
            let (_, mut c2) = L::mac(x0, m, n[0], L::ZERO);
            for j in 1..s {
                let (x, c1_next) = L::mac(t[j], a[j], bi, c1);
                let (y, c2_next) = L::mac(x, m, n[j], c2);
                t[j - 1] = y;
                c1 = c1_next;
                c2 = c2_next;
            }
            let (lo, h1) = L::adc(t[s], c1, L::ZERO);
            let (lo, h2) = L::adc(lo, c2, L::ZERO);
            t[s - 1] = lo;
            // t < 2n, so the top limb is 0 or 1.
            t[s] = L::adc(h1, h2, L::ZERO).0;
        }
        out.copy_from_slice(&t[..s]);
        self.reduce_once(out, t[s]);
    }

    /// `out -= n` if `(top, out) ≥ n`, for a value below `2n`; by mask, not by branch.
    #[inline]
    fn reduce_once(&self, out: &mut [L], top: L) {
        let s = self.n.len();
        let (n, out) = (&self.n[..s], &mut out[..s]);
        // First pass: does the subtraction borrow (value < n)? Second: keep or subtract.
        let mut borrow = L::ZERO;
        for (&o, &nj) in out.iter().zip(n) {
            borrow = L::sbb(o, nj, borrow).1;
        }
        let keep = L::mask_from_bit(L::sbb(top, L::ZERO, borrow).1);
        let mut borrow = L::ZERO;
        for (o, &nj) in out.iter_mut().zip(n) {
            let (d, b) = L::sbb(*o, nj, borrow);
            *o = L::select(keep, *o, d);
            borrow = b;
        }
    }

    /// `out = m^e mod n` as `len()` big-endian bytes, for a big-endian `m < n` of `len()`
    /// bytes and an odd public exponent `e ≥ 3`.
    pub(crate) fn pow_public(&self, m: &[u8], e: u32, out: &mut [u8]) {
        let s = self.n.len();
        let base = Zeroizing::new(from_be_bytes::<L>(m, s));
        let mut base_mont = Zeroizing::new(vec![L::ZERO; s]);
        let mut acc = Zeroizing::new(vec![L::ZERO; s]);
        let mut tmp = Zeroizing::new(vec![L::ZERO; s]);
        let mut t = Zeroizing::new(vec![L::ZERO; s + 1]);

        self.mont_mul(&base, &self.rr, &mut base_mont, &mut t);
        acc.copy_from_slice(&base_mont);
        // Left to right over the bits below the top one. The last bit (e is odd) multiplies by
        // the plain base, which also leaves Montgomery form: (x^2·R)·m·R⁻¹ = x^2·m.
        let top = u32::BITS - 1 - e.leading_zeros();
        for i in (1..top).rev() {
            self.mont_mul(&acc, &acc, &mut tmp, &mut t);
            std::mem::swap(&mut *acc, &mut *tmp);
            if e >> i & 1 == 1 {
                self.mont_mul(&acc, &base_mont, &mut tmp, &mut t);
                std::mem::swap(&mut *acc, &mut *tmp);
            }
        }
        self.mont_mul(&acc, &acc, &mut tmp, &mut t);
        self.mont_mul(&tmp, &base, &mut acc, &mut t);
        to_be_bytes(&acc, out);
    }
}

fn set_bit<L: Limb>(x: &mut [L], bit: usize) {
    let mut limb = L::ONE;
    for _ in 0..bit % L::BITS {
        limb = limb.shl1(L::ZERO).0;
    }
    x[bit / L::BITS] = limb;
}

/// Big-endian bytes into `s` little-endian limbs (the bytes must fit).
fn from_be_bytes<L: Limb>(bytes: &[u8], s: usize) -> Vec<L> {
    let mut limbs = vec![L::ZERO; s];
    let per = L::BITS / 8;
    for (i, chunk) in bytes.rchunks(per).enumerate() {
        limbs[i] = chunk.iter().fold(L::ZERO, |acc, &b| {
            L::adc(acc.shl8(), L::from_u8(b), L::ZERO).0
        });
    }
    limbs
}

/// Little-endian limbs into `out.len()` big-endian bytes (the number must fit).
fn to_be_bytes<L: Limb>(limbs: &[L], out: &mut [u8]) {
    let per = L::BITS / 8;
    for (i, byte) in out.iter_mut().rev().enumerate() {
        *byte = limbs.get(i / per).map_or(0, |l| l.byte(i % per));
    }
}

impl<L: Limb> std::fmt::Debug for Modulus<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modulus")
            .field("bytes", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rsa::traits::PublicKeyParts;
    use rsa::{BoxedUint, PublicKey};

    use super::*;

    /// SplitMix64: a deterministic generator, so that failures reproduce.
    pub(crate) struct TestRng(pub(crate) u64);

    impl TestRng {
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        pub(crate) fn fill(&mut self, bytes: &mut [u8]) {
            for byte in bytes {
                *byte = self.next_u64().to_le_bytes()[0];
            }
        }

        pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
            let mut bytes = vec![0; len];
            self.fill(&mut bytes);
            bytes
        }

        /// A random odd modulus of exactly `bits` bits; not an RSA modulus, but the arithmetic
        /// does not care whether `n` has two prime factors.
        pub(crate) fn modulus(&mut self, bits: usize) -> Vec<u8> {
            let mut n = self.bytes(bits.div_ceil(8));
            let top_bits = bits - (n.len() - 1) * 8;
            n[0] &= 0xff >> (8 - top_bits);
            n[0] |= 1 << (top_bits - 1);
            *n.last_mut().unwrap() |= 1;
            n
        }

        /// An odd exponent in [3, 2^32).
        pub(crate) fn exponent(&mut self) -> u32 {
            match self.next_u64() % 4 {
                0 => 65537,
                1 => 3,
                2 => u32::MAX,
                _ => (self.next_u64() as u32) | 3,
            }
        }
    }

    /// `m^e mod n` by the `rsa` crate (crypto-bigint), as big-endian bytes of n's length.
    fn reference_pow(n: &[u8], e: u32, m: &[u8]) -> Vec<u8> {
        let key = PublicKey::new_with_size_limits(
            BoxedUint::from_be_slice_vartime(n),
            BoxedUint::from(u64::from(e)),
            16..=16384,
        )
        .unwrap();
        let m = BoxedUint::from_be_slice(m, key.n_bits_precision()).unwrap();
        let c = rsa::hazmat::rsa_encrypt(&key, &m).unwrap().to_be_bytes();
        c[c.len() - n.len()..].to_vec()
    }

    fn fast_pow<L: Limb>(n: &[u8], e: u32, m: &[u8]) -> Vec<u8> {
        let modulus = Modulus::<L>::new(n).unwrap();
        assert_eq!(modulus.len(), n.len());
        let mut out = vec![0; n.len()];
        modulus.pow_public(m, e, &mut out);
        out
    }

    /// Messages that stress the reduction: 0, 1, 2, n-1, n-2, all-ones below n, random.
    fn messages(rng: &mut TestRng, n: &[u8]) -> Vec<Vec<u8>> {
        let small = |v: u8| {
            let mut m = vec![0; n.len()];
            *m.last_mut().unwrap() = v;
            m
        };
        let minus = |d: u8| {
            let mut m = n.to_vec();
            *m.last_mut().unwrap() -= d; // n is odd, so its last byte is at least 1
            m
        };
        let mut ones = vec![0xff; n.len()];
        ones[0] = n[0].saturating_sub(1);
        let mut random = rng.bytes(n.len());
        random[0] = n[0].saturating_sub(1).min(random[0]);
        vec![
            small(0),
            small(1),
            small(2),
            minus(1),
            minus(2),
            ones,
            random,
        ]
    }

    fn check_sizes<L: Limb>(sizes: &[usize], moduli_per_size: usize, seed: u64) {
        let mut rng = TestRng(seed);
        for &bits in sizes {
            for _ in 0..moduli_per_size {
                let n = rng.modulus(bits);
                let e = rng.exponent();
                for m in messages(&mut rng, &n) {
                    assert_eq!(
                        fast_pow::<L>(&n, e, &m),
                        reference_pow(&n, e, &m),
                        "{} bits, e = {e}, limb {} bits, seed {seed}",
                        bits,
                        L::BITS
                    );
                }
            }
        }
    }

    const SIZES: [usize; 12] = [
        127, 128, 129, 2047, 2048, 2049, 2056, 2080, 2111, 3072, 3077, 4096,
    ];

    #[test]
    fn pow_matches_the_rsa_crate_with_u64_limbs() {
        check_sizes::<u64>(&SIZES, 3, 1);
    }

    #[test]
    fn pow_matches_the_rsa_crate_with_u32_limbs() {
        check_sizes::<u32>(&SIZES, 3, 2);
    }

    #[test]
    fn pow_matches_the_rsa_crate_at_8192_bits() {
        check_sizes::<u64>(&[8192], 1, 3);
        check_sizes::<u32>(&[8191], 1, 4);
    }

    /// The exhaustive run: `cargo test --release -- --ignored pow_matches_exhaustively`.
    #[test]
    #[ignore = "slow; run in release"]
    fn pow_matches_exhaustively() {
        let sizes: Vec<usize> = (2040..2120).chain([3072, 4096, 6144, 8192]).collect();
        for seed in 0..25 {
            check_sizes::<u64>(&sizes, 4, 100 + seed);
            check_sizes::<u32>(&sizes, 4, 200 + seed);
        }
    }

    #[test]
    fn both_limb_sizes_agree_on_the_constants() {
        let mut rng = TestRng(5);
        for bits in [2048, 4096] {
            let n = rng.modulus(bits);
            let wide = Modulus::<u64>::new(&n).unwrap();
            let narrow = Modulus::<u32>::new(&n).unwrap();
            // Same R when the size is a multiple of 64, so R² mod n must match bit for bit.
            let (mut a, mut b) = (vec![0; n.len()], vec![0; n.len()]);
            to_be_bytes(&wide.rr, &mut a);
            to_be_bytes(&narrow.rr, &mut b);
            assert_eq!(a, b);
            // -n⁻¹ mod W: n·n0_inv ≡ -1.
            assert_eq!(n0_check(wide.n[0], wide.n0_inv), u64::MAX);
            assert_eq!(narrow.n[0].wrapping_mul(narrow.n0_inv), u32::MAX);
        }
    }

    fn n0_check(n0: u64, inv: u64) -> u64 {
        n0.wrapping_mul(inv)
    }

    #[test]
    fn bad_moduli_are_refused() {
        assert!(Modulus::<u64>::new(&[]).is_none());
        assert!(Modulus::<u64>::new(&[0, 0]).is_none());
        assert!(
            Modulus::<u64>::new(
                &[0xff; 16][..15]
                    .iter()
                    .chain(&[2])
                    .copied()
                    .collect::<Vec<_>>()
            )
            .is_none()
        );
        // One limb is too short for the loops.
        assert!(Modulus::<u64>::new(&[0xff; 8]).is_none());
        assert!(Modulus::<u32>::new(&[0xff; 5]).is_some());
        // Leading zero bytes are ignored.
        let mut n = vec![0, 0];
        n.extend([0xff; 16]);
        assert_eq!(Modulus::<u64>::new(&n).unwrap().len(), 16);
    }

    #[test]
    fn byte_conversions_round_trip() {
        let mut rng = TestRng(6);
        for len in [1, 7, 8, 9, 255, 256, 257] {
            let bytes = rng.bytes(len);
            let limbs = from_be_bytes::<u32>(&bytes, len.div_ceil(4));
            let mut back = vec![0; len];
            to_be_bytes(&limbs, &mut back);
            assert_eq!(back, bytes);
            let limbs = from_be_bytes::<u64>(&bytes, len.div_ceil(8) + 1);
            let mut back = vec![0; len];
            to_be_bytes(&limbs, &mut back);
            assert_eq!(back, bytes);
        }
    }
}
