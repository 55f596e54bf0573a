//! The key-ceremony script: one declarative TOML file reviewed before the ceremony and
//! followed exactly by `ironclad ceremony run`, in the spirit of Let's Encrypt's ceremony tool.
//!
//! ```toml
//! [ceremony]
//! name = "Acme device root 2026"
//! participants = ["alice (security officer)", "bob (witness)"]
//!
//! [backend]                      # where the CA keys live
//! kind = "software"              # or "pkcs11" with uri = "pkcs11:token=...?module-path=..."
//!
//! [root]
//! cn = "Acme Device Root CA"
//! org = "Acme"
//! country = "DE"
//! years = 25
//! algorithm = "ecdsa-p256"       # or "ed25519"
//! generation = "in-backend"      # or "offline-backup": made offline, split M-of-N, imported
//!
//! [backup]                       # required for generation = "offline-backup"
//! threshold = 3
//! holders = ["alice", "bob", "carol", "dave", "erin"]   # N = number of holders
//!
//! [[intermediate]]
//! name = "line-1"
//! cn = "Acme Line 1 CA"
//! family = "acme-cam-v2"
//! years = 5
//! device_validity = "30y"
//! ```

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The whole script.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Script {
    pub(crate) ceremony: Meta,
    #[serde(default)]
    pub(crate) backend: Backend,
    pub(crate) root: Root,
    pub(crate) backup: Option<Backup>,
    #[serde(default)]
    pub(crate) intermediate: Vec<Intermediate>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Meta {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) participants: Vec<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum Backend {
    #[default]
    Software,
    Pkcs11 {
        uri: String,
    },
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Generation {
    /// Generated inside the backend; no copy exists anywhere.
    InBackend,
    /// Generated offline, backed up as M-of-N shares, imported, wiped from memory.
    OfflineBackup,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Root {
    pub(crate) cn: String,
    pub(crate) org: String,
    pub(crate) country: String,
    #[serde(default = "default_root_years")]
    pub(crate) years: u16,
    #[serde(default = "default_algorithm")]
    pub(crate) algorithm: String,
    pub(crate) generation: Generation,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backup {
    pub(crate) threshold: u8,
    pub(crate) holders: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Intermediate {
    pub(crate) name: String,
    pub(crate) cn: Option<String>,
    pub(crate) org: Option<String>,
    pub(crate) country: Option<String>,
    #[serde(default = "default_intermediate_years")]
    pub(crate) years: u16,
    pub(crate) family: String,
    #[serde(default = "default_device_validity")]
    pub(crate) device_validity: String,
    #[serde(default = "default_algorithm")]
    pub(crate) algorithm: String,
}

fn default_root_years() -> u16 {
    25
}
fn default_intermediate_years() -> u16 {
    15
}
fn default_device_validity() -> String {
    "30y".into()
}
fn default_algorithm() -> String {
    "ecdsa-p256".into()
}

impl Script {
    /// Parses and checks a script before anything is done.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let script: Script = toml::from_str(text).context("ceremony script")?;
        match (&script.root.generation, &script.backup) {
            (Generation::OfflineBackup, None) => {
                bail!("root.generation = \"offline-backup\" needs a [backup] section (threshold, holders)")
            }
            (Generation::InBackend, Some(_)) => {
                bail!(
                    "[backup] is only for root.generation = \"offline-backup\" (an in-backend key has no copy to back up)"
                )
            }
            (_, Some(b))
                if b.threshold < 2 || usize::from(b.threshold) > b.holders.len() || b.holders.len() > 255 =>
            {
                bail!("backup: need 2 <= threshold <= number of holders <= 255")
            }
            _ => {}
        }
        for alg in
            std::iter::once(&script.root.algorithm).chain(script.intermediate.iter().map(|i| &i.algorithm))
        {
            key_algorithm(alg)?;
        }
        Ok(script)
    }
}

/// CA key algorithms a script may name.
pub(crate) fn key_algorithm(name: &str) -> Result<ironclad_se::KeyAlgorithm> {
    match name {
        "ecdsa-p256" => Ok(ironclad_se::KeyAlgorithm::EcdsaP256),
        "ed25519" => Ok(ironclad_se::KeyAlgorithm::Ed25519),
        other => bail!("unsupported CA key algorithm {other:?}: use ecdsa-p256 or ed25519"),
    }
}
