#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api_code;
pub mod card;
pub mod error;
pub mod jwe;
pub mod retry;
pub mod secret;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use api_code::ApiCode;
pub use error::Error;
pub use secret::Secret;
