//! The production line through the CLI: orders, quota under races and crashes, audit,
//! manifests checked by OpenSSL, console passwords.

use std::fs;
use std::process::Stdio;

use crate::{Env, s};

fn order(env: &Env, id: &str, max: u64) -> String {
    let out = format!("{id}.json");
    env.ok(&[
        "factory",
        "order",
        "--pki",
        "pki",
        "--ca",
        "line-1",
        "--id",
        id,
        "--product",
        "cam",
        "--max-count",
        &max.to_string(),
        "--out",
        &out,
    ]);
    out
}

fn provisioned(
    env: &Env,
    order: &str,
    count: u64,
    manifest: &str,
    devices: Option<&str>,
) -> std::process::Output {
    let count = count.to_string();
    let mut args = vec![
        "factory",
        "provision",
        "--pki",
        "pki",
        "--order",
        order,
        "--count",
        &count,
        "--manifest",
        manifest,
        "--json",
    ];
    if let Some(d) = devices {
        args.extend(["--devices-dir", d]);
    }
    env.cmd(&args).output().unwrap()
}

#[test]
fn provisioned_devices_carry_verified_identities_and_a_signed_manifest() {
    let env = Env::new();
    env.pki();
    let po = order(&env, "PO-1", 10);
    let out = provisioned(&env, &po, 6, "m.jsonl", Some("devs"));
    assert!(out.status.success(), "{}", crate::text(&out));
    let manifest = fs::read_to_string(env.path("m.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 6);
    let first: serde_json::Value = serde_json::from_str(manifest.lines().next().unwrap()).unwrap();
    assert_eq!(first["order"], "PO-1");
    assert_eq!(first["fw_decrypt_public"].as_str().unwrap().len(), 64, "X25519 public key");
    let device = first["device_id"].as_str().unwrap().to_owned();
    fs::write(env.path("dev.pem"), first["certificate_pem"].as_str().unwrap()).unwrap();
    assert_eq!(env.json(&["cert", "verify", "--pki", "pki", "dev.pem"])["device_id"], device.as_str());

    // The device's own store holds its keys and certificate, unlocked by its device secret.
    let dir = format!("devs/{device}");
    let listed = env.json(&[
        "se",
        "list",
        "--store",
        &format!("{dir}/se"),
        "--device-secret-file",
        &format!("{dir}/device-secret"),
    ]);
    let labels: Vec<&str> =
        listed["keys"].as_array().unwrap().iter().map(|k| k["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["app-master", "device-auth", "fw-decrypt"]);
    let objects: Vec<&str> =
        listed["objects"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(objects, ["console-password", "device-cert", "device-chain"]);

    // Console password: stable, accepted on the device, a wrong one refused and counted.
    let password = env.ok(&["factory", "console-password", "--pki", "pki", "--device", &device]);
    assert_eq!(password, env.ok(&["factory", "console-password", "--pki", "pki", "--device", &device]));
    let login = |typed: &str| {
        let mut child = env
            .cmd(&["device", "console-login", "--device", &dir, "--max-failures", "2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), typed.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(login(&password).status.success());
    assert!(!login("AAAA-AAAA-AAAA-AAAA\n").status.success());
    assert!(!login("BBBB\n").status.success());
    let locked = login(&password);
    assert!(!locked.status.success(), "locked after 2 failures even for the right password");
    assert!(crate::text(&locked).contains("locked"), "{}", crate::text(&locked));

    let Some(openssl) = crate::openssl() else { return };
    let pubkey = env.path("line.pub");
    let key = ironclad_testkit::run_ok(
        &openssl,
        &["x509", "-pubkey", "-noout", "-in", s(&env.path("pki/ca/line-1/cert.pem"))],
    );
    fs::write(&pubkey, key).unwrap();
    let sig = env.path("m.jsonl.sig");
    let ok = ironclad_testkit::run_ok(
        &openssl,
        &["dgst", "-sha256", "-verify", s(&pubkey), "-signature", s(&sig), s(&env.path("m.jsonl"))],
    );
    assert!(ok.contains("Verified OK"), "{ok}");
    fs::write(env.path("m.jsonl"), manifest.replacen("PO-1", "PO-9", 1)).unwrap();
    ironclad_testkit::run_fails(
        &openssl,
        &["dgst", "-sha256", "-verify", s(&pubkey), "-signature", s(&sig), s(&env.path("m.jsonl"))],
    );
}

#[test]
fn three_racing_stations_issue_exactly_the_authorised_count() {
    let env = Env::new();
    env.pki();
    let po = order(&env, "PO-RACE", 100);
    let children: Vec<_> = (0..3)
        .map(|i| {
            let manifest = format!("race-{i}.jsonl");
            env.cmd(&[
                "factory",
                "provision",
                "--pki",
                "pki",
                "--order",
                &po,
                "--count",
                "60",
                "--manifest",
                &manifest,
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut total = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            total += v["provisioned"].as_u64().unwrap();
        } else {
            assert!(crate::text(&out).contains("authorises 100 devices"), "{}", crate::text(&out));
        }
    }
    assert_eq!(total, 100, "exactly the authorised count, no more, no less");
    let report = env.json(&["factory", "report", "--pki", "pki"]);
    assert_eq!(report["orders"][0]["issued"], 100);
    assert_eq!(report["audit_rows"], 100);
    let out = provisioned(&env, &po, 1, "late.jsonl", None);
    assert!(!out.status.success(), "the order is used up");
}

#[test]
fn a_station_killed_mid_batch_never_lets_the_line_exceed_the_order() {
    let env = Env::new();
    env.pki();
    let po = order(&env, "PO-CRASH", 300);
    let mut child = env
        .cmd(&[
            "factory",
            "provision",
            "--pki",
            "pki",
            "--order",
            &po,
            "--count",
            "250",
            "--devices-dir",
            "devs",
            "--manifest",
            "a.jsonl",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let report = env.json(&["factory", "report", "--pki", "pki"]);
    let (reserved, issued) =
        (report["orders"][0]["reserved"].as_u64().unwrap(), report["orders"][0]["issued"].as_u64().unwrap());
    assert!(issued <= reserved && reserved <= 300, "{report}");
    // The rest of the order: whatever the crash lost stays lost, nothing more is issued.
    let out = provisioned(&env, &po, 300, "b.jsonl", None);
    assert!(out.status.success(), "{}", crate::text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["provisioned"].as_u64().unwrap(), 300 - reserved);
    let report = env.json(&["factory", "report", "--pki", "pki"]);
    assert_eq!(report["orders"][0]["reserved"], 300);
    assert!(report["orders"][0]["issued"].as_u64().unwrap() <= 300);
    assert_eq!(report["audit_valid"], true);
}

#[test]
fn tampered_and_foreign_orders_are_refused() {
    let env = Env::new();
    env.pki();
    let po = order(&env, "PO-T", 5);
    let text = fs::read_to_string(env.path(&po)).unwrap();
    fs::write(env.path("tampered.json"), text.replace("\"max_count\": 5", "\"max_count\": 5000")).unwrap();
    let out = provisioned(&env, "tampered.json", 1, "t.jsonl", None);
    assert!(crate::text(&out).contains("invalid signature"), "{}", crate::text(&out));

    let other = Env::new();
    other.pki();
    let foreign = order(&other, "PO-F", 5);
    fs::copy(other.path(&foreign), env.path("foreign.json")).unwrap();
    let out = provisioned(&env, "foreign.json", 1, "f.jsonl", None);
    assert!(!out.status.success());
    assert!(crate::text(&out).contains("not in this PKI"), "{}", crate::text(&out));
    assert!(!env.path("t.jsonl").exists() && !env.path("f.jsonl").exists());
}
