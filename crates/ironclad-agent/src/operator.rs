//! A small client for the server's operator API (API token, TLS without a client
//! certificate): what the fleet simulator uses to enroll its line CA, and what the CLI can use
//! against a remote server.

use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::device::ServerEndpoint;
use crate::error::{Error, Result};
use crate::http::{HttpConn, decode};
use crate::tls::plain_client_config;

/// The fields of an enrollment the client needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentInfo {
    /// Enrollment ID.
    pub id: String,
    /// "enabled", "disabled" or "pending_proof".
    pub status: String,
    /// The code a group's CA must sign, while pending.
    #[serde(default)]
    pub verification_code: Option<String>,
    /// Device ID of an individual enrollment.
    #[serde(default)]
    pub device_id: Option<String>,
}

/// An operator API connection.
#[derive(Debug)]
pub struct OperatorClient {
    http: HttpConn,
    token: Zeroizing<String>,
}

impl OperatorClient {
    /// Connects (server-authenticated TLS) with an API token.
    pub async fn connect(endpoint: &ServerEndpoint, token: &str) -> Result<Self> {
        let config = plain_client_config(endpoint.roots.clone())?;
        let http = HttpConn::connect(endpoint.addr, &endpoint.server_name, config).await?;
        Ok(OperatorClient { http, token: Zeroizing::new(token.to_owned()) })
    }

    /// Any JSON call: `body` `None` sends no body.
    pub async fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let token = self.token.to_string();
        self.http.json(method, path, Some(&token), body).await
    }

    /// A raw body (an image upload), JSON answer.
    pub async fn call_bytes(
        &mut self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Value> {
        let token = self.token.to_string();
        let (status, answer) = self.http.send(method, path, Some(&token), Some((body, content_type))).await?;
        crate::http::decode(status, &answer)
    }

    /// A request without JSON decoding: the status and the body as text.
    pub async fn call_raw(&mut self, method: Method, path: &str) -> Result<(u16, String)> {
        let token = self.token.to_string();
        let (status, body) = self.http.send(method, path, Some(&token), None).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Starts a group enrollment for a CA certificate (PEM); the answer has the verification
    /// code.
    pub async fn enroll_group(&mut self, ca_pem: &str, note: &str) -> Result<EnrollmentInfo> {
        let v = self
            .call(
                Method::POST,
                "/v1/enrollments/group",
                Some(&json!({ "ca_certificate_pem": ca_pem, "note": note })),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Proves possession of the group CA's key with a verification certificate (PEM).
    pub async fn prove_group(&mut self, id: &str, verification_pem: &str) -> Result<EnrollmentInfo> {
        let body = json!({ "verification_certificate_pem": verification_pem });
        let v = self.call(Method::POST, &format!("/v1/enrollments/{id}/proof"), Some(&body)).await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Enrolls one device certificate (PEM).
    pub async fn enroll_certificate(&mut self, cert_pem: &str, enabled: bool) -> Result<EnrollmentInfo> {
        let body = json!({ "certificate_pem": cert_pem, "enabled": enabled });
        let v = self.call(Method::POST, "/v1/enrollments/individual", Some(&body)).await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Enables or disables an enrollment.
    pub async fn set_enabled(&mut self, id: &str, enabled: bool) -> Result<EnrollmentInfo> {
        let action = if enabled { "enable" } else { "disable" };
        let v = self.call(Method::POST, &format!("/v1/enrollments/{id}/{action}"), None).await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Imports a factory manifest (JSON lines).
    pub async fn import_manifest(&mut self, jsonl: &str) -> Result<Value> {
        let token = self.token.to_string();
        let (status, body) = self
            .http
            .send(
                Method::POST,
                "/v1/enrollments/import",
                Some(&token),
                Some((jsonl.as_bytes().to_vec(), "application/x-ndjson")),
            )
            .await?;
        decode(status, &body)
    }

    /// Revokes a certificate serial.
    pub async fn revoke(&mut self, serial: &str, reason: &str) -> Result<Value> {
        self.call(Method::POST, "/v1/revocations", Some(&json!({ "serial": serial, "reason": reason }))).await
    }

    /// Publishes a CRL (DER or PEM) signed by an enrolled group CA (needs an operator token).
    /// The answer names the CA's enrollment, the CRL number and the outcome.
    pub async fn publish_crl(&mut self, crl: &[u8]) -> Result<Value> {
        let token = self.token.to_string();
        let body = Some((crl.to_vec(), "application/pkix-crl"));
        let (status, answer) = self.http.send(Method::POST, "/v1/crls", Some(&token), body).await?;
        decode(status, &answer)
    }

    /// The current CRL (DER) of a group enrollment's CA.
    pub async fn crl(&mut self, enrollment_id: &str) -> Result<Vec<u8>> {
        let token = self.token.to_string();
        let path = format!("/v1/crls/{enrollment_id}");
        let (status, body) = self.http.send(Method::GET, &path, Some(&token), None).await?;
        if !(200..300).contains(&status) {
            return Err(decode::<Value>(status, &body).err().unwrap_or(Error::Server {
                status,
                code: None,
                message: None,
            }));
        }
        Ok(body.to_vec())
    }

    /// Creates an operator API token (needs an admin token); `role` is "viewer", "operator"
    /// or "admin". The answer (`name`, `role`, `token`) carries the secret, this once.
    pub async fn create_token(&mut self, name: &str, role: &str) -> Result<Value> {
        self.call(Method::POST, "/v1/tokens", Some(&json!({ "name": name, "role": role }))).await
    }

    /// Every enrollment.
    pub async fn enrollments(&mut self) -> Result<Value> {
        self.call(Method::GET, "/v1/enrollments", None).await
    }

    /// The newest audit records (newest first).
    pub async fn audit(&mut self, limit: u32) -> Result<Value> {
        self.call(Method::GET, &format!("/v1/audit?limit={limit}"), None).await
    }
}
