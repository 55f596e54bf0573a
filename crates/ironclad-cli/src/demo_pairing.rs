//! The demo's pairing stage: the phone ↔ device channel that no cloud can read, then the cloud
//! access the phone hands the device over it.
//!
//! One provisioned demo device serves HAP on a loopback port from its own secure element (its
//! HAP key is made there; its factory device certificate signs the pairing transcript). The
//! owner's phone (a controller whose key lives in its own secure element) pairs with the setup
//! code the device shows, checks the device certificate against the demo root, pair-verifies,
//! reads and writes over the encrypted session, and delegates cloud access: the demo server's
//! URL, its CA and the owner's one-time claim code. The device then runs as its agent would: it
//! loads the sealed delegation, connects to that server trusting only that CA, authenticates
//! from its secure element, and redeems the claim code, so the owner's account lists it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use ironclad_agent::{DeviceConnection, DeviceIdentity, OperatorClient, ServerEndpoint};
use ironclad_hap::{
    Accessory, CloudDelegation, Controller, OemRootVerifier, SeControllerStore, device_attestation, ids,
    load_delegation,
};
use ironclad_se::{MemorySe, SecureElement};
use ironclad_server::{Registry, Role};
use serde_json::json;

use crate::station::Device;

/// Object prefix of the device's HAP state in its secure element.
const HAP_PREFIX: &str = "hap";

/// Runs the stage for `device` (provisioned, its line CA enrolled, not revoked). `server_ca_pem`
/// is the demo server's CA, `demo_root_pem` the demo PKI's root. Returns the detail line.
pub(crate) fn pairing_stage(
    rt: &tokio::runtime::Runtime,
    endpoint: &ServerEndpoint,
    registry: &Registry,
    server_ca_pem: &str,
    demo_root_pem: &str,
    device: &Device,
) -> Result<String> {
    rt.block_on(async {
        let started = Instant::now();
        // The device: HAP on loopback, a fresh random setup code, its factory certificate.
        let accessory = Accessory::builder(device.se.clone())
            .name(device.id.clone())
            .store_prefix(HAP_PREFIX)
            .device_certificate(device_attestation(&device.se)?)
            .start()
            .await
            .context("starting the device's HAP accessory")?;
        let address = accessory.local_addr().to_string();

        // The owner's phone: its own secure element, the code the device shows, the demo root.
        let phone_se: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
        let phone = Controller::new(Arc::new(SeControllerStore::new(phone_se, "hap-controller")?))?;
        let root = Arc::new(OemRootVerifier::from_pem(demo_root_pem.as_bytes())?);
        let paired = phone
            .pair_authenticated("camera", &address, accessory.setup_code(), root.clone())
            .await
            .context("pair-setup with device authentication")?;
        let certified = paired.device.as_ref().context("no device certificate was verified")?;
        ensure!(certified.device_id == device.id, "the certificate names {}, not {}", certified.device_id, device.id);
        let setup_ms = started.elapsed().as_secs_f64() * 1000.0;

        // Pair-verify, the certificate kept at pair-setup checked again, the encrypted session.
        root.check_chain(&certified.certificates).context("the stored device certificate")?;
        let mut session = phone.connect("camera").await.context("pair-verify")?;
        session.put(&[(ids::ON, json!(true))]).await?;
        ensure!(session.get(&[ids::ON]).await?[0].1 == json!(true), "the write did not read back");

        // The owner's account issues a one-time claim code; the phone delegates cloud access.
        let owner_secret = registry.create_api_token("demo-pairing-owner", Role::Owner).await?.secret;
        let mut owner = OperatorClient::connect(endpoint, &owner_secret).await?;
        let claim = owner.new_claim_code().await?;
        let url = format!("https://localhost:{}", endpoint.addr.port());
        let delegation = CloudDelegation::new(url.clone(), server_ca_pem, claim.code.as_str())?;
        session.delegate(&delegation).await.context("delegating cloud access")?;
        drop(session);
        accessory.shutdown().await?;

        // The device, as its agent: the sealed delegation is all it needs to reach its cloud.
        let stored = load_delegation(device.se.clone(), HAP_PREFIX)?.context("no delegation stored")?;
        ensure!(&stored.delegated_by == phone.id(), "delegated by {}, not the owner's phone", stored.delegated_by);
        let server = stored.delegation.server();
        let addr = resolve(&server.host, server.port)?;
        let cloud = ServerEndpoint::new(addr, &server.host, stored.delegation.trust_anchor_pem().as_bytes())?;
        let identity = DeviceIdentity::from_secure_element(device.se.clone())?;
        let mut conn = DeviceConnection::connect(&cloud, identity).await.context("connecting as delegated")?;
        let session = conn.authenticate().await.context("authenticating to the delegated server")?;
        ensure!(session.device_id() == device.id, "authenticated as {}", session.device_id());
        // The claim: the device redeems its owner's code over its authenticated session.
        let claimed = conn.claim(stored.delegation.claim_token()).await.context("redeeming the claim code")?;
        ensure!(claimed.device_id == device.id, "claimed {}", claimed.device_id);
        let owned = owner.owned_devices().await?;
        ensure!(owned.iter().any(|d| d.device_id == device.id), "the owner's account does not list {}", device.id);

        Ok(format!(
            "{}: paired by setup code + device certificate → demo root ({setup_ms:.0} ms), pair-verify, encrypted read/write; delegation (URL, CA, claim code) sealed in its SE → authenticated to {url}, claimed by the owner",
            device.id
        ))
    })
}

/// HOST:PORT to an address, IPv4 first (the demo server listens on 127.0.0.1).
fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    let mut addrs: Vec<SocketAddr> =
        (host, port).to_socket_addrs().with_context(|| format!("resolving {host}"))?.collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs.first().copied().with_context(|| format!("{host} resolves to no address"))
}
