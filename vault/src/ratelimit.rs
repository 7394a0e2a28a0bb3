//! Token-bucket rate limiting, in memory (per vault instance). Time comes from the vault's
//! clock, in whole seconds: a bucket refills by the seconds between two of its requests, so
//! nothing is lost to the rounding, and tests move the clock instead of sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, SystemClock};
use crate::config::RateLimit;

/// Buckets above this count trigger a sweep of the full (idle) ones.
const SWEEP_AT: usize = 10_000;

/// One limit applied to many keys (API keys, IP addresses).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// Unix seconds of the bucket's last request.
    at: i64,
}

impl RateLimiter {
    /// A limiter with `limit` per key, on the system clock.
    pub fn new(limit: RateLimit) -> Self {
        Self::with_clock(limit, Arc::new(SystemClock))
    }

    /// A limiter with `limit` per key, on `clock`.
    pub fn with_clock(limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        Self {
            limit,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; `Err(seconds)` says when to retry.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.take(key, 1.0)
    }

    /// Whether `key`'s bucket is empty, without taking from it; `Err(seconds)` says when it
    /// holds one again. For limits counted after the fact, such as declines.
    pub fn peek(&self, key: &str) -> Result<(), u64> {
        self.take(key, 0.0)
    }

    fn take(&self, key: &str, cost: f64) -> Result<(), u64> {
        if !self.limit.enabled() {
            return Ok(());
        }
        let now = self.clock.now();
        let elapsed = |at: i64| now.saturating_sub(at).max(0) as f64;
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| b.tokens + elapsed(b.at) * per_second < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + elapsed(bucket.at) * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= cost;
            Ok(())
        } else {
            // Whole seconds, rounded up, as Retry-After wants them.
            let wait = ((1.0 - bucket.tokens) / per_second).ceil();
            Err(if wait.is_finite() && wait >= 1.0 {
                wait as u64
            } else {
                1
            })
        }
    }
}

/// The bucket of a client address: an IPv4 address, or an IPv6 address's /64 (one customer
/// line gets a whole /64, so counting single IPv6 addresses would count nothing).
pub fn client_bucket(ip: Option<&str>) -> String {
    match ip.and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            client_bucket(Some("2001:db8:1:2:aaaa::1")),
            client_bucket(Some("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            client_bucket(Some("2001:db8:1:2::1")),
            client_bucket(Some("2001:db8:1:3::1"))
        );
        assert_eq!(client_bucket(Some("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(client_bucket(Some("192.0.2.1")), "192.0.2.1");
        assert_eq!(client_bucket(None), "unknown");
    }

    #[test]
    fn peek_does_not_take() {
        let l = RateLimiter::new(RateLimit {
            per_second: 0.001,
            burst: 1.0,
        });
        assert!(l.peek("a").is_ok());
        assert!(l.peek("a").is_ok());
        assert!(l.check("a").is_ok());
        assert!(l.peek("a").is_err());
    }

    #[test]
    fn a_burst_passes_then_the_bucket_runs_dry() {
        let l = RateLimiter::new(RateLimit {
            per_second: 0.001,
            burst: 3.0,
        });
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_err());
        assert!(l.check("b").is_ok());
        assert!(RateLimiter::new(RateLimit::OFF).check("a").is_ok());
    }
}
