//! Device authentication in pair-setup, protocol level: the accessory's "certificate" and
//! transcript signature in M4, checked by a verifier that knows the one genuine device key.
//! (X.509 chains against an OEM root are tested in ironclad-hap, over HTTP.)

use std::sync::Arc;

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use ironclad_pair::attestation::{
    AuthenticatedDevice, DeviceAttestation, DeviceAuthVerifier, SeDeviceAttestation, TRANSCRIPT_LABEL,
};
use ironclad_pair::setup::{self, SetupCode};
use ironclad_pair::tlv8::{Tlv8, Tlv8Writer, types};
use ironclad_pair::{Error, PairingStore, Result};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};

use crate::common::{CODE, World};

/// The device key (Ed25519 in a secure element) and a stand-in "certificate" naming its key.
fn device(cert_tag: &[u8]) -> (Arc<SeDeviceAttestation>, [u8; 32]) {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let label = Label::new("device-auth").unwrap();
    se.generate_key(&label, KeyAlgorithm::Ed25519).unwrap();
    let handle = KeyHandle::open(se, &label).unwrap();
    let public: [u8; 32] = handle.public_key().as_bytes().try_into().unwrap();
    // Longer than 255 bytes, so the Certificate item is fragmented; and an "intermediate".
    let leaf = [cert_tag, &public, &[0x5a; 400]].concat();
    (Arc::new(SeDeviceAttestation::new(handle, vec![leaf, vec![0xca; 300]]).unwrap()), public)
}

/// Accepts exactly the certificate chain of `genuine` and a signature by its key.
#[derive(Debug)]
struct TestVerifier {
    genuine: Vec<Vec<u8>>,
    key: [u8; 32],
}

impl DeviceAuthVerifier for TestVerifier {
    fn verify(
        &self,
        certificates: &[Vec<u8>],
        message: &[u8],
        signature: &[u8],
    ) -> Result<AuthenticatedDevice> {
        if certificates != self.genuine.as_slice() {
            return Err(Error::DeviceAuth("unknown certificate".into()));
        }
        assert!(message.starts_with(TRANSCRIPT_LABEL));
        assert_eq!(message.len(), TRANSCRIPT_LABEL.len() + 32 + 64);
        UnparsedPublicKey::new(&ED25519, self.key)
            .verify(message, signature)
            .map_err(|_| Error::DeviceAuth("transcript signature".into()))?;
        Ok(AuthenticatedDevice {
            device_id: "dev-1".into(),
            serial: "01".into(),
            certificates: certificates.to_vec(),
        })
    }
}

/// Runs pair-setup with device authentication required; `tamper` may change M4 in transit.
fn pair(
    w: &mut World,
    attestation: Option<Arc<dyn DeviceAttestation>>,
    verifier: Arc<dyn DeviceAuthVerifier>,
    tamper: impl Fn(Vec<u8>) -> Vec<u8>,
) -> Result<setup::Paired> {
    let acc = w.accessory_m1().with_attestation(attestation);
    let c1 =
        setup::controller::start_with_device_auth(w.controller.clone(), SetupCode::parse(CODE)?, verifier);
    assert_eq!(c1.message, [6, 1, 1, 0, 1, 1], "Method = PairSetupWithAuth");
    let a2 = acc.handle(&c1.message, &w.acc_store, &w.acc_store, &mut w.rng).map_err(|r| r.error)?;
    let c3 = c1.next.handle(&a2.message, &mut w.rng)?;
    let a4 = a2.next.handle(&c3.message, &w.acc_store).map_err(|r| r.error)?;
    let c5 = c3.next.handle(&tamper(a4.message))?;
    let a6 = a4.next.handle(&c5.message, &w.acc_store, &w.acc_store).map_err(|r| r.error)?;
    c5.next.handle(&a6.message)
}

#[test]
fn genuine_device_is_authenticated_and_pairs() {
    let (att, key) = device(b"genuine");
    let verifier = Arc::new(TestVerifier { genuine: att.certificates().to_vec(), key });
    let mut w = World::new(40);
    let paired = pair(&mut w, Some(att.clone()), verifier, |m| m).unwrap();
    assert_eq!(paired.peer.id, w.accessory.id);
    let device = paired.device.expect("device authenticated");
    assert_eq!(device.certificates, att.certificates());
    assert_eq!(w.acc_store.list().unwrap().len(), 1);
}

#[test]
fn plain_setup_ignores_the_certificate_and_auth_setup_without_one_is_refused() {
    let (att, key) = device(b"genuine");
    // A plain M1: the accessory sends no certificate, M4 is HAP's 69 bytes.
    let mut w = World::new(41);
    let acc = w.accessory_m1().with_attestation(Some(att.clone()));
    let c1 = setup::controller::start(w.controller.clone(), SetupCode::parse(CODE).unwrap());
    let a2 = acc.handle(&c1.message, &w.acc_store, &w.acc_store, &mut w.rng).unwrap();
    let c3 = c1.next.handle(&a2.message, &mut w.rng).unwrap();
    assert_eq!(a2.next.handle(&c3.message, &w.acc_store).unwrap().message.len(), 69);

    // Required, but the accessory has no certificate: refused before our key is sent.
    let verifier = Arc::new(TestVerifier { genuine: att.certificates().to_vec(), key });
    let mut w = World::new(42);
    let err = pair(&mut w, None, verifier, |m| m).unwrap_err();
    assert!(matches!(err, Error::NoDeviceCertificate), "{err}");
    assert!(w.acc_store.list().unwrap().is_empty());
}

#[test]
fn impostor_certificate_and_tampered_signature_are_refused() {
    let (genuine, key) = device(b"genuine");
    let verifier = Arc::new(TestVerifier { genuine: genuine.certificates().to_vec(), key });
    // Another device's certificate and key.
    let (impostor, _) = device(b"impostor");
    let mut w = World::new(43);
    let err = pair(&mut w, Some(impostor), verifier.clone(), |m| m).unwrap_err();
    assert!(matches!(&err, Error::DeviceAuth(r) if r == "unknown certificate"), "{err}");

    // The genuine certificate, but a signature made by another key over the transcript: build
    // an attestation that presents the genuine chain and signs with the impostor's key.
    #[derive(Debug)]
    struct Borrowed(Vec<Vec<u8>>, Arc<SeDeviceAttestation>);
    impl DeviceAttestation for Borrowed {
        fn certificates(&self) -> &[Vec<u8>] {
            &self.0
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
            self.1.sign(message)
        }
    }
    let (other, _) = device(b"other");
    let borrowed = Arc::new(Borrowed(genuine.certificates().to_vec(), other));
    let mut w = World::new(44);
    let err = pair(&mut w, Some(borrowed), verifier.clone(), |m| m).unwrap_err();
    assert!(matches!(&err, Error::DeviceAuth(r) if r == "transcript signature"), "{err}");

    // A bit flipped in M4's encrypted data: the AEAD tag fails.
    let mut w = World::new(45);
    let flip_last = |mut m: Vec<u8>| {
        let n = m.len();
        m[n - 1] ^= 1;
        m
    };
    let err = pair(&mut w, Some(genuine.clone()), verifier.clone(), flip_last).unwrap_err();
    assert!(matches!(err, Error::Decrypt { step: "pair-setup M4" }), "{err}");

    // M4 stripped of its encrypted data (a downgrade): refused.
    let mut w = World::new(46);
    let strip = |m: Vec<u8>| {
        let tlv = Tlv8::decode(&m).unwrap();
        Tlv8Writer::new()
            .push_u8(types::STATE, 4)
            .push(types::PROOF, tlv.require(types::PROOF).unwrap())
            .finish()
    };
    let err = pair(&mut w, Some(genuine), verifier, strip).unwrap_err();
    assert!(matches!(err, Error::NoDeviceCertificate), "{err}");
}

#[test]
fn a_signature_from_another_pair_setup_does_not_verify() {
    // The transcript binds the SRP key and the exact messages: replaying the device's
    // signature from one run into another fails.
    let (att, key) = device(b"genuine");
    #[derive(Debug)]
    struct Recorder(Arc<SeDeviceAttestation>, std::sync::Mutex<Option<Vec<u8>>>);
    impl DeviceAttestation for Recorder {
        fn certificates(&self) -> &[Vec<u8>] {
            self.0.certificates()
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
            let mut recorded = self.1.lock().unwrap();
            match recorded.as_ref() {
                Some(old) => Ok(old.clone()),
                None => {
                    let sig = self.0.sign(message)?;
                    *recorded = Some(sig.clone());
                    Ok(sig)
                }
            }
        }
    }
    let recorder = Arc::new(Recorder(att.clone(), std::sync::Mutex::new(None)));
    let verifier = Arc::new(TestVerifier { genuine: att.certificates().to_vec(), key });
    let mut w = World::new(47);
    pair(&mut w, Some(recorder.clone()), verifier.clone(), |m| m).unwrap();
    let mut w = World::new(48);
    let err = pair(&mut w, Some(recorder), verifier, |m| m).unwrap_err();
    assert!(matches!(&err, Error::DeviceAuth(r) if r == "transcript signature"), "{err}");
}
