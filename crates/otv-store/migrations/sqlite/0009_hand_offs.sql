-- Hand-offs (overdrachten, PRODUCT.md §8; issue 5 item 1): the one-time links with which a
-- provider's system opens the portal for one patient, in assisted mode. Conventions as in
-- 0001: no BSN in the clear (the patient is the citizen row), times in microseconds.

-- Only the SHA-256 of a link's token is stored. A hand-off works once (`used_at`) and until
-- `expires_at`; the portal session it started (`session_sha256`, the session token's SHA-256,
-- the key of `portal_sessions`) carries its context: the provider, the professional, the mode.
CREATE TABLE hand_offs (
    token_sha256   BLOB    NOT NULL PRIMARY KEY,
    id             BLOB    NOT NULL UNIQUE,
    citizen_id     BLOB    NOT NULL REFERENCES citizens (id) ON DELETE CASCADE,
    ura            TEXT    NOT NULL,
    uzi            TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    mandated       TEXT,
    mode           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    session_sha256 BLOB    UNIQUE
) WITHOUT ROWID;
CREATE INDEX hand_offs_citizen ON hand_offs (citizen_id);
CREATE INDEX hand_offs_expiry ON hand_offs (expires_at);
