-- Bulk registration by NDJSON (PRODUCT.md §7): the progress of each import, per connector and
-- the import id the client chose. A chunk of registrations and the row's move to the chunk's
-- last line are written in one transaction, so `committed_lines` is exactly what is stored and
-- a re-sent import resumes after it.

CREATE TABLE subscription_imports (
    connector_id       TEXT    NOT NULL,
    import_id          TEXT    NOT NULL,
    -- Lines 1..committed_lines of the input are done (registered, already there, or refused).
    committed_lines    INTEGER NOT NULL,
    -- SHA-256 of those lines' bytes, so that a re-sent import whose beginning differs is refused
    -- instead of resumed at the wrong place.
    prefix_sha256      BLOB    NOT NULL,
    created            INTEGER NOT NULL,
    already_registered INTEGER NOT NULL,
    refused            INTEGER NOT NULL,
    -- JSON array of the first refused lines (line number and FHIR path; never a BSN).
    refusals           TEXT    NOT NULL,
    -- The last request read its input to the end.
    complete           INTEGER NOT NULL,
    started_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (connector_id, import_id)
) WITHOUT ROWID;
