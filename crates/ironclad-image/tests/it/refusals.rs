//! Everything that must be refused, and the error that names it.

use std::io::{Cursor, Read, Seek, SeekFrom};

use ironclad_image::hazmat::SoftwareSigner;
use ironclad_image::tlv::{UNPROTECTED_MAGIC, types};
use ironclad_image::*;
use ironclad_se::KeyAlgorithm;

use crate::common::*;

struct Small {
    bytes: Vec<u8>,
    trust: TrustAnchors,
    image: Image,
}

fn small(alg: KeyAlgorithm) -> Small {
    let signer = SoftwareSigner::generate(alg).unwrap();
    let mut o = SignOptions::new("1.2.3+4".parse().unwrap());
    o.security_counter = Some(3);
    o.product_class = Some([0xC1; 16]);
    let bytes = sign_bytes(&signer, &o, &payload(16));
    let trust = TrustAnchors::with_key(signer.public_key().clone()).unwrap();
    let image = Image::parse(&bytes, &Limits::default()).unwrap();
    Small { bytes, trust, image }
}

/// Byte ranges of a TLV's value.
fn value_range(tlv: &Tlv) -> std::ops::Range<usize> {
    let start = tlv.offset as usize + 4;
    start..start + tlv.data.len()
}

/// Flipping any single byte of a small image — header, payload, protected TLVs, hash, key hash,
/// signature, TLV headers — is refused; payload and protected values give `HashMismatch`, the
/// signature gives `SignatureInvalid`, the key hash `UnknownKey`.
#[test]
fn every_single_byte_flip_is_refused() {
    for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
        let Small { bytes, trust, image } = small(alg);
        verify_bytes(&bytes, &trust).unwrap();
        let hdr = image.header().hdr_size as usize;
        let payload = hdr..hdr + image.header().img_size as usize;
        let protected_values: Vec<_> = image.protected_tlvs().iter().map(value_range).collect();
        let sig = image
            .unprotected_tlvs()
            .iter()
            .find(|t| matches!(t.tlv_type, types::ED25519 | types::ECDSA_SIG))
            .map(value_range)
            .unwrap();
        let keyhash = value_range(image.unprotected_area().get(types::KEYHASH).unwrap());
        let mut flips = 0;
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                let err = verify_bytes(&bad, &trust)
                    .expect_err(&format!("{alg} flip {mask:#x} at {i:#x} accepted"));
                flips += 1;
                let in_range = |r: &std::ops::Range<usize>| r.contains(&i);
                if payload.contains(&i) || protected_values.iter().any(in_range) {
                    assert!(matches!(err, Error::HashMismatch { encrypted: false }), "{i:#x}: {err}");
                } else if sig.contains(&i) {
                    assert!(matches!(err, Error::SignatureInvalid), "{i:#x}: {err}");
                } else if keyhash.contains(&i) {
                    assert!(matches!(err, Error::UnknownKey), "{i:#x}: {err}");
                } else if i < 4 {
                    assert!(matches!(err, Error::BadMagic { .. }), "{i:#x}: {err}");
                }
            }
        }
        assert_eq!(flips, bytes.len() * 3);
    }
}

/// Every truncation is refused as `Truncated`, before any hashing.
#[test]
fn every_truncation_is_refused() {
    let Small { bytes, trust, .. } = small(KeyAlgorithm::Ed25519);
    for len in 0..bytes.len() {
        let err = verify_bytes(&bytes[..len], &trust).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "len {len}: {err}");
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// An img_size larger than the slot is refused after reading only the 32-byte header, whatever
/// the source holds (mcuboot#2025); so is a source larger than the slot.
#[test]
fn img_size_larger_than_the_slot_is_refused_before_hashing() {
    let Small { mut bytes, .. } = small(KeyAlgorithm::Ed25519);
    bytes.resize(0x30000, 0xff);
    for img_size in [0x3_0000u32, 0x7fff_ffff, u32::MAX] {
        let mut bad = bytes.clone();
        bad[12..16].copy_from_slice(&img_size.to_le_bytes());
        let mut src = Counting { inner: Cursor::new(&bad), read: 0 };
        let err = Image::read(&mut src, &Limits::for_slot(0x30000)).unwrap_err();
        assert!(matches!(err, Error::ImageTooLarge { max: 0x30000, .. }), "{err}");
        assert_eq!(src.read, 32, "read beyond the header");
    }
    let err = Image::parse(&bytes, &Limits::for_slot(0x2_0000)).unwrap_err();
    assert!(matches!(err, Error::ImageTooLarge { size: 0x30000, max: 0x2_0000 }), "{err}");
    // Within the slot but beyond the source: truncated, also without reading the payload.
    let mut bad = bytes.clone();
    bad.truncate(0x1000);
    bad[12..16].copy_from_slice(&0x8000u32.to_le_bytes());
    let err = Image::parse(&bad, &Limits::for_slot(0x30000)).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

/// Verification against the wrong key, or no key, names the problem.
#[test]
fn wrong_key_is_refused() {
    let Small { bytes, .. } = small(KeyAlgorithm::Ed25519);
    let other = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
    let trust = TrustAnchors::with_key(other.public_key().clone()).unwrap();
    assert!(matches!(verify_bytes(&bytes, &trust), Err(Error::UnknownKey)));
    assert!(matches!(verify_bytes(&bytes, &TrustAnchors::new()), Err(Error::UnknownKey)));
    // A trusted key hash whose signature comes from another key: SignatureInvalid.
    let Small { bytes: b2, trust: t2, image: i2 } = small(KeyAlgorithm::Ed25519);
    let forged_sig = {
        let signer = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
        let o = SignOptions::new("1.0.0".parse().unwrap());
        let other = Image::parse(&sign_bytes(&signer, &o, b"x"), &Limits::default()).unwrap();
        other.unprotected_area().get(types::ED25519).unwrap().data.clone()
    };
    let mut bad = b2.clone();
    bad[value_range(i2.unprotected_area().get(types::ED25519).unwrap())].copy_from_slice(&forged_sig);
    assert!(matches!(verify_bytes(&bad, &t2), Err(Error::SignatureInvalid)));
}

/// Rebuilds the unprotected area of `image` from `entries`.
fn with_unprotected(bytes: &[u8], image: &Image, entries: &[(u16, &[u8])]) -> Vec<u8> {
    let start = image.header().signed_len() as usize;
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&encode_area(entries));
    out
}

fn encode_area(entries: &[(u16, &[u8])]) -> Vec<u8> {
    let total: usize = 4 + entries.iter().map(|(_, d)| 4 + d.len()).sum::<usize>();
    let mut out = Vec::new();
    out.extend_from_slice(&UNPROTECTED_MAGIC.to_le_bytes());
    out.extend_from_slice(&(total as u16).to_le_bytes());
    for (t, d) in entries {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&(d.len() as u16).to_le_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// Missing, misplaced, duplicated and unsupported TLVs, and unsupported header flags.
#[test]
fn unknown_or_unsupported_layouts_are_refused() {
    let Small { bytes, trust, image } = small(KeyAlgorithm::Ed25519);
    let get = |t| image.unprotected_area().get(t).unwrap().data.clone();
    let (hash, keyhash, sig) = (get(types::SHA256), get(types::KEYHASH), get(types::ED25519));
    let check = |entries: &[(u16, &[u8])], want: &dyn Fn(&Error) -> bool| {
        let bad = with_unprotected(&bytes, &image, entries);
        let err = verify_bytes(&bad, &trust).unwrap_err();
        assert!(want(&err), "{entries:x?}: {err}");
    };
    check(&[(types::KEYHASH, &keyhash), (types::ED25519, &sig)], &|e| {
        matches!(e, Error::MissingTlv("SHA256"))
    });
    check(&[(types::SHA256, &hash), (types::KEYHASH, &keyhash)], &|e| matches!(e, Error::MissingTlv(_)));
    check(&[(types::SHA256, &hash), (types::ED25519, &sig)], &|e| {
        matches!(e, Error::MissingTlv("KEYHASH or PUBKEY"))
    });
    check(
        &[
            (types::SHA256, &hash),
            (types::KEYHASH, &keyhash),
            (types::ED25519, &sig),
            (types::SIG_PURE, &[1]),
        ],
        &|e| matches!(e, Error::UnsupportedTlv { tlv_type: types::SIG_PURE, .. }),
    );
    check(
        &[(types::SHA256, &hash), (types::SHA256, &hash), (types::KEYHASH, &keyhash), (types::ED25519, &sig)],
        &|e| matches!(e, Error::Tlv { kind: TlvProblem::Duplicate(types::SHA256), .. }),
    );
    check(
        &[
            (types::SHA256, &hash),
            (types::KEYHASH, &keyhash),
            (types::ED25519, &sig),
            (types::SEC_CNT, &[9, 0, 0, 0]),
        ],
        &|e| matches!(e, Error::Tlv { kind: TlvProblem::WrongArea(types::SEC_CNT), .. }),
    );
    check(&[(types::SHA256, &hash), (types::KEYHASH, &keyhash), (types::RSA2048_PSS, &[0; 256])], &|e| {
        matches!(e, Error::UnsupportedTlv { tlv_type: types::RSA2048_PSS, .. })
    });
    check(&[(types::SHA512, &[0; 64]), (types::KEYHASH, &keyhash), (types::ED25519, &sig)], &|e| {
        matches!(e, Error::UnsupportedTlv { tlv_type: types::SHA512, .. })
    });
    check(&[(types::SHA256, &hash), (types::KEYHASH, &keyhash), (types::ED25519, &sig[..63])], &|e| {
        matches!(e, Error::Tlv { kind: TlvProblem::BadLength { tlv_type: types::ED25519, .. }, .. })
    });
    // Unknown unprotected TLVs outside the signed-metadata types are ignored, as MCUboot does.
    let extra = with_unprotected(
        &bytes,
        &image,
        &[(types::SHA256, &hash), (types::KEYHASH, &keyhash), (types::ED25519, &sig), (0x00b7, b"note")],
    );
    verify_bytes(&extra, &trust).unwrap();

    for flags in [0x1u32, 0x200, 0x400, 0x800, 0x4 | 0x8, 0x20 | 0x100, 0x8000_0000] {
        let mut bad = bytes.clone();
        bad[16..20].copy_from_slice(&flags.to_le_bytes());
        let err = Image::parse(&bad, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFlags { .. }), "{flags:#x}: {err}");
    }
    // A protected area the header does not announce, and one of the wrong size.
    let mut bad = bytes.clone();
    bad[10..12].copy_from_slice(&0u16.to_le_bytes());
    assert!(matches!(
        Image::parse(&bad, &Limits::default()),
        Err(Error::Tlv { kind: TlvProblem::ProtectedSizeMismatch { .. }, .. })
    ));
    // A TLV area larger than the limit.
    let limits = Limits { max_tlv_area: 64, ..Limits::default() };
    assert!(matches!(
        Image::parse(&bytes, &limits),
        Err(Error::Tlv { kind: TlvProblem::AreaTooLarge { .. }, .. })
    ));
}

/// A source that changes between verification and a later pass is caught.
#[test]
fn source_changed_after_verification() {
    let Small { bytes, trust, .. } = small(KeyAlgorithm::EcdsaP256);
    let verified = verify_bytes(&bytes, &trust).unwrap();
    let mut changed = bytes.clone();
    let hdr = verified.header().hdr_size as usize;
    changed[hdr] ^= 1;
    let err = verified.write_payload(&mut Cursor::new(&changed), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::SourceChanged), "{err}");
    let mut changed = bytes.clone();
    changed[20] ^= 1; // version byte: header differs from the parsed one
    let err = verified.write_decrypted_image(&mut Cursor::new(&changed), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::SourceChanged), "{err}");
}

/// The payload reader must deliver exactly the announced length.
#[test]
fn payload_length_must_match() {
    let signer = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
    let o = SignOptions::new("1.0.0".parse().unwrap());
    let data = payload(100);
    let err = sign(&signer, &o, &data[..], 101, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::PayloadLength { expected: 101, actual: 100 }), "{err}");
    let err = sign(&signer, &o, &data[..], 99, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::PayloadLength { expected: 99, actual: 100 }), "{err}");
    let mut o = SignOptions::new("1.0.0".parse().unwrap());
    o.slot = Some(SlotLayout::new(0x100));
    let err = sign(&signer, &o, &data[..], 100, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::ImageTooLarge { max: 0x100, .. }), "{err}");
    let mut o = SignOptions::new("1.0.0".parse().unwrap());
    o.custom_tlvs = vec![(0x50, vec![1])];
    assert!(matches!(sign(&signer, &o, &data[..], 100, &mut Vec::new()), Err(Error::InvalidOption { .. })));
}

/// Encrypted images: any flip in the key wrap fails to unwrap; any flip in the encrypted
/// payload fails the hash over the decrypted plaintext.
#[test]
fn encrypted_image_flips_are_refused() {
    use ironclad_image::hazmat::SoftwareAgreementKey;
    let signer = SoftwareSigner::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let trust = TrustAnchors::with_key(signer.public_key().clone()).unwrap();
    for alg in [KeyAlgorithm::X25519, KeyAlgorithm::EcdhP256] {
        let device = SoftwareAgreementKey::generate(alg).unwrap();
        let mut o = SignOptions::new("1.0.0".parse().unwrap());
        o.encryption = Some(Encryption {
            recipient: device.public_key().clone(),
            content_key: ContentKey::generate(Cipher::Aes128Ctr).unwrap(),
        });
        let bytes = sign_bytes(&signer, &o, &payload(48));
        let image = Image::parse(&bytes, &Limits::default()).unwrap();
        decrypt_verify_bytes(&bytes, &trust, &device).unwrap();
        let wrap = value_range(image.key_wrap_tlv().unwrap());
        let hdr = image.header().hdr_size as usize;
        let enc_payload = hdr..hdr + image.header().img_size as usize;
        for i in wrap.clone().chain(enc_payload.clone()) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let err = decrypt_verify_bytes(&bad, &trust, &device).expect_err("flip accepted");
            if enc_payload.contains(&i) {
                assert!(matches!(err, Error::HashMismatch { .. }), "{alg} {i:#x}: {err}");
            } else {
                assert!(
                    matches!(
                        err,
                        Error::KeyUnwrapFailed | Error::Tlv { kind: TlvProblem::BadKeyWrap(_), .. }
                    ),
                    "{alg} {i:#x}: {err}"
                );
            }
        }
    }
}
