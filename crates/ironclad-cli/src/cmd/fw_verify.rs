//! `ironclad fw verify`: check an image's hash and signature against trusted mastering keys.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ironclad_image::{Limits, VerifiedImage};
use ironclad_se::Label;
use serde_json::json;

use crate::cmd::fw_io::{
    KeySourceArgs, describe_verified, key_hash_hex, open_image, parse_number, trust_anchors,
};
use crate::output::print_json;

/// Verify a firmware image: its hash and its signature by one of the trusted mastering keys.
///
/// Exits 0 when the image verifies and non-zero naming the problem when it does not (not an
/// MCUboot image, truncated, larger than the slot, hash mismatch, unknown key, bad signature).
/// The image is streamed: memory stays flat whatever its size.
///
/// The hash and signature of an encrypted image cover its plaintext. Give the decryption key
/// (--decrypt-key, in --store or --pki) to verify it while decrypting; without one an encrypted
/// image is refused, as `imgtool verify` does.
///
/// imgtool equivalent:
///   imgtool verify -k mastering.pub.pem app.signed.bin
///
/// Examples:
///   ironclad fw verify app.signed.bin --key mastering.pub.pem
///   ironclad fw verify app.enc.bin --key mastering.pub.pem --store ./device-se --decrypt-key fw-decrypt
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FwVerifyArgs {
    /// The image.
    image: PathBuf,
    /// A trusted mastering public key (PEM); repeat for several.
    #[arg(long, value_name = "PEM", required = true)]
    key: Vec<PathBuf>,
    /// Refuse images larger than this slot (default 1 GiB).
    #[arg(long, value_parser = parse_number)]
    slot_size: Option<u64>,
    /// Label of the firmware-decryption key (in --store or --pki) for encrypted images.
    #[arg(long, value_name = "LABEL")]
    decrypt_key: Option<Label>,
    #[command(flatten)]
    source: KeySourceArgs,
    /// Print the result as JSON (also when the image is refused; the exit status still says).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FwVerifyArgs) -> Result<()> {
    match verify(&args) {
        Ok(verified) => {
            if args.json {
                return print_json(&json!({
                    "image": args.image,
                    "valid": true,
                    "version": verified.version().to_string(),
                    "security_counter": verified.security_counter(),
                    "hash": hex::encode(verified.digest()),
                    "encrypted": verified.is_encrypted(),
                    "signer": {
                        "algorithm": verified.signer().algorithm().name(),
                        "key_hash": key_hash_hex(verified.signer())?,
                    },
                }));
            }
            println!("{}: verified: {}", args.image.display(), describe_verified(&verified)?);
            println!("hash: {}", hex::encode(verified.digest()));
            Ok(())
        }
        Err(err) => {
            if args.json {
                print_json(&json!({ "image": args.image, "valid": false, "error": format!("{err:#}") }))?;
            }
            Err(err)
        }
    }
}

fn verify(args: &FwVerifyArgs) -> Result<VerifiedImage> {
    let trust = trust_anchors(&args.key)?;
    let limits = args.slot_size.map_or_else(Limits::default, Limits::for_slot);
    let (mut file, image) = open_image(&args.image, &limits)?;
    let refused = || format!("{} refused", args.image.display());
    match &args.decrypt_key {
        Some(label) if image.cipher().is_some() => {
            let key = args.source.agreement_key(label)?;
            image.decrypt_verify(&mut file, &trust, &key).with_context(refused)
        }
        _ => image.verify(&mut file, &trust).with_context(refused),
    }
}
