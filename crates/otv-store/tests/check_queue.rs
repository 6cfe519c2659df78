//! SQLite queues the records of consent checks in a file beside the database
//! (`<database>-queue`, see `src/sqlite/check_queue.rs`) and moves them into the audit chain
//! about once a second. Every read of the log sees them at once, and each joins the chain
//! exactly once: across restarts, after a crash between the move and the queue's clean-up, and
//! when the queue file is replaced.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use std::path::{Path, PathBuf};

use otv_store::{Period, Store};
use sqlx::{Connection, SqliteConnection};
use support::{bsn, consent_check, open_sqlite_file};

/// The chain verifies, and holds `expected` closed questions.
async fn assert_chain(store: &Store, file: &Path, expected: i64) {
    let report = store.audit_verify().await.unwrap();
    assert_eq!(report.first_broken, None, "the chain verifies");
    assert_eq!(
        count(
            file,
            "SELECT count(*) FROM audit_log WHERE event = 'closed-question'"
        )
        .await,
        expected,
        "each queued check is in the chain once"
    );
}

#[tokio::test]
async fn a_queued_check_is_in_the_history_and_the_chain_as_soon_as_it_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otv.sqlite");
    let store = open_sqlite_file(&file).await;
    for decision in ["permit", "deny", "indeterminate"] {
        store
            .audit_check(consent_check(&store, 1, decision))
            .await
            .unwrap();
    }
    store
        .audit_check(consent_check(&store, 2, "permit"))
        .await
        .unwrap();
    let history = store
        .history(&bsn(1), &Period::default(), 50)
        .await
        .unwrap();
    let decisions: Vec<_> = history.checks.into_iter().map(|c| c.decision).collect();
    assert_eq!(decisions, ["indeterminate", "deny", "permit"]);
    assert_chain(&store, &file, 4).await;
    assert!(
        queue_of(&file).exists(),
        "the queue lives beside the database"
    );
}

#[tokio::test]
async fn checks_queued_before_a_restart_join_the_chain_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otv.sqlite");
    let store = open_sqlite_file(&file).await;
    // More than one move's chunk, from many callers at once, and the store gone at once after.
    let asks = (0..2_500).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .audit_check(consent_check(&store, i % 7, "deny"))
                .await
        })
    });
    for ask in futures_util::future::join_all(asks).await {
        ask.unwrap().unwrap();
    }
    drop(store);

    for _ in 0..2 {
        let store = open_sqlite_file(&file).await;
        assert_chain(&store, &file, 2_500).await;
    }
}

#[tokio::test]
async fn a_crash_between_the_move_and_the_queues_clean_up_moves_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otv.sqlite");
    let store = open_sqlite_file(&file).await;
    for decision in ["permit", "deny"] {
        store
            .audit_check(consent_check(&store, 1, decision))
            .await
            .unwrap();
    }
    // In the chain now; the queue's writer removes moved rows only with its next batch.
    assert_chain(&store, &file, 2).await;
    drop(store);
    assert_eq!(
        count(&queue_of(&file), "SELECT count(*) FROM queue").await,
        2,
        "the moved rows are still queued, as after a crash before the clean-up"
    );

    let store = open_sqlite_file(&file).await;
    assert_chain(&store, &file, 2).await;
    store
        .audit_check(consent_check(&store, 1, "permit"))
        .await
        .unwrap();
    assert_eq!(
        count(&queue_of(&file), "SELECT count(*) FROM queue").await,
        2,
        "the next batch removed the moved rows but the newest (which keeps ids from repeating)"
    );
    let (moved, newest): (i64, i64) = (
        count(&file, "SELECT queue_moved FROM audit_head").await,
        count(&queue_of(&file), "SELECT max(id) FROM queue").await,
    );
    assert_eq!(
        (moved, newest),
        (2, 3),
        "a new row's id is above the moved ones"
    );
    assert_chain(&store, &file, 3).await;
}

#[tokio::test]
async fn a_new_queue_file_is_taken_from_its_first_row() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otv.sqlite");
    let store = open_sqlite_file(&file).await;
    store
        .audit_check(consent_check(&store, 1, "permit"))
        .await
        .unwrap();
    assert_chain(&store, &file, 1).await;
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = queue_of(&file).into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }

    let store = open_sqlite_file(&file).await;
    store
        .audit_check(consent_check(&store, 1, "deny"))
        .await
        .unwrap();
    assert_chain(&store, &file, 2).await;
}

async fn count(file: &Path, query: &str) -> i64 {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

fn queue_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-queue");
    name.into()
}
