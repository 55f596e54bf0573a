//! [`MessageStore`] on PostgreSQL: every method is one statement, so two server processes
//! never hand out one command sequence twice or keep a replayed telemetry report.

use tokio_postgres::Row;

use super::PostgresStore;
use super::rows::{conflict_or, prepared};
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

fn command_from(r: &Row) -> StoredCommand {
    StoredCommand {
        device_id: r.get(0),
        sequence: u(r.get(1)),
        name: r.get(2),
        signed: r.get(3),
        issued_by: r.get(4),
        issued_at: r.get(5),
        expires_at: r.get(6),
        status: r.get(7),
        reported_at: r.get(8),
    }
}

fn telemetry_from(r: &Row) -> StoredTelemetry {
    StoredTelemetry {
        device_id: r.get(0),
        sequence: u(r.get(1)),
        device_time: r.get(2),
        received_at: r.get(3),
        data_json: r.get(4),
    }
}

fn upload_from(r: &Row) -> LogUpload {
    LogUpload {
        id: r.get(0),
        device_id: r.get(1),
        uploaded_at: r.get(2),
        size: u(r.get(3)),
        content: r.get::<_, Option<Vec<u8>>>(4).unwrap_or_default(),
    }
}

impl MessageStore for PostgresStore {
    fn reserve_command_sequence<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let rows = self
                .query(
                    "INSERT INTO command_sequences (device_id, last_sequence) VALUES ($1, 1) \
                     ON CONFLICT (device_id) DO UPDATE SET last_sequence = command_sequences.last_sequence + 1 \
                     RETURNING last_sequence",
                    &[&device_id],
                )
                .await?;
            let next: i64 =
                rows.first().map(|r| r.get(0)).ok_or_else(|| Error::postgres("no sequence returned"))?;
            Ok(u(next))
        })
    }

    fn insert_command<'a>(&'a self, k: &'a StoredCommand) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let sql = format!(
                "INSERT INTO device_commands ({COMMAND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            );
            let stmt = prepared(&conn, &sql).await?;
            let seq = i(k.sequence)?;
            conn.client
                .execute(
                    &stmt,
                    &[
                        &k.device_id,
                        &seq,
                        &k.name,
                        &k.signed,
                        &k.issued_by,
                        &k.issued_at,
                        &k.expires_at,
                        &k.status,
                        &k.reported_at,
                    ],
                )
                .await
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
        Box::pin(async move {
            let sql = format!(
                "SELECT {COMMAND_COLUMNS} FROM device_commands WHERE device_id = $1 AND sequence > $2 \
                 ORDER BY sequence LIMIT $3"
            );
            let rows = self.query(&sql, &[&device_id, &i(after)?, &i64::from(limit)]).await?;
            Ok(rows.iter().map(command_from).collect())
        })
    }

    fn list_commands<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<StoredCommand>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {COMMAND_COLUMNS} FROM device_commands WHERE device_id = $1 ORDER BY sequence DESC LIMIT $2"
            );
            let rows = self.query(&sql, &[&device_id, &i64::from(limit)]).await?;
            Ok(rows.iter().map(command_from).collect())
        })
    }

    fn report_command<'a>(
        &'a self,
        device_id: &'a str,
        sequence: u64,
        status: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = self
                .execute(
                    "UPDATE device_commands SET status = $3, reported_at = $4 WHERE device_id = $1 AND sequence = $2",
                    &[&device_id, &i(sequence)?, &status, &at],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn insert_telemetry<'a>(&'a self, t: &'a StoredTelemetry) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = self
                .execute(
                    "INSERT INTO telemetry (device_id, sequence, device_time, received_at, data_json) \
                     SELECT $1::TEXT, $2::BIGINT, $3::BIGINT, $4::BIGINT, $5::TEXT WHERE $2::BIGINT > COALESCE( \
                     (SELECT MAX(sequence) FROM telemetry WHERE device_id = $1::TEXT), 0) \
                     ON CONFLICT DO NOTHING",
                    &[&t.device_id, &i(t.sequence)?, &t.device_time, &t.received_at, &t.data_json],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn list_telemetry<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<StoredTelemetry>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT device_id, sequence, device_time, received_at, data_json FROM telemetry \
                     WHERE device_id = $1 ORDER BY sequence DESC LIMIT $2",
                    &[&device_id, &i64::from(limit)],
                )
                .await?;
            Ok(rows.iter().map(telemetry_from).collect())
        })
    }

    fn insert_log_upload<'a>(&'a self, up: &'a LogUpload) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let stmt = prepared(
                &conn,
                "INSERT INTO log_uploads (id, device_id, uploaded_at, size, content) VALUES ($1, $2, $3, $4, $5)",
            )
            .await?;
            conn.client
                .execute(&stmt, &[&up.id, &up.device_id, &up.uploaded_at, &i(up.size)?, &up.content])
                .await
                .map_err(|e| conflict_or(e, format!("log upload {}", up.id)))?;
            Ok(())
        })
    }

    fn log_upload<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<LogUpload>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT id, device_id, uploaded_at, size, content FROM log_uploads WHERE id = $1",
                    &[&id],
                )
                .await?;
            Ok(rows.first().map(upload_from))
        })
    }

    fn list_log_uploads<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<LogUpload>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT id, device_id, uploaded_at, size, NULL::BYTEA FROM log_uploads WHERE device_id = $1 \
                     ORDER BY uploaded_at DESC, id LIMIT $2",
                    &[&device_id, &i64::from(limit)],
                )
                .await?;
            Ok(rows.iter().map(upload_from).collect())
        })
    }
}
