//! The demo's command and log stages: the operator sends a signed command to a device, which
//! checks it against the server key it pinned, runs it once, reports the outcome as telemetry
//! signed in its secure element, and refuses the same command replayed; then the device gets
//! its log key wrapped to its X25519 key, writes encrypted records to its "SD card", uploads
//! the file, and an operator reads it back through the server.

use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use hyper::Method;
use ironclad_agent::{
    CommandGate, DeviceConnection, DeviceIdentity, Error as AgentError, LogSync, LogWriter, OperatorClient,
    SeCoseSigner, install_log_key, load_log_key,
};
use ironclad_proto::{CborValue, LogEntry, LogLevel, Telemetry};
use ironclad_se::{KeyHandle, Label, SecureElement};
use ironclad_server::{Registry, Role};
use serde_json::json;

use crate::station::{AUTH_KEY, Device, FW_KEY};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn operator(
    endpoint: &ironclad_agent::ServerEndpoint,
    registry: &Registry,
    name: &str,
) -> Result<OperatorClient> {
    let secret = registry.create_api_token(name, Role::Operator).await?.secret;
    Ok(OperatorClient::connect(endpoint, &secret).await?)
}

async fn connect(endpoint: &ironclad_agent::ServerEndpoint, device: &Device) -> Result<DeviceConnection> {
    let mut conn =
        DeviceConnection::connect(endpoint, DeviceIdentity::from_secure_element(device.se.clone())?).await?;
    conn.authenticate().await?;
    Ok(conn)
}

fn signed_report(
    se: &Arc<dyn SecureElement>,
    device_id: &str,
    sequence: u64,
    data: serde_json::Value,
) -> Result<Vec<u8>> {
    let key = KeyHandle::open(se.clone(), &Label::new(AUTH_KEY)?)?;
    let report = Telemetry {
        device_id: device_id.to_owned(),
        sequence,
        time: now(),
        data: CborValue::serialized(&data)?,
    };
    Ok(report.sign(&SeCoseSigner::new(key)?)?)
}

/// A signed command executed once, its replay and a copy retargeted at another device refused.
pub(crate) fn command_stage(
    rt: &tokio::runtime::Runtime,
    endpoint: &ironclad_agent::ServerEndpoint,
    registry: &Registry,
    device: &Device,
    other: &Device,
) -> Result<String> {
    rt.block_on(async {
        let mut ops = operator(endpoint, registry, "demo-ops").await?;
        let mut conn = connect(endpoint, device).await?;
        let keys = conn.server_keys("command-signing").await.context("pinning the server's command key")?;
        let gate = CommandGate::new(device.se.clone(), device.id.clone(), keys.clone())?;
        let issued = ops
            .call(
                Method::POST,
                &format!("/v1/registry/devices/{}/commands", device.id),
                Some(&json!({"name": "set-stream-quality", "args": {"resolution": "1080p", "fps": 30}, "ttl_secs": 120})),
            )
            .await
            .context("issuing the command")?;
        let fetched = conn.poll_commands(gate.last_accepted()?).await?;
        let command = fetched.last().context("the device received no command")?;
        let verified = gate.check(&command.cose, now()).context("the device refused a genuine command")?;
        let seq = verified.command().sequence;
        ensure!(Some(seq) == issued["sequence"].as_u64(), "sequence mismatch");
        conn.post_telemetry(signed_report(&device.se, &device.id, 1, json!({"command": seq, "outcome": "executed"}))?)
            .await?;

        // The same bytes again (a replay) and on another device (retargeted): refused, reported.
        let replay = match gate.check(&command.cose, now()) {
            Err(AgentError::CommandRefused { refusal, .. }) => refusal,
            Ok(_) => bail!("a replayed command ran twice"),
            Err(e) => return Err(e.into()),
        };
        let other_gate = CommandGate::new(other.se.clone(), other.id.clone(), keys)?;
        let retarget = match other_gate.check(&command.cose, now()) {
            Err(AgentError::CommandRefused { refusal, .. }) => refusal,
            Ok(_) => bail!("a command for {} ran on {}", device.id, other.id),
            Err(e) => return Err(e.into()),
        };
        let listed = ops.call(Method::GET, &format!("/v1/registry/devices/{}/commands", device.id), None).await?;
        let status = listed[0]["status"].as_str().unwrap_or_default().to_owned();
        ensure!(status == "executed", "the server shows the command as {status}");
        Ok(format!(
            "set-stream-quality #{seq} signed in the server's SE ({}), checked and run once by {}, reported in signed telemetry ({status}); replay refused ({}), copy on {} refused ({})",
            issued["kid"].as_str().unwrap_or_default(),
            device.id,
            replay.name(),
            other.id,
            retarget.name()
        ))
    })
}

/// Encrypted logs: key delivered wrapped, records encrypted on the device, uploaded, read.
pub(crate) fn logs_stage(
    rt: &tokio::runtime::Runtime,
    endpoint: &ironclad_agent::ServerEndpoint,
    registry: &Registry,
    device: &Device,
    card: &std::path::Path,
) -> Result<String> {
    rt.block_on(async {
        let mut conn = connect(endpoint, device).await?;
        let fw = Label::new(FW_KEY)?;
        let public = device.se.key_info(&fw)?.public;
        let (key_id, delivery) = conn.request_log_key(public.as_bytes()).await?;
        install_log_key(&device.se, &fw, &device.id, &delivery).context("unwrapping the log key in the SE")?;
        let path = card.join(format!("{}.log", device.id));
        let mut writer = LogWriter::open(&path, load_log_key(&device.se)?, device.id.clone(), LogSync::Manual)?;
        let messages = [
            "boot: firmware 1.1.0 confirmed",
            "wifi: joined ssid HOME-NETWORK-7F",
            "motion: person detected at front door",
            "stream: front started for owner",
            "door: unlocked by code 4711",
        ];
        for (i, m) in messages.iter().enumerate() {
            writer.append(&LogEntry { time: now() + i as u64, level: LogLevel::Info, message: (*m).to_owned() })?;
        }
        drop(writer);
        let file = std::fs::read(&path)?;
        for m in messages {
            ensure!(!file.windows(m.len()).any(|w| w == m.as_bytes()), "plaintext {m:?} on the card");
        }
        let upload = conn.upload_log(file.clone()).await?;
        let mut ops = operator(endpoint, registry, "demo-log-reader").await?;
        let report = ops.call(Method::GET, &format!("/v1/logs/{}", upload.upload_id), None).await?;
        ensure!(report["intact"] == true && report["opened"] == messages.len(), "report: {report}");
        ensure!(report["records"][2]["message"] == messages[2], "decrypted text differs");

        // A record altered on the card: detected; the others still read.
        let mut altered = file;
        let at = altered.len() * 3 / 5;
        altered[at] ^= 0x20;
        let upload2 = conn.upload_log(altered).await?;
        let report2 = ops.call(Method::GET, &format!("/v1/logs/{}", upload2.upload_id), None).await?;
        let opened = report2["opened"].as_u64().unwrap_or(0);
        ensure!(report2["intact"] == false && opened == messages.len() as u64 - 1, "altered report: {report2}");
        Ok(format!(
            "{}: log key {key_id} delivered wrapped to its X25519 key and sealed in its SE; {} records, {} bytes on the card, no plaintext; uploaded and read by an operator; a record altered on the card detected, {opened} others read",
            device.id,
            messages.len(),
            std::fs::metadata(&path)?.len()
        ))
    })
}
