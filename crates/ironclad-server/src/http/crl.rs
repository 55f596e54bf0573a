//! CRL publication: `POST /v1/crls` (operator role) takes a CRL signed by an enrolled group
//! CA; `GET /v1/crls/{enrollment_id}` serves that CA's current CRL (DER,
//! `application/pkix-crl`) to any authenticated caller: an operator token (viewer or above),
//! or a device admitted by mutual TLS. Outside parties get it from a static host that
//! operators mirror it to (`ironclad server crl get`): nothing but the health check is open.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::operator::Operator;
use super::{ApiError, AppState, bearer};
use crate::crl::{CrlPublication, CrlRefusal};
use crate::error::Error;
use crate::store::Role;
use crate::tls::ConnectionInfo;

/// The media type of a DER CRL (RFC 5280 section 4.2.1.13 / RFC 2585).
pub(crate) const PKIX_CRL: &str = "application/pkix-crl";

pub(crate) async fn publish(
    State(app): State<AppState>,
    who: Operator,
    body: Bytes,
) -> Result<Json<CrlPublication>, ApiError> {
    who.require(Role::Operator)?;
    match app.registry.publish_crl(&body).await.map_err(ApiError::operator)? {
        Ok(p) => {
            let detail = format!(
                "CRL {} of group {} ({}): {} entries, nextUpdate {}, {}",
                p.number, p.enrollment_id, p.ca, p.entries, p.next_update, p.outcome
            );
            who.audit(&app, "operator.crl.publish", detail, None).await?;
            Ok(Json(p))
        }
        Err(r) => {
            tracing::info!(reason = r.code(), "CRL refused: {r}");
            who.audit_refused(&app, "operator.crl.publish", r.code(), r.to_string()).await?;
            Err(ApiError::operator(match r {
                CrlRefusal::NotNewer { .. } => Error::Conflict(r.to_string()),
                _ => Error::Invalid(r.to_string()),
            }))
        }
    }
}

pub(crate) async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let conn = parts
        .extensions
        .get::<ConnectionInfo>()
        .cloned()
        .ok_or_else(|| ApiError::operator(Error::Config("no connection information".into())))?;
    let crl = if bearer(&parts.headers).is_some() || conn.leaf_sha256().is_none() {
        let who = Operator::from_request_parts(&mut parts, &app).await?;
        who.require(Role::Viewer)?;
        app.registry.crl(&id).await.map_err(ApiError::operator)?
    } else {
        app.device.admit("device.crl", &conn).await.map_err(ApiError::device)?;
        app.registry.crl(&id).await.map_err(ApiError::device)?
    };
    Ok(([(CONTENT_TYPE, PKIX_CRL)], crl.der).into_response())
}
