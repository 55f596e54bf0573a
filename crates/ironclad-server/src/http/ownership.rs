//! Device ownership and media keys. Owners (API tokens with the `owner` role) get claim codes
//! and reach only the devices they claimed; a device redeems a code over its own session and
//! fetches its own media keys; operators read any device's media key, audited. Every key read
//! is audited with who read it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ironclad_proto::ownership::{
    ClaimCode, ClaimRequest, ClaimResponse, MediaKey, OwnedDevice, valid_stream_name,
};
use zeroize::Zeroizing;

use super::operator::Operator;
use super::{ApiError, AppState, bearer};
use crate::error::{Error, Refusal};
use crate::store::{ClaimRedemption, KeyUsage, OwnerClaim, Role};
use crate::tls::ConnectionInfo;
use crate::trust::sha256;
use crate::vault::KeyVault;

/// Seconds a claim code stays redeemable.
const CLAIM_TTL_SECS: i64 = 600;

fn vault(app: &AppState) -> Result<&KeyVault, Error> {
    app.vault.as_ref().ok_or_else(|| Error::Vault("no key vault is configured on this server".into()))
}

fn check_stream(stream: &str) -> Result<(), Error> {
    if valid_stream_name(stream) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("stream name {stream:?}: use 1-64 of A-Z a-z 0-9 . _ -")))
    }
}

/// The media key of `device_id`'s `stream`, made on first use.
async fn media_key(app: &AppState, device_id: &str, stream: &str) -> Result<MediaKey, Error> {
    check_stream(stream)?;
    let vault = vault(app)?;
    let key = vault.current(KeyUsage::Media, &format!("{device_id}/{stream}")).await?;
    let secret = vault.secret(&key, KeyUsage::Media)?;
    Ok(MediaKey {
        device_id: device_id.to_owned(),
        stream: stream.to_owned(),
        key_id: key.id,
        key_hex: hex::encode(secret.as_slice()),
    })
}

/// JSON by default; the raw key bytes when the client asks for `application/octet-stream`
/// (what an HLS player fetching the `#EXT-X-KEY` URI wants).
fn key_response(headers: &HeaderMap, key: MediaKey) -> Response {
    let raw = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/octet-stream"));
    if raw {
        let bytes = Zeroizing::new(hex::decode(&key.key_hex).unwrap_or_default());
        let mut response = bytes.to_vec().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    } else {
        let mut response = Json(key).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

// ---- device side -----------------------------------------------------------------------

pub(crate) async fn claim(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<ClaimRequest>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let session = app
        .device
        .device_session("device.claim", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let code = Zeroizing::new(req.code);
    let now = app.device.clock.unix();
    let redemption = app
        .registry
        .store()
        .redeem_claim(&sha256(code.trim().as_bytes()), &session.device_id, now)
        .await
        .map_err(ApiError::device)?;
    let refusal = match redemption {
        ClaimRedemption::Claimed { owner } => {
            app.device
                .audit(
                    "device.claim",
                    &conn,
                    None,
                    format!("claimed by owner {owner}"),
                    Some(session.device_id.clone()),
                )
                .await
                .map_err(ApiError::device)?;
            return Ok(Json(ClaimResponse { device_id: session.device_id, owner }));
        }
        ClaimRedemption::OwnedByAnother => "claim_owned_by_another",
        ClaimRedemption::Unknown => "claim_code_unknown",
        ClaimRedemption::Used => "claim_code_used",
        ClaimRedemption::Expired => "claim_code_expired",
    };
    let refusal = Refusal::Claim(refusal);
    app.device
        .audit("device.claim", &conn, Some(&refusal), refusal.to_string(), Some(session.device_id))
        .await
        .map_err(ApiError::device)?;
    Err(ApiError::device(Error::Refused(refusal)))
}

pub(crate) async fn device_media_key(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnectionInfo>,
    Path((device_id, stream)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = app
        .device
        .device_session("media.key.device", &conn, bearer(&headers), &device_id)
        .await
        .map_err(ApiError::device)?;
    let key = media_key(&app, &session.device_id, &stream).await.map_err(ApiError::device)?;
    app.device
        .audit("media.key.device", &conn, None, format!("{} read by the device", key.key_id), Some(device_id))
        .await
        .map_err(ApiError::device)?;
    Ok(key_response(&headers, key))
}

// ---- owner side ------------------------------------------------------------------------

pub(crate) async fn new_claim_code(
    State(app): State<AppState>,
    who: Operator,
) -> Result<Json<ClaimCode>, ApiError> {
    who.require_exactly(Role::Owner)?;
    let mut raw = Zeroizing::new([0u8; 16]);
    aws_lc_rs::rand::fill(raw.as_mut_slice())
        .map_err(|_| ApiError::operator(Error::Vault("random generator failed".into())))?;
    let code = Zeroizing::new(hex::encode(raw.as_slice()));
    let now = app.device.clock.unix();
    let claim = OwnerClaim {
        code_sha256: sha256(code.as_bytes()),
        owner: who.name().to_owned(),
        created_at: now,
        expires_at: now + CLAIM_TTL_SECS,
    };
    app.registry.store().insert_claim(&claim).await.map_err(ApiError::operator)?;
    who.audit(&app, "owner.claim_code", "claim code issued".into(), None).await?;
    Ok(Json(ClaimCode { code: code.to_string(), expires_at: claim.expires_at }))
}

pub(crate) async fn owned_devices(
    State(app): State<AppState>,
    who: Operator,
) -> Result<Json<Vec<OwnedDevice>>, ApiError> {
    who.require_exactly(Role::Owner)?;
    let devices = app.registry.store().owned_devices(who.name()).await.map_err(ApiError::operator)?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| OwnedDevice { device_id: d.device_id, claimed_at: d.claimed_at })
            .collect(),
    ))
}

pub(crate) async fn owner_media_key(
    State(app): State<AppState>,
    who: Operator,
    Path((device_id, stream)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    who.require_exactly(Role::Owner)?;
    let owner = app.registry.store().device_owner(&device_id).await.map_err(ApiError::operator)?;
    if owner.as_ref().is_none_or(|o| o.owner != who.name()) {
        // The same answer whether the device exists or belongs to someone else.
        tracing::info!(owner = who.name(), device = %device_id, "media key refused: not the owner");
        return Err(ApiError::operator(Error::Forbidden(format!("{device_id} is not a device of yours"))));
    }
    let key = media_key(&app, &device_id, &stream).await.map_err(ApiError::operator)?;
    who.audit(&app, "media.key.owner", format!("{} read by its owner", key.key_id), Some(device_id)).await?;
    Ok(key_response(&headers, key))
}

// ---- operator side ---------------------------------------------------------------------

pub(crate) async fn operator_media_key(
    State(app): State<AppState>,
    who: Operator,
    Path((device_id, stream)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    who.require(Role::Operator)?;
    if app.registry.store().device(&device_id).await.map_err(ApiError::operator)?.is_none() {
        return Err(ApiError::operator(Error::NotFound(format!(
            "device {device_id} has never authenticated"
        ))));
    }
    let key = media_key(&app, &device_id, &stream).await.map_err(ApiError::operator)?;
    who.audit(&app, "media.key.operator", format!("{} read by an operator", key.key_id), Some(device_id))
        .await?;
    Ok(key_response(&headers, key))
}

pub(crate) async fn release_device(
    State(app): State<AppState>,
    who: Operator,
    Path(device_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    who.require(Role::Operator)?;
    let released = app.registry.store().release_device(&device_id).await.map_err(ApiError::operator)?;
    if !released {
        return Err(ApiError::operator(Error::NotFound(format!("{device_id} has no owner"))));
    }
    who.audit(&app, "device.release", "owner released".into(), Some(device_id.clone())).await?;
    Ok(Json(serde_json::json!({ "device_id": device_id, "released": true })))
}
