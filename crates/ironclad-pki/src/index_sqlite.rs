//! The SQLite issued-certificate index: the PKI directory's `index.sqlite`.
//!
//! This module is the crate's one I/O exception (see the crate docs). The connection runs in
//! WAL mode with `synchronous=NORMAL`; every write the API makes (a batch of certificates, a
//! revocation, a CRL number) switches to `FULL` for its own commit, so it is on disk when the
//! call returns, while a batch of 10 000 rows still costs one fsync.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ca::normalize_serial;
use crate::crl::RevocationReason;
use crate::error::{Error, Result};
use crate::index::{CertStatus, IndexEntry, IssuedIndex, RevokedEntry};
use crate::issue::IssuedRecord;
use crate::verify::RevocationStatus;

/// Schema version this build writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE certificates (
    id                INTEGER PRIMARY KEY,
    serial            TEXT    NOT NULL UNIQUE,
    device_id         TEXT    NOT NULL,
    family            TEXT    NOT NULL,
    fingerprint       TEXT    NOT NULL,
    not_after         INTEGER NOT NULL,
    csr_sha256        BLOB    NOT NULL UNIQUE,
    spki_sha256       BLOB    NOT NULL,
    issuer            TEXT    NOT NULL,
    issuer_key_id     BLOB    NOT NULL,
    status            INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),
    revocation_reason INTEGER,
    revoked_at        INTEGER,
    der               BLOB    NOT NULL
);
CREATE INDEX certificates_device_id ON certificates(device_id);
CREATE INDEX certificates_revoked ON certificates(issuer_key_id, serial) WHERE status = 1;
CREATE TABLE crl_numbers (
    issuer_key_id BLOB    PRIMARY KEY,
    last          INTEGER NOT NULL
) WITHOUT ROWID;
";

macro_rules! select_from_certificates {
    ($where:literal) => {
        concat!(
            "SELECT serial, device_id, family, fingerprint, not_after, csr_sha256, spki_sha256, ",
            "issuer, issuer_key_id, status, revocation_reason, revoked_at, der, id ",
            "FROM certificates WHERE ",
            $where
        )
    };
}
const BY_SERIAL: &str = select_from_certificates!("serial = ?1");
const BY_CSR: &str = select_from_certificates!("csr_sha256 = ?1");
const BY_DEVICE_ID: &str = select_from_certificates!("device_id = ?1");

/// An [`IssuedIndex`] in one SQLite file.
#[derive(Debug)]
pub struct SqliteIndex {
    conn: Connection,
}

impl SqliteIndex {
    /// Opens (creating if needed) the index at `path` and migrates it to [`SCHEMA_VERSION`].
    /// Refuses a file written by a newer build.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let conn = Connection::open(path).map_err(Error::index)?;
        Self::init(conn)
    }

    /// An index that lives in memory only (tests, dry runs).
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(Error::index)?;
        Self::init(conn)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(Error::index)?;
        // Changing the journal mode answers BUSY at once (no busy handler) while another
        // process opens the same new index: retry for as long as the busy timeout.
        let started = std::time::Instant::now();
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < std::time::Duration::from_secs(10) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => break other.map_err(Error::index)?,
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(Error::index)?;
        let version: i64 =
            conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(Error::index)?;
        match version {
            0 => {
                let tx =
                    conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(Error::index)?;
                // Another process may have created the schema while this one waited for the
                // lock: look again inside the transaction.
                let now: i64 =
                    tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(Error::index)?;
                if now == 0 {
                    tx.execute_batch(SCHEMA_V1).map_err(Error::index)?;
                    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(Error::index)?;
                }
                tx.commit().map_err(Error::index)?;
            }
            SCHEMA_VERSION => {}
            newer => {
                return Err(Error::Index(
                    format!(
                        "index schema version {newer} is newer than this build supports ({SCHEMA_VERSION})"
                    )
                    .into(),
                ));
            }
        }
        Ok(SqliteIndex { conn })
    }

    /// Runs `f` in an immediate transaction committed with `synchronous=FULL`.
    fn durable<T>(&mut self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        self.conn.pragma_update(None, "synchronous", "FULL").map_err(Error::index)?;
        let result = (|| {
            let tx =
                self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(Error::index)?;
            let value = f(&tx)?;
            tx.commit().map_err(Error::index)?;
            Ok(value)
        })();
        let reset = self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(Error::index);
        let value = result?;
        reset?;
        Ok(value)
    }

    fn query_one(&self, sql: &str, key: &dyn rusqlite::ToSql) -> Result<Option<IndexEntry>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(Error::index)?;
        let row = stmt.query_row([key], row_to_entry).optional().map_err(Error::index)?;
        row.transpose()
    }
}

fn corrupt(what: &str) -> Error {
    Error::Index(format!("corrupt index row: {what}").into())
}

fn hash32(v: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| corrupt(what))
}

fn status_from(status: i64, reason: Option<i64>, at: Option<i64>) -> Result<CertStatus> {
    match (status, reason, at) {
        (0, _, _) => Ok(CertStatus::Valid),
        (1, Some(reason), Some(at)) => Ok(CertStatus::Revoked {
            reason: u8::try_from(reason)
                .ok()
                .and_then(RevocationReason::from_code)
                .ok_or_else(|| corrupt("revocation reason"))?,
            at: OffsetDateTime::from_unix_timestamp(at).map_err(|_| corrupt("revoked_at"))?,
        }),
        _ => Err(corrupt("status")),
    }
}

/// Maps a row; the inner `Result` carries our own decoding errors out of rusqlite's closure.
fn row_to_entry(row: &Row<'_>) -> rusqlite::Result<Result<IndexEntry>> {
    let serial: String = row.get(0)?;
    let device_id: String = row.get(1)?;
    let family: String = row.get(2)?;
    let fingerprint: String = row.get(3)?;
    let not_after: i64 = row.get(4)?;
    let csr: Vec<u8> = row.get(5)?;
    let spki: Vec<u8> = row.get(6)?;
    let issuer: String = row.get(7)?;
    let issuer_key_id: Vec<u8> = row.get(8)?;
    let status: i64 = row.get(9)?;
    let reason: Option<i64> = row.get(10)?;
    let revoked_at: Option<i64> = row.get(11)?;
    let der: Vec<u8> = row.get(12)?;
    Ok((|| {
        let not_after = OffsetDateTime::from_unix_timestamp(not_after)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .ok_or_else(|| corrupt("not_after"))?;
        Ok(IndexEntry {
            record: IssuedRecord {
                serial,
                device_id,
                family,
                sha256_fingerprint: fingerprint,
                not_after,
                der,
            },
            csr_sha256: hash32(csr, "csr_sha256")?,
            spki_sha256: hash32(spki, "spki_sha256")?,
            issuer,
            issuer_key_id,
            status: status_from(status, reason, revoked_at)?,
        })
    })())
}

fn not_after_unix(rfc3339: &str) -> Result<i64> {
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| Error::Index("notAfter is not RFC 3339".into()))
}

impl IssuedIndex for SqliteIndex {
    fn insert_batch(&mut self, entries: &[IndexEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.durable(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO certificates (serial, device_id, family, fingerprint, not_after, \
                     csr_sha256, spki_sha256, issuer, issuer_key_id, status, der) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
                )
                .map_err(Error::index)?;
            // Every row of a batch usually shares notAfter; parse it once per distinct value.
            let mut last: Option<(&str, i64)> = None;
            for e in entries {
                if e.status != CertStatus::Valid {
                    return Err(Error::Index("cannot insert an already revoked entry".into()));
                }
                let na = match last {
                    Some((text, v)) if text == e.record.not_after => v,
                    _ => {
                        let v = not_after_unix(&e.record.not_after)?;
                        last = Some((&e.record.not_after, v));
                        v
                    }
                };
                stmt.execute(params![
                    e.record.serial,
                    e.record.device_id,
                    e.record.family,
                    e.record.sha256_fingerprint,
                    na,
                    &e.csr_sha256[..],
                    &e.spki_sha256[..],
                    e.issuer,
                    e.issuer_key_id,
                    e.record.der,
                ])
                .map_err(Error::index)?;
            }
            Ok(())
        })
    }

    fn by_serial(&self, serial: &str) -> Result<Option<IndexEntry>> {
        let serial = normalize_serial(serial)?;
        self.query_one(BY_SERIAL, &serial)
    }

    fn by_device_id(&self, device_id: &str) -> Result<Vec<IndexEntry>> {
        // No ORDER BY: on this hot path (every issuance) SQLite's sorter setup costs several
        // times the lookup itself; the few rows of one device are sorted here instead.
        let mut stmt = self.conn.prepare_cached(BY_DEVICE_ID).map_err(Error::index)?;
        let rows = stmt
            .query_map([device_id], |r| Ok((r.get::<_, i64>(13)?, row_to_entry(r)?)))
            .map_err(Error::index)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, entry) = row.map_err(Error::index)?;
            out.push((id, entry?));
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out.into_iter().map(|(_, e)| e).collect())
    }

    fn by_csr_sha256(&self, csr_sha256: &[u8; 32]) -> Result<Option<IndexEntry>> {
        self.query_one(BY_CSR, &&csr_sha256[..])
    }

    fn revoke(&mut self, serial: &str, reason: RevocationReason, at: OffsetDateTime) -> Result<IndexEntry> {
        let serial = normalize_serial(serial)?;
        let at = crate::profile::whole_seconds(at).unix_timestamp();
        self.durable(|tx| {
            let status: Option<i64> = tx
                .query_row("SELECT status FROM certificates WHERE serial = ?1", [&serial], |r| r.get(0))
                .optional()
                .map_err(Error::index)?;
            match status {
                None => Err(Error::UnknownSerial { serial: serial.clone() }),
                Some(1) => Err(Error::AlreadyRevoked { serial: serial.clone() }),
                Some(_) => {
                    tx.execute(
                        "UPDATE certificates SET status = 1, revocation_reason = ?2, \
                         revoked_at = ?3 WHERE serial = ?1",
                        params![serial, i64::from(reason.code()), at],
                    )
                    .map_err(Error::index)?;
                    Ok(())
                }
            }
        })?;
        self.by_serial(&serial)?.ok_or_else(|| Error::UnknownSerial { serial })
    }

    fn revoked_by_issuer(&self, issuer_key_id: &[u8]) -> Result<Vec<RevokedEntry>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT serial, revocation_reason, revoked_at FROM certificates \
                 WHERE issuer_key_id = ?1 AND status = 1 ORDER BY serial",
            )
            .map_err(Error::index)?;
        let rows = stmt
            .query_map([issuer_key_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?))
            })
            .map_err(Error::index)?;
        let mut out = Vec::new();
        for row in rows {
            let (serial, reason, at) = row.map_err(Error::index)?;
            if let CertStatus::Revoked { reason, at } = status_from(1, reason, at)? {
                out.push(RevokedEntry { serial, reason, at });
            }
        }
        Ok(out)
    }

    fn next_crl_number(&mut self, issuer_key_id: &[u8]) -> Result<u64> {
        self.durable(|tx| {
            tx.execute(
                "INSERT INTO crl_numbers (issuer_key_id, last) VALUES (?1, 1) \
                 ON CONFLICT(issuer_key_id) DO UPDATE SET last = last + 1",
                [issuer_key_id],
            )
            .map_err(Error::index)?;
            let n: i64 = tx
                .query_row("SELECT last FROM crl_numbers WHERE issuer_key_id = ?1", [issuer_key_id], |r| {
                    r.get(0)
                })
                .map_err(Error::index)?;
            u64::try_from(n).map_err(|_| corrupt("crl number"))
        })
    }

    fn count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM certificates", [], |r| r.get(0))
            .map_err(Error::index)?;
        u64::try_from(n).map_err(|_| corrupt("count"))
    }

    fn revocation_status(&self, serial: &str) -> Result<RevocationStatus> {
        let serial = normalize_serial(serial)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT status, revocation_reason, revoked_at FROM certificates WHERE serial = ?1",
            )
            .map_err(Error::index)?;
        let row = stmt
            .query_row([&serial], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?))
            })
            .optional()
            .map_err(Error::index)?;
        Ok(match row {
            None => RevocationStatus::Unknown,
            Some((s, r, a)) => match status_from(s, r, a)? {
                CertStatus::Valid => RevocationStatus::Good,
                CertStatus::Revoked { reason, at } => RevocationStatus::Revoked { reason, at },
            },
        })
    }
}
