//! Log-key delivery: wrapped to the device's X25519 key, unwrapped through the agreement trait.

use aws_lc_rs::{agreement, hkdf};
use coset::{CoseEncrypt, TaggedCborSerializable};
use ironclad_proto::{AgreementKey, Error, LogKey, unwrap_log_key, wrap_log_key};

use crate::common::DEVICE;

/// A device X25519 key in memory (the secure element's role in tests).
pub struct TestX25519 {
    pub raw: [u8; 32],
    key: agreement::PrivateKey,
}

impl TestX25519 {
    pub fn new() -> Self {
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).unwrap();
        Self { raw, key: agreement::PrivateKey::from_private_key(&agreement::X25519, &raw).unwrap() }
    }

    pub fn public(&self) -> Vec<u8> {
        self.key.compute_public_key().unwrap().as_ref().to_vec()
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl AgreementKey for TestX25519 {
    fn agree_and_derive(&self, peer: &[u8], salt: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), String> {
        agreement::agree(
            &self.key,
            agreement::UnparsedPublicKey::new(&agreement::X25519, peer),
            "ecdh",
            |secret| {
                hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
                    .extract(secret)
                    .expand(&[info], Len(out.len()))
                    .and_then(|okm| okm.fill(out))
                    .map_err(|_| "hkdf")
            },
        )
        .map_err(str::to_owned)
    }
}

#[test]
fn wrap_and_unwrap() {
    let device = TestX25519::new();
    let key = LogKey::generate("log-dev-0001-1").unwrap();
    let wrapped = wrap_log_key(&key, DEVICE, &device.public()).unwrap();
    let got = unwrap_log_key(&wrapped, DEVICE, &device).unwrap();
    assert_eq!((got.id(), got.secret_bytes()), (key.id(), key.secret_bytes()));
    // The secret is not in the message in clear.
    assert!(!wrapped.windows(32).any(|w| w == key.secret_bytes()));
    // Fresh ephemeral key and IV each time.
    assert_ne!(wrap_log_key(&key, DEVICE, &device.public()).unwrap(), wrapped);
}

#[test]
fn refusals() {
    let device = TestX25519::new();
    let key = LogKey::generate("log-1").unwrap();
    let wrapped = wrap_log_key(&key, DEVICE, &device.public()).unwrap();
    let failed = Error::DecryptFailed { what: "key delivery" };
    // Another device id (external AAD), another device key.
    assert_eq!(unwrap_log_key(&wrapped, "dev-0002", &device).unwrap_err(), failed);
    assert_eq!(unwrap_log_key(&wrapped, DEVICE, &TestX25519::new()).unwrap_err(), failed);
    // Altered ciphertext, altered ephemeral key, altered recipient header.
    let mutate = |f: &dyn Fn(&mut CoseEncrypt)| {
        let mut m = CoseEncrypt::from_tagged_slice(&wrapped).unwrap();
        f(&mut m);
        m.to_tagged_vec().unwrap()
    };
    let bad = mutate(&|m| m.ciphertext.as_mut().unwrap()[0] ^= 1);
    assert_eq!(unwrap_log_key(&bad, DEVICE, &device).unwrap_err(), failed);
    let bad = mutate(&|m| m.unprotected.iv[0] ^= 1);
    assert_eq!(unwrap_log_key(&bad, DEVICE, &device).unwrap_err(), failed);
    let bad = mutate(&|m| m.recipients.clear());
    assert!(matches!(unwrap_log_key(&bad, DEVICE, &device).unwrap_err(), Error::Malformed { .. }));
    let bad = mutate(&|m| {
        m.recipients[0].protected.original_data = None;
        m.recipients[0].protected.header.alg =
            Some(coset::Algorithm::Assigned(coset::iana::Algorithm::ECDH_ES_A256KW));
    });
    assert!(matches!(unwrap_log_key(&bad, DEVICE, &device).unwrap_err(), Error::WrongAlgorithm { .. }));
    let mut trailing = wrapped.clone();
    trailing.push(0);
    assert!(matches!(unwrap_log_key(&trailing, DEVICE, &device).unwrap_err(), Error::TrailingBytes { .. }));
    assert!(matches!(unwrap_log_key(&vec![0; 4096], DEVICE, &device).unwrap_err(), Error::TooLarge { .. }));
    assert!(wrap_log_key(&key, DEVICE, &[9; 31]).is_err());
}
