//! The words of every citizen e-mail: one function per kind, each giving a subject and a plain
//! text body. Pure: no IO, no clock.
//!
//! Form: one `text/plain; charset=utf-8` part, Dutch (language level B1) first, then the same
//! in English below a divider; the message says `Content-Language: nl, en`. Not
//! `multipart/alternative`: its parts are alternative *formats* of one text, and mail programs
//! show only the last one, so an English alternative would hide the Dutch. No HTML: plain text
//! shows the same everywhere, carries no tracking, and screen readers read it as it is.
//!
//! What a mail never says (PRODUCT.md §11, "no BSN and no medical detail"): the BSN, the
//! citizen's name, which data (categories such as medication or lab results), what was
//! decided, and which provider. A provider's name alone can reveal care (a mental health
//! clinic, a fertility clinic) to anyone who reads along on the way, so a mail says only
//! *what kind of* thing happened and when ("een zorgverlener heeft uw keuzes veranderd"), and
//! links to the portal, where the citizen logs in to see who, what and why. Times are Dutch
//! local time. Links point at the configured public portal address.

use chrono::{DateTime, Utc};
use otv_store::{CheckNote, DigestMail};

use crate::portal::history::when;

/// A composed mail: subject and plain text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The subject, Dutch then English.
    pub subject: String,
    /// The body: Dutch, a divider, English.
    pub text: String,
}

/// Who changed the citizen's answers (someone other than the citizen themself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy {
    /// A care provider, with the patient (Samen-naar-MijnMitz) or for its own records
    /// (dossierhoudersknop).
    Provider,
    /// A provider moved consents it kept itself into otv (migration).
    Migration,
    /// A representative (gemachtigde).
    Representative,
    /// A parent or guardian confirmed the answers of a child.
    Guardian,
    /// A care provider recorded an emergency consent (raadplegersknop), ending at the moment.
    Emergency {
        /// When the emergency consent stops.
        until: DateTime<Utc>,
    },
}

/// The divider between the Dutch and the English text.
const DIVIDER: &str = "------------------------------------------------------------\nEnglish";

/// Text lines are wrapped at this width (links stay whole).
const WIDTH: usize = 72;

fn en_when(t: DateTime<Utc>) -> String {
    format!("{} (Dutch time)", when(t))
}

fn nl_when(t: DateTime<Utc>) -> String {
    // `when` is `31-01-2026 14:05`; B1 reads "31-01-2026 om 14:05".
    when(t).replacen(' ', " om ", 1)
}

/// Wraps every line at [`WIDTH`] (a `\n` written in a text is a line break that stays, e.g.
/// after "Met vriendelijke groet,"); words are never split, so links stay whole.
fn wrap(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for source in text.split('\n') {
        let mut line = String::new();
        for word in source.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > WIDTH {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push(line);
    }
    out.join("\n")
}

fn mail(subject_nl: &str, subject_en: &str, nl: &str, en: &str) -> Composed {
    Composed {
        subject: format!("{subject_nl} | {subject_en}"),
        text: format!("{}\n\n{DIVIDER}\n\n{}\n", wrap(nl), wrap(en)),
    }
}

fn footer_nl(portal: &str) -> String {
    format!(
        "U krijgt deze e-mail omdat u dat hebt gekozen in otv. Wilt u deze e-mails niet meer \
         krijgen? Verander dat bij Meldingen: {portal}/meldingen\n\n\
         In een e-mail van otv staat nooit uw BSN en nooit medische informatie. Wij vragen u \
         nooit om uw DigiD-gegevens in een e-mail."
    )
}

fn footer_en(portal: &str) -> String {
    format!(
        "You receive this e-mail because you chose to in otv. Would you rather not receive \
         these e-mails? Change that under Notifications: {portal}/meldingen\n\n\
         An e-mail from otv never contains your BSN or any medical information. We never ask \
         for your DigiD details in an e-mail."
    )
}

/// The link that verifies a new address (`link` holds the token; it works until `expires_at`).
pub fn verification(portal: &str, link: &str, expires_at: DateTime<Utc>) -> Composed {
    let nl = format!(
        "Hallo,\n\n\
         U hebt dit e-mailadres opgegeven in otv, de website voor uw toestemmingen. Klik op \
         de link hieronder om te bevestigen dat dit adres van u is. U logt dan in en klikt op \
         de knop om te bevestigen.\n\n\
         {link}\n\n\
         De link werkt tot {}.\n\n\
         Hebt u dit adres niet zelf opgegeven? Dan hoeft u niets te doen. Wij sturen geen \
         andere e-mail naar dit adres zolang het niet bevestigd is.\n\n\
         Met vriendelijke groet,\notv\n\n\
         In een e-mail van otv staat nooit uw BSN en nooit medische informatie. De website van \
         otv is {portal}",
        nl_when(expires_at)
    );
    let en = format!(
        "Hello,\n\n\
         You gave this e-mail address in otv, the website for your consent choices. Click the \
         link below to confirm that this address is yours. You then log in and click the \
         button to confirm.\n\n\
         {link}\n\n\
         The link works until {}.\n\n\
         Did you not give this address yourself? Then you need not do anything. We send no \
         other e-mail to this address as long as it is not confirmed.\n\n\
         Kind regards,\notv\n\n\
         An e-mail from otv never contains your BSN or any medical information. The website of \
         otv is {portal}",
        en_when(expires_at)
    );
    mail(
        "Bevestig uw e-mailadres",
        "Confirm your e-mail address",
        &nl,
        &en,
    )
}

/// Someone else changed the citizen's answers at `at`.
pub fn changed(portal: &str, by: ChangedBy, at: DateTime<Utc>) -> Composed {
    let (subject_nl, subject_en, what_nl, what_en) = match by {
        ChangedBy::Provider => (
            "Een zorgverlener heeft uw keuzes veranderd".to_owned(),
            "A care provider has changed your choices".to_owned(),
            format!(
                "Een zorgverlener heeft op {} uw keuzes voor het delen van uw medische gegevens \
                 veranderd.",
                nl_when(at)
            ),
            format!(
                "A care provider changed your choices for sharing your medical data on {}.",
                en_when(at)
            ),
        ),
        ChangedBy::Migration => (
            "Een zorgaanbieder heeft uw keuzes overgezet".to_owned(),
            "A care provider has moved your choices".to_owned(),
            format!(
                "Een zorgaanbieder heeft op {} keuzes die u eerder bij hem maakte, overgezet naar \
                 otv. Uw eigen keuzes in otv blijven zoals ze zijn: alleen vragen die u nog niet \
                 had beantwoord, zijn ingevuld.",
                nl_when(at)
            ),
            format!(
                "A care provider moved choices you made with it earlier into otv on {}. Your own \
                 choices in otv stay as they are: only questions you had not answered yet were \
                 filled in.",
                en_when(at)
            ),
        ),
        ChangedBy::Representative => (
            "Uw vertegenwoordiger heeft uw keuzes veranderd".to_owned(),
            "Your representative has changed your choices".to_owned(),
            format!(
                "Iemand die namens u mag handelen (uw vertegenwoordiger) heeft op {} uw keuzes \
                 voor het delen van uw medische gegevens veranderd.",
                nl_when(at)
            ),
            format!(
                "Someone who may act for you (your representative) changed your choices for \
                 sharing your medical data on {}.",
                en_when(at)
            ),
        ),
        ChangedBy::Guardian => (
            "Uw ouder of voogd heeft uw keuzes bevestigd".to_owned(),
            "Your parent or guardian has confirmed your choices".to_owned(),
            format!(
                "Uw ouder of voogd heeft op {} uw keuzes voor het delen van uw medische gegevens \
                 bekeken en bevestigd of afgewezen.",
                nl_when(at)
            ),
            format!(
                "Your parent or guardian reviewed your choices for sharing your medical data on \
                 {} and confirmed or declined them.",
                en_when(at)
            ),
        ),
        ChangedBy::Emergency { until } => (
            "Een zorgverlener heeft een noodtoestemming vastgelegd".to_owned(),
            "A care provider has recorded an emergency consent".to_owned(),
            format!(
                "Een zorgverlener heeft op {} een noodtoestemming vastgelegd. Dat kan als u met \
                 spoed zorg nodig had. Door de noodtoestemming mag deze zorgverlener tijdelijk uw \
                 medische gegevens bekijken. De noodtoestemming stopt op {}.\n\n\
                 U kunt de noodtoestemming bevestigen of meteen laten stoppen: \
                 {portal}/noodtoestemmingen",
                nl_when(at),
                nl_when(until)
            ),
            format!(
                "A care provider recorded an emergency consent on {}. That can happen when you \
                 needed urgent care. The emergency consent lets this care provider look at your \
                 medical data for a short time. It stops on {}.\n\n\
                 You can confirm the emergency consent or stop it at once: \
                 {portal}/noodtoestemmingen",
                en_when(at),
                en_when(until)
            ),
        ),
    };
    let nl = format!(
        "Hallo,\n\n{what_nl}\n\n\
         Wilt u zien wie dat was en wat er is veranderd? Log in op otv en kijk bij \
         Geschiedenis: {portal}/geschiedenis\n\n\
         Klopt dit niet? Dan kunt u uw keuzes zelf weer veranderen: {portal}/keuzes\n\n\
         Met vriendelijke groet,\notv\n\n{}",
        footer_nl(portal)
    );
    let en = format!(
        "Hello,\n\n{what_en}\n\n\
         Would you like to see who it was and what changed? Log in to otv and look under \
         History: {portal}/geschiedenis\n\n\
         Is this not right? Then you can change your choices yourself: {portal}/keuzes\n\n\
         Kind regards,\notv\n\n{}",
        footer_en(portal)
    );
    mail(&subject_nl, &subject_en, &nl, &en)
}

/// An emergency consent recorded at `given` stops at `until` (a reminder before it does).
pub fn emergency_ends(portal: &str, given: DateTime<Utc>, until: DateTime<Utc>) -> Composed {
    let nl = format!(
        "Hallo,\n\n\
         Op {} heeft een zorgverlener een noodtoestemming vastgelegd. Die noodtoestemming \
         stopt op {}. Daarna gelden weer uw eigen keuzes.\n\n\
         Wilt u dat deze zorgverlener uw medische gegevens ook daarna mag bekijken? Bevestig de \
         noodtoestemming dan voor die tijd: {portal}/noodtoestemmingen\n\n\
         Doet u niets? Dan stopt de noodtoestemming vanzelf.\n\n\
         Met vriendelijke groet,\notv\n\n{}",
        nl_when(given),
        nl_when(until),
        footer_nl(portal)
    );
    let en = format!(
        "Hello,\n\n\
         On {} a care provider recorded an emergency consent. That emergency consent stops on \
         {}. After that your own choices apply again.\n\n\
         Would you like this care provider to be able to look at your medical data after that \
         too? Then confirm the emergency consent before that time: {portal}/noodtoestemmingen\n\n\
         Do you do nothing? Then the emergency consent stops by itself.\n\n\
         Kind regards,\notv\n\n{}",
        en_when(given),
        en_when(until),
        footer_en(portal)
    );
    mail(
        "Uw noodtoestemming stopt bijna",
        "Your emergency consent ends soon",
        &nl,
        &en,
    )
}

/// Checks of the citizen's consent, for a citizen who wants to hear of every check.
pub fn checks(portal: &str, checks: &[CheckNote]) -> Composed {
    let list = |nl: bool| {
        checks
            .iter()
            .map(|c| match (nl, c.emergency) {
                (true, false) => format!("- {}", nl_when(c.at)),
                (true, true) => format!("- {} (door een noodtoestemming)", nl_when(c.at)),
                (false, false) => format!("- {}", en_when(c.at)),
                (false, true) => format!("- {} (by an emergency consent)", en_when(c.at)),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (once_nl, once_en) = if checks.len() == 1 {
        (
            "Een zorgaanbieder heeft gecontroleerd of hij uw medische gegevens mag delen. Dat \
             was op:",
            "A care provider checked whether it may share your medical data. That was on:",
        )
    } else {
        (
            "Zorgaanbieders hebben gecontroleerd of zij uw medische gegevens mogen delen. Dat \
             was op:",
            "Care providers checked whether they may share your medical data. That was on:",
        )
    };
    let nl = format!(
        "Hallo,\n\n{once_nl}\n\n{}\n\n\
         Wilt u zien welke zorgaanbieder dat was en wat het antwoord was? Log in op otv en kijk \
         bij Geschiedenis: {portal}/geschiedenis\n\n\
         Met vriendelijke groet,\notv\n\n{}",
        list(true),
        footer_nl(portal)
    );
    let en = format!(
        "Hello,\n\n{once_en}\n\n{}\n\n\
         Would you like to see which care provider it was and what the answer was? Log in to \
         otv and look under History: {portal}/geschiedenis\n\n\
         Kind regards,\notv\n\n{}",
        list(false),
        footer_en(portal)
    );
    mail(
        "Controle van uw toestemming",
        "A check of your consent",
        &nl,
        &en,
    )
}

/// The daily digest of checks.
pub fn digest(portal: &str, d: &DigestMail) -> Composed {
    let (times_nl, times_en) = if d.checks == 1 {
        (
            format!(
                "Een zorgaanbieder heeft 1 keer gecontroleerd of hij uw medische gegevens mag \
                 delen. Dat was op {}.",
                nl_when(d.from)
            ),
            format!(
                "A care provider checked once whether it may share your medical data. That was \
                 on {}.",
                en_when(d.from)
            ),
        )
    } else {
        (
            format!(
                "Zorgaanbieders hebben {} keer gecontroleerd of zij uw medische gegevens mogen \
                 delen. De eerste keer was op {}, de laatste keer op {}.",
                d.checks,
                nl_when(d.from),
                nl_when(d.until)
            ),
            format!(
                "Care providers checked {} times whether they may share your medical data. The \
                 first time was on {}, the last time on {}.",
                d.checks,
                en_when(d.from),
                en_when(d.until)
            ),
        )
    };
    let (emergency_nl, emergency_en) = match d.emergency {
        0 => (String::new(), String::new()),
        1 => (
            " 1 keer mocht dat door een noodtoestemming.".to_owned(),
            " Once it was allowed by an emergency consent.".to_owned(),
        ),
        n => (
            format!(" {n} keer mocht dat door een noodtoestemming."),
            format!(" {n} times it was allowed by an emergency consent."),
        ),
    };
    let nl = format!(
        "Hallo,\n\nDit is uw dagelijkse overzicht van controles van uw toestemming.\n\n\
         {times_nl}{emergency_nl}\n\n\
         Wilt u zien welke zorgaanbieders dat waren en wat het antwoord was? Log in op otv en \
         kijk bij Geschiedenis: {portal}/geschiedenis\n\n\
         Met vriendelijke groet,\notv\n\n{}",
        footer_nl(portal)
    );
    let en = format!(
        "Hello,\n\nThis is your daily overview of checks of your consent.\n\n\
         {times_en}{emergency_en}\n\n\
         Would you like to see which care providers they were and what the answer was? Log in \
         to otv and look under History: {portal}/geschiedenis\n\n\
         Kind regards,\notv\n\n{}",
        footer_en(portal)
    );
    mail(
        "Overzicht van controles van uw toestemming",
        "Overview of checks of your consent",
        &nl,
        &en,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTAL: &str = "https://toestemming.example.nl";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// Every kind of mail, with the links it must hold.
    fn every_mail() -> Vec<(Composed, Vec<String>)> {
        let t = at("2026-07-01T12:05:00Z");
        let until = at("2026-07-04T12:05:00Z");
        let link = format!("{PORTAL}/e-mail/bevestigen?token=abcDEF_123-x");
        let checks_link = vec![
            format!("{PORTAL}/geschiedenis"),
            format!("{PORTAL}/meldingen"),
        ];
        let changed_links = vec![
            format!("{PORTAL}/geschiedenis"),
            format!("{PORTAL}/keuzes"),
            format!("{PORTAL}/meldingen"),
        ];
        let mut out = vec![(verification(PORTAL, &link, t), vec![link.clone()])];
        for by in [
            ChangedBy::Provider,
            ChangedBy::Migration,
            ChangedBy::Representative,
            ChangedBy::Guardian,
        ] {
            out.push((changed(PORTAL, by, t), changed_links.clone()));
        }
        let mut emergency_links = changed_links.clone();
        emergency_links.push(format!("{PORTAL}/noodtoestemmingen"));
        out.push((
            changed(PORTAL, ChangedBy::Emergency { until }, t),
            emergency_links,
        ));
        out.push((
            emergency_ends(PORTAL, t, until),
            vec![format!("{PORTAL}/noodtoestemmingen")],
        ));
        let note = |seq, emergency| CheckNote {
            seq,
            at: t,
            emergency,
        };
        out.push((checks(PORTAL, &[note(1, false)]), checks_link.clone()));
        out.push((
            checks(PORTAL, &[note(1, false), note(2, true)]),
            checks_link.clone(),
        ));
        for (n, e) in [(1, 0), (7, 2)] {
            let d = DigestMail {
                from: t,
                until,
                checks: n,
                emergency: e,
            };
            out.push((digest(PORTAL, &d), checks_link.clone()));
        }
        out
    }

    #[test]
    fn every_mail_is_dutch_first_and_english_after() {
        for (m, _) in every_mail() {
            let (nl, en) = m.text.split_once(DIVIDER).expect("a divider");
            assert!(nl.starts_with("Hallo,"), "{}", m.subject);
            assert!(nl.contains("Met vriendelijke groet"), "{}", m.subject);
            assert!(en.contains("Hello,"), "{}", m.subject);
            assert!(en.contains("Kind regards"), "{}", m.subject);
            let (s_nl, s_en) = m.subject.split_once(" | ").expect("both subjects");
            assert!(!s_nl.is_empty() && !s_en.is_empty());
        }
    }

    #[test]
    fn every_mail_links_to_the_portal_pages_it_names() {
        for (m, links) in every_mail() {
            for link in links {
                let (nl, en) = m.text.split_once(DIVIDER).unwrap();
                assert!(nl.contains(&link), "{}: {link} in Dutch", m.subject);
                assert!(en.contains(&link), "{}: {link} in English", m.subject);
            }
            // Links stay whole on their line (no wrapping inside a URL).
            for line in m.text.lines() {
                if let Some(i) = line.find("https://") {
                    assert!(
                        !line[i..].contains(' ') || line[i..].contains(" ("),
                        "{line}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_mail_names_data_categories_providers_or_decisions() {
        let catalogue = otv_core::Catalogue::default_catalogue();
        let mut words: Vec<String> = Vec::new();
        for c in catalogue.data_categories() {
            words.extend([c.code.as_str().to_owned(), c.name.clone()]);
            words.extend(c.name_en.clone());
        }
        for c in catalogue.holder_categories() {
            words.extend([c.code.as_str().to_owned(), c.name.clone()]);
            words.extend(c.name_en.clone());
        }
        for c in catalogue.consulting_categories() {
            words.extend([c.code.as_str().to_owned(), c.name.clone()]);
            words.extend(c.name_en.clone());
        }
        for (m, _) in every_mail() {
            let all = format!("{}\n{}", m.subject, m.text).to_lowercase();
            for w in &words {
                assert!(!all.contains(&w.to_lowercase()), "{}: {w}", m.subject);
            }
            for word in ["permit", "deny", "ggc", "ura ", "uzi"] {
                assert!(!all.contains(word), "{}: {word}", m.subject);
            }
        }
    }

    #[test]
    fn times_are_dutch_local_time() {
        // 12:05 UTC on 1 July is 14:05 in the Netherlands (summer time).
        let m = changed(PORTAL, ChangedBy::Provider, at("2026-07-01T12:05:00Z"));
        assert!(m.text.contains("01-07-2026 om 14:05"), "{}", m.text);
        assert!(
            m.text.contains("01-07-2026 14:05 (Dutch time)"),
            "{}",
            m.text
        );
    }

    #[test]
    fn the_greeting_keeps_its_own_lines() {
        let m = checks(
            PORTAL,
            &[CheckNote {
                seq: 1,
                at: at("2026-07-01T12:05:00Z"),
                emergency: false,
            }],
        );
        assert!(
            m.text.contains("Met vriendelijke groet,\notv\n"),
            "{}",
            m.text
        );
        assert!(m.text.contains("Kind regards,\notv\n"), "{}", m.text);
        assert!(m.text.contains("\n- 01-07-2026 om 14:05\n"), "{}", m.text);
    }

    #[test]
    fn an_emergency_consent_says_when_it_stops() {
        let m = changed(
            PORTAL,
            ChangedBy::Emergency {
                until: at("2026-12-04T09:00:00Z"),
            },
            at("2026-12-01T09:00:00Z"),
        );
        assert!(m.text.contains("noodtoestemming"), "{}", m.text);
        assert!(
            m.text.contains("stopt op 04-12-2026 om 10:00"),
            "{}",
            m.text
        );
        assert!(
            m.text.contains("It stops on 04-12-2026 10:00"),
            "{}",
            m.text
        );
    }

    #[test]
    fn lines_are_short_enough_for_every_mail_program() {
        for (m, _) in every_mail() {
            for line in m.text.lines() {
                assert!(
                    line.chars().count() <= WIDTH || line.contains("https://"),
                    "{}: {line}",
                    m.subject
                );
            }
        }
    }
}
