//! `ironclad device console-login`: the device side of the debug-console password check.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_factory::ConsoleGuard;
use ironclad_se::{Label, SealedStore};

use crate::station::open_device;

/// Check a typed debug-console password on a provisioned device (read from stdin), in
/// constant time, counting failures in the device's secure element; after --max-failures
/// wrong passwords the console stays locked.
///
/// Example:
///   echo 'ABCD-EFGH-JKMN-PQRS' | ironclad device console-login --device ./devices/acme-cam-PO-1-000042
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct DeviceConsoleLoginArgs {
    /// The device's directory (from `factory provision --devices-dir`).
    #[arg(long)]
    device: PathBuf,
    /// Wrong passwords allowed before the console locks.
    #[arg(long, default_value_t = 5)]
    max_failures: u32,
}

pub(crate) fn run(args: DeviceConsoleLoginArgs) -> Result<()> {
    let se = open_device(&args.device)?;
    let expected =
        se.get_object(&Label::new("console-password")?).context("the device has no console password")?;
    let expected = zeroize::Zeroizing::new(String::from_utf8_lossy(&expected).into_owned());
    let failures_label = Label::new("console-failures")?;
    let failures = se
        .get_object(&failures_label)
        .ok()
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map_or(0, u32::from_le_bytes);
    let mut guard = ConsoleGuard::new(expected, failures, args.max_failures);
    let mut typed = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut typed)?;
    let ok = guard.check(typed.trim());
    se.put_object(&failures_label, &guard.failures().to_le_bytes())?;
    match ok {
        Ok(true) => {
            println!("console unlocked");
            Ok(())
        }
        Ok(false) => bail!("wrong password ({} of {} attempts used)", guard.failures(), args.max_failures),
        Err(e) => Err(e.into()),
    }
}
