//! The device's side of OTA: check with the server, verify the signed manifest, download this
//! device's copy of the image (resuming with byte ranges), verify it against the manifest and
//! the mastering key, install it into the inactive slot through `ironclad-boot`, boot it on
//! trial, confirm it, and report each step.
//!
//! What the device trusts and why:
//! - the **manifest key** ([`OtaTrust::manifest_keys`]): the server's manifest-signing keys,
//!   provisioned at the factory or pinned at first contact over the mutual-TLS session whose
//!   server CA the device already pins ([`DeviceConnection::server_keys`]). A manifest must be
//!   signed by one, unexpired (a freeze attack replays an old one), for this product class,
//!   not below the device's security counter (rollback), and names the exact size and SHA-256
//!   of the bytes to download (endless data, mix-and-match);
//! - the **mastering key**: in the boot engine's chain, from the factory. The image must be
//!   signed by it (the server cannot make firmware), decrypt with the device's own key, and
//!   carry the same version, counter and product class as the manifest;
//! - the **anti-rollback counter** in the secure element: the boot engine refuses an image
//!   below it at install and at every reset, and raises it only on confirmation.

use std::io::Cursor;

use aws_lc_rs::digest::{self, SHA256};
use http_body_util::BodyExt;
use hyper::Method;
use hyper::header::{CONTENT_RANGE, ETAG, HeaderName, IF_RANGE, RANGE};
use ironclad_boot::{BootEngine, BootMode, BootReport, CounterAdvance, Flash, InstallReport};
use ironclad_image::{Image, Limits};
use ironclad_proto::ota::{NoUpdate, OtaReport, OtaState, UpdateAnswer, UpdateCheck, UpdateOffer, paths};
use ironclad_proto::{ManifestPolicy, SignedManifest, TrustedKeys, VerifiedManifest};
use ironclad_se::PublicKey;
use serde::Serialize;

use crate::device::DeviceConnection;
use crate::error::{Error, Result};
use crate::http::decode;

/// Why the device refused an update (what it reports; the detail stays in its log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OtaRefusal {
    /// The manifest does not parse or its signature is not by a trusted manifest key.
    BadManifest,
    /// The manifest expired (a replayed old manifest: freeze attack).
    Expired,
    /// The manifest or the image is for another product class.
    WrongProductClass,
    /// Below the device's security counter or version.
    Downgrade,
    /// The download is not the manifest's size and digest.
    DigestMismatch,
    /// The image and the manifest disagree (version, counter).
    Mismatch,
    /// The boot engine refused the image (signature, mastering key, decryption).
    BadImage,
    /// The new image did not come up healthy on trial and was reverted.
    TrialFailed,
}

impl std::fmt::Display for OtaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OtaRefusal::BadManifest => "bad-manifest",
            OtaRefusal::Expired => "expired",
            OtaRefusal::WrongProductClass => "wrong-product-class",
            OtaRefusal::Downgrade => "downgrade",
            OtaRefusal::DigestMismatch => "digest-mismatch",
            OtaRefusal::Mismatch => "mismatch",
            OtaRefusal::BadImage => "bad-image",
            OtaRefusal::TrialFailed => "trial-failed",
        })
    }
}

fn refused(refusal: OtaRefusal, detail: impl std::fmt::Display) -> Error {
    Error::OtaRefused { refusal, detail: detail.to_string() }
}

/// What the device trusts for updates besides the mastering key in its boot chain.
#[derive(Clone, Debug)]
pub struct OtaTrust {
    /// The server's manifest-signing keys by kid (provisioned, or pinned at first contact).
    pub manifest_keys: TrustedKeys,
    /// This device's product class (UUID text).
    pub product_class: String,
}

/// A manifest that checked out, with where to fetch the image.
#[derive(Clone, Debug)]
pub struct VerifiedOffer {
    /// The release.
    pub release_id: String,
    /// The verified manifest.
    pub manifest: VerifiedManifest,
    /// Download path.
    pub download_path: String,
    /// Entity tag of this device's copy (for `If-Range`).
    pub etag: String,
}

/// A download in progress: kept by the caller across connections so that it resumes.
#[derive(Clone, Debug, Default)]
pub struct Download {
    /// The release being fetched.
    pub release_id: String,
    /// The copy's entity tag.
    pub etag: String,
    /// What arrived so far.
    pub bytes: Vec<u8>,
    /// Bytes received over the network, every attempt included (resumes fetch only the rest).
    pub transferred: u64,
    /// Requests that resumed from a byte offset and got a partial answer.
    pub resumed: u32,
}

impl Download {
    fn reset_for(&mut self, offer: &VerifiedOffer) {
        if self.release_id != offer.release_id || self.etag != offer.etag {
            self.release_id = offer.release_id.clone();
            self.etag = offer.etag.clone();
            self.bytes.clear();
        }
    }
}

/// What [`OtaDevice::update_once`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Nothing to do, and why.
    NoUpdate(NoUpdate),
    /// Installed, booted on trial and confirmed.
    Updated {
        /// The release.
        release_id: String,
        /// The version now running.
        version: String,
        /// The anti-rollback counter change.
        counter: Option<CounterAdvance>,
        /// Download attempts it took (a corrupted download is fetched again once).
        downloads: u32,
    },
}

/// Knobs of one update cycle.
#[derive(Default)]
pub struct UpdateOptions<'a> {
    /// Called on every received chunk with (bytes so far, total).
    pub progress: Option<&'a mut (dyn FnMut(u64, u64) + Send)>,
    /// The application's health check on the trial boot; false reverts.
    pub healthy: Option<&'a mut (dyn FnMut(&BootReport) -> bool + Send)>,
}

impl std::fmt::Debug for UpdateOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateOptions").finish_non_exhaustive()
    }
}

/// A device's OTA client over its boot engine (flash, secure-element counter and decryption
/// key) and its trust.
pub struct OtaDevice<F: Flash> {
    engine: BootEngine<F>,
    fw_key_spki: Vec<u8>,
    trust: OtaTrust,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Download bandwidth cap, bytes per second.
    max_rate: Option<u64>,
}

impl<F: Flash> std::fmt::Debug for OtaDevice<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtaDevice").field("product_class", &self.trust.product_class).finish_non_exhaustive()
    }
}

fn system_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The manifest's version text for an MCUboot version (the server's mapping).
fn manifest_text(v: ironclad_image::Version) -> String {
    if v.build == 0 {
        format!("{}.{}.{}", v.major, v.minor, v.revision)
    } else {
        format!("{}.{}.{}+{}", v.major, v.minor, v.revision, v.build)
    }
}

fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl DeviceConnection {
    /// Sends an update check (what [`OtaDevice::check`] sends, built by the caller).
    pub async fn ota_check(&mut self, req: &UpdateCheck) -> Result<UpdateAnswer> {
        let token = self.token()?;
        let path = paths::check(self.identity().device_id());
        self.http.json(Method::POST, &path, Some(&token), Some(req)).await
    }

    /// Streams a device copy (an offer's `download_path`) to `sink` chunk by chunk without
    /// keeping it: fleet simulations and benchmarks, where a thousand 4 MiB copies would not fit
    /// in memory. Returns the bytes received. A real update goes through
    /// [`OtaDevice::download`], which keeps and verifies the copy.
    pub async fn ota_fetch(
        &mut self,
        download_path: &str,
        mut sink: impl FnMut(&[u8]) + Send,
    ) -> Result<u64> {
        let token = self.token()?;
        let resp = self.http.send_streaming(Method::GET, download_path, Some(&token), &[]).await?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.into_body().collect().await.map_err(|e| Error::Http(e.to_string()))?.to_bytes();
            return Err(decode::<serde_json::Value>(status, &body)
                .err()
                .unwrap_or_else(|| Error::Protocol(format!("download answered {status}"))));
        }
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Http(format!("download interrupted: {e}")))?;
            if let Ok(data) = frame.into_data() {
                n += data.len() as u64;
                sink(&data);
            }
        }
        Ok(n)
    }
}

impl OtaDevice<ironclad_boot::SimFlash> {
    /// A simulated device: a NOR flash (4 KiB sectors, 8-byte writes) with two slots of at
    /// least `slot_bytes`, the boot chain trusting `mastering`, the anti-rollback counter and
    /// the decryption key `fw_label` (X25519 or P-256) in `se`.
    pub fn simulated(
        se: std::sync::Arc<dyn ironclad_se::SecureElement>,
        fw_label: &ironclad_se::Label,
        mastering: ironclad_image::TrustAnchors,
        slot_bytes: u32,
        trust: OtaTrust,
    ) -> Result<Self> {
        let boot = |e: ironclad_boot::Error| Error::Config(format!("simulated flash: {e}"));
        let config =
            ironclad_boot::SimConfig::new(4096, 8, 0xff, slot_bytes.div_ceil(4096).max(4)).map_err(boot)?;
        let flash = ironclad_boot::SimFlash::new(config.geometry).map_err(boot)?;
        let counter: std::sync::Arc<dyn ironclad_se::MonotonicCounter> = se.clone();
        let chain = ironclad_boot::Chain::slots_only(mastering);
        let rollback = ironclad_boot::AntiRollback::with_default_label(counter).map_err(boot)?;
        let key = ironclad_image::SeAgreementKey::open(se, fw_label)
            .map_err(|e| Error::Config(format!("firmware-decryption key {fw_label}: {e}")))?;
        let public = ironclad_image::KeyAgreement::public_key(&key).clone();
        let engine = BootEngine::new(
            flash,
            ironclad_boot::BootConfig::new(config.layout().map_err(boot)?, chain),
            rollback,
        )
        .map_err(boot)?
        .with_decryption_key(Box::new(key));
        Self::new(engine, &public, trust)
    }

    /// The factory path: writes a first image through recovery and boots it.
    pub fn provision(&mut self, image: &[u8]) -> Result<BootReport> {
        let boot = |e: ironclad_boot::Error| Error::Config(format!("factory image: {e}"));
        self.engine.recover(&mut Cursor::new(image)).map_err(boot)?;
        self.engine.reset().map_err(boot)
    }
}

impl<F: Flash> OtaDevice<F> {
    /// `engine` must have the device's decryption key (`with_decryption_key`); `fw_key` is its
    /// public half, sent to the server to wrap the content key to.
    pub fn new(engine: BootEngine<F>, fw_key: &PublicKey, trust: OtaTrust) -> Result<Self> {
        let fw_key_spki = fw_key
            .spki_der()
            .ok_or_else(|| Error::Config("the firmware-decryption key has no public key".into()))?;
        Ok(OtaDevice { engine, fw_key_spki, trust, clock: Box::new(system_now), max_rate: None })
    }

    /// Another clock (Unix seconds) for manifest expiry: tests, or a device's trusted time.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Caps the download rate (bytes per second): a device on a metered or shared link.
    pub fn set_max_rate(&mut self, bytes_per_sec: Option<u64>) {
        self.max_rate = bytes_per_sec.filter(|r| *r > 0);
    }

    /// Replaces the clock.
    pub fn set_clock(&mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) {
        self.clock = Box::new(clock);
    }

    /// The boot engine.
    pub fn engine(&mut self) -> &mut BootEngine<F> {
        &mut self.engine
    }

    /// The trust.
    pub fn trust(&self) -> &OtaTrust {
        &self.trust
    }

    /// The running image's version and the device's anti-rollback counter.
    pub fn running(&self) -> Result<(ironclad_image::Version, u64)> {
        let booted = self.engine.booted().ok_or_else(|| Error::Config("nothing is booted".into()))?;
        let counter = self.engine.rollback().device_counter().map_err(|e| Error::Config(e.to_string()))?;
        Ok((booted.version, counter))
    }

    /// Asks the server for an update.
    pub async fn check(&self, conn: &mut DeviceConnection) -> Result<UpdateAnswer> {
        let (version, counter) = self.running()?;
        let req = UpdateCheck {
            version: version.to_string(),
            security_counter: counter,
            product_class: self.trust.product_class.clone(),
            fw_key_spki_hex: hex::encode(&self.fw_key_spki),
        };
        conn.ota_check(&req).await
    }

    /// Verifies an offer's manifest: signature by a trusted manifest key, expiry, product
    /// class, not below the device's counter nor its running version.
    pub fn verify_offer(&self, offer: &UpdateOffer) -> Result<VerifiedOffer> {
        let signed = SignedManifest::parse(&offer.manifest, &ironclad_proto::Limits::default())
            .map_err(|e| refused(OtaRefusal::BadManifest, e))?;
        let policy = ManifestPolicy { now: (self.clock)(), product_class: &self.trust.product_class };
        let manifest = signed.verify(&self.trust.manifest_keys, &policy).map_err(|e| match e {
            ironclad_proto::Error::Expired { .. } => refused(OtaRefusal::Expired, e),
            ironclad_proto::Error::WrongProductClass { .. } => refused(OtaRefusal::WrongProductClass, e),
            e => refused(OtaRefusal::BadManifest, e),
        })?;
        let (running, counter) = self.running()?;
        manifest.check_security_counter(counter).map_err(|e| refused(OtaRefusal::Downgrade, e))?;
        let running_text: ironclad_proto::ReleaseVersion =
            manifest_text(running).parse().map_err(|e| Error::Config(format!("running version: {e}")))?;
        let m = manifest.manifest();
        if m.version.precedence(&running_text) != std::cmp::Ordering::Greater {
            return Err(refused(
                OtaRefusal::Downgrade,
                format!("manifest version {} is not newer than the running {running_text}", m.version),
            ));
        }
        if m.image_id != offer.release_id || m.image_size != offer.size {
            return Err(refused(OtaRefusal::Mismatch, "the offer disagrees with its signed manifest"));
        }
        Ok(VerifiedOffer {
            release_id: offer.release_id.clone(),
            download_path: offer.download_path.clone(),
            etag: offer.etag.clone(),
            manifest,
        })
    }

    /// Downloads this device's copy into `dl`, resuming from what it holds (`Range` with
    /// `If-Range`). Never takes more than the manifest's size. A broken transfer returns an
    /// error with the bytes so far kept in `dl`: call again, on a new connection if need be.
    pub async fn download<'p>(
        &self,
        conn: &mut DeviceConnection,
        offer: &VerifiedOffer,
        dl: &mut Download,
        mut progress: Option<&mut (dyn FnMut(u64, u64) + Send + 'p)>,
    ) -> Result<()> {
        dl.reset_for(offer);
        let total = offer.manifest.manifest().image_size;
        if dl.bytes.len() as u64 == total {
            return Ok(());
        }
        let token = conn.token()?;
        let from = dl.bytes.len() as u64;
        let mut headers: Vec<(HeaderName, String)> = Vec::new();
        if from > 0 {
            headers.push((RANGE, format!("bytes={from}-")));
            headers.push((IF_RANGE, offer.etag.clone()));
        }
        let resp =
            conn.http.send_streaming(Method::GET, &offer.download_path, Some(&token), &headers).await?;
        let status = resp.status().as_u16();
        match status {
            200 => dl.bytes.clear(),
            206 => {
                let range = resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
                let expected = format!("bytes {from}-{}/{total}", total - 1);
                if range != expected {
                    return Err(Error::Protocol(format!("partial answer {range:?}, expected {expected:?}")));
                }
                dl.resumed += 1;
            }
            _ => {
                let body =
                    resp.into_body().collect().await.map_err(|e| Error::Http(e.to_string()))?.to_bytes();
                return Err(decode::<serde_json::Value>(status, &body)
                    .err()
                    .unwrap_or_else(|| Error::Protocol(format!("download answered {status}"))));
            }
        }
        if resp.headers().get(ETAG).and_then(|v| v.to_str().ok()).is_some_and(|t| t != offer.etag) {
            dl.bytes.clear();
            return Err(Error::Protocol("the server's copy changed (entity tag); start again".into()));
        }
        let mut body = resp.into_body();
        let (started, mut received) = (std::time::Instant::now(), 0u64);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Http(format!("download interrupted: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            if dl.bytes.len() as u64 + data.len() as u64 > total {
                dl.bytes.clear();
                return Err(refused(
                    OtaRefusal::DigestMismatch,
                    "the server sent more than the manifest's size",
                ));
            }
            dl.bytes.extend_from_slice(&data);
            dl.transferred += data.len() as u64;
            if let Some(p) = progress.as_mut() {
                p(dl.bytes.len() as u64, total);
            }
            received += data.len() as u64;
            if let Some(rate) = self.max_rate {
                let due = std::time::Duration::from_secs_f64(received as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        if (dl.bytes.len() as u64) < total {
            return Err(Error::Http(format!("download ended at {} of {total} bytes", dl.bytes.len())));
        }
        Ok(())
    }

    /// Verifies the download against the manifest (size, SHA-256), the image against the
    /// manifest (product class, version, counter), then installs into the inactive slot: the
    /// boot engine decrypts with the device key, verifies the mastering signature and the
    /// anti-rollback counter before touching the flash.
    pub fn install(&mut self, offer: &VerifiedOffer, dl: &Download) -> Result<InstallReport> {
        let m = offer.manifest.manifest();
        let sha = digest::digest(&SHA256, &dl.bytes);
        let mut sha32 = [0u8; 32];
        sha32.copy_from_slice(sha.as_ref());
        offer
            .manifest
            .check_image(dl.bytes.len() as u64, &sha32)
            .map_err(|e| refused(OtaRefusal::DigestMismatch, e))?;
        let image =
            Image::parse(&dl.bytes, &Limits::default()).map_err(|e| refused(OtaRefusal::BadImage, e))?;
        let class = image.product_class().map(|c| uuid_text(&c));
        if !class.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(&self.trust.product_class)) {
            return Err(refused(
                OtaRefusal::WrongProductClass,
                format!("image product class {class:?}, device {}", self.trust.product_class),
            ));
        }
        let version = manifest_text(image.header().version);
        if version != m.version.to_string()
            || image.security_counter().map(u64::from) != Some(m.security_counter)
        {
            return Err(refused(
                OtaRefusal::Mismatch,
                format!(
                    "image {version} counter {:?}, manifest {} counter {}",
                    image.security_counter(),
                    m.version,
                    m.security_counter
                ),
            ));
        }
        self.engine.install(&mut Cursor::new(&dl.bytes)).map_err(|e| match e {
            ironclad_boot::Error::Downgrade { .. } => refused(OtaRefusal::Downgrade, e),
            e => refused(OtaRefusal::BadImage, e),
        })
    }

    /// The reset after an install: the new image must come up on trial.
    pub fn trial_boot(&mut self, installed: &InstallReport) -> Result<BootReport> {
        let boot = self.engine.reset().map_err(|e| refused(OtaRefusal::TrialFailed, e))?;
        if boot.booted.slot != installed.slot || !matches!(boot.booted.mode, BootMode::Trial { .. }) {
            return Err(refused(
                OtaRefusal::TrialFailed,
                format!("booted {:?} {:?}", boot.booted.slot, boot.booted.mode),
            ));
        }
        Ok(boot)
    }

    /// The application is healthy: confirm (the counter moves up to the image's).
    pub fn confirm(&mut self) -> Result<Option<CounterAdvance>> {
        self.engine.confirm().map_err(|e| Error::Config(format!("confirm: {e}")))
    }

    /// Rejects the trial; the next reset boots the previous image.
    pub fn revert(&mut self) -> Result<()> {
        self.engine.revert().map_err(|e| Error::Config(format!("revert: {e}")))?;
        self.engine.reset().map_err(|e| Error::Config(format!("reset after revert: {e}")))?;
        Ok(())
    }

    /// Reports a state to the server.
    pub async fn report(
        conn: &mut DeviceConnection,
        release_id: &str,
        state: OtaState,
        detail: &str,
    ) -> Result<()> {
        let token = conn.token()?;
        let path = paths::report(conn.identity().device_id());
        let body = OtaReport { release_id: release_id.to_owned(), state, detail: detail.to_owned() };
        let _: serde_json::Value = conn.http.json(Method::POST, &path, Some(&token), Some(&body)).await?;
        Ok(())
    }

    /// One whole update cycle on `conn`: check, verify, download (resuming `dl`), install,
    /// trial boot, health check, confirm, with a report at each step. A refusal is reported
    /// (`failed` or `refused-downgrade`) and returned; a corrupted download is fetched again
    /// once from scratch. A transport error returns with `dl` kept: reconnect and call again.
    pub async fn update_once(
        &mut self,
        conn: &mut DeviceConnection,
        dl: &mut Download,
        mut options: UpdateOptions<'_>,
    ) -> Result<UpdateOutcome> {
        let answer = self.check(conn).await?;
        let Some(offer) = answer.offer else {
            return Ok(UpdateOutcome::NoUpdate(answer.none.unwrap_or(NoUpdate::NoRollout)));
        };
        let verified = match self.verify_offer(&offer) {
            Ok(v) => v,
            Err(e) => return Err(self.report_refusal(conn, &offer.release_id, e).await),
        };
        let mut downloads = 0;
        let installed = loop {
            downloads += 1;
            Self::report(conn, &verified.release_id, OtaState::Downloading, "").await?;
            self.download(conn, &verified, dl, options.progress.as_deref_mut()).await?;
            match self.install(&verified, dl) {
                Ok(r) => break r,
                Err(Error::OtaRefused { refusal: OtaRefusal::DigestMismatch, detail }) if downloads < 2 => {
                    tracing::warn!(release = %verified.release_id, "download corrupted ({detail}); fetching it again");
                    dl.bytes.clear();
                }
                Err(e) => return Err(self.report_refusal(conn, &verified.release_id, e).await),
            }
        };
        dl.bytes.clear();
        Self::report(conn, &verified.release_id, OtaState::Installed, "").await?;
        let boot = match self.trial_boot(&installed) {
            Ok(b) => b,
            Err(e) => return Err(self.report_refusal(conn, &verified.release_id, e).await),
        };
        Self::report(conn, &verified.release_id, OtaState::Trial, "").await?;
        if !options.healthy.as_mut().is_none_or(|h| h(&boot)) {
            self.revert()?;
            let e =
                refused(OtaRefusal::TrialFailed, "the application's health check failed on the trial boot");
            return Err(self.report_refusal(conn, &verified.release_id, e).await);
        }
        let counter = self.confirm()?;
        Self::report(conn, &verified.release_id, OtaState::Confirmed, "").await?;
        Ok(UpdateOutcome::Updated {
            release_id: verified.release_id,
            version: installed.version.to_string(),
            counter,
            downloads,
        })
    }

    /// Reports a refusal (best effort) and hands the error back.
    async fn report_refusal(&self, conn: &mut DeviceConnection, release_id: &str, e: Error) -> Error {
        if let Error::OtaRefused { refusal, detail } = &e {
            let state =
                if *refusal == OtaRefusal::Downgrade { OtaState::RefusedDowngrade } else { OtaState::Failed };
            if let Err(report) = Self::report(conn, release_id, state, &format!("{refusal}: {detail}")).await
            {
                tracing::warn!("reporting the refusal failed: {report}");
            }
        }
        e
    }
}
