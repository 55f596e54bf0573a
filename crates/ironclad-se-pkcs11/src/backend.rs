//! `Pkcs11Se`: configuration, opening, and the trait implementations, which delegate to
//! `keys` (key objects), `ops` (what keys do) and `objects` (sealed objects and counters).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use cryptoki::mechanism::MechanismType;
use ironclad_se::{
    Error, Hkdf, KeyAlgorithm, KeyInfo, KeyStore, Label, MonotonicCounter, PublicKey, Result, SealedStore,
    SignInput,
};
use zeroize::Zeroizing;

use crate::error::Pkcs11Error;
use crate::keys::KeyEntry;
use crate::pin::Pin;
use crate::token::Token;
use crate::uri::Pkcs11Uri;

/// Which module to load, which token to use and how to log in.
#[derive(Clone, Debug)]
pub struct Pkcs11Config {
    /// The PKCS#11 library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label (`token=` in a PKCS#11 URI).
    pub token_label: String,
    /// The user PIN; dropped (and zeroized) once logged in.
    pub pin: Pin,
}

impl Pkcs11Config {
    /// The module and token named by `uri` (`module-path` and `token` are required), with `pin`.
    pub fn from_uri(uri: &Pkcs11Uri, pin: Pin) -> std::result::Result<Self, Pkcs11Error> {
        let missing = |part: &str, reason| Pkcs11Error::Uri { part: part.to_owned(), reason };
        Ok(Self {
            module: uri.module_path.clone().ok_or_else(|| {
                missing(
                    "module-path",
                    "needed: the PKCS#11 library to load (e.g. ?module-path=/usr/lib/softhsm/libsofthsm2.so)",
                )
            })?,
            token_label: uri
                .token
                .clone()
                .ok_or_else(|| missing("token", "needed: the label of the token"))?,
            pin,
        })
    }
}

/// A secure element on a PKCS#11 token. `Send + Sync`; clone it behind an `Arc`.
pub struct Pkcs11Se {
    pub(crate) token: Token,
    /// Key objects found so far, by label: a lookup costs several PKCS#11 calls, a signature
    /// one. Entries are dropped on delete and when the token says a handle went stale.
    pub(crate) keys: RwLock<HashMap<Label, KeyEntry>>,
    /// Serialises generate/delete (check-then-create) within the process.
    pub(crate) key_writes: Mutex<()>,
    /// Serialises sealed-object and counter updates within the process.
    pub(crate) object_writes: Mutex<()>,
}

impl fmt::Debug for Pkcs11Se {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Se")
            .field("module", &self.token.module())
            .field("token", &self.token.label())
            .finish_non_exhaustive()
    }
}

impl Pkcs11Se {
    /// Loads the module (once per process), finds the token by label and logs in.
    ///
    /// PKCS#11 login is per process and token: if this process is already logged in to the
    /// token (another `Pkcs11Se` is open on it), the token accepts the login without checking
    /// the PIN again.
    pub fn open(config: &Pkcs11Config) -> std::result::Result<Self, Pkcs11Error> {
        let token = Token::open(&config.module, &config.token_label, &config.pin)?;
        Ok(Self {
            token,
            keys: RwLock::default(),
            key_writes: Mutex::default(),
            object_writes: Mutex::default(),
        })
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        self.token.label()
    }

    /// The loaded module.
    pub fn module(&self) -> &Path {
        self.token.module()
    }

    /// Whether the token lists the mechanisms `alg` needs. `generate_key` refuses the others
    /// with `Error::Unsupported`.
    pub fn supports(&self, alg: KeyAlgorithm) -> bool {
        let has = |m| self.token.has_mechanism(m);
        match alg {
            KeyAlgorithm::EcdsaP256 => has(MechanismType::ECC_KEY_PAIR_GEN) && has(MechanismType::ECDSA),
            KeyAlgorithm::EcdhP256 => {
                has(MechanismType::ECC_KEY_PAIR_GEN) && has(MechanismType::ECDH1_DERIVE)
            }
            KeyAlgorithm::Ed25519 => {
                has(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) && has(MechanismType::EDDSA)
            }
            KeyAlgorithm::X25519 => {
                (has(MechanismType::ECC_MONTGOMERY_KEY_PAIR_GEN)
                    || has(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN))
                    && has(MechanismType::ECDH1_DERIVE)
            }
            KeyAlgorithm::Secret256 => {
                has(MechanismType::AES_KEY_GEN)
                    && has(MechanismType::AES_GCM)
                    && has(MechanismType::GENERIC_SECRET_KEY_GEN)
                    && has(MechanismType::SHA256_HMAC)
            }
            _ => false,
        }
    }
}

impl KeyStore for Pkcs11Se {
    fn backend_name(&self) -> &'static str {
        "pkcs11"
    }

    fn generate_key(&self, id: &Label, alg: KeyAlgorithm) -> Result<PublicKey> {
        if !self.supports(alg) {
            return Err(Error::Unsupported { backend: "pkcs11", operation: alg_operation(alg) });
        }
        self.generate(id, alg)
    }

    fn import_key(&self, id: &Label, alg: KeyAlgorithm, private: &[u8]) -> Result<PublicKey> {
        self.import(id, alg, private)
    }

    fn key_info(&self, id: &Label) -> Result<KeyInfo> {
        Ok(KeyInfo { id: id.clone(), public: self.entry(id)?.public })
    }

    fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        self.list()
    }

    fn delete_key(&self, id: &Label) -> Result<()> {
        self.delete(id)
    }

    fn sign(&self, id: &Label, input: SignInput<'_>) -> Result<Vec<u8>> {
        self.with_key(id, |session, key| crate::ops::sign(session, id, key, input))
    }

    fn agree_and_derive(&self, id: &Label, peer_public: &[u8], kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
        self.with_key(id, |session, key| {
            crate::ops::agree_and_derive(session, id, key, peer_public, kdf, out)
        })
    }

    fn derive(&self, id: &Label, kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
        self.with_key(id, |session, key| crate::ops::derive(session, id, key, kdf, out))
    }

    fn seal(&self, id: &Label, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.with_key(id, |session, key| crate::ops::seal(session, id, key, aad, plaintext))
    }

    fn open(&self, id: &Label, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.with_key(id, |session, key| crate::ops::open(session, id, key, aad, sealed))
    }

    fn random(&self, out: &mut [u8]) -> Result<()> {
        self.token.with_session(|session| {
            session
                .generate_random_slice(out)
                .map_err(|e| Error::from(Pkcs11Error::call("C_GenerateRandom", e)))
        })
    }
}

impl SealedStore for Pkcs11Se {
    fn put_object(&self, name: &Label, data: &[u8]) -> Result<()> {
        self.put(name, data)
    }

    fn get_object(&self, name: &Label) -> Result<Zeroizing<Vec<u8>>> {
        self.get(name)
    }

    fn delete_object(&self, name: &Label) -> Result<()> {
        self.remove(name)
    }

    fn list_objects(&self) -> Result<Vec<Label>> {
        self.names()
    }
}

impl MonotonicCounter for Pkcs11Se {
    fn counter(&self, name: &Label) -> Result<u64> {
        self.read_counter(name)
    }

    fn counter_increment(&self, name: &Label) -> Result<u64> {
        self.update_counter(name, |current| {
            current.checked_add(1).ok_or_else(|| Error::CounterOverflow(name.clone()))
        })
    }

    fn counter_advance(&self, name: &Label, value: u64) -> Result<u64> {
        self.update_counter(name, |current| {
            if value < current {
                return Err(Error::CounterWouldDecrease { name: name.clone(), current, requested: value });
            }
            Ok(value)
        })
    }
}

fn alg_operation(alg: KeyAlgorithm) -> &'static str {
    match alg {
        KeyAlgorithm::EcdsaP256 => "ECDSA P-256 keys (CKM_EC_KEY_PAIR_GEN + CKM_ECDSA)",
        KeyAlgorithm::EcdhP256 => "ECDH P-256 keys (CKM_EC_KEY_PAIR_GEN + CKM_ECDH1_DERIVE)",
        KeyAlgorithm::Ed25519 => "Ed25519 keys (CKM_EC_EDWARDS_KEY_PAIR_GEN + CKM_EDDSA)",
        KeyAlgorithm::X25519 => "X25519 keys (CKM_EC_MONTGOMERY_KEY_PAIR_GEN + CKM_ECDH1_DERIVE)",
        KeyAlgorithm::Secret256 => "256-bit secrets (CKM_AES_GCM + CKM_SHA256_HMAC)",
        _ => "this key algorithm",
    }
}
