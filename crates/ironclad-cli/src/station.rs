//! The factory station's provisioning flow, shared by `factory provision` and the demo:
//! verified order → durable reservation → keys generated in each device's secure element →
//! CSRs → batch issuance by the line CA → audit → certificate, chain and console password
//! sealed back into each device → the cloud's manifest.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use ironclad_factory::{AuditRecord, QuotaLedger, VerifiedOrder, console_password};
use ironclad_pki::{
    BatchEvent, BatchOptions, CaCertificate, CaIssuer, DeviceProfile, IssuedRecord, SqliteIndex,
};
use ironclad_se::{DirSe, KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement, Unlock};
use rayon::prelude::*;
use serde::Serialize;

use crate::cmd::se_csr::device_csr_pem;

/// Keys every device gets, by label.
pub(crate) const AUTH_KEY: &str = "device-auth";
pub(crate) const FW_KEY: &str = "fw-decrypt";
pub(crate) const APP_KEY: &str = "app-master";
/// The Secret256 in the CA key store from which console passwords are derived.
pub(crate) const CONSOLE_SECRET: &str = "factory-console";

/// Where simulated devices keep their secure elements.
#[derive(Debug, Clone)]
pub(crate) enum DeviceStores {
    /// One encrypted store per device under this directory, unlocked by a device-unique
    /// secret (kept beside it as `device-secret`, standing in for the chip's fuses).
    Directory(PathBuf),
    /// In memory: for throughput runs, where only the station's records matter.
    Memory,
}

/// What the cloud needs to know about each device: the manifest line.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeviceRecord {
    pub(crate) device_id: String,
    pub(crate) order: String,
    pub(crate) serial: String,
    pub(crate) family: String,
    pub(crate) sha256_fingerprint: String,
    pub(crate) not_after: String,
    pub(crate) certificate_pem: String,
    /// The device's X25519 firmware-decryption public key (hex): updates are wrapped to it.
    pub(crate) fw_decrypt_public: String,
}

/// A provisioned device, for callers that go on using it (the demo).
pub(crate) struct Device {
    pub(crate) id: String,
    pub(crate) se: Arc<dyn SecureElement>,
}

pub(crate) struct Station<'a> {
    pub(crate) order: &'a VerifiedOrder,
    pub(crate) line_cert: &'a CaCertificate,
    pub(crate) root_cert: &'a CaCertificate,
    pub(crate) line_key: &'a KeyHandle,
    pub(crate) ca_keys: &'a Arc<dyn SecureElement>,
    pub(crate) profile: &'a DeviceProfile,
    pub(crate) stores: DeviceStores,
}

impl Station<'_> {
    /// Provisions up to `count` devices under the order (fewer if the order runs out; none is
    /// an error). `progress` is called with the number of devices done.
    pub(crate) fn provision(
        &self,
        ledger: &mut QuotaLedger,
        index: &mut SqliteIndex,
        count: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(Vec<DeviceRecord>, Vec<Device>)> {
        let order = self.order.order();
        let mut reservation =
            ledger.reserve_up_to(self.order, count).with_context(|| format!("order {}", order.id))?;
        let first = reservation.first_unit();
        let units = reservation.count();
        let console_secret = Label::new(CONSOLE_SECRET)?;
        if self.ca_keys.key_info(&console_secret).is_err() {
            // First provisioning with this PKI: the secret is made inside the key store.
            let _ = self.ca_keys.generate_key(&console_secret, KeyAlgorithm::Secret256);
        }

        // 1. Keys inside each device, and its CSR.
        let made: Vec<(Device, String, String)> = (first..first + units)
            .into_par_iter()
            .map(|unit| -> Result<_> {
                let id = format!("{}-{}-{unit:06}", order.product, order.id);
                let se = self.device_store(&id)?;
                let auth = Label::new(AUTH_KEY)?;
                se.generate_key(&auth, KeyAlgorithm::EcdsaP256)?;
                let fw = se.generate_key(&Label::new(FW_KEY)?, KeyAlgorithm::X25519)?;
                se.generate_key(&Label::new(APP_KEY)?, KeyAlgorithm::Secret256)?;
                let csr = device_csr_pem(&KeyHandle::open(se.clone(), &auth)?, &id)?;
                progress(1);
                Ok((Device { id, se }, csr, hex::encode(fw.as_bytes())))
            })
            .collect::<Result<_>>()?;

        // 2. Issue under the line CA; each committed chunk is audited at once.
        let issuer = CaIssuer::new(self.line_cert, self.line_key)?;
        let requests: Vec<(String, String)> =
            made.iter().map(|(d, csr, _)| (d.id.clone(), csr.clone())).collect();
        let issued = Mutex::new(Vec::<IssuedRecord>::with_capacity(made.len()));
        let now_text = now();
        let mut audit_error = None;
        let report = ironclad_pki::issue_batch_streaming(
            requests,
            &issuer,
            self.profile,
            index,
            time::OffsetDateTime::now_utc(),
            &BatchOptions::default(),
            &mut |event| {
                if let BatchEvent::Committed(records) = event {
                    let audit: Vec<AuditRecord> = records
                        .iter()
                        .map(|r| AuditRecord { serial: r.serial.clone(), device_id: r.device_id.clone() })
                        .collect();
                    if let Err(e) = ledger.record_issued(&mut reservation, &audit, &now_text) {
                        audit_error.get_or_insert(e);
                    }
                    issued.lock().unwrap_or_else(|p| p.into_inner()).extend(records);
                }
            },
        )?;
        if let Some(e) = audit_error {
            return Err(e.into());
        }
        if let Some((name, err)) = report.failed.first() {
            bail!("{} of {units} device CSRs refused; first: {name}: {err}", report.failed.len());
        }
        ledger.release(reservation)?;
        let issued = issued.into_inner().unwrap_or_else(|p| p.into_inner());

        // 3. Certificate, chain and console password back into each device.
        let chain = format!("{}{}", self.line_cert.pem(), self.root_cert.pem());
        let records = made
            .par_iter()
            .zip(&issued)
            .map(|((device, _, fw_public), record)| -> Result<DeviceRecord> {
                if device.id != record.device_id {
                    bail!("certificate order mismatch for {}", device.id);
                }
                device.se.put_object(&Label::new("device-cert")?, record.pem().as_bytes())?;
                device.se.put_object(&Label::new("device-chain")?, chain.as_bytes())?;
                let password = console_password(self.ca_keys.as_ref(), &console_secret, &device.id)?;
                device.se.put_object(&Label::new("console-password")?, password.as_bytes())?;
                Ok(DeviceRecord {
                    device_id: device.id.clone(),
                    order: order.id.clone(),
                    serial: record.serial.clone(),
                    family: record.family.clone(),
                    sha256_fingerprint: record.sha256_fingerprint.clone(),
                    not_after: record.not_after.clone(),
                    certificate_pem: record.pem(),
                    fw_decrypt_public: fw_public.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let devices = made.into_iter().map(|(d, _, _)| d).collect();
        Ok((records, devices))
    }

    fn device_store(&self, id: &str) -> Result<Arc<dyn SecureElement>> {
        Ok(match &self.stores {
            DeviceStores::Memory => Arc::new(MemorySe::new()),
            DeviceStores::Directory(dir) => {
                let device_dir = dir.join(id);
                std::fs::create_dir_all(&device_dir)?;
                let mut secret = zeroize::Zeroizing::new([0u8; 32]);
                aws_lc_rs::rand::fill(secret.as_mut()).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
                ironclad_se::atomic_write(
                    &device_dir.join("device-secret"),
                    secret.as_ref(),
                    ironclad_se::Overwrite::Refuse,
                )?;
                Arc::new(DirSe::create(
                    device_dir.join("se"),
                    &Unlock::device_secret(secret.as_ref()),
                    crate::secrets::kdf_params(),
                )?)
            }
        })
    }
}

/// Opens a device's store made by `DeviceStores::Directory`.
pub(crate) fn open_device(device_dir: &Path) -> Result<DirSe> {
    let secret = zeroize::Zeroizing::new(
        std::fs::read(device_dir.join("device-secret"))
            .with_context(|| format!("{} is not a provisioned device directory", device_dir.display()))?,
    );
    Ok(DirSe::open(device_dir.join("se"), &Unlock::device_secret(&secret))?)
}

pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
