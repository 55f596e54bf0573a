//! [`CrlStore`] on PostgreSQL.

use tokio_postgres::Row;

use super::{PostgresStore, connect_one};
use crate::error::{Error, Result};
use crate::store::crl::{CrlEntry, CrlKey, CrlNumber, CrlPublished, CrlStore, StoredCrl, entry_revocation};
use crate::store::{Revocation, StoreFuture};

/// The registry revocation of `$1` (any issuer), else a CRL entry whose key is in `$2`: one
/// statement, so authentication still reads everything in one round trip.
pub(super) const REVOCATION_FOR: &str = "SELECT serial, reason, revoked_at, FALSE FROM revocations WHERE serial = $1 \
     UNION ALL SELECT serial, reason, revoked_at, TRUE FROM crl_entries WHERE entry_key = ANY($2) \
     ORDER BY 4 LIMIT 1";

/// Entries per insert statement.
const ENTRY_CHUNK: usize = 5_000;

pub(super) fn revocation_for_row(r: &Row) -> Revocation {
    let (serial, reason, at, from_crl): (String, String, i64, bool) =
        (r.get(0), r.get(1), r.get(2), r.get(3));
    if from_crl {
        entry_revocation(serial, &reason, at)
    } else {
        Revocation { serial, reason, revoked_at: at }
    }
}

fn stored_number(text: &str, ca: &str) -> Result<CrlNumber> {
    CrlNumber::from_stored(text).ok_or_else(|| Error::postgres(format!("CRL of {ca}: bad stored number")))
}

impl CrlStore for PostgresStore {
    fn publish_crl<'a>(
        &'a self,
        crl: &'a StoredCrl,
        entries: &'a [CrlEntry],
    ) -> StoreFuture<'a, CrlPublished> {
        Box::pin(async move {
            let ca = hex::encode(crl.ca_sha256);
            let mut client = self.tx_client.lock().await;
            if client.is_closed() {
                *client = connect_one(&self.url).await?;
            }
            let tx = client.transaction().await.map_err(Error::postgres)?;
            // Serialises publications of this CA across server processes until commit, whether
            // or not it has a CRL row to lock yet.
            tx.execute("SELECT pg_advisory_xact_lock(7234912, hashtext($1))", &[&ca])
                .await
                .map_err(Error::postgres)?;
            let current = tx
                .query_opt("SELECT number, der FROM crls WHERE ca_sha256 = $1", &[&ca])
                .await
                .map_err(Error::postgres)?;
            if let Some(row) = current {
                let number = stored_number(row.get(0), &ca)?;
                let der: Vec<u8> = row.get(1);
                if number == crl.number && der == crl.der {
                    return Ok(CrlPublished::Unchanged);
                }
                if number >= crl.number {
                    return Ok(CrlPublished::NotNewer { current: number });
                }
            }
            let count = i64::try_from(crl.entries).unwrap_or(i64::MAX);
            tx.execute(
                "INSERT INTO crls (ca_sha256, number, this_update, next_update, entries, der, published_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ca_sha256) DO UPDATE SET \
                 number = excluded.number, this_update = excluded.this_update, \
                 next_update = excluded.next_update, entries = excluded.entries, der = excluded.der, \
                 published_at = excluded.published_at",
                &[
                    &ca,
                    &crl.number.as_stored(),
                    &crl.this_update,
                    &crl.next_update,
                    &count,
                    &crl.der,
                    &crl.published_at,
                ],
            )
            .await
            .map_err(Error::postgres)?;
            tx.execute("DELETE FROM crl_entries WHERE ca_sha256 = $1", &[&ca])
                .await
                .map_err(Error::postgres)?;
            let insert = tx
                .prepare(
                    "INSERT INTO crl_entries (entry_key, ca_sha256, serial, reason, revoked_at) \
                     SELECT k, $2, s, r, t FROM unnest($1::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[]) \
                     AS u(k, s, r, t) ON CONFLICT (entry_key) DO NOTHING",
                )
                .await
                .map_err(Error::postgres)?;
            for chunk in entries.chunks(ENTRY_CHUNK) {
                let keys: Vec<String> = chunk
                    .iter()
                    .map(|e| CrlKey { issuer: crl.ca_sha256, serial: e.serial.clone() }.to_string())
                    .collect();
                let serials: Vec<&str> = chunk.iter().map(|e| e.serial.as_str()).collect();
                let reasons: Vec<&str> = chunk.iter().map(|e| e.reason.as_str()).collect();
                let times: Vec<i64> = chunk.iter().map(|e| e.revoked_at).collect();
                tx.execute(&insert, &[&keys, &ca, &serials, &reasons, &times])
                    .await
                    .map_err(Error::postgres)?;
            }
            tx.commit().await.map_err(Error::postgres)?;
            Ok(CrlPublished::Stored)
        })
    }

    fn crl<'a>(&'a self, ca_sha256: &'a [u8; 32]) -> StoreFuture<'a, Option<StoredCrl>> {
        Box::pin(async move {
            let ca = hex::encode(ca_sha256);
            let rows = self
                .query(
                    "SELECT number, this_update, next_update, entries, der, published_at FROM crls \
                     WHERE ca_sha256 = $1",
                    &[&ca],
                )
                .await?;
            rows.first()
                .map(|r| {
                    Ok(StoredCrl {
                        ca_sha256: *ca_sha256,
                        number: stored_number(r.get(0), &ca)?,
                        this_update: r.get(1),
                        next_update: r.get(2),
                        entries: r.get::<_, i64>(3).max(0) as u64,
                        der: r.get(4),
                        published_at: r.get(5),
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
        Box::pin(async move {
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            let rows = self.query(REVOCATION_FOR, &[&serial, &keys]).await?;
            Ok(rows.first().map(revocation_for_row))
        })
    }
}
