//! The enrolment token (inschrijftoken, PRODUCT.md §8): cryptographic proof, made with a second
//! factor, that a patient is enrolled at a provider. Samen-naar-MijnMitz and the
//! raadplegersknop need one.
//!
//! # Format
//! A compact JWS (RFC 7515) `<header>.<claims>.<signature>`, each part base64url without
//! padding:
//! - header: `alg` (`ES256`, `PS256` or `RS256`; nothing else, so never `none` or an HMAC) and
//!   `x5c` (RFC 7515 §4.1.6: the signing certificate first, then intermediates, each standard
//!   base64 DER; at most [`MAX_CHAIN`]). A `crit` header is refused (no extension is
//!   understood); `typ` and `kid` are ignored.
//! - claims: `ura` (8 digits), `bsn`, `iat` and `exp` (seconds since the epoch), `jti` (1 to
//!   [`MAX_JTI`] visible ASCII characters) and `factor` (`uzi-pas` or `wid`).
//!
//! # Checks, in order (each failure is its own [`TokenError`])
//! 1. The form: three parts, base64url, JSON objects, every claim present with its type
//!    ([`TokenError::Malformed`]); the algorithm ([`TokenError::UnsupportedAlgorithm`]).
//! 2. The chain: the `x5c` chain must end at a trust anchor *of the factor*: a UZI-card CA for
//!    `uzi-pas`, a WID-issuer CA for `wid` (configured, `[assisted]`). A chain that ends
//!    nowhere (also: at a CA that copies an anchor's name but not its key), or at the other
//!    factor's anchors, is [`TokenError::UnknownAnchor`]; a chain that
//!    ends at the right anchor but is not valid at the moment of the check (a certificate
//!    expired, not yet valid, not meant for this use) is [`TokenError::InvalidChain`]. The
//!    chain is built by rustls-webpki (as rustls builds TLS chains) at otv's clock, and an
//!    extended key usage on the signing certificate, if present, must include clientAuth (a
//!    UZI card's authentication certificate has it).
//! 3. The signature over `<header>.<claims>` with the signing certificate's key
//!    ([`TokenError::BadSignature`]).
//! 4. For `uzi-pas`, the URA in the card certificate's UZI otherName (read by
//!    [`crate::tls::identity_from_certificate`], as for server certificates) must be the
//!    token's `ura` ([`TokenError::UraMismatch`]).
//! 5. Time: `exp` after `iat` and at most [`MAX_LIFETIME`] later
//!    ([`TokenError::LifetimeTooLong`]); `iat` not in the future by more than
//!    [`CLOCK_SKEW_SECONDS`] (a professional's device clock may run a little ahead,
//!    [`TokenError::NotYetValid`]); the moment of the check before `exp`, with no skew
//!    ([`TokenError::Expired`]).
//! 6. The request: the token's `ura` must be the provider that asks
//!    ([`TokenError::WrongProvider`]), its `bsn` the patient ([`TokenError::BsnMismatch`];
//!    the error never names either number).
//! 7. The `jti`: used once ([`TokenError::Replayed`]). [`verify_and_use`] uses it up in the
//!    store (one insert on the `jti`, so two requests with one token cannot both pass);
//!    [`verify`] (the check endpoint) only looks, so that checking a token never makes its
//!    later use fail.
//!
//! What this module must not do: log or return a BSN, or accept a token on any error.

use std::path::Path;
use std::time::Duration;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use otv_core::{Bsn, Ura};
use otv_store::Backend;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::AppState;

/// The longest an enrolment token may live: `exp` at most this long after `iat`.
pub const MAX_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// How far `iat` may lie in the future (the signer's clock running ahead), in seconds.
pub const CLOCK_SKEW_SECONDS: i64 = otv_wire::CLOCK_SKEW_SECONDS;
/// The most certificates an `x5c` chain may have.
pub const MAX_CHAIN: usize = 5;
/// The longest `jti`.
pub const MAX_JTI: usize = 128;
/// The longest token (bytes).
pub const MAX_TOKEN: usize = 32 * 1024;

/// id-kp-clientAuth (1.3.6.1.5.5.7.3.2), DER content.
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// The second factor that signed the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Factor {
    /// The professional's UZI card (UZI-pas): the signing certificate carries the URA.
    UziPas,
    /// A key certified by a WID-verification issuer (identity document).
    Wid,
}

impl Factor {
    /// The claim value: `uzi-pas` or `wid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::UziPas => "uzi-pas",
            Factor::Wid => "wid",
        }
    }

    /// Reads a claim value.
    pub fn parse(s: &str) -> Option<Factor> {
        [Factor::UziPas, Factor::Wid]
            .into_iter()
            .find(|f| f.as_str() == s)
    }

    fn anchors_name(self) -> &'static str {
        match self {
            Factor::UziPas => "UZI-card CA",
            Factor::Wid => "WID-issuer CA",
        }
    }
}

/// The signature algorithms an enrolment token may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Ps256 => "PS256",
            Algorithm::Rs256 => "RS256",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        [Algorithm::Es256, Algorithm::Ps256, Algorithm::Rs256]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

/// What a verified enrolment token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentClaims {
    /// The provider the patient is enrolled at.
    pub ura: Ura,
    /// The patient.
    pub bsn: Bsn,
    /// When it was made.
    pub iat: DateTime<Utc>,
    /// Until when it can be used.
    pub exp: DateTime<Utc>,
    /// Its single-use id.
    pub jti: String,
    /// The second factor that signed it.
    pub factor: Factor,
}

/// Why an enrolment token is refused. Every message says what is wrong, for the professional
/// and the connector's developer; none names a BSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS with the header and claims described in the module documentation.
    #[error("the enrolment token is malformed: {0}")]
    Malformed(String),
    /// `alg` is not ES256, PS256 or RS256.
    #[error("the enrolment token's algorithm `{0}` is not accepted (use ES256, PS256 or RS256)")]
    UnsupportedAlgorithm(String),
    /// The `x5c` chain does not end at a trust anchor of the token's factor.
    #[error("{}", unknown_anchor(*factor, *other_factor))]
    UnknownAnchor {
        /// The token's factor.
        factor: Factor,
        /// The chain ends at the other factor's trust anchors.
        other_factor: bool,
    },
    /// The chain ends at a trust anchor of the factor but is not valid now.
    #[error("the enrolment token's certificate chain is not valid: {0}")]
    InvalidChain(String),
    /// The signature does not verify with the signing certificate's key.
    #[error("the enrolment token's signature does not verify with the key of its certificate")]
    BadSignature,
    /// A UZI-card token whose card certificate carries another URA than the token, or none.
    #[error("{}", ura_mismatch(leaf.as_ref(), token))]
    UraMismatch {
        /// The URA in the card certificate, if it has one.
        leaf: Option<Ura>,
        /// The token's `ura`.
        token: Ura,
    },
    /// `exp` is not after `iat`, or more than 15 minutes after it.
    #[error(
        "the enrolment token's lifetime is wrong: `exp` must be after `iat` and at most 15 minutes later"
    )]
    LifetimeTooLong,
    /// `iat` is in the future (beyond the clock skew allowed).
    #[error("the enrolment token is not valid yet: its `iat` lies in the future")]
    NotYetValid,
    /// The moment of the check is at or after `exp`.
    #[error("the enrolment token has expired")]
    Expired,
    /// The token was made for another provider than the one that asks.
    #[error("the enrolment token was made for URA {token}, not for URA {asked}")]
    WrongProvider {
        /// The token's `ura`.
        token: Ura,
        /// The provider that asks.
        asked: Ura,
    },
    /// The token was made for another patient.
    #[error("the enrolment token was made for another patient (its `bsn` is not the patient's)")]
    BsnMismatch,
    /// The token's `jti` was used before.
    #[error("the enrolment token was used before (its `jti` works once)")]
    Replayed,
    /// otv could not check (storage failed). Not the token's fault; nothing was used up.
    #[error("otv could not check the enrolment token; try again")]
    Unavailable,
}

fn unknown_anchor(factor: Factor, other_factor: bool) -> String {
    let name = factor.anchors_name();
    if other_factor {
        format!(
            "the enrolment token's certificate chain ends at a trust anchor of the other factor, not at a {name} (factor {})",
            factor.as_str()
        )
    } else {
        format!(
            "the enrolment token's certificate chain does not end at a configured {name} (factor {})",
            factor.as_str()
        )
    }
}

fn ura_mismatch(leaf: Option<&Ura>, token: &Ura) -> String {
    match leaf {
        Some(leaf) => format!(
            "the UZI card that signed the enrolment token belongs to URA {leaf}, not to the token's URA {token}"
        ),
        None => "the certificate that signed the enrolment token carries no URA (a UZI card certificate has one in its UZI otherName)".into(),
    }
}

impl TokenError {
    /// A short code for audit records and problem types (`enrolment-token-<what>`).
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "enrolment-token-malformed",
            TokenError::UnsupportedAlgorithm(_) => "enrolment-token-unsupported-algorithm",
            TokenError::UnknownAnchor { .. } => "enrolment-token-unknown-anchor",
            TokenError::InvalidChain(_) => "enrolment-token-invalid-chain",
            TokenError::BadSignature => "enrolment-token-bad-signature",
            TokenError::UraMismatch { .. } => "enrolment-token-ura-mismatch",
            TokenError::LifetimeTooLong => "enrolment-token-lifetime-too-long",
            TokenError::NotYetValid => "enrolment-token-not-yet-valid",
            TokenError::Expired => "enrolment-token-expired",
            TokenError::WrongProvider { .. } => "enrolment-token-wrong-provider",
            TokenError::BsnMismatch => "enrolment-token-bsn-mismatch",
            TokenError::Replayed => "enrolment-token-replayed",
            TokenError::Unavailable => "internal",
        }
    }
}

/// The trust anchors of enrolment tokens: UZI-card CAs (factor `uzi-pas`) and WID-issuer CAs
/// (factor `wid`). None configured: every token is refused ([`TokenError::UnknownAnchor`]).
#[derive(Debug, Default, Clone)]
pub struct TrustAnchors {
    uzi_card: Vec<TrustAnchor<'static>>,
    wid: Vec<TrustAnchor<'static>>,
}

impl TrustAnchors {
    /// Anchors from DER certificates.
    pub fn from_der(uzi_card: &[Vec<u8>], wid: &[Vec<u8>]) -> Result<TrustAnchors, String> {
        let anchors = |certs: &[Vec<u8>], what: &str| {
            certs
                .iter()
                .enumerate()
                .map(|(i, der)| {
                    webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                        .map(|a| a.to_owned())
                        .map_err(|e| {
                            format!(
                                "{what}: certificate {} is not a usable trust anchor ({e})",
                                i + 1
                            )
                        })
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(TrustAnchors {
            uzi_card: anchors(uzi_card, "UZI-card CA")?,
            wid: anchors(wid, "WID-issuer CA")?,
        })
    }

    /// Anchors from PEM files; errors name the setting (`setting_uzi_card`, `setting_wid`) and
    /// the file.
    pub fn from_pem_files(
        uzi_card: Option<(&str, &Path)>,
        wid: Option<(&str, &Path)>,
    ) -> Result<TrustAnchors, String> {
        let read = |entry: Option<(&str, &Path)>| -> Result<Vec<Vec<u8>>, String> {
            let Some((setting, path)) = entry else {
                return Ok(Vec::new());
            };
            let pem = std::fs::read(path)
                .map_err(|e| format!("setting `{setting}`: cannot read {}: {e}", path.display()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .map(|c| c.map(|c| c.to_vec()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    format!(
                        "setting `{setting}`: {} is not valid PEM ({e})",
                        path.display()
                    )
                })?;
            if certs.is_empty() {
                return Err(format!(
                    "setting `{setting}`: {} has no CERTIFICATE block",
                    path.display()
                ));
            }
            TrustAnchors::from_der(&certs, &[])
                .map_err(|e| format!("setting `{setting}`: {}: {e}", path.display()))?;
            Ok(certs)
        };
        TrustAnchors::from_der(&read(uzi_card)?, &read(wid)?)
    }

    /// How many anchors of each factor (UZI card, WID).
    pub fn counts(&self) -> (usize, usize) {
        (self.uzi_card.len(), self.wid.len())
    }

    fn of(&self, factor: Factor) -> &[TrustAnchor<'static>] {
        match factor {
            Factor::UziPas => &self.uzi_card,
            Factor::Wid => &self.wid,
        }
    }
}

/// Verifies `token` for a change for `bsn` at provider `ura` at `state.clock.now()`, and uses
/// its `jti` up (store). Errors name the exact failure.
pub async fn verify_and_use(
    state: &AppState,
    token: &str,
    ura: &Ura,
    bsn: &Bsn,
) -> Result<EnrolmentClaims, TokenError> {
    let now = state.clock.now();
    verify_and_use_in(
        &*state.store,
        &state.assisted.enrolment,
        token,
        ura,
        bsn,
        now,
    )
    .await
}

/// Verifies `token` as [`verify_and_use`] does, without using it up: a token that was used is
/// [`TokenError::Replayed`], one that was not stays usable. For the check endpoint.
pub async fn verify(
    state: &AppState,
    token: &str,
    ura: &Ura,
    bsn: &Bsn,
) -> Result<EnrolmentClaims, TokenError> {
    let claims = verify_at(
        &state.assisted.enrolment,
        token,
        ura,
        bsn,
        state.clock.now(),
    )?;
    match state.store.enrolment_token_used(&claims.jti).await {
        Ok(false) => Ok(claims),
        Ok(true) => Err(TokenError::Replayed),
        Err(e) => {
            tracing::error!(error = %e, "enrolment token: reading used tokens failed");
            Err(TokenError::Unavailable)
        }
    }
}

/// [`verify_and_use`] with its parts given: the store, the anchors and the moment.
pub async fn verify_and_use_in(
    store: &dyn Backend,
    anchors: &TrustAnchors,
    token: &str,
    ura: &Ura,
    bsn: &Bsn,
    now: DateTime<Utc>,
) -> Result<EnrolmentClaims, TokenError> {
    let claims = verify_at(anchors, token, ura, bsn, now)?;
    match store
        .use_enrolment_token(&claims.jti, &claims.ura, claims.exp, now)
        .await
    {
        Ok(true) => Ok(claims),
        Ok(false) => Err(TokenError::Replayed),
        Err(e) => {
            tracing::error!(error = %e, "enrolment token: using it up failed");
            Err(TokenError::Unavailable)
        }
    }
}

/// Checks 1 to 6 of the module documentation (everything but the `jti`'s use) at `now`. Pure.
pub fn verify_at(
    anchors: &TrustAnchors,
    token: &str,
    ura: &Ura,
    bsn: &Bsn,
    now: DateTime<Utc>,
) -> Result<EnrolmentClaims, TokenError> {
    let bad = |why: &str| TokenError::Malformed(why.to_owned());
    if token.len() > MAX_TOKEN {
        return Err(bad(&format!("longer than {MAX_TOKEN} bytes")));
    }
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(
            "a compact JWS has three parts separated by `.` (header, claims, signature)",
        ));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| bad(&format!("the {what} is not base64url without padding")))
    };
    let header = json_object(&decode(header_b64, "header")?, "header")?;
    let claims_json = json_object(&decode(claims_b64, "claims part")?, "claims part")?;
    let signature = decode(signature_b64, "signature")?;

    // 1. The header.
    let alg = header
        .get("alg")
        .ok_or_else(|| bad("the header has no `alg`"))?
        .as_str()
        .ok_or_else(|| bad("the header's `alg` is not a string"))?;
    let algorithm =
        Algorithm::parse(alg).ok_or_else(|| TokenError::UnsupportedAlgorithm(alg.to_owned()))?;
    if header.contains_key("crit") {
        return Err(bad(
            "the header has `crit`: no JWS extension is understood here",
        ));
    }
    let chain = x5c(&header)?;
    let claims = read_claims(&claims_json)?;

    // 2. The chain, at the factor's anchors.
    let leaf = EndEntityCert::try_from(&chain[0])
        .map_err(|e| bad(&format!("the first `x5c` certificate cannot be read ({e})")))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now.timestamp()).unwrap_or(0),
    ));
    let algorithms = rustls::crypto::aws_lc_rs::default_provider()
        .signature_verification_algorithms
        .all;
    let build = |anchors: &[TrustAnchor<'_>]| {
        leaf.verify_for_usage(
            algorithms,
            anchors,
            &chain[1..],
            time,
            KeyUsage::required_if_present(EKU_CLIENT_AUTH),
            None,
            None,
        )
        .map(|_| ())
    };
    match build(anchors.of(claims.factor)) {
        Ok(()) => {}
        // No issuer of that name among the anchors, or one of that name whose key did not sign:
        // either way no path ends at a configured anchor (a self-made CA may copy a name).
        Err(e) if no_anchor(&e) => {
            let other = match claims.factor {
                Factor::UziPas => Factor::Wid,
                Factor::Wid => Factor::UziPas,
            };
            let other_factor = !anchors.of(other).is_empty()
                && !matches!(build(anchors.of(other)), Err(e) if no_anchor(&e));
            return Err(TokenError::UnknownAnchor {
                factor: claims.factor,
                other_factor,
            });
        }
        Err(e) => return Err(TokenError::InvalidChain(chain_error(&e))),
    }

    // 3. The signature.
    let (_, certificate) = X509Certificate::from_der(&chain[0])
        .map_err(|e| bad(&format!("the first `x5c` certificate cannot be read ({e})")))?;
    let key = certificate.public_key().subject_public_key.data.as_ref();
    let signed = &token.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
    UnparsedPublicKey::new(algorithm.verification(), key)
        .verify(signed, &signature)
        .map_err(|_| TokenError::BadSignature)?;

    // 4. A UZI card carries the token's URA.
    if claims.factor == Factor::UziPas {
        let leaf_ura = crate::tls::identity_from_certificate(&chain[0])
            .ok()
            .and_then(|identity| identity.ura);
        if leaf_ura.as_ref() != Some(&claims.ura) {
            return Err(TokenError::UraMismatch {
                leaf: leaf_ura,
                token: claims.ura,
            });
        }
    }

    // 5. Time.
    let lifetime = claims.exp - claims.iat;
    if lifetime <= chrono::Duration::zero()
        || lifetime > chrono::Duration::from_std(MAX_LIFETIME).expect("15 minutes")
    {
        return Err(TokenError::LifetimeTooLong);
    }
    if claims.iat > now + chrono::Duration::seconds(CLOCK_SKEW_SECONDS) {
        return Err(TokenError::NotYetValid);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }

    // 6. This provider, this patient.
    if &claims.ura != ura {
        return Err(TokenError::WrongProvider {
            token: claims.ura,
            asked: ura.clone(),
        });
    }
    if &claims.bsn != bsn {
        return Err(TokenError::BsnMismatch);
    }
    Ok(claims)
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

fn json_object(bytes: &[u8], what: &str) -> Result<JsonObject, TokenError> {
    // serde's message may quote the text (a BSN): say only what part is wrong.
    match serde_json::from_slice(bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
    }
}

fn x5c(header: &JsonObject) -> Result<Vec<CertificateDer<'static>>, TokenError> {
    let bad = |why: &str| TokenError::Malformed(why.to_owned());
    let list = header
        .get("x5c")
        .ok_or_else(|| bad("the header has no `x5c` certificate chain"))?
        .as_array()
        .ok_or_else(|| bad("the header's `x5c` is not an array"))?;
    if list.is_empty() || list.len() > MAX_CHAIN {
        return Err(bad(&format!(
            "the header's `x5c` must hold 1 to {MAX_CHAIN} certificates"
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .map(CertificateDer::from)
                .ok_or_else(|| {
                    bad(&format!(
                        "`x5c` entry {} is not a base64 (standard, padded) DER certificate",
                        i + 1
                    ))
                })
        })
        .collect()
}

/// The claims as sent, before any check but their form.
fn read_claims(claims: &JsonObject) -> Result<EnrolmentClaims, TokenError> {
    let bad = |why: String| TokenError::Malformed(why);
    let text = |name: &str| -> Result<&str, TokenError> {
        claims
            .get(name)
            .ok_or_else(|| bad(format!("the claim `{name}` is missing")))?
            .as_str()
            .ok_or_else(|| bad(format!("the claim `{name}` is not a string")))
    };
    let time = |name: &str| -> Result<DateTime<Utc>, TokenError> {
        let seconds = claims
            .get(name)
            .ok_or_else(|| bad(format!("the claim `{name}` is missing")))?
            .as_i64()
            .ok_or_else(|| {
                bad(format!(
                    "the claim `{name}` is not a whole number of seconds"
                ))
            })?;
        Utc.timestamp_opt(seconds, 0)
            .single()
            .ok_or_else(|| bad(format!("the claim `{name}` is out of range")))
    };
    let ura = Ura::parse(text("ura")?).map_err(|e| bad(format!("the claim `ura`: {}", e.rule)))?;
    let bsn = Bsn::parse(text("bsn")?).map_err(|e| bad(format!("the claim `bsn`: {}", e.rule)))?;
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI || !jti.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(format!(
            "the claim `jti` must be 1 to {MAX_JTI} visible ASCII characters"
        )));
    }
    let factor = Factor::parse(text("factor")?)
        .ok_or_else(|| bad("the claim `factor` must be `uzi-pas` or `wid`".into()))?;
    Ok(EnrolmentClaims {
        ura,
        bsn,
        iat: time("iat")?,
        exp: time("exp")?,
        jti: jti.to_owned(),
        factor,
    })
}

fn no_anchor(e: &webpki::Error) -> bool {
    matches!(
        e,
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey
    )
}

fn chain_error(e: &webpki::Error) -> String {
    match e {
        webpki::Error::CertExpired { .. } => "a certificate of the chain has expired".into(),
        webpki::Error::CertNotValidYet { .. } => {
            "a certificate of the chain is not valid yet".into()
        }
        webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | webpki::Error::UnsupportedSignatureAlgorithmContext(_) => {
            "a certificate of the chain is signed with an algorithm that is not accepted".into()
        }
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            "the signing certificate's extended key usage does not allow client authentication"
                .into()
        }
        webpki::Error::CaUsedAsEndEntity => "the signing certificate is a CA certificate".into(),
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testpki::{ClientSpec, EnrolmentIssuer, TokenClaims, TokenSigner};

    const URA: &str = "00000001";
    const BSN: &str = "900203638";
    const OTHER_BSN: &str = "999990019";

    fn ura(s: &str) -> Ura {
        Ura::parse(s).unwrap()
    }

    fn bsn(s: &str) -> Bsn {
        Bsn::parse(s).unwrap()
    }

    fn now() -> DateTime<Utc> {
        // Whole seconds: the claims carry seconds.
        Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap()
    }

    struct Setup {
        issuer: EnrolmentIssuer,
        anchors: TrustAnchors,
    }

    fn setup() -> Setup {
        let issuer = EnrolmentIssuer::new().unwrap();
        let anchors = TrustAnchors::from_der(
            &[issuer.uzi_card_ca().der.clone()],
            &[issuer.wid_ca().der.clone()],
        )
        .unwrap();
        Setup { issuer, anchors }
    }

    fn claims(factor: Factor, iat: DateTime<Utc>, exp: DateTime<Utc>) -> TokenClaims {
        TokenClaims {
            ura: URA.into(),
            bsn: BSN.into(),
            factor,
            iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn card(s: &Setup, algorithm: Algorithm) -> TokenSigner {
        s.issuer.uzi_card(URA, "900010001", algorithm).unwrap()
    }

    fn check(s: &Setup, token: &str, at: DateTime<Utc>) -> Result<EnrolmentClaims, TokenError> {
        verify_at(&s.anchors, token, &ura(URA), &bsn(BSN), at)
    }

    fn fifteen_minutes() -> chrono::Duration {
        chrono::Duration::minutes(15)
    }

    #[test]
    fn a_token_signed_by_a_uzi_card_or_a_wid_key_with_es256_ps256_or_rs256_is_accepted() {
        let s = setup();
        let t = now();
        for algorithm in [Algorithm::Es256, Algorithm::Ps256, Algorithm::Rs256] {
            for (factor, signer) in [
                (Factor::UziPas, card(&s, algorithm)),
                (Factor::Wid, s.issuer.wid_key(algorithm).unwrap()),
            ] {
                let c = claims(factor, t, t + fifteen_minutes());
                let token = signer.token(&c);
                let got = check(&s, &token, t)
                    .unwrap_or_else(|e| panic!("{algorithm:?} {factor:?}: {e}"));
                assert_eq!(got.ura, ura(URA));
                assert_eq!(got.bsn, bsn(BSN));
                assert_eq!(got.factor, factor);
                assert_eq!(got.jti, c.jti);
                assert_eq!((got.iat, got.exp), (c.iat, c.exp));
            }
        }
    }

    #[test]
    fn a_changed_token_or_another_key_is_a_bad_signature() {
        let s = setup();
        let t = now();
        for algorithm in [Algorithm::Es256, Algorithm::Ps256, Algorithm::Rs256] {
            let signer = card(&s, algorithm);
            let token = signer.token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
            let parts: Vec<&str> = token.split('.').collect();
            let mut changed = claims(Factor::UziPas, t, t + fifteen_minutes());
            changed.jti = "another".into();
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(changed.json().to_string()),
                parts[2]
            );
            assert_eq!(
                check(&s, &forged, t),
                Err(TokenError::BadSignature),
                "{algorithm:?}"
            );
        }
        // Signed by another card of the same URA, carrying the first card's chain.
        let first = card(&s, Algorithm::Es256);
        let mut other = card(&s, Algorithm::Es256);
        other.chain = first.chain.clone();
        let token = other.token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        assert_eq!(check(&s, &token, t), Err(TokenError::BadSignature));
        // An ES256 header over an RSA key.
        let mut rsa = card(&s, Algorithm::Rs256);
        let header = rsa.header();
        rsa.algorithm = Algorithm::Rs256;
        let mut es_header = header.clone();
        es_header["alg"] = "ES256".into();
        let token = rsa
            .sign(
                &es_header,
                &claims(Factor::UziPas, t, t + fifteen_minutes()).json(),
            )
            .unwrap();
        assert_eq!(check(&s, &token, t), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_chain_that_ends_at_no_configured_anchor_or_at_the_other_factors_is_an_unknown_anchor() {
        let s = setup();
        let t = now();
        let stranger = EnrolmentIssuer::new().unwrap();
        let token = stranger
            .uzi_card(URA, "900010001", Algorithm::Es256)
            .unwrap()
            .token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        let err = check(&s, &token, t).unwrap_err();
        assert_eq!(
            err,
            TokenError::UnknownAnchor {
                factor: Factor::UziPas,
                other_factor: false
            }
        );
        assert!(err.to_string().contains("UZI-card CA"), "{err}");
        // A WID key claiming to be a UZI card, and a UZI card claiming to be a WID key.
        let wid = s.issuer.wid_key(Algorithm::Es256).unwrap();
        let token = wid.token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        assert_eq!(
            check(&s, &token, t),
            Err(TokenError::UnknownAnchor {
                factor: Factor::UziPas,
                other_factor: true
            })
        );
        let token =
            card(&s, Algorithm::Es256).token(&claims(Factor::Wid, t, t + fifteen_minutes()));
        assert_eq!(
            check(&s, &token, t),
            Err(TokenError::UnknownAnchor {
                factor: Factor::Wid,
                other_factor: true
            })
        );
        // No anchors configured at all.
        let token =
            card(&s, Algorithm::Es256).token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        assert!(matches!(
            verify_at(&TrustAnchors::default(), &token, &ura(URA), &bsn(BSN), t),
            Err(TokenError::UnknownAnchor { .. })
        ));
    }

    #[test]
    fn a_card_that_expired_makes_an_invalid_chain() {
        let s = setup();
        // The test cards are valid for five years.
        let later = now() + chrono::Duration::days(6 * 366);
        let token = card(&s, Algorithm::Es256).token(&claims(
            Factor::UziPas,
            later,
            later + fifteen_minutes(),
        ));
        let err = check(&s, &token, later).unwrap_err();
        assert_eq!(
            err,
            TokenError::InvalidChain("a certificate of the chain has expired".into())
        );
    }

    #[test]
    fn a_uzi_card_of_another_ura_or_without_ura_is_a_ura_mismatch() {
        let s = setup();
        let t = now();
        let other = s
            .issuer
            .uzi_card("00000002", "900010002", Algorithm::Es256)
            .unwrap();
        let token = other.token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        let err = check(&s, &token, t).unwrap_err();
        assert_eq!(
            err,
            TokenError::UraMismatch {
                leaf: Some(ura("00000002")),
                token: ura(URA)
            }
        );
        assert!(err.to_string().contains("00000002"), "{err}");
        let nameless = s
            .issuer
            .uzi_card_with(
                &ClientSpec::plain("Zorgverlener", "Zorgaanbieder"),
                Algorithm::Es256,
            )
            .unwrap();
        let token = nameless.token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        assert_eq!(
            check(&s, &token, t),
            Err(TokenError::UraMismatch {
                leaf: None,
                token: ura(URA)
            })
        );
        // A WID key carries no URA, and needs none.
        let token = s.issuer.wid_key(Algorithm::Es256).unwrap().token(&claims(
            Factor::Wid,
            t,
            t + fifteen_minutes(),
        ));
        assert!(check(&s, &token, t).is_ok());
    }

    #[test]
    fn a_token_expires_at_exp_to_the_second() {
        let s = setup();
        let t = now();
        let token =
            card(&s, Algorithm::Es256).token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        let exp = t + fifteen_minutes();
        assert!(check(&s, &token, exp - chrono::Duration::seconds(1)).is_ok());
        assert_eq!(check(&s, &token, exp), Err(TokenError::Expired));
        assert_eq!(
            check(&s, &token, exp + chrono::Duration::days(1)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn exp_may_be_at_most_fifteen_minutes_after_iat() {
        let s = setup();
        let t = now();
        let signer = card(&s, Algorithm::Es256);
        let token = signer.token(&claims(
            Factor::UziPas,
            t,
            t + fifteen_minutes() + chrono::Duration::seconds(1),
        ));
        assert_eq!(check(&s, &token, t), Err(TokenError::LifetimeTooLong));
        let token = signer.token(&claims(Factor::UziPas, t, t));
        assert_eq!(check(&s, &token, t), Err(TokenError::LifetimeTooLong));
        let token = signer.token(&claims(Factor::UziPas, t, t - chrono::Duration::seconds(1)));
        assert_eq!(check(&s, &token, t), Err(TokenError::LifetimeTooLong));
    }

    #[test]
    fn iat_may_lie_at_most_the_clock_skew_in_the_future() {
        let s = setup();
        let t = now();
        let signer = card(&s, Algorithm::Es256);
        let skew = chrono::Duration::seconds(CLOCK_SKEW_SECONDS);
        let token = signer.token(&claims(
            Factor::UziPas,
            t + skew,
            t + skew + fifteen_minutes(),
        ));
        assert!(check(&s, &token, t).is_ok());
        let ahead = skew + chrono::Duration::seconds(1);
        let token = signer.token(&claims(
            Factor::UziPas,
            t + ahead,
            t + ahead + fifteen_minutes(),
        ));
        assert_eq!(check(&s, &token, t), Err(TokenError::NotYetValid));
    }

    #[test]
    fn a_token_for_another_patient_or_another_provider_is_refused_without_naming_the_bsn() {
        let s = setup();
        let t = now();
        let token =
            card(&s, Algorithm::Es256).token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        let err = verify_at(&s.anchors, &token, &ura(URA), &bsn(OTHER_BSN), t).unwrap_err();
        assert_eq!(err, TokenError::BsnMismatch);
        assert!(!err.to_string().contains(BSN) && !err.to_string().contains(OTHER_BSN));
        assert_eq!(
            verify_at(&s.anchors, &token, &ura("00000002"), &bsn(BSN), t),
            Err(TokenError::WrongProvider {
                token: ura(URA),
                asked: ura("00000002")
            })
        );
    }

    #[test]
    fn only_es256_ps256_and_rs256_are_accepted() {
        let s = setup();
        let t = now();
        let signer = card(&s, Algorithm::Es256);
        let c = claims(Factor::UziPas, t, t + fifteen_minutes()).json();
        for alg in ["HS256", "none", "ES384", "EdDSA", "es256"] {
            let mut header = signer.header();
            header["alg"] = alg.into();
            let token = signer.sign(&header, &c).unwrap();
            assert_eq!(
                check(&s, &token, t),
                Err(TokenError::UnsupportedAlgorithm(alg.into())),
                "{alg}"
            );
        }
        // `none` with an empty signature, as such tokens come.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let body = URL_SAFE_NO_PAD.encode(c.to_string());
        assert_eq!(
            check(&s, &format!("{header}.{body}."), t),
            Err(TokenError::UnsupportedAlgorithm("none".into()))
        );
    }

    #[test]
    fn a_malformed_token_says_what_is_wrong_without_the_bsn() {
        let s = setup();
        let t = now();
        let signer = card(&s, Algorithm::Es256);
        let good = claims(Factor::UziPas, t, t + fifteen_minutes()).json();
        let malformed = |token: &str| match check(&s, token, t) {
            Err(TokenError::Malformed(why)) => {
                assert!(!why.contains(BSN), "{why}");
                why
            }
            other => panic!("{token}: {other:?}"),
        };
        assert!(malformed("").contains("three parts"));
        assert!(malformed("a.b").contains("three parts"));
        assert!(malformed("a.b.c.d").contains("three parts"));
        assert!(malformed("!!.b.c").contains("header"));
        let b64 = |v: &str| URL_SAFE_NO_PAD.encode(v);
        assert!(malformed(&format!("{}.{}.", b64("[]"), b64("{}"))).contains("header"));
        assert!(
            malformed(&format!("{}.{}.", b64(r#"{"alg":"ES256"}"#), b64("{}"))).contains("x5c")
        );
        for (claim, value) in [
            ("ura", serde_json::json!(null)),
            ("bsn", serde_json::json!("123456789")),
            ("iat", serde_json::json!("now")),
            ("exp", serde_json::json!(1.5)),
            ("jti", serde_json::json!("")),
            ("factor", serde_json::json!("sms")),
        ] {
            let mut c = good.clone();
            c[claim] = value;
            let token = signer.sign(&signer.header(), &c).unwrap();
            assert!(malformed(&token).contains(claim), "{claim}");
            c.as_object_mut().unwrap().remove(claim);
            let token = signer.sign(&signer.header(), &c).unwrap();
            assert!(
                malformed(&token).contains(&format!("`{claim}` is missing")),
                "{claim}"
            );
        }
        let mut header = signer.header();
        header["crit"] = serde_json::json!(["exp"]);
        assert!(malformed(&signer.sign(&header, &good).unwrap()).contains("crit"));
        header = signer.header();
        header["x5c"] = serde_json::json!(["not base64!"]);
        assert!(malformed(&signer.sign(&header, &good).unwrap()).contains("x5c"));
        header["x5c"] = serde_json::json!([]);
        assert!(malformed(&signer.sign(&header, &good).unwrap()).contains("x5c"));
        // A BSN that breaks the 11-test is not echoed.
        let mut c = good.clone();
        c["bsn"] = "900203639".into();
        assert!(!malformed(&signer.sign(&signer.header(), &c).unwrap()).contains("900203639"));
    }

    #[test]
    fn every_failure_has_its_own_code() {
        let errors = [
            TokenError::Malformed(String::new()),
            TokenError::UnsupportedAlgorithm(String::new()),
            TokenError::UnknownAnchor {
                factor: Factor::Wid,
                other_factor: false,
            },
            TokenError::InvalidChain(String::new()),
            TokenError::BadSignature,
            TokenError::UraMismatch {
                leaf: None,
                token: ura(URA),
            },
            TokenError::LifetimeTooLong,
            TokenError::NotYetValid,
            TokenError::Expired,
            TokenError::WrongProvider {
                token: ura(URA),
                asked: ura(URA),
            },
            TokenError::BsnMismatch,
            TokenError::Replayed,
            TokenError::Unavailable,
        ];
        let codes: std::collections::HashSet<_> = errors.iter().map(TokenError::code).collect();
        assert_eq!(codes.len(), errors.len());
    }

    #[tokio::test]
    async fn a_token_works_once_and_a_check_uses_nothing_up() {
        let s = setup();
        let store = otv_store::connect("sqlite::memory:", otv_store::Keys::development())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let t = now();
        let token =
            card(&s, Algorithm::Es256).token(&claims(Factor::UziPas, t, t + fifteen_minutes()));
        let (u, b) = (ura(URA), bsn(BSN));
        // A refused token uses nothing up.
        assert_eq!(
            verify_and_use_in(&*store, &s.anchors, &token, &u, &bsn(OTHER_BSN), t).await,
            Err(TokenError::BsnMismatch)
        );
        let claims = verify_and_use_in(&*store, &s.anchors, &token, &u, &b, t)
            .await
            .unwrap();
        assert!(store.enrolment_token_used(&claims.jti).await.unwrap());
        assert_eq!(
            verify_and_use_in(
                &*store,
                &s.anchors,
                &token,
                &u,
                &b,
                t + chrono::Duration::seconds(1)
            )
            .await,
            Err(TokenError::Replayed)
        );
    }
}
