//! Accessory-side pairing costs on one core (`scripts/bench-pairing` runs it, release build):
//!
//! - pair-verify handshakes per second: the accessory's two steps (M1 → M2: X25519, an Ed25519
//!   signature by the long-term key in a software secure element, HKDF, seal; M3 → M4: open, the
//!   controller's signature verified against the pairing store, session keys). The controller's
//!   steps run between them, untimed.
//! - pair-setup cost: the accessory's M1, M3 and M5 steps (SRP-3072 with the verifier computed
//!   once at start, as ADK does; the pairing stored in memory, so the figure is compute only);
//!   also the one-off verifier and, separately, a store that writes each pairing durably.
//! - session throughput: 1024-byte frames, ChaCha20-Poly1305, one direction at a time.
//!
//! Times are this thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so a machine shared with other
//! work does not deflate the per-core figures; wall-clock figures are printed beside them.
//!
//! Usage: pairing_bench [--verify N] [--setup N] [--session-mib N] [--store-dir DIR]
//! Prints `bench:` lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironclad_pair::session::{Role, Session, SessionKeys};
use ironclad_pair::setup::{self, SetupCode};
use ironclad_pair::{
    Identity, MemoryStore, PairingStore, SeLongTermKey, SealedPairingStore, SoftLongTermKey, SystemRandom,
    verify,
};
use ironclad_se::{DirSe, KdfParams, KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement, Unlock};

type Error = Box<dyn std::error::Error>;

/// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, exact at each read).
struct CpuClock;

impl CpuClock {
    fn new() -> Result<Self, Error> {
        Ok(CpuClock)
    }

    fn now(&self) -> Duration {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn accessory_identity() -> Result<Identity, Error> {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let label = Label::new("hap.ltsk")?;
    se.generate_key(&label, KeyAlgorithm::Ed25519)?;
    let key = SeLongTermKey::new(KeyHandle::open(se, &label)?)?;
    Ok(Identity::new("AA:BB:CC:DD:EE:FF".parse()?, Arc::new(key)))
}

fn controller_identity() -> Result<Identity, Error> {
    let key = SoftLongTermKey::generate(&mut SystemRandom)?;
    Ok(Identity::new("6A0C4B0F-5C31-4F1D-9A38-0E0C1F5E1C11".parse()?, Arc::new(key)))
}

/// One pair-setup; returns the CPU time spent in the accessory's steps.
fn pair_setup(
    cpu: &CpuClock,
    accessory: &Identity,
    controller: &Identity,
    code: &SetupCode,
    verifier: &ironclad_pair::srp::Verifier,
    store: &dyn PairingStore,
    attempts: &dyn ironclad_pair::AttemptCounter,
) -> Result<Duration, Error> {
    let mut rng = SystemRandom;
    loop {
        let mut spent = Duration::ZERO;
        let c1 = setup::controller::start(controller.clone(), code.clone());
        let t = cpu.now();
        let a2 = setup::accessory::ExpectM1::new(accessory.clone(), verifier.clone()).handle(
            &c1.message,
            store,
            attempts,
            &mut rng,
        )?;
        spent += cpu.now() - t;
        let c3 = match c1.next.handle(&a2.message, &mut rng) {
            Err(e) if e.is_restart() => continue, // B with a leading zero: the controller restarts
            other => other?,
        };
        let t = cpu.now();
        let a4 = a2.next.handle(&c3.message, attempts)?;
        spent += cpu.now() - t;
        let c5 = c3.next.handle(&a4.message)?;
        let t = cpu.now();
        let a6 = a4.next.handle(&c5.message, store, attempts)?;
        spent += cpu.now() - t;
        c5.next.handle(&a6.message)?;
        return Ok(spent);
    }
}

/// The AEAD alone on the same frames (in place, nothing else): the ceiling of the framing.
fn raw_aead(chunk: &[u8], rounds: usize) {
    use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[9u8; 32]).expect("key"));
    let mut buf = chunk.to_vec();
    let mut counter = 0u64;
    for _ in 0..rounds {
        for frame in buf.chunks_mut(1024) {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_le_bytes());
            counter += 1;
            let aad = (frame.len() as u16).to_le_bytes();
            let tag = key
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), frame)
                .expect("seal");
            let _ = std::hint::black_box(tag);
        }
    }
}

fn main() -> Result<(), Error> {
    let (verifies, setups, mib) = (arg("--verify", 20_000), arg("--setup", 100), arg("--session-mib", 512));
    let cpu = CpuClock::new()?;
    let mut rng = SystemRandom;
    let accessory = accessory_identity()?;
    let controller = controller_identity()?;
    let code = SetupCode::parse("031-45-154")?;

    // Pair-setup: the verifier once, then the accessory's three steps per setup.
    let t = cpu.now();
    let verifier = code.verifier(&mut rng)?;
    let verifier_ms = (cpu.now() - t).as_secs_f64() * 1e3;
    let mut samples = Vec::with_capacity(setups);
    let wall = Instant::now();
    for _ in 0..setups {
        let store = MemoryStore::new();
        let spent = pair_setup(&cpu, &accessory, &controller, &code, &verifier, &store, &store)?;
        samples.push(spent.as_secs_f64() * 1e3);
    }
    let wall = wall.elapsed().as_secs_f64();
    let setup_ms = samples.iter().sum::<f64>() / setups as f64;
    samples.sort_by(f64::total_cmp);
    println!(
        "pair-setup, accessory side: CPU mean {setup_ms:.2} ms, p50 {:.2} ms, p99 {:.2} ms over {setups} ({:.1} s wall for both sides)",
        samples[setups / 2],
        samples[(setups * 99 / 100).min(setups - 1)],
        wall
    );
    println!("bench: accessory pair-setup cost (M1+M3+M5, verifier cached) = {setup_ms:.2} ms");
    println!("bench: SRP verifier for the setup code (once per start) = {verifier_ms:.2} ms");

    // The same with the pairing and the attempt counter in a secure element on disk: the
    // durable writes (fsync) are I/O, so this one is wall time.
    if let Some(dir) = std::env::args().skip_while(|a| a != "--store-dir").nth(1) {
        let unlock = Unlock::passphrase("bench passphrase");
        let se: Arc<dyn SecureElement> =
            Arc::new(DirSe::open_or_create(&dir, &unlock, KdfParams::weak_for_tests())?);
        let store = SealedPairingStore::new(se, "hap", 16)?;
        let n = setups.min(30);
        let t = Instant::now();
        for _ in 0..n {
            pair_setup(&cpu, &accessory, &controller, &code, &verifier, &store, &store)?;
            for p in store.list()? {
                store.remove(&p.id)?;
            }
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        println!("bench: pair-setup wall time, both sides, pairing sealed durably in a DirSe = {ms:.2} ms");
    }

    // Pair-verify: a paired controller; only the accessory's steps are timed.
    let store = MemoryStore::new();
    let paired = {
        let s = MemoryStore::new();
        pair_setup(&cpu, &accessory, &controller, &code, &verifier, &s, &s)?;
        s.list()?.remove(0)
    };
    store.put(&paired)?;
    let known = MemoryStore::new();
    known.put(&ironclad_pair::Pairing {
        id: accessory.id.clone(),
        public_key: accessory.key.public_key(),
        permissions: ironclad_pair::Permissions::ADMIN,
    })?;
    let (mut spent, mut spent_wall) = (Duration::ZERO, Duration::ZERO);
    for i in 0..verifies + verifies / 10 {
        let v1 = verify::controller::start(controller.clone(), &mut rng)?;
        let (t, w) = (cpu.now(), Instant::now());
        let v2 = verify::accessory::ExpectM1::new(accessory.clone()).handle(&v1.message, &mut rng)?;
        let (m2, m2_wall) = (cpu.now() - t, w.elapsed());
        let v3 = v1.next.handle(&v2.message, &known)?;
        let (t, w) = (cpu.now(), Instant::now());
        let v4 = v2.next.handle(&v3.message, &store)?;
        std::hint::black_box(v4.next.session_keys());
        let (m4, m4_wall) = (cpu.now() - t, w.elapsed());
        if i >= verifies / 10 {
            // The first tenth warms up.
            spent += m2 + m4;
            spent_wall += m2_wall + m4_wall;
        }
    }
    let per_sec = verifies as f64 / spent.as_secs_f64();
    println!(
        "pair-verify, accessory side: {:.1} µs CPU per handshake over {verifies} ({:.0}/s by wall clock)",
        1e6 / per_sec,
        verifies as f64 / spent_wall.as_secs_f64()
    );
    println!("bench: accessory pair-verify handshakes per core = {per_sec:.0} /s");

    // Session framing, one direction at a time; next to the bare AEAD on the same frames.
    let shared = [7u8; 32];
    let keys = |role| SessionKeys::derive(&shared, role);
    let mut phone = Session::new(&keys(Role::Controller));
    let mut device = Session::new(&keys(Role::Accessory));
    let chunk = vec![0x5au8; 64 * 1024];
    let rounds = mib * 16;
    let t = cpu.now();
    for _ in 0..rounds {
        std::hint::black_box(phone.encrypt(&chunk)?);
    }
    let encrypt_secs = (cpu.now() - t).as_secs_f64();
    // Decryption needs the frames in counter order: encrypt a batch (untimed), decrypt it.
    let batch = 256; // 16 MiB
    let mut decrypt_secs = 0.0;
    let mut phone = Session::new(&keys(Role::Controller));
    for _ in 0..rounds.div_ceil(batch) {
        let sealed: Vec<Vec<u8>> = (0..batch).map(|_| phone.encrypt(&chunk)).collect::<Result<_, _>>()?;
        let t = cpu.now();
        for frames in &sealed {
            let plain = device.decrypt(frames)?;
            assert_eq!(plain.len(), chunk.len());
        }
        decrypt_secs += (cpu.now() - t).as_secs_f64();
    }
    let decrypted = (rounds.div_ceil(batch) * batch * chunk.len()) as f64;
    let bytes = (rounds * chunk.len()) as f64;
    let t = cpu.now();
    raw_aead(&chunk, rounds);
    let raw_secs = (cpu.now() - t).as_secs_f64();
    println!("bench: session encrypt, 1024-byte frames = {:.2} GB/s", bytes / encrypt_secs / 1e9);
    println!("bench: session decrypt, 1024-byte frames = {:.2} GB/s", decrypted / decrypt_secs / 1e9);
    println!(
        "bench: bare ChaCha20-Poly1305 seal of 1024-byte frames (aws-lc-rs) = {:.2} GB/s",
        bytes / raw_secs / 1e9
    );
    Ok(())
}
