//! The cloud through the CLI: `ironclad serve` as a child process, operators enrolling and
//! revoking over the operator API, provisioned devices running `device run`, the factory
//! manifest imported as written, a simulated fleet, and OpenSSL's client doing mutual TLS.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::{Env, openssl, s, text};

/// `ironclad serve` running in the test's directory.
struct Serve {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: String,
    admin_token: String,
    server_ca: String,
}

impl Serve {
    fn start(env: &Env, extra: &[&str]) -> Self {
        Self::start_as(env, "admin", extra)
    }

    /// Starts with a first admin token of this name (a restart needs a new name).
    fn start_as(env: &Env, admin: &str, extra: &[&str]) -> Self {
        Self::start_env(env, admin, extra, &[])
    }

    /// Starts with extra environment variables for the server process (e.g. SOFTHSM2_CONF).
    fn start_env(env: &Env, admin: &str, extra: &[&str], vars: &[(&str, std::ffi::OsString)]) -> Self {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--init-admin-token", admin, "--json"];
        args.extend_from_slice(extra);
        let mut command = env.cmd(&args);
        command.envs(vars.iter().map(|(k, v)| (*k, v)));
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let listening: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("first line {line:?}: {e}"));
        assert_eq!(listening["event"], "listening");
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let token: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(token["event"], "admin_token");
        Serve {
            child,
            stdout,
            addr: listening["addr"].as_str().unwrap().to_owned(),
            admin_token: token["token"].as_str().unwrap().to_owned(),
            server_ca: listening["server_ca"].as_str().unwrap().to_owned(),
        }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    /// `args` plus --server and --server-ca.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(["--server", &self.addr, "--server-ca", &self.server_ca]);
        all
    }

    /// Runs an operator command with the admin token in the environment.
    #[track_caller]
    fn admin(&self, env: &Env, args: &[&str]) -> serde_json::Value {
        let mut all = self.args(args);
        all.push("--json");
        let out = env.cmd(&all).env("IRONCLAD_TOKEN", &self.admin_token).output().unwrap();
        assert!(out.status.success(), "ironclad {all:?} failed:\n{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs an operator command with the admin token that must fail; returns its output.
    #[track_caller]
    fn admin_fails(&self, env: &Env, args: &[&str]) -> String {
        let all = self.args(args);
        let out = env.cmd(&all).env("IRONCLAD_TOKEN", &self.admin_token).output().unwrap();
        assert!(!out.status.success(), "ironclad {all:?} unexpectedly succeeded:\n{}", text(&out));
        text(&out)
    }

    /// SIGINT: the server drains and exits 0.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited {status}");
        assert!(rest.contains("\"stopped\""), "{rest}");
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

/// A signed production order `id` for line-1 of `pki`.
fn order(env: &Env, pki: &str, id: &str) -> String {
    let out = format!("{id}.json");
    env.ok(&[
        "factory",
        "order",
        "--pki",
        pki,
        "--ca",
        "line-1",
        "--id",
        id,
        "--product",
        "cam",
        "--max-count",
        "10",
        "--out",
        &out,
    ]);
    out
}

/// Provisions `count` devices under `order` into `devs/`; returns the manifest lines.
fn provision(env: &Env, order: &str, count: u64, manifest: &str) -> Vec<serde_json::Value> {
    let count = count.to_string();
    env.ok(&[
        "factory",
        "provision",
        "--pki",
        "pki",
        "--order",
        order,
        "--count",
        &count,
        "--devices-dir",
        "devs",
        "--manifest",
        manifest,
        "--json",
    ]);
    std::fs::read_to_string(env.path(manifest))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn device_dir(record: &serde_json::Value) -> String {
    format!("devs/{}", record["device_id"].as_str().unwrap())
}

/// `device run --once --json`: the events on success, the output on failure.
fn device_run(env: &Env, srv: &Serve, record: &serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    let dir = device_dir(record);
    let out = env.cmd(&srv.args(&["device", "run", "--device", &dir, "--once", "--json"])).output().unwrap();
    if !out.status.success() {
        return Err(text(&out));
    }
    Ok(String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

#[track_caller]
fn assert_authenticated(events: &[serde_json::Value], record: &serde_json::Value) {
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["connected", "authenticated", "heartbeat"], "{events:?}");
    assert_eq!(events[1]["device_id"], record["device_id"]);
}

#[test]
fn operator_enrolls_the_family_and_provisioned_devices_authenticate() {
    let env = Env::new();
    env.pki();
    let po = order(&env, "pki", "PO-1");
    let made = provision(&env, &po, 3, "m.jsonl");
    let srv = Serve::start(&env, &["--sqlite", "cloud/registry.sqlite"]);
    assert!(env.path("cloud/ironclad-server-ca.pem").is_file(), "identity next to the database");

    // Nothing is trusted yet: the device is refused.
    let refused = device_run(&env, &srv, &made[0]).unwrap_err();
    assert!(refused.contains("error"), "{refused}");

    // An operator token, written to a file; tokens never come from argv.
    let created = srv.admin(&env, &["server", "token", "create", "--name", "ops", "--out", "ops.token"]);
    assert_eq!(created["role"], "operator");
    assert!(created["token"].is_null(), "written to the file, not printed");
    let no_token = env.fails(&srv.args(&["server", "enroll", "group", "--pki", "pki", "--ca", "line-1"]));
    assert!(no_token.contains("no operator token"), "{no_token}");

    // The family, with proof of possession signed by the line CA's key.
    let mut args = srv.args(&["server", "enroll", "group", "--pki", "pki", "--ca", "line-1"]);
    args.extend(["--token-file", "ops.token"]);
    let group = env.json(&args);
    assert_eq!(group["status"], "enabled", "{group}");
    let group_id = group["id"].as_str().unwrap().to_owned();

    for record in &made {
        assert_authenticated(&device_run(&env, &srv, record).unwrap(), record);
    }

    // Revoked at the registry: refused.
    let serial = made[0]["serial"].as_str().unwrap();
    let mut args = srv.args(&["server", "revoke", "--serial", serial, "--reason", "key-compromise"]);
    args.extend(["--token-file", "ops.token"]);
    assert_eq!(env.json(&args)["newly_revoked"], true);
    let refused = device_run(&env, &srv, &made[0]).unwrap_err();
    assert!(refused.contains("authentication refused"), "{refused}");

    // The whole family disabled, then enabled again.
    let mut args = srv.args(&["server", "disable", &group_id]);
    args.extend(["--token-file", "ops.token"]);
    assert_eq!(env.json(&args)["status"], "disabled");
    device_run(&env, &srv, &made[1]).unwrap_err();
    args.push("--enable");
    assert_eq!(env.json(&args)["status"], "enabled");
    assert_authenticated(&device_run(&env, &srv, &made[1]).unwrap(), &made[1]);

    // One device blocked inside the enabled family by a disabled individual enrollment.
    std::fs::write(env.path("dev2.pem"), made[2]["certificate_pem"].as_str().unwrap()).unwrap();
    let mut args = srv.args(&["server", "enroll", "cert", "--cert", "dev2.pem", "--disabled"]);
    args.extend(["--token-file", "ops.token"]);
    assert_eq!(env.json(&args)["status"], "disabled");
    device_run(&env, &srv, &made[2]).unwrap_err();
    srv.stop();
}

#[test]
fn factory_manifest_imports_as_written() {
    let env = Env::new();
    env.pki();
    let po = order(&env, "pki", "PO-1");
    let imported = provision(&env, &po, 3, "m.jsonl");
    let other = provision(&env, &po, 1, "other.jsonl");
    let srv = Serve::start(&env, &["--sqlite", "registry.sqlite", "--trust-anchor", "pki/root.pem"]);

    // Trusting the root admits nobody by itself.
    device_run(&env, &srv, &imported[0]).unwrap_err();

    let report = srv.admin(&env, &["server", "import-manifest", "m.jsonl"]);
    assert_eq!((report["records"].as_u64(), report["inserted"].as_u64()), (Some(3), Some(3)), "{report}");
    let again = srv.admin(&env, &["server", "import-manifest", "m.jsonl"]);
    assert_eq!((again["inserted"].as_u64(), again["existing"].as_u64()), (Some(0), Some(3)), "{again}");

    for record in &imported {
        assert_authenticated(&device_run(&env, &srv, record).unwrap(), record);
    }
    // A device of the same line whose manifest was not imported is refused.
    device_run(&env, &srv, &other[0]).unwrap_err();
    srv.stop();
}

#[test]
fn fleet_sim_from_a_config_file() {
    let env = Env::new();
    std::fs::write(
        env.path("server.toml"),
        "listen = \"127.0.0.1:8443\"\n[storage]\nbackend = \"sqlite\"\npath = \"reg/registry.sqlite\"\n",
    )
    .unwrap();
    // The flag wins over the file's port.
    let srv = Serve::start(&env, &["--config", "server.toml"]);
    assert_ne!(srv.port(), 8443);
    assert!(env.path("reg/ironclad-server.key").is_file());
    srv.admin(&env, &["server", "token", "create", "--name", "sim", "--out", "sim.token"]);
    let mut args = srv.args(&["fleet", "sim", "--devices", "24", "--concurrency", "8"]);
    args.extend(["--token-file", "sim.token"]);
    let report = env.json(&args);
    assert_eq!(report["devices"], 24);
    assert_eq!(report["auth"]["authenticated"], 24, "{report}");
    assert_eq!(report["auth"]["failed"], 0);
    assert!(report["auth"]["auths_per_sec"].as_f64().unwrap() > 0.0);
    srv.stop();
}

const REQUEST: &str =
    "POST /v1/auth/challenge HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn s_client(openssl: &Path, srv: &Serve, cert: &Path, key: &Path, version: &str) -> String {
    let mut child = Command::new(openssl)
        .args(["s_client", "-connect", &srv.addr, "-servername", "localhost", version])
        .args(["-cert", s(cert), "-key", s(key), "-CAfile", &srv.server_ca])
        .args(["-verify_return_error", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(REQUEST.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    text(&out)
}

/// A P-256 key file made by OpenSSL and a certificate for it issued by `pki`'s line-1.
fn openssl_device(
    env: &Env,
    openssl: &Path,
    pki: &str,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
    let run = |args: &[&str]| ironclad_testkit::run_ok(openssl, args);
    run(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", s(&env.path(&key))]);
    run(&[
        "req",
        "-new",
        "-key",
        s(&env.path(&key)),
        "-subj",
        &format!("/CN={name}"),
        "-out",
        s(&env.path(&csr)),
    ]);
    env.ok(&["cert", "issue", "--pki", pki, "--ca", "line-1", "--csr", &csr, "--out", &cert]);
    (env.path(&cert), env.path(&key))
}

#[test]
fn openssl_client_completes_mutual_tls_and_an_unknown_ca_is_refused() {
    let Some(openssl) = openssl() else { return };
    let env = Env::new();
    env.pki();
    // A look-alike PKI: the same names, other keys.
    env.ok(&["ca", "init", "--pki", "rogue", "--cn", "Test Root CA", "--org", "Acme", "--country", "DE"]);
    env.ok(&[
        "ca",
        "intermediate",
        "--pki",
        "rogue",
        "--name",
        "line-1",
        "--org",
        "Acme",
        "--country",
        "DE",
        "--family",
        "acme-cam",
    ]);
    let (cert, key) = openssl_device(&env, &openssl, "pki", "cam-openssl");
    let (rogue_cert, rogue_key) = openssl_device(&env, &openssl, "rogue", "cam-forged");
    let srv = Serve::start(&env, &["--sqlite", "registry.sqlite"]);
    srv.admin(&env, &["server", "enroll", "group", "--pki", "pki", "--ca", "line-1"]);
    for version in ["-tls1_3", "-tls1_2"] {
        let out = s_client(&openssl, &srv, &cert, &key, version);
        assert!(out.contains("HTTP/1.1 200 OK"), "{version}: {out}");
        assert!(out.contains("\"challenge_id\""), "{version}: {out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{version}: {out}");
        let out = s_client(&openssl, &srv, &rogue_cert, &rogue_key, version);
        assert!(!out.contains("HTTP/1.1"), "{version}: the server answered the look-alike:\n{out}");
        assert!(out.contains("alert"), "{version}: no TLS alert:\n{out}");
    }
    srv.stop();
}

#[test]
fn key_vault_and_owner_commands() {
    let env = Env::new();
    env.pki();
    let po = order(&env, "pki", "PO-1");
    let made = provision(&env, &po, 1, "m.jsonl");
    let device_id = made[0]["device_id"].as_str().unwrap().to_owned();
    let mut srv = Serve::start(&env, &["--sqlite", "cloud/registry.sqlite"]);
    // $IRONCLAD_PASSPHRASE is set by the harness: the vault's store is unlocked by it, and no
    // trial unlock secret is written beside it.
    assert!(env.path("cloud/ironclad-server-se").is_dir());
    assert!(!env.path("cloud/ironclad-server-se.secret").exists());
    srv.admin(&env, &["server", "enroll", "group", "--pki", "pki", "--ca", "line-1"]);
    assert_authenticated(&device_run(&env, &srv, &made[0]).unwrap(), &made[0]);
    assert_eq!(srv.admin(&env, &["keys", "list"]), serde_json::json!([]), "keys are made on first use");

    // An operator reads the device's stream key into a 0600 file; the vault lists it, sealed.
    let fetched =
        srv.admin(&env, &["owner", "media-key", &device_id, "front", "--as-operator", "--out", "front.key"]);
    let key = std::fs::read(env.path("front.key")).unwrap();
    assert_eq!(key.len(), 16);
    assert_eq!(hex::encode(&key), fetched["key_hex"].as_str().unwrap());
    let listed = srv.admin(&env, &["keys", "list", "--usage", "media"]);
    assert_eq!(listed[0]["id"], format!("media:{device_id}/front:v1"));
    assert_eq!(listed[0]["storage"], "sealed");
    assert!(!listed.to_string().contains(&hex::encode(&key)), "no material listed");
    let human =
        env.cmd(&srv.args(&["keys", "list"])).env("IRONCLAD_TOKEN", &srv.admin_token).output().unwrap();
    assert!(String::from_utf8_lossy(&human.stdout).contains("current"), "{}", text(&human));

    // Owners: a claim code, no devices yet, and no key of a device they do not own.
    srv.admin(
        &env,
        &["server", "token", "create", "--name", "alice", "--role", "owner", "--out", "alice.token"],
    );
    let mut args = srv.args(&["owner", "claim-code", "--token-file", "alice.token"]);
    let code = env.json(&args);
    assert_eq!(code["code"].as_str().unwrap().len(), 32);
    args = srv.args(&["owner", "devices", "--token-file", "alice.token"]);
    assert_eq!(env.json(&args), serde_json::json!([]));
    args = srv.args(&[
        "owner",
        "media-key",
        &device_id,
        "front",
        "--out",
        "x.key",
        "--token-file",
        "alice.token",
    ]);
    let refused = env.fails(&args);
    assert!(refused.contains("forbidden"), "{refused}");
    assert!(!env.path("x.key").exists(), "nothing written on refusal");
    args = srv.args(&["keys", "list", "--token-file", "alice.token"]);
    assert!(env.fails(&args).contains("forbidden"));

    // Rotation; and the same keys after a restart (the master key stays in the vault's SE).
    let rotated = srv.admin(&env, &["keys", "rotate", "media", "--subject", &format!("{device_id}/front")]);
    assert_eq!(rotated["version"], 2);
    let v2 = srv.admin(&env, &["owner", "media-key", &device_id, "front", "--as-operator"]);
    assert_ne!(v2["key_hex"], fetched["key_hex"]);
    srv.stop();
    srv = Serve::start_as(&env, "admin-2", &["--sqlite", "cloud/registry.sqlite"]);
    let again = srv.admin(&env, &["owner", "media-key", &device_id, "front", "--as-operator"]);
    assert_eq!(again["key_hex"], v2["key_hex"], "unsealed by the same master key after a restart");

    // Signed commands: sequences per device, signed with the vault's command key; unknown
    // devices refused; nothing uploaded yet.
    let first = srv.admin(&env, &["command", "send", &device_id, "reboot", "--args", "{\"delay\":5}"]);
    let second = srv.admin(&env, &["command", "send", &device_id, "set-led", "--ttl", "60"]);
    assert_eq!((first["sequence"].as_u64(), second["sequence"].as_u64()), (Some(1), Some(2)));
    assert_eq!(first["kid"], "command-signing:v1");
    let listed = srv.admin(&env, &["command", "list", &device_id]);
    assert_eq!(listed[0]["status"], "pending");
    let refused = srv.admin_fails(&env, &["command", "send", "no-such-device", "reboot"]);
    assert!(refused.contains("never authenticated"), "{refused}");
    let bad_args = srv.admin_fails(&env, &["command", "send", &device_id, "x", "--args", "{not json"]);
    assert!(bad_args.contains("--args is not JSON"), "{bad_args}");
    assert_eq!(srv.admin(&env, &["logs", "list", &device_id]), serde_json::json!([]));
    let mut args = srv.args(&["logs", "show", "0000"]);
    args.extend(["--token-file", "alice.token"]);
    assert!(env.fails(&args).contains("forbidden"), "owners read no logs");
    srv.stop();
}

#[test]
fn crl_published_to_the_registry_mirrored_and_checked_by_openssl() {
    let Some(openssl) = openssl() else { return };
    let env = Env::new();
    env.pki();
    let po = order(&env, "pki", "PO-1");
    let made = provision(&env, &po, 2, "m.jsonl");
    let srv = Serve::start(&env, &["--sqlite", "registry.sqlite"]);
    let group = srv.admin(&env, &["server", "enroll", "group", "--pki", "pki", "--ca", "line-1"]);
    let group_id = group["id"].as_str().unwrap().to_owned();
    srv.admin(
        &env,
        &["server", "token", "create", "--name", "dash", "--role", "viewer", "--out", "dash.token"],
    );
    for record in &made {
        assert_authenticated(&device_run(&env, &srv, record).unwrap(), record);
    }

    // Revoked in the PKI, the CA's CRL published to the registry: refused at once.
    let serial = made[0]["serial"].as_str().unwrap();
    env.ok(&["cert", "revoke", "--pki", "pki", "--serial", serial, "--reason", "key-compromise"]);
    env.ok(&["ca", "crl", "--pki", "pki", "--ca", "line-1", "--out", "crl-1.pem"]);
    let published = srv.admin(&env, &["server", "crl", "publish", "crl-1.pem"]);
    assert_eq!((published["outcome"].as_str(), published["entries"].as_u64()), (Some("stored"), Some(1)));
    assert_eq!(published["enrollment_id"], group_id.as_str());
    assert!(device_run(&env, &srv, &made[0]).unwrap_err().contains("authentication refused"));
    assert_authenticated(&device_run(&env, &srv, &made[1]).unwrap(), &made[1]);
    assert_eq!(srv.admin(&env, &["server", "crl", "publish", "crl-1.pem"])["outcome"], "unchanged");

    // A newer CRL, then the older one replayed: refused, naming both numbers.
    env.ok(&["ca", "crl", "--pki", "pki", "--ca", "line-1", "--out", "crl-2.pem"]);
    assert_eq!(srv.admin(&env, &["server", "crl", "publish", "crl-2.pem"])["number"], "2");
    let mut args = srv.args(&["server", "crl", "publish", "crl-1.pem"]);
    args.extend(["--token-file", "dash.token"]);
    assert!(env.fails(&args).contains("needs operator"), "a viewer may not publish");
    let mut args = srv.args(&["server", "crl", "publish", "crl-1.pem"]);
    args.push("--json");
    let out = env.cmd(&args).env("IRONCLAD_TOKEN", &srv.admin_token).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("CRL number 1 is not newer than the current CRL's (2)"), "{}", text(&out));

    // Mirrored by a viewer, as DER, atomically: OpenSSL verifies it against the CA chain and
    // finds the revoked serial.
    let mut args = srv.args(&["server", "crl", "get", &group_id, "--out", "www/line-1.crl"]);
    args.extend(["--token-file", "dash.token"]);
    std::fs::create_dir_all(env.path("www")).unwrap();
    let got = env.json(&args);
    assert_eq!((got["number"].as_str(), got["stale"].as_bool()), (Some("2"), Some(false)), "{got}");
    let mirror = env.path("www/line-1.crl");
    let chain = env.path("pki/ca/line-1/chain.pem");
    let verified = Command::new(&openssl)
        .args([
            "crl",
            "-inform",
            "DER",
            "-in",
            s(&mirror),
            "-CAfile",
            s(&chain),
            "-verify",
            "-noout",
            "-text",
        ])
        .output()
        .unwrap();
    let said = text(&verified);
    assert!(verified.status.success() && said.contains("verify OK"), "{said}");
    assert!(said.to_lowercase().contains(&serial.to_lowercase()), "{said}");
    assert!(said.contains("Key Compromise"), "{said}");
    let entries: Vec<_> =
        std::fs::read_dir(env.path("www")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["line-1.crl"], "no temporary file left behind");

    // A mirror never goes back: a file holding a newer CRL than the server's is kept.
    env.ok(&["ca", "crl", "--pki", "pki", "--ca", "line-1", "--out", "www/line-1.crl"]);
    let before = std::fs::read(&mirror).unwrap();
    let mut args = srv.args(&["server", "crl", "get", &group_id, "--out", "www/line-1.crl"]);
    args.extend(["--token-file", "dash.token"]);
    assert!(env.fails(&args).contains("newer than the server's 2; not replaced"));
    assert_eq!(std::fs::read(&mirror).unwrap(), before);
    srv.stop();
}

#[test]
fn key_vault_in_softhsm() {
    let Some(hsm) = ironclad_testkit::softhsm::SoftHsm::new("ironclad-vault") else { return };
    let Some(tool) = ironclad_testkit::require_tool("pkcs11-tool") else { return };
    let env = Env::new();
    env.pki();
    let po = order(&env, "pki", "PO-1");
    let made = provision(&env, &po, 1, "m.jsonl");
    let device_id = made[0]["device_id"].as_str().unwrap().to_owned();
    let mut vars = hsm.env();
    vars.push(("IRONCLAD_PKCS11_PIN", hsm.pin().into()));
    let uri = hsm.uri();
    let serve_args = ["--sqlite", "cloud/registry.sqlite", "--vault-pkcs11", &uri];
    let mut srv = Serve::start_env(&env, "admin", &serve_args, &vars);
    assert!(!env.path("cloud/ironclad-server-se").exists(), "no software store when the vault is in an HSM");
    srv.admin(&env, &["server", "enroll", "group", "--pki", "pki", "--ca", "line-1"]);
    assert_authenticated(&device_run(&env, &srv, &made[0]).unwrap(), &made[0]);
    let key = srv.admin(&env, &["owner", "media-key", &device_id, "front", "--as-operator"]);
    let sent = srv.admin(&env, &["command", "send", &device_id, "reboot"]);
    assert_eq!(sent["kid"], "command-signing:v1");
    let listed = srv.admin(&env, &["keys", "list"]);
    let storage: Vec<&str> =
        listed.as_array().unwrap().iter().map(|k| k["storage"].as_str().unwrap()).collect();
    assert_eq!(storage, ["secure-element", "sealed"], "{listed}");

    // The master and the command key are token objects, sensitive and never extractable.
    let mut list = Command::new(&tool);
    list.args([
        "--module",
        hsm.module().to_str().unwrap(),
        "--token-label",
        "ironclad-vault",
        "--login",
        "--pin",
        hsm.pin(),
        "--list-objects",
    ]);
    let out = hsm.apply(&mut list).output().unwrap();
    let objects = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(objects.contains("vault-master") && objects.contains("command-signing-v1"), "{objects}");
    assert!(objects.contains("never extractable"), "{objects}");

    srv.stop();
    srv = Serve::start_env(&env, "admin-2", &serve_args, &vars);
    let again = srv.admin(&env, &["owner", "media-key", &device_id, "front", "--as-operator"]);
    assert_eq!(again["key_hex"], key["key_hex"], "unsealed by the token's master key after a restart");
    srv.stop();
}
