//! Errors as the JS wrapper receives them: the JSON text of a plain `{ code, type, param,
//! message, errors? }` object, which `js/core.js` parses and turns into a `CardSealError`.

use wasm_bindgen::JsValue;

use crate::card::FieldError;
use crate::{Error, json};

/// One rejection: `e`'s code, type, field and message, and every field's error for a card.
fn rejection(e: Error, errors: Option<&[FieldError]>) -> JsValue {
    let text = super::json(|out| {
        let mut o = json::Object::new(out);
        o.str("code", Some(e.code()))
            .str("type", Some(e.kind()))
            .str("param", e.field().map(|f| f.as_str()))
            .str("message", Some(e.message()));
        if let Some(errors) = errors {
            super::write_field_errors(o.member("errors"), errors);
        }
        o.end();
    });
    JsValue::from_str(&text)
}

/// A core error.
pub fn core(e: Error) -> JsValue {
    rejection(e, None)
}

/// An invalid card: the first field error as the rejection, with every field's error in
/// `errors`.
pub fn invalid_card(errors: &[FieldError]) -> JsValue {
    let first = errors.first().map_or(Error::InvalidNumber, |e| e.code);
    rejection(first, Some(errors))
}
