//! ironclad controller ↔ ironclad accessory over loopback HTTP: pairing, characteristics,
//! events, pairing management, persistence.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironclad_hap::{
    Accessory, CharId, CloudDelegation, Controller, Error, ErrorCode, HapStatus, PairedAccessory, Pairing,
    Permissions, SeControllerStore, ids,
};
use ironclad_se::{MemorySe, SecureElement};
use serde_json::{Value, json};

use crate::common::{accessory, code, controller};

#[tokio::test]
async fn pair_verify_read_write_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let phone = controller(dir.path(), "phone");
    let paired = phone.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap();
    assert_eq!(&paired.pairing.id, acc.device_id());
    assert_eq!(paired.pairing.public_key, acc.public_key());
    assert_eq!(acc.pairings().unwrap().len(), 1);
    assert!(matches!(phone.pair("lamp", "127.0.0.1:1", &code()).await, Err(Error::AliasTaken(_))));

    let mut session = phone.connect("lamp").await.unwrap();
    let db = session.accessories().await.unwrap();
    assert_eq!(db["accessories"][0]["aid"], json!(1));
    assert_eq!(
        session.get(&[ids::ON, ids::NAME]).await.unwrap(),
        vec![(ids::ON, json!(false)), (ids::NAME, json!("test lamp"))]
    );
    session.put(&[(ids::ON, json!(true)), (ids::NAME, json!("kitchen"))]).await.unwrap();
    assert_eq!(acc.value(ids::ON), Some(json!(true)));
    assert_eq!(session.get(&[ids::NAME]).await.unwrap()[0].1, json!("kitchen"));
    session.put(&[(ids::IDENTIFY, json!(true))]).await.unwrap();

    // Refusals carry the HAP status of each characteristic.
    let err = session.put(&[(ids::MODEL, json!("x")), (ids::ON, json!(false))]).await.unwrap_err();
    assert!(matches!(&err, Error::Characteristics(v) if v == &[(ids::MODEL, HapStatus::ReadOnly)]), "{err}");
    let err = session.get(&[ids::CLOUD_DELEGATION, CharId::new(9, 9)]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Characteristics(v) if v == &[(ids::CLOUD_DELEGATION, HapStatus::WriteOnly), (CharId::new(9, 9), HapStatus::NotFound)]),
        "{err}"
    );
    let err = session.put(&[(ids::ON, json!("yes"))]).await.unwrap_err();
    assert!(matches!(&err, Error::Characteristics(v) if v[0].1 == HapStatus::InvalidValue));

    // Cloud delegation: sealed on the device, never readable over HAP (more in delegation.rs).
    assert!(acc.cloud_delegation().unwrap().is_none());
    let delegation =
        CloudDelegation::new("https://cloud.example.com", crate::oem::Oem::new().root_pem(), "claim")
            .unwrap();
    session.delegate(&delegation).await.unwrap();
    assert_eq!(acc.cloud_delegation().unwrap().unwrap().delegation, delegation);

    let listed = session.list_pairings().await.unwrap();
    assert_eq!(
        listed,
        vec![Pairing {
            id: phone.id().clone(),
            public_key: phone.public_key(),
            permissions: Permissions::ADMIN
        }]
    );
    drop(session);
    phone.unpair("lamp").await.unwrap();
    assert!(!acc.is_paired().unwrap());
    assert!(phone.store().accessories().unwrap().is_empty());
    acc.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_admin_rights_and_removed_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let admin = controller(dir.path(), "admin");
    let guest = controller(dir.path(), "guest");
    let record = admin.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap();
    let mut admin_session = admin.connect("lamp").await.unwrap();
    let guest_pairing =
        Pairing { id: guest.id().clone(), public_key: guest.public_key(), permissions: Permissions::USER };
    admin_session.add_pairing(&guest_pairing).await.unwrap();
    guest.store().save_accessory(&PairedAccessory { alias: "lamp".into(), ..record }).unwrap();

    let mut guest_session = guest.connect("lamp").await.unwrap();
    guest_session.subscribe(&[ids::ON, ids::NAME], true).await.unwrap();
    let err = guest_session.subscribe(&[ids::MODEL], true).await.unwrap_err();
    assert!(matches!(&err, Error::Characteristics(v) if v[0].1 == HapStatus::NotificationUnsupported));

    // A write by the admin reaches the subscribed guest, not the writer.
    admin_session.put(&[(ids::ON, json!(true))]).await.unwrap();
    let event = guest_session.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(event, vec![(ids::ON, json!(true))]);
    assert!(matches!(admin_session.next_event(Duration::from_millis(200)).await, Err(Error::Timeout(_))));
    // So does a change made on the device; an event queued during a request is kept.
    acc.set_value(ids::NAME, json!("hall")).unwrap();
    assert_eq!(guest_session.get(&[ids::ON]).await.unwrap()[0].1, json!(true));
    assert_eq!(
        guest_session.next_event(Duration::from_secs(5)).await.unwrap(),
        vec![(ids::NAME, json!("hall"))]
    );

    // Pairing management is for admins only.
    let err = guest_session.list_pairings().await.unwrap_err();
    assert_eq!(err.peer_code(), Some(ErrorCode::Authentication), "{err}");
    assert_eq!(admin_session.list_pairings().await.unwrap().len(), 2);

    // Removing the guest closes its session.
    admin_session.remove_pairing(guest.id()).await.unwrap();
    let err = guest_session.get(&[ids::ON]).await.unwrap_err();
    assert!(matches!(err, Error::Closed | Error::Io(_)), "{err}");
    assert!(guest.connect("lamp").await.unwrap_err().peer_code() == Some(ErrorCode::Authentication));

    // Removing the last admin ends its own session after the reply.
    admin_session.remove_pairing(admin.id()).await.unwrap();
    assert!(matches!(admin_session.get(&[ids::ON]).await, Err(Error::Closed | Error::Io(_))));
    assert!(!acc.is_paired().unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while acc.verified_sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(acc.verified_sessions(), 0);
}

#[tokio::test]
async fn pairing_survives_an_accessory_restart() {
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let (device_id, public_key, setup_id) =
        (acc.device_id().clone(), acc.public_key(), acc.setup_id().clone());
    let phone = controller(dir.path(), "phone");
    phone.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap();
    let mut open = phone.connect("lamp").await.unwrap();
    acc.shutdown().await.unwrap();
    assert!(
        matches!(open.get(&[ids::ON]).await, Err(Error::Closed | Error::Io(_))),
        "shutdown closes sessions"
    );

    let acc = accessory(dir.path()).await;
    assert_eq!((acc.device_id(), acc.public_key(), acc.setup_id()), (&device_id, public_key, &setup_id));
    assert_eq!(acc.pairings().unwrap().len(), 1);
    let mut record = phone.store().accessory("lamp").unwrap().unwrap();
    record.address = acc.local_addr().to_string();
    let mut session = phone.connect_to(&record).await.unwrap();
    assert_eq!(session.get(&[ids::ON]).await.unwrap()[0].1, json!(false));
    // And a pairing reset makes pair-setup possible again.
    assert_eq!(
        phone.pair("again", &record.address, &code()).await.unwrap_err().peer_code(),
        Some(ErrorCode::Unavailable)
    );
    acc.reset_pairings().unwrap();
    assert!(matches!(session.get(&[ids::ON]).await, Err(Error::Closed | Error::Io(_))));
    phone.pair("again", &record.address, &code()).await.unwrap();
}

#[tokio::test]
async fn controller_key_in_a_secure_element() {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let phone =
        Controller::new(Arc::new(SeControllerStore::new(se.clone(), "hap-controller").unwrap())).unwrap();
    let again = Controller::new(Arc::new(SeControllerStore::new(se, "hap-controller").unwrap())).unwrap();
    assert_eq!((phone.id(), phone.public_key()), (again.id(), again.public_key()));
    assert_eq!(phone.id().as_bytes().len(), 36);

    let acc = Accessory::builder(Arc::new(MemorySe::new())).start().await.unwrap();
    assert!(acc.setup_uri().starts_with("X-HM://"));
    assert!(acc.setup_uri().ends_with(acc.setup_id().as_str()));
    phone.pair("lamp", &acc.local_addr().to_string(), acc.setup_code()).await.unwrap();
    let mut session = again.connect("lamp").await.unwrap();
    assert_eq!(session.get(&[ids::INFO_NAME]).await.unwrap()[0].1, Value::from("ironclad device"));
}

/// Repeated full rounds between our two sides (the peers' rounds are in interop.rs).
#[tokio::test]
async fn repeated_pair_setups_between_ironclad_peers() {
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let address = acc.local_addr().to_string();
    let phone = controller(dir.path(), "phone");
    let (rounds, start) = (20, Instant::now());
    for round in 0..rounds {
        phone.pair("lamp", &address, &code()).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        let mut session = phone.connect("lamp").await.unwrap();
        assert_eq!(session.get(&[ids::ON]).await.unwrap().len(), 1);
        drop(session);
        phone.unpair("lamp").await.unwrap();
    }
    eprintln!("{rounds} ironclad↔ironclad rounds in {:.1?}", start.elapsed());
    assert_eq!(acc.failed_attempts().unwrap(), 0);
}
