//! [`TrustSignal`] on PostgreSQL: a dedicated connection LISTENs on one channel; announcements
//! are `pg_notify` on it, delivered by the database to every listening server process when the
//! announcing transaction commits.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use super::PostgresStore;
use crate::error::Result;
use crate::store::StoreFuture;
use crate::store::notify::TrustSignal;

/// The notification channel.
const CHANNEL: &str = "ironclad_trust";

impl TrustSignal for PostgresStore {
    fn trust_changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.trust_rx.clone())
    }

    fn announce_trust_change(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.query("SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
            Ok(())
        })
    }
}

/// Starts the listener for `url`; it stops when every receiver is gone (the store dropped).
pub(super) fn spawn_listener(url: String) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                r = listen_once(&url, &tx) => {
                    if let Err(e) = r {
                        tracing::warn!("trust-change listener: {e}; reconnecting");
                    }
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    rx
}

/// One connection's life: LISTEN, then tick on every notification until it closes.
async fn listen_once(url: &str, tx: &watch::Sender<u64>) -> Result<()> {
    let (client, mut connection) =
        tokio_postgres::connect(url, NoTls).await.map_err(crate::Error::postgres)?;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    // The connection is driven here: its messages are the notifications.
    let driver = tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message
                && n.channel() == CHANNEL
                && seen_tx.send(()).is_err()
            {
                break;
            }
        }
    });
    let listening = client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(crate::Error::postgres);
    if listening.is_ok() {
        // Whatever was announced while this listener was not connected is covered by one tick.
        tx.send_modify(|n| *n += 1);
        while seen.recv().await.is_some() {
            tx.send_modify(|n| *n += 1);
        }
    }
    driver.abort();
    listening.map(|_| ())
}
