//! What a notification tells one subscribed dossier holder: the holder's full current view of
//! the patient's consent, per data category and consulting category, grouped into yes and no
//! (the Consents of PRODUCT.md §12 "Notifications", shaped as `notification-bundle.xml`).
//!
//! Choice (documented in README): every notification carries the holder's full view rather
//! than the changed keys alone, so that a receiver that missed or reordered nothing can apply
//! the latest one as the truth, a later notification supersedes an earlier one, and a dead
//! notification does not have to hold up the ones after it.
//!
//! The view is the decision of PRODUCT.md §5 restricted to categories of consulters (the
//! notification names consulting categories, never individual consulters): for holder URA `u`
//! of holder category `H`, data category `D` and consulting category `K`, the answers in force
//! whose holder is `u` or `H`, whose consulter is `K` and whose data category is `D` or an
//! ancestor of it apply; the most specific win (individual holder first, then the exact data
//! category); among those a no beats a yes; with none the default policy decides. Answers for
//! one individual consulter (emergency consent, a citizen's choice per provider) are not in
//! the view: the closed question decides those.
//!
//! Pure: the moment is a parameter.

use chrono::{DateTime, Utc};
use otv_core::{Answer, Catalogue, DataCategory, DefaultPolicy, Effect, OrgType, Party, Ura};
use otv_wire::fhir::{Coded, ConsentGroup};

/// The holder's view at `at`: for each data category (the holder category's own first, then
/// any other one answered for this holder that is not an ancestor of it, in catalogue order) a group of the consulting
/// categories with yes and a group of those with no (an empty group is left out). Empty when
/// the organisation type is not in the catalogue.
pub fn holder_view(
    catalogue: &Catalogue,
    policy: DefaultPolicy,
    answers: &[Answer],
    ura: &Ura,
    org_type: &OrgType,
    at: DateTime<Utc>,
) -> Vec<ConsentGroup> {
    let Some(holder) = catalogue.holder_category_of(org_type) else {
        return Vec::new();
    };
    let holder_parties = [
        Party::Provider(ura.clone()),
        Party::Category(holder.code.clone()),
    ];
    let mine: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.in_force_at(at) && holder_parties.contains(&a.key.holder))
        .filter(|a| matches!(a.key.consulter, Party::Category(_)))
        .collect();
    let mut data_categories: Vec<DataCategory> = vec![holder.data_category.clone()];
    for entry in catalogue.data_categories() {
        // An answer for an ancestor of the holder's own category is in that category's view.
        if !catalogue.covers(&entry.code, &holder.data_category)
            && mine.iter().any(|a| a.key.data_category == entry.code)
        {
            data_categories.push(entry.code.clone());
        }
    }
    let mut groups = Vec::new();
    for data in &data_categories {
        let display = catalogue
            .data_categories()
            .iter()
            .find(|d| &d.code == data)
            .map_or_else(|| data.to_string(), |d| d.name.clone());
        let coded_data = Coded {
            code: data.to_string(),
            display,
        };
        let (mut yes, mut no) = (Vec::new(), Vec::new());
        for k in catalogue.consulting_categories() {
            let consulter = Party::Category(k.code.clone());
            let applicable: Vec<&&Answer> = mine
                .iter()
                .filter(|a| {
                    a.key.consulter == consulter && catalogue.covers(&a.key.data_category, data)
                })
                .collect();
            let rank = |a: &Answer| {
                (u8::from(a.key.holder.is_individual()) << 1)
                    | u8::from(&a.key.data_category == data)
            };
            let best = applicable.iter().map(|a| rank(a)).max();
            let effect = match best {
                None => match policy {
                    DefaultPolicy::OptIn => Effect::Deny,
                    DefaultPolicy::OptOut => Effect::Permit,
                },
                Some(best) => {
                    if applicable
                        .iter()
                        .filter(|a| rank(a) == best)
                        .any(|a| a.effect == Effect::Deny)
                    {
                        Effect::Deny
                    } else {
                        Effect::Permit
                    }
                }
            };
            let coded = Coded {
                code: k.code.to_string(),
                display: k.name.clone(),
            };
            match effect {
                Effect::Permit => yes.push(coded),
                Effect::Deny => no.push(coded),
            }
        }
        for (permit, consulting) in [(true, yes), (false, no)] {
            if !consulting.is_empty() {
                groups.push(ConsentGroup {
                    data_category: coded_data.clone(),
                    permit,
                    consulting,
                });
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use otv_core::{Actor, AnswerKey, AnswerState, CategoryCode, Channel, Provenance};

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn answer(holder: Party, data: &str, consulter: &str, effect: Effect) -> Answer {
        Answer {
            key: AnswerKey {
                holder,
                data_category: DataCategory::parse(data).unwrap(),
                consulter: Party::Category(CategoryCode::parse(consulter).unwrap()),
            },
            effect,
            valid_from: at("2026-01-01T00:00:00Z"),
            valid_until: None,
            state: AnswerState::Active,
            provenance: Provenance {
                recorded_at: at("2026-01-01T00:00:00Z"),
                channel: Channel::Portal,
                actor: Actor::Citizen,
                catalogue_version: "x".into(),
            },
        }
    }

    fn codes(g: &ConsentGroup) -> Vec<&str> {
        g.consulting.iter().map(|c| c.code.as_str()).collect()
    }

    #[test]
    fn a_pharmacy_sees_its_yes_and_no_per_consulting_category_and_nothing_else_is_yes() {
        let catalogue = Catalogue::default_catalogue();
        let pharmacy = OrgType::parse("J8").unwrap();
        let holder = catalogue.holder_category_of(&pharmacy).unwrap();
        let ura = Ura::parse("00000010").unwrap();
        let answers = vec![
            answer(
                Party::Category(holder.code.clone()),
                "GGC002",
                "RPZAC001",
                Effect::Permit,
            ),
            // Another holder category's answer is not the pharmacy's business.
            answer(
                Party::Category(CategoryCode::parse("RPZAC005").unwrap()),
                "GGC002",
                "RPZAC003",
                Effect::Permit,
            ),
        ];
        let view = holder_view(
            &catalogue,
            DefaultPolicy::OptIn,
            &answers,
            &ura,
            &pharmacy,
            at("2026-02-01T00:00:00Z"),
        );
        assert_eq!(view.len(), 2);
        assert!(view[0].permit);
        assert_eq!(view[0].data_category.code, holder.data_category.to_string());
        assert_eq!(
            codes(&view[0]),
            ["RPZAC001"],
            "GGC002 covers what a pharmacy makes available"
        );
        assert!(!view[1].permit);
        assert_eq!(
            view[1].consulting.len(),
            catalogue.consulting_categories().len() - 1
        );
    }

    #[test]
    fn an_individual_answer_for_the_holder_beats_its_category_and_no_beats_yes() {
        let catalogue = Catalogue::default_catalogue();
        let gp = OrgType::parse("Z3").unwrap();
        let holder = catalogue.holder_category_of(&gp).unwrap();
        let ura = Ura::parse("00000659").unwrap();
        let other = Ura::parse("00000001").unwrap();
        let answers = vec![
            answer(
                Party::Category(holder.code.clone()),
                "GGC002",
                "RPZAC005",
                Effect::Permit,
            ),
            answer(
                Party::Provider(ura.clone()),
                "GGC002",
                "RPZAC005",
                Effect::Deny,
            ),
            answer(Party::Provider(other), "GGC002", "RPZAC001", Effect::Permit),
        ];
        let view = holder_view(
            &catalogue,
            DefaultPolicy::OptIn,
            &answers,
            &ura,
            &gp,
            at("2026-02-01T00:00:00Z"),
        );
        assert_eq!(view.len(), 1, "everything is no for this GP");
        assert!(!view[0].permit);
        let opt_out = holder_view(
            &catalogue,
            DefaultPolicy::OptOut,
            &[],
            &ura,
            &gp,
            at("2026-02-01T00:00:00Z"),
        );
        assert_eq!(opt_out.len(), 1);
        assert!(opt_out[0].permit, "no answer is yes under opt-out");
    }
}
