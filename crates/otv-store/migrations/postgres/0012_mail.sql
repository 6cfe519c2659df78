-- Citizen e-mail (PRODUCT.md §11): the bookkeeping of consent-check notices. Conventions as in
-- 0001.

-- How far the scan for consent checks has read the audit log (one row, made by the first
-- scan at the head of the chain: checks before mail existed are not announced), and the Dutch
-- calendar day of the last daily digest. Scans lock this row, so two never overlap.
CREATE TABLE mail_check_cursor (
    id          integer NOT NULL PRIMARY KEY CHECK (id = 1),
    seq         bigint  NOT NULL,
    digest_day  date
);

-- Checks waiting for a citizen's daily digest: one row per citizen, counts only. No foreign
-- key: deleting a citizen leaves a row that the next digest drops (it joins citizens).
CREATE TABLE mail_check_digests (
    citizen_id  uuid        NOT NULL PRIMARY KEY,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    checks      bigint      NOT NULL,
    emergency   bigint      NOT NULL
);
