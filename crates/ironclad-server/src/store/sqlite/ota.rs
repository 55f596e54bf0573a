//! [`OtaStore`] on SQLite. Multi-statement steps (starting a rollout, an offer) run in a
//! savepoint on the single writer thread, so they cannot interleave.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::rows::conflict_or;
use crate::error::{Error, Result};
use crate::store::StoreFuture;
use crate::store::ota::{DeviceRelease, OtaKey, OtaStore, Release, Rollout, RolloutChange, RolloutUpdate};

const RELEASE_COLUMNS: &str = "id, version, security_counter, product_class, size, sha256, image_hash, \
     signed_len, wrap, signer, decryption_key, file_name, note, uploaded_at, uploaded_by";
const ROLLOUT_COLUMNS: &str =
    "id, release_id, group_id, percentage, state, created_at, updated_at, created_by";
const DEVICE_COLUMNS: &str = "device_id, release_id, rollout_id, state, detail, recipient, tail, image_size, \
     image_sha256, offered_at, updated_at";

fn hash32(text: &str, what: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| Error::sqlite(format!("bad stored {what} {text:?}")))?;
    Ok(out)
}

fn unsigned(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::sqlite(format!("negative {what}")))
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

type KeyRow = (String, String, Vec<u8>, String, i64, String);

fn key_from((hash, name, spki_der, algorithm, created_at, created_by): KeyRow) -> Result<OtaKey> {
    Ok(OtaKey { key_hash: hash32(&hash, "key hash")?, name, spki_der, algorithm, created_at, created_by })
}

/// The columns of [`RELEASE_COLUMNS`], as read.
type ReleaseRow = (
    String,
    String,
    i64,
    String,
    i64,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    String,
);

fn release_row(r: &Row<'_>) -> rusqlite::Result<ReleaseRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

fn release_from(row: ReleaseRow) -> Result<Release> {
    let (
        id,
        version,
        counter,
        product_class,
        size,
        sha,
        image_hash,
        signed_len,
        wrap,
        signer,
        dk,
        file,
        note,
        at,
        by,
    ) = row;
    Ok(Release {
        security_counter: unsigned(counter, "security counter")?,
        size: unsigned(size, "size")?,
        sha256: hash32(&sha, "release SHA-256")?,
        image_hash: hash32(&image_hash, "image hash")?,
        signed_len: unsigned(signed_len, "signed length")?,
        signer: hash32(&signer, "signer")?,
        id,
        version,
        product_class,
        wrap,
        decryption_key: dk,
        file_name: file,
        note,
        uploaded_at: at,
        uploaded_by: by,
    })
}

type RolloutRow = (String, String, String, i64, String, i64, i64, String);

fn rollout_row(r: &Row<'_>) -> rusqlite::Result<RolloutRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

fn rollout_from(
    (id, release_id, group_id, pct, state, created_at, updated_at, by): RolloutRow,
) -> Result<Rollout> {
    Ok(Rollout {
        percentage: u8::try_from(pct).map_err(|_| Error::sqlite(format!("rollout {id}: bad percentage")))?,
        state: state.parse().map_err(|e| Error::sqlite(format!("rollout {id}: {e}")))?,
        id,
        release_id,
        group_id,
        created_at,
        updated_at,
        created_by: by,
    })
}

type DeviceRow = (String, String, String, String, String, Vec<u8>, Vec<u8>, i64, String, i64, i64);

fn device_row(r: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn device_from(row: DeviceRow) -> Result<DeviceRelease> {
    let (
        device_id,
        release_id,
        rollout_id,
        state,
        detail,
        recipient,
        tail,
        size,
        sha,
        offered_at,
        updated_at,
    ) = row;
    Ok(DeviceRelease {
        state: state.parse().map_err(|e| Error::sqlite(format!("device {device_id}: {e}")))?,
        image_size: unsigned(size, "image size")?,
        image_sha256: hash32(&sha, "image SHA-256")?,
        device_id,
        release_id,
        rollout_id,
        detail,
        recipient,
        tail,
        offered_at,
        updated_at,
    })
}

fn one_rollout(c: &Connection, where_clause: &str, arg: &str) -> Result<Option<Rollout>> {
    c.prepare_cached(&format!("SELECT {ROLLOUT_COLUMNS} FROM ota_rollouts WHERE {where_clause}"))
        .and_then(|mut s| s.query_row([arg], rollout_row).optional())
        .map_err(Error::sqlite)?
        .map(rollout_from)
        .transpose()
}

fn current_rollout(c: &Connection, group: &str) -> Result<Option<Rollout>> {
    one_rollout(c, "group_id = ?1 AND state <> 'aborted' ORDER BY seq DESC LIMIT 1", group)
}

fn device_release(c: &Connection, device: &str, release: &str) -> Result<Option<DeviceRelease>> {
    c.prepare_cached(&format!(
        "SELECT {DEVICE_COLUMNS} FROM ota_devices WHERE device_id = ?1 AND release_id = ?2"
    ))
    .and_then(|mut s| s.query_row([device, release], device_row).optional())
    .map_err(Error::sqlite)?
    .map(device_from)
    .transpose()
}

impl OtaStore for SqliteStore {
    fn insert_ota_key<'a>(&'a self, key: &'a OtaKey) -> StoreFuture<'a, ()> {
        let k = key.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO ota_keys (key_hash, name, spki, algorithm, created_at, created_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hex::encode(k.key_hash), k.name, k.spki_der, k.algorithm, k.created_at, k.created_by],
            )
            .map_err(|e| conflict_or(e, format!("firmware key {}", hex::encode(k.key_hash))))?;
            Ok(())
        })
    }

    fn ota_keys(&self) -> StoreFuture<'_, Vec<OtaKey>> {
        self.call(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT key_hash, name, spki, algorithm, created_at, created_by FROM ota_keys \
                     ORDER BY created_at, key_hash",
                )
                .map_err(Error::sqlite)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                .map_err(Error::sqlite)?;
            rows.map(|r| key_from(r.map_err(Error::sqlite)?)).collect()
        })
    }

    fn insert_release<'a>(&'a self, release: &'a Release) -> StoreFuture<'a, ()> {
        let r = release.clone();
        self.call(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO ota_releases ({RELEASE_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                ),
                params![
                    r.id,
                    r.version,
                    signed(r.security_counter),
                    r.product_class,
                    signed(r.size),
                    hex::encode(r.sha256),
                    hex::encode(r.image_hash),
                    signed(r.signed_len),
                    r.wrap,
                    hex::encode(r.signer),
                    r.decryption_key,
                    r.file_name,
                    r.note,
                    r.uploaded_at,
                    r.uploaded_by
                ],
            )
            .map_err(|e| conflict_or(e, format!("release {}", r.id)))?;
            Ok(())
        })
    }

    fn release<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Release>> {
        let id = id.to_owned();
        self.call(move |c| {
            c.prepare_cached(&format!("SELECT {RELEASE_COLUMNS} FROM ota_releases WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], release_row).optional())
                .map_err(Error::sqlite)?
                .map(release_from)
                .transpose()
        })
    }

    fn releases(&self) -> StoreFuture<'_, Vec<Release>> {
        self.call(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {RELEASE_COLUMNS} FROM ota_releases ORDER BY uploaded_at, id"
                ))
                .map_err(Error::sqlite)?;
            let rows = stmt.query_map([], release_row).map_err(Error::sqlite)?;
            rows.map(|r| release_from(r.map_err(Error::sqlite)?)).collect()
        })
    }

    fn current_rollout<'a>(&'a self, group_id: &'a str) -> StoreFuture<'a, Option<Rollout>> {
        let group = group_id.to_owned();
        self.call(move |c| current_rollout(c, &group))
    }

    fn start_rollout<'a>(&'a self, rollout: &'a Rollout, replaces: Option<&'a str>) -> StoreFuture<'a, ()> {
        let (r, replaces) = (rollout.clone(), replaces.map(str::to_owned));
        self.call(move |c| {
            let sp = c.savepoint().map_err(Error::sqlite)?;
            let current = current_rollout(&sp, &r.group_id)?.map(|c| c.id);
            if current != replaces {
                return Err(Error::Conflict(format!(
                    "group {} has another current rollout ({}); check again",
                    r.group_id,
                    current.as_deref().unwrap_or("none")
                )));
            }
            sp.execute(
                "UPDATE ota_rollouts SET state = 'superseded', updated_at = ?2 \
                 WHERE group_id = ?1 AND state IN ('active', 'paused')",
                params![r.group_id, r.created_at],
            )
            .map_err(Error::sqlite)?;
            sp.execute(
                &format!(
                    "INSERT INTO ota_rollouts ({ROLLOUT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    r.id,
                    r.release_id,
                    r.group_id,
                    i64::from(r.percentage),
                    r.state.as_str(),
                    r.created_at,
                    r.updated_at,
                    r.created_by
                ],
            )
            .map_err(|e| conflict_or(e, format!("rollout {}", r.id)))?;
            sp.commit().map_err(Error::sqlite)
        })
    }

    fn rollout<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Rollout>> {
        let id = id.to_owned();
        self.call(move |c| one_rollout(c, "id = ?1", &id))
    }

    fn rollouts(&self) -> StoreFuture<'_, Vec<Rollout>> {
        self.call(|c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {ROLLOUT_COLUMNS} FROM ota_rollouts ORDER BY seq DESC"))
                .map_err(Error::sqlite)?;
            let rows = stmt.query_map([], rollout_row).map_err(Error::sqlite)?;
            rows.map(|r| rollout_from(r.map_err(Error::sqlite)?)).collect()
        })
    }

    fn live_rollout<'a>(&'a self, group_id: &'a str) -> StoreFuture<'a, Option<Rollout>> {
        let group = group_id.to_owned();
        self.call(move |c| {
            one_rollout(
                c,
                "group_id = ?1 AND state IN ('active', 'paused') ORDER BY seq DESC LIMIT 1",
                &group,
            )
        })
    }

    fn update_rollout<'a>(
        &'a self,
        id: &'a str,
        change: RolloutChange,
        at: i64,
    ) -> StoreFuture<'a, RolloutUpdate> {
        let id = id.to_owned();
        self.call(move |c| {
            let sp = c.savepoint().map_err(Error::sqlite)?;
            let Some(mut r) = one_rollout(&sp, "id = ?1", &id)? else {
                return Ok(RolloutUpdate::NotFound);
            };
            let Some(next) = change.transition(r.state) else {
                return Ok(RolloutUpdate::WrongState(r.state));
            };
            if let RolloutChange::Stage(p) = change {
                r.percentage = p;
            }
            r.state = next;
            r.updated_at = at;
            sp.execute(
                "UPDATE ota_rollouts SET state = ?2, percentage = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, next.as_str(), i64::from(r.percentage), at],
            )
            .map_err(Error::sqlite)?;
            sp.commit().map_err(Error::sqlite)?;
            Ok(RolloutUpdate::Updated(r))
        })
    }

    fn device_release<'a>(
        &'a self,
        device_id: &'a str,
        release_id: &'a str,
    ) -> StoreFuture<'a, Option<DeviceRelease>> {
        let (device, release) = (device_id.to_owned(), release_id.to_owned());
        self.call(move |c| device_release(c, &device, &release))
    }

    fn put_offer<'a>(&'a self, offer: &'a DeviceRelease) -> StoreFuture<'a, DeviceRelease> {
        let o = offer.clone();
        self.call(move |c| {
            let sp = c.savepoint().map_err(Error::sqlite)?;
            if let Some(existing) = device_release(&sp, &o.device_id, &o.release_id)?
                && existing.recipient == o.recipient
            {
                return Ok(existing);
            }
            sp.execute(
                &format!(
                    "INSERT OR REPLACE INTO ota_devices ({DEVICE_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    o.device_id,
                    o.release_id,
                    o.rollout_id,
                    o.state.as_str(),
                    o.detail,
                    o.recipient,
                    o.tail,
                    signed(o.image_size),
                    hex::encode(o.image_sha256),
                    o.offered_at,
                    o.updated_at
                ],
            )
            .map_err(Error::sqlite)?;
            sp.commit().map_err(Error::sqlite)?;
            Ok(o)
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
        let (device, release, detail) = (device_id.to_owned(), release_id.to_owned(), detail.to_owned());
        self.call(move |c| {
            let n = c
                .execute(
                    "UPDATE ota_devices SET state = ?3, detail = ?4, updated_at = ?5 \
                     WHERE device_id = ?1 AND release_id = ?2",
                    params![device, release, state.as_str(), detail, at],
                )
                .map_err(Error::sqlite)?;
            Ok(n == 1)
        })
    }

    fn release_devices<'a>(&'a self, release_id: &'a str) -> StoreFuture<'a, Vec<DeviceRelease>> {
        let release = release_id.to_owned();
        self.call(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM ota_devices WHERE release_id = ?1 ORDER BY device_id"
                ))
                .map_err(Error::sqlite)?;
            let rows = stmt.query_map([&release], device_row).map_err(Error::sqlite)?;
            rows.map(|r| device_from(r.map_err(Error::sqlite)?)).collect()
        })
    }
}
