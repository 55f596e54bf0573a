//! Enrollment: group/individual precedence, proof of possession for a group CA, enrollment by
//! public key, and factory-manifest import.

use ironclad_server::Error;
use ironclad_server::store::EnrollmentStatus;

use crate::common::*;

#[tokio::test]
async fn disabled_individual_blocks_one_device_of_an_enabled_group() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let (bad, good) = (pki.device(0, "cam-bad"), pki.device(0, "cam-good"));
    let blocked =
        srv.server.registry().enroll_certificate(bad.record.pem().as_bytes(), false, "stolen").await.unwrap();
    assert_eq!(blocked.status, EnrollmentStatus::Disabled);

    assert_auth_failed(srv.connect(&bad).await.request_challenge().await);
    assert_eq!(srv.reasons("cam-bad").await[0], "individual_disabled");
    srv.connect(&good).await.authenticate().await.unwrap();

    // Re-enabling the individual enrollment admits the device again.
    srv.server.registry().set_enabled(&blocked.id, true).await.unwrap();
    srv.connect(&bad).await.authenticate().await.unwrap();
}

#[tokio::test]
async fn disabled_group_blocks_its_line_but_not_individually_enabled_devices() {
    let pki = TestPki::new("Acme", 2);
    let srv = TestServer::start().await;
    let line0 = srv.enroll_line(&pki, 0).await;
    srv.enroll_line(&pki, 1).await;
    let (a, b, other_line) = (pki.device(0, "cam-a"), pki.device(0, "cam-b"), pki.device(1, "cam-c"));
    srv.server.registry().enroll_certificate(b.record.pem().as_bytes(), true, "known good").await.unwrap();

    srv.server.registry().set_enabled(&line0, false).await.unwrap();
    assert_auth_failed(srv.connect(&a).await.request_challenge().await);
    assert_eq!(srv.reasons("cam-a").await[0], "group_disabled");
    // Individual enrollment comes first in the lookup order.
    srv.connect(&b).await.authenticate().await.unwrap();
    // The other line is unaffected.
    srv.connect(&other_line).await.authenticate().await.unwrap();
}

#[tokio::test]
async fn nearest_group_up_the_chain_decides() {
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    // The root as an enabled group, the line under it as a disabled group.
    let reg = srv.server.registry();
    let root = reg.begin_group(pki.root.der(), "root").await.unwrap();
    let proof = ironclad_server::make_verification_certificate(
        pki.root.der(),
        &pki.root_key,
        root.verification_code.as_deref().unwrap(),
    )
    .unwrap();
    reg.prove_group(&root.id, &proof).await.unwrap();
    let dev = pki.device(0, "cam-1");
    srv.connect(&dev).await.authenticate().await.unwrap();

    let line = srv.enroll_line(&pki, 0).await;
    reg.set_enabled(&line, false).await.unwrap();
    assert_auth_failed(srv.connect(&dev).await.request_challenge().await);
    assert_eq!(srv.reasons("cam-1").await[0], "group_disabled");
    reg.delete(&line).await.unwrap();
    srv.connect(&dev).await.authenticate().await.unwrap();
}

#[tokio::test]
async fn group_needs_proof_of_possession_of_the_ca_key() {
    let pki = TestPki::new("Acme", 1);
    let rogue = TestPki::new("Rogue", 1);
    let srv = TestServer::start().await;
    let reg = srv.server.registry();
    let pending = reg.begin_group(pki.line(0).pem().as_bytes(), "line").await.unwrap();
    assert_eq!(pending.status, EnrollmentStatus::PendingProof);
    let code = pending.verification_code.clone().unwrap();
    assert_eq!(code.len(), 32);

    // While pending, the CA is not trusted: the handshake itself refuses its devices.
    let dev = pki.device(0, "cam-1");
    let r = async { srv.connect(&dev).await.request_challenge().await }.await;
    assert!(r.is_err());

    let line_der = pki.line(0).der();
    let line_key = &pki.lines[0].0;
    let wrong_code = ironclad_server::make_verification_certificate(line_der, line_key, "0000").unwrap();
    assert!(matches!(reg.prove_group(&pending.id, &wrong_code).await, Err(Error::ProofOfPossession(_))));
    // The right code signed by a key that is not the CA's (same issuer name, other key).
    let wrong_key =
        ironclad_server::make_verification_certificate(line_der, &rogue.lines[0].0, &code).unwrap();
    assert!(matches!(reg.prove_group(&pending.id, &wrong_key).await, Err(Error::ProofOfPossession(_))));
    // A certificate from another CA altogether.
    let other_ca =
        ironclad_server::make_verification_certificate(rogue.line(0).der(), &rogue.lines[0].0, &code)
            .unwrap();
    assert!(matches!(reg.prove_group(&pending.id, &other_ca).await, Err(Error::ProofOfPossession(_))));
    assert!(
        matches!(reg.set_enabled(&pending.id, true).await, Err(Error::Invalid(_))),
        "no enabling without proof"
    );

    let proof = ironclad_server::make_verification_certificate(line_der, line_key, &code).unwrap();
    let done = reg.prove_group(&pending.id, &proof).await.unwrap();
    assert_eq!(done.status, EnrollmentStatus::Enabled);
    assert_eq!(done.verification_code, None, "the code is single-use");
    assert!(reg.prove_group(&pending.id, &proof).await.is_err());
    srv.connect(&dev).await.authenticate().await.unwrap();
}

#[tokio::test]
async fn individual_enrollment_by_public_key_survives_reissue() {
    let pki = TestPki::new("Acme", 1);
    let root = pki.root.der().to_vec();
    let srv = TestServer::start_with(|b| b.trust_anchor(root)).await;
    let dev = pki.device(0, "cam-1");
    let spki = dev.identity.key().public_key().spki_der().unwrap();
    srv.server.registry().enroll_public_key(&spki, Some("cam-1"), true, "").await.unwrap();
    srv.connect(&dev).await.authenticate().await.unwrap();

    // A device ID other than the enrolled one is refused even with the right key.
    let other = pki.device(0, "cam-2");
    let spki2 = other.identity.key().public_key().spki_der().unwrap();
    srv.server.registry().enroll_public_key(&spki2, Some("cam-9"), true, "").await.unwrap();
    assert_auth_failed(srv.connect(&other).await.request_challenge().await);
    assert_eq!(srv.reasons("cam-2").await[0], "device_id_mismatch");
}

#[tokio::test]
async fn factory_manifest_import_enrolls_each_device() {
    let pki = TestPki::new("Acme", 1);
    let root = pki.root.der().to_vec();
    let srv = TestServer::start_with(|b| b.trust_anchor(root)).await;
    let devices: Vec<TestDevice> = (0..5).map(|i| pki.device(0, &format!("cam-{i}"))).collect();
    let outsider = pki.device(0, "cam-outside");
    // The manifest as `cert issue-batch` writes it (IssuedRecord), with PEMs on some lines.
    let lines: Vec<String> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut v = serde_json::to_value(&d.record).unwrap();
            if i % 2 == 0 {
                v["certificate_pem"] = d.record.pem().into();
            }
            v.to_string()
        })
        .collect();
    let manifest = lines.join("\n");
    let token = srv.admin_token().await;
    let mut op = ironclad_agent::OperatorClient::connect(&srv.endpoint(), &token).await.unwrap();
    let report = op.import_manifest(&manifest).await.unwrap();
    assert_eq!((report["records"].as_u64(), report["inserted"].as_u64()), (Some(5), Some(5)));
    let again = op.import_manifest(&manifest).await.unwrap();
    assert_eq!((again["inserted"].as_u64(), again["existing"].as_u64()), (Some(0), Some(5)));

    for d in &devices {
        srv.connect(d).await.authenticate().await.unwrap();
    }
    assert_auth_failed(srv.connect(&outsider).await.request_challenge().await);
    assert_eq!(srv.reasons("cam-outside").await[0], "not_enrolled");

    // A line whose PEM does not match its fingerprint fails the whole import.
    let mut bad = serde_json::to_value(&outsider.record).unwrap();
    bad["certificate_pem"] = devices[0].record.pem().into();
    let e = op.import_manifest(&bad.to_string()).await.unwrap_err();
    assert_eq!(e.wire_code(), Some(ironclad_proto::ErrorCode::BadRequest));
    assert!(e.to_string().contains("line 1"), "{e}");
}

/// A line of `ironclad factory provision --manifest` exactly as that command writes it.
#[tokio::test]
async fn factory_provision_manifest_imports_as_written() {
    let pki = TestPki::new("Acme", 1);
    let root = pki.root.der().to_vec();
    let srv = TestServer::start_with(|b| b.trust_anchor(root)).await;
    let device = pki.device(0, "cam-PO-1-000001");
    let r = &device.record;
    let line = serde_json::json!({
        "device_id": r.device_id, "order": "PO-1", "serial": r.serial, "family": "cam",
        "sha256_fingerprint": r.sha256_fingerprint, "not_after": r.not_after,
        "certificate_pem": r.pem(), "fw_decrypt_public": "11".repeat(32),
    });
    let registry = srv.server.registry();
    let report = registry.import_manifest(&format!("{line}\n"), "factory").await.unwrap();
    assert_eq!((report.records, report.counts.inserted), (1, 1));
    srv.connect(&device).await.authenticate().await.unwrap();

    // A line whose device_id is not its certificate's CN is refused, naming the line.
    let other = pki.device(0, "cam-PO-1-000002");
    let mut bad = serde_json::to_value(&other.record).unwrap();
    bad["certificate_pem"] = other.record.pem().into();
    bad["device_id"] = "cam-PO-1-000009".into();
    let e = registry.import_manifest(&format!("{line}\n{bad}\n"), "factory").await.unwrap_err();
    assert!(e.to_string().contains("line 2") && e.to_string().contains("CN"), "{e}");
}
