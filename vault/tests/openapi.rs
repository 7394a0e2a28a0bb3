//! The OpenAPI contract: the checked-in `vault/openapi.json` is what the code generates, and it
//! covers every route and every error code.

use cardseal_vault::api::{ApiCode, openapi};
use serde_json::Value;

#[test]
fn checked_in_copy_is_current() {
    let generated = openapi::json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, generated).expect("write vault/openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == checked_in,
        "vault/openapi.json is stale: regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p cardseal-vault --test openapi` and commit it"
    );
}

fn doc() -> Value {
    serde_json::from_str(openapi::json()).expect("the contract is JSON")
}

#[test]
fn is_openapi_3_1_with_the_three_key_schemes() {
    let doc = doc();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["pk", "sk", "rk"] {
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    let detokenize = &doc["paths"]["/v1/detokenize"]["post"]["security"];
    assert_eq!(detokenize, &serde_json::json!([{"rk": ["detokenize"]}]));
}

#[test]
fn names_every_error_code() {
    let doc = doc();
    let codes =
        &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
    let codes: Vec<&str> = codes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in ApiCode::all() {
        assert!(
            codes.contains(&code.as_str()),
            "{} is not in the contract",
            code.as_str()
        );
    }
    for code in [
        "invalid_number",
        "incomplete_cvc",
        "origin_not_allowed",
        "rate_limit",
    ] {
        assert!(codes.contains(&code), "{code}");
    }
}

#[test]
fn every_operation_documents_its_errors() {
    let doc = doc();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for status in ["200", "401", "500"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            if method == "post" {
                for status in ["400", "413", "429"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
            }
        }
    }
}
