//! The controller (phone) side: pair-setup with the setup code, pair-verify, then
//! characteristics and pairing management over the encrypted session.
//!
//! The controller's own identity (a UUID pairing identifier and an Ed25519 long-term key) and the
//! accessories it paired with live in a [`ControllerStore`]: a file ([`FileControllerStore`]) or
//! a secure element ([`SeControllerStore`]).

mod session;
mod store;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ironclad_pair::attestation::DeviceAuthVerifier;
use ironclad_pair::setup::{self, SetupCode};
use ironclad_pair::{Identity, MemoryStore, Pairing, PairingId, PairingStore, SystemRandom, verify};
use tokio::net::TcpStream;

pub use session::Session;
pub use store::{ControllerStore, FileControllerStore, PairedAccessory, SeControllerStore};

use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::http::{self, Response, TLV8};

/// How often pair-setup restarts at M1 when the accessory's SRP value B has a leading zero
/// byte (peers disagree on padding it; each retry has a ~1/256 chance of needing another).
const MAX_SETUP_RESTARTS: usize = 8;
/// Longest response body accepted (`/accessories` of a large bridge is tens of kB).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// HTTP over one connection to an accessory, plaintext or (after pair-verify) encrypted.
#[derive(Debug)]
pub(crate) struct HttpClient {
    channel: Channel,
    host: String,
    timeout: Duration,
    /// `EVENT/1.0` messages that arrived while waiting for a response.
    events: VecDeque<Response>,
}

impl HttpClient {
    pub(crate) async fn connect(address: &str, timeout: Duration) -> Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| Error::Timeout("the TCP connection"))??;
        let host = stream.peer_addr()?.ip().to_string();
        Ok(HttpClient { channel: Channel::new(stream), host, timeout, events: VecDeque::new() })
    }

    /// Sends a request and returns its response, queueing events that arrive first.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        target: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Response> {
        let bytes = http::request_bytes(method, target, &self.host, content_type, body);
        self.channel.send(&bytes).await?;
        loop {
            let response = self.read().await?;
            if !response.event {
                return Ok(response);
            }
            self.events.push_back(response);
        }
    }

    async fn read(&mut self) -> Result<Response> {
        let read = self.channel.read_with(|buf| http::parse_response(buf, MAX_RESPONSE));
        tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| Error::Timeout("the accessory's response"))?
    }

    /// The next event, waiting at most `wait`.
    pub(crate) async fn next_event(&mut self, wait: Duration) -> Result<Response> {
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        let read = self.channel.read_with(|buf| http::parse_response(buf, MAX_RESPONSE));
        let response = tokio::time::timeout(wait, read).await.map_err(|_| Error::Timeout("an event"))??;
        if response.event { Ok(response) } else { Err(Error::Http("unsolicited response")) }
    }

    /// POSTs TLV8 and returns the TLV8 answer (a refusal is a TLV8 error item, even with a 4xx
    /// status, as HAP-python and ironclad send for unauthenticated /pairings).
    pub(crate) async fn post_tlv(&mut self, path: &'static str, body: &[u8]) -> Result<Vec<u8>> {
        let response = self.request("POST", path, TLV8, body).await?;
        let is_tlv = response.content_type.as_deref().is_some_and(|t| t.starts_with(TLV8));
        if response.status == 200 || (is_tlv && (400..500).contains(&response.status)) {
            return Ok(response.body);
        }
        Err(Error::Status { method: "POST", path: path.into(), status: response.status, hap_status: None })
    }
}

/// A HAP controller: its identity and the accessories it is paired with.
#[derive(Debug)]
pub struct Controller {
    identity: Identity,
    store: std::sync::Arc<dyn ControllerStore>,
    timeout: Duration,
}

impl Controller {
    /// Opens the controller whose identity is in `store` (created there on first use).
    pub fn new(store: std::sync::Arc<dyn ControllerStore>) -> Result<Self> {
        Ok(Controller { identity: store.identity()?, store, timeout: Duration::from_secs(10) })
    }

    /// How long to wait for each response. Default 10 s (iOS's limit).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Our pairing identifier (a UUID).
    pub fn id(&self) -> &PairingId {
        &self.identity.id
    }

    /// Our long-term Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.identity.key.public_key()
    }

    pub fn store(&self) -> &dyn ControllerStore {
        &*self.store
    }

    /// Pair-setup with the accessory at `address` (`host:port`) using the code it shows; the
    /// accessory is stored under `alias` once its signed long-term key verified.
    pub async fn pair(&self, alias: &str, address: &str, code: &SetupCode) -> Result<PairedAccessory> {
        self.pair_setup(alias, address, code, None).await
    }

    /// [`Controller::pair`], requiring the accessory to prove it is a genuine device: its
    /// device certificate must satisfy `verifier` (e.g. [`crate::OemRootVerifier`]) and sign
    /// the pairing transcript, or pair-setup stops before our long-term key is sent. The
    /// certificate is stored with the pairing.
    pub async fn pair_authenticated(
        &self,
        alias: &str,
        address: &str,
        code: &SetupCode,
        verifier: Arc<dyn DeviceAuthVerifier>,
    ) -> Result<PairedAccessory> {
        self.pair_setup(alias, address, code, Some(verifier)).await
    }

    async fn pair_setup(
        &self,
        alias: &str,
        address: &str,
        code: &SetupCode,
        verifier: Option<Arc<dyn DeviceAuthVerifier>>,
    ) -> Result<PairedAccessory> {
        if self.store.accessory(alias)?.is_some() {
            return Err(Error::AliasTaken(alias.into()));
        }
        let mut client = HttpClient::connect(address, self.timeout).await?;
        let mut restarts = 0;
        let paired = loop {
            let c1 = match &verifier {
                Some(v) => {
                    setup::controller::start_with_device_auth(self.identity.clone(), code.clone(), v.clone())
                }
                None => setup::controller::start(self.identity.clone(), code.clone()),
            };
            let m2 = client.post_tlv("/pair-setup", &c1.message).await?;
            // SRP (two 3072-bit exponentiations) off the I/O threads.
            let c3 = match tokio::task::spawn_blocking(move || c1.next.handle(&m2, &mut SystemRandom)).await?
            {
                Err(e) if e.is_restart() && restarts < MAX_SETUP_RESTARTS => {
                    restarts += 1;
                    tracing::debug!(restarts, "accessory's B has a leading zero byte; restarting pair-setup");
                    continue;
                }
                other => other?,
            };
            let m4 = client.post_tlv("/pair-setup", &c3.message).await?;
            // The device certificate chain check (if any) parses X.509: off the I/O threads.
            let c5 = tokio::task::spawn_blocking(move || c3.next.handle(&m4)).await??;
            let m6 = client.post_tlv("/pair-setup", &c5.message).await?;
            break c5.next.handle(&m6)?;
        };
        let accessory = PairedAccessory {
            alias: alias.into(),
            address: address.into(),
            pairing: paired.peer,
            device: paired.device,
        };
        self.store.save_accessory(&accessory)?;
        tracing::info!(alias, device_id = %accessory.pairing.id, "paired");
        Ok(accessory)
    }

    /// Pair-verify with the accessory stored under `alias`: an encrypted session.
    pub async fn connect(&self, alias: &str) -> Result<Session> {
        let accessory = self.store.accessory(alias)?.ok_or_else(|| Error::UnknownAccessory(alias.into()))?;
        self.connect_to(&accessory).await
    }

    /// Pair-verify with a given accessory record (e.g. at a new address).
    pub async fn connect_to(&self, accessory: &PairedAccessory) -> Result<Session> {
        let mut client = HttpClient::connect(&accessory.address, self.timeout).await?;
        let known = MemoryStore::new();
        known.put(&accessory.pairing)?;
        let v1 = verify::controller::start(self.identity.clone(), &mut SystemRandom)?;
        let m2 = client.post_tlv("/pair-verify", &v1.message).await?;
        let v3 = v1.next.handle(&m2, &known)?;
        let m4 = client.post_tlv("/pair-verify", &v3.message).await?;
        let verified = v3.next.handle(&m4)?;
        client.channel.start_session(verified.into_session())?;
        Ok(Session::new(client, accessory.pairing.clone()))
    }

    /// Removes our pairing on the accessory, then forgets the accessory here.
    pub async fn unpair(&self, alias: &str) -> Result<()> {
        let mut session = self.connect(alias).await?;
        session.remove_pairing(&self.identity.id).await?;
        self.store.remove_accessory(alias)
    }

    /// Adds another controller to the accessory (we must be an admin there).
    pub async fn add_controller(&self, alias: &str, controller: &Pairing) -> Result<()> {
        self.connect(alias).await?.add_pairing(controller).await
    }
}
