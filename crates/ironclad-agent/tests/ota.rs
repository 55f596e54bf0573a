//! The device's OTA checks without a server: manifests signed by a test manifest key, images
//! mastered by a test release key, installed on a simulated A/B flash whose counter and
//! decryption key live in the device's secure element. Every refusal a compromised or broken
//! server could provoke, and a power cut at every flash operation of the install.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ironclad_agent::{Download, OtaDevice, OtaRefusal, OtaTrust, VerifiedOffer};
use ironclad_boot::{BootMode, SimFlash, Tear};
use ironclad_image::{Cipher, ContentKey, Encryption, SignOptions, TrustAnchors, sign};
use ironclad_proto::hazmat::SoftwareSigner;
use ironclad_proto::ota::UpdateOffer;
use ironclad_proto::{Manifest, SigAlg, TrustedKeys};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, PublicKey, SecureElement};

const CLASS: &str = "6f1c5a1e-7a2b-4c3d-8e4f-0123456789ab";
const OTHER_CLASS: &str = "00000000-0000-4000-8000-000000000000";
const KID: &[u8] = b"manifest-signing:v1";

fn class_bytes(text: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    hex::decode_to_slice(text.replace('-', ""), &mut out).unwrap();
    out
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

struct Release {
    key: KeyHandle,
}

impl Release {
    fn new() -> Self {
        let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let l = Label::new("fw-mastering").unwrap();
        se.generate_key(&l, KeyAlgorithm::EcdsaP256).unwrap();
        Release { key: KeyHandle::open(se, &l).unwrap() }
    }

    fn trust(&self) -> TrustAnchors {
        TrustAnchors::with_key(self.key.public_key().clone()).unwrap()
    }

    fn image(&self, version: &str, counter: u32, class: &str, to: Option<&PublicKey>) -> Vec<u8> {
        let mut o = SignOptions::new(version.parse().unwrap());
        o.header_size = 0x200;
        o.security_counter = Some(counter);
        o.product_class = Some(class_bytes(class));
        o.encryption = to.map(|r| Encryption {
            recipient: r.clone(),
            content_key: ContentKey::generate(Cipher::Aes128Ctr).unwrap(),
        });
        let payload: Vec<u8> = format!("fw {version} ").bytes().cycle().take(12_000).collect();
        let mut out = Vec::new();
        sign(&self.key, &o, &payload[..], payload.len() as u64, &mut out).unwrap();
        out
    }
}

struct Device {
    ota: OtaDevice<SimFlash>,
    fw_public: PublicKey,
}

fn device(release: &Release, manifest_key: &SoftwareSigner, class: &str) -> Device {
    let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    let fw = Label::new("fw-decrypt").unwrap();
    let fw_public = se.generate_key(&fw, KeyAlgorithm::X25519).unwrap();
    let trust = OtaTrust {
        manifest_keys: TrustedKeys::single(KID.to_vec(), manifest_key.verifying_key()),
        product_class: class.to_owned(),
    };
    let mut ota = OtaDevice::simulated(se, &fw, release.trust(), 64 * 1024, trust).unwrap();
    ota.provision(&release.image("1.0.0", 1, CLASS, None)).unwrap();
    Device { ota, fw_public }
}

/// A manifest for `image` as the server would sign it.
fn offer_for(
    signer: &SoftwareSigner,
    image: &[u8],
    version: &str,
    counter: u64,
    class: &str,
    expires: u64,
) -> UpdateOffer {
    let sha = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, image);
    let manifest = Manifest {
        version: version.parse().unwrap(),
        security_counter: counter,
        image_size: image.len() as u64,
        image_digest: sha.as_ref().try_into().unwrap(),
        issued_at: now() - 10,
        expires,
        product_class: class.to_owned(),
        image_id: "r1".to_owned(),
    };
    UpdateOffer {
        release_id: "r1".into(),
        manifest: manifest.sign(signer, KID).unwrap(),
        download_path: "/unused".into(),
        size: image.len() as u64,
        etag: format!("\"{}\"", hex::encode(sha.as_ref())),
    }
}

fn dl(image: &[u8]) -> Download {
    Download { bytes: image.to_vec(), ..Default::default() }
}

#[track_caller]
fn refusal<T: std::fmt::Debug>(r: ironclad_agent::Result<T>) -> OtaRefusal {
    match r {
        Err(ironclad_agent::Error::OtaRefused { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn install_ok(d: &mut Device, offer: &VerifiedOffer, image: &[u8]) {
    let installed = d.ota.install(offer, &dl(image)).unwrap();
    assert!(installed.decrypted);
    let boot = d.ota.trial_boot(&installed).unwrap();
    assert!(matches!(boot.booted.mode, BootMode::Trial { attempt: 1, .. }));
    let advance = d.ota.confirm().unwrap().unwrap();
    assert_eq!((advance.from, advance.to), (1, 2));
}

/// The happy path, then each thing a compromised or broken server might send.
#[test]
fn device_refuses_what_it_must() {
    let release = Release::new();
    let server = SoftwareSigner::generate(SigAlg::Es256).unwrap();
    let mut d = device(&release, &server, CLASS);
    let image = release.image("1.1.0", 2, CLASS, Some(&d.fw_public));
    let later = now() + 3600;

    // A manifest by another key (a server that is not ours, or a forged one).
    let stranger = SoftwareSigner::generate(SigAlg::Es256).unwrap();
    let offer = offer_for(&stranger, &image, "1.1.0", 2, CLASS, later);
    assert_eq!(refusal(d.ota.verify_offer(&offer)), OtaRefusal::BadManifest);
    // A manifest altered after signing.
    let mut altered = offer_for(&server, &image, "1.1.0", 2, CLASS, later);
    let n = altered.manifest.len();
    altered.manifest[n - 70] ^= 1;
    assert_eq!(refusal(d.ota.verify_offer(&altered)), OtaRefusal::BadManifest);
    // Freeze: an old manifest, replayed after its expiry.
    let stale = offer_for(&server, &image, "1.1.0", 2, CLASS, now() - 1);
    assert_eq!(refusal(d.ota.verify_offer(&stale)), OtaRefusal::Expired);
    // Another product class in the manifest.
    let other = offer_for(&server, &image, "1.1.0", 2, OTHER_CLASS, later);
    assert_eq!(refusal(d.ota.verify_offer(&other)), OtaRefusal::WrongProductClass);
    // Not newer than what runs (same version), and below the counter.
    let same = offer_for(&server, &image, "1.0.0", 2, CLASS, later);
    assert_eq!(refusal(d.ota.verify_offer(&same)), OtaRefusal::Downgrade);

    let good = d.ota.verify_offer(&offer_for(&server, &image, "1.1.0", 2, CLASS, later)).unwrap();
    // Endless data / tampering in transit: bytes that are not the manifest's.
    let mut tampered = image.clone();
    tampered[0x200 + 100] ^= 1;
    assert_eq!(refusal(d.ota.install(&good, &dl(&tampered))), OtaRefusal::DigestMismatch);
    let mut longer = image.clone();
    longer.push(0);
    assert_eq!(refusal(d.ota.install(&good, &dl(&longer))), OtaRefusal::DigestMismatch);

    // A server signing a manifest for a tampered image (the manifest key is not enough: the
    // mastering signature is checked by the boot engine).
    let v = d.ota.verify_offer(&offer_for(&server, &tampered, "1.1.0", 2, CLASS, later)).unwrap();
    assert_eq!(refusal(d.ota.install(&v, &dl(&tampered))), OtaRefusal::BadImage);
    // An image mastered with another key (arbitrary software).
    let rogue = Release::new().image("1.1.0", 2, CLASS, Some(&d.fw_public));
    let v = d.ota.verify_offer(&offer_for(&server, &rogue, "1.1.0", 2, CLASS, later)).unwrap();
    assert_eq!(refusal(d.ota.install(&v, &dl(&rogue))), OtaRefusal::BadImage);
    // An image for another product class behind a manifest for ours (mix-and-match).
    let foreign = release.image("1.1.0", 2, OTHER_CLASS, Some(&d.fw_public));
    let v = d.ota.verify_offer(&offer_for(&server, &foreign, "1.1.0", 2, CLASS, later)).unwrap();
    assert_eq!(refusal(d.ota.install(&v, &dl(&foreign))), OtaRefusal::WrongProductClass);
    // A manifest naming 1.2.0 over the 1.1.0 image.
    let v = d.ota.verify_offer(&offer_for(&server, &image, "1.2.0", 3, CLASS, later)).unwrap();
    assert_eq!(refusal(d.ota.install(&v, &dl(&image))), OtaRefusal::Mismatch);
    // An image encrypted to another device.
    let theirs = release.image("1.1.0", 2, CLASS, Some(&device(&release, &server, CLASS).fw_public));
    let v = d.ota.verify_offer(&offer_for(&server, &theirs, "1.1.0", 2, CLASS, later)).unwrap();
    assert_eq!(refusal(d.ota.install(&v, &dl(&theirs))), OtaRefusal::BadImage);

    // None of the refusals touched the device: it still runs 1.0.0, counter 1.
    let (running, counter) = d.ota.running().unwrap();
    assert_eq!((running.to_string().as_str(), counter), ("1.0.0+0", 1));
    install_ok(&mut d, &good, &image);

    // Rollback: after 1.1.0 (counter 2), a validly signed 1.0.5 with counter 1 is refused by
    // the manifest check and, if forced, by the boot engine's counter.
    let old = release.image("1.0.5", 1, CLASS, Some(&d.fw_public));
    assert_eq!(
        refusal(d.ota.verify_offer(&offer_for(&server, &old, "1.0.5", 1, CLASS, later))),
        OtaRefusal::Downgrade
    );
    let sneaky = offer_for(&server, &old, "1.2.0", 2, CLASS, later);
    let v = d.ota.verify_offer(&sneaky).unwrap();
    assert_eq!(refusal(d.ota.install(&v, &dl(&old))), OtaRefusal::Mismatch);
}

/// Power cut at every flash operation of an OTA install (three tear models): after power returns the device boots the previous confirmed image, then the
/// same update installs, trial-boots and confirms.
#[test]
fn power_cut_during_install_recovers() {
    let release = Release::new();
    let server = SoftwareSigner::generate(SigAlg::Es256).unwrap();
    let later = now() + 3600;

    // How many flash operations one install takes.
    let mut probe = device(&release, &server, CLASS);
    let image = release.image("1.1.0", 2, CLASS, Some(&probe.fw_public));
    let v = probe.ota.verify_offer(&offer_for(&server, &image, "1.1.0", 2, CLASS, later)).unwrap();
    let before = probe.ota.engine().flash().ops();
    probe.ota.install(&v, &dl(&image)).unwrap();
    let ops = probe.ota.engine().flash().ops() - before;
    assert!(ops >= 5, "an install erases and writes: {ops} operations");

    let (mut runs, mut resumed, mut committed) = (0, 0, 0);
    for cut in 0..ops {
        for tear in [Tear::Nothing, Tear::Half, Tear::Complete] {
            let mut d = device(&release, &server, CLASS);
            let image = release.image("1.1.0", 2, CLASS, Some(&d.fw_public));
            let v = d.ota.verify_offer(&offer_for(&server, &image, "1.1.0", 2, CLASS, later)).unwrap();
            d.ota.engine().flash_mut().cut_power_after(cut, tear);
            let r = d.ota.install(&v, &dl(&image));
            assert!(r.is_err(), "cut after {cut} ops: the install cannot have completed");
            d.ota.engine().flash_mut().power_on();
            let boot = d.ota.engine().reset().unwrap();
            assert_eq!(d.ota.running().unwrap().1, 1, "the counter never moves before a confirm");
            match boot.booted.version.to_string().as_str() {
                // Cut before the commit point: the previous confirmed image runs; install again.
                "1.0.0+0" => {
                    assert_eq!(boot.booted.mode, BootMode::Confirmed, "cut {cut} {tear:?}");
                    install_ok(&mut d, &v, &image);
                    resumed += 1;
                }
                // The commit point (trailer magic) was written whole: the update boots on trial.
                "1.1.0+0" => {
                    assert!(
                        matches!(boot.booted.mode, BootMode::Trial { attempt: 1, .. }),
                        "cut {cut} {tear:?}"
                    );
                    assert_eq!(d.ota.confirm().unwrap().map(|a| a.to), Some(2));
                    committed += 1;
                }
                other => panic!("cut {cut} {tear:?}: booted {other}"),
            }
            runs += 1;
        }
    }
    assert!(resumed > 0 && committed <= 3, "{resumed} re-installed, {committed} committed");
    println!(
        "power cut during OTA install: {ops} cut points x 3 tear models = {runs} runs: {resumed} fell back to \
         1.0.0 and re-installed, {committed} had committed and confirmed"
    );
}
