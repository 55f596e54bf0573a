//! Releases: the upload (streamed to a temporary file, bounded, hashed on the way), the
//! verification (MCUboot signature against the registered mastering keys, the content key
//! unwrapped by the vault's firmware-decryption key inside the secure element, mandatory
//! security counter and product class, no slot padding), and [`Prepared`], a release ready to
//! serve per-device copies.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{self, SHA256};
use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use ironclad_image::{Image, Limits, SeAgreementKey, TrustAnchors, VerifiedImage};
use tokio::sync::mpsc;

use super::Ota;
use crate::error::{Error, Result};
use crate::store::{KeyUsage, Release};

/// A release id: `r` + 16 hex digits of the file's SHA-256.
pub(crate) fn release_id(sha256: &[u8; 32]) -> String {
    format!("r{}", hex::encode(&sha256[..8]))
}

/// UUID text (lower case, hyphenated) of a product-class TLV.
fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("release refused: {e}"))
}

/// The keys a release may be verified with and unwrapped by (blocking-friendly copies).
pub(crate) struct ReleaseTrust {
    trust: TrustAnchors,
    /// The vault's firmware-decryption keys, newest first, with their vault ids.
    unwrap: Vec<(String, SeAgreementKey)>,
}

/// What verification found.
struct Checked {
    verified: VerifiedImage,
    decryption_key: Option<String>,
}

/// Verifies the file at `path`: bounds, no trailing bytes, signature by a trusted key
/// (decrypting with the content key the vault unwraps when encrypted), counter and class.
fn verify_file(path: &Path, keys: &ReleaseTrust, max: u64) -> Result<Checked> {
    let mut f = File::open(path)?;
    let limits = Limits { slot_size: max, ..Limits::default() };
    let image = Image::read(&mut f, &limits).map_err(invalid)?;
    if image.trailing_len() != 0 {
        return Err(invalid(format!(
            "{} bytes of slot padding or trailer after the image: upload it without --pad (the device \
             writes its own trailer)",
            image.trailing_len()
        )));
    }
    if image.security_counter().is_none() {
        return Err(invalid("the image has no security counter (sign it with --security-counter)"));
    }
    if image.product_class().is_none() {
        return Err(invalid("the image has no product class (sign it with --product-class UUID)"));
    }
    if image.cipher().is_none() {
        let verified = image.verify(&mut f, &keys.trust).map_err(invalid)?;
        return Ok(Checked { verified, decryption_key: None });
    }
    if keys.unwrap.is_empty() {
        return Err(Error::Vault(
            "an encrypted release needs the key vault's firmware-decryption key".into(),
        ));
    }
    let mut last = None;
    for (id, key) in &keys.unwrap {
        match image.unwrap_content_key(key) {
            Ok(content_key) => {
                let verified =
                    image.clone().verify_encrypted(&mut f, &keys.trust, &content_key).map_err(invalid)?;
                return Ok(Checked { verified, decryption_key: Some(id.clone()) });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(invalid(format!(
        "the content key is not wrapped to this server's firmware-decryption key (encrypt the release to \
         `ota encryption-key`): {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// A release ready to serve.
pub(crate) struct Prepared {
    pub(crate) release: Release,
    pub(crate) path: PathBuf,
    /// The whole file, when it fits the memory budget.
    pub(crate) bytes: Option<Bytes>,
    /// For encrypted releases: the verified image (holds the content key, zeroised on drop).
    verified: Option<VerifiedImage>,
    /// SHA-256 state after the signed region (encrypted releases).
    prefix: digest::Context,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("release", &self.release.id).finish_non_exhaustive()
    }
}

impl Prepared {
    pub(crate) fn in_memory(&self) -> bool {
        self.bytes.is_some()
    }

    /// Bytes every device's copy takes from the file: the signed region of an encrypted
    /// release (its tail is per device), the whole file otherwise.
    pub(crate) fn base_len(&self) -> u64 {
        if self.verified.is_some() { self.release.signed_len } else { self.release.size }
    }

    /// A device's copy: (tail, size, SHA-256). Encrypted: the TLV area re-wrapped to
    /// `recipient_spki`; unencrypted: the file itself.
    pub(crate) fn device_copy(&self, recipient_spki: &[u8]) -> Result<(Vec<u8>, u64, [u8; 32])> {
        let Some(verified) = &self.verified else {
            return Ok((Vec::new(), self.release.size, self.release.sha256));
        };
        let recipient = ironclad_image::recipient_from_spki(recipient_spki)
            .map_err(|e| Error::Invalid(format!("firmware-decryption key: {e}")))?;
        let tail = verified
            .rewrapped_tlv_area(&recipient)
            .map_err(|e| Error::Invalid(format!("re-wrapping to the device key: {e}")))?;
        let mut ctx = self.prefix.clone();
        ctx.update(&tail);
        let mut sha = [0u8; 32];
        sha.copy_from_slice(ctx.finish().as_ref());
        Ok((tail.clone(), self.release.signed_len + tail.len() as u64, sha))
    }
}

impl Ota {
    /// The registered mastering keys and the vault's firmware-decryption keys.
    pub(crate) async fn release_trust(&self) -> Result<ReleaseTrust> {
        let mut trust = TrustAnchors::new();
        for k in self.store.ota_keys().await? {
            let key = ironclad_image::signing_key_from_spki(&k.spki_der)
                .map_err(|e| Error::Invalid(format!("stored firmware key {}: {e}", k.name)))?;
            trust.add_key(key).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        let mut unwrap = Vec::new();
        if let Some(vault) = &self.vault {
            vault.current(KeyUsage::FirmwareDecryption, "").await?;
            let mut keys = vault.list(Some(KeyUsage::FirmwareDecryption)).await?;
            keys.sort_by_key(|k| std::cmp::Reverse(k.version));
            for k in keys {
                let (se, label) = vault.secure_element_key(&k)?;
                let handle =
                    SeAgreementKey::open(se, &label).map_err(|e| Error::Vault(format!("{}: {e}", k.id)))?;
                unwrap.push((k.id, handle));
            }
        }
        Ok(ReleaseTrust { trust, unwrap })
    }

    /// Streams an uploaded image to the releases directory, verifies it, and records it.
    pub(crate) async fn upload(&self, mut body: Body, note: String, who: &str) -> Result<Release> {
        let dir = self.releases_dir()?.clone();
        std::fs::create_dir_all(&dir)?;
        let trust = self.release_trust().await?;
        if trust.trust.is_empty() {
            return Err(Error::Invalid("no firmware-verification key is registered (ota key add)".into()));
        }
        let max = self.config.max_release_bytes;
        let tmp = dir.join(format!(".upload-{}.part", crate::registry::random_hex(8)?));
        let mut guard = RemoveOnDrop(Some(tmp.clone()));

        // A writer thread hashes and writes; this task feeds it the body's frames.
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        let path = tmp.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<(u64, [u8; 32])> {
            let mut f = File::create(&path)?;
            let mut ctx = digest::Context::new(&SHA256);
            let mut n = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                ctx.update(&chunk);
                f.write_all(&chunk)?;
                n += chunk.len() as u64;
            }
            f.sync_all()?;
            let mut sha = [0u8; 32];
            sha.copy_from_slice(ctx.finish().as_ref());
            Ok((n, sha))
        });
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Invalid(format!("upload interrupted: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            received += data.len() as u64;
            if received > max {
                return Err(Error::Invalid(format!(
                    "release larger than the {max}-byte limit (ota.max_release_bytes)"
                )));
            }
            if tx.send(data).await.is_err() {
                break;
            }
        }
        drop(tx);
        let (size, sha256) = writer.await.map_err(|e| Error::Io(std::io::Error::other(e)))??;
        if size == 0 {
            return Err(Error::Invalid("empty upload".into()));
        }

        let id = release_id(&sha256);
        if let Some(existing) = self.store.release(&id).await? {
            return Err(Error::Conflict(format!("release {id} ({}) was uploaded already", existing.version)));
        }
        let path = tmp.clone();
        let checked = tokio::task::spawn_blocking(move || verify_file(&path, &trust, max))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        let v = &checked.verified;
        let file_name = format!("{id}.img");
        let release = Release {
            id: id.clone(),
            version: v.version().to_string(),
            security_counter: u64::from(v.security_counter().unwrap_or(0)),
            product_class: v.product_class().map(|c| uuid_text(&c)).unwrap_or_default(),
            size,
            sha256,
            image_hash: *v.digest(),
            signed_len: v.header().signed_len(),
            wrap: v.image().key_wrap_tlv().map_or("none", |t| wrap_name(t.tlv_type)).to_owned(),
            signer: ironclad_image::key_hash(v.signer()).map_err(invalid)?,
            decryption_key: checked.decryption_key.clone(),
            file_name: file_name.clone(),
            note,
            uploaded_at: self.clock.unix(),
            uploaded_by: who.to_owned(),
        };
        // Atomic: the file is complete and synced before its name appears, and its name before
        // the row that points at it.
        let target = dir.join(&file_name);
        std::fs::rename(&tmp, &target)?;
        guard.0 = None;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        self.store.insert_release(&release).await?;
        Ok(release)
    }

    /// Reads a stored release back: its file must still hash to what was uploaded, and it is
    /// verified again (a file changed on disk is never served).
    pub(super) async fn load(&self, release: &Release, keep_in_memory: bool) -> Result<Prepared> {
        let dir = self.releases_dir()?.clone();
        let trust = self.release_trust().await?;
        let release = release.clone();
        tokio::task::spawn_blocking(move || {
            let path = dir.join(&release.file_name);
            let bad =
                |what: &str| Error::Config(format!("release {} file {}: {what}", release.id, path.display()));
            let mut f = File::open(&path).map_err(|e| bad(&e.to_string()))?;
            let mut ctx = digest::Context::new(&SHA256);
            let mut bytes = Vec::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0u64;
            loop {
                let k = f.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                ctx.update(&buf[..k]);
                if keep_in_memory {
                    bytes.extend_from_slice(&buf[..k]);
                }
                n += k as u64;
            }
            if n != release.size || ctx.finish().as_ref() != release.sha256 {
                return Err(bad("changed since it was uploaded; refusing to serve it"));
            }
            let checked = verify_file(&path, &trust, release.size.max(1)).map_err(|e| bad(&e.to_string()))?;
            if *checked.verified.digest() != release.image_hash {
                return Err(bad("image hash differs from the recorded one"));
            }
            let mut prefix = digest::Context::new(&SHA256);
            let encrypted = checked.verified.is_encrypted();
            if encrypted {
                f.seek(SeekFrom::Start(0))?;
                let mut left = release.signed_len;
                while left > 0 {
                    let k = left.min(buf.len() as u64) as usize;
                    f.read_exact(&mut buf[..k])?;
                    prefix.update(&buf[..k]);
                    left -= k as u64;
                }
            }
            Ok(Prepared {
                bytes: keep_in_memory.then(|| Bytes::from(bytes)),
                verified: encrypted.then_some(checked.verified),
                prefix,
                path,
                release,
            })
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
    }
}

/// The wrap type's name as stored.
fn wrap_name(tlv_type: u16) -> &'static str {
    match tlv_type {
        ironclad_image::tlv::types::ENC_X25519 => "ecies-x25519",
        ironclad_image::tlv::types::ENC_EC256 => "ecies-p256",
        _ => "other",
    }
}

/// Deletes a temporary upload unless it was renamed into place.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}
