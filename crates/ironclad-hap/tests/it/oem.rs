//! A small OEM PKI for the tests: a root, a line CA, and device certificates for keys made
//! inside device secure elements, stored there as an ironclad factory stores them.

use std::sync::Arc;

use ironclad_pki::{
    CaCertificate, CaIssuer, DeviceProfile, IntermediateCaParams, MemoryIndex, RootCaParams, Validity,
};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, MemorySe, SecureElement};
use rcgen::{CertificateParams, DistinguishedName, DnType};

pub(crate) struct Oem {
    pub(crate) root: CaCertificate,
    line: CaCertificate,
    line_key: KeyHandle,
}

impl Oem {
    /// A root named like every other test root: only its key tells it apart.
    pub(crate) fn new() -> Self {
        let now = time::OffsetDateTime::now_utc();
        let se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let key = |name: &str| {
            let label = Label::new(name).unwrap();
            se.generate_key(&label, KeyAlgorithm::EcdsaP256).unwrap();
            KeyHandle::open(se.clone(), &label).unwrap()
        };
        let root_key = key("root");
        let root =
            ironclad_pki::create_root(&root_key, &RootCaParams::new("Acme Root CA", "Acme", "DE"), now)
                .unwrap();
        let line_key = key("line");
        let line = ironclad_pki::create_intermediate(
            &CaIssuer::new(&root, &root_key).unwrap(),
            &line_key,
            &IntermediateCaParams::new("Acme Line 1 CA", "Acme", "DE"),
            now,
        )
        .unwrap();
        Oem { root, line, line_key }
    }

    pub(crate) fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// Generates `device-auth` (P-256) in `se`, certifies it as `device_id`, and seals
    /// `device-cert` and `device-chain` (line CA) there.
    pub(crate) fn provision(&self, se: &Arc<dyn SecureElement>, device_id: &str) {
        let label = Label::new(ironclad_hap::DEVICE_KEY).unwrap();
        se.generate_key(&label, KeyAlgorithm::EcdsaP256).unwrap();
        let key = KeyHandle::open(se.clone(), &label).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, device_id);
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let profile = DeviceProfile::new("Acme", "DE", "acme-lamp", Validity::Years(5)).unwrap();
        let issued = ironclad_pki::issue_one(
            csr.as_bytes(),
            &CaIssuer::new(&self.line, &self.line_key).unwrap(),
            &profile,
            &mut MemoryIndex::new(),
            &ironclad_pki::Limits::default(),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        se.put_object(&Label::new(ironclad_hap::DEVICE_CERT).unwrap(), issued.record().pem().as_bytes())
            .unwrap();
        se.put_object(&Label::new(ironclad_hap::DEVICE_CHAIN).unwrap(), self.line.pem().as_bytes()).unwrap();
    }
}
