//! Crash safety of the outbox (PRODUCT.md §11): the server is killed with SIGKILL while a
//! notification is on its way (the receiver holds the request without answering), then started
//! again on the same database. The notification is not lost: when the dead worker's lease ends
//! it goes out again, with the same Bundle id, and a change made after the restart follows it
//! in order.

use std::time::Duration;

use crate::notify::{PATIENT, Receiver, Sandbox, change, statuses};
use crate::support::databases;

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_in_flight_when_the_server_is_killed_arrives_after_the_restart_with_the_same_id()
 {
    for db in databases().await {
        let sandbox = Sandbox::new();
        let receiver = Receiver::start(&sandbox.dir).await;
        // A short lease, so that the killed node's row comes back quickly.
        let env = [("OTV_NOTIFY_LEASE_SECS", "3")];
        let server = sandbox.start(&db, &receiver, &env);
        sandbox
            .subscribe(
                &server,
                "demo-lsp",
                ("00000001", "Z3"),
                "2.16.840.1.113883.2.4.6.6.90000017",
                &receiver.url("/hook/lsp/gp"),
                "application/fhir+json",
            )
            .await;

        receiver.behaviour.lock().unwrap().stall = true;
        change(&server, "all").await;
        let stalled = receiver
            .wait_for("the first delivery attempt", |got| !got.is_empty())
            .await;
        let in_flight = stalled[0].bundle_id.clone();

        // SIGKILL (dropping a running Server kills it) in the middle of the delivery.
        drop(server);
        receiver.behaviour.lock().unwrap().stall = false;
        tokio::time::sleep(Duration::from_millis(200)).await;

        let server = sandbox.start(&db, &receiver, &env);
        change(&server, "none").await;
        let got = receiver
            .wait_for("both notifications answered", |got| {
                got.iter().filter(|r| r.answered_ok).count() >= 2
            })
            .await;
        let delivered: Vec<_> = got.iter().filter(|r| r.answered_ok).collect();
        assert_eq!(
            delivered[0].bundle_id, in_flight,
            "the notification in flight is delivered again, first, with the same Bundle id"
        );
        assert!(statuses(delivered[0]).contains(&"active".to_owned()));
        assert!(statuses(delivered[1]).iter().all(|s| s == "inactive"));
        // Every request with the same Bundle id carries the same Bundle.
        for r in &got {
            if r.bundle_id == in_flight {
                assert_eq!(r.body, stalled[0].body);
            }
        }
        assert!(
            got.iter()
                .map(|r| &r.bundle_id)
                .collect::<std::collections::HashSet<_>>()
                .len()
                == 2,
            "exactly two distinct notifications: {got:#?}"
        );

        let logs = server.stop();
        assert!(!logs.contains(PATIENT), "the BSN is in the logs");
        db.cleanup().await;
    }
}
