-- Enrolment tokens (inschrijftokens, PRODUCT.md §8; issue 5 item 2) used up: a token's `jti`
-- works once. A row is kept until its token has expired (and a day longer, see
-- `crate::enrolment`), after which the token is refused for its expiry anyway.
CREATE TABLE enrolment_tokens_used (
    jti        text        NOT NULL PRIMARY KEY,
    ura        text        NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz NOT NULL
);
CREATE INDEX enrolment_tokens_used_expiry ON enrolment_tokens_used (expires_at);
