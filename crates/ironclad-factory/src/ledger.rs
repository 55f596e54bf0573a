//! The station's quota ledger and audit log, in one SQLite file shared by every station
//! process on the line.
//!
//! Quota rule: units are *reserved* durably (fsynced) before any certificate is signed, in a
//! write transaction that serialises all processes. A crash between reservation and issuance
//! loses those units (they stay reserved) but can never let the line exceed the authorised
//! count. Every issued certificate is then appended to a hash-chained audit log.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::order::VerifiedOrder;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    id        TEXT PRIMARY KEY,
    digest    TEXT NOT NULL,
    product   TEXT NOT NULL,
    max_count INTEGER NOT NULL,
    reserved  INTEGER NOT NULL DEFAULT 0 CHECK (reserved <= max_count),
    issued    INTEGER NOT NULL DEFAULT 0 CHECK (issued <= reserved)
);
CREATE TABLE IF NOT EXISTS audit (
    row       INTEGER PRIMARY KEY,
    order_id  TEXT NOT NULL REFERENCES orders(id),
    serial    TEXT NOT NULL,
    device_id TEXT NOT NULL,
    time      TEXT NOT NULL,
    prev      TEXT NOT NULL,
    hash      TEXT NOT NULL
);
";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Units of an order reserved for one batch; spend them with [`QuotaLedger::record_issued`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    order_id: String,
    first_unit: u64,
    count: u64,
}

impl Reservation {
    /// How many units are reserved and not yet recorded as issued.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Unit number (1-based, unique within the order) of the first reserved unit: device IDs
    /// can be numbered from it.
    pub fn first_unit(&self) -> u64 {
        self.first_unit
    }
}

/// Usage of one order, for `factory report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderUsage {
    /// Order id.
    pub id: String,
    /// Product.
    pub product: String,
    /// Authorised count.
    pub max_count: u64,
    /// Units reserved (issued, in flight, or lost to a crash).
    pub reserved: u64,
    /// Certificates issued and audited.
    pub issued: u64,
    /// Units still available.
    pub remaining: u64,
}

/// One issued device in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Certificate serial (hex).
    pub serial: String,
    /// Device ID.
    pub device_id: String,
}

/// Switches to WAL. Changing the journal mode takes an exclusive lock and SQLite answers BUSY
/// at once instead of calling the busy handler, so stations opening a new ledger at the same
/// moment retry here (seen as "database is locked" with three racing stations).
fn wal_mode(conn: &Connection, patience: Duration) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && started.elapsed() < patience =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// The ledger file.
#[derive(Debug)]
pub struct QuotaLedger {
    conn: Connection,
}

impl QuotaLedger {
    /// Opens (creating if needed) the ledger at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        wal_mode(&conn, Duration::from_secs(30))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    /// Records an order (idempotent). A different document under the same id is refused.
    pub fn register(&mut self, order: &VerifiedOrder) -> Result<()> {
        let o = order.order();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<String> =
            tx.query_row("SELECT digest FROM orders WHERE id = ?1", [&o.id], |r| r.get(0)).optional()?;
        match existing {
            Some(digest) if digest == order.digest() => {}
            Some(_) => return Err(Error::OrderConflict(o.id.clone())),
            None => {
                tx.execute(
                    "INSERT INTO orders (id, digest, product, max_count) VALUES (?1, ?2, ?3, ?4)",
                    params![o.id, order.digest(), o.product, to_i64(o.max_count)],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Durably reserves `count` units of a registered order, or refuses the whole request.
    pub fn reserve(&mut self, order: &VerifiedOrder, count: u64) -> Result<Reservation> {
        self.reserve_inner(order, count, false)
    }

    /// Durably reserves up to `count` units: what is left if fewer remain; refuses only when
    /// none remain. Lets several stations share an order down to the last unit.
    pub fn reserve_up_to(&mut self, order: &VerifiedOrder, count: u64) -> Result<Reservation> {
        self.reserve_inner(order, count, true)
    }

    fn reserve_inner(&mut self, order: &VerifiedOrder, count: u64, partial: bool) -> Result<Reservation> {
        let id = &order.order().id;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (max, reserved): (i64, i64) = tx
            .query_row("SELECT max_count, reserved FROM orders WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .ok_or_else(|| Error::OrderUnknown(id.clone()))?;
        let (max, reserved) = (from_i64(max), from_i64(reserved));
        let available = max - reserved.min(max);
        let granted = if partial { count.min(available) } else { count };
        if granted == 0 || granted > available {
            return Err(Error::QuotaExhausted { id: id.clone(), max, used: reserved, requested: count });
        }
        tx.execute("UPDATE orders SET reserved = reserved + ?1 WHERE id = ?2", params![to_i64(granted), id])?;
        tx.commit()?;
        Ok(Reservation { order_id: id.clone(), first_unit: reserved + 1, count: granted })
    }

    /// Appends issued devices to the audit log (hash-chained) and counts them against the
    /// reservation. At most `reservation.count()` records.
    pub fn record_issued(
        &mut self,
        reservation: &mut Reservation,
        records: &[AuditRecord],
        time: &str,
    ) -> Result<()> {
        let n = records.len() as u64;
        if n > reservation.count {
            return Err(Error::QuotaExhausted {
                id: reservation.order_id.clone(),
                max: reservation.count,
                used: 0,
                requested: n,
            });
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut prev: String = tx
            .query_row("SELECT hash FROM audit ORDER BY row DESC LIMIT 1", [], |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| GENESIS.to_owned());
        let mut next_row: i64 =
            tx.query_row("SELECT COALESCE(MAX(row), 0) + 1 FROM audit", [], |r| r.get(0))?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO audit (row, order_id, serial, device_id, time, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for record in records {
                let hash = audit_hash(
                    next_row,
                    &reservation.order_id,
                    &record.serial,
                    &record.device_id,
                    time,
                    &prev,
                );
                insert.execute(params![
                    next_row,
                    reservation.order_id,
                    record.serial,
                    record.device_id,
                    time,
                    prev,
                    hash
                ])?;
                prev = hash;
                next_row += 1;
            }
        }
        tx.execute(
            "UPDATE orders SET issued = issued + ?1 WHERE id = ?2",
            params![to_i64(n), reservation.order_id],
        )?;
        tx.commit()?;
        reservation.count -= n;
        Ok(())
    }

    /// Returns a reservation's unused units to the order (nothing was signed with them).
    pub fn release(&mut self, reservation: Reservation) -> Result<()> {
        if reservation.count > 0 {
            self.conn.execute(
                "UPDATE orders SET reserved = reserved - ?1 WHERE id = ?2",
                params![to_i64(reservation.count), reservation.order_id],
            )?;
        }
        Ok(())
    }

    /// Usage of every order.
    pub fn report(&self) -> Result<Vec<OrderUsage>> {
        let mut stmt =
            self.conn.prepare("SELECT id, product, max_count, reserved, issued FROM orders ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            let (max, reserved): (i64, i64) = (r.get(2)?, r.get(3)?);
            Ok(OrderUsage {
                id: r.get(0)?,
                product: r.get(1)?,
                max_count: from_i64(max),
                reserved: from_i64(reserved),
                issued: from_i64(r.get(4)?),
                remaining: from_i64(max - reserved),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Checks the audit chain row by row and that each order's issued count matches its rows;
    /// returns the number of rows. The first bad row is named.
    pub fn verify_audit(&self) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare("SELECT row, order_id, serial, device_id, time, prev, hash FROM audit ORDER BY row")?;
        let mut rows = stmt.query([])?;
        let mut prev = GENESIS.to_owned();
        let mut expected_row = 1i64;
        let mut per_order = std::collections::BTreeMap::<String, u64>::new();
        while let Some(r) = rows.next()? {
            let row: i64 = r.get(0)?;
            let (order, serial, device, time, rec_prev, hash): (
                String,
                String,
                String,
                String,
                String,
                String,
            ) = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
            let at = from_i64(expected_row);
            if row != expected_row {
                return Err(Error::AuditTampered { row: at, reason: "row missing or out of order" });
            }
            if rec_prev != prev {
                return Err(Error::AuditTampered { row: at, reason: "does not link to the previous row" });
            }
            if audit_hash(row, &order, &serial, &device, &time, &rec_prev) != hash {
                return Err(Error::AuditTampered { row: at, reason: "content does not match its hash" });
            }
            *per_order.entry(order).or_default() += 1;
            prev = hash;
            expected_row += 1;
        }
        for usage in self.report()? {
            if per_order.get(&usage.id).copied().unwrap_or(0) != usage.issued {
                return Err(Error::AuditTampered {
                    row: from_i64(expected_row),
                    reason: "an order's issued count does not match its audit rows",
                });
            }
        }
        Ok(from_i64(expected_row - 1))
    }
}

fn audit_hash(row: i64, order: &str, serial: &str, device: &str, time: &str, prev: &str) -> String {
    let text = format!("ironclad-audit-v1\n{row}\n{order}\n{serial}\n{device}\n{time}\n{prev}");
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_i64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
