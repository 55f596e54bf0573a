//! A verified, encrypted connection to one accessory: characteristics, events and pairings.

use std::time::Duration;

use base64::Engine;
use ironclad_pair::delegation::CloudDelegation;
use ironclad_pair::pairings::{self, PairingsRequest};
use ironclad_pair::{Pairing, PairingId};
use serde_json::{Value, json};

use super::HttpClient;
use crate::database::{CharId, HapStatus, ids};
use crate::error::{Error, Result};
use crate::http::{HAP_JSON, Response};

/// An encrypted HAP session with an accessory (after pair-verify).
#[derive(Debug)]
pub struct Session {
    client: HttpClient,
    accessory: Pairing,
}

fn parse_json(response: &Response) -> Result<Value> {
    serde_json::from_slice(&response.body).map_err(|e| Error::Json(e.to_string()))
}

/// `(aid, iid, value-or-status)` entries of a characteristics body.
fn entries(body: &Value) -> Result<Vec<(CharId, &Value)>> {
    let list = body
        .get("characteristics")
        .and_then(Value::as_array)
        .ok_or(Error::Json("no characteristics array".into()))?;
    list.iter()
        .map(|c| match (c.get("aid").and_then(Value::as_u64), c.get("iid").and_then(Value::as_u64)) {
            (Some(aid), Some(iid)) => Ok((CharId::new(aid, iid), c)),
            _ => Err(Error::Json("characteristic without aid/iid".into())),
        })
        .collect()
}

fn status_of(entry: &Value) -> HapStatus {
    HapStatus::from_code(entry.get("status").and_then(Value::as_i64).unwrap_or(0))
}

impl Session {
    pub(super) fn new(client: HttpClient, accessory: Pairing) -> Self {
        Session { client, accessory }
    }

    /// The accessory, as stored at pair-setup and proven by pair-verify.
    pub fn accessory(&self) -> &Pairing {
        &self.accessory
    }

    /// Any HTTP request over the session (events that arrive meanwhile are kept for
    /// [`Session::next_event`]).
    pub async fn request(
        &mut self,
        method: &str,
        target: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Response> {
        self.client.request(method, target, content_type, body).await
    }

    async fn json(&mut self, method: &'static str, target: &str, body: Option<&Value>) -> Result<Response> {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let response = self.client.request(method, target, HAP_JSON, &body).await?;
        if matches!(response.status, 200 | 204 | 207) {
            return Ok(response);
        }
        let hap_status = parse_json(&response).ok().and_then(|v| v.get("status").and_then(Value::as_i64));
        let path = target.split('?').next().unwrap_or(target).to_owned();
        Err(Error::Status { method, path, status: response.status, hap_status })
    }

    /// `GET /accessories`: the accessory database as HAP JSON.
    pub async fn accessories(&mut self) -> Result<Value> {
        parse_json(&self.json("GET", "/accessories", None).await?)
    }

    /// Reads characteristics. Any refused one fails the call with [`Error::Characteristics`].
    pub async fn get(&mut self, ids: &[CharId]) -> Result<Vec<(CharId, Value)>> {
        let list: Vec<String> = ids.iter().map(CharId::to_string).collect();
        let body =
            parse_json(&self.json("GET", &format!("/characteristics?id={}", list.join(",")), None).await?)?;
        let entries = entries(&body)?;
        let refused: Vec<_> = entries
            .iter()
            .map(|(id, e)| (*id, status_of(e)))
            .filter(|(_, s)| *s != HapStatus::Success)
            .collect();
        if !refused.is_empty() {
            return Err(Error::Characteristics(refused));
        }
        Ok(entries.into_iter().map(|(id, e)| (id, e.get("value").cloned().unwrap_or(Value::Null))).collect())
    }

    /// Writes characteristics. Any refused one fails the call with [`Error::Characteristics`].
    pub async fn put(&mut self, writes: &[(CharId, Value)]) -> Result<()> {
        let items: Vec<Value> =
            writes.iter().map(|(id, v)| json!({"aid": id.aid, "iid": id.iid, "value": v})).collect();
        self.put_items(items).await
    }

    async fn put_items(&mut self, items: Vec<Value>) -> Result<()> {
        let response =
            self.json("PUT", "/characteristics", Some(&json!({ "characteristics": items }))).await?;
        if response.status == 204 || response.body.is_empty() {
            return Ok(());
        }
        let body = parse_json(&response)?;
        let refused: Vec<_> = entries(&body)?
            .iter()
            .map(|(id, e)| (*id, status_of(e)))
            .filter(|(_, s)| *s != HapStatus::Success)
            .collect();
        if refused.is_empty() { Ok(()) } else { Err(Error::Characteristics(refused)) }
    }

    /// Turns events on (or off) for these characteristics.
    pub async fn subscribe(&mut self, ids: &[CharId], enable: bool) -> Result<()> {
        let items = ids.iter().map(|id| json!({"aid": id.aid, "iid": id.iid, "ev": enable})).collect();
        self.put_items(items).await
    }

    /// The next event's changes, waiting at most `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Vec<(CharId, Value)>> {
        let event = self.client.next_event(wait).await?;
        let body = parse_json(&event)?;
        Ok(entries(&body)?
            .into_iter()
            .map(|(id, e)| (id, e.get("value").cloned().unwrap_or(Value::Null)))
            .collect())
    }

    /// Delegates cloud access: writes the delegation to the ironclad accessory's write-only
    /// cloud-delegation characteristic. The accessory accepts it from an admin only, checks it
    /// and seals it in its secure element before answering.
    pub async fn delegate(&mut self, delegation: &CloudDelegation) -> Result<()> {
        self.put_delegation_bytes(&delegation.encode()).await
    }

    /// Writes raw bytes to the cloud-delegation characteristic (tests of the accessory's
    /// checks; use [`Session::delegate`]).
    #[doc(hidden)]
    pub async fn put_delegation_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.put(&[(ids::CLOUD_DELEGATION, Value::String(encoded))]).await
    }

    async fn pairings(&mut self, request: &PairingsRequest) -> Result<Vec<u8>> {
        self.client.post_tlv("/pairings", &request.encode()).await
    }

    /// Every pairing of the accessory (admin only).
    pub async fn list_pairings(&mut self) -> Result<Vec<Pairing>> {
        let reply = self.pairings(&PairingsRequest::List).await?;
        Ok(pairings::parse_list_response(&reply)?)
    }

    /// Adds a controller, or changes its permissions (admin only).
    pub async fn add_pairing(&mut self, pairing: &Pairing) -> Result<()> {
        let reply = self.pairings(&PairingsRequest::Add(pairing.clone())).await?;
        Ok(pairings::parse_response(&reply)?)
    }

    /// Removes a controller (admin only). Removing ourselves ends this session: the accessory
    /// closes it after the reply.
    pub async fn remove_pairing(&mut self, id: &PairingId) -> Result<()> {
        let reply = self.pairings(&PairingsRequest::Remove(id.clone())).await?;
        Ok(pairings::parse_response(&reply)?)
    }
}
