//! Device authenticity over HTTP: the accessory presents the device certificate from its
//! secure element and signs the pairing transcript there; our controller checks it against the
//! OEM root with ironclad-pki's ChainVerifier.

use std::sync::Arc;

use ironclad_hap::{Accessory, Error, OemRootVerifier, device_attestation};
use ironclad_pair::attestation::{DeviceAttestation, SeDeviceAttestation};
use ironclad_se::SecureElement;

use crate::common::{code, controller, dir_se};
use crate::oem::Oem;

async fn attesting_accessory(
    se: Arc<dyn SecureElement>,
    attestation: Arc<dyn DeviceAttestation>,
) -> Accessory {
    Accessory::builder(se).setup_code(code()).device_certificate(attestation).start().await.unwrap()
}

#[tokio::test]
async fn genuine_device_is_verified_against_the_oem_root_and_the_result_kept() {
    let dir = tempfile::tempdir().unwrap();
    let oem = Oem::new();
    let se = dir_se(&dir.path().join("device"));
    oem.provision(&se, "lamp-0001");
    let acc = attesting_accessory(se.clone(), device_attestation(&se).unwrap()).await;
    assert!(acc.presents_device_certificate());
    let phone = controller(dir.path(), "phone");
    let verifier = Arc::new(OemRootVerifier::from_pem(oem.root_pem().as_bytes()).unwrap());
    let paired = phone
        .pair_authenticated("lamp", &acc.local_addr().to_string(), &code(), verifier.clone())
        .await
        .unwrap();
    let device = paired.device.as_ref().expect("device certificate verified");
    assert_eq!(device.device_id, "lamp-0001");
    assert_eq!(device.certificates.len(), 2, "device certificate and line CA");
    // Kept with the pairing, and checkable again later (at verify time).
    let again = controller(dir.path(), "phone");
    let stored = again.store().accessory("lamp").unwrap().unwrap();
    assert_eq!(stored.device, paired.device);
    assert_eq!(verifier.check_chain(&stored.device.unwrap().certificates).unwrap().device_id(), "lamp-0001");
    let mut session = again.connect("lamp").await.unwrap();
    assert_eq!(session.list_pairings().await.unwrap().len(), 1);

    // Plain pair-setup still works with an accessory that has a certificate (after a reset).
    drop(session);
    acc.reset_pairings().unwrap();
    let plain = controller(dir.path(), "plain");
    assert!(plain.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap().device.is_none());
}

#[tokio::test]
async fn a_device_from_another_root_is_refused_and_the_accessory_stays_unpaired() {
    let dir = tempfile::tempdir().unwrap();
    let (oem, rogue) = (Oem::new(), Oem::new());
    let se = dir_se(&dir.path().join("device"));
    rogue.provision(&se, "lamp-0001");
    let acc = attesting_accessory(se.clone(), device_attestation(&se).unwrap()).await;
    let phone = controller(dir.path(), "phone");
    let verifier = Arc::new(OemRootVerifier::from_pem(oem.root_pem().as_bytes()).unwrap());
    let err =
        phone.pair_authenticated("lamp", &acc.local_addr().to_string(), &code(), verifier).await.unwrap_err();
    assert!(matches!(&err, Error::Pair(ironclad_pair::Error::DeviceAuth(_))), "{err}");
    assert!(err.to_string().contains("not issued by a trusted CA"), "{err}");
    // Stopped before M5: the accessory stored nothing, counted nothing, and is free again.
    assert!(!acc.is_paired().unwrap());
    assert_eq!(acc.failed_attempts().unwrap(), 0);
    assert!(phone.store().accessories().unwrap().is_empty());
    let trusting_rogue = Arc::new(OemRootVerifier::from_pem(rogue.root_pem().as_bytes()).unwrap());
    phone.pair_authenticated("lamp", &acc.local_addr().to_string(), &code(), trusting_rogue).await.unwrap();
}

/// Presents the genuine chain, but the signature is altered (one bit) after the secure
/// element made it.
#[derive(Debug)]
struct Tampered(Arc<SeDeviceAttestation>);

impl DeviceAttestation for Tampered {
    fn certificates(&self) -> &[Vec<u8>] {
        self.0.certificates()
    }
    fn sign(&self, message: &[u8]) -> ironclad_pair::Result<Vec<u8>> {
        let mut sig = self.0.sign(message)?;
        let last = sig.len() - 1;
        sig[last] ^= 1;
        Ok(sig)
    }
}

#[tokio::test]
async fn tampered_signature_or_missing_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let oem = Oem::new();
    let se = dir_se(&dir.path().join("device"));
    oem.provision(&se, "lamp-0001");
    let verifier = Arc::new(OemRootVerifier::from_pem(oem.root_pem().as_bytes()).unwrap());
    let phone = controller(dir.path(), "phone");

    let acc = attesting_accessory(se.clone(), Arc::new(Tampered(device_attestation(&se).unwrap()))).await;
    let err = phone
        .pair_authenticated("lamp", &acc.local_addr().to_string(), &code(), verifier.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("transcript signature does not verify"), "{err}");
    assert!(!acc.is_paired().unwrap());
    acc.shutdown().await.unwrap();

    // An accessory without a device certificate cannot satisfy a controller that requires one.
    let bare = Accessory::builder(se).setup_code(code()).start().await.unwrap();
    let err = phone
        .pair_authenticated("lamp", &bare.local_addr().to_string(), &code(), verifier)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Pair(ironclad_pair::Error::NoDeviceCertificate)), "{err}");
    assert!(!bare.is_paired().unwrap());
}

#[tokio::test]
async fn a_certificate_for_another_key_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let oem = Oem::new();
    let (a, b) = (dir_se(&dir.path().join("a")), dir_se(&dir.path().join("b")));
    oem.provision(&a, "lamp-a");
    oem.provision(&b, "lamp-b");
    // b's certificate copied into a's element next to a's key.
    let cert = ironclad_se::Label::new(ironclad_hap::DEVICE_CERT).unwrap();
    a.put_object(&cert, &b.get_object(&cert).unwrap()).unwrap();
    let err = device_attestation(&a).unwrap_err();
    assert!(err.to_string().contains("does not certify the key"), "{err}");
}
