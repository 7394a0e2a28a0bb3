//! Runtime settings of a running vault (the CLI fills them from flags and `CARDSEAL_*`).

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
    pub bin_table: Option<std::sync::Arc<crate::bins::BinTable>>,
    /// Serve the raw-card API (`--allow-raw-card-api`).
    pub allow_raw_card_api: bool,
    /// How `POST /v1/forward` reaches processors (`--forward-allow-private`,
    /// `--forward-ca-file`, `--forward-timeout`).
    pub forward: crate::forward::ForwardSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key_grace_secs: 24 * 3600,
            token_ttl_secs: 15 * 60,
            iat_window_secs: 5 * 60,
            body_limit: 8 * 1024,
            rate_per_key: RateLimit {
                per_second: 100.0,
                burst: 200.0,
            },
            rate_per_ip: RateLimit {
                per_second: 10.0,
                burst: 60.0,
            },
            rate_per_card: RateLimit::per_window(10, 600),
            rate_declines: RateLimit::per_window(20, 60),
            trust_forwarded_for: false,
            bin_table: None,
            allow_raw_card_api: false,
            forward: crate::forward::ForwardSettings::default(),
        }
    }
}
