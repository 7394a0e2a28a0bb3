//! The forwarded body: `{{card.…}}` placeholders, parsed before anything is used or sent, and
//! filled with the escaping the body's Content-Type calls for.

use std::borrow::Cow;

use cardseal::Secret;
use zeroize::Zeroizing;

use crate::error::{ApiCode, ApiError};

/// A card field a placeholder names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `{{card.number}}`.
    Number,
    /// `{{card.exp_month}}`, two digits.
    ExpMonth,
    /// `{{card.exp_year}}`, four digits.
    ExpYear,
    /// `{{card.exp_year2}}`, two digits.
    ExpYear2,
    /// `{{card.cvc}}`.
    Cvc,
    /// `{{card.name}}`, the cardholder name (empty when none was given).
    Name,
}

const FIELDS: &[(&str, Field)] = &[
    ("card.number", Field::Number),
    ("card.exp_month", Field::ExpMonth),
    ("card.exp_year", Field::ExpYear),
    ("card.exp_year2", Field::ExpYear2),
    ("card.cvc", Field::Cvc),
    ("card.name", Field::Name),
];

/// How filled values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escaping {
    /// Inside a JSON string: `"`, `\` and control characters escaped.
    Json,
    /// `application/x-www-form-urlencoded`: percent-encoded, as the WHATWG serializer does.
    Form,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Field(Field),
}

/// A parsed body.
#[derive(Debug)]
pub struct Template {
    parts: Vec<Part>,
    escaping: Escaping,
}

/// What a body is filled with. No `Debug`: it holds the number.
pub struct CardFields {
    /// The card number.
    pub number: Secret,
    /// 1 to 12.
    pub exp_month: u8,
    /// Four digits.
    pub exp_year: u16,
    /// The CVC, when the body asks for it and one was available.
    pub cvc: Option<Secret>,
    /// The cardholder name, if one was given.
    pub name: Option<String>,
}

impl std::fmt::Debug for CardFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardFields { .. }")
    }
}

/// Longest placeholder name worth reading; longer is malformed.
const MAX_NAME: usize = 40;

fn escaping_for(content_type: Option<&str>) -> Option<Escaping> {
    let essence = content_type?
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Some(Escaping::Json)
    } else if essence == "application/x-www-form-urlencoded" {
        Some(Escaping::Form)
    } else {
        None
    }
}

/// A placeholder name is echoed in the error only if it cannot be card data: a few lower-case
/// words, at most two digits in a row. Anything else is called malformed without being shown.
fn echoable(name: &str) -> bool {
    let mut digits = 0;
    name.len() <= MAX_NAME
        && name.bytes().all(|b| {
            digits = if b.is_ascii_digit() { digits + 1 } else { 0 };
            digits <= 2 && (b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
        })
}

fn malformed() -> ApiError {
    ApiError::invalid_request(
        ApiCode::PlaceholderMalformed,
        "The body holds a malformed placeholder: write {{card.number}}, {{card.exp_month}}, {{card.exp_year}}, {{card.exp_year2}}, {{card.cvc}} or {{card.name}}.",
    )
    .param("body")
}

impl Template {
    /// Parses `body`. A body with placeholders needs a JSON or form Content-Type; every
    /// placeholder must be a known one.
    pub fn parse(body: &str, content_type: Option<&str>) -> Result<Template, ApiError> {
        let mut parts = Vec::new();
        let mut rest = body;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(malformed());
            };
            let name = after[..end].trim();
            if name.is_empty() || name.len() > MAX_NAME || name.contains("{{") {
                return Err(malformed());
            }
            let Some((_, field)) = FIELDS.iter().find(|(n, _)| *n == name) else {
                if !echoable(name) {
                    return Err(malformed());
                }
                return Err(ApiError::invalid_request(
                    ApiCode::PlaceholderUnknown,
                    format!(
                        "Unknown placeholder {{{{{name}}}}}: use card.number, card.exp_month, card.exp_year, card.exp_year2, card.cvc or card.name."
                    ),
                )
                .param("body"));
            };
            parts.push(Part::Field(*field));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        let has_fields = parts.iter().any(|p| matches!(p, Part::Field(_)));
        let escaping = match escaping_for(content_type) {
            Some(e) => e,
            // Without placeholders nothing is escaped, so any body goes as it is.
            None if !has_fields => Escaping::Json,
            None => {
                return Err(ApiError::invalid_request(
                    ApiCode::ContentTypeUnsupported,
                    "Placeholders are filled only in application/json and application/x-www-form-urlencoded bodies: set headers.Content-Type to one of them.",
                )
                .param("headers"));
            }
        };
        if has_fields && !placed_in_values(&parts, escaping) {
            return Err(ApiError::invalid_request(
                ApiCode::PlaceholderMalformed,
                match escaping {
                    Escaping::Json => "Every placeholder goes inside a JSON string, such as \"{{card.exp_year}}\": a value filled outside one could add JSON of its own.",
                    Escaping::Form => "Every placeholder goes in a form value, after its name's =, such as number={{card.number}}.",
                },
            )
            .param("body"));
        }
        Ok(Template { parts, escaping })
    }

    /// Whether the body asks for `field`.
    pub fn uses(&self, field: Field) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Field(f) if *f == field))
    }

    /// The body with every placeholder filled. The caller has checked that a CVC asked for is
    /// there; a missing one would be filled empty.
    pub fn fill(&self, card: &CardFields) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(
            self.parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.len(),
                    Part::Field(_) => 64,
                })
                .sum(),
        ));
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => {
                    let value: Zeroizing<String> = Zeroizing::new(match f {
                        Field::Number => card.number.expose().to_owned(),
                        Field::ExpMonth => format!("{:02}", card.exp_month),
                        Field::ExpYear => format!("{:04}", card.exp_year),
                        Field::ExpYear2 => format!("{:02}", card.exp_year % 100),
                        Field::Cvc => card
                            .cvc
                            .as_ref()
                            .map(|c| c.expose().to_owned())
                            .unwrap_or_default(),
                        Field::Name => card.name.clone().unwrap_or_default(),
                    });
                    push_escaped(&mut out, &value, self.escaping);
                }
            }
        }
        out
    }
}

/// Whether every placeholder stands where its escaping makes the value inert: inside a JSON
/// string (JSON escaping keeps a value from closing it), or in a form value, after the `=` of
/// its pair (percent-encoding keeps a value from adding a pair). Elsewhere, a cardholder name
/// such as `1, "amount": 1` would write JSON or form fields of its own.
fn placed_in_values(parts: &[Part], escaping: Escaping) -> bool {
    let (mut in_string, mut escaped, mut in_value) = (false, false, false);
    for part in parts {
        match part {
            Part::Field(_) => {
                let placed = match escaping {
                    Escaping::Json => in_string,
                    Escaping::Form => in_value,
                };
                if !placed {
                    return false;
                }
            }
            Part::Text(t) => {
                for b in t.bytes() {
                    match escaping {
                        Escaping::Json => match (in_string, escaped, b) {
                            (true, true, _) => escaped = false,
                            (true, false, b'\\') => escaped = true,
                            (_, _, b'"') => in_string = !in_string,
                            _ => {}
                        },
                        Escaping::Form => match b {
                            b'&' => in_value = false,
                            b'=' => in_value = true,
                            _ => {}
                        },
                    }
                }
            }
        }
    }
    true
}

/// Appends `value` escaped, writing into `out` directly so that no other copy of it is left.
fn push_escaped(out: &mut String, value: &str, escaping: Escaping) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    match escaping {
        Escaping::Json => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if u32::from(c) < 0x20 => {
                        out.push_str("\\u00");
                        out.push(char::from(HEX[(u32::from(c) >> 4) as usize]));
                        out.push(char::from(HEX[(u32::from(c) & 0xf) as usize]));
                    }
                    c => out.push(c),
                }
            }
        }
        Escaping::Form => {
            for b in value.bytes() {
                match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                        out.push(char::from(b));
                    }
                    b' ' => out.push('+'),
                    b => {
                        out.push('%');
                        out.push(char::from(HEX[usize::from(b >> 4)]));
                        out.push(char::from(HEX[usize::from(b & 0xf)]));
                    }
                }
            }
        }
    }
}

/// The text of an error naming a header value that holds a placeholder: headers are sent as
/// given, never filled, so a placeholder there is a mistake worth refusing.
pub fn check_header_value(value: &str) -> Result<(), ApiError> {
    if value.contains("{{") {
        return Err(ApiError::invalid_request(
            ApiCode::PlaceholderNotAllowed,
            Cow::Borrowed("Placeholders are filled only in the body; headers are sent as given."),
        )
        .param("headers"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> CardFields {
        CardFields {
            number: Secret::new("4242424242424242"),
            exp_month: 3,
            exp_year: 2031,
            cvc: Some(Secret::new("123")),
            name: Some("Zoë \"Q\" O'Brien & Co\n".into()),
        }
    }

    #[test]
    fn json_bodies_are_filled_with_string_escaping() {
        let t = Template::parse(
            r#"{"n":"{{card.number}}","e":"{{ card.exp_month }}/{{card.exp_year2}}","y":"{{card.exp_year}}","c":"{{card.cvc}}","h":"{{card.name}}"}"#,
            Some("application/json; charset=utf-8"),
        )
        .unwrap();
        assert!(t.uses(Field::Cvc));
        let filled = t.fill(&card());
        let v: serde_json::Value = serde_json::from_str(&filled).unwrap();
        assert_eq!(v["n"], "4242424242424242");
        assert_eq!(v["e"], "03/31");
        assert_eq!(v["y"], "2031");
        assert_eq!(v["c"], "123");
        assert_eq!(v["h"], "Zoë \"Q\" O'Brien & Co\n");
    }

    #[test]
    fn form_bodies_are_percent_encoded() {
        let t = Template::parse(
            "card[number]={{card.number}}&card[name]={{card.name}}",
            Some("application/x-www-form-urlencoded"),
        )
        .unwrap();
        assert!(!t.uses(Field::Cvc));
        assert_eq!(
            t.fill(&card()).as_str(),
            "card[number]=4242424242424242&card[name]=Zo%C3%AB+%22Q%22+O%27Brien+%26+Co%0A"
        );
    }

    #[test]
    fn unknown_malformed_and_unescapable_placeholders_are_refused() {
        let json = Some("application/json");
        let e = Template::parse("{{card.pan}}", json).unwrap_err();
        assert_eq!(e.code, ApiCode::PlaceholderUnknown);
        assert!(e.message.contains("{{card.pan}}"), "{}", e.message);
        // A name that could be card data is never echoed.
        let e = Template::parse("{{4242424242424242}}", json).unwrap_err();
        assert_eq!(e.code, ApiCode::PlaceholderMalformed);
        assert!(!e.message.contains("4242"));
        assert_eq!(
            Template::parse("{{card.number", json).unwrap_err().code,
            ApiCode::PlaceholderMalformed
        );
        assert_eq!(
            Template::parse("n={{card.number}}", Some("text/plain"))
                .unwrap_err()
                .code,
            ApiCode::ContentTypeUnsupported
        );
        assert_eq!(
            Template::parse("n={{card.number}}", None).unwrap_err().code,
            ApiCode::ContentTypeUnsupported
        );
        // Outside a JSON string or a form value, a placeholder could write fields of its own.
        for (body, ct) in [
            (r#"{"year":{{card.exp_year}}}"#, "application/json"),
            (r#"{"n":"a"{{card.name}}}"#, "application/json"),
            (r#"{"n":"a\\"{{card.name}}"}"#, "application/json"),
            (r#"{{{card.name}}:1}"#, "application/json"),
            ("{{card.number}}=1", "application/x-www-form-urlencoded"),
            ("a=1&{{card.name}}", "application/x-www-form-urlencoded"),
        ] {
            let e = Template::parse(body, Some(ct)).unwrap_err();
            assert_eq!(e.code, ApiCode::PlaceholderMalformed, "{body}");
        }
        assert!(Template::parse(r#"{"n":"a\"{{card.name}}"}"#, json).is_ok());
        assert!(Template::parse(r#"{"{{card.name}}":"x"}"#, json).is_ok());
        // No placeholder: any body goes as it is.
        let t = Template::parse("<xml/>", Some("text/xml")).unwrap();
        assert_eq!(t.fill(&card()).as_str(), "<xml/>");
    }
}
