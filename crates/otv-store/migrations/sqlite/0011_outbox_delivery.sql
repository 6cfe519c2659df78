-- The outbox delivery engine (PRODUCT.md §11): workers on any number of nodes claim rows with a
-- lease, deliver at least once, in order per ordering key, with back-off, and park a row as dead
-- when its back-off is used up. Conventions as in 0001 (times are microseconds since the epoch).
--
-- state: 'pending' (to do; claimable when available_at has passed, no live lease holds it and
-- no earlier pending row has the same ordering key), 'delivered', 'dead' (operators retry it).
ALTER TABLE outbox ADD COLUMN ordering_key TEXT;      -- the subscription id of a notification
ALTER TABLE outbox ADD COLUMN seq INTEGER;            -- insertion order (set by the trigger)
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;        -- the worker holding the lease
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;  -- the lease ends (a crashed node's rows come back)
ALTER TABLE outbox ADD COLUMN first_attempt_at INTEGER;
ALTER TABLE outbox ADD COLUMN delivered_at INTEGER;
ALTER TABLE outbox ADD COLUMN dead_at INTEGER;

UPDATE outbox SET seq = rowid;

-- Every row gets its rowid as its number when it is inserted, whoever inserts it: a new rowid
-- is larger than every rowid in the table, so it orders the rows by insertion at O(1) per row
-- (a max(seq) here made bulk writes quadratic).
CREATE TRIGGER outbox_seq AFTER INSERT ON outbox WHEN NEW.seq IS NULL
BEGIN
    UPDATE outbox SET seq = NEW.rowid WHERE rowid = NEW.rowid;
END;

DROP INDEX outbox_due;
-- The claim: pending rows by due time.
CREATE INDEX outbox_due ON outbox (available_at, seq) WHERE state = 'pending';
-- The order per key: is there an earlier pending row with this key?
CREATE INDEX outbox_order ON outbox (ordering_key, seq) WHERE state = 'pending' AND ordering_key IS NOT NULL;
-- Operators: the dead rows.
CREATE INDEX outbox_dead ON outbox (dead_at) WHERE state = 'dead';
