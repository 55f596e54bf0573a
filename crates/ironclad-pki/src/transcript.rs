//! The key-ceremony transcript: every step, hash-chained, closed by a signature of the root.
//!
//! Each entry commits to the previous one (`prev` = the previous entry's `hash`), so changing,
//! inserting, removing or reordering any step breaks the chain at that exact step. The last
//! hash is signed by the root key (inside its secure element), and the root's public key is
//! itself recorded in the first entry, so a verifier needs only the transcript and the
//! root fingerprint it expects.
//!
//! Entry hash = SHA-256 over `"ironclad-transcript-v1\n" ‖ seq ‖ "\n" ‖ time ‖ "\n" ‖ step ‖ "\n"
//! ‖ prev ‖ "\n" ‖ canonical JSON of detail` (serde_json with sorted object keys).

use rcgen::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ca::sha256;
use crate::error::{Error, Result};

const DOMAIN: &str = "ironclad-transcript-v1";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One step of a ceremony.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// 0, 1, 2, ...
    pub seq: u64,
    /// RFC 3339 time the step was recorded.
    pub time: String,
    /// What happened, e.g. `root-key-generated`, `share-handed-out`.
    pub step: String,
    /// Step details: fingerprints, participants, parameters. Never secrets.
    pub detail: Value,
    /// Hash of the previous entry (64 zeros for the first).
    pub prev: String,
    /// This entry's hash.
    pub hash: String,
}

/// The signed end of a transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    /// Hash of the last entry.
    pub head: String,
    /// Signature algorithm: `ecdsa-p256-sha256` or `ed25519`.
    pub algorithm: String,
    /// Signature over the ASCII hex of `head`, hex-encoded (DER for ECDSA).
    pub signature: String,
}

/// A transcript being written or read back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The steps, in order.
    pub entries: Vec<Entry>,
    /// Present once the ceremony is closed.
    pub seal: Option<Seal>,
}

fn entry_hash(seq: u64, time: &str, step: &str, prev: &str, detail: &Value) -> String {
    let canonical = serde_json::to_string(detail).unwrap_or_default();
    let text = format!("{DOMAIN}\n{seq}\n{time}\n{step}\n{prev}\n{canonical}");
    hex::encode(sha256(text.as_bytes()))
}

impl Transcript {
    /// Starts a transcript whose first entry records the root's public key (SubjectPublicKeyInfo
    /// DER) and whatever else the ceremony states up front (participants, script hash).
    pub fn begin(time: &str, root_spki_der: &[u8], mut detail: Value) -> Self {
        if let Value::Object(map) = &mut detail {
            map.insert("root_spki".into(), Value::String(hex::encode(root_spki_der)));
        }
        let mut t = Transcript::default();
        t.record(time, "ceremony-begin", detail);
        t
    }

    /// Appends a step. Refused after the transcript was sealed.
    pub fn record(&mut self, time: &str, step: &str, detail: Value) -> &Entry {
        let seq = self.entries.len() as u64;
        let prev = self.entries.last().map_or(GENESIS.to_owned(), |e| e.hash.clone());
        let hash = entry_hash(seq, time, step, &prev, &detail);
        self.seal = None;
        self.entries.push(Entry { seq, time: time.to_owned(), step: step.to_owned(), detail, prev, hash });
        &self.entries[self.entries.len() - 1]
    }

    /// Closes the transcript with the root key's signature over the head hash.
    pub fn seal(&mut self, root: &dyn SigningKey) -> Result<()> {
        let head = self
            .entries
            .last()
            .map(|e| e.hash.clone())
            .ok_or(Error::TranscriptMalformed { reason: "empty transcript".into() })?;
        let algorithm =
            if root.algorithm() == &rcgen::PKCS_ED25519 { "ed25519" } else { "ecdsa-p256-sha256" };
        let signature = root.sign(head.as_bytes()).map_err(Error::CertificateBuild)?;
        self.seal = Some(Seal { head, algorithm: algorithm.into(), signature: hex::encode(signature) });
        Ok(())
    }

    /// Checks the chain step by step and the seal; returns the root SPKI the transcript names.
    /// The first failing step is named in the error.
    pub fn verify(&self) -> Result<Vec<u8>> {
        let mut prev = GENESIS.to_owned();
        for (i, e) in self.entries.iter().enumerate() {
            let tampered = |reason| Error::TranscriptTampered { seq: i as u64, step: e.step.clone(), reason };
            if e.seq != i as u64 {
                return Err(tampered("sequence number out of order (a step was removed or inserted)"));
            }
            if e.prev != prev {
                return Err(tampered("does not link to the previous step"));
            }
            if entry_hash(e.seq, &e.time, &e.step, &e.prev, &e.detail) != e.hash {
                return Err(tampered("content does not match its hash"));
            }
            prev = e.hash.clone();
        }
        let first =
            self.entries.first().ok_or(Error::TranscriptMalformed { reason: "empty transcript".into() })?;
        let spki =
            first.detail.get("root_spki").and_then(Value::as_str).and_then(|h| hex::decode(h).ok()).ok_or(
                Error::TranscriptMalformed { reason: "first step does not name the root key".into() },
            )?;
        let seal = self.seal.as_ref().ok_or(Error::TranscriptMalformed { reason: "not sealed".into() })?;
        if seal.head != prev {
            return Err(Error::TranscriptTampered {
                seq: self.entries.len() as u64 - 1,
                step: self.entries[self.entries.len() - 1].step.clone(),
                reason: "the seal covers a different last step (steps were added or removed at the end)",
            });
        }
        let signature = hex::decode(&seal.signature).map_err(|_| Error::TranscriptSignatureInvalid)?;
        verify_with_spki(&spki, &seal.algorithm, seal.head.as_bytes(), &signature)?;
        Ok(spki)
    }

    /// JSON text for the transcript file.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a transcript file (it still has to be [`verify`](Self::verify)-ed).
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::TranscriptMalformed { reason: e.to_string() })
    }
}

/// Verifies `signature` over `message` with a key given as SubjectPublicKeyInfo DER.
fn verify_with_spki(spki: &[u8], algorithm: &str, message: &[u8], signature: &[u8]) -> Result<()> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey};
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).map_err(|_| {
        Error::TranscriptMalformed { reason: "root key is not a SubjectPublicKeyInfo".into() }
    })?;
    let key = info.subject_public_key.data.as_ref();
    let result = match algorithm {
        "ed25519" => UnparsedPublicKey::new(&ED25519, key).verify(message, signature),
        "ecdsa-p256-sha256" => {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key).verify(message, signature)
        }
        _ => return Err(Error::TranscriptMalformed { reason: format!("unknown algorithm {algorithm:?}") }),
    };
    result.map_err(|_| Error::TranscriptSignatureInvalid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rcgen::{KeyPair, PublicKeyData};
    use serde_json::json;

    use super::*;

    fn sealed(key: &KeyPair) -> Transcript {
        let mut t = Transcript::begin(
            "2026-11-22T10:00:00Z",
            &key.subject_public_key_info(),
            json!({"participants": ["alice", "bob"]}),
        );
        t.record("2026-11-22T10:01:00Z", "root-key-generated", json!({"fingerprint": "ab12"}));
        t.record("2026-11-22T10:02:00Z", "root-certificate", json!({"sha256": "cd34"}));
        t.record("2026-11-22T10:03:00Z", "share-handed-out", json!({"to": "carol", "share": 1}));
        t.seal(key).unwrap();
        t
    }

    #[test]
    fn a_sealed_transcript_verifies_after_a_round_trip() {
        for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
            let key = KeyPair::generate_for(alg).unwrap();
            let t = Transcript::from_json(&sealed(&key).to_json()).unwrap();
            assert_eq!(t.verify().unwrap(), key.subject_public_key_info());
        }
    }

    #[test]
    fn tampering_is_named_at_the_exact_step() {
        let key = KeyPair::generate().unwrap();
        let good = sealed(&key);

        let mut t = good.clone();
        t.entries[2].detail = json!({"sha256": "ffff"});
        assert!(matches!(t.verify(), Err(Error::TranscriptTampered { seq: 2, .. })));

        let mut t = good.clone();
        t.entries.remove(1);
        assert!(matches!(t.verify(), Err(Error::TranscriptTampered { seq: 1, .. })));

        let mut t = good.clone();
        t.entries.swap(1, 2);
        assert!(matches!(t.verify(), Err(Error::TranscriptTampered { seq: 1, .. })));

        // Re-hashing an altered step still breaks the link from the next one.
        let mut t = good.clone();
        let e = &mut t.entries[1];
        e.detail = json!({"fingerprint": "evil"});
        e.hash = entry_hash(e.seq, &e.time, &e.step, &e.prev, &e.detail);
        assert!(matches!(t.verify(), Err(Error::TranscriptTampered { seq: 2, .. })));

        // Re-hashing everything needs the root's signature.
        let mut t = good.clone();
        t.entries.pop();
        t.seal.as_mut().unwrap().head = t.entries.last().unwrap().hash.clone();
        assert!(matches!(t.verify(), Err(Error::TranscriptSignatureInvalid)));

        let mut t = good.clone();
        t.record("2026-11-22T11:00:00Z", "appended-later", json!({}));
        assert!(matches!(t.verify(), Err(Error::TranscriptMalformed { .. })), "record() unseals");

        let other = KeyPair::generate().unwrap();
        let mut t = good;
        t.seal(&other).unwrap();
        assert!(matches!(t.verify(), Err(Error::TranscriptSignatureInvalid)));
    }
}
