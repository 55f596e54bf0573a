//! `ironclad device update`: one OTA cycle on a provisioned device with a simulated flash.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use ironclad_agent::{
    DeviceConnection, DeviceIdentity, Download, OtaDevice, OtaTrust, PinnedManifestKeys, UpdateOptions,
    UpdateOutcome,
};
use ironclad_boot::SimFlash;
use ironclad_se::{Label, SecureElement};
use serde_json::json;

use crate::cmd::fw_io::{AtomicOut, parse_number, parse_uuid, trust_anchors};
use crate::remote::{ServerArgs, runtime};
use crate::station::{FW_KEY, open_device};

/// Check for an update and install it: verify, download (resuming), install, trial, confirm.
///
/// The device asks the server over its mutual-TLS session; an offer carries a manifest signed
/// by the server's manifest key, which the device pinned at first contact (sealed in its
/// secure element; --repin replaces it). The manifest must be unexpired, for this product
/// class, not below the device's anti-rollback counter, and names the size and SHA-256 of the
/// device's own copy, whose content key the server re-wrapped to the device's `fw-decrypt`
/// key. The image must be signed by a mastering key the device trusts (--trust, the boot
/// chain's keys) and is installed into the inactive slot of a simulated A/B flash (kept in
/// --flash), booted on trial and confirmed; each step is reported to the server. A broken
/// connection is retried and the download resumes where it stopped (HTTP range requests).
///
/// The first run needs --factory-image: the factory writes it through the recovery path.
///
/// Example:
///   ironclad device update --device devices/cam-PO-1-000001 --trust mastering.pub.pem \
///       --product-class 6f1c5a1e-7a2b-4c3d-8e4f-0123456789ab --factory-image app-1.0.0.bin \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct DeviceUpdateArgs {
    /// The provisioned device's directory (its secure element and device secret).
    #[arg(long, value_name = "DIR")]
    device: PathBuf,
    #[command(flatten)]
    server: ServerArgs,
    /// Mastering public key(s) the device's boot chain trusts (PEM; repeatable).
    #[arg(long, value_name = "PEM", required = true)]
    trust: Vec<PathBuf>,
    /// The device's product class (UUID).
    #[arg(long, value_name = "UUID", value_parser = parse_uuid)]
    product_class: [u8; 16],
    /// The simulated flash's contents [default: DIR/ota-flash.bin].
    #[arg(long, value_name = "FILE")]
    flash: Option<PathBuf>,
    /// Slot size of the simulated flash, bytes (decimal or 0x hex).
    #[arg(long, value_name = "BYTES", value_parser = parse_number, default_value = "0x400000")]
    slot_size: u64,
    /// The factory image, written through recovery when the flash file does not exist yet.
    #[arg(long, value_name = "IMAGE")]
    factory_image: Option<PathBuf>,
    /// Fetch and pin the server's manifest keys again (after a key rotation).
    #[arg(long)]
    repin: bool,
    /// Cap the download rate, KiB/s.
    #[arg(long, value_name = "KIB_S")]
    max_rate: Option<u64>,
    /// Reconnection attempts after a broken connection.
    #[arg(long, default_value_t = 30)]
    retries: u32,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
}

fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Prints an event as a JSON line or as text.
struct Events {
    json: bool,
}

impl Events {
    fn emit(&self, event: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{event}");
        } else {
            println!("{}", text());
        }
        let _ = std::io::stdout().flush();
    }
}

fn save_flash(path: &Path, flash: &SimFlash) -> Result<()> {
    let mut out = AtomicOut::create(path)?;
    out.write_all(flash.data())?;
    out.commit()
}

pub(crate) fn run(args: DeviceUpdateArgs) -> Result<()> {
    let se: Arc<dyn SecureElement> = Arc::new(open_device(&args.device)?);
    let identity = DeviceIdentity::from_secure_element(se.clone())
        .with_context(|| format!("device identity in {}", args.device.display()))?;
    let mastering = trust_anchors(&args.trust)?;
    let flash_path = args.flash.clone().unwrap_or_else(|| args.device.join("ota-flash.bin"));
    let slot = u32::try_from(args.slot_size)
        .ok()
        .filter(|s| *s >= 16 * 1024)
        .context("--slot-size: 16 KiB to 4 GiB")?;
    let endpoint = args.server.endpoint()?;
    let events = Events { json: args.json };
    let product_class = uuid_text(&args.product_class);
    let fw_label = Label::new(FW_KEY)?;

    runtime()?.block_on(async {
        let mut conn = DeviceConnection::connect(&endpoint, identity.clone())
            .await
            .with_context(|| format!("connecting to {}", args.server.server))?;
        conn.authenticate().await.context("authentication refused")?;
        let pinned = match PinnedManifestKeys::load(se.as_ref())? {
            Some(p) if !args.repin => p,
            _ => {
                let fetched = PinnedManifestKeys::fetch(&mut conn).await.context("fetching the manifest keys")?;
                fetched.store(se.as_ref())?;
                let kids: Vec<&str> = fetched.keys.iter().map(|k| k.kid.as_str()).collect();
                events.emit(json!({"event": "pinned", "kids": kids}), || {
                    format!("pinned the server's manifest keys: {}", kids.join(", "))
                });
                fetched
            }
        };
        let trust = OtaTrust { manifest_keys: pinned.trusted()?, product_class: product_class.clone() };
        let mut ota = OtaDevice::simulated(se.clone(), &fw_label, mastering, slot, trust)?;
        ota.set_max_rate(args.max_rate.map(|k| k * 1024));
        let boot = match std::fs::read(&flash_path) {
            Ok(bytes) => {
                let flash = ota.engine().flash_mut();
                ensure!(
                    bytes.len() == flash.data().len(),
                    "{} holds {} bytes, not a flash of this geometry ({}): was --slot-size changed?",
                    flash_path.display(),
                    bytes.len(),
                    flash.data().len()
                );
                flash.program_raw(0, &bytes).context("loading the flash")?;
                ota.engine().reset().context("the device does not boot")?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(image) = &args.factory_image else {
                    bail!("{} does not exist: give --factory-image for the first run", flash_path.display());
                };
                let bytes = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
                let boot = ota.provision(&bytes).context("factory image")?;
                save_flash(&flash_path, ota.engine().flash())?;
                boot
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", flash_path.display())),
        };
        let counter = ota.running()?.1;
        events.emit(
            json!({"event": "booted", "version": boot.booted.version.to_string(), "counter": counter}),
            || format!("running {} (anti-rollback counter {counter})", boot.booted.version),
        );

        let mut dl = Download::default();
        let mut attempt = 0;
        loop {
            let mut next_tenth = 0u64;
            let mut progress = |got: u64, total: u64| {
                let tenth = got * 10 / total.max(1);
                if got > 0 && (next_tenth == 0 || tenth >= next_tenth) {
                    next_tenth = tenth + 1;
                    events.emit(json!({"event": "progress", "bytes": got, "total": total}), || {
                        format!("downloading: {got} of {total} bytes")
                    });
                }
            };
            let options = UpdateOptions { progress: Some(&mut progress), healthy: None };
            let result = ota.update_once(&mut conn, &mut dl, options).await;
            save_flash(&flash_path, ota.engine().flash())?;
            match result {
                Ok(UpdateOutcome::Updated { release_id, version, counter, downloads }) => {
                    let to = counter.map(|c| c.to);
                    events.emit(
                        json!({"event": "updated", "release": release_id, "version": version, "counter": to,
                               "downloads": downloads, "resumed": dl.resumed, "transferred": dl.transferred}),
                        || {
                            format!(
                                "updated to {version} (release {release_id}); counter now {}; {} bytes transferred, {} resumed request(s)",
                                to.map_or("unchanged".into(), |c| c.to_string()),
                                dl.transferred,
                                dl.resumed
                            )
                        },
                    );
                    return Ok(());
                }
                Ok(UpdateOutcome::NoUpdate(why)) => {
                    events.emit(json!({"event": "no-update", "why": why}), || format!("no update: {why:?}"));
                    return Ok(());
                }
                Err(e @ ironclad_agent::Error::OtaRefused { .. }) => return Err(e).context("update refused"),
                Err(e) if attempt < args.retries => {
                    attempt += 1;
                    events.emit(
                        json!({"event": "interrupted", "bytes": dl.bytes.len(), "error": e.to_string(), "attempt": attempt}),
                        || format!("interrupted at {} bytes ({e}); reconnecting (attempt {attempt})", dl.bytes.len()),
                    );
                    conn = reconnect(&endpoint, &identity, args.retries).await?;
                }
                Err(e) => return Err(e).context("update failed"),
            }
        }
    })
}

/// Connects and authenticates again, with backoff (the server may be restarting).
async fn reconnect(
    endpoint: &ironclad_agent::ServerEndpoint,
    identity: &DeviceIdentity,
    attempts: u32,
) -> Result<DeviceConnection> {
    let mut last = None;
    for i in 0..attempts.max(1) {
        tokio::time::sleep(Duration::from_millis(200 * u64::from(i.min(10) + 1))).await;
        match DeviceConnection::connect(endpoint, identity.clone()).await {
            Ok(mut conn) => match conn.authenticate().await {
                Ok(_) => return Ok(conn),
                Err(e) => last = Some(anyhow::Error::from(e)),
            },
            Err(e) => last = Some(anyhow::Error::from(e)),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt")).context("reconnecting to the server"))
}
