//! The audit log (NEN 7513, PRODUCT.md §11): append-only, each record chained to the previous
//! by SHA-256 over a canonical encoding, with periodic Ed25519-signed checkpoints.

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Keys;
use crate::codec::{micros, rfc3339_micros};

/// What happened, as the caller knows it. The store adds sequence number, time and hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The moment of the event.
    pub at: DateTime<Utc>,
    /// Event type, e.g. `closed-question`, `profile-change`, `subscription-create`.
    pub event: String,
    /// Patient pseudonym (hex), never a BSN. Filled by the store when it knows the patient.
    pub patient: Option<String>,
    /// Acting person: `uzi:<nr> role:<code>`, `citizen`, `representative:<ref>`, `operator`.
    pub actor: String,
    /// Responsible organisation (URA).
    pub organisation: Option<String>,
    /// Mandated assistant (UZI).
    pub mandated: Option<String>,
    /// Request id (`X-Request-Id`).
    pub request_id: Option<String>,
    /// Decision, e.g. `permit`, `deny`, `indeterminate`.
    pub decision: Option<String>,
    /// Reason code.
    pub reason: Option<String>,
    /// Emergency flag.
    pub emergency: bool,
    /// Channel, e.g. `portal`, `raadplegersknop`, `soap`.
    pub channel: Option<String>,
    /// Further details as JSON (never a BSN).
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// This event about the subscription `id`: the id joins the details and, when given,
    /// `outcome` becomes the decision.
    pub(crate) fn about_subscription(&self, id: uuid::Uuid, outcome: Option<&str>) -> AuditEvent {
        let mut event = self.clone();
        match &mut event.details {
            serde_json::Value::Object(map) => {
                map.insert("subscription".into(), serde_json::json!(id));
            }
            other => {
                *other = serde_json::json!({ "subscription": id, "details": other.clone() });
            }
        }
        if let Some(outcome) = outcome {
            event.decision = Some(outcome.into());
        }
        event
    }
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// The event.
    pub event: AuditEvent,
    /// Hash of the previous record (32 zero bytes for the first).
    pub prev_hash: Vec<u8>,
    /// SHA-256 over `prev_hash` and the canonical encoding of this record.
    pub hash: Vec<u8>,
}

/// Outcome of walking the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Checkpoints whose signature was checked.
    pub checkpoints: u64,
    /// The first record (or checkpoint) that does not verify, with what is wrong.
    pub first_broken: Option<(i64, String)>,
}

// ---------------------------------------------------------------------------------------------
// What both backends share: the canonical encoding, the chain hash, checkpoint signatures and
// the walk that verifies the chain. The backends only move rows; they never decide what is
// valid.

/// A checkpoint is written every this many records (and on demand).
pub(crate) const CHECKPOINT_EVERY: i64 = 1000;

/// The `prev_hash` of record 1.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// Starts every canonical encoding, so that a later format can never collide with this one.
const FORMAT: &str = "otv-audit-v1";

/// An event ready to be appended at `seq`: time cut to microseconds (what the databases keep),
/// details serialised once, and the chain hash over exactly those bytes.
pub(crate) struct Prepared {
    pub seq: i64,
    pub event: AuditEvent,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl Prepared {
    pub fn new(seq: i64, event: &AuditEvent, prev_hash: &[u8]) -> Prepared {
        Prepared::from_event(seq, event.clone(), prev_hash)
    }

    /// As [`Prepared::new`], taking the event.
    pub fn from_event(seq: i64, event: AuditEvent, prev_hash: &[u8]) -> Prepared {
        let details = event.details.to_string();
        Prepared::with_details(seq, event, details, prev_hash)
    }

    /// As [`Prepared::from_event`], with the details already as the JSON text to store (the
    /// event's own `details` are not read).
    pub fn with_details(
        seq: i64,
        mut event: AuditEvent,
        details: String,
        prev_hash: &[u8],
    ) -> Prepared {
        event.at = micros(event.at);
        let hash = chain_hash(prev_hash, &canonical(seq, &event, &details));
        Prepared {
            seq,
            event,
            details,
            prev_hash: prev_hash.to_vec(),
            hash,
        }
    }
}

/// The bytes a record's hash covers. Every field is present and unambiguous: strings as a u32
/// big-endian length and their UTF-8 bytes, an absent optional as a single 0 byte (a present
/// one as 1 and the string, so `None` differs from `Some("")`), the time as RFC 3339 with six
/// fractional digits and `Z`, the details as the JSON text that is stored (not a re-encoding of
/// it, so that the check is about the stored bytes).
pub(crate) fn canonical(seq: i64, e: &AuditEvent, details_json: &str) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, s: &str) {
        let len = u32::try_from(s.len()).expect("audit field shorter than 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn put_opt(out: &mut Vec<u8>, s: &Option<String>) {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put(out, s);
            }
        }
    }
    let mut out = Vec::with_capacity(160 + details_json.len());
    put(&mut out, FORMAT);
    out.extend_from_slice(&seq.to_be_bytes());
    put(&mut out, &rfc3339_micros(e.at));
    put(&mut out, &e.event);
    put_opt(&mut out, &e.patient);
    put(&mut out, &e.actor);
    put_opt(&mut out, &e.organisation);
    put_opt(&mut out, &e.mandated);
    put_opt(&mut out, &e.request_id);
    put_opt(&mut out, &e.decision);
    put_opt(&mut out, &e.reason);
    out.push(u8::from(e.emergency));
    put_opt(&mut out, &e.channel);
    put(&mut out, details_json);
    out
}

/// `SHA-256(prev_hash || canonical)`.
pub(crate) fn chain_hash(prev_hash: &[u8], canonical: &[u8]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash);
    ctx.update(canonical);
    ctx.finish().as_ref().to_vec()
}

/// What a checkpoint signs: the sequence number (8 bytes big-endian) and the record's hash.
fn checkpoint_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut m = seq.to_be_bytes().to_vec();
    m.extend_from_slice(hash);
    m
}

/// A signed checkpoint, as stored.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub signature: Vec<u8>,
    pub public_key: Vec<u8>,
}

impl Checkpoint {
    pub fn sign(keys: &Keys, seq: i64, hash: &[u8]) -> Checkpoint {
        Checkpoint {
            seq,
            hash: hash.to_vec(),
            signature: keys.sign_audit(&checkpoint_message(seq, hash)),
            public_key: keys.audit_public_key(),
        }
    }

    /// Why the checkpoint cannot be trusted, if it cannot. The stored public key must be the
    /// configured one: otherwise whoever can write the database could re-sign a rewritten chain
    /// with a key of their own.
    fn problem(&self, trusted_key: &[u8]) -> Option<String> {
        if self.public_key != trusted_key {
            return Some(
                "checkpoint is signed by another key than the configured audit signing key".into(),
            );
        }
        let key = UnparsedPublicKey::new(&ED25519, &self.public_key);
        match key.verify(&checkpoint_message(self.seq, &self.hash), &self.signature) {
            Ok(()) => None,
            Err(_) => Some("checkpoint signature invalid".into()),
        }
    }
}

/// One stored record, as the verifier reads it.
pub(crate) struct StoredRecord {
    pub seq: i64,
    pub event: AuditEvent,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Walks the records in sequence order, with the checkpoints beside them, and stops at the
/// first problem. Holds only the previous record, so a chain of any length fits in memory.
pub(crate) struct Verifier {
    trusted_key: Vec<u8>,
    checkpoints: BTreeMap<i64, Checkpoint>,
    head: (i64, Vec<u8>),
    last: Option<(i64, Vec<u8>)>,
    report: VerifyReport,
}

impl Verifier {
    /// `head` is the `audit_head` row read before the records (records after it are not
    /// walked); `checkpoints` all those at or below it.
    pub fn new(keys: &Keys, head: (i64, Vec<u8>), checkpoints: Vec<Checkpoint>) -> Verifier {
        Verifier {
            trusted_key: keys.audit_public_key(),
            checkpoints: checkpoints.into_iter().map(|c| (c.seq, c)).collect(),
            head,
            last: None,
            report: VerifyReport::default(),
        }
    }

    fn broken(&mut self, seq: i64, what: impl Into<String>) -> bool {
        self.report.first_broken = Some((seq, what.into()));
        false
    }

    /// Checks a checkpoint's signature and counts it; false if it is bad.
    fn checkpoint_ok(&mut self, seq: i64) -> bool {
        let Some(c) = self.checkpoints.get(&seq) else {
            return true;
        };
        let problem = c.problem(&self.trusted_key);
        self.report.checkpoints += 1;
        match problem {
            Some(p) => self.broken(seq, p),
            None => true,
        }
    }

    /// Feeds the next record; false once something is broken (stop feeding).
    pub fn record(&mut self, r: &StoredRecord) -> bool {
        let (expected_seq, expected_prev) = match self.last.take() {
            Some((seq, hash)) => (seq + 1, hash),
            None if r.seq == 1 => (1, GENESIS.to_vec()),
            None => {
                // The start was purged; the checkpoint just before it vouches for the link.
                let anchor = r.seq - 1;
                let Some(c) = self.checkpoints.get(&anchor) else {
                    return self.broken(r.seq, format!("records before {} are missing and no checkpoint at {anchor} anchors the rest", r.seq));
                };
                let anchor_hash = c.hash.clone();
                if !self.checkpoint_ok(anchor) {
                    return false;
                }
                (r.seq, anchor_hash)
            }
        };
        if r.seq != expected_seq {
            let what = format!(
                "record {expected_seq} is missing (the next record is {})",
                r.seq
            );
            return self.broken(expected_seq, what);
        }
        if r.prev_hash != expected_prev {
            let what = if r.seq == 1 {
                "prev_hash of the first record is not zero".to_owned()
            } else {
                format!("prev_hash does not link to record {}", r.seq - 1)
            };
            return self.broken(r.seq, what);
        }
        if chain_hash(&r.prev_hash, &canonical(r.seq, &r.event, &r.details)) != r.hash {
            return self.broken(r.seq, "hash does not match contents");
        }
        self.report.records += 1;
        if let Some(c) = self.checkpoints.get(&r.seq)
            && c.hash != r.hash
        {
            return self.broken(r.seq, "checkpoint hash does not match the record");
        }
        if !self.checkpoint_ok(r.seq) {
            return false;
        }
        self.last = Some((r.seq, r.hash.clone()));
        true
    }

    /// Checks the end of the chain against the head and what no record vouched for.
    pub fn finish(mut self) -> VerifyReport {
        if self.report.first_broken.is_some() {
            return self.report;
        }
        let (head_seq, head_hash) = self.head.clone();
        match self.last.clone() {
            Some((seq, hash)) => {
                if seq != head_seq {
                    self.broken(
                        seq + 1,
                        format!("records after {seq} are missing (the head is at {head_seq})"),
                    );
                    return self.report;
                }
                if hash != head_hash {
                    self.broken(seq, "the head does not match the last record");
                    return self.report;
                }
            }
            // Empty log: either never written, or purged up to a checkpoint at the head.
            None if head_seq == 0 => {}
            None => match self.checkpoints.get(&head_seq) {
                Some(c) if c.hash == head_hash => {
                    if !self.checkpoint_ok(head_seq) {
                        return self.report;
                    }
                }
                _ => {
                    self.broken(head_seq, format!("records up to {head_seq} are missing and no checkpoint vouches for the head"));
                    return self.report;
                }
            },
        }
        // Checkpoints before the first record (purged history) only prove they were signed;
        // one beyond the last record points at nothing.
        let first = head_seq - self.report.records as i64 + 1;
        let unvisited: Vec<i64> = self
            .checkpoints
            .keys()
            .copied()
            .filter(|&s| s < first - 1 || s > head_seq)
            .collect();
        for seq in unvisited {
            if seq > head_seq {
                self.broken(seq, "checkpoint for a record that does not exist");
                break;
            }
            if !self.checkpoint_ok(seq) {
                break;
            }
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent {
            at: "2024-05-06T07:08:09.123456789Z".parse().unwrap(),
            event: "closed-question".into(),
            patient: Some("ab".repeat(32)),
            actor: "uzi:900000001 role:01.015".into(),
            organisation: Some("00000001".into()),
            mandated: None,
            request_id: Some("req-1".into()),
            decision: Some("deny".into()),
            reason: Some("no-answer".into()),
            emergency: false,
            channel: Some("soap".into()),
            details: serde_json::json!({ "b": [1, 2], "a": "x" }),
        }
    }

    #[test]
    fn the_canonical_encoding_is_pinned() {
        // Changing the encoding would make every stored chain fail verification: this hash may
        // only change together with FORMAT. (Computed independently from the documented
        // encoding, not by this code.)
        let p = Prepared::new(7, &event(), &GENESIS);
        assert_eq!(p.details, r#"{"a":"x","b":[1,2]}"#);
        assert_eq!(rfc3339_micros(p.event.at), "2024-05-06T07:08:09.123456Z");
        assert_eq!(
            hex::encode(&p.hash),
            "fbe0450d9645acbada7d35b1eb86e9701c981f2c07aef835b8938a71d87690f9"
        );
    }

    #[test]
    fn every_field_is_covered_and_none_differs_from_empty() {
        let base = Prepared::new(1, &event(), &GENESIS).hash;
        let changes: Vec<fn(&mut AuditEvent)> = vec![
            |e| e.at += chrono::Duration::microseconds(1),
            |e| e.event.push('x'),
            |e| e.patient = None,
            |e| e.actor.push('x'),
            |e| e.organisation = None,
            |e| e.mandated = Some(String::new()),
            |e| e.request_id = Some("req-2".into()),
            |e| e.decision = Some("permit".into()),
            |e| e.reason = None,
            |e| e.emergency = true,
            |e| e.channel = Some(String::new()),
            |e| e.details = serde_json::json!({}),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut e = event();
            change(&mut e);
            assert_ne!(
                Prepared::new(1, &e, &GENESIS).hash,
                base,
                "change {i} not covered"
            );
        }
        assert_ne!(
            Prepared::new(2, &event(), &GENESIS).hash,
            base,
            "seq not covered"
        );
        assert_ne!(
            Prepared::new(1, &event(), &[1; 32]).hash,
            base,
            "prev_hash not covered"
        );
        // Field boundaries are unambiguous: moving a character between fields changes the hash.
        let mut a = event();
        a.event = "closed-questio".into();
        a.actor = "nuzi:900000001 role:01.015".into();
        assert_ne!(Prepared::new(1, &a, &GENESIS).hash, base);
    }

    fn chain(keys: &Keys, n: i64) -> (Vec<StoredRecord>, Vec<Checkpoint>) {
        let mut prev = GENESIS.to_vec();
        let mut records = Vec::new();
        let mut checkpoints = Vec::new();
        for seq in 1..=n {
            let p = Prepared::new(seq, &event(), &prev);
            prev = p.hash.clone();
            if seq % CHECKPOINT_EVERY == 0 {
                checkpoints.push(Checkpoint::sign(keys, seq, &p.hash));
            }
            records.push(StoredRecord {
                seq,
                event: p.event,
                details: p.details,
                prev_hash: p.prev_hash,
                hash: p.hash,
            });
        }
        (records, checkpoints)
    }

    fn verify(
        keys: &Keys,
        records: &[StoredRecord],
        checkpoints: Vec<Checkpoint>,
        head: (i64, Vec<u8>),
    ) -> VerifyReport {
        let mut v = Verifier::new(keys, head, checkpoints);
        for r in records {
            if !v.record(r) {
                break;
            }
        }
        v.finish()
    }

    #[test]
    fn the_verifier_accepts_a_chain_and_names_the_first_problem() {
        let keys = Keys::generate();
        let (records, checkpoints) = chain(&keys, 2_100);
        let head = (2_100, records.last().unwrap().hash.clone());
        let report = verify(&keys, &records, checkpoints.clone(), head.clone());
        assert_eq!(
            report,
            VerifyReport {
                records: 2_100,
                checkpoints: 2,
                first_broken: None
            }
        );

        let mut tampered = chain(&keys, 2_100).0;
        tampered[99].event.emergency = true;
        tampered[1_499].details = "{}".into();
        let report = verify(&keys, &tampered, checkpoints.clone(), head.clone());
        assert_eq!(
            report.first_broken,
            Some((100, "hash does not match contents".into()))
        );
        assert_eq!(report.records, 99);

        // Starting after a purge needs the anchoring checkpoint.
        let rest = &records[1_000..];
        assert_eq!(
            verify(&keys, rest, checkpoints.clone(), head.clone()).first_broken,
            None
        );
        let report = verify(&keys, rest, checkpoints[1..].to_vec(), head.clone());
        assert_eq!(report.first_broken.map(|b| b.0), Some(1_001));

        // The head must match the last record.
        let report = verify(&keys, &records[..2_099], checkpoints, head);
        assert_eq!(report.first_broken.map(|b| b.0), Some(2_100));
    }
}
