//! Commands, telemetry and logs over the device API, and their operator side.
//!
//! - Commands: an operator asks (`POST /v1/registry/devices/{id}/commands`); the server takes
//!   the device's next sequence, signs a COSE_Sign1 with the vault's command-signing key (inside
//!   the secure element) and queues it; the device polls, checks everything itself, and reports
//!   the outcome as signed telemetry.
//! - Telemetry: a COSE_Sign1 by the device's own key, verified with the public key of the
//!   certificate on this very connection; kept only if its sequence moves forward.
//! - Logs: the vault's per-device log key, wrapped to the device's X25519 key; the device's
//!   encrypted log file uploaded as is; decrypted only when an operator reads it (audited).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ironclad_proto::api::{
    CommandBatch, CommandEnvelope, IssueCommand, LogKeyDelivery, LogKeyRequest, LogUploaded, ServerKey,
    ServerKeys,
};
use ironclad_proto::{
    CborValue, Command, FnSigner, LogKey, LogRecordOutcome, SigAlg, SignedTelemetry, VerifyingKey,
    read_log_file, wrap_log_key,
};
use ironclad_se::SignInput;
use serde::Deserialize;
use serde_json::{Value, json};

use super::operator::Operator;
use super::{ApiError, AppState, bearer};
use crate::error::Error;
use crate::store::{KeyMaterial, KeyUsage, LogUpload, Role, StoredCommand, StoredTelemetry};
use crate::tls::ConnectionInfo;
use crate::vault::KeyVault;

/// Default and longest command lifetime.
const DEFAULT_COMMAND_TTL: u64 = 300;
const MAX_COMMAND_TTL: u64 = 7 * 86_400;
/// Commands handed out per poll.
const COMMAND_BATCH: u32 = 64;
/// Largest log record the reader accepts.
const MAX_LOG_RECORD: usize = 64 * 1024;

fn vault(app: &AppState) -> Result<&KeyVault, Error> {
    app.vault.as_ref().ok_or_else(|| Error::Vault("no key vault is configured on this server".into()))
}

fn json_to_cbor(value: &Value) -> Result<CborValue, Error> {
    CborValue::serialized(value).map_err(|e| Error::Invalid(format!("arguments: {e}")))
}

fn cbor_to_json(value: &CborValue) -> Value {
    value.deserialized::<Value>().unwrap_or(Value::Null)
}

// ---- device side -----------------------------------------------------------------------

pub(crate) async fn server_keys(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ServerKeys>, ApiError> {
    app.device
        .device_session("device.server_keys", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let vault = vault(&app).map_err(ApiError::device)?;
    let mut keys = Vec::new();
    for usage in [KeyUsage::CommandSigning, KeyUsage::ManifestSigning] {
        vault.current(usage, "").await.map_err(ApiError::device)?;
        for key in vault.list(Some(usage)).await.map_err(ApiError::device)? {
            if let KeyMaterial::InSecureElement { public_key, .. } = &key.material {
                keys.push(ServerKey {
                    usage: usage.to_string(),
                    kid: key.id.clone(),
                    spki_hex: hex::encode(public_key),
                });
            }
        }
    }
    Ok(Json(ServerKeys { keys }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AfterQuery {
    #[serde(default)]
    after: u64,
}

pub(crate) async fn poll_commands(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    Query(q): Query<AfterQuery>,
    headers: HeaderMap,
) -> Result<Json<CommandBatch>, ApiError> {
    let session = app
        .device
        .device_session("device.commands", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let commands = app
        .registry
        .store()
        .commands_after(&session.device_id, q.after, COMMAND_BATCH)
        .await
        .map_err(ApiError::device)?;
    Ok(Json(CommandBatch {
        commands: commands
            .into_iter()
            .map(|c| CommandEnvelope { sequence: c.sequence, cose_b64: B64.encode(&c.signed) })
            .collect(),
    }))
}

/// The public key of the certificate on this connection.
fn connection_key(conn: &ConnectionInfo) -> Result<VerifyingKey, Error> {
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| Error::Invalid("no client certificate".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| Error::Invalid(format!("client certificate: {e}")))?;
    VerifyingKey::from_spki_der(cert.tbs_certificate.subject_pki.raw)
        .map_err(|e| Error::Invalid(e.to_string()))
}

pub(crate) async fn post_telemetry(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let session = app
        .device
        .device_session("device.telemetry", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let refuse = |why: String| ApiError::device(Error::Invalid(format!("telemetry refused: {why}")));
    let key = connection_key(&conn).map_err(ApiError::device)?;
    let parsed = SignedTelemetry::parse(&body, &ironclad_proto::Limits::default())
        .map_err(|e| refuse(e.to_string()))?;
    let verified = parsed.verify(&key).map_err(|e| refuse(e.to_string()))?;
    let t = verified.into_telemetry();
    if t.device_id != session.device_id {
        return Err(ApiError::device(Error::Forbidden(format!("telemetry names {}", t.device_id))));
    }
    let now = app.device.clock.unix();
    let data = cbor_to_json(&t.data);
    let stored = StoredTelemetry {
        device_id: t.device_id.clone(),
        sequence: t.sequence,
        device_time: i64::try_from(t.time).unwrap_or(i64::MAX),
        received_at: now,
        data_json: data.to_string(),
    };
    if !app.registry.store().insert_telemetry(&stored).await.map_err(ApiError::device)? {
        tracing::info!(device = %t.device_id, sequence = t.sequence, "telemetry replayed or stale");
        return Err(ApiError::device(Error::Conflict(format!("telemetry {} is not newer", t.sequence))));
    }
    // A command report: {"command": N, "outcome": "executed" | "refused:<reason>"}.
    if let (Some(seq), Some(outcome)) = (data["command"].as_u64(), data["outcome"].as_str()) {
        let outcome: String = outcome.chars().take(80).collect();
        app.registry
            .store()
            .report_command(&t.device_id, seq, &outcome, now)
            .await
            .map_err(ApiError::device)?;
        app.device
            .audit(
                "command.report",
                &conn,
                None,
                format!("command {seq}: {outcome}"),
                Some(t.device_id.clone()),
            )
            .await
            .map_err(ApiError::device)?;
    }
    Ok(Json(json!({ "device_id": t.device_id, "sequence": t.sequence, "stored": true })))
}

pub(crate) async fn log_key(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<LogKeyRequest>,
) -> Result<Json<LogKeyDelivery>, ApiError> {
    let session = app
        .device
        .device_session("device.log_key", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let public = hex::decode(&req.x25519_public_hex)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| ApiError::device(Error::Invalid("x25519_public_hex: 32 bytes, hex".into())))?;
    let vault = vault(&app).map_err(ApiError::device)?;
    let key = vault.current(KeyUsage::Log, &session.device_id).await.map_err(ApiError::device)?;
    let secret = vault.secret(&key, KeyUsage::Log).map_err(ApiError::device)?;
    let log_key =
        LogKey::from_secret(&key.id, &secret).map_err(|e| ApiError::device(Error::Vault(e.to_string())))?;
    let wrapped = wrap_log_key(&log_key, &session.device_id, &public)
        .map_err(|e| ApiError::device(Error::Invalid(e.to_string())))?;
    app.device
        .audit(
            "device.log_key",
            &conn,
            None,
            format!("{} delivered wrapped", key.id),
            Some(session.device_id),
        )
        .await
        .map_err(ApiError::device)?;
    Ok(Json(LogKeyDelivery { key_id: key.id, delivery_b64: B64.encode(wrapped) }))
}

pub(crate) async fn upload_log(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LogUploaded>, ApiError> {
    let session = app
        .device
        .device_session("device.log_upload", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    if body.len() < ironclad_proto::LOG_FILE_HEADER_LEN || !body.starts_with(ironclad_proto::LOG_FILE_MAGIC) {
        return Err(ApiError::device(Error::Invalid("not an ironclad log file".into())));
    }
    let mut id = [0u8; 12];
    aws_lc_rs::rand::fill(&mut id)
        .map_err(|_| ApiError::device(Error::Vault("random generator failed".into())))?;
    let upload = LogUpload {
        id: hex::encode(id),
        device_id: session.device_id.clone(),
        uploaded_at: app.device.clock.unix(),
        size: body.len() as u64,
        content: body.to_vec(),
    };
    app.registry.store().insert_log_upload(&upload).await.map_err(ApiError::device)?;
    app.device
        .audit(
            "device.log_upload",
            &conn,
            None,
            format!("log {} ({} bytes)", upload.id, upload.size),
            Some(session.device_id),
        )
        .await
        .map_err(ApiError::device)?;
    Ok(Json(LogUploaded { upload_id: upload.id, size: upload.size }))
}

// ---- operator side ---------------------------------------------------------------------

pub(crate) async fn issue_command(
    State(app): State<AppState>,
    who: Operator,
    Path(device_id): Path<String>,
    Json(req): Json<IssueCommand>,
) -> Result<Json<Value>, ApiError> {
    who.require(Role::Operator)?;
    let op = ApiError::operator;
    if req.name.is_empty() || req.name.len() > ironclad_proto::MAX_NAME_LEN {
        return Err(op(Error::Invalid("command name: 1-128 bytes".into())));
    }
    if app.registry.store().device(&device_id).await.map_err(op)?.is_none() {
        return Err(op(Error::NotFound(format!("device {device_id} has never authenticated"))));
    }
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_COMMAND_TTL);
    if ttl == 0 || ttl > MAX_COMMAND_TTL {
        return Err(op(Error::Invalid(format!("ttl_secs: 1 to {MAX_COMMAND_TTL}"))));
    }
    let args = json_to_cbor(&req.args).map_err(op)?;
    let (key, handle) = vault(&app).map_err(op)?.signer(KeyUsage::CommandSigning).await.map_err(op)?;
    let sequence = app.registry.store().reserve_command_sequence(&device_id).await.map_err(op)?;
    let now = app.device.clock.unix();
    let issued_at = u64::try_from(now).unwrap_or(0);
    let command = Command {
        target: device_id.clone(),
        sequence,
        issued_at,
        expires: issued_at + ttl,
        name: req.name.clone(),
        args,
    };
    let signer = FnSigner::new(SigAlg::Es256, |m: &[u8]| {
        handle.sign(SignInput::Message(m)).map_err(|e| e.to_string())
    });
    let signed = command.sign(&signer, key.id.as_bytes()).map_err(|e| op(Error::Vault(e.to_string())))?;
    let stored = StoredCommand {
        device_id: device_id.clone(),
        sequence,
        name: req.name.clone(),
        signed: signed.clone(),
        issued_by: who.name().to_owned(),
        issued_at: now,
        expires_at: now + i64::try_from(ttl).unwrap_or(0),
        status: "pending".into(),
        reported_at: None,
    };
    app.registry.store().insert_command(&stored).await.map_err(op)?;
    who.audit(
        &app,
        "command.issue",
        format!("command {sequence} {} signed by {}", req.name, key.id),
        Some(device_id.clone()),
    )
    .await?;
    Ok(Json(json!({
        "device_id": device_id, "sequence": sequence, "name": req.name, "kid": key.id,
        "expires_at": stored.expires_at, "cose_b64": B64.encode(&signed),
    })))
}

pub(crate) async fn list_commands(
    State(app): State<AppState>,
    who: Operator,
    Path(device_id): Path<String>,
) -> Result<Json<Vec<StoredCommand>>, ApiError> {
    who.require(Role::Viewer)?;
    Ok(Json(app.registry.store().list_commands(&device_id, 200).await.map_err(ApiError::operator)?))
}

pub(crate) async fn list_telemetry(
    State(app): State<AppState>,
    who: Operator,
    Path(device_id): Path<String>,
) -> Result<Json<Vec<StoredTelemetry>>, ApiError> {
    who.require(Role::Viewer)?;
    Ok(Json(app.registry.store().list_telemetry(&device_id, 200).await.map_err(ApiError::operator)?))
}

pub(crate) async fn list_logs(
    State(app): State<AppState>,
    who: Operator,
    Path(device_id): Path<String>,
) -> Result<Json<Vec<LogUpload>>, ApiError> {
    who.require(Role::Operator)?;
    Ok(Json(app.registry.store().list_log_uploads(&device_id, 200).await.map_err(ApiError::operator)?))
}

/// Decrypts an uploaded log with the device's log keys (newest version first; the one that
/// opens most records wins) and answers every record's outcome.
pub(crate) async fn read_log(
    State(app): State<AppState>,
    who: Operator,
    Path(upload_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require(Role::Operator)?;
    let op = ApiError::operator;
    let upload = app
        .registry
        .store()
        .log_upload(&upload_id)
        .await
        .map_err(op)?
        .ok_or_else(|| op(Error::NotFound(format!("log {upload_id}"))))?;
    let vault = vault(&app).map_err(op)?;
    let mut versions: Vec<_> = vault
        .list(Some(KeyUsage::Log))
        .await
        .map_err(op)?
        .into_iter()
        .filter(|k| k.subject == upload.device_id)
        .collect();
    versions.reverse();
    let mut best = None;
    for key in &versions {
        let secret = vault.secret(key, KeyUsage::Log).map_err(op)?;
        let log_key = LogKey::from_secret(&key.id, &secret).map_err(|e| op(Error::Vault(e.to_string())))?;
        let report = read_log_file(&upload.content, &log_key, &upload.device_id, MAX_LOG_RECORD)
            .map_err(|e| op(Error::Invalid(format!("log {upload_id}: {e}"))))?;
        let opened = report.entries().count();
        if best.as_ref().is_none_or(|(n, _, _): &(usize, _, _)| opened > *n) {
            best = Some((opened, key.id.clone(), report));
        }
    }
    let Some((opened, key_id, report)) = best else {
        return Err(op(Error::NotFound(format!("no log key for {}", upload.device_id))));
    };
    let records: Vec<Value> = report
        .records
        .iter()
        .map(|r| match &r.outcome {
            LogRecordOutcome::Ok { sequence, entry } => json!({"offset": r.offset, "status": "ok", "sequence": sequence,
                "time": entry.time, "level": entry.level.name(), "message": entry.message}),
            LogRecordOutcome::Altered { sequence, error } => {
                json!({"offset": r.offset, "status": "altered", "sequence": sequence, "error": error.to_string()})
            }
            LogRecordOutcome::Damaged { len } => json!({"offset": r.offset, "status": "damaged", "len": len}),
            LogRecordOutcome::Truncated { len } => json!({"offset": r.offset, "status": "truncated", "len": len}),
            LogRecordOutcome::Missing { first, last } => {
                json!({"offset": r.offset, "status": "missing", "first": first, "last": last})
            }
            LogRecordOutcome::OutOfOrder { sequence, expected } => {
                json!({"offset": r.offset, "status": "out_of_order", "sequence": sequence, "expected": expected})
            }
        })
        .collect();
    who.audit(
        &app,
        "log.read",
        format!("log {upload_id}: {opened} records opened with {key_id}"),
        Some(upload.device_id.clone()),
    )
    .await?;
    Ok(Json(json!({
        "upload_id": upload_id, "device_id": upload.device_id, "key_id": key_id, "size": upload.size,
        "intact": report.is_intact(), "opened": opened, "records": records,
    })))
}
