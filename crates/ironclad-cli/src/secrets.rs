//! Where unlock secrets (store passphrases, token PINs) come from. Never from argv (it leaks
//! through `ps` and shell history): an environment variable, a file, or an interactive prompt.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_se::{DirSe, KdfParams, Unlock};
use ironclad_se_pkcs11::{Pin, Pkcs11Uri};
use zeroize::Zeroizing;

/// Options naming a software secure element and how to unlock it.
#[derive(Args, Debug, Clone)]
pub(crate) struct StoreArgs {
    /// Directory of the software secure element.
    #[arg(long, value_name = "DIR", env = "IRONCLAD_SE_DIR")]
    pub(crate) store: PathBuf,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
}

/// How to unlock a software secure element: passphrase (Argon2id) or device-unique secret (HKDF).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct UnlockArgs {
    /// Read the passphrase from this file (first line; the file should be mode 0600).
    #[arg(long, value_name = "FILE", conflicts_with = "device_secret_file")]
    pub(crate) passphrase_file: Option<PathBuf>,
    /// Read the passphrase from this environment variable.
    #[arg(long, value_name = "VAR", default_value = "IRONCLAD_PASSPHRASE")]
    pub(crate) passphrase_env: String,
    /// Unlock with a device-unique secret (raw bytes, at least 16) read from this file instead
    /// of a passphrase: how a device's own store is unlocked from its hardware unique key.
    #[arg(long, value_name = "FILE")]
    pub(crate) device_secret_file: Option<PathBuf>,
}

impl UnlockArgs {
    /// Resolves the secret: device-secret file, passphrase file, environment, then a prompt.
    pub(crate) fn resolve(&self, confirm_new: bool) -> Result<Unlock> {
        if let Some(path) = &self.device_secret_file {
            let secret = Zeroizing::new(
                std::fs::read(path).with_context(|| format!("reading device secret {}", path.display()))?,
            );
            return Ok(Unlock::DeviceSecret(secret));
        }
        if let Some(path) = &self.passphrase_file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading passphrase file {}", path.display()))?,
            );
            let line = text.lines().next().unwrap_or_default();
            return Ok(Unlock::Passphrase(Zeroizing::new(line.to_owned())));
        }
        if let Ok(value) = std::env::var(&self.passphrase_env) {
            return Ok(Unlock::Passphrase(Zeroizing::new(value)));
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "no passphrase: set ${} or pass --passphrase-file (stdin is not a terminal, so there is no prompt)",
                self.passphrase_env
            );
        }
        let first = Zeroizing::new(rpassword::prompt_password("Key store passphrase: ")?);
        if confirm_new {
            let again = Zeroizing::new(rpassword::prompt_password("Repeat passphrase: ")?);
            if first != again {
                bail!("the two passphrases differ");
            }
        }
        Ok(Unlock::Passphrase(first))
    }
}

impl StoreArgs {
    pub(crate) fn open(&self) -> Result<DirSe> {
        let unlock = self.unlock.resolve(false)?;
        DirSe::open(&self.store, &unlock)
            .with_context(|| format!("opening key store {}", self.store.display()))
    }

    pub(crate) fn create(&self) -> Result<DirSe> {
        let unlock = self.unlock.resolve(true)?;
        DirSe::create(&self.store, &unlock, kdf_params())
            .with_context(|| format!("creating key store {}", self.store.display()))
    }
}

/// Argon2id cost for new stores; `IRONCLAD_INSECURE_FAST_KDF=1` lowers it for test suites only.
pub(crate) fn kdf_params() -> KdfParams {
    if std::env::var("IRONCLAD_INSECURE_FAST_KDF").is_ok_and(|v| v == "1") {
        KdfParams::weak_for_tests()
    } else {
        KdfParams::default()
    }
}

/// How to log in to a PKCS#11 token: the user PIN from a file or an environment variable (or a
/// prompt), never from argv. A `pin-source` in the token's URI is used when neither is given.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct PinArgs {
    /// Read the PKCS#11 user PIN from this file (first line; the file should be mode 0600).
    #[arg(long, value_name = "FILE")]
    pub(crate) pin_file: Option<PathBuf>,
    /// Read the PKCS#11 user PIN from this environment variable.
    #[arg(long, value_name = "VAR", default_value = "IRONCLAD_PKCS11_PIN")]
    pub(crate) pin_env: String,
}

impl PinArgs {
    /// Resolves the PIN: --pin-file, the URI's pin-source, the environment, then a prompt.
    pub(crate) fn resolve(&self, uri: &Pkcs11Uri) -> Result<Pin> {
        if let Some(path) = &self.pin_file {
            return Ok(Pin::from_file(path)?);
        }
        if let Some(source) = &uri.pin_source {
            return Ok(Pin::from_pin_source(source)?);
        }
        if std::env::var_os(&self.pin_env).is_some() {
            return Ok(Pin::from_env(&self.pin_env)?);
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "no PKCS#11 PIN: set ${} or pass --pin-file (stdin is not a terminal, so there is no prompt)",
                self.pin_env
            );
        }
        let token = uri.token.as_deref().unwrap_or("the token");
        let pin = Zeroizing::new(rpassword::prompt_password(format!("User PIN for {token}: "))?);
        Ok(Pin::new(pin.as_str()))
    }
}

/// Everything that may be needed to reach CA keys: a software store's unlock secret or a
/// token's PIN. Which one is used depends on the PKI directory's backend.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct CaKeyArgs {
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    #[command(flatten)]
    pub(crate) pin: PinArgs,
}
