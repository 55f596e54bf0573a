//! Shared fixtures: key files in imgtool's formats, payloads, imgtool invocation.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use aws_lc_rs::agreement;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use ironclad_image::hazmat::{SoftwareAgreementKey, SoftwareSigner};
use ironclad_image::*;
use ironclad_se::{KeyAlgorithm, PublicKey};
use tempfile::TempDir;

/// Deterministic pseudo-random payload.
pub fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678 ^ len as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A key as files (PKCS#8 PEM private, SPKI PEM public) plus the in-memory views ironclad uses.
pub struct KeyFiles {
    pub private: PathBuf,
    pub public: PathBuf,
    pub public_key: PublicKey,
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Ed25519,
    EcdsaP256,
    /// A P-256 key used for ECDH (ENC_EC256 recipient).
    EcdhP256,
    X25519,
}

fn write_pem(path: &Path, tag: &str, der: &[u8]) {
    std::fs::write(path, pem::encode(&pem::Pem::new(tag, der.to_vec()))).unwrap();
}

/// Generates a key in Rust and writes it the way `imgtool keygen` / `getpub -e pem` do.
pub fn key_files(dir: &Path, name: &str, kind: Kind) -> KeyFiles {
    let rng = SystemRandom::new();
    let (pkcs8, public_key) = match kind {
        Kind::Ed25519 => {
            let doc = Ed25519KeyPair::generate_pkcs8v1(&rng).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
            (
                doc.as_ref().to_vec(),
                PublicKey::new(KeyAlgorithm::Ed25519, pair.public_key().as_ref().to_vec()),
            )
        }
        Kind::EcdsaP256 | Kind::EcdhP256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
            let alg = if matches!(kind, Kind::EcdsaP256) {
                KeyAlgorithm::EcdsaP256
            } else {
                KeyAlgorithm::EcdhP256
            };
            (doc.as_ref().to_vec(), PublicKey::new(alg, pair.public_key().as_ref().to_vec()))
        }
        Kind::X25519 => {
            let mut seed = [0u8; 32];
            aws_lc_rs::rand::fill(&mut seed).unwrap();
            let key = agreement::PrivateKey::from_private_key(&agreement::X25519, &seed).unwrap();
            let public = key.compute_public_key().unwrap().as_ref().to_vec();
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04,
                0x20,
            ];
            der.extend_from_slice(&seed);
            (der, PublicKey::new(KeyAlgorithm::X25519, public))
        }
    };
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    write_pem(&private, "PRIVATE KEY", &pkcs8);
    write_pem(&public, "PUBLIC KEY", &public_key.spki_der().unwrap());
    KeyFiles { private, public, public_key }
}

pub fn pem_der(path: &Path) -> Vec<u8> {
    pem::parse(std::fs::read(path).unwrap()).unwrap().into_contents()
}

pub fn signer(keys: &KeyFiles) -> SoftwareSigner {
    SoftwareSigner::from_pkcs8_der(&pem_der(&keys.private)).unwrap()
}

pub fn agreement_key(keys: &KeyFiles) -> SoftwareAgreementKey {
    SoftwareAgreementKey::from_pkcs8_der(&pem_der(&keys.private)).unwrap()
}

pub fn trust(keys: &KeyFiles) -> TrustAnchors {
    TrustAnchors::with_key(keys.public_key.clone()).unwrap()
}

/// Signs in memory.
pub fn sign_bytes(signer: &dyn ImageSigner, options: &SignOptions, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    sign(signer, options, payload, payload.len() as u64, &mut out).unwrap();
    out
}

/// Parses and verifies an unencrypted image held in memory.
pub fn verify_bytes(bytes: &[u8], trust: &TrustAnchors) -> Result<VerifiedImage> {
    let mut src = Cursor::new(bytes);
    Image::read(&mut src, &Limits::default())?.verify(&mut src, trust)
}

/// Parses, unwraps with `key` and verifies an encrypted image held in memory.
pub fn decrypt_verify_bytes(
    bytes: &[u8],
    trust: &TrustAnchors,
    key: &dyn KeyAgreement,
) -> Result<VerifiedImage> {
    let mut src = Cursor::new(bytes);
    Image::read(&mut src, &Limits::default())?.decrypt_verify(&mut src, trust, key)
}

/// The plaintext payload of a verified image.
pub fn payload_of(verified: &VerifiedImage, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    verified.write_payload(&mut Cursor::new(bytes), &mut out).unwrap();
    out
}

/// imgtool plus a scratch directory.
pub struct Imgtool {
    pub tool: PathBuf,
    pub dir: TempDir,
}

impl Imgtool {
    pub fn new() -> Option<Self> {
        let tool = ironclad_testkit::imgtool::require_imgtool()?;
        Some(Self { tool, dir: tempfile::tempdir().unwrap() })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub fn key(&self, name: &str, kind: Kind) -> KeyFiles {
        key_files(self.dir.path(), name, kind)
    }

    /// Runs imgtool with arguments (paths as text); asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        ironclad_testkit::run_ok(&self.tool, args)
    }

    /// Runs imgtool and asserts failure; returns stdout+stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        ironclad_testkit::run_fails(&self.tool, args)
    }

    /// `imgtool sign` of `payload` with extra arguments; returns the image bytes.
    #[track_caller]
    pub fn sign(&self, name: &str, key: &KeyFiles, payload: &[u8], extra: &[&str]) -> Vec<u8> {
        let input = self.write(&format!("{name}.in.bin"), payload);
        let output = self.path(&format!("{name}.bin"));
        let mut args = vec!["sign", "-k", s(&key.private), "--pad-header"];
        if !extra.contains(&"-H") {
            args.extend_from_slice(&["-H", "0x20"]); // imgtool 2.5.0 requires -H
        }
        args.extend_from_slice(extra);
        args.extend_from_slice(&[s(&input), s(&output)]);
        self.ok(&args);
        std::fs::read(&output).unwrap()
    }

    /// `imgtool verify -k <public key>` on image bytes; returns whether it validated.
    pub fn verifies(&self, name: &str, key: &Path, image: &[u8]) -> bool {
        let path = self.write(name, image);
        let out = ironclad_testkit::run(&self.tool, &["verify", "-k", s(key), s(&path)]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Image was correctly validated")
    }

    /// `imgtool dumpinfo -f json` as a JSON value.
    pub fn dumpinfo(&self, name: &str, image: &[u8]) -> serde_json::Value {
        let path = self.write(name, image);
        let text = self.ok(&["dumpinfo", "-f", "json", s(&path)]);
        serde_json::from_str(&text).unwrap()
    }

    /// The Python interpreter imgtool runs under (its shebang), which has `cryptography`.
    pub fn python(&self) -> PathBuf {
        let script = std::fs::read_to_string(&self.tool).unwrap();
        let first = script.lines().next().unwrap();
        PathBuf::from(first.strip_prefix("#!").unwrap().trim())
    }
}

pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}
