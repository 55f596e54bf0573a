//! Shared fixtures: a test PKI, CSRs, a fixed clock.

use ironclad_pki::*;
use rcgen::{CertificateParams, DistinguishedName, DnType};
use time::OffsetDateTime;
use time::macros::datetime;

/// The fixed "now" of every test.
pub fn now() -> OffsetDateTime {
    datetime!(2026-06-01 12:00:00 UTC)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A root and an intermediate with their keys.
pub struct Pki {
    pub root_key: KeyPair,
    pub root: CaCertificate,
    pub int_key: KeyPair,
    pub int: CaCertificate,
}

impl Pki {
    /// Root and intermediate keys of the given algorithms.
    pub fn with(
        root_alg: &'static rcgen::SignatureAlgorithm,
        int_alg: &'static rcgen::SignatureAlgorithm,
    ) -> Self {
        let root_key = KeyPair::generate_for(root_alg).unwrap();
        let root = create_root(&root_key, &RootCaParams::new("Test Root", "Acme", "DE"), now()).unwrap();
        let int_key = KeyPair::generate_for(int_alg).unwrap();
        let int = {
            let parent = CaIssuer::new(&root, &root_key).unwrap();
            create_intermediate(
                &parent,
                &int_key,
                &IntermediateCaParams::new("Line 1 CA", "Acme", "DE"),
                now(),
            )
            .unwrap()
        };
        Pki { root_key, root, int_key, int }
    }

    pub fn p256() -> Self {
        Self::with(&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    pub fn issuer(&self) -> CaIssuer<'_> {
        CaIssuer::new(&self.int, &self.int_key).unwrap()
    }

    pub fn verifier(&self) -> ChainVerifier {
        ChainVerifier::new([self.root.der()], [self.int.der()]).unwrap()
    }
}

pub fn profile() -> DeviceProfile {
    DeviceProfile::new("Acme", "DE", "Smart Camera", Validity::Years(30)).unwrap()
}

/// A CSR (DER) for `key` with subject CN = `cn`.
pub fn csr(key: &KeyPair, cn: &str) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serialize_request(key).unwrap().der().to_vec()
}

/// A fresh P-256 key and its CSR.
pub fn device(cn: &str) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let der = csr(&key, cn);
    (key, der)
}

/// Issues one device certificate into `index` and returns it.
pub fn issue(pki: &Pki, index: &mut dyn IssuedIndex, cn: &str) -> IssuedRecord {
    let (_, der) = device(cn);
    match issue_one(&der, &pki.issuer(), &profile(), index, &Limits::default(), now()).unwrap() {
        IssueOutcome::Issued(r) => r,
        other => panic!("expected a new certificate, got {other:?}"),
    }
}
