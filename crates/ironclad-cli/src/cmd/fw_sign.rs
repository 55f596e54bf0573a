//! `ironclad fw sign`: master a release: firmware binary in, signed (and optionally encrypted)
//! MCUboot image out, in one streaming pass.

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, ValueEnum};
use ironclad_image::{
    Cipher, ContentKey, Encryption, KeyIdFormat, Pad, SignOptions, SlotLayout, Version, sign,
};
use ironclad_se::{KeyAlgorithm, Label};
use serde_json::json;

use crate::cmd::fw_io::{AtomicOut, KeySourceArgs, RngWarmup, parse_number, parse_uuid, read_recipient};
use crate::output::print_json;

/// Sign a firmware binary into an MCUboot image with a mastering key held in a secure element.
///
/// Byte-compatible with `imgtool sign --pad-header` 2.5.0 (Ed25519 images are identical to
/// imgtool's from the same key and inputs): the header is added in front of the binary, the
/// SHA-256 over header, payload and protected TLVs is signed inside the secure element, and
/// `imgtool verify` and MCUboot accept the result. The file is streamed: memory stays flat
/// whatever its size. The output appears only when complete.
///
/// --encrypt-to encrypts the payload (AES-CTR, a fresh content key) and wraps that key to a
/// device's (or the release server's) X25519 or P-256 public key; the wrap sits outside the
/// signed region, so `fw rewrap` can later re-wrap the same signed release to each device.
///
/// imgtool equivalent:
///   imgtool sign -k mastering.pem --pad-header -H 0x200 --align 8 -S 0x40000 -v 1.2.3+4 -s 7 \
///     -E device.pub.pem --confirm app.bin app.signed.bin
///
/// Example:
///   ironclad fw sign --store ./release-se --key fw-mastering --version 1.2.3+4 \
///     --security-counter 7 --header-size 0x200 --slot-size 0x40000 --align 8 \
///     --encrypt-to device.pub.pem --confirm app.bin app.signed.bin
#[derive(Args, Debug)]
#[command(verbatim_doc_comment, disable_version_flag = true)]
pub(crate) struct FwSignArgs {
    /// The firmware binary.
    input: PathBuf,
    /// Where to write the signed image.
    output: PathBuf,
    #[command(flatten)]
    source: KeySourceArgs,
    /// Label of the mastering key in the secure element (imgtool -k).
    #[arg(long, value_name = "LABEL", default_value = "fw-mastering")]
    key: Label,
    /// Image version major[.minor[.revision[+build]]] (imgtool -v).
    #[arg(long)]
    version: Version,
    /// Security counter for anti-rollback, a number or `auto` (major<<24 | minor<<16 | revision)
    /// (imgtool -s). Devices refuse images whose counter is below theirs.
    #[arg(long, short = 's', value_name = "N|auto")]
    security_counter: Option<String>,
    /// Header size including padding, at least 0x20 (imgtool -H).
    #[arg(long, short = 'H', value_parser = parse_number, default_value = "0x20")]
    header_size: u64,
    /// Slot size: the image plus its trailer must fit (imgtool -S).
    #[arg(long, short = 'S', value_parser = parse_number)]
    slot_size: Option<u64>,
    /// Flash write alignment: 1, 2, 4, 8, 16 or 32 (imgtool --align).
    #[arg(long, value_parser = parse_number, default_value = "1")]
    align: u64,
    /// Pad to the slot size and write a trailer marking a test (trial) upgrade (imgtool --pad).
    #[arg(long, requires = "slot_size")]
    pad: bool,
    /// Pad and mark the image confirmed (image_ok set): a permanent upgrade (imgtool --confirm).
    #[arg(long, requires = "slot_size", conflicts_with = "test")]
    confirm: bool,
    /// Pad and mark a test upgrade, same as --pad (imgtool --test).
    #[arg(long, requires = "slot_size")]
    test: bool,
    /// Encrypt the payload to this public key (PEM; X25519 → ENC_X25519, P-256 → ENC_EC256)
    /// (imgtool -E).
    #[arg(long, value_name = "PEM")]
    encrypt_to: Option<PathBuf>,
    /// AES key size for --encrypt-to (imgtool --encrypt-keylen).
    #[arg(long, value_enum, default_value = "128", requires = "encrypt_to")]
    aes: AesBits,
    /// Product-class UUID, signed in a protected vendor TLV (0x1ca0): devices of another class
    /// can refuse the image.
    #[arg(long, value_name = "UUID", value_parser = parse_uuid)]
    product_class: Option<[u8; 16]>,
    /// How the image names the key: `hash` (KEYHASH TLV) or `full` (PUBKEY TLV, for
    /// MCUBOOT_HW_KEY) (imgtool --public-key-format).
    #[arg(long, value_enum, default_value = "hash")]
    public_key_format: PublicKeyFormat,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

/// AES key size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum AesBits {
    /// AES-128-CTR (imgtool's default).
    #[value(name = "128")]
    Aes128,
    /// AES-256-CTR.
    #[value(name = "256")]
    Aes256,
}

/// `--public-key-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PublicKeyFormat {
    /// KEYHASH: SHA-256 of the key.
    Hash,
    /// PUBKEY: the key itself.
    Full,
}

pub(crate) fn run(args: FwSignArgs) -> Result<()> {
    let header_size = u16::try_from(args.header_size)
        .ok()
        .filter(|h| *h >= 0x20)
        .with_context(|| format!("--header-size {:#x} must be 0x20..=0xffff", args.header_size))?;
    let align = u8::try_from(args.align)
        .ok()
        .filter(|a| [1, 2, 4, 8, 16, 32].contains(a))
        .with_context(|| format!("--align {} must be 1, 2, 4, 8, 16 or 32", args.align))?;
    let mut options = SignOptions::new(args.version);
    options.header_size = header_size;
    options.security_counter = match args.security_counter.as_deref() {
        None => None,
        Some("auto") => Some(args.version.auto_security_counter()),
        Some(n) => Some(
            u32::try_from(parse_number(n).map_err(anyhow::Error::msg)?)
                .with_context(|| format!("--security-counter {n} does not fit 32 bits"))?,
        ),
    };
    options.product_class = args.product_class;
    options.key_id = match args.public_key_format {
        PublicKeyFormat::Hash => KeyIdFormat::Hash,
        PublicKeyFormat::Full => KeyIdFormat::Full,
    };
    options.slot = args.slot_size.map(|size| SlotLayout { align, ..SlotLayout::new(size) });
    options.pad = if args.confirm {
        Some(Pad::Confirm)
    } else if args.pad || args.test {
        Some(Pad::Test)
    } else {
        None
    };
    if let Some(path) = &args.encrypt_to {
        let cipher = match args.aes {
            AesBits::Aes128 => Cipher::Aes128Ctr,
            AesBits::Aes256 => Cipher::Aes256Ctr,
        };
        options.encryption =
            Some(Encryption { recipient: read_recipient(path)?, content_key: ContentKey::generate(cipher)? });
    }

    let input = File::open(&args.input).with_context(|| format!("opening {}", args.input.display()))?;
    let meta = input.metadata().with_context(|| format!("reading {}", args.input.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", args.input.display());
    }
    let payload_len = meta.len();
    ensure!(
        payload_len <= u64::from(u32::MAX) - u64::from(header_size),
        "{} is {payload_len} bytes; an MCUboot image holds at most 4 GiB",
        args.input.display()
    );
    // Bounded by the slot before the key is touched or a byte is hashed.
    if let Some(slot) = args.slot_size
        && u64::from(header_size) + payload_len > slot
    {
        bail!(
            "{} ({payload_len} bytes) plus a {header_size:#x}-byte header does not fit the {slot:#x}-byte slot",
            args.input.display()
        );
    }
    let key = args.source.signer(&args.key)?;
    let _warmup = (key.public_key().algorithm() == KeyAlgorithm::EcdsaP256).then(RngWarmup::start);
    let mut out = AtomicOut::create(&args.output)?;
    let signed = sign(&key, &options, &input, payload_len, &mut out)
        .with_context(|| format!("signing {}", args.input.display()))?;
    out.commit()?;

    let encrypted = options.encryption.as_ref().map(|e| {
        let aes = match e.content_key.cipher() {
            Cipher::Aes128Ctr => "aes128-ctr",
            Cipher::Aes256Ctr => "aes256-ctr",
        };
        (aes, e.recipient.algorithm().name())
    });
    if args.json {
        return print_json(&json!({
            "input": args.input,
            "output": args.output,
            "version": args.version.to_string(),
            "security_counter": options.security_counter,
            "hash": hex::encode(signed.digest),
            "key_hash": hex::encode(signed.key_hash),
            "signature": key.public_key().algorithm().name(),
            "encryption": encrypted.map(|(aes, wrap)| json!({"cipher": aes, "wrapped_to": wrap})),
            "image_len": signed.image_len,
            "written": signed.written,
        }));
    }
    let counter = options.security_counter.map_or_else(|| "none".to_owned(), |c| c.to_string());
    println!(
        "signed {} → {} ({} bytes): version {}, security counter {counter}, {} key `{}`",
        args.input.display(),
        args.output.display(),
        signed.written,
        args.version,
        key.public_key().algorithm(),
        args.key
    );
    if let Some((aes, wrap)) = encrypted {
        println!(
            "encrypted: payload {aes}, content key wrapped to the {wrap} key in {}",
            path_text(&args.encrypt_to)
        );
    }
    println!("hash (SHA-256 of the signed region): {}", hex::encode(signed.digest));
    println!("key hash: {}", hex::encode(signed.key_hash));
    Ok(())
}

fn path_text(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}
