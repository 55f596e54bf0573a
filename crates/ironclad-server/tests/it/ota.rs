//! OTA over real mutual TLS on loopback: an operator registers the mastering key and uploads
//! releases (verified by the server), rolls them out in stages; simulated devices (A/B flash,
//! keys and anti-rollback counter in their secure elements) check, verify the manifest signed
//! by the vault's key, download their own re-wrapped copy (resuming with byte ranges), install,
//! trial-boot, confirm and report.

use std::sync::Arc;

use ironclad_agent::{
    DeviceConnection, Download, OperatorClient, OtaDevice, OtaRefusal, OtaTrust, UpdateOutcome,
};
use ironclad_boot::SimFlash;
use ironclad_image::{Cipher, ContentKey, Encryption, SignOptions, TrustAnchors, sign};
use ironclad_proto::ota::{NoUpdate, OtaState, RolloutState};
use ironclad_proto::{ErrorCode, Manifest};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, PublicKey, SecureElement};
use ironclad_server::ServerConfig;

use crate::common::{TestDevice, TestPki, TestServer};

pub const CLASS: &str = "6f1c5a1e-7a2b-4c3d-8e4f-0123456789ab";
pub const FW_KEY: &str = "fw-decrypt";
/// Slots of the simulated devices.
pub const SLOT: u32 = 512 * 1024;

pub fn class_bytes(text: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    hex::decode_to_slice(text.replace('-', ""), &mut out).unwrap();
    out
}

/// A release team: its mastering key in a secure element.
pub struct Mastering {
    pub key: KeyHandle,
    pub trust: TrustAnchors,
}

impl Mastering {
    pub fn new(alg: KeyAlgorithm) -> Self {
        let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let label = Label::new("fw-mastering").unwrap();
        se.generate_key(&label, alg).unwrap();
        let key = KeyHandle::open(se, &label).unwrap();
        let trust = TrustAnchors::with_key(key.public_key().clone()).unwrap();
        Mastering { key, trust }
    }

    pub fn public_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.key.public_key().spki_der().unwrap()))
    }

    /// An image of `len` payload bytes; encrypted to `to` when given.
    pub fn master(
        &self,
        version: &str,
        counter: u32,
        len: usize,
        to: Option<&PublicKey>,
        class: Option<&str>,
    ) -> Vec<u8> {
        let mut o = SignOptions::new(version.parse().unwrap());
        o.header_size = 0x200;
        o.security_counter = Some(counter);
        o.product_class = class.map(class_bytes);
        o.encryption = to.map(|r| Encryption {
            recipient: r.clone(),
            content_key: ContentKey::generate(Cipher::Aes128Ctr).unwrap(),
        });
        let payload: Vec<u8> = format!("camera firmware {version} ").bytes().cycle().take(len).collect();
        let mut out = Vec::new();
        sign(&self.key, &o, &payload[..], payload.len() as u64, &mut out).unwrap();
        out
    }
}

/// A server with a key vault and a releases directory, one enrolled line, an admin token, a
/// registered mastering key and the factory image.
pub struct Ota {
    pub ts: TestServer,
    pub pki: TestPki,
    pub group: String,
    pub admin: String,
    pub mastering: Mastering,
    /// The server's firmware-decryption key (releases are encrypted to it).
    pub server_key: PublicKey,
    pub factory: Vec<u8>,
    pub releases: tempfile::TempDir,
    pub vault_se: Arc<dyn SecureElement>,
}

impl Ota {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(config: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_store(None, config).await
    }

    /// On `store` (e.g. PostgreSQL) when given, else SQLite in a temporary directory.
    pub async fn start_store(
        store: Option<Arc<dyn ironclad_server::store::Store>>,
        config: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let releases = tempfile::tempdir().unwrap();
        let vault_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let mut cfg = ServerConfig::default();
        config(&mut cfg);
        let (se, dir) = (vault_se.clone(), releases.path().to_path_buf());
        let ts = match store {
            Some(store) => {
                TestServer::start_on(store, None, move |b| b.secure_element(se).releases_dir(dir)).await
            }
            None => TestServer::start_config(cfg, move |b| b.secure_element(se).releases_dir(dir)).await,
        };
        let pki = TestPki::new("OTA", 2);
        let group = ts.enroll_line(&pki, 0).await;
        let admin = ts.admin_token().await;
        let mastering = Mastering::new(KeyAlgorithm::EcdsaP256);
        let mut op = OperatorClient::connect(&ts.endpoint(), &admin).await.unwrap();
        op.add_ota_key("release team 2026", &mastering.public_pem()).await.unwrap();
        let enc = op.ota_encryption_key().await.unwrap();
        let der = pem::parse(enc["public_key_pem"].as_str().unwrap()).unwrap().contents().to_vec();
        let server_key = ironclad_image::recipient_from_spki(&der).unwrap();
        assert_eq!(server_key.algorithm(), KeyAlgorithm::X25519);
        let factory = mastering.master("1.0.0", 1, 20_000, None, Some(CLASS));
        Ota { ts, pki, group, admin, mastering, server_key, factory, releases, vault_se }
    }

    /// Another server process on the same store, vault secure element and releases directory.
    pub async fn second_server(&self) -> TestServer {
        let (se, dir) = (self.vault_se.clone(), self.releases.path().to_path_buf());
        TestServer::start_on(self.ts.store.clone(), None, move |b| b.secure_element(se).releases_dir(dir))
            .await
    }

    pub async fn op(&self) -> OperatorClient {
        OperatorClient::connect(&self.ts.endpoint(), &self.admin).await.unwrap()
    }

    /// An encrypted release for the server, uploaded; returns its id.
    pub async fn upload(&self, version: &str, counter: u32, len: usize) -> String {
        let image = self.mastering.master(version, counter, len, Some(&self.server_key), Some(CLASS));
        let r = self.op().await.upload_release(image, &format!("release {version}")).await.unwrap();
        assert_eq!(
            (r.version.as_str(), r.security_counter, r.wrap.as_str()),
            (format!("{version}+0").as_str(), u64::from(counter), "ecies-x25519")
        );
        r.id
    }

    /// A device of line `line` with an X25519 `fw-decrypt` key, provisioned with 1.0.0.
    pub async fn device(&self, line: usize, id: &str) -> Dev {
        let test = self.pki.device(line, id);
        let se = test.identity.key().secure_element().clone();
        let fw = Label::new(FW_KEY).unwrap();
        se.generate_key(&fw, KeyAlgorithm::X25519).unwrap();
        let mut conn = self.ts.connect(&test).await;
        conn.authenticate().await.unwrap();
        // First contact: pin the server's manifest keys over the pinned-CA TLS session.
        let manifest_keys = conn.server_keys("manifest-signing").await.unwrap();
        assert!(!manifest_keys.is_empty());
        let trust = OtaTrust { manifest_keys, product_class: CLASS.to_owned() };
        let mut ota =
            OtaDevice::simulated(se.clone(), &fw, self.mastering.trust.clone(), SLOT, trust).unwrap();
        ota.provision(&self.factory).unwrap();
        Dev { test, se, conn, ota, dl: Download::default() }
    }
}

pub struct Dev {
    pub test: TestDevice,
    pub se: Arc<dyn SecureElement>,
    pub conn: DeviceConnection,
    pub ota: OtaDevice<SimFlash>,
    pub dl: Download,
}

impl Dev {
    pub fn id(&self) -> String {
        self.test.identity.device_id().to_owned()
    }

    pub async fn update(&mut self) -> ironclad_agent::Result<UpdateOutcome> {
        self.ota.update_once(&mut self.conn, &mut self.dl, Default::default()).await
    }

    pub fn counter(&self) -> u64 {
        self.ota.running().unwrap().1
    }
}

#[track_caller]
pub fn refusal<T: std::fmt::Debug>(r: ironclad_agent::Result<T>) -> OtaRefusal {
    match r {
        Err(ironclad_agent::Error::OtaRefused { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[track_caller]
pub fn server_code<T: std::fmt::Debug>(
    r: ironclad_agent::Result<T>,
) -> (u16, Option<ErrorCode>, Option<String>) {
    match r {
        Err(ironclad_agent::Error::Server { status, code, message }) => (status, code, message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The whole cycle for two devices: each gets its own copy (same signed region, different
/// key wrap), verifies, installs, trial-boots, confirms; the server tracks every state; a
/// second check finds nothing newer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ota_end_to_end_over_mutual_tls() {
    let f = Ota::start().await;
    let release = f.upload("1.1.0", 2, 200_000).await;
    let rollout = f.op().await.start_rollout(&release, &f.group, 100).await.unwrap();
    assert_eq!((rollout.state, rollout.percentage), (RolloutState::Active, 100));

    let mut a = f.device(0, "cam-a").await;
    let mut b = f.device(0, "cam-b").await;
    let answer_a = a.ota.check(&mut a.conn).await.unwrap();
    let answer_b = b.ota.check(&mut b.conn).await.unwrap();
    let (oa, ob) = (answer_a.offer.unwrap(), answer_b.offer.unwrap());
    assert_ne!(oa.etag, ob.etag, "each device gets its own copy");
    let va = a.ota.verify_offer(&oa).unwrap();
    let vb = b.ota.verify_offer(&ob).unwrap();
    assert_eq!(va.manifest.manifest().version.to_string(), "1.1.0");
    assert_eq!(va.manifest.manifest().product_class, CLASS);
    let expires = va.manifest.manifest().expires - va.manifest.manifest().issued_at;
    assert_eq!(expires, 3600, "manifests live an hour by default");
    a.ota.download(&mut a.conn, &va, &mut a.dl, None).await.unwrap();
    b.ota.download(&mut b.conn, &vb, &mut b.dl, None).await.unwrap();
    let uploaded = std::fs::read(f.releases.path().join(format!("{release}.img"))).unwrap();
    let signed =
        ironclad_image::Image::parse(&uploaded, &Default::default()).unwrap().header().signed_len() as usize;
    assert_eq!(a.dl.bytes[..signed], uploaded[..signed], "the signed region is served as uploaded");
    assert_eq!(b.dl.bytes[..signed], uploaded[..signed]);
    assert_ne!(a.dl.bytes[signed..], uploaded[signed..], "only the key wrap changes");
    assert_ne!(a.dl.bytes[signed..], b.dl.bytes[signed..]);
    // B's copy does not open with A's key.
    let cross = a.ota.install(&va, &b.dl);
    assert_eq!(refusal(cross), OtaRefusal::DigestMismatch);
    a.dl = Download::default();

    for dev in [&mut a, &mut b] {
        let outcome = dev.update().await.unwrap();
        let UpdateOutcome::Updated { version, counter, downloads, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(version, "1.1.0+0");
        assert_eq!(counter.map(|c| (c.from, c.to)), Some((1, 2)));
        assert_eq!(downloads, 1);
        assert_eq!(dev.counter(), 2, "the anti-rollback counter in the device's SE moved");
        let again = dev.update().await.unwrap();
        assert_eq!(again, UpdateOutcome::NoUpdate(NoUpdate::UpToDate));
    }
    let mut op = f.op().await;
    let status = op.rollout_status(&rollout.id).await.unwrap();
    assert_eq!(status.counts.get("confirmed"), Some(&2), "{status:?}");
    let devices = op.release_devices(&release).await.unwrap();
    assert!(devices.iter().all(|d| d.state == OtaState::Confirmed), "{devices:?}");
    let audit = f.ts.audit().await;
    assert!(audit.iter().any(|e| e.record.event == "ota.release.upload"));
    assert!(audit.iter().any(|e| e.record.event == "ota.report" && e.record.detail.contains("confirmed")));
}

/// Stages: exactly the devices whose bucket is below the percentage get offers; raising the
/// stage only adds devices; pause stops new offers but lets offered updates go on; resume;
/// abort stops offers and downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_rollout_pause_resume_abort() {
    let f = Ota::start().await;
    let release = f.upload("1.1.0", 2, 30_000).await;
    let mut op = f.op().await;
    let rollout = op.start_rollout(&release, &f.group, 10).await.unwrap();
    let mut devs = Vec::new();
    for i in 0..30 {
        devs.push(f.device(0, &format!("stage-{i:02}")).await);
    }
    let bucket = |d: &Dev| ironclad_server::rollout_bucket(&d.id(), &release);
    let mut offered = Vec::new();
    for d in devs.iter_mut() {
        let answer = d.ota.check(&mut d.conn).await.unwrap();
        assert_eq!(answer.offer.is_some(), bucket(d) < 10, "{} bucket {}", d.id(), bucket(d));
        if answer.offer.is_some() {
            offered.push(d.id());
        }
    }
    op.stage_rollout(&rollout.id, 60).await.unwrap();
    let mut at60 = Vec::new();
    for d in devs.iter_mut() {
        let answer = d.ota.check(&mut d.conn).await.unwrap();
        assert_eq!(answer.offer.is_some(), bucket(d) < 60);
        if answer.offer.is_some() {
            at60.push(d.id());
        }
    }
    assert!(offered.iter().all(|id| at60.contains(id)), "raising a stage only adds devices");
    assert!(at60.len() > offered.len() && at60.len() < devs.len(), "{} of {}", at60.len(), devs.len());

    // Pause: a device already offered goes on; one never offered gets nothing.
    let paused = op.rollout_action(&rollout.id, "pause").await.unwrap();
    assert_eq!(paused.state, RolloutState::Paused);
    let inside: Vec<usize> = (0..devs.len()).filter(|&i| bucket(&devs[i]) < 60).collect();
    let outside: Vec<usize> = (0..devs.len()).filter(|&i| bucket(&devs[i]) >= 60).collect();
    assert!(outside.len() >= 2, "30 devices leave at least two above 60 % (fixed ids)");
    let d = &mut devs[inside[0]];
    assert!(
        matches!(d.update().await.unwrap(), UpdateOutcome::Updated { .. }),
        "offered updates go on while paused"
    );
    op.stage_rollout(&rollout.id, 100).await.unwrap();
    let o = &mut devs[outside[0]];
    let answer = o.ota.check(&mut o.conn).await.unwrap();
    assert_eq!(answer.none, Some(NoUpdate::NoRollout), "no new offers while paused, whatever the stage");
    // Resume at 100 %: everyone.
    op.rollout_action(&rollout.id, "resume").await.unwrap();
    let answer = o.ota.check(&mut o.conn).await.unwrap();
    let offer = answer.offer.expect("offered after resume");
    let verified = o.ota.verify_offer(&offer).unwrap();

    // Abort: no offers, and downloads of offered copies are refused.
    let aborted = op.rollout_action(&rollout.id, "abort").await.unwrap();
    assert_eq!(aborted.state, RolloutState::Aborted);
    let r = o.ota.download(&mut o.conn, &verified, &mut o.dl, None).await;
    assert_eq!(server_code(r).1, Some(ErrorCode::Forbidden));
    let o_id = o.id();
    let o2 = &mut devs[outside[1]];
    assert_eq!(o2.ota.check(&mut o2.conn).await.unwrap().none, Some(NoUpdate::NoRollout));
    let (code, _, message) = server_code(op.rollout_action(&rollout.id, "resume").await);
    assert_eq!(code, 409, "{message:?}");
    assert!(f.ts.reasons(&o_id).await.contains(&"rollout_stopped".to_owned()));
}

/// The server refuses a rollout below the group's current release; a device on a newer
/// counter is not offered an older release; the device itself refuses a downgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgrades_refused_by_server_and_device() {
    let f = Ota::start().await;
    let r11 = f.upload("1.1.0", 2, 30_000).await;
    let r12 = f.upload("1.2.0", 3, 30_000).await;
    let mut op = f.op().await;
    op.start_rollout(&r12, &f.group, 100).await.unwrap();
    let (status, code, message) = server_code(op.start_rollout(&r11, &f.group, 100).await);
    assert_eq!((status, code), (409, Some(ErrorCode::Conflict)));
    assert!(message.unwrap().contains("downgrade refused"));
    let audit = f.ts.audit().await;
    assert!(audit.iter().any(|e| e.record.event == "ota.rollout.start" && e.record.reason.as_deref() == Some("downgrade")));

    // A device updated to 1.2.0; then the group's rollout is aborted and 1.1.0 rolled out to
    // the other line's group: our device (line 0) stays; an operator mistake cannot downgrade.
    let mut d = f.device(0, "dg-1").await;
    assert!(matches!(d.update().await.unwrap(), UpdateOutcome::Updated { .. }));
    assert_eq!(d.counter(), 3);

    // Server side: a device whose counter is above the release is not offered it.
    let line1 = f.ts.enroll_line(&f.pki, 1).await;
    op.start_rollout(&r11, &line1, 100).await.unwrap();
    let mut e = f.device(1, "dg-2").await;
    // This device runs 1.2.0 already (installed by hand, e.g. at the factory): counter 3.
    let img12 = f.mastering.master("1.2.0", 3, 1000, None, Some(CLASS));
    e.ota.engine().install(&mut std::io::Cursor::new(&img12)).unwrap();
    e.ota.engine().reset().unwrap();
    e.ota.confirm().unwrap();
    assert_eq!(e.counter(), 3);
    assert_eq!(e.update().await.unwrap(), UpdateOutcome::NoUpdate(NoUpdate::Downgrade));
    assert!(f.ts.reasons(&e.id()).await.contains(&"downgrade".to_owned()));

    // Device side: a manifest (validly signed by the server's key) for an older release is
    // refused against the device's counter, and reported.
    let mut g = f.device(1, "dg-3").await;
    let offer = g.ota.check(&mut g.conn).await.unwrap().offer.unwrap();
    let img12 = f.mastering.master("1.2.0", 3, 1000, None, Some(CLASS));
    g.ota.engine().install(&mut std::io::Cursor::new(&img12)).unwrap();
    g.ota.engine().reset().unwrap();
    g.ota.confirm().unwrap();
    assert_eq!(refusal(g.ota.verify_offer(&offer)), OtaRefusal::Downgrade);
    // And the boot engine itself refuses the older image even if asked directly.
    let old = f.mastering.master("1.1.0", 2, 1000, None, Some(CLASS));
    assert!(matches!(
        g.ota.engine().install(&mut std::io::Cursor::new(&old)),
        Err(ironclad_boot::Error::Downgrade { image: 2, device: 3 })
    ));
}

/// Downloads: no session, another device's path, a release never offered, an operator token:
/// all refused; an unenrolled device never gets a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_refused_to_everyone_else() {
    let f = Ota::start().await;
    let release = f.upload("1.1.0", 2, 30_000).await;
    f.op().await.start_rollout(&release, &f.group, 100).await.unwrap();
    let mut a = f.device(0, "dl-a").await;
    let mut b = f.device(0, "dl-b").await;
    let offer = a.ota.check(&mut a.conn).await.unwrap().offer.unwrap();
    let va = a.ota.verify_offer(&offer).unwrap();

    // B (authenticated) asks for A's copy by A's path: forbidden (not its resources).
    let r = b.ota.download(&mut b.conn, &va, &mut Download::default(), None).await;
    assert_eq!(server_code(r).1, Some(ErrorCode::Forbidden));
    assert!(f.ts.reasons("dl-b").await.contains(&"other_device".to_owned()));
    // B asks for its own copy of a release never offered to it: forbidden.
    let mut own = va.clone();
    own.download_path = ironclad_proto::ota::paths::image("dl-b", &release);
    let r = b.ota.download(&mut b.conn, &own, &mut Download::default(), None).await;
    assert_eq!(server_code(r).1, Some(ErrorCode::Forbidden));
    assert!(f.ts.reasons("dl-b").await.contains(&"not_offered".to_owned()));

    // No session on the connection: AuthFailed.
    let mut bare = f.ts.connect(&a.test).await;
    let r = a.ota.download(&mut bare, &va, &mut Download::default(), None).await;
    assert!(
        matches!(r, Err(ironclad_agent::Error::Protocol(_))),
        "the agent will not send without a session: {r:?}"
    );
    let mut stolen = f.ts.connect(&b.test).await;
    stolen.set_session(a.conn.session().unwrap().clone());
    let r = a.ota.download(&mut stolen, &va, &mut Download::default(), None).await;
    assert_eq!(server_code(r).1, Some(ErrorCode::AuthFailed), "A's token on B's certificate");

    // An operator token over the operator API's TLS (no client certificate).
    let mut op = f.op().await;
    let (status, _) = op.call_raw(hyper::Method::GET, &va.download_path).await.unwrap();
    assert_eq!(status, 401);

    // A device of an unenrolled CA never gets a session.
    let rogue_pki = TestPki::new("Rogue", 1);
    let rogue = rogue_pki.device(0, "dl-a");
    let conn = DeviceConnection::connect(&f.ts.endpoint(), rogue.identity.clone()).await;
    if let Ok(mut conn) = conn {
        assert!(conn.authenticate().await.is_err());
    }
    // A's own download works.
    a.ota.download(&mut a.conn, &va, &mut a.dl, None).await.unwrap();
    a.ota.install(&va, &a.dl).unwrap();
}

/// Range requests: a download cut short resumes with `Range` + `If-Range` and ends
/// byte-identical; the copy is the same after a server restart (the tail is stored); a stale
/// entity tag gets the whole copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_resume_is_byte_identical_across_restarts() {
    range_resume(Ota::start().await).await;
}

/// The same, with the release streamed from its file on every request (no memory budget).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_resume_streamed_from_disk() {
    range_resume(Ota::start_with(|c| c.ota.memory_cache_bytes = 0).await).await;
}

async fn range_resume(f: Ota) {
    let release = f.upload("1.1.0", 2, 300_000).await;
    f.op().await.start_rollout(&release, &f.group, 100).await.unwrap();
    let mut d = f.device(0, "rg-1").await;
    let offer = d.ota.check(&mut d.conn).await.unwrap().offer.unwrap();
    let v = d.ota.verify_offer(&offer).unwrap();
    d.ota.download(&mut d.conn, &v, &mut d.dl, None).await.unwrap();
    let full = d.dl.bytes.clone();
    assert_eq!(full.len() as u64, offer.size);

    for cut in [1usize, 4096, 150_001, full.len() - 10, full.len() - 1] {
        let mut part = Download {
            release_id: v.release_id.clone(),
            etag: v.etag.clone(),
            bytes: full[..cut].to_vec(),
            ..Default::default()
        };
        d.ota.download(&mut d.conn, &v, &mut part, None).await.unwrap();
        assert_eq!(part.resumed, 1, "cut at {cut}: resumed with a range");
        assert_eq!(part.transferred as usize, full.len() - cut, "only the rest travelled");
        assert!(part.bytes == full, "cut at {cut}: byte-identical");
    }

    let again = d.ota.check(&mut d.conn).await.unwrap().offer.unwrap();
    assert_eq!(again.etag, offer.etag, "a second check offers the same copy");

    // Another server process on the same database, secure element and releases directory
    // (a restart, or a second process): the same copy, and a resume continues it.
    let (se, dir) = (f.vault_se.clone(), f.releases.path().to_path_buf());
    let other =
        TestServer::start_on(f.ts.store.clone(), None, move |b| b.secure_element(se).releases_dir(dir)).await;
    let mut conn = other.connect(&d.test).await;
    conn.authenticate().await.unwrap();
    let there = d.ota.check(&mut conn).await.unwrap().offer.unwrap();
    assert_eq!(there.etag, offer.etag, "the tail is stored: the copy survives a restart");
    let mut part = Download {
        release_id: v.release_id.clone(),
        etag: v.etag.clone(),
        bytes: full[..77_777].to_vec(),
        ..Default::default()
    };
    d.ota.download(&mut conn, &v, &mut part, None).await.unwrap();
    assert_eq!(part.resumed, 1);
    assert!(part.bytes == full, "resumed on the other server: byte-identical");

    // A stale If-Range (another copy) gets the whole, current copy.
    let mut stale = v.clone();
    stale.etag = "\"0000\"".into();
    let mut part = Download {
        release_id: v.release_id.clone(),
        etag: stale.etag.clone(),
        bytes: full[..1000].to_vec(),
        ..Default::default()
    };
    let r = d.ota.download(&mut d.conn, &stale, &mut part, None).await;
    assert!(r.is_err(), "the server's copy is not the stale one: {r:?}");
    d.ota.install(&v, &d.dl).unwrap();
}

/// Two server processes on one PostgreSQL database sharing a releases directory: a device
/// checks on one, downloads half its copy from it, resumes from the other (byte-identical: the
/// tail is in the database), installs and reports; both see it confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ota_on_postgres_across_two_processes() {
    let Some(cluster) =
        tokio::task::spawn_blocking(ironclad_testkit::postgres::PgCluster::start).await.unwrap()
    else {
        return;
    };
    let url = cluster.fresh_database();
    let store: Arc<dyn ironclad_server::store::Store> =
        Arc::new(ironclad_server::store::PostgresStore::connect(&url, 2).await.unwrap());
    let f = Ota::start_store(Some(store), |_| {}).await;
    let release = f.upload("1.1.0", 2, 120_000).await;
    f.op().await.start_rollout(&release, &f.group, 100).await.unwrap();
    let other = f.second_server().await;
    let mut d = f.device(0, "pg-1").await;
    let mut on_b = other.connect(&d.test).await;
    on_b.authenticate().await.unwrap();
    let offer = d.ota.check(&mut on_b).await.unwrap().offer.unwrap();
    let v = d.ota.verify_offer(&offer).unwrap();
    d.ota.download(&mut on_b, &v, &mut d.dl, None).await.unwrap();
    let full = d.dl.bytes.clone();
    d.dl.bytes.truncate(50_000);
    d.ota.download(&mut d.conn, &v, &mut d.dl, None).await.unwrap();
    assert_eq!(d.dl.resumed, 1);
    assert!(d.dl.bytes == full, "resumed on the other process: byte-identical");
    assert!(matches!(d.update().await.unwrap(), UpdateOutcome::Updated { .. }));
    assert_eq!(d.counter(), 2);
    let mut op_b = OperatorClient::connect(&other.endpoint(), &f.admin).await.unwrap();
    assert_eq!(op_b.release_devices(&release).await.unwrap()[0].state, OtaState::Confirmed);
    drop(cluster);
}

/// Upload refusals: unknown mastering key, tampered payload, no product class, no security
/// counter, slot padding, encrypted to another key, too large, viewer role, duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_refused() {
    let f = Ota::start_with(|c| c.ota.max_release_bytes = 100_000).await;
    let mut op = f.op().await;
    let good = f.mastering.master("1.1.0", 2, 20_000, Some(&f.server_key), Some(CLASS));
    let check = |r: ironclad_agent::Result<ironclad_proto::ota::ReleaseInfo>, want: &str| {
        let (status, _, message) = server_code(r);
        let message = message.unwrap_or_default();
        assert!(message.contains(want), "{status} {message:?} should say {want:?}");
    };

    let stranger = Mastering::new(KeyAlgorithm::Ed25519);
    check(
        op.upload_release(stranger.master("1.1.0", 2, 1000, Some(&f.server_key), Some(CLASS)), "").await,
        "trusted key",
    );
    let mut tampered = good.clone();
    tampered[0x200 + 5000] ^= 1;
    check(op.upload_release(tampered, "").await, "hash");
    check(
        op.upload_release(f.mastering.master("1.1.0", 2, 1000, Some(&f.server_key), None), "").await,
        "product class",
    );
    let mut o = SignOptions::new("1.1.0".parse().unwrap());
    o.product_class = Some(class_bytes(CLASS));
    let mut no_counter = Vec::new();
    sign(&f.mastering.key, &o, &b"fw"[..], 2, &mut no_counter).unwrap();
    check(op.upload_release(no_counter, "").await, "security counter");
    let mut padded = good.clone();
    padded.extend_from_slice(&[0xff; 4096]);
    check(op.upload_release(padded, "").await, "--pad");
    let other = {
        let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let l = Label::new("x").unwrap();
        se.generate_key(&l, KeyAlgorithm::X25519).unwrap()
    };
    check(
        op.upload_release(f.mastering.master("1.1.0", 2, 1000, Some(&other), Some(CLASS)), "").await,
        "firmware-decryption key",
    );
    check(
        op.upload_release(f.mastering.master("1.1.0", 2, 150_000, Some(&f.server_key), Some(CLASS)), "")
            .await,
        "limit",
    );
    // Refused on its Content-Length without reading the body: the server closes the connection.
    let mut op = f.op().await;
    check(op.upload_release(b"not an image".to_vec(), "").await, "release refused");

    let viewer =
        f.ts.server.registry().create_api_token("viewer", ironclad_server::Role::Viewer).await.unwrap();
    let mut v = OperatorClient::connect(&f.ts.endpoint(), &viewer.secret).await.unwrap();
    let (status, code, _) = server_code(v.upload_release(good.clone(), "").await);
    assert_eq!((status, code), (403, Some(ErrorCode::Forbidden)));
    let (status, _, _) = server_code(v.add_ota_key("x", &stranger.public_pem()).await);
    assert_eq!(status, 403, "registering a mastering key is an admin's decision");

    op.upload_release(good.clone(), "first").await.unwrap();
    check(op.upload_release(good, "again").await, "uploaded already");
    // Nothing half-written is left behind.
    let names: Vec<String> = std::fs::read_dir(f.releases.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(f.ts.audit().await.iter().any(|e| e.record.reason.as_deref() == Some("release_refused")));
}

/// Device-side refusals against the real server: an expired manifest (the device's clock is
/// past its expiry: a replayed old manifest), a product class the device is not, a corrupted
/// download (fetched again once), and a release the server stored whose file was altered on
/// disk (never served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_refusals_and_recovery() {
    let f = Ota::start().await;
    let release = f.upload("1.1.0", 2, 40_000).await;
    f.op().await.start_rollout(&release, &f.group, 100).await.unwrap();

    // Freeze: the device's clock is two hours ahead of the manifest.
    let mut late = f.device(0, "rf-late").await;
    let offer = late.ota.check(&mut late.conn).await.unwrap().offer.unwrap();
    let now = offer_now() + 7200;
    late.ota.set_clock(move || now);
    assert_eq!(refusal(late.ota.verify_offer(&offer)), OtaRefusal::Expired);
    let r = late.update().await;
    assert_eq!(refusal(r), OtaRefusal::Expired);
    let state = f.op().await.release_devices(&release).await.unwrap();
    let mine = state.iter().find(|d| d.device_id == "rf-late").unwrap();
    assert_eq!(mine.state, OtaState::Failed);
    assert!(mine.detail.contains("expired"), "{mine:?}");

    // Another product class: the server does not offer; a forged trust would still refuse.
    let mut other = f.device(0, "rf-class").await;
    let trust = OtaTrust {
        product_class: "00000000-0000-4000-8000-000000000000".into(),
        ..other.ota.trust().clone()
    };
    let mut other_ota = OtaDevice::simulated(
        other.se.clone(),
        &Label::new(FW_KEY).unwrap(),
        f.mastering.trust.clone(),
        SLOT,
        trust,
    )
    .unwrap();
    other_ota.provision(&f.factory).unwrap();
    let answer = other_ota.check(&mut other.conn).await.unwrap();
    assert_eq!(answer.none, Some(NoUpdate::OtherProductClass));
    let right = other.ota.check(&mut other.conn).await.unwrap().offer.unwrap();
    assert_eq!(refusal(other_ota.verify_offer(&right)), OtaRefusal::WrongProductClass);

    // A corrupted download: refused by digest, fetched again, installed.
    let mut c = f.device(0, "rf-corrupt").await;
    let offer = c.ota.check(&mut c.conn).await.unwrap().offer.unwrap();
    let v = c.ota.verify_offer(&offer).unwrap();
    c.ota.download(&mut c.conn, &v, &mut c.dl, None).await.unwrap();
    c.dl.bytes[30_000] ^= 0x40;
    assert_eq!(refusal(c.ota.install(&v, &c.dl)), OtaRefusal::DigestMismatch);
    c.dl.bytes.clear();
    c.ota.download(&mut c.conn, &v, &mut c.dl, None).await.unwrap();
    c.ota.install(&v, &c.dl).unwrap();

    // The release file altered on disk after upload: a fresh server never serves it.
    let path = f.releases.path().join(format!("{release}.img"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0x300] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let (se, dir) = (f.vault_se.clone(), f.releases.path().to_path_buf());
    let fresh =
        TestServer::start_on(f.ts.store.clone(), None, move |b| b.secure_element(se).releases_dir(dir)).await;
    let mut d2 = f.device(0, "rf-fresh").await;
    let mut conn2 = fresh.connect(&d2.test).await;
    conn2.authenticate().await.unwrap();
    let r = d2.ota.check(&mut conn2).await;
    assert_eq!(server_code(r).1, Some(ErrorCode::Unavailable), "a changed release file is refused");
    d2.conn = conn2;
}

/// A release that boots but fails the application's health check on its trial: reverted, the
/// previous image runs, the counter did not move, the server sees `failed: trial-failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_trial_is_reverted_and_reported() {
    let f = Ota::start().await;
    let release = f.upload("1.1.0", 2, 20_000).await;
    f.op().await.start_rollout(&release, &f.group, 100).await.unwrap();
    let mut d = f.device(0, "trial-1").await;
    let mut sick = |boot: &ironclad_boot::BootReport| {
        assert_eq!(boot.booted.version.to_string(), "1.1.0+0");
        false
    };
    let options = ironclad_agent::UpdateOptions { progress: None, healthy: Some(&mut sick) };
    let r = d.ota.update_once(&mut d.conn, &mut d.dl, options).await;
    assert_eq!(refusal(r), OtaRefusal::TrialFailed);
    let (running, counter) = d.ota.running().unwrap();
    assert_eq!((running.to_string().as_str(), counter), ("1.0.0+0", 1), "back on the confirmed image");
    let state = f.op().await.release_devices(&release).await.unwrap();
    assert_eq!(state[0].state, OtaState::Failed);
    assert!(state[0].detail.starts_with("trial-failed"), "{:?}", state[0]);
}

fn offer_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The manifest a device gets carries exactly what it downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_binds_the_copy() {
    let f = Ota::start().await;
    let release = f.upload("1.1.0", 2, 10_000).await;
    f.op().await.start_rollout(&release, &f.group, 100).await.unwrap();
    let mut d = f.device(0, "mf-1").await;
    let offer = d.ota.check(&mut d.conn).await.unwrap().offer.unwrap();
    let v = d.ota.verify_offer(&offer).unwrap();
    let m: &Manifest = v.manifest.manifest();
    d.ota.download(&mut d.conn, &v, &mut d.dl, None).await.unwrap();
    let sha = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &d.dl.bytes);
    assert_eq!(sha.as_ref(), m.image_digest);
    assert_eq!(d.dl.bytes.len() as u64, m.image_size);
    assert_eq!(offer.etag, format!("\"{}\"", hex::encode(m.image_digest)));
    assert_eq!((m.image_id.as_str(), m.security_counter), (release.as_str(), 2));
    assert!(std::str::from_utf8(v.manifest.kid()).unwrap().starts_with("manifest-signing:v"));
}
