//! `ironclad ota release upload`: send a mastered image to the server.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use clap::Args;

use crate::cmd::ota_io::describe_release;
use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Upload a release: an MCUboot image mastered offline, verified by the server.
///
/// The server checks the image against the registered mastering keys (`ota key add`), decrypts
/// it with its own firmware-decryption key while verifying (`ota encryption-key`), and requires
/// a security counter and a product class in the signed TLVs. An image with slot padding is
/// refused (the device writes its own trailer). The server never holds a signing key: it can
/// offer, but not make, firmware. Needs an operator token.
///
/// Example:
///   ironclad ota release upload release-1.1.0.bin --note "night vision fix" \
///       --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct OtaReleaseUploadArgs {
    /// The image (`ironclad fw sign` without --pad).
    image: PathBuf,
    /// Free text shown in listings.
    #[arg(long, default_value = "")]
    note: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the release as JSON.
    #[arg(long)]
    json: bool,
}

/// Largest image this command sends.
const MAX_UPLOAD: u64 = 1 << 30;

pub(crate) fn run(args: OtaReleaseUploadArgs) -> Result<()> {
    let len =
        std::fs::metadata(&args.image).with_context(|| format!("reading {}", args.image.display()))?.len();
    ensure!(len <= MAX_UPLOAD, "{} is {len} bytes: larger than any release", args.image.display());
    let bytes = std::fs::read(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
    let release = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.upload_release(bytes, &args.note).await.context("upload refused")
    })?;
    if args.json {
        return print_json(&release);
    }
    println!("{}", describe_release(&release));
    Ok(())
}
