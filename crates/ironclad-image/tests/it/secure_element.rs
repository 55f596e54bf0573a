//! The production path: mastering keys and firmware-decryption keys inside a secure element
//! (`MemorySe` here; any backend behind `SecureElement` works the same), and streaming.

use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use ironclad_image::*;
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};

use crate::common::*;

fn se_key(se: &Arc<dyn SecureElement>, name: &str, alg: KeyAlgorithm) -> Label {
    let id = Label::new(name).unwrap();
    se.generate_key(&id, alg).unwrap();
    id
}

/// A KeyHandle signs images (both algorithms); an SeAgreementKey unwraps them (both wraps,
/// both ciphers): ECDH and HKDF happen inside the element through `agree_and_derive`.
#[test]
fn secure_element_keys_sign_and_decrypt() {
    let server: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let device: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let input = payload(4321);
    for (sig_alg, wrap_alg, cipher) in [
        (KeyAlgorithm::Ed25519, KeyAlgorithm::X25519, Cipher::Aes128Ctr),
        (KeyAlgorithm::Ed25519, KeyAlgorithm::EcdhP256, Cipher::Aes256Ctr),
        (KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdhP256, Cipher::Aes128Ctr),
        (KeyAlgorithm::EcdsaP256, KeyAlgorithm::X25519, Cipher::Aes256Ctr),
    ] {
        let name = format!("{sig_alg}-{wrap_alg}-{cipher:?}").to_lowercase();
        let mastering =
            KeyHandle::open(server.clone(), &se_key(&server, &format!("m-{name}"), sig_alg)).unwrap();
        let fw_key =
            SeAgreementKey::open(device.clone(), &se_key(&device, &format!("d-{name}"), wrap_alg)).unwrap();
        let mut o = SignOptions::new("3.1.4+15".parse().unwrap());
        o.security_counter = Some(42);
        o.encryption = Some(Encryption {
            recipient: fw_key.public_key().clone(),
            content_key: ContentKey::generate(cipher).unwrap(),
        });
        let image = sign_bytes(&mastering, &o, &input);
        let trust = TrustAnchors::with_key(mastering.public_key().clone()).unwrap();
        let verified = decrypt_verify_bytes(&image, &trust, &fw_key).unwrap();
        assert_eq!(verified.signer(), mastering.public_key());
        assert_eq!(verified.security_counter(), Some(42));
        assert_eq!(&payload_of(&verified, &image)[..input.len()], &input[..]);
        // Another device's key cannot unwrap it.
        let other =
            SeAgreementKey::open(device.clone(), &se_key(&device, &format!("o-{name}"), wrap_alg)).unwrap();
        let parsed = Image::parse(&image, &Limits::default()).unwrap();
        assert!(matches!(parsed.unwrap_content_key(&other), Err(Error::KeyUnwrapFailed)));
    }
    // Keys of the wrong kind are refused with a clear error.
    let signing = se_key(&device, "not-for-ecdh", KeyAlgorithm::Ed25519);
    assert!(matches!(SeAgreementKey::open(device.clone(), &signing), Err(Error::WrongKeyType { .. })));
}

/// A payload generator: `len` bytes of a pattern without holding them.
struct Pattern {
    left: u64,
    state: u8,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.left.min(buf.len() as u64)) as usize;
        for b in &mut buf[..n] {
            self.state = self.state.wrapping_mul(31).wrapping_add(7);
            *b = self.state;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Signing, encrypting, verifying and decrypting stream: a 48 MiB payload goes from a
/// generator through a file and back without ever being held in memory.
#[test]
fn large_images_stream_through_files() {
    const LEN: u64 = 48 << 20;
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let mastering = KeyHandle::open(se.clone(), &se_key(&se, "mastering", KeyAlgorithm::EcdsaP256)).unwrap();
    let fw_key = SeAgreementKey::open(se.clone(), &se_key(&se, "fw", KeyAlgorithm::X25519)).unwrap();
    let mut o = SignOptions::new("1.0.0".parse().unwrap());
    o.header_size = 0x200;
    o.encryption = Some(Encryption {
        recipient: fw_key.public_key().clone(),
        content_key: ContentKey::generate(Cipher::Aes256Ctr).unwrap(),
    });
    let mut file = tempfile::tempfile().unwrap();
    let signed =
        sign(&mastering, &o, Pattern { left: LEN, state: 1 }, LEN, std::io::BufWriter::new(&mut file))
            .unwrap();
    assert_eq!(u64::from(signed.header.img_size), LEN);

    let trust = TrustAnchors::with_key(mastering.public_key().clone()).unwrap();
    let image = Image::read(&mut file, &Limits::default()).unwrap();
    let verified = image.decrypt_verify(&mut file, &trust, &fw_key).unwrap();
    assert_eq!(verified.digest(), &signed.digest);

    // Decrypt into a sink that compares with the generator as it goes.
    struct Compare(Pattern, u64);
    impl Write for Compare {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut expected = vec![0u8; buf.len()];
            self.0.read_exact(&mut expected)?;
            assert!(expected == buf, "plaintext differs near byte {}", self.1);
            self.1 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Compare(Pattern { left: LEN, state: 1 }, 0);
    assert_eq!(verified.write_payload(&mut file, &mut sink).unwrap(), LEN);
    assert_eq!(sink.1, LEN);

    // And the same in memory through Cursor, for good measure on the header/protected checks.
    let mut bytes = Vec::new();
    std::io::copy(&mut std::io::Seek::rewind(&mut file).map(|_| &mut file).unwrap(), &mut bytes).unwrap();
    let parsed = Image::read(&mut Cursor::new(&bytes), &Limits::for_slot(LEN + 0x1000)).unwrap();
    assert_eq!(parsed.header().img_size as u64, LEN);
}

/// A source that hands out 1 to 4,099 bytes per read, never a whole chunk.
struct Dribble<'a> {
    data: &'a [u8],
    next: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.next = (self.next * 7 + 13) % 4099 + 1;
        let n = self.next.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Short reads from the payload source change nothing: the same Ed25519 image (deterministic)
/// as from a slice, for a payload large enough to be hashed on the second thread and one small
/// enough to be hashed inline, plain and encrypted with the same content key.
#[test]
fn short_reads_give_the_same_image() {
    let signer = ironclad_image::hazmat::SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
    let recipient = ironclad_image::hazmat::SoftwareAgreementKey::generate(KeyAlgorithm::X25519).unwrap();
    for len in [100_000usize, (2 << 20) + 3] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
        let mut o = SignOptions::new("1.0.0".parse().unwrap());
        o.header_size = 0x200;
        o.security_counter = Some(1);
        let mut from_slice = Vec::new();
        sign(&signer, &o, &data[..], len as u64, &mut from_slice).unwrap();
        let mut dribbled = Vec::new();
        sign(&signer, &o, Dribble { data: &data, next: 0 }, len as u64, &mut dribbled).unwrap();
        assert!(from_slice == dribbled, "{len} bytes: short reads changed the image");

        let trust = TrustAnchors::with_key(signer.public_key().clone()).unwrap();
        let mut src = Cursor::new(&dribbled);
        let verified = Image::read(&mut src, &Limits::default()).unwrap().verify(&mut src, &trust).unwrap();
        let mut all = dribbled[..0x200].to_vec();
        all.extend_from_slice(&data);
        let protected_len = verified.header().protect_tlv_size as usize;
        all.extend_from_slice(&dribbled[0x200 + len..0x200 + len + protected_len]);
        assert_eq!(
            verified.digest().as_slice(),
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &all).as_ref()
        );

        o.encryption = Some(Encryption {
            recipient: recipient.public_key().clone(),
            content_key: ContentKey::from_bytes(&[0x42; 16]).unwrap(),
        });
        let mut a = Vec::new();
        sign(&signer, &o, &data[..], len as u64, &mut a).unwrap();
        let mut b = Vec::new();
        sign(&signer, &o, Dribble { data: &data, next: 0 }, len as u64, &mut b).unwrap();
        // The key wraps differ (fresh ephemeral keys); everything before them is identical.
        let signed = a.len().min(b.len()) - 200;
        assert!(a[..signed] == b[..signed], "{len} bytes: encrypted images differ");
        let verified = Image::read(&mut Cursor::new(&b), &Limits::default())
            .unwrap()
            .decrypt_verify(&mut Cursor::new(&b), &trust, &recipient)
            .unwrap();
        let mut plain = Vec::new();
        verified.write_payload(&mut Cursor::new(&b), &mut plain).unwrap();
        assert_eq!(&plain[..len], &data[..]);
    }
}
