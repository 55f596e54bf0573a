//! Certificate authorities: the offline root, intermediates (per factory or line), and the
//! [`CaIssuer`] that pairs a CA certificate with the key that signs for it.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, KeyIdMethod,
    KeyUsagePurpose, PublicKeyData, SerialNumber, SigningKey,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};
use crate::profile::{add_years, validate_country, validate_text, whole_seconds};

/// How far a CA's notBefore lies before its creation time. Larger than any device backdate, so
/// a chain is also valid at a device certificate's notBefore (Matter validates there).
pub const CA_BACKDATE: Duration = Duration::hours(1);

/// Subject and lifetime of a new root CA.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RootCaParams {
    /// Subject CN, e.g. "Acme Device Root CA".
    pub common_name: String,
    /// Subject O.
    pub organization: String,
    /// Subject C (two upper-case letters).
    pub country: String,
    /// Lifetime in calendar years (default 25).
    pub validity_years: u16,
}

impl RootCaParams {
    /// Root parameters with the default lifetime of 25 years.
    pub fn new(common_name: &str, organization: &str, country: &str) -> Self {
        RootCaParams {
            common_name: common_name.to_owned(),
            organization: organization.to_owned(),
            country: country.to_owned(),
            validity_years: 25,
        }
    }
}

/// Subject and lifetime of a new intermediate (issuing) CA.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntermediateCaParams {
    /// Subject CN, e.g. "Acme Factory 1 Line 2 CA".
    pub common_name: String,
    /// Subject O.
    pub organization: String,
    /// Subject C (two upper-case letters).
    pub country: String,
    /// Lifetime in calendar years (default 15).
    pub validity_years: u16,
}

impl IntermediateCaParams {
    /// Intermediate parameters with the default lifetime of 15 years.
    pub fn new(common_name: &str, organization: &str, country: &str) -> Self {
        IntermediateCaParams {
            common_name: common_name.to_owned(),
            organization: organization.to_owned(),
            country: country.to_owned(),
            validity_years: 15,
        }
    }
}

/// A parsed and checked CA certificate (basicConstraints CA:TRUE, keyCertSign, SKI present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaCertificate {
    der: Vec<u8>,
    subject: String,
    subject_der: Vec<u8>,
    spki_der: Vec<u8>,
    ski: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    fingerprint: [u8; 32],
}

impl CaCertificate {
    /// Parses a DER CA certificate and checks that it can act as a CA.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| Error::CertMalformed { reason: e.to_string() })?;
        if !rest.is_empty() {
            return Err(Error::CertMalformed { reason: format!("{} bytes of trailing data", rest.len()) });
        }
        let invalid = |reason: &str| Error::CaInvalid { reason: reason.to_owned() };
        let bc = cert.basic_constraints().map_err(|_| invalid("duplicate basicConstraints"))?;
        if !bc.is_some_and(|bc| bc.value.ca) {
            return Err(invalid("basicConstraints CA:TRUE missing"));
        }
        let ku = cert.key_usage().map_err(|_| invalid("duplicate keyUsage"))?;
        if !ku.is_some_and(|ku| ku.value.key_cert_sign()) {
            return Err(invalid("keyUsage keyCertSign missing"));
        }
        let ski = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .ok_or_else(|| invalid("subjectKeyIdentifier missing"))?;
        Ok(CaCertificate {
            der: der.to_vec(),
            subject: cert.subject().to_string(),
            subject_der: cert.subject().as_raw().to_vec(),
            spki_der: cert.public_key().raw.to_vec(),
            ski,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            fingerprint: sha256(der),
        })
    }

    /// Parses a PEM `CERTIFICATE` block and checks it as [`from_der`](Self::from_der) does.
    pub fn from_pem(pem_text: &str) -> Result<Self> {
        let block = pem::parse(pem_text).map_err(|e| Error::CertMalformed { reason: e.to_string() })?;
        if block.tag() != "CERTIFICATE" {
            return Err(Error::CertMalformed {
                reason: format!("PEM block is {:?}, not CERTIFICATE", block.tag()),
            });
        }
        Self::from_der(block.contents())
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate, PEM.
    pub fn pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }

    /// Subject in RFC 4514-like text, e.g. `C=DE, O=Acme, CN=Acme Root`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Subject Name, DER (copied verbatim as the issuer of certificates this CA signs).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Subject key identifier; the authority key identifier of everything this CA signs.
    pub fn subject_key_id(&self) -> &[u8] {
        &self.ski
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// SHA-256 over the DER, lower-case hex (what `openssl x509 -fingerprint -sha256` shows).
    pub fn sha256_fingerprint(&self) -> String {
        hex::encode(self.fingerprint)
    }

    /// SHA-256 over the DER, raw.
    pub fn sha256_fingerprint_bytes(&self) -> [u8; 32] {
        self.fingerprint
    }
}

/// A CA certificate together with the key that signs for it: what issues certificates and CRLs.
///
/// The signer is any [`rcgen::SigningKey`], so a key in a software store, a PKCS#11 token or a
/// TPM signs unchanged. It must be `Sync` because batch issuance signs from several threads.
pub struct CaIssuer<'a> {
    cert: &'a CaCertificate,
    signer: &'a (dyn SigningKey + Sync),
    rcgen: rcgen::Issuer<'a, &'a (dyn SigningKey + Sync)>,
    sig_alg_der: &'static [u8],
}

impl std::fmt::Debug for CaIssuer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaIssuer")
            .field("subject", &self.cert.subject)
            .field("algorithm", self.signer.algorithm())
            .finish_non_exhaustive()
    }
}

impl<'a> CaIssuer<'a> {
    /// Pairs `cert` with `signer`, refusing a signer whose public key is not the certificate's.
    pub fn new(cert: &'a CaCertificate, signer: &'a (dyn SigningKey + Sync)) -> Result<Self> {
        if signer.subject_public_key_info() != cert.spki_der {
            return Err(Error::SignerKeyMismatch);
        }
        let sig_alg_der = signature_algorithm_der(signer.algorithm())?;
        let rcgen = rcgen::Issuer::from_ca_cert_der(&CertificateDer::from(cert.der()), signer)
            .map_err(|e| Error::CaInvalid { reason: e.to_string() })?;
        Ok(CaIssuer { cert, signer, rcgen, sig_alg_der })
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &'a CaCertificate {
        self.cert
    }

    pub(crate) fn signer(&self) -> &'a (dyn SigningKey + Sync) {
        self.signer
    }

    pub(crate) fn rcgen(&self) -> &rcgen::Issuer<'a, &'a (dyn SigningKey + Sync)> {
        &self.rcgen
    }

    /// DER AlgorithmIdentifier of this issuer's signatures.
    pub(crate) fn sig_alg_der(&self) -> &'static [u8] {
        self.sig_alg_der
    }
}

/// The AlgorithmIdentifier (full SEQUENCE) that labels signatures made by `alg`.
fn signature_algorithm_der(alg: &rcgen::SignatureAlgorithm) -> Result<&'static [u8]> {
    const P256_SHA256: &[u8] = &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    const P384_SHA384: &[u8] = &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
    const RSA_SHA256: &[u8] =
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00];
    const RSA_SHA384: &[u8] =
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00];
    const RSA_SHA512: &[u8] =
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00];
    let table: [(&rcgen::SignatureAlgorithm, &'static [u8]); 6] = [
        (&rcgen::PKCS_ECDSA_P256_SHA256, P256_SHA256),
        (&rcgen::PKCS_ECDSA_P384_SHA384, P384_SHA384),
        (&rcgen::PKCS_ED25519, ED25519),
        (&rcgen::PKCS_RSA_SHA256, RSA_SHA256),
        (&rcgen::PKCS_RSA_SHA384, RSA_SHA384),
        (&rcgen::PKCS_RSA_SHA512, RSA_SHA512),
    ];
    table
        .iter()
        .find(|(a, _)| *a == alg)
        .map(|(_, der)| *der)
        .ok_or_else(|| Error::UnsupportedSignerAlgorithm { algorithm: format!("{alg:?}") })
}

/// Creates a self-signed root CA: basicConstraints critical CA:TRUE without pathLen, keyUsage
/// critical keyCertSign + cRLSign, SKI, random 16-byte serial. The signature algorithm follows
/// `signer.algorithm()` (ECDSA P-256/SHA-256 or Ed25519 in practice).
pub fn create_root(
    signer: &dyn SigningKey,
    params: &RootCaParams,
    now: OffsetDateTime,
) -> Result<CaCertificate> {
    signature_algorithm_der(signer.algorithm())?;
    let cert_params = ca_params(
        &params.common_name,
        &params.organization,
        &params.country,
        params.validity_years,
        BasicConstraints::Unconstrained,
        now,
    )?;
    let cert = cert_params.self_signed(&signer).map_err(Error::CertificateBuild)?;
    CaCertificate::from_der(cert.der())
}

/// Creates an intermediate CA for `subject_key`, signed by `parent`: basicConstraints critical
/// CA:TRUE pathLen 0 (it may only sign devices), keyUsage critical keyCertSign + cRLSign, SKI,
/// AKI = the parent's SKI, random 16-byte serial.
pub fn create_intermediate(
    parent: &CaIssuer<'_>,
    subject_key: &dyn PublicKeyData,
    params: &IntermediateCaParams,
    now: OffsetDateTime,
) -> Result<CaCertificate> {
    signature_algorithm_der(subject_key.algorithm())?;
    let mut cert_params = ca_params(
        &params.common_name,
        &params.organization,
        &params.country,
        params.validity_years,
        BasicConstraints::Constrained(0),
        now,
    )?;
    cert_params.use_authority_key_identifier_extension = true;
    let cert = cert_params.signed_by(&subject_key, parent.rcgen()).map_err(Error::CertificateBuild)?;
    CaCertificate::from_der(cert.der())
}

fn ca_params(
    common_name: &str,
    organization: &str,
    country: &str,
    validity_years: u16,
    constraints: BasicConstraints,
    now: OffsetDateTime,
) -> Result<CertificateParams> {
    validate_text("common name", common_name)?;
    validate_text("organization", organization)?;
    validate_country(country)?;
    if validity_years == 0 {
        return Err(Error::ValidityInvalid { reason: "zero years" });
    }
    let not_before = whole_seconds(
        now.checked_sub(CA_BACKDATE).ok_or(Error::ValidityInvalid { reason: "time out of range" })?,
    );
    let not_after = add_years(not_before, validity_years)?;

    let mut dn = DistinguishedName::new();
    let printable = rcgen::string::PrintableString::try_from(country)
        .map_err(|_| Error::NameInvalid { field: "country", reason: "not printable" })?;
    dn.push(DnType::CountryName, DnValue::PrintableString(printable));
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, common_name);

    let mut p = CertificateParams::default();
    p.distinguished_name = dn;
    p.not_before = not_before;
    p.not_after = not_after;
    p.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    p.is_ca = IsCa::Ca(constraints);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.key_identifier_method = KeyIdMethod::Sha256;
    Ok(p)
}

/// A random, positive 16-byte serial whose DER INTEGER is exactly 16 bytes (bit 127 clear,
/// bit 126 set): 126 random bits, far above CA/B's 64-bit floor, and never rcgen's
/// key-derived default, which repeats when a key is re-certified.
pub(crate) fn random_serial() -> [u8; 16] {
    let mut s = [0u8; 16];
    // aws-lc's RAND_bytes does not fail in practice; a zero serial would still be unique-checked
    // by the index, so a failure cannot produce a silent duplicate.
    if aws_lc_rs::rand::fill(&mut s).is_err() {
        s = [0x55; 16];
    }
    s[0] = (s[0] & 0x7f) | 0x40;
    s
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Normalises a serial number written as hex (optional `:` separators, any case, optional
/// `0x`) to the crate's form: lower-case hex without leading zero bytes.
pub fn normalize_serial(text: &str) -> Result<String> {
    let t = text.trim();
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    let digits: String = t.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() {
        return Err(Error::SerialInvalid { reason: "empty" });
    }
    if digits.len() > 42 {
        return Err(Error::SerialInvalid { reason: "longer than 20 bytes" });
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::SerialInvalid { reason: "not hexadecimal" });
    }
    let padded = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits };
    let bytes = hex::decode(padded).map_err(|_| Error::SerialInvalid { reason: "not hexadecimal" })?;
    Ok(serial_hex(&bytes))
}

/// Lower-case hex of a serial's big-endian bytes, leading zero bytes removed.
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let skip = raw.iter().take_while(|b| **b == 0).count().min(raw.len().saturating_sub(1));
    hex::encode(&raw[skip..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::KeyPair;
    use time::macros::datetime;

    fn now() -> OffsetDateTime {
        datetime!(2026-01-01 0:00 UTC)
    }

    #[test]
    fn root_and_intermediate_profiles() {
        let root_key = KeyPair::generate().unwrap();
        let root = create_root(&root_key, &RootCaParams::new("Root", "Acme", "DE"), now()).unwrap();
        let (_, r) = X509Certificate::from_der(root.der()).unwrap();
        let bc = r.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none());
        let ku = r.key_usage().unwrap().unwrap();
        assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
        assert!(!ku.value.digital_signature());
        assert_eq!(r.raw_serial().len(), 16);
        assert_eq!(root.subject(), "C=DE, O=Acme, CN=Root");
        assert_eq!(root.not_after().year(), 2050);
        assert_eq!(r.signature_algorithm.algorithm.to_id_string(), "1.2.840.10045.4.3.2");

        let issuer = CaIssuer::new(&root, &root_key).unwrap();
        let int_key = KeyPair::generate().unwrap();
        let int =
            create_intermediate(&issuer, &int_key, &IntermediateCaParams::new("Line 1", "Acme", "DE"), now())
                .unwrap();
        let (_, i) = X509Certificate::from_der(int.der()).unwrap();
        let bc = i.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint == Some(0));
        assert_eq!(i.issuer().as_raw(), root.subject_der());
        let aki = i
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, root.subject_key_id());
        assert_ne!(int.subject_key_id(), root.subject_key_id());
        assert!(i.verify_signature(Some(r.public_key())).is_ok());
    }

    #[test]
    fn signer_must_match_the_certificate() {
        let key = KeyPair::generate().unwrap();
        let other = KeyPair::generate().unwrap();
        let root = create_root(&key, &RootCaParams::new("Root", "Acme", "DE"), now()).unwrap();
        assert!(matches!(CaIssuer::new(&root, &other), Err(Error::SignerKeyMismatch)));
    }

    #[test]
    fn ed25519_root() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let root = create_root(&key, &RootCaParams::new("Root", "Acme", "DE"), now()).unwrap();
        let (_, r) = X509Certificate::from_der(root.der()).unwrap();
        assert_eq!(r.signature_algorithm.algorithm.to_id_string(), "1.3.101.112");
    }

    #[test]
    fn signature_algorithm_labels_match_rcgen() {
        for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let key = KeyPair::generate_for(alg).unwrap();
            let root = create_root(&key, &RootCaParams::new("R", "A", "DE"), now()).unwrap();
            // Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature }: skip the outer
            // header and the TBS, then the AlgorithmIdentifier must be byte-identical to ours.
            let der = root.der();
            let (outer_hdr, _) = tlv_header(der);
            let (tbs_hdr, tbs_len) = tlv_header(&der[outer_hdr..]);
            let sig_alg = &der[outer_hdr + tbs_hdr + tbs_len..];
            let ours = signature_algorithm_der(alg).unwrap();
            assert_eq!(&sig_alg[..ours.len()], ours, "{alg:?}");
        }
    }

    fn tlv_header(b: &[u8]) -> (usize, usize) {
        if b[1] < 0x80 {
            (2, b[1] as usize)
        } else {
            let n = (b[1] & 0x7f) as usize;
            let len = b[2..2 + n].iter().fold(0usize, |a, x| (a << 8) | *x as usize);
            (2 + n, len)
        }
    }

    #[test]
    fn bad_params_are_refused() {
        let key = KeyPair::generate().unwrap();
        let mut p = RootCaParams::new("Root", "Acme", "Germany");
        assert!(matches!(create_root(&key, &p, now()), Err(Error::NameInvalid { field: "country", .. })));
        p.country = "DE".into();
        p.validity_years = 0;
        assert!(create_root(&key, &p, now()).is_err());
    }

    #[test]
    fn serials() {
        let a = random_serial();
        let b = random_serial();
        assert_ne!(a, b);
        assert_eq!(a[0] & 0xc0, 0x40);
        assert_eq!(normalize_serial("0x00:AB:cd").unwrap(), "abcd");
        assert_eq!(normalize_serial("abc").unwrap(), "0abc");
        assert!(normalize_serial("xyz").is_err());
        assert!(normalize_serial("").is_err());
    }

    #[test]
    fn non_ca_is_refused() {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["x.example".to_owned()]).unwrap();
        p.is_ca = IsCa::ExplicitNoCa;
        let cert = p.self_signed(&key).unwrap();
        assert!(matches!(CaCertificate::from_der(cert.der()), Err(Error::CaInvalid { .. })));
    }
}
