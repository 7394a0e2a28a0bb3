//! The command line: clap's types for `cardseal-vault` and its subcommands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cardseal_vault::assets::Assets;
use cardseal_vault::bins::BinTable;
use cardseal_vault::clock::{Clock, SystemClock};
use cardseal_vault::config::{Config, PublicUrl, RateLimit, defaults};
use cardseal_vault::store::KeyKind;
use cardseal_vault::tls::TlsFiles;
use cardseal_vault::{keys, migrate};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "cardseal-vault",
    version,
    about = "The cardseal card vault: sealed cards in, single-use tokens out."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the vault's HTTP API.
    Serve(Box<ServeArgs>),
    /// Manage accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Manage the RSA sealing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check the audit log.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Write every saved card of an account, sealed for another vault's import key, and a
    /// signed manifest beside it (`FILE.manifest.json`). Resumable: after an interruption, run
    /// it again with the same arguments.
    Export(Box<ExportArgs>),
    /// Store the cards of an export made by another vault's `export`, after checking its
    /// signed manifest and every record. Idempotent: run it again to finish an interrupted one.
    Import(Box<ImportArgs>),
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) storage: Storage,
    /// The account whose saved cards to export, `acct_…`.
    #[arg(long)]
    pub(crate) account: String,
    /// The receiving vault's import key: the JWKS its `keys export-jwks --purpose import`
    /// printed, as a file.
    #[arg(long, value_name = "FILE")]
    pub(crate) to_jwks: PathBuf,
    /// The RFC 7638 thumbprint of the receiving key, as the receiver gave it out of band;
    /// any other key is refused.
    #[arg(long, value_name = "T")]
    pub(crate) pin_thumbprint: String,
    /// Where to write the export (JSON Lines); the manifest goes to FILE.manifest.json.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
}

#[derive(Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) storage: Storage,
    /// The account to store the cards in, `acct_…` (of this vault).
    #[arg(long)]
    pub(crate) account: String,
    /// The export file.
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: PathBuf,
    /// Its manifest (FILE.manifest.json).
    #[arg(long, value_name = "FILE")]
    pub(crate) manifest: PathBuf,
    /// The exporting vault's export-signing public key (its `keys export-jwks --purpose
    /// export-signing`), given out of band.
    #[arg(long, value_name = "FILE")]
    pub(crate) verify_key: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum JwksPurpose {
    /// The RSA key other vaults seal exports for (this vault receives).
    Import,
    /// The Ed25519 key this vault signs export manifests with (this vault sends).
    ExportSigning,
}

#[derive(Subcommand)]
pub(crate) enum EventsCommand {
    /// Recompute the audit log's keyed hash chains; exits non-zero naming the first broken
    /// event.
    Verify {
        #[command(flatten)]
        storage: Storage,
        /// Also check against a file printed by `events checkpoint`: its signatures, and that
        /// every chain still reaches the head it had then (catches removed trailing events).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Print a signed head (account, seq, event, hash, MAC) of every account's chain, one JSON
    /// line each, to keep away from the data directory for `events verify --checkpoint`.
    Checkpoint {
        #[command(flatten)]
        storage: Storage,
    },
}

#[derive(Args)]
pub(crate) struct Storage {
    /// Directory for the database (created if missing); with --demo, also the master key.
    #[arg(long, env = "CARDSEAL_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    #[command(flatten)]
    pub(crate) custody: Custody,
    /// `sqlite://FILE` (default: a file in the data directory) or `postgres://…`.
    #[arg(long, env = "CARDSEAL_DATABASE_URL")]
    pub(crate) database_url: Option<String>,
}

/// Where the master key comes from (besides `CARDSEAL_MASTER_KEY`, which holds the key itself).
#[derive(Args)]
pub(crate) struct Custody {
    /// A file holding the master key (64 hex characters or base64 of 32 bytes): mode 0600,
    /// outside the data directory.
    #[arg(long, env = "CARDSEAL_MASTER_KEY_FILE", value_name = "FILE")]
    pub(crate) master_key_file: Option<PathBuf>,
    /// A command that prints the master key, e.g. a KMS client. Run without a shell (words
    /// split on spaces, no quoting); a failing command stops the vault.
    #[arg(
        long,
        env = "CARDSEAL_MASTER_KEY_COMMAND",
        value_name = "CMD",
        conflicts_with = "master_key_file"
    )]
    pub(crate) master_key_command: Option<String>,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "CARDSEAL_LISTEN", default_value = "127.0.0.1:8787")]
    pub(crate) listen: SocketAddr,
    /// Address for `/metrics` and `/healthz`, for operators only (keep it off the internet);
    /// port 0 picks a free port (printed on stdout). Without it, no metrics are served.
    #[arg(long, env = "CARDSEAL_ADMIN_LISTEN")]
    pub(crate) admin_listen: Option<SocketAddr>,
    /// HTTPS on --listen with this certificate chain (PEM, leaf first); needs --tls-key. TLS 1.2
    /// and 1.3 only. SIGHUP reloads the certificate and key.
    #[arg(
        long,
        env = "CARDSEAL_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "CARDSEAL_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
    /// A proxy in front of the vault terminates TLS: allows plain HTTP on a --listen address
    /// that is not loopback.
    #[arg(
        long,
        env = "CARDSEAL_TLS_TERMINATED_UPSTREAM",
        conflicts_with = "tls_cert"
    )]
    pub(crate) tls_terminated_upstream: bool,
    #[command(flatten)]
    pub(crate) storage: Storage,
    /// Issuer metadata (binlist CSV format) for funding, country and issuer fields.
    #[arg(long, env = "CARDSEAL_BIN_TABLE")]
    pub(crate) bin_table: Option<PathBuf>,
    /// Enable the raw-card API of older vaults (puts callers in full PCI scope).
    #[arg(long, env = "CARDSEAL_ALLOW_RAW_CARD_API")]
    pub(crate) allow_raw_card_api: bool,
    /// Let `POST /v1/forward` reach loopback, private, link-local and metadata addresses
    /// (tests, or a processor on your own network).
    #[arg(long, env = "CARDSEAL_FORWARD_ALLOW_PRIVATE")]
    pub(crate) forward_allow_private: bool,
    /// Extra CA certificates (PEM) trusted for `POST /v1/forward`, beside the webpki roots.
    #[arg(long, env = "CARDSEAL_FORWARD_CA_FILE")]
    pub(crate) forward_ca_file: Option<PathBuf>,
    /// How long one forward may take, lookup to answer, in seconds or e.g. 30s, 2m; at most 5m.
    #[arg(long, env = "CARDSEAL_FORWARD_TIMEOUT", default_value_t = defaults::FORWARD_TIMEOUT_SECS, value_parser = parse_forward_timeout)]
    pub(crate) forward_timeout: i64,
    /// Create or reuse a demo account allowed from http://localhost:* and http://127.0.0.1:*,
    /// and print its keys.
    #[arg(long, env = "CARDSEAL_DEMO")]
    pub(crate) demo: bool,
    /// Serve the cardseal snippet and its wasm from this directory (the build's `pkg/snippet/`)
    /// at `/js/{version}-{hash}/cardseal.js` (the line `snippet …` on stdout gives the URL and its integrity).
    #[arg(long, env = "CARDSEAL_SNIPPET_DIR")]
    pub(crate) snippet_dir: Option<PathBuf>,
    /// How long a rotated-out sealing key still decrypts, in seconds or e.g. 90s, 30m, 24h, 7d.
    #[arg(long, env = "CARDSEAL_KEY_GRACE", default_value_t = defaults::KEY_GRACE_SECS, value_parser = parse_duration)]
    pub(crate) key_grace: i64,
    /// Token creations per second per API key (0 disables the limit).
    #[arg(long, env = "CARDSEAL_KEY_RATE", default_value_t = defaults::RATE_PER_KEY.per_second)]
    pub(crate) key_rate: f64,
    /// Burst size per API key.
    #[arg(long, env = "CARDSEAL_KEY_BURST", default_value_t = defaults::RATE_PER_KEY.burst)]
    pub(crate) key_burst: f64,
    /// Token creations per second per client IP (0 disables the limit).
    #[arg(long, env = "CARDSEAL_IP_RATE", default_value_t = defaults::RATE_PER_IP.per_second)]
    pub(crate) ip_rate: f64,
    /// Burst size per client IP.
    #[arg(long, env = "CARDSEAL_IP_BURST", default_value_t = defaults::RATE_PER_IP.burst)]
    pub(crate) ip_burst: f64,
    /// Tokens of one card (by fingerprint) per account in 10 minutes, against card testing
    /// (0 disables the limit).
    #[arg(long, env = "CARDSEAL_CARD_RATE", default_value_t = defaults::CARD_TOKENS)]
    pub(crate) card_tokens_per_10m: u32,
    /// Declined charges per account in a minute before charges answer 429 (0 disables).
    #[arg(long, env = "CARDSEAL_DECLINE_RATE", default_value_t = defaults::DECLINES)]
    pub(crate) declines_per_minute: u32,
    /// Take the client IP from X-Forwarded-For (only behind a proxy you run); needs
    /// --public-url.
    #[arg(long, env = "CARDSEAL_TRUST_FORWARDED_FOR", requires = "public_url")]
    pub(crate) trust_forwarded_for: bool,
    /// The URL browsers reach the vault at, e.g. https://vault.example.com: required when it
    /// differs from --listen (behind a proxy). The hosted fields are recognized by it.
    #[arg(long, env = "CARDSEAL_PUBLIC_URL", value_parser = PublicUrl::parse)]
    pub(crate) public_url: Option<PublicUrl>,
    /// Worker threads (default: one per core).
    #[arg(long, env = "CARDSEAL_WORKERS")]
    pub(crate) workers: Option<usize>,
    /// Log format.
    #[arg(long, env = "CARDSEAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// How long an authorization (a charge with `capture: false`) can be captured: seconds,
    /// or with a unit (`7d`, `12h`).
    #[arg(long, env = "CARDSEAL_AUTHORIZATION_EXPIRY", default_value_t = defaults::AUTHORIZATION_SECS, value_parser = parse_duration)]
    pub(crate) authorization_expiry: i64,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum AccountsCommand {
    /// Create an account and print its id and API keys.
    Create {
        #[command(flatten)]
        storage: Storage,
        /// A display name.
        #[arg(long)]
        name: String,
        /// An origin publishable keys may be used from, e.g. https://shop.example or
        /// http://127.0.0.1:* (any port). Repeat or list several. Without one, the
        /// publishable key works only outside browsers.
        #[arg(long = "allowed-origin", num_args = 1..)]
        allowed_origins: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change an account. A running vault applies the change within a second.
    Update {
        #[command(flatten)]
        storage: Storage,
        /// The account, `acct_…`.
        #[arg(long)]
        account: String,
        /// Replace the origins publishable keys may be used from (repeat or list several).
        #[arg(long = "allowed-origin", num_args = 1.., conflicts_with = "clear_allowed_origins")]
        allowed_origins: Option<Vec<String>>,
        /// Remove every allowed origin: the publishable keys then work only outside browsers.
        #[arg(long)]
        clear_allowed_origins: bool,
        /// Replace the hosts `POST /v1/forward` may send cards to: api.psp.example,
        /// *.psp.example, or with a port, localhost:8443 (repeat or list several).
        #[arg(long = "forward-host", num_args = 1.., conflicts_with = "clear_forward_hosts")]
        forward_hosts: Option<Vec<String>>,
        /// Remove every forward host: `POST /v1/forward` is then refused.
        #[arg(long)]
        clear_forward_hosts: bool,
    },
    /// Roll or revoke API keys.
    #[command(subcommand)]
    Keys(AccountKeysCommand),
}

#[derive(Subcommand)]
pub(crate) enum AccountKeysCommand {
    /// Make a new key of one kind and print it; the account's old keys of that kind keep working
    /// for the grace period, then stop.
    Roll {
        #[command(flatten)]
        storage: Storage,
        /// The account, `acct_…`.
        #[arg(long)]
        account: String,
        /// Which key to replace.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// A restricted key's scopes (default: detokenize). Repeat or list several.
        #[arg(long = "scope", num_args = 1..)]
        scopes: Vec<String>,
        /// How long the old keys keep working (e.g. 0, 90s, 30m, 24h, 7d); 0 stops them at once.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        grace: i64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Stop a key at once; a running vault refuses it within a second. `-` reads the key from
    /// stdin, which keeps it out of the process list and the shell history.
    Revoke {
        #[command(flatten)]
        storage: Storage,
        /// The whole key (`pk_…`, `sk_…`, `rk_…`), or `-`.
        key: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum KindArg {
    Pk,
    Sk,
    Rk,
}

impl From<KindArg> for KeyKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Pk => KeyKind::Publishable,
            KindArg::Sk => KeyKind::Secret,
            KindArg::Rk => KeyKind::Restricted,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Add a new active sealing key; the previous ones decrypt for the grace period.
    Rotate {
        #[command(flatten)]
        storage: Storage,
    },
    /// Re-wrap every key under a new master key. The current key comes from the usual flags;
    /// the new one from FILE, made (mode 0600) if it does not exist. Stop the vault first.
    /// Resumable: after an interruption, run it again with the same arguments.
    RotateMaster {
        #[command(flatten)]
        storage: Storage,
        /// Where the new master key is (or is to be written), outside the data directory.
        #[arg(long, value_name = "FILE")]
        new_master_key_file: PathBuf,
    },
    /// Print the public key (a JWKS) of a migration key, made on first use; its RFC 7638
    /// thumbprint goes to stderr, to pass on out of band.
    ExportJwks {
        #[command(flatten)]
        storage: Storage,
        /// Which key.
        #[arg(long, value_enum)]
        purpose: JwksPurpose,
    },
}

/// `90`, `90s`, `30m`, `24h` or `7d`, in seconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 24h or 7d"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?} is not a duration like 90s, 30m, 24h or 7d")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| "duration too long".to_owned())
}

/// [`parse_duration`], 1 s to [`defaults::MAX_FORWARD_TIMEOUT_SECS`].
fn parse_forward_timeout(s: &str) -> Result<i64, String> {
    let secs = parse_duration(s)?;
    if !(1..=defaults::MAX_FORWARD_TIMEOUT_SECS).contains(&secs) {
        return Err(format!(
            "the forward timeout is 1s to {}m",
            defaults::MAX_FORWARD_TIMEOUT_SECS / 60
        ));
    }
    Ok(secs)
}

impl ServeArgs {
    /// The settings these flags ask for, with the BIN table and snippet files loaded.
    pub(crate) fn config(&self) -> Result<Config, String> {
        let bin_table = match &self.bin_table {
            Some(path) => {
                let table = BinTable::load(path)?;
                tracing::info!(path = %path.display(), ranges = table.len(), "BIN table loaded");
                Some(Arc::new(table))
            }
            None => None,
        };
        let snippet = match &self.snippet_dir {
            Some(dir) => Some(Arc::new(Assets::load(dir, env!("CARGO_PKG_VERSION"))?)),
            None => None,
        };
        let mut forward = Config::default()
            .forward
            .with_allow_private(self.forward_allow_private)
            .with_timeout(Duration::from_secs(
                self.forward_timeout.max(1).unsigned_abs(),
            ));
        if let Some(path) = &self.forward_ca_file {
            forward = forward.with_ca_file(path)?;
        }
        Ok(Config {
            key_grace_secs: self.key_grace,
            rate_per_key: RateLimit {
                per_second: self.key_rate,
                burst: self.key_burst,
            },
            rate_per_ip: RateLimit {
                per_second: self.ip_rate,
                burst: self.ip_burst,
            },
            rate_per_card: RateLimit::per_window(
                self.card_tokens_per_10m,
                defaults::CARD_WINDOW_SECS,
            ),
            rate_declines: RateLimit::per_window(
                self.declines_per_minute,
                defaults::DECLINE_WINDOW_SECS,
            ),
            trust_forwarded_for: self.trust_forwarded_for,
            public_url: self.public_url.clone(),
            bin_table,
            allow_raw_card_api: self.allow_raw_card_api,
            snippet,
            forward,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            tls_terminated_upstream: self.tls_terminated_upstream,
            authorization_secs: self.authorization_expiry,
            ..Config::default()
        })
    }
}

fn read_text(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// `keys export-jwks`.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) async fn export_jwks(
    storage: &Storage,
    purpose: JwksPurpose,
    env_key: crate::EnvKey,
) -> Result<(), String> {
    let (_store, master) = crate::open_storage(storage, env_key).await?;
    let now = SystemClock.now();
    let jwk = match purpose {
        JwksPurpose::Import => keys::import_key(&storage.data_dir, &master, now)?.jwk,
        JwksPurpose::ExportSigning => {
            keys::export_signing_key(&storage.data_dir, &master, now)?.jwk
        }
    };
    let thumbprint = migrate::thumbprint(&jwk).unwrap_or_default();
    println!("{}", serde_json::json!({ "keys": [jwk] }));
    eprintln!("thumbprint {thumbprint}  (RFC 7638; give it to the other side out of band)");
    Ok(())
}

/// `export`.
#[allow(clippy::print_stdout)]
pub(crate) async fn export(args: &ExportArgs, env_key: crate::EnvKey) -> Result<(), String> {
    let jwks = read_text(&args.to_jwks, "--to-jwks")?;
    let (store, master) = crate::open_storage(&args.storage, env_key).await?;
    // Appending the audit event needs it.
    let master = Arc::new(master);
    store.use_master_key(Arc::clone(&master));
    let done = migrate::export(
        store.as_ref(),
        &master,
        &args.storage.data_dir,
        &args.account,
        migrate::ExportTo {
            jwks: &jwks,
            pin: &args.pin_thumbprint,
            out: &args.out,
        },
        SystemClock.now(),
    )
    .await?;
    let manifest = migrate::manifest_path(&args.out);
    if done.already_complete {
        println!(
            "already complete: {} cards in {}",
            done.count,
            args.out.display()
        );
    } else {
        println!(
            "exported {} cards ({} from an earlier run) to {}",
            done.count,
            done.resumed,
            args.out.display()
        );
    }
    println!("manifest {}", manifest.display());
    println!(
        "sealed for {} (thumbprint {})",
        done.receiving_kid, done.receiving_thumbprint
    );
    Ok(())
}

/// `import`.
#[allow(clippy::print_stdout)]
pub(crate) async fn import(args: &ImportArgs, env_key: crate::EnvKey) -> Result<(), String> {
    let manifest_text = read_text(&args.manifest, "--manifest")?;
    let key_text = read_text(&args.verify_key, "--verify-key")?;
    // The signature first: nothing else is read from an export that does not verify.
    let manifest = migrate::verify_manifest(&manifest_text, &key_text)?;
    let (store, master) = crate::open_storage(&args.storage, env_key).await?;
    // Appending the audit event needs it.
    let master = Arc::new(master);
    store.use_master_key(Arc::clone(&master));
    let done = migrate::import(
        store.as_ref(),
        &master,
        &args.storage.data_dir,
        &args.account,
        &args.input,
        &manifest,
        SystemClock.now(),
    )
    .await?;
    println!(
        "imported {}, already present {}, refused {}",
        done.imported,
        done.already_present,
        done.refused.len()
    );
    for r in &done.refused {
        println!(
            "refused record {} ({}): {}",
            r.index,
            r.id.as_deref().unwrap_or("no id"),
            r.reason
        );
    }
    if done.refused.is_empty() {
        Ok(())
    } else {
        Err(format!("{} records refused", done.refused.len()))
    }
}
