//! Where a controller keeps its identity and the accessories it paired with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use ironclad_pair::attestation::AuthenticatedDevice;
use ironclad_pair::{
    Identity, Pairing, PairingId, Permissions, SeLongTermKey, SoftLongTermKey, SystemRandom,
};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, Overwrite, SecureElement, atomic_write};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::payload::random_uuid;

/// An accessory this controller paired with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairedAccessory {
    /// The controller's local name for it.
    pub alias: String,
    /// `host:port` to connect to (no mDNS).
    pub address: String,
    /// Its Device ID and long-term public key, from pair-setup M6.
    pub pairing: Pairing,
    /// The device certificate it presented and we verified, when pair-setup required one.
    pub device: Option<AuthenticatedDevice>,
}

/// A controller's durable state. `save_accessory` and `remove_accessory` must be durable when
/// they return.
pub trait ControllerStore: Send + Sync + fmt::Debug {
    /// This controller's identity; created and stored on first use, the same afterwards.
    fn identity(&self) -> Result<Identity>;
    /// Every paired accessory.
    fn accessories(&self) -> Result<Vec<PairedAccessory>>;
    /// Adds an accessory, or replaces the one with the same alias.
    fn save_accessory(&self, accessory: &PairedAccessory) -> Result<()>;
    /// Forgets an accessory (absent is fine).
    fn remove_accessory(&self, alias: &str) -> Result<()>;
    fn accessory(&self, alias: &str) -> Result<Option<PairedAccessory>> {
        Ok(self.accessories()?.into_iter().find(|a| a.alias == alias))
    }
}

const FORMAT: &str = "ironclad-hap-controller/1";

#[derive(Default, Serialize, Deserialize)]
struct Document {
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// Hex Ed25519 seed (file store only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<String>,
    #[serde(default)]
    accessories: Vec<Record>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    alias: String,
    address: String,
    id: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<DeviceRecord>,
}

/// A verified device certificate: its device ID, serial and the DER chain (base64).
#[derive(Serialize, Deserialize)]
struct DeviceRecord {
    device_id: String,
    serial: String,
    certificates: Vec<String>,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl Document {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Store { path: path.into(), reason };
        let doc: Document = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if doc.format != FORMAT {
            return Err(bad(format!("unsupported format {:?}", doc.format)));
        }
        Ok(doc)
    }

    fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(serde_json::to_vec_pretty(self).map_err(|e| Error::Json(e.to_string()))?))
    }

    fn list(&self, path: &Path) -> Result<Vec<PairedAccessory>> {
        self.accessories.iter().map(|r| r.to_accessory(path)).collect()
    }

    fn save(&mut self, accessory: &PairedAccessory) {
        self.accessories.retain(|r| r.alias != accessory.alias);
        self.accessories.push(Record {
            alias: accessory.alias.clone(),
            address: accessory.address.clone(),
            id: accessory.pairing.id.to_string(),
            public_key: hex::encode(accessory.pairing.public_key),
            device: accessory.device.as_ref().map(|d| DeviceRecord {
                device_id: d.device_id.clone(),
                serial: d.serial.clone(),
                certificates: d.certificates.iter().map(|c| B64.encode(c)).collect(),
            }),
        });
    }
}

impl Record {
    fn to_accessory(&self, path: &Path) -> Result<PairedAccessory> {
        let bad =
            || Error::Store { path: path.into(), reason: format!("accessory {:?} is malformed", self.alias) };
        let key =
            hex::decode(&self.public_key).ok().and_then(|k| <[u8; 32]>::try_from(k).ok()).ok_or_else(bad)?;
        let id = PairingId::new(self.id.as_bytes()).map_err(|_| bad())?;
        let device = match &self.device {
            None => None,
            Some(d) => Some(AuthenticatedDevice {
                device_id: d.device_id.clone(),
                serial: d.serial.clone(),
                certificates: d
                    .certificates
                    .iter()
                    .map(|c| B64.decode(c).map_err(|_| bad()))
                    .collect::<Result<_>>()?,
            }),
        };
        Ok(PairedAccessory {
            alias: self.alias.clone(),
            address: self.address.clone(),
            pairing: Pairing { id, public_key: key, permissions: Permissions::ADMIN },
            device,
        })
    }
}

/// A JSON file (written atomically, mode 0600) holding the controller's identifier, its Ed25519
/// seed and the paired accessories. The seed is a secret in a file: for development and for
/// controllers without a secure element; otherwise use [`SeControllerStore`].
#[derive(Debug)]
pub struct FileControllerStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileControllerStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileControllerStore { path: path.into(), lock: Mutex::new(()) }
    }

    fn load(&self) -> Result<Document> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Document::decode(&Zeroizing::new(bytes), &self.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Document { format: FORMAT.into(), ..Document::default() })
            }
            Err(e) => Err(Error::Store { path: self.path.clone(), reason: e.to_string() }),
        }
    }

    fn write(&self, doc: &Document) -> Result<()> {
        Ok(atomic_write(&self.path, &doc.encode()?, Overwrite::Replace)?)
    }

    fn update(&self, change: impl FnOnce(&mut Document)) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut doc = self.load()?;
        change(&mut doc);
        self.write(&doc)
    }
}

impl ControllerStore for FileControllerStore {
    fn identity(&self) -> Result<Identity> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut doc = self.load()?;
        if let (Some(id), Some(seed)) = (&doc.id, &doc.seed) {
            let bad = || Error::Store { path: self.path.clone(), reason: "malformed controller seed".into() };
            let seed = Zeroizing::new(hex::decode(seed).map_err(|_| bad())?);
            let seed: &[u8; 32] = seed.as_slice().try_into().map_err(|_| bad())?;
            return Ok(Identity::new(id.parse()?, Arc::new(SoftLongTermKey::from_seed(seed)?)));
        }
        let key = SoftLongTermKey::generate(&mut SystemRandom)?;
        let id = random_uuid(&mut SystemRandom)?;
        doc.id = Some(id.clone());
        doc.seed = Some(hex::encode(key.seed()));
        self.write(&doc)?;
        Ok(Identity::new(id.parse()?, Arc::new(key)))
    }

    fn accessories(&self) -> Result<Vec<PairedAccessory>> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.load()?.list(&self.path)
    }

    fn save_accessory(&self, accessory: &PairedAccessory) -> Result<()> {
        self.update(|doc| doc.save(accessory))
    }

    fn remove_accessory(&self, alias: &str) -> Result<()> {
        self.update(|doc| doc.accessories.retain(|r| r.alias != alias))
    }
}

/// The controller's long-term key inside a secure element (`<prefix>.ltsk`, Ed25519, generated
/// there) and its identifier and accessories in a sealed object (`<prefix>.state`).
#[derive(Debug)]
pub struct SeControllerStore {
    se: Arc<dyn SecureElement>,
    key: Label,
    state: Label,
    lock: Mutex<()>,
}

impl SeControllerStore {
    /// `prefix` names the objects, e.g. `"hap-controller"`.
    pub fn new(se: Arc<dyn SecureElement>, prefix: &str) -> Result<Self> {
        let key = Label::new(format!("{prefix}.ltsk"))?;
        let state = Label::new(format!("{prefix}.state"))?;
        Ok(SeControllerStore { se, key, state, lock: Mutex::new(()) })
    }

    fn where_(&self) -> PathBuf {
        PathBuf::from(format!("secure element object {}", self.state))
    }

    fn load(&self) -> Result<Document> {
        match self.se.get_object(&self.state) {
            Ok(bytes) => Document::decode(&bytes, &self.where_()),
            Err(ironclad_se::Error::ObjectNotFound(_)) => {
                Ok(Document { format: FORMAT.into(), ..Document::default() })
            }
            Err(e) => Err(e.into()),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Document)) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut doc = self.load()?;
        change(&mut doc);
        Ok(self.se.put_object(&self.state, &doc.encode()?)?)
    }
}

impl ControllerStore for SeControllerStore {
    fn identity(&self) -> Result<Identity> {
        let handle = match KeyHandle::open(self.se.clone(), &self.key) {
            Ok(handle) => handle,
            Err(ironclad_se::Error::KeyNotFound(_)) => {
                self.se.generate_key(&self.key, KeyAlgorithm::Ed25519)?;
                KeyHandle::open(self.se.clone(), &self.key)?
            }
            Err(e) => return Err(e.into()),
        };
        let key = Arc::new(SeLongTermKey::new(handle)?);
        let mut id = self.load()?.id;
        if id.is_none() {
            let fresh = random_uuid(&mut SystemRandom)?;
            self.update(|doc| doc.id = Some(fresh.clone()))?;
            id = Some(fresh);
        }
        let id: PairingId = id.unwrap_or_default().parse()?;
        Ok(Identity::new(id, key))
    }

    fn accessories(&self) -> Result<Vec<PairedAccessory>> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.load()?.list(&self.where_())
    }

    fn save_accessory(&self, accessory: &PairedAccessory) -> Result<()> {
        self.update(|doc| doc.save(accessory))
    }

    fn remove_accessory(&self, alias: &str) -> Result<()> {
        self.update(|doc| doc.accessories.retain(|r| r.alias != alias))
    }
}
