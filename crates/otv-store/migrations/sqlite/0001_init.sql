-- otv schema, SQLite.
--
-- Conventions (the PostgreSQL schema has the same tables and meaning):
-- * ids are UUIDv7 as 16-byte BLOBs: unique without a hot sequence, and roughly time-ordered,
--   so inserts land at the end of the B-trees.
-- * times are INTEGER microseconds since the Unix epoch, UTC: exact round trips (PostgreSQL
--   keeps microseconds too), and they compare as numbers.
-- * every large table carries citizen_id and leads its primary key with it, so a patient's rows
--   sit together and the tables can later be distributed by patient.
-- * a BSN is never stored in the clear: bsn_pseudonym is HMAC-SHA256 under a configured key (for
--   lookup), bsn_encrypted is AES-256-GCM (for when the number itself is needed).

CREATE TABLE providers (
    ura               TEXT    NOT NULL PRIMARY KEY,
    name              TEXT    NOT NULL,
    organisation_type TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE connectors (
    id                 TEXT    NOT NULL PRIMARY KEY,
    name               TEXT    NOT NULL,
    certificate_sha256 TEXT    UNIQUE,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE connector_uras (
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    ura          TEXT NOT NULL,
    PRIMARY KEY (connector_id, ura)
) WITHOUT ROWID;

-- Minimal personal data only (PRODUCT.md §10).
CREATE TABLE citizens (
    id            BLOB    NOT NULL PRIMARY KEY,
    bsn_pseudonym BLOB    NOT NULL UNIQUE,
    bsn_encrypted BLOB    NOT NULL,
    name          TEXT,
    email         TEXT,
    birth_date    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- Every answer ever recorded. The current one for a key has superseded_at NULL; replacing it
-- sets superseded_at and inserts the new one, so the history is the table itself.
CREATE TABLE answers (
    citizen_id        BLOB    NOT NULL REFERENCES citizens (id),
    id                BLOB    NOT NULL,
    holder_kind       TEXT    NOT NULL CHECK (holder_kind IN ('category', 'provider')),
    holder_code       TEXT    NOT NULL,
    data_category     TEXT    NOT NULL,
    consulter_kind    TEXT    NOT NULL CHECK (consulter_kind IN ('category', 'provider')),
    consulter_code    TEXT    NOT NULL,
    effect            TEXT    NOT NULL CHECK (effect IN ('permit', 'deny')),
    valid_from        INTEGER NOT NULL,
    valid_until       INTEGER,
    state             TEXT    NOT NULL,
    recorded_at       INTEGER NOT NULL,
    channel           TEXT    NOT NULL,
    actor             TEXT    NOT NULL, -- JSON of otv_core::Actor
    catalogue_version TEXT    NOT NULL,
    superseded_at     INTEGER,
    -- Clusters a citizen's answers (history included) together; id is unique on its own.
    PRIMARY KEY (citizen_id, id)
) WITHOUT ROWID;

-- One current answer per key. Leading with citizen_id and restricted to current answers, it is
-- also the index of the decision's hot path, profile(); a second index on the same rows would
-- only slow every write.
CREATE UNIQUE INDEX answers_current
    ON answers (citizen_id, holder_kind, holder_code, data_category, consulter_kind, consulter_code)
    WHERE superseded_at IS NULL;

CREATE TABLE subscriptions (
    citizen_id     BLOB    NOT NULL REFERENCES citizens (id),
    id             BLOB    NOT NULL,
    holder_ura     TEXT    NOT NULL,
    holder_type    TEXT    NOT NULL,
    connector_id   TEXT    NOT NULL,
    source_system  TEXT    NOT NULL,
    gateway_system TEXT    NOT NULL,
    endpoint       TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    birth_date     TEXT,
    status         TEXT    NOT NULL DEFAULT 'active',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- Also the index by citizen (who holds a record for this patient).
    PRIMARY KEY (citizen_id, id),
    UNIQUE (connector_id, citizen_id, source_system)
) WITHOUT ROWID;

-- The audit chain (PRODUCT.md §11). seq is the chain position; hash = SHA-256(prev_hash ||
-- canonical encoding), see src/audit.rs.
CREATE TABLE audit_log (
    seq          INTEGER NOT NULL PRIMARY KEY,
    at           INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    patient      TEXT,
    actor        TEXT    NOT NULL,
    organisation TEXT,
    mandated     TEXT,
    request_id   TEXT,
    decision     TEXT,
    reason       TEXT,
    emergency    INTEGER NOT NULL,
    channel      TEXT,
    details      TEXT    NOT NULL, -- JSON, hashed as stored
    prev_hash    BLOB    NOT NULL,
    hash         BLOB    NOT NULL
);

CREATE TABLE audit_checkpoints (
    seq        INTEGER NOT NULL PRIMARY KEY,
    hash       BLOB    NOT NULL,
    signed_at  INTEGER NOT NULL,
    signature  BLOB    NOT NULL,
    public_key BLOB    NOT NULL
);

-- The end of the chain, one row. Appends read and move it inside their transaction, which is
-- what serialises them; it also lets verification notice records cut from the end.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

-- Work to do after a commit (notifications), written in the same transaction as its cause.
CREATE TABLE outbox (
    id           BLOB    NOT NULL PRIMARY KEY,
    citizen_id   BLOB    NOT NULL REFERENCES citizens (id),
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL, -- JSON, never a BSN
    created_at   INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    state        TEXT    NOT NULL DEFAULT 'pending',
    last_error   TEXT
);
CREATE INDEX outbox_due ON outbox (state, available_at);
