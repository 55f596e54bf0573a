//! The CA keys on a PKCS#11 token (SoftHSM2): the same PKI life cycle, checked by OpenSSL and
//! OpenSC's pkcs11-tool, plus how the PIN is found and refused.

use std::fs;
use std::process::Command;

use ironclad_testkit::softhsm::SoftHsm;
use ironclad_testkit::{require_tool, run_ok};

use crate::{Env, openssl, s, text};

/// `ironclad` in `env`, with SoftHSM pointed at `hsm` and the PIN in the default variable.
fn cmd(env: &Env, hsm: &SoftHsm, args: &[&str]) -> Command {
    let mut cmd = env.cmd(args);
    hsm.apply(&mut cmd).env("IRONCLAD_PKCS11_PIN", hsm.pin());
    cmd
}

#[track_caller]
fn ok(env: &Env, hsm: &SoftHsm, args: &[&str]) -> String {
    let out = cmd(env, hsm, args).output().unwrap();
    assert!(out.status.success(), "ironclad {args:?} failed:\n{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[track_caller]
fn fails(env: &Env, hsm: &SoftHsm, args: &[&str]) -> String {
    let out = cmd(env, hsm, args).output().unwrap();
    assert!(!out.status.success(), "ironclad {args:?} unexpectedly succeeded:\n{}", text(&out));
    text(&out)
}

/// `ca intermediate` for `line-1` in `pki`.
const INTERMEDIATE: &[&str] = &[
    "ca",
    "intermediate",
    "--pki",
    "pki",
    "--name",
    "line-1",
    "--org",
    "Acme",
    "--country",
    "DE",
    "--family",
    "acme-cam",
];

#[test]
fn ca_keys_in_softhsm_issue_certificates_openssl_accepts() {
    let Some(hsm) = SoftHsm::new("ironclad-ca") else { return };
    let Some(openssl) = openssl() else { return };
    let env = Env::new();
    // The URI's object names the root key.
    let uri = hsm.uri().replacen('?', ";object=acme-root?", 1);
    let init = cmd(
        &env,
        &hsm,
        &["ca", "init", "--pki", "pki", "--cn", "HSM Root CA", "--pkcs11-uri", &uri, "--json"],
    )
    .output()
    .unwrap();
    assert!(init.status.success(), "{}", text(&init));
    let init: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    assert_eq!(init["root"]["backend"], "pkcs11");
    assert_eq!(init["root"]["key"], "acme-root");
    // pki.json records the token and module, never a PIN; no software store is made.
    let meta = fs::read_to_string(env.path("pki/pki.json")).unwrap();
    let meta_json: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta_json["backend"]["kind"], "pkcs11");
    assert_eq!(meta_json["backend"]["root_key"], "acme-root");
    assert!(meta_json["backend"]["uri"].as_str().unwrap().starts_with("pkcs11:token=ironclad-ca"), "{meta}");
    assert!(!meta.contains(hsm.pin()), "{meta}");
    assert!(!env.path("pki/keys").exists());

    ok(&env, &hsm, INTERMEDIATE);
    let listed = env.json(&["ca", "list", "--pki", "pki"]);
    assert_eq!(listed["backend"]["kind"], "pkcs11", "{listed}");
    let csr = env.device_csr("cam-000001");
    let issued = ok(
        &env,
        &hsm,
        &["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr), "--out", "cam.pem", "--json"],
    );
    let serial =
        serde_json::from_str::<serde_json::Value>(&issued).unwrap()["serial"].as_str().unwrap().to_owned();
    let (root, int) = (env.path("pki/root.pem"), env.path("pki/ca/line-1/cert.pem"));
    let verified =
        run_ok(&openssl, &["verify", "-CAfile", s(&root), "-untrusted", s(&int), s(&env.path("cam.pem"))]);
    assert!(verified.contains(": OK"), "{verified}");

    fs::create_dir(env.path("csrs")).unwrap();
    for i in 0..4 {
        let csr = env.device_csr(&format!("b-{i:03}"));
        fs::rename(&csr, env.path(&format!("csrs/b-{i:03}.csr"))).unwrap();
    }
    ok(
        &env,
        &hsm,
        &[
            "cert",
            "issue-batch",
            "--pki",
            "pki",
            "--ca",
            "line-1",
            "--csr-dir",
            "csrs",
            "--out",
            "certs",
            "--pem-files",
        ],
    );
    for i in 0..4 {
        let cert = env.path(&format!("certs/b-{i:03}.pem"));
        let verified = run_ok(&openssl, &["verify", "-CAfile", s(&root), "-untrusted", s(&int), s(&cert)]);
        assert!(verified.contains(": OK"), "{verified}");
    }

    env.ok(&["cert", "revoke", "--pki", "pki", "--serial", &serial, "--reason", "key-compromise"]);
    ok(&env, &hsm, &["ca", "crl", "--pki", "pki", "--ca", "line-1"]);
    let (crl, chain) = (env.path("pki/ca/line-1/crl.pem"), env.path("pki/ca/line-1/chain.pem"));
    let out =
        ironclad_testkit::run(&openssl, &["crl", "-in", s(&crl), "-CAfile", s(&chain), "-verify", "-noout"]);
    assert!(out.status.success() && text(&out).contains("verify OK"), "{}", text(&out));

    // OpenSC sees both CA keys on the token, sensitive and never extractable.
    let Some(tool) = require_tool("pkcs11-tool") else { return };
    let mut list = Command::new(tool);
    list.args([
        "--module",
        s(hsm.module()),
        "--token-label",
        hsm.token_label(),
        "--login",
        "--pin",
        hsm.pin(),
    ])
    .arg("--list-objects");
    let out = hsm.apply(&mut list).output().unwrap();
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    // One object per block, each starting with an unindented header line.
    let mut blocks: Vec<String> = Vec::new();
    for line in listing.lines() {
        match blocks.last_mut() {
            Some(block) if line.starts_with(' ') => block.push_str(&format!("\n{line}")),
            _ => blocks.push(line.to_owned()),
        }
    }
    for key in ["acme-root", "ca-line-1"] {
        let block = blocks
            .iter()
            .find(|b| b.starts_with("Private Key Object") && b.contains(&format!("label:      {key}\n")))
            .unwrap_or_else(|| panic!("no private key {key}:\n{listing}"));
        assert!(block.contains("sensitive, always sensitive, never extractable"), "{block}");
    }
}

#[test]
fn pin_sources_and_refusals() {
    let Some(hsm) = SoftHsm::new("ironclad-ca") else { return };
    let env = Env::new();
    let uri = hsm.uri();
    let init = ["ca", "init", "--pki", "pki", "--pkcs11-uri", &uri];

    let wrong = cmd(&env, &hsm, &init).env("IRONCLAD_PKCS11_PIN", "wrong-pin-98765").output().unwrap();
    let said = text(&wrong);
    assert!(!wrong.status.success() && said.contains("incorrect PIN"), "{said}");
    assert!(!said.contains("98765"), "the PIN must not be echoed: {said}");
    assert!(!env.path("pki").exists(), "a failed init leaves nothing behind");

    let none = cmd(&env, &hsm, &init).env_remove("IRONCLAD_PKCS11_PIN").output().unwrap();
    assert!(text(&none).contains("no PKCS#11 PIN"), "{}", text(&none));

    let in_uri = format!("{uri}&pin-value=1234");
    let said = fails(&env, &hsm, &["ca", "init", "--pki", "pki", "--pkcs11-uri", &in_uri]);
    assert!(said.contains("pin-value"), "{said}");
    let said = fails(&env, &hsm, &["ca", "init", "--pki", "pki", "--pkcs11-uri", "pkcs11:token=ironclad-ca"]);
    assert!(said.contains("module"), "{said}");

    // --pin-file, with nothing in the environment.
    fs::write(env.path("pin"), format!("{}\n", hsm.pin())).unwrap();
    let out = cmd(&env, &hsm, &["ca", "init", "--pki", "pki", "--pkcs11-uri", &uri, "--pin-file", "pin"])
        .env_remove("IRONCLAD_PKCS11_PIN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A custom --pin-env.
    let out = cmd(&env, &hsm, INTERMEDIATE)
        .env_remove("IRONCLAD_PKCS11_PIN")
        .env("MY_HSM_PIN", hsm.pin())
        .args(["--pin-env", "MY_HSM_PIN"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // pin-source in the URI; it is not written to pki.json (the file may not outlive the command).
    let with_source =
        format!("{}&pin-source=file:{}", hsm.uri().replacen('?', ";object=root-2?", 1), s(&env.path("pin")));
    let out = cmd(&env, &hsm, &["ca", "init", "--pki", "pki3", "--pkcs11-uri", &with_source])
        .env_remove("IRONCLAD_PKCS11_PIN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!fs::read_to_string(env.path("pki3/pki.json")).unwrap().contains("pin-source"));

    // The token already holds `root`: a second PKI on it is refused, and the first still works.
    let said = fails(&env, &hsm, &["ca", "init", "--pki", "pki2", "--pkcs11-uri", &uri]);
    assert!(said.contains("already exists"), "{said}");
    assert!(!env.path("pki2").exists());
    let csr = env.device_csr("cam-000009");
    ok(&env, &hsm, &["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr), "--out", "c.pem"]);
}
