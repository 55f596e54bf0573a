//! MCUboot-compatible firmware images, byte for byte with imgtool 2.5.0: parse, sign, encrypt,
//! decrypt, verify, re-wrap and inspect. Pure: callers hand in `Read + Seek` sources and `Write`
//! sinks, secure-element keys and options; nothing here opens a file or reads a clock. Every
//! pass streams through a few 1 MiB buffers, hashing on a second thread for large images, so
//! memory stays flat whatever the image size.
//!
//! Parse → verify → act:
//!
//! ```
//! use std::io::Cursor;
//! use std::sync::Arc;
//! use ironclad_image::{Image, Limits, SignOptions, TrustAnchors, Version, sign};
//! use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};
//!
//! // Mastering: the signing key lives in a secure element (software store, HSM...).
//! let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
//! let id = Label::new("fw-mastering").unwrap();
//! se.generate_key(&id, KeyAlgorithm::Ed25519).unwrap();
//! let key = KeyHandle::open(se, &id).unwrap();
//! let firmware = vec![0x5a; 1000];
//! let mut options = SignOptions::new("1.2.3+4".parse().unwrap());
//! options.security_counter = Some(7);
//! let mut image = Vec::new();
//! sign(&key, &options, &firmware[..], firmware.len() as u64, &mut image).unwrap();
//!
//! // The device: parse (bounded by the slot), verify against its trusted keys, then act.
//! let trust = TrustAnchors::with_key(key.public_key().clone()).unwrap();
//! let mut src = Cursor::new(&image);
//! let parsed = Image::read(&mut src, &Limits::for_slot(0x20000)).unwrap();
//! let verified = parsed.verify(&mut src, &trust).unwrap();
//! assert_eq!(verified.version(), Version::new(1, 2, 3, 4));
//! assert_eq!(verified.security_counter(), Some(7));
//! ```
//!
//! What is signed and how: the SHA-256 over
//! header (with its padding), plaintext payload and protected TLVs; ECDSA P-256 signs that
//! digest, Ed25519 signs the 32-byte digest as its message (imgtool without `--pure`); KEYHASH is
//! the SHA-256 of the signing key's DER SubjectPublicKeyInfo. Encrypted images carry AES-CTR
//! payloads whose content key is wrapped with ECIES-X25519 or ECIES-P256 in an unsigned TLV,
//! which is what lets a server [re-wrap](VerifiedImage::rewrap) one signed release per device.
//!
//! Not supported (refused with a named error, never misread): RSA and P-384 signatures,
//! SHA-384/512 and pure Ed25519 images, AES-KW and RSA-OAEP key wraps, ENC_X25519_SHA512
//! (needs HKDF-SHA512, which `ironclad_se::KeyStore::agree_and_derive` cannot express yet),
//! compressed payloads, big-endian images.
#![forbid(unsafe_code)]

mod encrypt;
mod error;
pub mod hazmat;
mod header;
mod image;
mod inspect;
mod keys;
mod pipe;
mod rewrap;
mod sign;
mod stream;
pub mod tlv;
mod trailer;
mod verify;

pub use encrypt::{Cipher, ContentKey, ECIES_INFO, WrapKind};
pub use error::{Error, Result, TlvProblem};
pub use header::{Flags, HEADER_LEN, IMAGE_MAGIC, ImageHeader, Version};
pub use image::{Image, Limits};
pub use inspect::{
    AreaHeader, EncryptionInfo, HeaderInfo, ImageInfo, KeyIdInfo, Summary, TlvAreaInfo, TlvInfo,
};
pub use keys::{
    ImageSigner, KeyAgreement, SeAgreementKey, TrustAnchors, key_hash, recipient_from_spki,
    signing_key_from_spki,
};
pub use sign::{Encryption, KeyIdFormat, SignOptions, SignedImage, sign};
pub use tlv::{Tlv, TlvArea};
pub use trailer::{BOOT_MAGIC, BOOT_MAGIC_2, Pad, SlotLayout, TrailerInfo};
pub use verify::VerifiedImage;
