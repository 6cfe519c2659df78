//! The portal tests' client: a browser without JavaScript over plain HTTP, the HTML it reads
//! (hidden fields, attributes, text by class), the flows every portal test walks (development
//! login, terms of use, the wizard), the closed question beside them, and counts in the test
//! database. Shared by `portal`, `portal_data` and `portal_minors`.

use std::collections::BTreeMap;

use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::{Db, Server};

/// A browser without JavaScript: follows no redirects by itself (`open` does), keeps cookies
/// by hand, by name (the portal's cookies are `Secure`, which a cookie store would not send
/// over the test's plain HTTP), and drops one set with `Max-Age=0`.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub jar: BTreeMap<String, String>,
}

/// A reply: status, `Location`, `Content-Type`, all headers and the body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url(""),
            jar: BTreeMap::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookies = self
            .jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = req.header(COOKIE, cookies).send().await.unwrap();
        for c in res.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let headers = res.headers().clone();
        let header = |name| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        Page {
            status: res.status().as_u16(),
            location: header(LOCATION),
            content_type: header(CONTENT_TYPE).unwrap_or_default(),
            body: res.text().await.unwrap(),
            headers,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// GET, following redirects: where it ended and what it showed.
    pub async fn open(&mut self, path: &str) -> (String, Page) {
        let mut path = path.to_owned();
        for _ in 0..5 {
            let page = self.get(&path).await;
            match page.location.clone() {
                Some(next) if page.status / 100 == 3 => path = next,
                _ => return (path, page),
            }
        }
        panic!("too many redirects from {path}");
    }

    /// POSTs `fields` as a form, with nothing else (no `Sec-Fetch-Site`, no `Origin`).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with(path, fields, &[]).await
    }

    /// POSTs `fields` as a form with extra request `headers`.
    pub async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(fields);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// GETs `page_path` (it must answer 200) and POSTs `fields` to `action` with that page's
    /// (first) CSRF token only, as a plain form post.
    pub async fn post_with_token(
        &mut self,
        page_path: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let page = self.get(page_path).await;
        assert_eq!(page.status, 200, "{page_path}: {}", page.body);
        let csrf = hidden(&page.body, "csrf");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_form(action, &all).await
    }

    /// Submits the form of the page at `page` whose action is `action`, as a browser does:
    /// see `submit_from`.
    pub async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let body = self.get(page).await.body;
        self.submit_from(&body, action, fields).await
    }

    /// Submits the form in `body` whose action is `action`, as a browser does: every hidden
    /// field of that form and `fields`, with `Sec-Fetch-Site: same-origin`.
    pub async fn submit_from(&mut self, body: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let hidden = hidden_fields(body, action);
        let mut all: Vec<(&str, &str)> = hidden
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend_from_slice(fields);
        self.post_with(action, &all, &[("sec-fetch-site", "same-origin")])
            .await
    }

    /// Logs in with the development login and accepts the terms of use when asked: ends with
    /// a session.
    pub async fn log_in(&mut self, who: DevLogin<'_>) {
        let landed = dev_login(self, who).await;
        assert_eq!(landed.status, 303, "{}", landed.body);
        if landed.location.as_deref() == Some("/voorwaarden") {
            accept_terms(self).await;
        }
        assert!(self.jar.contains_key("otv_session"));
    }
}

/// The value of the first hidden field `name` in `html` (as written: not unescaped).
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in:\n{html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The hidden fields (name, value) of the form posting to `action`.
pub fn hidden_fields(body: &str, action: &str) -> Vec<(String, String)> {
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

/// The value of attribute `name` in `tag` (`&#x2d;` read as `-`).
pub fn attribute(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let at = tag.find(&key).unwrap() + key.len();
    tag[at..at + tag[at..].find('"').unwrap()].replace("&#x2d;", "-")
}

/// The text of the first element with `class`.
pub fn text_of_class(body: &str, class: &str) -> String {
    let at = body
        .find(&format!("class=\"{class}\""))
        .unwrap_or_else(|| panic!("no {class} in:\n{body}"));
    let rest = &body[at..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find('<').unwrap()].trim().to_owned()
}

/// Who logs in with the development login: a BSN and, as typed in its form, a name, a birth
/// date and the BSN of someone acted for (empty when not given).
#[derive(Clone, Copy)]
pub struct DevLogin<'a> {
    bsn: &'a str,
    name: &'a str,
    birth_date: &'a str,
    acting_for: &'a str,
}

impl<'a> DevLogin<'a> {
    pub fn new(bsn: &'a str) -> DevLogin<'a> {
        DevLogin {
            bsn,
            name: "",
            birth_date: "",
            acting_for: "",
        }
    }

    pub fn name(self, name: &'a str) -> DevLogin<'a> {
        DevLogin { name, ..self }
    }

    /// Born on `date` (year-month-day).
    pub fn born(self, date: &'a str) -> DevLogin<'a> {
        DevLogin {
            birth_date: date,
            ..self
        }
    }

    pub fn acting_for(self, bsn: &'a str) -> DevLogin<'a> {
        DevLogin {
            acting_for: bsn,
            ..self
        }
    }
}

/// Fills in and submits the development login form (the login page must answer 200); returns
/// where it led.
pub async fn dev_login(b: &mut Browser, who: DevLogin<'_>) -> Page {
    let form = b.get("/inloggen").await;
    assert_eq!(form.status, 200, "{}", form.body);
    b.submit_from(
        &form.body,
        "/inloggen/ontwikkel",
        &[
            ("bsn", who.bsn),
            ("name", who.name),
            ("birth_date", who.birth_date),
            ("acting_for", who.acting_for),
        ],
    )
    .await
}

/// A new browser, logged in (terms accepted when asked): see `Browser::log_in`.
pub async fn login(server: &Server, who: DevLogin<'_>) -> Browser {
    let mut b = Browser::new(server);
    b.log_in(who).await;
    b
}

/// Opens the terms of use (no redirect on the way) and accepts them: on to the overview.
pub async fn accept_terms(b: &mut Browser) {
    let (path, terms) = b.open("/voorwaarden").await;
    assert_eq!(path, "/voorwaarden");
    let done = b.submit_from(&terms.body, "/voorwaarden", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/keuzes"), "{}", done.body);
}

/// Runs the wizard: `choice` (`all` / `none` / `certain` with `options` as `o.…` fields), then,
/// unless `none`, the EU step with `eu` (`yes`/`no`), sending back every hidden field of each
/// form. Returns the redirect that ends it (303 to `/keuzes/opgeslagen…`), not followed.
pub async fn record_choice(
    b: &mut Browser,
    choice: &str,
    options: &[(&str, &str)],
    eu: &str,
) -> Page {
    let (_, step1) = b.open("/keuzes/wijzigen").await;
    let mut next = b
        .submit_from(&step1.body, "/keuzes/wijzigen", &[("choice", choice)])
        .await;
    if choice == "certain" {
        assert_eq!(next.status, 200, "{}", next.body);
        next = b
            .submit_from(&next.body, "/keuzes/wijzigen/per-soort", options)
            .await;
    }
    if choice != "none" {
        assert_eq!(next.status, 200, "the EU question: {}", next.body);
        assert!(
            next.body.contains("name=\"eu\""),
            "the EU step: {}",
            next.body
        );
        next = b
            .submit_from(&next.body, "/keuzes/wijzigen/europa", &[("eu", eu)])
            .await;
    }
    assert_eq!(next.status, 303, "recording {choice}: {}", next.body);
    let target = next.location.as_deref().unwrap();
    assert!(target.starts_with("/keuzes/opgeslagen"), "{target}");
    next
}

/// `record_choice` for a choice that changes something: the redirect names the change
/// (`/keuzes/opgeslagen?wijziging=…`).
pub async fn record_change(b: &mut Browser, choice: &str, options: &[(&str, &str)], eu: &str) {
    let r = record_choice(b, choice, options, eu).await;
    assert!(
        r.location
            .as_deref()
            .unwrap()
            .starts_with("/keuzes/opgeslagen?wijziging="),
        "{:?}",
        r.location
    );
}

/// `record_choice`, then follows it: returns the confirmation page.
pub async fn choose(b: &mut Browser, choice: &str, options: &[(&str, &str)], eu: &str) -> Page {
    let done = record_choice(b, choice, options, eu).await;
    b.open(done.location.as_deref().unwrap()).await.1
}

/// Starts `otv serve --demo` with the development login (`OTV_PORTAL_DEV_LOGIN`), the plain
/// development provider listener, and `env`.
pub fn start(db: &Db, env: &[(&str, &str)]) -> Server {
    let mut all = vec![
        ("OTV_PORTAL_DEV_LOGIN", "true"),
        ("OTV_DEV_PLAIN_PROVIDER_HTTP", "true"),
    ];
    all.extend_from_slice(env);
    Server::start_with(db, &["--demo"], &all)
}

// --- The closed question, asked beside the portal on the development listener -------------

/// The AuthZEN decision (demo exchange system) for `bsn` about holder (URA, type) and
/// consulter GP post 00000002: `true` only for Permit.
pub async fn authzen_permits(
    server: &Server,
    bsn: &str,
    holder: (&str, &str),
    category: &str,
) -> bool {
    let body = json!({
        "subject": {"type": "professional", "id": "900010001", "properties": {
            "role": "01.015", "consulter_ura": "00000002", "consulter_organisation_type": "N6"}},
        "resource": {"type": "patient_record", "id": bsn, "properties": {
            "holder_ura": holder.0, "holder_organisation_type": holder.1, "data_category": category}},
        "action": {"name": "consult"},
        "context": {"purpose": "TREAT"},
    });
    let res = crate::support::http()
        .post(server.url("/access/v1/evaluation"))
        .header("x-otv-dev-connector", "demo-lsp")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["decision"].as_bool().unwrap()
}

/// The XACML (SOAP) closed question of holder GP 00000001 about consulter GP 00000002 for
/// `bsn` (demo exchange system): the decision.
pub async fn xacml_decision(server: &Server, bsn: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../otv-wire/tests/fixtures/mitz/closed-question-request.xml");
    let body = std::fs::read_to_string(path)
        .unwrap()
        .replace("900186021", bsn)
        .replace("00000659", "00000001")
        .replace("00000666", "00000002");
    let res = crate::support::http()
        .post(server.url("/geslotenautorisatievraag/xacml3"))
        .header("content-type", "application/soap+xml")
        .header("x-otv-dev-connector", "demo-lsp")
        .body(body)
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    text.split("<Decision>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_else(|| panic!("no decision in {text}"))
        .to_owned()
}

/// The plain JSON closed question about `bsn` (a GP asked about another GP, treatment data;
/// demo GP connector): `Permit` or `Deny`.
pub async fn json_decision(server: &Server, bsn: &str) -> String {
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

// --- The test database ----------------------------------------------------------------------

/// Runs `sql` (a count) on the test database.
pub async fn count(db: &Db, sql: &str) -> i64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if db.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// Counts the audit records matching `condition`.
pub async fn audit_count(db: &Db, condition: &str) -> i64 {
    count(
        db,
        &format!("SELECT count(*) FROM audit_log WHERE {condition}"),
    )
    .await
}
