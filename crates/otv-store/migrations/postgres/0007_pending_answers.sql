-- A child's proposal waits beside the answer in force (PRODUCT.md §4, §5.3, §10). A key has at
-- most one current answer that is not `pending-guardian` (the one the decision reads) and at
-- most one current `pending-guardian` answer (the proposal a parent or guardian still has to
-- confirm). Before this, a pending answer replaced the answer in force with the same key, so a
-- child's unconfirmed yes could remove a confirmed no (and, under opt-out, "no answer" then
-- permits). Which current answers a new one replaces is `record_answers`' rule (see the
-- `Backend` documentation). Still the index of the decision's hot path, profile().
DROP INDEX answers_current;
CREATE UNIQUE INDEX answers_current
    ON answers (citizen_id, holder_kind, holder_code, data_category, consulter_kind, consulter_code,
                (state = 'pending-guardian'))
    WHERE superseded_at IS NULL;
