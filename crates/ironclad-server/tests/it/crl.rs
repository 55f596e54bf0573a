//! CRL publication over the real server: an operator uploads a CRL signed by an enrolled group
//! CA; every refusal (unauthenticated, wrong role, not an enrolled CA, wrong signature,
//! tampered, stale, from the future, replayed older number), the entries revoking at the next
//! authentication, and the current CRL served as DER to operators and to devices.

use std::sync::Arc;

use ironclad_agent::{OperatorClient, server_roots};
use ironclad_pki::{CaCertificate, CaIssuer, KeyPair, RevocationReason, RevokedEntry};
use ironclad_proto::ErrorCode;
use ironclad_server::Role;
use ironclad_server::store::Outcome;
use rustls_pki_types::ServerName;
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// A CRL numbered `number` by `ca` (signed with `key`), valid from `this` for `hours`.
fn crl(
    ca: &CaCertificate,
    key: &KeyPair,
    number: u64,
    this: OffsetDateTime,
    hours: i64,
    serials: &[&str],
) -> Vec<u8> {
    let revoked: Vec<RevokedEntry> = serials
        .iter()
        .map(|s| RevokedEntry { serial: (*s).to_owned(), reason: RevocationReason::KeyCompromise, at: this })
        .collect();
    let issuer = CaIssuer::new(ca, key).unwrap();
    ironclad_pki::sign_crl(&issuer, number, this, this + Duration::hours(hours), &revoked)
        .unwrap()
        .der()
        .to_vec()
}

/// A CRL carrying `ca`'s name and key identifier but signed with another key.
fn forged_crl(ca: &CaCertificate, number: u64, serial: &str) -> Vec<u8> {
    let other = KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(&ca.der().to_vec().into(), &other).unwrap();
    let now = now();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now,
        next_update: now + Duration::hours(24),
        crl_number: rcgen::SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(&hex::decode(serial).unwrap()),
            revocation_time: now,
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::PreSpecified(ca.subject_key_id().to_vec()),
    };
    params.signed_by(&issuer).unwrap().der().to_vec()
}

#[track_caller]
fn refused<T: std::fmt::Debug>(r: Result<T, ironclad_agent::Error>, code: ErrorCode, says: &str) {
    match r {
        Err(ironclad_agent::Error::Server { code: c, message, .. }) => {
            assert_eq!(c, Some(code), "{message:?}");
            let m = message.unwrap_or_default();
            assert!(m.contains(says), "expected {says:?} in {m:?}");
        }
        other => panic!("expected {code:?} ({says}), got {other:?}"),
    }
}

/// `GET path` over mutual TLS as `device` (no bearer token): status, content type, body.
async fn device_get(srv: &TestServer, device: &TestDevice, path: &str) -> (u16, String, Vec<u8>) {
    let roots = server_roots(srv.ca_pem.as_bytes()).unwrap();
    let config = ironclad_agent::device_client_config(&device.identity, roots, srv.tls).unwrap();
    let tcp = tokio::net::TcpStream::connect(srv.server.local_addr()).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let content_type =
        head.lines().find_map(|l| l.strip_prefix("content-type: ")).unwrap_or_default().to_owned();
    (status, content_type, raw[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_publication_refusals_revocation_and_serving() {
    let pki = TestPki::new("Acme", 2);
    let srv = TestServer::start().await;
    let group = srv.enroll_line(&pki, 0).await;
    let (line, line_key) = (pki.line(0), &pki.lines[0].0);
    let (d0, d1) = (pki.device(0, "cam-0"), pki.device(0, "cam-1"));
    let mut on0 = srv.connect(&d0).await;
    on0.authenticate().await.unwrap();
    srv.connect(&d1).await.authenticate().await.unwrap();

    let reg = srv.server.registry();
    let admin = srv.admin_token().await;
    let operator = reg.create_api_token("ops", Role::Operator).await.unwrap().secret.to_string();
    let viewer = reg.create_api_token("dash", Role::Viewer).await.unwrap().secret.to_string();
    let ep = srv.endpoint();
    let mut ops = OperatorClient::connect(&ep, &operator).await.unwrap();
    let t = now();
    let first = crl(line, line_key, 2, t, 24, &[&d0.record.serial]);

    // Unauthenticated, or with a role below operator: refused before anything is read.
    let mut anon = OperatorClient::connect(&ep, "").await.unwrap();
    assert_auth_failed(anon.publish_crl(&first).await);
    assert_auth_failed(anon.crl(&group).await);
    let mut dash = OperatorClient::connect(&ep, &viewer).await.unwrap();
    refused(dash.publish_crl(&first).await, ErrorCode::Forbidden, "needs operator");

    // Not a CRL; a CRL of a CA that is not enrolled (line 1), or only pending proof.
    refused(ops.publish_crl(b"junk").await, ErrorCode::BadRequest, "not a well-formed CRL");
    let other_line = crl(pki.line(1), &pki.lines[1].0, 1, t, 24, &[]);
    refused(ops.publish_crl(&other_line).await, ErrorCode::BadRequest, "not an enrolled group CA");
    reg.begin_group(pki.line(1).der(), "pending").await.unwrap();
    refused(ops.publish_crl(&other_line).await, ErrorCode::BadRequest, "not an enrolled group CA");

    // The enrolled CA's name and key identifier, another key; a tampered CRL.
    let forged = forged_crl(line, 3, &d1.record.serial);
    refused(ops.publish_crl(&forged).await, ErrorCode::BadRequest, "signature does not verify");
    let mut tampered = first.clone();
    // The listed serial, changed to cam-1's neighbour: a revocation nobody signed.
    let serial = hex::decode(&d0.record.serial).unwrap();
    let at = tampered.windows(serial.len()).position(|w| w == serial.as_slice()).unwrap();
    tampered[at + serial.len() - 1] ^= 1;
    refused(ops.publish_crl(&tampered).await, ErrorCode::BadRequest, "signature does not verify");

    // Stale (nextUpdate passed) and from the future (beyond the allowed skew).
    let stale = crl(line, line_key, 5, t - Duration::hours(48), 24, &[]);
    refused(ops.publish_crl(&stale).await, ErrorCode::BadRequest, "stale");
    let future = crl(line, line_key, 5, t + Duration::hours(1), 24, &[]);
    refused(ops.publish_crl(&future).await, ErrorCode::BadRequest, "in the future");
    assert_eq!(srv.store.crl(&pki.line(0).sha256_fingerprint_bytes()).await.unwrap(), None);
    on0.get_state().await.unwrap();

    // Published: the listed device is refused at its next request and authentication; its
    // neighbour is not.
    let answer = ops.publish_crl(&first).await.unwrap();
    assert_eq!((answer["number"].as_str(), answer["entries"].as_u64()), (Some("2"), Some(1)), "{answer}");
    assert_eq!(
        (answer["enrollment_id"].as_str(), answer["outcome"].as_str()),
        (Some(group.as_str()), Some("stored"))
    );
    assert_auth_failed(on0.get_state().await);
    assert_auth_failed(srv.connect(&d0).await.authenticate().await);
    assert_eq!(srv.reasons("cam-0").await[0], "revoked");
    srv.connect(&d1).await.authenticate().await.unwrap();
    // PEM works too, and the same CRL again changes nothing.
    let pem_text = pem::encode(&pem::Pem::new("X509 CRL", first.clone()));
    assert_eq!(ops.publish_crl(pem_text.as_bytes()).await.unwrap()["outcome"], "unchanged");

    // An older CRL number (a replay of yesterday's CRL that did not list cam-0) is refused.
    let older = crl(line, line_key, 1, t, 24, &[]);
    refused(ops.publish_crl(&older).await, ErrorCode::Conflict, "not newer");
    let refusal = srv.audit().await.into_iter().find(|e| e.record.event == "operator.crl.publish").unwrap();
    assert_eq!(refusal.record.reason.as_deref(), Some("crl_not_newer"));
    assert_eq!(refusal.record.actor.as_deref(), Some("token:ops"));
    assert_auth_failed(srv.connect(&d0).await.authenticate().await);

    // Served as published: to operators (viewer and up) and to enrolled devices over mutual
    // TLS; the DER is byte-identical.
    assert_eq!(dash.crl(&group).await.unwrap(), first);
    let (status, content_type, body) = device_get(&srv, &d1, &format!("/v1/crls/{group}")).await;
    assert_eq!((status, content_type.as_str()), (200, "application/pkix-crl"));
    assert_eq!(body, first);
    // Not for a revoked device, and nothing for an enrollment without a CRL.
    assert_eq!(device_get(&srv, &d0, &format!("/v1/crls/{group}")).await.0, 401);
    let ind = reg.enroll_certificate(d1.record.pem().as_bytes(), true, "").await.unwrap();
    refused(dash.crl(&ind.id).await, ErrorCode::BadRequest, "not a group");
    refused(dash.crl("00000000000000000000000000000000").await, ErrorCode::NotFound, "enrollment");

    // A newer CRL no longer listing cam-0 (e.g. a hold released) lets it back in.
    let newer = crl(line, line_key, 3, t, 24, &[]);
    assert_eq!(ops.publish_crl(&newer).await.unwrap()["outcome"], "stored");
    srv.connect(&d0).await.authenticate().await.unwrap();

    // The root's CRL revoking the line CA blocks every device under it.
    let root_group = {
        let pending = reg.begin_group(pki.root.der(), "root").await.unwrap();
        let proof = ironclad_server::make_verification_certificate(
            pki.root.der(),
            &pki.root_key,
            pending.verification_code.as_deref().unwrap(),
        )
        .unwrap();
        reg.prove_group(&pending.id, &proof).await.unwrap();
        pending.id
    };
    let line_serial = hex::encode(x509_parser::parse_x509_certificate(line.der()).unwrap().1.raw_serial());
    let by_root = crl(&pki.root, &pki.root_key, 1, t, 24, &[&line_serial]);
    let mut admin_client = OperatorClient::connect(&ep, &admin).await.unwrap();
    assert_eq!(admin_client.publish_crl(&by_root).await.unwrap()["enrollment_id"], root_group.as_str());
    assert_auth_failed(srv.connect(&d1).await.authenticate().await);
    assert_eq!(srv.reasons("cam-1").await[0], "revoked");
    let ok = srv.audit().await.into_iter().find(|e| e.record.event == "operator.crl.publish").unwrap();
    assert_eq!((ok.record.outcome, ok.record.actor.as_deref()), (Outcome::Ok, Some("token:admin")));
}
