//! `cardseal-vault`: flags to settings ([`cli`]), logging, and what the commands print.
//! Everything else, starting and serving the vault included, is in the library, so tests drive
//! the same code.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cardseal_vault::accounts::{self, NewAccount};
use cardseal_vault::clock::{Clock, SystemClock};
use cardseal_vault::crypto::{MASTER_KEY_FILE, MasterKey};
use cardseal_vault::custody::{self, MasterKeySource};
use cardseal_vault::store::postgres::PostgresStore;
use cardseal_vault::store::sqlite::SqliteStore;
use cardseal_vault::store::{self, Store};
use cardseal_vault::{Vault, events, forward, keys, tls};

use crate::cli::{
    AccountKeysCommand, AccountsCommand, Cli, Command, EventsCommand, KeysCommand, LogFormat,
    ServeArgs, Storage,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // First: this may exec the vault again, to take the key out of its environment.
    let env_key = match custody::take_env_key() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("cardseal-vault: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        Ok(rt) => rt.block_on(run(cli.command, env_key)),
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

/// What the master key is wanted for: `serve` refuses to run without a key kept apart from the
/// data, unless `--demo`.
#[derive(Clone, Copy)]
enum KeyUse {
    Serve { demo: bool },
    Command,
}

/// The key taken from `CARDSEAL_MASTER_KEY` at start ([`custody::take_env_key`]), if any.
type EnvKey = Option<zeroize::Zeroizing<String>>;

async fn open_storage(
    storage: &Storage,
    env_key: EnvKey,
) -> Result<(Arc<dyn Store>, MasterKey), String> {
    open_storage_for(storage, KeyUse::Command, env_key).await
}

async fn open_storage_for(
    storage: &Storage,
    key_use: KeyUse,
    env_key: EnvKey,
) -> Result<(Arc<dyn Store>, MasterKey), String> {
    // The key first: a vault refused for want of one leaves nothing behind.
    let source = key_source(storage, key_use, env_key)?;
    if matches!(source, MasterKeySource::DemoFile) {
        create_data_dir(&storage.data_dir)?;
    }
    let master = custody::load(&source, &storage.data_dir)?;
    create_data_dir(&storage.data_dir)?;
    let store: Arc<dyn Store> = match storage.database_url.as_deref() {
        None => Arc::new(SqliteStore::open(&storage.data_dir).map_err(|e| e.to_string())?),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(PostgresStore::open(url).await.map_err(|e| e.to_string())?)
        }
        Some(url) => match url.strip_prefix("sqlite://") {
            Some(path) => {
                Arc::new(SqliteStore::open_file(Path::new(path)).map_err(|e| e.to_string())?)
            }
            None => return Err("--database-url must start with sqlite:// or postgres://".into()),
        },
    };
    Ok((store, master))
}

/// Where the master key comes from: `CARDSEAL_MASTER_KEY`, `--master-key-file` or
/// `--master-key-command`, at most one. Without any, only `serve --demo` may make one in the
/// data directory, and other commands may use one that is there (the demo's).
fn key_source(
    storage: &Storage,
    key_use: KeyUse,
    env_key: EnvKey,
) -> Result<MasterKeySource, String> {
    let value = env_key.map(MasterKeySource::Value);
    let file = storage
        .custody
        .master_key_file
        .clone()
        .map(MasterKeySource::File);
    let command = storage
        .custody
        .master_key_command
        .clone()
        .map(MasterKeySource::Command);
    let mut given = [value, file, command].into_iter().flatten();
    match (given.next(), given.next()) {
        (Some(_), Some(_)) => Err(
            "give only one of CARDSEAL_MASTER_KEY, --master-key-file and --master-key-command"
                .into(),
        ),
        (Some(source), None) => Ok(source),
        (None, _) => match key_use {
            KeyUse::Serve { demo: true } => Ok(MasterKeySource::DemoFile),
            KeyUse::Command if storage.data_dir.join(MASTER_KEY_FILE).exists() => {
                Ok(MasterKeySource::DemoFile)
            }
            _ => Err(custody::missing_key_message(&storage.data_dir)),
        },
    }
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

async fn run(command: Command, env_key: EnvKey) -> Result<(), String> {
    match command {
        Command::Serve(args) => serve(*args, env_key).await,
        Command::Export(args) => cli::export(&args, env_key).await,
        Command::Import(args) => cli::import(&args, env_key).await,
        Command::Keys(KeysCommand::ExportJwks { storage, purpose }) => {
            cli::export_jwks(&storage, purpose, env_key).await
        }
        Command::Accounts(AccountsCommand::Create {
            storage,
            name,
            allowed_origins,
            json,
        }) => {
            let (store, master) = open_storage(&storage, env_key).await?;
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
            let origins = allowed_origins.or(clear_allowed_origins.then(Vec::new));
            let forward_hosts = forward_hosts.or(clear_forward_hosts.then(Vec::new));
            if origins.is_none() && forward_hosts.is_none() {
                return Err(
                    "nothing to update: give --allowed-origin, --clear-allowed-origins, --forward-host or --clear-forward-hosts"
                        .into(),
                );
            }
            let (store, _master) = open_storage(&storage, env_key).await?;
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
                let hosts = forward::set_forward_hosts(store.as_ref(), &account, &hosts).await?;
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
            let (store, master) = open_storage(&storage, env_key).await?;
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
            let (store, _master) = open_storage(&storage, env_key).await?;
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
            let (store, master) = open_storage(&storage, env_key).await?;
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
            let (store, master) = open_storage(&storage, env_key).await?;
            let (n, heads) = events::verify_with_checkpoint(store.as_ref(), &master, &text).await?;
            print_line(&format!(
                "ok: {n} events, hash chain intact, {heads} checkpointed heads reached"
            ));
            Ok(())
        }
        Command::Events(EventsCommand::Checkpoint { storage }) => {
            let (store, master) = open_storage(&storage, env_key).await?;
            for head in events::checkpoint(store.as_ref(), &master).await? {
                print_line(&serde_json::to_string(&head).map_err(|e| e.to_string())?);
            }
            Ok(())
        }
        Command::Keys(KeysCommand::RotateMaster {
            storage,
            new_master_key_file,
        }) => rotate_master(&storage, &new_master_key_file, env_key).await,
        Command::Keys(KeysCommand::Rotate { storage }) => {
            let (store, master) = open_storage(&storage, env_key).await?;
            let had_keys = !store::read(store.as_ref(), |tx| tx.sealing_keys())
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

async fn rotate_master(storage: &Storage, new_file: &Path, env_key: EnvKey) -> Result<(), String> {
    let (store, old) = open_storage(storage, env_key).await?;
    let (new, created) = custody::new_key_file(new_file, &storage.data_dir)?;
    if created {
        print_line(&format!("new master key written to {}", new_file.display()));
    }
    let done = custody::rotate_master(store.as_ref(), &old, &new).await?;
    print_line(&format!(
        "re-wrapped {} keys ({} were already under the new master key)",
        done.rewrapped, done.already
    ));
    print_line(&format!(
        "from now on start the vault with --master-key-file {} (keep the old key as long as \
         backups made before now)",
        new_file.display()
    ));
    Ok(())
}

async fn serve(args: ServeArgs, env_key: EnvKey) -> Result<(), String> {
    let config = args.config()?;
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
    tls::check_listen(
        args.listen,
        config.tls.is_some(),
        config.tls_terminated_upstream,
    )?;
    let snippet = config.snippet.clone();
    let key_use = KeyUse::Serve { demo: args.demo };
    let (store, master) = open_storage_for(&args.storage, key_use, env_key).await?;
    let vault = Vault::start(config, store, master, args.listen, args.admin_listen)
        .await
        .map_err(|e| e.to_string())?;
    let mut publishable_key = None;
    if args.demo {
        let state = vault.state();
        let account = accounts::demo_account(state.store(), state.master(), state.now())
            .await
            .map_err(|e| e.to_string())?;
        print_line("demo account (allowed from http://localhost:* and http://127.0.0.1:*):");
        print_account(&account, false)?;
        publishable_key = Some(account.publishable_key.clone());
    }
    let addr = vault.addr().map_err(|e| e.to_string())?;
    let scheme = vault.scheme();
    if let Some(admin_addr) = vault.admin_addr().map_err(|e| e.to_string())? {
        // Printed before the public address: tools wait for `listening on` and then read on.
        print_line(&format!(
            "admin            http://{admin_addr}  (/metrics, /healthz)"
        ));
        tracing::info!(addr = %admin_addr, "admin listening");
    }
    tracing::info!(%addr, "listening");
    if let Some(assets) = &snippet {
        let name = "cardseal.js";
        let src = format!("{scheme}://{addr}{}", assets.path(name));
        let integrity = assets.integrity(name).unwrap_or_default();
        print_line(&format!("snippet          {src} integrity={integrity}"));
        // The whole tag, ready to paste; without --demo the vault knows no account, so the
        // key is a placeholder for the merchant's own.
        let pk = publishable_key.as_deref().unwrap_or("pk_test_…");
        print_line(
            "script tag       (paste into the checkout page, after your cardseal-loader.js):",
        );
        print_line(&format!(
            "<script async src=\"{src}\" integrity=\"{integrity}\" crossorigin=\"anonymous\" data-vault-url=\"{scheme}://{addr}\" data-publishable-key=\"{pk}\"></script>"
        ));
    }
    print_line(&format!("listening on {scheme}://{addr}"));
    vault.serve(shutdown()).await.map_err(|e| e.to_string())
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
