//! Prometheus metrics, kept by hand: a few counters, latency histograms of requests and of
//! storage transactions, the storage pool, and the instance id.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The vault's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Names this process among the instances on one database (`cardseal_instance_info`,
    /// `/healthz`).
    instance: String,
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    tokens_created: [AtomicU64; 2],
    tokens_rejected: Mutex<BTreeMap<&'static str, u64>>,
    charges: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            instance: crate::ids::new_id("inst_"),
            requests: Mutex::default(),
            latency: Mutex::default(),
            tokens_created: Default::default(),
            tokens_rejected: Mutex::default(),
            charges: Mutex::default(),
        }
    }
}

/// Latency of storage transactions by kind (`write`, `read`), for every store in the process:
/// timed where every caller goes through ([`crate::store::write_or_abort`] and
/// [`crate::store::read_or_abort`]), whatever the backend.
static TRANSACTIONS: Mutex<BTreeMap<&'static str, Histogram>> = Mutex::new(BTreeMap::new());

/// Records one storage transaction of `kind` (`write` or `read`), queueing included.
pub fn transaction(kind: &'static str, elapsed: Duration) {
    lock(&TRANSACTIONS)
        .entry(kind)
        .or_default()
        .observe(elapsed.as_secs_f64());
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str, label: &str, value: &str) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {}", self.count);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Counts a finished request. `route` is the route template, never the raw path.
    pub fn request(&self, method: &str, route: &'static str, status: u16, elapsed: Duration) {
        let method = ["GET", "POST", "DELETE", "OPTIONS", "HEAD", "PUT", "PATCH"]
            .into_iter()
            .find(|m| *m == method)
            .unwrap_or("other");
        *lock(&self.requests)
            .entry((method, route, status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        let h = latency.entry(route).or_default();
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts a token made; `cvc` for CVC tokens.
    pub fn token_created(&self, cvc: bool) {
        self.tokens_created[usize::from(cvc)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused token request by error code.
    pub fn token_rejected(&self, code: &'static str) {
        *lock(&self.tokens_rejected).entry(code).or_default() += 1;
    }

    /// Counts a charge by status and decline code.
    pub fn charge(&self, status: &'static str, decline_code: Option<&'static str>) {
        *lock(&self.charges)
            .entry((status, decline_code.unwrap_or("")))
            .or_default() += 1;
    }

    /// This instance's id, made at start.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// [`Metrics::render`], then the storage transactions and `pool`.
    pub fn render_with(&self, pool: &PoolStats) -> String {
        let mut out = self.render();
        out.push_str(
            "# HELP cardseal_db_transaction_duration_seconds Storage transaction latency by kind, queueing included.\n",
        );
        out.push_str("# TYPE cardseal_db_transaction_duration_seconds histogram\n");
        for (kind, h) in lock(&TRANSACTIONS).iter() {
            h.render(
                &mut out,
                "cardseal_db_transaction_duration_seconds",
                "kind",
                kind,
            );
        }
        out.push_str("# HELP cardseal_db_pool_connections Storage connections by state.\n");
        out.push_str("# TYPE cardseal_db_pool_connections gauge\n");
        for (state, n) in [("idle", pool.idle), ("in_use", pool.in_use)] {
            let _ = writeln!(out, "cardseal_db_pool_connections{{state=\"{state}\"}} {n}");
        }
        out.push_str("# HELP cardseal_db_pool_max_connections Storage connections at most.\n");
        out.push_str("# TYPE cardseal_db_pool_max_connections gauge\n");
        let _ = writeln!(out, "cardseal_db_pool_max_connections {}", pool.max);
        out.push_str(
            "# HELP cardseal_db_pool_waiting Storage work waiting for a connection (SQLite: for the writer).\n",
        );
        out.push_str("# TYPE cardseal_db_pool_waiting gauge\n");
        let _ = writeln!(out, "cardseal_db_pool_waiting {}", pool.waiting);
        out
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        out.push_str(
            "# HELP cardseal_instance_info This vault process; its id is new at every start.\n",
        );
        out.push_str("# TYPE cardseal_instance_info gauge\n");
        let _ = writeln!(
            out,
            "cardseal_instance_info{{instance_id=\"{}\",version=\"{}\"}} 1",
            self.instance,
            env!("CARGO_PKG_VERSION")
        );
        out.push_str(
            "# HELP cardseal_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE cardseal_http_requests_total counter\n");
        for ((method, route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "cardseal_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP cardseal_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE cardseal_http_request_duration_seconds histogram\n");
        for (route, h) in lock(&self.latency).iter() {
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "cardseal_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "cardseal_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "cardseal_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "cardseal_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP cardseal_tokens_created_total Tokens created by type.\n");
        out.push_str("# TYPE cardseal_tokens_created_total counter\n");
        for (i, kind) in ["card", "cvc"].iter().enumerate() {
            let _ = writeln!(
                out,
                "cardseal_tokens_created_total{{type=\"{kind}\"}} {}",
                self.tokens_created[i].load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP cardseal_tokens_rejected_total Refused token requests by error code.\n",
        );
        out.push_str("# TYPE cardseal_tokens_rejected_total counter\n");
        for (code, n) in lock(&self.tokens_rejected).iter() {
            let _ = writeln!(out, "cardseal_tokens_rejected_total{{code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP cardseal_charges_total Charges by status and decline code.\n");
        out.push_str("# TYPE cardseal_charges_total counter\n");
        for ((status, decline), n) in lock(&self.charges).iter() {
            let _ = writeln!(
                out,
                "cardseal_charges_total{{status=\"{status}\",decline_code=\"{decline}\"}} {n}"
            );
        }
        out
    }
}

/// A backend's connections, for `/metrics`. Fields a backend does not have stay 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    /// Connections the pool may hold at most.
    pub max: u64,
    /// Connections open and idle.
    pub idle: u64,
    /// Connections in use.
    pub in_use: u64,
    /// Work waiting for a connection (SQLite: jobs queued for the writer).
    pub waiting: u64,
}
