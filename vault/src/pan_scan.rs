//! Finding card numbers in text: the one detector for what a merchant sends in free-text
//! fields ([`contains_card_number`]) and the masking of what a processor answers a forward
//! ([`mask`], [`decode_answer`]). One module, so that what is refused on the way in and what
//! is masked on the way out are found by the same reading of the text.
//!
//! The text is read as a stream of digits. A digit is an ASCII digit, or one written as a
//! percent escape (`%34`), a JSON escape (`\u0034`) or an HTML character reference (`&#52;`,
//! `&#x34;`); every other character is a separator between digits, and escapes of other
//! characters (`%20`, `\u00a0`) are separators too, so that their hex digits are not read as
//! digits. Between two digits the stream remembers how many characters stood and whether a
//! letter was among them.
//!
//! - **Merchant fields** ([`contains_card_number`]): digits joined by separators that are not
//!   letters (any number of spaces, dots, slashes, NBSPs, …) form a group; any window of 13 to
//!   19 consecutive digits of a group that passes the Luhn check is a card number. Every
//!   window, so that `4242 4242 4242 4242 12/30` and `ref 1 4242 …` are found.
//! - **The number that was forwarded** ([`Forwarded::number`]): its digits in order anywhere in
//!   the digit stream, whatever stands between them. A given 13–19 digit sequence does not
//!   turn up by chance, so no bound is needed, and any text that spells it out is a leak.
//!   Base64 and base64url runs are decoded (at each of the four alignments) and read the same
//!   way, and so is UTF-16 (its NUL bytes are separators).
//! - **The CVC that was forwarded**: its digits in order with at most three non-letter
//!   characters between each two (`7 3 9`, `7-3-9`), not touching another digit on either
//!   side: masking every `739` inside amounts and ids would garble the answer for nothing.
//! - **Other card numbers** in the answer, as before: a group of 13 to 19 digits written
//!   together or with single spaces or hyphens that passes Luhn, or such a run inside a
//!   group.
//!
//! Masked digits become `*` in the same notation (`%2A`, `\u002a`, `&#42;`), the last four of
//! a card number kept; a base64 run that spells the number or the CVC becomes `*`s whole.

use std::ops::Range;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use cardseal::card::number::luhn;

const MIN: usize = 13;
const MAX: usize = 19;

/// The shortest base64 run decoded: 12 bytes, a CVC and its JSON key. Shorter runs are words,
/// and decoding every word would find a CVC's three bytes in some by chance.
const MIN_BASE64: usize = 16;

/// What was forwarded, to be found in the answer however it is written.
#[derive(Clone, Copy, Default)]
pub struct Forwarded<'a> {
    /// The card number, digits only.
    pub number: Option<&'a str>,
    /// The CVC, when the body asked for it.
    pub cvc: Option<&'a str>,
}

impl std::fmt::Debug for Forwarded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Forwarded { .. }")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Notation {
    Plain,
    Percent,
    JsonEscape,
    CharRef,
}

impl Notation {
    fn star(self) -> &'static str {
        match self {
            Notation::Plain => "*",
            Notation::Percent => "%2A",
            Notation::JsonEscape => "\\u002a",
            Notation::CharRef => "&#42;",
        }
    }
}

/// One digit of the text.
#[derive(Clone, Debug)]
struct Digit {
    value: u8,
    /// Where it is written in the text (one byte, or its escape).
    at: Range<usize>,
    notation: Notation,
    /// Characters between the previous digit and this one.
    gap: usize,
    /// Whether a letter (or a digit of another script) is among them.
    gap_has_letter: bool,
    /// The single character between the previous digit and this one, when there is one.
    gap_char: Option<char>,
}

fn hex(b: u8) -> Option<u32> {
    char::from(b).to_digit(16)
}

/// The character an escape at `i` stands for, and the escape's length.
fn escape_at(b: &[u8], i: usize) -> Option<(char, usize, Notation)> {
    match b[i] {
        b'%' if b.len() > i + 2 => {
            let v = hex(b[i + 1])? << 4 | hex(b[i + 2])?;
            // A byte of a multi-byte character decodes to no character of its own; it is a
            // separator all the same.
            Some((
                char::from_u32(v).unwrap_or('\u{fffd}'),
                3,
                Notation::Percent,
            ))
        }
        b'\\' if b.len() > i + 5 && matches!(b[i + 1], b'u' | b'U') => {
            let mut v = 0;
            for &h in &b[i + 2..i + 6] {
                v = v << 4 | hex(h)?;
            }
            Some((
                char::from_u32(v).unwrap_or('\u{fffd}'),
                6,
                Notation::JsonEscape,
            ))
        }
        b'&' if b.get(i + 1) == Some(&b'#') => {
            let (radix, start) = match b.get(i + 2) {
                Some(b'x' | b'X') => (16, i + 3),
                _ => (10, i + 2),
            };
            let end = start + b[start..].iter().take(8).position(|&c| c == b';')?;
            let v = u32::from_str_radix(std::str::from_utf8(&b[start..end]).ok()?, radix).ok()?;
            Some((
                char::from_u32(v).unwrap_or('\u{fffd}'),
                end + 1 - i,
                Notation::CharRef,
            ))
        }
        _ => None,
    }
}

/// The digits of `text`, decoded.
fn digits(text: &str) -> Vec<Digit> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut gap, mut letter, mut single) = (0usize, false, None);
    let mut i = 0;
    while i < b.len() {
        let (c, len, notation) = if b[i].is_ascii_digit() {
            (char::from(b[i]), 1, Notation::Plain)
        } else if let Some(e) = escape_at(b, i) {
            e
        } else {
            // `i` is at a character boundary: every step above is over ASCII bytes.
            let c = text[i..].chars().next().unwrap_or('\u{fffd}');
            (c, c.len_utf8(), Notation::Plain)
        };
        if c.is_ascii_digit() {
            out.push(Digit {
                value: c as u8,
                at: i..i + len,
                notation,
                gap,
                gap_has_letter: letter,
                gap_char: if gap == 1 { single } else { None },
            });
            (gap, letter, single) = (0, false, None);
        } else {
            gap += 1;
            letter |= c.is_alphanumeric();
            single = Some(c);
        }
        i += len;
    }
    out
}

fn values(d: &[Digit]) -> Vec<u8> {
    d.iter().map(|d| d.value).collect()
}

/// Splits `d` into groups: a new group starts at each digit `joined` says does not join.
fn groups(d: &[Digit], joined: impl Fn(&Digit) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=d.len() {
        if i == d.len() || !joined(&d[i]) {
            if start < i {
                out.push(start..i);
            }
            start = i;
        }
    }
    out
}

/// Whether `text` holds a card number: 13 to 19 consecutive digits that pass Luhn, with any
/// separators but letters between them, anywhere inside a longer group of digits. For every
/// free-text field a merchant sends: such text is refused where it would be stored or sent in
/// clear, so that a mistake cannot put a number in the database, the event log or a header.
pub fn contains_card_number(text: &str) -> bool {
    let d = digits(text);
    groups(&d, |d| !d.gap_has_letter).into_iter().any(|g| {
        let v = values(&d[g]);
        (MIN..=MAX.min(v.len())).any(|len| v.windows(len).any(luhn))
    })
}

/// Where each occurrence of `needle` starts in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return Vec::new();
    }
    (0..=hay.len() - needle.len())
        .filter(|&i| &hay[i..i + needle.len()] == needle)
        .collect()
}

/// Indices (into `d`) of the digits to hide.
fn to_hide(d: &[Digit], f: Forwarded<'_>) -> Vec<bool> {
    let mut hide = vec![false; d.len()];
    let v = values(d);
    let mut hide_range = |r: Range<usize>, keep: usize| {
        let end = r.end.saturating_sub(keep).max(r.start);
        for h in &mut hide[r.start..end] {
            *h = true;
        }
    };
    if let Some(n) = f.number.map(str::as_bytes).filter(|n| n.len() >= MIN) {
        for at in find_all(&v, n) {
            hide_range(at..at + n.len(), 4);
        }
    }
    if let Some(c) = f.cvc.map(str::as_bytes).filter(|c| !c.is_empty()) {
        for at in find_all(&v, c) {
            let inner_ok = d[at + 1..at + c.len()]
                .iter()
                .all(|x| x.gap <= 3 && !x.gap_has_letter);
            let alone_before = d[at].gap > 0 || at == 0;
            let alone_after = d.get(at + c.len()).is_none_or(|x| x.gap > 0);
            if inner_ok && alone_before && alone_after {
                hide_range(at..at + c.len(), 0);
            }
        }
    }
    // Other card numbers, as every earlier version masked them.
    let spaced = |x: &Digit| x.gap == 0 || matches!(x.gap_char, Some(' ' | '-' | '\u{a0}'));
    for g in groups(d, spaced) {
        let len = g.len();
        if (MIN..=MAX).contains(&len) && luhn(&v[g.clone()]) {
            hide_range(g, 4);
            continue;
        }
        for run in groups(&d[g.clone()], |x| x.gap == 0) {
            let run = run.start + g.start..run.end + g.start;
            if (MIN..=MAX).contains(&run.len()) && luhn(&v[run.clone()]) {
                hide_range(run, 4);
            }
        }
    }
    hide
}

fn base64_engines() -> [GeneralPurpose; 2] {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    [
        GeneralPurpose::new(&base64::alphabet::STANDARD, config),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, config),
    ]
}

/// Whether `bytes` (decoded from base64) spell the number or the CVC.
fn spells(bytes: &[u8], f: Forwarded<'_>) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let d = digits(&text);
    let v = values(&d);
    if f.number
        .is_some_and(|n| n.len() >= MIN && !find_all(&v, n.as_bytes()).is_empty())
    {
        return true;
    }
    f.cvc.is_some_and(|c| {
        let c = c.as_bytes();
        find_all(&v, c).into_iter().any(|at| {
            d[at + 1..at + c.len()]
                .iter()
                .all(|x| x.gap <= 3 && !x.gap_has_letter)
                && (at == 0 || d[at].gap > 0)
                && d.get(at + c.len()).is_none_or(|x| x.gap > 0)
        })
    })
}

/// Base64 (or base64url) runs of `text` that decode to the number or the CVC.
fn base64_leaks(text: &str, f: Forwarded<'_>) -> Vec<Range<usize>> {
    if f.number.is_none() && f.cvc.is_none() {
        return Vec::new();
    }
    let b = text.as_bytes();
    let engines = base64_engines();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let in_run = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_');
        if !in_run(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && in_run(b[i]) {
            i += 1;
        }
        let run = &b[start..i];
        while b.get(i) == Some(&b'=') {
            i += 1;
        }
        if run.len() < MIN_BASE64 {
            continue;
        }
        // The encoded number may start anywhere inside a larger encoded value.
        let found = (0..4).any(|skip| {
            let mut usable = run.len().saturating_sub(skip);
            // One character past a whole quantum encodes no byte.
            if usable % 4 == 1 {
                usable -= 1;
            }
            let chunk = &run[skip.min(run.len())..skip + usable];
            engines
                .iter()
                .filter_map(|e| e.decode(chunk).ok())
                .any(|bytes| spells(&bytes, f))
        });
        if found {
            out.push(start..i);
        }
    }
    out
}

/// `text` with the forwarded number and CVC masked wherever they are spelled out, and every
/// other Luhn-valid card number masked too.
pub fn mask(text: &str, f: Forwarded<'_>) -> String {
    let d = digits(text);
    let hide = to_hide(&d, f);
    let mut spans: Vec<(Range<usize>, String)> = base64_leaks(text, f)
        .into_iter()
        .map(|r| {
            let stars = "*".repeat(r.len());
            (r, stars)
        })
        .collect();
    for (digit, _) in d.iter().zip(&hide).filter(|(_, h)| **h) {
        if !spans.iter().any(|(r, _)| r.contains(&digit.at.start)) {
            spans.push((digit.at.clone(), digit.notation.star().to_owned()));
        }
    }
    spans.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (r, with) in spans {
        out.push_str(&text[at..r.start]);
        out.push_str(&with);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Content types whose bodies are not text.
const BINARY_TYPES: &[&str] = &[
    "application/octet-stream",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/pdf",
    "application/protobuf",
    "application/x-protobuf",
    "application/grpc",
    "application/cbor",
    "application/msgpack",
    "application/x-msgpack",
];

/// A processor's answer body as text that can be searched, or `None` when it cannot be with
/// confidence: a `Content-Encoding` other than `identity`, a binary type, a charset other than
/// UTF-8 and UTF-16, bytes that do not decode, or control characters that text does not hold.
/// Such an answer is not handed back at all: no body is better than a leak.
pub fn decode_answer(
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Option<String> {
    if content_encoding.is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity")) {
        return None;
    }
    let mut params = content_type.unwrap_or_default().split(';');
    let essence = params
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let binary_family = ["image/", "audio/", "video/", "font/", "model/"];
    if BINARY_TYPES.contains(&essence.as_str())
        || binary_family.iter().any(|p| essence.starts_with(p))
    {
        return None;
    }
    let charset = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase());
    let text = match (charset.as_deref(), body) {
        (_, [0xEF, 0xBB, 0xBF, rest @ ..]) if !charset_is_utf16(charset.as_deref()) => {
            String::from_utf8(rest.to_vec()).ok()?
        }
        (None | Some("utf-16"), [0xFF, 0xFE, rest @ ..]) | (Some("utf-16le"), rest) => {
            utf16(rest, u16::from_le_bytes)?
        }
        (None | Some("utf-16"), [0xFE, 0xFF, rest @ ..]) | (Some("utf-16be"), rest) => {
            utf16(rest, u16::from_be_bytes)?
        }
        // UTF-16 without a byte-order mark: the NUL half of an ASCII character says which.
        (None | Some("utf-16"), [a, 0, ..]) if *a != 0 => utf16(body, u16::from_le_bytes)?,
        (None | Some("utf-16"), [0, a, ..]) if *a != 0 => utf16(body, u16::from_be_bytes)?,
        (None | Some("utf-8" | "utf8" | "us-ascii"), _) => String::from_utf8(body.to_vec()).ok()?,
        _ => return None,
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
    {
        return None;
    }
    Some(text)
}

fn charset_is_utf16(charset: Option<&str>) -> bool {
    charset.is_some_and(|c| c.starts_with("utf-16"))
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    use super::*;

    const PAN: &str = "4242424242424242";

    fn fwd(cvc: Option<&'static str>) -> Forwarded<'static> {
        Forwarded {
            number: Some(PAN),
            cvc,
        }
    }

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn utf16be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    /// Every form of the review, masked so that no form of the number is left.
    #[test]
    fn the_forwarded_number_is_masked_in_every_form() {
        let b64 = STANDARD.encode(format!("{{\"pan\":\"{PAN}\"}}"));
        let b64url = URL_SAFE_NO_PAD.encode(format!("xx{PAN}"));
        let b64_utf16 = STANDARD.encode(utf16le(PAN));
        let cases = [
            "card 4242 4242 4242 4242 12/30 declined".to_owned(),
            "ref 1 4242 4242 4242 4242".to_owned(),
            "4242.4242.4242.4242".to_owned(),
            "4242/4242/4242/4242".to_owned(),
            "4242  4242  4242  4242".to_owned(),
            "4242\u{a0}4242\u{a0}4242\u{a0}4242".to_owned(),
            "id=9994242424242424242999".to_owned(),
            r#"{"pan":"\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032"}"#.to_owned(),
            "https://psp.example/r?pan=4242%204242%204242%204242&x=1".to_owned(),
            "%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32".to_owned(),
            "&#52;&#50;&#x34;&#x32;4242 4242 4242".to_owned(),
            format!("token={b64}"),
            format!("t={b64url}."),
            format!("{{\"blob\":\"{b64_utf16}\"}}"),
            "4242 4242 4242 4242 12".to_owned(),
        ];
        for case in cases {
            let out = mask(&case, fwd(None));
            let d = values(&digits(&out));
            assert!(
                find_all(&d, PAN.as_bytes()).is_empty()
                    && !out.contains(&b64)
                    && !out.contains(&b64url)
                    && !out.contains(&b64_utf16),
                "{case} -> {out}"
            );
        }
        assert_eq!(
            mask("card 4242 4242 4242 4242 12/30", fwd(None)),
            "card **** **** **** 4242 12/30"
        );
        assert_eq!(
            mask(
                "p=%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32",
                fwd(None)
            ),
            "p=%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%34%32%34%32"
        );
        assert_eq!(
            mask(&format!("token={b64}!"), fwd(None)),
            format!("token={}!", "*".repeat(b64.len()))
        );
    }

    #[test]
    fn the_cvc_is_masked_where_it_stands_alone() {
        let cvc = Some("739");
        assert_eq!(
            mask(r#"{"cvc":"739","cvv":"7 3 9","c":"7-3-9"}"#, fwd(cvc)),
            r#"{"cvc":"***","cvv":"* * *","c":"*-*-*"}"#
        );
        assert_eq!(
            mask(r#"{"c":"\u0037\u0033\u0039"}"#, fwd(cvc)),
            r#"{"c":"\u002a\u002a\u002a"}"#
        );
        // Inside an amount or an id, or spelled across words, it is left alone.
        assert_eq!(
            mask("amount 17390 id 7391", fwd(cvc)),
            "amount 17390 id 7391"
        );
        assert_eq!(mask("7 apples 3 9", fwd(cvc)), "7 apples 3 9");
        let b64 = STANDARD.encode(r#"{"cvc":"739"}"#);
        assert_eq!(mask(&b64, fwd(cvc)), "*".repeat(b64.len()));
        // Without a forwarded CVC nothing three digits long is touched.
        assert_eq!(mask("cvc 739", fwd(None)), "cvc 739");
    }

    #[test]
    fn other_card_numbers_are_masked_as_before_and_other_digits_kept() {
        let none = Forwarded::default();
        assert_eq!(
            mask(r#"{"pan":"5555555555554444","amount":1234}"#, none),
            r#"{"pan":"************4444","amount":1234}"#
        );
        assert_eq!(
            mask("amex 3782-822463-10005.", none),
            "amex ****-******-*0005."
        );
        assert_eq!(
            mask("ref 4242424242424241 x1234", none),
            "ref 4242424242424241 x1234"
        );
        let stamp = "2026-12-02T12:00:00.123456Z id 1234567890";
        assert_eq!(mask(stamp, none), stamp);
        assert_eq!(mask(stamp, fwd(Some("123"))), stamp);
    }

    #[test]
    fn merchant_fields_with_a_card_number_are_found() {
        for text in [
            "4000056655665556",
            "4000056655665556 12/30",
            "4000056655665556 1",
            "1 4000056655665556",
            "4000.0566.5566.5556",
            "4000/0566/5566/5556",
            "4000  0566 - 5566\u{a0}5556",
            "5555555555554444 03/31",
            "card 4242 4242 4242 4242 please",
            "3782-822463-10005",
            "999400005665566555699",
            "%34000056655665556",
            "x 4000-0566-5566-5556x",
        ] {
            assert!(contains_card_number(text), "{text}");
        }
        for text in [
            "424242424242",
            "cus_1234567890ab",
            "membership",
            "order 2024-11-23",
            "order 2024-11-23 qty 5",
            "+1 555 0100",
            "4000a0566b5566c5556",
            "",
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn answers_that_cannot_be_searched_are_refused() {
        let json = Some("application/json");
        assert_eq!(decode_answer(b"{}", json, None).as_deref(), Some("{}"));
        assert_eq!(
            decode_answer(b"{}", json, Some("identity")).as_deref(),
            Some("{}")
        );
        assert_eq!(decode_answer(b"{}", json, Some("gzip")), None);
        assert_eq!(
            decode_answer(b"{}", Some("application/octet-stream"), None),
            None
        );
        assert_eq!(decode_answer(b"{}", Some("image/png"), None), None);
        assert_eq!(
            decode_answer(b"{}", Some("text/plain; charset=iso-8859-1"), None),
            None
        );
        assert_eq!(decode_answer(b"\x1f\x8b\x08\x00", None, None), None);
        assert_eq!(
            decode_answer(b"ok\x00\x01\x02\x03", Some("text/plain"), None),
            None
        );
        assert_eq!(decode_answer(&[0xC3, 0x28], json, None), None);
        let le = utf16le(&format!("pan {PAN}"));
        let be = utf16be(&format!("pan {PAN}"));
        let want = Some(format!("pan {PAN}"));
        assert_eq!(
            decode_answer(&le, Some("text/plain; charset=UTF-16LE"), None),
            want
        );
        assert_eq!(
            decode_answer(&be, Some("text/plain; charset=utf-16be"), None),
            want
        );
        assert_eq!(decode_answer(&le, None, None), want);
        assert_eq!(
            decode_answer(&be, Some("text/plain; charset=\"utf-16\""), None),
            want
        );
        let mut bom = vec![0xFF, 0xFE];
        bom.extend(&le);
        assert_eq!(decode_answer(&bom, Some("application/json"), None), want);
        assert_eq!(
            decode_answer(&le[1..], Some("text/plain; charset=utf-16le"), None),
            None
        );
    }
}
