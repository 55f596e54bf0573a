//! The embedded backend: one SQLite file in WAL mode, owned by one worker thread.
//!
//! rusqlite is synchronous, so every call is sent as a closure to a dedicated thread that owns
//! the connection, and its result comes back over a oneshot channel: the async runtime never
//! blocks on SQLite. Writes are serialised by that thread, which is also what SQLite would do.
//!
//! Group commit: the worker takes every job waiting in its queue (up to [`MAX_BATCH`]) and
//! runs them in one transaction; their results are handed back only after the commit, so an
//! answered write is a committed write. Under load this turns a commit per write (each one
//! rewriting the same B-tree pages into the WAL) into a commit per batch. A job that needs
//! several statements to be atomic uses a savepoint, which nests inside the batch.
//!
//! `synchronous=NORMAL` in WAL mode: a committed transaction survives a crash of the process
//! (the WAL is in the OS cache); only a power loss can drop the last commits.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, params};

use super::types::{status_str, to32};
use super::{
    Admission, ApiToken, AuditEntry, AuditRecord, ChallengeOp, ChallengeTake, DeviceRecord, Enrollment,
    ImportCounts, MatchKey, Outcome, Revocation, Store, StoreFuture, StoredChallenge, StoredSession,
    StoredState,
};
use crate::error::{Error, Result};
use crate::store::{CrlKey, EnrollmentStatus};

mod crl;
mod messages;
mod ota;
mod rows;
mod vault;

use rows::*;

/// A job runs on the worker's connection and returns how to deliver its result, called once
/// its batch is committed (`None`) or failed to commit (`Some(why)`).
type Job = Box<dyn FnOnce(&mut Connection) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&Error>) + Send>;

/// Most jobs in one group-committed transaction.
const MAX_BATCH: usize = 256;

/// Migrations, in order; `PRAGMA user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("001_initial.sql"),
    include_str!("002_vault_and_owners.sql"),
    include_str!("003_crls.sql"),
    include_str!("004_commands_logs.sql"),
    include_str!("005_ota.sql"),
];

const ENROLLMENT_COLUMNS: &str =
    "id, match_key, status, device_id, der, verification_code, note, created_at, updated_at";
/// The same, without the certificate (`der` comes back `None`): what authentication reads.
const ADMISSION_COLUMNS: &str =
    "id, match_key, status, device_id, NULL, verification_code, note, created_at, updated_at";

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
        // Reads of a large registry (a million enrollments) through a memory map instead of
        // read() into the page cache, and checkpoints every 16 MiB of WAL instead of 4: hot
        // pages are written back once per checkpoint, so fewer checkpoints write (and fsync)
        // less.
        conn.pragma_update(None, "mmap_size", 1_i64 << 30).map_err(Error::sqlite)?;
        conn.pragma_update(None, "wal_autocheckpoint", 4_000).map_err(Error::sqlite)?;
        migrate(&mut conn)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ironclad-sqlite".into())
            .spawn(move || worker(conn, &rx))
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
            let result = f(conn);
            Box::new(move |failed: Option<&Error>| {
                let _ = tx.send(match failed {
                    None => result,
                    Some(why) => Err(Error::sqlite(format!("commit failed: {why}"))),
                });
            })
        }));
        Box::pin(async move {
            sent.map_err(|_| Error::sqlite("worker thread stopped"))?;
            rx.await.map_err(|_| Error::sqlite("worker thread stopped"))?
        })
    }
}

/// The worker thread: runs queued jobs in group-committed batches until the store is dropped.
fn worker(mut conn: Connection, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() == 1 || conn.execute_batch("BEGIN IMMEDIATE").is_err() {
            // One job (or no transaction to be had): each statement commits on its own.
            for job in batch {
                job(&mut conn)(None);
            }
            continue;
        }
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        let mut in_transaction = true;
        for job in batch {
            let reply = job(&mut conn);
            if !in_transaction {
                reply(None);
            } else if conn.is_autocommit() {
                // An error (I/O, disk full) rolled the whole transaction back: nothing of the
                // batch so far is written. The jobs after this one commit one by one.
                in_transaction = false;
                let why = Error::sqlite("the transaction was rolled back by an error");
                for r in replies.drain(..).chain(std::iter::once(reply)) {
                    r(Some(&why));
                }
            } else {
                replies.push(reply);
            }
        }
        if !in_transaction {
            continue;
        }
        match conn.execute_batch("COMMIT") {
            Ok(()) => replies.into_iter().for_each(|r| r(None)),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                let why = Error::sqlite(e);
                replies.into_iter().for_each(|r| r(Some(&why)));
            }
        }
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

    fn admission<'a>(
        &'a self,
        serial: &'a str,
        crl_keys: &'a [CrlKey],
        keys: &'a [MatchKey],
        op: ChallengeOp<'a>,
    ) -> StoreFuture<'a, Admission> {
        enum Op {
            None,
            Insert(StoredChallenge),
            Consume(String, i64),
        }
        let serial = serial.to_owned();
        let crl_keys: Vec<String> = crl_keys.iter().map(ToString::to_string).collect();
        let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
        let op = match op {
            ChallengeOp::None => Op::None,
            ChallengeOp::Insert(c) => Op::Insert(c.clone()),
            ChallengeOp::Consume { id, at } => Op::Consume(id.to_owned(), at),
        };
        self.call(move |c| {
            let revocation = crl::revocation_for(c, &serial, &crl_keys)?;
            let enrollments = if keys.is_empty() {
                Vec::new()
            } else {
                let marks = vec!["?"; keys.len()].join(", ");
                let sql = format!("SELECT {ADMISSION_COLUMNS} FROM enrollments WHERE match_key IN ({marks})");
                query_enrollments(c, &sql, &keys)?
            };
            let challenge = match op {
                Op::None => None,
                Op::Insert(ch) => {
                    insert_challenge_row(c, &ch)?;
                    None
                }
                Op::Consume(id, at) => Some(consume_challenge_row(c, &id, at)?),
            };
            Ok(Admission { revocation, enrollments, challenge })
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
            let tx = c.savepoint().map_err(Error::sqlite)?;
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
        self.call(move |c| record_device_row(c, &d))
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
        self.call(move |c| revocation_of(c, &serial))
    }

    fn insert_challenge<'a>(&'a self, challenge: &'a StoredChallenge) -> StoreFuture<'a, ()> {
        let ch = challenge.clone();
        self.call(move |c| insert_challenge_row(c, &ch))
    }

    fn consume_challenge<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, ChallengeTake> {
        let id = id.to_owned();
        self.call(move |c| consume_challenge_row(c, &id, at))
    }

    fn insert_session<'a>(&'a self, session: &'a StoredSession) -> StoreFuture<'a, ()> {
        let s = session.clone();
        self.call(move |c| insert_session_row(c, &s))
    }

    fn open_session<'a>(
        &'a self,
        session: &'a StoredSession,
        device: &'a DeviceRecord,
        audit: &'a AuditRecord,
    ) -> StoreFuture<'a, ()> {
        let (s, d, a) = (session.clone(), device.clone(), audit.clone());
        self.call(move |c| {
            let sp = c.savepoint().map_err(Error::sqlite)?;
            insert_session_row(&sp, &s)?;
            record_device_row(&sp, &d)?;
            append_audit_row(&sp, &a)?;
            sp.commit().map_err(Error::sqlite)
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
        self.call(move |c| append_audit_row(c, &r))
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

fn revocation_of(c: &Connection, serial: &str) -> Result<Option<Revocation>> {
    c.prepare_cached("SELECT serial, reason, revoked_at FROM revocations WHERE serial = ?1")
        .and_then(|mut s| {
            s.query_row([serial], |r| {
                Ok(Revocation { serial: r.get(0)?, reason: r.get(1)?, revoked_at: r.get(2)? })
            })
            .optional()
        })
        .map_err(Error::sqlite)
}

fn insert_session_row(c: &Connection, s: &StoredSession) -> Result<()> {
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
}

fn record_device_row(c: &Connection, d: &DeviceRecord) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO devices (device_id, cert_sha256, serial, enrollment_id, first_seen, last_seen, \
         auth_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1) ON CONFLICT(device_id) DO UPDATE SET \
         cert_sha256 = excluded.cert_sha256, serial = excluded.serial, \
         enrollment_id = excluded.enrollment_id, last_seen = excluded.last_seen, \
         auth_count = devices.auth_count + 1",
    )
    .and_then(|mut s| {
        s.execute(params![d.device_id, d.cert_sha256, d.serial, d.enrollment_id, d.first_seen, d.last_seen])
    })
    .map_err(Error::sqlite)?;
    Ok(())
}

fn append_audit_row(c: &Connection, r: &AuditRecord) -> Result<()> {
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
}

fn insert_challenge_row(c: &Connection, ch: &StoredChallenge) -> Result<()> {
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
}

fn consume_challenge_row(c: &Connection, id: &str, at: i64) -> Result<ChallengeTake> {
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
}
