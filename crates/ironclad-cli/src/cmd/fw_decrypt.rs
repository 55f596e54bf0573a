//! `ironclad fw decrypt`: decrypt an encrypted image with a firmware-decryption key held in a
//! secure element, verifying it on the way.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use clap::Args;
use ironclad_image::Limits;
use ironclad_se::Label;
use serde_json::json;

use crate::cmd::fw_io::{
    AtomicOut, KeySourceArgs, describe_verified, open_image, parse_number, trust_anchors,
};
use crate::output::print_json;

/// Decrypt an encrypted image with the device's firmware-decryption key, verifying it first.
///
/// The content key is unwrapped inside the secure element (ECDH and HKDF happen there; only
/// the derived bytes leave it). The payload is decrypted while its hash and signature are
/// checked against the trusted mastering keys (--trust), then decrypted again into the output:
/// an image that does not verify produces no output. Both passes stream.
///
/// Output: the image with its payload in plaintext (what `imgtool sign --clear` writes and what
/// MCUboot leaves in the primary slot; it verifies with `fw verify` and `imgtool verify`), or
/// with --payload only the firmware binary (imgtool pads encrypted payloads with zeros to a
/// multiple of 16 bytes; the padding is part of the signed payload and is kept).
///
/// imgtool has no decrypt command; the closest is signing again with --clear.
///
/// Example:
///   ironclad fw decrypt app.enc.bin --store ./device-se --key fw-decrypt \
///     --trust mastering.pub.pem --out app.clear.bin
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FwDecryptArgs {
    /// The encrypted image.
    image: PathBuf,
    #[command(flatten)]
    source: KeySourceArgs,
    /// Label of the firmware-decryption key (x25519 or ecdh-p256) in the secure element.
    #[arg(long, value_name = "LABEL", default_value = "fw-decrypt")]
    key: Label,
    /// A trusted mastering public key (PEM); repeat for several.
    #[arg(long, value_name = "PEM", required = true)]
    trust: Vec<PathBuf>,
    /// Where to write the decrypted image (or payload).
    #[arg(long)]
    out: PathBuf,
    /// Write only the plaintext payload (the firmware binary), not the whole image.
    #[arg(long)]
    payload: bool,
    /// Refuse images larger than this slot (default 1 GiB).
    #[arg(long, value_parser = parse_number)]
    slot_size: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FwDecryptArgs) -> Result<()> {
    let trust = trust_anchors(&args.trust)?;
    let limits = args.slot_size.map_or_else(Limits::default, Limits::for_slot);
    let (mut file, image) = open_image(&args.image, &limits)?;
    ensure!(
        image.cipher().is_some(),
        "{} is not encrypted: there is nothing to decrypt",
        args.image.display()
    );
    let key = args.source.agreement_key(&args.key)?;
    let refused = || format!("{} refused", args.image.display());
    let verified = image.decrypt_verify(&mut file, &trust, &key).with_context(refused)?;
    let mut out = AtomicOut::create(&args.out)?;
    let written = if args.payload {
        verified.write_payload(&mut file, &mut out)
    } else {
        verified.write_decrypted_image(&mut file, &mut out)
    }
    .with_context(refused)?;
    out.commit()?;
    let what = if args.payload { "payload" } else { "image" };
    if args.json {
        return print_json(&json!({
            "image": args.image,
            "out": args.out,
            "written": what,
            "bytes": written,
            "version": verified.version().to_string(),
            "security_counter": verified.security_counter(),
            "hash": hex::encode(verified.digest()),
        }));
    }
    println!("{}: verified: {}", args.image.display(), describe_verified(&verified)?);
    println!("decrypted {what} written to {} ({written} bytes)", args.out.display());
    Ok(())
}
