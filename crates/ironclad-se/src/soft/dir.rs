//! The software secure element: a directory whose every key, sealed object and counter is a
//! separate file encrypted with AES-256-GCM under the store's KEK. The file's kind, label and
//! algorithm are bound as associated data, so a file renamed or copied from another store is
//! detected, not misread. Writes are atomic (temp file, fsync, rename, fsync directory) and
//! files are created 0600 inside 0700 directories.
//!
//! Limitation, stated plainly: a software counter can be rolled back by restoring an old copy of
//! its file. Hardware backends (PKCS#11, TPM, a real SE) do not have that weakness.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::key::{self, SoftKey, open_aes256gcm, seal_aes256gcm};
use super::unlock::{KdfParams, KdfSpec, Unlock};
use crate::error::{Error, Result};
use crate::traits::{KeyStore, MonotonicCounter, SealedStore};
use crate::types::{Hkdf, KeyAlgorithm, KeyInfo, Label, MAX_OBJECT_LEN, PublicKey, SignInput};

const FORMAT: &str = "ironclad-se/1";
const HEADER_FILE: &str = "store.json";
const LOCK_FILE: &str = ".lock";
const CHECK_PLAINTEXT: &[u8] = b"ironclad software secure element";
const MAGIC: &[u8; 4] = b"ICSE";

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    kdf: KdfSpec,
    /// AES-GCM of a fixed string under the KEK: tells a wrong passphrase from a tampered file.
    check: String,
}

#[derive(Clone, Copy)]
enum Kind {
    Key,
    Object,
    Counter,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Key => "keys",
            Kind::Object => "objects",
            Kind::Counter => "counters",
        }
    }

    fn code(self) -> u8 {
        match self {
            Kind::Key => b'K',
            Kind::Object => b'O',
            Kind::Counter => b'C',
        }
    }
}

/// A software secure element stored in a directory.
pub struct DirSe {
    root: PathBuf,
    kek: Zeroizing<[u8; 32]>,
    keys: RwLock<HashMap<Label, Arc<SoftKey>>>,
}

impl std::fmt::Debug for DirSe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirSe").field("root", &self.root).finish_non_exhaustive()
    }
}

impl DirSe {
    /// Creates a new store at `root` (which must not hold one already).
    pub fn create(root: impl AsRef<Path>, unlock: &Unlock, params: KdfParams) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let header_path = root.join(HEADER_FILE);
        if header_path.exists() {
            return Err(Error::StoreExists(root));
        }
        let kdf = KdfSpec::new_for(unlock, params)?;
        let kek = kdf.derive_kek(unlock)?.ok_or(Error::Crypto("unlock kind mismatch on create"))?;
        for dir in [root.clone(), root.join("keys"), root.join("objects"), root.join("counters")] {
            create_private_dir(&dir)?;
        }
        let check = hex::encode(seal_aes256gcm(kek.as_ref(), FORMAT.as_bytes(), CHECK_PLAINTEXT)?);
        let header = Header { format: FORMAT.to_owned(), kdf, check };
        let json = serde_json::to_vec_pretty(&header).map_err(|e| Error::Backend(e.to_string()))?;
        atomic_write(&header_path, &json, Overwrite::Refuse)?;
        Ok(Self { root, kek, keys: RwLock::default() })
    }

    /// Opens an existing store. A wrong passphrase is reported as such before any key is read.
    pub fn open(root: impl AsRef<Path>, unlock: &Unlock) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let header_path = root.join(HEADER_FILE);
        let bytes = match fs::read(&header_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::StoreNotFound(root)),
            Err(e) => return Err(Error::io(header_path, e)),
        };
        let header: Header = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt { path: header_path.clone(), reason: e.to_string() })?;
        if header.format != FORMAT {
            return Err(Error::UnsupportedFormat { path: header_path, found: header.format });
        }
        let kek = header.kdf.derive_kek(unlock)?.ok_or_else(|| Error::UnlockKindMismatch {
            path: root.clone(),
            expected: header.kdf.expected_unlock(),
        })?;
        let check = hex::decode(&header.check).map_err(|_| Error::Corrupt {
            path: header_path.clone(),
            reason: "check value is not hex".into(),
        })?;
        match open_aes256gcm(kek.as_ref(), FORMAT.as_bytes(), &check) {
            Ok(plain) if plain.as_slice() == CHECK_PLAINTEXT => {}
            _ => return Err(Error::WrongPassphrase(root)),
        }
        Ok(Self { root, kek, keys: RwLock::default() })
    }

    /// Opens the store at `root`, creating it first if it does not exist.
    pub fn open_or_create(root: impl AsRef<Path>, unlock: &Unlock, params: KdfParams) -> Result<Self> {
        if root.as_ref().join(HEADER_FILE).exists() {
            Self::open(root, unlock)
        } else {
            Self::create(root, unlock, params)
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, kind: Kind, label: &Label) -> PathBuf {
        self.root.join(kind.dir()).join(label.as_str())
    }

    /// Serialises mutations across threads and processes sharing this store.
    fn lock(&self) -> Result<File> {
        let path = self.root.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }

    fn aad(kind: Kind, label: &Label, alg: u8) -> Vec<u8> {
        let mut aad = Vec::with_capacity(FORMAT.len() + label.as_str().len() + 4);
        aad.extend_from_slice(FORMAT.as_bytes());
        aad.extend_from_slice(&[0, kind.code(), alg, 0]);
        aad.extend_from_slice(label.as_str().as_bytes());
        aad
    }

    fn encode(&self, kind: Kind, label: &Label, alg: u8, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(6 + plaintext.len() + 28);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[kind.code(), alg]);
        out.extend_from_slice(&seal_aes256gcm(self.kek.as_ref(), &Self::aad(kind, label, alg), plaintext)?);
        Ok(out)
    }

    /// Reads and authenticates a file; `Ok(None)` when it does not exist.
    fn read(&self, kind: Kind, label: &Label) -> Result<Option<(u8, Zeroizing<Vec<u8>>)>> {
        let path = self.path(kind, label);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let corrupt = |reason: &str| Error::Corrupt { path: path.clone(), reason: reason.to_owned() };
        let (head, sealed) = bytes.split_at_checked(6).ok_or_else(|| corrupt("file is truncated"))?;
        if &head[..4] != MAGIC {
            return Err(corrupt("not an ironclad secure-element file"));
        }
        if head[4] != kind.code() {
            return Err(Error::Tampered { path });
        }
        let alg = head[5];
        let plain = open_aes256gcm(self.kek.as_ref(), &Self::aad(kind, label, alg), sealed)
            .map_err(|_| Error::Tampered { path: path.clone() })?;
        Ok(Some((alg, plain)))
    }

    fn load_key(&self, id: &Label) -> Result<Arc<SoftKey>> {
        if let Some(key) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(key.clone());
        }
        let (code, secret) = self.read(Kind::Key, id)?.ok_or_else(|| Error::KeyNotFound(id.clone()))?;
        let path = self.path(Kind::Key, id);
        let alg = KeyAlgorithm::from_code(code).ok_or(Error::Tampered { path })?;
        let key = Arc::new(SoftKey::from_secret_bytes(alg, &secret)?);
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), key.clone());
        Ok(key)
    }

    fn list_dir(&self, kind: Kind) -> Result<Vec<Label>> {
        let dir = self.root.join(kind.dir());
        let mut labels = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            // Temp files start with '.', which no label may.
            if let Some(label) = entry.file_name().to_str().and_then(|n| Label::new(n).ok()) {
                labels.push(label);
            }
        }
        labels.sort();
        Ok(labels)
    }

    /// Writes a new key file (never replacing one) and caches the key.
    fn store_new_key(&self, id: &Label, key: SoftKey) -> Result<PublicKey> {
        let public = key.public_key()?;
        let alg = key.algorithm();
        let file = self.encode(Kind::Key, id, alg.code(), &key.secret_bytes()?)?;
        let _lock = self.lock()?;
        let path = self.path(Kind::Key, id);
        match atomic_write(&path, &file, Overwrite::Refuse) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::KeyExists(id.clone()));
            }
            other => other?,
        }
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), Arc::new(key));
        Ok(public)
    }

    fn write_counter(&self, name: &Label, value: u64) -> Result<()> {
        let file = self.encode(Kind::Counter, name, 0, &value.to_le_bytes())?;
        atomic_write(&self.path(Kind::Counter, name), &file, Overwrite::Replace)
    }
}

impl KeyStore for DirSe {
    fn backend_name(&self) -> &'static str {
        "software"
    }

    fn generate_key(&self, id: &Label, alg: KeyAlgorithm) -> Result<PublicKey> {
        self.store_new_key(id, SoftKey::generate(alg)?)
    }

    fn import_key(&self, id: &Label, alg: KeyAlgorithm, private: &[u8]) -> Result<PublicKey> {
        self.store_new_key(id, SoftKey::from_raw(alg, private)?)
    }

    fn key_info(&self, id: &Label) -> Result<KeyInfo> {
        Ok(KeyInfo { id: id.clone(), public: self.load_key(id)?.public_key()? })
    }

    fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        self.list_dir(Kind::Key)?.into_iter().map(|id| self.key_info(&id)).collect()
    }

    fn delete_key(&self, id: &Label) -> Result<()> {
        let _lock = self.lock()?;
        self.keys.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        remove(&self.path(Kind::Key, id), || Error::KeyNotFound(id.clone()))
    }

    fn sign(&self, id: &Label, input: SignInput<'_>) -> Result<Vec<u8>> {
        self.load_key(id)?.sign(id, input)
    }

    fn agree_and_derive(&self, id: &Label, peer_public: &[u8], kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
        self.load_key(id)?.agree_and_derive(id, peer_public, kdf, out)
    }

    fn derive(&self, id: &Label, kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
        self.load_key(id)?.derive(id, kdf, out)
    }

    fn seal(&self, id: &Label, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.load_key(id)?.seal(id, aad, plaintext)
    }

    fn open(&self, id: &Label, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.load_key(id)?.open(id, aad, sealed)
    }

    fn random(&self, out: &mut [u8]) -> Result<()> {
        key::random(out)
    }
}

impl SealedStore for DirSe {
    fn put_object(&self, name: &Label, data: &[u8]) -> Result<()> {
        if data.len() > MAX_OBJECT_LEN {
            return Err(Error::ObjectTooLarge { name: name.clone(), len: data.len(), max: MAX_OBJECT_LEN });
        }
        let file = self.encode(Kind::Object, name, 0, data)?;
        let _lock = self.lock()?;
        atomic_write(&self.path(Kind::Object, name), &file, Overwrite::Replace)
    }

    fn get_object(&self, name: &Label) -> Result<Zeroizing<Vec<u8>>> {
        Ok(self.read(Kind::Object, name)?.ok_or_else(|| Error::ObjectNotFound(name.clone()))?.1)
    }

    fn delete_object(&self, name: &Label) -> Result<()> {
        let _lock = self.lock()?;
        remove(&self.path(Kind::Object, name), || Error::ObjectNotFound(name.clone()))
    }

    fn list_objects(&self) -> Result<Vec<Label>> {
        self.list_dir(Kind::Object)
    }
}

impl MonotonicCounter for DirSe {
    fn counter(&self, name: &Label) -> Result<u64> {
        let Some((_, plain)) = self.read(Kind::Counter, name)? else { return Ok(0) };
        let bytes: [u8; 8] = plain.as_slice().try_into().map_err(|_| Error::Corrupt {
            path: self.path(Kind::Counter, name),
            reason: "counter is not 8 bytes".into(),
        })?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn counter_increment(&self, name: &Label) -> Result<u64> {
        let _lock = self.lock()?;
        let next = self.counter(name)?.checked_add(1).ok_or_else(|| Error::CounterOverflow(name.clone()))?;
        self.write_counter(name, next)?;
        Ok(next)
    }

    fn counter_advance(&self, name: &Label, value: u64) -> Result<u64> {
        let _lock = self.lock()?;
        let current = self.counter(name)?;
        if value < current {
            return Err(Error::CounterWouldDecrease { name: name.clone(), current, requested: value });
        }
        if value > current {
            self.write_counter(name, value)?;
        }
        Ok(value)
    }
}

fn remove(path: &Path, not_found: impl FnOnce() -> Error) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found()),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

/// Whether an atomic write may replace an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    Replace,
    Refuse,
}

/// Writes `data` to `path` so that a crash leaves either the old file or the new one, never a
/// mix: temp file in the same directory (mode 0600), fsync, rename, fsync the directory.
pub fn atomic_write(path: &Path, data: &[u8], overwrite: Overwrite) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(data).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
    match overwrite {
        Overwrite::Replace => tmp.persist(path).map(drop).map_err(|e| Error::io(path, e.error))?,
        Overwrite::Refuse => tmp.persist_noclobber(path).map(drop).map_err(|e| Error::io(path, e.error))?,
    }
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}
