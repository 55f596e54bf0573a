//! Ownership and media keys from both ends: the device redeems its owner's claim code and
//! fetches its own stream keys over its authenticated session; an owner (a paired phone app
//! holding an `owner` token) gets claim codes, lists its devices and fetches their media keys;
//! an operator reads the key vault's catalog.

use hyper::Method;
use ironclad_proto::ownership::{ClaimCode, ClaimRequest, ClaimResponse, MediaKey, OwnedDevice, paths};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::device::DeviceConnection;
use crate::error::{Error, Result};
use crate::operator::OperatorClient;

impl DeviceConnection {
    /// Redeems an owner's claim code (received over pairing): the device now belongs to that
    /// owner. Needs an authenticated session.
    pub async fn claim(&mut self, code: &str) -> Result<ClaimResponse> {
        let token = self.token()?;
        let path = paths::claim(self.identity().device_id());
        let body = ClaimRequest { code: code.to_owned() };
        self.http.json(Method::POST, &path, Some(&token), Some(&body)).await
    }

    /// This device's media key for `stream` (made by the cloud's key vault on first use).
    pub async fn media_key(&mut self, stream: &str) -> Result<MediaKey> {
        let id = self.identity().device_id().to_owned();
        self.media_key_of(&id, stream).await
    }

    /// The media key of another device's stream: the server refuses it (tests of isolation).
    pub async fn media_key_of(&mut self, device_id: &str, stream: &str) -> Result<MediaKey> {
        let token = self.token()?;
        self.http
            .json(Method::GET, &paths::device_media_key(device_id, stream), Some(&token), None::<&()>)
            .await
    }
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Protocol(format!("unexpected answer: {e}")))
}

impl OperatorClient {
    /// Owner token: a one-time claim code to hand to a device over pairing.
    pub async fn new_claim_code(&mut self) -> Result<ClaimCode> {
        typed(self.call(Method::POST, paths::CLAIM_CODES, Some(&json!({}))).await?)
    }

    /// Owner token: the devices this owner claimed.
    pub async fn owned_devices(&mut self) -> Result<Vec<OwnedDevice>> {
        typed(self.call(Method::GET, paths::OWNED_DEVICES, None).await?)
    }

    /// Owner token: the media key of one of the owner's devices.
    pub async fn owner_media_key(&mut self, device_id: &str, stream: &str) -> Result<MediaKey> {
        typed(self.call(Method::GET, &paths::owner_media_key(device_id, stream), None).await?)
    }

    /// Operator token: any device's media key (audited).
    pub async fn operator_media_key(&mut self, device_id: &str, stream: &str) -> Result<MediaKey> {
        typed(self.call(Method::GET, &paths::operator_media_key(device_id, stream), None).await?)
    }

    /// The key vault's catalog (ids, usages, subjects, versions, ages; never material).
    pub async fn keys(&mut self, usage: Option<&str>) -> Result<Value> {
        let path = match usage {
            Some(u) => format!("/v1/keys?usage={u}"),
            None => "/v1/keys".to_owned(),
        };
        self.call(Method::GET, &path, None).await
    }

    /// Admin token: rotates the key of (usage, subject); answers the new version's listing.
    pub async fn rotate_key(&mut self, usage: &str, subject: &str) -> Result<Value> {
        self.call(Method::POST, "/v1/keys/rotate", Some(&json!({ "usage": usage, "subject": subject }))).await
    }
}
