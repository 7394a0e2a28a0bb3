//! The little JSON the library reads and writes itself: a reader for vault keys (a JWK or a
//! JWKS) and a string writer for the sealed card's header and payload.
//!
//! By hand rather than with `serde_json`, which cost the wasm about 18 KB before wasm-opt for
//! these few uses. Both follow `serde_json` (RFC 8259, strictly) and the native tests check
//! them against it: the same texts are accepted, with the same values, and strings are escaped
//! byte for byte as `serde_json` escapes them. The one deliberate difference: numbers are
//! never converted to floats, so a number too large for an `f64` (`1e400`), which
//! `serde_json` refuses, is read here as [`Value::Number`] like any other non-integer.

/// How deep arrays and objects may nest: `serde_json`'s limit (its 128th level is an error).
pub(crate) const MAX_DEPTH: usize = 127;

/// A JSON value, with numbers kept only as far as the readers need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    /// An integer literal (no fraction or exponent) that fits an `i64`, `-0` excepted.
    Int(i64),
    /// Any other number.
    Number,
    String(String),
    Array(Vec<Value>),
    /// Members in document order; a repeated name appears twice.
    Object(Vec<(String, Value)>),
}

/// Parses one JSON text: a value with optional whitespace around it. `None` for anything else.
pub(crate) fn parse(text: &str) -> Option<Value> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let value = p.value(0)?;
    p.whitespace();
    (p.at == p.bytes.len()).then_some(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        self.at += usize::from(found);
        found
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Option<Value> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end) == Some(word)).then(|| {
            self.at = end;
            value
        })
    }

    /// A value after optional whitespace; `depth` is how many arrays and objects enclose it.
    fn value(&mut self, depth: usize) -> Option<Value> {
        self.whitespace();
        match self.peek()? {
            b'{' | b'[' if depth >= MAX_DEPTH => None,
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                self.whitespace();
                if self.eat(b'}') {
                    return Some(Value::Object(members));
                }
                loop {
                    self.whitespace();
                    let name = self.string()?;
                    self.whitespace();
                    if !self.eat(b':') {
                        return None;
                    }
                    members.push((name, self.value(depth + 1)?));
                    self.whitespace();
                    if !self.eat(b',') {
                        return self.eat(b'}').then_some(Value::Object(members));
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.whitespace();
                if self.eat(b']') {
                    return Some(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.whitespace();
                    if !self.eat(b',') {
                        return self.eat(b']').then_some(Value::Array(items));
                    }
                }
            }
            b'"' => self.string().map(Value::String),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<Value> {
        let negative = self.eat(b'-');
        let start = self.at;
        let int_digits = self.digits();
        if int_digits == 0 || (int_digits > 1 && self.bytes[start] == b'0') {
            return None;
        }
        let int_end = self.at;
        let mut integer = true;
        if self.eat(b'.') {
            integer = false;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        if !integer {
            return Some(Value::Number);
        }
        // As serde_json: a magnitude up to u64::MAX is an integer; `-0` and negatives below
        // i64::MIN are floats; positives above i64::MAX do not fit an i64.
        let magnitude = self.bytes[start..int_end].iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        let int = match (negative, magnitude) {
            (_, None) | (true, Some(0)) => None,
            (false, Some(m)) => i64::try_from(m).ok(),
            (true, Some(m)) => 0i64.checked_sub_unsigned(m),
        };
        Some(int.map_or(Value::Number, Value::Int))
    }

    /// A string literal, its escapes decoded. Control characters must be escaped, and a
    /// `\u` surrogate must be half of a pair.
    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = String::new();
        let mut run = self.at;
        loop {
            match self.peek()? {
                // `run` and `at` are both on ASCII bytes, so `get` never fails; unlike indexing, it
                // keeps core's formatted slice panic (and its char tables) out of the wasm.
                b'"' => {
                    out.push_str(self.text.get(run..self.at)?);
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(self.text.get(run..self.at)?);
                    self.at += 1;
                    let c = match self.peek()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            self.at += 1;
                            let unit = self.hex4()?;
                            let c = match unit {
                                0xD800..=0xDBFF => {
                                    if !(self.eat(b'\\') && self.eat(b'u')) {
                                        return None;
                                    }
                                    let low = self.hex4()?;
                                    if !(0xDC00..=0xDFFF).contains(&low) {
                                        return None;
                                    }
                                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                                }
                                0xDC00..=0xDFFF => return None,
                                _ => unit,
                            };
                            out.push(char::from_u32(c)?);
                            run = self.at;
                            continue;
                        }
                        _ => return None,
                    };
                    out.push(c);
                    self.at += 1;
                    run = self.at;
                }
                0..0x20 => return None,
                _ => self.at += 1,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        let mut n = 0;
        for d in digits {
            n = n * 16 + char::from(*d).to_digit(16)?;
        }
        self.at += 4;
        Some(n)
    }
}

/// Appends `s` as a JSON string literal, escaped as `serde_json` escapes it: `"` and `\`, the
/// short escapes `\b \f \n \r \t`, other control characters as `\u00xx`, everything else as is.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..0x20 => 0,
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[run..i]);
        run = i + 1;
        if short == 0 {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.push(b'\\');
            out.push(short);
        }
    }
    out.extend_from_slice(&s.as_bytes()[run..]);
    out.push(b'"');
}

/// Appends an integer in decimal, as JSON writes it.
pub(crate) fn write_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut m = n.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes a JSON object member by member, in the order given.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
impl<'a> Object<'a> {
    /// Opens an object at the end of `out`.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Starts a member: its name and the colon; the caller writes the value.
    pub(crate) fn member(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_str(self.out, name);
        self.out.push(b':');
        self.out
    }

    /// A string member, `null` for `None`.
    pub(crate) fn str(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        let out = self.member(name);
        match value {
            Some(v) => write_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
        self
    }

    /// An integer member.
    pub(crate) fn int(&mut self, name: &str, value: i64) -> &mut Self {
        write_int(self.member(name), value);
        self
    }

    /// A boolean member.
    pub(crate) fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.member(name).extend_from_slice(text);
        self
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON array, each item written by `write`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// A JSON array of strings.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn write_str_array<'s>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'s str>) {
    write_array(out, items, write_str);
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// serde_json's reading of `text`, in this module's terms; `None` when it refuses it.
    fn serde(text: &str) -> Option<Value> {
        // serde_json::Value's map would sort and merge members; read objects in order instead.
        struct Ordered(Value);
        impl<'de> serde::Deserialize<'de> for Ordered {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Ordered;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("JSON")
                    }
                    fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
                        Ok(Ordered(Value::Bool(b)))
                    }
                    fn visit_i64<E>(self, n: i64) -> Result<Ordered, E> {
                        Ok(Ordered(Value::Int(n)))
                    }
                    fn visit_u64<E>(self, n: u64) -> Result<Ordered, E> {
                        Ok(Ordered(i64::try_from(n).map_or(Value::Number, Value::Int)))
                    }
                    fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                        Ok(Ordered(Value::Number))
                    }
                    fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
                        Ok(Ordered(Value::String(s.to_owned())))
                    }
                    fn visit_unit<E>(self) -> Result<Ordered, E> {
                        Ok(Ordered(Value::Null))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Ordered, A::Error> {
                        let mut items = Vec::new();
                        while let Some(Ordered(v)) = seq.next_element()? {
                            items.push(v);
                        }
                        Ok(Ordered(Value::Array(items)))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Ordered, A::Error> {
                        let mut members = Vec::new();
                        while let Some((k, Ordered(v))) = map.next_entry::<String, Ordered>()? {
                            members.push((k, v));
                        }
                        Ok(Ordered(Value::Object(members)))
                    }
                }
                d.deserialize_any(V)
            }
        }
        serde_json::from_str::<Ordered>(text).ok().map(|o| o.0)
    }

    fn same(text: &str) {
        assert_eq!(parse(text), serde(text), "{text:?}");
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let cases = [
            "",
            " ",
            "null",
            " true ",
            "false",
            "nul",
            "truex",
            "0",
            "-0",
            "01",
            "-",
            "1.",
            ".5",
            "1.5",
            "-1.5e3",
            "1e",
            "1e+",
            "1E-2",
            "12345678901234567890",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "\"\"",
            "\"a\\\"b\"",
            "\"\\u00e9\"",
            "\"\\uD83D\\uDE00\"",
            "\"\\ud83d\\ude00\"",
            "\"\\uD83D\"",
            "\"\\uDE00\"",
            "\"\\uD83Dx\"",
            "\"\\uD83D\\u0041\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "\"tab\there\"",
            "\"nl\nhere\"",
            "\"\u{7f}\"",
            "\"é😀\"",
            "\"\\/\\b\\f\\n\\r\\t\"",
            "[]",
            "[ ]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[1,[2,[3]]]",
            "{}",
            "{ }",
            "{\"a\":1}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":1,\"a\":2}",
            "{\"k\":[{\"n\":\"x\"}]}",
            "{\"a\":1}x",
            "{\"a\":1} ",
            "\u{feff}{}",
            "[1]\n",
            "{\"a\":{\"b\":null}}",
            "[true,false,null,\"x\",-1,2.5]",
            "\"\\u0000\"",
            "\"unterminated",
        ];
        for text in cases {
            same(text);
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [1, 100, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 500] {
            same(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
            same(&format!(
                "{}1{}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            ));
        }
        assert!(
            parse(&format!(
                "{}{}",
                "[".repeat(MAX_DEPTH),
                "]".repeat(MAX_DEPTH)
            ))
            .is_some()
        );
        assert!(
            parse(&format!(
                "{}{}",
                "[".repeat(MAX_DEPTH + 1),
                "]".repeat(MAX_DEPTH + 1)
            ))
            .is_none()
        );
    }

    #[test]
    fn numbers_too_large_for_a_float_are_the_one_difference() {
        assert_eq!(parse("1e400"), Some(Value::Number));
        assert_eq!(serde("1e400"), None);
    }

    fn written(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_as_serde_json_escapes() {
        let all_ascii: String = (0u8..128).map(char::from).collect();
        for s in [
            "",
            "plain",
            "a\"b\\c",
            &all_ascii,
            "é😀\u{2028}",
            "\u{0}\u{1f}\u{7f}",
        ] {
            assert_eq!(written(s), serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn objects_and_arrays_are_json() {
        let mut out = Vec::new();
        let mut o = Object::new(&mut out);
        o.str("a\"", Some("x\n"))
            .str("b", None)
            .int("c", -3)
            .bool("d", true);
        write_str_array(o.member("e"), ["p", "q\u{1}"]);
        o.end();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({ "a\"": "x\n", "b": null, "c": -3, "d": true, "e": ["p", "q\u{1}"] })
        );
        let mut empty = Vec::new();
        Object::new(&mut empty).end();
        assert_eq!(empty, b"{}");
    }

    #[test]
    fn integers_as_serde_json_writes_them() {
        for n in [
            0,
            1,
            -1,
            9,
            10,
            99,
            12345,
            i64::MAX,
            i64::MIN,
            -1_700_000_000,
        ] {
            let mut out = Vec::new();
            write_int(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    /// Texts near JSON: pieces of valid JSON, shuffled and cut, so most are almost valid.
    fn jsonish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\"k\"".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("-0".to_owned()),
            Just("\\u".to_owned()),
            Just("\\".to_owned()),
            Just("\"".to_owned()),
            "-?[0-9]{1,21}(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            "\"([a-z]|\\\\[\"\\\\/bfnrtx]|\\\\u[0-9a-fA-F]{4}|[\\x00-\\x1f]|é)*\"",
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
    }

    /// Whether `text` has an exponent of three digits or more (`1e400`: an `f64` overflow).
    fn has_large_exponent(text: &str) -> bool {
        let b = text.as_bytes();
        (0..b.len()).any(|i| {
            let rest = &b[i + 1..];
            let rest = rest
                .strip_prefix(b"+")
                .or(rest.strip_prefix(b"-"))
                .unwrap_or(rest);
            matches!(b[i], b'e' | b'E')
                && rest.len() >= 3
                && rest[..3].iter().all(u8::is_ascii_digit)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]
        #[test]
        fn agrees_with_serde_json(text in jsonish()) {
            // Apart from floats out of range, which serde_json refuses (see above).
            let ours = parse(&text);
            let theirs = serde(&text);
            if theirs.is_some() || ours.is_none() || !has_large_exponent(&text) {
                prop_assert_eq!(ours, theirs, "{:?}", text);
            }
        }

        #[test]
        fn every_string_round_trips(s in "\\PC*|[\\x00-\\x7f]*") {
            let text = written(&s);
            prop_assert_eq!(&text, &serde_json::to_string(&s).unwrap());
            prop_assert_eq!(parse(&text), Some(Value::String(s)));
        }
    }
}
