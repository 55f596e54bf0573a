//! The key vault's operator API: list key versions (never material) and rotate.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::operator::Operator;
use super::{ApiError, AppState};
use crate::error::Error;
use crate::store::{KeyMaterial, KeyUsage, ManagedKey, Role};

/// One key version as listed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyListing {
    id: String,
    usage: KeyUsage,
    subject: String,
    version: u32,
    /// "sealed" (symmetric, sealed under the master key) or "secure-element" (signing key).
    storage: &'static str,
    /// SubjectPublicKeyInfo DER, hex, of a signing key.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    created_at: i64,
    age_secs: i64,
    retired_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    usage: Option<String>,
}

fn listing(key: ManagedKey, now: i64) -> KeyListing {
    let (storage, public_key) = match key.material {
        KeyMaterial::Sealed { .. } => ("sealed", None),
        KeyMaterial::InSecureElement { public_key, .. } => ("secure-element", Some(hex::encode(public_key))),
    };
    KeyListing {
        id: key.id,
        usage: key.usage,
        subject: key.subject,
        version: key.version,
        storage,
        public_key,
        created_at: key.created_at,
        age_secs: (now - key.created_at).max(0),
        retired_at: key.retired_at,
    }
}

fn vault(app: &AppState) -> Result<&crate::vault::KeyVault, ApiError> {
    app.vault
        .as_ref()
        .ok_or_else(|| ApiError::operator(Error::Vault("no key vault is configured on this server".into())))
}

pub(crate) async fn list(
    State(app): State<AppState>,
    who: Operator,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<KeyListing>>, ApiError> {
    who.require(Role::Viewer)?;
    let usage = q.usage.as_deref().map(str::parse::<KeyUsage>).transpose().map_err(ApiError::operator)?;
    let keys = vault(&app)?.list(usage).await.map_err(ApiError::operator)?;
    let now = app.device.clock.unix();
    Ok(Json(keys.into_iter().map(|k| listing(k, now)).collect()))
}

/// `POST /v1/keys/rotate` body.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct RotateRequest {
    usage: String,
    /// The key's subject (a device ID, `device/stream`); empty for the server's signing keys.
    #[serde(default)]
    subject: String,
}

pub(crate) async fn rotate(
    State(app): State<AppState>,
    who: Operator,
    Json(req): Json<RotateRequest>,
) -> Result<Json<KeyListing>, ApiError> {
    who.require(Role::Admin)?;
    let usage: KeyUsage = req.usage.parse().map_err(ApiError::operator)?;
    let key = vault(&app)?.rotate(usage, &req.subject).await.map_err(ApiError::operator)?;
    who.audit(&app, "key.rotate", format!("{} is now current", key.id), None).await?;
    Ok(Json(listing(key, app.device.clock.unix())))
}
