//! Enrolment tokens used up (inschrijftokens, PRODUCT.md §8): a token's `jti` works once.
//!
//! Using a token is one `INSERT … ON CONFLICT DO NOTHING` on the `jti` (primary key): of two
//! requests that present the same token at the same moment exactly one inserts the row and
//! gets `true`. Rows of tokens that expired more than [`KEEP_EXPIRED_HOURS`] ago are removed
//! when a token is used; a token past its `exp` is refused for its expiry before its `jti` is
//! looked at, so the row is no longer needed (the margin covers clocks that disagree a little
//! between nodes).

/// Used tokens that expired longer ago than this are removed when another is used.
pub const KEEP_EXPIRED_HOURS: i64 = 24;
