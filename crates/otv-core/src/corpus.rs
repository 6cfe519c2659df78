//! Reader for the decision conformance corpus (`corpus/decisions.toml`).
//!
//! The corpus is the decision rules of PRODUCT.md §5 written as cases a reader can check by eye:
//! a profile, a question, and the expected outcome per data category with its reason. The core
//! runs it directly; the storage tests run the same cases after a round trip through every
//! backend. The case syntax is documented at the top of the corpus file.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde::de::IntoDeserializer;

use crate::catalogue::{Catalogue, DEFAULT_CATALOGUE_TOML};
use crate::decision::{DefaultPolicy, Organisation, Outcome, Question, Reason, decide};
use crate::ids::{CategoryCode, DataCategory, OrgType, Ura};
use crate::profile::{Actor, Answer, AnswerKey, AnswerState, Channel, Effect, Party, Provenance};

/// The corpus shipped with otv.
pub const DECISIONS_TOML: &str = include_str!("../corpus/decisions.toml");

/// One decision case.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// Why the expectation holds, traceable to PRODUCT.md.
    pub because: String,
    /// The catalogue the case runs against.
    pub catalogue: Catalogue,
    /// The default policy.
    pub policy: DefaultPolicy,
    /// The dossier holder.
    pub holder: Organisation,
    /// The consulting provider.
    pub consulter: Organisation,
    /// The moment of the question.
    pub at: DateTime<Utc>,
    /// Data categories asked, in order.
    pub ask: Vec<DataCategory>,
    /// The patient's current answers (one per key).
    pub answers: Vec<Answer>,
    /// Expected outcome per data category asked.
    pub expect: Vec<Expected>,
}

/// The expected outcome for one data category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Permit or deny.
    pub effect: Effect,
    /// The reason.
    pub reason: Reason,
    /// Index into the case's answers of the deciding answer.
    pub deciding: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCorpus {
    defaults: RawDefaults,
    #[serde(default)]
    catalogue: BTreeMap<String, RawCatalogueVariant>,
    case: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    at: DateTime<Utc>,
    recorded: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogueVariant {
    append: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    because: String,
    #[serde(default)]
    policy: DefaultPolicy,
    catalogue: Option<String>,
    at: Option<DateTime<Utc>>,
    holder: String,
    consulter: String,
    ask: Vec<String>,
    #[serde(default)]
    answers: Vec<String>,
    expect: Vec<String>,
}

fn organisation(s: &str) -> Result<Organisation, String> {
    let (t, u) = s
        .split_once(' ')
        .ok_or("an organisation is `<type> <URA>`")?;
    Ok(Organisation {
        organisation_type: OrgType::parse(t).map_err(|e| e.to_string())?,
        ura: Ura::parse(u).map_err(|e| e.to_string())?,
    })
}

fn party(s: &str) -> Result<Party, String> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        Ura::parse(s)
            .map(Party::Provider)
            .map_err(|e| e.to_string())
    } else {
        CategoryCode::parse(s)
            .map(Party::Category)
            .map_err(|e| e.to_string())
    }
}

fn time(s: &str, at: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    // `at+72h`, `at-1s`: relative to the question's moment, so cases read as windows.
    if let Some(rel) = s.strip_prefix("at") {
        if rel.is_empty() {
            return Ok(at);
        }
        let (sign, rest) = rel.split_at(1);
        let (num, unit) = rest.split_at(rest.len() - 1);
        let n: i64 = num.parse().map_err(|_| format!("bad offset `{s}`"))?;
        let d = match unit {
            "s" => Duration::seconds(n),
            "m" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            _ => return Err(format!("bad unit in `{s}`")),
        };
        return Ok(if sign == "-" { at - d } else { at + d });
    }
    s.parse().map_err(|_| format!("bad time `{s}`"))
}

/// `<permit|deny> <holder> <data category> <consulter> [from=T] [until=T] [state=S] [recorded=T]`
fn answer(
    s: &str,
    at: DateTime<Utc>,
    recorded: DateTime<Utc>,
    version: &str,
) -> Result<Answer, String> {
    let mut words = s.split_whitespace();
    let mut next = |what: &str| words.next().ok_or(format!("answer `{s}` lacks its {what}"));
    let effect = match next("effect")? {
        "permit" => Effect::Permit,
        "deny" => Effect::Deny,
        other => return Err(format!("effect `{other}` is not permit or deny")),
    };
    let holder = party(next("holder")?)?;
    let data_category = DataCategory::parse(next("data category")?).map_err(|e| e.to_string())?;
    let consulter = party(next("consulter")?)?;
    let mut a = Answer {
        key: AnswerKey {
            holder,
            data_category,
            consulter,
        },
        effect,
        valid_from: recorded,
        valid_until: None,
        state: AnswerState::Active,
        provenance: Provenance {
            recorded_at: recorded,
            channel: Channel::Portal,
            actor: Actor::Citizen,
            catalogue_version: version.to_owned(),
        },
    };
    for w in words {
        let (k, v) = w.split_once('=').ok_or(format!("`{w}` is not key=value"))?;
        match k {
            "from" => a.valid_from = time(v, at)?,
            "until" => a.valid_until = Some(time(v, at)?),
            "state" => a.state = AnswerState::parse(v).ok_or(format!("unknown state `{v}`"))?,
            "recorded" => a.provenance.recorded_at = time(v, at)?,
            "channel" => {
                a.provenance.channel = Channel::parse(v).ok_or(format!("unknown channel `{v}`"))?
            }
            _ => return Err(format!("unknown answer attribute `{k}`")),
        }
    }
    Ok(a)
}

/// `<permit|deny> <reason-code> <answer index or ->`
fn expected(s: &str) -> Result<Expected, String> {
    let w: Vec<&str> = s.split_whitespace().collect();
    let [effect, reason, deciding] = w[..] else {
        return Err(format!(
            "expectation `{s}` is not `<effect> <reason> <index|->`"
        ));
    };
    Ok(Expected {
        effect: match effect {
            "permit" => Effect::Permit,
            "deny" => Effect::Deny,
            _ => return Err(format!("effect `{effect}` is not permit or deny")),
        },
        reason: Reason::deserialize(
            IntoDeserializer::<serde::de::value::Error>::into_deserializer(reason),
        )
        .map_err(|_| format!("unknown reason `{reason}`"))?,
        deciding: match deciding {
            "-" => None,
            n => Some(n.parse().map_err(|_| format!("bad answer index `{n}`"))?),
        },
    })
}

/// Reads a corpus file.
pub fn load(text: &str) -> Result<Vec<Case>, String> {
    let raw: RawCorpus = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut catalogues = BTreeMap::new();
    for (name, v) in &raw.catalogue {
        let text = format!("{DEFAULT_CATALOGUE_TOML}\n{}", v.append);
        let c =
            Catalogue::from_toml(&text).map_err(|e| format!("catalogue variant `{name}`: {e}"))?;
        catalogues.insert(name.clone(), c);
    }
    let default_catalogue = Catalogue::default_catalogue();
    raw.case
        .into_iter()
        .map(|c| {
            let ctx = |e: String| format!("case `{}`: {e}", c.name);
            let catalogue = match &c.catalogue {
                None => default_catalogue.clone(),
                Some(n) => catalogues
                    .get(n)
                    .cloned()
                    .ok_or_else(|| ctx(format!("no catalogue variant `{n}`")))?,
            };
            let at = c.at.unwrap_or(raw.defaults.at);
            let answers = c
                .answers
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    answer(
                        a,
                        at,
                        raw.defaults.recorded + Duration::seconds(i as i64),
                        catalogue.version(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(ctx)?;
            let mut keys = HashSet::new();
            // A key has one current answer in force and at most one proposal beside it.
            if let Some(dup) = answers
                .iter()
                .find(|a| !keys.insert((&a.key, a.state == AnswerState::PendingGuardian)))
            {
                return Err(ctx(format!(
                    "two answers for one key {:?}; a profile has one current answer per key \
                     (and at most one pending-guardian answer beside it)",
                    dup.key
                )));
            }
            let expect = c
                .expect
                .iter()
                .map(|e| expected(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ctx)?;
            if expect.len() != c.ask.len() {
                return Err(ctx("one expectation per data category asked".into()));
            }
            if let Some(bad) = expect
                .iter()
                .filter_map(|e| e.deciding)
                .find(|&i| i >= answers.len())
            {
                return Err(ctx(format!("answer index {bad} out of range")));
            }
            Ok(Case {
                policy: c.policy,
                at,
                holder: organisation(&c.holder).map_err(ctx)?,
                consulter: organisation(&c.consulter).map_err(ctx)?,
                ask: c
                    .ask
                    .iter()
                    .map(|a| DataCategory::parse(a).map_err(|e| ctx(e.to_string())))
                    .collect::<Result<_, _>>()?,
                answers,
                expect,
                catalogue,
                name: c.name,
                because: c.because,
            })
        })
        .collect()
}

impl Case {
    /// Decides the case against `answers` (the case's own, or the same after a round trip
    /// through storage) and compares with the expectation. The deciding answer is compared by
    /// key, so the order of `answers` does not matter.
    pub fn check(&self, answers: &[Answer]) -> Result<(), String> {
        let question = Question {
            holder: &self.holder,
            consulter: &self.consulter,
            at: self.at,
        };
        let outcomes = decide(&self.catalogue, self.policy, answers, &question, &self.ask);
        for (o, e) in outcomes.iter().zip(&self.expect) {
            self.compare(o, e)?;
        }
        Ok(())
    }

    fn compare(&self, o: &Outcome<'_>, e: &Expected) -> Result<(), String> {
        let got_key = o.deciding.map(|a| &a.key);
        let want_key = e.deciding.map(|i| &self.answers[i].key);
        if o.effect != e.effect || o.reason != e.reason || got_key != want_key {
            return Err(format!(
                "case `{}` ({}), data category {}: expected {:?} {} by {:?}, got {:?} {} by {:?}",
                self.name,
                self.because,
                o.data_category,
                e.effect,
                e.reason.code(),
                want_key,
                o.effect,
                o.reason.code(),
                got_key
            ));
        }
        Ok(())
    }
}
