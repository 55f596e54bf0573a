//! Re-wrap without re-signing: one signed release, re-wrapped per device.

use std::io::Cursor;
use std::sync::Arc;

use ironclad_image::*;
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};

use crate::common::*;

fn key(se: &Arc<dyn SecureElement>, name: &str, alg: KeyAlgorithm) -> SeAgreementKey {
    let id = Label::new(name).unwrap();
    se.generate_key(&id, alg).unwrap();
    SeAgreementKey::open(se.clone(), &id).unwrap()
}

struct Release {
    image: Vec<u8>,
    trust: TrustAnchors,
    content_key: ContentKey,
}

fn release(server: &Arc<dyn SecureElement>, to: &SeAgreementKey, pad: bool) -> Release {
    let id = Label::new(format!("mastering-{}", to.id())).unwrap();
    server.generate_key(&id, KeyAlgorithm::Ed25519).unwrap();
    let mastering = KeyHandle::open(server.clone(), &id).unwrap();
    let content_key = ContentKey::generate(Cipher::Aes128Ctr).unwrap();
    let mut o = SignOptions::new("2.0.0+1".parse().unwrap());
    o.security_counter = Some(2);
    o.header_size = 0x200;
    o.encryption = Some(Encryption { recipient: to.public_key().clone(), content_key: content_key.clone() });
    if pad {
        o.slot = Some(SlotLayout::new(0x10000));
        o.pad = Some(Pad::Confirm);
    }
    let image = sign_bytes(&mastering, &o, &payload(3000));
    Release { image, trust: TrustAnchors::with_key(mastering.public_key().clone()).unwrap(), content_key }
}

fn rewrap_bytes(verified: &VerifiedImage, source: &[u8], to: &SeAgreementKey) -> Vec<u8> {
    let mut out = Vec::new();
    let n = verified.rewrap(&mut Cursor::new(source), &mut out, to.public_key()).unwrap();
    assert_eq!(n, out.len() as u64);
    out
}

/// The server unwraps with its own key (inside its secure element), re-wraps to each device;
/// each device decrypts and verifies; the signed region is byte-identical; the old recipient
/// can no longer unwrap; wraps can change kind (X25519 ↔ P-256).
#[test]
fn rewrap_with_the_servers_key() {
    let server: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let device: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let server_key = key(&server, "release-x25519", KeyAlgorithm::X25519);
    let rel = release(&server, &server_key, false);

    let parsed = Image::parse(&rel.image, &Limits::default()).unwrap();
    let content_key = parsed.unwrap_content_key(&server_key).unwrap();
    assert_eq!(content_key, rel.content_key);
    let verified = parsed.verify_encrypted(&mut Cursor::new(&rel.image), &rel.trust, &content_key).unwrap();

    for (name, alg) in [("dev-a", KeyAlgorithm::X25519), ("dev-b", KeyAlgorithm::EcdhP256)] {
        let dev_key = key(&device, name, alg);
        let rewrapped = rewrap_bytes(&verified, &rel.image, &dev_key);
        let signed = verified.header().signed_len() as usize;
        assert_eq!(rewrapped[..signed], rel.image[..signed], "signed region changed");
        let mine = decrypt_verify_bytes(&rewrapped, &rel.trust, &dev_key).unwrap();
        assert_eq!(mine.digest(), verified.digest());
        let wrap = Image::parse(&rewrapped, &Limits::default()).unwrap().key_wrap_tlv().unwrap().tlv_type;
        assert_eq!(wrap, WrapKind::for_recipient(dev_key.public_key()).unwrap().tlv_type());
        let err = decrypt_verify_bytes(&rewrapped, &rel.trust, &server_key).unwrap_err();
        assert!(matches!(err, Error::KeyUnwrapFailed | Error::KeyMismatch(_)), "{err}");
    }
}

/// A holder of the plain content key (kept from mastering) re-wraps without any ECDH key.
#[test]
fn rewrap_with_the_plain_content_key() {
    let server: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let original = key(&server, "original", KeyAlgorithm::EcdhP256);
    let rel = release(&server, &original, false);
    let stored = hazmat::content_key_bytes(&rel.content_key).to_vec();
    let content_key = ContentKey::from_bytes(&stored).unwrap();
    let verified = Image::parse(&rel.image, &Limits::default())
        .unwrap()
        .verify_encrypted(&mut Cursor::new(&rel.image), &rel.trust, &content_key)
        .unwrap();
    let device: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let dev = key(&device, "dev", KeyAlgorithm::X25519);
    let rewrapped = rewrap_bytes(&verified, &rel.image, &dev);
    decrypt_verify_bytes(&rewrapped, &rel.trust, &dev).unwrap();
    // A wrong content key does not verify, so it can never be re-wrapped.
    let wrong = ContentKey::generate(Cipher::Aes128Ctr).unwrap();
    let err = Image::parse(&rel.image, &Limits::default())
        .unwrap()
        .verify_encrypted(&mut Cursor::new(&rel.image), &rel.trust, &wrong)
        .unwrap_err();
    assert!(matches!(err, Error::HashMismatch { encrypted: false }), "{err}");
    // An unencrypted image has nothing to re-wrap.
    let plain = {
        let signer = hazmat::SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
        let bytes = sign_bytes(&signer, &SignOptions::new("1.0.0".parse().unwrap()), b"fw");
        let trust = TrustAnchors::with_key(signer.public_key().clone()).unwrap();
        (verify_bytes(&bytes, &trust).unwrap(), bytes)
    };
    assert!(matches!(
        plain.0.rewrap(&mut Cursor::new(&plain.1), &mut Vec::new(), dev.public_key()),
        Err(Error::NotEncrypted)
    ));
}

/// Slot-padded images keep their length and trailer when the wrap changes size.
#[test]
fn rewrap_keeps_slot_padding_and_trailer() {
    let server: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let x = key(&server, "x", KeyAlgorithm::X25519);
    let p = key(&server, "p", KeyAlgorithm::EcdhP256);
    let rel = release(&server, &x, true);
    assert_eq!(rel.image.len(), 0x10000);
    let verified = Image::parse(&rel.image, &Limits::default())
        .unwrap()
        .decrypt_verify(&mut Cursor::new(&rel.image), &rel.trust, &x)
        .unwrap();
    let grown = rewrap_bytes(&verified, &rel.image, &p); // 80 → 113 bytes
    assert_eq!(grown.len(), rel.image.len());
    assert_eq!(grown[grown.len() - 64..], rel.image[rel.image.len() - 64..], "trailer moved");
    let v2 = decrypt_verify_bytes(&grown, &rel.trust, &p).unwrap();
    let back = rewrap_bytes(&v2, &grown, &x); // 113 → 80 bytes
    assert_eq!(back.len(), rel.image.len());
    let info = Image::parse(&back, &Limits::default()).unwrap().inspect();
    assert_eq!(info.trailer.unwrap().image_ok, Some(1));
    decrypt_verify_bytes(&back, &rel.trust, &x).unwrap();
}

/// An imgtool-encrypted release re-wrapped by ironclad decrypts on the new device, and an
/// independent decryption of the result passes `imgtool verify`.
#[test]
fn rewrap_imgtool_release() {
    let Some(t) = Imgtool::new() else { return };
    let signing = t.key("ed", Kind::Ed25519);
    let server = t.key("server", Kind::X25519);
    let device = t.key("device", Kind::EcdhP256);
    let image = t.sign(
        "release",
        &signing,
        &payload(2000),
        &["-H", "0x200", "-S", "0x20000", "-v", "1.0.0", "-E", s(&server.public)],
    );
    let verified = decrypt_verify_bytes(&image, &trust(&signing), &agreement_key(&server)).unwrap();
    let mut rewrapped = Vec::new();
    verified.rewrap(&mut Cursor::new(&image), &mut rewrapped, &device.public_key).unwrap();
    decrypt_verify_bytes(&rewrapped, &trust(&signing), &agreement_key(&device)).unwrap();
    let clear = crate::imgtool::independent_decrypt(&t, "rewrapped", &rewrapped, &device);
    assert!(t.verifies("rewrapped-clear.bin", &signing.public, &clear));
}

/// A release server's fast path: the signed region streamed as stored plus the per-device TLV
/// area is a complete image that the device decrypts and verifies, the same as `rewrap`
/// writes apart from the fresh ephemeral key.
#[test]
fn rewrapped_tlv_area_completes_the_signed_region() {
    let server: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let server_key = key(&server, "release-x25519", KeyAlgorithm::X25519);
    let rel = release(&server, &server_key, false);
    let parsed = Image::parse(&rel.image, &Limits::default()).unwrap();
    let content_key = parsed.unwrap_content_key(&server_key).unwrap();
    let verified = parsed.verify_encrypted(&mut Cursor::new(&rel.image), &rel.trust, &content_key).unwrap();
    let signed = verified.header().signed_len() as usize;
    let device: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    for (name, alg) in [("dev-x", KeyAlgorithm::X25519), ("dev-p", KeyAlgorithm::EcdhP256)] {
        let dev = key(&device, name, alg);
        let area = verified.rewrapped_tlv_area(dev.public_key()).unwrap();
        let mut assembled = rel.image[..signed].to_vec();
        assembled.extend_from_slice(&area);
        let full = rewrap_bytes(&verified, &rel.image, &dev);
        assert_eq!(assembled.len(), full.len());
        assert_eq!(assembled[..signed], full[..signed]);
        let mine = decrypt_verify_bytes(&assembled, &rel.trust, &dev).unwrap();
        assert_eq!(mine.digest(), verified.digest());
        // Each call wraps afresh (a new ephemeral key): callers that need stable bytes keep it.
        assert_ne!(area, verified.rewrapped_tlv_area(dev.public_key()).unwrap());
    }
    let plain = {
        let signer = hazmat::SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
        let bytes = sign_bytes(&signer, &SignOptions::new("1.0.0".parse().unwrap()), b"fw");
        verify_bytes(&bytes, &TrustAnchors::with_key(signer.public_key().clone()).unwrap()).unwrap()
    };
    assert!(matches!(plain.rewrapped_tlv_area(server_key.public_key()), Err(Error::NotEncrypted)));
}
