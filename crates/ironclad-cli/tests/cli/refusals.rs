//! Every refusal names its reason, and a refused command leaves nothing half-written.

use std::fs;

use ironclad_testkit::run_ok;

use crate::{Env, openssl, s};

fn issue(env: &Env, csr: &str) -> String {
    env.fails(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", csr, "--out", "x.pem"])
}

#[test]
fn wrong_passphrase_is_refused_clearly() {
    let env = Env::new();
    env.pki();
    let csr = env.device_csr("d1");
    let out = env
        .cmd(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr)])
        .env("IRONCLAD_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = crate::text(&out);
    assert!(text.contains("wrong passphrase"), "{text}");
    assert!(!env.path("x.pem").exists());
}

#[test]
fn passphrase_file_works_and_argv_passphrases_do_not_exist() {
    let env = Env::new();
    fs::write(env.path("pass.txt"), format!("{}\n", crate::PASS)).unwrap();
    let out = env
        .cmd(&["ca", "init", "--pki", "pki", "--passphrase-file", "pass.txt"])
        .env_remove("IRONCLAD_PASSPHRASE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::text(&out));
    let err = env.fails(&["ca", "init", "--pki", "pki2", "--passphrase", "secret"]);
    assert!(err.contains("unexpected argument"), "{err}");
    let out = env.cmd(&["ca", "list", "--pki", "pki"]).env_remove("IRONCLAD_PASSPHRASE").output().unwrap();
    assert!(out.status.success(), "listing needs no passphrase");
    let out = env
        .cmd(&["ca", "crl", "--pki", "pki", "--ca", "x"])
        .env_remove("IRONCLAD_PASSPHRASE")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn tampered_ca_key_store_is_refused() {
    let env = Env::new();
    env.pki();
    let key = env.path("pki/keys/keys/ca-line-1");
    let mut bytes = fs::read(&key).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&key, bytes).unwrap();
    let csr = env.device_csr("d1");
    let err = issue(&env, s(&csr));
    assert!(err.contains("altered"), "{err}");
}

#[test]
fn weak_passphrase_leaves_no_pki_behind() {
    let env = Env::new();
    let out = env.cmd(&["ca", "init", "--pki", "pki"]).env("IRONCLAD_PASSPHRASE", "short").output().unwrap();
    assert!(!out.status.success());
    assert!(crate::text(&out).contains("at least 8 characters"), "{}", crate::text(&out));
    assert!(!env.path("pki").exists(), "a failed ca init must leave nothing");
    let leftovers: Vec<_> = fs::read_dir(env.dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_profile_leaves_no_orphan_ca_key() {
    let env = Env::new();
    env.ok(&["ca", "init", "--pki", "pki"]);
    let err = env.fails(&[
        "ca",
        "intermediate",
        "--pki",
        "pki",
        "--name",
        "l",
        "--family",
        "f",
        "--country",
        "Germany",
    ]);
    assert!(err.to_lowercase().contains("country"), "{err}");
    assert!(!env.path("pki/ca/l").exists());
    let keys = env.json(&["se", "list", "--store", "pki/keys"]);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "only the root key: {keys}");
}

#[test]
fn tampered_csr_signature_is_refused() {
    let env = Env::new();
    env.pki();
    let csr = env.device_csr("d1");
    let pem = fs::read_to_string(&csr).unwrap();
    let mut der = pem::parse(pem).unwrap().into_contents();
    let last = der.len() - 2;
    der[last] ^= 0x01;
    fs::write(env.path("bad.der"), der).unwrap();
    let err = issue(&env, "bad.der");
    assert!(err.to_lowercase().contains("signature"), "{err}");
}

#[test]
fn malformed_and_oversized_csrs_are_refused() {
    let env = Env::new();
    env.pki();
    fs::write(env.path("junk.csr"), b"\x30\x82\x01\x00 this is not DER").unwrap();
    let err = issue(&env, "junk.csr");
    assert!(err.to_lowercase().contains("malformed"), "{err}");
    fs::write(env.path("huge.csr"), vec![0x30; 200_000]).unwrap();
    let err = issue(&env, "huge.csr");
    assert!(err.contains("at most"), "{err}");
}

#[test]
fn openssl_csrs_violating_the_policy_are_refused_with_the_reason() {
    let env = Env::new();
    env.pki();
    let Some(openssl) = openssl() else { return };
    let make = |name: &str, args: &[&str]| {
        let key = env.path(&format!("{name}.key"));
        let csr = env.path(&format!("{name}.csr"));
        let mut cmd = vec!["req", "-new", "-nodes", "-keyout", s(&key), "-out", s(&csr), "-subj"];
        let subj = format!("/CN={name}");
        cmd.push(&subj);
        cmd.extend_from_slice(args);
        run_ok(&openssl, &cmd);
        format!("{name}.csr")
    };
    let rsa1024 = make("rsa1024", &["-newkey", "rsa:1024"]);
    let err = issue(&env, &rsa1024);
    assert!(err.contains("1024"), "{err}");

    let p384 = make("p384", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]);
    let err = issue(&env, &p384);
    assert!(err.to_lowercase().contains("curve"), "{err}");

    let ca = make(
        "wants-ca",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    let err = issue(&env, &ca);
    assert!(err.contains("CA"), "{err}");

    let bad_cn = make("bad name with spaces", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let err = issue(&env, &bad_cn);
    assert!(err.to_lowercase().contains("device id"), "{err}");

    // RSA-2048 is accepted (the signature on the certificate is still the CA's ECDSA).
    let rsa2048 = make("rsa2048", &["-newkey", "rsa:2048"]);
    env.ok(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", &rsa2048, "--out", "rsa.pem"]);
    // Requested extensions are never copied: the SAN asked for does not appear.
    let san = make(
        "wants-san",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-addext",
            "subjectAltName=DNS:evil.example",
        ],
    );
    env.ok(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", &san, "--out", "san.pem"]);
    let text = run_ok(&openssl, &["x509", "-in", s(&env.path("san.pem")), "-text", "-noout"]);
    assert!(!text.contains("evil.example"), "{text}");
}

#[test]
fn a_device_id_cannot_be_taken_over_by_another_key() {
    let env = Env::new();
    env.pki();
    let first = env.device_csr("cam-7");
    env.ok(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&first), "--out", "a.pem"]);
    // A clone: same device ID, a different key.
    env.ok(&["se", "keygen", "--store", "clone-se", "--init", "--label", "auth"]);
    env.ok(&[
        "se",
        "csr",
        "--store",
        "clone-se",
        "--label",
        "auth",
        "--device-id",
        "cam-7",
        "--out",
        "clone.csr",
    ]);
    let err = issue(&env, "clone.csr");
    assert!(err.contains("cam-7") && err.to_lowercase().contains("already"), "{err}");
}

#[test]
fn expired_not_yet_valid_and_foreign_chains_are_refused() {
    let env = Env::new();
    env.pki();
    let csr = env.device_csr("d1");
    env.ok(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr), "--out", "d1.pem"]);
    let err = env.fails(&["cert", "verify", "--pki", "pki", "d1.pem", "--at", "2090-01-01T00:00:00Z"]);
    assert!(err.to_lowercase().contains("expired"), "{err}");
    let err = env.fails(&["cert", "verify", "--pki", "pki", "d1.pem", "--at", "2001-01-01T00:00:00Z"]);
    assert!(err.contains("not valid before"), "{err}");

    // Another company's PKI does not vouch for our device, and vice versa.
    let other = Env::new();
    other.pki();
    fs::copy(env.path("d1.pem"), other.path("d1.pem")).unwrap();
    let err = other.fails(&["cert", "verify", "--pki", "pki", "d1.pem"]);
    assert!(err.contains("REFUSED"), "{err}");
    let root = s(&other.path("pki/root.pem")).to_owned();
    let err = env.fails(&["cert", "verify", "--root", &root, "d1.pem"]);
    assert!(err.contains("REFUSED"), "{err}");

    // A certificate whose bytes were altered is refused.
    let pem = fs::read_to_string(env.path("d1.pem")).unwrap();
    let mut der = pem::parse(pem).unwrap().into_contents();
    let mid = der.len() / 2;
    der[mid] ^= 0x01;
    fs::write(env.path("tampered.der"), der).unwrap();
    env.fails(&["cert", "verify", "--pki", "pki", "tampered.der"]);
}

#[test]
fn certificates_unknown_to_the_index_are_refused() {
    // Signed by our CA but never recorded: an index that lost it cannot vouch for it.
    let env = Env::new();
    env.pki();
    let csr = env.device_csr("d1");
    env.ok(&["cert", "issue", "--pki", "pki", "--ca", "line-1", "--csr", s(&csr), "--out", "d1.pem"]);
    fs::remove_file(env.path("pki/index.sqlite")).unwrap();
    let _ = fs::remove_file(env.path("pki/index.sqlite-wal"));
    let _ = fs::remove_file(env.path("pki/index.sqlite-shm"));
    let err = env.fails(&["cert", "verify", "--pki", "pki", "d1.pem"]);
    assert!(err.contains("not in the issued-certificate index"), "{err}");
}
