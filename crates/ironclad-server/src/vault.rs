//! The key vault: keys the cloud generates and manages with no human handling them (seed 002
//! §4.2). Symmetric keys (device log keys, media stream keys, user-data keys) are made from the
//! secure element's random generator and stored in the registry sealed (AES-256-GCM) under a
//! master key that never leaves the secure element; signing keys (OTA manifests, commands) are
//! generated inside the secure element and only their public half is stored. Every key has a
//! usage, a subject and versions: rotation adds a version and retires the old one, which stays
//! readable for what it protected. Key material is never logged, listed or printed.

use std::sync::Arc;

use ironclad_se::{KeyAlgorithm, KeyHandle, Label, SecureElement};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{KeyMaterial, KeyUsage, ManagedKey, Store};

/// Label of the master key in the vault's secure element.
pub const MASTER_KEY_LABEL: &str = "vault-master";
/// Domain separation of the associated data every sealed key is bound to.
const SEAL_CONTEXT: &[u8] = b"ironclad-vault-key-v1";

/// The key vault over a secure element and the registry's storage.
#[derive(Clone)]
pub struct KeyVault {
    se: Arc<dyn SecureElement>,
    master: Label,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVault").field("backend", &self.se.backend_name()).finish_non_exhaustive()
    }
}

fn se_error(what: &str) -> impl Fn(ironclad_se::Error) -> Error + '_ {
    move |e| Error::Vault(format!("{what}: {e}"))
}

impl KeyVault {
    /// Opens the vault, generating the master key in `se` on first use.
    pub fn open(se: Arc<dyn SecureElement>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self> {
        let master = Label::new(MASTER_KEY_LABEL).map_err(se_error("master key label"))?;
        match se.key_info(&master) {
            Ok(info) if info.public.algorithm() == KeyAlgorithm::Secret256 => {}
            Ok(info) => {
                return Err(Error::Vault(format!(
                    "{MASTER_KEY_LABEL} in the {} secure element is a {} key, not a 256-bit secret",
                    se.backend_name(),
                    info.public.algorithm().name()
                )));
            }
            Err(ironclad_se::Error::KeyNotFound(_)) => {
                se.generate_key(&master, KeyAlgorithm::Secret256)
                    .map_err(se_error("making the master key"))?;
            }
            Err(e) => return Err(se_error("reading the master key")(e)),
        }
        Ok(KeyVault { se, master, store, clock })
    }

    /// The secure element's backend name ("software", "pkcs11", ...).
    pub fn backend_name(&self) -> &'static str {
        self.se.backend_name()
    }

    fn aad(key: &ManagedKey) -> Vec<u8> {
        let mut aad = SEAL_CONTEXT.to_vec();
        for part in [key.id.as_bytes(), key.usage.as_str().as_bytes(), key.subject.as_bytes()] {
            aad.push(0);
            aad.extend_from_slice(part);
        }
        aad
    }

    fn new_symmetric(&self, usage: KeyUsage, subject: &str, version: u32) -> Result<ManagedKey> {
        let mut secret = Zeroizing::new(vec![0u8; usage.key_len()]);
        self.se.random(&mut secret).map_err(se_error("random"))?;
        let mut key = ManagedKey {
            id: ManagedKey::make_id(usage, subject, version),
            usage,
            subject: subject.to_owned(),
            version,
            material: KeyMaterial::Sealed { sealed: Vec::new() },
            created_at: self.clock.unix(),
            retired_at: None,
        };
        let sealed =
            self.se.seal(&self.master, &Self::aad(&key), &secret).map_err(se_error("sealing a key"))?;
        key.material = KeyMaterial::Sealed { sealed };
        Ok(key)
    }

    fn new_signing(&self, usage: KeyUsage, version: u32) -> Result<ManagedKey> {
        let label_text = format!("{usage}-v{version}");
        let label = Label::new(&label_text).map_err(se_error("signing key label"))?;
        let alg = match usage {
            KeyUsage::FirmwareDecryption => KeyAlgorithm::X25519,
            _ => KeyAlgorithm::EcdsaP256,
        };
        let public = match self.se.key_info(&label) {
            // A key left by a generation whose catalog insert was lost: reuse it.
            Ok(info) if info.public.algorithm() == alg => info.public,
            Ok(_) => return Err(Error::Vault(format!("{label_text} exists with another algorithm"))),
            Err(ironclad_se::Error::KeyNotFound(_)) => {
                self.se.generate_key(&label, alg).map_err(se_error("making a secure-element key"))?
            }
            Err(e) => return Err(se_error("reading a signing key")(e)),
        };
        Ok(ManagedKey {
            id: ManagedKey::make_id(usage, "", version),
            usage,
            subject: String::new(),
            version,
            material: KeyMaterial::InSecureElement {
                label: label_text,
                public_key: public.spki_der().unwrap_or_default(),
            },
            created_at: self.clock.unix(),
            retired_at: None,
        })
    }

    fn make(&self, usage: KeyUsage, subject: &str, version: u32) -> Result<ManagedKey> {
        if usage.is_symmetric() {
            self.new_symmetric(usage, subject, version)
        } else {
            self.new_signing(usage, version)
        }
    }

    /// The current key of (usage, subject), created (version 1) if there is none yet.
    /// Concurrent first calls, in this or another server process, agree on one key.
    pub async fn current(&self, usage: KeyUsage, subject: &str) -> Result<ManagedKey> {
        let subject = if usage.is_symmetric() { subject } else { "" };
        if let Some(key) = self.store.latest_managed_key(usage, subject).await? {
            return Ok(key);
        }
        let key = self.make(usage, subject, 1)?;
        match self.store.insert_managed_key(&key).await {
            Ok(()) => {
                tracing::info!(key = %key.id, "key vault: created");
                Ok(key)
            }
            Err(Error::Conflict(_)) => self
                .store
                .latest_managed_key(usage, subject)
                .await?
                .ok_or_else(|| Error::Vault(format!("key {} vanished after a concurrent create", key.id))),
            Err(e) => Err(e),
        }
    }

    /// Adds a new version of (usage, subject) and retires the current one. Returns the new key.
    pub async fn rotate(&self, usage: KeyUsage, subject: &str) -> Result<ManagedKey> {
        let current = self.current(usage, subject).await?;
        let next = self.make(usage, &current.subject, current.version + 1)?;
        self.store.rotate_managed_key(&current.id, &next, self.clock.unix()).await?;
        tracing::info!(retired = %current.id, key = %next.id, "key vault: rotated");
        Ok(next)
    }

    /// A key version by id.
    pub async fn get(&self, id: &str) -> Result<ManagedKey> {
        self.store.managed_key(id).await?.ok_or_else(|| Error::NotFound(format!("key {id}")))
    }

    /// The secret of a symmetric key, unsealed by the secure element. Refuses a signing key
    /// (its private half never leaves the secure element) and a key of another usage.
    pub fn secret(&self, key: &ManagedKey, usage: KeyUsage) -> Result<Zeroizing<Vec<u8>>> {
        if key.usage != usage {
            return Err(Error::Forbidden(format!("key {} is a {} key, not {usage}", key.id, key.usage)));
        }
        match &key.material {
            KeyMaterial::Sealed { sealed } => {
                let secret =
                    self.se.open(&self.master, &Self::aad(key), sealed).map_err(se_error(&key.id))?;
                if secret.len() != usage.key_len() {
                    return Err(Error::Vault(format!("key {} has {} bytes", key.id, secret.len())));
                }
                Ok(secret)
            }
            KeyMaterial::InSecureElement { .. } => {
                Err(Error::Forbidden(format!("key {} is a signing key held in the secure element", key.id)))
            }
        }
    }

    /// A handle on the current signing key of `usage`, which signs inside the secure element.
    pub async fn signer(&self, usage: KeyUsage) -> Result<(ManagedKey, KeyHandle)> {
        if usage.is_symmetric() || usage == KeyUsage::FirmwareDecryption {
            return Err(Error::Invalid(format!("{usage} keys do not sign")));
        }
        let key = self.current(usage, "").await?;
        let KeyMaterial::InSecureElement { label, .. } = &key.material else {
            return Err(Error::Vault(format!("key {} has no secure-element label", key.id)));
        };
        let label = Label::new(label).map_err(se_error("signing key label"))?;
        let handle = KeyHandle::open(self.se.clone(), &label).map_err(se_error(&key.id))?;
        Ok((key, handle))
    }

    /// The secure element and label of a key held there (the firmware-decryption key, whose
    /// ECDH runs inside the element: the caller builds its agreement handle from these).
    pub(crate) fn secure_element_key(&self, key: &ManagedKey) -> Result<(Arc<dyn SecureElement>, Label)> {
        let KeyMaterial::InSecureElement { label, .. } = &key.material else {
            return Err(Error::Forbidden(format!("key {} is not held in the secure element", key.id)));
        };
        Ok((self.se.clone(), Label::new(label).map_err(se_error("key label"))?))
    }

    /// Every key version (optionally of one usage): ids, usages, subjects, versions, ages;
    /// never material.
    pub async fn list(&self, usage: Option<KeyUsage>) -> Result<Vec<ManagedKey>> {
        self.store.list_managed_keys(usage).await
    }
}
