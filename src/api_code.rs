//! The codes of the vault's error responses (`error.code`), shared by the vault that sends them
//! and the client that acts on some of them (`encryption_key_expired`: fetch the keys again;
//! `idempotency_key_in_use`: wait and retry). A code never changes once shipped.

use crate::Error;

/// One `error.code` of the vault's API. A card that fails validation carries the core's own
/// [`Error`] code, so browser and vault name a bad card the same way.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiCode {
    /// A card field is invalid or incomplete.
    Card(Error),
    /// A required parameter is missing.
    ParameterMissing,
    /// A parameter has an invalid value.
    ParameterInvalid,
    /// The body is not JSON of the documented shape, or could not be read.
    InvalidBody,
    /// The body is over the size limit.
    RequestTooLarge,
    /// No such object (or another account's).
    ResourceMissing,
    /// The URL is known but not for this method.
    MethodNotAllowed,
    /// The request has no API key.
    ApiKeyRequired,
    /// The API key is malformed, unknown, revoked or expired.
    InvalidApiKey,
    /// A publishable key was used from an origin its account does not allow.
    OriginNotAllowed,
    /// The request needs a secret key.
    SecretKeyRequired,
    /// A restricted key lacks the scope.
    InsufficientScope,
    /// The raw-card API's `organisation` is not the key's account.
    OrganisationMismatch,
    /// Too many requests; see `Retry-After`.
    RateLimit,
    /// The sealed value's JWE is malformed or did not decrypt.
    InvalidEncryptedPayload,
    /// The sealed value names a retired or unknown vault key: fetch the keys and seal again.
    EncryptionKeyExpired,
    /// The sealed value's `iat` is too far from the vault's clock.
    RequestExpired,
    /// The sealed value was already used.
    ReplayedRequest,
    /// The token was already used.
    TokenAlreadyUsed,
    /// The token is past its lifetime.
    TokenExpired,
    /// A merchant-initiated charge has no network transaction id to refer to.
    CofReferenceMissing,
    /// The `Idempotency-Key` was used for another request.
    IdempotencyKeyMismatch,
    /// A request with the same `Idempotency-Key` is still running: retry after it finishes.
    IdempotencyKeyInUse,
    /// A forward's body asks for `{{card.cvc}}` and no CVC is there to send.
    CvcUnavailable,
    /// A forward's destination is not https, not on the account's allow-list, an IP literal,
    /// or resolves to an internal address.
    ForwardDestinationNotAllowed,
    /// A forward's body names a placeholder the vault does not know.
    PlaceholderUnknown,
    /// A forward's body holds a placeholder that is not closed, not well formed, or not inside
    /// a JSON string (JSON bodies) or a form value (form bodies).
    PlaceholderMalformed,
    /// A forward's header holds a placeholder: placeholders are filled only in the body.
    PlaceholderNotAllowed,
    /// A forward's body has placeholders and a Content-Type the vault cannot escape for.
    ContentTypeUnsupported,
    /// A forward's destination did not resolve.
    UpstreamDnsFailed,
    /// A forward's processor could not be reached, or broke the connection.
    UpstreamConnectionFailed,
    /// A forward's TLS handshake failed (certificate, name or protocol).
    UpstreamTlsFailed,
    /// A forward's processor answered more than the vault hands back.
    UpstreamResponseTooLarge,
    /// A forward's processor did not answer in time.
    UpstreamTimeout,
    /// A forward's answer cannot be searched for the card (compressed, binary, or a charset
    /// other than UTF-8 and UTF-16): only its status and kept headers are handed back.
    ForwardResponseUnreadable,
    /// The vault failed; nothing about why is sent.
    InternalError,
    /// The charge was captured already.
    ChargeAlreadyCaptured,
    /// The charge's authorization expired before it was captured.
    ChargeExpiredForCapture,
    /// The charge failed: there is nothing to capture or refund.
    ChargeNotCaptured,
    /// The charge was refunded in full already.
    ChargeAlreadyRefunded,
    /// The vault cannot store anything for now: its database cannot be reached, or its disk
    /// is full. Nothing was done; retry after `Retry-After`.
    ServiceUnavailable,
}

/// Every code but [`ApiCode::Card`], for [`ApiCode::parse`].
const NAMED: [(ApiCode, &str); 40] = [
    (ApiCode::ParameterMissing, "parameter_missing"),
    (ApiCode::ParameterInvalid, "parameter_invalid"),
    (ApiCode::InvalidBody, "invalid_body"),
    (ApiCode::RequestTooLarge, "request_too_large"),
    (ApiCode::ResourceMissing, "resource_missing"),
    (ApiCode::MethodNotAllowed, "method_not_allowed"),
    (ApiCode::ApiKeyRequired, "api_key_required"),
    (ApiCode::InvalidApiKey, "invalid_api_key"),
    (ApiCode::OriginNotAllowed, "origin_not_allowed"),
    (ApiCode::SecretKeyRequired, "secret_key_required"),
    (ApiCode::InsufficientScope, "insufficient_scope"),
    (ApiCode::OrganisationMismatch, "organisation_mismatch"),
    (ApiCode::RateLimit, "rate_limit"),
    (
        ApiCode::InvalidEncryptedPayload,
        "invalid_encrypted_payload",
    ),
    (ApiCode::EncryptionKeyExpired, "encryption_key_expired"),
    (ApiCode::RequestExpired, "request_expired"),
    (ApiCode::ReplayedRequest, "replayed_request"),
    (ApiCode::TokenAlreadyUsed, "token_already_used"),
    (ApiCode::TokenExpired, "token_expired"),
    (ApiCode::CofReferenceMissing, "cof_reference_missing"),
    (ApiCode::IdempotencyKeyMismatch, "idempotency_key_mismatch"),
    (ApiCode::IdempotencyKeyInUse, "idempotency_key_in_use"),
    (ApiCode::CvcUnavailable, "cvc_unavailable"),
    (
        ApiCode::ForwardDestinationNotAllowed,
        "forward_destination_not_allowed",
    ),
    (ApiCode::PlaceholderUnknown, "placeholder_unknown"),
    (ApiCode::PlaceholderMalformed, "placeholder_malformed"),
    (ApiCode::PlaceholderNotAllowed, "placeholder_not_allowed"),
    (ApiCode::ContentTypeUnsupported, "content_type_unsupported"),
    (ApiCode::UpstreamDnsFailed, "upstream_dns_failed"),
    (
        ApiCode::UpstreamConnectionFailed,
        "upstream_connection_failed",
    ),
    (ApiCode::UpstreamTlsFailed, "upstream_tls_failed"),
    (
        ApiCode::UpstreamResponseTooLarge,
        "upstream_response_too_large",
    ),
    (ApiCode::UpstreamTimeout, "upstream_timeout"),
    (
        ApiCode::ForwardResponseUnreadable,
        "forward_response_unreadable",
    ),
    (ApiCode::InternalError, "internal_error"),
    (ApiCode::ServiceUnavailable, "service_unavailable"),
    (ApiCode::ChargeAlreadyCaptured, "charge_already_captured"),
    (
        ApiCode::ChargeExpiredForCapture,
        "charge_expired_for_capture",
    ),
    (ApiCode::ChargeNotCaptured, "charge_not_captured"),
    (ApiCode::ChargeAlreadyRefunded, "charge_already_refunded"),
];

impl ApiCode {
    /// The wire name, e.g. `token_expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiCode::Card(e) => e.code(),
            named => NAMED
                .iter()
                .find(|(c, _)| *c == named)
                .map_or("internal_error", |(_, s)| s),
        }
    }

    /// Every code the vault may send: the named ones, then the codes of invalid card fields
    /// (the core's other errors concern keys, which only a client meets).
    pub fn all() -> impl Iterator<Item = ApiCode> {
        NAMED.iter().map(|(c, _)| *c).chain(
            Error::ALL
                .into_iter()
                .filter(|e| e.field().is_some())
                .map(ApiCode::Card),
        )
    }

    /// The code with this wire name, if the vault sends it (card codes excepted).
    pub fn parse(code: &str) -> Option<ApiCode> {
        NAMED.iter().find(|(_, s)| *s == code).map(|(c, _)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for (code, name) in NAMED {
            assert_eq!(code.as_str(), name);
            assert_eq!(ApiCode::parse(name), Some(code));
        }
        assert_eq!(ApiCode::Card(Error::InvalidCvc).as_str(), "invalid_cvc");
        assert_eq!(ApiCode::parse("invalid_cvc"), None);
        assert!(ApiCode::all().any(|c| c == ApiCode::Card(Error::InvalidCvc)));
        assert!(!ApiCode::all().any(|c| c == ApiCode::Card(Error::Crypto)));
    }
}
