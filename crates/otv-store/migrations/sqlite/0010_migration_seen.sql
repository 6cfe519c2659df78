-- Migration of consents (PRODUCT.md §9): the citizen is told about answers a provider handed
-- over until they say they have seen them. The moment they last did; migrated answers recorded
-- after it are news (the portal's overview shows a notice for them).
ALTER TABLE citizen_settings ADD COLUMN migration_seen_at INTEGER;
