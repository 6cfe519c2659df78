//! otv's domain core: identifiers, the consent catalogue, the consent profile and the decision.
//!
//! Architecture invariant: this crate does no IO, has no async and knows nothing of storage or
//! wire formats. Everything here is a pure function of its inputs, including the moment in time,
//! which callers pass in.
#![deny(missing_docs)]

pub mod age;
pub mod catalogue;
pub mod corpus;
pub mod decision;
pub mod ids;
pub mod profile;

pub use catalogue::{Catalogue, CatalogueError, ConsentOption};
pub use decision::{
    DefaultPolicy, Organisation, Outcome, Question, Reason, Sides, decide, decide_one,
};
pub use ids::{
    Bsn, CategoryCode, DataCategory, IdError, OrgType, Purpose, RoleCode, Ura, UziNumber,
};
pub use profile::{Actor, Answer, AnswerKey, AnswerState, Channel, Effect, Party, Provenance};
