-- Bulk registration by NDJSON (PRODUCT.md §7): the progress of each import, per connector and
-- the import id the client chose. A chunk of registrations and the row's move to the chunk's
-- last line are written in one transaction, so `committed_lines` is exactly what is stored and
-- a re-sent import resumes after it.

CREATE TABLE subscription_imports (
    connector_id       text        NOT NULL,
    import_id          text        NOT NULL,
    -- Lines 1..committed_lines of the input are done (registered, already there, or refused).
    committed_lines    bigint      NOT NULL,
    -- SHA-256 of those lines' bytes, so that a re-sent import whose beginning differs is refused
    -- instead of resumed at the wrong place.
    prefix_sha256      bytea       NOT NULL,
    created            bigint      NOT NULL,
    already_registered bigint      NOT NULL,
    refused            bigint      NOT NULL,
    -- JSON array of the first refused lines (line number and FHIR path; never a BSN).
    refusals           text        NOT NULL,
    -- The last request read its input to the end.
    complete           boolean     NOT NULL,
    started_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (connector_id, import_id)
);
