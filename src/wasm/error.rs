//! The one error path of the bindings: every rejection is a plain `{ code, type, param,
//! message, status?, errors? }` object (serde-wasm-bindgen), which `js/validate.js` turns into
//! a `CardSealError`.

use serde::Serialize;
use wasm_bindgen::JsValue;

use super::FieldErrorJs;
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
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldErrorJs>>,
}

impl<'a> JsError<'a> {
    /// An error of the given `type`.
    pub fn new(code: &'a str, kind: &'a str, param: Option<&'a str>, message: &'a str) -> Self {
        JsError {
            code,
            kind,
            param,
            message,
            status: None,
            errors: None,
        }
    }

    /// With the HTTP status the vault answered.
    pub fn with_status(self, status: u16) -> Self {
        JsError {
            status: Some(status),
            ..self
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

/// A bad argument or option.
pub fn request(code: &str, param: &str, message: &str) -> JsValue {
    JsError::new(code, "invalid_request_error", Some(param), message).into()
}

/// Options of the wrong shape or type.
pub fn bad_options() -> JsValue {
    request(
        "invalid_options",
        "options",
        "CardSeal.create needs { vaultUrl, publishableKey } strings.",
    )
}

/// The vault could not be reached, or did not answer in time.
pub fn connection(code: &str, message: &str) -> JsValue {
    JsError::new(code, "api_connection_error", None, message).into()
}

/// An invalid card: the first field error as the rejection, with every field's error in
/// `errors`.
pub fn invalid_card(errors: &[FieldError]) -> JsValue {
    let first = errors.first().map_or(Error::InvalidNumber, |e| e.code);
    JsError {
        errors: Some(errors.iter().map(FieldErrorJs::from).collect()),
        ..JsError::new(
            first.code(),
            first.kind(),
            first.field().map(|f| f.as_str()),
            first.message(),
        )
    }
    .into()
}
