//! `ironclad device run`: the device agent on a provisioned device.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use ironclad_agent::{AgentEvent, DeviceConnection, DeviceIdentity, RunOptions, run_device};
use ironclad_se::SecureElement;

use crate::remote::{ServerArgs, runtime};
use crate::station::open_device;

/// Run the device agent: authenticate to the cloud and keep the session fresh.
///
/// Connects with mutual TLS (the handshake signed by the key in the device's secure element),
/// answers the server's challenge (signed in the element and bound to this TLS session), keeps
/// the session fresh and writes a heartbeat into the device's state document. Reconnects with
/// backoff until Ctrl-C; --once authenticates, writes one heartbeat and exits (non-zero if
/// refused).
///
/// --device is a directory made by `ironclad factory provision --devices-dir`.
///
/// Example:
///   ironclad device run --device devices/cam-PO-1-000001 --server 127.0.0.1:8443 \
///       --server-ca ironclad-server-ca.pem --once
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct DeviceRunArgs {
    /// The provisioned device's directory (its secure element and device secret).
    #[arg(long, value_name = "DIR")]
    device: PathBuf,
    #[command(flatten)]
    server: ServerArgs,
    /// Authenticate, write one heartbeat, and exit.
    #[arg(long)]
    once: bool,
    /// Seconds between heartbeats.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    heartbeat: u64,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: DeviceRunArgs) -> Result<()> {
    let se: Arc<dyn SecureElement> = Arc::new(open_device(&args.device)?);
    let identity = DeviceIdentity::from_secure_element(se)
        .with_context(|| format!("device identity in {}", args.device.display()))?;
    let endpoint = args.server.endpoint()?;
    let json = args.json;
    let print = move |event: AgentEvent| {
        if json {
            if let Ok(line) = serde_json::to_string(&event) {
                println!("{line}");
            }
        } else {
            println!("{}", describe(&event));
        }
    };
    let rt = runtime()?;
    rt.block_on(async {
        if args.once {
            let mut conn = DeviceConnection::connect(&endpoint, identity)
                .await
                .with_context(|| format!("connecting to {}", args.server.server))?;
            print(AgentEvent::Connected { protocol: conn.protocol_version() });
            let session = conn.authenticate().await.context("authentication refused")?;
            print(AgentEvent::Authenticated {
                device_id: session.device_id().to_owned(),
                expires_in: session.remaining().as_secs(),
            });
            let unix = time::OffsetDateTime::now_utc().unix_timestamp();
            let state = conn.put_state(serde_json::json!({ "heartbeat": unix })).await?;
            print(AgentEvent::Heartbeat { version: state.version });
            return Ok(());
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop_tx.send(true);
        });
        let mut options = RunOptions::default();
        options.heartbeat = Duration::from_secs(args.heartbeat.max(1));
        run_device(&endpoint, identity, options, stop_rx, &print).await?;
        Ok(())
    })
}

fn describe(event: &AgentEvent) -> String {
    match event {
        AgentEvent::Connected { protocol } => {
            format!("connected (mutual TLS, {})", protocol.as_deref().unwrap_or("?"))
        }
        AgentEvent::Authenticated { device_id, expires_in } => {
            format!("authenticated as {device_id}; session for {expires_in} s")
        }
        AgentEvent::Heartbeat { version } => format!("heartbeat written (state version {version})"),
        AgentEvent::Disconnected { error, retry_in } => {
            format!("disconnected: {error}; retrying in {retry_in} s")
        }
        other => format!("{other:?}"),
    }
}
