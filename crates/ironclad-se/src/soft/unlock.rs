//! How a directory store's key-encryption key (KEK) is obtained: from a passphrase through
//! Argon2id (memory-hard, for CA and operator stores), or from a device-unique secret through
//! HKDF (for device stores whose secret comes from fuses or a hardware unique key).

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::key::hkdf_expand;
use crate::error::{Error, Result};
use crate::types::Hkdf;

/// The secret that unlocks a store. Never printed: `Debug` shows only the kind.
pub enum Unlock {
    Passphrase(Zeroizing<String>),
    DeviceSecret(Zeroizing<Vec<u8>>),
}

impl fmt::Debug for Unlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unlock::Passphrase(_) => "Unlock::Passphrase(<redacted>)",
            Unlock::DeviceSecret(_) => "Unlock::DeviceSecret(<redacted>)",
        })
    }
}

impl Unlock {
    pub fn passphrase(p: impl Into<String>) -> Self {
        Unlock::Passphrase(Zeroizing::new(p.into()))
    }

    pub fn device_secret(secret: &[u8]) -> Self {
        Unlock::DeviceSecret(Zeroizing::new(secret.to_vec()))
    }

    fn check_strength(&self) -> Result<()> {
        match self {
            Unlock::Passphrase(p) if p.chars().count() < MIN_PASSPHRASE_CHARS => {
                Err(Error::WeakSecret("a passphrase needs at least 8 characters"))
            }
            Unlock::DeviceSecret(s) if s.len() < MIN_DEVICE_SECRET_LEN => {
                Err(Error::WeakSecret("a device secret needs at least 16 bytes"))
            }
            _ => Ok(()),
        }
    }
}

const MIN_PASSPHRASE_CHARS: usize = 8;
const MIN_DEVICE_SECRET_LEN: usize = 16;

/// Argon2id cost. The default (64 MiB, 2 passes) costs about a quarter of a second here and
/// makes each passphrase guess cost the same for an attacker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self { memory_kib: 64 * 1024, iterations: 2, parallelism: 1 }
    }
}

impl KdfParams {
    /// Cheap parameters for tests only: an attacker could guess such passphrases quickly.
    pub const fn weak_for_tests() -> Self {
        Self { memory_kib: 64, iterations: 1, parallelism: 1 }
    }
}

/// The KDF recorded in a store's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "kebab-case")]
pub(crate) enum KdfSpec {
    Argon2id {
        #[serde(flatten)]
        params: KdfParams,
        salt: String,
    },
    HkdfSha256 {
        salt: String,
    },
}

impl KdfSpec {
    pub(crate) fn new_for(unlock: &Unlock, params: KdfParams) -> Result<Self> {
        unlock.check_strength()?;
        let mut salt = [0u8; 16];
        super::key::random(&mut salt)?;
        let salt = hex::encode(salt);
        Ok(match unlock {
            Unlock::Passphrase(_) => KdfSpec::Argon2id { params, salt },
            Unlock::DeviceSecret(_) => KdfSpec::HkdfSha256 { salt },
        })
    }

    pub(crate) fn expected_unlock(&self) -> &'static str {
        match self {
            KdfSpec::Argon2id { .. } => "a passphrase",
            KdfSpec::HkdfSha256 { .. } => "a device secret",
        }
    }

    /// Derives the 256-bit KEK, or `None` when the unlock kind does not match the store.
    pub(crate) fn derive_kek(&self, unlock: &Unlock) -> Result<Option<Zeroizing<[u8; 32]>>> {
        let mut kek = Zeroizing::new([0u8; 32]);
        match (self, unlock) {
            (KdfSpec::Argon2id { params, salt }, Unlock::Passphrase(pass)) => {
                let salt = hex::decode(salt).map_err(|_| Error::Crypto("bad salt in store header"))?;
                let argon_params =
                    argon2::Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
                        .map_err(|_| Error::Crypto("invalid Argon2 parameters in store header"))?;
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon_params)
                    .hash_password_into(pass.as_bytes(), &salt, kek.as_mut())
                    .map_err(|_| Error::Crypto("Argon2id failed"))?;
            }
            (KdfSpec::HkdfSha256 { salt }, Unlock::DeviceSecret(secret)) => {
                let salt = hex::decode(salt).map_err(|_| Error::Crypto("bad salt in store header"))?;
                hkdf_expand(
                    secret,
                    &Hkdf { salt: &salt, info: b"ironclad-se/1 key-encryption key" },
                    kek.as_mut(),
                )?;
            }
            _ => return Ok(None),
        }
        Ok(Some(kek))
    }
}
