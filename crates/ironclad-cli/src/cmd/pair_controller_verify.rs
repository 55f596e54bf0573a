//! `ironclad pair controller verify`: pair-verify with a paired accessory.

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_hap::ids;
use serde_json::json;

use crate::cmd::pair_io::{AliasArgs, ControllerStoreArgs, describe_device, oem_verifier};
use crate::output::print_json;
use crate::remote::runtime;

/// Check a pairing: pair-verify, then read the accessory's name over the encrypted session.
///
/// Pair-verify is an X25519 exchange signed by both long-term keys: it proves the accessory still
/// holds the key stored at pair-setup (and that it still knows this controller). Every later
/// request travels in ChaCha20-Poly1305 frames. With --oem-root, the device certificate kept at
/// pair-setup is checked again against the root (it may have expired since).
///
/// Examples:
///   ironclad pair controller verify --alias lamp
///   ironclad pair controller verify --alias cam --oem-root pki/root.pem --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct PairControllerVerifyArgs {
    #[command(flatten)]
    store: ControllerStoreArgs,
    #[command(flatten)]
    target: AliasArgs,
    /// Check the stored device certificate against this OEM root (PEM) again.
    #[arg(long, value_name = "PEM")]
    oem_root: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PairControllerVerifyArgs) -> Result<()> {
    let controller = args.store.open(false)?;
    let record = args.target.record(&controller)?;
    let rechecked = match (&args.oem_root, &record.device) {
        (None, _) => None,
        (Some(_), None) => {
            bail!("{:?} was paired without device authentication: no certificate to check", record.alias)
        }
        (Some(root), Some(device)) => {
            let verified =
                oem_verifier(root)?.check_chain(&device.certificates).context("device certificate")?;
            Some(verified.device_id().to_owned())
        }
    };
    let name = runtime()?.block_on(async {
        let mut session = controller.connect_to(&record).await?;
        let values = session.get(&[ids::INFO_NAME]).await?;
        Ok::<_, ironclad_hap::Error>(values.into_iter().next().map(|(_, v)| v).unwrap_or_default())
    });
    let name = name.with_context(|| format!("pair-verify with {} at {}", record.alias, record.address))?;
    if args.json {
        return print_json(&json!({
            "alias": record.alias, "address": record.address, "device_id": record.pairing.id.to_string(),
            "verified": true, "name": name, "device_certificate_rechecked": rechecked,
        }));
    }
    let name = name.as_str().map_or_else(|| name.to_string(), str::to_owned);
    println!(
        "verified {} at {} (Device ID {}; name {name})",
        record.alias, record.address, record.pairing.id
    );
    match rechecked {
        Some(id) => println!("device certificate {id}: chains to the OEM root"),
        None => println!("device certificate: {}", describe_device(record.device.as_ref())),
    }
    Ok(())
}
