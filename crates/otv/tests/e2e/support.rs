//! Test support: databases (SQLite always, PostgreSQL when `OTV_TEST_DATABASE_URL` is set) and
//! a running `otv serve` with its logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const OTV: &str = env!("CARGO_BIN_EXE_otv");

/// A database for one test: a SQLite file in a temp dir, or a fresh PostgreSQL database.
pub struct Db {
    pub url: String,
    /// Keys as environment variables (real keys; PostgreSQL refuses development keys).
    pub keys: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Db {
    /// Drops a PostgreSQL test database (SQLite files go with the temp dir).
    pub async fn cleanup(self) {
        use sqlx::Connection;
        let Ok(admin) = std::env::var("OTV_TEST_DATABASE_URL") else {
            return;
        };
        if !self.url.starts_with("postgres") {
            return;
        }
        let name = self.url.rsplit('/').next().unwrap();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

pub fn keys() -> Vec<(String, String)> {
    let out = Command::new(OTV)
        .args(["keys", "generate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub async fn databases() -> Vec<Db> {
    let dir = tempfile::tempdir().unwrap();
    let mut dbs = vec![Db {
        url: format!("sqlite://{}", dir.path().join("otv.sqlite").display()),
        keys: keys(),
        _dir: dir,
    }];
    if let Ok(admin) = std::env::var("OTV_TEST_DATABASE_URL") {
        use sqlx::Connection;
        let name = format!("otv_cli_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        dbs.push(Db {
            url: format!("{base}/{name}"),
            keys: keys(),
            _dir: tempfile::tempdir().unwrap(),
        });
    }
    dbs
}

pub fn otv(db: &Db, args: &[&str]) -> Output {
    Command::new(OTV)
        .args(args)
        .env("OTV_DATABASE_URL", &db.url)
        .envs(db.keys.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running `otv serve`, with its address and everything it logged.
pub struct Server {
    child: Child,
    addr: String,
    /// Log lines up to and including "listening".
    pub startup: Vec<String>,
    logs: std::sync::mpsc::Receiver<String>,
}

impl Server {
    pub fn start(db: &Db, extra_args: &[&str]) -> Server {
        Server::start_with(db, extra_args, &[])
    }

    /// Starts `otv serve` with extra arguments and environment.
    pub fn start_with(db: &Db, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(OTV)
            .arg("serve")
            .args(extra_args)
            .env("OTV_DATABASE_URL", &db.url)
            .env("OTV_LISTEN", "127.0.0.1:0")
            .envs(db.keys.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, logs) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let Ok(line) = logs.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
            {
                let addr = v["addr"].as_str().unwrap().to_owned();
                return Server {
                    child,
                    addr,
                    startup: seen,
                    logs,
                };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("otv serve did not start; it said:\n{}", seen.join("\n"));
    }

    /// The address of the mutual-TLS provider listener, when it runs.
    pub fn provider_addr(&self) -> Option<String> {
        self.startup.iter().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["message"] == "provider listener (mutual TLS)")
                .then(|| v["addr"].as_str().unwrap().to_owned())
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for a clean exit; returns everything logged.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "otv did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "otv exited with {status} after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
        self.logs.try_iter().collect::<Vec<_>>().join("\n")
    }
}

/// A plain HTTP client (the rustls crypto provider installed first, as reqwest needs it once
/// its TLS feature is on).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

impl Drop for Server {
    /// A test that fails half-way must not leave a server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTPS client that trusts the sandbox CA in `dir` and, when `who` names a connector,
/// presents that connector's client certificate (`<who>.pem`, `<who>-key.pem`).
pub fn sandbox_client(dir: &std::path::Path, who: Option<&str>) -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
    if let Some(who) = who {
        let mut pem = std::fs::read(dir.join(format!("{who}.pem"))).unwrap();
        pem.extend(std::fs::read(dir.join(format!("{who}-key.pem"))).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// The XCPD open question of the wire tests, for `bsn`, asked by GP 00000002, valid now.
pub fn open_question_request(bsn: &str) -> String {
    use chrono::{Duration, SecondsFormat, Utc};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../otv-wire/tests/fixtures/open-question/request.xml");
    let now = Utc::now();
    let stamp = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    std::fs::read_to_string(path)
        .unwrap()
        .replace("900186021", bsn)
        .replace("00000666", "00000002")
        .replace("2025-06-02T09:59:30Z", &stamp(now - Duration::seconds(30)))
        .replace("2025-06-02T10:09:30Z", &stamp(now + Duration::minutes(5)))
}

// --- Browser test (tests/browser, e2e/browser.rs) -------------------------------------------

/// A SQLite database only, for tests that need not run on both backends.
pub fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        url: format!("sqlite://{}", dir.path().join("otv.sqlite").display()),
        keys: keys(),
        _dir: dir,
    }
}
