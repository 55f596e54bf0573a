//! The demo's OTA stage: the release team masters 1.1.0 offline and encrypts it to the
//! server's key; an operator registers the mastering key, uploads the release (verified by the
//! server) and rolls it out to the family in stages, 10 % then 100 %. Each device (a simulated
//! A/B flash, its keys and anti-rollback counter in its own secure element) pins the server's
//! manifest key, checks, verifies the signed manifest, downloads its own copy (the content key
//! re-wrapped to its X25519 key), installs, boots on trial, confirms and reports. One device's
//! download is corrupted in transit: refused by digest, fetched again, installed. A rollout of
//! an older release is refused as a downgrade, and so is the old image on a device.

use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use ironclad_agent::{
    DeviceConnection, DeviceIdentity, Download, OperatorClient, OtaDevice, OtaRefusal, OtaTrust,
    PinnedManifestKeys, ServerEndpoint, UpdateOutcome,
};
use ironclad_boot::SimFlash;
use ironclad_image::{Cipher, ContentKey, Encryption, SignOptions, TrustAnchors, sign};
use ironclad_proto::ota::OtaState;
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, PublicKey, SecureElement};
use ironclad_server::store::MatchKey;
use ironclad_server::{Registry, Role};
use tokio::sync::Semaphore;

use crate::station::{Device, FW_KEY};

/// The demo camera's product class.
const CLASS: &str = "6f1c5a1e-7a2b-4c3d-8e4f-0123456789ab";
/// Slot of the simulated MCU flash.
const SLOT: u32 = 64 * 1024;
/// Devices updating at once.
const CONCURRENCY: usize = 16;

fn class_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    let digits: String = CLASS.chars().filter(|c| *c != '-').collect();
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    out
}

/// Signs `version` with the release team's key, encrypted to `to` when given.
fn master(key: &KeyHandle, version: &str, counter: u32, to: Option<&PublicKey>) -> Result<Vec<u8>> {
    let mut o = SignOptions::new(version.parse()?);
    o.header_size = 0x200;
    o.security_counter = Some(counter);
    o.product_class = Some(class_bytes());
    o.encryption = match to {
        Some(r) => {
            Some(Encryption { recipient: r.clone(), content_key: ContentKey::generate(Cipher::Aes128Ctr)? })
        }
        None => None,
    };
    let payload: Vec<u8> =
        format!("ironclad demo camera firmware {version}\n").bytes().cycle().take(20 * 1024).collect();
    let mut out = Vec::new();
    sign(key, &o, &payload[..], payload.len() as u64, &mut out)?;
    Ok(out)
}

/// A device of the stage: its connection, its simulated flash and what it downloads.
struct OtaCamera {
    id: String,
    conn: DeviceConnection,
    ota: OtaDevice<SimFlash>,
    dl: Download,
}

async fn camera(
    endpoint: &ServerEndpoint,
    device: &Device,
    mastering: &TrustAnchors,
    factory: &[u8],
) -> Result<OtaCamera> {
    let identity = DeviceIdentity::from_secure_element(device.se.clone())?;
    let mut conn = DeviceConnection::connect(endpoint, identity).await?;
    conn.authenticate().await?;
    // First contact: the manifest key, over the session whose server CA the device pins.
    let pinned = PinnedManifestKeys::fetch(&mut conn).await?;
    pinned.store(device.se.as_ref())?;
    let trust = OtaTrust { manifest_keys: pinned.trusted()?, product_class: CLASS.to_owned() };
    let mut ota =
        OtaDevice::simulated(device.se.clone(), &Label::new(FW_KEY)?, mastering.clone(), SLOT, trust)?;
    ota.provision(factory).with_context(|| format!("{}: factory image", device.id))?;
    Ok(OtaCamera { id: device.id.clone(), conn, ota, dl: Download::default() })
}

/// Runs `update_once` on every camera, `CONCURRENCY` at a time; returns them with how many
/// updated.
async fn update_all(cameras: Vec<OtaCamera>) -> Result<(Vec<OtaCamera>, usize)> {
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = Vec::new();
    for mut cam in cameras {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let outcome = cam.ota.update_once(&mut cam.conn, &mut cam.dl, Default::default()).await;
            (cam, outcome)
        }));
    }
    let (mut out, mut updated) = (Vec::new(), 0);
    for task in tasks {
        let (cam, outcome) = task.await?;
        match outcome.with_context(|| format!("{}: update", cam.id))? {
            UpdateOutcome::Updated { .. } => updated += 1,
            UpdateOutcome::NoUpdate(_) => {}
        }
        out.push(cam);
    }
    Ok((out, updated))
}

/// OTA to 1.1.0 in stages (10 % then 100 %) over `devices` (their secure elements hold an X25519
/// `fw-decrypt` key; the first of them gets a corrupted download), a refused downgrade rollout,
/// and a refused old image. Returns a one-line summary; any deviation is an error.
pub(crate) fn ota_stage(
    rt: &tokio::runtime::Runtime,
    endpoint: &ServerEndpoint,
    registry: &Registry,
    devices: &[Device],
) -> Result<String> {
    ensure!(!devices.is_empty(), "the OTA stage needs at least one device");
    rt.block_on(async {
        // The release team: a mastering key in its own secure element.
        let release_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let label = Label::new("fw-mastering")?;
        release_se.generate_key(&label, KeyAlgorithm::EcdsaP256)?;
        let mastering_key = KeyHandle::open(release_se, &label)?;
        let mastering = TrustAnchors::with_key(mastering_key.public_key().clone())?;
        let public_pem = pem::encode(&pem::Pem::new(
            "PUBLIC KEY",
            mastering_key.public_key().spki_der().context("mastering key")?,
        ));

        // The operator: register the key, fetch the server's encryption key, upload, roll out.
        let secret = registry.create_api_token("ota-demo", Role::Admin).await?.secret;
        let mut op = OperatorClient::connect(endpoint, &secret).await?;
        op.add_ota_key("demo release team", &public_pem).await?;
        let enc = op.ota_encryption_key().await?;
        let der = pem::parse(enc["public_key_pem"].as_str().context("no encryption key")?)?.contents().to_vec();
        let server_key = ironclad_image::recipient_from_spki(&der)?;
        let factory = master(&mastering_key, "1.0.0", 1, None)?;
        let release = op.upload_release(master(&mastering_key, "1.1.0", 2, Some(&server_key))?, "demo 1.1.0").await?;
        let group = registry
            .list()
            .await?
            .into_iter()
            .find(|e| matches!(e.key, MatchKey::Ca(_)))
            .context("no family (group) enrollment")?
            .id;
        let rollout = op.start_rollout(&release.id, &group, 10).await?;

        let mut cameras = Vec::new();
        for device in devices {
            cameras.push(camera(endpoint, device, &mastering, &factory).await?);
        }
        let total = cameras.len();

        // Stage 1: 10 %. The first camera is held back for the corrupted download below.
        let held = cameras.remove(0);
        let (mut cameras, first_stage) = update_all(cameras).await?;
        cameras.insert(0, held);

        // Stage 2: 100 %. The held-back camera's copy is damaged in transit: refused by
        // digest, fetched again, installed, confirmed.
        op.stage_rollout(&rollout.id, 100).await?;
        let cam = &mut cameras[0];
        let offer = cam.ota.check(&mut cam.conn).await?.offer.context("no offer at 100 %")?;
        let verified = cam.ota.verify_offer(&offer)?;
        cam.ota.download(&mut cam.conn, &verified, &mut cam.dl, None).await?;
        let at = cam.dl.bytes.len() / 2;
        cam.dl.bytes[at] ^= 0x20;
        match cam.ota.install(&verified, &cam.dl) {
            Err(ironclad_agent::Error::OtaRefused { refusal: OtaRefusal::DigestMismatch, .. }) => {}
            other => bail!("{}: a corrupted download was not refused ({other:?})", cam.id),
        }
        cam.dl.bytes.clear();
        cam.ota.download(&mut cam.conn, &verified, &mut cam.dl, None).await?;
        let installed = cam.ota.install(&verified, &cam.dl)?;
        cam.ota.trial_boot(&installed)?;
        cam.ota.confirm()?;
        OtaDevice::<SimFlash>::report(&mut cam.conn, &verified.release_id, OtaState::Confirmed, "").await?;
        let corrupted = cam.id.clone();
        cam.dl = Download::default();
        let (mut cameras, second_stage) = update_all(cameras).await?;

        for cam in &cameras {
            let (running, counter) = cam.ota.running()?;
            ensure!(
                running.to_string() == "1.1.0+0" && counter == 2,
                "{} runs {running} with counter {counter} after the rollout",
                cam.id
            );
        }
        let status = op.rollout_status(&rollout.id).await?;
        let confirmed = status.counts.get("confirmed").copied().unwrap_or(0);
        ensure!(confirmed as usize == total, "the server counts {confirmed} confirmed of {total}: {:?}", status.counts);

        // A rollout of an older release: refused by the server as a downgrade.
        let old = op.upload_release(master(&mastering_key, "1.0.1", 1, Some(&server_key))?, "demo 1.0.1").await?;
        match op.start_rollout(&old.id, &group, 100).await {
            Err(ironclad_agent::Error::Server { status: 409, message, .. })
                if message.as_deref().is_some_and(|m| m.contains("downgrade")) => {}
            other => bail!("a rollout of 1.0.1 over 1.1.0 was not refused as a downgrade ({other:?})"),
        }
        // And the old image on a device: refused by its anti-rollback counter.
        let cam = &mut cameras[0];
        match cam.ota.engine().install(&mut std::io::Cursor::new(&factory)) {
            Err(ironclad_boot::Error::Downgrade { image: 1, device: 2 }) => {}
            other => bail!("{}: the 1.0.0 image was not refused ({other:?})", cam.id),
        }
        Ok(format!(
            "1.1.0 mastered offline, verified by the server, rolled out to {total} device(s): 10 % stage {first_stage}, \
             then 100 % {} more, each its own copy re-wrapped to its X25519 key, manifest verified, installed, trial, \
             confirmed (counter 1→2); {corrupted}'s download corrupted → refused by digest → fetched again → installed; \
             1.0.1 rollout refused as a downgrade, 1.0.0 refused by the device counter",
            second_stage + 1
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn class_bytes_parse() {
        assert_eq!(super::class_bytes()[..4], [0x6f, 0x1c, 0x5a, 0x1e]);
        assert_eq!(super::class_bytes()[15], 0xab);
    }
}
