//! The on-disk PKI directory that `ca` and `cert` commands share:
//!
//! ```text
//! <pki>/pki.json                    format marker and where the CA keys are (backend record)
//! <pki>/keys/                       software secure element holding every CA key (software
//!                                   backend; with PKCS#11 the keys are on the token)
//! <pki>/root.pem                    the root certificate
//! <pki>/ca/<name>/cert.pem          an issuing (intermediate) CA
//! <pki>/ca/<name>/chain.pem         that CA followed by the root: give it to devices and peers
//! <pki>/ca/<name>/profile.json      the device-certificate profile it issues under
//! <pki>/ca/<name>/crl.pem           its latest CRL (`ca crl`)
//! <pki>/index.sqlite                every issued certificate: serial, device, status
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ironclad_pki::{CaCertificate, DeviceProfile, SqliteIndex, Validity};
use ironclad_se::{KeyHandle, Label, Overwrite, SecureElement, atomic_write};
use ironclad_se_pkcs11::{Pkcs11Config, Pkcs11Se, Pkcs11Uri};
use serde::{Deserialize, Serialize};

use crate::secrets::CaKeyArgs;

const FORMAT: &str = "ironclad-pki/1";
pub(crate) const ROOT_KEY: &str = "root";

#[derive(Serialize, Deserialize)]
struct PkiMeta {
    format: String,
    /// Absent in directories made before PKCS#11 support: those are software.
    #[serde(default)]
    backend: KeyBackend,
}

/// Where a PKI's CA keys live, as recorded in `pki.json`. Never holds a PIN or passphrase.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum KeyBackend {
    /// The encrypted software store in `<pki>/keys/`, unlocked by a passphrase.
    #[default]
    Software,
    /// A PKCS#11 token: `uri` names the token and module (RFC 7512, without pin-source);
    /// `root_key` is the root key's label (intermediates are `ca-<name>`).
    Pkcs11 { uri: String, root_key: String },
}

impl KeyBackend {
    /// The record for a token named by `uri`: the URI's `object` (if any) names the root key.
    pub(crate) fn pkcs11(uri: &Pkcs11Uri) -> Result<Self> {
        let root_key = uri.object.clone().unwrap_or_else(|| ROOT_KEY.to_owned());
        Label::new(root_key.as_str())
            .with_context(|| format!("root key label from the URI's object={root_key:?}"))?;
        let mut stored = uri.without_pin_source();
        (stored.object, stored.object_type, stored.id) = (None, None, None);
        if stored.token.is_none() || stored.module_path.is_none() {
            bail!(
                "the PKCS#11 URI must name the token and the module, e.g. pkcs11:token=ironclad-ca?module-path=/usr/lib/softhsm/libsofthsm2.so"
            );
        }
        Ok(KeyBackend::Pkcs11 { uri: stored.to_string(), root_key })
    }

    /// Opens the CA key store: the software store under `keys_dir`, or the token.
    fn open(&self, keys_dir: &Path, keys: &CaKeyArgs) -> Result<Arc<dyn SecureElement>> {
        match self {
            KeyBackend::Software => {
                let secret = keys.unlock.resolve(false)?;
                let se = ironclad_se::DirSe::open(keys_dir, &secret)
                    .with_context(|| format!("opening the CA key store {}", keys_dir.display()))?;
                Ok(Arc::new(se))
            }
            KeyBackend::Pkcs11 { uri, .. } => {
                let uri =
                    Pkcs11Uri::parse(uri).with_context(|| format!("the PKCS#11 URI in pki.json ({uri})"))?;
                Ok(Arc::new(open_token(&uri, keys)?))
            }
        }
    }

    /// A one-line description for command output.
    pub(crate) fn describe(&self, pki: &Path) -> String {
        match self {
            KeyBackend::Software => format!("in {}/keys (encrypted; never exported)", pki.display()),
            KeyBackend::Pkcs11 { uri, .. } => {
                let token = Pkcs11Uri::parse(uri).ok().and_then(|u| u.token).unwrap_or_default();
                format!("on PKCS#11 token {token:?} (sensitive, never extractable)")
            }
        }
    }
}

/// Logs in to the token named by `uri` with the PIN from `keys`.
pub(crate) fn open_token(uri: &Pkcs11Uri, keys: &CaKeyArgs) -> Result<Pkcs11Se> {
    let pin = keys.pin.resolve(uri)?;
    let config = Pkcs11Config::from_uri(uri, pin)?;
    Pkcs11Se::open(&config).with_context(|| format!("opening PKCS#11 token {:?}", config.token_label))
}

/// The device profile an issuing CA applies, as stored in `profile.json`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct ProfileFile {
    pub(crate) organization: String,
    pub(crate) country: String,
    pub(crate) family: String,
    /// `30y`, `90d`, `24h`, `3600s` or `none` (99991231235959Z).
    pub(crate) validity: String,
}

impl ProfileFile {
    pub(crate) fn to_profile(&self) -> Result<DeviceProfile> {
        Ok(DeviceProfile::new(
            &self.organization,
            &self.country,
            &self.family,
            parse_validity(&self.validity)?,
        )?)
    }
}

/// Parses `30y`, `90d`, `24h`, `15m`, `3600s` or `none`.
pub(crate) fn parse_validity(text: &str) -> Result<Validity> {
    let text = text.trim();
    if matches!(text, "none" | "never") {
        return Ok(Validity::NoWellDefinedExpiry);
    }
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 =
        digits.parse().with_context(|| format!("validity {text:?}: expected e.g. 30y, 90d, 24h or none"))?;
    Ok(match unit {
        "y" => Validity::Years(u16::try_from(n).context("too many years")?),
        "d" => Validity::Duration(time::Duration::days(n)),
        "h" => Validity::Duration(time::Duration::hours(n)),
        "m" => Validity::Duration(time::Duration::minutes(n)),
        "s" => Validity::Duration(time::Duration::seconds(n)),
        _ => bail!("validity {text:?}: unit must be y, d, h, m or s (or `none`)"),
    })
}

/// An opened PKI directory.
#[derive(Debug)]
pub(crate) struct PkiDir {
    root: PathBuf,
    backend: KeyBackend,
}

impl PkiDir {
    /// Creates the directory skeleton; refuses to reuse an existing PKI.
    pub(crate) fn create(root: &Path, backend: KeyBackend) -> Result<Self> {
        if root.join("pki.json").exists() {
            bail!("{} already holds a PKI (pki.json exists); choose another --pki directory", root.display());
        }
        std::fs::create_dir_all(root.join("ca")).with_context(|| format!("creating {}", root.display()))?;
        let meta = serde_json::to_vec_pretty(&PkiMeta { format: FORMAT.into(), backend: backend.clone() })?;
        atomic_write(&root.join("pki.json"), &meta, Overwrite::Refuse)?;
        Ok(Self { root: root.to_path_buf(), backend })
    }

    pub(crate) fn open(root: &Path) -> Result<Self> {
        let meta_path = root.join("pki.json");
        let bytes = std::fs::read(&meta_path).with_context(|| {
            format!(
                "{} is not a PKI directory (no pki.json); create one with `ironclad ca init`",
                root.display()
            )
        })?;
        let meta: PkiMeta =
            serde_json::from_slice(&bytes).with_context(|| format!("reading {}", meta_path.display()))?;
        if meta.format != FORMAT {
            bail!("{} has format {:?}; this ironclad reads {FORMAT}", meta_path.display(), meta.format);
        }
        Ok(Self { root: root.to_path_buf(), backend: meta.backend })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.root
    }

    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    pub(crate) fn root_cert_path(&self) -> PathBuf {
        self.root.join("root.pem")
    }

    pub(crate) fn ca_dir(&self, name: &str) -> PathBuf {
        self.root.join("ca").join(name)
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.root.join("index.sqlite")
    }

    pub(crate) fn open_index(&self) -> Result<SqliteIndex> {
        SqliteIndex::open(self.index_path())
            .with_context(|| format!("opening {}", self.index_path().display()))
    }

    pub(crate) fn backend(&self) -> &KeyBackend {
        &self.backend
    }

    /// Opens where the CA keys are: the software store (asking for its passphrase) or the
    /// PKCS#11 token (asking for its PIN).
    pub(crate) fn open_keys(&self, keys: &CaKeyArgs) -> Result<Arc<dyn SecureElement>> {
        self.backend.open(&self.keys_dir(), keys)
    }

    /// The root CA key's label in the key store.
    pub(crate) fn root_key_label(&self) -> Result<Label> {
        Ok(match &self.backend {
            KeyBackend::Software => Label::new(ROOT_KEY)?,
            KeyBackend::Pkcs11 { root_key, .. } => Label::new(root_key.as_str())?,
        })
    }

    pub(crate) fn root_cert(&self) -> Result<CaCertificate> {
        read_ca_cert(&self.root_cert_path())
    }

    pub(crate) fn ca_cert(&self, name: &str) -> Result<CaCertificate> {
        let path = self.ca_dir(name).join("cert.pem");
        if !path.exists() {
            bail!(
                "no CA named {name:?} in {} (known: {}); create it with `ironclad ca intermediate --name {name}`",
                self.root.display(),
                self.ca_names()?.join(", ")
            );
        }
        read_ca_cert(&path)
    }

    pub(crate) fn ca_profile(&self, name: &str) -> Result<ProfileFile> {
        let path = self.ca_dir(name).join("profile.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Every intermediate CA's name, sorted.
    pub(crate) fn ca_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.root.join("ca"))? {
            let entry = entry?;
            if entry.path().join("cert.pem").exists() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// All intermediates' certificates, for chain building.
    pub(crate) fn intermediates(&self) -> Result<Vec<CaCertificate>> {
        self.ca_names()?.iter().map(|n| self.ca_cert(n)).collect()
    }

    /// The key label of an intermediate CA inside the CA key store.
    pub(crate) fn ca_key_label(name: &str) -> Result<Label> {
        Ok(Label::new(format!("ca-{name}"))?)
    }

    /// An issuing CA's certificate and its key (unlocking the CA key store or logging in to
    /// the token): what signs device certificates and CRLs. Pair them with `CaIssuer::new`.
    pub(crate) fn issuing_ca(&self, name: &str, keys: &CaKeyArgs) -> Result<(CaCertificate, KeyHandle)> {
        let cert = self.ca_cert(name)?;
        let se = self.open_keys(keys)?;
        let key = Self::signer(&se, &Self::ca_key_label(name)?)?;
        Ok((cert, key))
    }

    pub(crate) fn signer(se: &Arc<dyn SecureElement>, label: &Label) -> Result<KeyHandle> {
        KeyHandle::open(se.clone(), label).with_context(|| format!("opening CA key `{label}`"))
    }
}

fn read_ca_cert(path: &Path) -> Result<CaCertificate> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    CaCertificate::from_pem(&text).with_context(|| format!("parsing {}", path.display()))
}

/// CA names become directory names and key labels: keep them simple.
pub(crate) fn validate_ca_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        bail!("CA name {name:?}: use 1-48 characters from A-Z a-z 0-9 - _ . (e.g. line-1)");
    }
    Ok(())
}
