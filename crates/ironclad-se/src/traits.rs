use std::fmt;

use zeroize::Zeroizing;

use crate::error::Result;
use crate::types::{Hkdf, KeyAlgorithm, KeyInfo, Label, PublicKey, SignInput};

/// Keys generated and used inside the secure element. No method returns private-key bytes:
/// callers get public keys, signatures, and key material *derived* through HKDF.
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// A short backend name for listings and errors ("software", "memory", "pkcs11").
    fn backend_name(&self) -> &'static str;

    /// Generates a new key named `id` inside the element. Fails with `KeyExists` rather than
    /// replacing a key, so no command can silently destroy an identity.
    fn generate_key(&self, id: &Label, alg: KeyAlgorithm) -> Result<PublicKey>;

    /// Imports a private key generated elsewhere (an offline ceremony root, rebuilt from its
    /// backup shares): the raw form is the P-256 scalar (32 bytes, big-endian), the Ed25519 or
    /// X25519 seed (32 bytes) or the 32 secret bytes. The caller wipes its copy afterwards.
    /// Backends that cannot import return `Unsupported`.
    fn import_key(&self, id: &Label, alg: KeyAlgorithm, private: &[u8]) -> Result<PublicKey> {
        let _ = (id, alg, private);
        Err(crate::Error::Unsupported { backend: self.backend_name(), operation: "key import" })
    }

    /// The algorithm and public key of `id`.
    fn key_info(&self, id: &Label) -> Result<KeyInfo>;

    /// Every key in the element, sorted by label.
    fn list_keys(&self) -> Result<Vec<KeyInfo>>;

    /// Destroys a key.
    fn delete_key(&self, id: &Label) -> Result<()>;

    /// Signs with an `EcdsaP256` (DER signature) or `Ed25519` (64-byte signature) key.
    fn sign(&self, id: &Label, input: SignInput<'_>) -> Result<Vec<u8>>;

    /// ECDH with an `EcdhP256` or `X25519` key against `peer_public` (raw form), then
    /// HKDF-SHA256 of the shared secret into `out`. The raw shared secret never leaves.
    fn agree_and_derive(&self, id: &Label, peer_public: &[u8], kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()>;

    /// HKDF-SHA256 from a `Secret256` key into `out` (per-device secrets, console passwords).
    fn derive(&self, id: &Label, kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()>;

    /// AES-256-GCM encryption under a `Secret256` key (key wrapping). Output: nonce ‖ ciphertext ‖ tag.
    fn seal(&self, id: &Label, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>>;

    /// Reverses [`KeyStore::seal`]; fails with `OpenFailed` on any mismatch.
    fn open(&self, id: &Label, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>>;

    /// Bytes from the element's random generator (a TRNG on hardware).
    fn random(&self, out: &mut [u8]) -> Result<()>;
}

/// Small secrets stored encrypted inside the element: certificates, pairing records, credentials.
pub trait SealedStore: Send + Sync + fmt::Debug {
    /// Stores `data` under `name`, replacing any previous value atomically.
    fn put_object(&self, name: &Label, data: &[u8]) -> Result<()>;
    fn get_object(&self, name: &Label) -> Result<Zeroizing<Vec<u8>>>;
    fn delete_object(&self, name: &Label) -> Result<()>;
    fn list_objects(&self) -> Result<Vec<Label>>;
}

/// Counters that only move forward: anti-rollback security counters, order quotas, sequences.
pub trait MonotonicCounter: Send + Sync + fmt::Debug {
    /// The current value; a counter that was never touched reads 0.
    fn counter(&self, name: &Label) -> Result<u64>;
    /// Adds one and returns the new value, durably, before returning.
    fn counter_increment(&self, name: &Label) -> Result<u64>;
    /// Raises the counter to `value` (no-op if equal). Refuses to go backwards.
    fn counter_advance(&self, name: &Label, value: u64) -> Result<u64>;
}

/// A whole secure element: keys, sealed objects and counters. Backends implement the three
/// traits; everything else in ironclad takes `Arc<dyn SecureElement>`.
pub trait SecureElement: KeyStore + SealedStore + MonotonicCounter {}

impl<T: KeyStore + SealedStore + MonotonicCounter> SecureElement for T {}
