//! `ironclad factory console-password`: a device's debug-console password, for service staff.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ironclad_se::Label;
use serde_json::json;

use crate::output::print_json;
use crate::pki_dir::PkiDir;
use crate::secrets::CaKeyArgs;
use crate::station::CONSOLE_SECRET;

/// Print the debug-console password of one device. It is derived (HKDF, inside the CA key
/// store) from the factory console secret and the device ID: every device has its own, and
/// nobody needs a list of them.
///
/// Example:
///   ironclad factory console-password --pki ./pki --device acme-cam-PO-1-000042
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FactoryConsolePasswordArgs {
    #[arg(long, env = "IRONCLAD_PKI", default_value = "pki")]
    pki: PathBuf,
    /// Device ID.
    #[arg(long)]
    device: String,
    #[command(flatten)]
    keys: CaKeyArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FactoryConsolePasswordArgs) -> Result<()> {
    let pki = PkiDir::open(&args.pki)?;
    let se = pki.open_keys(&args.keys)?;
    let password =
        ironclad_factory::console_password(se.as_ref(), &Label::new(CONSOLE_SECRET)?, &args.device)
            .context("no factory console secret yet: it is created at the first `factory provision`")?;
    if args.json {
        return print_json(&json!({"device": args.device, "password": password.as_str()}));
    }
    println!("{}", password.as_str());
    Ok(())
}
