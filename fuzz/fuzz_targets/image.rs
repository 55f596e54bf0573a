#![no_main]
// MCUboot image parsing, inspection and verification must never panic, whatever the bytes.
use std::io::Cursor;
use std::sync::OnceLock;

use ironclad_image::{Image, Limits, TrustAnchors};
use ironclad_se::{KeyAlgorithm, PublicKey};

fn trust() -> &'static TrustAnchors {
    static TRUST: OnceLock<TrustAnchors> = OnceLock::new();
    TRUST.get_or_init(|| {
        TrustAnchors::with_key(PublicKey::new(KeyAlgorithm::Ed25519, vec![0x3b; 32])).expect("anchor")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut src = Cursor::new(data);
    if let Ok(image) = Image::read(&mut src, &Limits::for_slot(1 << 20)) {
        let _ = image.inspect();
        let _ = image.verify(&mut src, trust());
    }
});
