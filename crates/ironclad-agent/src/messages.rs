//! The device's side of commands, telemetry and logs: pin the server's signing keys, poll for
//! signed commands (checked by [`crate::CommandGate`] before anything runs), report outcomes as
//! telemetry signed in the secure element, fetch the wrapped log key and upload the encrypted
//! log file.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::Method;
use ironclad_proto::api::{CommandBatch, LogKeyDelivery, LogKeyRequest, LogUploaded, ServerKeys, paths};
use ironclad_proto::{TrustedKeys, VerifyingKey};
use serde_json::Value;

use crate::device::DeviceConnection;
use crate::error::{Error, Result};
use crate::http::decode;

/// A fetched command: its sequence and the COSE_Sign1 bytes, still unverified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedCommand {
    pub sequence: u64,
    pub cose: Vec<u8>,
}

impl DeviceConnection {
    /// The server's signing keys of one usage (`command-signing`, `manifest-signing`), keyed by
    /// kid. Fetched over this mutual-TLS connection, whose server certificate the device
    /// checked against its pinned server CA: pin the result (first contact) and keep it.
    pub async fn server_keys(&mut self, usage: &str) -> Result<TrustedKeys> {
        let token = self.token()?;
        let path = paths::server_keys(self.identity().device_id());
        let answer: ServerKeys = self.http.json(Method::GET, &path, Some(&token), None::<&()>).await?;
        let mut keys = TrustedKeys::new();
        for key in answer.keys.into_iter().filter(|k| k.usage == usage) {
            let der = hex::decode(&key.spki_hex).map_err(|e| Error::Protocol(format!("server key: {e}")))?;
            let verifying =
                VerifyingKey::from_spki_der(&der).map_err(|e| Error::Protocol(format!("server key: {e}")))?;
            keys.insert(key.kid.into_bytes(), verifying);
        }
        Ok(keys)
    }

    /// Commands queued for this device with a sequence above `after`, oldest first.
    pub async fn poll_commands(&mut self, after: u64) -> Result<Vec<FetchedCommand>> {
        let id = self.identity().device_id().to_owned();
        self.poll_commands_of(&id, after).await
    }

    /// Another device's commands: the server refuses (tests of isolation).
    pub async fn poll_commands_of(&mut self, device_id: &str, after: u64) -> Result<Vec<FetchedCommand>> {
        let token = self.token()?;
        let path = paths::commands(device_id, after);
        let batch: CommandBatch = self.http.json(Method::GET, &path, Some(&token), None::<&()>).await?;
        batch
            .commands
            .into_iter()
            .map(|c| {
                let cose = B64
                    .decode(&c.cose_b64)
                    .map_err(|e| Error::Protocol(format!("command {}: {e}", c.sequence)))?;
                Ok(FetchedCommand { sequence: c.sequence, cose })
            })
            .collect()
    }

    /// Sends a signed telemetry report (COSE_Sign1 made with the device's key).
    pub async fn post_telemetry(&mut self, cose: Vec<u8>) -> Result<Value> {
        let token = self.token()?;
        let path = paths::telemetry(self.identity().device_id());
        let (status, bytes) =
            self.http.send(Method::POST, &path, Some(&token), Some((cose, "application/cose"))).await?;
        decode(status, &bytes)
    }

    /// The device's log key, wrapped to `x25519_public` (its agreement key's public half):
    /// unwrap it with [`crate::install_log_key`] inside the secure element.
    pub async fn request_log_key(&mut self, x25519_public: &[u8]) -> Result<(String, Vec<u8>)> {
        let token = self.token()?;
        let path = paths::log_key(self.identity().device_id());
        let body = LogKeyRequest { x25519_public_hex: hex::encode(x25519_public) };
        let answer: LogKeyDelivery = self.http.json(Method::POST, &path, Some(&token), Some(&body)).await?;
        let wrapped =
            B64.decode(&answer.delivery_b64).map_err(|e| Error::Protocol(format!("log key: {e}")))?;
        Ok((answer.key_id, wrapped))
    }

    /// Uploads an encrypted log file as written (ciphertext only).
    pub async fn upload_log(&mut self, file: Vec<u8>) -> Result<LogUploaded> {
        let token = self.token()?;
        let path = paths::logs(self.identity().device_id());
        let (status, bytes) = self
            .http
            .send(Method::POST, &path, Some(&token), Some((file, "application/octet-stream")))
            .await?;
        decode(status, &bytes)
    }
}
