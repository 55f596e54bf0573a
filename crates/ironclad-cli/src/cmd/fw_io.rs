//! Shared by the `fw` subcommands: where keys live (a software secure element or the PKI's key
//! backend), public-key PEM files, number and UUID arguments, opening images, the atomic
//! streamed output, randomness for mastering, and a one-line description of a verified image.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use ironclad_image::{
    Image, Limits, SeAgreementKey, TrustAnchors, VerifiedImage, key_hash, recipient_from_spki,
    signing_key_from_spki,
};
use ironclad_se::{DirSe, KeyHandle, Label, PublicKey, SecureElement};

use crate::pki_dir::PkiDir;
use crate::secrets::{CaKeyArgs, kdf_params};

// ---- where keys live ---------------------------------------------------------------------------

/// The secure element holding a firmware key: a software store, or a PKI's key backend (its
/// encrypted store, or its PKCS#11 token: a mastering key in an HSM).
#[derive(Args, Debug, Clone)]
pub(crate) struct KeySourceArgs {
    /// Software secure element (directory) holding the key.
    #[arg(long, value_name = "DIR", env = "IRONCLAD_SE_DIR")]
    pub(crate) store: Option<PathBuf>,
    /// Use the key backend of this PKI directory instead of --store: its encrypted key store, or
    /// the PKCS#11 token it was created on (`ca init --pkcs11-uri`). Takes precedence over --store.
    #[arg(long, value_name = "DIR")]
    pub(crate) pki: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) keys: CaKeyArgs,
}

impl KeySourceArgs {
    /// Opens the secure element (asking for the store's passphrase or the token's PIN).
    pub(crate) fn open(&self) -> Result<Arc<dyn SecureElement>> {
        if let Some(pki) = &self.pki {
            return PkiDir::open(pki)?.open_keys(&self.keys);
        }
        let Some(store) = &self.store else {
            bail!(
                "no secure element named: give --store DIR (a software store) or --pki DIR (a PKI's key backend)"
            );
        };
        let unlock = self.keys.unlock.resolve(false)?;
        let se =
            DirSe::open(store, &unlock).with_context(|| format!("opening key store {}", store.display()))?;
        Ok(Arc::new(se))
    }

    /// Opens the secure element, creating a software store first when `init` is set and none
    /// exists. Returns whether it was created.
    pub(crate) fn open_or_create(&self, init: bool) -> Result<(Arc<dyn SecureElement>, bool)> {
        match (&self.pki, &self.store) {
            (None, Some(store)) if init && !store.join("store.json").exists() => {
                let unlock = self.keys.unlock.resolve(true)?;
                let se = DirSe::create(store, &unlock, kdf_params())
                    .with_context(|| format!("creating key store {}", store.display()))?;
                Ok((Arc::new(se), true))
            }
            _ => Ok((self.open()?, false)),
        }
    }

    /// Where the key is, for messages.
    pub(crate) fn describe(&self) -> String {
        match (&self.pki, &self.store) {
            (Some(pki), _) => match PkiDir::open(pki) {
                Ok(dir) => format!("the PKI key backend {}", dir.backend().describe(pki)),
                Err(_) => format!("the key backend of {}", pki.display()),
            },
            (None, Some(store)) => format!("software secure element {}", store.display()),
            (None, None) => "no secure element".to_owned(),
        }
    }

    /// A signing (mastering) key.
    pub(crate) fn signer(&self, label: &Label) -> Result<KeyHandle> {
        let se = self.open()?;
        let where_ = || format!("mastering key `{label}` in {}", self.describe());
        let info = se.key_info(label).with_context(|| format!("opening {}", where_()))?;
        let alg = info.public.algorithm();
        ensure!(
            alg.can_sign(),
            "{} is an {alg} key; firmware is signed with an ecdsa-p256 or ed25519 key (`ironclad fw keygen`)",
            where_()
        );
        KeyHandle::open(se, label).with_context(|| format!("opening {}", where_()))
    }

    /// A firmware-decryption key (X25519 or P-256 ECDH): it unwraps content keys inside the
    /// secure element.
    pub(crate) fn agreement_key(&self, label: &Label) -> Result<SeAgreementKey> {
        let se = self.open()?;
        SeAgreementKey::open(se, label)
            .with_context(|| format!("opening firmware-decryption key `{label}` in {}", self.describe()))
    }
}

// ---- public keys -------------------------------------------------------------------------------

/// A public-key file larger than this is not a public key.
const MAX_PEM: u64 = 64 * 1024;

/// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) file: `ironclad fw keygen --out`, `imgtool
/// getpub -e pem`, `openssl pkey -pubout`. Returns the DER.
pub(crate) fn read_public_pem(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    ensure!(len <= MAX_PEM, "{} is {len} bytes: not a public-key PEM file", path.display());
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let blocks = pem::parse_many(&text).with_context(|| format!("{} is not PEM", path.display()))?;
    if let Some(block) = blocks.iter().find(|b| b.tag() == "PUBLIC KEY") {
        return Ok(block.contents().to_vec());
    }
    if blocks.iter().any(|b| b.tag().contains("PRIVATE KEY")) {
        bail!(
            "{} holds a private key; give the public key (`ironclad fw keygen --out`, `imgtool getpub -e pem`)",
            path.display()
        );
    }
    bail!("{} has no PEM `PUBLIC KEY` block", path.display())
}

/// A signature-verification key (P-256 or Ed25519) from a PEM file.
pub(crate) fn read_signing_key(path: &Path) -> Result<PublicKey> {
    let der = read_public_pem(path)?;
    signing_key_from_spki(&der).with_context(|| format!("{} is not a firmware signing key", path.display()))
}

/// An encryption recipient (X25519 or P-256) from a PEM file.
pub(crate) fn read_recipient(path: &Path) -> Result<PublicKey> {
    let der = read_public_pem(path)?;
    recipient_from_spki(&der)
        .with_context(|| format!("{} is not a firmware-decryption key (x25519 or P-256)", path.display()))
}

/// The trusted signing keys from PEM files.
pub(crate) fn trust_anchors(paths: &[PathBuf]) -> Result<TrustAnchors> {
    ensure!(!paths.is_empty(), "no trusted key: give the mastering public key with --key/--trust PEM");
    let mut trust = TrustAnchors::new();
    for path in paths {
        trust.add_key(read_signing_key(path)?)?;
    }
    Ok(trust)
}

/// A public key as PEM text.
pub(crate) fn public_pem(key: &PublicKey) -> Result<String> {
    let der = key.spki_der().context("the key has no public part")?;
    Ok(pem::encode(&pem::Pem::new("PUBLIC KEY", der)))
}

/// The KEYHASH of a signing key, hex (what `imgtool getpubhash` prints, as bytes).
pub(crate) fn key_hash_hex(key: &PublicKey) -> Result<String> {
    Ok(hex::encode(key_hash(key)?))
}

// ---- arguments ---------------------------------------------------------------------------------

/// A number in decimal or `0x` hex, as imgtool takes them (`-H 0x200`, `-S 131072`).
pub(crate) fn parse_number(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim().replace('_', "");
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a number (decimal, or hex with 0x)"))
}

/// A UUID as `8-4-4-4-12` hex or 32 hex digits.
pub(crate) fn parse_uuid(text: &str) -> std::result::Result<[u8; 16], String> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    let bytes = hex::decode(&digits).map_err(|_| format!("{text:?} is not a UUID (hex digits)"))?;
    bytes.try_into().map_err(|_| format!("{text:?} is not a UUID: it needs 32 hex digits"))
}

// ---- files -------------------------------------------------------------------------------------

/// Opens an image for reading and parses its header and TLVs (nothing of the payload is read).
pub(crate) fn open_image(path: &Path, limits: &Limits) -> Result<(File, Image)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let image = Image::read(&mut file, limits).with_context(|| format!("{} refused", path.display()))?;
    Ok((file, image))
}

/// A file written in a stream and published only when complete: a temporary file beside the
/// target, fsynced and renamed over it, then the directory fsynced. Dropping it without
/// [`AtomicOut::commit`] removes the temporary file, so a failed command leaves nothing behind.
///
/// Writeback starts every [`WRITEBACK_STEP`] bytes while the rest is still being produced, so
/// the final fsync waits for the last megabyte or so instead of the whole image (16 MiB: about
/// 1 ms instead of 10 ms here). Starting it costs CPU (block allocation, queueing the I/O), so a
/// helper thread ([`Writeback`]) does it, off the thread that reads and writes the image.
#[derive(Debug)]
pub(crate) struct AtomicOut {
    path: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
    /// Bytes accepted so far.
    written: u64,
    /// Bytes whose writeback has been requested.
    kicked: u64,
    /// Started at the first [`WRITEBACK_STEP`].
    writeback: Option<Writeback>,
}

/// A thread that starts writeback of file ranges it is sent: `POSIX_FADV_DONTNEED` on Linux
/// writes dirty pages back asynchronously (and leaves pages under writeback cached). Only
/// advice: a failure, or a range skipped because the thread is behind, changes nothing but
/// timing.
#[derive(Debug)]
struct Writeback {
    ranges: Option<std::sync::mpsc::SyncSender<(u64, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writeback {
    fn start(file: &File) -> Option<Self> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let file = file.try_clone().ok()?;
        let (ranges, requests) = std::sync::mpsc::sync_channel::<(u64, u64)>(8);
        let thread = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                for (offset, len) in requests {
                    advise_writeback(&file, offset, len);
                }
            })
            .ok()?;
        Some(Self { ranges: Some(ranges), thread: Some(thread) })
    }

    /// Asks for `len` bytes at `offset`; false if the thread is busy (ask again later, wider).
    fn request(&self, offset: u64, len: u64) -> bool {
        self.ranges.as_ref().is_some_and(|r| r.try_send((offset, len)).is_ok())
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        drop(self.ranges.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(target_os = "linux")]
fn advise_writeback(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(file, offset, std::num::NonZeroU64::new(len), rustix::fs::Advice::DontNeed);
}

#[cfg(not(target_os = "linux"))]
fn advise_writeback(_file: &File, _offset: u64, _len: u64) {}

/// How much output accumulates before its writeback is started.
const WRITEBACK_STEP: u64 = 1024 * 1024;

impl AtomicOut {
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let dir = parent_dir(path);
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(256 * 1024, tmp),
            written: 0,
            kicked: 0,
            writeback: None,
        })
    }

    /// Flushes, fsyncs and renames into place.
    pub(crate) fn commit(mut self) -> Result<()> {
        drop(self.writeback.take()); // its last requests are queued before the fsync
        let path = self.path;
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
        tmp.as_file().sync_all().with_context(|| format!("writing {}", path.display()))?;
        tmp.persist(&path).map_err(|e| e.error).with_context(|| format!("writing {}", path.display()))?;
        File::open(parent_dir(&path))
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing the directory of {}", path.display()))?;
        Ok(())
    }

    /// Requests writeback of what was written since the last request, once a
    /// [`WRITEBACK_STEP`] has accumulated.
    fn start_writeback(&mut self) -> std::io::Result<()> {
        if self.written - self.kicked < WRITEBACK_STEP {
            return Ok(());
        }
        self.file.flush()?;
        if self.writeback.is_none() {
            self.writeback = Writeback::start(self.file.get_ref().as_file());
        }
        if self.writeback.as_ref().is_some_and(|w| w.request(self.kicked, self.written - self.kicked)) {
            self.kicked = self.written;
        }
        Ok(())
    }
}

impl Write for AtomicOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        self.start_writeback()?;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        self.start_writeback()
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

// ---- randomness --------------------------------------------------------------------------------

/// aws-lc seeds its process-wide DRBG from CPU jitter entropy on first use, about 25 ms of CPU.
/// ECDSA signing needs that generator (the secure element's nonce), but only after the image
/// is streamed; a command signing with ECDSA starts this first, so the seeding runs on another
/// core while the payload is hashed. (Content keys and key-wrap ephemerals come from the
/// operating system's generator and never wait for it; Ed25519 is deterministic.) Dropping it
/// waits for the helper thread.
#[derive(Debug)]
pub(crate) struct RngWarmup(Option<std::thread::JoinHandle<()>>);

impl RngWarmup {
    pub(crate) fn start() -> Self {
        Self(Some(std::thread::spawn(|| {
            let mut byte = [0u8; 1];
            // A failure surfaces where randomness is really used.
            let _ = aws_lc_rs::rand::fill(&mut byte);
        })))
    }
}

impl Drop for RngWarmup {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

// ---- output ------------------------------------------------------------------------------------

/// What a verified image is, in one line.
pub(crate) fn describe_verified(verified: &VerifiedImage) -> Result<String> {
    let counter = verified.security_counter().map_or_else(|| "none".to_owned(), |c| c.to_string());
    let signer = verified.signer();
    Ok(format!(
        "version {}, security counter {counter}, {}signed by {} key {}",
        verified.version(),
        if verified.is_encrypted() { "encrypted, " } else { "" },
        signer.algorithm(),
        key_hash_hex(signer)?
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers_and_uuids_parse_like_imgtool() {
        assert_eq!(parse_number("0x200").unwrap(), 512);
        assert_eq!(parse_number("131072").unwrap(), 131_072);
        assert!(parse_number("0x").is_err());
        assert!(parse_number("12k").is_err());
        let uuid = parse_uuid("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        assert_eq!(uuid, parse_uuid("00112233445566778899aabbccddeeff").unwrap());
        assert!(parse_uuid("0011").is_err());
    }
}
