-- Hand-offs (overdrachten, PRODUCT.md §8; issue 5 item 1): the one-time links with which a
-- provider's system opens the portal for one patient, in assisted mode. Conventions as in
-- 0001: no BSN in the clear (the patient is the citizen row).

-- Only the SHA-256 of a link's token is stored. A hand-off works once (`used_at`) and until
-- `expires_at`; the portal session it started (`session_sha256`, the session token's SHA-256,
-- the key of `portal_sessions`) carries its context: the provider, the professional, the mode.
CREATE TABLE hand_offs (
    token_sha256   bytea       NOT NULL PRIMARY KEY,
    id             uuid        NOT NULL UNIQUE,
    citizen_id     uuid        NOT NULL REFERENCES citizens (id) ON DELETE CASCADE,
    ura            text        NOT NULL,
    uzi            text        NOT NULL,
    role           text        NOT NULL,
    mandated       text,
    mode           text        NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    session_sha256 bytea       UNIQUE
);
CREATE INDEX hand_offs_citizen ON hand_offs (citizen_id);
CREATE INDEX hand_offs_expiry ON hand_offs (expires_at);
