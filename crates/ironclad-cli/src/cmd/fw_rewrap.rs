//! `ironclad fw rewrap`: re-wrap an encrypted release's content key to another device's key,
//! without re-signing.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use clap::Args;
use ironclad_image::{Limits, WrapKind};
use ironclad_se::Label;
use serde_json::json;

use crate::cmd::fw_io::{
    AtomicOut, KeySourceArgs, describe_verified, open_image, parse_number, read_recipient, trust_anchors,
};
use crate::output::print_json;

/// Re-wrap an encrypted image to another device's key; the signed image stays as it is.
///
/// The server side of per-device encryption: a release is mastered once, encrypted to the
/// release server's own key; for each device the server unwraps the content key with its key
/// (inside its secure element), checks the image (hash and signature against --trust, while
/// decrypting), and writes the same image with only the key-wrap TLV replaced by one wrapped to
/// the device's X25519 or P-256 public key (--to). Header, encrypted payload and protected TLVs
/// are copied byte for byte, so the signature still verifies and `imgtool verify` still sees
/// the same signed release. Slot padding and trailer are kept. Streams.
///
/// imgtool has no equivalent (it would have to sign again, with the mastering key).
///
/// Example:
///   ironclad fw rewrap release.enc.bin --store ./server-se --key fw-decrypt \
///     --trust mastering.pub.pem --to device-42.pub.pem --out release.device-42.bin
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FwRewrapArgs {
    /// The encrypted image, wrapped to this secure element's key.
    image: PathBuf,
    #[command(flatten)]
    source: KeySourceArgs,
    /// Label of the key the image is wrapped to (x25519 or ecdh-p256) in the secure element.
    #[arg(long, value_name = "LABEL", default_value = "fw-decrypt")]
    key: Label,
    /// A trusted mastering public key (PEM); repeat for several. Only verified releases are
    /// re-wrapped.
    #[arg(long, value_name = "PEM", required = true)]
    trust: Vec<PathBuf>,
    /// The device's firmware-decryption public key (PEM; X25519 or P-256).
    #[arg(long, value_name = "PEM")]
    to: PathBuf,
    /// Where to write the re-wrapped image.
    #[arg(long)]
    out: PathBuf,
    /// Refuse images larger than this slot (default 1 GiB).
    #[arg(long, value_parser = parse_number)]
    slot_size: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FwRewrapArgs) -> Result<()> {
    let trust = trust_anchors(&args.trust)?;
    let recipient = read_recipient(&args.to)?;
    let limits = args.slot_size.map_or_else(Limits::default, Limits::for_slot);
    let (mut file, image) = open_image(&args.image, &limits)?;
    ensure!(
        image.cipher().is_some(),
        "{} is not encrypted: there is no key to re-wrap",
        args.image.display()
    );
    let key = args.source.agreement_key(&args.key)?;
    let refused = || format!("{} refused", args.image.display());
    let verified = image.decrypt_verify(&mut file, &trust, &key).with_context(refused)?;
    let mut out = AtomicOut::create(&args.out)?;
    let written = verified.rewrap(&mut file, &mut out, &recipient).with_context(refused)?;
    out.commit()?;
    let wrap = match WrapKind::for_recipient(&recipient)? {
        WrapKind::EciesX25519 => "ENC_X25519",
        WrapKind::EciesP256 => "ENC_EC256",
    };
    if args.json {
        return print_json(&json!({
            "image": args.image,
            "out": args.out,
            "bytes": written,
            "key_wrap": wrap,
            "recipient_fingerprint": recipient.fingerprint(),
            "version": verified.version().to_string(),
            "security_counter": verified.security_counter(),
            "hash": hex::encode(verified.digest()),
        }));
    }
    println!("{}: verified: {}", args.image.display(), describe_verified(&verified)?);
    println!(
        "re-wrapped to {} ({wrap}, {} key {}) → {} ({written} bytes); signed region unchanged",
        args.to.display(),
        recipient.algorithm(),
        &recipient.fingerprint()[..16],
        args.out.display()
    );
    Ok(())
}
