//! The PostgreSQL schema, as ordered migrations. The table `cardseal_schema` holds how many ran.
//!
//! The same tables as SQLite's, in one first migration (a PostgreSQL database starts at the
//! current shape; it has no history to replay). Integers are `BIGINT` throughout, so that every
//! value binds as an `i64`. `cards.seq` stands in for SQLite's `rowid`.

/// Ordered migrations. Append only: a shipped migration never changes.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: everything the vault stored at SQLite's schema version 4.
    "
    CREATE TABLE sealing_keys (
        kid           TEXT PRIMARY KEY,
        private_key   BYTEA NOT NULL,    -- PKCS#8 DER wrapped under the master key
        public_jwk    TEXT NOT NULL,
        created       BIGINT NOT NULL,
        superseded_at BIGINT
    );
    CREATE TABLE accounts (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        allowed_origins TEXT NOT NULL,   -- JSON array of origin patterns
        data_key        BYTEA NOT NULL,  -- AES-256-GCM key wrapped under the master key
        fingerprint_key BYTEA NOT NULL,  -- HMAC-SHA256 key wrapped under the master key
        demo            BOOLEAN NOT NULL DEFAULT FALSE,
        created         BIGINT NOT NULL,
        audit_key       BYTEA,           -- wrapped under the master key; NULL until keyed
        seq             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
    );
    CREATE UNIQUE INDEX accounts_one_demo ON accounts(demo) WHERE demo;
    CREATE TABLE api_keys (
        key_hash    BYTEA PRIMARY KEY,   -- SHA-256 of the key; the key itself is not kept
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        kind        TEXT NOT NULL,
        scopes      TEXT NOT NULL,       -- JSON array
        wrapped_key BYTEA,               -- demo account only
        created     BIGINT NOT NULL,
        expires_at  BIGINT,
        revoked_at  BIGINT,
        seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
    );
    CREATE INDEX api_keys_account ON api_keys(account_id);
    CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        type        TEXT NOT NULL,
        brand       TEXT,
        bin         TEXT,
        last4       TEXT,
        exp_month   BIGINT,
        exp_year    BIGINT,
        fingerprint BYTEA,
        sealed      BYTEA,               -- card data, AES-256-GCM, AAD = account and token id
        client_ip   TEXT,
        created     BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL,
        used_at     BIGINT
    );
    CREATE INDEX tokens_expiry ON tokens(expires_at) WHERE sealed IS NOT NULL;
    CREATE TABLE seen_jtis (
        expires_at      BIGINT NOT NULL,
        jti_hash        BYTEA NOT NULL,  -- SHA-256 of the JWE's jti
        account_id      TEXT NOT NULL,
        token_id        TEXT NOT NULL,
        idempotency_key BYTEA,           -- SHA-256 of the request's Idempotency-Key
        PRIMARY KEY (expires_at, jti_hash)
    );
    CREATE TABLE cards (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        customer    TEXT,
        brand       TEXT NOT NULL,
        bin         TEXT NOT NULL,
        last4       TEXT NOT NULL,
        exp_month   BIGINT NOT NULL,
        exp_year    BIGINT NOT NULL,
        fingerprint BYTEA NOT NULL,
        issuer      TEXT,
        country     TEXT,
        funding     TEXT,
        currency    TEXT,
        metadata    TEXT NOT NULL,
        card_key    BYTEA,             -- the card's AES key sealed with the account key; NULL once deleted
        sealed      BYTEA,             -- number and expiry, sealed with the card key
        network_transaction_id TEXT,
        created     BIGINT NOT NULL,
        deleted_at  BIGINT,
        seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
    );
    CREATE INDEX cards_account ON cards(account_id, customer, seq);
    CREATE TABLE card_cvcs (
        card_id    TEXT PRIMARY KEY REFERENCES cards(id),
        account_id TEXT NOT NULL,
        sealed     BYTEA NOT NULL,     -- the CVC, sealed with the card key
        expires_at BIGINT NOT NULL
    );
    CREATE TABLE charges (
        id         TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        object     TEXT NOT NULL,      -- the Charge object; no card data
        created    BIGINT NOT NULL
    );
    CREATE TABLE events (
        seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL,
        type       TEXT NOT NULL,
        body       TEXT NOT NULL,      -- canonical JSON; the hash covers it
        prev_hash  BYTEA NOT NULL,
        hash       BYTEA NOT NULL
    );
    CREATE INDEX events_account ON events(account_id, seq);
    CREATE TABLE idempotency_keys (
        account_id   TEXT NOT NULL,
        key_hash     BYTEA NOT NULL,   -- SHA-256 of the Idempotency-Key
        request_hash BYTEA NOT NULL,   -- keyed digest of method, path and body
        status       BIGINT,           -- NULL while the first request runs
        body         BYTEA,
        locked_until BIGINT NOT NULL,
        expires_at   BIGINT NOT NULL,
        PRIMARY KEY (account_id, key_hash)
    );
    ",
    // 2: the account's forward allow-list (SQLite's migration 5).
    "ALTER TABLE accounts ADD COLUMN forward_hosts TEXT NOT NULL DEFAULT '[]'; -- JSON array",
    // 3: recurring charge schedules and their runs (SQLite's migration 6). The primary key of
    // `recurring_runs` is the claim that makes each run happen once across instances.
    "
    CREATE TABLE recurring_charges (
        id             TEXT PRIMARY KEY,
        account_id     TEXT NOT NULL REFERENCES accounts(id),
        source         TEXT NOT NULL,
        amount         BIGINT NOT NULL,
        currency       TEXT NOT NULL,
        interval       TEXT NOT NULL,
        interval_count BIGINT NOT NULL,
        start          BIGINT NOT NULL,
        end_at         BIGINT,
        count          BIGINT,
        status         TEXT NOT NULL,
        period         BIGINT NOT NULL,
        attempt        BIGINT NOT NULL,
        next_run       BIGINT,
        created        BIGINT NOT NULL,
        canceled_at    BIGINT,
        seq            BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
    );
    CREATE INDEX recurring_account ON recurring_charges(account_id, created);
    CREATE INDEX recurring_due ON recurring_charges(next_run) WHERE next_run IS NOT NULL;
    CREATE TABLE recurring_runs (
        recurring_id TEXT NOT NULL REFERENCES recurring_charges(id),
        period       BIGINT NOT NULL,
        attempt      BIGINT NOT NULL,
        charge_id    TEXT,
        status       TEXT NOT NULL,
        created      BIGINT NOT NULL,
        PRIMARY KEY (recurring_id, period, attempt)
    );
    CREATE UNIQUE INDEX recurring_runs_one_success ON recurring_runs(recurring_id, period)
        WHERE status = 'succeeded';
    ",
    // 4: refunds, and the order charges are listed in (SQLite's migration 7).
    "
    ALTER TABLE charges ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE;
    CREATE INDEX charges_account ON charges(account_id, seq);
    CREATE TABLE refunds (
        id         TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        charge_id  TEXT NOT NULL REFERENCES charges(id),
        object     TEXT NOT NULL,      -- the Refund object; no card data
        created    BIGINT NOT NULL,
        seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
    );
    CREATE INDEX refunds_account ON refunds(account_id, seq);
    CREATE INDEX refunds_charge ON refunds(charge_id, seq);
    ",
    // 5: indexes for the batched purge (SQLite's migration 8).
    "
    DROP INDEX IF EXISTS tokens_expiry;
    CREATE INDEX IF NOT EXISTS tokens_unused_expiry ON tokens(expires_at) WHERE used_at IS NULL;
    CREATE INDEX IF NOT EXISTS tokens_used ON tokens(used_at) WHERE used_at IS NOT NULL;
    CREATE INDEX IF NOT EXISTS card_cvcs_expiry ON card_cvcs(expires_at);
    CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys(expires_at);
    ",
];
