//! `/metrics` lives on the admin listener only, and keyless requests get no CORS headers.

#[path = "support/helpers.rs"]
mod support;

use axum::body::Body;
use axum::http::Request;
use cardseal_vault::admin_app;
use http_body_util::BodyExt;
use serde_json::json;
use support::{TestVault, http, key_from, post_json, spawn_server};
use tower::ServiceExt;

const VISA: &str = "4242424242424242";

#[tokio::test]
async fn the_public_router_has_no_metrics() {
    let v = TestVault::new().await;
    let r = v
        .call(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    r.assert_error(404, "invalid_request_error", "resource_missing");
    assert!(!String::from_utf8_lossy(&r.body).contains("cardseal_"));
}

#[tokio::test]
async fn the_admin_router_serves_metrics_and_health() {
    let v = TestVault::new().await;
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    assert_eq!(r.status, 200);

    let get = |path: &str| {
        admin_app(v.state.clone()).oneshot(Request::get(path).body(Body::empty()).unwrap())
    };
    let r = get("/metrics").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let text =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        text.contains("cardseal_tokens_created_total{type=\"card\"} 1"),
        "{text}"
    );
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    // Nothing of the API is on the admin router.
    assert_eq!(get("/v1/encryption_keys").await.unwrap().status(), 404);
}

#[tokio::test]
async fn keyless_requests_get_no_cors_headers() {
    let v = TestVault::new().await;
    let origin = "https://shop.example";
    let with_origin = |req: Request<Body>| {
        let (mut parts, body) = req.into_parts();
        parts.headers.insert("origin", origin.parse().unwrap());
        Request::from_parts(parts, body)
    };
    for req in [
        Request::get("/healthz").body(Body::empty()).unwrap(),
        Request::get("/metrics").body(Body::empty()).unwrap(),
        Request::get("/v1/encryption_keys")
            .body(Body::empty())
            .unwrap(),
        Request::get("/v1/tokens/tok_0000000000000000000000")
            .body(Body::empty())
            .unwrap(),
        Request::post("/v1/tokens")
            .body(Body::from(json!({ "card": "x" }).to_string()))
            .unwrap(),
    ] {
        let path = req.uri().path().to_owned();
        let r = v.call(with_origin(req)).await;
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "{path} answered {} with CORS",
            r.status
        );
    }

    // A preflight is still answered, so that the browser goes on to send its pk_ request...
    let r = v
        .call(
            Request::options("/v1/encryption_keys")
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    // ...which is readable from an allowed origin.
    let mut req = Request::get("/v1/encryption_keys")
        .header(
            "authorization",
            format!("Bearer {}", v.account.publishable_key),
        )
        .body(Body::empty())
        .unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let r = v.call(req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    assert_eq!(r.json(), v.jwks());

    // The well-known JWKS is a public document, the same for every reader.
    let r = v
        .call(with_origin(
            Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // A refused key's error stays readable, so that a page with a mistyped key learns why.
    let mut req = post_json("/v1/tokens", "pk_test_nope", &json!({ "card": "x" }));
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let r = v.call(req).await;
    r.assert_error(401, "authentication_error", "invalid_api_key");
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_admin_listen_serves_metrics_there_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(
        dir.path().to_str().unwrap(),
        &["--demo", "--admin-listen", "127.0.0.1:0"],
    );
    let admin = key_from(&server.stdout, "admin");
    let admin: std::net::SocketAddr = admin.strip_prefix("http://").unwrap().parse().unwrap();
    assert_ne!(admin, server.addr);

    let get = |path: &'static str| Request::get(path).body(Body::empty()).unwrap();
    let r = http(server.addr, get("/metrics")).await;
    r.assert_error(404, "invalid_request_error", "resource_missing");
    assert_eq!(http(server.addr, get("/healthz")).await.status, 200);

    let r = http(admin, get("/metrics")).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body);
    // The public requests above were counted.
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert_eq!(http(admin, get("/healthz")).await.status, 200);
}
