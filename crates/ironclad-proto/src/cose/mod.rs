//! The COSE layer under every signed or encrypted ironclad message (RFC 9052/9053 via `coset`):
//! one strict COSE_Sign1 envelope, the CBOR payload helpers, and the keys.
//!
//! Every parser here checks the length before decoding, refuses trailing bytes, requires the
//! CBOR tag, requires `alg` in the protected header, refuses labels present in both header
//! buckets and any critical parameter it does not process (RFC 9052 §3.1).

pub(crate) mod cbor;
pub(crate) mod keys;

use coset::{
    CoseError, CoseSign1, CoseSign1Builder, Header, HeaderBuilder, RegisteredLabel,
    RegisteredLabelWithPrivate, TaggedCborSerializable, iana,
};

use crate::error::{Error, Result};
use keys::{CoseSigner, SigAlg, VerifyingKey, cose_signature};

/// Size limits applied before any parsing, with their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest signed message (manifest, command, telemetry): 64 KiB. Commands and telemetry
    /// are control messages; bulk data travels separately, bound by a digest.
    pub max_signed_len: usize,
    /// Largest encrypted log record (the whole COSE_Encrypt0): 64 KiB.
    pub max_log_record_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_signed_len: 64 * 1024, max_log_record_len: 64 * 1024 }
    }
}

/// Maps a `coset` decoding error to ours, keeping trailing bytes distinct.
pub(crate) fn cose_error(what: &'static str, e: CoseError) -> Error {
    match e {
        CoseError::ExtraneousData => Error::TrailingBytes { what },
        other => Error::Malformed { what, reason: other.to_string() },
    }
}

pub(crate) fn check_len(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max { Err(Error::TooLarge { what, len, max }) } else { Ok(()) }
}

/// Header parameters whose meaning this crate processes; only these may be marked critical.
fn understood(label: i64) -> bool {
    [
        iana::HeaderParameter::Alg,
        iana::HeaderParameter::ContentType,
        iana::HeaderParameter::Kid,
        iana::HeaderParameter::Iv,
    ]
    .iter()
    .any(|p| *p as i64 == label)
}

/// The labels present in a header, for the disjointness check.
fn labels(h: &Header) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |present: bool, p: iana::HeaderParameter| {
        if present {
            out.push((p as i64).to_string());
        }
    };
    push(h.alg.is_some(), iana::HeaderParameter::Alg);
    push(!h.crit.is_empty(), iana::HeaderParameter::Crit);
    push(h.content_type.is_some(), iana::HeaderParameter::ContentType);
    push(!h.key_id.is_empty(), iana::HeaderParameter::Kid);
    push(!h.iv.is_empty(), iana::HeaderParameter::Iv);
    push(!h.partial_iv.is_empty(), iana::HeaderParameter::PartialIv);
    push(!h.counter_signatures.is_empty(), iana::HeaderParameter::CounterSignature);
    out.extend(h.rest.iter().map(|(l, _)| format!("{l:?}")));
    out
}

/// The header rules shared by every message: `crit` only in the protected bucket and naming
/// only understood parameters; no label in both buckets.
pub(crate) fn check_headers(what: &'static str, protected: &Header, unprotected: &Header) -> Result<()> {
    if let Some(label) = unprotected.crit.first() {
        return Err(Error::UnknownCritical {
            label: format!("{label:?} (crit outside the protected header)"),
        });
    }
    for label in &protected.crit {
        let ok = match label {
            RegisteredLabelWithPrivate::Assigned(p) => understood(*p as i64),
            RegisteredLabelWithPrivate::PrivateUse(n) => understood(*n),
            RegisteredLabelWithPrivate::Text(_) => false,
        };
        if !ok {
            return Err(Error::UnknownCritical { label: format!("{label:?}") });
        }
    }
    let p = labels(protected);
    if let Some(dup) = labels(unprotected).into_iter().find(|l| p.contains(l)) {
        return Err(Error::Malformed { what, reason: format!("header label {dup} in both header buckets") });
    }
    Ok(())
}

/// The algorithm of a protected header, as text for errors.
pub(crate) fn alg_text(h: &Header) -> String {
    match &h.alg {
        None => "none (alg must be in the protected header)".to_owned(),
        Some(RegisteredLabelWithPrivate::Assigned(a)) => format!("{a:?} ({})", *a as i64),
        Some(other) => format!("{other:?}"),
    }
}

/// The protected text content type, if any.
fn content_type_text(h: &Header) -> String {
    match &h.content_type {
        None => "none".to_owned(),
        Some(RegisteredLabel::Text(t)) => t.clone(),
        Some(other) => format!("{other:?}"),
    }
}

/// Builds a tagged COSE_Sign1 with protected `{alg, content type, kid}` over `payload`,
/// signed by `signer` (empty external AAD).
pub(crate) fn sign1(
    signer: &dyn CoseSigner,
    kid: &[u8],
    content_type: &str,
    payload: Vec<u8>,
) -> Result<Vec<u8>> {
    let alg = signer.algorithm();
    let protected = HeaderBuilder::new()
        .algorithm(alg.iana())
        .content_type(content_type.to_owned())
        .key_id(kid.to_vec())
        .build();
    let msg = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .try_create_signature(b"", |tbs| {
            let sig = signer.sign(tbs).map_err(Error::KeyOperation)?;
            cose_signature(alg, &sig)
        })?
        .build();
    msg.to_tagged_vec().map_err(|e| Error::Malformed { what: "COSE_Sign1", reason: e.to_string() })
}

/// A structurally valid COSE_Sign1 of one message kind whose signature is not yet checked.
#[derive(Clone, Debug)]
pub(crate) struct Sign1 {
    msg: CoseSign1,
    alg: SigAlg,
}

impl Sign1 {
    /// Parses a tagged COSE_Sign1 of kind `what` whose protected content type must be
    /// `content_type`.
    pub(crate) fn parse(
        what: &'static str,
        bytes: &[u8],
        max_len: usize,
        content_type: &'static str,
    ) -> Result<Self> {
        check_len(what, bytes.len(), max_len)?;
        let msg = CoseSign1::from_tagged_slice(bytes).map_err(|e| cose_error(what, e))?;
        let protected = &msg.protected.header;
        check_headers(what, protected, &msg.unprotected)?;
        let alg = match &protected.alg {
            Some(RegisteredLabelWithPrivate::Assigned(a)) => SigAlg::from_iana(*a),
            _ => None,
        }
        .ok_or_else(|| Error::WrongAlgorithm { expected: "ES256 or EdDSA", found: alg_text(protected) })?;
        match &protected.content_type {
            Some(RegisteredLabel::Text(t)) if t == content_type => {}
            _ => {
                return Err(Error::WrongContentType {
                    expected: content_type,
                    found: content_type_text(protected),
                });
            }
        }
        if msg.payload.is_none() {
            return Err(Error::Malformed { what, reason: "detached payload".to_owned() });
        }
        Ok(Self { msg, alg })
    }

    /// The key id (protected, else unprotected). Not authenticated until [`Sign1::verify`].
    pub(crate) fn kid(&self) -> &[u8] {
        let p = &self.msg.protected.header.key_id;
        if p.is_empty() { &self.msg.unprotected.key_id } else { p }
    }

    /// The payload bytes. Not authenticated until [`Sign1::verify`].
    pub(crate) fn payload(&self) -> &[u8] {
        self.msg.payload.as_deref().unwrap_or_default()
    }

    /// Checks the signature with `key`, whose algorithm must be the one the header names.
    pub(crate) fn verify(&self, key: &VerifyingKey) -> Result<()> {
        if key.algorithm() != self.alg {
            return Err(Error::WrongAlgorithm {
                expected: key.algorithm().name(),
                found: self.alg.to_string(),
            });
        }
        self.msg.verify_signature(b"", |sig, tbs| key.verify(tbs, sig))
    }

    /// Looks the key up by kid in `keys`, then verifies.
    pub(crate) fn verify_with(&self, keys: &keys::TrustedKeys) -> Result<()> {
        let key =
            keys.get(self.kid()).ok_or_else(|| Error::UnknownKey { kid_hex: hex::encode(self.kid()) })?;
        self.verify(key)
    }
}
