//! The scale-out backend: PostgreSQL through tokio-postgres, for several server processes on one
//! database. Every statement is atomic on its own (single-statement upserts, `UPDATE ...
//! RETURNING` for single-use challenges), so two processes never hand out the same challenge
//! twice and an enrollment disabled through one is refused by the other on its next lookup.
//!
//! A small fixed pool of connections is used round-robin; tokio-postgres pipelines concurrent
//! queries on one connection. Statements are prepared once per connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::types::{status_str, to32};
use super::{
    Admission, ApiToken, AuditEntry, AuditRecord, ChallengeOp, ChallengeTake, CrlKey, DeviceRecord,
    Enrollment, EnrollmentStatus, ImportCounts, MatchKey, Outcome, Revocation, Store, StoreFuture,
    StoredChallenge, StoredSession, StoredState,
};
use crate::error::{Error, Result};

mod crl;
mod messages;
mod notify;
mod ota;
mod rows;
mod vault;

use rows::*;

/// Migrations, in order; table `ironclad_schema` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("001_initial.sql"),
    include_str!("002_vault_and_owners.sql"),
    include_str!("003_crls.sql"),
    include_str!("004_commands_logs.sql"),
    include_str!("005_ota.sql"),
];

const ENROLLMENT_SELECT: &str = "SELECT id, match_key, status, device_id, der, verification_code, note, created_at, updated_at \
     FROM enrollments";
/// The same, without the certificate (`der` comes back `None`): what authentication reads.
const ADMISSION_SELECT: &str = "SELECT id, match_key, status, device_id, NULL::BYTEA, verification_code, note, created_at, \
     updated_at FROM enrollments";
const INSERT_ENROLLMENT: &str = "INSERT INTO enrollments (id, match_key, kind, status, device_id, der, \
     verification_code, note, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// Rows per statement of a bulk import.
const IMPORT_CHUNK: usize = 5_000;
/// An import of at least this many new rows refreshes the planner's statistics.
const ANALYZE_AFTER: u64 = 5_000;
const REVOCATION_SELECT: &str = "SELECT serial, reason, revoked_at FROM revocations WHERE serial = $1";
const CHALLENGE_COLUMNS: &str = "id, challenge, cert_sha256, session_binding, issued_at, expires_at";
const DEVICE_COLUMNS: &str =
    "device_id, cert_sha256, serial, enrollment_id, first_seen, last_seen, auth_count";

struct Conn {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

impl Conn {
    async fn open(url: &str) -> Result<Self> {
        Ok(Conn { client: connect_one(url).await?, statements: Mutex::new(HashMap::new()) })
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    url: String,
    /// Each slot is replaced by a fresh connection when its connection closed (database
    /// restart, network cut): the next request reconnects instead of failing forever.
    conns: Vec<Mutex<Arc<Conn>>>,
    next: AtomicUsize,
    /// For multi-statement transactions (bulk import), which need exclusive use of a client.
    tx_client: tokio::sync::Mutex<Client>,
    /// Ticks on trust-set announcements from any server process ([`notify`]).
    trust_rx: tokio::sync::watch::Receiver<u64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("connections", &self.conns.len()).finish_non_exhaustive()
    }
}

async fn connect_one(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(Error::postgres)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("postgres connection closed: {e}");
        }
    });
    Ok(client)
}

impl PostgresStore {
    /// Connects `pool_size` (at least 1) connections to `url` (a libpq-style connection string,
    /// e.g. `host=127.0.0.1 port=5432 user=ironclad dbname=ironclad`) and migrates the schema
    /// to [`SCHEMA_VERSION`] under an advisory lock, so concurrent servers migrate once.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self> {
        let mut tx_client = connect_one(url).await?;
        migrate(&mut tx_client).await?;
        let mut conns = Vec::new();
        for _ in 0..pool_size.max(1) {
            conns.push(Mutex::new(Arc::new(Conn::open(url).await?)));
        }
        Ok(PostgresStore {
            url: url.to_owned(),
            conns,
            next: AtomicUsize::new(0),
            tx_client: tokio::sync::Mutex::new(tx_client),
            trust_rx: notify::spawn_listener(url.to_owned()),
        })
    }

    async fn conn(&self) -> Result<Arc<Conn>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        let current = self.conns[i].lock().unwrap_or_else(|p| p.into_inner()).clone();
        if !current.client.is_closed() {
            return Ok(current);
        }
        tracing::warn!("postgres connection {i} closed; reconnecting");
        let fresh = Arc::new(Conn::open(&self.url).await?);
        *self.conns[i].lock().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        Ok(fresh)
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let conn = self.conn().await?;
        let stmt = prepared(&conn, sql).await?;
        conn.client.query(&stmt, params).await.map_err(Error::postgres)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let conn = self.conn().await?;
        let stmt = prepared(&conn, sql).await?;
        conn.client.execute(&stmt, params).await.map_err(Error::postgres)
    }
}

impl Store for PostgresStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    fn insert_enrollment<'a>(&'a self, e: &'a Enrollment) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let stmt = prepared(&conn, INSERT_ENROLLMENT).await?;
            conn.client
                .execute(
                    &stmt,
                    &[
                        &e.id,
                        &e.key.to_string(),
                        &kind_str(e),
                        &status_str(e.status),
                        &e.device_id,
                        &e.der,
                        &e.verification_code,
                        &e.note,
                        &e.created_at,
                        &e.updated_at,
                    ],
                )
                .await
                .map_err(|err| conflict_or(err, format!("enrollment {}", e.key)))?;
            Ok(())
        })
    }

    fn enrollment<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Enrollment>> {
        Box::pin(async move {
            let rows = self.query(&format!("{ENROLLMENT_SELECT} WHERE id = $1"), &[&id]).await?;
            rows.first().map(enrollment).transpose()
        })
    }

    fn enrollments_by_keys<'a>(&'a self, keys: &'a [MatchKey]) -> StoreFuture<'a, Vec<Enrollment>> {
        Box::pin(async move {
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            let rows =
                self.query(&format!("{ENROLLMENT_SELECT} WHERE match_key = ANY($1)"), &[&keys]).await?;
            rows.iter().map(enrollment).collect()
        })
    }

    fn admission<'a>(
        &'a self,
        serial: &'a str,
        crl_keys: &'a [CrlKey],
        keys: &'a [MatchKey],
        op: ChallengeOp<'a>,
    ) -> StoreFuture<'a, Admission> {
        Box::pin(async move {
            // The statements go out together on one connection (tokio-postgres pipelines
            // concurrent queries): one round trip.
            let conn = self.conn().await?;
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            let crl_keys: Vec<String> = crl_keys.iter().map(ToString::to_string).collect();
            let revocation = async {
                let stmt = prepared(&conn, crl::REVOCATION_FOR).await?;
                let rows = conn.client.query(&stmt, &[&serial, &crl_keys]).await.map_err(Error::postgres)?;
                Ok::<_, Error>(rows.first().map(crl::revocation_for_row))
            };
            let enrollments = async {
                let stmt = prepared(&conn, &format!("{ADMISSION_SELECT} WHERE match_key = ANY($1)")).await?;
                let rows = conn.client.query(&stmt, &[&keys]).await.map_err(Error::postgres)?;
                rows.iter().map(enrollment).collect::<Result<Vec<_>>>()
            };
            let challenge = async {
                match op {
                    ChallengeOp::None => Ok(None),
                    ChallengeOp::Insert(c) => insert_challenge_on(&conn, c).await.map(|()| None),
                    ChallengeOp::Consume { id, at } => consume_challenge_on(&conn, id, at).await.map(Some),
                }
            };
            let (revocation, enrollments, challenge) = tokio::try_join!(revocation, enrollments, challenge)?;
            Ok(Admission { revocation, enrollments, challenge })
        })
    }

    fn list_enrollments(&self) -> StoreFuture<'_, Vec<Enrollment>> {
        Box::pin(async move {
            let rows = self.query(&format!("{ENROLLMENT_SELECT} ORDER BY created_at, id"), &[]).await?;
            rows.iter().map(enrollment).collect()
        })
    }

    fn trusted_group_cas(&self) -> StoreFuture<'_, Vec<Enrollment>> {
        Box::pin(async move {
            let sql = format!(
                "{ENROLLMENT_SELECT} WHERE kind = 'group' AND status IN ('enabled', 'disabled') \
                 ORDER BY created_at, id"
            );
            let rows = self.query(&sql, &[]).await?;
            rows.iter().map(enrollment).collect()
        })
    }

    fn set_enrollment_status<'a>(
        &'a self,
        id: &'a str,
        status: EnrollmentStatus,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = self
                .execute(
                    "UPDATE enrollments SET status = $2, updated_at = $3, verification_code = \
                     CASE WHEN $2 = 'pending_proof' THEN verification_code ELSE NULL END WHERE id = $1",
                    &[&id, &status_str(status), &at],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn delete_enrollment<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.execute("DELETE FROM enrollments WHERE id = $1", &[&id]).await? == 1) })
    }

    fn import_enrollments<'a>(&'a self, rows: &'a [Enrollment]) -> StoreFuture<'a, ImportCounts> {
        Box::pin(async move {
            let mut client = self.tx_client.lock().await;
            if client.is_closed() {
                *client = connect_one(&self.url).await?;
            }
            let tx = client.transaction().await.map_err(Error::postgres)?;
            // Whole columns as arrays, IMPORT_CHUNK rows per statement: a million rows in a
            // few hundred round trips instead of a million.
            let stmt = tx
                .prepare(
                    "INSERT INTO enrollments (id, match_key, kind, status, device_id, der, verification_code, \
                     note, created_at, updated_at) SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], \
                     $4::TEXT[], $5::TEXT[], $6::BYTEA[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[]) \
                     ON CONFLICT (match_key) DO NOTHING",
                )
                .await
                .map_err(Error::postgres)?;
            let mut counts = ImportCounts::default();
            for chunk in rows.chunks(IMPORT_CHUNK) {
                let ids: Vec<&str> = chunk.iter().map(|e| e.id.as_str()).collect();
                let keys: Vec<String> = chunk.iter().map(|e| e.key.to_string()).collect();
                let kinds: Vec<&str> = chunk.iter().map(kind_str).collect();
                let statuses: Vec<&str> = chunk.iter().map(|e| status_str(e.status)).collect();
                let devices: Vec<Option<&str>> = chunk.iter().map(|e| e.device_id.as_deref()).collect();
                let ders: Vec<Option<&[u8]>> = chunk.iter().map(|e| e.der.as_deref()).collect();
                let codes: Vec<Option<&str>> = chunk.iter().map(|e| e.verification_code.as_deref()).collect();
                let notes: Vec<&str> = chunk.iter().map(|e| e.note.as_str()).collect();
                let created: Vec<i64> = chunk.iter().map(|e| e.created_at).collect();
                let updated: Vec<i64> = chunk.iter().map(|e| e.updated_at).collect();
                let n = tx
                    .execute(
                        &stmt,
                        &[
                            &ids, &keys, &kinds, &statuses, &devices, &ders, &codes, &notes, &created,
                            &updated,
                        ],
                    )
                    .await
                    .map_err(|err| conflict_or(err, "enrollment id"))?;
                counts.inserted += n;
                counts.existing += chunk.len() as u64 - n;
            }
            tx.commit().await.map_err(Error::postgres)?;
            if counts.inserted >= ANALYZE_AFTER {
                // Fresh planner statistics at once, rather than when autovacuum gets to it:
                // until then the lookup may be planned for a table of the old size.
                client.batch_execute("ANALYZE enrollments").await.map_err(Error::postgres)?;
            }
            Ok(counts)
        })
    }

    fn record_device<'a>(&'a self, d: &'a DeviceRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.execute(
                "INSERT INTO devices (device_id, cert_sha256, serial, enrollment_id, first_seen, last_seen, \
                 auth_count) VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (device_id) DO UPDATE SET \
                 cert_sha256 = excluded.cert_sha256, serial = excluded.serial, \
                 enrollment_id = excluded.enrollment_id, last_seen = excluded.last_seen, \
                 auth_count = devices.auth_count + 1",
                &[&d.device_id, &d.cert_sha256, &d.serial, &d.enrollment_id, &d.first_seen, &d.last_seen],
            )
            .await?;
            Ok(())
        })
    }

    fn device<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, Option<DeviceRecord>> {
        Box::pin(async move {
            let rows = self
                .query(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = $1"), &[&device_id])
                .await?;
            Ok(rows.first().map(device))
        })
    }

    fn list_devices(&self, limit: u32) -> StoreFuture<'_, Vec<DeviceRecord>> {
        Box::pin(async move {
            let rows = self
                .query(
                    &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id LIMIT $1"),
                    &[&i64::from(limit)],
                )
                .await?;
            Ok(rows.iter().map(device).collect())
        })
    }

    fn revoke<'a>(&'a self, r: &'a Revocation) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = self
                .execute(
                    "INSERT INTO revocations (serial, reason, revoked_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (serial) DO NOTHING",
                    &[&r.serial, &r.reason, &r.revoked_at],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn revocation<'a>(&'a self, serial: &'a str) -> StoreFuture<'a, Option<Revocation>> {
        Box::pin(async move {
            let rows = self.query(REVOCATION_SELECT, &[&serial]).await?;
            Ok(rows.first().map(revocation_row))
        })
    }

    fn insert_challenge<'a>(&'a self, c: &'a StoredChallenge) -> StoreFuture<'a, ()> {
        Box::pin(async move { insert_challenge_on(&*self.conn().await?, c).await })
    }

    fn consume_challenge<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, ChallengeTake> {
        Box::pin(async move { consume_challenge_on(&*self.conn().await?, id, at).await })
    }

    fn open_session<'a>(
        &'a self,
        s: &'a StoredSession,
        d: &'a DeviceRecord,
        a: &'a AuditRecord,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // One statement, so one round trip and atomic: data-modifying CTEs all commit or
            // none does.
            let conn = self.conn().await?;
            let stmt = prepared(
                &conn,
                "WITH s AS (INSERT INTO sessions (token_sha256, device_id, cert_sha256, serial, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6)), \
                 d AS (INSERT INTO devices (device_id, cert_sha256, serial, enrollment_id, first_seen, \
                 last_seen, auth_count) VALUES ($2, $7, $4, $8, $5, $5, 1) ON CONFLICT (device_id) DO UPDATE \
                 SET cert_sha256 = excluded.cert_sha256, serial = excluded.serial, \
                 enrollment_id = excluded.enrollment_id, last_seen = excluded.last_seen, \
                 auth_count = devices.auth_count + 1) \
                 INSERT INTO audit (at, event, outcome, reason, detail, device_id, actor, peer) \
                 VALUES ($9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .await?;
            conn.client
                .execute(
                    &stmt,
                    &[
                        &&s.token_sha256[..],
                        &s.device_id,
                        &&s.cert_sha256[..],
                        &s.serial,
                        &s.created_at,
                        &s.expires_at,
                        &d.cert_sha256,
                        &d.enrollment_id,
                        &a.at,
                        &a.event,
                        &a.outcome.as_str(),
                        &a.reason,
                        &a.detail,
                        &a.device_id,
                        &a.actor,
                        &a.peer,
                    ],
                )
                .await
                .map_err(|e| conflict_or(e, "session token"))?;
            Ok(())
        })
    }

    fn insert_session<'a>(&'a self, s: &'a StoredSession) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let stmt = prepared(
                &conn,
                "INSERT INTO sessions (token_sha256, device_id, cert_sha256, serial, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await?;
            conn.client
                .execute(
                    &stmt,
                    &[
                        &&s.token_sha256[..],
                        &s.device_id,
                        &&s.cert_sha256[..],
                        &s.serial,
                        &s.created_at,
                        &s.expires_at,
                    ],
                )
                .await
                .map_err(|e| conflict_or(e, "session token"))?;
            Ok(())
        })
    }

    fn session<'a>(&'a self, token_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT device_id, cert_sha256, serial, created_at, expires_at FROM sessions \
                     WHERE token_sha256 = $1",
                    &[&&token_sha256[..]],
                )
                .await?;
            rows.first()
                .map(|r| {
                    Ok(StoredSession {
                        token_sha256: *token_sha256,
                        device_id: r.get(0),
                        cert_sha256: to32(r.get(1), "certificate hash")?,
                        serial: r.get(2),
                        created_at: r.get(3),
                        expires_at: r.get(4),
                    })
                })
                .transpose()
        })
    }

    fn purge_expired(&self, at: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let a = self.execute("DELETE FROM challenges WHERE expires_at < $1", &[&at]).await?;
            let b = self.execute("DELETE FROM sessions WHERE expires_at < $1", &[&at]).await?;
            Ok(a + b)
        })
    }

    fn device_state<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, Option<StoredState>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT version, json, updated_at FROM device_state WHERE device_id = $1",
                    &[&device_id],
                )
                .await?;
            Ok(rows.first().map(|r| StoredState {
                version: r.get::<_, i64>(0).max(0) as u64,
                json: r.get(1),
                updated_at: r.get(2),
            }))
        })
    }

    fn put_device_state<'a>(&'a self, device_id: &'a str, json: &'a str, at: i64) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let rows = self
                .query(
                    "INSERT INTO device_state (device_id, version, json, updated_at) VALUES ($1, 1, $2, $3) \
                     ON CONFLICT (device_id) DO UPDATE SET version = device_state.version + 1, \
                     json = excluded.json, updated_at = excluded.updated_at RETURNING version",
                    &[&device_id, &json, &at],
                )
                .await?;
            let v: i64 = rows.first().map(|r| r.get(0)).unwrap_or(0);
            Ok(v.max(0) as u64)
        })
    }

    fn append_audit<'a>(&'a self, r: &'a AuditRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.execute(
                "INSERT INTO audit (at, event, outcome, reason, detail, device_id, actor, peer) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &r.at,
                    &r.event,
                    &r.outcome.as_str(),
                    &r.reason,
                    &r.detail,
                    &r.device_id,
                    &r.actor,
                    &r.peer,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn audit<'a>(&'a self, limit: u32, device_id: Option<&'a str>) -> StoreFuture<'a, Vec<AuditEntry>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT seq, at, event, outcome, reason, detail, device_id, actor, peer FROM audit \
                     WHERE ($1::TEXT IS NULL OR device_id = $1) ORDER BY seq DESC LIMIT $2",
                    &[&device_id, &i64::from(limit)],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| AuditEntry {
                    seq: r.get(0),
                    record: AuditRecord {
                        at: r.get(1),
                        event: r.get(2),
                        outcome: Outcome::parse(r.get(3)),
                        reason: r.get(4),
                        detail: r.get(5),
                        device_id: r.get(6),
                        actor: r.get(7),
                        peer: r.get(8),
                    },
                })
                .collect())
        })
    }

    fn insert_api_token<'a>(&'a self, t: &'a ApiToken) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let stmt = prepared(
                &conn,
                "INSERT INTO api_tokens (name, role, token_sha256, created_at, disabled) VALUES ($1, $2, $3, $4, $5)",
            )
            .await?;
            conn.client
                .execute(
                    &stmt,
                    &[&t.name, &t.role.as_str(), &&t.token_sha256[..], &t.created_at, &t.disabled],
                )
                .await
                .map_err(|e| conflict_or(e, format!("API token {}", t.name)))?;
            Ok(())
        })
    }

    fn api_token_by_hash<'a>(&'a self, token_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<ApiToken>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT name, role, token_sha256, created_at, disabled FROM api_tokens WHERE token_sha256 = $1",
                    &[&&token_sha256[..]],
                )
                .await?;
            rows.first().map(token).transpose()
        })
    }

    fn list_api_tokens(&self) -> StoreFuture<'_, Vec<ApiToken>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT name, role, token_sha256, created_at, disabled FROM api_tokens ORDER BY name",
                    &[],
                )
                .await?;
            rows.iter().map(token).collect()
        })
    }

    fn set_api_token_disabled<'a>(&'a self, name: &'a str, disabled: bool) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            Ok(self
                .execute("UPDATE api_tokens SET disabled = $2 WHERE name = $1", &[&name, &disabled])
                .await?
                == 1)
        })
    }
}

fn revocation_row(r: &Row) -> Revocation {
    Revocation { serial: r.get(0), reason: r.get(1), revoked_at: r.get(2) }
}

async fn insert_challenge_on(conn: &Conn, c: &StoredChallenge) -> Result<()> {
    let stmt = prepared(
        conn,
        "INSERT INTO challenges (id, challenge, cert_sha256, session_binding, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .await?;
    conn.client
        .execute(
            &stmt,
            &[
                &c.id,
                &&c.challenge[..],
                &&c.cert_sha256[..],
                &&c.session_binding[..],
                &c.issued_at,
                &c.expires_at,
            ],
        )
        .await
        .map_err(|e| conflict_or(e, "challenge id"))?;
    Ok(())
}

async fn consume_challenge_on(conn: &Conn, id: &str, at: i64) -> Result<ChallengeTake> {
    let stmt = prepared(
        conn,
        &format!("UPDATE challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL RETURNING {CHALLENGE_COLUMNS}"),
    )
    .await?;
    let fresh = conn.client.query(&stmt, &[&id, &at]).await.map_err(Error::postgres)?;
    if let Some(r) = fresh.first() {
        return Ok(ChallengeTake::Fresh(challenge(r)?));
    }
    let stmt = prepared(conn, &format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1")).await?;
    let used = conn.client.query(&stmt, &[&id]).await.map_err(Error::postgres)?;
    Ok(match used.first() {
        Some(r) => ChallengeTake::Used(challenge(r)?),
        None => ChallengeTake::Unknown,
    })
}
