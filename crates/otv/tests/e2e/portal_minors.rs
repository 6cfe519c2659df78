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

use std::collections::BTreeMap;

use chrono::{Days, Utc};
use serde_json::{Value, json};

use crate::support::{Db, Server, databases};

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

/// A reply: status, `Location` and body.
struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

/// One person with a browser of their own: cookies kept by hand (the portal's cookies are
/// `Secure`, which a cookie store would not send over the test's plain HTTP), redirects not
/// followed.
struct Person {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Person {
    fn new(server: &Server) -> Person {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Person {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url(""),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Reply {
        let res = req
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        Reply {
            status,
            location,
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Reply {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("sec-fetch-site", "same-origin")
            .form(fields);
        self.send(req).await
    }

    /// Posts the form of the page at `page` whose action is `action`, with its hidden fields
    /// and `fields`.
    async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Reply {
        let body = self.get(page).await.body;
        self.submit_from(&body, action, fields).await
    }

    async fn submit_from(&mut self, body: &str, action: &str, fields: &[(&str, &str)]) -> Reply {
        let hidden = hidden_fields(body, action);
        let mut all: Vec<(&str, &str)> = hidden
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    /// Logs in with the development login and accepts the terms of use.
    async fn login(&mut self, bsn: &str, name: &str, birth_date: &str, acting_for: &str) {
        let r = self
            .submit(
                "/inloggen",
                "/inloggen/ontwikkel",
                &[
                    ("bsn", bsn),
                    ("name", name),
                    ("birth_date", birth_date),
                    ("acting_for", acting_for),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        if r.location.as_deref() == Some("/voorwaarden") {
            let r = self.submit("/voorwaarden", "/voorwaarden", &[]).await;
            assert_eq!(r.status, 303, "{}", r.body);
        }
        assert!(self.cookies.contains_key("otv_session"));
    }
}

/// The hidden fields of the form posting to `action`.
fn hidden_fields(body: &str, action: &str) -> Vec<(String, String)> {
    let start = body
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form for {action} in:\n{body}"));
    let form = &body[start..];
    let form = &form[..form.find("</form>").unwrap()];
    form.split("<input")
        .skip(1)
        .filter(|i| i.contains("type=\"hidden\""))
        .map(|i| (attribute(i, "name"), attribute(i, "value")))
        .collect()
}

fn attribute(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let at = tag.find(&key).unwrap() + key.len();
    tag[at..at + tag[at..].find('"').unwrap()].replace("&#x2d;", "-")
}

/// The text of the first element with `class`.
fn text_of_class(body: &str, class: &str) -> String {
    let at = body
        .find(&format!("class=\"{class}\""))
        .unwrap_or_else(|| panic!("no {class} in:\n{body}"));
    let rest = &body[at..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find('<').unwrap()].trim().to_owned()
}

/// The closed question about `bsn` (a GP asked about another GP, treatment data), as plain JSON
/// on the development listener: `Permit` or `Deny`.
async fn decision(server: &Server, bsn: &str) -> String {
    let question = json!({
        "bsn": bsn,
        "holder": {"ura": "00000001", "organisation_type": "Z3"},
        "consulter": {"ura": "00000002", "organisation_type": "N6"},
        "professional": {"uzi": "900010001", "role": "01.015"},
        "purpose": "TREAT",
        "data_categories": ["GGC002"],
    });
    let res = crate::support::http()
        .post(server.url("/v1/closed-question"))
        .header("x-otv-dev-connector", "demo-huisarts")
        .json(&question)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["results"][0]["decision"]
        .as_str()
        .unwrap_or_else(|| panic!("no decision: {body}"))
        .to_owned()
}

/// Records one of the wizard's shortcuts for the managed profile: `all` (then no to the
/// separate EU question) or `none`.
async fn choose(person: &mut Person, choice: &str) {
    let mut r = person
        .submit(
            "/keuzes/wijzigen",
            "/keuzes/wijzigen",
            &[("choice", choice)],
        )
        .await;
    if choice == "all" {
        assert_eq!(r.status, 200, "the EU question: {}", r.body);
        r = person
            .submit_from(&r.body, "/keuzes/wijzigen/europa", &[("eu", "no")])
            .await;
    }
    assert_eq!(r.status, 303, "recording {choice}: {}", r.body);
    assert!(
        r.location
            .as_deref()
            .unwrap()
            .starts_with("/keuzes/opgeslagen?wijziging="),
        "{:?}",
        r.location
    );
}

fn start(db: &Db) -> Server {
    Server::start_with(
        db,
        &["--demo", "--dev-login"],
        &[("OTV_DEV_PLAIN_PROVIDER_HTTP", "true")],
    )
}

/// Counts audit records matching `condition` (raw SQL on the test's database).
async fn audit_count(db: &Db, condition: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM audit_log WHERE {condition}");
    if db.url.starts_with("sqlite") {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_childs_choices_count_only_after_a_parent_confirms_them_with_the_pairing_code() {
    for db in databases().await {
        let server = start(&db);
        let mut child = Person::new(&server);
        child
            .login(CHILD, "Sam de Vries", &born_years_ago(14), "")
            .await;
        choose(&mut child, "all").await;
        assert_eq!(
            decision(&server, CHILD).await,
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
        let mut parent = Person::new(&server);
        parent
            .login(PARENT, "Alex de Vries", &born_years_ago(42), "")
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
        let mut stranger = Person::new(&server);
        stranger
            .login(STRANGER, "Kim", &born_years_ago(40), "")
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
        assert_eq!(decision(&server, CHILD).await, "Permit");

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
        choose(&mut child, "none").await;
        assert_eq!(
            decision(&server, CHILD).await,
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
            decision(&server, CHILD).await,
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
        let server = Server::start_with(
            &db,
            &["--demo", "--dev-login"],
            &[
                ("OTV_DEV_PLAIN_PROVIDER_HTTP", "true"),
                ("OTV_DEFAULT_POLICY", "opt-out"),
            ],
        );
        let mut child = Person::new(&server);
        child
            .login(CHILD, "Sam de Vries", &born_years_ago(14), "")
            .await;
        choose(&mut child, "none").await;
        let made = child
            .submit("/ouder-en-kind", "/ouder-en-kind/koppelcode", &[])
            .await;
        let code = text_of_class(&made.body, "pairing-code");
        let mut parent = Person::new(&server);
        parent
            .login(PARENT, "Alex de Vries", &born_years_ago(42), "")
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
        assert_eq!(decision(&server, CHILD).await, "Deny", "the confirmed no");

        // The child now says yes: it waits, and the confirmed no keeps deciding.
        choose(&mut child, "all").await;
        assert_eq!(
            decision(&server, CHILD).await,
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
            decision(&server, CHILD).await,
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
        let server = start(&db);
        let mut guesser = Person::new(&server);
        guesser
            .login(STRANGER, "Kim", &born_years_ago(40), "")
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
        let server = start(&db);

        let mut sixteen = Person::new(&server);
        sixteen
            .login(SIXTEEN, "Noor", &born_years_ago(16), "")
            .await;
        choose(&mut sixteen, "all").await;
        assert_eq!(decision(&server, SIXTEEN).await, "Permit");

        // Under 12, as the terms of use describe it: the parent fills in the choices in the
        // child's own login, then confirms them in their own.
        let mut young = Person::new(&server);
        young.login(YOUNG, "Mila", &born_years_ago(9), "").await;
        choose(&mut young, "all").await;
        assert_eq!(decision(&server, YOUNG).await, "Deny");
        let made = young
            .submit("/ouder-en-kind", "/ouder-en-kind/koppelcode", &[])
            .await;
        let code = text_of_class(&made.body, "pairing-code");
        let mut parent = Person::new(&server);
        parent
            .login(YOUNG_PARENT, "Jesse", &born_years_ago(38), "")
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
        assert_eq!(decision(&server, YOUNG).await, "Permit");

        // A parent whose identity provider says they act for the young child sees whose
        // choices they fill in.
        let mut acting = Person::new(&server);
        acting
            .login(YOUNG_PARENT, "Jesse", &born_years_ago(38), YOUNG)
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
