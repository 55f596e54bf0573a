//! SoftHSM's raw signing rate against signing through this backend, measured in one run.
//!
//! ```text
//! cargo run --release -p ironclad-se-pkcs11 --example sign_rate [-- COUNT]
//! ```
//!
//! It makes a throwaway SoftHSM token (softhsm2-util), re-runs itself with `SOFTHSM2_CONF`
//! pointing at it, and prints, for one thread and for two:
//! - raw: `C_Sign(CKM_ECDSA)` of a fixed digest on one cryptoki session per thread;
//! - backend: `KeyStore::sign` of a message (SHA-256 on the host, session pool, DER encoding);
//! - certs: device certificates signed with `ironclad_pki::sign_device` by a CA key in the token.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use ironclad_pki::{CaIssuer, DeviceProfile, Limits, RootCaParams, Validity};
use ironclad_se::{KeyAlgorithm, KeyHandle, KeyStore, Label, MemorySe, SecureElement, SignInput};
use ironclad_se_pkcs11::{Pin, Pkcs11Config, Pkcs11Se};
use ironclad_testkit::softhsm::{self, SoftHsm};

const CHILD: &str = "IRONCLAD_SIGN_RATE_CHILD";

fn main() {
    let count: usize = std::env::args().nth(1).map_or(3000, |n| n.parse().unwrap());
    if std::env::var_os(CHILD).is_none() {
        let Some(hsm) = SoftHsm::new("sign-rate") else { return };
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.arg(count.to_string()).env(CHILD, hsm.token_label()).env("IRONCLAD_SOFTHSM_MODULE", hsm.module());
        let status = hsm.apply(&mut cmd).status().unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let module = softhsm::module_path().unwrap();
    let token = std::env::var(CHILD).unwrap();
    let config =
        Pkcs11Config { module: module.clone(), token_label: token.clone(), pin: Pin::new(softhsm::TEST_PIN) };
    let se = Arc::new(Pkcs11Se::open(&config).unwrap());
    let id = Label::new("ca").unwrap();
    se.generate_key(&id, KeyAlgorithm::EcdsaP256).unwrap();

    println!("SoftHSM P-256 signing, {count} signatures per thread");
    for threads in [1, 2] {
        let raw = rate(threads, count, |_| raw_signer(&module, &token));
        let backend = rate(threads, count, |_| {
            let se = se.clone();
            let id = id.clone();
            Box::new(move |i: usize| {
                se.sign(&id, SignInput::Message(&i.to_be_bytes())).unwrap();
            })
        });
        let certs = cert_rate(&se, &id, threads, count);
        let pct = |x: f64| 100.0 * x / raw;
        println!("bench: softhsm raw C_Sign CKM_ECDSA, {threads} thread(s) = {raw:.0} sig/s");
        println!(
            "bench: pkcs11 backend sign, {threads} thread(s) = {backend:.0} sig/s ({:.0}% of raw)",
            pct(backend)
        );
        println!(
            "bench: device certs signed in the token, {threads} thread(s) = {certs:.0} certs/s ({:.0}% of raw)",
            pct(certs)
        );
    }
}

type Job = Box<dyn FnMut(usize) + Send>;

/// Runs `count` calls per thread of a job made per thread; returns calls per second.
fn rate(threads: usize, count: usize, make: impl Fn(usize) -> Job) -> f64 {
    let mut jobs: Vec<Job> = (0..threads).map(&make).collect();
    for job in &mut jobs {
        job(usize::MAX); // warm up: sessions, caches
    }
    let started = Instant::now();
    std::thread::scope(|scope| {
        for mut job in jobs {
            scope.spawn(move || (0..count).for_each(&mut job));
        }
    });
    (threads * count) as f64 / started.elapsed().as_secs_f64()
}

/// Plain cryptoki: one session, the key handle found once, `C_Sign(CKM_ECDSA)` of a digest.
fn raw_signer(module: &std::path::Path, token: &str) -> Job {
    let ctx = cryptoki::context::Pkcs11::new(module).unwrap();
    let _ = ctx.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == token)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    let _ = session.login(UserType::User, Some(&AuthPin::new(softhsm::TEST_PIN.into())));
    let key = session
        .find_objects(&[Attribute::Label(b"ca".to_vec()), Attribute::Sign(true)])
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let digest = [7u8; 32];
    Box::new(move |_| {
        session.sign(&Mechanism::Ecdsa, key, &digest).unwrap();
    })
}

/// Device certificates signed by the token-held CA key (one verified CSR, re-signed).
fn cert_rate(se: &Arc<Pkcs11Se>, id: &Label, threads: usize, count: usize) -> f64 {
    let key = KeyHandle::open(se.clone() as Arc<dyn SecureElement>, id).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let ca = ironclad_pki::create_root(&key, &RootCaParams::new("Rate CA", "Acme", "DE"), now).unwrap();
    let device: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let auth = Label::new("auth").unwrap();
    device.generate_key(&auth, KeyAlgorithm::EcdsaP256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "cam-000001");
    let csr = params.serialize_request(&KeyHandle::open(device, &auth).unwrap()).unwrap();
    let csr = ironclad_pki::parse_and_verify(csr.der(), &Limits::default()).unwrap();
    let profile = DeviceProfile::new("Acme", "DE", "acme-cam", Validity::Years(30)).unwrap();
    let issuer = CaIssuer::new(&ca, &key).unwrap();
    ironclad_pki::sign_device(&csr, &issuer, &profile, now).unwrap();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..count {
                    ironclad_pki::sign_device(&csr, &issuer, &profile, now).unwrap();
                }
            });
        }
    });
    (threads * count) as f64 / started.elapsed().as_secs_f64()
}
