//! The one error response: `{"error":{"type","code","param","message","request_id"}}` with
//! Stripe's statuses. Messages are fixed strings: nothing from the request is ever echoed.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::REQUEST_ID;

/// An API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `invalid_request_error`, `authentication_error`, `card_error`, …
    pub kind: &'static str,
    /// A stable code.
    pub code: &'static str,
    /// The parameter at fault.
    pub param: Option<&'static str>,
    /// English text for the developer.
    pub message: Cow<'static, str>,
    /// Sent with `request_id: null`, so that every instance has the same body; the id is
    /// still in the `Request-Id` header.
    pub opaque: bool,
    /// Seconds, for `Retry-After`.
    pub retry_after: Option<u64>,
}

/// Field order as documented: type, code, param, message, request_id.
#[derive(Serialize)]
struct Envelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    param: Option<&'a str>,
    message: &'a str,
    request_id: Option<&'a str>,
}

/// The error code a response carried, for the request log.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            param: None,
            message: message.into(),
            opaque: false,
            retry_after: None,
        }
    }

    /// Names the parameter at fault.
    pub fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// 400 `invalid_request_error`.
    pub fn invalid_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    /// 400 `invalid_encrypted_payload`, identical for every failure after the JWE header.
    pub fn opaque_payload(param: &'static str) -> Self {
        Self {
            opaque: true,
            ..Self::invalid_request(
                "invalid_encrypted_payload",
                "The sealed value could not be decrypted.",
            )
            .param(param)
        }
    }

    /// 401 `authentication_error`.
    pub fn authentication(code: &'static str, message: &'static str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            code,
            message,
        )
    }

    /// 402 `card_error`.
    pub fn card(code: &'static str, param: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::PAYMENT_REQUIRED, "card_error", code, message).param(param)
    }

    /// 403 `permission_error`.
    pub fn permission(code: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", code, message)
    }

    /// 404 `resource_missing`: the same for unknown ids and other accounts' ids.
    pub fn not_found(param: Option<&'static str>) -> Self {
        Self {
            param,
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "resource_missing",
                "No such object.",
            )
        }
    }

    /// 409 `invalid_request_error`.
    pub fn conflict(code: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
    }

    /// 413, over the body limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("The request body is larger than {limit} bytes."),
        )
    }

    /// 429 `rate_limit_error`.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limit",
                "Too many requests; retry later.",
            )
        }
    }

    /// 500 `api_error`. The cause goes to the log, never to the response.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            "The vault could not complete the request.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = if self.opaque {
            None
        } else {
            REQUEST_ID.try_with(Clone::clone).ok()
        };
        let body = Envelope {
            error: ErrorBody {
                kind: self.kind,
                code: self.code,
                param: self.param,
                message: &self.message,
                request_id: request_id.as_deref(),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}
