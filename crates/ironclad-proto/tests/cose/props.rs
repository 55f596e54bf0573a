//! Property tests: parsers never panic on arbitrary or mutated input, and a mutated message
//! never verifies as something else.

use ironclad_proto::hazmat::SoftwareSigner;
use ironclad_proto::{
    Command, Limits, LogKey, Manifest, ManifestPolicy, ReleaseVersion, SigAlg, SignedCommand, SignedManifest,
    SignedTelemetry, TrustedKeys, decrypt_record, encrypt_record, frame, log_file_header, read_log_file,
    unwrap_log_key,
};
use proptest::prelude::*;

use crate::common::*;
use crate::keydelivery::TestX25519;

struct Fixture {
    keys: TrustedKeys,
    signer: SoftwareSigner,
    log_key: LogKey,
    device: TestX25519,
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let signer = signer(SigAlg::EdDsa);
        Fixture {
            keys: trust(b"k", &signer),
            signer,
            log_key: LogKey::generate("log").unwrap(),
            device: TestX25519::new(),
        }
    })
}

fn all_parsers(bytes: &[u8]) {
    let f = fixture();
    let limits = Limits::default();
    if let Ok(m) = SignedManifest::parse(bytes, &limits) {
        let _ = m.verify(&f.keys, &ManifestPolicy { now: NOW, product_class: CLASS });
    }
    if let Ok(c) = SignedCommand::parse(bytes, &limits) {
        let _ = c.verify(&f.keys, DEVICE, 0, NOW);
    }
    if let Ok(t) = SignedTelemetry::parse(bytes, &limits) {
        let _ = t.device_id();
        let _ = t.verify(&f.signer.verifying_key());
    }
    let _ = decrypt_record(&f.log_key, DEVICE, &[0; 16], 0, bytes, 64 * 1024);
    let _ = unwrap_log_key(bytes, DEVICE, &f.device);
    let _ = Manifest::from_cbor(bytes);
    let _ = Command::from_cbor(bytes);
    let mut file = log_file_header(&[0; 16]).to_vec();
    file.extend_from_slice(bytes);
    let _ = read_log_file(&file, &f.log_key, DEVICE, 64 * 1024);
    let _ = ironclad_proto::log_resume_point(&file, 64 * 1024);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        all_parsers(&bytes);
    }

    #[test]
    fn cose_shaped_bytes_never_panic(tag in prop_oneof![Just(0xd2u8), Just(0xd0), Just(0xd8)],
                                     rest in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = vec![tag];
        if tag == 0xd8 { bytes.push(96); }
        bytes.extend(rest);
        all_parsers(&bytes);
    }

    #[test]
    fn mutated_command_never_verifies(pos in any::<prop::sample::Index>(), bit in 0u8..8, cut in any::<bool>()) {
        let f = fixture();
        let good = command(3).sign(&f.signer, b"k").unwrap();
        let mut bad = good.clone();
        let i = pos.index(bad.len());
        if cut { bad.truncate(i); } else { bad[i] ^= 1 << bit; }
        all_parsers(&bad);
        let verdict = SignedCommand::parse(&bad, &Limits::default()).and_then(|c| c.verify(&f.keys, DEVICE, 0, NOW));
        // A flip inside the unprotected header map can leave the signed parts intact; then the
        // command must be exactly the original.
        if let Ok(v) = verdict { prop_assert_eq!(v.command(), &command(3)); }
    }

    #[test]
    fn mutated_log_record_never_decrypts_to_something_else(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let f = fixture();
        let record = encrypt_record(&f.log_key, DEVICE, &[0; 16], 0, &entry(1)).unwrap();
        let mut bad = record.clone();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        if let Ok(e) = decrypt_record(&f.log_key, DEVICE, &[0; 16], 0, &bad, 64 * 1024) {
            prop_assert_eq!(e, entry(1));
        }
        let mut file = log_file_header(&[0; 16]).to_vec();
        file.extend_from_slice(&frame(0, &bad).unwrap());
        let _ = read_log_file(&file, &f.log_key, DEVICE, 64 * 1024);
    }

    #[test]
    fn manifest_round_trip(counter in any::<u64>(), size in any::<u64>(), digest in any::<[u8; 32]>(),
                           issued in 0u64..u64::MAX / 2, life in 0u64..u64::MAX / 2,
                           class in "[a-z0-9-]{1,32}", patch in any::<u64>()) {
        let m = Manifest {
            version: format!("1.0.{patch}+b.1").parse::<ReleaseVersion>().unwrap(),
            security_counter: counter, image_size: size, image_digest: digest,
            issued_at: issued, expires: issued + life, product_class: class.clone(), image_id: class,
        };
        prop_assert_eq!(Manifest::from_cbor(&m.to_cbor()).unwrap(), m);
    }

    #[test]
    fn version_parse_never_panics(s in "\\PC{0,40}") {
        if let Ok(v) = s.parse::<ReleaseVersion>() {
            prop_assert_eq!(v.to_string(), s);
        }
    }
}
