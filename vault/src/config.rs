//! Runtime settings of a running vault (the CLI fills them from flags and `CARDSEAL_*`), and
//! their defaults: the one place they are written down.

use std::sync::Arc;
use std::time::Duration;

use crate::assets::Assets;
use crate::bins::BinTable;
use crate::forward::ForwardSettings;
use crate::tls::TlsFiles;

/// The defaults of [`Config`], which the CLI's flags show and fall back to.
pub mod defaults {
    use super::RateLimit;

    /// How long a superseded sealing key keeps decrypting: a day.
    pub const KEY_GRACE_SECS: i64 = 24 * 3600;
    /// How long a token can be used: 15 minutes.
    pub const TOKEN_TTL_SECS: i64 = 15 * 60;
    /// How far a sealed value's `iat` may be from the vault's clock: 5 minutes.
    pub const IAT_WINDOW_SECS: i64 = 5 * 60;
    /// Largest request body: 8 KiB.
    pub const BODY_LIMIT: usize = 8 * 1024;
    /// Token creations per API key.
    pub const RATE_PER_KEY: RateLimit = RateLimit {
        per_second: 100.0,
        burst: 200.0,
    };
    /// Token creations (and other publishable-key writes) per client IP.
    pub const RATE_PER_IP: RateLimit = RateLimit {
        per_second: 10.0,
        burst: 60.0,
    };
    /// Tokens of one card per account in [`CARD_WINDOW_SECS`].
    pub const CARD_TOKENS: u32 = 10;
    /// The window of [`CARD_TOKENS`]: 10 minutes.
    pub const CARD_WINDOW_SECS: u32 = 600;
    /// Declined charges per account in [`DECLINE_WINDOW_SECS`].
    pub const DECLINES: u32 = 20;
    /// The window of [`DECLINES`]: a minute.
    pub const DECLINE_WINDOW_SECS: u32 = 60;
    /// How long one `POST /v1/forward` may take, DNS lookup to the answer's last byte.
    pub const FORWARD_TIMEOUT_SECS: i64 = 30;
    /// How long an authorization (`capture: false`) can be captured: 7 days, as card networks
    /// commonly hold one.
    pub const AUTHORIZATION_SECS: i64 = 7 * 24 * 3600;
}

/// A token-bucket limit: `per_second` on average, bursts of up to `burst`. Zero disables it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

impl RateLimit {
    /// No limit.
    pub const OFF: RateLimit = RateLimit {
        per_second: 0.0,
        burst: 0.0,
    };

    /// `count` requests at once, refilled evenly over `window_secs`; a count of 0 is no limit.
    pub fn per_window(count: u32, window_secs: u32) -> RateLimit {
        if count == 0 || window_secs == 0 {
            return RateLimit::OFF;
        }
        RateLimit {
            per_second: f64::from(count) / f64::from(window_secs),
            burst: f64::from(count),
        }
    }

    /// Whether it limits anything.
    pub fn enabled(&self) -> bool {
        self.per_second > 0.0 && self.burst > 0.0
    }
}

/// Settings of a running vault.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a superseded sealing key keeps decrypting, in seconds.
    pub key_grace_secs: i64,
    /// How long a token can be used, in seconds.
    pub token_ttl_secs: i64,
    /// How far a sealed value's `iat` may be from the vault's clock, either way, in seconds.
    pub iat_window_secs: i64,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Token creation limit per API key.
    pub rate_per_key: RateLimit,
    /// Token creation (and every other publishable-key write) limit per client IP; IPv6
    /// clients are counted by their /64.
    pub rate_per_ip: RateLimit,
    /// Tokens of one card (by fingerprint, per account): card testing tokenizes the same card
    /// again and again with guessed expiries and CVCs.
    pub rate_per_card: RateLimit,
    /// Declined charges per account: past the burst, charges answer 429 until the bucket
    /// refills.
    pub rate_declines: RateLimit,
    /// Take the client IP from the last `X-Forwarded-For` entry (behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Issuer metadata for cards (`--bin-table`); `None` leaves those fields null.
    pub bin_table: Option<Arc<BinTable>>,
    /// Serve the raw-card API (`--allow-raw-card-api`).
    pub allow_raw_card_api: bool,
    /// The snippet files to serve at `/js/{version}-{hash}/…` (`--snippet-dir`).
    pub snippet: Option<Arc<Assets>>,
    /// How `POST /v1/forward` reaches processors (`--forward-allow-private`,
    /// `--forward-ca-file`, `--forward-timeout`).
    pub forward: ForwardSettings,
    /// TLS on the public listener (`--tls-cert`, `--tls-key`).
    pub tls: Option<TlsFiles>,
    /// A proxy in front terminates TLS (`--tls-terminated-upstream`): plain HTTP on any
    /// address, and `Strict-Transport-Security` still sent.
    pub tls_terminated_upstream: bool,
    /// How long an uncaptured charge can be captured, in seconds (`--authorization-expiry`).
    pub authorization_secs: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key_grace_secs: defaults::KEY_GRACE_SECS,
            token_ttl_secs: defaults::TOKEN_TTL_SECS,
            iat_window_secs: defaults::IAT_WINDOW_SECS,
            body_limit: defaults::BODY_LIMIT,
            rate_per_key: defaults::RATE_PER_KEY,
            rate_per_ip: defaults::RATE_PER_IP,
            rate_per_card: RateLimit::per_window(defaults::CARD_TOKENS, defaults::CARD_WINDOW_SECS),
            rate_declines: RateLimit::per_window(defaults::DECLINES, defaults::DECLINE_WINDOW_SECS),
            trust_forwarded_for: false,
            bin_table: None,
            allow_raw_card_api: false,
            snippet: None,
            forward: ForwardSettings::new(Duration::from_secs(
                defaults::FORWARD_TIMEOUT_SECS.unsigned_abs(),
            )),
            tls: None,
            tls_terminated_upstream: false,
            authorization_secs: defaults::AUTHORIZATION_SECS,
        }
    }
}
