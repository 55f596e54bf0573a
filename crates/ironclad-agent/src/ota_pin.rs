//! The device's pinned manifest keys. A device must know the server's manifest-signing keys
//! before it can trust a manifest. The factory can provision them; otherwise the device pins
//! them at first contact, fetched over its mutual-TLS session (whose server certificate it
//! checks against the server CA it already pins), and keeps them sealed in its secure element.
//! Later manifests must be signed by a pinned key: a server that is later compromised, or an
//! impostor with a certificate from a rogue CA, cannot introduce a new one. After the server
//! rotates its manifest key, devices are re-pinned deliberately (provisioning or an explicit
//! re-pin), never silently.

use hyper::Method;
use ironclad_proto::api::{ServerKeys, paths};
use ironclad_proto::{TrustedKeys, VerifyingKey};
use ironclad_se::{Label, SecureElement};
use serde::{Deserialize, Serialize};

use crate::device::DeviceConnection;
use crate::error::{Error, Result};

/// Sealed object holding the pinned keys (JSON).
pub const MANIFEST_KEYS_OBJECT: &str = "ota-manifest-keys";

/// One pinned key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedKey {
    /// The COSE kid its manifests carry (the vault's key id).
    pub kid: String,
    /// SubjectPublicKeyInfo DER.
    #[serde(with = "hex::serde")]
    pub spki: Vec<u8>,
}

/// The manifest keys a device trusts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedManifestKeys {
    /// Current and retired versions the server reported.
    pub keys: Vec<PinnedKey>,
}

impl PinnedManifestKeys {
    /// Fetches the server's manifest-signing keys over this authenticated session.
    pub async fn fetch(conn: &mut DeviceConnection) -> Result<Self> {
        let token = conn.token()?;
        let path = paths::server_keys(conn.identity().device_id());
        let answer: ServerKeys = conn.http.json(Method::GET, &path, Some(&token), None::<&()>).await?;
        let mut keys = Vec::new();
        for k in answer.keys.into_iter().filter(|k| k.usage == "manifest-signing") {
            let spki = hex::decode(&k.spki_hex).map_err(|e| Error::Protocol(format!("server key: {e}")))?;
            VerifyingKey::from_spki_der(&spki)
                .map_err(|e| Error::Protocol(format!("server key {}: {e}", k.kid)))?;
            keys.push(PinnedKey { kid: k.kid, spki });
        }
        if keys.is_empty() {
            return Err(Error::Protocol("the server reported no manifest-signing key".into()));
        }
        Ok(PinnedManifestKeys { keys })
    }

    /// As the manifest verifier takes them.
    pub fn trusted(&self) -> Result<TrustedKeys> {
        let mut trusted = TrustedKeys::new();
        for k in &self.keys {
            let key = VerifyingKey::from_spki_der(&k.spki)
                .map_err(|e| Error::Config(format!("pinned manifest key {}: {e}", k.kid)))?;
            trusted.insert(k.kid.clone().into_bytes(), key);
        }
        Ok(trusted)
    }

    /// The keys pinned in `se`, if any.
    pub fn load(se: &dyn SecureElement) -> Result<Option<Self>> {
        match se.get_object(&Label::new(MANIFEST_KEYS_OBJECT)?) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Config(format!("pinned manifest keys unreadable: {e}"))),
            Err(ironclad_se::Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Seals the keys in `se` (replacing any pinned before).
    pub fn store(&self, se: &dyn SecureElement) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Config(e.to_string()))?;
        se.put_object(&Label::new(MANIFEST_KEYS_OBJECT)?, &bytes)?;
        Ok(())
    }
}
