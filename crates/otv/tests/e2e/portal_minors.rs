//! Minors and their parents (issue 4, item 4) through the real binary, on SQLite and PostgreSQL:
//! two people with their own development logins (two cookie jars) and the closed question as
//! plain JSON beside them.
//!
//! - A 14-year-old's "all my providers" waits for a parent and permits nothing; the child makes
//!   a pairing code; the parent logs in as themself, types a wrong code (named error), the right
//!   one, reviews the child's choices by name and confirms: now they permit, and the history
//!   and the audit log show the parent's confirmation. The code does not work twice; a later
//!   change by the child waits again, in the linked parent's list, without a new code.
//! - Under opt-out, a confirmed "no" stays in force while the child's later "yes" waits: the
//!   proposal is shown beside it, permits nothing and, declined, leaves the "no" in force.
//! - Guessing is paused after five wrong codes.
//! - A 16-year-old's answers count at once.
//! - Under 12: a parent who logs in acting for the child fills in choices that count at once.

use chrono::{Days, Utc};

use crate::portal_client::{
    DevLogin, audit_count, json_decision, login, record_change, start, text_of_class,
};
use crate::support::databases;

const CHILD: &str = "900300000";
const PARENT: &str = "900300012";
const STRANGER: &str = "900300024";
const SIXTEEN: &str = "900300036";
const YOUNG: &str = "900300048";
const YOUNG_PARENT: &str = "900300061";

/// A birth date `years` (and a month) ago.
fn born_years_ago(years: u64) -> String {
    (Utc::now().date_naive() - Days::new(years * 365 + years / 4 + 30)).to_string()
}

#[tokio::test]
async fn a_childs_choices_count_only_after_a_parent_confirms_them_with_the_pairing_code() {
    for db in databases().await {
        let server = start(&db, &[]);
        let mut child = login(
            &server,
            DevLogin::new(CHILD)
                .name("Sam de Vries")
                .born(&born_years_ago(14)),
        )
        .await;
        record_change(&mut child, "all", &[], "no").await;
        assert_eq!(
            json_decision(&server, CHILD).await,
            "Deny",
            "pending answers permit nothing"
        );

        // The child's page explains it and makes a code, shown once.
        let page = child.get("/ouder-en-kind").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("Toestemming van uw ouder"),
            "{}",
            page.body
        );
        assert!(page.body.contains("wachten op uw ouder"), "{}", page.body);
        let made = child
            .submit("/ouder-en-kind", "/ouder-en-kind/koppelcode", &[])
            .await;
        assert_eq!(made.status, 200, "{}", made.body);
        let code = text_of_class(&made.body, "pairing-code");
        assert_eq!(code.len(), 9, "XXXX-XXXX: {code}");
        let again = child.get("/ouder-en-kind").await;
        assert!(!again.body.contains(&code), "the code is shown only once");
        assert!(again.body.contains("Die werkt tot"), "{}", again.body);

        // The parent logs in as themself.
        let mut parent = login(
            &server,
            DevLogin::new(PARENT)
                .name("Alex de Vries")
                .born(&born_years_ago(42)),
        )
        .await;
        let page = parent.get("/ouder-en-kind").await;
        assert!(
            page.body.contains("Keuzes van mijn kind bevestigen"),
            "{}",
            page.body
        );
        let wrong = parent
            .submit(
                "/ouder-en-kind",
                "/ouder-en-kind/code",
                &[("code", "2345-6789")],
            )
            .await;
        assert_eq!(wrong.status, 400, "{}", wrong.body);
        assert!(
            wrong.body.contains("class=\"error-summary\""),
            "{}",
            wrong.body
        );
        assert!(wrong.body.contains("href=\"#code\""));
        assert!(
            wrong.body.contains("Koppelcode: deze code kennen wij niet"),
            "{}",
            wrong.body
        );
        assert!(wrong.body.contains("aria-invalid=\"true\""));
        let typo = parent
            .submit("/ouder-en-kind", "/ouder-en-kind/code", &[("code", "12")])
            .await;
        assert!(
            typo.body.contains("Koppelcode: vul de 8 tekens in"),
            "{}",
            typo.body
        );

        // Typed in small letters with spaces: still the code.
        let typed = format!(" {} ", code.to_lowercase().replace('-', " "));
        let paired = parent
            .submit("/ouder-en-kind", "/ouder-en-kind/code", &[("code", &typed)])
            .await;
        assert_eq!(paired.status, 303, "{}", paired.body);
        let review_url = paired.location.unwrap();
        assert!(review_url.starts_with("/ouder-en-kind/kind/"));
        assert!(!review_url.contains(CHILD) && !review_url.contains(PARENT));
        let review = parent.get(&review_url).await;
        assert_eq!(review.status, 200, "{}", review.body);
        assert!(
            review.body.contains("Keuzes van Sam de Vries"),
            "{}",
            review.body
        );
        assert!(
            review.body.contains("Alle zorgaanbieders mogen"),
            "{}",
            review.body
        );
        assert!(!review.body.contains(CHILD) && !review.body.contains(PARENT));

        // Someone else cannot open the link.
        let mut stranger = login(
            &server,
            DevLogin::new(STRANGER)
                .name("Kim")
                .born(&born_years_ago(40)),
        )
        .await;
        assert_eq!(stranger.get(&review_url).await.status, 404);

        let confirmed = parent
            .submit_from(&review.body, &review_url, &[("keuze", "bevestigen")])
            .await;
        assert_eq!(confirmed.status, 303, "{}", confirmed.body);
        let done = parent.get(confirmed.location.as_deref().unwrap()).await;
        assert!(
            done.body.contains("U hebt de keuzes van uw kind bevestigd"),
            "{}",
            done.body
        );
        assert_eq!(json_decision(&server, CHILD).await, "Permit");

        // The history says who confirmed; the audit log has the parent as actor.
        let history = child.get("/geschiedenis").await;
        assert!(
            history.body.contains("Bevestigd door ouder of voogd"),
            "{}",
            history.body
        );
        assert_eq!(
            audit_count(
                &db,
                "event = 'guardian-confirmation' AND channel = 'guardian-confirmation' \
                 AND decision = 'confirmed' AND actor LIKE 'representative:%' AND actor IN \
                 (SELECT actor FROM audit_log WHERE event = 'guardian-pairing' AND decision = 'paired')"
            )
            .await,
            1
        );
        assert_eq!(
            audit_count(&db, "event = 'guardian-code-issued' AND actor = 'citizen'").await,
            1
        );
        assert_eq!(
            audit_count(
                &db,
                "event = 'guardian-pairing' AND decision = 'unknown-code'"
            )
            .await,
            1
        );

        // The code does not work twice.
        let twice = parent
            .submit("/ouder-en-kind", "/ouder-en-kind/code", &[("code", &code)])
            .await;
        assert!(
            twice.body.contains("Koppelcode: deze code is al gebruikt"),
            "{}",
            twice.body
        );

        // The child changes the choices: they wait again, in the linked parent's list, and
        // the confirmed answers stay in force meanwhile.
        record_change(&mut child, "none", &[], "").await;
        assert_eq!(
            json_decision(&server, CHILD).await,
            "Permit",
            "a pending change does not replace the confirmed answers"
        );
        let list = parent.get("/ouder-en-kind").await;
        assert!(list.body.contains("Sam de Vries"), "{}", list.body);
        assert!(list.body.contains(&review_url));
        let review = parent.get(&review_url).await;
        assert!(
            review.body.contains("Geen enkele zorgaanbieder mag"),
            "{}",
            review.body
        );
        let declined = parent
            .submit_from(&review.body, &review_url, &[("keuze", "afwijzen")])
            .await;
        assert_eq!(declined.status, 303, "{}", declined.body);
        assert_eq!(
            json_decision(&server, CHILD).await,
            "Permit",
            "declined: the confirmed answers are still in force"
        );
        assert_eq!(
            audit_count(&db, "event = 'guardian-declined' AND decision = 'declined'").await,
            1
        );

        let logs = server.stop();
        for bsn in [CHILD, PARENT, STRANGER] {
            assert!(!logs.contains(bsn), "a BSN in the logs");
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_confirmed_no_stays_in_force_while_a_later_yes_waits() {
    for db in databases().await {
        // Under opt-out "no answer" permits: a pending yes that displaced the confirmed no
        // would permit.
        let server = start(&db, &[("OTV_DEFAULT_POLICY", "opt-out")]);
        let mut child = login(
            &server,
            DevLogin::new(CHILD)
                .name("Sam de Vries")
                .born(&born_years_ago(14)),
        )
        .await;
        record_change(&mut child, "none", &[], "").await;
        let made = child
            .submit("/ouder-en-kind", "/ouder-en-kind/koppelcode", &[])
            .await;
        let code = text_of_class(&made.body, "pairing-code");
        let mut parent = login(
            &server,
            DevLogin::new(PARENT)
                .name("Alex de Vries")
                .born(&born_years_ago(42)),
        )
        .await;
        let paired = parent
            .submit("/ouder-en-kind", "/ouder-en-kind/code", &[("code", &code)])
            .await;
        let review_url = paired.location.unwrap_or_else(|| panic!("{}", paired.body));
        let review = parent.get(&review_url).await;
        let confirmed = parent
            .submit_from(&review.body, &review_url, &[("keuze", "bevestigen")])
            .await;
        assert_eq!(confirmed.status, 303, "{}", confirmed.body);
        assert_eq!(
            json_decision(&server, CHILD).await,
            "Deny",
            "the confirmed no"
        );

        // The child now says yes: it waits, and the confirmed no keeps deciding.
        record_change(&mut child, "all", &[], "no").await;
        assert_eq!(
            json_decision(&server, CHILD).await,
            "Deny",
            "a pending yes must not displace the confirmed no"
        );
        let overview = child.get("/keuzes").await;
        assert!(
            overview
                .body
                .contains("Geen enkele zorgaanbieder mag uw medische gegevens"),
            "the overview sums up what is in force: {}",
            overview.body
        );
        assert!(
            overview.body.contains("Uw nieuwe keuze: Ja"),
            "the proposal is shown beside it: {}",
            overview.body
        );
        // The wizard compares with the proposal: the same choice again changes nothing.
        let step1 = child
            .submit("/keuzes/wijzigen", "/keuzes/wijzigen", &[("choice", "all")])
            .await;
        let again = child
            .submit_from(&step1.body, "/keuzes/wijzigen/europa", &[("eu", "no")])
            .await;
        assert_eq!(again.location.as_deref(), Some("/keuzes/opgeslagen"));

        // The parent sees only the yes waiting, declines it: the no is still in force.
        let review = parent.get(&review_url).await;
        assert!(
            review.body.contains("Alle zorgaanbieders mogen"),
            "{}",
            review.body
        );
        let declined = parent
            .submit_from(&review.body, &review_url, &[("keuze", "afwijzen")])
            .await;
        assert_eq!(declined.status, 303, "{}", declined.body);
        assert_eq!(
            json_decision(&server, CHILD).await,
            "Deny",
            "declining the yes leaves the confirmed no in force"
        );
        let overview = child.get("/keuzes").await;
        assert!(
            !overview.body.contains("Uw nieuwe keuze"),
            "{}",
            overview.body
        );

        drop(server);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn guessing_codes_is_paused_after_five_wrong_tries() {
    for db in databases().await {
        let server = start(&db, &[]);
        let mut guesser = login(
            &server,
            DevLogin::new(STRANGER)
                .name("Kim")
                .born(&born_years_ago(40)),
        )
        .await;
        for i in 0..5 {
            let code = format!("2345-678{}", i + 2);
            let r = guesser
                .submit("/ouder-en-kind", "/ouder-en-kind/code", &[("code", &code)])
                .await;
            assert_eq!(r.status, 400, "{}", r.body);
        }
        let blocked = guesser
            .submit(
                "/ouder-en-kind",
                "/ouder-en-kind/code",
                &[("code", "2345-6789")],
            )
            .await;
        assert_eq!(blocked.status, 429, "{}", blocked.body);
        assert!(
            blocked.body.contains("te vaak een verkeerde code"),
            "{}",
            blocked.body
        );
        assert!(blocked.body.contains("href=\"#code\""));
        assert_eq!(
            audit_count(&db, "event = 'guardian-pairing' AND decision = 'blocked'").await,
            1
        );
        drop(server);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn from_sixteen_choices_count_at_once_and_under_twelve_a_parent_fills_them_in() {
    for db in databases().await {
        let server = start(&db, &[]);

        let mut sixteen = login(
            &server,
            DevLogin::new(SIXTEEN)
                .name("Noor")
                .born(&born_years_ago(16)),
        )
        .await;
        record_change(&mut sixteen, "all", &[], "no").await;
        assert_eq!(json_decision(&server, SIXTEEN).await, "Permit");

        // Under 12, as the terms of use describe it: the parent fills in the choices in the
        // child's own login, then confirms them in their own.
        let mut young = login(
            &server,
            DevLogin::new(YOUNG).name("Mila").born(&born_years_ago(9)),
        )
        .await;
        record_change(&mut young, "all", &[], "no").await;
        assert_eq!(json_decision(&server, YOUNG).await, "Deny");
        let made = young
            .submit("/ouder-en-kind", "/ouder-en-kind/koppelcode", &[])
            .await;
        let code = text_of_class(&made.body, "pairing-code");
        let mut parent = login(
            &server,
            DevLogin::new(YOUNG_PARENT)
                .name("Jesse")
                .born(&born_years_ago(38)),
        )
        .await;
        let paired = parent
            .submit("/ouder-en-kind", "/ouder-en-kind/code", &[("code", &code)])
            .await;
        let review_url = paired.location.unwrap_or_else(|| panic!("{}", paired.body));
        let review = parent.get(&review_url).await;
        assert!(review.body.contains("Keuzes van Mila"), "{}", review.body);
        let confirmed = parent
            .submit_from(&review.body, &review_url, &[("keuze", "bevestigen")])
            .await;
        assert_eq!(confirmed.status, 303, "{}", confirmed.body);
        assert_eq!(json_decision(&server, YOUNG).await, "Permit");

        // A parent whose identity provider says they act for the young child sees whose
        // choices they fill in.
        let mut acting = login(
            &server,
            DevLogin::new(YOUNG_PARENT)
                .name("Jesse")
                .born(&born_years_ago(38))
                .acting_for(YOUNG),
        )
        .await;
        let page = acting.get("/ouder-en-kind").await;
        assert!(
            page.body.contains("Mila is jonger dan 12 jaar"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("/ouder-en-kind/koppelcode"));

        drop(server);
        db.cleanup().await;
    }
}
