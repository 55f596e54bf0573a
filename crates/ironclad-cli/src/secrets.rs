//! Where unlock secrets come from. Never from argv (it leaks through `ps` and shell history):
//! an environment variable, a file, or an interactive prompt.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_se::{DirSe, KdfParams, Unlock};
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
