//! [`MessageStore`] on SQLite.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use super::rows::conflict_or;
use crate::error::{Error, Result};
use crate::store::StoreFuture;
use crate::store::messages::{LogUpload, MessageStore, StoredCommand, StoredTelemetry};

const COMMAND_COLUMNS: &str =
    "device_id, sequence, name, signed, issued_by, issued_at, expires_at, status, reported_at";

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Invalid(format!("{v} is out of range")))
}

fn command_row(r: &Row<'_>) -> rusqlite::Result<StoredCommand> {
    Ok(StoredCommand {
        device_id: r.get(0)?,
        sequence: u(r.get(1)?),
        name: r.get(2)?,
        signed: r.get(3)?,
        issued_by: r.get(4)?,
        issued_at: r.get(5)?,
        expires_at: r.get(6)?,
        status: r.get(7)?,
        reported_at: r.get(8)?,
    })
}

fn telemetry_row(r: &Row<'_>) -> rusqlite::Result<StoredTelemetry> {
    Ok(StoredTelemetry {
        device_id: r.get(0)?,
        sequence: u(r.get(1)?),
        device_time: r.get(2)?,
        received_at: r.get(3)?,
        data_json: r.get(4)?,
    })
}

fn upload_row(r: &Row<'_>) -> rusqlite::Result<LogUpload> {
    Ok(LogUpload {
        id: r.get(0)?,
        device_id: r.get(1)?,
        uploaded_at: r.get(2)?,
        size: u(r.get(3)?),
        content: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
    })
}

impl MessageStore for SqliteStore {
    fn reserve_command_sequence<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, u64> {
        let device_id = device_id.to_owned();
        self.call(move |c| {
            let next: i64 = c
                .query_row(
                    "INSERT INTO command_sequences (device_id, last_sequence) VALUES (?1, 1) \
                     ON CONFLICT (device_id) DO UPDATE SET last_sequence = last_sequence + 1 \
                     RETURNING last_sequence",
                    [&device_id],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite)?;
            Ok(u(next))
        })
    }

    fn insert_command<'a>(&'a self, command: &'a StoredCommand) -> StoreFuture<'a, ()> {
        let k = command.clone();
        self.call(move |c| {
            c.execute(
                &format!("INSERT INTO device_commands ({COMMAND_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    k.device_id,
                    i(k.sequence)?,
                    k.name,
                    k.signed,
                    k.issued_by,
                    k.issued_at,
                    k.expires_at,
                    k.status,
                    k.reported_at
                ],
            )
            .map_err(|e| conflict_or(e, format!("command {} of {}", k.sequence, k.device_id)))?;
            Ok(())
        })
    }

    fn commands_after<'a>(
        &'a self,
        device_id: &'a str,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredCommand>> {
        let device_id = device_id.to_owned();
        self.call(move |c| {
            let sql = format!(
                "SELECT {COMMAND_COLUMNS} FROM device_commands WHERE device_id = ?1 AND sequence > ?2 \
                 ORDER BY sequence LIMIT ?3"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(Error::sqlite)?;
            let rows =
                stmt.query_map(params![device_id, i(after)?, limit], command_row).map_err(Error::sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Error::sqlite)
        })
    }

    fn list_commands<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<StoredCommand>> {
        let device_id = device_id.to_owned();
        self.call(move |c| {
            let sql = format!(
                "SELECT {COMMAND_COLUMNS} FROM device_commands WHERE device_id = ?1 ORDER BY sequence DESC LIMIT ?2"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(Error::sqlite)?;
            let rows = stmt.query_map(params![device_id, limit], command_row).map_err(Error::sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Error::sqlite)
        })
    }

    fn report_command<'a>(
        &'a self,
        device_id: &'a str,
        sequence: u64,
        status: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        let (device_id, status) = (device_id.to_owned(), status.to_owned());
        self.call(move |c| {
            let n = c
                .execute(
                    "UPDATE device_commands SET status = ?3, reported_at = ?4 WHERE device_id = ?1 AND sequence = ?2",
                    params![device_id, i(sequence)?, status, at],
                )
                .map_err(Error::sqlite)?;
            Ok(n == 1)
        })
    }

    fn insert_telemetry<'a>(&'a self, t: &'a StoredTelemetry) -> StoreFuture<'a, bool> {
        let t = t.clone();
        self.call(move |c| {
            let n = c
                .execute(
                    "INSERT INTO telemetry (device_id, sequence, device_time, received_at, data_json) \
                     SELECT ?1, ?2, ?3, ?4, ?5 WHERE ?2 > COALESCE( \
                     (SELECT MAX(sequence) FROM telemetry WHERE device_id = ?1), 0)",
                    params![t.device_id, i(t.sequence)?, t.device_time, t.received_at, t.data_json],
                )
                .map_err(Error::sqlite)?;
            Ok(n == 1)
        })
    }

    fn list_telemetry<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<StoredTelemetry>> {
        let device_id = device_id.to_owned();
        self.call(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT device_id, sequence, device_time, received_at, data_json FROM telemetry \
                     WHERE device_id = ?1 ORDER BY sequence DESC LIMIT ?2",
                )
                .map_err(Error::sqlite)?;
            let rows = stmt.query_map(params![device_id, limit], telemetry_row).map_err(Error::sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Error::sqlite)
        })
    }

    fn insert_log_upload<'a>(&'a self, upload: &'a LogUpload) -> StoreFuture<'a, ()> {
        let up = upload.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO log_uploads (id, device_id, uploaded_at, size, content) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![up.id, up.device_id, up.uploaded_at, i(up.size)?, up.content],
            )
            .map_err(|e| conflict_or(e, format!("log upload {}", up.id)))?;
            Ok(())
        })
    }

    fn log_upload<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<LogUpload>> {
        let id = id.to_owned();
        self.call(move |c| {
            c.prepare_cached(
                "SELECT id, device_id, uploaded_at, size, content FROM log_uploads WHERE id = ?1",
            )
            .and_then(|mut s| s.query_row([&id], upload_row).optional())
            .map_err(Error::sqlite)
        })
    }

    fn list_log_uploads<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<LogUpload>> {
        let device_id = device_id.to_owned();
        self.call(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, device_id, uploaded_at, size, NULL FROM log_uploads WHERE device_id = ?1 \
                     ORDER BY uploaded_at DESC, id LIMIT ?2",
                )
                .map_err(Error::sqlite)?;
            let rows = stmt.query_map(params![device_id, limit], upload_row).map_err(Error::sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Error::sqlite)
        })
    }
}
