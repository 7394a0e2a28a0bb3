//! The snippet and its wasm, served from the vault at versioned, cacheable paths.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cardseal_vault::assets::{Assets, routes};
use tower::ServiceExt;

fn load(js: &[u8]) -> (tempfile::TempDir, Arc<Assets>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cardseal.js"), js).unwrap();
    std::fs::write(dir.path().join("cardseal_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let assets = Arc::new(Assets::load(dir.path(), "0.1.0").unwrap());
    (dir, assets)
}

async fn get(assets: &Arc<Assets>, path: &str) -> axum::response::Response {
    routes(assets.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn serves_versioned_immutable_files_with_their_integrity() {
    let (_dir, assets) = load(b"window.cardseal = {};");
    let path = assets.path("cardseal.js");
    assert!(
        path.starts_with("/js/0.1.0-") && path.ends_with("/cardseal.js"),
        "{path}"
    );
    let res = get(&assets, &path).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["access-control-allow-origin"], "*");
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&body[..], b"window.cardseal = {};");
    // sha384 of the bytes, base64: what `integrity=` must say.
    assert_eq!(
        assets.integrity("cardseal.js").unwrap(),
        "sha384-HYMsSuTRF/CJqL1ALvk2LoLGMlz5ail7yEQMAOkNaUgGi15lO1UUaj1PL1Zirua1"
    );
    let wasm = get(&assets, &assets.path("cardseal_bg.wasm")).await;
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
}

#[tokio::test]
async fn other_versions_and_files_are_not_found() {
    let (_dir, assets) = load(b"a");
    let (_dir2, other) = load(b"b");
    assert_ne!(
        assets.version(),
        other.version(),
        "the version changes with the content"
    );
    assert_eq!(
        get(&assets, &other.path("cardseal.js")).await.status(),
        StatusCode::NOT_FOUND
    );
    let wrong_file = format!("/js/{}/../Cargo.toml", assets.version());
    assert_eq!(
        get(&assets, &wrong_file).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&assets, &format!("/js/{}/index.js", assets.version()))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[path = "support/helpers.rs"]
mod support;

/// The vault prints the whole `<script>` tag to paste: with `--demo` it knows the publishable key,
/// otherwise the key is a `pk_test_…` placeholder.
#[test]
fn serve_prints_a_complete_script_tag() {
    let (files, assets) = load(b"/* the snippet */");
    let snippet_dir = files.path().to_str().unwrap();
    for demo in [true, false] {
        let data = tempfile::tempdir().unwrap();
        let mut args = vec!["--snippet-dir", snippet_dir];
        if demo {
            args.push("--demo");
        }
        let server = support::spawn_server(data.path().to_str().unwrap(), &args);
        let tag = server
            .stdout
            .iter()
            .find(|l| l.starts_with("<script "))
            .unwrap_or_else(|| panic!("no script tag in {:?}", server.stdout));
        let url = format!("http://{}", server.addr);
        let pk = if demo {
            support::key_from(&server.stdout, "publishable_key")
        } else {
            "pk_test_…".to_owned()
        };
        let path = assets.path("cardseal.js");
        let integrity = assets.integrity("cardseal.js").unwrap();
        assert_eq!(
            tag,
            &format!(
                r#"<script async src="{url}{path}" integrity="{integrity}" crossorigin="anonymous" data-vault-url="{url}" data-publishable-key="{pk}"></script>"#
            )
        );
    }
}
