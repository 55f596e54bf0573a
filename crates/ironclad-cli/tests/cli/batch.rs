//! Batch issuance through the CLI: parallel, idempotent, partial failures listed.

use std::fs;

use crate::{Env, s};

#[test]
fn batch_issues_all_good_csrs_lists_bad_ones_and_is_idempotent() {
    let env = Env::new();
    env.pki();
    fs::create_dir(env.path("csrs")).unwrap();
    for i in 0..12 {
        let csr = env.device_csr(&format!("b-{i:03}"));
        fs::rename(&csr, env.path(&format!("csrs/b-{i:03}.csr"))).unwrap();
    }
    fs::write(
        env.path("csrs/garbage.csr"),
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    )
    .unwrap();
    let out = env
        .cmd(&[
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
            "--json",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a refused CSR makes the batch exit non-zero");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["issued"], 12);
    assert_eq!(report["failed"][0]["name"], "garbage.csr");
    assert!(!report["failed"][0]["reason"].as_str().unwrap().is_empty());
    for i in 0..12 {
        assert!(env.path(&format!("certs/b-{i:03}.pem")).exists());
    }
    let manifest = fs::read_to_string(env.path("certs/manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 12);
    let first: serde_json::Value = serde_json::from_str(manifest.lines().next().unwrap()).unwrap();
    for field in ["serial", "device_id", "family", "sha256_fingerprint", "not_after"] {
        assert!(first.get(field).is_some(), "manifest lacks {field}: {first}");
    }
    assert_eq!(env.json(&["cert", "verify", "--pki", "pki", "certs/b-005.pem"])["valid"], true);
    // The bundle holds every certificate, in manifest order.
    let bundle = fs::read(env.path("certs/certificates.pem")).unwrap();
    let certs = pem::parse_many(&bundle).unwrap();
    assert_eq!(certs.len(), 12);
    let shown = env.json(&["cert", "show", "certs/b-000.pem"]);
    assert_eq!(shown["serial"], first["serial"]);

    // Re-run without the bad CSR: nothing is issued twice.
    fs::remove_file(env.path("csrs/garbage.csr")).unwrap();
    fs::remove_file(env.path("certs/b-003.pem")).unwrap();
    let again = env.json(&[
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
    ]);
    assert_eq!(again["issued"], 0);
    assert_eq!(again["existing"], 12);
    assert!(env.path("certs/b-003.pem").exists(), "a re-run restores missing outputs");
    let leftovers: Vec<_> = fs::read_dir(env.path("certs"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with('.').then_some(name)
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let staging: Vec<_> = fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with(".issue-batch").then_some(name)
        })
        .collect();
    assert!(staging.is_empty(), "staging directories left behind: {staging:?}");
}

#[test]
fn a_batch_that_fails_outright_publishes_nothing() {
    let env = Env::new();
    env.pki();
    fs::create_dir(env.path("csrs")).unwrap();
    let csr = env.device_csr("z-1");
    fs::rename(&csr, env.path("csrs/z-1.csr")).unwrap();
    // The CA key store cannot be opened: nothing may appear in --out.
    let out = env
        .cmd(&[
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
        ])
        .env("IRONCLAD_PASSPHRASE", "wrong passphrase!")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!env.path("certs").exists());
}

#[test]
fn batch_accepts_jsonl_and_csv_manifests() {
    let env = Env::new();
    env.pki();
    let a = env.device_csr("m-1");
    let b = env.device_csr("m-2");
    let pem_a = fs::read_to_string(&a).unwrap();
    let line = serde_json::json!({"name": "first", "csr_pem": pem_a}).to_string();
    let line2 = serde_json::json!({"csr_path": s(&b)}).to_string();
    fs::write(env.path("req.jsonl"), format!("{line}\n{line2}\n")).unwrap();
    let out = env.json(&[
        "cert",
        "issue-batch",
        "--pki",
        "pki",
        "--ca",
        "line-1",
        "--manifest",
        "req.jsonl",
        "--out",
        "out1",
    ]);
    assert_eq!(out["issued"], 2);

    let c = env.device_csr("m-3");
    fs::write(env.path("req.csv"), format!("name,csr_path\nthird,{}\n", s(&c))).unwrap();
    let out = env.json(&[
        "cert",
        "issue-batch",
        "--pki",
        "pki",
        "--ca",
        "line-1",
        "--manifest",
        "req.csv",
        "--out",
        "out2",
    ]);
    assert_eq!(out["issued"], 1);
    assert!(env.path("out2/certificates.pem").exists());
    assert!(!env.path("out2/m-3.pem").exists(), "per-device files only with --pem-files");
}
