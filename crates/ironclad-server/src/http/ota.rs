//! The OTA operator API: firmware-verification keys (admin registers, viewers list), the
//! server's firmware-decryption public key, release upload (operator; the image body is
//! streamed to disk and verified) and listing, rollouts (operator starts, stages, pauses,
//! resumes, aborts; viewers list and read status with each device's state). Changes and
//! refusals are audited with the token's name.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use ironclad_proto::ota::{
    AddOtaKey, DeviceOtaInfo, OtaKeyInfo, ReleaseInfo, RolloutInfo, RolloutState, RolloutStatus, SetStage,
    StartRollout,
};
use serde::{Deserialize, Serialize};

use super::operator::Operator;
use super::{ApiError, AppState};
use crate::error::Error;
use crate::ota::is_downgrade;
use crate::store::{
    DeviceRelease, KeyMaterial, KeyUsage, OtaKey, Release, Role, Rollout, RolloutChange, RolloutUpdate,
};

type OpResult<T> = Result<Json<T>, ApiError>;

fn op<T>(r: crate::Result<T>) -> Result<T, ApiError> {
    r.map_err(ApiError::operator)
}

fn pem_public(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PUBLIC KEY", der.to_vec()))
}

fn key_info(k: OtaKey) -> OtaKeyInfo {
    OtaKeyInfo {
        key_hash: hex::encode(k.key_hash),
        public_key_pem: pem_public(&k.spki_der),
        name: k.name,
        algorithm: k.algorithm,
        created_at: k.created_at,
        created_by: k.created_by,
    }
}

fn release_info(r: Release) -> ReleaseInfo {
    ReleaseInfo {
        id: r.id,
        version: r.version,
        security_counter: r.security_counter,
        product_class: r.product_class,
        size: r.size,
        sha256: hex::encode(r.sha256),
        image_hash: hex::encode(r.image_hash),
        wrap: r.wrap,
        signer: hex::encode(r.signer),
        note: r.note,
        uploaded_at: r.uploaded_at,
        uploaded_by: r.uploaded_by,
    }
}

fn rollout_info(r: Rollout, version: String) -> RolloutInfo {
    RolloutInfo {
        id: r.id,
        release_id: r.release_id,
        version,
        group: r.group_id,
        percentage: r.percentage,
        state: r.state,
        created_at: r.created_at,
        updated_at: r.updated_at,
        created_by: r.created_by,
    }
}

fn device_info(d: DeviceRelease) -> DeviceOtaInfo {
    DeviceOtaInfo {
        device_id: d.device_id,
        release_id: d.release_id,
        state: d.state,
        detail: d.detail,
        offered_at: d.offered_at,
        updated_at: d.updated_at,
    }
}

pub(crate) async fn list_keys(State(app): State<AppState>, who: Operator) -> OpResult<Vec<OtaKeyInfo>> {
    who.require(Role::Viewer)?;
    Ok(Json(op(app.ota.store.ota_keys().await)?.into_iter().map(key_info).collect()))
}

/// Registering a key that releases are trusted by is a trust decision: admin only.
pub(crate) async fn add_key(
    State(app): State<AppState>,
    who: Operator,
    Json(req): Json<AddOtaKey>,
) -> OpResult<OtaKeyInfo> {
    who.require(Role::Admin)?;
    if req.name.trim().is_empty() || req.name.len() > 128 {
        return Err(ApiError::operator(Error::Invalid("key name: 1-128 bytes".into())));
    }
    let parsed = pem::parse(req.public_key_pem.trim())
        .map_err(|e| ApiError::operator(Error::Invalid(format!("public key PEM: {e}"))))?;
    if parsed.tag() != "PUBLIC KEY" {
        return Err(ApiError::operator(Error::Invalid(format!(
            "expected a PUBLIC KEY PEM block, got {}",
            parsed.tag()
        ))));
    }
    let der = parsed.contents().to_vec();
    let key = ironclad_image::signing_key_from_spki(&der)
        .map_err(|e| ApiError::operator(Error::Invalid(format!("firmware-verification key: {e}"))))?;
    let key_hash = op(ironclad_image::key_hash(&key).map_err(|e| Error::Invalid(e.to_string())))?;
    let record = OtaKey {
        key_hash,
        name: req.name.trim().to_owned(),
        spki_der: der,
        algorithm: key.algorithm().name().to_owned(),
        created_at: app.device.clock.unix(),
        created_by: who.name().to_owned(),
    };
    op(app.ota.store.insert_ota_key(&record).await)?;
    who.audit(
        &app,
        "ota.key.add",
        format!("firmware-verification key {} ({})", hex::encode(key_hash), record.name),
        None,
    )
    .await?;
    Ok(Json(key_info(record)))
}

/// `GET /v1/ota/encryption-key` answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EncryptionKey {
    key_id: String,
    public_key_pem: String,
}

/// The key releases are encrypted to (the vault's firmware-decryption key, made on first use).
pub(crate) async fn encryption_key(State(app): State<AppState>, who: Operator) -> OpResult<EncryptionKey> {
    who.require(Role::Viewer)?;
    let key = op(async { app.ota.vault()?.current(KeyUsage::FirmwareDecryption, "").await }.await)?;
    let KeyMaterial::InSecureElement { public_key, .. } = &key.material else {
        return Err(ApiError::operator(Error::Vault(format!("key {} has no public key", key.id))));
    };
    Ok(Json(EncryptionKey { public_key_pem: pem_public(public_key), key_id: key.id }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    #[serde(default)]
    note: String,
}

pub(crate) async fn upload_release(
    State(app): State<AppState>,
    who: Operator,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> OpResult<ReleaseInfo> {
    who.require(Role::Operator)?;
    let max = app.ota.config.max_release_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::operator(Error::Invalid(format!(
            "release larger than the {max}-byte limit (ota.max_release_bytes)"
        ))));
    }
    if q.note.len() > 512 {
        return Err(ApiError::operator(Error::Invalid("note: at most 512 bytes".into())));
    }
    match app.ota.upload(body, q.note, who.name()).await {
        Ok(r) => {
            who.audit(
                &app,
                "ota.release.upload",
                format!(
                    "release {} version {} counter {} ({} bytes, {})",
                    r.id, r.version, r.security_counter, r.size, r.wrap
                ),
                None,
            )
            .await?;
            Ok(Json(release_info(r)))
        }
        Err(e) => {
            if matches!(e, Error::Invalid(_) | Error::Conflict(_)) {
                who.audit_refused(&app, "ota.release.upload", "release_refused", e.to_string()).await?;
            }
            Err(ApiError::operator(e))
        }
    }
}

pub(crate) async fn list_releases(State(app): State<AppState>, who: Operator) -> OpResult<Vec<ReleaseInfo>> {
    who.require(Role::Viewer)?;
    Ok(Json(op(app.ota.store.releases().await)?.into_iter().map(release_info).collect()))
}

pub(crate) async fn release_devices(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
) -> OpResult<Vec<DeviceOtaInfo>> {
    who.require(Role::Viewer)?;
    if op(app.ota.store.release(&id).await)?.is_none() {
        return Err(ApiError::operator(Error::NotFound(format!("release {id}"))));
    }
    Ok(Json(op(app.ota.store.release_devices(&id).await)?.into_iter().map(device_info).collect()))
}

async fn version_of(app: &AppState, release_id: &str) -> Result<String, ApiError> {
    Ok(op(app.ota.store.release(release_id).await)?.map(|r| r.version).unwrap_or_default())
}

/// Starts a rollout, refusing a downgrade relative to the group's current release.
pub(crate) async fn start_rollout(
    State(app): State<AppState>,
    who: Operator,
    Json(req): Json<StartRollout>,
) -> OpResult<RolloutInfo> {
    who.require(Role::Operator)?;
    if req.percentage > 100 {
        return Err(ApiError::operator(Error::Invalid("percentage: 0 to 100".into())));
    }
    let store = &app.ota.store;
    let release = op(store.release(&req.release_id).await)?
        .ok_or_else(|| ApiError::operator(Error::NotFound(format!("release {}", req.release_id))))?;
    if op(store.enrollment(&req.group).await)?.is_none() {
        return Err(ApiError::operator(Error::NotFound(format!("group (enrollment) {}", req.group))));
    }
    let current = op(store.current_rollout(&req.group).await)?;
    if let Some(cur) = &current {
        let cur_release = op(store.release(&cur.release_id).await)?
            .ok_or_else(|| ApiError::operator(Error::NotFound(format!("release {}", cur.release_id))))?;
        if op(is_downgrade(
            release.security_counter,
            &release.version,
            cur_release.security_counter,
            &cur_release.version,
        ))? {
            let detail = format!(
                "downgrade refused: group {} is on {} (security counter {}) through rollout {}; {} (security counter {}) is older",
                req.group,
                cur_release.version,
                cur_release.security_counter,
                cur.id,
                release.version,
                release.security_counter
            );
            who.audit_refused(&app, "ota.rollout.start", "downgrade", detail.clone()).await?;
            return Err(ApiError::operator(Error::Conflict(detail)));
        }
    }
    let now = app.device.clock.unix();
    let rollout = Rollout {
        id: op(crate::registry::random_hex(16))?,
        release_id: release.id.clone(),
        group_id: req.group.clone(),
        percentage: req.percentage,
        state: RolloutState::Active,
        created_at: now,
        updated_at: now,
        created_by: who.name().to_owned(),
    };
    op(store.start_rollout(&rollout, current.as_ref().map(|c| c.id.as_str())).await)?;
    who.audit(
        &app,
        "ota.rollout.start",
        format!(
            "rollout {} of {} ({}) to group {} at {}%",
            rollout.id, release.id, release.version, req.group, req.percentage
        ),
        None,
    )
    .await?;
    Ok(Json(rollout_info(rollout, release.version)))
}

pub(crate) async fn list_rollouts(State(app): State<AppState>, who: Operator) -> OpResult<Vec<RolloutInfo>> {
    who.require(Role::Viewer)?;
    let releases: BTreeMap<String, String> =
        op(app.ota.store.releases().await)?.into_iter().map(|r| (r.id, r.version)).collect();
    let rollouts = op(app.ota.store.rollouts().await)?;
    Ok(Json(
        rollouts
            .into_iter()
            .map(|r| {
                let v = releases.get(&r.release_id).cloned().unwrap_or_default();
                rollout_info(r, v)
            })
            .collect(),
    ))
}

pub(crate) async fn rollout_status(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
) -> OpResult<RolloutStatus> {
    who.require(Role::Viewer)?;
    let rollout = op(app.ota.store.rollout(&id).await)?
        .ok_or_else(|| ApiError::operator(Error::NotFound(format!("rollout {id}"))))?;
    let version = version_of(&app, &rollout.release_id).await?;
    // The devices of the rollout's group that got this release (through this rollout or an
    // earlier one of the same release).
    let mut devices = Vec::new();
    for d in op(app.ota.store.release_devices(&rollout.release_id).await)? {
        let group = op(app.ota.store.device(&d.device_id).await)?.map(|r| r.enrollment_id);
        if group.as_deref() == Some(rollout.group_id.as_str()) {
            devices.push(device_info(d));
        }
    }
    let mut counts = BTreeMap::new();
    for d in &devices {
        *counts.entry(d.state.to_string()).or_insert(0u64) += 1;
    }
    Ok(Json(RolloutStatus { rollout: rollout_info(rollout, version), counts, devices }))
}

/// `POST /v1/ota/rollouts/{id}/{stage|pause|resume|abort}`.
pub(crate) async fn change_rollout(
    State(app): State<AppState>,
    who: Operator,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<SetStage>>,
) -> OpResult<RolloutInfo> {
    who.require(Role::Operator)?;
    let change = match action.as_str() {
        "stage" => {
            let Some(Json(SetStage { percentage })) = body else {
                return Err(ApiError::operator(Error::Invalid("stage needs {\"percentage\": 0-100}".into())));
            };
            if percentage > 100 {
                return Err(ApiError::operator(Error::Invalid("percentage: 0 to 100".into())));
            }
            RolloutChange::Stage(percentage)
        }
        "pause" => RolloutChange::Pause,
        "resume" => RolloutChange::Resume,
        "abort" => RolloutChange::Abort,
        other => {
            return Err(ApiError::operator(Error::NotFound(format!(
                "rollout action {other:?} (stage, pause, resume, abort)"
            ))));
        }
    };
    match op(app.ota.store.update_rollout(&id, change, app.device.clock.unix()).await)? {
        RolloutUpdate::Updated(r) => {
            who.audit(
                &app,
                &format!("ota.rollout.{action}"),
                format!("rollout {id}: {} at {}%", r.state, r.percentage),
                None,
            )
            .await?;
            let version = version_of(&app, &r.release_id).await?;
            Ok(Json(rollout_info(r, version)))
        }
        RolloutUpdate::NotFound => Err(ApiError::operator(Error::NotFound(format!("rollout {id}")))),
        RolloutUpdate::WrongState(s) => {
            Err(ApiError::operator(Error::Conflict(format!("rollout {id} is {s}: {action} does not apply"))))
        }
    }
}
