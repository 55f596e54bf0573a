//! [`VaultStore`] on SQLite.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::rows::conflict_or;
use crate::error::{Error, Result};
use crate::store::StoreFuture;
use crate::store::vault::{ClaimRedemption, DeviceOwnership, KeyUsage, ManagedKey, OwnerClaim, VaultStore};

const KEY_COLUMNS: &str = "id, usage, subject, version, material, created_at, retired_at";

/// id, usage, subject, version, material, created_at, retired_at.
type KeyRow = (String, String, String, i64, String, i64, Option<i64>);

fn key_row(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

pub(crate) fn managed_key_from(row: KeyRow) -> Result<ManagedKey> {
    let (id, usage, subject, version, material, created_at, retired_at) = row;
    Ok(ManagedKey {
        usage: usage.parse()?,
        version: u32::try_from(version).map_err(|_| Error::sqlite(format!("key {id}: bad version")))?,
        material: serde_json::from_str(&material)
            .map_err(|e| Error::sqlite(format!("key {id}: unreadable material record: {e}")))?,
        id,
        subject,
        created_at,
        retired_at,
    })
}

fn query_keys(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<ManagedKey>> {
    let mut stmt = c.prepare_cached(sql).map_err(Error::sqlite)?;
    let rows = stmt.query_map(params, key_row).map_err(Error::sqlite)?;
    rows.map(|r| managed_key_from(r.map_err(Error::sqlite)?)).collect()
}

fn insert_key(c: &Connection, k: &ManagedKey) -> Result<()> {
    let material = serde_json::to_string(&k.material).map_err(|e| Error::sqlite(e.to_string()))?;
    c.execute(
        "INSERT INTO managed_keys (id, usage, subject, version, material, created_at, retired_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            k.id,
            k.usage.as_str(),
            k.subject,
            i64::from(k.version),
            material,
            k.created_at,
            k.retired_at
        ],
    )
    .map_err(|e| conflict_or(e, format!("key {}", k.id)))?;
    Ok(())
}

fn ownership_row(r: &Row<'_>) -> rusqlite::Result<DeviceOwnership> {
    Ok(DeviceOwnership { device_id: r.get(0)?, owner: r.get(1)?, claimed_at: r.get(2)? })
}

impl VaultStore for SqliteStore {
    fn insert_managed_key<'a>(&'a self, key: &'a ManagedKey) -> StoreFuture<'a, ()> {
        let k = key.clone();
        self.call(move |c| insert_key(c, &k))
    }

    fn rotate_managed_key<'a>(
        &'a self,
        previous: &'a str,
        next: &'a ManagedKey,
        at: i64,
    ) -> StoreFuture<'a, ()> {
        let (previous, next) = (previous.to_owned(), next.clone());
        self.call(move |c| {
            let tx = c.savepoint().map_err(Error::sqlite)?;
            insert_key(&tx, &next)?;
            tx.execute(
                "UPDATE managed_keys SET retired_at = ?2 WHERE id = ?1 AND retired_at IS NULL",
                params![previous, at],
            )
            .map_err(Error::sqlite)?;
            tx.commit().map_err(Error::sqlite)
        })
    }

    fn latest_managed_key<'a>(
        &'a self,
        usage: KeyUsage,
        subject: &'a str,
    ) -> StoreFuture<'a, Option<ManagedKey>> {
        let subject = subject.to_owned();
        self.call(move |c| {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM managed_keys WHERE usage = ?1 AND subject = ?2 ORDER BY version DESC LIMIT 1"
            );
            Ok(query_keys(c, &sql, params![usage.as_str(), subject])?.pop())
        })
    }

    fn managed_key<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ManagedKey>> {
        let id = id.to_owned();
        self.call(move |c| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM managed_keys WHERE id = ?1");
            Ok(query_keys(c, &sql, params![id])?.pop())
        })
    }

    fn list_managed_keys(&self, usage: Option<KeyUsage>) -> StoreFuture<'_, Vec<ManagedKey>> {
        self.call(move |c| {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM managed_keys WHERE ?1 IS NULL OR usage = ?1 ORDER BY usage, subject, version"
            );
            query_keys(c, &sql, params![usage.map(KeyUsage::as_str)])
        })
    }

    fn insert_claim<'a>(&'a self, claim: &'a OwnerClaim) -> StoreFuture<'a, ()> {
        let cl = claim.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO owner_claims (code_sha256, owner, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![&cl.code_sha256[..], cl.owner, cl.created_at, cl.expires_at],
            )
            .map_err(|e| conflict_or(e, "claim code"))?;
            Ok(())
        })
    }

    fn redeem_claim<'a>(
        &'a self,
        code_sha256: &'a [u8; 32],
        device_id: &'a str,
        at: i64,
    ) -> StoreFuture<'a, ClaimRedemption> {
        let (code, device_id) = (*code_sha256, device_id.to_owned());
        self.call(move |c| {
            let tx = c.savepoint().map_err(Error::sqlite)?;
            let claim: Option<(String, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT owner, expires_at, used_at FROM owner_claims WHERE code_sha256 = ?1",
                    [&code[..]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(Error::sqlite)?;
            let outcome = match claim {
                None => ClaimRedemption::Unknown,
                Some((_, _, Some(_))) => ClaimRedemption::Used,
                Some((_, expires, None)) if at > expires => ClaimRedemption::Expired,
                Some((owner, _, None)) => {
                    let current: Option<String> = tx
                        .query_row("SELECT owner FROM device_owners WHERE device_id = ?1", [&device_id], |r| r.get(0))
                        .optional()
                        .map_err(Error::sqlite)?;
                    match current {
                        Some(other) if other != owner => ClaimRedemption::OwnedByAnother,
                        _ => {
                            tx.execute(
                                "UPDATE owner_claims SET used_at = ?2, used_by = ?3 WHERE code_sha256 = ?1",
                                params![&code[..], at, device_id],
                            )
                            .map_err(Error::sqlite)?;
                            tx.execute(
                                "INSERT INTO device_owners (device_id, owner, claimed_at) VALUES (?1, ?2, ?3) \
                                 ON CONFLICT (device_id) DO NOTHING",
                                params![device_id, owner, at],
                            )
                            .map_err(Error::sqlite)?;
                            ClaimRedemption::Claimed { owner }
                        }
                    }
                }
            };
            tx.commit().map_err(Error::sqlite)?;
            Ok(outcome)
        })
    }

    fn device_owner<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, Option<DeviceOwnership>> {
        let device_id = device_id.to_owned();
        self.call(move |c| {
            c.prepare_cached("SELECT device_id, owner, claimed_at FROM device_owners WHERE device_id = ?1")
                .and_then(|mut s| s.query_row([&device_id], ownership_row).optional())
                .map_err(Error::sqlite)
        })
    }

    fn owned_devices<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<DeviceOwnership>> {
        let owner = owner.to_owned();
        self.call(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT device_id, owner, claimed_at FROM device_owners WHERE owner = ?1 ORDER BY device_id",
                )
                .map_err(Error::sqlite)?;
            let rows = stmt.query_map([&owner], ownership_row).map_err(Error::sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Error::sqlite)
        })
    }

    fn release_device<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, bool> {
        let device_id = device_id.to_owned();
        self.call(move |c| {
            let n = c
                .execute("DELETE FROM device_owners WHERE device_id = ?1", [&device_id])
                .map_err(Error::sqlite)?;
            Ok(n > 0)
        })
    }
}
