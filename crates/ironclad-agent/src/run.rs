//! The long-running device agent (`ironclad device run`): connect, authenticate, keep the
//! session fresh (re-authenticating on the same connection before it expires), report a
//! heartbeat into the device's state document, and reconnect with backoff on failure.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::device::{DeviceConnection, ServerEndpoint};
use crate::error::Result;
use crate::identity::DeviceIdentity;

/// Timing of [`run_device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// Between heartbeats (default 30 s).
    pub heartbeat: Duration,
    /// Longest wait between reconnection attempts (default 30 s; starts at 1 s, doubling).
    pub max_backoff: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { heartbeat: Duration::from_secs(30), max_backoff: Duration::from_secs(30) }
    }
}

/// What the agent reports while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentEvent {
    /// Mutual TLS established.
    Connected {
        /// TLS version.
        protocol: Option<String>,
    },
    /// Challenge-response succeeded.
    Authenticated {
        /// Device ID.
        device_id: String,
        /// Session lifetime, seconds.
        expires_in: u64,
    },
    /// Heartbeat written.
    Heartbeat {
        /// State document version.
        version: u64,
    },
    /// The connection failed; the agent will retry.
    Disconnected {
        /// Why.
        error: String,
        /// Seconds until the next attempt.
        retry_in: u64,
    },
}

/// Runs until `stop` turns true.
pub async fn run_device(
    endpoint: &ServerEndpoint,
    identity: DeviceIdentity,
    options: RunOptions,
    mut stop: watch::Receiver<bool>,
    on_event: &(dyn Fn(AgentEvent) + Send + Sync),
) -> Result<()> {
    let mut backoff = Duration::from_secs(1);
    while !*stop.borrow() {
        let outcome =
            session_loop(endpoint, identity.clone(), options, &mut stop, on_event, &mut backoff).await;
        let Err(e) = outcome else { return Ok(()) };
        on_event(AgentEvent::Disconnected { error: e.to_string(), retry_in: backoff.as_secs() });
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(options.max_backoff);
    }
    Ok(())
}

async fn session_loop(
    endpoint: &ServerEndpoint,
    identity: DeviceIdentity,
    options: RunOptions,
    stop: &mut watch::Receiver<bool>,
    on_event: &(dyn Fn(AgentEvent) + Send + Sync),
    backoff: &mut Duration,
) -> Result<()> {
    let mut conn = DeviceConnection::connect(endpoint, identity).await?;
    on_event(AgentEvent::Connected { protocol: conn.protocol_version() });
    loop {
        let renew = conn.session().is_none_or(|s| s.remaining() < options.heartbeat * 2);
        if renew {
            let s = conn.authenticate().await?;
            on_event(AgentEvent::Authenticated {
                device_id: s.device_id().to_owned(),
                expires_in: s.remaining().as_secs(),
            });
            *backoff = Duration::from_secs(1);
        }
        let unix = time::OffsetDateTime::now_utc().unix_timestamp();
        let state = conn.put_state(serde_json::json!({ "heartbeat": unix })).await?;
        on_event(AgentEvent::Heartbeat { version: state.version });
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tokio::time::sleep(options.heartbeat) => {}
        }
    }
}
