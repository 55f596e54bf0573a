//! The operator API: every endpoint needs an API token (`Authorization: Bearer`), stored
//! hashed, whose role covers the action (viewer < operator < admin). Changes are audited with
//! the token's name as the actor.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::{Extension, Json};
use ironclad_pki::RevocationReason;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, bearer};
use crate::error::{Error, Refusal};
use crate::registry::ImportReport;
use crate::store::{ApiToken, AuditEntry, AuditRecord, DeviceRecord, Enrollment, Outcome, Role};
use crate::tls::ConnectionInfo;
use crate::trust::sha256;

type OpResult<T> = Result<Json<T>, ApiError>;

/// An authenticated operator.
#[derive(Debug, Clone)]
pub(crate) struct Operator {
    name: String,
    role: Role,
    conn: ConnectionInfo,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let conn = parts
            .extensions
            .get::<ConnectionInfo>()
            .cloned()
            .ok_or_else(|| ApiError::operator(Error::Config("no connection information".into())))?;
        let refusal = match bearer(&parts.headers) {
            None => Refusal::TokenMissing,
            Some(secret) => {
                let hash = sha256(secret.as_bytes());
                match app.registry.store().api_token_by_hash(&hash).await.map_err(ApiError::operator)? {
                    Some(ApiToken { disabled: false, name, role, .. }) => {
                        return Ok(Operator { name, role, conn });
                    }
                    Some(_) => Refusal::ApiTokenDisabled,
                    None => Refusal::ApiTokenUnknown,
                }
            }
        };
        app.device
            .audit("operator.auth", &conn, Some(&refusal), refusal.to_string(), None)
            .await
            .map_err(ApiError::operator)?;
        Err(ApiError::operator(Error::Refused(refusal)))
    }
}

impl Operator {
    /// The token's name (the actor in audit records).
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// For the owner endpoints: an owner token and nothing else (operators are not owners).
    pub(super) fn require_exactly(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::operator(Error::Forbidden(format!(
                "token {} is {}, this needs {role}",
                self.name, self.role
            ))))
        }
    }

    pub(super) fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::operator(Error::Forbidden(format!(
                "token {} is {}, this needs {role}",
                self.name, self.role
            ))))
        }
    }

    pub(super) async fn audit(
        &self,
        app: &AppState,
        event: &str,
        detail: String,
        device_id: Option<String>,
    ) -> Result<(), ApiError> {
        let record = AuditRecord {
            at: app.device.clock.unix(),
            event: event.to_owned(),
            outcome: Outcome::Ok,
            reason: None,
            detail,
            device_id,
            actor: Some(format!("token:{}", self.name)),
            peer: Some(self.conn.remote_addr().to_string()),
        };
        app.registry.store().append_audit(&record).await.map_err(ApiError::operator)
    }

    /// Audits a refused action with its reason code (e.g. a replayed CRL).
    pub(super) async fn audit_refused(
        &self,
        app: &AppState,
        event: &str,
        reason: &str,
        detail: String,
    ) -> Result<(), ApiError> {
        let record = AuditRecord {
            at: app.device.clock.unix(),
            event: event.to_owned(),
            outcome: Outcome::Refused,
            reason: Some(reason.to_owned()),
            detail,
            device_id: None,
            actor: Some(format!("token:{}", self.name)),
            peer: Some(self.conn.remote_addr().to_string()),
        };
        app.registry.store().append_audit(&record).await.map_err(ApiError::operator)
    }
}

fn op<T>(r: crate::Result<T>) -> Result<T, ApiError> {
    r.map_err(ApiError::operator)
}

pub(crate) async fn list_enrollments(
    State(app): State<AppState>,
    who: Operator,
) -> OpResult<Vec<Enrollment>> {
    who.require(Role::Viewer)?;
    Ok(Json(op(app.registry.list().await)?))
}

pub(crate) async fn get_enrollment(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
) -> OpResult<Enrollment> {
    who.require(Role::Viewer)?;
    Ok(Json(op(app.registry.get(&id).await)?))
}

/// `POST /v1/enrollments/individual`: by certificate or by public key.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct IndividualRequest {
    #[serde(default)]
    certificate_pem: Option<String>,
    #[serde(default)]
    public_key_pem: Option<String>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    note: String,
}

fn yes() -> bool {
    true
}

pub(crate) async fn enroll_individual(
    State(app): State<AppState>,
    who: Operator,
    Json(req): Json<IndividualRequest>,
) -> OpResult<Enrollment> {
    who.require(Role::Operator)?;
    let e = match (&req.certificate_pem, &req.public_key_pem) {
        (Some(cert), None) => {
            op(app.registry.enroll_certificate(cert.as_bytes(), req.enabled, &req.note).await)?
        }
        (None, Some(key)) => op(app
            .registry
            .enroll_public_key(key.as_bytes(), req.device_id.as_deref(), req.enabled, &req.note)
            .await)?,
        _ => return Err(ApiError::operator(Error::Invalid("give certificate_pem or public_key_pem".into()))),
    };
    who.audit(
        &app,
        "operator.enroll.individual",
        format!("enrollment {} ({}, {:?})", e.id, e.key, e.status),
        e.device_id.clone(),
    )
    .await?;
    Ok(Json(e))
}

/// `POST /v1/enrollments/group`.
#[derive(Debug, Deserialize)]
pub(crate) struct GroupRequest {
    ca_certificate_pem: String,
    #[serde(default)]
    note: String,
}

pub(crate) async fn enroll_group(
    State(app): State<AppState>,
    who: Operator,
    Json(req): Json<GroupRequest>,
) -> OpResult<Enrollment> {
    who.require(Role::Operator)?;
    let e = op(app.registry.begin_group(req.ca_certificate_pem.as_bytes(), &req.note).await)?;
    who.audit(
        &app,
        "operator.enroll.group",
        format!("enrollment {} ({}) awaits proof of possession", e.id, e.key),
        None,
    )
    .await?;
    Ok(Json(e))
}

/// `POST /v1/enrollments/{id}/proof`.
#[derive(Debug, Deserialize)]
pub(crate) struct ProofRequest {
    verification_certificate_pem: String,
}

pub(crate) async fn prove_group(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
    Json(req): Json<ProofRequest>,
) -> OpResult<Enrollment> {
    who.require(Role::Operator)?;
    let e = op(app.registry.prove_group(&id, req.verification_certificate_pem.as_bytes()).await)?;
    who.audit(&app, "operator.enroll.proof", format!("group {id}: proof of possession accepted"), None)
        .await?;
    Ok(Json(e))
}

pub(crate) async fn enable(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
) -> OpResult<Enrollment> {
    who.require(Role::Operator)?;
    let e = op(app.registry.set_enabled(&id, true).await)?;
    who.audit(&app, "operator.enrollment.enable", format!("enrollment {id} enabled"), e.device_id.clone())
        .await?;
    Ok(Json(e))
}

pub(crate) async fn disable(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
) -> OpResult<Enrollment> {
    who.require(Role::Operator)?;
    let e = op(app.registry.set_enabled(&id, false).await)?;
    who.audit(&app, "operator.enrollment.disable", format!("enrollment {id} disabled"), e.device_id.clone())
        .await?;
    Ok(Json(e))
}

pub(crate) async fn delete_enrollment(
    State(app): State<AppState>,
    who: Operator,
    Path(id): Path<String>,
) -> OpResult<serde_json::Value> {
    who.require(Role::Operator)?;
    op(app.registry.delete(&id).await)?;
    who.audit(&app, "operator.enrollment.delete", format!("enrollment {id} deleted"), None).await?;
    Ok(Json(serde_json::json!({ "deleted": id })))
}

pub(crate) async fn import_manifest(
    State(app): State<AppState>,
    who: Operator,
    body: String,
) -> OpResult<ImportReport> {
    who.require(Role::Operator)?;
    let report = op(app.registry.import_manifest(&body, &format!("manifest import by {}", who.name)).await)?;
    // The manifest's digest names which file this record is about.
    who.audit(
        &app,
        "operator.enroll.import",
        format!(
            "{} records: {} new, {} existing (manifest sha256 {})",
            report.records,
            report.counts.inserted,
            report.counts.existing,
            hex::encode(sha256(body.as_bytes()))
        ),
        None,
    )
    .await?;
    Ok(Json(report))
}

/// `POST /v1/revocations`.
#[derive(Debug, Deserialize)]
pub(crate) struct RevokeRequest {
    serial: String,
    #[serde(default)]
    reason: Option<String>,
}

pub(crate) async fn revoke(
    State(app): State<AppState>,
    who: Operator,
    Json(req): Json<RevokeRequest>,
) -> OpResult<serde_json::Value> {
    who.require(Role::Operator)?;
    let reason: RevocationReason = match &req.reason {
        Some(r) => op(r.parse().map_err(Error::Pki))?,
        None => RevocationReason::Unspecified,
    };
    let new = op(app.registry.revoke(&req.serial, reason).await)?;
    who.audit(&app, "operator.revoke", format!("serial {} revoked ({})", req.serial, reason.name()), None)
        .await?;
    Ok(Json(serde_json::json!({ "serial": req.serial, "newly_revoked": new })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    device_id: Option<String>,
}

pub(crate) async fn list_devices(
    State(app): State<AppState>,
    who: Operator,
    Query(q): Query<ListQuery>,
) -> OpResult<Vec<DeviceRecord>> {
    who.require(Role::Viewer)?;
    Ok(Json(op(app.registry.store().list_devices(q.limit.unwrap_or(1000)).await)?))
}

pub(crate) async fn audit(
    State(app): State<AppState>,
    who: Operator,
    Query(q): Query<ListQuery>,
) -> OpResult<Vec<AuditEntry>> {
    who.require(Role::Viewer)?;
    Ok(Json(op(app.registry.store().audit(q.limit.unwrap_or(100), q.device_id.as_deref()).await)?))
}

/// `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenRequest {
    name: String,
    role: Role,
}

/// The answer to `POST /v1/tokens`: the secret, shown once.
#[derive(Debug, Serialize)]
pub(crate) struct TokenCreated {
    name: String,
    role: Role,
    token: String,
}

pub(crate) async fn create_token(
    State(app): State<AppState>,
    who: Operator,
    Json(req): Json<TokenRequest>,
) -> OpResult<TokenCreated> {
    who.require(Role::Admin)?;
    let t = op(app.registry.create_api_token(&req.name, req.role).await)?;
    who.audit(&app, "operator.token.create", format!("token {} ({})", req.name, req.role), None).await?;
    Ok(Json(TokenCreated { name: t.token.name, role: t.token.role, token: t.secret.to_string() }))
}

pub(crate) async fn list_tokens(State(app): State<AppState>, who: Operator) -> OpResult<Vec<ApiToken>> {
    who.require(Role::Admin)?;
    Ok(Json(op(app.registry.store().list_api_tokens().await)?))
}

pub(crate) async fn disable_token(
    State(app): State<AppState>,
    who: Operator,
    Path(name): Path<String>,
    Extension(_conn): Extension<ConnectionInfo>,
) -> OpResult<serde_json::Value> {
    who.require(Role::Admin)?;
    if !op(app.registry.store().set_api_token_disabled(&name, true).await)? {
        return Err(ApiError::operator(Error::NotFound(format!("token {name}"))));
    }
    who.audit(&app, "operator.token.disable", format!("token {name} disabled"), None).await?;
    Ok(Json(serde_json::json!({ "disabled": name })))
}
