-- The citizen's own data in the portal (PRODUCT.md §10): settings, e-mail verification, the
-- change each answer belongs to (for receipts and the history), and the audit log by patient
-- (for the history of consent checks).

-- The audit record (its seq) of the change that recorded the answer: the answers of one change
-- are what its receipt lists. NULL for answers stored before this migration.
ALTER TABLE answers ADD COLUMN change_seq bigint;

-- One row per citizen who changed a setting; a citizen without a row has the defaults.
CREATE TABLE citizen_settings (
    citizen_id             uuid        NOT NULL PRIMARY KEY REFERENCES citizens (id),
    -- E-mail when someone else changes the answers (provider, migration, representative,
    -- emergency).
    notify_changes         boolean     NOT NULL DEFAULT true,
    -- E-mail about checks of the consent: off, immediately or daily (digest).
    notify_checks          text        NOT NULL DEFAULT 'off' CHECK (notify_checks IN ('off', 'immediately', 'daily')),
    -- Refuse changes made with a provider (hand-off: Samen-naar-MijnMitz, dossierhoudersknop).
    lock_provider_changes  boolean     NOT NULL DEFAULT false,
    -- Refuse emergency consents (raadplegersknop).
    refuse_emergency       boolean     NOT NULL DEFAULT false,
    -- The address in citizens.email is verified when this is set.
    email_verified_at      timestamptz,
    -- SHA-256 of the verification token sent by link (the token itself only travels in the
    -- link), and until when it may be used.
    email_token_sha256     bytea,
    email_token_expires_at timestamptz,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX citizen_settings_email_token ON citizen_settings (email_token_sha256)
    WHERE email_token_sha256 IS NOT NULL;

-- The history of consent checks reads a patient's records by time.
CREATE INDEX audit_log_patient ON audit_log (patient, at) WHERE patient IS NOT NULL;
