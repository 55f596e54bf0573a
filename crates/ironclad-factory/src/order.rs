//! Production orders: the OEM's signed authorisation to make at most N devices of a product
//! on one line, within a time window. The station refuses to issue without a verified order.
//!
//! Wire form (JSON): `{"order": {...}, "algorithm": "...", "signer_spki": "<hex DER>",
//! "signature": "<hex>"}`; the signature covers the canonical JSON of `order` (sorted keys,
//! no whitespace), made by an OEM key held in a secure element.

use rcgen::SigningKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

/// What the OEM authorises.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductionOrder {
    /// Unique order id, e.g. `PO-2026-0042`.
    pub id: String,
    /// Product / family the devices belong to.
    pub product: String,
    /// SHA-256 (hex) of the line CA certificate allowed to issue under this order.
    pub line_ca_sha256: String,
    /// Maximum number of devices.
    pub max_count: u64,
    /// Start of the window, RFC 3339.
    pub not_before: String,
    /// End of the window, RFC 3339.
    pub not_after: String,
}

impl ProductionOrder {
    fn canonical(&self) -> Result<Vec<u8>> {
        // serde_json::Value maps are sorted, so this is a canonical form.
        let value = serde_json::to_value(self).map_err(|e| Error::OrderMalformed(e.to_string()))?;
        serde_json::to_vec(&value).map_err(|e| Error::OrderMalformed(e.to_string()))
    }

    fn window(&self) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let parse = |t: &str| {
            OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|_| Error::OrderMalformed(format!("time {t:?} is not RFC 3339")))
        };
        Ok((parse(&self.not_before)?, parse(&self.not_after)?))
    }
}

/// An order with its signature, as exchanged between the OEM and the station.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOrder {
    /// The authorisation.
    pub order: ProductionOrder,
    /// `ecdsa-p256-sha256` or `ed25519`.
    pub algorithm: String,
    /// The signer's SubjectPublicKeyInfo, hex DER.
    pub signer_spki: String,
    /// Signature over the canonical order, hex (DER for ECDSA).
    pub signature: String,
}

impl SignedOrder {
    /// Signs an order with an OEM key (a secure-element `KeyHandle` in practice).
    pub fn sign(order: ProductionOrder, signer: &dyn SigningKey) -> Result<Self> {
        if order.max_count == 0 {
            return Err(Error::OrderMalformed("max_count must be at least 1".into()));
        }
        let (from, to) = order.window()?;
        if to <= from {
            return Err(Error::OrderMalformed("not_after must be later than not_before".into()));
        }
        let algorithm =
            if signer.algorithm() == &rcgen::PKCS_ED25519 { "ed25519" } else { "ecdsa-p256-sha256" };
        let signature = signer.sign(&order.canonical()?).map_err(|e| Error::OrderMalformed(e.to_string()))?;
        Ok(SignedOrder {
            order,
            algorithm: algorithm.into(),
            signer_spki: hex::encode(signer.subject_public_key_info()),
            signature: hex::encode(signature),
        })
    }

    /// Parses the JSON form; the result still has to be verified.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::OrderMalformed(e.to_string()))
    }

    /// JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks signature, signer, time window and line; only a `VerifiedOrder` can be used.
    pub fn verify(
        self,
        trusted_signers: &[&[u8]],
        line_ca_sha256: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedOrder> {
        let id = self.order.id.clone();
        let spki = hex::decode(&self.signer_spki)
            .map_err(|_| Error::OrderMalformed("signer_spki is not hex".into()))?;
        if !trusted_signers.contains(&spki.as_slice()) {
            return Err(Error::OrderSignerUntrusted { id });
        }
        let signature =
            hex::decode(&self.signature).map_err(|_| Error::OrderSignatureInvalid { id: id.clone() })?;
        verify_signature(&spki, &self.algorithm, &self.order.canonical()?, &signature)
            .map_err(|_| Error::OrderSignatureInvalid { id: id.clone() })?;
        let (from, to) = self.order.window()?;
        if now < from || now >= to {
            return Err(Error::OrderOutsideWindow {
                id,
                not_before: self.order.not_before.clone(),
                not_after: self.order.not_after.clone(),
                now: now.format(&Rfc3339).unwrap_or_default(),
            });
        }
        if !self.order.line_ca_sha256.eq_ignore_ascii_case(line_ca_sha256) {
            return Err(Error::OrderWrongLine {
                id,
                expected: self.order.line_ca_sha256.clone(),
                actual: line_ca_sha256.to_owned(),
            });
        }
        Ok(VerifiedOrder { signed: self })
    }
}

/// An order whose signature, signer, window and line were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedOrder {
    signed: SignedOrder,
}

impl VerifiedOrder {
    /// The authorisation.
    pub fn order(&self) -> &ProductionOrder {
        &self.signed.order
    }

    /// SHA-256 of the signed document's canonical order plus signature: identifies exactly
    /// this authorisation in the ledger.
    pub fn digest(&self) -> String {
        let mut data = self.signed.order.canonical().unwrap_or_default();
        data.extend_from_slice(self.signed.signature.as_bytes());
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data))
    }
}

fn verify_signature(
    spki: &[u8],
    algorithm: &str,
    message: &[u8],
    signature: &[u8],
) -> std::result::Result<(), ()> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey};
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).map_err(|_| ())?;
    let key = info.subject_public_key.data.as_ref();
    match algorithm {
        "ed25519" => UnparsedPublicKey::new(&ED25519, key).verify(message, signature).map_err(|_| ()),
        "ecdsa-p256-sha256" => {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key).verify(message, signature).map_err(|_| ())
        }
        _ => Err(()),
    }
}
