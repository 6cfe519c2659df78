//! The mutual-TLS provider listener (PRODUCT.md §13): rustls on aws-lc-rs, a client certificate
//! that chains to the configured trust store is mandatory, and every request carries the
//! verified client as an [`Extension<ClientIdentity>`](crate::identity::ClientIdentity).
//!
//! * [`server_config`] builds the rustls configuration from three PEM files.
//! * [`identity_from_certificate`] reduces a verified leaf certificate to a
//!   [`ClientIdentity`](crate::identity::ClientIdentity):
//!   fingerprint, subject, and the URA of a UZI server certificate (see below).
//! * [`serve_mtls`] accepts connections, completes the handshake, reads the identity once per
//!   connection, serves HTTP/1.1 and HTTP/2 (ALPN), and shuts down gracefully.
//! * [`SignerTrust`] checks the signer certificate of an XUA assertion against the same trust
//!   store.
//! * [`testpki`] issues a test PKI for `otv sandbox` and the tests.
//!
//! # Why tokio-rustls and hyper-util, not axum-server
//! The identity belongs to the connection, not to the request. With tokio-rustls the accept
//! loop holds the finished `ServerConnection`, reads the peer certificate once, and hands each
//! request a clone of the result; no handler ever sees raw certificates or a per-request
//! `TlsInfo` to decode again, and a certificate whose UZI name is malformed is answered 403 on
//! every request without reaching the router. The loop is short, and owning it also gives us
//! the handshake timeout, the shutdown order (stop accepting, abandon handshakes, let requests
//! in flight finish) and handshake metrics directly. axum-server would need a custom acceptor
//! wrapping its rustls acceptor for the same result.
//!
//! # Where the URA comes from
//! The subjectAltName otherName `2.5.5.5` (UZI string, IA5String or UTF8String) and the
//! `permanentIdentifier` assigned by the URA register; a certificate with neither has
//! `ura: None`, a certificate whose names cannot be read or disagree is refused. Details in
//! [`identity_from_certificate`].
//!
//! Architecture invariant: a request on this listener never reaches the router without a
//! verified client certificate and the
//! [`ClientIdentity`](crate::identity::ClientIdentity) read from it.

mod certificate;
mod der;
pub mod testpki;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::Instrument;

pub use certificate::{
    IdentityError, PERMANENT_IDENTIFIER_OID, URA_ASSIGNER_OID, UZI_OTHER_NAME_OID,
    identity_from_certificate, sha256_hex, ura_from_uzi_string,
};

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may take to finish its requests once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/1.1 client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The three PEM files of the provider listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// otv's server certificate, followed by its intermediates.
    pub server_cert_pem: PathBuf,
    /// The private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub server_key_pem: PathBuf,
    /// The CA certificates a client certificate must chain to (the trust store: the UZI server
    /// CAs in production, the sandbox CA in tests).
    pub client_ca_pem: PathBuf,
}

/// The rustls configuration of the provider listener: aws-lc-rs, TLS 1.3 and 1.2, a client
/// certificate that chains to `client_ca_pem` (mandatory), ALPN `h2` and `http/1.1`. Errors
/// name the file that is wrong.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

    let chain = read_certificates(&settings.server_cert_pem, "server certificate")?;
    let key_path = &settings.server_key_pem;
    let key_pem = std::fs::read(key_path)
        .with_context(|| format!("server key {}: cannot read", key_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        anyhow!(
            "server key {}: no usable private key ({e})",
            key_path.display()
        )
    })?;

    let verifier = client_verifier(&settings.client_ca_pem, &provider)?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "server certificate {} and key {} do not go together",
                settings.server_cert_pem.display(),
                key_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A verifier of client certificates against the CA certificates in `ca_path`.
fn client_verifier(
    ca_path: &Path,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for (i, ca) in read_certificates(ca_path, "client CA")?
        .into_iter()
        .enumerate()
    {
        roots.add(ca).with_context(|| {
            format!(
                "client CA {}: certificate {} is not a usable trust anchor",
                ca_path.display(),
                i + 1
            )
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .with_context(|| format!("client CA {}", ca_path.display()))
}

/// Decides whether the certificate that signed an XUA assertion (open question) is trusted: it
/// must chain to the same trust store as the client certificates of the provider listener, be
/// valid now, and be meant for client authentication, as a connector's UZI server certificate
/// is. A valid signature by just any certificate proves nothing about who made the assertion.
pub struct SignerTrust {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl SignerTrust {
    /// The trust store of the provider listener (`tls_client_ca`).
    pub fn from_pem(ca_path: &Path) -> anyhow::Result<SignerTrust> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Ok(SignerTrust {
            verifier: client_verifier(ca_path, &provider)?,
        })
    }

    /// `Ok` when the DER certificate `signer` is trusted now; otherwise why not.
    pub fn check(&self, signer: &[u8]) -> Result<(), String> {
        let certificate = CertificateDer::from(signer);
        self.verifier
            .verify_client_cert(&certificate, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn read_certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem =
        std::fs::read(path).with_context(|| format!("{what} {}: cannot read", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{what} {}: not valid PEM ({e})", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!(
            "{what} {}: no CERTIFICATE block in the file",
            path.display()
        );
    }
    Ok(certificates)
}

/// Serves `router` over mutual TLS on `listener` until `shutdown` completes: then stops
/// accepting, abandons handshakes in progress, lets requests in flight finish (idle
/// connections are closed, HTTP/2 clients get a GOAWAY) and returns when every connection is
/// closed.
///
/// Each request carries [`ClientIdentity`](crate::identity::ClientIdentity) and `ConnectInfo<SocketAddr>` in its extensions. A
/// handshake without a valid client certificate fails at the TLS layer and never reaches the
/// router; so does one that takes longer than [`HANDSHAKE_TIMEOUT`]. A verified certificate
/// whose identity cannot be read ([`IdentityError`]) is answered `403` on every request.
pub async fn serve_mtls(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let (stop, stopped) = watch::channel(false);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);

    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(
                        stream,
                        peer,
                        acceptor.clone(),
                        builder.clone(),
                        router.clone(),
                        stopped.clone(),
                    ));
                }
                Err(e) => accept_failed(e).await,
            },
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a provider connection task failed");
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let tls = tokio::select! {
        outcome = handshake => match outcome {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                metrics::counter!("otv_tls_handshakes_total", "outcome" => "failed").increment(1);
                tracing::info!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                metrics::counter!("otv_tls_handshakes_total", "outcome" => "timeout").increment(1);
                tracing::info!(%peer, "TLS handshake timed out");
                return;
            }
        },
        () = stop_requested(&mut stopped) => return,
    };
    metrics::counter!("otv_tls_handshakes_total", "outcome" => "ok").increment(1);

    // The verifier makes a certificate mandatory, so the leaf is there; if it ever is not, the
    // connection is closed rather than served without an identity.
    let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        tracing::error!(%peer, "TLS connection without a client certificate; closed");
        return;
    };
    let identity = identity_from_certificate(leaf);
    let span = match &identity {
        Ok(id) => tracing::info_span!(
            "provider_connection",
            %peer,
            client_sha256 = %id.certificate_sha256,
            ura = id.ura.as_ref().map(|u| u.as_str()).unwrap_or("")
        ),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "client certificate refused: every request gets 403");
            tracing::info_span!("provider_connection", %peer, refused = %e)
        }
    };
    let identity = identity.map_err(|e| Arc::<str>::from(e.to_string()));

    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let router = router.clone();
        let identity = identity.clone();
        async move {
            match identity {
                Ok(identity) => {
                    request.extensions_mut().insert(identity);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    router.oneshot(request).await
                }
                Err(reason) => Ok(forbidden(&reason)),
            }
        }
    });

    async move {
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
        let mut conn = std::pin::pin!(conn);
        let outcome = tokio::select! {
            outcome = conn.as_mut() => outcome,
            () = stop_requested(&mut stopped) => {
                conn.as_mut().graceful_shutdown();
                // A client that never reads (and so never sees the GOAWAY or the close) must not
                // hold the shutdown up for ever.
                match tokio::time::timeout(DRAIN_TIMEOUT, conn.as_mut()).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        tracing::info!("provider connection did not drain in time; closed");
                        Ok(())
                    }
                }
            }
        };
        if let Err(e) = outcome {
            tracing::debug!(error = %e, "provider connection ended with an error");
        }
    }
    .instrument(span)
    .await;
}

/// Completes when the server stops (or is dropped).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

fn forbidden(reason: &str) -> Response<Body> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "client certificate not accepted",
        "status": 403,
        "detail": reason,
    });
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .header(header::CONTENT_TYPE, "application/problem+json")
        .body(Body::from(body.to_string()))
        .expect("a static response")
}

/// Errors of one incoming connection are that connection's; anything else (out of file
/// descriptors) gets a pause so the loop does not spin.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a provider connection failed; pausing 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
