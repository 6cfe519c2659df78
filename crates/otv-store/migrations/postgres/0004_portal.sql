-- The citizen portal (issue 4): sessions and terms-of-use acceptances. Conventions as in
-- 0001 (no BSN in the clear).

-- One row per logged-in browser. The cookie holds a random token; only its SHA-256 is stored,
-- so a copy of this table logs nobody in. `actor_*` is who logged in, `subject_*` whose profile
-- they manage (the same person, or the one a representative acts for).
CREATE TABLE portal_sessions (
    token_sha256       bytea       NOT NULL PRIMARY KEY,
    actor_pseudonym    bytea       NOT NULL,
    actor_encrypted    bytea       NOT NULL,
    subject_pseudonym  bytea       NOT NULL,
    subject_encrypted  bytea       NOT NULL,
    actor_name         text,
    subject_name       text,
    subject_birth_date date,
    csrf_token         text        NOT NULL,
    -- The terms-of-use version the actor has accepted (NULL: not the current one yet).
    terms_version      text,
    login_at           timestamptz NOT NULL,
    last_seen_at       timestamptz NOT NULL
);
CREATE INDEX portal_sessions_idle ON portal_sessions (last_seen_at);
CREATE INDEX portal_sessions_subject ON portal_sessions (subject_pseudonym);

-- Which version of the terms of use a person accepted, and when (the first time).
CREATE TABLE terms_acceptances (
    bsn_pseudonym bytea       NOT NULL,
    version       text        NOT NULL,
    accepted_at   timestamptz NOT NULL,
    PRIMARY KEY (bsn_pseudonym, version)
);

