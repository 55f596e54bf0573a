//! OTA serving rate on loopback, what `scripts/bench-ota` runs: an in-process server (SQLite
//! in a temporary directory, key vault in an in-memory secure element), N provisioned devices
//! (keys in in-memory secure elements, each with an X25519 firmware-decryption key), a release
//! of S bytes encrypted to the server's key and rolled out to all of them, then
//!
//! 1. the per-device re-wrap cost: what the server does for each device's copy (one ECIES
//!    X25519 wrap of the content key into the TLV area, and the SHA-256 of the copy finished
//!    from the kept state of the shared signed region), timed over the N device keys, against
//!    a full re-wrap pass over the image (`VerifiedImage::rewrap`, decrypting to re-hash);
//! 2. the update checks: each device, on its own mutual-TLS connection, asks and gets its
//!    offer (re-wrap, stored copy, manifest signed in the vault's secure element);
//! 3. the downloads: all N devices fetch their copy at once over their connections; aggregate
//!    bytes served per second, the CPU (client + server) per GB, and the server's share of it
//!    (the server runs on its own runtime with named threads), hence what the machine's cores
//!    could serve with the clients elsewhere.
//!
//! Client and server share the process and the machine's cores. A sample of devices keeps its
//! copy and checks it: manifest digest, then decryption and verification with its own key.
//! Prints `bench: <what> = <value> <unit>` lines.
//!
//!   cargo run --release -p ironclad-agent --example ota_rate -- [--devices 1000] [--size 4194304] \
//!       [--from-disk]
#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use ironclad_agent::{DeviceConnection, OperatorClient, ServerEndpoint, enroll_fleet, provision_fleet};
use ironclad_image::{
    Cipher, ContentKey, Encryption, Image, KeyAgreement, Limits, SeAgreementKey, SignOptions, TrustAnchors,
    sign,
};
use ironclad_proto::ota::UpdateCheck;
use ironclad_proto::{ManifestPolicy, SignedManifest};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, PublicKey, SecureElement};
use ironclad_server::store::{SqliteStore, Store};
use ironclad_server::{Role, Server, ServerConfig, ServerIdentity};
use tokio::sync::Semaphore;

const CLASS: &str = "6f1c5a1e-7a2b-4c3d-8e4f-0123456789ab";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map_or(default, |v| v.parse().unwrap())
}

fn line(what: &str, value: f64, unit: &str) {
    let v = if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.2}") };
    println!("bench: {what} = {v} {unit}");
}

/// CPU seconds (user + system) of this process.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Name of the server runtime's threads (workers and blocking pool).
const SERVER_THREADS: &str = "ota-server";

/// CPU seconds of this process's threads named `SERVER_THREADS` (the server) and of the others.
fn cpu_split() -> (f64, f64) {
    let (mut server, mut rest) = (0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return (0.0, 0.0) };
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some((head, tail)) = stat.rsplit_once(')') else { continue };
        let name = head.split_once('(').map_or("", |(_, n)| n);
        let fields: Vec<&str> = tail.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let secs = (ticks(11) + ticks(12)) / 100.0;
        if name.starts_with(SERVER_THREADS) { server += secs } else { rest += secs }
    }
    (server, rest)
}

fn class_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    hex::decode_to_slice(CLASS.replace('-', ""), &mut out).unwrap();
    out
}

#[tokio::main]
async fn main() {
    let devices = arg("--devices", 1000);
    let size = arg("--size", 4 << 20);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("registry.sqlite")).unwrap());
    let vault_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let (identity, ca_pem) = ServerIdentity::generate(&["localhost"]).unwrap();
    let mut config = ServerConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let from_disk = std::env::args().any(|a| a == "--from-disk");
    if from_disk {
        // Nothing kept in memory: every download streams the release file from disk.
        config.ota.memory_cache_bytes = 0;
    }
    // The server on its own runtime, whose threads are named, so its CPU time can be told
    // from the clients'.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .unwrap();
    let builder = Server::builder(config)
        .identity(identity)
        .store(store.clone())
        .secure_element(vault_se.clone())
        .releases_dir(dir.path().join("releases"));
    let server = server_rt.spawn(builder.bind()).await.unwrap().unwrap();
    let token = server.registry().create_api_token("bench", Role::Admin).await.unwrap();
    let endpoint = ServerEndpoint::new(server.local_addr(), "localhost", ca_pem.as_bytes()).unwrap();

    // The fleet, each device with its firmware-decryption key.
    let fleet = tokio::task::spawn_blocking(move || provision_fleet(devices, "ota-bench", None))
        .await
        .unwrap()
        .unwrap();
    let fw = Label::new("fw-decrypt").unwrap();
    let device_keys: Vec<PublicKey> = fleet
        .devices
        .iter()
        .map(|d| d.key().secure_element().generate_key(&fw, KeyAlgorithm::X25519).unwrap())
        .collect();
    let mut op = OperatorClient::connect(&endpoint, &token.secret).await.unwrap();
    let group = enroll_fleet(&mut op, &fleet).await.unwrap();

    // The release team masters S bytes encrypted to the server's key.
    let release_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let ml = Label::new("fw-mastering").unwrap();
    release_se.generate_key(&ml, KeyAlgorithm::EcdsaP256).unwrap();
    let mastering = KeyHandle::open(release_se, &ml).unwrap();
    let pem_text = pem::encode(&pem::Pem::new("PUBLIC KEY", mastering.public_key().spki_der().unwrap()));
    op.add_ota_key("bench", &pem_text).await.unwrap();
    let enc = op.ota_encryption_key().await.unwrap();
    let der = pem::parse(enc["public_key_pem"].as_str().unwrap()).unwrap().contents().to_vec();
    let server_key = ironclad_image::recipient_from_spki(&der).unwrap();
    let mut o = SignOptions::new("1.1.0".parse().unwrap());
    o.header_size = 0x200;
    o.security_counter = Some(2);
    o.product_class = Some(class_bytes());
    o.encryption = Some(Encryption {
        recipient: server_key,
        content_key: ContentKey::generate(Cipher::Aes128Ctr).unwrap(),
    });
    let payload: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut image = Vec::new();
    sign(&mastering, &o, &payload[..], payload.len() as u64, &mut image).unwrap();
    let release = op.upload_release(image.clone(), "bench").await.unwrap();
    op.start_rollout(&release.id, &group, 100).await.unwrap();
    println!(
        "{devices} devices, a {} MiB release ({} bytes), {} cores shared by client and server",
        size >> 20,
        image.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. The server's per-device work, timed alone: the vault's key unwraps the content key
    // once (as the server does at load), then one tail per device key.
    let vault_key =
        SeAgreementKey::open(vault_se.clone(), &Label::new("firmware-decryption-v1").unwrap()).unwrap();
    let parsed = Image::parse(&image, &Limits::default()).unwrap();
    let content_key = parsed.unwrap_content_key(&vault_key).unwrap();
    let trust = TrustAnchors::with_key(mastering.public_key().clone()).unwrap();
    let verified = parsed.verify_encrypted(&mut Cursor::new(&image), &trust, &content_key).unwrap();
    let signed = verified.header().signed_len() as usize;
    let mut prefix = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    prefix.update(&image[..signed]);
    let t = Instant::now();
    for key in &device_keys {
        let tail = verified.rewrapped_tlv_area(key).unwrap();
        let mut ctx = prefix.clone();
        ctx.update(&tail);
        std::hint::black_box(ctx.finish());
    }
    let rewrap_us = t.elapsed().as_secs_f64() * 1e6 / devices as f64;
    let full_runs = devices.min(20);
    let t = Instant::now();
    for key in &device_keys[..full_runs] {
        let mut out = Vec::with_capacity(image.len());
        verified.rewrap(&mut Cursor::new(&image), &mut out, key).unwrap();
        std::hint::black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &out));
    }
    let full_us = t.elapsed().as_secs_f64() * 1e6 / full_runs as f64;

    // 2. Every device connects, authenticates and checks; connections are kept.
    let gate = Arc::new(Semaphore::new(64));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (identity, key) in fleet.devices.iter().cloned().zip(device_keys.iter().cloned()) {
        let (endpoint, gate) = (endpoint.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let mut conn = DeviceConnection::connect(&endpoint, identity).await.unwrap();
            conn.authenticate().await.unwrap();
            let req = UpdateCheck {
                version: "1.0.0+0".into(),
                security_counter: 1,
                product_class: CLASS.into(),
                fw_key_spki_hex: hex::encode(key.spki_der().unwrap()),
            };
            let started = Instant::now();
            let answer = conn.ota_check(&req).await.unwrap();
            let latency = started.elapsed().as_secs_f64() * 1e3;
            (conn, answer.offer.expect("every device is in a 100 % rollout"), latency)
        }));
    }
    let mut conns = Vec::new();
    let mut latencies = Vec::new();
    for task in tasks {
        let (conn, offer, ms) = task.await.unwrap();
        latencies.push(ms);
        conns.push((conn, offer));
    }
    let setup_secs = t.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p50 = latencies[latencies.len() / 2];

    // 3. All devices download at once.
    let cpu = cpu_secs();
    let (server_cpu, _) = cpu_split();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (i, (mut conn, offer)) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            // A sample keeps its copy to check it; the others count bytes.
            let keep = i % (devices / 4).max(1) == 0;
            let mut copy = Vec::new();
            let n = conn
                .ota_fetch(&offer.download_path, |chunk| {
                    if keep {
                        copy.extend_from_slice(chunk)
                    }
                })
                .await
                .unwrap();
            assert_eq!(n, offer.size);
            (i, offer, copy)
        }));
    }
    let mut total = 0u64;
    let mut samples = Vec::new();
    for task in tasks {
        let (i, offer, copy) = task.await.unwrap();
        total += offer.size;
        if !copy.is_empty() {
            samples.push((i, offer, copy));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu_used = cpu_secs() - cpu;
    let server_used = cpu_split().0 - server_cpu;

    // The sample: the manifest names exactly the bytes received, and only the device's own
    // key opens them.
    let keys = {
        let mut k = ironclad_proto::TrustedKeys::new();
        let vk = store
            .latest_managed_key(ironclad_server::store::KeyUsage::ManifestSigning, "")
            .await
            .unwrap()
            .unwrap();
        let ironclad_server::store::KeyMaterial::InSecureElement { public_key, .. } = &vk.material else {
            panic!()
        };
        k.insert(
            vk.id.clone().into_bytes(),
            ironclad_proto::VerifyingKey::from_spki_der(public_key).unwrap(),
        );
        k
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for (i, offer, copy) in &samples {
        let m = SignedManifest::parse(&offer.manifest, &Default::default())
            .unwrap()
            .verify(&keys, &ManifestPolicy { now, product_class: CLASS })
            .unwrap();
        let sha: [u8; 32] =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, copy).as_ref().try_into().unwrap();
        m.check_image(copy.len() as u64, &sha).unwrap();
        let own = SeAgreementKey::open(fleet.devices[*i].key().secure_element().clone(), &fw).unwrap();
        assert_eq!(own.public_key(), &device_keys[*i]);
        let mut src = Cursor::new(copy);
        let v = Image::read(&mut src, &Limits::default())
            .unwrap()
            .decrypt_verify(&mut src, &trust, &own)
            .unwrap();
        assert_eq!(v.digest(), verified.digest());
    }
    println!(
        "checked {} sampled copies: manifest digest, decryption with the device's own key, mastering signature",
        samples.len()
    );
    println!("set-up (connect, authenticate, check) of {devices} devices took {setup_secs:.1} s");

    let source = if from_disk { "from disk" } else { "from memory" };
    line(
        &format!("OTA aggregate download, {devices} devices x {} MiB over mutual TLS, {source}", size >> 20),
        total as f64 / secs / 1e9,
        "GB/s",
    );
    line(&format!("OTA download wall time, {source}"), secs, "s");
    let gb = total as f64 / 1e9;
    line(&format!("OTA CPU per GB served, client + server, {source}"), cpu_used / gb, "s");
    line(&format!("OTA server CPU per GB served (its runtime's threads), {source}"), server_used / gb, "s");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    line(
        &format!("OTA serving capacity of the server's CPU on {cores:.0} cores ({source})"),
        cores / (server_used / gb),
        "GB/s",
    );
    line(
        "OTA per-device re-wrap (ECIES X25519 wrap + SHA-256 of the copy from the kept state)",
        rewrap_us,
        "us",
    );
    line(&format!("OTA full-image re-wrap pass, {} MiB", size >> 20), full_us, "us");
    line("OTA per-device re-wrap vs full-image re-wrap pass", full_us / rewrap_us, "x");
    line("OTA update check (re-wrap, stored copy, manifest signed in the vault SE) p50", p50, "ms");
    server_rt.spawn(server.shutdown()).await.unwrap();
    server_rt.shutdown_background();
}
