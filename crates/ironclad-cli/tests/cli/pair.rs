//! Pairing through the CLI: `ironclad pair accessory` as a child process, `ironclad pair
//! controller …` commands against it (random and fixed codes, the QR payload, reads and writes,
//! delegation, restart, removal), the device certificate of a factory-provisioned device checked
//! against the OEM root, and the controller against HAP-python's accessory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::{Env, text};

/// `ironclad pair accessory --json` running in the test's directory; its events arrive through
/// a reader thread, so a missing event fails the test after a minute instead of hanging it.
struct AccessoryProcess {
    child: Child,
    events: std::sync::mpsc::Receiver<Value>,
    listening: Value,
}

impl AccessoryProcess {
    fn start(env: &Env, extra: &[&str]) -> Self {
        let mut args = vec!["pair", "accessory", "--listen", "127.0.0.1:0", "--json"];
        args.extend_from_slice(extra);
        let mut child = env.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let listening = next_json(&mut stdout);
        assert_eq!(listening["event"], "listening", "{listening}");
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            while matches!(stdout.read_line(&mut line), Ok(n) if n > 0) {
                if let Ok(event) = serde_json::from_str(&line) {
                    let _ = tx.send(event);
                }
                line.clear();
            }
        });
        AccessoryProcess { child, events, listening }
    }

    fn addr(&self) -> &str {
        self.listening["addr"].as_str().unwrap()
    }

    /// The next event of `kind` (earlier events of other kinds are skipped).
    fn wait_for(&mut self, kind: &str) -> Value {
        self.wait_for_any(&[kind])
    }

    /// The next event of one of `kinds`; fails after a minute without one.
    fn wait_for_any(&mut self, kinds: &[&str]) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let event = self.events.recv_timeout(left).unwrap_or_else(|e| panic!("no {kinds:?} event: {e}"));
            if kinds.iter().any(|k| event["event"] == *k) {
                return event;
            }
        }
    }

    /// SIGINT: the accessory closes its sessions and exits 0.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        assert_eq!(self.wait_for("stopped")["event"], "stopped");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "accessory exited {status}");
    }
}

impl Drop for AccessoryProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn next_json(stdout: &mut impl BufRead) -> Value {
    let mut line = String::new();
    assert!(stdout.read_line(&mut line).unwrap() > 0, "the accessory exited (see its stderr)");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// `pair controller <args> --store ctl`.
fn ctl<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["pair", "controller"];
    all.extend_from_slice(args);
    all.extend(["--store", "ctl"]);
    all
}

#[test]
fn accessory_and_controller_processes_pair_control_delegate_survive_a_restart_and_unpair() {
    let env = Env::new();
    env.ok(&["ca", "init", "--pki", "cloud-ca", "--cn", "Cloud CA", "--org", "Acme", "--country", "DE"]);
    let mut acc = AccessoryProcess::start(&env, &["--store", "acc-se", "--init"]);
    let (addr, payload) =
        (acc.addr().to_owned(), acc.listening["setup_payload"].as_str().unwrap().to_owned());
    let code = acc.listening["setup_code"].as_str().unwrap().to_owned();
    assert!(payload.starts_with("X-HM://") && payload.len() == 20, "{payload}");
    assert_eq!(acc.listening["paired"], false);

    // A wrong code is refused; the QR payload carries the right one.
    let wrong = if code == "101-48-562" { "101-48-563" } else { "101-48-562" };
    let out = env.fails(&ctl(&["pair", "--alias", "lamp", "--address", &addr, "--setup-code", wrong]));
    assert!(out.contains("Authentication"), "{out}");
    let paired =
        env.json(&ctl(&["pair", "--alias", "lamp", "--address", &addr, "--setup-payload", &payload]));
    assert_eq!(paired["device_id"], acc.listening["device_id"]);
    assert!(paired["device_certificate"].is_null());
    let controller_id = paired["controller_id"].as_str().unwrap().to_owned();
    assert_eq!(acc.wait_for("pairings")["controllers"][0], controller_id.as_str());

    let verified = env.json(&ctl(&["verify", "--alias", "lamp"]));
    assert_eq!(
        (verified["verified"].clone(), verified["name"].clone()),
        (true.into(), "ironclad lamp".into())
    );
    env.ok(&ctl(&["put", "--alias", "lamp", "on=true", r#"name="desk lamp""#]));
    assert_eq!(acc.wait_for("changed")["id"], "1.11");
    let values = env.json(&ctl(&["get", "--alias", "lamp", "on", "name", "1.4"]));
    assert_eq!(values, serde_json::json!({"1.11": true, "1.12": "desk lamp", "1.4": "ironclad-hap"}));
    let out = env.fails(&ctl(&["put", "--alias", "lamp", "model=x"]));
    assert!(out.contains("ReadOnly"), "{out}");
    let listed = env.json(&ctl(&["list", "--alias", "lamp"]));
    assert_eq!(listed["pairings"][0]["id"], controller_id.as_str());
    assert_eq!(listed["pairings"][0]["admin"], true);

    // Cloud delegation: the claim token from the environment, the CA as the trust anchor.
    let mut delegate = env.cmd(&ctl(&[
        "delegate",
        "--alias",
        "lamp",
        "--endpoint",
        "https://cloud.example.com:8443",
        "--trust-anchor",
        "cloud-ca/root.pem",
        "--json",
    ]));
    let out = delegate.env("IRONCLAD_CLAIM_TOKEN", "claim-abc123").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let event = acc.wait_for("delegation");
    assert_eq!(event["endpoint"], "https://cloud.example.com:8443");
    assert_eq!(event["delegated_by"], controller_id.as_str());
    let out = env.fails(&ctl(&[
        "delegate",
        "--alias",
        "lamp",
        "--endpoint",
        "https://x",
        "--trust-anchor",
        "cloud-ca/root.pem",
    ]));
    assert!(out.contains("no claim token"), "{out}");

    // Restart on a new port: the pairing survived in the accessory's secure element.
    acc.stop();
    let acc = AccessoryProcess::start(&env, &["--store", "acc-se"]);
    assert_eq!(acc.listening["paired"], true);
    assert_eq!(acc.listening["device_id"], paired["device_id"]);
    let moved = acc.addr().to_owned();
    let verified = env.json(&ctl(&["verify", "--alias", "lamp", "--address", &moved]));
    assert_eq!(verified["verified"], true);
    let values = env.json(&ctl(&["get", "--alias", "lamp", "--address", &moved, "on"]));
    assert_eq!(values["1.11"], false, "characteristic values are not persisted, pairings are");
    // Another controller cannot pair while we are paired.
    let out = env.fails(&[
        "pair",
        "controller",
        "pair",
        "--store",
        "ctl2",
        "--alias",
        "x",
        "--address",
        &moved,
        "--setup-code",
        "031-45-154",
    ]);
    assert!(out.contains("Unavailable"), "{out}");

    let removed = env.json(&ctl(&["remove", "--alias", "lamp", "--address", &moved]));
    assert_eq!(removed["forgotten"], true);
    assert_eq!(env.json(&ctl(&["list"]))["accessories"], serde_json::json!([]));
    let out = env.fails(&ctl(&["verify", "--alias", "lamp"]));
    assert!(out.contains("no accessory paired as \"lamp\""), "{out}");
    acc.stop();
}

/// A PKI with line-1, an order, and one device provisioned into `devs/`; returns its ID.
fn provisioned_device(env: &Env) -> String {
    env.pki();
    env.ok(&[
        "factory",
        "order",
        "--pki",
        "pki",
        "--ca",
        "line-1",
        "--id",
        "PO-1",
        "--product",
        "lamp",
        "--max-count",
        "5",
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
        "1",
        "--devices-dir",
        "devs",
        "--manifest",
        "m.jsonl",
        "--json",
    ]);
    let manifest = std::fs::read_to_string(env.path("m.jsonl")).unwrap();
    let record: Value = serde_json::from_str(manifest.lines().next().unwrap()).unwrap();
    record["device_id"].as_str().unwrap().to_owned()
}

/// `ironclad serve` with an admin token: (child, addr, CA path, admin token).
fn serve(env: &Env) -> (Child, String, String, String) {
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--init-admin-token",
        "--json",
        "--sqlite",
        "cloud/registry.sqlite",
    ];
    let mut child = env.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let listening = next_json(&mut stdout);
    let token = next_json(&mut stdout);
    let field = |v: &Value, k: &str| v[k].as_str().unwrap().to_owned();
    (child, field(&listening, "addr"), field(&listening, "server_ca"), field(&token, "token"))
}

#[test]
fn provisioned_device_certificate_checked_against_the_oem_root_then_delegated_to_the_cloud() {
    let env = Env::new();
    let device_id = provisioned_device(&env);
    env.ok(&["ca", "init", "--pki", "other", "--cn", "Test Root CA", "--org", "Acme", "--country", "DE"]);
    let device_dir = format!("devs/{device_id}");
    let mut acc = AccessoryProcess::start(
        &env,
        &["--device", &device_dir, "--device-certificate", "--setup-code", "031-45-154", "--connect-cloud"],
    );
    assert_eq!(acc.listening["device_certificate"], true);
    assert_eq!(acc.listening["setup_code"], "031-45-154");
    let addr = acc.addr().to_owned();
    let pair = |root: &str| {
        ctl(&["pair", "--alias", "cam", "--address", &addr, "--setup-code", "031-45-154", "--oem-root", root])
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let args = pair("other/root.pem");
    let out = env.fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // A look-alike root (same names, its own key): the device's chain does not lead to it.
    assert!(out.contains("device authentication failed"), "{out}");
    assert!(out.contains("signature does not verify") || out.contains("not issued by a trusted CA"), "{out}");
    let args = pair("pki/root.pem");
    let paired = env.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(paired["device_certificate"]["device_id"], device_id.as_str());
    assert_eq!(paired["device_certificate"]["certificates"], 3, "device, line CA, root as provisioned");
    let verified = env.json(&ctl(&["verify", "--alias", "cam", "--oem-root", "pki/root.pem"]));
    assert_eq!(verified["device_certificate_rechecked"], device_id.as_str());
    let out = env.fails(&ctl(&["verify", "--alias", "cam", "--oem-root", "other/root.pem"]));
    assert!(out.contains("device certificate"), "{out}");
    let listed = env.ok(&ctl(&["list"]));
    assert!(listed.contains(&device_id), "{listed}");

    // The cloud: the family enrolled, an owner with a one-time claim code.
    let (mut server, server_addr, server_ca, admin) = serve(&env);
    let with_server = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend([
            "--server".into(),
            server_addr.clone(),
            "--server-ca".into(),
            server_ca.clone(),
            "--json".into(),
        ]);
        all
    };
    let run = |args: Vec<String>, token: (&str, &str)| {
        let out = env
            .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .env(token.0, token.1)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    run(
        with_server(&["server", "enroll", "group", "--pki", "pki", "--ca", "line-1"]),
        ("IRONCLAD_TOKEN", &admin),
    );
    run(
        with_server(&[
            "server",
            "token",
            "create",
            "--name",
            "alice",
            "--role",
            "owner",
            "--out",
            "alice.token",
        ]),
        ("IRONCLAD_TOKEN", &admin),
    );
    let code = run(with_server(&["owner", "claim-code", "--token-file", "alice.token"]), ("X", ""));
    let code = code["code"].as_str().unwrap().to_owned();

    // The phone delegates; the device authenticates to that server and redeems the code.
    let port = server_addr.rsplit_once(':').unwrap().1;
    let endpoint = format!("https://localhost:{port}");
    let args = ctl(&["delegate", "--alias", "cam", "--endpoint", &endpoint, "--trust-anchor", &server_ca]);
    let out = env.cmd(&args).env("IRONCLAD_CLAIM_TOKEN", &code).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(acc.wait_for("delegation")["endpoint"], endpoint.as_str());
    let cloud = acc.wait_for_any(&["cloud", "cloud_error"]);
    assert_eq!(cloud["event"], "cloud", "{cloud}");
    assert_eq!(
        (cloud["device_id"].as_str(), cloud["claimed_by"].is_string()),
        (Some(device_id.as_str()), true)
    );
    let owned = run(with_server(&["owner", "devices", "--token-file", "alice.token"]), ("X", ""));
    assert_eq!(owned[0]["device_id"], device_id.as_str());
    // A used code cannot be replayed through another delegation.
    let out = env.cmd(&args).env("IRONCLAD_CLAIM_TOKEN", &code).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let refused = acc.wait_for_any(&["cloud", "cloud_error"]);
    assert_eq!(refused["event"], "cloud_error", "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("claim refused"), "{refused}");
    acc.stop();
    let _ = server.kill();
    let _ = server.wait();
}

/// The Python with HAP-python 5.0.0 (scripts/peers/hap-python.after).
fn hap_python() -> Option<PathBuf> {
    match std::env::var_os("IRONCLAD_HAP_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                !ironclad_testkit::peers_required(),
                "IRONCLAD_REQUIRE_PEERS=1 but IRONCLAD_HAP_PYTHON is not set"
            );
            eprintln!("SKIP: set IRONCLAD_HAP_PYTHON to a Python with HAP-python 5.0.0");
            None
        }
    }
}

#[test]
fn controller_commands_against_hap_python_accessory() {
    let Some(python) = hap_python() else { return };
    let env = Env::new();
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    let script = Path::new(&manifest).join("../ironclad-hap/tests/interop/hap_accessory.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(env.path("hap-python.state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let port = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "hap_accessory.py exited before READY");
        if let Some(port) = line.trim().strip_prefix("READY ") {
            break port.to_owned();
        }
    };
    let addr = format!("127.0.0.1:{port}");

    let paired =
        env.json(&ctl(&["pair", "--alias", "sensor", "--address", &addr, "--setup-code", "031-45-154"]));
    assert_eq!(paired["device_id"], "AA:BB:CC:DD:EE:01");
    let verified = env.json(&ctl(&["verify", "--alias", "sensor"]));
    assert_eq!(verified["name"], "TestSensor");
    // HAP-python numbers the TemperatureSensor service 8 and CurrentTemperature 9.
    assert_eq!(env.json(&ctl(&["get", "--alias", "sensor", "1.9"]))["1.9"], 21.5);
    let listed = env.json(&ctl(&["list", "--alias", "sensor"]));
    assert_eq!(listed["pairings"].as_array().unwrap().len(), 1);
    assert_eq!(listed["pairings"][0]["this_controller"], true);
    env.ok(&ctl(&["remove", "--alias", "sensor"]));
    // Unpaired: pair-setup is possible again.
    env.ok(&ctl(&["pair", "--alias", "sensor", "--address", &addr, "--setup-code", "031-45-154"]));
    env.ok(&ctl(&["remove", "--alias", "sensor"]));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn demo_pairing_stage_pairs_verifies_and_delegates() {
    let env = Env::new();
    let out = env.json(&["demo", "--devices", "8"]);
    assert_eq!(out["passed"], true, "{out}");
    let stages = out["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    let at = names.iter().position(|s| *s == "pairing").expect("a pairing stage");
    assert_eq!(names[at - 1], "device authentication", "{names:?}");
    let detail = stages[at]["detail"].as_str().unwrap();
    for part in ["device certificate → demo root", "pair-verify", "sealed in its SE", "claimed by the owner"]
    {
        assert!(detail.contains(part), "{part}: {detail}");
    }
}
