//! The one error response: `{"error":{"type","code","param","message","request_id"}}` with
//! Stripe's statuses. Messages are fixed strings: nothing from the request is ever echoed.
//! Codes are [`ApiCode`]s, which the client shares.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use cardseal::ApiCode;
use serde::Serialize;

use crate::store::{StoreError, TxError};

tokio::task_local! {
    /// The current request's id, for error bodies and the log lines of failures.
    pub static REQUEST_ID: String;
}

/// An API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `invalid_request_error`, `authentication_error`, `card_error`, …
    pub kind: &'static str,
    /// A stable code.
    pub code: ApiCode,
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

/// The error code a response carried, for the request log and the idempotency layer.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub ApiCode);

/// Seconds a client is asked to wait while storage is out of space.
pub const OUT_OF_SPACE_RETRY_AFTER_SECS: u64 = 5;

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: ApiCode,
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
    pub fn invalid_request(code: ApiCode, message: impl Into<Cow<'static, str>>) -> Self {
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
                ApiCode::InvalidEncryptedPayload,
                "The sealed value could not be decrypted.",
            )
            .param(param)
        }
    }

    /// 401 `authentication_error`.
    pub fn authentication(code: ApiCode, message: &'static str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            code,
            message,
        )
    }

    /// 402 `card_error`: the core's verdict on a card field, with its code and message.
    pub fn card(e: cardseal::Error, param: &'static str) -> Self {
        Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "card_error",
            ApiCode::Card(e),
            e.message(),
        )
        .param(param)
    }

    /// 403 `permission_error`.
    pub fn permission(code: ApiCode, message: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", code, message)
    }

    /// 404 `resource_missing`: the same for unknown ids and other accounts' ids.
    pub fn not_found(param: Option<&'static str>) -> Self {
        Self {
            param,
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                ApiCode::ResourceMissing,
                "No such object.",
            )
        }
    }

    /// 409 `invalid_request_error`.
    pub fn conflict(code: ApiCode, message: &'static str) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
    }

    /// 413, over the body limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            ApiCode::RequestTooLarge,
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
                ApiCode::RateLimit,
                "Too many requests; retry later.",
            )
        }
    }

    /// 503 `service_unavailable`, with `Retry-After`: the vault cannot store anything for now
    /// (PostgreSQL cannot be reached, or the disk is full), and will again without a restart.
    pub fn unavailable(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                ApiCode::ServiceUnavailable,
                "The vault cannot store anything right now; retry later.",
            )
        }
    }

    /// 500 `api_error`. The cause goes to the log, never to the response.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            ApiCode::InternalError,
            "The vault could not complete the request.",
        )
    }
}

impl ApiError {
    /// The answer to a storage failure: 503 when the database cannot be reached or has no
    /// space, else 500.
    /// The cause goes to the log.
    pub fn store(e: &StoreError) -> Self {
        let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(%request_id, error = %e, "the database cannot be reached");
                Self::unavailable(1)
            }
            StoreError::OutOfSpace(_) => {
                tracing::warn!(%request_id, error = %e, "the database has no space");
                Self::unavailable(OUT_OF_SPACE_RETRY_AFTER_SECS)
            }
            _ => {
                tracing::error!(%request_id, error = %e, "storage failed");
                Self::internal()
            }
        }
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
                code: self.code.as_str(),
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

/// Logs a failure the caller must not see, and answers 500 (503 for a database that cannot be
/// reached).
pub(crate) fn internal<E: std::fmt::Display + 'static>(
    what: &'static str,
) -> impl FnOnce(E) -> ApiError {
    move |e| {
        let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
        if let Some(e @ (StoreError::Unavailable(_) | StoreError::OutOfSpace(_))) =
            (&e as &dyn std::any::Any).downcast_ref::<StoreError>()
        {
            return ApiError::store(e);
        }
        tracing::error!(%request_id, error = %e, "{what}");
        ApiError::internal()
    }
}

/// Maps a transaction's failure to the response: an abort is the answer, a storage failure a
/// logged 500.
pub(crate) fn tx_failed(what: &'static str) -> impl FnOnce(TxError<ApiError>) -> ApiError {
    move |e| match e {
        TxError::Abort(e) => e,
        TxError::Store(e) => internal(what)(e),
    }
}
