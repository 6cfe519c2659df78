//! The store's keys and what is built on them: BSN pseudonyms (HMAC-SHA256, for lookup), BSN
//! encryption (AES-256-GCM, where the number itself is needed) and the signature on audit
//! checkpoints (Ed25519).
//!
//! Keys come from configuration (or [`Keys::development`] for a demo), never from the database.
//! Nothing here logs, and nothing here may print key material or a BSN: `Debug` of [`Keys`] shows
//! only whether they are the development keys and the (public) audit verification key.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use aws_lc_rs::{digest, hmac, rand};
use otv_core::Bsn;

use crate::StoreError;

/// A key from configuration that cannot be used. Names the key, never shows its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not hexadecimal.
    #[error("the {key} key is not hexadecimal")]
    NotHex {
        /// Which key: `pseudonym`, `encryption` or `audit signing`.
        key: &'static str,
    },
    /// The key is not 64 hex digits (32 bytes) long.
    #[error("the {key} key must be 64 hex digits (32 bytes), not {digits}")]
    WrongLength {
        /// Which key: `pseudonym`, `encryption` or `audit signing`.
        key: &'static str,
        /// How many characters it has.
        digits: usize,
    },
}

/// The four keys of the store, each 32 bytes: the BSN pseudonym key (HMAC-SHA256), the BSN
/// encryption key (AES-256-GCM), the seed of the audit checkpoint signing key (Ed25519) and the
/// seed of the consent receipt signing key (Ed25519).
///
/// Losing the pseudonym or encryption key makes every stored BSN unfindable or unreadable;
/// changing the signing key makes older checkpoints fail verification. Back them up.
#[derive(Clone)]
pub struct Keys {
    raw: [[u8; 32]; 4],
    derived: Arc<Derived>,
}

struct Derived {
    pseudonym: hmac::Key,
    encryption: RandomizedNonceKey,
    audit_signing: Ed25519KeyPair,
    receipt_signing: Ed25519KeyPair,
}

const PSEUDONYM: usize = 0;
const ENCRYPTION: usize = 1;
const AUDIT_SIGNING: usize = 2;
const RECEIPT_SIGNING: usize = 3;
const NAMES: [&str; 4] = [
    "pseudonym",
    "encryption",
    "audit signing",
    "receipt signing",
];

impl Keys {
    /// Fixed, publicly known keys for demos, tests and a first `otv serve` on a laptop.
    ///
    /// **Demo only.** Anyone can derive them from the source code, so they protect nothing;
    /// production must configure its own ([`Keys::generate`], [`Keys::from_hex`]).
    pub fn development() -> Keys {
        Keys::from_raw(development_raw())
    }

    /// Reads the keys from configuration: each 64 hexadecimal digits (32 bytes).
    pub fn from_hex(
        pseudonym: &str,
        encryption: &str,
        audit_signing: &str,
        receipt_signing: &str,
    ) -> Result<Keys, KeyError> {
        let mut raw = [[0u8; 32]; 4];
        for (i, text) in [pseudonym, encryption, audit_signing, receipt_signing]
            .into_iter()
            .enumerate()
        {
            let (key, text) = (NAMES[i], text.trim());
            if text.len() != 64 {
                return Err(KeyError::WrongLength {
                    key,
                    digits: text.chars().count(),
                });
            }
            let bytes = hex::decode(text).map_err(|_| KeyError::NotHex { key })?;
            raw[i] = bytes.try_into().expect("64 hex digits are 32 bytes");
        }
        Ok(Keys::from_raw(raw))
    }

    /// Fresh random keys (for `otv keys generate`).
    ///
    /// # Panics
    /// If the operating system's random generator fails, which leaves nothing safe to do.
    pub fn generate() -> Keys {
        let mut raw = [[0u8; 32]; 4];
        for k in &mut raw {
            rand::fill(k).expect("the system random generator failed");
        }
        Keys::from_raw(raw)
    }

    /// Whether these are the publicly known development keys.
    pub fn is_development(&self) -> bool {
        self.raw == development_raw()
    }

    /// The keys as hexadecimal, in the order of [`Keys::from_hex`]: pseudonym, encryption,
    /// audit signing, receipt signing. Secret: only for writing a new configuration.
    pub fn to_hex(&self) -> [String; 4] {
        self.raw.map(hex::encode)
    }

    /// The raw Ed25519 public key (32 bytes) that verifies consent receipts.
    pub fn receipt_public_key(&self) -> Vec<u8> {
        self.derived.receipt_signing.public_key().as_ref().to_vec()
    }

    /// Signs a consent receipt (the JWS signing input); an Ed25519 signature of 64 bytes.
    pub fn sign_receipt(&self, message: &[u8]) -> Vec<u8> {
        self.derived.receipt_signing.sign(message).as_ref().to_vec()
    }

    /// The raw Ed25519 public key (32 bytes) that verifies audit checkpoints.
    pub fn audit_public_key(&self) -> Vec<u8> {
        self.derived.audit_signing.public_key().as_ref().to_vec()
    }

    fn from_raw(raw: [[u8; 32]; 4]) -> Keys {
        let derived = Derived {
            pseudonym: hmac::Key::new(hmac::HMAC_SHA256, &raw[PSEUDONYM]),
            encryption: RandomizedNonceKey::new(&AES_256_GCM, &raw[ENCRYPTION])
                .expect("a 32-byte key is valid for AES-256-GCM"),
            audit_signing: Ed25519KeyPair::from_seed_unchecked(&raw[AUDIT_SIGNING])
                .expect("every 32-byte seed is a valid Ed25519 seed"),
            receipt_signing: Ed25519KeyPair::from_seed_unchecked(&raw[RECEIPT_SIGNING])
                .expect("every 32-byte seed is a valid Ed25519 seed"),
        };
        Keys {
            raw,
            derived: Arc::new(derived),
        }
    }

    /// The keyed pseudonym of a BSN: the lookup key of a citizen. Without the key it cannot be
    /// linked back to the number (a plain hash of 9 digits could be reversed by trying them all).
    /// The patient's pseudonym as it appears in audit records (hex). Not reversible without
    /// the key; never the BSN.
    pub fn patient_reference(&self, bsn: &Bsn) -> String {
        hex::encode(self.pseudonym(bsn))
    }

    /// A keyed tag of a short secret (a guardian pairing code): what is stored instead of the
    /// secret. Keyed, because a plain hash of a short code could be reversed by trying every
    /// code; `purpose` separates the tags of different kinds of secret from each other and from
    /// BSN pseudonyms.
    pub(crate) fn secret_tag(&self, purpose: &str, secret: &str) -> [u8; 32] {
        let mut input = Vec::with_capacity(purpose.len() + 1 + secret.len());
        input.extend_from_slice(purpose.as_bytes());
        input.push(0);
        input.extend_from_slice(secret.as_bytes());
        let tag = hmac::sign(&self.derived.pseudonym, &input);
        tag.as_ref().try_into().expect("HMAC-SHA256 gives 32 bytes")
    }

    pub(crate) fn pseudonym(&self, bsn: &Bsn) -> [u8; 32] {
        let tag = hmac::sign(&self.derived.pseudonym, bsn.expose().as_bytes());
        tag.as_ref().try_into().expect("HMAC-SHA256 gives 32 bytes")
    }

    /// `nonce || ciphertext || tag`. The pseudonym is the associated data, so a ciphertext copied
    /// to another citizen's row does not open there.
    pub(crate) fn encrypt_bsn(&self, bsn: &Bsn, pseudonym: &[u8; 32]) -> Vec<u8> {
        let mut sealed = bsn.expose().as_bytes().to_vec();
        let nonce = self
            .derived
            .encryption
            .seal_in_place_append_tag(Aad::from(pseudonym), &mut sealed)
            .expect("AES-256-GCM sealing of 9 bytes does not fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Keys::encrypt_bsn`] sealed. Fails for another key, another pseudonym or
    /// altered bytes.
    pub(crate) fn decrypt_bsn(&self, sealed: &[u8], pseudonym: &[u8]) -> Result<Bsn, StoreError> {
        let unreadable = || {
            StoreError::Corrupt(
                "an encrypted BSN does not open with the configured encryption key".into(),
            )
        };
        if sealed.len() < NONCE_LEN {
            return Err(unreadable());
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable())?;
        let mut buf = rest.to_vec();
        let plain = self
            .derived
            .encryption
            .open_in_place(nonce, Aad::from(pseudonym), &mut buf)
            .map_err(|_| unreadable())?;
        let text = std::str::from_utf8(plain).map_err(|_| unreadable())?;
        Bsn::parse(text).map_err(|_| {
            StoreError::Corrupt("an encrypted BSN opened to something that is not a BSN".into())
        })
    }

    /// Signs an audit checkpoint message (see `audit::checkpoint_message`).
    pub(crate) fn sign_audit(&self, message: &[u8]) -> Vec<u8> {
        self.derived.audit_signing.sign(message).as_ref().to_vec()
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("development", &self.is_development())
            .field("audit_public_key", &hex::encode(self.audit_public_key()))
            .finish_non_exhaustive()
    }
}

/// Derived from fixed labels so the bytes are obviously not secret.
fn development_raw() -> [[u8; 32]; 4] {
    NAMES.map(|name| {
        let label = format!("otv development key, never for production: {name}");
        digest::digest(&digest::SHA256, label.as_bytes())
            .as_ref()
            .try_into()
            .expect("SHA-256 gives 32 bytes")
    })
}

/// The pseudonym (bytes) an audit record's patient reference stands for: the inverse of
/// [`Keys::patient_reference`]. `None` for a reference it does not make, which names no citizen.
pub(crate) fn pseudonym_of_reference(reference: &str) -> Option<Vec<u8>> {
    hex::decode(reference).ok().filter(|p| p.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bsn() -> Bsn {
        Bsn::parse("900203638").unwrap()
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_between_keys() {
        let dev = Keys::development();
        assert_eq!(dev.pseudonym(&bsn()), Keys::development().pseudonym(&bsn()));
        assert_ne!(dev.pseudonym(&bsn()), Keys::generate().pseudonym(&bsn()));
        assert_ne!(
            dev.pseudonym(&bsn()),
            dev.pseudonym(&Bsn::parse("900203651").unwrap())
        );
    }

    #[test]
    fn encryption_round_trips_and_is_bound_to_key_and_pseudonym() {
        let keys = Keys::generate();
        let p = keys.pseudonym(&bsn());
        let sealed = keys.encrypt_bsn(&bsn(), &p);
        assert_eq!(sealed.len(), 12 + 9 + 16);
        assert_ne!(
            sealed,
            keys.encrypt_bsn(&bsn(), &p),
            "each encryption uses a fresh nonce"
        );
        assert_eq!(keys.decrypt_bsn(&sealed, &p).unwrap(), bsn());
        assert!(keys.decrypt_bsn(&sealed, &[0; 32]).is_err());
        assert!(Keys::generate().decrypt_bsn(&sealed, &p).is_err());
        assert!(keys.decrypt_bsn(&sealed[..5], &p).is_err());
    }

    #[test]
    fn hex_round_trip_and_errors_name_the_key() {
        let keys = Keys::generate();
        let [p, e, a, r] = keys.to_hex();
        let again = Keys::from_hex(&p, &e, &a, &r).unwrap();
        assert_eq!(again.audit_public_key(), keys.audit_public_key());
        assert_eq!(again.receipt_public_key(), keys.receipt_public_key());
        assert_ne!(keys.receipt_public_key(), keys.audit_public_key());
        assert!(!again.is_development());
        let [p, e, a, r] = Keys::development().to_hex();
        assert!(Keys::from_hex(&p, &e, &a, &r).unwrap().is_development());

        assert_eq!(
            Keys::from_hex(&p, &"zz".repeat(32), &a, &r).unwrap_err(),
            KeyError::NotHex { key: "encryption" }
        );
        assert_eq!(
            Keys::from_hex(&p, &e, "abcd", &r).unwrap_err(),
            KeyError::WrongLength {
                key: "audit signing",
                digits: 4
            }
        );
        assert_eq!(
            Keys::from_hex(&p, &e, "abcd", &r).unwrap_err().to_string(),
            "the audit signing key must be 64 hex digits (32 bytes), not 4"
        );
        // Surrounding whitespace (a trailing newline in a key file) is not part of the key.
        assert!(Keys::from_hex(&format!(" {p}\n"), &e, &a, &r).is_ok());
        assert!(matches!(
            Keys::from_hex("abc", &e, &a, &r).unwrap_err(),
            KeyError::WrongLength {
                key: "pseudonym",
                ..
            }
        ));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let keys = Keys::generate();
        let shown = format!("{keys:?}");
        for secret in keys.to_hex() {
            assert!(!shown.contains(&secret));
        }
        assert!(shown.contains("development: false"));
    }
}
