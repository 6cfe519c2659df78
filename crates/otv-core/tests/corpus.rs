//! The decision conformance corpus, run directly against the decision engine.

use std::collections::HashSet;

use otv_core::Reason;
use otv_core::corpus::{DECISIONS_TOML, load};

#[test]
fn every_corpus_case_decides_as_expected() {
    let cases = load(DECISIONS_TOML).expect("corpus is readable");
    assert!(
        cases.len() >= 60,
        "the corpus must keep at least 60 cases, has {}",
        cases.len()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| c.check(&c.answers).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_exercises_every_reason_and_both_policies() {
    let cases = load(DECISIONS_TOML).unwrap();
    let reasons: HashSet<Reason> = cases
        .iter()
        .flat_map(|c| c.expect.iter().map(|e| e.reason))
        .collect();
    for r in [
        Reason::PermittedByAnswer,
        Reason::DeniedByAnswer,
        Reason::DenyWinsOverPermit,
        Reason::NoAnswerDefaultDeny,
        Reason::NoAnswerDefaultPermit,
        Reason::UnknownHolderOrganisationType,
        Reason::UnknownConsulterOrganisationType,
        Reason::UnknownDataCategory,
    ] {
        assert!(reasons.contains(&r), "no corpus case expects {r:?}");
    }
    assert!(
        cases.iter().all(|c| !c.because.trim().is_empty()),
        "every case says why"
    );
}

#[test]
fn a_wrong_expectation_is_caught() {
    // The checker itself must be able to fail: flip one expectation and see it reported.
    let mut cases = load(DECISIONS_TOML).unwrap();
    let case = &mut cases[0];
    case.expect[0].effect = match case.expect[0].effect {
        otv_core::Effect::Permit => otv_core::Effect::Deny,
        otv_core::Effect::Deny => otv_core::Effect::Permit,
    };
    let err = case.check(&case.answers).unwrap_err();
    assert!(err.contains(&case.name), "{err}");
}
