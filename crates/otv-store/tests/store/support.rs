//! One helper, so that every test reads `for t in backends().await { … }` and runs the same
//! assertions against every backend: a fresh SQLite file always, and a fresh PostgreSQL database
//! when `OTV_TEST_DATABASE_URL` names a server (its own database per test, so tests run in
//! parallel; dropped again when the test ends).
//!
//! Besides the store, each backend gives raw SQL access to the same database, for the checks
//! that must look past the interface (what is stored at rest, tampering with the audit log).

use std::path::PathBuf;

use otv_core::Bsn;
use otv_store::{Keys, Store};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row};

/// A store under test and a raw connection to its database.
pub struct TestStore {
    pub store: Store,
    /// The URL the store was opened with (to open it again with other keys).
    pub url: String,
    raw: Raw,
    _cleanup: Cleanup,
}

enum Raw {
    Sqlite { pool: SqlitePool, file: PathBuf },
    Postgres(PgPool),
}

enum Cleanup {
    TempDir(#[allow(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    PgDatabase { admin_url: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::PgDatabase { admin_url, name } = self {
            // Drop runs inside the test's runtime, which cannot block on itself: use a thread
            // with a runtime of its own. FORCE ends the store's connections still open.
            let (admin_url, name) = (admin_url.clone(), name.clone());
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(admin) = PgPool::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(AssertSqlSafe(sql)).execute(&admin).await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Every backend, migrated, with the development keys.
pub async fn backends() -> Vec<TestStore> {
    backends_with(Keys::development()).await
}

/// Every backend, migrated, with `keys`.
pub async fn backends_with(keys: Keys) -> Vec<TestStore> {
    let mut out = vec![sqlite(keys.clone()).await];
    if let Ok(admin_url) = std::env::var("OTV_TEST_DATABASE_URL") {
        out.push(postgres(&admin_url, keys).await);
    }
    out
}

async fn sqlite(keys: Keys) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otv.sqlite");
    let url = format!("sqlite://{}", file.display());
    let store = otv_store::connect(&url, keys).await.unwrap();
    store.migrate().await.unwrap();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(&file))
        .await
        .unwrap();
    TestStore {
        store,
        url,
        raw: Raw::Sqlite { pool, file },
        _cleanup: Cleanup::TempDir(dir),
    }
}

async fn postgres(admin_url: &str, keys: Keys) -> TestStore {
    let name = format!("otv_t_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(admin_url)
        .await
        .expect("OTV_TEST_DATABASE_URL must name a reachable server");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let url = with_database(admin_url, &name);
    let cleanup = Cleanup::PgDatabase {
        admin_url: admin_url.to_owned(),
        name,
    };
    let store = otv_store::connect(&url, keys).await.unwrap();
    store.migrate().await.unwrap();
    let raw = PgPool::connect(&url).await.unwrap();
    TestStore {
        store,
        url,
        raw: Raw::Postgres(raw),
        _cleanup: cleanup,
    }
}

/// `postgres://user@host:port/db?params` with another `db`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, None), |(r, q)| (r, Some(q)));
    let authority = rest.split('/').next().unwrap();
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

impl TestStore {
    /// `sqlite` or `postgres`, for assertion messages.
    pub fn kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Runs a statement directly on the database; returns the rows affected.
    pub async fn exec(&self, sql: &str) -> u64 {
        let sql = AssertSqlSafe(sql.to_owned());
        let done = match &self.raw {
            Raw::Sqlite { pool, .. } => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        done.unwrap()
    }

    /// A single integer.
    pub async fn int(&self, sql: &str) -> i64 {
        match &self.raw {
            Raw::Sqlite { pool, .. } => sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                .fetch_one(pool)
                .await
                .unwrap(),
            Raw::Postgres(pool) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }

    /// A single, possibly NULL, text.
    pub async fn text(&self, sql: &str) -> Option<String> {
        match &self.raw {
            Raw::Sqlite { pool, .. } => sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                .fetch_one(pool)
                .await
                .unwrap(),
            Raw::Postgres(pool) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }

    /// A single blob / bytea.
    pub async fn bytes(&self, sql: &str) -> Vec<u8> {
        match &self.raw {
            Raw::Sqlite { pool, .. } => sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                .fetch_one(pool)
                .await
                .unwrap(),
            Raw::Postgres(pool) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }

    /// Every column of every citizens row, as the bytes the database holds (text as UTF-8).
    pub async fn citizen_columns(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        match &self.raw {
            Raw::Sqlite { pool, .. } => {
                let rows = sqlx::query(
                    "SELECT CAST(id AS BLOB), CAST(bsn_pseudonym AS BLOB), CAST(bsn_encrypted AS BLOB), \
                     CAST(name AS BLOB), CAST(email AS BLOB), CAST(birth_date AS BLOB), \
                     CAST(created_at AS BLOB), CAST(updated_at AS BLOB) FROM citizens",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for r in rows {
                    for i in 0..r.len() {
                        out.push(r.get::<Option<Vec<u8>>, _>(i).unwrap_or_default());
                    }
                }
            }
            Raw::Postgres(pool) => {
                let rows = sqlx::query(
                    "SELECT id::text::bytea, bsn_pseudonym, bsn_encrypted, convert_to(row_to_json(c)::text, 'UTF8') \
                     FROM citizens c",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for r in rows {
                    for i in 0..r.len() {
                        out.push(r.get::<Vec<u8>, _>(i));
                    }
                }
            }
        }
        out
    }

    /// For SQLite, the database files (main and write-ahead log).
    pub fn sqlite_files(&self) -> Vec<PathBuf> {
        match &self.raw {
            Raw::Sqlite { file, .. } => {
                let wal = PathBuf::from(format!("{}-wal", file.display()));
                [file.clone(), wal]
                    .into_iter()
                    .filter(|f| f.exists())
                    .collect()
            }
            Raw::Postgres(_) => Vec::new(),
        }
    }

    /// How `bsn_pseudonym` reads as lower-case hex in this backend's SQL.
    pub fn hex_sql(&self, column: &str) -> String {
        match &self.raw {
            Raw::Sqlite { .. } => format!("lower(hex({column}))"),
            Raw::Postgres(_) => format!("encode({column}, 'hex')"),
        }
    }
}

/// Valid, distinct BSNs for tests: the 8-digit prefix `10000000 + 2i` with its check digit,
/// or, when that check digit would be 10, the next (odd) prefix, whose check digit is then 1.
pub fn bsn(i: u32) -> Bsn {
    let check = |prefix: u32| {
        let sum: u32 = format!("{prefix:08}")
            .bytes()
            .zip((2..=9).rev())
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        sum % 11
    };
    let mut prefix = 10_000_000 + 2 * i;
    if check(prefix) == 10 {
        prefix += 1;
    }
    Bsn::parse(&format!("{prefix:08}{}", check(prefix))).expect("valid by construction")
}

/// A SQLite store on `file`, migrated (for tests about the files beside the database).
#[allow(
    dead_code,
    reason = "used by the tests of the files beside the database only"
)]
pub async fn open_sqlite_file(file: &std::path::Path) -> Store {
    let store = otv_store::connect(&format!("sqlite://{}", file.display()), Keys::development())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// The audit record of a closed question about citizen `who` with `decision`.
#[allow(
    dead_code,
    reason = "used by the tests of the files beside the database only"
)]
pub fn consent_check(store: &Store, who: u32, decision: &str) -> otv_store::AuditEvent {
    otv_store::AuditEvent {
        at: chrono::Utc::now(),
        event: "closed-question".into(),
        patient: Some(store.patient_reference(&bsn(who))),
        actor: "uzi:900010001 role:01.015".into(),
        organisation: Some("00000001".into()),
        decision: Some(decision.into()),
        details: serde_json::json!({
            "consulter": { "ura": "00000002" },
            "results": [{ "data_category": "GGC002", "decision": decision }],
        }),
        ..Default::default()
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
