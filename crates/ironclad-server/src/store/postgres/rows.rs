//! PostgreSQL migrations, prepared statements and row mapping.

use tokio_postgres::{Client, Row, Statement};

use super::{Conn, MIGRATIONS};
use crate::error::{Error, Result};
use crate::store::types::{parse_status, to32};
use crate::store::{ApiToken, DeviceRecord, Enrollment, EnrollmentKind, SCHEMA_VERSION, StoredChallenge};

pub(super) async fn prepared(conn: &Conn, sql: &str) -> Result<Statement> {
    if let Some(s) = conn.statements.lock().unwrap_or_else(|p| p.into_inner()).get(sql) {
        return Ok(s.clone());
    }
    let stmt = conn.client.prepare(sql).await.map_err(Error::postgres)?;
    conn.statements.lock().unwrap_or_else(|p| p.into_inner()).insert(sql.to_owned(), stmt.clone());
    Ok(stmt)
}

pub(super) async fn migrate(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await.map_err(Error::postgres)?;
    // Any constant shared by every ironclad server: serialises concurrent migrations.
    tx.execute("SELECT pg_advisory_xact_lock(7234911)", &[]).await.map_err(Error::postgres)?;
    tx.execute("CREATE TABLE IF NOT EXISTS ironclad_schema (version BIGINT NOT NULL)", &[])
        .await
        .map_err(Error::postgres)?;
    let row = tx.query_opt("SELECT version FROM ironclad_schema", &[]).await.map_err(Error::postgres)?;
    let version: i64 = match row {
        Some(r) => r.get(0),
        None => {
            tx.execute("INSERT INTO ironclad_schema (version) VALUES (0)", &[])
                .await
                .map_err(Error::postgres)?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(Error::postgres(format!(
            "database schema version {version} is newer than this server's {SCHEMA_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        tx.batch_execute(sql).await.map_err(Error::postgres)?;
        tx.execute("UPDATE ironclad_schema SET version = $1", &[&(i as i64 + 1)])
            .await
            .map_err(Error::postgres)?;
    }
    tx.commit().await.map_err(Error::postgres)
}

pub(super) fn conflict_or(e: tokio_postgres::Error, what: impl Into<String>) -> Error {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        Error::Conflict(what.into())
    } else {
        Error::postgres(e)
    }
}

pub(super) fn kind_str(e: &Enrollment) -> &'static str {
    match e.kind() {
        EnrollmentKind::Individual => "individual",
        EnrollmentKind::Group => "group",
    }
}

pub(super) fn enrollment(r: &Row) -> Result<Enrollment> {
    Ok(Enrollment {
        id: r.get(0),
        key: r.get::<_, String>(1).parse()?,
        status: parse_status(r.get(2))?,
        device_id: r.get(3),
        der: r.get(4),
        verification_code: r.get(5),
        note: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    })
}

pub(super) fn challenge(r: &Row) -> Result<StoredChallenge> {
    Ok(StoredChallenge {
        id: r.get(0),
        challenge: to32(r.get(1), "challenge")?,
        cert_sha256: to32(r.get(2), "certificate hash")?,
        session_binding: to32(r.get(3), "session binding")?,
        issued_at: r.get(4),
        expires_at: r.get(5),
    })
}

pub(super) fn device(r: &Row) -> DeviceRecord {
    DeviceRecord {
        device_id: r.get(0),
        cert_sha256: r.get(1),
        serial: r.get(2),
        enrollment_id: r.get(3),
        first_seen: r.get(4),
        last_seen: r.get(5),
        auth_count: r.get::<_, i64>(6).max(0) as u64,
    }
}

pub(super) fn token(r: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        name: r.get(0),
        role: r.get::<_, String>(1).parse()?,
        token_sha256: to32(r.get(2), "token hash")?,
        created_at: r.get(3),
        disabled: r.get(4),
    })
}
