//! Past one machine: two `ironclad serve` processes on one PostgreSQL database (a throwaway
//! cluster; required under `IRONCLAD_REQUIRE_PEERS=1`).
//!
//! (a) A change made through one process (disable a group, disable one device, revoke, disable
//!     an API token) is enforced by the other on its very next request, even on a connection
//!     whose chain it has verified and remembered.
//! (b) Under load (operators enrolling and importing, devices authenticating, on both
//!     processes), one process is killed with SIGKILL; every enrollment, import, session and
//!     audit record whose request was acknowledged (2xx) is found afterwards.
//! (c) Every device re-authenticates on the survivor, and sessions acknowledged by the killed
//!     process still work there.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use ironclad_agent::{DeviceConnection, DeviceIdentity, OperatorClient, ServerEndpoint, Session};
use ironclad_proto::ErrorCode;
use serde_json::{Value, json};

use crate::Env;

/// One `ironclad serve --postgres` process.
struct ServeProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServeProcess {
    /// Starts a server on `url`; the generated identity is shared through `ids/` (the first
    /// process makes it). Returns the admin token when `admin` names one to create.
    fn start(env: &Env, url: &str, admin: Option<&str>, extra: &[&str]) -> (Self, Option<String>) {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--identity-dir", "ids", "--json"];
        args.extend_from_slice(extra);
        if let Some(name) = admin {
            args.extend(["--init-admin-token", name]);
        }
        let mut child = env
            .cmd(&args)
            .env("IRONCLAD_POSTGRES_URL", url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let listening: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(listening["event"], "listening");
        assert_eq!(listening["storage"], "postgres");
        let token = admin.map(|_| {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            v["token"].as_str().unwrap().to_owned()
        });
        // Keep reading stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = listening["addr"].as_str().unwrap().parse().unwrap();
        (ServeProcess { child, addr }, token)
    }

    fn endpoint(&self, env: &Env) -> ServerEndpoint {
        let ca = std::fs::read(env.path("ids/ironclad-server-ca.pem")).unwrap();
        ServerEndpoint::new(self.addr, "localhost", &ca).unwrap()
    }

    /// SIGKILL: no shutdown, no draining, no flushing.
    fn kill_9(&mut self) {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-9", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{status}");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn device_pem(d: &DeviceIdentity) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", d.chain()[0].to_vec()))
}

#[track_caller]
fn assert_auth_failed<T: std::fmt::Debug>(r: Result<T, ironclad_agent::Error>) {
    match r {
        Err(e) => assert_eq!(e.wire_code(), Some(ErrorCode::AuthFailed), "{e}"),
        Ok(v) => panic!("expected AuthFailed, got {v:?}"),
    }
}

/// The newest audit reason recorded for `device_id`, read through `op`.
async fn last_reason(op: &mut OperatorClient, device_id: &str) -> String {
    let v = op.call(Method::GET, &format!("/v1/audit?limit=1&device_id={device_id}"), None).await.unwrap();
    v[0]["reason"].as_str().unwrap_or("").to_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// What the load's clients were told, acknowledged (2xx) only.
#[derive(Default)]
struct Acked {
    /// Individual enrollment IDs.
    enrollments: Vec<String>,
    /// Per import: the manifest's SHA-256 and its match keys.
    imports: Vec<(String, Vec<String>)>,
    /// Sessions per device, and the last session each process handed out per device.
    sessions: BTreeMap<String, u64>,
    last_session_on_a: BTreeMap<String, Session>,
    /// Devices that authenticated on B after A was killed.
    reauthenticated_on_b: BTreeSet<String>,
    /// Requests acknowledged by A (to prove A was under load when killed).
    by_a: u64,
    /// Requests that failed (A dying under them, and A's connections refused after).
    failed: u64,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    hex::encode(b)
}

/// What every load task shares: both servers, the kill and stop flags, the tally.
#[derive(Clone)]
struct Load {
    a: ServerEndpoint,
    b: ServerEndpoint,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
}

/// One operator: alternately enrolls a fresh public key and imports a small manifest, on its
/// server until that dies, then on the survivor.
async fn operator_load(id: usize, token: String, mut on_a: bool, load: Load) {
    let Load { a, b, killed, stop, acked } = load;
    let mut client: Option<OperatorClient> = None;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if on_a && killed.load(Ordering::Relaxed) {
            on_a = false;
            client = None;
        }
        if client.is_none() {
            match OperatorClient::connect(if on_a { &a } else { &b }, &token).await {
                Ok(c) => client = Some(c),
                Err(_) => {
                    acked.lock().unwrap().failed += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let c = client.as_mut().unwrap();
        n += 1;
        if n % 2 == 1 {
            let key = rcgen::KeyPair::generate().unwrap();
            let body = json!({ "public_key_pem": key.public_key_pem(), "device_id": format!("op{id}-{n}") });
            match c.call(Method::POST, "/v1/enrollments/individual", Some(&body)).await {
                Ok(v) => {
                    let mut acked = acked.lock().unwrap();
                    acked.enrollments.push(v["id"].as_str().unwrap().to_owned());
                    acked.by_a += u64::from(on_a);
                }
                Err(_) => {
                    acked.lock().unwrap().failed += 1;
                    client = None;
                }
            }
        } else {
            let mut keys = Vec::new();
            let mut manifest = String::new();
            for i in 0..20 {
                let fp = random_hex(32);
                let serial = random_hex(16);
                manifest.push_str(&format!(
                    "{{\"serial\":\"{serial}\",\"device_id\":\"imp{id}-{n}-{i}\",\"sha256_fingerprint\":\"{fp}\"}}\n"
                ));
                keys.push(format!("cert:{fp}"));
            }
            let digest =
                hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, manifest.as_bytes()));
            match c.import_manifest(&manifest).await {
                Ok(v) => {
                    assert_eq!(v["inserted"], 20, "{v}");
                    let mut acked = acked.lock().unwrap();
                    acked.imports.push((digest, keys));
                    acked.by_a += u64::from(on_a);
                }
                Err(_) => {
                    acked.lock().unwrap().failed += 1;
                    client = None;
                }
            }
        }
    }
}

/// One device: authenticates again and again on a kept connection (a new connection every
/// few rounds), on its server until that dies, then on the survivor.
async fn device_load(device: DeviceIdentity, mut on_a: bool, load: Load) {
    let Load { a, b, killed, stop, acked } = load;
    let id = device.device_id().to_owned();
    let mut conn: Option<DeviceConnection> = None;
    let mut rounds = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if on_a && killed.load(Ordering::Relaxed) {
            on_a = false;
            conn = None;
        }
        if conn.is_none() || rounds.is_multiple_of(8) {
            match DeviceConnection::connect(if on_a { &a } else { &b }, device.clone()).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    acked.lock().unwrap().failed += 1;
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        rounds += 1;
        let c = conn.as_mut().unwrap();
        // Read before the answer: a session acknowledged after the kill on B is a re-auth.
        let after_kill = killed.load(Ordering::Relaxed);
        match c.authenticate().await {
            Ok(session) => {
                let session = session.clone();
                let mut acked = acked.lock().unwrap();
                *acked.sessions.entry(id.clone()).or_default() += 1;
                if on_a {
                    acked.by_a += 1;
                    acked.last_session_on_a.insert(id.clone(), session);
                } else if after_kill {
                    acked.reauthenticated_on_b.insert(id.clone());
                }
            }
            Err(_) => {
                acked.lock().unwrap().failed += 1;
                conn = None;
            }
        }
    }
}

#[test]
fn two_serve_processes_on_one_postgres_share_changes_and_survive_kill_9() {
    let Some(url) = ironclad_testkit::postgres::fresh_database() else { return };
    let env = Env::new();
    let (mut a, token) = ServeProcess::start(&env, &url, Some("admin"), &[]);
    let token = token.unwrap();
    let fleet = ironclad_agent::provision_fleet(28, "acme-cam", None).unwrap();
    let rt = runtime();
    let (ea, group) = rt.block_on(async {
        let ea = a.endpoint(&env);
        let mut op = OperatorClient::connect(&ea, &token).await.unwrap();
        let group = ironclad_agent::enroll_fleet(&mut op, &fleet).await.unwrap();
        (ea, group)
    });
    // B starts on the same database: it reads the enrolled group and the admin token there. Its
    // periodic reload of the trusted CAs is set to an hour: only A's announcement can make B
    // trust a CA enrolled through A in the test's time.
    std::fs::write(env.path("b.toml"), "trust_refresh_secs = 3600\n").unwrap();
    let (b, _) = ServeProcess::start(&env, &url, None, &["--config", "b.toml"]);
    let eb = b.endpoint(&env);

    // ---- (a) changes through one process are enforced by the other at once -----------------
    rt.block_on(async {
        let mut op_a = OperatorClient::connect(&ea, &token).await.unwrap();
        let mut op_b = OperatorClient::connect(&eb, &token).await.unwrap();
        let [d0, d1, d2] = [0, 1, 2].map(|i| fleet.devices[i].clone());
        let mut kept = DeviceConnection::connect(&eb, d0.clone()).await.unwrap();
        kept.authenticate().await.unwrap();

        // Group disabled through A: B refuses the next challenge on the connection whose chain
        // it verified and remembered, and a new connection too. No wait in between.
        op_a.set_enabled(&group, false).await.unwrap();
        assert_auth_failed(kept.authenticate().await);
        let mut fresh = DeviceConnection::connect(&eb, d1.clone()).await.unwrap();
        assert_auth_failed(fresh.authenticate().await);
        assert_eq!(last_reason(&mut op_b, d0.device_id()).await, "group_disabled");
        op_a.set_enabled(&group, true).await.unwrap();
        kept.authenticate().await.unwrap();

        // One device disabled inside the enabled group, through A: refused by B at once.
        let one = op_a.enroll_certificate(&device_pem(&d1), false).await.unwrap();
        assert_eq!(one.status, "disabled");
        assert_auth_failed(fresh.authenticate().await);
        assert_eq!(last_reason(&mut op_b, d1.device_id()).await, "individual_disabled");
        kept.authenticate().await.unwrap();

        // Revoked through B: A refuses at once, and B's open session of it stops working.
        let mut on_a = DeviceConnection::connect(&ea, d2.clone()).await.unwrap();
        on_a.authenticate().await.unwrap();
        let mut on_b = DeviceConnection::connect(&eb, d2.clone()).await.unwrap();
        on_b.authenticate().await.unwrap();
        let serial = x509_parser::parse_x509_certificate(&d2.chain()[0]).unwrap().1.raw_serial_as_string();
        op_b.revoke(&serial.replace(':', ""), "keyCompromise").await.unwrap();
        assert_auth_failed(on_a.authenticate().await);
        assert_auth_failed(on_b.get_state().await);
        assert_eq!(last_reason(&mut op_a, d2.device_id()).await, "revoked");

        // A new family enrolled through A: B trusts its CA for the TLS handshake as soon as A's
        // announcement arrives (LISTEN/NOTIFY), not an hour later.
        let other = ironclad_agent::provision_fleet(1, "acme-doorbell", None).unwrap();
        // (With TLS 1.3 the client learns of a refused certificate on its first request.)
        let before = async {
            let mut c = DeviceConnection::connect(&eb, other.devices[0].clone()).await?;
            c.authenticate().await.map(|_| ())
        };
        assert!(before.await.is_err(), "B admitted a family nobody enrolled");
        ironclad_agent::enroll_fleet(&mut op_a, &other).await.unwrap();
        let enrolled_at = Instant::now();
        let trusted_after = loop {
            let attempt = async {
                let mut c = DeviceConnection::connect(&eb, other.devices[0].clone()).await?;
                c.authenticate().await.map(|_| ())
            };
            match attempt.await {
                Ok(()) => break enrolled_at.elapsed(),
                Err(_) if enrolled_at.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => panic!("B never trusted the new family's CA: {e}"),
            }
        };
        eprintln!("a family enrolled through A was admitted by B after {trusted_after:?}");

        // An API token disabled through A is refused by B at once.
        let t = op_a.create_token("short-lived", "operator").await.unwrap();
        let mut with_t = OperatorClient::connect(&eb, t["token"].as_str().unwrap()).await.unwrap();
        with_t.enrollments().await.unwrap();
        op_a.call(Method::POST, "/v1/tokens/short-lived/disable", None).await.unwrap();
        assert_auth_failed(with_t.enrollments().await);
    });

    // ---- (b) kill -9 under load ----------------------------------------------------------------
    let load_devices: Vec<DeviceIdentity> = fleet.devices[3..].to_vec();
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let load = Load {
        a: ea.clone(),
        b: eb.clone(),
        killed: killed.clone(),
        stop: stop.clone(),
        acked: acked.clone(),
    };
    let kill_at = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, d) in load_devices.iter().enumerate() {
            tasks.spawn(device_load(d.clone(), i % 2 == 0, load.clone()));
        }
        for i in 0..4 {
            tasks.spawn(operator_load(i, token.clone(), i % 2 == 0, load.clone()));
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let before = acked.lock().unwrap().by_a;
        assert!(before > 0, "A served nothing before the kill");
        tokio::task::block_in_place(|| a.kill_9());
        let kill_at = Instant::now();
        killed.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop.store(true, Ordering::Relaxed);
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        kill_at
    });
    drop(load);
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "load: {} enrollments, {} imports, {} sessions acknowledged ({} by A before its kill), {} failed requests, {:.1} s after the kill",
        acked.enrollments.len(),
        acked.imports.len(),
        acked.sessions.values().sum::<u64>(),
        acked.by_a,
        acked.failed,
        kill_at.elapsed().as_secs_f64()
    );
    assert!(acked.failed > 0, "the kill did not interrupt anything");
    assert!(!acked.enrollments.is_empty() && !acked.imports.is_empty());

    // ---- everything acknowledged is there, read through the survivor --------------------------
    rt.block_on(async {
        let mut op = OperatorClient::connect(&eb, &token).await.unwrap();
        let enrollments = op.enrollments().await.unwrap();
        let by_id: BTreeSet<&str> =
            enrollments.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        let keys: BTreeSet<&str> =
            enrollments.as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
        let missing: Vec<&String> = acked.enrollments.iter().filter(|id| !by_id.contains(id.as_str())).collect();
        assert!(missing.is_empty(), "acknowledged enrollments lost: {missing:?}");
        let imported: usize = acked.imports.iter().map(|(_, k)| k.len()).sum();
        let lost: Vec<&String> =
            acked.imports.iter().flat_map(|(_, k)| k).filter(|k| !keys.contains(k.as_str())).collect();
        assert!(lost.is_empty(), "acknowledged imports lost: {lost:?}");

        let audit = op.call(Method::GET, "/v1/audit?limit=1000000", None).await.unwrap();
        let audit = audit.as_array().unwrap();
        let details = |event: &str| -> Vec<&str> {
            audit.iter().filter(|r| r["event"] == event).map(|r| r["detail"].as_str().unwrap()).collect()
        };
        let enroll_audit = details("operator.enroll.individual");
        for id in &acked.enrollments {
            assert!(enroll_audit.iter().any(|d| d.contains(id.as_str())), "no audit record for enrollment {id}");
        }
        let import_audit = details("operator.enroll.import");
        for (digest, _) in &acked.imports {
            assert!(import_audit.iter().any(|d| d.contains(digest.as_str())), "no audit record for import {digest}");
        }
        let mut audited_sessions: BTreeMap<&str, u64> = BTreeMap::new();
        for r in audit.iter().filter(|r| r["event"] == "device.session" && r["outcome"] == "ok") {
            *audited_sessions.entry(r["device_id"].as_str().unwrap()).or_default() += 1;
        }
        for (device, n) in &acked.sessions {
            let audited = audited_sessions.get(device.as_str()).copied().unwrap_or(0);
            assert!(audited >= *n, "{device}: {n} sessions acknowledged, {audited} audited");
        }
        let devices = op.call(Method::GET, "/v1/registry/devices?limit=100000", None).await.unwrap();
        for d in devices.as_array().unwrap() {
            let id = d["device_id"].as_str().unwrap();
            if let Some(n) = acked.sessions.get(id) {
                assert!(d["auth_count"].as_u64().unwrap() >= *n, "{d}");
            }
        }

        // ---- (c) every device re-authenticated on the survivor, and A's sessions hold there ----
        let all: BTreeSet<String> = load_devices.iter().map(|d| d.device_id().to_owned()).collect();
        assert_eq!(acked.reauthenticated_on_b, all, "devices that did not re-authenticate on B");
        let mut moved = 0;
        for d in &load_devices {
            let Some(session) = acked.last_session_on_a.get(d.device_id()) else { continue };
            let mut conn = DeviceConnection::connect(&eb, d.clone()).await.unwrap();
            conn.set_session(session.clone());
            conn.get_state().await.unwrap();
            moved += 1;
        }
        assert!(moved > 0, "no device held a session from A");
        eprintln!(
            "verified on the survivor: {} enrollments and {imported} imported keys present and audited, \
             {} devices' sessions audited, {} devices re-authenticated on B, {moved} sessions from A usable on B",
            acked.enrollments.len(),
            acked.sessions.len(),
            acked.reauthenticated_on_b.len()
        );
    });
    drop(b);
}
