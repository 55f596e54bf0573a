//! Revocation reasons and CRLs.
//!
//! The index is the source of truth for revocation (verification checks it by serial); CRLs
//! are published for outsiders (OpenSSL, other verifiers), signed by the issuing CA.

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde::Serialize;
use time::OffsetDateTime;

use crate::ca::CaIssuer;
use crate::error::{Error, Result};
use crate::index::{IssuedIndex, RevokedEntry};
use crate::profile::whole_seconds;

/// Why a certificate was revoked (RFC 5280 §5.3.1 reason codes).
///
/// `removeFromCRL` (8) is not offered: it only exists for delta CRLs, which are not issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum RevocationReason {
    /// 0; written to CRLs without a reason-code extension, as RFC 5280 recommends.
    Unspecified,
    /// 1: the device key leaked or the device was cloned.
    KeyCompromise,
    /// 2: the issuing CA's key leaked.
    CaCompromise,
    /// 3: the device changed owner or operator.
    AffiliationChanged,
    /// 4: replaced by a newer certificate (re-keying).
    Superseded,
    /// 5: the device was decommissioned.
    CessationOfOperation,
    /// 6: temporarily suspended.
    CertificateHold,
    /// 9: the device lost a privilege it was certified for.
    PrivilegeWithdrawn,
    /// 10: attribute authority compromise.
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, for help texts and exhaustive tests.
    pub const ALL: [RevocationReason; 9] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The RFC 5280 CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    /// The reason with this code, if it is one we offer.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// RFC 5280's name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "aACompromise",
        }
    }

    fn to_rcgen(self) -> rcgen::RevocationReason {
        use rcgen::RevocationReason as R;
        match self {
            RevocationReason::Unspecified => R::Unspecified,
            RevocationReason::KeyCompromise => R::KeyCompromise,
            RevocationReason::CaCompromise => R::CaCompromise,
            RevocationReason::AffiliationChanged => R::AffiliationChanged,
            RevocationReason::Superseded => R::Superseded,
            RevocationReason::CessationOfOperation => R::CessationOfOperation,
            RevocationReason::CertificateHold => R::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => R::AaCompromise,
        }
    }
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses RFC 5280 names case-insensitively, ignoring `-` and `_` (`key-compromise`,
/// `keyCompromise`, `KEY_COMPROMISE`), or the numeric code.
impl std::str::FromStr for RevocationReason {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let folded: String =
            s.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect();
        if let Some(r) = folded.parse::<u8>().ok().and_then(Self::from_code) {
            return Ok(r);
        }
        Self::ALL.into_iter().find(|r| r.name().to_lowercase() == folded).ok_or(Error::NameInvalid {
            field: "revocation reason",
            reason: "not an RFC 5280 reason name or code",
        })
    }
}

/// A signed CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crl {
    der: Vec<u8>,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    revoked: usize,
}

impl Crl {
    /// The CRL, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The CRL, PEM (`X509 CRL`).
    pub fn pem(&self) -> String {
        pem::encode(&pem::Pem::new("X509 CRL", self.der.clone()))
    }

    /// Its CRL number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// thisUpdate.
    pub fn this_update(&self) -> OffsetDateTime {
        self.this_update
    }

    /// nextUpdate: verifiers treat the CRL as stale after this.
    pub fn next_update(&self) -> OffsetDateTime {
        self.next_update
    }

    /// How many certificates it lists.
    pub fn revoked_count(&self) -> usize {
        self.revoked
    }
}

/// Signs a CRL (v2, with AKI and CRL number) listing `revoked`.
pub fn sign_crl(
    issuer: &CaIssuer<'_>,
    crl_number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    revoked: &[RevokedEntry],
) -> Result<Crl> {
    let this_update = whole_seconds(this_update);
    let next_update = whole_seconds(next_update);
    if next_update <= this_update {
        return Err(Error::ValidityInvalid { reason: "CRL nextUpdate is not after thisUpdate" });
    }
    let mut revoked_certs = Vec::with_capacity(revoked.len());
    for r in revoked {
        let serial =
            hex::decode(&r.serial).map_err(|_| Error::SerialInvalid { reason: "not hexadecimal" })?;
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: whole_seconds(r.at),
            reason_code: Some(r.reason.to_rcgen()),
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(issuer.certificate().subject_key_id().to_vec()),
    };
    let crl = params.signed_by(issuer.rcgen()).map_err(Error::CertificateBuild)?;
    Ok(Crl { der: crl.der().to_vec(), number: crl_number, this_update, next_update, revoked: revoked.len() })
}

/// Builds the issuer's current CRL from the index: takes the next CRL number and lists every
/// certificate of this issuer that is marked revoked.
pub fn build_crl(
    issuer: &CaIssuer<'_>,
    index: &mut dyn IssuedIndex,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<Crl> {
    let key_id = issuer.certificate().subject_key_id();
    let revoked = index.revoked_by_issuer(key_id)?;
    let number = index.next_crl_number(key_id)?;
    sign_crl(issuer, number, this_update, next_update, &revoked)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_and_codes_round_trip() {
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
            assert_eq!(r.name().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(r.code().to_string().parse::<RevocationReason>().unwrap(), r);
        }
        assert_eq!("key-compromise".parse::<RevocationReason>().unwrap(), RevocationReason::KeyCompromise);
        assert_eq!(
            "CESSATION_OF_OPERATION".parse::<RevocationReason>().unwrap(),
            RevocationReason::CessationOfOperation
        );
        assert!("8".parse::<RevocationReason>().is_err());
        assert!("stolen".parse::<RevocationReason>().is_err());
        assert_eq!(RevocationReason::from_code(7), None);
    }
}
