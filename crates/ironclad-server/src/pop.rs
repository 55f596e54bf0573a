//! Proof of possession of a group CA's key, as Azure DPS does it: the server hands out a
//! random verification code; the operator has the CA sign a *verification certificate* whose
//! subject CN is that code; the server checks the CN, the issuer name and the signature against
//! the CA certificate being enrolled. The code is single-use (cleared when the proof succeeds).

use ironclad_pki::CaCertificate;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SigningKey};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};

/// A new verification code: 16 random bytes, upper-case hex (as DPS shows them).
pub(crate) fn new_verification_code() -> Result<String> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Tls("system RNG failed".into()))?;
    Ok(hex::encode_upper(b))
}

/// Makes the verification certificate for `code`, signed by the CA key `ca_key` (which may live
/// in a secure element or HSM: any `rcgen::SigningKey`). Its own key is throwaway.
pub fn make_verification_certificate(ca_der: &[u8], ca_key: &dyn SigningKey, code: &str) -> Result<Vec<u8>> {
    let issuer = rcgen::Issuer::from_ca_cert_der(&CertificateDer::from(ca_der), ca_key)
        .map_err(|e| Error::Invalid(format!("CA certificate: {e}")))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, code);
    let subject = KeyPair::generate().map_err(|e| Error::Invalid(e.to_string()))?;
    let cert = params.signed_by(&subject, &issuer).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(cert.der().to_vec())
}

/// Checks a verification certificate (DER or PEM) against the CA being enrolled and its code.
pub(crate) fn check_verification_certificate(ca: &CaCertificate, code: &str, input: &[u8]) -> Result<()> {
    let owned;
    let der = if input.trim_ascii_start().starts_with(b"-----BEGIN") {
        owned = pem::parse(input).map_err(|e| Error::ProofOfPossession(format!("PEM: {e}")))?.into_contents();
        &owned[..]
    } else {
        input
    };
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| Error::ProofOfPossession(format!("verification certificate: {e}")))?;
    let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok());
    if cn != Some(code) {
        return Err(Error::ProofOfPossession("subject CN is not the verification code".into()));
    }
    if cert.issuer().as_raw() != ca.subject_der() {
        return Err(Error::ProofOfPossession("not issued by the CA being enrolled".into()));
    }
    let (_, ca_cert) =
        X509Certificate::from_der(ca.der()).map_err(|e| Error::ProofOfPossession(e.to_string()))?;
    cert.verify_signature(Some(ca_cert.public_key()))
        .map_err(|_| Error::ProofOfPossession("signature does not verify with the CA's key".into()))
}
