//! `ironclad pair controller pair`: pair-setup with an accessory's setup code.

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_hap::{SetupCode, parse_setup_uri};

use crate::cmd::pair_io::{ControllerStoreArgs, accessory_json, describe_device, oem_verifier};
use crate::output::print_json;
use crate::remote::runtime;

/// Pair with an accessory using the setup code it shows (or its X-HM:// QR payload).
///
/// Runs HAP pair-setup: SRP-6a with the setup code, then both sides exchange their long-term
/// Ed25519 public keys under signatures and store each other. The controller's identity (a UUID
/// and an Ed25519 key made inside the controller's store, a software secure element created on
/// first use) and the accessory's record live in --store.
///
/// --oem-root also requires the accessory to prove it is a genuine device: it must present an
/// X.509 device certificate that chains to this root (intermediates sent by the device) and sign
/// the pairing transcript with the certified key, or pair-setup stops before this controller's
/// key is sent. The verified certificate is kept with the pairing.
///
/// Examples:
///   ironclad pair controller pair --alias lamp --address 192.168.1.40:51826 --setup-code 031-45-154
///   ironclad pair controller pair --alias cam --address 127.0.0.1:51826 \
///       --setup-payload X-HM://0080M54UAABCD --oem-root pki/root.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct PairControllerPairArgs {
    #[command(flatten)]
    store: ControllerStoreArgs,
    /// A local name for the accessory, used by the other `pair controller` commands.
    #[arg(long)]
    alias: String,
    /// The accessory's HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    address: String,
    /// The setup code the accessory shows (XXX-XX-XXX).
    #[arg(long, value_name = "CODE", env = "IRONCLAD_SETUP_CODE", hide_env_values = true)]
    setup_code: Option<String>,
    /// The X-HM:// setup payload (from the QR code) instead of --setup-code.
    #[arg(long, value_name = "X-HM://...", conflicts_with = "setup_code")]
    setup_payload: Option<String>,
    /// Require a device certificate chaining to this OEM root (PEM) and a transcript signature.
    #[arg(long, value_name = "PEM")]
    oem_root: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PairControllerPairArgs) -> Result<()> {
    let code = match (&args.setup_payload, &args.setup_code) {
        (Some(payload), _) => parse_setup_uri(payload).context("--setup-payload")?.code,
        (None, Some(code)) => SetupCode::parse(code).context("--setup-code")?,
        (None, None) => bail!("give --setup-code (or $IRONCLAD_SETUP_CODE) or --setup-payload"),
    };
    let verifier = args.oem_root.as_ref().map(oem_verifier).transpose()?;
    let controller = args.store.open(true)?;
    let paired = runtime()?.block_on(async {
        match verifier {
            Some(v) => controller.pair_authenticated(&args.alias, &args.address, &code, v).await,
            None => controller.pair(&args.alias, &args.address, &code).await,
        }
    });
    let paired = paired.with_context(|| format!("pair-setup with {}", args.address))?;
    if args.json {
        let mut out = accessory_json(&paired);
        out["controller_id"] = controller.id().to_string().into();
        return print_json(&out);
    }
    println!("paired with {} as {:?} (Device ID {})", paired.address, paired.alias, paired.pairing.id);
    println!("device certificate: {}", describe_device(paired.device.as_ref()));
    println!("this controller: {}", controller.id());
    Ok(())
}
