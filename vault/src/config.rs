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
    /// Token creations per API key: the merchant's whole checkout, every client IP together.
    /// A burst of 100, then 20 a second (72,000 an hour), which few checkouts reach and which
    /// caps a card-testing run spread over many addresses; a busier merchant raises it.
    pub const RATE_PER_KEY: RateLimit = RateLimit {
        per_second: 20.0,
        burst: 100.0,
    };
    /// Token creations (and other publishable-key writes) per client IP (an IPv6 /64): 20 at
    /// once, then one every 30 seconds. A shopper tokenizes a card once per attempt, a few
    /// times with typos; card testing from one address tokenizes card after card. Adyen's
    /// "shopper IP usage frequency" check defaults to 5 payments in 30 minutes; this is
    /// looser, for offices and carrier NAT behind one address, and still stops a run of
    /// 100 cards in a minute after the first 22. (The old default, 60 then 10 a second, let
    /// 600 a minute through.)
    pub const RATE_PER_IP: RateLimit = RateLimit {
        per_second: 1.0 / 30.0,
        burst: 20.0,
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
    /// The longest `--forward-timeout` accepted: 5 minutes. A forward holds its
    /// `Idempotency-Key` for its timeout and a minute more, so the cap also bounds how long a
    /// key of a crashed forward stays locked.
    pub const MAX_FORWARD_TIMEOUT_SECS: i64 = 5 * 60;
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

/// The vault's public origin: `http` or `https`, a host, the port only when it is not the
/// scheme's default, lower case; as a browser writes it in `Origin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Parses `https://host[:port]` (a trailing `/` allowed; no path, query or user info).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            || format!("--public-url {text:?} is not an origin such as https://vault.example.com");
        let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(bad()),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
        if authority.is_empty()
            || authority
                .chars()
                .any(|c| matches!(c, '/' | '?' | '#' | '@' | ' ') || c.is_control())
        {
            return Err(bad());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => {
                (h, Some(p.parse::<u16>().map_err(|_| bad())?))
            }
            _ => (authority.as_str(), None),
        };
        Ok(Self(match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }))
    }

    /// `scheme://host[:port]`.
    pub fn as_str(&self) -> &str {
        &self.0
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
    /// The origin browsers see the vault at (`--public-url`), e.g. `https://vault.example.com`:
    /// its own pages (the hosted fields) are recognized by it rather than by the `Host`
    /// header, which a proxy in front rewrites to the upstream address. `None`: the `Host`.
    pub public_url: Option<PublicUrl>,
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
            public_url: None,
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
