-- Subscriptions are read, changed and deleted by their id alone (`Subscription/{id}` on the
-- wire), which the primary key (citizen_id, id) cannot serve. Not unique: a UUIDv7 is unique by
-- construction, and a unique index without citizen_id could not be kept once the table is
-- distributed by patient.
CREATE INDEX subscriptions_by_id ON subscriptions (id);
