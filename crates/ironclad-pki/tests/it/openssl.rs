//! Interop with OpenSSL 3.0: our chains, CSRs from `openssl req`, our CRLs, and the exact
//! device profile as `openssl x509 -text` prints it. Skips when openssl is missing, unless
//! IRONCLAD_REQUIRE_PEERS=1.

use std::path::{Path, PathBuf};

use crate::common::*;
use ironclad_pki::*;
use ironclad_testkit::{require_tool, run_fails, run_ok};
use time::Duration;

fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> String {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn openssl_verifies_our_chains() {
    let Some(openssl) = require_tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    for (label, pki) in [
        ("p256", Pki::p256()),
        ("ed25519-root", Pki::with(&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P256_SHA256)),
        ("ed25519-all", Pki::with(&rcgen::PKCS_ED25519, &rcgen::PKCS_ED25519)),
    ] {
        let mut index = MemoryIndex::new();
        let rec = issue(&pki, &mut index, "cam-0001");
        let root = write(dir.path(), &format!("{label}-root.pem"), pki.root.pem());
        let int = write(dir.path(), &format!("{label}-int.pem"), pki.int.pem());
        let dev = write(dir.path(), &format!("{label}-dev.pem"), rec.pem());
        let out = run_ok(&openssl, &["verify", "-CAfile", &root, "-untrusted", &int, &dev]);
        assert!(out.contains(": OK"), "{label}: {out}");
        let out = run_ok(
            &openssl,
            &["verify", "-purpose", "sslclient", "-x509_strict", "-CAfile", &root, "-untrusted", &int, &dev],
        );
        assert!(out.contains(": OK"), "{label}: {out}");
    }
}

#[test]
fn openssl_refuses_a_certificate_from_another_ca() {
    let Some(openssl) = require_tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::p256();
    let other = Pki::p256();
    let mut index = MemoryIndex::new();
    let rec = issue(&pki, &mut index, "cam-0001");
    let root = write(dir.path(), "other-root.pem", other.root.pem());
    let int = write(dir.path(), "other-int.pem", other.int.pem());
    let dev = write(dir.path(), "dev.pem", rec.pem());
    let out = run_fails(&openssl, &["verify", "-CAfile", &root, "-untrusted", &int, &dev]);
    assert!(out.contains("unable to get local issuer certificate"), "{out}");
}

#[test]
fn openssl_made_csrs_are_issued() {
    let Some(openssl) = require_tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let root = write(dir.path(), "root.pem", pki.root.pem());
    let int = write(dir.path(), "int.pem", pki.int.pem());
    for (name, keygen) in [
        ("p256", vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("ed25519", vec!["-newkey", "ed25519"]),
    ] {
        let key = format!("{d}/{name}.key");
        let csr_path = format!("{d}/{name}.csr");
        let subj = format!("/C=US/O=Someone Else/CN=ossl-{name}");
        let mut args = vec!["req", "-new", "-nodes", "-keyout", &key, "-subj", &subj, "-out", &csr_path];
        args.extend(keygen.iter().copied());
        run_ok(&openssl, &args);
        let csr_bytes = std::fs::read(&csr_path).unwrap();
        let out = issue_one(&csr_bytes, &pki.issuer(), &profile(), &mut index, &Limits::default(), now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rec = out.record();
        assert_eq!(rec.device_id, format!("ossl-{name}"));
        let dev = write(dir.path(), &format!("{name}-dev.pem"), rec.pem());
        let out = run_ok(&openssl, &["verify", "-CAfile", &root, "-untrusted", &int, &dev]);
        assert!(out.contains(": OK"), "{out}");
        // The certificate carries the key openssl generated.
        let cert_pub = run_ok(&openssl, &["x509", "-in", &dev, "-noout", "-pubkey"]);
        let key_pub = run_ok(&openssl, &["pkey", "-in", &key, "-pubout"]);
        assert_eq!(cert_pub, key_pub);
    }
}

#[test]
fn openssl_prints_the_device_profile() {
    let Some(openssl) = require_tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::p256();
    let mut index = MemoryIndex::new();
    let rec = issue(&pki, &mut index, "cam-0001");
    let dev = write(dir.path(), "dev.pem", rec.pem());
    let text = run_ok(&openssl, &["x509", "-in", &dev, "-noout", "-text"]);
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let after = |header: &str| -> &str {
        let i = lines
            .iter()
            .position(|l| l.trim() == header)
            .unwrap_or_else(|| panic!("missing {header:?} in\n{text}"));
        lines[i + 1].trim()
    };
    assert!(text.contains("Version: 3 (0x2)"), "{text}");
    assert!(text.contains("Signature Algorithm: ecdsa-with-SHA256"), "{text}");
    assert!(text.contains("Subject: C = DE, O = Acme, CN = cam-0001"), "{text}");
    assert!(text.contains("Issuer: C = DE, O = Acme, CN = Line 1 CA"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert_eq!(after("X509v3 Basic Constraints: critical"), "CA:FALSE");
    assert_eq!(after("X509v3 Key Usage: critical"), "Digital Signature");
    assert_eq!(after("X509v3 Extended Key Usage:"), "TLS Web Client Authentication");
    let ski = after("X509v3 Subject Key Identifier:");
    assert_eq!(ski.len(), 20 * 3 - 1, "{ski}");
    let aki = after("X509v3 Authority Key Identifier:");
    let int_ski: String =
        pki.int.subject_key_id().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    assert!(aki.ends_with(&int_ski), "{aki} vs {int_ski}");
    let family_header = format!("{FAMILY_EXTENSION_OID}:");
    assert!(lines.iter().any(|l| l.trim() == family_header), "family OID missing or critical:\n{text}");
    assert!(after(&family_header).ends_with("Smart Camera"), "{text}");
    // Exactly these six extensions: nothing else was added or copied.
    let start = lines.iter().position(|l| l.trim() == "X509v3 extensions:").unwrap();
    let headers: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with("Signature Algorithm"))
        .filter(|l| l.starts_with("            ") && !l.starts_with("             "))
        .map(|l| l.trim())
        .collect();
    assert_eq!(headers.len(), 6, "{headers:?}");
    for unexpected in ["Subject Alternative Name", "Netscape", "CRL Distribution"] {
        assert!(!text.contains(unexpected), "{unexpected} in\n{text}");
    }
    let serial = run_ok(&openssl, &["x509", "-in", &dev, "-noout", "-serial"]);
    assert_eq!(serial.trim(), format!("serial={}", rec.serial.to_uppercase()));
}

#[test]
fn openssl_shows_no_well_defined_expiry() {
    let Some(openssl) = require_tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::p256();
    let prof = DeviceProfile::new("Acme", "DE", "Cam", Validity::NoWellDefinedExpiry).unwrap();
    let (_, der) = device("forever-1");
    let csr = parse_and_verify(&der, &Limits::default()).unwrap();
    let e = sign_device(&csr, &pki.issuer(), &prof, now()).unwrap();
    let dev = write(dir.path(), "dev.pem", e.record.pem());
    let out = run_ok(&openssl, &["x509", "-in", &dev, "-noout", "-enddate"]);
    assert_eq!(out.trim(), "notAfter=Dec 31 23:59:59 9999 GMT");
    let root = write(dir.path(), "root.pem", pki.root.pem());
    let int = write(dir.path(), "int.pem", pki.int.pem());
    run_ok(&openssl, &["verify", "-CAfile", &root, "-untrusted", &int, &dev]);
}

#[test]
fn openssl_accepts_our_crl() {
    let Some(openssl) = require_tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    for pki in [Pki::p256(), Pki::with(&rcgen::PKCS_ED25519, &rcgen::PKCS_ED25519)] {
        let mut index = MemoryIndex::new();
        let a = issue(&pki, &mut index, "dev-a");
        let b = issue(&pki, &mut index, "dev-b");
        let kept = issue(&pki, &mut index, "dev-c");
        index.revoke(&a.serial, RevocationReason::KeyCompromise, now()).unwrap();
        index.revoke(&b.serial, RevocationReason::CessationOfOperation, now()).unwrap();
        // OpenSSL checks the CRL against the wall clock.
        let wall = time::OffsetDateTime::now_utc();
        let crl = build_crl(&pki.issuer(), &mut index, wall, wall + Duration::days(30)).unwrap();
        let crl_path = write(dir.path(), "crl.pem", crl.pem());
        let bundle = write(dir.path(), "bundle.pem", format!("{}{}", pki.int.pem(), pki.root.pem()));
        let out = run_ok(&openssl, &["crl", "-in", &crl_path, "-noout", "-verify", "-CAfile", &bundle]);
        let _ = out; // "verify OK" goes to stderr; success is the exit status.
        let text = run_ok(&openssl, &["crl", "-in", &crl_path, "-noout", "-text"]);
        assert!(text.contains(&format!("Serial Number: {}", a.serial.to_uppercase())), "{text}");
        assert!(text.contains(&format!("Serial Number: {}", b.serial.to_uppercase())), "{text}");
        assert!(!text.contains(&kept.serial.to_uppercase()), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Cessation Of Operation"), "{text}");
        assert!(text.contains("X509v3 CRL Number:"), "{text}");
        // And a device on the CRL fails `openssl verify -crl_check`.
        let root = write(dir.path(), "root.pem", pki.root.pem());
        let int = write(dir.path(), "int.pem", pki.int.pem());
        let dev = write(dir.path(), "dev-a.pem", a.pem());
        let out = run_fails(
            &openssl,
            &["verify", "-crl_check", "-CAfile", &root, "-untrusted", &int, "-CRLfile", &crl_path, &dev],
        );
        assert!(out.contains("revoked"), "{out}");
        let ok = write(dir.path(), "dev-c.pem", kept.pem());
        run_ok(
            &openssl,
            &["verify", "-crl_check", "-CAfile", &root, "-untrusted", &int, "-CRLfile", &crl_path, &ok],
        );
    }
}
