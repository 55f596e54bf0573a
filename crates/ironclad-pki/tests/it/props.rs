//! Property tests: the CSR parser never panics; issue -> verify round-trips.

use crate::common::*;
use ironclad_pki::*;
use proptest::prelude::*;
use std::sync::OnceLock;

fn valid_csr() -> &'static [u8] {
    static CSR: OnceLock<Vec<u8>> = OnceLock::new();
    CSR.get_or_init(|| device("prop-device").1)
}

fn shared_pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::p256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn csr_parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_and_verify(&bytes, &Limits::default());
        if let Ok(u) = UnverifiedCsr::parse(&bytes, &Limits::default()) {
            let _ = u.verify();
        }
    }

    #[test]
    fn csr_parse_never_panics_on_mutated_requests(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut der = valid_csr().to_vec();
        for (at, value) in &edits {
            let i = at.index(der.len());
            der[i] = *value;
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        // A mutation that still verifies cannot have changed the signed content.
        if let Ok(v) = parse_and_verify(&der, &Limits::default()) {
            prop_assert_eq!(v.device_id(), "prop-device");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn issue_then_verify_round_trips(
        id in "[A-Za-z0-9._:-]{1,64}",
        family in "[ -~]{1,64}",
        years in 1u16..60,
    ) {
        let pki = shared_pki();
        let prof = DeviceProfile::new("Acme", "DE", &family, Validity::Years(years)).unwrap();
        let mut index = MemoryIndex::new();
        let (_, der) = device(&id);
        let rec = issue_one(&der, &pki.issuer(), &prof, &mut index, &Limits::default(), now())
            .unwrap()
            .record()
            .clone();
        let v = pki.verifier().verify_device(&rec.der, now(), &index).unwrap();
        prop_assert_eq!(v.device_id(), id.as_str());
        prop_assert_eq!(v.family(), Some(family.as_str()));
        prop_assert_eq!(v.serial(), rec.serial.as_str());
        let summary = inspect_certificate(&rec.der).unwrap();
        prop_assert_eq!(summary.not_after, rec.not_after);
    }
}
