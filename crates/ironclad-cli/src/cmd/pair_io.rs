//! Shared by the `pair` subcommands: where the controller keeps its identity and pairing
//! records, reading characteristic IDs and values, the OEM root, and one-line descriptions.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_hap::{
    AuthenticatedDevice, CharId, Controller, OemRootVerifier, PairedAccessory, SeControllerStore, ids,
};
use ironclad_se::{DirSe, SecureElement};
use serde_json::{Value, json};

use crate::secrets::{UnlockArgs, kdf_params};

/// Prefix of the controller's objects in its secure element.
const CONTROLLER_PREFIX: &str = "hap-controller";

/// The controller's store: a software secure element holding its Ed25519 long-term key (made
/// inside, never exported) and, sealed, its pairing identifier and paired accessories.
#[derive(Args, Debug, Clone)]
pub(crate) struct ControllerStoreArgs {
    /// The controller's store directory (a software secure element; `pair` creates it).
    #[arg(long, value_name = "DIR", env = "IRONCLAD_CONTROLLER_DIR", default_value = "ironclad-controller")]
    pub(crate) store: PathBuf,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
}

impl ControllerStoreArgs {
    /// Opens the controller; with `create`, makes the store first if it does not exist.
    pub(crate) fn open(&self, create: bool) -> Result<Controller> {
        let exists = self.store.join("store.json").exists();
        let se: Arc<dyn SecureElement> = if exists {
            let unlock = self.unlock.resolve(false)?;
            Arc::new(
                DirSe::open(&self.store, &unlock)
                    .with_context(|| format!("opening the controller store {}", self.store.display()))?,
            )
        } else if create {
            let unlock = self.unlock.resolve(true)?;
            Arc::new(
                DirSe::create(&self.store, &unlock, kdf_params())
                    .with_context(|| format!("creating the controller store {}", self.store.display()))?,
            )
        } else {
            bail!(
                "no controller store at {} (pair with an accessory first: `ironclad pair controller pair`)",
                self.store.display()
            );
        };
        let store = SeControllerStore::new(se, CONTROLLER_PREFIX)?;
        Ok(Controller::new(Arc::new(store))?)
    }
}

/// The accessory to talk to, by the alias given at `pair`.
#[derive(Args, Debug, Clone)]
pub(crate) struct AliasArgs {
    /// The accessory's alias (chosen at `pair controller pair`).
    #[arg(long)]
    pub(crate) alias: String,
    /// Connect to this HOST:PORT instead of the recorded address (the accessory moved).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) address: Option<String>,
}

impl AliasArgs {
    /// The stored record, at --address if given.
    pub(crate) fn record(&self, controller: &Controller) -> Result<PairedAccessory> {
        let mut record = controller.store().accessory(&self.alias)?.with_context(|| {
            format!("no accessory paired as {:?} (see `ironclad pair controller list`)", self.alias)
        })?;
        if let Some(address) = &self.address {
            record.address = address.clone();
        }
        Ok(record)
    }
}

/// A characteristic: `AID.IID` or one of the names of the ironclad demo accessory.
pub(crate) fn parse_char(text: &str) -> Result<CharId> {
    Ok(match text {
        "on" => ids::ON,
        "name" => ids::NAME,
        "model" => ids::MODEL,
        "manufacturer" => ids::MANUFACTURER,
        "serial-number" => ids::SERIAL_NUMBER,
        "firmware" => ids::FIRMWARE_REVISION,
        other => {
            other.parse().with_context(|| format!("{other:?}: expected AID.IID (e.g. 1.11) or a name"))?
        }
    })
}

/// `CHAR=VALUE`: the value as JSON (`true`, `21.5`, `"text"`), or as a string if it is not JSON.
pub(crate) fn parse_assignment(text: &str) -> Result<(CharId, Value)> {
    let (id, value) = text.split_once('=').with_context(|| format!("{text:?}: expected CHAR=VALUE"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((parse_char(id)?, value))
}

/// The OEM root(s) from a PEM file, as a device-certificate verifier.
pub(crate) fn oem_verifier(path: &PathBuf) -> Result<Arc<OemRootVerifier>> {
    let pem = std::fs::read(path).with_context(|| format!("reading the OEM root {}", path.display()))?;
    Ok(Arc::new(OemRootVerifier::from_pem(&pem).with_context(|| format!("OEM root {}", path.display()))?))
}

/// JSON for a verified device certificate.
pub(crate) fn device_json(device: &AuthenticatedDevice) -> Value {
    json!({"device_id": device.device_id, "serial": device.serial, "certificates": device.certificates.len()})
}

/// JSON for a paired accessory.
pub(crate) fn accessory_json(record: &PairedAccessory) -> Value {
    json!({
        "alias": record.alias,
        "address": record.address,
        "device_id": record.pairing.id.to_string(),
        "public_key": hex::encode(record.pairing.public_key),
        "device_certificate": record.device.as_ref().map(device_json),
    })
}

/// `lamp-0001 (serial 3f…)` or `none`.
pub(crate) fn describe_device(device: Option<&AuthenticatedDevice>) -> String {
    match device {
        Some(d) => format!("{} (serial {})", d.device_id, d.serial),
        None => "none".to_owned(),
    }
}
