//! A readable, serialisable summary of a certificate, for `cert show`.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ca::{serial_hex, sha256};
use crate::der::oid_to_string;
use crate::error::{Error, Result};
use crate::profile::FAMILY_EXTENSION_OID_DER;

/// What `cert show` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CertSummary {
    /// X.509 version (3 for everything issued here).
    pub version: u32,
    /// Subject, RFC 4514-like text.
    pub subject: String,
    /// Issuer, RFC 4514-like text.
    pub issuer: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// Subject key, e.g. `EC P-256`, `Ed25519`, `RSA-2048`.
    pub key_algorithm: String,
    /// Signature algorithm name or dotted OID.
    pub signature_algorithm: String,
    /// Whether basicConstraints says CA:TRUE.
    pub is_ca: bool,
    /// Every extension, in certificate order.
    pub extensions: Vec<ExtensionSummary>,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256_fingerprint: String,
}

/// One extension of a [`CertSummary`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExtensionSummary {
    /// Dotted OID.
    pub oid: String,
    /// Name, e.g. `keyUsage`, `ironcladFamily`, or the OID again when unknown.
    pub name: String,
    /// Critical flag.
    pub critical: bool,
    /// Value rendered as text (hex when not understood).
    pub value: String,
}

/// Summarises a certificate given as PEM (`CERTIFICATE`) or DER.
pub fn inspect_certificate(input: &[u8]) -> Result<CertSummary> {
    let owned;
    let der: &[u8] = if input.trim_ascii_start().starts_with(b"-----BEGIN") {
        let block = pem::parse(input).map_err(|e| Error::CertMalformed { reason: format!("PEM: {e}") })?;
        if block.tag() != "CERTIFICATE" {
            return Err(Error::CertMalformed {
                reason: format!("PEM block is {:?}, not CERTIFICATE", block.tag()),
            });
        }
        owned = block.into_contents();
        &owned
    } else {
        input
    };
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| Error::CertMalformed { reason: e.to_string() })?;
    if !rest.is_empty() {
        return Err(Error::CertMalformed { reason: format!("{} bytes of trailing data", rest.len()) });
    }
    let time = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_else(|_| t.to_string());
    Ok(CertSummary {
        version: cert.version().0 + 1,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: serial_hex(cert.raw_serial()),
        not_before: time(cert.validity().not_before.to_datetime()),
        not_after: time(cert.validity().not_after.to_datetime()),
        key_algorithm: key_algorithm(&cert),
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
        is_ca: cert.is_ca(),
        extensions: cert.extensions().iter().map(extension).collect(),
        sha256_fingerprint: hex::encode(sha256(der)),
    })
}

fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_owned)
        .unwrap_or_else(|_| dotted(oid))
}

fn dotted(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    oid_to_string(oid.as_bytes()).unwrap_or_else(|| hex::encode(oid.as_bytes()))
}

fn key_algorithm(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        match spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()) {
            Some(curve) if curve == OID_EC_P256 => "EC P-256".to_owned(),
            Some(curve) => format!("EC {}", oid_name(&curve)),
            None => "EC (explicit parameters)".to_owned(),
        }
    } else if *alg == OID_SIG_ED25519 {
        "Ed25519".to_owned()
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                let m = rsa.modulus;
                let skip = m.iter().take_while(|b| **b == 0).count();
                let m = &m[skip..];
                let bits = m.first().map_or(0, |f| (m.len() - 1) * 8 + (8 - f.leading_zeros() as usize));
                format!("RSA-{bits}")
            }
            _ => "RSA (malformed)".to_owned(),
        }
    } else {
        oid_name(alg)
    }
}

fn colon_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect::<Vec<_>>().join(":")
}

fn extension(ext: &x509_parser::extensions::X509Extension<'_>) -> ExtensionSummary {
    let oid = dotted(&ext.oid);
    if ext.oid.as_bytes() == FAMILY_EXTENSION_OID_DER {
        let value = x509_parser::der_parser::der::parse_der_utf8string(ext.value)
            .ok()
            .and_then(|(_, o)| o.as_str().ok().map(str::to_owned))
            .unwrap_or_else(|| format!("malformed: {}", hex::encode(ext.value)));
        return ExtensionSummary { oid, name: "ironcladFamily".to_owned(), critical: ext.critical, value };
    }
    let value = match ext.parsed_extension() {
        ParsedExtension::BasicConstraints(bc) => match (bc.ca, bc.path_len_constraint) {
            (true, Some(n)) => format!("CA:TRUE, pathlen:{n}"),
            (true, None) => "CA:TRUE".to_owned(),
            (false, _) => "CA:FALSE".to_owned(),
        },
        ParsedExtension::KeyUsage(ku) => {
            let names = [
                (ku.digital_signature(), "digitalSignature"),
                (ku.non_repudiation(), "nonRepudiation"),
                (ku.key_encipherment(), "keyEncipherment"),
                (ku.data_encipherment(), "dataEncipherment"),
                (ku.key_agreement(), "keyAgreement"),
                (ku.key_cert_sign(), "keyCertSign"),
                (ku.crl_sign(), "cRLSign"),
                (ku.encipher_only(), "encipherOnly"),
                (ku.decipher_only(), "decipherOnly"),
            ];
            names.iter().filter(|(set, _)| *set).map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
        }
        ParsedExtension::ExtendedKeyUsage(eku) => {
            let mut names: Vec<String> = Vec::new();
            for (set, n) in [
                (eku.any, "anyExtendedKeyUsage"),
                (eku.server_auth, "serverAuth"),
                (eku.client_auth, "clientAuth"),
                (eku.code_signing, "codeSigning"),
                (eku.email_protection, "emailProtection"),
                (eku.time_stamping, "timeStamping"),
                (eku.ocsp_signing, "OCSPSigning"),
            ] {
                if set {
                    names.push(n.to_owned());
                }
            }
            names.extend(eku.other.iter().map(dotted));
            names.join(", ")
        }
        ParsedExtension::SubjectKeyIdentifier(id) => colon_hex(id.0),
        ParsedExtension::AuthorityKeyIdentifier(aki) => {
            aki.key_identifier.as_ref().map_or_else(|| "(no keyid)".to_owned(), |k| colon_hex(k.0))
        }
        ParsedExtension::SubjectAlternativeName(san) => san
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(s) => format!("DNS:{s}"),
                GeneralName::RFC822Name(s) => format!("email:{s}"),
                GeneralName::URI(s) => format!("URI:{s}"),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => hex::encode(ext.value),
    };
    ExtensionSummary { name: oid_name(&ext.oid), oid, critical: ext.critical, value }
}
