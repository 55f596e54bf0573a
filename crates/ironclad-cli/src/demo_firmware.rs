//! The demo's firmware stage: a release mastered with a key in a software secure element,
//! encrypted to one device and re-wrapped (without re-signing) to the others, then a few
//! simulated devices booted through install → trial → confirm, a refused downgrade and a
//! reverted trial. Each device's own secure element unwraps the update (its `fw-decrypt` key)
//! and holds the anti-rollback counter.

use std::io::Cursor;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use ironclad_boot::{
    AntiRollback, BootConfig, BootEngine, BootMode, Chain, CounterAdvance, Error as BootError, SimConfig,
    SimFlash,
};
use ironclad_image::{
    Cipher, ContentKey, Encryption, Error as ImageError, Image, KeyAgreement, Limits, SeAgreementKey,
    SignOptions, TrustAnchors, Version, sign,
};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, MonotonicCounter, PublicKey, SecureElement};

use crate::station::FW_KEY;

/// Label of the mastering key in the release team's secure element.
const MASTERING_KEY: &str = "fw-mastering";
/// Firmware payload size (a small MCU application).
const PAYLOAD_LEN: usize = 20 * 1024;

/// Masters release 1.1.0 (security counter 2) and boots every device in `devices` (their
/// secure elements, each holding an X25519 `fw-decrypt` key; pass a handful) through the update
/// cycle. Returns a one-line summary; any deviation from the expected outcome is an error.
pub(crate) fn firmware_stage(devices: &[Arc<dyn SecureElement>]) -> Result<String> {
    ensure!(!devices.is_empty(), "the firmware stage needs at least one device");
    let release_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let label = Label::new(MASTERING_KEY)?;
    release_se.generate_key(&label, KeyAlgorithm::EcdsaP256)?;
    let mastering = KeyHandle::open(release_se, &label)?;
    let trust = TrustAnchors::with_key(mastering.public_key().clone())?;
    let fw_label = Label::new(FW_KEY)?;
    let recipients = devices
        .iter()
        .enumerate()
        .map(|(i, se)| {
            let key = SeAgreementKey::open(se.clone(), &fw_label)
                .with_context(|| format!("device {}: its `{FW_KEY}` key", i + 1))?;
            Ok(key.public_key().clone())
        })
        .collect::<Result<Vec<PublicKey>>>()?;

    let factory = master(&mastering, "1.0.0", 1, None)?;
    let release = Release::master(&mastering, &trust, "1.1.0", 2, &recipients)?;
    let next = Release::master(&mastering, &trust, "1.2.0", 3, &recipients)?;

    for (i, se) in devices.iter().enumerate() {
        let n = i + 1;
        let mut device = SimDevice::new(se.clone(), &fw_label, trust.clone())?;
        device.provision(&factory).with_context(|| format!("device {n}: factory image"))?;
        let advanced =
            device.update(&release.per_device[i]).with_context(|| format!("device {n}: update to 1.1.0"))?;
        ensure!(advanced == Some(CounterAdvance { from: 1, to: 2 }), "device {n}: counter not raised to 2");

        match device.engine.install(&mut Cursor::new(&factory)) {
            Err(BootError::Downgrade { image: 1, device: 2 }) => {}
            other => bail!("device {n}: the 1.0.0 downgrade was not refused ({other:?})"),
        }
        if let Some(other) = release.per_device.get((i + 1) % devices.len()).filter(|_| devices.len() > 1) {
            match device.engine.install(&mut Cursor::new(other)) {
                Err(BootError::Image(ImageError::KeyUnwrapFailed)) => {}
                r => bail!("device {n}: another device's copy was not refused ({r:?})"),
            }
        }
        device.trial_then_revert(&next.per_device[i]).with_context(|| format!("device {n}: 1.2.0 revert"))?;
    }
    Ok(format!(
        "release 1.1.0 (security counter 2) signed with an ECDSA P-256 key in a software SE, AES-128 encrypted \
         to device 1's X25519 key and re-wrapped without re-signing to {} more; {} simulated device(s): \
         factory 1.0.0 → install 1.1.0 → trial → confirm (counter 1→2); 1.0.0 downgrade refused{}; 1.2.0 \
         trial reverted → back on 1.1.0",
        devices.len() - 1,
        devices.len(),
        if devices.len() > 1 { ", another device's copy refused" } else { "" },
    ))
}

/// Signs a plain release (the factory image, installed through the recovery path).
fn master(key: &KeyHandle, version: &str, counter: u32, encryption: Option<Encryption>) -> Result<Vec<u8>> {
    let version: Version = version.parse()?;
    let mut options = SignOptions::new(version);
    options.header_size = 0x200;
    options.security_counter = Some(counter);
    options.encryption = encryption;
    let payload = firmware(version);
    let mut image = Vec::new();
    sign(key, &options, &payload[..], payload.len() as u64, &mut image)?;
    Ok(image)
}

/// A recognisable firmware payload for a version.
fn firmware(version: Version) -> Vec<u8> {
    let banner = format!("ironclad demo camera firmware {version}\n");
    banner.bytes().cycle().take(PAYLOAD_LEN).collect()
}

/// One release, encrypted per device.
struct Release {
    per_device: Vec<Vec<u8>>,
}

impl Release {
    /// Masters once, encrypted to the first device; the release server, which kept the
    /// content key, re-wraps the same signed image to every other device.
    fn master(
        key: &KeyHandle,
        trust: &TrustAnchors,
        version: &str,
        counter: u32,
        recipients: &[PublicKey],
    ) -> Result<Self> {
        let content_key = ContentKey::generate(Cipher::Aes128Ctr)?;
        let first = recipients.first().context("no device")?.clone();
        let mastered = master(
            key,
            version,
            counter,
            Some(Encryption { recipient: first, content_key: content_key.clone() }),
        )?;
        let mut per_device = vec![mastered.clone()];
        for recipient in &recipients[1..] {
            let mut src = Cursor::new(&mastered);
            let verified =
                Image::read(&mut src, &Limits::default())?.verify_encrypted(&mut src, trust, &content_key)?;
            let mut copy = Vec::with_capacity(mastered.len());
            verified.rewrap(&mut src, &mut copy, recipient)?;
            ensure!(
                copy[..verified.header().signed_len() as usize]
                    == mastered[..verified.header().signed_len() as usize]
            );
            per_device.push(copy);
        }
        Ok(Self { per_device })
    }
}

/// A simulated device: MCU flash with A/B slots, its secure element unwrapping updates and
/// holding the anti-rollback counter.
struct SimDevice {
    engine: BootEngine<SimFlash>,
}

impl SimDevice {
    fn new(se: Arc<dyn SecureElement>, fw_label: &Label, trust: TrustAnchors) -> Result<Self> {
        let config = SimConfig::mcu();
        let flash = SimFlash::new(config.geometry)?;
        let counter: Arc<dyn MonotonicCounter> = se.clone();
        let boot = BootConfig::new(config.layout()?, Chain::slots_only(trust));
        let engine = BootEngine::new(flash, boot, AntiRollback::with_default_label(counter)?)?
            .with_decryption_key(Box::new(SeAgreementKey::open(se, fw_label)?));
        Ok(Self { engine })
    }

    /// The factory writes the first image through the recovery path, then the device boots it.
    fn provision(&mut self, image: &[u8]) -> Result<()> {
        ensure!(self.engine.reset().is_err(), "a factory-fresh device booted something");
        self.engine.recover(&mut Cursor::new(image))?;
        let boot = self.engine.reset()?;
        ensure!(boot.booted.mode == BootMode::Confirmed, "the factory image is not confirmed");
        Ok(())
    }

    /// Install → reset (trial) → confirm → reset: returns the counter change at confirmation.
    fn update(&mut self, image: &[u8]) -> Result<Option<CounterAdvance>> {
        let installed = self.engine.install(&mut Cursor::new(image))?;
        ensure!(installed.decrypted, "the update was not decrypted by the device key");
        let trial = self.engine.reset()?;
        ensure!(
            matches!(trial.booted.mode, BootMode::Trial { attempt: 1, .. })
                && trial.booted.slot == installed.slot,
            "the update did not boot on trial"
        );
        let advanced = self.engine.confirm()?;
        let again = self.engine.reset()?;
        ensure!(
            again.booted.mode == BootMode::Confirmed && again.booted.slot == installed.slot,
            "not confirmed"
        );
        Ok(advanced)
    }

    /// Installs, boots on trial, has the application reject it, and checks the fallback.
    fn trial_then_revert(&mut self, image: &[u8]) -> Result<()> {
        let running = self.engine.booted().context("nothing runs")?.clone();
        let installed = self.engine.install(&mut Cursor::new(image))?;
        let trial = self.engine.reset()?;
        ensure!(trial.booted.slot == installed.slot, "the 1.2.0 trial did not boot");
        self.engine.revert()?;
        let back = self.engine.reset()?;
        ensure!(
            back.booted.slot == running.slot && back.booted.version == running.version,
            "did not fall back to {}",
            running.version
        );
        ensure!(self.engine.rollback().device_counter()? == 2, "a reverted trial raised the counter");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn device() -> Arc<dyn SecureElement> {
        let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        se.generate_key(&Label::new(FW_KEY).unwrap(), KeyAlgorithm::X25519).unwrap();
        se
    }

    #[test]
    fn firmware_stage_runs_on_three_devices() {
        let devices = vec![device(), device(), device()];
        let summary = firmware_stage(&devices).unwrap();
        assert!(summary.contains("3 simulated device(s)"), "{summary}");
        assert!(summary.contains("downgrade refused"), "{summary}");
        for se in &devices {
            let counter = se.counter(&Label::new(ironclad_boot::DEFAULT_COUNTER).unwrap()).unwrap();
            assert_eq!(counter, 2, "each device's SE holds the anti-rollback counter");
        }
    }

    #[test]
    fn firmware_stage_runs_on_one_device_and_needs_the_key() {
        assert!(firmware_stage(&[device()]).unwrap().contains("1 simulated device(s)"));
        let keyless: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let err = firmware_stage(&[keyless]).unwrap_err();
        assert!(format!("{err:#}").contains("fw-decrypt"), "{err:#}");
        assert!(firmware_stage(&[]).is_err());
    }
}
