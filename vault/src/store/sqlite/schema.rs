//! The SQLite schema, as ordered migrations.

/// Ordered migrations; `PRAGMA user_version` counts how many ran. Append only: a shipped
/// migration never changes.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: keys, accounts, tokens and replay protection.
    "
    CREATE TABLE sealing_keys (
        kid           TEXT PRIMARY KEY,
        private_key   BLOB NOT NULL,     -- PKCS#8 DER wrapped under the master key
        public_jwk    TEXT NOT NULL,
        created       INTEGER NOT NULL,
        superseded_at INTEGER
    ) STRICT;
    CREATE TABLE accounts (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        allowed_origins TEXT NOT NULL,   -- JSON array of origin patterns
        data_key        BLOB NOT NULL,   -- AES-256-GCM key wrapped under the master key
        fingerprint_key BLOB NOT NULL,   -- HMAC-SHA256 key wrapped under the master key
        demo            INTEGER NOT NULL DEFAULT 0,
        created         INTEGER NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX accounts_one_demo ON accounts(demo) WHERE demo = 1;
    CREATE TABLE api_keys (
        key_hash    BLOB PRIMARY KEY,    -- SHA-256 of the key; the key itself is not kept
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        kind        TEXT NOT NULL,
        scopes      TEXT NOT NULL,       -- JSON array
        wrapped_key BLOB,                -- demo account only
        created     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX api_keys_account ON api_keys(account_id);
    CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        type        TEXT NOT NULL,
        brand       TEXT,
        bin         TEXT,
        last4       TEXT,
        exp_month   INTEGER,
        exp_year    INTEGER,
        fingerprint BLOB,
        sealed      BLOB,                -- card data, AES-256-GCM, AAD = account and token id
        client_ip   TEXT,
        created     INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER
    ) STRICT;
    CREATE INDEX tokens_expiry ON tokens(expires_at) WHERE sealed IS NOT NULL;
    -- Keyed by expiry first: a replayed JWE carries the same iat, hence the same expiry, so
    -- uniqueness holds; inserts land at the end of the B-tree instead of on a random page;
    -- and the purge is a range delete on the key.
    CREATE TABLE seen_jtis (
        expires_at      INTEGER NOT NULL,
        jti_hash        BLOB NOT NULL,    -- SHA-256 of the JWE's jti
        account_id      TEXT NOT NULL,
        token_id        TEXT NOT NULL,
        idempotency_key BLOB,             -- SHA-256 of the request's Idempotency-Key
        PRIMARY KEY (expires_at, jti_hash)
    ) STRICT, WITHOUT ROWID;
    ",
    // 2: saved cards, CVCs, charges, the audit log and idempotency keys.
    CARDS_AND_LEDGER,
    // 3: API keys can be rolled (the old one expires after a grace period) and revoked.
    "
    ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
    ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
    ",
    // 4: per-account audit keys for the keyed event chains.
    AUDIT_KEYS,
    // 5: the hosts `POST /v1/forward` may send cards to (`accounts update --forward-host`).
    FORWARD_HOSTS,
    // 6: recurring charge schedules and their runs.
    RECURRING,
    // 7: refunds, and an index for the charge lists.
    REFUNDS,
    // 8: indexes for the batched purge (issue #26, "The vault at scale").
    SCALE_INDEXES,
];

/// Migration 2. CVCs sit in their own table so that using one is a `DELETE`; card data and
/// CVCs are sealed with the card's own key, itself sealed with the account's data key.
const CARDS_AND_LEDGER: &str = "
    CREATE TABLE cards (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        customer    TEXT,
        brand       TEXT NOT NULL,
        bin         TEXT NOT NULL,
        last4       TEXT NOT NULL,
        exp_month   INTEGER NOT NULL,
        exp_year    INTEGER NOT NULL,
        fingerprint BLOB NOT NULL,
        issuer      TEXT,
        country     TEXT,
        funding     TEXT,
        currency    TEXT,
        metadata    TEXT NOT NULL,
        card_key    BLOB,              -- the card's AES key sealed with the account key; NULL once deleted
        sealed      BLOB,              -- number and expiry, sealed with the card key
        network_transaction_id TEXT,
        created     INTEGER NOT NULL,
        deleted_at  INTEGER
    ) STRICT;
    CREATE INDEX cards_account ON cards(account_id, customer);
    CREATE TABLE card_cvcs (
        card_id    TEXT PRIMARY KEY REFERENCES cards(id),
        account_id TEXT NOT NULL,
        sealed     BLOB NOT NULL,      -- the CVC, sealed with the card key
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE charges (
        id         TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        object     TEXT NOT NULL,      -- the Charge object; no card data
        created    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE events (
        seq        INTEGER PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL,
        type       TEXT NOT NULL,
        body       TEXT NOT NULL,      -- canonical JSON; the hash covers it
        prev_hash  BLOB NOT NULL,
        hash       BLOB NOT NULL
    ) STRICT;
    CREATE INDEX events_account ON events(account_id, seq);
    CREATE TABLE idempotency_keys (
        account_id   TEXT NOT NULL,
        key_hash     BLOB NOT NULL,    -- SHA-256 of the Idempotency-Key
        request_hash BLOB NOT NULL,    -- SHA-256 of method, path and body
        status       INTEGER,          -- NULL while the first request runs
        body         BLOB,
        locked_until INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        PRIMARY KEY (account_id, key_hash)
    ) STRICT, WITHOUT ROWID;
";

/// Migration 4. Each account's audit key, wrapped under the master key; NULL until the account's
/// first event, or until a vault that keys chains first starts on an older database.
const AUDIT_KEYS: &str = "
    ALTER TABLE accounts ADD COLUMN audit_key BLOB;
";

/// Migration 5. Each account's forward allow-list; empty (forwards refused) until
/// `accounts update --forward-host` fills it.
const FORWARD_HOSTS: &str = "
    ALTER TABLE accounts ADD COLUMN forward_hosts TEXT NOT NULL DEFAULT '[]'; -- JSON array
";

/// Migration 6. Recurring charge schedules, and one row per run: the primary key on
/// (schedule, period, attempt) is the claim that makes each run happen once, and the partial
/// index makes a second successful charge of one period impossible.
const RECURRING: &str = "
    CREATE TABLE recurring_charges (
        id             TEXT PRIMARY KEY,
        account_id     TEXT NOT NULL REFERENCES accounts(id),
        source         TEXT NOT NULL,   -- card_…
        amount         INTEGER NOT NULL,
        currency       TEXT NOT NULL,
        interval       TEXT NOT NULL,
        interval_count INTEGER NOT NULL,
        start          INTEGER NOT NULL,
        end_at         INTEGER,
        count          INTEGER,
        status         TEXT NOT NULL,
        period         INTEGER NOT NULL,
        attempt        INTEGER NOT NULL,
        next_run       INTEGER,         -- NULL once canceled or completed
        created        INTEGER NOT NULL,
        canceled_at    INTEGER
    ) STRICT;
    CREATE INDEX recurring_account ON recurring_charges(account_id, created);
    CREATE INDEX recurring_due ON recurring_charges(next_run) WHERE next_run IS NOT NULL;
    CREATE TABLE recurring_runs (
        recurring_id TEXT NOT NULL REFERENCES recurring_charges(id),
        period       INTEGER NOT NULL,
        attempt      INTEGER NOT NULL,
        charge_id    TEXT,
        status       TEXT NOT NULL,
        created      INTEGER NOT NULL,
        PRIMARY KEY (recurring_id, period, attempt)
    ) STRICT, WITHOUT ROWID;
    CREATE UNIQUE INDEX recurring_runs_one_success ON recurring_runs(recurring_id, period)
        WHERE status = 'succeeded';
";

/// Migration 7. Lists run by `rowid` (the order rows were stored in): the index on
/// `account_id` holds it, as every SQLite index does. `IF NOT EXISTS`: a database set back to an
/// older `user_version` (as `events_cli.rs` does to stand for an old vault's) runs it again.
const REFUNDS: &str = "
    CREATE INDEX IF NOT EXISTS charges_account ON charges(account_id, created);
    CREATE TABLE IF NOT EXISTS refunds (
        id         TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        charge_id  TEXT NOT NULL REFERENCES charges(id),
        object     TEXT NOT NULL,      -- the Refund object; no card data
        created    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS refunds_account ON refunds(account_id, charge_id);
";

/// Migration 8 (`IF [NOT] EXISTS`, so that a database rewound to an older version, as a test
/// of migrations does, takes it again). Each index serves one statement of the purge: used tokens by when they were
/// used, unused tokens by expiry (which also clears expired card data, so the old index on
/// sealed rows goes), and expired CVCs and idempotency keys, which were full scans.
const SCALE_INDEXES: &str = "
    DROP INDEX IF EXISTS tokens_expiry;
    CREATE INDEX IF NOT EXISTS tokens_unused_expiry ON tokens(expires_at) WHERE used_at IS NULL;
    CREATE INDEX IF NOT EXISTS tokens_used ON tokens(used_at) WHERE used_at IS NOT NULL;
    CREATE INDEX IF NOT EXISTS card_cvcs_expiry ON card_cvcs(expires_at);
    CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys(expires_at);
";
