//! The device side of authentication: mutual TLS with the secure-element key, the
//! session-bound challenge-response, and the device's own resources.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;
use ironclad_proto::{
    Challenge, ChallengeResponse, DeviceState, ExporterValue, PutDeviceState, SessionRequest,
    SessionResponse, auth_message, paths,
};
use ironclad_se::SignInput;
use rustls::RootCertStore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::http::HttpConn;
use crate::identity::DeviceIdentity;
use crate::tls::{TlsVersions, device_client_config};

/// Where the server is and how to recognise it.
#[derive(Clone, Debug)]
pub struct ServerEndpoint {
    /// Socket address.
    pub addr: SocketAddr,
    /// Name in the server's certificate (DNS name or IP address).
    pub server_name: String,
    /// CAs of the server's certificate.
    pub roots: RootCertStore,
    /// TLS versions to offer.
    pub tls: TlsVersions,
}

impl ServerEndpoint {
    /// An endpoint trusting the CA certificates in `ca_pem`.
    pub fn new(addr: SocketAddr, server_name: &str, ca_pem: &[u8]) -> Result<Self> {
        Ok(ServerEndpoint {
            addr,
            server_name: server_name.to_owned(),
            roots: crate::tls::server_roots(ca_pem)?,
            tls: TlsVersions::Any,
        })
    }
}

/// A device session: the bearer token for the device's own resources.
#[derive(Clone)]
pub struct Session {
    token: Zeroizing<String>,
    device_id: String,
    expires_at: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device_id", &self.device_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Session {
    /// The device ID the server knows this device by.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Time left.
    pub fn remaining(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }
}

/// A mutual-TLS connection of one device.
#[derive(Debug)]
pub struct DeviceConnection {
    pub(crate) http: HttpConn,
    identity: DeviceIdentity,
    session: Option<Session>,
}

impl DeviceConnection {
    /// Connects with mutual TLS; the handshake's CertificateVerify is signed in the SE.
    pub async fn connect(endpoint: &ServerEndpoint, identity: DeviceIdentity) -> Result<Self> {
        let config = device_client_config(&identity, endpoint.roots.clone(), endpoint.tls)?;
        let http = HttpConn::connect(endpoint.addr, &endpoint.server_name, config).await?;
        Ok(DeviceConnection { http, identity, session: None })
    }

    /// The connection's TLS exporter value.
    pub fn exporter(&self) -> &ExporterValue {
        self.http.exporter()
    }

    /// "TLSv1_3" or "TLSv1_2".
    pub fn protocol_version(&self) -> Option<String> {
        self.http.protocol().map(|v| format!("{v:?}"))
    }

    /// The identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// Step 1: ask for a challenge.
    pub async fn request_challenge(&mut self) -> Result<ChallengeResponse> {
        self.http.json(Method::POST, paths::CHALLENGE, None, None::<&()>).await
    }

    /// Step 2: sign [`auth_message`] (challenge bound to this connection's exporter) inside the
    /// secure element.
    pub fn sign_challenge(&self, challenge: &Challenge) -> Result<Vec<u8>> {
        let msg = auth_message(challenge, self.exporter());
        Ok(self.identity.key().sign(SignInput::Message(&msg))?)
    }

    /// Step 3: send an answer (any signature: tests send wrong ones).
    pub async fn answer(&mut self, challenge_id: &str, signature: Vec<u8>) -> Result<SessionResponse> {
        let req = SessionRequest { challenge_id: challenge_id.to_owned(), signature };
        self.http.json(Method::POST, paths::SESSION, None, Some(&req)).await
    }

    /// The whole challenge-response; keeps and returns the session.
    pub async fn authenticate(&mut self) -> Result<&Session> {
        let c = self.request_challenge().await?;
        let signature = self.sign_challenge(&c.challenge)?;
        let s = self.answer(&c.challenge_id, signature).await?;
        if s.device_id != self.identity.device_id() {
            return Err(Error::Protocol(format!(
                "server knows us as {}, not {}",
                s.device_id,
                self.identity.device_id()
            )));
        }
        let session = Session {
            token: Zeroizing::new(s.token.clone()),
            device_id: s.device_id.clone(),
            expires_at: Instant::now() + Duration::from_secs(s.expires_in),
        };
        Ok(self.session.insert(session))
    }

    /// The current session, if authenticated.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Uses another session token (tests: a stolen token on another connection).
    pub fn set_session(&mut self, session: Session) {
        self.session = Some(session);
    }

    pub(crate) fn token(&self) -> Result<String> {
        self.session
            .as_ref()
            .map(|s| s.token.to_string())
            .ok_or_else(|| Error::Protocol("not authenticated".into()))
    }

    /// Reads this device's state.
    pub async fn get_state(&mut self) -> Result<DeviceState> {
        let id = self.identity.device_id().to_owned();
        self.get_state_of(&id).await
    }

    /// Writes this device's state.
    pub async fn put_state(&mut self, data: serde_json::Value) -> Result<DeviceState> {
        let id = self.identity.device_id().to_owned();
        self.put_state_of(&id, data).await
    }

    /// Reads the state of `device_id` (the server refuses any but our own).
    pub async fn get_state_of(&mut self, device_id: &str) -> Result<DeviceState> {
        let token = self.token()?;
        self.http.json(Method::GET, &paths::device_state(device_id), Some(&token), None::<&()>).await
    }

    /// Writes the state of `device_id` (the server refuses any but our own).
    pub async fn put_state_of(&mut self, device_id: &str, data: serde_json::Value) -> Result<DeviceState> {
        let token = self.token()?;
        let body = PutDeviceState { data };
        self.http.json(Method::PUT, &paths::device_state(device_id), Some(&token), Some(&body)).await
    }
}
