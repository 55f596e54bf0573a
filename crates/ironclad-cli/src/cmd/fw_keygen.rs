//! `ironclad fw keygen`: a firmware mastering key (or firmware-decryption key) made inside a
//! secure element.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use ironclad_se::{KeyAlgorithm, Label, Overwrite, atomic_write};
use serde_json::json;

use crate::cmd::fw_io::{KeySourceArgs, key_hash_hex, public_pem};
use crate::output::print_json;

/// Generate a firmware mastering key inside a secure element and print its public key.
///
/// The mastering key signs release images (`ironclad fw sign`). It is generated inside a secure
/// element and never leaves it: a software store (--store, unlocked by $IRONCLAD_PASSPHRASE or
/// --passphrase-file) or a PKI's key backend (--pki: its store, or the PKCS#11 token it lives
/// on). What is printed is public: the key in PEM (what devices trust, what `fw verify --key`
/// takes) and its key hash (the KEYHASH TLV every image carries, as `imgtool getpubhash`).
///
/// With --x25519 or --p256-enc it makes a firmware-decryption key instead: the key a device (or
/// the release server) holds and that encrypted images are wrapped to (`fw sign --encrypt-to`).
///
/// imgtool equivalent (where the private key is a file):
///   imgtool keygen -k mastering.pem -t ecdsa-p256
///   imgtool getpub -k mastering.pem -e pem > mastering.pub.pem; imgtool getpubhash -k mastering.pem
///
/// Examples:
///   ironclad fw keygen --store ./release-se --init --label fw-mastering --out mastering.pub.pem
///   ironclad fw keygen --store ./device-se --init --label fw-decrypt --x25519 --out device.pub.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FwKeygenArgs {
    #[command(flatten)]
    key: KeySourceArgs,
    /// Label of the new key; default `fw-mastering`, or `fw-decrypt` with --x25519/--p256-enc.
    #[arg(long)]
    label: Option<Label>,
    /// Signature algorithm of the mastering key.
    #[arg(long, short = 't', value_enum, default_value = "ecdsa-p256")]
    algorithm: MasteringAlgorithm,
    /// Make an X25519 firmware-decryption key (MCUboot ENC_X25519) instead of a mastering key.
    #[arg(long, conflicts_with_all = ["p256_enc", "algorithm"])]
    x25519: bool,
    /// Make a P-256 ECDH firmware-decryption key (MCUboot ENC_EC256) instead of a mastering key.
    #[arg(long, conflicts_with = "algorithm")]
    p256_enc: bool,
    /// Also create the software store if it does not exist yet.
    #[arg(long)]
    init: bool,
    /// Also write the public key (PEM) to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Mastering-key algorithms MCUboot verifies and ironclad signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MasteringAlgorithm {
    /// ECDSA P-256 with SHA-256 (imgtool `-t ecdsa-p256`; ECDSA_SIG TLV).
    EcdsaP256,
    /// Ed25519 over the image's SHA-256 (imgtool `-t ed25519`; ED25519 TLV).
    Ed25519,
}

pub(crate) fn run(args: FwKeygenArgs) -> Result<()> {
    let (algorithm, purpose) = if args.x25519 {
        (KeyAlgorithm::X25519, "firmware-decryption")
    } else if args.p256_enc {
        (KeyAlgorithm::EcdhP256, "firmware-decryption")
    } else {
        match args.algorithm {
            MasteringAlgorithm::EcdsaP256 => (KeyAlgorithm::EcdsaP256, "firmware mastering"),
            MasteringAlgorithm::Ed25519 => (KeyAlgorithm::Ed25519, "firmware mastering"),
        }
    };
    let signing = algorithm.can_sign();
    let label = match args.label {
        Some(label) => label,
        None => Label::new(if signing { "fw-mastering" } else { "fw-decrypt" })?,
    };
    let (se, created) = args.key.open_or_create(args.init)?;
    let public = se
        .generate_key(&label, algorithm)
        .with_context(|| format!("generating `{label}` in {}", args.key.describe()))?;
    let pem_text = public_pem(&public)?;
    let key_hash = if signing { Some(key_hash_hex(&public)?) } else { None };
    if let Some(out) = &args.out {
        atomic_write(out, pem_text.as_bytes(), Overwrite::Replace)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if args.json {
        return print_json(&json!({
            "label": label.as_str(),
            "algorithm": algorithm.name(),
            "purpose": purpose,
            "secure_element": args.key.describe(),
            "store_created": created,
            "public_key_pem": pem_text,
            "key_hash": key_hash,
            "fingerprint": public.fingerprint(),
            "out": args.out,
        }));
    }
    if created {
        eprintln!("created {}", args.key.describe());
    }
    println!("generated {algorithm} {purpose} key `{label}` in {}", args.key.describe());
    match &key_hash {
        Some(hash) => println!("key hash (KEYHASH TLV, imgtool getpubhash): {hash}"),
        None => println!(
            "encrypt images to it with `ironclad fw sign --encrypt-to <this public key>`; fingerprint {}",
            public.fingerprint()
        ),
    }
    if let Some(out) = &args.out {
        println!("public key written to {}", out.display());
    }
    print!("{pem_text}");
    Ok(())
}
