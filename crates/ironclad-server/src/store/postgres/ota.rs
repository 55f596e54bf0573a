//! [`OtaStore`] on PostgreSQL. Starting a rollout and changing one run in a transaction under
//! a per-group advisory lock (several server processes share the database); an offer is one
//! upsert that keeps an existing copy wrapped to the same key.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::rows::conflict_or;
use super::{PostgresStore, connect_one};
use crate::error::{Error, Result};
use crate::store::StoreFuture;
use crate::store::ota::{DeviceRelease, OtaKey, OtaStore, Release, Rollout, RolloutChange, RolloutUpdate};

const RELEASE_COLUMNS: &str = "id, version, security_counter, product_class, size, sha256, image_hash, \
     signed_len, wrap, signer, decryption_key, file_name, note, uploaded_at, uploaded_by";
const ROLLOUT_COLUMNS: &str =
    "id, release_id, group_id, percentage, state, created_at, updated_at, created_by";
const DEVICE_COLUMNS: &str = "device_id, release_id, rollout_id, state, detail, recipient, tail, image_size, \
     image_sha256, offered_at, updated_at";
const CURRENT_ROLLOUT: &str = "SELECT id, release_id, group_id, percentage, state, created_at, updated_at, \
     created_by FROM ota_rollouts WHERE group_id = $1 AND state <> 'aborted' ORDER BY seq DESC LIMIT 1";

fn hash32(text: &str, what: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| Error::postgres(format!("bad stored {what} {text:?}")))?;
    Ok(out)
}

fn unsigned(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::postgres(format!("negative {what}")))
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn key_from(r: &Row) -> Result<OtaKey> {
    Ok(OtaKey {
        key_hash: hash32(r.get(0), "key hash")?,
        name: r.get(1),
        spki_der: r.get(2),
        algorithm: r.get(3),
        created_at: r.get(4),
        created_by: r.get(5),
    })
}

fn release_from(r: &Row) -> Result<Release> {
    Ok(Release {
        id: r.get(0),
        version: r.get(1),
        security_counter: unsigned(r.get(2), "security counter")?,
        product_class: r.get(3),
        size: unsigned(r.get(4), "size")?,
        sha256: hash32(r.get(5), "release SHA-256")?,
        image_hash: hash32(r.get(6), "image hash")?,
        signed_len: unsigned(r.get(7), "signed length")?,
        wrap: r.get(8),
        signer: hash32(r.get(9), "signer")?,
        decryption_key: r.get(10),
        file_name: r.get(11),
        note: r.get(12),
        uploaded_at: r.get(13),
        uploaded_by: r.get(14),
    })
}

fn rollout_from(r: &Row) -> Result<Rollout> {
    let id: String = r.get(0);
    let pct: i64 = r.get(3);
    let state: String = r.get(4);
    Ok(Rollout {
        release_id: r.get(1),
        group_id: r.get(2),
        percentage: u8::try_from(pct)
            .map_err(|_| Error::postgres(format!("rollout {id}: bad percentage")))?,
        state: state.parse().map_err(|e| Error::postgres(format!("rollout {id}: {e}")))?,
        created_at: r.get(5),
        updated_at: r.get(6),
        created_by: r.get(7),
        id,
    })
}

fn device_from(r: &Row) -> Result<DeviceRelease> {
    let device_id: String = r.get(0);
    let state: String = r.get(3);
    Ok(DeviceRelease {
        release_id: r.get(1),
        rollout_id: r.get(2),
        state: state.parse().map_err(|e| Error::postgres(format!("device {device_id}: {e}")))?,
        detail: r.get(4),
        recipient: r.get(5),
        tail: r.get(6),
        image_size: unsigned(r.get(7), "image size")?,
        image_sha256: hash32(r.get(8), "image SHA-256")?,
        offered_at: r.get(9),
        updated_at: r.get(10),
        device_id,
    })
}

impl PostgresStore {
    async fn ota_tx_client(&self) -> Result<tokio::sync::MutexGuard<'_, tokio_postgres::Client>> {
        let mut client = self.tx_client.lock().await;
        if client.is_closed() {
            *client = connect_one(&self.url).await?;
        }
        Ok(client)
    }
}

/// Serialises rollout changes of one group across server processes until commit.
const GROUP_LOCK: &str = "SELECT pg_advisory_xact_lock(7234913, hashtext($1))";

impl OtaStore for PostgresStore {
    fn insert_ota_key<'a>(&'a self, k: &'a OtaKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let hash = hex::encode(k.key_hash);
            let params: [&(dyn ToSql + Sync); 6] =
                [&hash, &k.name, &k.spki_der, &k.algorithm, &k.created_at, &k.created_by];
            let conn = self.conn().await?;
            let stmt = super::rows::prepared(
                &conn,
                "INSERT INTO ota_keys (key_hash, name, spki, algorithm, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await?;
            conn.client
                .execute(&stmt, &params)
                .await
                .map_err(|e| conflict_or(e, format!("firmware key {hash}")))?;
            Ok(())
        })
    }

    fn ota_keys(&self) -> StoreFuture<'_, Vec<OtaKey>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT key_hash, name, spki, algorithm, created_at, created_by FROM ota_keys \
                     ORDER BY created_at, key_hash",
                    &[],
                )
                .await?;
            rows.iter().map(key_from).collect()
        })
    }

    fn insert_release<'a>(&'a self, r: &'a Release) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (counter, size, signed_len) =
                (signed(r.security_counter), signed(r.size), signed(r.signed_len));
            let (sha, image_hash, signer) =
                (hex::encode(r.sha256), hex::encode(r.image_hash), hex::encode(r.signer));
            let params: [&(dyn ToSql + Sync); 15] = [
                &r.id,
                &r.version,
                &counter,
                &r.product_class,
                &size,
                &sha,
                &image_hash,
                &signed_len,
                &r.wrap,
                &signer,
                &r.decryption_key,
                &r.file_name,
                &r.note,
                &r.uploaded_at,
                &r.uploaded_by,
            ];
            let sql = format!(
                "INSERT INTO ota_releases ({RELEASE_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            );
            let conn = self.conn().await?;
            let stmt = super::rows::prepared(&conn, &sql).await?;
            conn.client
                .execute(&stmt, &params)
                .await
                .map_err(|e| conflict_or(e, format!("release {}", r.id)))?;
            Ok(())
        })
    }

    fn release<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Release>> {
        Box::pin(async move {
            let rows = self
                .query(&format!("SELECT {RELEASE_COLUMNS} FROM ota_releases WHERE id = $1"), &[&id])
                .await?;
            rows.first().map(release_from).transpose()
        })
    }

    fn releases(&self) -> StoreFuture<'_, Vec<Release>> {
        Box::pin(async move {
            let rows = self
                .query(&format!("SELECT {RELEASE_COLUMNS} FROM ota_releases ORDER BY uploaded_at, id"), &[])
                .await?;
            rows.iter().map(release_from).collect()
        })
    }

    fn current_rollout<'a>(&'a self, group_id: &'a str) -> StoreFuture<'a, Option<Rollout>> {
        Box::pin(async move {
            let rows = self.query(CURRENT_ROLLOUT, &[&group_id]).await?;
            rows.first().map(rollout_from).transpose()
        })
    }

    fn start_rollout<'a>(&'a self, r: &'a Rollout, replaces: Option<&'a str>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut client = self.ota_tx_client().await?;
            let tx = client.transaction().await.map_err(Error::postgres)?;
            tx.execute(GROUP_LOCK, &[&r.group_id]).await.map_err(Error::postgres)?;
            let current: Option<String> = tx
                .query_opt(CURRENT_ROLLOUT, &[&r.group_id])
                .await
                .map_err(Error::postgres)?
                .map(|row| row.get(0));
            if current.as_deref() != replaces {
                return Err(Error::Conflict(format!(
                    "group {} has another current rollout ({}); check again",
                    r.group_id,
                    current.as_deref().unwrap_or("none")
                )));
            }
            tx.execute(
                "UPDATE ota_rollouts SET state = 'superseded', updated_at = $2 \
                 WHERE group_id = $1 AND state IN ('active', 'paused')",
                &[&r.group_id, &r.created_at],
            )
            .await
            .map_err(Error::postgres)?;
            let pct = i64::from(r.percentage);
            let state = r.state.as_str();
            let params: [&(dyn ToSql + Sync); 8] = [
                &r.id,
                &r.release_id,
                &r.group_id,
                &pct,
                &state,
                &r.created_at,
                &r.updated_at,
                &r.created_by,
            ];
            tx.execute(
                &format!(
                    "INSERT INTO ota_rollouts ({ROLLOUT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &params,
            )
            .await
            .map_err(|e| conflict_or(e, format!("rollout {}", r.id)))?;
            tx.commit().await.map_err(Error::postgres)
        })
    }

    fn rollout<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Rollout>> {
        Box::pin(async move {
            let rows = self
                .query(&format!("SELECT {ROLLOUT_COLUMNS} FROM ota_rollouts WHERE id = $1"), &[&id])
                .await?;
            rows.first().map(rollout_from).transpose()
        })
    }

    fn rollouts(&self) -> StoreFuture<'_, Vec<Rollout>> {
        Box::pin(async move {
            let rows = self
                .query(&format!("SELECT {ROLLOUT_COLUMNS} FROM ota_rollouts ORDER BY seq DESC"), &[])
                .await?;
            rows.iter().map(rollout_from).collect()
        })
    }

    fn live_rollout<'a>(&'a self, group_id: &'a str) -> StoreFuture<'a, Option<Rollout>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {ROLLOUT_COLUMNS} FROM ota_rollouts WHERE group_id = $1 AND state IN ('active', 'paused') \
                 ORDER BY seq DESC LIMIT 1"
            );
            let rows = self.query(&sql, &[&group_id]).await?;
            rows.first().map(rollout_from).transpose()
        })
    }

    fn update_rollout<'a>(
        &'a self,
        id: &'a str,
        change: RolloutChange,
        at: i64,
    ) -> StoreFuture<'a, RolloutUpdate> {
        Box::pin(async move {
            let mut client = self.ota_tx_client().await?;
            let tx = client.transaction().await.map_err(Error::postgres)?;
            let row = tx
                .query_opt(
                    &format!("SELECT {ROLLOUT_COLUMNS} FROM ota_rollouts WHERE id = $1 FOR UPDATE"),
                    &[&id],
                )
                .await
                .map_err(Error::postgres)?;
            let Some(row) = row else { return Ok(RolloutUpdate::NotFound) };
            let mut r = rollout_from(&row)?;
            let Some(next) = change.transition(r.state) else {
                return Ok(RolloutUpdate::WrongState(r.state));
            };
            if let RolloutChange::Stage(p) = change {
                r.percentage = p;
            }
            r.state = next;
            r.updated_at = at;
            let pct = i64::from(r.percentage);
            tx.execute(
                "UPDATE ota_rollouts SET state = $2, percentage = $3, updated_at = $4 WHERE id = $1",
                &[&id, &next.as_str(), &pct, &at],
            )
            .await
            .map_err(Error::postgres)?;
            tx.commit().await.map_err(Error::postgres)?;
            Ok(RolloutUpdate::Updated(r))
        })
    }

    fn device_release<'a>(
        &'a self,
        device_id: &'a str,
        release_id: &'a str,
    ) -> StoreFuture<'a, Option<DeviceRelease>> {
        Box::pin(async move {
            let sql =
                format!("SELECT {DEVICE_COLUMNS} FROM ota_devices WHERE device_id = $1 AND release_id = $2");
            let rows = self.query(&sql, &[&device_id, &release_id]).await?;
            rows.first().map(device_from).transpose()
        })
    }

    fn put_offer<'a>(&'a self, o: &'a DeviceRelease) -> StoreFuture<'a, DeviceRelease> {
        Box::pin(async move {
            let size = signed(o.image_size);
            let sha = hex::encode(o.image_sha256);
            let state = o.state.as_str();
            let params: [&(dyn ToSql + Sync); 11] = [
                &o.device_id,
                &o.release_id,
                &o.rollout_id,
                &state,
                &o.detail,
                &o.recipient,
                &o.tail,
                &size,
                &sha,
                &o.offered_at,
                &o.updated_at,
            ];
            // Inserts, or replaces a copy wrapped to another key; a copy for the same key stays
            // (nothing returned), and is read back.
            let sql = format!(
                "INSERT INTO ota_devices ({DEVICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (device_id, release_id) DO UPDATE SET rollout_id = excluded.rollout_id, \
                 state = excluded.state, detail = excluded.detail, recipient = excluded.recipient, \
                 tail = excluded.tail, image_size = excluded.image_size, image_sha256 = excluded.image_sha256, \
                 offered_at = excluded.offered_at, updated_at = excluded.updated_at \
                 WHERE ota_devices.recipient <> excluded.recipient RETURNING device_id"
            );
            let rows = self.query(&sql, &params).await?;
            if !rows.is_empty() {
                return Ok(o.clone());
            }
            let sql =
                format!("SELECT {DEVICE_COLUMNS} FROM ota_devices WHERE device_id = $1 AND release_id = $2");
            let rows = self.query(&sql, &[&o.device_id, &o.release_id]).await?;
            rows.first().map(device_from).transpose()?.ok_or_else(|| {
                Error::postgres(format!("offer of {} to {} vanished", o.release_id, o.device_id))
            })
        })
    }

    fn set_device_state<'a>(
        &'a self,
        device_id: &'a str,
        release_id: &'a str,
        state: ironclad_proto::ota::OtaState,
        detail: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = self
                .execute(
                    "UPDATE ota_devices SET state = $3, detail = $4, updated_at = $5 \
                     WHERE device_id = $1 AND release_id = $2",
                    &[&device_id, &release_id, &state.as_str(), &detail, &at],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn release_devices<'a>(&'a self, release_id: &'a str) -> StoreFuture<'a, Vec<DeviceRelease>> {
        Box::pin(async move {
            let sql =
                format!("SELECT {DEVICE_COLUMNS} FROM ota_devices WHERE release_id = $1 ORDER BY device_id");
            let rows = self.query(&sql, &[&release_id]).await?;
            rows.iter().map(device_from).collect()
        })
    }
}
