//! OTA on the server: releases verified at upload against registered mastering keys (the
//! server never holds a firmware signing key), rollouts to groups in stages, and per-device
//! offers: a manifest signed by the vault's manifest key inside the secure element, and the
//! image with its content key re-wrapped to the asking device's key.
//!
//! Why per-device copies are cheap: an encrypted MCUboot image is `[signed region][unprotected
//! TLV area]`, and only the area holds the key wrap. The signed region is the same bytes for
//! every device, read once (and kept in memory up to a budget), with the SHA-256 state after it
//! kept too; a device's copy costs one ECIES wrap plus hashing a ~200-byte tail.
//!
//! Why the copy is stored: ECIES takes a fresh ephemeral key, so two wraps differ. The manifest
//! names the copy's digest and a resumed download must continue the same bytes, so the tail is
//! made once per (device, release, device key) and kept in the store ([`DeviceRelease`]): it
//! survives restarts and is shared by every server process on one PostgreSQL database.

mod release;
mod serve;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{self, SHA256};
use ironclad_image::Version;
use ironclad_proto::ota::{NoUpdate, OtaReport, UpdateAnswer, UpdateCheck, UpdateOffer, paths};
use ironclad_proto::{FnSigner, Manifest, ReleaseVersion, SigAlg};
use ironclad_se::SignInput;
use tokio::sync::OnceCell;

pub(crate) use self::release::Prepared;
pub(crate) use self::serve::{parse_range, respond};

use crate::clock::Clock;
use crate::config::OtaConfig;
use crate::error::{Error, Result};
use crate::store::{DeviceRelease, KeyUsage, Release, Store};
use crate::vault::KeyVault;

/// Domain separation of rollout buckets.
const BUCKET_DOMAIN: &[u8] = b"ironclad-ota-bucket-v1";

/// The device's bucket for a release, 0..100: deterministic (the same device stays in or out
/// of a stage whichever server process answers), independent between releases (not always the
/// same 10 % first), and monotone in the percentage (raising a stage only adds devices).
pub fn rollout_bucket(device_id: &str, release_id: &str) -> u8 {
    let mut ctx = digest::Context::new(&SHA256);
    for part in [BUCKET_DOMAIN, release_id.as_bytes(), device_id.as_bytes()] {
        ctx.update(&(part.len() as u32).to_be_bytes());
        ctx.update(part);
    }
    let d = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.as_ref()[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// The manifest's SemVer text for an MCUboot version (`1.1.0`, or `1.1.0+7` with a build).
pub(crate) fn manifest_version(v: &str) -> Result<ReleaseVersion> {
    let v: Version = v.parse().map_err(|e| Error::Invalid(format!("version: {e}")))?;
    let text = if v.build == 0 {
        format!("{}.{}.{}", v.major, v.minor, v.revision)
    } else {
        format!("{}.{}.{}+{}", v.major, v.minor, v.revision, v.build)
    };
    text.parse().map_err(|e| Error::Invalid(format!("version {text}: {e}")))
}

/// Is `new` below `current` (security counter, then version)? What a rollout and an offer refuse.
pub(crate) fn is_downgrade(
    new_counter: u64,
    new_version: &str,
    cur_counter: u64,
    cur_version: &str,
) -> Result<bool> {
    let parse = |v: &str| v.parse::<Version>().map_err(|e| Error::Invalid(format!("version {v:?}: {e}")));
    Ok(new_counter < cur_counter || parse(new_version)? < parse(cur_version)?)
}

/// The OTA service behind the HTTP handlers.
#[derive(Clone)]
pub(crate) struct Ota {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) vault: Option<KeyVault>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: OtaConfig,
    /// Where release files live (None: uploads are refused, e.g. PostgreSQL without a
    /// configured shared directory).
    pub(crate) dir: Option<PathBuf>,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Default)]
struct Cache {
    releases: HashMap<String, Arc<OnceCell<Arc<Prepared>>>>,
    /// Bytes of release files held in memory.
    in_memory: u64,
}

impl std::fmt::Debug for Ota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ota").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Ota {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        vault: Option<KeyVault>,
        clock: Arc<dyn Clock>,
        config: OtaConfig,
        dir: Option<PathBuf>,
    ) -> Self {
        Ota { store, vault, clock, config, dir, cache: Arc::new(Mutex::new(Cache::default())) }
    }

    pub(crate) fn vault(&self) -> Result<&KeyVault> {
        self.vault.as_ref().ok_or_else(|| Error::Vault("no key vault is configured on this server".into()))
    }

    pub(crate) fn releases_dir(&self) -> Result<&PathBuf> {
        self.dir.as_ref().ok_or_else(|| {
            Error::Config(
                "no OTA releases directory: set ota.releases_dir (shared by every server process)".into(),
            )
        })
    }

    /// The release ready to serve: its file checked and verified again, the signed region's
    /// hash state, its bytes if they fit the memory budget. Loaded once per release.
    pub(crate) async fn prepared(&self, release: &Release) -> Result<Arc<Prepared>> {
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.releases.entry(release.id.clone()).or_default().clone()
        };
        let prepared = cell
            .get_or_try_init(|| async {
                let keep = {
                    let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    cache.in_memory + release.size <= self.config.memory_cache_bytes
                };
                let p = self.load(release, keep).await?;
                if p.in_memory() {
                    self.cache.lock().unwrap_or_else(|p| p.into_inner()).in_memory += release.size;
                }
                Ok::<_, Error>(Arc::new(p))
            })
            .await?;
        Ok(prepared.clone())
    }

    /// A device asks for an update.
    pub(crate) async fn check(&self, device_id: &str, req: &UpdateCheck) -> Result<UpdateAnswer> {
        let none = |why| Ok(UpdateAnswer { offer: None, none: Some(why) });
        let recipient = hex::decode(&req.fw_key_spki_hex)
            .map_err(|_| Error::Invalid("fw_key_spki_hex is not hex".into()))
            .and_then(|der| {
                ironclad_image::recipient_from_spki(&der)
                    .map(|_| der)
                    .map_err(|e| Error::Invalid(format!("firmware-decryption key: {e}")))
            })?;
        let Some(device) = self.store.device(device_id).await? else { return none(NoUpdate::NoRollout) };
        let Some(rollout) = self.store.live_rollout(&device.enrollment_id).await? else {
            return none(NoUpdate::NoRollout);
        };
        let release = self
            .store
            .release(&rollout.release_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("release {}", rollout.release_id)))?;
        let existing = self.store.device_release(device_id, &release.id).await?;
        // An update under way (offered, not finished) goes on through a pause or a lowered stage.
        let under_way = existing.as_ref().is_some_and(|e| !e.state.is_final() && e.rollout_id == rollout.id);
        let in_stage = rollout.state == ironclad_proto::ota::RolloutState::Active
            && rollout_bucket(device_id, &release.id) < rollout.percentage;
        if !in_stage && !under_way {
            return none(NoUpdate::NoRollout);
        }
        if release.product_class != req.product_class {
            return none(NoUpdate::OtherProductClass);
        }
        if is_downgrade(release.security_counter, &release.version, req.security_counter, &req.version)? {
            return none(NoUpdate::Downgrade);
        }
        if !is_downgrade(req.security_counter, &req.version, release.security_counter, &release.version)? {
            return none(NoUpdate::UpToDate);
        }

        let copy = match existing {
            // The copy already made for this key: the same bytes as any download under way.
            Some(e) if e.recipient == recipient => e,
            _ => {
                let prepared = self.prepared(&release).await?;
                let (tail, image_size, image_sha256) = prepared.device_copy(&recipient)?;
                let now = self.clock.unix();
                let offer = DeviceRelease {
                    device_id: device_id.to_owned(),
                    release_id: release.id.clone(),
                    rollout_id: rollout.id.clone(),
                    state: ironclad_proto::ota::OtaState::Offered,
                    detail: String::new(),
                    recipient,
                    tail,
                    image_size,
                    image_sha256,
                    offered_at: now,
                    updated_at: now,
                };
                self.store.put_offer(&offer).await?
            }
        };
        let manifest = self.sign_manifest(&release, &copy).await?;
        Ok(UpdateAnswer {
            offer: Some(UpdateOffer {
                release_id: release.id.clone(),
                manifest,
                download_path: paths::image(device_id, &release.id),
                size: copy.image_size,
                etag: etag(&copy.image_sha256),
            }),
            none: None,
        })
    }

    /// Signs this device's manifest with the vault's manifest key (inside the secure element).
    async fn sign_manifest(&self, release: &Release, copy: &DeviceRelease) -> Result<Vec<u8>> {
        let (key, handle) = self.vault()?.signer(KeyUsage::ManifestSigning).await?;
        let issued_at = u64::try_from(self.clock.unix()).unwrap_or(0);
        let manifest = Manifest {
            version: manifest_version(&release.version)?,
            security_counter: release.security_counter,
            image_size: copy.image_size,
            image_digest: copy.image_sha256,
            issued_at,
            expires: issued_at + self.config.manifest_ttl_secs.max(1),
            product_class: release.product_class.clone(),
            image_id: release.id.clone(),
        };
        let signer = FnSigner::new(SigAlg::Es256, |m: &[u8]| {
            handle.sign(SignInput::Message(m)).map_err(|e| e.to_string())
        });
        manifest
            .sign(&signer, key.id.as_bytes())
            .map_err(|e| Error::Vault(format!("signing a manifest: {e}")))
    }

    /// Records a device's report on a release offered to it.
    pub(crate) async fn report(&self, device_id: &str, report: &OtaReport) -> Result<()> {
        let mut detail = report.detail.clone();
        if detail.len() > ironclad_proto::ota::MAX_DETAIL_LEN {
            let mut cut = ironclad_proto::ota::MAX_DETAIL_LEN;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        let at = self.clock.unix();
        if !self.store.set_device_state(device_id, &report.release_id, report.state, &detail, at).await? {
            return Err(Error::NotFound(format!(
                "release {} was not offered to this device",
                report.release_id
            )));
        }
        Ok(())
    }
}

/// The entity tag of a device's copy: its SHA-256, quoted.
pub(crate) fn etag(sha256: &[u8; 32]) -> String {
    format!("\"{}\"", hex::encode(sha256))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_uniform_enough_and_stable() {
        let mut counts = [0u32; 100];
        for i in 0..20_000 {
            counts[rollout_bucket(&format!("dev-{i}"), "r1") as usize] += 1;
        }
        // 200 expected per bucket; a broken hash (constant, or mod bias) is far outside.
        assert!(counts.iter().all(|&c| (120..=290).contains(&c)), "{counts:?}");
        assert_eq!(rollout_bucket("dev-1", "r1"), rollout_bucket("dev-1", "r1"));
        let differ = (0..100).filter(|i| {
            let d = format!("dev-{i}");
            rollout_bucket(&d, "r1") != rollout_bucket(&d, "r2")
        });
        assert!(differ.count() > 80, "buckets must be independent between releases");
    }

    #[test]
    fn downgrades_and_versions() {
        assert!(is_downgrade(1, "1.0.0", 2, "1.1.0").unwrap());
        assert!(is_downgrade(2, "1.0.0", 2, "1.1.0").unwrap(), "same counter, older version");
        assert!(is_downgrade(1, "2.0.0", 2, "1.1.0").unwrap(), "newer version, lower counter");
        assert!(!is_downgrade(2, "1.1.0", 2, "1.1.0").unwrap());
        assert!(!is_downgrade(3, "1.2.0", 2, "1.1.0").unwrap());
        assert!(is_downgrade(2, "1.1.0+1", 2, "1.1.0+2").unwrap());
        assert_eq!(manifest_version("1.1.0+0").unwrap().to_string(), "1.1.0");
        assert_eq!(manifest_version("1.2.3+4").unwrap().to_string(), "1.2.3+4");
        assert!(manifest_version("1.x").is_err());
    }
}
