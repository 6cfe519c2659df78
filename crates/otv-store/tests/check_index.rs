//! SQLite keeps the consent checks by patient in an index file beside the database
//! (`<database>-checks`, see `src/sqlite/checks.rs`). It is derived from the audit log: the
//! history stays exact when the file is deleted or stale, and the file is rebuilt.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use std::path::Path;

use otv_store::{Period, Store};
use sqlx::{Connection, SqliteConnection};
use support::{bsn, consent_check, open_sqlite_file};

async fn decisions(store: &Store, who: u32) -> Vec<String> {
    let h = store
        .history(&bsn(who), &Period::default(), 50)
        .await
        .unwrap();
    h.checks.into_iter().map(|c| c.decision).collect()
}

/// A consistent copy of a live SQLite file (what a backup makes).
async fn copy(from: &Path, to: &Path) {
    let mut conn = raw(from).await;
    sqlx::query("VACUUM INTO ?")
        .bind(to.to_str().unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deleted_index_file_is_rebuilt_and_the_history_never_misses_a_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otv.sqlite");
    let store = open_sqlite_file(&file).await;
    for decision in ["permit", "deny"] {
        store
            .audit(&consent_check(&store, 1, decision))
            .await
            .unwrap();
    }
    store.index_consent_checks().await.unwrap();
    assert!(
        index_of(&file).exists(),
        "the index lives beside the database"
    );
    drop(store);

    // A fresh copy of the database without its index file.
    let moved = dir.path().join("moved.sqlite");
    copy(&file, &moved).await;
    assert!(!dir.path().join("moved.sqlite-checks").exists());
    let store = open_sqlite_file(&moved).await;
    assert_eq!(decisions(&store, 1).await, ["deny", "permit"]);
    store.index_consent_checks().await.unwrap();
    assert_eq!(decisions(&store, 1).await, ["deny", "permit"]);
    assert_eq!(index(&moved).await, log(&moved).await, "rebuilt");
}

#[tokio::test]
async fn an_index_ahead_of_a_restored_database_is_rebuilt_and_shows_no_lost_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otv.sqlite");
    let store = open_sqlite_file(&file).await;
    store
        .audit(&consent_check(&store, 1, "permit"))
        .await
        .unwrap();
    store.index_consent_checks().await.unwrap();
    let backup = dir.path().join("backup.sqlite");
    copy(&file, &backup).await;
    // After the backup: checks about citizen 1 that the restore loses, all in the index.
    for decision in ["deny", "deny", "deny"] {
        store
            .audit(&consent_check(&store, 1, decision))
            .await
            .unwrap();
    }
    store.index_consent_checks().await.unwrap();
    assert_eq!(
        decisions(&store, 1).await,
        ["deny", "deny", "deny", "permit"]
    );

    // Restored: the backup, with the index file as it was at the failure.
    let restored = dir.path().join("restored.sqlite");
    copy(&backup, &restored).await;
    copy(&index_of(&file), &index_of(&restored)).await;
    drop(store);
    let store = open_sqlite_file(&restored).await;
    // The restored log goes on with other records at the lost records' numbers.
    store
        .audit(&consent_check(&store, 2, "permit"))
        .await
        .unwrap();
    store
        .audit(&consent_check(&store, 1, "indeterminate"))
        .await
        .unwrap();
    assert_eq!(decisions(&store, 1).await, ["indeterminate", "permit"]);
    assert_eq!(decisions(&store, 2).await, ["permit"]);
    store.index_consent_checks().await.unwrap();
    assert_eq!(index(&restored).await, log(&restored).await, "rebuilt");
    assert_eq!(decisions(&store, 1).await, ["indeterminate", "permit"]);
    assert_eq!(decisions(&store, 2).await, ["permit"]);
}

/// The index file's cursor and the checks it holds, as (sequence number, pseudonym in hex).
async fn index(database: &Path) -> (i64, Vec<(i64, String)>) {
    read(
        &index_of(database),
        "SELECT seq FROM cursor",
        "SELECT seq, hex(patient) FROM checks ORDER BY seq",
    )
    .await
}

/// The audit log's head and its consent checks, as [`index`] gives them.
async fn log(database: &Path) -> (i64, Vec<(i64, String)>) {
    read(
        database,
        "SELECT max(seq) FROM audit_log",
        "SELECT seq, upper(patient) FROM audit_log WHERE event = 'closed-question' ORDER BY seq",
    )
    .await
}

/// A position and the checks in `file`, by the queries `position` and `checks`.
async fn read(file: &Path, position: &str, checks: &str) -> (i64, Vec<(i64, String)>) {
    let mut conn = raw(file).await;
    let at = sqlx::query_scalar(sqlx::AssertSqlSafe(position))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(checks))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    (at, rows)
}

async fn raw(file: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap()
}

fn index_of(database: &Path) -> std::path::PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-checks");
    name.into()
}
