//! Authentication rates on loopback, what `scripts/bench-auth` runs: an in-process server
//! (SQLite in a temporary directory, or PostgreSQL), N provisioned devices (keys in in-memory
//! secure elements, line CA enrolled as a group with proof of possession), then
//!
//! 1. full authentications: a new mutual-TLS connection per device + challenge-response;
//! 2. challenge-responses repeated on kept connections (`concurrency` devices connect, then
//!    answer `rounds` challenges each);
//! 3. the authentication's registry lookup (revocation by serial + enrollment by certificate,
//!    key and CA) with N enrolled devices bulk-loaded through the store API, for each N given.
//!
//! Client and server share the process's runtime and the machine's cores. Prints
//! `bench: <what> = <value> <unit>` lines.
//!
//!   cargo run --release -p ironclad-agent --example auth_rate -- \
//!       [--devices 2000] [--concurrency 64] [--rounds 300] [--lookup 10000,1000000] \
//!       [--postgres CONNINFO | --postgres-cluster] [--phase all|full|kept]
//!
//! `--postgres-cluster` starts a throwaway cluster (ironclad-testkit) and skips with a note when
//! PostgreSQL is not installed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironclad_agent::{
    AuthSummary, ServerEndpoint, authenticate_fleet, enroll_fleet, provision_fleet, reauthenticate_fleet,
};
use ironclad_server::store::{
    ChallengeOp, CrlKey, Enrollment, EnrollmentStatus, MatchKey, PostgresStore, SqliteStore, Store,
};
use ironclad_server::{Role, Server, ServerConfig, ServerIdentity};

struct Args {
    devices: usize,
    concurrency: usize,
    rounds: usize,
    lookup: Vec<usize>,
    postgres: Option<String>,
    cluster: bool,
    phase: String,
}

fn args() -> Args {
    let mut a = Args {
        devices: 2000,
        concurrency: 64,
        rounds: 300,
        lookup: Vec::new(),
        postgres: None,
        cluster: false,
        phase: "all".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--devices" => a.devices = value().parse().unwrap(),
            "--concurrency" => a.concurrency = value().parse().unwrap(),
            "--rounds" => a.rounds = value().parse().unwrap(),
            "--lookup" => a.lookup = value().split(',').map(|n| n.parse().unwrap()).collect(),
            "--postgres" => a.postgres = Some(value()),
            "--postgres-cluster" => a.cluster = true,
            "--phase" => a.phase = value(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn line(what: &str, value: f64, unit: &str) {
    let v = if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.2}") };
    println!("bench: {what} = {v} {unit}");
}

/// CPU seconds (user + system) this process has used: with other work on the machine, the
/// CPU cost per authentication says more than the wall-clock rate.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn report(kind: &str, backend: &str, s: &AuthSummary, unit: &str, cpu: f64) {
    assert_eq!(s.failed, 0, "{kind}: {:?}", s.failures);
    line(&format!("{kind} ({backend})"), s.auths_per_sec, unit);
    line(&format!("{kind} latency p50 ({backend})"), s.p50_ms, "ms");
    line(&format!("{kind} latency p99 ({backend})"), s.p99_ms, "ms");
    let per = cpu / s.authenticated.max(1) as f64 * 1e6;
    line(&format!("{kind} CPU per operation, client + server ({backend})"), per, "us");
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let _cluster;
    let store: Arc<dyn Store> = if a.cluster {
        let Some(c) = ironclad_testkit::postgres::PgCluster::start() else {
            println!("note: PostgreSQL is not installed; PostgreSQL figures skipped");
            return;
        };
        let url = c.fresh_database();
        _cluster = c;
        Arc::new(PostgresStore::connect(&url, 4).await.unwrap())
    } else if let Some(url) = &a.postgres {
        Arc::new(PostgresStore::connect(url, 4).await.unwrap())
    } else {
        Arc::new(SqliteStore::open(dir.path().join("registry.sqlite")).unwrap())
    };
    let backend = store.backend_name();

    let (identity, ca_pem) = ServerIdentity::generate(&["localhost"]).unwrap();
    let mut config = ServerConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = Server::builder(config).identity(identity).store(store.clone()).bind().await.unwrap();
    let token = server.registry().create_api_token("bench", Role::Operator).await.unwrap();
    let endpoint = ServerEndpoint::new(server.local_addr(), "localhost", ca_pem.as_bytes()).unwrap();

    let n = a.devices;
    let fleet =
        tokio::task::spawn_blocking(move || provision_fleet(n, "bench", None)).await.unwrap().unwrap();
    let mut op = ironclad_agent::OperatorClient::connect(&endpoint, &token.secret).await.unwrap();
    enroll_fleet(&mut op, &fleet).await.unwrap();
    drop(op);

    // Warm-up (connection set-up paths, SQLite page cache), not counted.
    let warm = &fleet.devices[..fleet.devices.len().min(200)];
    authenticate_fleet(&endpoint, warm, a.concurrency, None).await;

    if a.phase != "kept" {
        let cpu = cpu_secs();
        let full = authenticate_fleet(&endpoint, &fleet.devices, a.concurrency, None).await;
        report("full authentications", backend, &full, "auths/s", cpu_secs() - cpu);
    }
    if a.phase != "full" {
        let cpu = cpu_secs();
        // `concurrency` devices keep their connections and answer `rounds` challenges each.
        let kept_devices = &fleet.devices[..a.concurrency.min(fleet.devices.len())];
        let kept = reauthenticate_fleet(&endpoint, kept_devices, a.rounds, a.concurrency).await;
        report("challenge-responses on kept connections", backend, &kept, "/s", cpu_secs() - cpu);
    }
    server.shutdown().await;

    let mut loaded = 0;
    for target in a.lookup {
        let t = Instant::now();
        bulk_load(store.as_ref(), loaded, target).await;
        let load_secs = t.elapsed().as_secs_f64();
        loaded = loaded.max(target);
        line(
            &format!("bulk load to {target} enrolled devices ({backend})"),
            (target as f64) / load_secs,
            "rows/s",
        );
        // Three runs, the median one by p99: one p99 is at the mercy of whatever else the
        // machine does for a few milliseconds.
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(lookup_latency(store.clone(), loaded, 20_000, 16).await);
        }
        runs.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (p50, p99) = runs[1];
        line(&format!("enrollment lookup p50 ({backend}, {target} enrolled)"), p50, "ms");
        line(&format!("enrollment lookup p99 ({backend}, {target} enrolled)"), p99, "ms");
    }
}

/// SplitMix64: the bench's device keys, reproducible without an RNG.
fn key(i: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut x = i.wrapping_mul(4).wrapping_add(0x9E37_79B9_7F4A_7C15);
    for chunk in out.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// Individual enrollments `from..to`, by certificate fingerprint, through
/// `Store::import_enrollments` in chunks.
async fn bulk_load(store: &dyn Store, from: usize, to: usize) {
    let mut i = from;
    while i < to {
        let end = (i + 50_000).min(to);
        let rows: Vec<Enrollment> = (i..end)
            .map(|n| Enrollment {
                id: hex::encode(&key(n as u64 ^ (1 << 62))[..16]),
                key: MatchKey::Certificate(key(n as u64)),
                status: EnrollmentStatus::Enabled,
                device_id: Some(format!("bulk-{n:08}")),
                der: None,
                verification_code: None,
                note: String::new(),
                created_at: 0,
                updated_at: 0,
            })
            .collect();
        let counts = store.import_enrollments(&rows).await.unwrap();
        assert_eq!(counts.inserted as usize, rows.len());
        i = end;
    }
}

/// The lookups of one authentication (revocation by serial and by the CRLs of the chain's two
/// CAs, then enrollments by certificate, key and two CAs) for random enrolled devices, `concurrency` at a time: p50 and p99 in ms.
async fn lookup_latency(
    store: Arc<dyn Store>,
    enrolled: usize,
    count: usize,
    concurrency: usize,
) -> (f64, f64) {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        let store = store.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(count / concurrency);
            let mut x = key(t as u64 + 7_000_000_000)[0] as u64 + 1;
            for _ in 0..count / concurrency {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let n = x % enrolled as u64;
                let keys = [
                    MatchKey::Certificate(key(n)),
                    MatchKey::PublicKey(key(n ^ (1 << 61))),
                    MatchKey::Ca(key(1 << 60)),
                    MatchKey::Ca(key((1 << 60) + 1)),
                ];
                let serial = hex::encode(&key(n)[..16]);
                // As a real chain names itself to the CRLs: the device by its line CA, the line
                // CA by the root.
                let crl_keys = [
                    CrlKey { issuer: key(1 << 60), serial: serial.clone() },
                    CrlKey { issuer: key((1 << 60) + 1), serial: "0a".into() },
                ];
                let started = Instant::now();
                let found = store.admission(&serial, &crl_keys, &keys, ChallengeOp::None).await.unwrap();
                latencies.push(started.elapsed());
                assert!(found.revocation.is_none() && found.enrollments.len() == 1);
            }
            latencies
        });
    }
    let mut all: Vec<Duration> = Vec::new();
    while let Some(l) = tasks.join_next().await {
        all.extend(l.unwrap());
    }
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    (pick(0.5), pick(0.99))
}
