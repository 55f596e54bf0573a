//! Cloud delegation over a verified session: only an admin may send it, the accessory checks
//! it and seals it in its secure element, and the device reads it back (also without a running
//! accessory) to connect; malformed, oversized and tampered delegations are refused.

use std::sync::atomic::Ordering;

use ironclad_hap::{
    CloudDelegation, Error, HapStatus, PairedAccessory, Pairing, Permissions, StoredDelegation, ids,
    load_delegation,
};
use ironclad_pair::tlv8::Tlv8Writer;
use tokio::net::TcpStream;

use crate::common::{TAMPER_TO_ACCESSORY, accessory, code, controller, dir_se, raw, tampering_proxy};
use crate::oem::Oem;

fn refused_with(err: &Error, status: HapStatus) -> bool {
    matches!(err, Error::Characteristics(v) if v == &[(ids::CLOUD_DELEGATION, status)])
}

#[tokio::test]
async fn an_admin_delegates_and_the_device_loads_it_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = Oem::new().root_pem();
    let acc = accessory(dir.path()).await;
    let admin = controller(dir.path(), "admin");
    let guest = controller(dir.path(), "guest");
    let record = admin.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap();
    let mut session = admin.connect("lamp").await.unwrap();
    let delegation =
        CloudDelegation::new("https://cloud.example.com:8443/v1", anchor.clone(), "claim-7f3a").unwrap();
    assert!(acc.cloud_delegation().unwrap().is_none());
    session.delegate(&delegation).await.unwrap();
    let expected = StoredDelegation { delegation: delegation.clone(), delegated_by: admin.id().clone() };
    assert_eq!(acc.cloud_delegation().unwrap().as_ref(), Some(&expected));

    // A user (non-admin) controller may not replace it.
    let pairing =
        Pairing { id: guest.id().clone(), public_key: guest.public_key(), permissions: Permissions::USER };
    session.add_pairing(&pairing).await.unwrap();
    guest.store().save_accessory(&PairedAccessory { alias: "lamp".into(), ..record }).unwrap();
    let mut guest_session = guest.connect("lamp").await.unwrap();
    let other = CloudDelegation::new("https://evil.example.com", anchor, "stolen").unwrap();
    let err = guest_session.delegate(&other).await.unwrap_err();
    assert!(refused_with(&err, HapStatus::InsufficientPrivileges), "{err}");
    assert_eq!(acc.cloud_delegation().unwrap().as_ref(), Some(&expected));

    // The device, later and without the HAP server, loads it to connect to its cloud.
    acc.shutdown().await.unwrap();
    let loaded = load_delegation(dir_se(dir.path()), "hap").unwrap().unwrap();
    assert_eq!(loaded, expected);
    assert_eq!(
        (loaded.delegation.server().host.as_str(), loaded.delegation.server().port),
        ("cloud.example.com", 8443)
    );
    assert_eq!(loaded.delegation.claim_token(), "claim-7f3a");
}

#[tokio::test]
async fn malformed_oversized_and_unverified_delegations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let oem = Oem::new();
    let acc = accessory(dir.path()).await;
    let phone = controller(dir.path(), "phone");
    phone.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap();
    let mut session = phone.connect("lamp").await.unwrap();
    let anchor = oem.root_pem();
    let encode = |endpoint: &[u8], anchor: &[u8], token: &[u8]| {
        Tlv8Writer::new().push_u8(1, 1).push(2, endpoint).push(3, anchor).push(4, token).finish()
    };
    // A device certificate is not a CA: not a trust anchor.
    let device_se = dir_se(&dir.path().join("device"));
    oem.provision(&device_se, "lamp-0001");
    let leaf = device_se.get_object(&ironclad_se::Label::new(ironclad_hap::DEVICE_CERT).unwrap()).unwrap();
    let garbled = anchor.replacen("MII", "MIJ", 1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not TLV8", b"\x02\xffhello".to_vec()),
        ("plain http", encode(b"http://cloud.example.com", anchor.as_bytes(), b"t")),
        ("no certificate", encode(b"https://cloud.example.com", b"hello", b"t")),
        ("garbled certificate", encode(b"https://cloud.example.com", garbled.as_bytes(), b"t")),
        ("not a CA", encode(b"https://cloud.example.com", &leaf, b"t")),
        ("token too long", encode(b"https://cloud.example.com", anchor.as_bytes(), &[b'x'; 1025])),
        ("unknown item", [encode(b"https://c.example", anchor.as_bytes(), b"t"), vec![9, 1, 0]].concat()),
        ("over maxDataLen", vec![0u8; 20 * 1024]),
    ];
    for (what, body) in cases {
        let err = session.put_delegation_bytes(&body).await.unwrap_err();
        assert!(refused_with(&err, HapStatus::InvalidValue), "{what}: {err}");
    }
    assert!(acc.cloud_delegation().unwrap().is_none());
    // The library refuses to build these in the first place.
    assert!(CloudDelegation::new("https://cloud.example.com", anchor.clone(), "x".repeat(1025)).is_err());

    // Without a verified session there is no write at all.
    let mut plain = TcpStream::connect(acc.local_addr()).await.unwrap();
    let body = br#"{"characteristics":[{"aid":1,"iid":14,"value":"AQE="}]}"#;
    assert_eq!(raw(&mut plain, "PUT", "/characteristics", body).await.0, 470);
    assert!(acc.cloud_delegation().unwrap().is_none());
}

#[tokio::test]
async fn tampered_in_transit_or_at_rest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = Oem::new().root_pem();
    let acc = accessory(dir.path()).await;
    let phone = controller(dir.path(), "phone");
    let mut record = phone.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap();
    let (proxy, armed) = tampering_proxy(acc.local_addr()).await;
    record.address = proxy;

    // One bit flipped in the frames carrying the delegation: the session ends, nothing stored.
    let delegation = CloudDelegation::new("https://cloud.example.com", anchor, "claim-1").unwrap();
    let mut session = phone.connect_to(&record).await.unwrap();
    armed.store(TAMPER_TO_ACCESSORY, Ordering::SeqCst);
    let err = session.delegate(&delegation).await.unwrap_err();
    assert!(matches!(err, Error::Closed | Error::Io(_)), "{err}");
    assert!(acc.cloud_delegation().unwrap().is_none());

    // Stored, then the sealed object altered on disk: loading fails, nothing half-trusted.
    let mut session = phone.connect("lamp").await.unwrap();
    session.delegate(&delegation).await.unwrap();
    assert!(acc.cloud_delegation().unwrap().is_some());
    let object = dir.path().join("objects/hap.cloud-delegation");
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&object, &bytes).unwrap();
    let err = acc.cloud_delegation().unwrap_err();
    assert!(matches!(err, Error::Pair(ironclad_pair::Error::SecureElement(_))), "{err}");
    assert!(load_delegation(dir_se(dir.path()), "hap").is_err());
}
