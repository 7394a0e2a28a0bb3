//! `cardseal-vault`: configuration, logging, and the server loop. Everything else is in the
//! library, so tests drive the same code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use cardseal_vault::accounts::{self, NewAccount};
use cardseal_vault::bins::BinTable;
use cardseal_vault::clock::{Clock, SystemClock};
use cardseal_vault::config::{Config, RateLimit};
use cardseal_vault::crypto::MasterKey;
use cardseal_vault::events;
use cardseal_vault::store::sqlite::SqliteStore;
use cardseal_vault::store::{KeyKind, Store, ledger};
use cardseal_vault::{AppState, admin_app, app, assets, keys};

#[derive(Parser)]
#[command(
    name = "cardseal-vault",
    version,
    about = "The cardseal card vault: sealed cards in, single-use tokens out."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
}

#[derive(Subcommand)]
enum EventsCommand {
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
struct Storage {
    /// Directory for the database and the master key file (created if missing).
    #[arg(long, env = "CARDSEAL_DATA_DIR")]
    data_dir: PathBuf,
    /// `sqlite://FILE` (default: a file in the data directory) or `postgres://…`.
    #[arg(long, env = "CARDSEAL_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "CARDSEAL_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Address for `/metrics` and `/healthz`, for operators only (keep it off the internet);
    /// port 0 picks a free port (printed on stdout). Without it, no metrics are served.
    #[arg(long, env = "CARDSEAL_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    #[command(flatten)]
    storage: Storage,
    /// Issuer metadata (binlist CSV format) for funding, country and issuer fields.
    #[arg(long, env = "CARDSEAL_BIN_TABLE")]
    bin_table: Option<PathBuf>,
    /// Enable the raw-card API of older vaults (puts callers in full PCI scope).
    #[arg(long, env = "CARDSEAL_ALLOW_RAW_CARD_API")]
    allow_raw_card_api: bool,
    /// Let `POST /v1/forward` reach loopback, private, link-local and metadata addresses
    /// (tests, or a processor on your own network).
    #[arg(long, env = "CARDSEAL_FORWARD_ALLOW_PRIVATE")]
    forward_allow_private: bool,
    /// Extra CA certificates (PEM) trusted for `POST /v1/forward`, beside the webpki roots.
    #[arg(long, env = "CARDSEAL_FORWARD_CA_FILE")]
    forward_ca_file: Option<PathBuf>,
    /// How long one forward may take, lookup to answer (e.g. 30s).
    #[arg(long, env = "CARDSEAL_FORWARD_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    forward_timeout: i64,
    /// Create or reuse a demo account allowed from http://localhost:* and http://127.0.0.1:*,
    /// and print its keys.
    #[arg(long, env = "CARDSEAL_DEMO")]
    demo: bool,
    /// Serve the cardseal snippet and its wasm from this directory (the build's `pkg/snippet/`)
    /// at `/js/{version}/cardseal.js`.
    #[arg(long, env = "CARDSEAL_SNIPPET_DIR")]
    snippet_dir: Option<PathBuf>,
    /// How long a rotated-out sealing key still decrypts (e.g. 90s, 30m, 24h, 7d).
    #[arg(long, env = "CARDSEAL_KEY_GRACE", default_value = "24h", value_parser = parse_duration)]
    key_grace: i64,
    /// Token creations per second per API key (0 disables the limit).
    #[arg(long, env = "CARDSEAL_KEY_RATE", default_value_t = 100.0)]
    key_rate: f64,
    /// Burst size per API key.
    #[arg(long, env = "CARDSEAL_KEY_BURST", default_value_t = 200.0)]
    key_burst: f64,
    /// Token creations per second per client IP (0 disables the limit).
    #[arg(long, env = "CARDSEAL_IP_RATE", default_value_t = 10.0)]
    ip_rate: f64,
    /// Burst size per client IP.
    #[arg(long, env = "CARDSEAL_IP_BURST", default_value_t = 60.0)]
    ip_burst: f64,
    /// Tokens of one card (by fingerprint) per account in 10 minutes, against card testing
    /// (0 disables the limit).
    #[arg(long, env = "CARDSEAL_CARD_RATE", default_value_t = 10)]
    card_tokens_per_10m: u32,
    /// Declined charges per account in a minute before charges answer 429 (0 disables).
    #[arg(long, env = "CARDSEAL_DECLINE_RATE", default_value_t = 20)]
    declines_per_minute: u32,
    /// Take the client IP from X-Forwarded-For (only behind a proxy you run).
    #[arg(long, env = "CARDSEAL_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// Worker threads (default: one per core).
    #[arg(long, env = "CARDSEAL_WORKERS")]
    workers: Option<usize>,
    /// Log format.
    #[arg(long, env = "CARDSEAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum AccountsCommand {
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
enum AccountKeysCommand {
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
enum KindArg {
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
enum KeysCommand {
    /// Add a new active sealing key; the previous ones decrypt for the grace period.
    Rotate {
        #[command(flatten)]
        storage: Storage,
    },
}

/// `90`, `90s`, `30m`, `24h` or `7d`, in seconds.
fn parse_duration(s: &str) -> Result<i64, String> {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workers = match &cli.command {
        Command::Serve(args) => args.workers,
        _ => Some(1),
    };
    let format = match &cli.command {
        Command::Serve(args) => args.log_format,
        _ => LogFormat::Text,
    };
    let _logs = init_logs(format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = workers {
        runtime.worker_threads(n.max(1));
    }
    let result = match runtime.build() {
        Ok(rt) => rt.block_on(run(cli.command)),
        Err(e) => Err(format!("cannot start the runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cardseal-vault: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr through a writer thread, so a request never waits on a write(2). Lines
/// are never dropped (`lossy(false)`): under a flood the writer slows requests instead. The
/// guard flushes on exit.
fn init_logs(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_env("CARDSEAL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // Buffered: the writer thread flushes whenever it has drained its queue, so a burst of
        // lines costs one write(2) and an idle vault's lines still appear at once.
        .finish(std::io::BufWriter::new(std::io::stderr()));
    // Colours only for a terminal: escape codes in a log file are noise, and cost time.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

async fn open_storage(storage: &Storage) -> Result<(Arc<dyn Store>, MasterKey), String> {
    create_data_dir(&storage.data_dir)?;
    let store: Arc<dyn Store> = match storage.database_url.as_deref() {
        None => Arc::new(SqliteStore::open(&storage.data_dir).map_err(|e| e.to_string())?),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            return Err(
                "PostgreSQL is not supported by this build yet; omit --database-url to use SQLite in the data directory"
                    .into(),
            );
        }
        Some(url) => match url.strip_prefix("sqlite://") {
            Some(path) => {
                Arc::new(SqliteStore::open_file(Path::new(path)).map_err(|e| e.to_string())?)
            }
            None => return Err("--database-url must start with sqlite:// or postgres://".into()),
        },
    };
    let master_env = std::env::var("CARDSEAL_MASTER_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    let master = MasterKey::load(master_env.as_deref(), &storage.data_dir)?;
    Ok((store, master))
}

fn create_data_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))
}

// Printing is these commands' output (keys, the listening address), not logging.
#[allow(clippy::print_stdout)]
fn print_account(account: &NewAccount, json: bool) -> Result<(), String> {
    if json {
        println!(
            "{}",
            serde_json::to_string(account).map_err(|e| e.to_string())?
        );
    } else {
        println!("account          {}", account.account);
        println!("publishable_key  {}", account.publishable_key);
        println!("secret_key       {}", account.secret_key);
        println!(
            "restricted_key   {}  (scope: detokenize)",
            account.restricted_key
        );
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_rolled(rolled: &accounts::RolledKey, json: bool) -> Result<(), String> {
    if json {
        println!(
            "{}",
            serde_json::to_string(rolled).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    // The same label as `accounts create` prints, so scripts find the key the same way.
    let label = match rolled.kind {
        "publishable" => "publishable_key",
        "secret" => "secret_key",
        _ => "restricted_key",
    };
    println!("account          {}", rolled.account);
    if rolled.scopes.is_empty() {
        println!("{label:<17}{}", rolled.key);
    } else {
        println!(
            "{label:<17}{}  (scope: {})",
            rolled.key,
            rolled.scopes.join(", ")
        );
    }
    println!(
        "old keys         {} stop working at {} (Unix time)",
        rolled.old_keys, rolled.old_keys_expire_at
    );
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_line(line: &str) {
    println!("{line}");
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Accounts(AccountsCommand::Create {
            storage,
            name,
            allowed_origins,
            json,
        }) => {
            let (store, master) = open_storage(&storage).await?;
            let account = accounts::create_account(
                store.as_ref(),
                &master,
                &name,
                &allowed_origins,
                false,
                SystemClock.now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            print_account(&account, json)
        }
        Command::Accounts(AccountsCommand::Update {
            storage,
            account,
            allowed_origins,
            clear_allowed_origins,
            forward_hosts,
            clear_forward_hosts,
        }) => {
            let origins = match (allowed_origins, clear_allowed_origins) {
                (Some(o), _) => Some(o),
                (None, true) => Some(Vec::new()),
                (None, false) => None,
            };
            let forward_hosts = match (forward_hosts, clear_forward_hosts) {
                (Some(h), _) => Some(h),
                (None, true) => Some(Vec::new()),
                (None, false) => None,
            };
            if origins.is_none() && forward_hosts.is_none() {
                return Err(
                    "nothing to update: give --allowed-origin, --clear-allowed-origins, --forward-host or --clear-forward-hosts"
                        .into(),
                );
            }
            let (store, _master) = open_storage(&storage).await?;
            let list = |l: &[String]| {
                if l.is_empty() {
                    "none".to_owned()
                } else {
                    l.join(" ")
                }
            };
            if let Some(origins) = origins {
                let origins = accounts::set_allowed_origins(store.as_ref(), &account, &origins)
                    .await
                    .map_err(|e| e.to_string())?;
                print_line(&format!(
                    "account {account}: allowed origins {}",
                    list(&origins)
                ));
            }
            if let Some(hosts) = forward_hosts {
                let hosts =
                    cardseal_vault::forward::set_forward_hosts(store.as_ref(), &account, &hosts)
                        .await?;
                print_line(&format!(
                    "account {account}: forward hosts {}",
                    list(&hosts)
                ));
            }
            Ok(())
        }
        Command::Accounts(AccountsCommand::Keys(AccountKeysCommand::Roll {
            storage,
            account,
            kind,
            scopes,
            grace,
            json,
        })) => {
            let (store, master) = open_storage(&storage).await?;
            let rolled = accounts::roll_key(
                store.as_ref(),
                &master,
                &account,
                kind.into(),
                &scopes,
                grace,
                SystemClock.now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            print_rolled(&rolled, json)
        }
        Command::Accounts(AccountsCommand::Keys(AccountKeysCommand::Revoke { storage, key })) => {
            let key = if key == "-" {
                let mut line = zeroize::Zeroizing::new(String::new());
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| format!("cannot read the key from stdin: {e}"))?;
                zeroize::Zeroizing::new(line.trim().to_owned())
            } else {
                zeroize::Zeroizing::new(key)
            };
            let (store, _master) = open_storage(&storage).await?;
            accounts::revoke_key(store.as_ref(), &key, SystemClock.now())
                .await
                .map_err(|e| e.to_string())?;
            print_line("revoked; a running vault refuses the key within a second");
            Ok(())
        }
        Command::Events(EventsCommand::Verify {
            storage,
            checkpoint: None,
        }) => {
            let (store, master) = open_storage(&storage).await?;
            match events::verify(store.as_ref(), &master).await? {
                Ok(n) => {
                    print_line(&format!("ok: {n} events, hash chain intact"));
                    Ok(())
                }
                Err(b) => Err(events::broken_message(&b)),
            }
        }
        Command::Events(EventsCommand::Verify {
            storage,
            checkpoint: Some(file),
        }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let (store, master) = open_storage(&storage).await?;
            let (n, heads) = events::verify_with_checkpoint(store.as_ref(), &master, &text).await?;
            print_line(&format!(
                "ok: {n} events, hash chain intact, {heads} checkpointed heads reached"
            ));
            Ok(())
        }
        Command::Events(EventsCommand::Checkpoint { storage }) => {
            let (store, master) = open_storage(&storage).await?;
            for head in events::checkpoint(store.as_ref(), &master).await? {
                print_line(&serde_json::to_string(&head).map_err(|e| e.to_string())?);
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate { storage }) => {
            let (store, master) = open_storage(&storage).await?;
            let had_keys = !store
                .sealing_keys()
                .await
                .map_err(|e| e.to_string())?
                .is_empty();
            let kid = keys::add_key(store.as_ref(), &master, SystemClock.now())
                .await
                .map_err(|e| e.to_string())?;
            print_line(&format!("new active key {kid}"));
            if had_keys {
                print_line(
                    "the previous key keeps decrypting for the grace period (--key-grace, default 24h)",
                );
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let (store, master) = open_storage(&args.storage).await?;
    let config = Config {
        key_grace_secs: args.key_grace,
        rate_per_key: RateLimit {
            per_second: args.key_rate,
            burst: args.key_burst,
        },
        rate_per_ip: RateLimit {
            per_second: args.ip_rate,
            burst: args.ip_burst,
        },
        rate_per_card: RateLimit::per_window(args.card_tokens_per_10m, 600),
        rate_declines: RateLimit::per_window(args.declines_per_minute, 60),
        trust_forwarded_for: args.trust_forwarded_for,
        bin_table: match &args.bin_table {
            Some(path) => {
                let table = BinTable::load(path)?;
                tracing::info!(path = %path.display(), ranges = table.len(), "BIN table loaded");
                Some(Arc::new(table))
            }
            None => None,
        },
        allow_raw_card_api: args.allow_raw_card_api,
        forward: {
            let mut forward = cardseal_vault::forward::ForwardSettings::default()
                .with_allow_private(args.forward_allow_private)
                .with_timeout(Duration::from_secs(
                    args.forward_timeout.max(1).unsigned_abs(),
                ));
            if let Some(path) = &args.forward_ca_file {
                forward = forward.with_ca_file(path)?;
            }
            forward
        },
        ..Config::default()
    };
    if args.forward_allow_private {
        tracing::warn!(
            "--forward-allow-private: forwards may reach loopback, private and metadata addresses"
        );
    }
    if args.allow_raw_card_api {
        tracing::warn!(
            "the raw-card API is on: its callers handle card numbers and are in full PCI DSS scope"
        );
    }
    let state = AppState::new(config, store, master, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    // Requests that were running when the last process stopped will never finish: free their
    // idempotency keys now, so that retries run at once instead of after the claim lapses.
    // (Sound with one process per database, as SQLite is used.)
    let released = ledger::write(state.store(), |tx| {
        tx.release_all_claims()
            .map_err(ledger::TxError::<String>::Store)
    })
    .await
    .map_err(|e| match e {
        ledger::TxError::Store(e) => e.to_string(),
        ledger::TxError::Abort(e) => e,
    })?;
    if released > 0 {
        tracing::info!(
            keys = released,
            "released idempotency keys of interrupted requests"
        );
    }
    if args.demo {
        let account = accounts::demo_account(state.store(), state.master(), state.now())
            .await
            .map_err(|e| e.to_string())?;
        print_line("demo account (allowed from http://localhost:* and http://127.0.0.1:*):");
        print_account(&account, false)?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(admin) = args.admin_listen {
        let admin_listener = tokio::net::TcpListener::bind(admin)
            .await
            .map_err(|e| format!("cannot listen on {admin} (--admin-listen): {e}"))?;
        let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;
        // Printed before the public address: tools wait for `listening on` and then read on.
        print_line(&format!(
            "admin            http://{admin_addr}  (/metrics, /healthz)"
        ));
        tracing::info!(addr = %admin_addr, "admin listening");
        let admin_router = admin_app(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(admin_listener, admin_router).await {
                tracing::error!(error = %e, "the admin listener stopped");
            }
        });
    }
    tokio::spawn(state.clone().maintain(Duration::from_secs(10)));
    tracing::info!(%addr, "listening");
    let mut router = app(state);
    if let Some(dir) = &args.snippet_dir {
        let assets = assets::Assets::load(dir, env!("CARGO_PKG_VERSION"))?;
        let name = "cardseal.js";
        print_line(&format!(
            "snippet          http://{addr}{} integrity={}",
            assets.path(name),
            assets.integrity(name).unwrap_or_default()
        ));
        router = router.merge(assets::routes(Arc::new(assets)));
    }
    print_line(&format!("listening on http://{addr}"));
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(|e| e.to_string())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
