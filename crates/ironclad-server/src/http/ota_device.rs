//! OTA device endpoints (device session over mutual TLS): update check, download of this
//! device's copy (byte ranges), state reports. Refusals are audited; the device sees only the
//! coarse code.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use ironclad_proto::ota::{OtaReport, OtaState, UpdateAnswer, UpdateCheck};
use serde_json::{Value, json};

use super::{ApiError, AppState, bearer};
use crate::error::Error;
use crate::ota::{parse_range, respond};
use crate::store::{AuditRecord, Outcome};
use crate::tls::ConnectionInfo;

async fn audit(
    app: &AppState,
    conn: &ConnectionInfo,
    event: &str,
    outcome: Outcome,
    reason: Option<&str>,
    detail: String,
    device: &str,
) {
    let record = AuditRecord {
        at: app.device.clock.unix(),
        event: event.to_owned(),
        outcome,
        reason: reason.map(str::to_owned),
        detail,
        device_id: Some(device.to_owned()),
        actor: None,
        peer: Some(conn.remote_addr().to_string()),
    };
    if let Err(e) = app.device.store.append_audit(&record).await {
        tracing::warn!("audit write failed: {e}");
    }
}

async fn refuse<T>(
    app: &AppState,
    conn: &ConnectionInfo,
    device: &str,
    reason: &str,
    detail: String,
) -> Result<T, ApiError> {
    audit(app, conn, "ota.download", Outcome::Refused, Some(reason), detail.clone(), device).await;
    Err(ApiError::device(Error::Forbidden(detail)))
}

pub(crate) async fn check(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<UpdateCheck>,
) -> Result<Json<UpdateAnswer>, ApiError> {
    let session = app
        .device
        .device_session("ota.check", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let answer = app.ota.check(&session.device_id, &req).await.map_err(ApiError::device)?;
    if let Some(offer) = &answer.offer {
        tracing::debug!(device = %session.device_id, release = %offer.release_id, "OTA offer");
    } else if answer.none == Some(ironclad_proto::ota::NoUpdate::Downgrade) {
        let detail = format!(
            "device on {} (security counter {}) not offered a lower release",
            req.version, req.security_counter
        );
        audit(&app, &conn, "ota.check", Outcome::Refused, Some("downgrade"), detail, &session.device_id)
            .await;
    }
    Ok(Json(answer))
}

pub(crate) async fn report(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<OtaReport>,
) -> Result<Json<Value>, ApiError> {
    let session = app
        .device
        .device_session("ota.report", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    app.ota.report(&session.device_id, &req).await.map_err(ApiError::device)?;
    if req.state.is_final() {
        let outcome = if req.state == OtaState::Confirmed { Outcome::Ok } else { Outcome::Refused };
        let reason = (req.state != OtaState::Confirmed).then_some(req.state.as_str());
        let detail = format!("release {}: {} {}", req.release_id, req.state, req.detail);
        audit(&app, &conn, "ota.report", outcome, reason, detail, &session.device_id).await;
    }
    Ok(Json(json!({ "release_id": req.release_id, "state": req.state })))
}

pub(crate) async fn image(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path((device_id, release_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = app
        .device
        .device_session("ota.download", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let store = &app.device.store;
    let device = session.device_id.as_str();
    let Some(copy) = store.device_release(device, &release_id).await.map_err(ApiError::device)? else {
        return refuse(
            &app,
            &conn,
            device,
            "not_offered",
            format!("release {release_id} was never offered to {device}"),
        )
        .await;
    };
    // Only while a rollout of this release to the device's group is live: an abort stops
    // downloads too.
    let group = store.device(device).await.map_err(ApiError::device)?.map(|d| d.enrollment_id);
    let live = match &group {
        Some(g) => store.live_rollout(g).await.map_err(ApiError::device)?,
        None => None,
    };
    if live.is_none_or(|r| r.release_id != release_id) {
        return refuse(
            &app,
            &conn,
            device,
            "rollout_stopped",
            format!("no live rollout of {release_id} for {device}"),
        )
        .await;
    }
    let release = store
        .release(&release_id)
        .await
        .map_err(ApiError::device)?
        .ok_or_else(|| ApiError::device(Error::NotFound(format!("release {release_id}"))))?;
    let prepared = app.ota.prepared(&release).await.map_err(ApiError::device)?;
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let range = parse_range(
        text(header::RANGE),
        text(header::IF_RANGE),
        &crate::ota::etag(&copy.image_sha256),
        copy.image_size,
    );
    Ok(respond(prepared, &copy, range))
}
