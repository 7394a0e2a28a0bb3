//! The RSA public-key operation `m^e mod n`, with Montgomery multiplication.
//!
//! Sealing spends most of its time here, so this is the fast path. The Montgomery constants
//! are computed once per [`VaultKey`](super::VaultKey). Numbers are held in limbs of 28 bits
//! (26 for moduli over 3556 bits), a few bits short of 32, so that a whole column of 32×32→64
//! products fits in one `u64`: each product is two loads, a multiply and an add, with no
//! carry to propagate until the column ends (product scanning, as in the FIPS method of Koç,
//! Acar and Kaliski, "Analyzing and Comparing Montgomery Multiplication Algorithms", 1996). In
//! wasm, where `i64.mul` is native but 64×64→128 is a library call, this measured faster than
//! word-by-word CIOS on 32- or 64-bit limbs. Squarings, 16 of the 18 multiplications of
//! `m^65537`, compute each cross product once and double the column.
//!
//! No branch or memory access depends on the message, only on the public modulus and
//! exponent: the message is the OAEP block, which hides the content key.

use zeroize::Zeroizing;

/// An odd modulus with its Montgomery constants for `R = 2^(w·s)`.
#[derive(Clone)]
pub(crate) struct Modulus {
    /// `n` in `s` limbs of `w` bits, little-endian.
    n: Vec<u32>,
    /// The same limbs in reverse order, so that every column sum is a dot product of two
    /// slices read forwards.
    n_rev: Vec<u32>,
    /// Bits per limb.
    w: u32,
    /// `-n⁻¹ mod 2^w`.
    n0_inv: u32,
    /// `R² mod n`.
    rr: Vec<u32>,
    /// Bytes of `n`.
    len: usize,
}

impl Modulus {
    /// Precomputes the constants for the big-endian modulus `n`, which must be odd and longer
    /// than one limb. Returns `None` otherwise.
    pub(crate) fn new(n_be: &[u8]) -> Option<Self> {
        let first = n_be.iter().position(|b| *b != 0)?;
        let n_be = &n_be[first..];
        if n_be.last().is_none_or(|b| b & 1 == 0) {
            return None;
        }
        let bits = (n_be.len() - 1) * 8 + (8 - n_be[0].leading_zeros() as usize);
        // A column sums up to 2s products below 2^(2w), plus a carry below 2^(64-w): 28-bit
        // limbs keep that under 2^64 for s < 127 (keys up to 3556 bits), 26-bit ones far beyond
        // any key size accepted.
        let w: u32 = if bits.div_ceil(28) < 127 { 28 } else { 26 };
        let s = bits.div_ceil(w as usize);
        if s < 2 {
            return None;
        }
        let n = from_be_bytes(n_be, w, s);

        let mut inv = n[0];
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        let mask = (1u32 << w) - 1;
        let n0_inv = inv.wrapping_neg() & mask;

        let n_rev = n.iter().rev().copied().collect();
        let mut modulus = Self {
            n,
            n_rev,
            w,
            n0_inv,
            rr: Vec::new(),
            len: n_be.len(),
        };
        modulus.rr = modulus.compute_rr(bits);
        Some(modulus)
    }

    /// The size of the modulus in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> u64 {
        (1u64 << self.w) - 1
    }

    /// `R² mod n`, as in the word-sized version: `R mod n` by doubling, then `2^(w·s)` in
    /// Montgomery form by square-and-multiply. The key is public, so this may branch.
    fn compute_rr(&self, bits: usize) -> Vec<u32> {
        let s = self.n.len();
        let w = self.w as usize;
        let mut r = vec![0u32; s];
        r[(bits - 1) / w] = 1 << ((bits - 1) % w);
        for _ in bits - 1..w * s {
            self.double_mod(&mut r);
        }
        let mut two = r.clone();
        self.double_mod(&mut two);
        let exponent = w * s;
        let mut acc = r;
        let mut tmp = vec![0u32; s];
        let mut q = vec![0u32; 2 * s];
        for i in (0..usize::BITS - exponent.leading_zeros()).rev() {
            self.mont_sqr(&acc, &mut tmp, &mut q);
            std::mem::swap(&mut acc, &mut tmp);
            if exponent >> i & 1 == 1 {
                self.mont_mul(&acc, &two, &mut tmp, &mut q);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        acc
    }

    /// `x = 2x mod n`, for `x < n`.
    fn double_mod(&self, x: &mut [u32]) {
        let mask = self.mask();
        let mut carry = 0u64;
        for limb in x.iter_mut() {
            let v = (u64::from(*limb) << 1) | carry;
            *limb = (v & mask) as u32;
            carry = v >> self.w;
        }
        self.reduce_once(x, carry);
    }

    /// `x -= n` if `(top, x) ≥ n`, for a value below `2n`; by mask, not by branch.
    fn reduce_once(&self, x: &mut [u32], top: u64) {
        let s = self.n.len();
        let (n, x) = (&self.n[..s], &mut x[..s]);
        let mask = self.mask();
        // Subtract into a signed running value; the final sign says whether x < n.
        let mut borrow = 0u64;
        for (&xj, &nj) in x.iter().zip(n) {
            let d = u64::from(xj)
                .wrapping_sub(u64::from(nj))
                .wrapping_sub(borrow);
            borrow = d >> 63;
        }
        let d = top.wrapping_sub(borrow);
        // keep = all ones when the subtraction went negative (x < n).
        let keep = (d >> 63).wrapping_neg();
        let mut borrow = 0u64;
        for (xj, &nj) in x.iter_mut().zip(n) {
            let d = u64::from(*xj)
                .wrapping_sub(u64::from(nj))
                .wrapping_sub(borrow);
            borrow = d >> 63;
            let v = (u64::from(*xj) & keep) | (d & mask & !keep);
            *xj = v as u32;
        }
    }

    /// `out = a · b · R⁻¹ mod n`, fully reduced, for `a, b < n`; `scratch` holds `2s` limbs.
    #[inline]
    fn mont_mul(&self, a: &[u32], b: &[u32], out: &mut [u32], scratch: &mut [u32]) {
        let s = self.n.len();
        let (n0, n_rev, a, b, out) = (self.n[0], &self.n_rev[..s], &a[..s], &b[..s], &mut out[..s]);
        let (q, b_rev) = scratch[..2 * s].split_at_mut(s);
        for (r, &x) in b_rev.iter_mut().zip(b.iter().rev()) {
            *r = x;
        }
        let (w, mask) = (self.w, self.mask());
        let mut acc = 0u64;
        // Column i < s sums a_j·b_(i-j) and q_j·n_(i-j) for j < i, where b_(i-j) is
        // b_rev[s-1-i+j]; then a_i·b_0, and q_i is chosen to clear the low limb.
        for i in 0..s {
            let k = s - 1 - i;
            acc += dot2(&a[..i], &b_rev[k..s - 1], &q[..i], &n_rev[k..s - 1]);
            acc += u64::from(a[i]) * u64::from(b[0]);
            let qi = (acc as u32).wrapping_mul(self.n0_inv) & (mask as u32);
            q[i] = qi;
            acc += u64::from(qi) * u64::from(n0);
            acc >>= w;
        }
        for i in s..2 * s - 1 {
            let lo = i + 1 - s;
            let end = 2 * s - 1 - i;
            acc += dot2(&a[lo..], &b_rev[..end], &q[lo..], &n_rev[..end]);
            out[i - s] = (acc & mask) as u32;
            acc >>= w;
        }
        out[s - 1] = (acc & mask) as u32;
        self.reduce_once(out, acc >> w);
    }

    /// `out = a² · R⁻¹ mod n`, fully reduced, for `a < n`; `scratch` holds `2s` limbs.
    #[inline]
    fn mont_sqr(&self, a: &[u32], out: &mut [u32], scratch: &mut [u32]) {
        let s = self.n.len();
        let (n0, n_rev, a, out) = (self.n[0], &self.n_rev[..s], &a[..s], &mut out[..s]);
        let (q, a_rev) = scratch[..2 * s].split_at_mut(s);
        for (r, &x) in a_rev.iter_mut().zip(a.iter().rev()) {
            *r = x;
        }
        let (w, mask) = (self.w, self.mask());
        let mut acc = 0u64;
        for i in 0..2 * s - 1 {
            // Column i: pairs j < i-j, doubled, plus the square a_(i/2)². a_(i-j) is
            // a_rev[s-1-i+j].
            let lo = (i + 1).saturating_sub(s);
            let half = i.div_ceil(2);
            let base = s - 1 + lo - i; // index in a_rev of a_(i-lo)
            acc += dot(&a[lo..half], &a_rev[base..base + half - lo]) << 1;
            if i % 2 == 0 {
                let d = u64::from(a[i / 2]);
                acc += d * d;
            }
            if i < s {
                let k = s - 1 - i;
                acc += dot(&q[..i], &n_rev[k..s - 1]);
                let qi = (acc as u32).wrapping_mul(self.n0_inv) & (mask as u32);
                q[i] = qi;
                acc += u64::from(qi) * u64::from(n0);
            } else {
                acc += dot(&q[lo..], &n_rev[..2 * s - 1 - i]);
                out[i - s] = (acc & mask) as u32;
            }
            acc >>= w;
        }
        out[s - 1] = (acc & mask) as u32;
        self.reduce_once(out, acc >> w);
    }

    /// `out = m^e mod n` as `len()` big-endian bytes, for a big-endian `m < n` of `len()`
    /// bytes and an odd public exponent `e ≥ 3`.
    pub(crate) fn pow_public(&self, m: &[u8], e: u32, out: &mut [u8]) {
        let s = self.n.len();
        let base = Zeroizing::new(from_be_bytes(m, self.w, s));
        let mut base_mont = Zeroizing::new(vec![0u32; s]);
        let mut acc = Zeroizing::new(vec![0u32; s]);
        let mut tmp = Zeroizing::new(vec![0u32; s]);
        let mut q = Zeroizing::new(vec![0u32; 2 * s]);

        self.mont_mul(&base, &self.rr, &mut base_mont, &mut q);
        acc.copy_from_slice(&base_mont);
        let top = u32::BITS - 1 - e.leading_zeros();
        for i in (1..top).rev() {
            self.mont_sqr(&acc, &mut tmp, &mut q);
            std::mem::swap(&mut *acc, &mut *tmp);
            if e >> i & 1 == 1 {
                self.mont_mul(&acc, &base_mont, &mut tmp, &mut q);
                std::mem::swap(&mut *acc, &mut *tmp);
            }
        }
        self.mont_sqr(&acc, &mut tmp, &mut q);
        self.mont_mul(&tmp, &base, &mut acc, &mut q);
        to_be_bytes(&acc, self.w, out);
    }
}

/// `Σ x_j·y_j` over two slices of equal length, four products per step.
#[inline(always)]
fn dot(x: &[u32], y: &[u32]) -> u64 {
    let mut sum = 0u64;
    let (xs, ys) = (x.chunks_exact(4), y.chunks_exact(4));
    let (xr, yr) = (xs.remainder(), ys.remainder());
    for (x, y) in xs.zip(ys) {
        sum += u64::from(x[0]) * u64::from(y[0])
            + u64::from(x[1]) * u64::from(y[1])
            + u64::from(x[2]) * u64::from(y[2])
            + u64::from(x[3]) * u64::from(y[3]);
    }
    for (&x, &y) in xr.iter().zip(yr) {
        sum += u64::from(x) * u64::from(y);
    }
    sum
}

/// `Σ a_j·b_j + c_j·d_j` over four slices of equal length, two pairs per step.
#[inline(always)]
fn dot2(a: &[u32], b: &[u32], c: &[u32], d: &[u32]) -> u64 {
    let mut sum = 0u64;
    let (ac, bc, cc, dc) = (
        a.chunks_exact(2),
        b.chunks_exact(2),
        c.chunks_exact(2),
        d.chunks_exact(2),
    );
    let (ar, br, cr, dr) = (
        ac.remainder(),
        bc.remainder(),
        cc.remainder(),
        dc.remainder(),
    );
    for ((a, b), (c, d)) in ac.zip(bc).zip(cc.zip(dc)) {
        sum += u64::from(a[0]) * u64::from(b[0])
            + u64::from(a[1]) * u64::from(b[1])
            + u64::from(c[0]) * u64::from(d[0])
            + u64::from(c[1]) * u64::from(d[1]);
    }
    for ((&a, &b), (&c, &d)) in ar.iter().zip(br).zip(cr.iter().zip(dr)) {
        sum += u64::from(a) * u64::from(b) + u64::from(c) * u64::from(d);
    }
    sum
}

/// Big-endian bytes into `s` little-endian limbs of `w` bits (the number must fit).
fn from_be_bytes(bytes: &[u8], w: u32, s: usize) -> Vec<u32> {
    let mut limbs = vec![0u32; s];
    let (mut bits, mut have, mut i) = (0u64, 0u32, 0);
    for &byte in bytes.iter().rev() {
        bits |= u64::from(byte) << have;
        have += 8;
        while have >= w && i < s {
            limbs[i] = (bits & ((1 << w) - 1)) as u32;
            bits >>= w;
            have -= w;
            i += 1;
        }
    }
    if i < s {
        limbs[i] = bits as u32;
    }
    limbs
}

/// Little-endian limbs of `w` bits into `out.len()` big-endian bytes (the number must fit).
fn to_be_bytes(limbs: &[u32], w: u32, out: &mut [u8]) {
    let (mut bits, mut have) = (0u64, 0u32);
    let mut limbs = limbs.iter();
    for byte in out.iter_mut().rev() {
        if have < 8 {
            if let Some(&limb) = limbs.next() {
                bits |= u64::from(limb) << have;
                have += w;
            }
        }
        *byte = bits as u8;
        bits >>= 8;
        have = have.saturating_sub(8);
    }
}

impl std::fmt::Debug for Modulus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modulus")
            .field("bytes", &self.len)
            .field("limb_bits", &self.w)
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

    fn fast_pow(n: &[u8], e: u32, m: &[u8]) -> Vec<u8> {
        let modulus = Modulus::new(n).unwrap();
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

    fn check_sizes(sizes: &[usize], moduli_per_size: usize, seed: u64) {
        let mut rng = TestRng(seed);
        for &bits in sizes {
            for _ in 0..moduli_per_size {
                let n = rng.modulus(bits);
                let e = rng.exponent();
                for m in messages(&mut rng, &n) {
                    assert_eq!(
                        fast_pow(&n, e, &m),
                        reference_pow(&n, e, &m),
                        "{bits} bits, e = {e}, seed {seed}"
                    );
                }
            }
        }
    }

    #[test]
    fn pow_matches_the_rsa_crate() {
        // Around limb boundaries and the usual key sizes, with 28-bit limbs…
        check_sizes(
            &[57, 64, 127, 2047, 2048, 2049, 2056, 2072, 2073, 3072],
            2,
            1,
        );
        // …and across the switch to 26-bit limbs above 3556 bits.
        check_sizes(&[3556, 3557, 4096], 1, 2);
    }

    #[test]
    fn pow_matches_the_rsa_crate_at_8192_bits() {
        check_sizes(&[8192], 1, 3);
    }

    /// The exhaustive run: `cargo test --release --lib -- --ignored pow_matches_exhaustively`.
    #[test]
    #[ignore = "slow; run in release"]
    fn pow_matches_exhaustively() {
        let sizes: Vec<usize> = (2040..2130)
            .chain(3550..3565)
            .chain([3072, 4096, 6144, 8192])
            .collect();
        for seed in 0..25 {
            check_sizes(&sizes, 4, 100 + seed);
        }
    }

    #[test]
    fn constants_are_right() {
        let mut rng = TestRng(5);
        for bits in [2048, 3072, 4096, 8192] {
            let n = rng.modulus(bits);
            let modulus = Modulus::new(&n).unwrap();
            let w = modulus.w;
            assert_eq!(w, if bits <= 3556 { 28 } else { 26 });
            let mask = (1u32 << w) - 1;
            assert!(modulus.n.iter().all(|l| *l <= mask));
            // n·n0_inv ≡ -1 (mod 2^w).
            assert_eq!(modulus.n[0].wrapping_mul(modulus.n0_inv) & mask, mask);
            assert_eq!(
                modulus.n_rev,
                modulus.n.iter().rev().copied().collect::<Vec<_>>()
            );
            // R² mod n is checked by every pow test: each enters Montgomery form with it.
        }
    }

    #[test]
    fn bad_moduli_are_refused() {
        assert!(Modulus::new(&[]).is_none());
        assert!(Modulus::new(&[0, 0]).is_none());
        let mut even = vec![0xff; 16];
        even[15] = 2;
        assert!(Modulus::new(&even).is_none());
        // One limb is too short for the loops.
        assert!(Modulus::new(&[0x0f, 0xff, 0xff, 0xff]).is_none());
        assert!(Modulus::new(&[0xff; 5]).is_some());
        // Leading zero bytes are ignored.
        let mut n = vec![0, 0];
        n.extend([0xff; 16]);
        assert_eq!(Modulus::new(&n).unwrap().len(), 16);
    }

    #[test]
    fn byte_conversions_round_trip() {
        let mut rng = TestRng(6);
        for w in [26, 28] {
            for len in [1, 3, 4, 7, 8, 9, 255, 256, 257] {
                let bytes = rng.bytes(len);
                let s = (len * 8).div_ceil(w as usize);
                let limbs = from_be_bytes(&bytes, w, s);
                assert!(limbs.iter().all(|l| *l < 1 << w));
                let mut back = vec![0; len];
                to_be_bytes(&limbs, w, &mut back);
                assert_eq!(back, bytes);
                // Room to spare on either side.
                let limbs = from_be_bytes(&bytes, w, s + 2);
                let mut back = vec![0; len + 3];
                to_be_bytes(&limbs, w, &mut back);
                assert_eq!(&back[3..], &bytes[..]);
                assert_eq!(&back[..3], &[0, 0, 0]);
            }
        }
    }
}
