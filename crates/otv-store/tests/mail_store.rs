//! Citizen e-mail bookkeeping in the store, on every backend: the contact and settings a mail
//! is decided on, the scan of the audit log for consent checks (immediate mails and daily
//! digests), the digest once a day, and mails queued at most once.
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store --test mail_store`.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use chrono::{Duration, Utc};
use otv_core::Bsn;
use otv_store::{
    AuditEvent, CheckMail, CheckNotice, CitizenDetails, DigestMail, EmailVerification,
    MAIL_CHECK_DIGEST, MAIL_CONSENT_CHECK, SettingsChange, Store,
};
use support::{backends, bsn};

fn event(name: &str) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        event: name.into(),
        actor: "citizen".into(),
        channel: Some("portal".into()),
        ..Default::default()
    }
}

/// Gives the citizen an address (verified or not) and the choice for checks.
async fn with_address(store: &Store, who: &Bsn, token: u8, checks: CheckNotice, verify: bool) {
    let request = EmailVerification {
        address: "burger@example.nl",
        token_sha256: [token; 32],
        expires_at: Utc::now() + Duration::hours(24),
        link: "https://otv.example/e-mail/bevestigen?token=abc",
    };
    store
        .request_email_verification(who, &request, &event("email-set"))
        .await
        .unwrap();
    let change = SettingsChange {
        notify_checks: Some(checks),
        ..SettingsChange::default()
    };
    store
        .update_citizen_settings(who, &change, &event("settings"))
        .await
        .unwrap();
    if verify {
        store
            .confirm_email(who, &[token; 32], Utc::now(), &event("email-verify"))
            .await
            .unwrap();
    }
}

/// A closed question about `who`, decided by an emergency consent or not.
async fn closed_question(store: &Store, who: &Bsn, emergency: bool) {
    let channel = if emergency {
        "raadplegersknop"
    } else {
        "portal"
    };
    store
        .audit(&AuditEvent {
            at: Utc::now(),
            event: "closed-question".into(),
            patient: Some(store.patient_reference(who)),
            actor: "uzi:900010001 role:01.015".into(),
            organisation: Some("00000001".into()),
            decision: Some("permit".into()),
            emergency,
            details: serde_json::json!({
                "consulter": {"ura": "00000002"},
                "results": [{"data_category": "GGC002", "decision": "permit",
                             "deciding": {"channel": channel}}],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn consent_checks_become_immediate_mails_and_daily_digests_for_who_wants_them() {
    for t in backends().await {
        let s = &t.store;
        let (daily, immediate, off, unverified) = (bsn(1), bsn(2), bsn(3), bsn(4));
        with_address(s, &daily, 1, CheckNotice::Daily, true).await;
        with_address(s, &immediate, 2, CheckNotice::Immediately, true).await;
        with_address(s, &off, 3, CheckNotice::Off, true).await;
        with_address(s, &unverified, 4, CheckNotice::Immediately, false).await;

        let id = s
            .upsert_citizen(&immediate, &CitizenDetails::default())
            .await
            .unwrap();
        let contact = s.mail_contact(id).await.unwrap().unwrap();
        assert!(contact.verified, "{}", t.kind());
        assert_eq!(contact.email.as_deref(), Some("burger@example.nl"));
        assert_eq!(contact.notify_checks, CheckNotice::Immediately);
        assert!(contact.notify_changes, "on by default");
        assert_eq!(s.mail_contact(uuid::Uuid::now_v7()).await.unwrap(), None);

        // Checks before the first scan are not announced: it only sets the cursor.
        closed_question(s, &immediate, false).await;
        let first = s.scan_consent_checks(100, Utc::now()).await.unwrap();
        assert!(first.caught_up);
        assert_eq!((first.checks, first.queued), (0, 0));

        for who in [&immediate, &immediate, &daily, &off, &unverified] {
            closed_question(s, who, false).await;
        }
        closed_question(s, &daily, true).await;
        // A small batch does not reach the head at once.
        let part = s.scan_consent_checks(1, Utc::now()).await.unwrap();
        assert!(!part.caught_up, "{}", t.kind());
        let rest = s.scan_consent_checks(100, Utc::now()).await.unwrap();
        assert!(rest.caught_up);
        assert_eq!(part.checks + rest.checks, 4, "{}", t.kind());
        let mails = t
            .int(&format!(
                "SELECT count(*) FROM outbox WHERE kind = '{MAIL_CONSENT_CHECK}'"
            ))
            .await;
        assert_eq!(mails as u64, part.queued + rest.queued);
        let payloads = t
            .text(&format!(
                "SELECT payload FROM outbox WHERE kind = '{MAIL_CONSENT_CHECK}' ORDER BY created_at LIMIT 1"
            ))
            .await
            .unwrap();
        let mail: CheckMail = serde_json::from_str(&payloads).unwrap();
        assert!(!mail.checks.is_empty() && !mail.checks[0].emergency);
        // Nothing new: nothing queued.
        let again = s.scan_consent_checks(100, Utc::now()).await.unwrap();
        assert_eq!((again.checks, again.queued), (0, 0));

        // The digest goes out once per day.
        let today = Utc::now().date_naive();
        assert_eq!(
            s.take_check_digests(today, false, Utc::now())
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.take_check_digests(today, false, Utc::now())
                .await
                .unwrap(),
            0
        );
        let digest: DigestMail = serde_json::from_str(
            &t.text(&format!(
                "SELECT payload FROM outbox WHERE kind = '{MAIL_CHECK_DIGEST}'"
            ))
            .await
            .unwrap(),
        )
        .unwrap();
        assert_eq!((digest.checks, digest.emergency), (2, 1), "{}", t.kind());
        assert!(digest.from <= digest.until);
        // Forced, it runs again, with nothing waiting.
        assert_eq!(
            s.take_check_digests(today, true, Utc::now()).await.unwrap(),
            0
        );
        // No BSN in any payload.
        for who in [&daily, &immediate, &off, &unverified] {
            let n = t
                .int(&format!(
                    "SELECT count(*) FROM outbox WHERE payload LIKE '%{}%'",
                    who.expose()
                ))
                .await;
            assert_eq!(n, 0);
        }
    }
}

#[tokio::test]
async fn a_mail_queued_once_is_queued_once() {
    for t in backends().await {
        let s = &t.store;
        let id = s
            .upsert_citizen(&bsn(9), &CitizenDetails::default())
            .await
            .unwrap();
        let later = Utc::now() + Duration::hours(60);
        let once = |key: &'static str| {
            let s = s.clone();
            async move {
                s.enqueue_mail_once(id, "mail-emergency-expiry", key, "{}", later)
                    .await
                    .unwrap()
            }
        };
        assert!(once("17").await);
        assert!(!once("17").await, "{}", t.kind());
        assert!(once("18").await);
        let n = t
            .int("SELECT count(*) FROM outbox WHERE kind = 'mail-emergency-expiry'")
            .await;
        assert_eq!(n, 2);
    }
}
