//! The vault client's retry policy, pure so that it tests natively: how long to wait before
//! the next attempt.

/// The first backoff, doubled per attempt.
const BACKOFF_BASE_MS: f64 = 250.0;
/// The longest backoff.
const BACKOFF_CAP_MS: f64 = 4_000.0;

/// The wait before attempt `attempt + 1` (the first retry is attempt 1): exponential backoff
/// with full jitter between half and one and a half times, from one random byte, and never
/// shorter than the vault's `Retry-After`.
pub fn wait_ms(attempt: u32, jitter: u8, retry_after_ms: Option<f64>) -> f64 {
    let backoff = (BACKOFF_BASE_MS * f64::from(1u32 << attempt.min(8))).min(BACKOFF_CAP_MS)
        * (0.5 + f64::from(jitter) / 255.0);
    backoff.max(retry_after_ms.unwrap_or(0.0))
}

/// A `Retry-After` of seconds, in milliseconds; `None` for an HTTP-date or anything else.
///
/// It reads what `str::parse::<f64>` reads (fractions, exponents, `inf` too; the test below
/// holds them to it), without core's float parser and its 10 KB of tables. A negative value or
/// NaN is `None`: the wait is only ever made longer than the backoff, never shorter.
pub fn retry_after_ms(header: &str) -> Option<f64> {
    let s = header.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity") {
        return Some(f64::INFINITY);
    }
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    // Digits as an integer times a power of ten, milliseconds included.
    let (mut digits, mut scale) = (0u64, 3i32);
    for (i, b) in whole.bytes().chain(fraction.bytes()).enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        if digits < 1 << 60 {
            digits = digits * 10 + u64::from(b - b'0');
            scale -= i32::from(i >= whole.len());
        } else {
            scale += i32::from(i < whole.len());
        }
    }
    if let Some(e) = exponent {
        let (negative, e) = match e.strip_prefix('-') {
            Some(e) => (true, e),
            None => (false, e.strip_prefix('+').unwrap_or(e)),
        };
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Saturate: 10^±10000 is already infinite or zero.
        let e = e
            .bytes()
            .fold(0i32, |n, b| (n * 10 + i32::from(b - b'0')).min(10_000));
        scale += if negative { -e } else { e };
    }
    if digits == 0 {
        return Some(0.0);
    }
    Some(digits as f64 * 10f64.powi(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `str::parse::<f64>`, in milliseconds. A negative or NaN wait never matters (the backoff
    /// is always longer), so those count as `None`.
    fn with_f64_parse(header: &str) -> Option<f64> {
        let ms = header.trim().parse::<f64>().ok()? * 1000.0;
        (ms > 0.0).then_some(ms)
    }

    #[test]
    fn retry_after_reads_what_the_f64_parse_reads() {
        let inputs = [
            "0",
            "1",
            " 2 ",
            "120",
            "+3",
            "1.5",
            "0.25",
            ".5",
            "5.",
            "1e2",
            "1E+2",
            "15e-1",
            "2.5e-3",
            "inf",
            "+Infinity",
            "INF",
            "99999999999999999999",
            "1e400",
            "1e-400",
            "0e99999",
            "00000000000000000000000000001",
            "1.000000000000000000000001",
            "-1",
            "-inf",
            "nan",
            "NaN",
            "",
            " ",
            ".",
            "e5",
            "1e",
            "1e+",
            "1.5.3",
            "1e5e3",
            "0x10",
            "1_000",
            "٣",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "infinit",
            "infinityy",
        ];
        for input in inputs {
            let new = retry_after_ms(input).filter(|ms| *ms > 0.0);
            let old = with_f64_parse(input);
            match (new, old) {
                (Some(a), Some(b)) => assert!(
                    a == b || (a - b).abs() <= b * 1e-12,
                    "{input:?}: {a} != {b}"
                ),
                (a, b) => assert_eq!(a, b, "{input:?}"),
            }
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_and_yields_to_retry_after() {
        assert_eq!(wait_ms(1, 0, None), 250.0);
        assert_eq!(wait_ms(1, 255, None), 750.0);
        assert_eq!(wait_ms(2, 0, None), 500.0);
        assert_eq!(wait_ms(9, 255, None), 6_000.0);
        assert_eq!(wait_ms(1, 0, Some(2_000.0)), 2_000.0);
        assert_eq!(wait_ms(1, 255, Some(10.0)), 750.0);
    }
}
