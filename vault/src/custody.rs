//! Where the master key comes from, and `keys rotate-master`.
//!
//! The master key never sits beside the data it protects: it comes from `CARDSEAL_MASTER_KEY`,
//! a file outside the data directory that only its owner can read (`--master-key-file`), or
//! the standard output of a command (`--master-key-command`, e.g. a KMS client). Only the demo
//! keeps one in the data directory (`master.key`), made on first use.
//!
//! A key given in the environment is taken out of it at start ([`take_env_key`]): the vault
//! execs itself again without the variable and reads the key from a pipe.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{MASTER_KEY_FILE, MasterKey, write_private_file};
use crate::ids::random_bytes;
use crate::store::{self, Store, WrappedKeyRecord};

/// The environment variable that may hold the master key itself.
pub const MASTER_KEY_ENV: &str = "CARDSEAL_MASTER_KEY";

/// Set by the vault on the image it execs ([`take_env_key`]): the descriptor of the pipe that
/// holds the key. Only a number, never the key.
pub const HANDOVER_FD_ENV: &str = "CARDSEAL_MASTER_KEY_FD";

/// Longer than any spelling of a 32-byte key, and well under a pipe's buffer (4 KiB at the
/// least), so the write before the exec never blocks.
const MAX_ENV_KEY: usize = 1024;

/// `CARDSEAL_MASTER_KEY`, taken out of the process's environment image; `None` when it is not
/// set (or empty).
///
/// The kernel keeps the environment a program was started with in the process's memory, and
/// shows it at `/proc/PID/environ` to the same user and to root for as long as the process
/// runs; `std::env::remove_var` changes only the C library's copy. So when the variable is
/// set, this execs the vault again, same PID, arguments, standard streams and environment but
/// for the variable, and hands the key over a pipe: the new image finds the pipe's descriptor
/// number in [`HANDOVER_FD_ENV`] and reads the key from it. The key is never in the arguments.
///
/// Call it before anything else starts (threads, logs, files): the exec replaces the whole
/// process. On other systems than Unix the variable is read as it is.
pub fn take_env_key() -> Result<Option<Zeroizing<String>>, String> {
    let value = std::env::var_os(MASTER_KEY_ENV)
        .filter(|v| !v.is_empty())
        .map(|v| Zeroizing::new(v.to_string_lossy().into_owned()));
    #[cfg(unix)]
    {
        if let Some(value) = value {
            let Err(e) = reexec_without(value);
            return Err(e);
        }
        match std::env::var(HANDOVER_FD_ENV) {
            Ok(fd) => read_handed_key(&fd).map(Some),
            Err(_) => Ok(None),
        }
    }
    #[cfg(not(unix))]
    Ok(value)
}

/// Writes `key` into a pipe and execs the vault again without [`MASTER_KEY_ENV`]; returns only
/// if the exec failed.
#[cfg(unix)]
fn reexec_without(key: Zeroizing<String>) -> Result<std::convert::Infallible, String> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    if key.len() > MAX_ENV_KEY {
        return Err(format!("{MASTER_KEY_ENV}: too long to be a key"));
    }
    let fail = |e: std::io::Error| {
        format!(
            "cannot take {MASTER_KEY_ENV} out of the vault's environment ({e}); pass the key with \
             --master-key-file instead"
        )
    };
    let (reader, mut writer) = std::io::pipe().map_err(fail)?;
    // std opens both ends close-on-exec; the read end is the one descriptor that must outlive
    // the exec. rustix rather than libc: a safe call, and the workspace forbids unsafe code.
    rustix::io::fcntl_setfd(&reader, rustix::io::FdFlags::empty()).map_err(|e| fail(e.into()))?;
    writer.write_all(key.as_bytes()).map_err(fail)?;
    drop(writer);
    drop(key);
    // /proc/self/exe is this very binary even if its file was replaced or removed meanwhile
    // (an upgrade while it starts).
    #[cfg(target_os = "linux")]
    let exe = PathBuf::from("/proc/self/exe");
    #[cfg(not(target_os = "linux"))]
    let exe = std::env::current_exe().map_err(fail)?;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let error = Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env_remove(MASTER_KEY_ENV)
        .env(HANDOVER_FD_ENV, reader.as_raw_fd().to_string())
        .exec();
    Err(fail(error))
}

/// Reads the key that [`reexec_without`] wrote into the pipe at descriptor `fd`.
#[cfg(unix)]
fn read_handed_key(fd: &str) -> Result<Zeroizing<String>, String> {
    let bad = || format!("{HANDOVER_FD_ENV} is set by the vault itself; unset it");
    let fd: u32 = fd.parse().map_err(|_| bad())?;
    // Opened again by path: turning the bare number into a `File` needs unsafe code, which
    // the workspace forbids. The inherited descriptor stays open, on a pipe that is empty and
    // whose writer is gone.
    let pipe = std::fs::File::open(format!("/dev/fd/{fd}")).map_err(|_| bad())?;
    // Room for all of it up front, so that no reallocation leaves a copy behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(2 * MAX_ENV_KEY));
    pipe.take(MAX_ENV_KEY as u64)
        .read_to_end(&mut bytes)
        .map_err(|_| bad())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{MASTER_KEY_ENV}: not text"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Where to get the master key.
pub enum MasterKeySource {
    /// The key itself, from `CARDSEAL_MASTER_KEY`.
    Value(Zeroizing<String>),
    /// A file that only its owner can read, outside the data directory.
    File(PathBuf),
    /// A command whose standard output is the key; run without a shell.
    Command(String),
    /// `master.key` in the data directory, made on first use: for `--demo` only.
    DemoFile,
}

impl fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeySource::Value(_) => f.write_str("Value(***)"),
            MasterKeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            MasterKeySource::Command(c) => f.debug_tuple("Command").field(c).finish(),
            MasterKeySource::DemoFile => f.write_str("DemoFile"),
        }
    }
}

/// What a vault without a master key is told.
pub fn missing_key_message(data_dir: &Path) -> String {
    let mut msg = String::from(
        "no master key: set CARDSEAL_MASTER_KEY (64 hex characters or base64 of 32 bytes), or pass \
         --master-key-file FILE (mode 0600, outside the data directory) or --master-key-command CMD \
         (prints the key, e.g. a KMS client). `openssl rand -hex 32` makes a key. --demo keeps a \
         key in the data directory instead, for trying the vault out only",
    );
    if data_dir.join(MASTER_KEY_FILE).exists() {
        msg.push_str(&format!(
            ". The data directory holds {MASTER_KEY_FILE} (from --demo or an older vault): move it \
             out of {} and pass --master-key-file with its new path",
            data_dir.display()
        ));
    }
    msg
}

/// The key `source` names. `data_dir` is where the data lives: a key file must be elsewhere.
pub fn load(source: &MasterKeySource, data_dir: &Path) -> Result<MasterKey, String> {
    match source {
        MasterKeySource::Value(v) => {
            MasterKey::parse(v).map_err(|e| format!("CARDSEAL_MASTER_KEY: {e}"))
        }
        MasterKeySource::File(path) => read_key_file(path, data_dir),
        MasterKeySource::Command(cmd) => run_key_command(cmd),
        MasterKeySource::DemoFile => MasterKey::load(None, data_dir),
    }
}

/// Reads a `--master-key-file`: it must be readable by its owner only and lie outside the data
/// directory, so that a copy of the data directory (a backup, a stolen disk image) holds no key.
pub fn read_key_file(path: &Path, data_dir: &Path) -> Result<MasterKey, String> {
    let shown = path.display();
    let canonical =
        std::fs::canonicalize(path).map_err(|e| format!("--master-key-file {shown}: {e}"))?;
    if let Ok(data) = std::fs::canonicalize(data_dir) {
        if canonical.starts_with(&data) {
            return Err(format!(
                "--master-key-file {shown} is inside the data directory {}: keep the master key \
                 apart from the data it protects",
                data_dir.display()
            ));
        }
    }
    check_private(&canonical).map_err(|e| format!("--master-key-file {shown}: {e}"))?;
    let text = Zeroizing::new(
        std::fs::read_to_string(&canonical)
            .map_err(|e| format!("--master-key-file {shown}: {e}"))?,
    );
    MasterKey::parse(&text).map_err(|e| format!("--master-key-file {shown}: {e}"))
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {:o} lets others read it; `chmod 600` it",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// Runs `--master-key-command`: the words of `cmd` split on whitespace, without a shell (no
/// quoting, pipes or variables: point it at a script for those). Its standard output, trimmed,
/// is the key; its standard error goes to the vault's. A failure is reported by exit status
/// only, never with what it printed.
pub fn run_key_command(cmd: &str) -> Result<MasterKey, String> {
    let mut words = cmd.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| "--master-key-command is empty".to_owned())?;
    let output = Command::new(program)
        .args(words)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("--master-key-command: cannot run {program}: {e}"))?;
    let mut stdout = output.stdout;
    if !output.status.success() {
        stdout.zeroize();
        return Err(format!(
            "--master-key-command failed ({}); nothing was started",
            output.status
        ));
    }
    let text = Zeroizing::new(String::from_utf8(stdout).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.zeroize();
        "--master-key-command printed something that is not text".to_owned()
    })?);
    MasterKey::parse(&text).map_err(|e| format!("--master-key-command: {e}"))
}

/// The new key for `keys rotate-master`: read from `path` if it exists (a rerun after an
/// interruption), else made at random and written there (mode 0600) before anything is
/// re-wrapped, so that no row is ever under a key that is kept nowhere.
pub fn new_key_file(path: &Path, data_dir: &Path) -> Result<(MasterKey, bool), String> {
    if path.exists() {
        return Ok((read_key_file(path, data_dir)?, false));
    }
    if let (Some(parent), Ok(data)) = (
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .and_then(|p| std::fs::canonicalize(p).ok()),
        std::fs::canonicalize(data_dir),
    ) {
        if parent.starts_with(&data) {
            return Err(format!(
                "--new-master-key-file {} is inside the data directory {}: keep the master key \
                 apart from the data it protects",
                path.display(),
                data_dir.display()
            ));
        }
    }
    let mut bytes = random_bytes::<32>();
    let text = Zeroizing::new(hex::encode(bytes));
    bytes.zeroize();
    write_private_file(path, format!("{}\n", &*text).as_bytes())
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok((MasterKey::parse(&text)?, true))
}

/// How a `keys rotate-master` run went.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rotation {
    /// Rows re-wrapped by this run.
    pub rewrapped: u64,
    /// Rows already under the new key (done by an earlier, interrupted run).
    pub already: u64,
}

/// Test hook: `keys rotate-master` stops (hangs, for a `kill -9`) after this many rows.
const PAUSE_ENV: &str = "CARDSEAL_TEST_ROTATE_PAUSE_AFTER";

/// Re-wraps every key wrapped under `old` (sealing keys, account data, fingerprint and audit
/// keys, the demo account's API keys) under `new`, one row per transaction. A row that already
/// opens under `new` is left alone, so a run that was interrupted is finished by running it
/// again. A row that opens under neither key stops the run.
pub async fn rotate_master(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Rotation, String> {
    let pause_after: Option<u64> = std::env::var(PAUSE_ENV).ok().and_then(|v| v.parse().ok());
    let rows = store::read(store, |tx| tx.wrapped_keys())
        .await
        .map_err(|e| e.to_string())?;
    let mut done = Rotation::default();
    for row in rows {
        let purpose = row.slot.purpose();
        if new.unwrap_key(purpose, &row.aad_id, &row.blob).is_ok() {
            done.already += 1;
            continue;
        }
        let plain = old
            .unwrap_key(purpose, &row.aad_id, &row.blob)
            .map_err(|_| {
                format!(
                    "{} of {} opens under neither the current nor the new master key",
                    purpose, row.aad_id
                )
            })?;
        let blob = new
            .wrap(purpose, &row.aad_id, &plain)
            .map_err(|_| "cannot wrap under the new master key".to_owned())?;
        let WrappedKeyRecord {
            slot,
            row,
            blob: old_blob,
            ..
        } = row;
        let replaced = store::write(store, move |tx| tx.rewrap_key(slot, &row, &old_blob, &blob))
            .await
            .map_err(|e| e.to_string())?;
        if !replaced {
            return Err(format!(
                "a {purpose} changed while it was being re-wrapped: stop every vault on this \
                 database, then run keys rotate-master again"
            ));
        }
        done.rewrapped += 1;
        if pause_after.is_some_and(|n| done.rewrapped >= n) {
            pause_for_test(done);
        }
    }
    Ok(done)
}

#[allow(clippy::print_stdout)]
fn pause_for_test(done: Rotation) -> ! {
    println!("paused after {} rows", done.rewrapped);
    loop {
        std::thread::park();
    }
}
