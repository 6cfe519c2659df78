//! The citizen portal in a real browser: Debian's headless Chromium driven by playwright-core,
//! a real OpenID Provider (npm `oidc-provider`, `tests/browser/op.mjs`) and the real `otv`
//! binary. `tests/browser/portal.mjs` logs in through the provider (authorization code + PKCE),
//! walks the pages, scans every page with axe-core logged out and logged in, checks the widths
//! and the portal without JavaScript, and saves screenshots in `target/browser-screenshots/`.
//!
//! On SQLite only: the portal's storage is covered on both backends by the other tests.
//! Needs `scripts/browser-deps` (Chromium and the npm packages; `scripts/test` runs it). Without
//! them the test fails under CI and is skipped, loudly, elsewhere.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{Db, Server, sqlite_db};

/// The test identities of `tests/browser/accounts.mjs`; none may ever appear in otv's logs.
const TEST_BSNS: [&str; 5] = [
    "900203638",
    "900100023",
    "900100035",
    "900100047",
    "900100059",
];

const CLIENT_ID: &str = "otv-portal";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

fn chromium() -> String {
    std::env::var("OTV_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// What is missing for the browser test, if anything.
fn missing_tools() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".to_owned());
    }
    if !Path::new(&chromium()).exists() {
        return Some(format!("{} is not installed", chromium()));
    }
    let modules = browser_dir().join("node_modules");
    for package in ["playwright-core", "axe-core", "oidc-provider"] {
        if !modules.join(package).exists() {
            return Some(format!("tests/browser/node_modules/{package} is missing"));
        }
    }
    None
}

/// A free port on 127.0.0.1 for otv: its callback URL must be registered at the provider
/// before otv starts, and otv needs the provider's address to start.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The OpenID Provider (`op.mjs`), stopped when dropped (its standard input closes too).
struct Op {
    child: Child,
    _stdin: ChildStdin,
    issuer: String,
}

impl Op {
    fn start(client_secret: &str, redirect_uri: &str) -> Op {
        let mut child = Command::new("node")
            .arg("op.mjs")
            .args(["--host", "127.0.0.2", "--port", "0"])
            .args(["--client-id", CLIENT_ID, "--client-secret", client_secret])
            .args(["--redirect-uri", redirect_uri])
            .current_dir(browser_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let (tx, rx) = mpsc::channel();
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
        let mut seen = Vec::new();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["ready"] == true
            {
                let issuer = v["issuer"].as_str().unwrap().to_owned();
                // Keep draining its output so that it never blocks on a full pipe.
                std::thread::spawn(move || rx.into_iter().for_each(drop));
                return Op {
                    child,
                    _stdin: stdin,
                    issuer,
                };
            }
            seen.push(line);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the OpenID Provider did not start:\n{}", seen.join("\n"));
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts otv on `port` with the `[portal]` settings in a config file, and the demo providers
/// and citizens (the directory has entries; the adult is registered at four providers).
fn start_otv(db: &Db, dir: &Path, name: &str, port: u16, portal: &str) -> Server {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, format!("[portal]\n{portal}")).unwrap();
    let listen = format!("127.0.0.1:{port}");
    Server::start_with(
        db,
        &["--demo", "--config", config.to_str().unwrap()],
        &[("OTV_LISTEN", &listen)],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_portal_in_a_real_browser_is_accessible_and_logs_in_through_a_real_openid_provider() {
    if let Some(missing) = missing_tools() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the browser test cannot run under CI: {missing}; scripts/browser-deps installs it"
        );
        eprintln!(
            "\n*** BROWSER TEST SKIPPED: {missing}. Run scripts/browser-deps (scripts/test does). ***\n"
        );
        return;
    }
    let (db, dev_db) = (sqlite_db(), sqlite_db());
    let dir = tempfile::tempdir().unwrap();

    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/inloggen/terug");
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let op = Op::start(&secret, &redirect);

    let portal = format!(
        "oidc_issuer = {issuer:?}\noidc_client_id = {CLIENT_ID:?}\n\
         oidc_client_secret = {secret:?}\noidc_redirect_url = {redirect:?}\n",
        issuer = op.issuer
    );
    let server = start_otv(&db, dir.path(), "oidc", port, &portal);
    let dev = start_otv(
        &dev_db,
        dir.path(),
        "dev",
        free_port(),
        "dev_login = true\n",
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-screenshots");
    let base = server.url("");
    let dev_base = dev.url("");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("portal.mjs")
            .args(["--base", &base, "--dev-base", &dev_base])
            .arg("--screenshots")
            .arg(&shots)
            .env("OTV_CHROMIUM", chromium())
            .current_dir(browser_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(op);
    let logs = format!("{}\n{}", server.stop(), dev.stop());
    assert!(out.status.success(), "the browser test failed:\n{report}");
    println!("{report}");
    for bsn in TEST_BSNS {
        assert!(!logs.contains(bsn), "a BSN in otv's logs:\n{logs}");
    }
}

/// The assisted portal (PRODUCT.md §8) in a real browser: otv with the sandbox PKI's mutual-TLS
/// provider listener and a test enrolment-token issuer; the GP practice's system asks for
/// hand-off links over mutual TLS (Samen-naar-MijnMitz and the raadplegersknop with an
/// enrolment token, the dossierhoudersknop without), and `tests/browser/assisted.mjs` walks
/// them in Chromium with the portal crawl's page checks. The answers it saved carry the
/// professional and the mode.
#[tokio::test(flavor = "multi_thread")]
async fn the_assisted_portal_in_a_real_browser_is_accessible_and_records_with_the_professional() {
    if let Some(missing) = missing_tools() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the browser test cannot run under CI: {missing}; scripts/browser-deps installs it"
        );
        eprintln!(
            "\n*** BROWSER TEST SKIPPED: {missing}. Run scripts/browser-deps (scripts/test does). ***\n"
        );
        return;
    }
    let db = sqlite_db();
    let assisted = crate::handoff::AssistedServer::start(&db, Some(free_port()));
    let samen_bsn = TEST_BSNS[1];
    let holder_bsn = TEST_BSNS[2];
    let emergency_bsn = TEST_BSNS[3];
    let samen = assisted.link(samen_bsn, "samen-naar-mijnmitz", true).await;
    let holder = assisted.link(holder_bsn, "dossierhoudersknop", false).await;
    let emergency = assisted.link(emergency_bsn, "raadplegersknop", true).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-screenshots");
    let out = tokio::task::spawn_blocking(move || {
        let mut node = Command::new("node");
        node.arg("assisted.mjs")
            .args([
                "--samen",
                &samen,
                "--holder",
                &holder,
                "--emergency",
                &emergency,
            ])
            .args(["--provider", "Huisartsenpraktijk De Linde"])
            .arg("--screenshots")
            .arg(&shots);
        for bsn in TEST_BSNS {
            node.args(["--bsn", bsn]);
        }
        node.env("OTV_CHROMIUM", chromium())
            .current_dir(browser_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = async |channel: &str| {
        crate::portal_client::count(
            &db,
            &format!(
                "SELECT count(*) FROM answers WHERE channel = '{channel}' \
             AND actor LIKE '%\"ura\":\"00000001\"%' AND actor LIKE '%\"uzi\":\"900010001\"%' \
             AND actor LIKE '%\"role\":\"01.015\"%'"
            ),
        )
        .await
    };
    let samen_answers = recorded("samen-naar-mijnmitz").await;
    let holder_answers = recorded("dossierhoudersknop").await;
    let emergency_answers = recorded("raadplegersknop").await;
    let logs = assisted.server.stop();
    assert!(out.status.success(), "the browser test failed:\n{report}");
    println!("{report}");
    assert!(samen_answers > 0, "Samen-naar-MijnMitz recorded nothing");
    assert!(
        holder_answers > 0,
        "the dossierhoudersknop recorded nothing"
    );
    assert!(
        emergency_answers > 0,
        "the raadplegersknop recorded nothing"
    );
    for bsn in TEST_BSNS {
        assert!(!logs.contains(bsn), "a BSN in otv's logs:\n{logs}");
    }
}
