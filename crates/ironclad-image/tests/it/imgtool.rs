//! Interop with imgtool 2.5.0, both directions: imgtool's images verify (and decrypt) in
//! ironclad; ironclad's images pass `imgtool verify`; Ed25519 images are byte-identical.

use std::io::Cursor;

use ironclad_image::*;

use crate::common::*;

const SIZES: [usize; 4] = [0, 1, 1000, 1 << 20];

fn options(hdr: u16, slot: u64) -> SignOptions {
    let mut o = SignOptions::new("1.2.3+4".parse().unwrap());
    o.header_size = hdr;
    o.security_counter = Some(7);
    o.slot = Some(SlotLayout::new(slot));
    o
}

fn imgtool_args(hdr: u16, slot: u64) -> (String, String) {
    (format!("{hdr:#x}"), format!("{slot:#x}"))
}

/// imgtool's Ed25519 images verify in ironclad, and ironclad produces the same bytes from the
/// same key and inputs: all payload sizes, both header sizes, with a security counter.
#[test]
fn ed25519_images_are_byte_identical_to_imgtool() {
    let Some(t) = Imgtool::new() else { return };
    let key = t.key("ed", Kind::Ed25519);
    let signer = signer(&key);
    for size in SIZES {
        for hdr in [0x20u16, 0x200] {
            let slot = 0x20_0000;
            let (h, sl) = imgtool_args(hdr, slot);
            let input = payload(size);
            let theirs = t.sign(
                &format!("ed-{size}-{hdr}"),
                &key,
                &input,
                &["-H", &h, "-S", &sl, "-v", "1.2.3+4", "-s", "7"],
            );
            let verified = verify_bytes(&theirs, &trust(&key)).unwrap();
            assert_eq!(verified.version(), Version::new(1, 2, 3, 4));
            assert_eq!(verified.security_counter(), Some(7));
            assert_eq!(payload_of(&verified, &theirs), input);
            let ours = sign_bytes(&signer, &options(hdr, slot), &input);
            assert!(ours == theirs, "Ed25519 image differs from imgtool's (size {size}, header {hdr:#x})");
        }
    }
}

/// imgtool's ECDSA P-256 images verify in ironclad; ironclad's pass `imgtool verify`, and agree
/// with imgtool's everywhere but in the (randomised) signature.
#[test]
fn ecdsa_p256_images_interoperate() {
    let Some(t) = Imgtool::new() else { return };
    let key = t.key("ec", Kind::EcdsaP256);
    let signer = signer(&key);
    for size in SIZES {
        for hdr in [0x20u16, 0x200] {
            let slot = 0x20_0000;
            let (h, sl) = imgtool_args(hdr, slot);
            let input = payload(size);
            let theirs = t.sign(
                &format!("ec-{size}-{hdr}"),
                &key,
                &input,
                &["-H", &h, "-S", &sl, "-v", "1.2.3+4", "-s", "7"],
            );
            let verified = verify_bytes(&theirs, &trust(&key)).unwrap();
            assert_eq!(payload_of(&verified, &theirs), input);
            let ours = sign_bytes(&signer, &options(hdr, slot), &input);
            assert!(
                t.verifies(&format!("ours-ec-{size}-{hdr}.bin"), &key.public, &ours),
                "size {size} hdr {hdr:#x}"
            );
            // Same signed region and hash; the signature TLV differs only because ECDSA is randomised.
            let signed_len = verified.header().signed_len() as usize;
            assert_eq!(ours[..signed_len + 2], theirs[..signed_len + 2]);
            assert_eq!(
                ours[signed_len + 4..signed_len + 4 + 36],
                theirs[signed_len + 4..signed_len + 4 + 36]
            );
        }
    }
}

/// `--public-key-format full` (PUBKEY TLV) in both directions, against a full key and against a
/// key-hash-only anchor (MCUBOOT_HW_KEY).
#[test]
fn full_public_key_format() {
    let Some(t) = Imgtool::new() else { return };
    let key = t.key("ec", Kind::EcdsaP256);
    let input = payload(100);
    let theirs =
        t.sign("full", &key, &input, &["-S", "0x20000", "-v", "2.0.0", "--public-key-format", "full"]);
    verify_bytes(&theirs, &trust(&key)).unwrap();
    let mut hash_only = TrustAnchors::new();
    hash_only.add_key_hash(key_hash(&key.public_key).unwrap());
    verify_bytes(&theirs, &hash_only).unwrap();
    let mut o = SignOptions::new("2.0.0".parse().unwrap());
    o.key_id = KeyIdFormat::Full;
    let ours = sign_bytes(&signer(&key), &o, &input);
    assert!(t.verifies("ours-full.bin", &key.public, &ours));
    // A KEYHASH image cannot be checked against a hash-only anchor: the device has no key.
    let keyhash_image = sign_bytes(&signer(&key), &SignOptions::new("2.0.0".parse().unwrap()), &input);
    assert!(matches!(verify_bytes(&keyhash_image, &hash_only), Err(Error::UnknownKey)));
}

/// `--pad` with `--confirm` and `--test`, several write alignments: ironclad reads the trailer,
/// verifies the image, and writes the same bytes (Ed25519).
#[test]
fn padded_images_with_confirm_and_test() {
    let Some(t) = Imgtool::new() else { return };
    let key = t.key("ed", Kind::Ed25519);
    let input = payload(1000);
    for (flag, pad, image_ok) in
        [("--confirm", Pad::Confirm, 0x01), ("--test", Pad::Test, 0xff), ("--pad", Pad::Test, 0xff)]
    {
        for align in [1u8, 4, 32] {
            let a = align.to_string();
            let theirs = t.sign(
                &format!("pad{flag}{align}"),
                &key,
                &input,
                &["-H", "0x200", "-S", "0x20000", "--align", &a, "-v", "1.0.0", "-s", "1", flag],
            );
            assert_eq!(theirs.len(), 0x20000);
            let image = Image::parse(&theirs, &Limits::for_slot(0x20000)).unwrap();
            let info = image.inspect();
            let trailer = info.trailer.expect("trailer");
            assert_eq!(trailer.image_ok, Some(image_ok), "{flag} align {align}");
            assert_eq!(trailer.max_align, Some(u16::from(align.max(8))));
            verify_bytes(&theirs, &trust(&key)).unwrap();

            let mut o = options(0x200, 0x20000);
            o.version = Version::new(1, 0, 0, 0);
            o.security_counter = Some(1);
            o.slot = Some(SlotLayout { align, ..SlotLayout::new(0x20000) });
            o.pad = Some(pad);
            assert!(sign_bytes(&signer(&key), &o, &input) == theirs, "{flag} align {align}");
        }
    }
}

/// Every encryption imgtool offers that ironclad implements: X25519 and P-256 key wraps, AES-128
/// and AES-256, with Ed25519 and ECDSA signers. ironclad unwraps with the recipient's private
/// key, verifies while decrypting, and its decrypted image equals imgtool's `--clear` image in
/// everything but the random key wrap.
#[test]
fn imgtool_encrypted_images_decrypt_in_ironclad() {
    let Some(t) = Imgtool::new() else { return };
    let ed = t.key("ed", Kind::Ed25519);
    let ec = t.key("ec", Kind::EcdsaP256);
    let x = t.key("x", Kind::X25519);
    let p = t.key("p", Kind::EcdhP256);
    let input = payload(1000);
    for (signing, recipient, bits) in
        [(&ed, &x, "128"), (&ed, &x, "256"), (&ed, &p, "128"), (&ec, &p, "128"), (&ec, &p, "256")]
    {
        let name =
            format!("{}-{}-{bits}", signing.private.display(), recipient.private.display()).replace('/', "_");
        let args = [
            "-H",
            "0x200",
            "-S",
            "0x20000",
            "-v",
            "1.2.3+4",
            "-s",
            "7",
            "-E",
            s(&recipient.public),
            "--encrypt-keylen",
            bits,
        ];
        let encrypted = t.sign(&format!("{name}-enc"), signing, &input, &args);
        let mut clear_args = args.to_vec();
        clear_args.push("--clear");
        let clear = t.sign(&format!("{name}-clear"), signing, &input, &clear_args);

        let image = Image::parse(&encrypted, &Limits::default()).unwrap();
        let cipher = if bits == "256" { Cipher::Aes256Ctr } else { Cipher::Aes128Ctr };
        assert_eq!(image.cipher(), Some(cipher));
        // Hashing the ciphertext cannot work, and the error says why.
        let err = verify_bytes(&encrypted, &trust(signing)).unwrap_err();
        assert!(matches!(err, Error::HashMismatch { encrypted: true }), "{err}");

        let key = agreement_key(recipient);
        let verified = decrypt_verify_bytes(&encrypted, &trust(signing), &key).unwrap();
        let mut padded = input.clone();
        padded.resize(1008, 0);
        assert_eq!(payload_of(&verified, &encrypted), padded);

        let mut decrypted = Vec::new();
        verified.write_decrypted_image(&mut Cursor::new(&encrypted), &mut decrypted).unwrap();
        let signed = verified.header().signed_len() as usize;
        assert_eq!(decrypted[..signed], clear[..signed], "{name}: plaintext region");
        // The unprotected area's length may differ (ECDSA signatures are 70-72 bytes).
        assert_eq!(decrypted[signed + 4..signed + 40], clear[signed + 4..signed + 40], "{name}: hash TLV");
        // The --clear image verifies as stored, and to the same digest.
        assert_eq!(verify_bytes(&clear, &trust(signing)).unwrap().digest(), verified.digest());
        verify_bytes(&decrypted, &trust(signing)).unwrap();
    }
}

const PY_DECRYPT: &str = r#"
import sys, struct
from cryptography.hazmat.primitives import serialization, hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
img = bytearray(open(sys.argv[1], 'rb').read())
key = serialization.load_pem_private_key(open(sys.argv[2], 'rb').read(), password=None)
_, _, hdr, prot, size, flags = struct.unpack('<IIHHII', img[:20])
keylen = 32 if flags & 8 else 16
off = hdr + size + prot
magic, tot = struct.unpack('<HH', img[off:off + 4])
assert magic == 0x6907
end, off, wrap = off + tot, off + 4, None
while off < end:
    t, l = struct.unpack('<HH', img[off:off + 4])
    if t in (0x32, 0x33):
        wrap = (t, bytes(img[off + 4:off + 4 + l]))
    off += 4 + l
t, v = wrap
if t == 0x33:
    eph, rest = v[:32], v[32:]
    shared = key.exchange(x25519.X25519PublicKey.from_public_bytes(eph))
else:
    eph, rest = v[:65], v[65:]
    shared = key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), eph))
tag, wrapped = rest[:32], rest[32:]
okm = HKDF(algorithm=hashes.SHA256(), length=keylen + 32, salt=None, info=b'MCUBoot_ECIES_v1').derive(shared)
mac = hmac.HMAC(okm[keylen:], hashes.SHA256())
mac.update(wrapped)
mac.verify(tag)
d = Cipher(algorithms.AES(okm[:keylen]), modes.CTR(bytes(16))).decryptor()
content_key = d.update(wrapped) + d.finalize()
d = Cipher(algorithms.AES(content_key), modes.CTR(bytes(16))).decryptor()
img[hdr:hdr + size] = d.update(bytes(img[hdr:hdr + size])) + d.finalize()
open(sys.argv[3], 'wb').write(img)
"#;

/// Decrypts an image independently (Python `cryptography`, the library imgtool uses) and
/// returns the clear image, which `imgtool verify` can then check.
pub fn independent_decrypt(t: &Imgtool, name: &str, image: &[u8], recipient: &KeyFiles) -> Vec<u8> {
    let script = t.write("decrypt.py", PY_DECRYPT.as_bytes());
    let input = t.write(&format!("{name}.enc.bin"), image);
    let output = t.path(&format!("{name}.clear.bin"));
    ironclad_testkit::run_ok(&t.python(), &[s(&script), s(&input), s(&recipient.private), s(&output)]);
    std::fs::read(output).unwrap()
}

/// ironclad's encrypted images decrypt with an independent implementation of the MCUboot ECIES
/// construction, and the result passes `imgtool verify`.
#[test]
fn ironclad_encrypted_images_decrypt_independently() {
    let Some(t) = Imgtool::new() else { return };
    let ed = t.key("ed", Kind::Ed25519);
    let ec = t.key("ec", Kind::EcdsaP256);
    let x = t.key("x", Kind::X25519);
    let p = t.key("p", Kind::EcdhP256);
    let input = payload(5000);
    for (signing, recipient, cipher) in [
        (&ed, &x, Cipher::Aes128Ctr),
        (&ed, &x, Cipher::Aes256Ctr),
        (&ec, &p, Cipher::Aes128Ctr),
        (&ec, &p, Cipher::Aes256Ctr),
    ] {
        let mut o = options(0x200, 0x20000);
        o.encryption = Some(Encryption {
            recipient: recipient.public_key.clone(),
            content_key: ContentKey::generate(cipher).unwrap(),
        });
        let ours = sign_bytes(&signer(signing), &o, &input);
        let name = format!("{:?}-{cipher:?}", recipient.public_key.algorithm());
        let clear = independent_decrypt(&t, &name, &ours, recipient);
        assert!(t.verifies(&format!("{name}.clear-check.bin"), &signing.public, &clear), "{name}");
        let verified = decrypt_verify_bytes(&ours, &trust(signing), &agreement_key(recipient)).unwrap();
        assert_eq!(&payload_of(&verified, &ours)[..input.len()], &input[..]);
    }
}

fn normalise(mut ours: serde_json::Value) -> serde_json::Value {
    // dumpinfo writes {} where inspect has null, and does not know our product-class name.
    for (section, key) in [("tlv_area", "tlv_hdr_prot"), ("", "trailer")] {
        let slot = if section.is_empty() { &mut ours[key] } else { &mut ours[section][key] };
        if slot.is_null() {
            *slot = serde_json::json!({});
        }
    }
    if let Some(tlvs) = ours["tlv_area"]["tlvs_prot"].as_array_mut() {
        for tlv in tlvs {
            if tlv["type_name"] == "IRONCLAD_PRODUCT_CLASS" {
                tlv["type_name"] = "UNKNOWN".into();
            }
        }
    }
    ours.as_object_mut().unwrap().remove("summary");
    ours
}

/// `imgtool dumpinfo -f json` and `inspect` agree on header, TLVs and trailer, for plain,
/// encrypted, product-class and padded images from both tools.
#[test]
fn dumpinfo_agrees_with_inspect() {
    let Some(t) = Imgtool::new() else { return };
    let ed = t.key("ed", Kind::Ed25519);
    let x = t.key("x", Kind::X25519);
    let input = payload(3000);
    let class = "00112233445566778899aabbccddeeff";
    let class_arg = format!("0x{class}");
    let mut images = vec![
        t.sign("plain", &ed, &input, &["-S", "0x20000", "-v", "1.2.3+4"]),
        t.sign(
            "class",
            &ed,
            &input,
            &["-S", "0x20000", "-v", "1.2.3", "-s", "9", "--custom-tlv", "0x1ca0", &class_arg],
        ),
        t.sign("enc", &ed, &input, &["-H", "0x200", "-S", "0x20000", "-v", "1.0.0", "-E", s(&x.public)]),
        t.sign(
            "confirm",
            &ed,
            &input,
            &["-S", "0x8000", "-v", "1.0.0", "--align", "16", "--confirm", "-E", s(&x.public)],
        ),
    ];
    let mut o = options(0x200, 0x8000);
    o.product_class = Some(hex::decode(class).unwrap().try_into().unwrap());
    o.custom_tlvs = vec![(0x00a5, b"vendor".to_vec())];
    o.encryption = Some(Encryption {
        recipient: x.public_key.clone(),
        content_key: ContentKey::generate(Cipher::Aes256Ctr).unwrap(),
    });
    o.pad = Some(Pad::Confirm);
    images.push(sign_bytes(&signer(&ed), &o, &input));

    for (i, image) in images.iter().enumerate() {
        let mut theirs = t.dumpinfo(&format!("info{i}.bin"), image);
        theirs.as_object_mut().unwrap().remove("filename");
        let parsed = Image::parse(image, &Limits::default()).unwrap();
        let ours = normalise(serde_json::to_value(parsed.inspect()).unwrap());
        // dumpinfo's trailer has no max_align; ours does.
        let mut ours = ours;
        if let Some(trailer) = ours["trailer"].as_object_mut() {
            trailer.remove("max_align");
        }
        assert_eq!(ours, theirs, "image {i}");
    }
    let class_image = Image::parse(&images[1], &Limits::default()).unwrap();
    assert_eq!(class_image.product_class(), Some(hex::decode(class).unwrap().try_into().unwrap()));
    assert_eq!(
        class_image.inspect().summary.product_class.as_deref(),
        Some("00112233-4455-6677-8899-aabbccddeeff")
    );
}

/// Key files from `imgtool keygen` load into the hazmat key types, and `getpub`/`getpubhash`
/// agree with ironclad's SPKI and key hash.
#[test]
fn imgtool_keygen_files_load() {
    let Some(t) = Imgtool::new() else { return };
    for ty in ["ed25519", "ecdsa-p256", "x25519"] {
        let key = t.path(&format!("{ty}.pem"));
        let public = t.path(&format!("{ty}.pub.pem"));
        t.ok(&["keygen", "-k", s(&key), "-t", ty]);
        t.ok(&["getpub", "-k", s(&key), "-e", "pem", "-o", s(&public)]);
        let der = pem_der(&key);
        let spki = pem_der(&public);
        if ty == "x25519" {
            let k = hazmat::SoftwareAgreementKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(k.public_key(), &recipient_from_spki(&spki).unwrap());
        } else {
            let k = hazmat::SoftwareSigner::from_pkcs8_der(&der).unwrap();
            assert_eq!(k.public_key(), &signing_key_from_spki(&spki).unwrap());
            let c = t.ok(&["getpubhash", "-k", s(&key)]);
            let ours: Vec<String> =
                key_hash(k.public_key()).unwrap().iter().map(|b| format!("0x{b:02x}")).collect();
            let theirs: String = c.chars().filter(|c| !c.is_whitespace()).collect();
            assert!(theirs.contains(&ours.join(",")), "{ty}: {c}");
        }
    }
}

/// Refusals imgtool can produce: an unknown non-vendor TLV in the protected area, and an
/// image whose img_size claims more than the slot.
#[test]
fn refuses_imgtool_images_with_unknown_critical_tlv() {
    let Some(t) = Imgtool::new() else { return };
    let ed = t.key("ed", Kind::Ed25519);
    let image = t.sign(
        "crit",
        &ed,
        &payload(10),
        &["-S", "0x20000", "-v", "1.0.0", "--custom-tlv", "0x0100", "0x01"],
    );
    let err = Image::parse(&image, &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::UnknownCriticalTlv { tlv_type: 0x0100, .. }), "{err}");
}

/// Images of several megabytes go through many 1 MiB chunks (the last one partial), hashed on a
/// second thread while the payload is read, encrypted and written: the Ed25519 image is still
/// byte-identical to imgtool's; imgtool's encrypted image decrypts and verifies in ironclad;
/// ironclad's encrypted image decrypts independently (Python `cryptography`) and in ironclad to
/// images that pass `imgtool verify`.
#[test]
fn multi_megabyte_images_across_chunk_boundaries() {
    let Some(t) = Imgtool::new() else { return };
    let ed = t.key("ed", Kind::Ed25519);
    let x = t.key("x", Kind::X25519);
    let input = payload((3 << 20) + 12_345);
    let slot = 0x40_0000u64;
    let (h, sl) = imgtool_args(0x200, slot);
    let base = ["-H", &h, "-S", &sl, "-v", "1.2.3+4", "-s", "7"];

    let theirs = t.sign("big", &ed, &input, &base);
    let ours = sign_bytes(&signer(&ed), &options(0x200, slot), &input);
    assert!(ours == theirs, "multi-chunk Ed25519 image differs from imgtool's");
    assert!(t.verifies("big-ours.bin", &ed.public, &ours));
    assert_eq!(payload_of(&verify_bytes(&theirs, &trust(&ed)).unwrap(), &theirs), input);

    let mut enc_args = base.to_vec();
    enc_args.extend(["-E", s(&x.public)]);
    let theirs_enc = t.sign("big-enc", &ed, &input, &enc_args);
    let verified = decrypt_verify_bytes(&theirs_enc, &trust(&ed), &agreement_key(&x)).unwrap();
    let mut padded = input.clone();
    padded.resize(input.len().next_multiple_of(16), 0);
    assert_eq!(payload_of(&verified, &theirs_enc), padded);

    let mut o = options(0x200, slot);
    o.encryption = Some(Encryption {
        recipient: x.public_key.clone(),
        content_key: ContentKey::generate(Cipher::Aes256Ctr).unwrap(),
    });
    let ours_enc = sign_bytes(&signer(&ed), &o, &input);
    let clear = independent_decrypt(&t, "big-ours", &ours_enc, &x);
    assert!(t.verifies("big-ours.clear-check.bin", &ed.public, &clear));
    let verified = decrypt_verify_bytes(&ours_enc, &trust(&ed), &agreement_key(&x)).unwrap();
    let mut decrypted = Vec::new();
    verified.write_decrypted_image(&mut Cursor::new(&ours_enc), &mut decrypted).unwrap();
    assert!(decrypted == clear, "ironclad's and Python's decryptions differ");
}
