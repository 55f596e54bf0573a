//! The HTTP API (axum): device endpoints behind mutual TLS and challenge-response, the
//! operator API behind hashed API tokens with roles, and an open health check.

mod crl;
mod device;
mod keys;
mod messages;
mod operator;
mod ota;
mod ota_device;
mod ownership;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ironclad_proto::{ErrorCode, paths};
use serde::Serialize;

use crate::auth::DeviceAuth;
use crate::error::Error;
use crate::registry::Registry;

/// Shared by every handler.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) device: DeviceAuth,
    pub(crate) registry: Registry,
    /// The key vault, when the server has a secure element.
    pub(crate) vault: Option<crate::vault::KeyVault>,
    /// Releases, rollouts and per-device copies.
    pub(crate) ota: crate::ota::Ota,
}

/// The whole API.
pub(crate) fn router(state: AppState) -> Router {
    let max_body = state.device.limits.max_body_bytes;
    Router::new()
        .route(paths::HEALTH, get(|| async { "ok" }))
        .route(paths::CHALLENGE, post(device::challenge))
        .route(paths::SESSION, post(device::session))
        .route("/v1/devices/{device_id}/state", get(device::get_state).put(device::put_state))
        .route("/v1/enrollments", get(operator::list_enrollments))
        .route("/v1/enrollments/individual", post(operator::enroll_individual))
        .route("/v1/enrollments/group", post(operator::enroll_group))
        .route("/v1/enrollments/import", post(operator::import_manifest))
        .route("/v1/enrollments/{id}", get(operator::get_enrollment).delete(operator::delete_enrollment))
        .route("/v1/enrollments/{id}/proof", post(operator::prove_group))
        .route("/v1/enrollments/{id}/enable", post(operator::enable))
        .route("/v1/enrollments/{id}/disable", post(operator::disable))
        .route("/v1/revocations", post(operator::revoke))
        .route("/v1/crls", post(crl::publish))
        .route("/v1/crls/{enrollment_id}", get(crl::get))
        .route("/v1/registry/devices", get(operator::list_devices))
        .route("/v1/audit", get(operator::audit))
        .route("/v1/devices/{device_id}/claim", post(ownership::claim))
        .route("/v1/devices/{device_id}/media-keys/{stream}", get(ownership::device_media_key))
        .route("/v1/owner/claim-codes", post(ownership::new_claim_code))
        .route("/v1/owner/devices", get(ownership::owned_devices))
        .route("/v1/owner/devices/{device_id}/media-keys/{stream}", get(ownership::owner_media_key))
        .route("/v1/keys", get(keys::list))
        .route("/v1/keys/rotate", post(keys::rotate))
        .route("/v1/keys/media/{device_id}/{stream}", get(ownership::operator_media_key))
        .route("/v1/registry/devices/{device_id}/owner", axum::routing::delete(ownership::release_device))
        .route("/v1/devices/{device_id}/server-keys", get(messages::server_keys))
        .route("/v1/devices/{device_id}/commands", get(messages::poll_commands))
        .route("/v1/devices/{device_id}/telemetry", post(messages::post_telemetry))
        .route("/v1/devices/{device_id}/log-key", post(messages::log_key))
        .route("/v1/devices/{device_id}/logs", post(messages::upload_log))
        .route(
            "/v1/registry/devices/{device_id}/commands",
            get(messages::list_commands).post(messages::issue_command),
        )
        .route("/v1/registry/devices/{device_id}/telemetry", get(messages::list_telemetry))
        .route("/v1/registry/devices/{device_id}/logs", get(messages::list_logs))
        .route("/v1/logs/{upload_id}", get(messages::read_log))
        .route("/v1/devices/{device_id}/ota/check", post(ota_device::check))
        .route("/v1/devices/{device_id}/ota/report", post(ota_device::report))
        .route("/v1/devices/{device_id}/ota/releases/{release_id}/image", get(ota_device::image))
        .route("/v1/ota/keys", get(ota::list_keys).post(ota::add_key))
        .route("/v1/ota/encryption-key", get(ota::encryption_key))
        .route("/v1/ota/releases", get(ota::list_releases).post(ota::upload_release))
        .route("/v1/ota/releases/{release_id}/devices", get(ota::release_devices))
        .route("/v1/ota/rollouts", get(ota::list_rollouts).post(ota::start_rollout))
        .route("/v1/ota/rollouts/{id}", get(ota::rollout_status))
        .route("/v1/ota/rollouts/{id}/{action}", post(ota::change_rollout))
        .route("/v1/tokens", get(operator::list_tokens).post(operator::create_token))
        .route("/v1/tokens/{name}/disable", post(operator::disable_token))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// An error as the API answers it: the coarse code, plus a message for operators on
/// non-authentication errors (never for refusals, never for device endpoints).
#[derive(Debug)]
pub(crate) struct ApiError {
    error: Error,
    operator: bool,
}

impl ApiError {
    pub(crate) fn device(error: Error) -> Self {
        ApiError { error, operator: false }
    }

    pub(crate) fn operator(error: Error) -> Self {
        ApiError { error, operator: true }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.error.wire_code();
        if code == ErrorCode::Unavailable {
            tracing::error!("request failed: {}", self.error);
        }
        let message = match (&self.error, self.operator) {
            (Error::Refused(_), _) | (_, false) => None,
            (Error::Storage { .. } | Error::Io(_) | Error::Tls(_), true) => None,
            (e, true) => Some(e.to_string()),
        };
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody { error: code, message })).into_response()
    }
}

/// The bearer token of `Authorization: Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}
