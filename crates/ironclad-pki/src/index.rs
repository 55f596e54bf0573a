//! The issued-certificate index: every certificate the CA signed, its request and key hashes,
//! and its revocation status. It is what makes issuance idempotent, keeps device IDs unique,
//! answers revocation checks and feeds the CRL.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::ca::normalize_serial;
use crate::crl::RevocationReason;
use crate::error::{Error, Result};
use crate::issue::IssuedRecord;
use crate::verify::RevocationStatus;

/// Revocation status of a recorded certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked (it may still have expired; expiry is read from the certificate).
    Valid,
    /// Revoked.
    Revoked {
        /// Why.
        reason: RevocationReason,
        /// When the CA processed the revocation.
        at: OffsetDateTime,
    },
}

/// One row of the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// What the operator sees, including the certificate DER.
    pub record: IssuedRecord,
    /// SHA-256 of the request DER (unique: one certificate per request).
    pub csr_sha256: [u8; 32],
    /// SHA-256 of the device's SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
    /// Issuer name, as text.
    pub issuer: String,
    /// Issuer's subject key identifier (= the certificate's AKI); selects the CRL it goes on.
    pub issuer_key_id: Vec<u8>,
    /// Revocation status.
    pub status: CertStatus,
}

/// A revoked certificate as listed on a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial, lower-case hex.
    pub serial: String,
    /// Why.
    pub reason: RevocationReason,
    /// When.
    pub at: OffsetDateTime,
}

/// Storage for issued certificates. Implementations must make [`insert_batch`] atomic (all
/// rows or none) and durable when it returns.
///
/// Serials are accepted in any hex spelling ([`normalize_serial`]) and reported in lower-case
/// hex. `Send` is required because batch issuance writes one chunk while the next is verified.
///
/// [`insert_batch`]: IssuedIndex::insert_batch
pub trait IssuedIndex: Send {
    /// Records certificates atomically. Fails, inserting nothing, if a serial or request hash
    /// is already present.
    fn insert_batch(&mut self, entries: &[IndexEntry]) -> Result<()>;
    /// Looks up one certificate by serial.
    fn by_serial(&self, serial: &str) -> Result<Option<IndexEntry>>;
    /// Every certificate ever issued for `device_id`, oldest first.
    fn by_device_id(&self, device_id: &str) -> Result<Vec<IndexEntry>>;
    /// The certificate issued for a request, by the request's SHA-256.
    fn by_csr_sha256(&self, csr_sha256: &[u8; 32]) -> Result<Option<IndexEntry>>;
    /// Marks a certificate revoked. Fails with [`Error::UnknownSerial`] or
    /// [`Error::AlreadyRevoked`]; returns the updated entry.
    fn revoke(&mut self, serial: &str, reason: RevocationReason, at: OffsetDateTime) -> Result<IndexEntry>;
    /// Revoked certificates of one issuer (by its key identifier), for its CRL, by serial.
    fn revoked_by_issuer(&self, issuer_key_id: &[u8]) -> Result<Vec<RevokedEntry>>;
    /// Returns and consumes the next CRL number for an issuer (1, 2, ...): CRL numbers must
    /// increase monotonically per issuer (RFC 5280 §5.2.3).
    fn next_crl_number(&mut self, issuer_key_id: &[u8]) -> Result<u64>;
    /// Number of recorded certificates.
    fn count(&self) -> Result<u64>;
    /// Revocation status by serial. The default reads the whole entry; back-ends override it
    /// with a cheaper query because chain verification calls it on every authentication.
    fn revocation_status(&self, serial: &str) -> Result<RevocationStatus> {
        Ok(match self.by_serial(serial)? {
            None => RevocationStatus::Unknown,
            Some(e) => match e.status {
                CertStatus::Valid => RevocationStatus::Good,
                CertStatus::Revoked { reason, at } => RevocationStatus::Revoked { reason, at },
            },
        })
    }
}

/// An in-memory index, for tests, the demo and short-lived tools.
#[derive(Debug, Default, Clone)]
pub struct MemoryIndex {
    rows: Vec<IndexEntry>,
    by_serial: HashMap<String, usize>,
    by_csr: HashMap<[u8; 32], usize>,
    by_device: HashMap<String, Vec<usize>>,
    crl_numbers: HashMap<Vec<u8>, u64>,
}

impl MemoryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IssuedIndex for MemoryIndex {
    fn insert_batch(&mut self, entries: &[IndexEntry]) -> Result<()> {
        let mut new_serials = std::collections::HashSet::new();
        let mut new_csrs = std::collections::HashSet::new();
        for e in entries {
            if self.by_serial.contains_key(&e.record.serial) || !new_serials.insert(e.record.serial.as_str())
            {
                return Err(Error::Index(format!("duplicate serial {}", e.record.serial).into()));
            }
            if self.by_csr.contains_key(&e.csr_sha256) || !new_csrs.insert(e.csr_sha256) {
                return Err(Error::Index("duplicate request hash".into()));
            }
        }
        for e in entries {
            let i = self.rows.len();
            self.by_serial.insert(e.record.serial.clone(), i);
            self.by_csr.insert(e.csr_sha256, i);
            self.by_device.entry(e.record.device_id.clone()).or_default().push(i);
            self.rows.push(e.clone());
        }
        Ok(())
    }

    fn by_serial(&self, serial: &str) -> Result<Option<IndexEntry>> {
        let serial = normalize_serial(serial)?;
        Ok(self.by_serial.get(&serial).map(|i| self.rows[*i].clone()))
    }

    fn by_device_id(&self, device_id: &str) -> Result<Vec<IndexEntry>> {
        Ok(self
            .by_device
            .get(device_id)
            .map(|v| v.iter().map(|i| self.rows[*i].clone()).collect())
            .unwrap_or_default())
    }

    fn by_csr_sha256(&self, csr_sha256: &[u8; 32]) -> Result<Option<IndexEntry>> {
        Ok(self.by_csr.get(csr_sha256).map(|i| self.rows[*i].clone()))
    }

    fn revoke(&mut self, serial: &str, reason: RevocationReason, at: OffsetDateTime) -> Result<IndexEntry> {
        let serial = normalize_serial(serial)?;
        let i =
            *self.by_serial.get(&serial).ok_or_else(|| Error::UnknownSerial { serial: serial.clone() })?;
        let row = &mut self.rows[i];
        if matches!(row.status, CertStatus::Revoked { .. }) {
            return Err(Error::AlreadyRevoked { serial });
        }
        row.status = CertStatus::Revoked { reason, at: crate::profile::whole_seconds(at) };
        Ok(row.clone())
    }

    fn revoked_by_issuer(&self, issuer_key_id: &[u8]) -> Result<Vec<RevokedEntry>> {
        let mut out: Vec<RevokedEntry> = self
            .rows
            .iter()
            .filter(|e| e.issuer_key_id == issuer_key_id)
            .filter_map(|e| match e.status {
                CertStatus::Revoked { reason, at } => {
                    Some(RevokedEntry { serial: e.record.serial.clone(), reason, at })
                }
                CertStatus::Valid => None,
            })
            .collect();
        out.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(out)
    }

    fn next_crl_number(&mut self, issuer_key_id: &[u8]) -> Result<u64> {
        let n = self.crl_numbers.entry(issuer_key_id.to_vec()).or_insert(0);
        *n += 1;
        Ok(*n)
    }

    fn count(&self) -> Result<u64> {
        Ok(self.rows.len() as u64)
    }
}
