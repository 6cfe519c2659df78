//! The citizen portal's core through the real binary over HTTP, with the development login, on
//! SQLite and PostgreSQL: login, terms of use (and re-acceptance after a new version), the
//! wizard (all / certain / none, the EU category apart) and the overview, checked against the
//! closed question; representatives; minors' answers pending; CSRF and cross-site refusals;
//! one citizen never reaching another's data; the idle timeout; the development login only
//! behind its flag; the security headers.

use std::time::Duration;

use reqwest::header::SET_COOKIE;

use crate::portal_client::{
    Browser, DevLogin, accept_terms, authzen_permits, choose, count, dev_login, hidden, login,
    start,
};
use crate::support::{Server, databases};

/// Form fields or headers, as name and value.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

/// A valid BSN (11-test) for test citizen `i`: prefix `91` and seven digits, check digit
/// computed (prefixes whose check digit would be 10 are skipped).
fn citizen(i: u32) -> String {
    let mut n = 9_100_000 + i * 7;
    loop {
        let prefix = format!("{:08}", n);
        let sum: u32 = prefix
            .bytes()
            .zip((2..=9).rev())
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        let check = sum % 11;
        if check < 10 {
            return format!("{prefix}{check}");
        }
        n += 1;
    }
}

const GP: (&str, &str) = ("00000001", "Z3");
const PHARMACY: (&str, &str) = ("00000010", "J8");

#[tokio::test]
async fn login_terms_wizard_and_overview_decide_the_closed_question() {
    for db in databases().await {
        let server = start(&db, &[]);
        let bsn = citizen(1);
        let mut b = Browser::new(&server);

        // Not logged in: every page goes to the login page.
        assert_eq!(
            b.get("/keuzes").await.location.as_deref(),
            Some("/inloggen")
        );
        // A BSN that fails the 11-test is refused, naming the field.
        let form = b.get("/inloggen").await;
        let bad = b
            .post_form(
                "/inloggen/ontwikkel",
                &[("csrf", &hidden(&form.body, "csrf")), ("bsn", "123456789")],
            )
            .await;
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("href=\"#bsn\""), "{}", bad.body);
        assert!(bad.body.contains("elfproef"));
        assert!(!b.jar.contains_key("otv_session"));

        // Login leads to the terms, and no other page opens before they are accepted.
        let landed = dev_login(&mut b, DevLogin::new(&bsn).name("Ans de Vries")).await;
        assert_eq!(landed.location.as_deref(), Some("/voorwaarden"));
        assert_eq!(
            b.get("/keuzes").await.location.as_deref(),
            Some("/voorwaarden")
        );
        assert_eq!(
            b.get("/keuzes/wijzigen").await.location.as_deref(),
            Some("/voorwaarden")
        );
        accept_terms(&mut b).await;
        let (_, overview) = b.open("/keuzes").await;
        assert_eq!(overview.status, 200);
        assert!(
            overview.body.contains("Ans de Vries"),
            "the header names who is logged in"
        );
        assert!(overview.body.contains("U hebt nog geen keuzes vastgelegd."));
        assert!(
            overview.body.contains("Dan geldt: nee"),
            "no answer means no (opt-in)"
        );
        assert!(!overview.body.contains(&bsn), "never the BSN on a page");
        assert!(!authzen_permits(&server, &bsn, GP, "GGC002").await);

        // All: yes everywhere except the EU category, which is asked apart.
        let saved = choose(&mut b, "all", &[], "no").await;
        assert!(
            saved.body.contains("Uw keuzes zijn opgeslagen"),
            "{}",
            saved.body
        );
        assert!(
            saved.body.contains("href=\"/bewijs/"),
            "a receipt link: {}",
            saved.body
        );
        assert!(authzen_permits(&server, &bsn, GP, "GGC002").await);
        assert!(authzen_permits(&server, &bsn, PHARMACY, "GGC013").await);
        let (_, overview) = b.open("/keuzes").await;
        assert!(
            overview.body.contains("Al uw zorgaanbieders mogen"),
            "{}",
            overview.body
        );

        // The same again changes nothing.
        let again = choose(&mut b, "all", &[], "no").await;
        assert!(
            again.body.contains("Er is niets veranderd"),
            "{}",
            again.body
        );

        // None: no everywhere.
        choose(&mut b, "none", &[], "").await;
        assert!(!authzen_permits(&server, &bsn, GP, "GGC002").await);
        assert!(!authzen_permits(&server, &bsn, PHARMACY, "GGC013").await);
        let (_, overview) = b.open("/keuzes").await;
        assert!(overview.body.contains("Geen enkele zorgaanbieder mag"));

        // Certain: only GPs to GPs; the rest stays no.
        let saved = choose(
            &mut b,
            "certain",
            &[("o.DH-HA.GGC002.RPZAC001", "yes")],
            "yes",
        )
        .await;
        assert!(saved.body.contains("Uw keuzes zijn opgeslagen"));
        assert!(authzen_permits(&server, &bsn, GP, "GGC002").await);
        assert!(!authzen_permits(&server, &bsn, PHARMACY, "GGC013").await);
        let (_, overview) = b.open("/keuzes").await;
        assert!(overview.body.contains("Bepaalde zorgaanbieders mogen"));

        // In English on request, and it stays so.
        let (_, en) = b.open("/keuzes?lang=en").await;
        assert!(en.body.contains("<html lang=\"en\">"));
        assert!(
            en.body.contains("Certain care providers may"),
            "{}",
            en.body
        );
        let (_, still) = b.open("/keuzes/wijzigen").await;
        assert!(still.body.contains("Which choice suits you?"));
        b.open("/keuzes?lang=nl").await;

        // Every change went through the audit chain as the citizen, in the portal.
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM audit_log WHERE event = 'profile-change' AND actor = 'citizen' AND channel = 'portal'"
            )
            .await,
            3
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM audit_log WHERE event = 'portal-login'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM audit_log WHERE event = 'terms-accepted'"
            )
            .await,
            1
        );

        // Logout ends the session (a POST with the token).
        let (_, page) = b.open("/keuzes").await;
        let out = b
            .post_form("/uitloggen", &[("csrf", &hidden(&page.body, "csrf"))])
            .await;
        assert_eq!(out.location.as_deref(), Some("/inloggen?uitgelogd=1"));
        assert_eq!(
            b.get("/keuzes").await.location.as_deref(),
            Some("/inloggen")
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM audit_log WHERE event = 'portal-logout'"
            )
            .await,
            1
        );
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn forms_without_the_token_or_from_another_site_are_refused_and_change_nothing() {
    for db in databases().await {
        let server = start(&db, &[]);
        let bsn = citizen(2);
        let mut b = login(&server, DevLogin::new(&bsn)).await;
        choose(&mut b, "all", &[], "no").await;
        let (_, page) = b.open("/keuzes/wijzigen").await;
        let token = hidden(&page.body, "csrf");
        let attempts: Vec<(Pairs, Pairs)> = vec![
            (vec![("choice", "none")], vec![]),
            (vec![("csrf", "not-the-token"), ("choice", "none")], vec![]),
            (
                vec![("csrf", &token), ("choice", "none")],
                vec![("sec-fetch-site", "cross-site")],
            ),
            (
                vec![("csrf", &token), ("choice", "none")],
                vec![("sec-fetch-site", "same-site")],
            ),
            (
                vec![("csrf", &token), ("choice", "none")],
                vec![("origin", "http://evil.example")],
            ),
            (
                vec![("csrf", &token), ("choice", "none")],
                vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
            ),
            (
                vec![("choice", "none")],
                vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
            ),
        ];
        for (fields, headers) in &attempts {
            let refused = b.post_with("/keuzes/wijzigen", fields, headers).await;
            assert_eq!(refused.status, 403, "{fields:?} {headers:?}");
            assert!(
                refused.body.contains("Dit formulier is niet geaccepteerd"),
                "a readable page"
            );
            assert!(refused.body.contains("Er is niets veranderd"));
        }
        // Without the session cookie (SameSite=Lax keeps it from another site's post), a
        // cross-site post is still refused as such, not sent to the login page.
        let mut stranger = Browser::new(&server);
        let refused = stranger
            .post_with(
                "/keuzes/wijzigen",
                &[("csrf", &token), ("choice", "none")],
                &[("sec-fetch-site", "cross-site")],
            )
            .await;
        assert_eq!(refused.status, 403);
        // The EU step and logout are guarded the same way.
        let refused = b
            .post_with(
                "/keuzes/wijzigen/europa",
                &[("csrf", &token), ("choice", "all"), ("eu", "yes")],
                &[("sec-fetch-site", "cross-site")],
            )
            .await;
        assert_eq!(refused.status, 403);
        assert_eq!(
            b.post_form("/uitloggen", &[("csrf", "x")]).await.status,
            403
        );
        // Nothing changed: still all yes, EU no, and still logged in.
        assert!(authzen_permits(&server, &bsn, GP, "GGC002").await);
        let (path, overview) = b.open("/keuzes").await;
        assert_eq!(path, "/keuzes");
        assert!(overview.body.contains("Al uw zorgaanbieders mogen"));
        assert_eq!(
            count(&db, "SELECT count(*) FROM audit_log WHERE event = 'profile-change' AND channel = 'portal' AND actor = 'citizen'").await,
            1
        );
        // The right token from the same site works: with its Origin, or with `Origin: null`
        // (what a browser sends from a page with `Referrer-Policy: no-referrer`).
        let host = server.url("").trim_end_matches('/').to_owned();
        for origin in [host.as_str(), "null"] {
            let ok = b
                .post_with(
                    "/keuzes/wijzigen",
                    &[("csrf", &token), ("choice", "all")],
                    &[("sec-fetch-site", "same-origin"), ("origin", origin)],
                )
                .await;
            assert_eq!(ok.status, 200, "{origin}: {}", ok.body);
            assert!(
                ok.body.contains("name=\"eu\""),
                "{origin}: on to the EU step"
            );
        }
        let ok = b
            .post_with(
                "/keuzes/wijzigen",
                &[("csrf", &token), ("choice", "none")],
                &[("sec-fetch-site", "same-origin"), ("origin", "null")],
            )
            .await;
        assert_eq!(ok.status, 303, "{}", ok.body);
        assert!(!authzen_permits(&server, &bsn, GP, "GGC002").await);
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn one_citizen_never_reads_or_changes_another_citizens_data() {
    for db in databases().await {
        let server = start(&db, &[]);
        let (a_bsn, b_bsn) = (citizen(3), citizen(4));
        let mut a = login(&server, DevLogin::new(&a_bsn).name("Alice Aarts")).await;
        let mut b = login(&server, DevLogin::new(&b_bsn).name("Bob Bakker")).await;
        let saved = choose(&mut b, "all", &[], "yes").await;
        let b_receipt = saved
            .body
            .split("href=\"/bewijs/")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let (_, b_page) = b.open("/keuzes").await;
        let b_token = hidden(&b_page.body, "csrf");

        // A tries every page, with B's number and B's change in the URL.
        let paths = [
            format!("/keuzes?bsn={b_bsn}"),
            format!("/keuzes/wijzigen?bsn={b_bsn}"),
            format!("/wie-volgt-mij?bsn={b_bsn}"),
            format!("/keuzes/opgeslagen?wijziging={b_receipt}"),
            format!("/keuzes/wijzigen/europa?bsn={b_bsn}"),
            "/zorgaanbieders?q=Bakker".to_owned(),
            "/voorwaarden".to_owned(),
        ];
        for path in &paths {
            let (_, page) = a.open(path).await;
            assert!(!page.body.contains("Bob Bakker"), "{path} shows B");
            assert!(!page.body.contains(&b_bsn), "{path} shows B's number");
            assert!(
                !page.body.contains(&format!("/bewijs/{b_receipt}")),
                "{path} links B's receipt"
            );
        }
        let (_, saved_elsewhere) = a
            .open(&format!("/keuzes/opgeslagen?wijziging={b_receipt}"))
            .await;
        assert!(saved_elsewhere.body.contains("Er is niets veranderd"));
        assert_eq!(a.get(&format!("/bewijs/{b_receipt}")).await.status, 404);

        // A posts with B's number and B's token: B's token is refused; A's own changes only A.
        let refused = a
            .post_form(
                "/keuzes/wijzigen",
                &[("csrf", &b_token), ("choice", "none"), ("bsn", &b_bsn)],
            )
            .await;
        assert_eq!(refused.status, 403);
        let (_, a_page) = a.open("/keuzes/wijzigen").await;
        let a_token = hidden(&a_page.body, "csrf");
        let done = a
            .post_form(
                "/keuzes/wijzigen",
                &[("csrf", &a_token), ("choice", "none"), ("bsn", &b_bsn)],
            )
            .await;
        assert_eq!(done.status, 303);
        assert!(
            authzen_permits(&server, &b_bsn, GP, "GGC002").await,
            "B's choices stand"
        );
        assert!(!authzen_permits(&server, &a_bsn, GP, "GGC002").await);
        // B's session cookie value never works for A's forms and vice versa: A's cookie with
        // B's token was refused above; B still sees B's own overview.
        let (_, b_overview) = b.open("/keuzes").await;
        assert!(b_overview.body.contains("Bob Bakker"));
        assert!(b_overview.body.contains("Al uw zorgaanbieders mogen"));
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_representative_manages_the_represented_profile_and_the_citizen_is_notified() {
    for db in databases().await {
        let server = start(&db, &[]);
        let (rep, represented) = (citizen(5), citizen(6));
        let mut r = login(
            &server,
            DevLogin::new(&rep)
                .name("Rob Vertegenwoordiger")
                .acting_for(&represented),
        )
        .await;
        let (_, overview) = r.open("/keuzes").await;
        assert!(
            overview.body.contains("U regelt dit voor"),
            "{}",
            overview.body
        );
        assert!(overview.body.contains(&format!("..{}", &represented[7..])));
        assert!(!overview.body.contains(&represented));
        let outbox_before = count(
            &db,
            "SELECT count(*) FROM outbox WHERE kind = 'profile-changed'",
        )
        .await;
        let saved = choose(&mut r, "all", &[], "no").await;
        assert!(
            saved
                .body
                .contains("Wij laten de persoon voor wie u dit regelt weten")
        );
        // The represented citizen's profile changed, not the representative's.
        assert!(authzen_permits(&server, &represented, GP, "GGC002").await);
        assert!(!authzen_permits(&server, &rep, GP, "GGC002").await);
        // Recorded as the representative, with an outbox row for the represented citizen.
        assert_eq!(
            count(&db, "SELECT count(*) FROM audit_log WHERE event = 'profile-change' AND channel = 'representative' AND actor LIKE 'representative:%'").await,
            1
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM answers WHERE channel = 'representative' AND superseded_at IS NULL").await,
            49
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM outbox WHERE kind = 'profile-changed'"
            )
            .await,
            outbox_before + 1
        );
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn answers_of_a_citizen_under_16_wait_for_a_guardian_and_permit_nothing() {
    for db in databases().await {
        let server = start(&db, &[]);
        let child = citizen(7);
        let born = (chrono::Utc::now().date_naive() - chrono::Duration::days(13 * 366)).to_string();
        let mut c = login(&server, DevLogin::new(&child).born(&born)).await;
        let (_, step1) = c.open("/keuzes/wijzigen").await;
        assert!(step1.body.contains("jonger dan 16"), "{}", step1.body);
        let saved = choose(&mut c, "all", &[], "no").await;
        assert!(
            saved
                .body
                .contains("pas als uw ouder of voogd ze bevestigt"),
            "{}",
            saved.body
        );
        assert!(
            !authzen_permits(&server, &child, GP, "GGC002").await,
            "pending answers permit nothing"
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM answers WHERE state = 'pending-guardian'"
            )
            .await,
            49
        );
        let (_, overview) = c.open("/keuzes").await;
        assert!(
            overview.body.contains("Wacht op bevestiging"),
            "{}",
            overview.body
        );
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_new_terms_version_must_be_accepted_again() {
    for db in databases().await {
        let bsn = citizen(8);
        let server = start(&db, &[]);
        let b = login(&server, DevLogin::new(&bsn)).await;
        drop(b);
        server.stop();
        // The same version: straight to the overview.
        let server = start(&db, &[]);
        let mut b = Browser::new(&server);
        assert_eq!(
            dev_login(&mut b, DevLogin::new(&bsn))
                .await
                .location
                .as_deref(),
            Some("/keuzes")
        );
        server.stop();
        // A new version: the terms again, before anything else.
        let server = start(&db, &[("OTV_PORTAL_TERMS_VERSION", "2027-01")]);
        let mut b = Browser::new(&server);
        assert_eq!(
            dev_login(&mut b, DevLogin::new(&bsn))
                .await
                .location
                .as_deref(),
            Some("/voorwaarden")
        );
        assert_eq!(
            b.get("/keuzes").await.location.as_deref(),
            Some("/voorwaarden")
        );
        let (_, terms) = b.open("/voorwaarden").await;
        assert!(terms.body.contains("2027-01"));
        accept_terms(&mut b).await;
        assert_eq!(b.open("/keuzes").await.0, "/keuzes");
        assert_eq!(
            count(&db, "SELECT count(*) FROM terms_acceptances").await,
            2,
            "one per version"
        );
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_idle_session_ends() {
    for db in databases().await {
        let server = start(&db, &[("OTV_PORTAL_IDLE_TIMEOUT_SECS", "2")]);
        let mut b = login(&server, DevLogin::new(&citizen(9))).await;
        tokio::time::sleep(Duration::from_millis(4000)).await;
        let expired = b.get("/keuzes").await;
        assert_eq!(expired.location.as_deref(), Some("/inloggen?verlopen=1"));
        let (_, page) = b.open("/inloggen?verlopen=1").await;
        assert!(page.body.contains("Log opnieuw in"), "{}", page.body);
        assert_eq!(
            b.get("/keuzes").await.location.as_deref(),
            Some("/inloggen")
        );
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_development_login_exists_only_behind_its_flag_and_says_so() {
    for db in databases().await {
        let server = Server::start_with(&db, &["--demo"], &[]);
        let mut b = Browser::new(&server);
        let page = b.get("/inloggen").await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("/inloggen/ontwikkel"));
        assert!(!page.body.contains("Ontwikkelomgeving"));
        let refused = b
            .post_form(
                "/inloggen/ontwikkel",
                &[("csrf", "x"), ("bsn", "900203638")],
            )
            .await;
        assert_eq!(refused.status, 404);
        assert!(!b.jar.contains_key("otv_session"));
        server.stop();

        let server = Server::start_with(&db, &["--demo", "--dev-login"], &[]);
        let mut b = login(&server, DevLogin::new(&citizen(10))).await;
        for path in [
            "/inloggen",
            "/keuzes",
            "/keuzes/wijzigen",
            "/wie-volgt-mij",
            "/zorgaanbieders",
            "/voorwaarden",
            "/bestaat-niet-maar-portaal",
        ] {
            let (_, page) = b.open(path).await;
            if page.status == 404 && page.body.is_empty() {
                continue; // not a portal page
            }
            assert!(
                page.body.contains("Ontwikkelomgeving"),
                "{path}: {}",
                page.body
            );
        }
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn portal_responses_carry_the_security_headers() {
    for db in databases().await {
        let server = start(&db, &[]);
        let mut anonymous = Browser::new(&server);
        let login_page = anonymous.get("/inloggen").await;
        let mut b = login(&server, DevLogin::new(&citizen(11))).await;
        let overview = b.get("/keuzes").await;
        let refused = b.post_form("/keuzes/wijzigen", &[("choice", "all")]).await;
        for (what, page) in [
            ("login", &login_page),
            ("overview", &overview),
            ("403", &refused),
        ] {
            let h = |name: &str| {
                page.headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            };
            let csp = h("content-security-policy");
            assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
            assert!(csp.contains("style-src 'self'"), "{what}");
            assert!(csp.contains("frame-ancestors 'none'"), "{what}");
            assert!(csp.contains("form-action 'self'"), "{what}");
            assert!(!csp.contains("unsafe-inline"), "{what}");
            assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
            assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
            assert_eq!(h("cache-control"), "no-store", "{what}");
            assert!(!page.body.contains("<script"), "{what}: no JavaScript");
        }
        let session_cookie = b
            .post_form(
                "/inloggen/ontwikkel",
                &[("csrf", "x"), ("bsn", &citizen(11))],
            )
            .await;
        assert_eq!(session_cookie.status, 403, "a login form without its token");
        let mut fresh = Browser::new(&server);
        let landed = dev_login(&mut fresh, DevLogin::new(&citizen(11))).await;
        let cookie = landed
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|c| c.starts_with("otv_session="))
            .unwrap()
            .to_owned();
        for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let css = fresh.get("/static/portal.css").await;
        assert_eq!(css.status, 200);
        assert!(
            css.headers
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("text/css")
        );
        server.stop();
        db.cleanup().await;
    }
}
