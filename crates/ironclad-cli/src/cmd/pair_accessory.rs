//! `ironclad pair accessory`: a HAP accessory whose keys and pairings live in a secure element.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_agent::{DeviceConnection, DeviceIdentity, ServerEndpoint};
use ironclad_hap::{Accessory, AccessoryInfo, SetupCode, device_attestation, ids};
use ironclad_se::{DirSe, SecureElement};
use serde_json::{Value, json};

use crate::remote::runtime;
use crate::secrets::{UnlockArgs, kdf_params};
use crate::station::open_device;

/// Serve a HomeKit-compatible accessory (HAP over IP) with its keys in a secure element.
///
/// The accessory's long-term Ed25519 key is generated inside the secure element on first start;
/// its Device ID, its pairings and the failed-attempt counter are sealed there too, each written
/// durably before the reply that depends on it (a pairing before pair-setup M6). Controllers
/// (phones; `ironclad pair controller`; aiohomekit) connect by address — no mDNS.
///
/// While unpaired it shows a setup code and the X-HM:// setup payload to put in a QR code. The
/// code is random on each start, or fixed with --setup-code (manufacturing: printed on the
/// label). After 100 wrong codes pair-setup answers MaxTries until --reset-pairings; one
/// pair-setup runs at a time (others get Busy).
///
/// The demo accessory is a switch: `on` (1.11, bool, read/write, events) and `name` (1.12,
/// string, read/write), plus ironclad's cloud-delegation characteristic (1.14, write-only,
/// admin only: the server URL, its CA and a claim token, sealed in the element on arrival).
///
/// --device-certificate presents the device's X.509 certificate (key `device-auth`, sealed
/// `device-cert` and `device-chain`, as the factory provisions them) and signs the pairing
/// transcript with it to controllers that ask (`pair controller pair --oem-root`).
///
/// --connect-cloud acts on the delegation as the device's agent would: when one arrives, the
/// device connects to the delegated server (mutual TLS from its secure element, trusting only
/// the delegated CA), authenticates, and redeems the claim token so the owner's account lists
/// it; at start, with a delegation already stored, it authenticates once.
///
/// Runs until Ctrl-C or SIGTERM; --json prints events as JSON lines.
///
/// Examples:
///   ironclad pair accessory --device devices/cam-PO-1-000001 --device-certificate --connect-cloud
///   ironclad pair accessory --store ./lamp-se --init --listen 127.0.0.1:51826 --setup-code 031-45-154
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct PairAccessoryArgs {
    /// A provisioned device's directory (`factory provision --devices-dir`): its own secure
    /// element, unlocked by its device secret.
    #[arg(long, value_name = "DIR", conflicts_with = "store", required_unless_present = "store")]
    device: Option<PathBuf>,
    /// A software secure element directory instead (unlocked by $IRONCLAD_PASSPHRASE or
    /// --passphrase-file).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(flatten)]
    unlock: UnlockArgs,
    /// Create the --store if it does not exist yet.
    #[arg(long, requires = "store")]
    init: bool,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:51826")]
    listen: SocketAddr,
    /// A fixed setup code (XXX-XX-XXX) instead of a random one, e.g. the one on the label.
    #[arg(long, value_name = "CODE", env = "IRONCLAD_SETUP_CODE", hide_env_values = true)]
    setup_code: Option<String>,
    /// Present the device certificate (and a transcript signature) during pair-setup.
    #[arg(long)]
    device_certificate: bool,
    /// Connect to the delegated cloud as the device (authenticate; redeem a new claim token).
    #[arg(long)]
    connect_cloud: bool,
    /// The accessory's name (Accessory Information and the switch's name).
    #[arg(long, default_value = "ironclad lamp")]
    name: String,
    /// Prefix of the secure-element objects the accessory keeps.
    #[arg(long, default_value = "hap")]
    prefix: String,
    /// Factory reset of pairing before serving: forget every controller and the cloud
    /// delegation, clear the failed-attempt counter (the identity stays).
    #[arg(long)]
    reset_pairings: bool,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
}

impl PairAccessoryArgs {
    fn open_se(&self) -> Result<Arc<dyn SecureElement>> {
        if let Some(device) = &self.device {
            return Ok(Arc::new(open_device(device)?));
        }
        let Some(store) = &self.store else { bail!("give --device DIR or --store DIR") };
        let se = if self.init && !store.join("store.json").exists() {
            DirSe::create(store, &self.unlock.resolve(true)?, kdf_params())
        } else {
            DirSe::open(store, &self.unlock.resolve(false)?)
        };
        Ok(Arc::new(se.with_context(|| format!("opening the secure element {}", store.display()))?))
    }
}

fn emit(json: bool, event: Value, text: impl FnOnce() -> String) {
    if json {
        println!("{event}");
    } else {
        println!("{}", text());
    }
}

pub(crate) fn run(args: PairAccessoryArgs) -> Result<()> {
    let se = args.open_se()?;
    let mut builder = Accessory::builder(se.clone())
        .info(AccessoryInfo { name: args.name.clone(), ..AccessoryInfo::default() })
        .bind(args.listen)
        .store_prefix(args.prefix.clone());
    if let Some(code) = &args.setup_code {
        let code = SetupCode::parse(code).context("--setup-code")?;
        if code.is_forbidden() {
            bail!("--setup-code: HAP forbids this code (all digits equal, 123-45-678, 876-54-321)");
        }
        builder = builder.setup_code(code);
    }
    if args.device_certificate {
        let attestation = device_attestation(&se).context(
            "--device-certificate: no usable device identity (key device-auth, objects device-cert/device-chain)",
        )?;
        builder = builder.device_certificate(attestation);
    }
    let json = args.json;
    runtime()?.block_on(async move {
        let acc = builder.start().await.context("starting the accessory")?;
        if args.reset_pairings {
            acc.reset_pairings()?;
        }
        let paired = acc.is_paired()?;
        emit(
            json,
            json!({
                "event": "listening", "addr": acc.local_addr().to_string(), "device_id": acc.device_id().to_string(),
                "setup_code": acc.setup_code().as_str(), "setup_payload": acc.setup_uri(), "paired": paired,
                "device_certificate": acc.presents_device_certificate(),
            }),
            || {
                let mut text = format!("HAP accessory {} listening on {}", acc.device_id(), acc.local_addr());
                if paired {
                    text.push_str("\nalready paired (pair-setup is closed; --reset-pairings reopens it)");
                } else {
                    text.push_str(&format!(
                        "\nsetup code: {}\nsetup payload (for a QR code): {}",
                        acc.setup_code().as_str(),
                        acc.setup_uri()
                    ));
                }
                if acc.presents_device_certificate() {
                    text.push_str("\npresents its device certificate to controllers that ask");
                }
                text
            },
        );
        if args.connect_cloud && acc.cloud_delegation()?.is_some() {
            connect_cloud(&acc, &se, false, json).await;
        }
        serve(&acc, &se, args.connect_cloud, json).await?;
        acc.shutdown().await?;
        emit(json, json!({"event": "stopped"}), || "stopped".to_owned());
        Ok(())
    })
}

/// Prints changes (characteristic writes, delegations, pairings) until a stop signal.
async fn serve(acc: &Accessory, se: &Arc<dyn SecureElement>, cloud: bool, json: bool) -> Result<()> {
    // Both listeners exist for the whole loop: a signal that arrives while an arm runs (a cloud
    // connection, say) is kept for the next turn, where a fresh `ctrl_c()` would miss it.
    use tokio::signal::unix::{SignalKind, signal};
    let (mut int, mut term) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    let mut changes = acc.changes();
    let mut known: BTreeSet<String> = acc.pairings()?.iter().map(|p| p.id.to_string()).collect();
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = int.recv() => return Ok(()),
            _ = term.recv() => return Ok(()),
            change = changes.recv() => {
                let Ok(change) = change else { continue };
                if change.id == ids::CLOUD_DELEGATION {
                    if let Some(stored) = acc.cloud_delegation()? {
                        let endpoint = stored.delegation.endpoint().to_owned();
                        let by = stored.delegated_by.to_string();
                        emit(json, json!({"event": "delegation", "endpoint": endpoint, "delegated_by": by}), || {
                            format!("cloud delegation to {endpoint} from {by} sealed in the secure element")
                        });
                        if cloud {
                            connect_cloud(acc, se, true, json).await;
                        }
                    }
                } else {
                    emit(json, json!({"event": "changed", "id": change.id.to_string(), "value": change.value}), || {
                        format!("{} = {}", change.id, change.value)
                    });
                }
            }
            _ = poll.tick() => {
                let now: BTreeSet<String> = acc.pairings()?.iter().map(|p| p.id.to_string()).collect();
                if now != known {
                    let controllers: Vec<&String> = now.iter().collect();
                    emit(json, json!({"event": "pairings", "controllers": controllers}), || {
                        if now.is_empty() {
                            format!("unpaired; setup code {} again", acc.setup_code().as_str())
                        } else {
                            format!("paired controllers: {}", now.iter().cloned().collect::<Vec<_>>().join(", "))
                        }
                    });
                    known = now;
                }
            }
        }
    }
}

/// Connects to the delegated server as this device, authenticates, and (for a new delegation)
/// redeems the claim token. Reports the outcome as an event; a failure does not stop the
/// accessory.
async fn connect_cloud(acc: &Accessory, se: &Arc<dyn SecureElement>, claim: bool, json: bool) {
    let outcome = async {
        let stored = acc.cloud_delegation()?.context("no cloud delegation stored")?;
        let server = stored.delegation.server();
        let (addr, _) = crate::remote::resolve(&format!("{}:{}", server.host, server.port))?;
        let endpoint =
            ServerEndpoint::new(addr, &server.host, stored.delegation.trust_anchor_pem().as_bytes())?;
        let identity = DeviceIdentity::from_secure_element(se.clone()).context("the device identity")?;
        let mut conn = DeviceConnection::connect(&endpoint, identity).await?;
        let device_id = conn.authenticate().await.context("authentication refused")?.device_id().to_owned();
        let owner = if claim {
            Some(conn.claim(stored.delegation.claim_token()).await.context("claim refused")?.owner)
        } else {
            None
        };
        Ok::<_, anyhow::Error>((stored.delegation.endpoint().to_owned(), device_id, owner))
    };
    match outcome.await {
        Ok((endpoint, device_id, owner)) => emit(
            json,
            json!({"event": "cloud", "endpoint": endpoint, "device_id": device_id, "claimed_by": owner}),
            || match &owner {
                Some(owner) => format!("authenticated to {endpoint} as {device_id}; claimed by {owner}"),
                None => format!("authenticated to {endpoint} as {device_id}"),
            },
        ),
        Err(e) => emit(json, json!({"event": "cloud_error", "error": format!("{e:#}")}), || {
            format!("cloud connection failed: {e:#}")
        }),
    }
}
