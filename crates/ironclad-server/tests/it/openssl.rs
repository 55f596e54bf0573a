//! Interop with OpenSSL's client: `openssl s_client -cert -key` completes mutual TLS (1.3 and
//! 1.2) with an enrolled device certificate and gets a challenge; with a certificate from an
//! unknown CA the handshake is refused and audited.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use ironclad_pki::KeyPair;

use crate::common::*;

const REQUEST: &str =
    "POST /v1/auth/challenge HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn s_client(openssl: &Path, port: u16, dir: &Path, version: &str) -> String {
    let mut child = Command::new(openssl)
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost", version])
        .arg("-cert")
        .arg(dir.join("dev.pem"))
        .arg("-key")
        .arg(dir.join("dev.key"))
        .arg("-CAfile")
        .arg(dir.join("ca.pem"))
        .args(["-verify_return_error", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(REQUEST.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Writes the device's certificate and (test-only, exported) key and the server CA.
fn write_credentials(dir: &Path, cert_pem: &str, key: &KeyPair, server_ca: &str) {
    std::fs::write(dir.join("dev.pem"), cert_pem).unwrap();
    std::fs::write(dir.join("dev.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), server_ca).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_client_with_enrolled_certificate_gets_a_challenge() {
    let Some(openssl) = ironclad_testkit::require_tool("openssl") else { return };
    let pki = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let key = KeyPair::generate().unwrap();
    let record = pki.issue(0, &key, "cam-openssl");
    let dir = tempfile::tempdir().unwrap();
    write_credentials(dir.path(), &record.pem(), &key, &srv.ca_pem);
    let port = srv.server.port();
    for version in ["-tls1_3", "-tls1_2"] {
        let (o, d) = (openssl.clone(), dir.path().to_path_buf());
        let out = tokio::task::spawn_blocking(move || s_client(&o, port, &d, version)).await.unwrap();
        assert!(out.contains("HTTP/1.1 200 OK"), "{version}: {out}");
        assert!(out.contains("\"challenge_id\""), "{version}: {out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{version}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_client_with_unknown_ca_is_refused() {
    let Some(openssl) = ironclad_testkit::require_tool("openssl") else { return };
    let pki = TestPki::new("Acme", 1);
    // Same names as the real CAs, other keys: what a cloner would build.
    let rogue = TestPki::new("Acme", 1);
    let srv = TestServer::start().await;
    srv.enroll_line(&pki, 0).await;
    let key = KeyPair::generate().unwrap();
    let forged = rogue.issue(0, &key, "cam-openssl");
    let dir = tempfile::tempdir().unwrap();
    let chain = format!("{}{}", forged.pem(), rogue.line(0).pem());
    write_credentials(dir.path(), &chain, &key, &srv.ca_pem);
    let port = srv.server.port();
    for version in ["-tls1_3", "-tls1_2"] {
        let (o, d) = (openssl.clone(), dir.path().to_path_buf());
        let out = tokio::task::spawn_blocking(move || s_client(&o, port, &d, version)).await.unwrap();
        assert!(!out.contains("HTTP/1.1"), "{version}: the server answered:\n{out}");
        assert!(out.contains("alert"), "{version}: no TLS alert:\n{out}");
    }
    // The server audits a refused handshake after sending its alert: wait for the records.
    let mut audit = srv.audit().await;
    for _ in 0..100 {
        let refused =
            audit.iter().filter(|e| e.record.reason.as_deref() == Some("client_certificate_invalid")).count();
        if refused >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        audit = srv.audit().await;
    }
    let refused =
        audit.iter().filter(|e| e.record.reason.as_deref() == Some("client_certificate_invalid")).count();
    assert_eq!(refused, 2, "{audit:#?}");
}
