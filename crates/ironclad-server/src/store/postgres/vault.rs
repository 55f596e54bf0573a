//! [`VaultStore`] on PostgreSQL. Multi-statement steps (rotation, claim redemption) run in a
//! transaction with row locks, so two server processes never both spend one claim code.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::rows::conflict_or;
use super::{PostgresStore, connect_one};
use crate::error::{Error, Result};
use crate::store::StoreFuture;
use crate::store::vault::{ClaimRedemption, DeviceOwnership, KeyUsage, ManagedKey, OwnerClaim, VaultStore};

const KEY_SELECT: &str =
    "SELECT id, usage, subject, version, material, created_at, retired_at FROM managed_keys";
const INSERT_KEY: &str = "INSERT INTO managed_keys (id, usage, subject, version, material, created_at, retired_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

fn key_from(row: &Row) -> Result<ManagedKey> {
    let id: String = row.get(0);
    let usage: String = row.get(1);
    let version: i64 = row.get(3);
    let material: String = row.get(4);
    Ok(ManagedKey {
        usage: usage.parse()?,
        subject: row.get(2),
        version: u32::try_from(version).map_err(|_| Error::postgres(format!("key {id}: bad version")))?,
        material: serde_json::from_str(&material)
            .map_err(|e| Error::postgres(format!("key {id}: unreadable material record: {e}")))?,
        created_at: row.get(5),
        retired_at: row.get(6),
        id,
    })
}

fn ownership_from(row: &Row) -> DeviceOwnership {
    DeviceOwnership { device_id: row.get(0), owner: row.get(1), claimed_at: row.get(2) }
}

fn key_params(k: &ManagedKey) -> Result<(String, i64)> {
    let material = serde_json::to_string(&k.material).map_err(|e| Error::postgres(e.to_string()))?;
    Ok((material, i64::from(k.version)))
}

impl PostgresStore {
    /// The connection reserved for multi-statement transactions, reconnected if it closed.
    async fn transaction_client(&self) -> Result<tokio::sync::MutexGuard<'_, tokio_postgres::Client>> {
        let mut client = self.tx_client.lock().await;
        if client.is_closed() {
            *client = connect_one(&self.url).await?;
        }
        Ok(client)
    }
}

impl VaultStore for PostgresStore {
    fn insert_managed_key<'a>(&'a self, k: &'a ManagedKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (material, version) = key_params(k)?;
            let params: [&(dyn ToSql + Sync); 7] =
                [&k.id, &k.usage.as_str(), &k.subject, &version, &material, &k.created_at, &k.retired_at];
            let conn = self.conn().await?;
            let stmt = super::rows::prepared(&conn, INSERT_KEY).await?;
            conn.client.execute(&stmt, &params).await.map_err(|e| conflict_or(e, format!("key {}", k.id)))?;
            Ok(())
        })
    }

    fn rotate_managed_key<'a>(
        &'a self,
        previous: &'a str,
        next: &'a ManagedKey,
        at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (material, version) = key_params(next)?;
            let mut client = self.transaction_client().await?;
            let tx = client.transaction().await.map_err(Error::postgres)?;
            {
                let params: [&(dyn ToSql + Sync); 7] = [
                    &next.id,
                    &next.usage.as_str(),
                    &next.subject,
                    &version,
                    &material,
                    &next.created_at,
                    &next.retired_at,
                ];
                tx.execute(INSERT_KEY, &params)
                    .await
                    .map_err(|e| conflict_or(e, format!("key {}", next.id)))?;
                tx.execute(
                    "UPDATE managed_keys SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL",
                    &[&previous, &at],
                )
                .await
                .map_err(Error::postgres)?;
            }
            tx.commit().await.map_err(Error::postgres)
        })
    }

    fn latest_managed_key<'a>(
        &'a self,
        usage: KeyUsage,
        subject: &'a str,
    ) -> StoreFuture<'a, Option<ManagedKey>> {
        Box::pin(async move {
            let sql = format!("{KEY_SELECT} WHERE usage = $1 AND subject = $2 ORDER BY version DESC LIMIT 1");
            let rows = self.query(&sql, &[&usage.as_str(), &subject]).await?;
            rows.first().map(key_from).transpose()
        })
    }

    fn managed_key<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ManagedKey>> {
        Box::pin(async move {
            let rows = self.query(&format!("{KEY_SELECT} WHERE id = $1"), &[&id]).await?;
            rows.first().map(key_from).transpose()
        })
    }

    fn list_managed_keys(&self, usage: Option<KeyUsage>) -> StoreFuture<'_, Vec<ManagedKey>> {
        Box::pin(async move {
            let usage = usage.map(KeyUsage::as_str);
            let sql =
                format!("{KEY_SELECT} WHERE $1::TEXT IS NULL OR usage = $1 ORDER BY usage, subject, version");
            self.query(&sql, &[&usage]).await?.iter().map(key_from).collect()
        })
    }

    fn insert_claim<'a>(&'a self, cl: &'a OwnerClaim) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let stmt = super::rows::prepared(
                &conn,
                "INSERT INTO owner_claims (code_sha256, owner, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .await?;
            conn.client
                .execute(&stmt, &[&&cl.code_sha256[..], &cl.owner, &cl.created_at, &cl.expires_at])
                .await
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
        Box::pin(async move {
            let mut client = self.transaction_client().await?;
            let tx = client.transaction().await.map_err(Error::postgres)?;
            let outcome: Result<ClaimRedemption> = async {
                    let code = &code_sha256[..];
                    let claim = tx
                        .query_opt(
                            "SELECT owner, expires_at, used_at FROM owner_claims WHERE code_sha256 = $1 FOR UPDATE",
                            &[&code],
                        )
                        .await
                        .map_err(Error::postgres)?;
                    let Some(claim) = claim else { return Ok(ClaimRedemption::Unknown) };
                    let (owner, expires, used): (String, i64, Option<i64>) = (claim.get(0), claim.get(1), claim.get(2));
                    if used.is_some() {
                        return Ok(ClaimRedemption::Used);
                    }
                    if at > expires {
                        return Ok(ClaimRedemption::Expired);
                    }
                    let current = tx
                        .query_opt("SELECT owner FROM device_owners WHERE device_id = $1 FOR UPDATE", &[&device_id])
                        .await
                        .map_err(Error::postgres)?;
                    if current.is_some_and(|r| r.get::<_, String>(0) != owner) {
                        return Ok(ClaimRedemption::OwnedByAnother);
                    }
                    tx.execute(
                        "UPDATE owner_claims SET used_at = $2, used_by = $3 WHERE code_sha256 = $1",
                        &[&code, &at, &device_id],
                    )
                    .await
                    .map_err(Error::postgres)?;
                    tx.execute(
                        "INSERT INTO device_owners (device_id, owner, claimed_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (device_id) DO NOTHING",
                        &[&device_id, &owner, &at],
                    )
                    .await
                    .map_err(Error::postgres)?;
                    Ok(ClaimRedemption::Claimed { owner })
            }
            .await;
            let outcome = outcome?;
            tx.commit().await.map_err(Error::postgres)?;
            Ok(outcome)
        })
    }

    fn device_owner<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, Option<DeviceOwnership>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT device_id, owner, claimed_at FROM device_owners WHERE device_id = $1",
                    &[&device_id],
                )
                .await?;
            Ok(rows.first().map(ownership_from))
        })
    }

    fn owned_devices<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<DeviceOwnership>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT device_id, owner, claimed_at FROM device_owners WHERE owner = $1 ORDER BY device_id",
                    &[&owner],
                )
                .await?;
            Ok(rows.iter().map(ownership_from).collect())
        })
    }

    fn release_device<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            Ok(self.execute("DELETE FROM device_owners WHERE device_id = $1", &[&device_id]).await? > 0)
        })
    }
}
