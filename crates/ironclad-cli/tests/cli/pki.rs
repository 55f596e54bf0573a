//! The PKI life cycle through the CLI, checked by OpenSSL.

use ironclad_testkit::{run_fails, run_ok};

use crate::{Env, openssl, s};

#[test]
fn issue_verify_revoke_crl_with_openssl() {
    let env = Env::new();
    env.pki();
    let csr = env.device_csr("cam-000001");
    let Some(openssl) = openssl() else { return };

    // Our CSR is a valid PKCS#10 request for OpenSSL.
    run_ok(&openssl, &["req", "-in", s(&csr), "-verify", "-noout"]);

    let issued =
        env.json(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr), "--out", "cam.pem"]);
    assert_eq!(issued["outcome"], "issued");
    assert_eq!(issued["device_id"], "cam-000001");
    let serial = issued["serial"].as_str().unwrap().to_owned();
    assert_eq!(serial.len(), 32, "16-byte serial");

    let root = env.path("pki/root.pem");
    let int = env.path("pki/ca/line-1/cert.pem");
    let cert = env.path("cam.pem");
    let out = run_ok(&openssl, &["verify", "-CAfile", s(&root), "-untrusted", s(&int), s(&cert)]);
    assert!(out.contains(": OK"), "{out}");
    run_ok(
        &openssl,
        &["verify", "-CAfile", s(&root), "-untrusted", s(&int), "-purpose", "sslclient", s(&cert)],
    );

    let verified = env.json(&["cert", "verify", "--pki", "pki", "cam.pem"]);
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["device_id"], "cam-000001");
    assert_eq!(verified["family"], "acme-cam");
    assert_eq!(verified["revocation_checked"], true);

    // The same CSR again: nothing new is signed.
    let again =
        env.json(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr), "--out", "cam2.pem"]);
    assert_eq!(again["outcome"], "existing");
    assert_eq!(again["serial"], serial.as_str());

    // Revoke: ironclad refuses at once; the CRL tells OpenSSL.
    env.ok(&["cert", "revoke", "--pki", "pki", "--serial", &serial, "--reason", "key-compromise"]);
    let refused = env.fails(&["cert", "verify", "--pki", "pki", "cam.pem"]);
    assert!(refused.contains("revoked"), "{refused}");
    let crl = env.json(&["ca", "crl", "--pki", "pki", "--ca", "line-1"]);
    assert_eq!(crl["revoked"], 1);
    assert_eq!(crl["crl_number"], 1);
    let crl_path = env.path("pki/ca/line-1/crl.pem");
    let chain = env.path("pki/ca/line-1/chain.pem");
    let out = ironclad_testkit::run(
        &openssl,
        &["crl", "-in", s(&crl_path), "-CAfile", s(&chain), "-verify", "-noout"],
    );
    let said = crate::text(&out);
    assert!(out.status.success() && said.contains("verify OK"), "openssl crl -verify: {said}");
    let text = run_ok(&openssl, &["crl", "-in", s(&crl_path), "-text", "-noout"]);
    assert!(text.to_uppercase().contains(&serial.to_uppercase()), "CRL lists the serial:\n{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    // With the CRL, OpenSSL refuses the certificate too.
    let crl_chain = env.path("crl-bundle.pem");
    std::fs::write(&crl_chain, std::fs::read(&crl_path).unwrap()).unwrap();
    let refused = run_fails(
        &openssl,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            s(&root),
            "-untrusted",
            s(&int),
            "-CRLfile",
            s(&crl_chain),
            s(&cert),
        ],
    );
    assert!(refused.contains("revoked"), "{refused}");
    // A second CRL gets the next number.
    assert_eq!(env.json(&["ca", "crl", "--pki", "pki", "--ca", "line-1"])["crl_number"], 2);
}

#[test]
fn openssl_x509_text_shows_the_device_profile() {
    let env = Env::new();
    env.pki();
    let csr = env.device_csr("cam-42");
    env.ok(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr), "--out", "cam.pem"]);
    let Some(openssl) = openssl() else { return };
    let text = run_ok(&openssl, &["x509", "-in", s(&env.path("cam.pem")), "-text", "-noout"]);
    for expected in [
        "Version: 3 (0x2)",
        "Signature Algorithm: ecdsa-with-SHA256",
        "Subject: C = DE, O = Acme, CN = cam-42",
        "Public Key Algorithm: id-ecPublicKey",
        "NIST CURVE: P-256",
        "X509v3 Key Usage: critical\n                Digital Signature\n",
        "X509v3 Extended Key Usage: \n                TLS Web Client Authentication\n",
        "X509v3 Basic Constraints: critical\n                CA:FALSE",
        "X509v3 Subject Key Identifier:",
        "X509v3 Authority Key Identifier:",
        "2.25.",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // The family extension is present and not critical.
    let family_line = text.lines().find(|l| l.contains("2.25.")).unwrap();
    assert!(!family_line.contains("critical"), "{family_line}");
    assert!(text.contains("acme-cam"), "{text}");

    let shown = env.json(&["cert", "show", "cam.pem"]);
    assert_eq!(shown["version"], 3);
    let names: Vec<&str> =
        shown["extensions"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    for name in
        ["keyUsage", "extendedKeyUsage", "basicConstraints", "subjectKeyIdentifier", "authorityKeyIdentifier"]
    {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[test]
fn csrs_made_by_openssl_are_issued_for_p256_and_ed25519() {
    let env = Env::new();
    env.pki();
    let Some(openssl) = openssl() else { return };
    for (alg, args) in [
        ("p256", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"][..]),
        ("ed25519", &["-newkey", "ed25519"][..]),
    ] {
        let key = env.path(&format!("{alg}.key"));
        let csr = env.path(&format!("{alg}.csr"));
        let mut cmd = vec!["req", "-new", "-nodes", "-keyout", s(&key), "-out", s(&csr)];
        cmd.extend_from_slice(args);
        let subj = format!("/CN=openssl-{alg}");
        cmd.extend_from_slice(&["-subj", &subj]);
        run_ok(&openssl, &cmd);
        let pem = format!("{alg}.pem");
        let issued =
            env.json(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr), "--out", &pem]);
        assert_eq!(issued["device_id"], format!("openssl-{alg}"));
        run_ok(
            &openssl,
            &[
                "verify",
                "-CAfile",
                s(&env.path("pki/root.pem")),
                "-untrusted",
                s(&env.path("pki/ca/line-1/cert.pem")),
                s(&env.path(&pem)),
            ],
        );
        assert_eq!(env.json(&["cert", "verify", "--pki", "pki", &pem])["valid"], true);
    }
}

#[test]
fn ed25519_root_and_line_ca_interoperate_with_openssl() {
    let env = Env::new();
    env.ok(&["ca", "init", "--pki", "pki", "--algorithm", "ed25519"]);
    env.ok(&[
        "ca",
        "intermediate",
        "--pki",
        "pki",
        "--name",
        "ed-line",
        "--family",
        "f",
        "--algorithm",
        "ed25519",
    ]);
    let csr = env.device_csr("dev-ed");
    env.ok(&["cert", "issue", "--pki", "pki", "--ca", "ed-line", "--csr", s(&csr), "--out", "dev.pem"]);
    assert_eq!(env.json(&["cert", "verify", "--pki", "pki", "dev.pem"])["valid"], true);
    let Some(openssl) = openssl() else { return };
    let out = run_ok(
        &openssl,
        &[
            "verify",
            "-CAfile",
            s(&env.path("pki/root.pem")),
            "-untrusted",
            s(&env.path("pki/ca/ed-line/cert.pem")),
            s(&env.path("dev.pem")),
        ],
    );
    assert!(out.contains("OK"), "{out}");
}

#[test]
fn ca_list_and_se_list_report_what_exists() {
    let env = Env::new();
    env.pki();
    let cas = env.json(&["ca", "list", "--pki", "pki"]);
    assert_eq!(cas["intermediates"][0]["name"], "line-1");
    assert_eq!(cas["intermediates"][0]["profile"]["family"], "acme-cam");
    let keys = env.json(&["se", "list", "--store", "pki/keys"]);
    let labels: Vec<&str> =
        keys["keys"].as_array().unwrap().iter().map(|k| k["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["ca-line-1", "root"]);
}

#[test]
fn demo_runs_every_stage() {
    let env = Env::new();
    let out = env.json(&["demo", "--devices", "8"]);
    assert_eq!(out["passed"], true, "{out}");
    let stages: Vec<&str> =
        out["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    for stage in [
        "key ceremony",
        "production order",
        "factory provisioning",
        "over-production refused",
        "chain verification",
        "revoked device refused",
        "impostor refused",
        "cloud server",
        "family enrollment",
        "device authentication",
        "impostor refused at the cloud",
        "secure boot and update",
        "pairing",
        "camera stream encrypted",
        "OTA in stages",
        "signed command",
        "encrypted logs",
    ] {
        assert!(stages.contains(&stage), "{stage} missing: {stages:?}");
    }
}
