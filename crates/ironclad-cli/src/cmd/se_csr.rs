//! `ironclad se csr`: a PKCS#10 request signed inside the secure element.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use ironclad_se::{KeyHandle, Label, Overwrite, SecureElement, atomic_write};

use crate::secrets::StoreArgs;

/// Create a certificate signing request for a key held in a secure element.
///
/// The CSR carries only the device ID (as the subject CN) and the public key; the issuing CA's
/// profile decides everything else in the certificate.
///
/// Example:
///   ironclad se csr --store ./device-se --label device-auth --device-id cam-000123 --out cam.csr
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct SeCsrArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The signing key (ecdsa-p256 or ed25519).
    #[arg(long, default_value = "device-auth")]
    label: Label,
    /// Device ID to request as the certificate's subject CN.
    #[arg(long)]
    device_id: String,
    /// Where to write the PEM CSR (stdout if omitted).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn run(args: SeCsrArgs) -> Result<()> {
    let se: Arc<dyn SecureElement> = Arc::new(args.store.open()?);
    let handle = KeyHandle::open(se, &args.label)?;
    let pem = device_csr_pem(&handle, &args.device_id)?;
    match &args.out {
        Some(path) => {
            atomic_write(path, pem.as_bytes(), Overwrite::Replace)?;
            eprintln!("wrote CSR for {} to {}", args.device_id, path.display());
        }
        None => print!("{pem}"),
    }
    Ok(())
}

/// A CSR whose subject is just `CN=<device id>`, signed by `key` inside its secure element.
pub(crate) fn device_csr_pem(key: &KeyHandle, device_id: &str) -> Result<String> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, device_id);
    let csr = params.serialize_request(key).context("signing the CSR in the secure element")?;
    Ok(csr.pem()?)
}
