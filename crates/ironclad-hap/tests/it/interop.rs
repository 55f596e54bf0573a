//! Over real HTTP on loopback, no mDNS: our controller against HAP-python 5.0.0's accessory
//! server, and aiohomekit 4.0.1's controller against our accessory (tests/interop/*.py).

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use ironclad_hap::{Accessory, CharId, Controller, ErrorCode, SetupCode, device_attestation, ids};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::{accessory, code, controller, dir_se, hap_python, rounds, script};
use crate::oem::Oem;

/// Starts tests/interop/hap_accessory.py; returns the child (killed on drop) and its address.
async fn hap_python_accessory(python: &Path, state: &Path) -> (Child, String) {
    let mut child = Command::new(python)
        .arg(script("hap_accessory.py"))
        .arg(state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start hap_accessory.py");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line =
            lines.next_line().await.unwrap().expect("hap_accessory.py exited before READY (see stderr)");
        if let Some(port) = line.strip_prefix("READY ") {
            return (child, format!("127.0.0.1:{port}"));
        }
    }
}

/// The aid/iid of HAP-python's CurrentTemperature (type 11) in /accessories.
fn temperature_id(db: &Value) -> CharId {
    for acc in db["accessories"].as_array().unwrap() {
        for service in acc["services"].as_array().unwrap() {
            for c in service["characteristics"].as_array().unwrap() {
                let ty = c["type"].as_str().unwrap().to_uppercase();
                if ty == "11" || ty.starts_with("00000011-") {
                    return CharId::new(acc["aid"].as_u64().unwrap(), c["iid"].as_u64().unwrap());
                }
            }
        }
    }
    panic!("no CurrentTemperature in {db}");
}

/// Pair-setup, pair-verify, remove; with `read`, also /accessories, the temperature and the
/// pairing list over the session.
async fn pair_verify_remove(phone: &Controller, address: &str, round: usize, read: bool) {
    let paired =
        phone.pair("sensor", address, &code()).await.unwrap_or_else(|e| panic!("round {round}: pair: {e}"));
    assert_eq!(paired.pairing.id.as_bytes(), b"AA:BB:CC:DD:EE:01");
    let mut session = phone.connect("sensor").await.unwrap_or_else(|e| panic!("round {round}: verify: {e}"));
    if read {
        let temperature = temperature_id(&session.accessories().await.unwrap());
        assert_eq!(session.get(&[temperature]).await.unwrap(), vec![(temperature, json!(21.5))]);
        let listed = session.list_pairings().await.unwrap();
        assert_eq!(listed.len(), 1, "round {round}: {listed:?}");
        assert_eq!((&listed[0].id, listed[0].public_key), (phone.id(), phone.public_key()));
        assert!(listed[0].permissions.is_admin());
    }
    session.remove_pairing(phone.id()).await.unwrap_or_else(|e| panic!("round {round}: remove: {e}"));
    phone.store().remove_accessory("sensor").unwrap();
}

/// (a) ironclad controller ↔ HAP-python accessory: wrong code, then pair, verify, read, list,
/// remove; then [`rounds`] consecutive pair-setups (each verified and removed; every 25th also
/// reads and lists) with zero failures.
#[tokio::test]
async fn ironclad_controller_against_hap_python_accessory() {
    let Some(python) = hap_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = hap_python_accessory(&python, &dir.path().join("accessory.state")).await;
    let phone = controller(dir.path(), "phone");
    let err = phone.pair("sensor", &address, &SetupCode::parse("111-22-333").unwrap()).await.unwrap_err();
    assert_eq!(err.peer_code(), Some(ErrorCode::Authentication), "{err}");
    pair_verify_remove(&phone, &address, 0, true).await;

    let (rounds, start) = (rounds(), Instant::now());
    for round in 1..=rounds {
        pair_verify_remove(&phone, &address, round, round % 25 == 0).await;
    }
    eprintln!("ironclad controller vs HAP-python: {rounds} rounds, 0 failures, {:.1?}", start.elapsed());
    drop(child.stdin.take());
    assert!(child.wait().await.unwrap().success());
}

async fn aiohomekit(python: &Path, args: &[&str]) {
    run_script(python, "aiohk_controller.py", args).await;
}

async fn run_script(python: &Path, name: &str, args: &[&str]) {
    let output = Command::new(python)
        .arg(script(name))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{name} {}:\n{stdout}", args[0]);
    assert!(
        output.status.success(),
        "{name} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// (b) aiohomekit controller ↔ ironclad accessory (presenting its device certificate, which
/// aiohomekit asks for with PairSetupWithAuth and ignores): wrong code, pair, verify, read and
/// write over the session, a cloud delegation, list; the pairing survives a restart of the
/// accessory (same secure-element directory, new port); verify again, list, remove.
#[tokio::test]
async fn aiohomekit_controller_against_ironclad_accessory() {
    let Some(python) = hap_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pairing = dir.path().join("pairing.json");
    let oem = Oem::new();
    let se = dir_se(dir.path());
    oem.provision(&se, "lamp-0001");
    let anchor = dir.path().join("anchor.pem");
    std::fs::write(&anchor, oem.root_pem()).unwrap();
    let acc = Accessory::builder(se.clone())
        .name("test lamp")
        .setup_code(code())
        .device_certificate(device_attestation(&se).unwrap())
        .start()
        .await
        .unwrap();
    let device_id = acc.device_id().to_string();
    let port = acc.local_addr().port().to_string();
    let args = ["pair", &port, pairing.to_str().unwrap(), &device_id, anchor.to_str().unwrap()];
    aiohomekit(&python, &args).await;
    assert_eq!(acc.value(ids::ON), Some(json!(true)));
    assert_eq!(acc.value(ids::NAME), Some(json!("kitchen lamp")));
    let stored = acc.cloud_delegation().unwrap().unwrap();
    assert_eq!(stored.delegation.endpoint(), "https://cloud.example.com:8443");
    assert_eq!(stored.delegation.trust_anchor_pem(), oem.root_pem());
    assert_eq!(stored.delegation.claim_token(), "claim-from-aiohomekit");
    assert_eq!(acc.pairings().unwrap().len(), 1);
    assert_eq!(stored.delegated_by, acc.pairings().unwrap()[0].id);
    assert_eq!(acc.failed_attempts().unwrap(), 0, "reset by the successful pairing");
    acc.shutdown().await.unwrap();

    let acc = accessory(dir.path()).await;
    assert_eq!(acc.device_id().to_string(), device_id);
    let port = acc.local_addr().port().to_string();
    aiohomekit(&python, &["verify-remove", &port, pairing.to_str().unwrap()]).await;
    assert!(!acc.is_paired().unwrap());
}

/// (c) Two overlapping aiohomekit pair-setups: the second gets Busy.
#[tokio::test]
async fn aiohomekit_concurrent_setups_get_busy() {
    let Some(python) = hap_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    aiohomekit(&python, &["busy", &acc.local_addr().port().to_string(), &acc.device_id().to_string()]).await;
    assert!(!acc.is_paired().unwrap());
}

/// [`rounds`] consecutive pair-setups by aiohomekit against our accessory, zero failures.
#[tokio::test]
async fn aiohomekit_repeated_pair_setups_against_ironclad_accessory() {
    let Some(python) = hap_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let start = Instant::now();
    let args = [rounds().to_string(), acc.local_addr().port().to_string(), acc.device_id().to_string()];
    aiohomekit(&python, &["rounds", &args[0], &args[1], &args[2]]).await;
    eprintln!("aiohomekit vs ironclad accessory: {} rounds in {:.1?}", args[0], start.elapsed());
    assert_eq!(acc.failed_attempts().unwrap(), 0);
    assert!(!acc.is_paired().unwrap());
}

/// homekit_python (which strips leading zeros in SRP, and brings its own HTTP client) against
/// our accessory: a wrong code, then [`rounds`] consecutive pair-setups, zero failures.
#[tokio::test]
async fn homekit_python_repeated_pair_setups_against_ironclad_accessory() {
    let Some(python) = hap_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let args = [rounds().to_string(), acc.local_addr().port().to_string(), acc.device_id().to_string()];
    run_script(&python, "hkpy_controller.py", &["rounds", &args[0], &args[1], &args[2]]).await;
    assert_eq!(acc.failed_attempts().unwrap(), 0);
    assert!(!acc.is_paired().unwrap());
}
