//! OTA through the CLI: `ironclad serve` as a child process, the release team's commands
//! (mastering key, encryption to the server's key), the operator's (`ota key add`, `ota release
//! upload`, `ota rollout ...`), and provisioned devices running `device update` on a simulated
//! flash. The server is killed with SIGKILL in the middle of a download and restarted on the
//! same port, database and vault; the device resumes with a range request and installs.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};

use crate::{Env, text};

const CLASS: &str = "6f1c5a1e-7a2b-4c3d-8e4f-0123456789ab";

/// `ironclad serve` on the test's SQLite database.
struct Serve {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    addr: String,
    admin_token: String,
    server_ca: String,
}

impl Serve {
    fn start(env: &Env, listen: &str, admin: &str) -> Self {
        let args = [
            "serve",
            "--listen",
            listen,
            "--sqlite",
            "cloud/registry.sqlite",
            "--init-admin-token",
            admin,
            "--json",
        ];
        let mut child = env.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let listening: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(listening["event"], "listening");
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let token: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(token["event"], "admin_token");
        Serve {
            child,
            _stdout: stdout,
            addr: listening["addr"].as_str().unwrap().to_owned(),
            admin_token: token["token"].as_str().unwrap().to_owned(),
            server_ca: listening["server_ca"].as_str().unwrap().to_owned(),
        }
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(["--server", &self.addr, "--server-ca", &self.server_ca]);
        all
    }

    /// An operator command with the admin token, `--json`, that must succeed.
    #[track_caller]
    fn admin(&self, env: &Env, args: &[&str]) -> serde_json::Value {
        let mut all = self.args(args);
        all.push("--json");
        let out = env.cmd(&all).env("IRONCLAD_TOKEN", &self.admin_token).output().unwrap();
        assert!(out.status.success(), "ironclad {all:?} failed:\n{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// An operator command that must fail; its output.
    #[track_caller]
    fn admin_fails(&self, env: &Env, args: &[&str]) -> String {
        let all = self.args(args);
        let out = env.cmd(&all).env("IRONCLAD_TOKEN", &self.admin_token).output().unwrap();
        assert!(!out.status.success(), "ironclad {all:?} unexpectedly succeeded:\n{}", text(&out));
        text(&out)
    }

    /// SIGKILL: no shutdown, no flush, connections cut.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A payload of `len` bytes.
fn payload(env: &Env, name: &str, len: usize) {
    let bytes: Vec<u8> = format!("{name} firmware ").bytes().cycle().take(len).collect();
    std::fs::write(env.path(name), bytes).unwrap();
}

/// `fw sign` with the release team's key.
fn master(env: &Env, version: &str, counter: &str, input: &str, out: &str, encrypt_to: Option<&str>) {
    let mut args = vec![
        "fw",
        "sign",
        "--store",
        "release-se",
        "--key",
        "fw-mastering",
        "--version",
        version,
        "--security-counter",
        counter,
        "--header-size",
        "0x200",
        "--product-class",
        CLASS,
    ];
    if let Some(k) = encrypt_to {
        args.extend(["--encrypt-to", k]);
    }
    args.extend([input, out]);
    env.ok(&args);
}

/// Provisions `count` devices of a line-1 order into `devs/`; their device ids.
fn devices(env: &Env, count: &str) -> Vec<String> {
    env.ok(&[
        "factory",
        "order",
        "--pki",
        "pki",
        "--ca",
        "line-1",
        "--id",
        "PO-7",
        "--product",
        "cam",
        "--max-count",
        "10",
        "--out",
        "po.json",
    ]);
    env.ok(&[
        "factory",
        "provision",
        "--pki",
        "pki",
        "--order",
        "po.json",
        "--count",
        count,
        "--devices-dir",
        "devs",
        "--manifest",
        "m.jsonl",
        "--json",
    ]);
    std::fs::read_to_string(env.path("m.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["device_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn update_args<'a>(srv: &'a Serve, dev: &'a str) -> Vec<&'a str> {
    srv.args(&[
        "device",
        "update",
        "--device",
        dev,
        "--trust",
        "mastering.pub.pem",
        "--product-class",
        CLASS,
        "--factory-image",
        "app-1.0.0.bin",
        "--slot-size",
        "0x1200000",
        "--json",
    ])
}

fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The operator's side from key registration to staged rollout, a device update that survives
/// a `kill -9` of the server mid-download, and the refusals an operator meets.
#[test]
fn ota_through_the_cli_survives_a_killed_server() {
    let env = Env::new();
    env.pki();
    let ids = devices(&env, "2");
    let srv = Serve::start(&env, "127.0.0.1:0", "admin");
    let group = srv.admin(&env, &["server", "enroll", "group", "--pki", "pki", "--ca", "line-1"]);
    let group = group["id"].as_str().unwrap().to_owned();

    // The release team: a mastering key in its own secure element; the server's encryption key.
    env.ok(&[
        "fw",
        "keygen",
        "--store",
        "release-se",
        "--init",
        "--label",
        "fw-mastering",
        "--out",
        "mastering.pub.pem",
    ]);
    let key = srv
        .admin(&env, &["ota", "key", "add", "--name", "release team", "--public-key", "mastering.pub.pem"]);
    assert_eq!(key["algorithm"], "ecdsa-p256");
    let listed = srv.admin(&env, &["ota", "key", "list"]);
    assert_eq!(listed[0]["key_hash"], key["key_hash"]);
    srv.admin(&env, &["ota", "encryption-key", "--out", "server-ota.pub.pem"]);
    payload(&env, "app-old.bin", 20_000);
    payload(&env, "app.bin", 16 << 20);
    master(&env, "1.0.0", "1", "app-old.bin", "app-1.0.0.bin", None);
    master(&env, "1.1.0", "2", "app.bin", "release-1.1.0.bin", Some("server-ota.pub.pem"));

    let release =
        srv.admin(&env, &["ota", "release", "upload", "release-1.1.0.bin", "--note", "night vision"]);
    assert_eq!(
        (release["version"].as_str(), release["security_counter"].as_u64()),
        (Some("1.1.0+0"), Some(2))
    );
    assert_eq!(release["wrap"], "ecies-x25519");
    let release_id = release["id"].as_str().unwrap().to_owned();
    assert!(
        env.path(&format!("cloud/releases/{release_id}.img")).is_file(),
        "the image is a file, not a row"
    );
    let listed = srv.admin(&env, &["ota", "release", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let rollout = srv.admin(
        &env,
        &["ota", "rollout", "start", "--release", &release_id, "--group", &group, "--percentage", "100"],
    );
    let rollout_id = rollout["id"].as_str().unwrap().to_owned();

    // Device 1 downloads at 4 MiB/s; at its first progress line the server is killed.
    let dev = format!("devs/{}", ids[0]);
    let mut args = update_args(&srv, &dev);
    args.extend(["--max-rate", "4096"]);
    let mut device = env.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(device.stdout.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "device ended early: {seen:?}");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        seen.push(event.clone());
        if event["event"] == "progress" {
            break;
        }
    }
    let port = srv.addr.rsplit_once(':').unwrap().1.to_owned();
    srv.kill9();
    let srv = Serve::start(&env, &format!("127.0.0.1:{port}"), "admin-after-restart");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = device.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(device.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "device update failed: {rest}\n{stderr}");
    seen.extend(events(rest.as_bytes()));
    let interrupted = seen.iter().find(|e| e["event"] == "interrupted").unwrap_or_else(|| panic!("{seen:?}"));
    let size = seen.iter().find_map(|e| e["total"].as_u64()).unwrap();
    let at = interrupted["bytes"].as_u64().unwrap();
    assert!(at > 0 && at < size, "cut mid-download: {at} of {size}");
    let updated = seen.last().unwrap();
    assert_eq!(updated["event"], "updated", "{seen:?}");
    assert_eq!((updated["version"].as_str(), updated["counter"].as_u64()), (Some("1.1.0+0"), Some(2)));
    assert!(updated["resumed"].as_u64().unwrap() >= 1, "resumed with a range request: {updated}");
    assert!(
        updated["transferred"].as_u64().unwrap() < size + size / 2,
        "the resume did not start over: {updated}"
    );

    println!(
        "kill -9 during the download: cut at {at} of {size} bytes, resumed {} time(s), {} bytes transferred in all",
        updated["resumed"], updated["transferred"]
    );

    // The restarted server knows where the device is.
    let st = srv.admin(&env, &["ota", "rollout", "status", &rollout_id]);
    assert_eq!(st["counts"]["confirmed"], 1, "{st}");
    // The device is up to date now; the flash file kept its state.
    let again = env.cmd(&update_args(&srv, &dev)).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let ev = events(&again.stdout);
    assert_eq!(ev[0]["version"], "1.1.0+0", "booted from the saved flash: {ev:?}");
    assert_eq!(ev.last().unwrap()["why"], "up-to-date");

    // A rollout of an older release to the group: refused as a downgrade.
    master(&env, "1.0.5", "1", "app-old.bin", "release-1.0.5.bin", Some("server-ota.pub.pem"));
    let old = srv.admin(&env, &["ota", "release", "upload", "release-1.0.5.bin"]);
    let refused = srv.admin_fails(
        &env,
        &[
            "ota",
            "rollout",
            "start",
            "--release",
            old["id"].as_str().unwrap(),
            "--group",
            &group,
            "--percentage",
            "100",
        ],
    );
    assert!(refused.contains("downgrade refused"), "{refused}");
    // An image signed by another key: refused at upload.
    env.ok(&["fw", "keygen", "--store", "rogue-se", "--init", "--label", "k", "--out", "rogue.pub.pem"]);
    env.ok(&[
        "fw",
        "sign",
        "--store",
        "rogue-se",
        "--key",
        "k",
        "--version",
        "9.0.0",
        "-s",
        "9",
        "-H",
        "0x200",
        "--product-class",
        CLASS,
        "app-old.bin",
        "rogue.bin",
    ]);
    let refused = srv.admin_fails(&env, &["ota", "release", "upload", "rogue.bin"]);
    assert!(refused.contains("not signed by a trusted key"), "{refused}");

    // Stages, pause, resume, abort through the CLI on a 1.2.0 rollout.
    master(&env, "1.2.0", "3", "app-old.bin", "release-1.2.0.bin", Some("server-ota.pub.pem"));
    let r12 = srv.admin(&env, &["ota", "release", "upload", "release-1.2.0.bin"]);
    let r12_id = r12["id"].as_str().unwrap();
    let ro = srv.admin(
        &env,
        &["ota", "rollout", "start", "--release", r12_id, "--group", &group, "--percentage", "0"],
    );
    let ro_id = ro["id"].as_str().unwrap();
    let dev2 = format!("devs/{}", ids[1]);
    let none = env.cmd(&update_args(&srv, &dev2)).output().unwrap();
    assert_eq!(events(&none.stdout).last().unwrap()["why"], "no-rollout", "{}", text(&none));
    assert_eq!(
        srv.admin(&env, &["ota", "rollout", "stage", ro_id, "--percentage", "100"])["percentage"],
        100
    );
    assert_eq!(srv.admin(&env, &["ota", "rollout", "pause", ro_id])["state"], "paused");
    let paused = env.cmd(&update_args(&srv, &dev2)).output().unwrap();
    assert_eq!(events(&paused.stdout).last().unwrap()["why"], "no-rollout", "{}", text(&paused));
    assert_eq!(srv.admin(&env, &["ota", "rollout", "resume", ro_id])["state"], "active");
    let done = env.cmd(&update_args(&srv, &dev2)).output().unwrap();
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(events(&done.stdout).last().unwrap()["version"], "1.2.0+0");
    assert_eq!(srv.admin(&env, &["ota", "rollout", "abort", ro_id])["state"], "aborted");
    let all = srv.admin(&env, &["ota", "rollout", "status"]);
    let states: Vec<&str> = all.as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["aborted", "superseded"]);
    let devices = srv.admin(&env, &["ota", "release", "list", "--devices", r12_id]);
    assert_eq!(devices[0]["state"], "confirmed");
}

/// Help texts teach with an example.
#[test]
fn ota_help_has_examples() {
    let env = Env::new();
    for cmd in [
        &["ota", "key", "add"][..],
        &["ota", "release", "upload"],
        &["ota", "rollout", "start"],
        &["ota", "rollout", "abort"],
        &["ota", "encryption-key"],
        &["device", "update"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = env.ok(&args);
        assert!(help.contains("Example:") && help.contains("ironclad "), "{cmd:?}: {help}");
    }
}
