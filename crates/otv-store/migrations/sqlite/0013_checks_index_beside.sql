-- The consent checks by patient move out of the database into the index file beside it
-- (src/sqlite/checks.rs): an index on a random pseudonym in the audit log made every closed
-- question's commit change a random page of it. The file is built from the audit log when the
-- server starts.
DROP INDEX IF EXISTS audit_log_patient;
