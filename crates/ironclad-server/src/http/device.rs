//! Device endpoints: challenge, session, and the device's own state document.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use ironclad_proto::{ChallengeResponse, DeviceState, PutDeviceState, SessionRequest, SessionResponse};

use super::{ApiError, AppState, bearer};
use crate::error::Error;
use crate::tls::ConnectionInfo;

type DeviceResult<T> = Result<Json<T>, ApiError>;

pub(crate) async fn challenge(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
) -> DeviceResult<ChallengeResponse> {
    app.device.challenge(&conn).await.map(Json).map_err(ApiError::device)
}

pub(crate) async fn session(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Json(req): Json<SessionRequest>,
) -> DeviceResult<SessionResponse> {
    app.device.session(&conn, &req).await.map(Json).map_err(ApiError::device)
}

pub(crate) async fn get_state(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
) -> DeviceResult<DeviceState> {
    let session = app
        .device
        .device_session("device.state.read", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let stored = app.device.store.device_state(&session.device_id).await.map_err(ApiError::device)?;
    Ok(Json(match stored {
        Some(s) => DeviceState {
            device_id: session.device_id,
            version: s.version,
            data: serde_json::from_str(&s.json).unwrap_or(serde_json::Value::Null),
        },
        None => DeviceState { device_id: session.device_id, version: 0, data: serde_json::Value::Null },
    }))
}

pub(crate) async fn put_state(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<PutDeviceState>,
) -> DeviceResult<DeviceState> {
    let session = app
        .device
        .device_session("device.state.write", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let json = body.data.to_string();
    if json.len() > app.device.limits.max_state_bytes {
        return Err(ApiError::device(Error::Invalid("state document too large".into())));
    }
    let now = app.device.clock.unix();
    let version =
        app.device.store.put_device_state(&session.device_id, &json, now).await.map_err(ApiError::device)?;
    Ok(Json(DeviceState { device_id: session.device_id, version, data: body.data }))
}
