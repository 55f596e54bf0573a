//! The embedded backend: one SQLite file in WAL mode, owned by one worker thread.
//!
//! rusqlite is synchronous, so every call is sent as a closure to a dedicated thread that owns
//! the connection, and its result comes back over a oneshot channel: the async runtime never
//! blocks on SQLite. Writes are serialised by that thread, which is also what SQLite would do.
//! `synchronous=NORMAL` in WAL mode: a committed transaction survives a crash of the process
//! (the WAL is in the OS cache); only a power loss can drop the last commits.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, params};

use super::types::{status_str, to32};
use super::{
    ApiToken, AuditEntry, AuditRecord, ChallengeTake, DeviceRecord, Enrollment, ImportCounts, MatchKey,
    Outcome, Revocation, Store, StoreFuture, StoredChallenge, StoredSession, StoredState,
};
use crate::error::{Error, Result};
use crate::store::EnrollmentStatus;

mod rows;

use rows::*;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Migrations, in order; `PRAGMA user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[include_str!("001_initial.sql")];

const ENROLLMENT_COLUMNS: &str =
    "id, match_key, status, device_id, der, verification_code, note, created_at, updated_at";

/// The SQLite store: one file, WAL, one worker thread.
#[derive(Debug)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it to
    /// [`SCHEMA_VERSION`]. Refuses a database from a newer version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).map_err(Error::sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(Error::sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(Error::sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(Error::sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(Error::sqlite)?;
        migrate(&mut conn)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ironclad-sqlite".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(Error::Io)?;
        Ok(SqliteStore { jobs, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call<T, F>(&self, f: F) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        }));
        Box::pin(async move {
            sent.map_err(|_| Error::sqlite("worker thread stopped"))?;
            rx.await.map_err(|_| Error::sqlite("worker thread stopped"))?
        })
    }
}

impl Store for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn insert_enrollment<'a>(&'a self, enrollment: &'a Enrollment) -> StoreFuture<'a, ()> {
        let e = enrollment.clone();
        self.call(move |c| {
            insert_enrollment_tx(c, &e).map_err(|err| conflict_or(err, format!("enrollment {}", e.key)))?;
            Ok(())
        })
    }

    fn enrollment<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Enrollment>> {
        let id = id.to_owned();
        self.call(move |c| {
            let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE id = ?1");
            Ok(query_enrollments(c, &sql, &[id])?.pop())
        })
    }

    fn enrollments_by_keys<'a>(&'a self, keys: &'a [MatchKey]) -> StoreFuture<'a, Vec<Enrollment>> {
        let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
        self.call(move |c| {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let marks = vec!["?"; keys.len()].join(", ");
            let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE match_key IN ({marks})");
            query_enrollments(c, &sql, &keys)
        })
    }

    fn list_enrollments(&self) -> StoreFuture<'_, Vec<Enrollment>> {
        self.call(move |c| {
            let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments ORDER BY created_at, id");
            query_enrollments(c, &sql, &[])
        })
    }

    fn trusted_group_cas(&self) -> StoreFuture<'_, Vec<Enrollment>> {
        self.call(move |c| {
            let sql = format!(
                "SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE kind = 'group' \
                 AND status IN ('enabled', 'disabled') ORDER BY created_at, id"
            );
            query_enrollments(c, &sql, &[])
        })
    }

    fn set_enrollment_status<'a>(
        &'a self,
        id: &'a str,
        status: EnrollmentStatus,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        let id = id.to_owned();
        self.call(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE enrollments SET status = ?2, updated_at = ?3, verification_code = \
                     CASE WHEN ?2 = 'pending_proof' THEN verification_code ELSE NULL END WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, status_str(status), at]))
                .map_err(Error::sqlite)?;
            Ok(n == 1)
        })
    }

    fn delete_enrollment<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        let id = id.to_owned();
        self.call(move |c| {
            let n = c.execute("DELETE FROM enrollments WHERE id = ?1", [id]).map_err(Error::sqlite)?;
            Ok(n == 1)
        })
    }

    fn import_enrollments<'a>(&'a self, enrollments: &'a [Enrollment]) -> StoreFuture<'a, ImportCounts> {
        let rows = enrollments.to_vec();
        self.call(move |c| {
            let tx = c.transaction().map_err(Error::sqlite)?;
            let mut counts = ImportCounts::default();
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO enrollments (id, match_key, kind, status, device_id, der, \
                         verification_code, note, created_at, updated_at) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(match_key) DO NOTHING",
                    )
                    .map_err(Error::sqlite)?;
                for e in &rows {
                    let n = stmt
                        .execute(params![
                            e.id,
                            e.key.to_string(),
                            kind_str(e),
                            status_str(e.status),
                            e.device_id,
                            e.der,
                            e.verification_code,
                            e.note,
                            e.created_at,
                            e.updated_at
                        ])
                        .map_err(|err| conflict_or(err, format!("enrollment id {}", e.id)))?;
                    if n == 1 {
                        counts.inserted += 1;
                    } else {
                        counts.existing += 1;
                    }
                }
            }
            tx.commit().map_err(Error::sqlite)?;
            Ok(counts)
        })
    }

    fn record_device<'a>(&'a self, device: &'a DeviceRecord) -> StoreFuture<'a, ()> {
        let d = device.clone();
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO devices (device_id, cert_sha256, serial, enrollment_id, first_seen, last_seen, \
                 auth_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1) ON CONFLICT(device_id) DO UPDATE SET \
                 cert_sha256 = excluded.cert_sha256, serial = excluded.serial, \
                 enrollment_id = excluded.enrollment_id, last_seen = excluded.last_seen, \
                 auth_count = devices.auth_count + 1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    d.device_id,
                    d.cert_sha256,
                    d.serial,
                    d.enrollment_id,
                    d.first_seen,
                    d.last_seen
                ])
            })
            .map_err(Error::sqlite)?;
            Ok(())
        })
    }

    fn device<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, Option<DeviceRecord>> {
        let id = device_id.to_owned();
        self.call(move |c| {
            c.prepare_cached(
                "SELECT device_id, cert_sha256, serial, enrollment_id, first_seen, last_seen, auth_count \
                 FROM devices WHERE device_id = ?1",
            )
            .and_then(|mut s| s.query_row([id], device_row).optional())
            .map_err(Error::sqlite)
        })
    }

    fn list_devices(&self, limit: u32) -> StoreFuture<'_, Vec<DeviceRecord>> {
        self.call(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT device_id, cert_sha256, serial, enrollment_id, first_seen, last_seen, \
                     auth_count FROM devices ORDER BY device_id LIMIT ?1",
                )
                .map_err(Error::sqlite)?;
            let rows = s.query_map([limit], device_row).map_err(Error::sqlite)?;
            rows.collect::<rusqlite::Result<_>>().map_err(Error::sqlite)
        })
    }

    fn revoke<'a>(&'a self, revocation: &'a Revocation) -> StoreFuture<'a, bool> {
        let r = revocation.clone();
        self.call(move |c| {
            let n = c
                .execute(
                    "INSERT INTO revocations (serial, reason, revoked_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(serial) DO NOTHING",
                    params![r.serial, r.reason, r.revoked_at],
                )
                .map_err(Error::sqlite)?;
            Ok(n == 1)
        })
    }

    fn revocation<'a>(&'a self, serial: &'a str) -> StoreFuture<'a, Option<Revocation>> {
        let serial = serial.to_owned();
        self.call(move |c| {
            c.prepare_cached("SELECT serial, reason, revoked_at FROM revocations WHERE serial = ?1")
                .and_then(|mut s| {
                    s.query_row([serial], |r| {
                        Ok(Revocation { serial: r.get(0)?, reason: r.get(1)?, revoked_at: r.get(2)? })
                    })
                    .optional()
                })
                .map_err(Error::sqlite)
        })
    }

    fn insert_challenge<'a>(&'a self, challenge: &'a StoredChallenge) -> StoreFuture<'a, ()> {
        let ch = challenge.clone();
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO challenges (id, challenge, cert_sha256, session_binding, issued_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    ch.id,
                    &ch.challenge[..],
                    &ch.cert_sha256[..],
                    &ch.session_binding[..],
                    ch.issued_at,
                    ch.expires_at
                ])
            })
            .map_err(|e| conflict_or(e, "challenge id"))?;
            Ok(())
        })
    }

    fn consume_challenge<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, ChallengeTake> {
        let id = id.to_owned();
        self.call(move |c| {
            let fresh = c
                .prepare_cached(
                    "UPDATE challenges SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL RETURNING \
                     id, challenge, cert_sha256, session_binding, issued_at, expires_at",
                )
                .and_then(|mut s| s.query_row(params![id, at], challenge_row).optional())
                .map_err(Error::sqlite)?;
            if let Some(t) = fresh {
                return Ok(ChallengeTake::Fresh(to_challenge(t)?));
            }
            let used = c
                .prepare_cached(
                    "SELECT id, challenge, cert_sha256, session_binding, issued_at, expires_at \
                     FROM challenges WHERE id = ?1",
                )
                .and_then(|mut s| s.query_row([id], challenge_row).optional())
                .map_err(Error::sqlite)?;
            Ok(match used {
                Some(t) => ChallengeTake::Used(to_challenge(t)?),
                None => ChallengeTake::Unknown,
            })
        })
    }

    fn insert_session<'a>(&'a self, session: &'a StoredSession) -> StoreFuture<'a, ()> {
        let s = session.clone();
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO sessions (token_sha256, device_id, cert_sha256, serial, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    &s.token_sha256[..],
                    s.device_id,
                    &s.cert_sha256[..],
                    s.serial,
                    s.created_at,
                    s.expires_at
                ])
            })
            .map_err(|e| conflict_or(e, "session token"))?;
            Ok(())
        })
    }

    fn session<'a>(&'a self, token_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<StoredSession>> {
        let h = *token_sha256;
        self.call(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT device_id, cert_sha256, serial, created_at, expires_at FROM sessions \
                     WHERE token_sha256 = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&h[..]], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(Error::sqlite)?;
            row.map(|(device_id, cert, serial, created_at, expires_at)| {
                Ok(StoredSession {
                    token_sha256: h,
                    device_id,
                    cert_sha256: to32(&cert, "certificate hash")?,
                    serial,
                    created_at,
                    expires_at,
                })
            })
            .transpose()
        })
    }

    fn purge_expired(&self, at: i64) -> StoreFuture<'_, u64> {
        self.call(move |c| {
            let a = c.execute("DELETE FROM challenges WHERE expires_at < ?1", [at]).map_err(Error::sqlite)?;
            let b = c.execute("DELETE FROM sessions WHERE expires_at < ?1", [at]).map_err(Error::sqlite)?;
            Ok((a + b) as u64)
        })
    }

    fn device_state<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, Option<StoredState>> {
        let id = device_id.to_owned();
        self.call(move |c| {
            c.prepare_cached("SELECT version, json, updated_at FROM device_state WHERE device_id = ?1")
                .and_then(|mut s| {
                    s.query_row([id], |r| {
                        Ok(StoredState {
                            version: r.get::<_, i64>(0)?.max(0) as u64,
                            json: r.get(1)?,
                            updated_at: r.get(2)?,
                        })
                    })
                    .optional()
                })
                .map_err(Error::sqlite)
        })
    }

    fn put_device_state<'a>(&'a self, device_id: &'a str, json: &'a str, at: i64) -> StoreFuture<'a, u64> {
        let (id, json) = (device_id.to_owned(), json.to_owned());
        self.call(move |c| {
            let v: i64 = c
                .prepare_cached(
                    "INSERT INTO device_state (device_id, version, json, updated_at) VALUES (?1, 1, ?2, ?3) \
                     ON CONFLICT(device_id) DO UPDATE SET version = device_state.version + 1, \
                     json = excluded.json, updated_at = excluded.updated_at RETURNING version",
                )
                .and_then(|mut s| s.query_row(params![id, json, at], |r| r.get(0)))
                .map_err(Error::sqlite)?;
            Ok(v.max(0) as u64)
        })
    }

    fn append_audit<'a>(&'a self, record: &'a AuditRecord) -> StoreFuture<'a, ()> {
        let r = record.clone();
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO audit (at, event, outcome, reason, detail, device_id, actor, peer) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.at,
                    r.event,
                    r.outcome.as_str(),
                    r.reason,
                    r.detail,
                    r.device_id,
                    r.actor,
                    r.peer
                ])
            })
            .map_err(Error::sqlite)?;
            Ok(())
        })
    }

    fn audit<'a>(&'a self, limit: u32, device_id: Option<&'a str>) -> StoreFuture<'a, Vec<AuditEntry>> {
        let device = device_id.map(str::to_owned);
        self.call(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT seq, at, event, outcome, reason, detail, device_id, actor, peer FROM audit \
                     WHERE (?1 IS NULL OR device_id = ?1) ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(Error::sqlite)?;
            let rows = s
                .query_map(params![device, limit], |r| {
                    Ok(AuditEntry {
                        seq: r.get(0)?,
                        record: AuditRecord {
                            at: r.get(1)?,
                            event: r.get(2)?,
                            outcome: Outcome::parse(&r.get::<_, String>(3)?),
                            reason: r.get(4)?,
                            detail: r.get(5)?,
                            device_id: r.get(6)?,
                            actor: r.get(7)?,
                            peer: r.get(8)?,
                        },
                    })
                })
                .map_err(Error::sqlite)?;
            rows.collect::<rusqlite::Result<_>>().map_err(Error::sqlite)
        })
    }

    fn insert_api_token<'a>(&'a self, token: &'a ApiToken) -> StoreFuture<'a, ()> {
        let t = token.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO api_tokens (name, role, token_sha256, created_at, disabled) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![t.name, t.role.as_str(), &t.token_sha256[..], t.created_at, t.disabled],
            )
            .map_err(|e| conflict_or(e, format!("API token {}", t.name)))?;
            Ok(())
        })
    }

    fn api_token_by_hash<'a>(&'a self, token_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<ApiToken>> {
        let h = *token_sha256;
        self.call(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT name, role, token_sha256, created_at, disabled FROM api_tokens WHERE token_sha256 = ?1",
                )
                .and_then(|mut s| s.query_row([&h[..]], token_row).optional())
                .map_err(Error::sqlite)?;
            row.map(to_token).transpose()
        })
    }

    fn list_api_tokens(&self) -> StoreFuture<'_, Vec<ApiToken>> {
        self.call(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT name, role, token_sha256, created_at, disabled FROM api_tokens ORDER BY name",
                )
                .map_err(Error::sqlite)?;
            let rows = s.query_map([], token_row).map_err(Error::sqlite)?;
            rows.map(|r| r.map_err(Error::sqlite).and_then(to_token)).collect()
        })
    }

    fn set_api_token_disabled<'a>(&'a self, name: &'a str, disabled: bool) -> StoreFuture<'a, bool> {
        let name = name.to_owned();
        self.call(move |c| {
            let n = c
                .execute("UPDATE api_tokens SET disabled = ?2 WHERE name = ?1", params![name, disabled])
                .map_err(Error::sqlite)?;
            Ok(n == 1)
        })
    }
}
