//! The outbound HTTPS request: HTTP/1.1 over rustls, to an address checked beforehand, one
//! request per connection, no redirects followed, the answer read up to a size limit.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use super::ForwardSettings;
use super::destination::Destination;
use crate::error::{ApiCode, ApiError};

/// The response headers handed back to the merchant, chosen because merchants act on them
/// and none carries card data: the type of the body, the processor's request and idempotency
/// ids (for support and reconciliation), `Retry-After`, and `Location` (a redirect is not
/// followed, so the merchant sees where it pointed). Values are masked like the body.
pub const RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "retry-after",
    "request-id",
    "x-request-id",
    "idempotency-key",
    "idempotent-replayed",
];

/// Headers the vault sets itself or that would change the framing it controls.
const REFUSED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "expect",
];

/// What the processor answered, before masking.
#[derive(Debug)]
pub struct Upstream {
    /// Its HTTP status.
    pub status: u16,
    /// Allow-listed headers, names in lower case.
    pub headers: Vec<(String, Vec<u8>)>,
    /// At most the configured size.
    pub body: Vec<u8>,
    /// `Content-Encoding`, which is not handed back but says whether the body can be read.
    pub content_encoding: Option<String>,
}

fn bad_gateway(code: ApiCode, message: &'static str) -> ApiError {
    ApiError {
        status: StatusCode::BAD_GATEWAY,
        kind: "api_error",
        ..ApiError::invalid_request(code, message)
    }
}

/// 502 `upstream_connection_failed`.
pub fn connection_failed() -> ApiError {
    bad_gateway(
        ApiCode::UpstreamConnectionFailed,
        "The processor could not be reached, or the connection broke before it answered.",
    )
}

/// 504 `upstream_timeout`.
pub fn timed_out() -> ApiError {
    ApiError {
        status: StatusCode::GATEWAY_TIMEOUT,
        kind: "api_error",
        ..ApiError::invalid_request(
            ApiCode::UpstreamTimeout,
            "The processor did not answer in time.",
        )
    }
}

fn too_large() -> ApiError {
    bad_gateway(
        ApiCode::UpstreamResponseTooLarge,
        "The processor's answer is larger than 1 MiB; it was not handed back.",
    )
}

/// Checks the merchant's headers: valid names and values, none of the framing headers.
pub fn check_headers(
    headers: &[(String, String)],
) -> Result<Vec<(HeaderName, HeaderValue)>, ApiError> {
    let invalid =
        |m: &'static str| ApiError::invalid_request(ApiCode::ParameterInvalid, m).param("headers");
    if headers.len() > 50 {
        return Err(invalid("headers holds at most 50 entries."));
    }
    headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("A header name is not a valid HTTP header name."))?;
            if REFUSED_HEADERS.contains(&name.as_str()) {
                return Err(invalid(
                    "Host, Content-Length, Transfer-Encoding, Connection and the other hop-by-hop headers are set by the vault.",
                ));
            }
            super::template::check_header_value(value)?;
            // Headers are sent as given and may be logged by the processor: a card number
            // belongs in the body, as `{{card.number}}`.
            if crate::pan_scan::contains_card_number(name.as_str())
                || crate::pan_scan::contains_card_number(value)
            {
                return Err(invalid(
                    "A header holds what looks like a card number; send the card in the body with {{card.number}}.",
                ));
            }
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| invalid("A header value is not a valid HTTP header value."))?;
            // Authorization headers hold the merchant's processor key.
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect()
}

/// An open TLS connection to the destination, ready for one request. The connection task
/// is stopped when this is dropped, so that a processor that hangs holds nothing once the
/// forward has given up.
#[derive(Debug)]
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Connects to the first of `addrs` (all checked) that accepts, and completes TLS with the
/// destination's host name.
pub async fn connect(
    settings: &ForwardSettings,
    dest: &Destination,
    addrs: &[SocketAddr],
) -> Result<Connection, ApiError> {
    let Some(tls) = settings.tls() else {
        return Err(connection_failed());
    };
    let mut tcp = None;
    for addr in addrs {
        if let Ok(s) = TcpStream::connect(addr).await {
            tcp = Some(s);
            break;
        }
    }
    let tcp = tcp.ok_or_else(connection_failed)?;
    // Small requests and answers: do not wait to coalesce.
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(dest.host.clone()).map_err(|_| connection_failed())?;
    let stream = TlsConnector::from(Arc::clone(&tls))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            tracing::info!(error = %e, host = %dest.host, "forward TLS handshake failed");
            bad_gateway(
                ApiCode::UpstreamTlsFailed,
                "The TLS handshake with the processor failed (its certificate is not trusted or does not name the host).",
            )
        })?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| connection_failed())?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Connection { sender, driver })
}

/// Sends the one request and reads the answer, up to `settings.max_response_bytes`.
pub async fn send(
    settings: &ForwardSettings,
    mut conn: Connection,
    dest: &Destination,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    mut body: Zeroizing<String>,
) -> Result<Upstream, ApiError> {
    // Moved, not copied: the one buffer stays under `Zeroizing`.
    let body = Zeroizing::new(std::mem::take(&mut *body).into_bytes());
    let mut builder = Request::builder()
        .method(method)
        .uri(dest.path_and_query.as_str())
        .header(header::HOST, dest.authority());
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    if !builder
        .headers_ref()
        .is_some_and(|h| h.contains_key(header::USER_AGENT))
    {
        builder = builder.header(header::USER_AGENT, "cardseal-vault");
    }
    // Owned by `Bytes`, so that the filled body is zeroized when hyper is done with it.
    let request = builder
        .body(Full::new(Bytes::from_owner(body)))
        .map_err(|_| {
            ApiError::invalid_request(
                ApiCode::ParameterInvalid,
                "destination's path or a header could not be sent as HTTP.",
            )
            .param("destination")
        })?;
    conn.sender.ready().await.map_err(|_| connection_failed())?;
    let response = conn
        .sender
        .send_request(request)
        .await
        .map_err(|_| connection_failed())?;
    let (parts, body) = response.into_parts();
    let max = settings.max_response_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let body = Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                too_large()
            } else {
                connection_failed()
            }
        })?
        .to_bytes()
        .to_vec();
    let headers = RESPONSE_HEADERS
        .iter()
        .filter_map(|name| {
            parts
                .headers
                .get(*name)
                .map(|v| ((*name).to_owned(), v.as_bytes().to_vec()))
        })
        .collect();
    let content_encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // The reason phrase is not read: only the numeric status is handed back, so that a
    // processor cannot echo the card on the status line.
    Ok(Upstream {
        status: parts.status.as_u16(),
        headers,
        body,
        content_encoding,
    })
}
