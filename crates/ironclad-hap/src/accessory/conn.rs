//! One controller connection: plaintext HTTP for pair-setup and pair-verify, then HAP session
//! frames for everything else. Pairing steps (SRP, signatures, secure-element writes) run on the
//! blocking pool so the I/O loop never waits on them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ironclad_pair::delegation::{CloudDelegation, StoredDelegation};
use ironclad_pair::pairings::{self, PairingsEvent};
use ironclad_pair::setup::accessory::{self as setup, SETUP_TIMEOUT};
use ironclad_pair::tlv8::{Tlv8, Tlv8Writer, types};
use ironclad_pair::{ErrorCode, PairingId, PairingStore, SystemRandom, verify};
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use zeroize::Zeroizing;

use super::{Change, SessionEntry, Shared, lock};
use crate::channel::Channel;
use crate::database::{CharId, HapStatus, ReadOptions, Written};
use crate::device_auth::check_trust_anchor;
use crate::error::{Error, Result};
use crate::http::{self, HAP_JSON, TLV8};

/// Where this connection's pair-setup is.
#[derive(Debug, Default)]
enum SetupStep {
    #[default]
    Idle,
    M3(Box<setup::ExpectM3>, Instant),
    M5(Box<setup::ExpectM5>, Instant),
}

/// The reply to a request; `session` switches the connection to encrypted frames once sent.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    session: Option<verify::Verified>,
}

impl Reply {
    fn tlv(body: Vec<u8>) -> Self {
        Reply { status: 200, content_type: TLV8, body, session: None }
    }

    fn json(status: u16, body: &Value) -> Self {
        Reply { status, content_type: HAP_JSON, body: body.to_string().into_bytes(), session: None }
    }

    fn status(status: u16, hap: HapStatus) -> Self {
        Self::json(status, &json!({"status": hap.code()}))
    }

    fn no_content() -> Self {
        Reply { status: 204, content_type: HAP_JSON, body: Vec::new(), session: None }
    }
}

fn error_tlv(state: u8, code: ErrorCode) -> Vec<u8> {
    Tlv8Writer::new().push_u8(types::STATE, state).push_u8(types::ERROR, code.to_u8()).finish()
}

/// The State of a TLV8 request (0 when absent or malformed).
fn state_of(body: &[u8]) -> u8 {
    Tlv8::decode(body).ok().and_then(|t| t.get_u8(types::STATE).ok().flatten()).unwrap_or(0)
}

/// Runs a pairing step on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

pub(super) struct Connection {
    id: u64,
    shared: Arc<Shared>,
    channel: Channel,
    peer_addr: SocketAddr,
    setup: SetupStep,
    verify: Option<verify::accessory::ExpectM3>,
    /// The controller, once pair-verify succeeded.
    peer: Option<PairingId>,
    subscriptions: HashSet<CharId>,
    /// Set when this controller's pairing is removed (or on a pairing reset).
    kill: watch::Receiver<bool>,
}

impl Connection {
    pub(super) fn new(id: u64, shared: Arc<Shared>, stream: TcpStream, peer_addr: SocketAddr) -> Self {
        let (kill_tx, kill) = watch::channel(false);
        lock(&shared.sessions).insert(id, SessionEntry { peer: None, kill: kill_tx });
        Connection {
            id,
            shared,
            channel: Channel::new(stream),
            peer_addr,
            setup: SetupStep::Idle,
            verify: None,
            peer: None,
            subscriptions: HashSet::new(),
            kill,
        }
    }

    pub(super) async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
        mut changes: broadcast::Receiver<Change>,
    ) {
        match self.serve(&mut shutdown, &mut changes).await {
            Ok(()) => tracing::debug!(conn = self.id, peer = %self.peer_addr, "connection closed"),
            Err(e) => tracing::debug!(conn = self.id, peer = %self.peer_addr, error = %e, "connection ended"),
        }
        lock(&self.shared.slot).release(self.id);
        lock(&self.shared.sessions).remove(&self.id);
        self.channel.shutdown().await;
    }

    async fn serve(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        changes: &mut broadcast::Receiver<Change>,
    ) -> Result<()> {
        let mut kill = self.kill.clone();
        loop {
            if *shutdown.borrow() || *kill.borrow() {
                return Ok(());
            }
            if let Some(request) = http::parse_request(self.channel.buffer(), self.shared.limits.max_body)? {
                let reply = self.handle(request).await?;
                let bytes = http::response_bytes(reply.status, reply.content_type, &reply.body);
                self.channel.send(&bytes).await?;
                if let Some(verified) = reply.session {
                    let peer = verified.peer.id.clone();
                    self.channel.start_session(verified.into_session())?;
                    tracing::info!(conn = self.id, controller = %peer, "session verified");
                    if let Some(entry) = lock(&self.shared.sessions).get_mut(&self.id) {
                        entry.peer = Some(peer.clone());
                    }
                    self.peer = Some(peer);
                }
                continue;
            }
            let verified = self.peer.is_some();
            let idle = tokio::time::Instant::now() + self.shared.limits.idle_timeout;
            tokio::select! {
                biased;
                _ = shutdown.changed() => return Ok(()),
                _ = kill.changed() => return Ok(()),
                change = changes.recv(), if verified => {
                    if let Ok(change) = change {
                        self.forward(change).await?;
                    }
                }
                more = self.channel.fill() => if !more? {
                    return Ok(());
                },
                _ = tokio::time::sleep_until(idle), if !verified => return Err(Error::Timeout("a request")),
            }
        }
    }

    /// Sends an event for a change this controller subscribed to and did not make itself.
    async fn forward(&mut self, change: Change) -> Result<()> {
        if change.origin == Some(self.id) || !self.subscriptions.contains(&change.id) {
            return Ok(());
        }
        let CharId { aid, iid } = change.id;
        let body = json!({"characteristics": [{"aid": aid, "iid": iid, "value": change.value}]});
        self.channel.send(&http::event_bytes(body.to_string().as_bytes())).await
    }

    async fn handle(&mut self, request: http::Request) -> Result<Reply> {
        tracing::trace!(conn = self.id, method = %request.method, target = %request.target, "request");
        let verified = self.peer.is_some();
        match (request.method.as_str(), request.path()) {
            ("POST", "/pair-setup") => self.pair_setup(request.body).await,
            ("POST", "/pair-verify") => self.pair_verify(request.body).await,
            ("POST", "/pairings") if !verified => {
                Ok(Reply { status: 470, ..Reply::tlv(error_tlv(2, ErrorCode::Authentication)) })
            }
            ("POST", "/pairings") => self.pairings(request.body).await,
            ("GET", "/accessories" | "/characteristics") | ("PUT", "/characteristics") if !verified => {
                Ok(Reply::status(470, HapStatus::InsufficientPrivileges))
            }
            ("GET", "/accessories") => Ok(Reply::json(200, &lock(&self.shared.db).to_json())),
            ("GET", "/characteristics") => Ok(self.read(request.query())),
            ("PUT", "/characteristics") => self.write(&request.body).await,
            ("POST", "/identify") => self.identify().await,
            (
                _,
                "/pair-setup" | "/pair-verify" | "/pairings" | "/accessories" | "/characteristics"
                | "/identify",
            ) => Ok(Reply::status(405, HapStatus::InvalidValue)),
            _ => Ok(Reply::status(404, HapStatus::NotFound)),
        }
    }

    fn release_slot(&self) {
        lock(&self.shared.slot).release(self.id);
    }

    async fn pair_setup(&mut self, body: Vec<u8>) -> Result<Reply> {
        let state = state_of(&body);
        if self.channel.is_encrypted() {
            return Ok(Reply::tlv(error_tlv(state.saturating_add(1), ErrorCode::Unavailable)));
        }
        let shared = self.shared.clone();
        let result = match (state, std::mem::take(&mut self.setup)) {
            (1, _) => {
                if lock(&shared.slot).acquire(self.id, Instant::now()).is_err() {
                    tracing::info!(conn = self.id, "pair-setup refused: another setup is in progress");
                    return Ok(Reply::tlv(setup::busy_reply()));
                }
                let result = blocking(move || {
                    let step = setup::ExpectM1::new(shared.identity.clone(), shared.verifier.clone())
                        .with_attestation(shared.attestation.clone());
                    step.handle(&body, &shared.store, &shared.store, &mut SystemRandom)
                })
                .await?;
                result.map(|r| {
                    self.setup = SetupStep::M3(Box::new(r.next), Instant::now());
                    r.message
                })
            }
            (3, SetupStep::M3(step, started)) if started.elapsed() < SETUP_TIMEOUT => {
                let result = blocking(move || step.handle(&body, &shared.store)).await?;
                result.map(|r| {
                    self.setup = SetupStep::M5(Box::new(r.next), started);
                    r.message
                })
            }
            (5, SetupStep::M5(step, started)) if started.elapsed() < SETUP_TIMEOUT => {
                // The pairing is stored durably inside this step, before M6 is returned.
                let result = blocking(move || step.handle(&body, &shared.store, &shared.store)).await?;
                result.map(|r| {
                    self.release_slot();
                    tracing::info!(conn = self.id, controller = %r.next.peer.id, "paired");
                    r.message
                })
            }
            _ => {
                self.release_slot();
                tracing::debug!(conn = self.id, state, "pair-setup message out of order or too late");
                return Ok(Reply::tlv(error_tlv(state.saturating_add(1), ErrorCode::Unknown)));
            }
        };
        match result {
            Ok(message) => Ok(Reply::tlv(message)),
            Err(rejected) => {
                self.release_slot();
                tracing::info!(conn = self.id, error = %rejected.error, "pair-setup refused");
                Ok(Reply::tlv(rejected.reply))
            }
        }
    }

    async fn pair_verify(&mut self, body: Vec<u8>) -> Result<Reply> {
        let state = state_of(&body);
        if self.channel.is_encrypted() {
            return Ok(Reply::tlv(error_tlv(state.saturating_add(1), ErrorCode::Unknown)));
        }
        let shared = self.shared.clone();
        match (state, self.verify.take()) {
            (1, _) => {
                let step = verify::accessory::ExpectM1::new(shared.identity.clone());
                match blocking(move || step.handle(&body, &mut SystemRandom)).await? {
                    Ok(r) => {
                        self.verify = Some(r.next);
                        Ok(Reply::tlv(r.message))
                    }
                    Err(rejected) => Ok(Reply::tlv(rejected.reply)),
                }
            }
            (3, Some(step)) => match blocking(move || step.handle(&body, &shared.store)).await? {
                Ok(r) => Ok(Reply { session: Some(r.next), ..Reply::tlv(r.message) }),
                Err(rejected) => {
                    tracing::info!(conn = self.id, error = %rejected.error, "pair-verify refused");
                    Ok(Reply::tlv(rejected.reply))
                }
            },
            _ => Ok(Reply::tlv(error_tlv(state.saturating_add(1), ErrorCode::Unknown))),
        }
    }

    async fn pairings(&mut self, body: Vec<u8>) -> Result<Reply> {
        let (Some(caller), shared) = (self.peer.clone(), self.shared.clone()) else {
            return Ok(Reply::tlv(error_tlv(2, ErrorCode::Authentication)));
        };
        match blocking(move || pairings::handle_request(&body, &caller, &shared.store)).await? {
            Ok(reply) => {
                for event in &reply.events {
                    tracing::info!(conn = self.id, ?event, "pairings changed");
                    match event {
                        // Their sessions end once this reply is out (ours included).
                        PairingsEvent::Removed(id) => self.shared.close_sessions(|peer| peer == id),
                        PairingsEvent::AllRemoved => self.shared.close_sessions(|_| true),
                        PairingsEvent::Added(_) | PairingsEvent::Updated(_) => {}
                    }
                }
                Ok(Reply::tlv(reply.message))
            }
            Err(rejected) => {
                tracing::info!(conn = self.id, error = %rejected.error, "pairings request refused");
                Ok(Reply::tlv(rejected.reply))
            }
        }
    }

    /// `GET /characteristics?id=1.11,1.12[&meta=1&perms=1&type=1&ev=1]`.
    fn read(&self, query: &str) -> Reply {
        let mut ids = None;
        let mut options = ReadOptions::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let on = value == "1" || value == "true";
            match key {
                "id" => ids = Some(value.replace("%2C", ",").replace("%2c", ",")),
                "meta" => options.meta = on,
                "perms" => options.perms = on,
                "type" => options.ty = on,
                "ev" => options.ev = on,
                _ => {}
            }
        }
        let Some(Ok(ids)) = ids.map(|ids| ids.split(',').map(str::parse).collect::<Result<Vec<CharId>>>())
        else {
            return Reply::status(400, HapStatus::InvalidValue);
        };
        let db = lock(&self.shared.db);
        let mut all_ok = true;
        let mut entries: Vec<Map<String, Value>> = ids
            .iter()
            .map(|id| {
                let mut entry = Map::new();
                entry.insert("aid".into(), json!(id.aid));
                match db.read(*id, options, self.subscriptions.contains(id)) {
                    Ok(fields) => {
                        entry.extend(fields);
                        entry.insert("status".into(), json!(0));
                    }
                    Err(status) => {
                        all_ok = false;
                        entry.insert("iid".into(), json!(id.iid));
                        entry.insert("status".into(), json!(status.code()));
                    }
                }
                entry
            })
            .collect();
        if all_ok {
            entries.iter_mut().for_each(|e| drop(e.remove("status")));
        }
        Reply::json(if all_ok { 200 } else { 207 }, &json!({ "characteristics": entries }))
    }

    /// `PUT /characteristics`: values and event subscriptions.
    async fn write(&mut self, body: &[u8]) -> Result<Reply> {
        let request: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return Ok(Reply::status(400, HapStatus::InvalidValue)),
        };
        let Some(items) = request.get("characteristics").and_then(Value::as_array) else {
            return Ok(Reply::status(400, HapStatus::InvalidValue));
        };
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let (Some(aid), Some(iid)) =
                (item.get("aid").and_then(Value::as_u64), item.get("iid").and_then(Value::as_u64))
            else {
                return Ok(Reply::status(400, HapStatus::InvalidValue));
            };
            let id = CharId::new(aid, iid);
            results.push((id, self.write_one(id, item).await?));
        }
        if results.iter().all(|(_, status)| *status == HapStatus::Success) {
            return Ok(Reply::no_content());
        }
        let entries: Vec<Value> =
            results.iter().map(|(id, s)| json!({"aid": id.aid, "iid": id.iid, "status": s.code()})).collect();
        Ok(Reply::json(207, &json!({ "characteristics": entries })))
    }

    async fn write_one(&mut self, id: CharId, item: &Value) -> Result<HapStatus> {
        let (ev, value) = (item.get("ev"), item.get("value"));
        if ev.is_none() && value.is_none() {
            return Ok(HapStatus::InvalidValue);
        }
        if let Some(ev) = ev {
            let on = match ev {
                Value::Bool(b) => *b,
                Value::Number(n) if n.as_u64() == Some(1) => true,
                Value::Number(n) if n.as_u64() == Some(0) => false,
                _ => return Ok(HapStatus::InvalidValue),
            };
            if let Err(status) = lock(&self.shared.db).check_events(id) {
                return Ok(status);
            }
            if on {
                self.subscriptions.insert(id);
            } else {
                self.subscriptions.remove(&id);
            }
        }
        let Some(value) = value else { return Ok(HapStatus::Success) };
        let written = lock(&self.shared.db).write(id, value);
        match written {
            Err(status) => return Ok(status),
            Ok(Written::Stored { notify }) => {
                if notify {
                    let value = self.shared.db_value(id);
                    self.shared.notify(id, value, Some(self.id));
                }
            }
            Ok(Written::Identify) => tracing::info!(conn = self.id, "identify requested"),
            Ok(Written::CloudDelegation(body)) => return self.store_delegation(id, body).await,
        }
        Ok(HapStatus::Success)
    }

    /// A cloud delegation written by the verified controller: admin only, parsed and checked
    /// (limits, URL, the trust anchor's X.509 CA certificates), then sealed in the secure
    /// element before the write is acknowledged.
    async fn store_delegation(&mut self, id: CharId, body: Zeroizing<Vec<u8>>) -> Result<HapStatus> {
        let Some(caller) = self.peer.clone() else { return Ok(HapStatus::InsufficientPrivileges) };
        let shared = self.shared.clone();
        let outcome = blocking(move || -> Result<std::result::Result<StoredDelegation, HapStatus>> {
            // Admin in the store now: a controller demoted mid-session has lost the right.
            if !shared.store.get(&caller)?.is_some_and(|p| p.permissions.is_admin()) {
                return Ok(Err(HapStatus::InsufficientPrivileges));
            }
            let delegation = match CloudDelegation::decode(&body, shared.delegations.limits()) {
                Ok(d) => d,
                Err(e) => {
                    tracing::info!(error = %e, "cloud delegation refused");
                    return Ok(Err(HapStatus::InvalidValue));
                }
            };
            if let Err(e) = check_trust_anchor(delegation.trust_anchor_pem()) {
                tracing::info!(error = %e, "cloud delegation refused");
                return Ok(Err(HapStatus::InvalidValue));
            }
            let stored = StoredDelegation { delegation, delegated_by: caller };
            shared.delegations.save(&stored)?;
            Ok(Ok(stored))
        })
        .await?;
        match outcome {
            Ok(Ok(stored)) => {
                tracing::info!(
                    conn = self.id,
                    endpoint = stored.delegation.endpoint(),
                    controller = %stored.delegated_by,
                    "cloud delegation stored sealed"
                );
                self.shared.notify(id, Value::Null, Some(self.id));
                Ok(HapStatus::Success)
            }
            Ok(Err(status)) => {
                tracing::info!(conn = self.id, %status, "cloud delegation refused");
                Ok(status)
            }
            Err(e) => {
                tracing::warn!(conn = self.id, error = %e, "cannot store the cloud delegation");
                Ok(HapStatus::CommunicationFailure)
            }
        }
    }

    /// `POST /identify`: only while unpaired.
    async fn identify(&self) -> Result<Reply> {
        let shared = self.shared.clone();
        if blocking(move || shared.store.is_paired()).await?? {
            return Ok(Reply::status(400, HapStatus::InsufficientPrivileges));
        }
        tracing::info!(conn = self.id, "identify requested (unpaired)");
        Ok(Reply::no_content())
    }
}
