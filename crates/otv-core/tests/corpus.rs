//! The decision conformance corpus, run directly against the decision engine.

use std::collections::HashSet;

use otv_core::corpus::{Case, DECISIONS_TOML, load};
use otv_core::{Answer, Question, Reason, Sides};

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

/// The closed question reads only the answers that name the question's sides; the corpus must
/// decide the same with just those.
#[test]
fn every_corpus_case_decides_the_same_on_only_the_answers_naming_its_sides() {
    let cases = load(DECISIONS_TOML).unwrap();
    let named = |c: &Case| -> Vec<Answer> {
        let question = Question {
            holder: &c.holder,
            consulter: &c.consulter,
            at: c.at,
        };
        match Sides::of(&c.catalogue, &question) {
            Some(sides) => c
                .answers
                .iter()
                .filter(|a| sides.named_by(a))
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    };
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| c.check(&named(c)).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        cases.iter().any(|c| named(c).len() < c.answers.len()),
        "some case has answers that name other parties"
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
