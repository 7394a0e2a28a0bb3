//! Errors as the JS wrapper receives them: plain `{ code, type, param, message, errors? }`
//! objects, which `js/core.js` turns into `CardSealError`s.

use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::Error;
use crate::card::FieldError;

/// One rejection.
#[derive(Debug, Serialize)]
pub struct JsError<'a> {
    code: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<super::FieldErrorJs>>,
}

impl<'a> JsError<'a> {
    /// An error of the given `type`.
    pub fn new(code: &'a str, kind: &'a str, param: Option<&'a str>, message: &'a str) -> Self {
        JsError {
            code,
            kind,
            param,
            message,
            errors: None,
        }
    }
}

impl From<JsError<'_>> for JsValue {
    fn from(e: JsError<'_>) -> JsValue {
        super::to_js(&e)
    }
}

/// A core error.
pub fn core(e: Error) -> JsValue {
    JsError::new(
        e.code(),
        e.kind(),
        e.field().map(|f| f.as_str()),
        e.message(),
    )
    .into()
}

/// An invalid card: the first field error as the rejection, with every field's error in
/// `errors`.
pub fn invalid_card(errors: &[FieldError]) -> JsValue {
    let first = errors.first().map_or(Error::InvalidNumber, |e| e.code);
    JsError {
        errors: Some(errors.iter().map(|e| (*e).into()).collect()),
        ..JsError::new(
            first.code(),
            first.kind(),
            first.field().map(|f| f.as_str()),
            first.message(),
        )
    }
    .into()
}
