use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::traits::SecureElement;
use crate::types::{KeyAlgorithm, Label, PublicKey, SignInput};

/// A signing key inside a secure element, usable wherever a signer is expected: it implements
/// `rcgen::SigningKey`, so CA certificates, device certificates, CSRs and CRLs are signed inside
/// the element whatever its backend.
#[derive(Clone)]
pub struct KeyHandle {
    se: Arc<dyn SecureElement>,
    id: Label,
    public: PublicKey,
}

impl KeyHandle {
    /// Opens an existing signing key.
    pub fn open(se: Arc<dyn SecureElement>, id: &Label) -> Result<Self> {
        let info = se.key_info(id)?;
        let alg = info.public.algorithm();
        if !alg.can_sign() {
            return Err(Error::WrongKeyType { id: id.clone(), alg, operation: "sign" });
        }
        Ok(Self { se, id: info.id, public: info.public })
    }

    pub fn id(&self) -> &Label {
        &self.id
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.public.algorithm()
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn secure_element(&self) -> &Arc<dyn SecureElement> {
        &self.se
    }

    pub fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>> {
        self.se.sign(&self.id, input)
    }
}

impl fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHandle")
            .field("id", &self.id)
            .field("alg", &self.public.algorithm())
            .field("backend", &self.se.backend_name())
            .finish()
    }
}

impl rcgen::PublicKeyData for KeyHandle {
    fn der_bytes(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.public.algorithm() {
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
            // `open` admits only signing keys, so everything else is ECDSA P-256.
            _ => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

impl rcgen::SigningKey for KeyHandle {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.se.sign(&self.id, SignInput::Message(msg)).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}
