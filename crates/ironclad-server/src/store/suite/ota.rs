//! The shared suite's OTA tests: keys and releases, rollouts (compare-and-swap start,
//! supersession, state changes), per-device offers that stay byte-stable, reported states.

use std::sync::Arc;

use ironclad_proto::ota::{OtaState, RolloutState};

use super::h;
use crate::error::Error;
use crate::store::{DeviceRelease, OtaKey, Release, Rollout, RolloutChange, RolloutUpdate, Store};

pub fn ota_release(id: &str, version: &str, counter: u64) -> Release {
    Release {
        id: id.to_owned(),
        version: version.to_owned(),
        security_counter: counter,
        product_class: "6f1c5a1e-0000-4000-8000-000000000001".to_owned(),
        size: 4096 + counter,
        sha256: h(counter as u8),
        image_hash: h(100 + counter as u8),
        signed_len: 4000,
        wrap: "ecies-x25519".to_owned(),
        signer: h(7),
        decryption_key: Some("firmware-decryption:v1".to_owned()),
        file_name: format!("{id}.img"),
        note: "note".to_owned(),
        uploaded_at: 1_000 + counter as i64,
        uploaded_by: "op".to_owned(),
    }
}

fn rollout(id: &str, release: &str, group: &str, pct: u8, at: i64) -> Rollout {
    Rollout {
        id: id.to_owned(),
        release_id: release.to_owned(),
        group_id: group.to_owned(),
        percentage: pct,
        state: RolloutState::Active,
        created_at: at,
        updated_at: at,
        created_by: "op".to_owned(),
    }
}

fn offer(device: &str, release: &str, recipient: u8, tail: u8) -> DeviceRelease {
    DeviceRelease {
        device_id: device.to_owned(),
        release_id: release.to_owned(),
        rollout_id: "ro-1".to_owned(),
        state: OtaState::Offered,
        detail: String::new(),
        recipient: vec![recipient; 44],
        tail: vec![tail; 120],
        image_size: 4120,
        image_sha256: h(tail),
        offered_at: 2_000,
        updated_at: 2_000,
    }
}

/// Keys and releases round-trip; duplicates are conflicts.
pub async fn ota_keys_and_releases(store: &Arc<dyn Store>) {
    let key = OtaKey {
        key_hash: h(7),
        name: "mastering 2026".into(),
        spki_der: vec![0x30, 0x2a, 1, 2, 3],
        algorithm: "ed25519".into(),
        created_at: 10,
        created_by: "admin".into(),
    };
    store.insert_ota_key(&key).await.unwrap();
    assert!(matches!(store.insert_ota_key(&key).await, Err(Error::Conflict(_))));
    assert_eq!(store.ota_keys().await.unwrap(), vec![key]);

    let r1 = ota_release("r1", "1.0.0+0", 1);
    let mut r2 = ota_release("r2", "1.1.0+0", 2);
    r2.decryption_key = None;
    r2.wrap = "none".into();
    r2.security_counter = u64::from(u32::MAX);
    store.insert_release(&r1).await.unwrap();
    store.insert_release(&r2).await.unwrap();
    assert!(matches!(store.insert_release(&r1).await, Err(Error::Conflict(_))));
    assert_eq!(store.release("r2").await.unwrap(), Some(r2.clone()));
    assert_eq!(store.release("nope").await.unwrap(), None);
    assert_eq!(store.releases().await.unwrap(), vec![r1, r2]);
}

/// A rollout starts only over the current one it was checked against; a new one supersedes
/// the live one; aborted rollouts are not current; changes follow the state machine.
pub async fn ota_rollouts(store: &Arc<dyn Store>) {
    for (id, v, c) in [("a", "1.0.0", 1), ("b", "1.1.0", 2), ("c", "1.2.0", 3)] {
        store.insert_release(&ota_release(id, v, c)).await.unwrap();
    }
    assert_eq!(store.current_rollout("g1").await.unwrap(), None);
    store.start_rollout(&rollout("ro-a", "a", "g1", 10, 100), None).await.unwrap();
    // A start checked against "no rollout" loses to the one that got there first.
    let late = store.start_rollout(&rollout("ro-x", "b", "g1", 10, 101), None).await;
    assert!(matches!(late, Err(Error::Conflict(_))), "{late:?}");
    assert_eq!(store.current_rollout("g1").await.unwrap().unwrap().id, "ro-a");
    assert_eq!(store.live_rollout("g2").await.unwrap(), None);

    store.start_rollout(&rollout("ro-b", "b", "g1", 50, 102), Some("ro-a")).await.unwrap();
    let a = store.rollout("ro-a").await.unwrap().unwrap();
    assert_eq!((a.state, a.updated_at), (RolloutState::Superseded, 102));
    assert_eq!(store.live_rollout("g1").await.unwrap().unwrap().id, "ro-b");

    // Stage, pause, resume, abort, and what no longer applies.
    let upd = store.update_rollout("ro-b", RolloutChange::Stage(100), 103).await.unwrap();
    let RolloutUpdate::Updated(b) = upd else { panic!("{upd:?}") };
    assert_eq!((b.percentage, b.state, b.updated_at), (100, RolloutState::Active, 103));
    let RolloutUpdate::Updated(b) = store.update_rollout("ro-b", RolloutChange::Pause, 104).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(b.state, RolloutState::Paused);
    assert_eq!(store.live_rollout("g1").await.unwrap().unwrap().state, RolloutState::Paused);
    let RolloutUpdate::Updated(b) = store.update_rollout("ro-b", RolloutChange::Resume, 105).await.unwrap()
    else {
        panic!()
    };
    assert_eq!((b.state, b.percentage), (RolloutState::Active, 100));
    assert_eq!(
        store.update_rollout("ro-a", RolloutChange::Resume, 106).await.unwrap(),
        RolloutUpdate::WrongState(RolloutState::Superseded)
    );
    assert_eq!(
        store.update_rollout("nope", RolloutChange::Pause, 106).await.unwrap(),
        RolloutUpdate::NotFound
    );
    let RolloutUpdate::Updated(b) = store.update_rollout("ro-b", RolloutChange::Abort, 107).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(b.state, RolloutState::Aborted);
    assert_eq!(
        store.update_rollout("ro-b", RolloutChange::Stage(5), 108).await.unwrap(),
        RolloutUpdate::WrongState(RolloutState::Aborted)
    );
    // The aborted rollout is no longer current: the superseded one before it is.
    assert_eq!(store.current_rollout("g1").await.unwrap().unwrap().id, "ro-a");
    assert_eq!(store.live_rollout("g1").await.unwrap(), None);
    store.start_rollout(&rollout("ro-c", "c", "g1", 1, 110), Some("ro-a")).await.unwrap();
    store.start_rollout(&rollout("ro-g2", "a", "g2", 1, 111), None).await.unwrap();
    let ids: Vec<String> = store.rollouts().await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["ro-g2", "ro-c", "ro-b", "ro-a"]);
    assert_eq!(store.rollout("ro-a").await.unwrap().unwrap().state, RolloutState::Superseded);

    // Concurrent starts over the same current rollout: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.start_rollout(&rollout(&format!("ro-race-{i}"), "c", "g3", 10, 200), None).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(Error::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
}

/// An offer for the same device key is kept as it was (its bytes must not change under a
/// resumed download); a new key replaces it; reports update only offered rows.
pub async fn ota_offers_and_states(store: &Arc<dyn Store>) {
    store.insert_release(&ota_release("r", "1.1.0", 2)).await.unwrap();
    let first = offer("dev-1", "r", 1, 10);
    assert_eq!(store.put_offer(&first).await.unwrap(), first);
    // Same key, another wrap (a concurrent check): the first stays.
    assert_eq!(store.put_offer(&offer("dev-1", "r", 1, 11)).await.unwrap(), first);
    assert!(store.set_device_state("dev-1", "r", OtaState::Downloading, "", 2_001).await.unwrap());
    // Another key (the device's secure element was replaced): a new copy, state reset.
    let second = offer("dev-1", "r", 2, 12);
    assert_eq!(store.put_offer(&second).await.unwrap(), second);
    assert_eq!(store.device_release("dev-1", "r").await.unwrap(), Some(second.clone()));

    assert!(store.set_device_state("dev-1", "r", OtaState::Failed, "digest mismatch", 2_002).await.unwrap());
    assert!(!store.set_device_state("dev-9", "r", OtaState::Confirmed, "", 2_003).await.unwrap());
    let got = store.device_release("dev-1", "r").await.unwrap().unwrap();
    assert_eq!(
        (got.state, got.detail.as_str(), got.updated_at),
        (OtaState::Failed, "digest mismatch", 2_002)
    );
    assert_eq!(got.tail, second.tail);

    store.put_offer(&offer("dev-0", "r", 3, 13)).await.unwrap();
    let devices: Vec<String> =
        store.release_devices("r").await.unwrap().into_iter().map(|d| d.device_id).collect();
    assert_eq!(devices, ["dev-0", "dev-1"]);
    assert_eq!(store.device_release("dev-2", "r").await.unwrap(), None);

    // Concurrent offers to one device with one key: all answer the same copy.
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.put_offer(&offer("dev-r", "r", 5, 20 + i)).await.unwrap() }));
    }
    let mut tails = Vec::new();
    for t in tasks {
        tails.push(t.await.unwrap().tail);
    }
    tails.dedup();
    assert_eq!(tails.len(), 1, "every concurrent offer answers the stored copy");
    assert_eq!(store.device_release("dev-r", "r").await.unwrap().unwrap().tail, tails[0]);
}
