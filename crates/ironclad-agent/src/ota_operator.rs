//! The OTA operator API from the client side: firmware-verification keys, the server's
//! encryption key, release upload and listing, rollouts.

use hyper::Method;
use ironclad_proto::ota::{
    AddOtaKey, DeviceOtaInfo, OtaKeyInfo, ReleaseInfo, RolloutInfo, RolloutStatus, SetStage, StartRollout,
    paths,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::operator::OperatorClient;

fn typed<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Protocol(format!("unexpected answer: {e}")))
}

fn json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Protocol(e.to_string()))
}

impl OperatorClient {
    /// Admin: registers a firmware-verification (mastering) public key, PEM.
    pub async fn add_ota_key(&mut self, name: &str, public_key_pem: &str) -> Result<OtaKeyInfo> {
        let body = AddOtaKey { name: name.to_owned(), public_key_pem: public_key_pem.to_owned() };
        typed(self.call(Method::POST, paths::KEYS, Some(&json(&body)?)).await?)
    }

    /// The registered firmware-verification keys.
    pub async fn ota_keys(&mut self) -> Result<Vec<OtaKeyInfo>> {
        typed(self.call(Method::GET, paths::KEYS, None).await?)
    }

    /// The server's firmware-decryption public key (`key_id`, `public_key_pem`): encrypt
    /// releases to it.
    pub async fn ota_encryption_key(&mut self) -> Result<Value> {
        self.call(Method::GET, paths::ENCRYPTION_KEY, None).await
    }

    /// Operator: uploads a release image (verified by the server).
    pub async fn upload_release(&mut self, image: Vec<u8>, note: &str) -> Result<ReleaseInfo> {
        let mut path = paths::RELEASES.to_owned();
        if !note.is_empty() {
            let encoded: String = note
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            path = format!("{path}?note={encoded}");
        }
        typed(self.call_bytes(Method::POST, &path, image, "application/octet-stream").await?)
    }

    /// Every release.
    pub async fn releases(&mut self) -> Result<Vec<ReleaseInfo>> {
        typed(self.call(Method::GET, paths::RELEASES, None).await?)
    }

    /// Each device's progress with a release.
    pub async fn release_devices(&mut self, release_id: &str) -> Result<Vec<DeviceOtaInfo>> {
        typed(self.call(Method::GET, &paths::release_devices(release_id), None).await?)
    }

    /// Operator: starts a rollout of a release to a group at a first percentage.
    pub async fn start_rollout(
        &mut self,
        release_id: &str,
        group: &str,
        percentage: u8,
    ) -> Result<RolloutInfo> {
        let body = StartRollout { release_id: release_id.to_owned(), group: group.to_owned(), percentage };
        typed(self.call(Method::POST, paths::ROLLOUTS, Some(&json(&body)?)).await?)
    }

    /// Operator: a new stage percentage.
    pub async fn stage_rollout(&mut self, id: &str, percentage: u8) -> Result<RolloutInfo> {
        let body = json(&SetStage { percentage })?;
        typed(self.call(Method::POST, &paths::rollout_action(id, "stage"), Some(&body)).await?)
    }

    /// Operator: `pause`, `resume` or `abort`.
    pub async fn rollout_action(&mut self, id: &str, action: &str) -> Result<RolloutInfo> {
        typed(self.call(Method::POST, &paths::rollout_action(id, action), None).await?)
    }

    /// Every rollout, newest first.
    pub async fn rollouts(&mut self) -> Result<Vec<RolloutInfo>> {
        typed(self.call(Method::GET, paths::ROLLOUTS, None).await?)
    }

    /// A rollout with each device's state.
    pub async fn rollout_status(&mut self, id: &str) -> Result<RolloutStatus> {
        typed(self.call(Method::GET, &paths::rollout(id), None).await?)
    }
}
