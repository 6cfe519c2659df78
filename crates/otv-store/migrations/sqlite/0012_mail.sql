-- Citizen e-mail (PRODUCT.md §11): the bookkeeping of consent-check notices. Conventions as in
-- 0001 (times are microseconds since the epoch, UTC).

-- How far the scan for consent checks has read the audit log (one row, made by the first
-- scan at the head of the chain: checks before mail existed are not announced), and the Dutch
-- calendar day of the last daily digest.
CREATE TABLE mail_check_cursor (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    digest_day  TEXT
);

-- Checks waiting for a citizen's daily digest: one row per citizen, counts only. No foreign
-- key: deleting a citizen leaves a row that the next digest drops (it joins citizens).
CREATE TABLE mail_check_digests (
    citizen_id  BLOB    NOT NULL PRIMARY KEY,
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    checks      INTEGER NOT NULL,
    emergency   INTEGER NOT NULL
) WITHOUT ROWID;
