-- Enrolment tokens (inschrijftokens, PRODUCT.md §8; issue 5 item 2) used up: a token's `jti`
-- works once. A row is kept until its token has expired (and a day longer, see
-- `crate::enrolment`), after which the token is refused for its expiry anyway. Times in
-- microseconds since the epoch, as in 0001.
CREATE TABLE enrolment_tokens_used (
    jti        TEXT    NOT NULL PRIMARY KEY,
    ura        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX enrolment_tokens_used_expiry ON enrolment_tokens_used (expires_at);
