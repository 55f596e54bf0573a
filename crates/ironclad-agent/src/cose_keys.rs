//! Secure-element keys in the shapes `ironclad-proto`'s COSE layer takes: a signer for
//! telemetry and an X25519 agreement key for log-key deliveries. Private keys never leave the
//! element; proto sees signatures and derived keys only.

use std::sync::Arc;

use ironclad_proto::{AgreementKey, CoseSigner, SigAlg};
use ironclad_se::{Hkdf, KeyAlgorithm, KeyHandle, Label, SecureElement, SignInput};

use crate::error::{Error, Result};

/// A secure-element signing key (P-256 → ES256, Ed25519 → EdDSA) as a COSE signer.
#[derive(Clone, Debug)]
pub struct SeCoseSigner {
    key: KeyHandle,
    alg: SigAlg,
}

impl SeCoseSigner {
    /// Wraps a signing key handle.
    pub fn new(key: KeyHandle) -> Result<Self> {
        let alg = match key.algorithm() {
            KeyAlgorithm::EcdsaP256 => SigAlg::Es256,
            KeyAlgorithm::Ed25519 => SigAlg::EdDsa,
            other => {
                return Err(Error::Config(format!("key {} ({other}) cannot sign COSE messages", key.id())));
            }
        };
        Ok(Self { key, alg })
    }
}

impl CoseSigner for SeCoseSigner {
    fn algorithm(&self) -> SigAlg {
        self.alg
    }

    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, String> {
        // ECDSA keys answer DER, Ed25519 keys the 64 raw bytes: what CoseSigner expects.
        self.key.sign(SignInput::Message(message)).map_err(|e| e.to_string())
    }
}

/// The device's X25519 firmware-decryption key inside its secure element, for unwrapping
/// log-key deliveries: ECDH and HKDF run inside the element.
#[derive(Clone, Debug)]
pub struct SeAgreementKey {
    se: Arc<dyn SecureElement>,
    id: Label,
}

impl SeAgreementKey {
    /// Opens an existing `X25519` key.
    pub fn open(se: Arc<dyn SecureElement>, id: &Label) -> Result<Self> {
        let alg = se.key_info(id)?.public.algorithm();
        if alg != KeyAlgorithm::X25519 {
            return Err(Error::Config(format!("key {id} is {alg}, log-key delivery needs an x25519 key")));
        }
        Ok(Self { se, id: id.clone() })
    }
}

impl AgreementKey for SeAgreementKey {
    fn agree_and_derive(
        &self,
        peer_public: &[u8],
        salt: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> std::result::Result<(), String> {
        self.se.agree_and_derive(&self.id, peer_public, &Hkdf { salt, info }, out).map_err(|e| e.to_string())
    }
}
