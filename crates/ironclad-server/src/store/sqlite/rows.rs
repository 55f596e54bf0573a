//! SQLite migrations and row mapping.

use rusqlite::{Connection, Row, params, params_from_iter};

use super::MIGRATIONS;
use crate::error::{Error, Result};
use crate::store::types::{parse_status, status_str, to32};
use crate::store::{
    ApiToken, DeviceRecord, Enrollment, EnrollmentKind, EnrollmentStatus, MatchKey, SCHEMA_VERSION,
    StoredChallenge,
};

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(Error::sqlite)?;
    if version > SCHEMA_VERSION {
        return Err(Error::sqlite(format!(
            "database schema version {version} is newer than this server's {SCHEMA_VERSION}"
        )));
    }
    let tx = conn.transaction().map_err(Error::sqlite)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        tx.execute_batch(sql).map_err(Error::sqlite)?;
        tx.pragma_update(None, "user_version", i as i64 + 1).map_err(Error::sqlite)?;
    }
    tx.commit().map_err(Error::sqlite)
}

pub(super) fn conflict_or(e: rusqlite::Error, what: impl Into<String>) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => Error::Conflict(what.into()),
        _ => Error::sqlite(e),
    }
}

pub(super) fn enrollment_row(r: &Row<'_>) -> rusqlite::Result<(Enrollment, String, String)> {
    let key: String = r.get(1)?;
    let status: String = r.get(2)?;
    let e = Enrollment {
        id: r.get(0)?,
        key: MatchKey::Ca([0; 32]),
        status: EnrollmentStatus::Disabled,
        device_id: r.get(3)?,
        der: r.get(4)?,
        verification_code: r.get(5)?,
        note: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    };
    Ok((e, key, status))
}

pub(super) fn finish_enrollment((mut e, key, status): (Enrollment, String, String)) -> Result<Enrollment> {
    e.key = key.parse()?;
    e.status = parse_status(&status)?;
    Ok(e)
}

pub(super) fn query_enrollments(conn: &Connection, sql: &str, args: &[String]) -> Result<Vec<Enrollment>> {
    let mut stmt = conn.prepare_cached(sql).map_err(Error::sqlite)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), enrollment_row).map_err(Error::sqlite)?;
    rows.map(|r| r.map_err(Error::sqlite).and_then(finish_enrollment)).collect()
}

pub(super) fn insert_enrollment_tx(conn: &Connection, e: &Enrollment) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO enrollments (id, match_key, kind, status, device_id, der, verification_code, note, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
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
}

pub(super) fn kind_str(e: &Enrollment) -> &'static str {
    match e.kind() {
        EnrollmentKind::Individual => "individual",
        EnrollmentKind::Group => "group",
    }
}

/// A challenge row before its byte columns are checked: id, challenge, certificate hash,
/// session binding, issued, expires.
pub(super) type ChallengeRow = (String, Vec<u8>, Vec<u8>, Vec<u8>, i64, i64);

pub(super) fn challenge_row(r: &Row<'_>) -> rusqlite::Result<ChallengeRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

pub(super) fn to_challenge(t: ChallengeRow) -> Result<StoredChallenge> {
    Ok(StoredChallenge {
        id: t.0,
        challenge: to32(&t.1, "challenge")?,
        cert_sha256: to32(&t.2, "certificate hash")?,
        session_binding: to32(&t.3, "session binding")?,
        issued_at: t.4,
        expires_at: t.5,
    })
}

pub(super) fn device_row(r: &Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        device_id: r.get(0)?,
        cert_sha256: r.get(1)?,
        serial: r.get(2)?,
        enrollment_id: r.get(3)?,
        first_seen: r.get(4)?,
        last_seen: r.get(5)?,
        auth_count: r.get::<_, i64>(6)?.max(0) as u64,
    })
}

pub(super) fn token_row(r: &Row<'_>) -> rusqlite::Result<(String, String, Vec<u8>, i64, bool)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(super) fn to_token(t: (String, String, Vec<u8>, i64, bool)) -> Result<ApiToken> {
    Ok(ApiToken {
        name: t.0,
        role: t.1.parse()?,
        token_sha256: to32(&t.2, "token hash")?,
        created_at: t.3,
        disabled: t.4,
    })
}
