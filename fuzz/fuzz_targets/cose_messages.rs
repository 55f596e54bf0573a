#![no_main]
// The device's COSE parsers (manifest, command, telemetry) and their verification must never
// panic, whatever the bytes; a random message must never verify.
use std::sync::OnceLock;

use ironclad_proto::{
    Limits, ManifestPolicy, SigAlg, SignedCommand, SignedManifest, SignedTelemetry, TrustedKeys, VerifyingKey,
};

fn key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| VerifyingKey::from_raw(SigAlg::EdDsa, &[0x3b; 32]).expect("key"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let keys = TrustedKeys::single(b"k".to_vec(), key().clone());
    if let Ok(m) = SignedManifest::parse(data, &limits) {
        let policy = ManifestPolicy { now: 1, product_class: "cam" };
        assert!(m.verify(&keys, &policy).is_err());
    }
    if let Ok(c) = SignedCommand::parse(data, &limits) {
        assert!(c.verify(&keys, "dev", 0, 1).is_err());
    }
    if let Ok(t) = SignedTelemetry::parse(data, &limits) {
        let _ = t.device_id();
        assert!(t.verify(key()).is_err());
    }
});
