//! The accessory (device) side: a HAP server on tokio.
//!
//! [`Accessory::builder`] takes the secure element that holds everything durable: the long-term
//! Ed25519 key (`<prefix>.ltsk`, generated inside on first start), the Device ID and setup ID
//! (`<prefix>.identity`), the pairings and the failed-attempt counter (ironclad-pair's
//! [`SealedPairingStore`], `<prefix>.pairings` / `<prefix>.attempts`, each written durably before
//! the reply that depends on it) and the cloud delegation an admin controller sent
//! (`<prefix>.cloud-delegation`, [`SealedDelegationStore`]). Optionally the accessory presents its
//! X.509 device certificate in pair-setup ([`AccessoryBuilder::device_certificate`]).
//! [`AccessoryBuilder::start`] binds, spawns the server and returns the running [`Accessory`]
//! with the setup code and the `X-HM://` setup payload to show.

mod conn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ironclad_pair::attestation::DeviceAttestation;
use ironclad_pair::delegation::{SealedDelegationStore, StoredDelegation};
use ironclad_pair::setup::SetupCode;
use ironclad_pair::setup::accessory::SetupSlot;
use ironclad_pair::srp::Verifier;
use ironclad_pair::{
    AttemptCounter, Identity, Pairing, PairingId, PairingStore, SeLongTermKey, SealedPairingStore,
    SystemRandom,
};
use ironclad_se::{KeyAlgorithm, KeyHandle, Label, SecureElement};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;

use crate::database::{AccessoryInfo, CharId, Database, HapStatus};
use crate::error::{Error, Result};
use crate::payload::{Category, SetupId, random_device_id, setup_uri};

/// Resource limits of the accessory server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Simultaneous TCP connections; further ones are closed at once. Default 32 (HAP asks for
    /// at least 17 IP sessions).
    pub max_connections: usize,
    /// Pairings kept. Default 16, HAP's minimum.
    pub max_pairings: usize,
    /// Longest request body accepted. Default 64 KiB.
    pub max_body: usize,
    /// A connection that has not completed pair-verify is closed after this long without a
    /// request. Default 60 s (ADK).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 32,
            max_pairings: 16,
            max_body: 64 * 1024,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A characteristic changed: written by a controller, or set by the device. For the cloud
/// delegation, `value` is `null`: read the stored one with [`Accessory::cloud_delegation`].
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub id: CharId,
    pub value: Value,
    /// The connection that wrote it (it gets no event for its own write).
    origin: Option<u64>,
}

/// Configures and starts an [`Accessory`].
#[derive(Debug)]
pub struct AccessoryBuilder {
    se: Arc<dyn SecureElement>,
    info: AccessoryInfo,
    category: Category,
    setup_code: Option<SetupCode>,
    bind: SocketAddr,
    limits: Limits,
    prefix: String,
    attestation: Option<Arc<dyn DeviceAttestation>>,
}

impl AccessoryBuilder {
    /// Name, manufacturer, model, serial number and firmware revision.
    pub fn info(mut self, info: AccessoryInfo) -> Self {
        self.info = info;
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.info.name = name.into();
        self
    }

    /// Default [`Category::Switch`].
    pub fn category(mut self, category: Category) -> Self {
        self.category = category;
        self
    }

    /// A fixed setup code (manufacturing: printed on the label). Without one, each start draws
    /// a random code to show.
    pub fn setup_code(mut self, code: SetupCode) -> Self {
        self.setup_code = Some(code);
        self
    }

    /// Where to listen. Default `127.0.0.1:0` (any free port, see [`Accessory::local_addr`]).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Presents this device certificate, with a signature over the pairing transcript, to
    /// controllers that ask for device authentication (`Method = PairSetupWithAuth`); usually
    /// [`crate::device_attestation`] of the same secure element.
    pub fn device_certificate(mut self, attestation: Arc<dyn DeviceAttestation>) -> Self {
        self.attestation = Some(attestation);
        self
    }

    /// Prefix of the secure-element object names. Default `"hap"`.
    pub fn store_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Loads (or creates) the identity in the secure element, computes the SRP verifier, binds
    /// and starts serving.
    pub async fn start(self) -> Result<Accessory> {
        let mut rng = SystemRandom;
        let code = match self.setup_code {
            Some(code) => code,
            None => SetupCode::random(&mut rng)?,
        };
        if code.is_forbidden() {
            return Err(Error::invalid("setup code", "HAP forbids this code"));
        }
        let (se, prefix, max_pairings) = (self.se.clone(), self.prefix.clone(), self.limits.max_pairings);
        let verifier_code = code.clone();
        let (identity, setup_id, store, verifier) = tokio::task::spawn_blocking(move || {
            let (identity, setup_id) = load_identity(&se, &prefix)?;
            let store = SealedPairingStore::new(se, &prefix, max_pairings)?;
            // Computed once, as ADK does: g^x costs milliseconds.
            let verifier = verifier_code.verifier(&mut SystemRandom)?;
            Ok::<_, Error>((identity, setup_id, store, verifier))
        })
        .await??;
        let delegations = SealedDelegationStore::new(self.se.clone(), &self.prefix)?;
        let listener = TcpListener::bind(self.bind).await?;
        let local_addr = listener.local_addr()?;
        let (changes, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            delegations,
            attestation: self.attestation,
            identity,
            store,
            verifier,
            slot: Mutex::new(SetupSlot::new()),
            db: Mutex::new(Database::new(&self.info)),
            sessions: Mutex::new(HashMap::new()),
            changes,
            limits: self.limits,
            next_conn: AtomicU64::new(1),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), shutdown_rx));
        tracing::info!(
            device_id = %shared.identity.id,
            %local_addr,
            paired = shared.store.is_paired().unwrap_or(false),
            device_certificate = shared.attestation.is_some(),
            "HAP accessory listening"
        );
        Ok(Accessory {
            shared,
            local_addr,
            setup_code: code,
            setup_id,
            category: self.category,
            shutdown,
            task: Some(task),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct StoredIdentity {
    device_id: String,
    setup_id: String,
}

fn label(prefix: &str, name: &str) -> Result<Label> {
    Ok(Label::new(format!("{prefix}.{name}"))?)
}

/// The long-term key and the identifiers, created on first start and stable afterwards.
fn load_identity(se: &Arc<dyn SecureElement>, prefix: &str) -> Result<(Identity, SetupId)> {
    let key_label = label(prefix, "ltsk")?;
    let handle = match KeyHandle::open(se.clone(), &key_label) {
        Ok(handle) => handle,
        Err(ironclad_se::Error::KeyNotFound(_)) => {
            se.generate_key(&key_label, KeyAlgorithm::Ed25519)?;
            KeyHandle::open(se.clone(), &key_label)?
        }
        Err(e) => return Err(e.into()),
    };
    let key = SeLongTermKey::new(handle)?;
    let id_label = label(prefix, "identity")?;
    let stored: StoredIdentity = match se.get_object(&id_label) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Json(e.to_string()))?,
        Err(ironclad_se::Error::ObjectNotFound(_)) => {
            let mut rng = SystemRandom;
            let fresh = StoredIdentity {
                device_id: random_device_id(&mut rng)?,
                setup_id: SetupId::random(&mut rng)?.as_str().to_owned(),
            };
            let json = serde_json::to_vec(&fresh).map_err(|e| Error::Json(e.to_string()))?;
            se.put_object(&id_label, &json)?;
            fresh
        }
        Err(e) => return Err(e.into()),
    };
    let id: PairingId = stored.device_id.parse()?;
    Ok((Identity::new(id, Arc::new(key)), SetupId::parse(&stored.setup_id)?))
}

/// State shared by the connections of one accessory.
#[derive(Debug)]
struct Shared {
    identity: Identity,
    store: SealedPairingStore,
    verifier: Verifier,
    attestation: Option<Arc<dyn DeviceAttestation>>,
    delegations: SealedDelegationStore,
    slot: Mutex<SetupSlot>,
    db: Mutex<Database>,
    /// Every open connection, by connection number.
    sessions: Mutex<HashMap<u64, SessionEntry>>,
    changes: broadcast::Sender<Change>,
    limits: Limits,
    next_conn: AtomicU64,
}

/// An open connection: the verified controller (if any) and the switch that closes it.
#[derive(Debug)]
struct SessionEntry {
    peer: Option<PairingId>,
    kill: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Closes the sessions of the controllers `matches` selects (after their current reply).
    fn close_sessions(&self, matches: impl Fn(&PairingId) -> bool) {
        for entry in lock(&self.sessions).values() {
            if entry.peer.as_ref().is_some_and(&matches) {
                entry.kill.send_replace(true);
            }
        }
    }

    fn db_value(&self, id: CharId) -> Value {
        lock(&self.db).value(id).unwrap_or(Value::Null)
    }

    fn notify(&self, id: CharId, value: Value, origin: Option<u64>) {
        // No receiver is not an error: nobody is connected.
        let _ = self.changes.send(Change { id, value, origin });
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.limits.max_connections));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "connection limit reached; closing the new connection");
                        continue;
                    };
                    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
                    let conn = conn::Connection::new(id, shared.clone(), stream, peer);
                    let (shutdown, changes) = (shutdown.clone(), shared.changes.subscribe());
                    tasks.spawn(async move {
                        conn.run(shutdown, changes).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    // Connections see the same shutdown signal and close after their current request.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        tasks.abort_all();
    }
}

/// A running HAP accessory. Dropping it stops the server too; [`Accessory::shutdown`] also
/// waits until every connection is closed.
#[derive(Debug)]
pub struct Accessory {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    setup_code: SetupCode,
    setup_id: SetupId,
    category: Category,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Accessory {
    /// Starts configuring an accessory whose durable state lives in `se`.
    pub fn builder(se: Arc<dyn SecureElement>) -> AccessoryBuilder {
        AccessoryBuilder {
            se,
            info: AccessoryInfo::default(),
            category: Category::Switch,
            setup_code: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: Limits::default(),
            prefix: "hap".into(),
            attestation: None,
        }
    }

    /// The bound address (the port is the one to give controllers).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The Device ID, `XX:XX:XX:XX:XX:XX`: the accessory's pairing identifier.
    pub fn device_id(&self) -> &PairingId {
        &self.shared.identity.id
    }

    /// The long-term Ed25519 public key (its private half stays in the secure element).
    pub fn public_key(&self) -> [u8; 32] {
        self.shared.identity.key.public_key()
    }

    /// The code to show (display, label, NFC…) while unpaired.
    pub fn setup_code(&self) -> &SetupCode {
        &self.setup_code
    }

    pub fn setup_id(&self) -> &SetupId {
        &self.setup_id
    }

    /// The `X-HM://` setup payload for a QR code (contains the setup code).
    pub fn setup_uri(&self) -> String {
        setup_uri(self.category, &self.setup_code, &self.setup_id)
    }

    pub fn is_paired(&self) -> Result<bool> {
        Ok(self.shared.store.is_paired()?)
    }

    pub fn pairings(&self) -> Result<Vec<Pairing>> {
        Ok(self.shared.store.list()?)
    }

    /// Unsuccessful pair-setup attempts so far (persisted; pair-setup is refused with MaxTries
    /// from 100 on, until [`Accessory::reset_pairings`]).
    pub fn failed_attempts(&self) -> Result<u32> {
        Ok(self.shared.store.failed_attempts()?)
    }

    /// Controllers connected through a verified session.
    pub fn verified_sessions(&self) -> usize {
        lock(&self.shared.sessions).values().filter(|e| e.peer.is_some()).count()
    }

    /// The current value of a readable characteristic.
    pub fn value(&self, id: CharId) -> Option<Value> {
        lock(&self.shared.db).value(id)
    }

    /// Sets a characteristic from the device side; subscribed controllers get an event.
    pub fn set_value(&self, id: CharId, value: Value) -> Result<()> {
        let notify = lock(&self.shared.db)
            .set(id, &value)
            .map_err(|s: HapStatus| Error::Characteristics(vec![(id, s)]))?;
        if notify {
            self.shared.notify(id, value, None);
        }
        Ok(())
    }

    /// Changes as they happen (controller writes and [`Accessory::set_value`]).
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.shared.changes.subscribe()
    }

    /// Whether pair-setup presents a device certificate to controllers that ask for one.
    pub fn presents_device_certificate(&self) -> bool {
        self.shared.attestation.is_some()
    }

    /// The cloud delegation an admin controller sent over a verified session, if any (read
    /// from the secure element, checked again).
    pub fn cloud_delegation(&self) -> Result<Option<StoredDelegation>> {
        Ok(self.shared.delegations.load()?)
    }

    /// Factory reset of pairing: removes every pairing and the cloud delegation (it came from
    /// the previous owner), zeroes the failed-attempt counter and closes every verified
    /// session. The identity (key, Device ID) stays.
    pub fn reset_pairings(&self) -> Result<()> {
        for pairing in self.shared.store.list()? {
            self.shared.store.remove(&pairing.id)?;
        }
        self.shared.delegations.clear()?;
        self.shared.store.reset()?;
        self.shared.close_sessions(|_| true);
        Ok(())
    }

    /// Stops accepting, lets each connection finish its current request, and waits (at most
    /// about 5 s) until all are closed.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.await?;
        }
        Ok(())
    }
}

impl Drop for Accessory {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// The cloud delegation stored in a device's secure element by an [`Accessory`] with this
/// object prefix (default `"hap"`), without running one: what the device's agent reads to
/// connect to its cloud.
pub fn load_delegation(se: Arc<dyn SecureElement>, prefix: &str) -> Result<Option<StoredDelegation>> {
    Ok(SealedDelegationStore::new(se, prefix)?.load()?)
}
