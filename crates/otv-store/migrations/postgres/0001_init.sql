-- otv schema, PostgreSQL.
--
-- Conventions (the SQLite schema has the same tables and meaning):
-- * ids are UUIDv7: unique without a hot sequence, roughly time-ordered so inserts land at the
--   end of the B-trees.
-- * times are timestamptz (microseconds); otv cuts every time to microseconds before writing.
-- * every large table carries citizen_id and leads its primary key with it, so a patient's rows
--   can be found together and the tables can later be distributed by patient (a distributed
--   table's unique constraints must include the distribution column).
-- * a BSN is never stored in the clear: bsn_pseudonym is HMAC-SHA256 under a configured key (for
--   lookup), bsn_encrypted is AES-256-GCM (for when the number itself is needed).
-- * JSON is kept as text: the audit chain hashes the exact stored bytes, and jsonb would
--   rewrite them.
-- * no advisory locks and no correctness that depends on them: appends to the audit chain
--   serialise on a row lock on audit_head.

CREATE TABLE providers (
    ura               text        NOT NULL PRIMARY KEY,
    name              text        NOT NULL,
    organisation_type text        NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE connectors (
    id                 text        NOT NULL PRIMARY KEY,
    name               text        NOT NULL,
    certificate_sha256 text        UNIQUE,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);

CREATE TABLE connector_uras (
    connector_id text NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    ura          text NOT NULL,
    PRIMARY KEY (connector_id, ura)
);

-- Minimal personal data only (PRODUCT.md §10).
CREATE TABLE citizens (
    id            uuid        NOT NULL PRIMARY KEY,
    bsn_pseudonym bytea       NOT NULL UNIQUE,
    bsn_encrypted bytea       NOT NULL,
    name          text,
    email         text,
    birth_date    date,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- Every answer ever recorded. The current one for a key has superseded_at NULL; replacing it
-- sets superseded_at and inserts the new one, so the history is the table itself.
CREATE TABLE answers (
    citizen_id        uuid        NOT NULL REFERENCES citizens (id),
    id                uuid        NOT NULL,
    holder_kind       text        NOT NULL CHECK (holder_kind IN ('category', 'provider')),
    holder_code       text        NOT NULL,
    data_category     text        NOT NULL,
    consulter_kind    text        NOT NULL CHECK (consulter_kind IN ('category', 'provider')),
    consulter_code    text        NOT NULL,
    effect            text        NOT NULL CHECK (effect IN ('permit', 'deny')),
    valid_from        timestamptz NOT NULL,
    valid_until       timestamptz,
    state             text        NOT NULL,
    recorded_at       timestamptz NOT NULL,
    channel           text        NOT NULL,
    actor             text        NOT NULL, -- JSON of otv_core::Actor
    catalogue_version text        NOT NULL,
    superseded_at     timestamptz,
    -- Also the index of a citizen's history; id is unique on its own.
    PRIMARY KEY (citizen_id, id)
);

-- One current answer per key. Leading with citizen_id and restricted to current answers, it is
-- also the index of the decision's hot path, profile(); a second index on the same rows would
-- only slow every write.
CREATE UNIQUE INDEX answers_current
    ON answers (citizen_id, holder_kind, holder_code, data_category, consulter_kind, consulter_code)
    WHERE superseded_at IS NULL;

CREATE TABLE subscriptions (
    citizen_id     uuid        NOT NULL REFERENCES citizens (id),
    id             uuid        NOT NULL,
    holder_ura     text        NOT NULL,
    holder_type    text        NOT NULL,
    connector_id   text        NOT NULL,
    source_system  text        NOT NULL,
    gateway_system text        NOT NULL,
    endpoint       text        NOT NULL,
    payload        text        NOT NULL,
    birth_date     date,
    status         text        NOT NULL DEFAULT 'active',
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    -- Also the index by citizen (who holds a record for this patient).
    PRIMARY KEY (citizen_id, id),
    UNIQUE (connector_id, citizen_id, source_system)
);

-- The audit chain (PRODUCT.md §11). seq is the chain position; hash = SHA-256(prev_hash ||
-- canonical encoding), see src/audit.rs.
CREATE TABLE audit_log (
    seq          bigint      NOT NULL PRIMARY KEY,
    at           timestamptz NOT NULL,
    event        text        NOT NULL,
    patient      text,
    actor        text        NOT NULL,
    organisation text,
    mandated     text,
    request_id   text,
    decision     text,
    reason       text,
    emergency    boolean     NOT NULL,
    channel      text,
    details      text        NOT NULL, -- JSON, hashed as stored
    prev_hash    bytea       NOT NULL,
    hash         bytea       NOT NULL
);

CREATE TABLE audit_checkpoints (
    seq        bigint      NOT NULL PRIMARY KEY,
    hash       bytea       NOT NULL,
    signed_at  timestamptz NOT NULL,
    signature  bytea       NOT NULL,
    public_key bytea       NOT NULL
);

-- The end of the chain, one row. Appends lock it (SELECT … FOR UPDATE) and move it inside their
-- transaction, which is what serialises them across otv nodes; it also lets verification
-- notice records cut from the end.
CREATE TABLE audit_head (
    id   integer NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  bigint  NOT NULL,
    hash bytea   NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Work to do after a commit (notifications), written in the same transaction as its cause.
CREATE TABLE outbox (
    id           uuid        NOT NULL PRIMARY KEY,
    citizen_id   uuid        NOT NULL REFERENCES citizens (id),
    kind         text        NOT NULL,
    payload      text        NOT NULL, -- JSON, never a BSN
    created_at   timestamptz NOT NULL,
    available_at timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    state        text        NOT NULL DEFAULT 'pending',
    last_error   text
);
CREATE INDEX outbox_due ON outbox (state, available_at);
