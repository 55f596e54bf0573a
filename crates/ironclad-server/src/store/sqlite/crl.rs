//! [`CrlStore`] on SQLite.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::store::crl::{CrlEntry, CrlKey, CrlNumber, CrlPublished, CrlStore, StoredCrl, entry_revocation};
use crate::store::{Revocation, StoreFuture};

impl CrlStore for SqliteStore {
    fn publish_crl<'a>(
        &'a self,
        crl: &'a StoredCrl,
        entries: &'a [CrlEntry],
    ) -> StoreFuture<'a, CrlPublished> {
        let (crl, entries) = (crl.clone(), entries.to_vec());
        self.call(move |c| {
            let ca = hex::encode(crl.ca_sha256);
            // One writer thread: the check and the writes cannot interleave with another
            // publication; the savepoint makes them all-or-nothing.
            let sp = c.savepoint().map_err(Error::sqlite)?;
            let current: Option<(String, Vec<u8>)> = sp
                .prepare_cached("SELECT number, der FROM crls WHERE ca_sha256 = ?1")
                .and_then(|mut s| s.query_row([&ca], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(Error::sqlite)?;
            if let Some((number, der)) = current {
                let number = CrlNumber::from_stored(&number)
                    .ok_or_else(|| Error::sqlite(format!("CRL of {ca}: bad stored number")))?;
                if number == crl.number && der == crl.der {
                    return Ok(CrlPublished::Unchanged);
                }
                if number >= crl.number {
                    return Ok(CrlPublished::NotNewer { current: number });
                }
            }
            sp.execute(
                "INSERT INTO crls (ca_sha256, number, this_update, next_update, entries, der, published_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(ca_sha256) DO UPDATE SET \
                 number = excluded.number, this_update = excluded.this_update, \
                 next_update = excluded.next_update, entries = excluded.entries, der = excluded.der, \
                 published_at = excluded.published_at",
                params![
                    ca,
                    crl.number.as_stored(),
                    crl.this_update,
                    crl.next_update,
                    i64::try_from(crl.entries).unwrap_or(i64::MAX),
                    crl.der,
                    crl.published_at
                ],
            )
            .map_err(Error::sqlite)?;
            sp.execute("DELETE FROM crl_entries WHERE ca_sha256 = ?1", [&ca]).map_err(Error::sqlite)?;
            {
                let mut insert = sp
                    .prepare_cached(
                        "INSERT INTO crl_entries (entry_key, ca_sha256, serial, reason, revoked_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(entry_key) DO NOTHING",
                    )
                    .map_err(Error::sqlite)?;
                for e in &entries {
                    let key = CrlKey { issuer: crl.ca_sha256, serial: e.serial.clone() };
                    insert
                        .execute(params![key.to_string(), ca, e.serial, e.reason, e.revoked_at])
                        .map_err(Error::sqlite)?;
                }
            }
            sp.commit().map_err(Error::sqlite)?;
            Ok(CrlPublished::Stored)
        })
    }

    fn crl<'a>(&'a self, ca_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<StoredCrl>> {
        let ca = hex::encode(ca_sha256);
        self.call(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT ca_sha256, number, this_update, next_update, entries, der, published_at \
                     FROM crls WHERE ca_sha256 = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&ca], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, Vec<u8>>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    })
                    .optional()
                })
                .map_err(Error::sqlite)?;
            row.map(|(ca, number, this_update, next_update, entries, der, published_at)| {
                Ok(StoredCrl {
                    ca_sha256: ca_hash(&ca)?,
                    number: CrlNumber::from_stored(&number)
                        .ok_or_else(|| Error::sqlite(format!("CRL of {ca}: bad stored number")))?,
                    this_update,
                    next_update,
                    entries: entries.max(0) as u64,
                    der,
                    published_at,
                })
            })
            .transpose()
        })
    }

    fn revocation_for<'a>(
        &'a self,
        serial: &'a str,
        keys: &'a [CrlKey],
    ) -> StoreFuture<'a, Option<Revocation>> {
        let serial = serial.to_owned();
        let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
        self.call(move |c| revocation_for(c, &serial, &keys))
    }
}

/// The registry revocation of `serial`, else the first CRL entry among `keys` (entry keys,
/// [`CrlKey`]'s text): what authentication reads, inside its admission job.
pub(super) fn revocation_for(c: &Connection, serial: &str, keys: &[String]) -> Result<Option<Revocation>> {
    if let Some(r) = super::revocation_of(c, serial)? {
        return Ok(Some(r));
    }
    let mut stmt = c
        .prepare_cached("SELECT serial, reason, revoked_at FROM crl_entries WHERE entry_key = ?1")
        .map_err(Error::sqlite)?;
    for key in keys {
        let hit = stmt
            .query_row([key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
            .optional()
            .map_err(Error::sqlite)?;
        if let Some((serial, reason, at)) = hit {
            return Ok(Some(entry_revocation(serial, &reason, at)));
        }
    }
    Ok(None)
}

fn ca_hash(text: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| Error::sqlite(format!("bad stored CA hash {text:?}")))?;
    Ok(out)
}
