//! Shared fixtures: keys, releases, geometries, devices, and the independent check of what booted.

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use ironclad_boot::*;
use ironclad_image::hazmat::{SoftwareAgreementKey, SoftwareSigner};
use ironclad_image::{
    Cipher, ContentKey, Encryption, Image, ImageSigner, KeyAgreement, Limits, SignOptions, TrustAnchors, sign,
};
use ironclad_se::{KeyAlgorithm, MemorySe, MonotonicCounter};

pub struct Keys {
    /// The firmware mastering key devices trust.
    pub trusted: SoftwareSigner,
    /// A key nobody trusts.
    pub rogue: SoftwareSigner,
    /// The devices' firmware decryption key.
    pub device: SoftwareAgreementKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        trusted: SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap(),
        rogue: SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap(),
        device: SoftwareAgreementKey::generate(KeyAlgorithm::X25519).unwrap(),
    })
}

pub fn trust() -> TrustAnchors {
    TrustAnchors::with_key(keys().trusted.public_key().clone()).unwrap()
}

/// Deterministic payload, different per seed.
pub fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ seed.wrapping_mul(0x85eb_ca6b) ^ len as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A release signed by `signer`; `counter` None omits the SEC_CNT TLV.
pub fn release_by(
    signer: &dyn ImageSigner,
    version: &str,
    counter: Option<u32>,
    extra: &[(u16, Vec<u8>)],
) -> Vec<u8> {
    let mut o = SignOptions::new(version.parse().unwrap());
    o.security_counter = counter;
    o.custom_tlvs = extra.to_vec();
    let body = payload(1000, counter.unwrap_or(0) ^ u32::from(version.as_bytes()[version.len() - 1]));
    let mut image = Vec::new();
    sign(signer, &o, &body[..], body.len() as u64, &mut image).unwrap();
    image
}

/// A release signed by the trusted key.
pub fn release(version: &str, counter: u32) -> Vec<u8> {
    release_by(&keys().trusted, version, Some(counter), &[])
}

/// A release signed by the trusted key with a `len`-byte payload.
pub fn release_sized(version: &str, counter: u32, len: usize) -> Vec<u8> {
    let mut o = SignOptions::new(version.parse().unwrap());
    o.security_counter = Some(counter);
    let body = payload(len, counter);
    let mut image = Vec::new();
    sign(&keys().trusted, &o, &body[..], body.len() as u64, &mut image).unwrap();
    image
}

/// A release encrypted to the devices' key (AES-128-CTR, ENC_X25519).
pub fn encrypted_release(version: &str, counter: u32) -> Vec<u8> {
    let mut o = SignOptions::new(version.parse().unwrap());
    o.security_counter = Some(counter);
    o.encryption = Some(Encryption {
        recipient: keys().device.public_key().clone(),
        content_key: ContentKey::generate(Cipher::Aes128Ctr).unwrap(),
    });
    let body = payload(900, counter);
    let mut image = Vec::new();
    sign(&keys().trusted, &o, &body[..], body.len() as u64, &mut image).unwrap();
    image
}

/// The verified digest of an image (what the signature table must hold).
pub fn digest_of(image: &[u8]) -> [u8; 32] {
    let mut src = Cursor::new(image);
    let parsed = Image::read(&mut src, &Limits::default()).unwrap();
    if parsed.cipher().is_some() {
        *parsed.decrypt_verify(&mut src, &trust(), &keys().device).unwrap().digest()
    } else {
        *parsed.verify(&mut src, &trust()).unwrap().digest()
    }
}

/// The flash geometries every engine test runs on (MCUboot sim's `each_device`).
pub fn geometries() -> Vec<(&'static str, SimConfig)> {
    vec![
        ("4KiB sectors, 8-byte writes, erased 0xff", SimConfig::new(4096, 8, 0xff, 2).unwrap()),
        ("1KiB sectors, 1-byte writes, erased 0x00", SimConfig::new(1024, 1, 0x00, 4).unwrap()),
        ("2KiB sectors, 32-byte writes, erased 0xff", SimConfig::new(2048, 32, 0xff, 8).unwrap()),
    ]
}

/// A device: engine over a SimFlash, counter in a MemorySe.
pub struct Device {
    pub engine: BootEngine<SimFlash>,
    pub se: Arc<MemorySe>,
    pub config: SimConfig,
}

pub fn counter_label() -> ironclad_se::Label {
    ironclad_se::Label::new(DEFAULT_COUNTER).unwrap()
}

impl Device {
    /// A device with this flash contents and counter.
    pub fn from_parts(config: SimConfig, flash: SimFlash, counter: u64) -> Self {
        let se = Arc::new(MemorySe::new());
        if counter > 0 {
            se.counter_advance(&counter_label(), counter).unwrap();
        }
        let rollback = AntiRollback::new(se.clone(), counter_label());
        let mut boot = BootConfig::new(config.layout().unwrap(), Chain::slots_only(trust()));
        boot.max_attempts = config.max_attempts;
        let engine = BootEngine::new(flash, boot, rollback).unwrap().with_decryption_key(Box::new(SharedKey));
        Self { engine, se, config }
    }

    /// Factory-fresh.
    pub fn fresh(config: SimConfig) -> Self {
        Self::from_parts(config, SimFlash::new(config.geometry).unwrap(), 0)
    }

    /// Provisioned with `image` through recovery, reset and running it.
    pub fn provisioned(config: SimConfig, image: &[u8]) -> Self {
        let mut d = Self::fresh(config);
        d.engine.recover(&mut Cursor::new(image)).unwrap();
        d.engine.reset().unwrap();
        d
    }

    /// Same flash and counter, new engine (nothing booted).
    pub fn clone_powered_off(&self) -> Self {
        let mut flash = self.engine.flash().clone();
        flash.power_on();
        flash.disarm();
        Self::from_parts(self.config, flash, self.counter())
    }

    pub fn counter(&self) -> u64 {
        self.se.counter(&counter_label()).unwrap()
    }

    pub fn ops(&self) -> u64 {
        self.engine.flash().ops()
    }

    pub fn install(&mut self, image: &[u8]) -> Result<InstallReport> {
        self.engine.install(&mut Cursor::new(image))
    }

    pub fn recover(&mut self, image: &[u8]) -> Result<InstallReport> {
        self.engine.recover(&mut Cursor::new(image))
    }

    /// Power on and reset.
    pub fn reboot(&mut self) -> Result<BootReport> {
        self.engine.flash_mut().power_on();
        self.engine.reset()
    }

    pub fn slot_state(&mut self, slot: Slot) -> SlotState {
        self.engine.state().unwrap().slots[slot.index()].state
    }

    /// Checks what booted without the engine: the slot's bytes, parsed and verified with the
    /// trusted key by `ironclad-image` alone, have the reported digest, and the image's counter
    /// is not below `counter_before` (the device counter when the reset started).
    pub fn check_booted(&self, report: &BootReport, counter_before: u64) {
        let region = self.config.layout().unwrap().slot(report.booted.slot);
        let bytes = &self.engine.flash().data()[region.offset as usize..region.end() as usize];
        let mut src = Cursor::new(bytes);
        let image = Image::read(&mut src, &Limits::for_slot(u64::from(region.size))).unwrap();
        let verified = image.verify(&mut src, &trust()).expect("the booted slot must verify independently");
        assert_eq!(verified.digest(), &report.booted.digest);
        let counter = verified.security_counter().expect("booted image has a counter");
        assert_eq!(counter, report.booted.security_counter);
        assert!(u64::from(counter) >= counter_before, "booted a downgrade: {counter} < {counter_before}");
    }
}

/// The devices' decryption key: delegates to the shared static key (which is not Clone).
#[derive(Debug)]
pub struct SharedKey;

impl KeyAgreement for SharedKey {
    fn public_key(&self) -> &ironclad_se::PublicKey {
        keys().device.public_key()
    }

    fn agree_and_derive(
        &self,
        peer_public: &[u8],
        kdf: &ironclad_se::Hkdf<'_>,
        out: &mut [u8],
    ) -> std::result::Result<(), ironclad_se::Error> {
        keys().device.agree_and_derive(peer_public, kdf, out)
    }
}
