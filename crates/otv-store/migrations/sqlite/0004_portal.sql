-- The citizen portal (issue 4): sessions and terms-of-use acceptances. Conventions as in
-- 0001 (no BSN in the clear).

-- One row per logged-in browser. The cookie holds a random token; only its SHA-256 is stored,
-- so a copy of this table logs nobody in. `actor_*` is who logged in, `subject_*` whose profile
-- they manage (the same person, or the one a representative acts for).
CREATE TABLE portal_sessions (
    token_sha256       BLOB    NOT NULL PRIMARY KEY,
    actor_pseudonym    BLOB    NOT NULL,
    actor_encrypted    BLOB    NOT NULL,
    subject_pseudonym  BLOB    NOT NULL,
    subject_encrypted  BLOB    NOT NULL,
    actor_name         TEXT,
    subject_name       TEXT,
    subject_birth_date TEXT,
    csrf_token         TEXT    NOT NULL,
    -- The terms-of-use version the actor has accepted (NULL: not the current one yet).
    terms_version      TEXT,
    login_at           INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX portal_sessions_idle ON portal_sessions (last_seen_at);
CREATE INDEX portal_sessions_subject ON portal_sessions (subject_pseudonym);

-- Which version of the terms of use a person accepted, and when (the first time).
CREATE TABLE terms_acceptances (
    bsn_pseudonym BLOB    NOT NULL,
    version       TEXT    NOT NULL,
    accepted_at   INTEGER NOT NULL,
    PRIMARY KEY (bsn_pseudonym, version)
) WITHOUT ROWID;

