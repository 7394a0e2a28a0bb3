//! Moving saved cards to another vault: `export` and `import`.
//!
//! The export is JSON Lines, one saved card a line: its id, customer, metadata, card-on-file
//! network transaction id and creation time, and the card itself sealed for the receiving
//! vault's import key as the same compact JWE (and payload) the browser makes, so the card is
//! never in clear outside the memory of the two vaults. It never holds a CVC. A manifest beside
//! it (`FILE.manifest.json`) lists the SHA-256 of every line and the receiving key's `kid` and
//! RFC 7638 thumbprint, signed with the exporting vault's Ed25519 export-signing key, so the
//! receiver checks the whole file before storing anything.
//!
//! Both directions stream: one card is decrypted at a time, in memory only. Only the list of
//! record hashes (32 bytes a card) is held whole, to write and check the manifest.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cardseal::Secret;
use cardseal::card::Today;
use cardseal::jwe::{self, PAYLOAD_VERSION, Payload, VaultKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Principal;
use crate::crypto::{AccountKeys, MasterKey, WrappedAccountKeys, sha256};
use crate::domain::card::{self, NewCard};
use crate::domain::event;
use crate::domain::plain::summary;
use crate::ids;
use crate::keys::{self, ImportKey};
use crate::store::{self, IssuerInfo, KeyKind, Store, TxError};
use crate::unseal::{self, UnsealError};

/// The `format` of a manifest.
pub const FORMAT: &str = "cardseal-export/v1";

/// The `object` of an export record.
const RECORD_OBJECT: &str = "exported_card";

/// Cards read from the store, or imported, per transaction.
const BATCH: usize = 200;

/// Test hooks: the process exits (as if killed) after writing or importing this many cards.
const EXPORT_STOP_ENV: &str = "CARDSEAL_TEST_EXPORT_STOP_AFTER";
const IMPORT_STOP_ENV: &str = "CARDSEAL_TEST_IMPORT_STOP_AFTER";

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Its place in the file, from 0.
    pub index: u64,
    /// Always `exported_card`.
    pub object: String,
    /// The card's `card_…` id, kept by the receiving vault.
    pub id: String,
    /// The exporting vault's account.
    pub account: String,
    /// The merchant's customer reference.
    pub customer: Option<String>,
    /// The card's metadata, a JSON object of strings.
    pub metadata: Value,
    /// The network transaction id of the card's last setup charge (card on file).
    pub network_transaction_id: Option<String>,
    /// When the card was saved (Unix seconds).
    pub created: i64,
    /// Number, expiry and name: a compact JWE for the receiving vault's import key.
    pub sealed: String,
}

/// `FILE.manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The exporting vault's account.
    pub account: String,
    /// How many records the export holds.
    pub count: u64,
    /// The receiving vault's import key.
    pub receiving_kid: String,
    /// Its RFC 7638 thumbprint (SHA-256, base64url).
    pub receiving_thumbprint: String,
    /// The export-signing key that signed this manifest.
    pub signing_kid: String,
    /// When the export was finished (Unix seconds).
    pub created: i64,
    /// The SHA-256 (hex) of each record's line, in order.
    pub records: Vec<String>,
    /// Ed25519 over [`Manifest::signed_message`], base64url.
    pub signature: String,
}

impl Manifest {
    /// What the signature covers: every member but the signature, with the record hashes
    /// folded into one SHA-256. Ids, kids and thumbprints hold no newline.
    fn signed_message(&self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.records.len() * 64);
        for h in &self.records {
            all.extend_from_slice(h.as_bytes());
        }
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.format,
            self.account,
            self.count,
            self.receiving_kid,
            self.receiving_thumbprint,
            self.signing_kid,
            self.created,
            hex::encode(sha256(&all))
        )
        .into_bytes()
    }
}

/// The manifest's path: `FILE.manifest.json` beside `FILE`.
pub fn manifest_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// The RFC 7638 thumbprint (SHA-256, base64url) of an RSA or OKP public JWK.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    // The required members only, in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = match s("kty")? {
        "RSA" => json!({"e": s("e")?, "kty": "RSA", "n": s("n")?}),
        "OKP" => json!({"crv": s("crv")?, "kty": "OKP", "x": s("x")?}),
        _ => return None,
    };
    // serde_json's map keeps keys sorted (no `preserve_order`), which is the order needed.
    Some(URL_SAFE_NO_PAD.encode(sha256(canonical.to_string().as_bytes())))
}

/// The one key of a JWK or JWKS text that `pick` accepts.
fn one_key(text: &str, what: &str, pick: impl Fn(&Value) -> bool) -> Result<Value, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|_| format!("{what} is not a JWK or a JWKS"))?;
    let keys: Vec<Value> = match v.get("keys").and_then(Value::as_array) {
        Some(keys) => keys.iter().filter(|k| pick(k)).cloned().collect(),
        None if pick(&v) => vec![v],
        None => vec![],
    };
    match <[Value; 1]>::try_from(keys) {
        Ok([key]) => Ok(key),
        Err(keys) if keys.is_empty() => Err(format!("{what} holds no suitable key")),
        Err(_) => Err(format!("{what} holds more than one suitable key")),
    }
}

/// The account as a principal of the CLI, with its keys unwrapped.
async fn principal(
    store: &dyn Store,
    master: &MasterKey,
    account_id: &str,
) -> Result<Principal, String> {
    let id = account_id.to_owned();
    let account = store::read(store, move |tx| tx.account(&id))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no account {account_id} on this vault"))?;
    let keys = AccountKeys::unwrap(
        master,
        &account.id,
        &WrappedAccountKeys {
            data_key: account.wrapped_data_key,
            fingerprint_key: account.wrapped_fingerprint_key,
        },
    )
    .map_err(|_| "cannot unwrap the account's keys: is this the right master key?".to_owned())?;
    Ok(Principal {
        account_id: account.id,
        kind: KeyKind::Secret,
        scopes: Vec::new(),
        origins: account.allowed_origins,
        keys,
        key_ref: "cli".to_owned(),
        expires_at: None,
    })
}

fn stop_after(env: &str) -> Option<u64> {
    std::env::var(env).ok().and_then(|v| v.parse().ok())
}

/// How an export went.
#[derive(Debug, Clone)]
pub struct Exported {
    /// Records in the file.
    pub count: u64,
    /// Records an earlier, interrupted run had written already.
    pub resumed: u64,
    /// The export was complete before this run (nothing done).
    pub already_complete: bool,
    /// The receiving key's `kid`.
    pub receiving_kid: String,
    /// Its thumbprint.
    pub receiving_thumbprint: String,
}

/// Where an export goes: the receiving key (a JWK or JWKS text), the thumbprint it must have,
/// and the file.
#[derive(Debug, Clone, Copy)]
pub struct ExportTo<'a> {
    /// The receiving vault's `keys export-jwks --purpose import`.
    pub jwks: &'a str,
    /// The thumbprint given out of band.
    pub pin: &'a str,
    /// The export file.
    pub out: &'a Path,
}

/// `cardseal-vault export`: every saved card of `account_id`, sealed for the receiving key in
/// `to.jwks` (whose thumbprint must be `to.pin`), to `to.out`, and a signed manifest beside it.
/// Run again after an interruption with the same arguments, it goes on where it stopped.
pub async fn export(
    store: &dyn Store,
    master: &MasterKey,
    data_dir: &Path,
    account_id: &str,
    to: ExportTo<'_>,
    now: i64,
) -> Result<Exported, String> {
    let ExportTo {
        jwks: jwks_text,
        pin,
        out,
    } = to;
    let jwk = one_key(jwks_text, "--to-jwks", |k| {
        k.get("kty").and_then(Value::as_str) == Some("RSA")
            && k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "enc")
    })?;
    let kid = jwk
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && !k.contains(['\n', '/']))
        .ok_or("the receiving key has no usable kid")?
        .to_owned();
    let thumb = thumbprint(&jwk).ok_or("the receiving key is not an RSA public key")?;
    if thumb != pin.trim() {
        return Err(format!(
            "the receiving key's thumbprint is {thumb}, not the pinned {}: refusing to export to \
             a key you were not given",
            pin.trim()
        ));
    }
    let vault_key = VaultKey::from_jwk(&jwk.to_string())
        .map_err(|e| format!("the receiving key is unusable: {e}"))?;
    let signing = keys::export_signing_key(data_dir, master, now)?;
    let principal = principal(store, master, account_id).await?;
    let acct = principal.account_id.clone();
    let done = |count, resumed, already_complete| Exported {
        count,
        resumed,
        already_complete,
        receiving_kid: kid.clone(),
        receiving_thumbprint: thumb.clone(),
    };

    let mpath = manifest_path(out);
    if mpath.exists() {
        let m: Manifest = serde_json::from_str(
            &std::fs::read_to_string(&mpath).map_err(|e| format!("{}: {e}", mpath.display()))?,
        )
        .map_err(|_| format!("{} is not an export manifest", mpath.display()))?;
        if m.account != acct || m.receiving_thumbprint != thumb {
            return Err(format!(
                "{} is a finished export of another account or for another key: choose another --out",
                out.display()
            ));
        }
        return Ok(done(m.count, m.count, true));
    }

    // Resume: keep the whole records an earlier run wrote, drop a half-written last line.
    let (mut count, mut last_id) = if out.exists() {
        resume_point(out, &acct, &kid)?
    } else {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        (0, None)
    };
    let resumed = count;
    let file = OpenOptions::new()
        .append(true)
        .open(out)
        .map_err(|e| format!("cannot open {}: {e}", out.display()))?;
    let mut writer = BufWriter::new(file);
    let stop = stop_after(EXPORT_STOP_ENV);
    let io = |e: std::io::Error| format!("cannot write {}: {e}", out.display());
    loop {
        let a = acct.clone();
        let after = last_id.clone();
        let page = store::read(store, move |tx| tx.cards(&a, None, after.as_deref(), BATCH))
            .await
            .map_err(|e| e.to_string())?;
        for c in &page {
            let key = card::card_key(&principal, c)
                .map_err(|_| format!("card {} does not open", c.id))?;
            let plain = card::open(&principal, c, &key)
                .map_err(|_| format!("card {} does not open", c.id))?;
            // The browser's payload, less the CVC: a saved card holds none, and PCI DSS
            // forbids keeping one after authorization.
            let payload = Payload {
                v: PAYLOAD_VERSION,
                number: plain.number.as_ref().map(|n| Secret::new(n.expose())),
                exp_month: plain.exp_month,
                exp_year: plain.exp_year,
                cvc: None,
                name: plain.name.clone(),
                iat: now,
                jti: jwe::new_jti().map_err(|_| "no randomness".to_owned())?,
            };
            let sealed = jwe::seal_payload(&vault_key, &payload)
                .map_err(|_| format!("cannot seal card {}", c.id))?;
            drop((payload, plain));
            let record = Record {
                index: count,
                object: RECORD_OBJECT.to_owned(),
                id: c.id.clone(),
                account: acct.clone(),
                customer: c.customer.clone(),
                metadata: serde_json::from_str(&c.metadata).unwrap_or_else(|_| json!({})),
                network_transaction_id: c.network_transaction_id.clone(),
                created: c.created,
                sealed,
            };
            serde_json::to_writer(&mut writer, &record).map_err(|e| e.to_string())?;
            writer.write_all(b"\n").map_err(io)?;
            count += 1;
            if stop.is_some_and(|n| count >= n) {
                writer.flush().map_err(io)?;
                std::process::exit(75);
            }
        }
        writer.flush().map_err(io)?;
        match page.last() {
            Some(c) if page.len() == BATCH => last_id = Some(c.id.clone()),
            _ => break,
        }
    }
    writer.get_ref().sync_all().map_err(io)?;
    drop(writer);

    let records = line_hashes(out)?;
    let count = records.len() as u64;
    let mut manifest = Manifest {
        format: FORMAT.to_owned(),
        account: acct.clone(),
        count,
        receiving_kid: kid.clone(),
        receiving_thumbprint: thumb.clone(),
        signing_kid: signing.kid.clone(),
        created: now,
        records,
        signature: String::new(),
    };
    manifest.signature = URL_SAFE_NO_PAD.encode(signing.pair.sign(&manifest.signed_message()));
    // The audit event before the manifest: a crash between the two repeats the event on the
    // next run rather than losing it.
    let ev = event(
        &acct,
        "cards.exported",
        json!({"count": count, "receiving_kid": kid, "receiving_thumbprint": thumb,
               "signing_kid": signing.kid}),
        now,
    );
    store::write(store, move |tx| tx.append_event(&ev))
        .await
        .map_err(|e| e.to_string())?;
    let tmp = manifest_path(&out.with_extension("tmp"));
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &mpath).map_err(|e| format!("cannot write {}: {e}", mpath.display()))?;
    Ok(done(count, resumed, false))
}

/// Where an interrupted export stopped: its whole records (checked to be of this account and
/// key), the file cut after the last of them.
fn resume_point(out: &Path, acct: &str, kid: &str) -> Result<(u64, Option<String>), String> {
    let shown = out.display();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(out)
        .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let mut reader = BufReader::new(&mut file);
    let (mut count, mut last, mut good_len) = (0u64, None, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let r: Record = serde_json::from_slice(&line[..n - 1]).map_err(|_| {
            format!("{shown} is not an unfinished export (line {count}): choose another --out")
        })?;
        if r.index != count || r.account != acct || sealed_kid(&r.sealed).as_deref() != Ok(kid) {
            return Err(format!(
                "{shown} was started for another account or key: choose another --out"
            ));
        }
        count += 1;
        good_len += n as u64;
        last = Some(r.id);
    }
    drop(reader);
    file.set_len(good_len)
        .and_then(|()| file.seek(SeekFrom::End(0)).map(drop))
        .map_err(|e| format!("cannot cut {shown}: {e}"))?;
    Ok((count, last))
}

fn sealed_kid(jwe: &str) -> Result<String, UnsealError> {
    unseal::header_kid(jwe)
}

/// The SHA-256 (hex) of each line of `path`, without its newline.
fn line_hashes(path: &Path) -> Result<Vec<String>, String> {
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            return Ok(out);
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        out.push(hex::encode(sha256(body)));
    }
}

/// Checks `manifest_text` against the Ed25519 public key in `verify_key_text` (a JWK or JWKS).
pub fn verify_manifest(manifest_text: &str, verify_key_text: &str) -> Result<Manifest, String> {
    let key = one_key(verify_key_text, "--verify-key", |k| {
        k.get("kty").and_then(Value::as_str) == Some("OKP")
            && k.get("crv").and_then(Value::as_str) == Some("Ed25519")
    })?;
    let x = key
        .get("x")
        .and_then(Value::as_str)
        .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
        .filter(|x| x.len() == 32)
        .ok_or("--verify-key is not an Ed25519 public key")?;
    let manifest: Manifest = serde_json::from_str(manifest_text)
        .map_err(|e| format!("the manifest is not a cardseal export manifest: {e}"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(&manifest.signature)
        .map_err(|_| "the manifest's signature is malformed")?;
    UnparsedPublicKey::new(&ED25519, &x)
        .verify(&manifest.signed_message(), &signature)
        .map_err(|_| {
            "the manifest's signature does not verify with --verify-key: it was altered, or \
             signed by another vault; nothing was imported"
                .to_owned()
        })?;
    if manifest.format != FORMAT {
        return Err(format!("the manifest's format is not {FORMAT}"));
    }
    if manifest.count != manifest.records.len() as u64 {
        return Err("the manifest's count does not match its record list".into());
    }
    Ok(manifest)
}

/// One refused record.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// The record's index in the file.
    pub index: u64,
    /// Its card id, when it has a well-formed one.
    pub id: Option<String>,
    /// Why; never card data.
    pub reason: String,
}

/// How an import went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Imported {
    /// Cards stored by this run.
    pub imported: u64,
    /// Cards this vault held already, the same card under the same id.
    pub already_present: u64,
    /// Records refused, with why.
    pub refused: Vec<Refusal>,
}

/// A record checked against the manifest, before anything is stored.
fn check_record(
    i: u64,
    line: &[u8],
    manifest: &Manifest,
    import_kid: &str,
) -> Result<Record, String> {
    let r: Record = serde_json::from_slice(line)
        .map_err(|_| format!("record {i} is not an export record (tampered or truncated)"))?;
    if r.index != i || r.object != RECORD_OBJECT {
        return Err(format!(
            "record {i} is out of place (it says index {}): records were moved",
            r.index
        ));
    }
    if r.account != manifest.account {
        return Err(format!(
            "record {i} belongs to another account ({}), not this export's {}",
            r.account, manifest.account
        ));
    }
    match sealed_kid(&r.sealed) {
        Ok(kid) if kid == import_kid => {}
        Ok(kid) => {
            return Err(format!(
                "record {i} is sealed for another key ({kid}), not this vault's import key {import_kid}"
            ));
        }
        Err(_) => return Err(format!("record {i}'s sealed card is not a valid JWE")),
    }
    let hash = hex::encode(sha256(line));
    if manifest.records.get(i as usize) != Some(&hash) {
        return Err(format!(
            "record {i} does not match its SHA-256 in the manifest: the record was altered"
        ));
    }
    Ok(r)
}

/// Reads every line of `path` through `f`, with its index; a last line without a newline is
/// still a line.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut i = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            return Ok(i);
        }
        f(i, line.strip_suffix(b"\n").unwrap_or(&line))?;
        i += 1;
    }
}

/// A record opened and validated, ready to store. No `Debug`: it holds the number.
struct Ready {
    index: u64,
    record: Record,
    number: Secret,
    name: Option<String>,
    summary: store::CardSummary,
}

/// `cardseal-vault import`: checks the manifest and every record of `input` first (stopping
/// at the first failure, before anything is stored), then opens each card with the import key,
/// validates it with the cardseal core and stores it under its own id in `account_id`.
/// Idempotent: run again (after an interruption, or after it finished), it gives the same result.
pub async fn import(
    store: &dyn Store,
    master: &MasterKey,
    data_dir: &Path,
    account_id: &str,
    input: &Path,
    manifest: &Manifest,
    now: i64,
) -> Result<Imported, String> {
    let import_key: ImportKey = keys::import_key(data_dir, master, now)?;
    let ours = thumbprint(&import_key.jwk).ok_or("the import key is invalid")?;
    if manifest.receiving_kid != import_key.kid || manifest.receiving_thumbprint != ours {
        return Err(format!(
            "the export is sealed for another key ({}, thumbprint {}), not this vault's import \
             key {} ({ours}); nothing was imported",
            manifest.receiving_kid, manifest.receiving_thumbprint, import_key.kid
        ));
    }
    let principal = Arc::new(principal(store, master, account_id).await?);

    // Everything is checked before anything is stored.
    let lines = for_each_line(input, |i, line| {
        if i >= manifest.count {
            return Err(format!(
                "record {i} is one more than the manifest's {}: records were added",
                manifest.count
            ));
        }
        check_record(i, line, manifest, &import_key.kid).map(drop)
    })?;
    if lines < manifest.count {
        return Err(format!(
            "the file ends after {lines} of the manifest's {} records (truncated): record {lines} \
             is missing; nothing was imported",
            manifest.count
        ));
    }

    let today = Today::from_unix(now);
    let mut summary_out = Imported::default();
    let stop = stop_after(IMPORT_STOP_ENV);
    let mut batch: Vec<Result<Ready, Refusal>> = Vec::with_capacity(BATCH);
    let flush = |batch: Vec<Result<Ready, Refusal>>| {
        let principal = Arc::clone(&principal);
        async move {
            store::write_or_abort(store, move |tx| {
                let mut outcomes = Vec::with_capacity(batch.len());
                for item in batch {
                    let ready = match item {
                        Ok(r) => r,
                        Err(refusal) => {
                            outcomes.push(Err(refusal));
                            continue;
                        }
                    };
                    outcomes.push(store_one(tx, &principal, ready, now)?);
                }
                Ok::<_, TxError<crate::error::ApiError>>(outcomes)
            })
            .await
            .map_err(|e| match e {
                TxError::Store(e) => e.to_string(),
                TxError::Abort(_) => "storing a card failed".to_owned(),
            })
        }
    };
    // The file is read again, each record checked again, in case it changed in between.
    let file = File::open(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut i = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
        if n > 0 {
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            let record = check_record(i, body, manifest, &import_key.kid)
                .map_err(|e| format!("{e} (the file changed during the import)"))?;
            batch.push(open_record(&import_key, &principal, i, record, now, today));
            i += 1;
        }
        if (n == 0 && !batch.is_empty()) || batch.len() == BATCH {
            let outcomes = flush(std::mem::take(&mut batch)).await?;
            for o in outcomes {
                match o {
                    Ok(true) => summary_out.imported += 1,
                    Ok(false) => summary_out.already_present += 1,
                    Err(r) => summary_out.refused.push(r),
                }
            }
            if stop.is_some_and(|s| summary_out.imported >= s) {
                std::process::exit(75);
            }
        }
        if n == 0 {
            break;
        }
    }
    let acct = principal.account_id.clone();
    let ev = event(
        &acct,
        "cards.imported",
        json!({"imported": summary_out.imported, "already_present": summary_out.already_present,
               "refused": summary_out.refused.len(), "from_account": manifest.account,
               "signing_kid": manifest.signing_kid, "receiving_kid": manifest.receiving_kid}),
        now,
    );
    store::write(store, move |tx| tx.append_event(&ev))
        .await
        .map_err(|e| e.to_string())?;
    Ok(summary_out)
}

/// Opens and validates one record; a refusal names why, never the card.
fn open_record(
    key: &ImportKey,
    principal: &Principal,
    index: u64,
    record: Record,
    now: i64,
    today: Today,
) -> Result<Ready, Refusal> {
    let refuse = |id: Option<String>, reason: &str| Refusal {
        index,
        id,
        reason: reason.to_owned(),
    };
    if !ids::is_id(&record.id, "card_") {
        return Err(refuse(None, "its id is not a card_… id"));
    }
    let id = Some(record.id.clone());
    // The exporting vault checked the metadata as its API does; this is the shape check that
    // keeps a record from another kind of exporter from storing anything else.
    let metadata_ok = record.metadata.as_object().is_some_and(|m| {
        m.len() <= 50
            && m.iter().all(|(k, v)| {
                k.chars().count() <= 40 && v.as_str().is_some_and(|s| s.chars().count() <= 500)
            })
    });
    if !metadata_ok {
        return Err(refuse(id, "its metadata is not an object of short strings"));
    }
    // The grace argument is moot: the import key is never superseded.
    let unsealed = match unseal::unseal(&key.ring, &record.sealed, now, 0) {
        Ok(u) => u,
        Err(_) => {
            return Err(refuse(
                id,
                "its sealed card does not open with the import key",
            ));
        }
    };
    let payload = unsealed.payload;
    if payload.cvc.is_some() {
        return Err(refuse(id, "it carries a CVC, which an export never holds"));
    }
    let card = match payload.to_card(today) {
        Ok(card) => card,
        Err(errors) => {
            let codes: Vec<&str> = errors.iter().map(|e| e.code.code()).collect();
            return Err(refuse(
                id,
                &format!("the card is invalid ({})", codes.join(", ")),
            ));
        }
    };
    Ok(Ready {
        index,
        summary: summary(principal, &card),
        number: Secret::new(card.number.expose()),
        name: card.name.as_ref().map(|n| n.as_str().to_owned()),
        record,
    })
}

/// Stores one card in the caller's transaction: `Ok(true)` stored, `Ok(false)` the same card
/// was there, `Err` refused.
fn store_one(
    tx: &dyn store::Tx,
    principal: &Principal,
    ready: Ready,
    now: i64,
) -> Result<Result<bool, Refusal>, TxError<crate::error::ApiError>> {
    let acct = &principal.account_id;
    let id = ready.record.id.clone();
    let refuse = |reason: &str| {
        Ok(Err(Refusal {
            index: ready.index,
            id: Some(id.clone()),
            reason: reason.to_owned(),
        }))
    };
    if let Some(existing) = tx.card(acct, &id)? {
        let same = existing.summary.fingerprint == ready.summary.fingerprint
            && existing.summary.exp_month == ready.summary.exp_month
            && existing.summary.exp_year == ready.summary.exp_year;
        if same {
            return Ok(Ok(false));
        }
        return refuse("this vault holds another card under this id");
    }
    if tx.card_id_taken(&id)? {
        return refuse(
            "this id was used on this vault before (a deleted card, or another account's)",
        );
    }
    let metadata = ready.record.metadata.to_string();
    let (stored, _) = card::insert_with_id(
        tx,
        principal,
        id.clone(),
        NewCard {
            summary: ready.summary,
            number: &ready.number,
            name: ready.name.as_deref(),
            cvc: None,
            customer: ready.record.customer.clone(),
            metadata,
            issuer: IssuerInfo::default(),
        },
        ready.record.created,
    )?;
    if let Some(ntid) = &ready.record.network_transaction_id {
        tx.set_network_transaction_id(acct, &stored.id, ntid)?;
    }
    tx.append_event(&event(
        acct,
        "card.imported",
        json!({"card": stored.id, "customer": stored.customer, "from_account": ready.record.account}),
        now,
    ))?;
    Ok(Ok(true))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::KeyPair;

    use super::*;

    #[test]
    fn thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(thumbprint(&json!({"kty": "oct", "k": "x"})), None);
    }

    #[test]
    fn a_manifest_verifies_only_as_signed() {
        let doc = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let key = json!({"kty": "OKP", "crv": "Ed25519", "kid": "sig_x",
                         "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())})
        .to_string();
        let mut m = Manifest {
            format: FORMAT.to_owned(),
            account: "acct_a".into(),
            count: 2,
            receiving_kid: "imp_b".into(),
            receiving_thumbprint: "t".into(),
            signing_kid: "sig_x".into(),
            created: 1,
            records: vec!["00".repeat(32), "11".repeat(32)],
            signature: String::new(),
        };
        m.signature = URL_SAFE_NO_PAD.encode(pair.sign(&m.signed_message()));
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(verify_manifest(&text, &key).unwrap().count, 2);
        for (from, to) in [
            ("\"count\":2", "\"count\":3"),
            ("\"acct_a\"", "\"acct_c\""),
            ("1111", "1112"),
            ("\"imp_b\"", "\"imp_c\""),
        ] {
            let altered = text.replacen(from, to, 1);
            assert_ne!(altered, text);
            assert!(verify_manifest(&altered, &key).is_err(), "{from} -> {to}");
        }
    }
}
