//! Signature algorithms, verification keys and the signer trait that secure elements implement.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey};
use coset::iana;

use crate::error::{Error, Result};

/// The two COSE signature algorithms ironclad uses (RFC 9053 §2.1, §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigAlg {
    /// ECDSA P-256 with SHA-256, COSE `alg` -7; signature = r ‖ s, 32 bytes each.
    Es256,
    /// EdDSA with Ed25519, COSE `alg` -8 (RFC 9053 §2.2); 64-byte signature.
    EdDsa,
}

impl SigAlg {
    /// The COSE algorithm identifier.
    pub fn cose_id(self) -> i64 {
        self.iana() as i64
    }

    /// The registered name (`ES256`, `EdDSA`).
    pub fn name(self) -> &'static str {
        match self {
            SigAlg::Es256 => "ES256",
            SigAlg::EdDsa => "EdDSA",
        }
    }

    pub(crate) fn iana(self) -> iana::Algorithm {
        match self {
            SigAlg::Es256 => iana::Algorithm::ES256,
            SigAlg::EdDsa => iana::Algorithm::EdDSA,
        }
    }

    pub(crate) fn from_iana(alg: iana::Algorithm) -> Option<Self> {
        match alg {
            iana::Algorithm::ES256 => Some(SigAlg::Es256),
            iana::Algorithm::EdDSA => Some(SigAlg::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for SigAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// DER SubjectPublicKeyInfo prefixes: SEQUENCE { AlgorithmIdentifier, BIT STRING 0x00 || key }.
// DER is canonical, so a supported key's SPKI is exactly prefix || raw key.
const SPKI_P256_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKI_ED25519_PREFIX: &[u8] = &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A public key that verifies COSE signatures: P-256 (ES256) or Ed25519 (EdDSA), validated on
/// construction.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: SigAlg,
    raw: Vec<u8>,
    parsed: ParsedPublicKey,
}

impl VerifyingKey {
    /// From the raw form: a 65-byte uncompressed SEC1 point for [`SigAlg::Es256`], 32 bytes for
    /// [`SigAlg::EdDsa`] (the form `ironclad_se::PublicKey::as_bytes` returns).
    pub fn from_raw(alg: SigAlg, raw: &[u8]) -> Result<Self> {
        let parsed = match alg {
            SigAlg::Es256 if raw.len() == 65 && raw[0] == 0x04 => {
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, raw)
            }
            SigAlg::Es256 => return Err(Error::InvalidKey("P-256 keys are 65-byte uncompressed points")),
            SigAlg::EdDsa if raw.len() == 32 => ParsedPublicKey::new(&signature::ED25519, raw),
            SigAlg::EdDsa => return Err(Error::InvalidKey("Ed25519 keys are 32 bytes")),
        }
        .map_err(|_| Error::InvalidKey("not a valid point"))?;
        Ok(Self { alg, raw: raw.to_vec(), parsed })
    }

    /// From a DER SubjectPublicKeyInfo (certificates, `openssl pkey -pubin -outform DER`):
    /// id-ecPublicKey on P-256 with an uncompressed point, or id-Ed25519.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        if let Some(raw) = der.strip_prefix(SPKI_P256_PREFIX) {
            Self::from_raw(SigAlg::Es256, raw)
        } else if let Some(raw) = der.strip_prefix(SPKI_ED25519_PREFIX) {
            Self::from_raw(SigAlg::EdDsa, raw)
        } else {
            Err(Error::InvalidKey("SubjectPublicKeyInfo is not an uncompressed P-256 or Ed25519 key"))
        }
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> SigAlg {
        self.alg
    }

    /// The raw public key.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Vec<u8> {
        let prefix = match self.alg {
            SigAlg::Es256 => SPKI_P256_PREFIX,
            SigAlg::EdDsa => SPKI_ED25519_PREFIX,
        };
        [prefix, &self.raw].concat()
    }

    /// Verifies a COSE signature (raw r ‖ s for ES256) over `message`.
    pub(crate) fn verify(&self, message: &[u8], sig: &[u8]) -> Result<()> {
        if sig.len() != 64 {
            return Err(Error::BadSignature);
        }
        self.parsed.verify_sig(message, sig).map_err(|_| Error::BadSignature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey {{ alg: {}, raw: {} }}", self.alg, hex::encode(&self.raw))
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg && self.raw == other.raw
    }
}

impl Eq for VerifyingKey {}

/// The keys a verifier trusts, by COSE key id (`kid`): several at once during a key rotation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: BTreeMap<Vec<u8>, VerifyingKey>,
}

impl TrustedKeys {
    /// No keys: everything is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// One key.
    pub fn single(kid: impl Into<Vec<u8>>, key: VerifyingKey) -> Self {
        let mut keys = Self::new();
        keys.insert(kid, key);
        keys
    }

    /// Adds or replaces the key with id `kid`.
    pub fn insert(&mut self, kid: impl Into<Vec<u8>>, key: VerifyingKey) {
        self.keys.insert(kid.into(), key);
    }

    /// The key with id `kid`.
    pub fn get(&self, kid: &[u8]) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A private signing key held elsewhere, typically in a secure element: proto never sees key
/// bytes. `ironclad_se::KeyHandle` fits directly (`KeyHandle::sign(SignInput::Message(..))`).
pub trait CoseSigner {
    /// ES256 for P-256 keys, EdDSA for Ed25519 keys.
    fn algorithm(&self) -> SigAlg;
    /// Signs `message` (the COSE `Sig_structure`). ES256 signers return the ASN.1 DER
    /// `ECDSA-Sig-Value` (what secure elements, PKCS#11 wrappers and `KeyHandle::sign` give);
    /// proto converts it to COSE's fixed r ‖ s. EdDSA signers return the 64-byte signature.
    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, String>;
}

/// A [`CoseSigner`] from an algorithm and a closure, for callers that hold a key handle:
/// `FnSigner::new(SigAlg::Es256, |m| handle.sign(SignInput::Message(m)).map_err(|e| e.to_string()))`.
pub struct FnSigner<F> {
    alg: SigAlg,
    sign: F,
}

impl<F> FnSigner<F>
where
    F: Fn(&[u8]) -> std::result::Result<Vec<u8>, String>,
{
    /// The signer.
    pub fn new(alg: SigAlg, sign: F) -> Self {
        Self { alg, sign }
    }
}

impl<F> fmt::Debug for FnSigner<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnSigner").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl<F> CoseSigner for FnSigner<F>
where
    F: Fn(&[u8]) -> std::result::Result<Vec<u8>, String>,
{
    fn algorithm(&self) -> SigAlg {
        self.alg
    }

    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, String> {
        (self.sign)(message)
    }
}

/// A software key in process memory, for tests and tools that have no secure element. Named
/// and fenced under `hazmat` because production keys live in secure elements.
pub struct SoftwareSigner {
    inner: SoftKey,
}

enum SoftKey {
    P256(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
}

impl SoftwareSigner {
    /// A fresh random key.
    pub fn generate(alg: SigAlg) -> Result<Self> {
        let inner = match alg {
            SigAlg::Es256 => SoftKey::P256(
                signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)
                    .map_err(|_| Error::Rng)?,
            ),
            SigAlg::EdDsa => SoftKey::Ed25519(signature::Ed25519KeyPair::generate().map_err(|_| Error::Rng)?),
        };
        Ok(Self { inner })
    }

    /// From a PKCS#8 v1 or v2 DER private key (P-256 or Ed25519).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        if let Ok(k) = signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(Self { inner: SoftKey::P256(k) });
        }
        signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|k| Self { inner: SoftKey::Ed25519(k) })
            .map_err(|_| Error::InvalidKey("not a PKCS#8 P-256 or Ed25519 private key"))
    }

    /// The private key as PKCS#8 DER (to hand to a peer tool in tests).
    pub fn to_pkcs8(&self) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let doc = match &self.inner {
            SoftKey::P256(k) => k.to_pkcs8v1().map_err(|_| Error::InvalidKey("cannot export"))?,
            SoftKey::Ed25519(k) => k.to_pkcs8v1().map_err(|_| Error::InvalidKey("cannot export"))?,
        };
        Ok(zeroize::Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The matching verification key.
    pub fn verifying_key(&self) -> VerifyingKey {
        let (alg, raw) = match &self.inner {
            SoftKey::P256(k) => (SigAlg::Es256, k.public_key().as_ref()),
            SoftKey::Ed25519(k) => (SigAlg::EdDsa, k.public_key().as_ref()),
        };
        #[allow(clippy::expect_used)]
        VerifyingKey::from_raw(alg, raw).expect("a generated key is valid")
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigner").field("alg", &self.algorithm()).finish_non_exhaustive()
    }
}

impl CoseSigner for SoftwareSigner {
    fn algorithm(&self) -> SigAlg {
        match self.inner {
            SoftKey::P256(_) => SigAlg::Es256,
            SoftKey::Ed25519(_) => SigAlg::EdDsa,
        }
    }

    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, String> {
        match &self.inner {
            SoftKey::P256(k) => k
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".to_owned()),
            SoftKey::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// Converts a signer's output to the COSE form: DER `ECDSA-Sig-Value` → r ‖ s (32 bytes each)
/// for ES256; Ed25519 signatures must already be 64 bytes.
pub(crate) fn cose_signature(alg: SigAlg, sig: &[u8]) -> Result<Vec<u8>> {
    let bad = || Error::KeyOperation(format!("signer returned a malformed {alg} signature"));
    match alg {
        SigAlg::EdDsa if sig.len() == 64 => Ok(sig.to_vec()),
        SigAlg::EdDsa => Err(bad()),
        SigAlg::Es256 => {
            let body = der_element(sig, 0x30).filter(|(_, rest)| rest.is_empty()).ok_or_else(bad)?.0;
            let (r, rest) = der_element(body, 0x02).ok_or_else(bad)?;
            let (s, rest) = der_element(rest, 0x02).ok_or_else(bad)?;
            if !rest.is_empty() {
                return Err(bad());
            }
            let mut out = vec![0u8; 64];
            let (r_slot, s_slot) = out.split_at_mut(32);
            for (int, slot) in [(r, r_slot), (s, s_slot)] {
                // A DER INTEGER: non-empty, non-negative; one leading zero only before a high bit.
                if int.first().is_none_or(|b| b & 0x80 != 0) {
                    return Err(bad());
                }
                let int = match int {
                    [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
                    other => other,
                };
                if int.len() > 32 {
                    return Err(bad());
                }
                slot[32 - int.len()..].copy_from_slice(int);
            }
            Ok(out)
        }
    }
}

/// One DER element with short-form length (ECDSA signatures never need more): (content, rest).
fn der_element(bytes: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = bytes.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if t != tag || len >= 0x80 || rest.len() < usize::from(len) {
        return None;
    }
    Some(rest.split_at(usize::from(len)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trip_and_refusals() {
        for alg in [SigAlg::Es256, SigAlg::EdDsa] {
            let key = SoftwareSigner::generate(alg).unwrap().verifying_key();
            let again = VerifyingKey::from_spki_der(&key.spki_der()).unwrap();
            assert_eq!(again, key);
            assert!(VerifyingKey::from_spki_der(&key.spki_der()[1..]).is_err());
        }
        // A point not on the curve.
        let mut raw = vec![0x04];
        raw.extend_from_slice(&[1u8; 64]);
        assert_eq!(VerifyingKey::from_raw(SigAlg::Es256, &raw), Err(Error::InvalidKey("not a valid point")));
        assert!(VerifyingKey::from_raw(SigAlg::EdDsa, &[0u8; 31]).is_err());
    }

    #[test]
    fn der_to_fixed_signature() {
        let signer = SoftwareSigner::generate(SigAlg::Es256).unwrap();
        for i in 0..50u8 {
            let msg = [i; 7];
            let der = signer.sign(&msg).unwrap();
            let fixed = cose_signature(SigAlg::Es256, &der).unwrap();
            signer.verifying_key().verify(&msg, &fixed).unwrap();
            assert_eq!(signer.verifying_key().verify(&[i; 8], &fixed), Err(Error::BadSignature));
        }
        // Short integers are left-padded.
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07];
        let fixed = cose_signature(SigAlg::Es256, &der).unwrap();
        assert_eq!((fixed[31], fixed[63], fixed[..31].iter().all(|b| *b == 0)), (5, 7, true));
        assert!(cose_signature(SigAlg::Es256, &der[..7]).is_err());
        assert!(cose_signature(SigAlg::Es256, &[der.as_slice(), &[0]].concat()).is_err());
        assert!(cose_signature(SigAlg::EdDsa, &[0; 63]).is_err());
    }
}
