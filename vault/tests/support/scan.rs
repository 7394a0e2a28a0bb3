//! Scans of raw bytes (database files, logs, answers) for card data in clear: the digit runs a
//! number or a CVC would be in.
#![allow(dead_code)]

/// Every maximal run of ASCII digits of at least 3 in `hay`.
pub fn digit_runs(hay: &[u8]) -> Vec<&[u8]> {
    hay.split(|b| !b.is_ascii_digit())
        .filter(|r| r.len() >= 3)
        .collect()
}

/// The digit runs with no letter on either side: a CVC leaked into text stands alone, while
/// random ids hold digit runs by chance.
pub fn isolated_digit_runs(hay: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < hay.len() {
        if hay[i].is_ascii_digit() {
            let start = i;
            while i < hay.len() && hay[i].is_ascii_digit() {
                i += 1;
            }
            let before = start.checked_sub(1).map(|j| hay[j]);
            if !before.is_some_and(|b| b.is_ascii_alphabetic())
                && !hay.get(i).is_some_and(u8::is_ascii_alphabetic)
            {
                out.push(&hay[start..i]);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The digits that follow a `cvc` member or key (`"cvc":"123"`, `cvc=123`, `cvc%5D=123`).
pub fn after_cvc(hay: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for i in 0..hay.len().saturating_sub(3) {
        if hay[i..].starts_with(b"cvc") {
            let rest = &hay[i + 3..];
            let rest = rest.strip_prefix(b"%5D").unwrap_or(rest);
            let skip = rest
                .iter()
                .take(6)
                .take_while(|b| matches!(b, b'"' | b':' | b'=' | b' ' | b'\\'))
                .count();
            let digits = rest[skip..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            out.push(&rest[skip..skip + digits]);
        }
    }
    out
}
