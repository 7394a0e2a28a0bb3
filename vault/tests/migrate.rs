//! The "Moving to another vault" walkthrough of vault/README.md, end to end with the real
//! binary: vault A on SQLite with 1,000 saved cards, vault B (on PostgreSQL when
//! CARDSEAL_TEST_DATABASE_URL is set), export from A and import into B, both interrupted and
//! both run twice; every card charges on B under its old id, card-on-file references included;
//! A's copies are crypto-shredded; no card number in the export, the manifest or either vault's
//! logs; and every kind of bad export is refused before anything of it is stored.

#[path = "support/helpers.rs"]
mod support;

#[path = "support/scan.rs"]
mod scan;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cardseal::Secret;
use cardseal::card::{CardInput, Today};
use cardseal_vault::Principal;
use cardseal_vault::crypto::{AccountKeys, MasterKey, WrappedAccountKeys};
use cardseal_vault::domain::card::{self, NewCard};
use cardseal_vault::domain::plain::summary;
use cardseal_vault::store::sqlite::{DB_FILE, SqliteStore};
use cardseal_vault::store::{self, IssuerInfo, KeyKind, TxError};
use scan::digit_runs;
use serde_json::{Value, json};
use support::{SPAWNED_MASTER_KEY, db_number, http, luhn_number, post_json, vault_command};

const CARDS: usize = 1000;

/// One vault's data directory, and how its commands reach its database.
struct Vault {
    dir: PathBuf,
    /// `--database-url` to force (A is SQLite in every run), else the tests' default.
    database_url: Option<String>,
    /// Everything the vault printed to stderr (its log), for the leak scan.
    log: Vec<u8>,
}

impl Vault {
    fn new(dir: &Path, sqlite: bool) -> Self {
        Self {
            dir: dir.to_owned(),
            database_url: sqlite.then(|| format!("sqlite://{}", dir.join(DB_FILE).display())),
            log: Vec::new(),
        }
    }

    fn data(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn command(&self) -> Command {
        let mut cmd = vault_command(&self.dir);
        cmd.env("CARDSEAL_MASTER_KEY", SPAWNED_MASTER_KEY)
            .env("CARDSEAL_DATA_DIR", self.data());
        if let Some(url) = &self.database_url {
            cmd.env("CARDSEAL_DATABASE_URL", url);
        }
        cmd
    }

    /// Runs `cardseal-vault ARGS`; keeps its stderr in the log.
    fn run(&mut self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = self
            .command()
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        self.log.extend_from_slice(&out.stderr);
        self.log.extend_from_slice(&out.stdout);
        out
    }

    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args, &[]);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&mut self, args: &[&str]) -> String {
        let out = self.run(args, &[]);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    fn cards_of(&self, account: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM cards WHERE account_id = '{account}'");
        if self.database_url.is_some() {
            let db = rusqlite::Connection::open(self.dir.join(DB_FILE)).unwrap();
            return db.query_row(&sql, [], |r| r.get(0)).unwrap();
        }
        db_number(&self.dir, &sql)
    }

    /// `serve` on a free port, its log kept in a file until [`Server::stop`].
    // The child is killed and waited for by `Server`'s `Drop`, also on panics.
    #[allow(clippy::zombie_processes)]
    fn serve(&self) -> Server {
        let log = self.dir.join("serve.log");
        let mut child = self
            .command()
            .env("CARDSEAL_LOG", "debug")
            .env("CARDSEAL_CARD_RATE", "0")
            .env("CARDSEAL_DECLINE_RATE", "0")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "serve exited");
            if let Some(a) = line.trim().strip_prefix("listening on http://") {
                return Server {
                    child,
                    addr: a.parse().unwrap(),
                    log,
                };
            }
        }
    }
}

struct Server {
    child: std::process::Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn stop(mut self, vault: &mut Vault) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        vault.log.extend(std::fs::read(&self.log).unwrap());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn account(v: &mut Vault, name: &str) -> (String, String) {
    let out: Value =
        serde_json::from_str(&v.ok(&["accounts", "create", "--name", name, "--json"])).unwrap();
    (
        out["account"].as_str().unwrap().to_owned(),
        out["secret_key"].as_str().unwrap().to_owned(),
    )
}

/// `keys export-jwks --purpose P` into `file`; returns the thumbprint it printed.
fn export_jwks(v: &mut Vault, purpose: &str, file: &Path) -> String {
    let out = v.run(&["keys", "export-jwks", "--purpose", purpose], &[]);
    assert!(out.status.success());
    std::fs::write(file, &out.stdout).unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    err.split_whitespace()
        .skip_while(|w| *w != "thumbprint")
        .nth(1)
        .unwrap()
        .to_owned()
}

/// Saves `n` cards in `account` of the SQLite vault in `dir` straight through the store (the
/// code `POST /v1/cards` runs), each with a customer and metadata, every other one with a
/// card-on-file network transaction id. Returns the ids and numbers.
async fn bulk_cards(dir: &Path, account: &str, n: usize, seed: u64) -> Vec<(String, String)> {
    let store = SqliteStore::open(dir).unwrap();
    let master = MasterKey::parse(SPAWNED_MASTER_KEY).unwrap();
    let acct = account.to_owned();
    let record = store::read(&store, move |tx| tx.account(&acct))
        .await
        .unwrap()
        .unwrap();
    let keys = AccountKeys::unwrap(
        &master,
        &record.id,
        &WrappedAccountKeys {
            data_key: record.wrapped_data_key.clone(),
            fingerprint_key: record.wrapped_fingerprint_key.clone(),
        },
    )
    .unwrap();
    let principal = Principal {
        account_id: record.id.clone(),
        kind: KeyKind::Secret,
        scopes: vec![],
        origins: vec![],
        keys,
        key_ref: "test".into(),
        expires_at: None,
    };
    let numbers: Vec<String> = (0..n)
        .map(|i| luhn_number("4", 16, seed * 1_000_000 + i as u64))
        .collect();
    store::write_or_abort(&store, move |tx| {
        let cvc = Secret::new("123");
        let mut out = Vec::new();
        for (i, number) in numbers.into_iter().enumerate() {
            let parsed = cardseal::card::Card::parse(
                &CardInput {
                    number: Secret::new(&number),
                    exp_month: "12".into(),
                    exp_year: "2034".into(),
                    cvc: None,
                    name: Some("Ada Lovelace".into()),
                },
                Today::new(2026, 1),
            )
            .unwrap();
            let (c, _) = card::insert(
                tx,
                &principal,
                NewCard {
                    summary: summary(&principal, &parsed),
                    number: &Secret::new(&number),
                    name: Some("Ada Lovelace"),
                    // The first card has a CVC kept for its next charge: the export leaves it
                    // out (the import refuses any record that carries one).
                    cvc: (i == 0).then_some(&cvc),
                    customer: Some(format!("cus_{i}")),
                    metadata: json!({"order": format!("o{i}")}).to_string(),
                    issuer: IssuerInfo::default(),
                },
                1_700_000_000 + i as i64,
            )?;
            if i % 2 == 0 {
                tx.set_network_transaction_id(&principal.account_id, &c.id, &format!("ntid{i}"))?;
            }
            out.push((c.id, number));
        }
        Ok::<_, TxError<cardseal_vault::error::ApiError>>(out)
    })
    .await
    .map_err(|_| "bulk insert failed")
    .unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Card numbers of `numbers` found in `hay` (inside any run of digits).
fn numbers_in(hay: &[u8], numbers: &HashSet<&str>) -> usize {
    digit_runs(hay)
        .into_iter()
        .filter(|r| r.len() >= 16)
        .filter(|r| {
            r.windows(16)
                .any(|w| numbers.contains(std::str::from_utf8(w).unwrap()))
        })
        .count()
}

/// Sends the requests 8 at a time; the answers in the order given.
async fn in_parallel(
    addr: SocketAddr,
    reqs: Vec<(String, axum::http::Request<axum::body::Body>)>,
) -> Vec<(String, support::Reply)> {
    let mut out = Vec::with_capacity(reqs.len());
    let mut reqs = reqs.into_iter().peekable();
    while reqs.peek().is_some() {
        let tasks: Vec<_> = reqs
            .by_ref()
            .take(8)
            .map(|(id, req)| tokio::spawn(async move { (id, http(addr, req).await) }))
            .collect();
        for t in tasks {
            out.push(t.await.unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_moves_every_card_to_another_vault() {
    let root = tempfile::tempdir().unwrap();
    let (a_dir, b_dir, c_dir) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    let mut a = Vault::new(&a_dir, true);
    let mut b = Vault::new(&b_dir, false);
    let mut c = Vault::new(&c_dir, true);
    let f = |name: &str| root.path().join(name);
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    // Vault A: one account with 1,000 saved cards, a second with 3.
    let (acct_a, sk_a) = account(&mut a, "shop");
    let (acct_a2, _) = account(&mut a, "other shop");
    let cards = bulk_cards(&a_dir, &acct_a, CARDS, 1).await;
    bulk_cards(&a_dir, &acct_a2, 3, 2).await;

    // Vault B publishes its import key; A its export-signing key. The thumbprint travels out
    // of band (here: the test).
    let (acct_b, sk_b) = account(&mut b, "shop");
    let (acct_b2, _) = account(&mut b, "spare");
    let import_thumb = export_jwks(&mut b, "import", &f("b-import.jwks"));
    export_jwks(&mut a, "export-signing", &f("a-signing.jwks"));
    // A third vault's keys, for the bad cases.
    let c_thumb = export_jwks(&mut c, "import", &f("c-import.jwks"));
    export_jwks(&mut c, "export-signing", &f("c-signing.jwks"));
    assert_ne!(import_thumb, c_thumb);
    // The import key is not a browser key: B's JWKS does not hold it.
    let b_import: Value =
        serde_json::from_str(&std::fs::read_to_string(f("b-import.jwks")).unwrap()).unwrap();
    let import_kid = b_import["keys"][0]["kid"].as_str().unwrap().to_owned();

    let export = f("export.jsonl");
    let manifest = f("export.jsonl.manifest.json");
    let export_args = |acct: &str, jwks: &str, pin: &str, out: &str| -> Vec<String> {
        [
            "export",
            "--account",
            acct,
            "--to-jwks",
            jwks,
            "--pin-thumbprint",
            pin,
            "--out",
            out,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let args = export_args(&acct_a, &s(&f("b-import.jwks")), &import_thumb, &s(&export));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // A key other than the pinned one is refused, and nothing is written.
    let wrong_pin = export_args(&acct_a, &s(&f("c-import.jwks")), &import_thumb, &s(&export));
    let err = a.fails(&wrong_pin.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("not the pinned"), "{err}");
    assert!(!export.exists());

    // The export, killed after 300 cards (and a half-written line after them), then resumed.
    let out = a.run(&args, &[("CARDSEAL_TEST_EXPORT_STOP_AFTER", "300")]);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(lines(&export).len(), 300);
    assert!(!manifest.exists());
    let mut half = std::fs::OpenOptions::new()
        .append(true)
        .open(&export)
        .unwrap();
    std::io::Write::write_all(&mut half, b"{\"index\":300,\"object\":\"exp").unwrap();
    drop(half);
    let out = a.ok(&args);
    assert!(
        out.contains("exported 1000 cards (300 from an earlier run)"),
        "{out}"
    );
    let out = a.ok(&args);
    assert!(out.contains("already complete: 1000 cards"), "{out}");
    let records = lines(&export);
    assert_eq!(records.len(), CARDS);
    let ids: HashSet<String> = records
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, cards.iter().map(|(id, _)| id.clone()).collect());
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["count"], CARDS);
    assert_eq!(m["receiving_thumbprint"], import_thumb.as_str());
    assert_eq!(m["receiving_kid"], import_kid.as_str());
    // The export is in A's audit chain, and the chain still verifies.
    let sql = format!(
        "SELECT count(*) FROM events WHERE account_id = '{acct_a}' AND type = 'cards.exported'"
    );
    let db = rusqlite::Connection::open(a_dir.join(DB_FILE)).unwrap();
    let n: i64 = db.query_row(&sql, [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
    assert!(a.ok(&["events", "verify"]).starts_with("ok:"));

    let import_args = |acct: &str, input: &Path, manifest: &Path, key: &Path| -> Vec<String> {
        vec![
            "import".into(),
            "--account".into(),
            acct.into(),
            "--in".into(),
            s(input),
            "--manifest".into(),
            s(manifest),
            "--verify-key".into(),
            s(key),
        ]
    };
    let run_import = |v: &mut Vault, args: &[String], env: &[(&str, &str)]| {
        v.run(&args.iter().map(String::as_str).collect::<Vec<_>>(), env)
    };
    let refused = |v: &mut Vault, input: &Path, manifest: &Path, key: &Path, want: &str| {
        let out = run_import(v, &import_args(&acct_b2, input, manifest, key), &[]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && err.contains(want),
            "want {want:?}, got {err}"
        );
        assert_eq!(v.cards_of(&acct_b2), 0, "a refused export stored a card");
    };

    // Bad exports, each refused before anything is stored.
    let signing = f("a-signing.jwks");
    let mut bad = records.clone();
    bad.pop();
    write_lines(&f("truncated.jsonl"), &bad);
    refused(
        &mut b,
        &f("truncated.jsonl"),
        &manifest,
        &signing,
        "record 999 is missing",
    );

    let mut bad = records.clone();
    let mut r7: Value = serde_json::from_str(&bad[7]).unwrap();
    let jwe = r7["sealed"].as_str().unwrap().to_owned();
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    let first = if parts[3].starts_with('A') { "B" } else { "A" };
    parts[3].replace_range(0..1, first);
    r7["sealed"] = json!(parts.join("."));
    bad[7] = r7.to_string();
    write_lines(&f("tampered.jsonl"), &bad);
    refused(
        &mut b,
        &f("tampered.jsonl"),
        &manifest,
        &signing,
        "record 7 does not match its SHA-256",
    );

    let mut m_bad = m.clone();
    m_bad["records"][3] = json!("00".repeat(32));
    std::fs::write(f("bad.manifest.json"), m_bad.to_string()).unwrap();
    refused(
        &mut b,
        &export,
        &f("bad.manifest.json"),
        &signing,
        "signature does not verify",
    );
    refused(
        &mut b,
        &export,
        &manifest,
        &f("c-signing.jwks"),
        "signature does not verify",
    );

    // A signed export of another account, and one sealed for vault C, to splice from.
    let other = f("other.jsonl");
    let oargs = export_args(&acct_a2, &s(&f("b-import.jwks")), &import_thumb, &s(&other));
    a.ok(&oargs.iter().map(String::as_str).collect::<Vec<_>>());
    let for_c = f("for-c.jsonl");
    let cargs = export_args(&acct_a2, &s(&f("c-import.jwks")), &c_thumb, &s(&for_c));
    a.ok(&cargs.iter().map(String::as_str).collect::<Vec<_>>());
    refused(
        &mut b,
        &for_c,
        &f("for-c.jsonl.manifest.json"),
        &signing,
        "the export is sealed for another key",
    );

    let mut bad = records.clone();
    let mut spliced: Value = serde_json::from_str(&lines(&other)[0]).unwrap();
    spliced["index"] = json!(3);
    bad[3] = spliced.to_string();
    write_lines(&f("wrong-account.jsonl"), &bad);
    refused(
        &mut b,
        &f("wrong-account.jsonl"),
        &manifest,
        &signing,
        "record 3 belongs to another account",
    );

    let mut bad = records.clone();
    let mut spliced: Value = serde_json::from_str(&lines(&for_c)[0]).unwrap();
    spliced["index"] = json!(5);
    spliced["account"] = json!(acct_a);
    bad[5] = spliced.to_string();
    write_lines(&f("other-key.jsonl"), &bad);
    refused(
        &mut b,
        &f("other-key.jsonl"),
        &manifest,
        &signing,
        "record 5 is sealed for another key",
    );

    // The import, killed after 400 cards, then run again, and again.
    let good = import_args(&acct_b, &export, &manifest, &signing);
    let out = run_import(&mut b, &good, &[("CARDSEAL_TEST_IMPORT_STOP_AFTER", "400")]);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(b.cards_of(&acct_b), 400);
    let out = run_import(&mut b, &good, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("imported 600, already present 400, refused 0"),
        "{text}"
    );
    let out = run_import(&mut b, &good, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("imported 0, already present 1000, refused 0"),
        "{text}"
    );
    assert_eq!(b.cards_of(&acct_b), CARDS as i64);
    assert!(b.ok(&["events", "verify"]).starts_with("ok:"));
    // A's other account's 3 cards into B's acct_b, then the same export into acct_b2: the ids
    // are taken, so each record is refused on its own, with its index, and nothing is stored.
    let other_manifest = f("other.jsonl.manifest.json");
    let text = b.ok(&import_args(&acct_b, &other, &other_manifest, &signing)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(
        text.contains("imported 3, already present 0, refused 0"),
        "{text}"
    );
    let out = run_import(
        &mut b,
        &import_args(&acct_b2, &other, &other_manifest, &signing),
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("imported 0, already present 0, refused 3"),
        "{text}"
    );
    assert!(text.contains("refused record 0 (card_"), "{text}");
    assert!(
        text.contains("this id was used on this vault before"),
        "{text}"
    );
    assert_eq!(b.cards_of(&acct_b2), 0);

    // Every card charges on B under its old id; the card-on-file ones as merchant-initiated
    // recurring charges, which need the network transaction id the card came with.
    let server_b = b.serve();
    let charges = cards.iter().enumerate().map(|(i, (id, _))| {
        let interaction = if i % 2 == 0 {
            "COF_RECURRING"
        } else {
            "ONE_TIME"
        };
        let req = post_json(
            "/v1/charges",
            &sk_b,
            &json!({"amount": 100, "currency": "usd", "source": id, "interaction": interaction}),
        );
        (id.clone(), req)
    });
    for (id, r) in in_parallel(server_b.addr, charges.collect()).await {
        assert_eq!(r.status, 200, "{id}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["status"], "succeeded", "{id}");
        assert_eq!(r.json()["source"], id.as_str());
    }
    // Without a network transaction id a recurring charge is refused: the ones above used
    // the imported ones.
    let r = http(
        server_b.addr,
        post_json(
            "/v1/charges",
            &sk_b,
            &json!({"amount": 100, "currency": "usd", "source": cards[1].0, "interaction": "COF_RECURRING"}),
        ),
    )
    .await;
    assert_ne!(r.status, 200);
    let card = http(
        server_b.addr,
        axum::http::Request::get(format!("/v1/cards/{}", cards[10].0))
            .header("authorization", format!("Bearer {sk_b}"))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(card["customer"], "cus_10");
    assert_eq!(card["metadata"]["order"], "o10");
    assert_eq!(card["last4"], &cards[10].1[12..]);
    assert_eq!(card["created"], 1_700_000_010);
    server_b.stop(&mut b);

    // A's copies are crypto-shredded with DELETE.
    let server_a = a.serve();
    let deletes = cards.iter().map(|(id, _)| {
        let req = axum::http::Request::delete(format!("/v1/cards/{id}"))
            .header("authorization", format!("Bearer {sk_a}"))
            .body(axum::body::Body::empty())
            .unwrap();
        (id.clone(), req)
    });
    for (id, r) in in_parallel(server_a.addr, deletes.collect()).await {
        assert_eq!(r.status, 200, "{id}: {}", String::from_utf8_lossy(&r.body));
    }
    server_a.stop(&mut a);
    let left: i64 = db
        .query_row(
            &format!("SELECT count(*) FROM cards WHERE account_id = '{acct_a}' AND (sealed IS NOT NULL OR card_key IS NOT NULL)"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);

    // No card number in the export, the manifest, or either vault's logs.
    let numbers: HashSet<&str> = cards.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        numbers_in(format!("x{}y", cards[3].1).as_bytes(), &numbers),
        1
    );
    for (what, bytes) in [
        ("export", std::fs::read(&export).unwrap()),
        ("manifest", std::fs::read(&manifest).unwrap()),
        ("vault A's log", a.log.clone()),
        ("vault B's log", b.log.clone()),
    ] {
        assert!(
            !bytes.is_empty() || what == "vault A's log",
            "{what} is empty"
        );
        assert_eq!(numbers_in(&bytes, &numbers), 0, "a card number in {what}");
    }
}
