-- Minors (PRODUCT.md §4, §10; issue 4 item 4): the pairing codes (koppelcodes) a child under 16
-- gives a parent or guardian, the links a used code makes, and the failed attempts that slow
-- down guessing. Conventions as in 0001: no BSN in the clear, times in microseconds.

-- A code is stored only as a keyed tag (HMAC-SHA256 under the pseudonym key, see
-- `Keys::secret_tag`): a copy of this table cannot be turned back into codes by trying them
-- all. A code works once (`used_at`) and until `expires_at`; a child has at most one code that
-- is not used (making a new one removes the old one).
CREATE TABLE guardian_pairing_codes (
    code_tag           BLOB    NOT NULL PRIMARY KEY,
    child_id           BLOB    NOT NULL REFERENCES citizens (id) ON DELETE CASCADE,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER,
    -- The pseudonym of the parent or guardian who used it.
    used_by            BLOB
) WITHOUT ROWID;
CREATE INDEX guardian_pairing_codes_child ON guardian_pairing_codes (child_id);

-- A parent or guardian (by pseudonym) linked to a child by a used code. The link's id is what
-- the portal's URLs carry (never a BSN).
CREATE TABLE guardian_links (
    id                 BLOB    NOT NULL PRIMARY KEY,
    guardian_pseudonym BLOB    NOT NULL,
    child_id           BLOB    NOT NULL REFERENCES citizens (id) ON DELETE CASCADE,
    linked_at          INTEGER NOT NULL,
    UNIQUE (guardian_pseudonym, child_id)
) WITHOUT ROWID;
CREATE INDEX guardian_links_child ON guardian_links (child_id);

-- Wrong codes per person (pseudonym of who typed them), for the pause after too many.
CREATE TABLE guardian_pairing_failures (
    guardian_pseudonym BLOB    NOT NULL,
    at                 INTEGER NOT NULL
);
CREATE INDEX guardian_pairing_failures_by ON guardian_pairing_failures (guardian_pseudonym, at);
