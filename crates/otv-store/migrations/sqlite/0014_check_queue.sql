-- Consent checks wait in a queue file beside the database before they join the chain
-- (src/sqlite/check_queue.rs). The head remembers which queue file (its random id) the chain has
-- taken records from and up to which of its row ids, in the same transaction as the records, so
-- that each queued record joins the chain exactly once, across restarts and crashes.
ALTER TABLE audit_head ADD COLUMN queue_id TEXT;
ALTER TABLE audit_head ADD COLUMN queue_moved INTEGER NOT NULL DEFAULT 0;
