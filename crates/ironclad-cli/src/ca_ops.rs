//! CA creation shared by `ca init`, `ca intermediate`, `ceremony run` and the demo: a new PKI is
//! built in a staging directory beside its target and renamed into place only when complete,
//! so a failure leaves nothing behind (and, on a token, no orphaned keys).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ironclad_pki::{CaCertificate, CaIssuer, IntermediateCaParams, RootCaParams};
use ironclad_se::{DirSe, KeyAlgorithm, Label, Overwrite, PublicKey, SecureElement, Unlock, atomic_write};
use ironclad_se_pkcs11::Pkcs11Uri;

use crate::pki_dir::{KeyBackend, PkiDir, ProfileFile, open_token};
use crate::secrets::{CaKeyArgs, kdf_params};

/// How the root key comes to be.
pub(crate) enum RootKey<'a> {
    /// Generated inside the backend; it never exists anywhere else.
    Generate(KeyAlgorithm),
    /// Generated offline (for an M-of-N backup) and imported; the caller wipes its copy.
    Import(KeyAlgorithm, &'a [u8]),
}

/// A PKI being built; `publish` moves it into place, dropping it discards it.
pub(crate) struct StagedPki {
    target: PathBuf,
    staging: Option<tempfile::TempDir>,
    pki: PkiDir,
    se: Arc<dyn SecureElement>,
    /// Keys made on a token: the staging directory's removal does not remove them.
    token_keys: Vec<Label>,
    on_token: bool,
}

impl StagedPki {
    /// Checks the target, logs in to the token or creates the software store (with `unlock`,
    /// asked for once by the caller), and creates the directory skeleton in staging.
    pub(crate) fn begin(
        target: &Path,
        uri: Option<&Pkcs11Uri>,
        keys: &CaKeyArgs,
        unlock: Option<&Unlock>,
    ) -> Result<Self> {
        if target.exists() && std::fs::read_dir(target)?.next().is_some() {
            bail!("{} exists and is not empty; a new PKI needs a new directory", target.display());
        }
        let backend = match uri {
            Some(uri) => KeyBackend::pkcs11(uri)?,
            None => KeyBackend::Software,
        };
        // Log in first: a wrong PIN or token should fail before anything is made.
        let token = uri.map(|uri| open_token(uri, keys)).transpose()?;
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let staging = tempfile::Builder::new().prefix(".pki-init-").tempdir_in(parent)?;
        let pki = PkiDir::create(staging.path(), backend)?;
        let on_token = token.is_some();
        let se: Arc<dyn SecureElement> = match token {
            Some(token) => Arc::new(token),
            None => {
                let unlock = match unlock {
                    Some(u) => u,
                    None => bail!("a software CA key store needs a passphrase"),
                };
                Arc::new(DirSe::create(pki.keys_dir(), unlock, kdf_params())?)
            }
        };
        Ok(Self {
            target: target.to_path_buf(),
            staging: Some(staging),
            pki,
            se,
            token_keys: Vec::new(),
            on_token,
        })
    }

    pub(crate) fn pki(&self) -> &PkiDir {
        &self.pki
    }

    pub(crate) fn keys(&self) -> &Arc<dyn SecureElement> {
        &self.se
    }

    /// Makes (or imports) the root key and the self-signed root certificate.
    pub(crate) fn create_root(
        &mut self,
        params: &RootCaParams,
        key: RootKey<'_>,
    ) -> Result<(CaCertificate, PublicKey)> {
        let label = self.pki.root_key_label()?;
        let public = match key {
            RootKey::Generate(alg) => self.se.generate_key(&label, alg),
            RootKey::Import(alg, raw) => self.se.import_key(&label, alg, raw),
        }
        .with_context(|| format!("creating root key `{label}`"))?;
        if self.on_token {
            self.token_keys.push(label.clone());
        }
        let signer = PkiDir::signer(&self.se, &label)?;
        let root = ironclad_pki::create_root(&signer, params, time::OffsetDateTime::now_utc())
            .context("creating the root certificate")?;
        atomic_write(&self.pki.root_cert_path(), root.pem().as_bytes(), Overwrite::Refuse)?;
        Ok((root, public))
    }

    /// An intermediate CA inside the staged PKI.
    pub(crate) fn create_intermediate(
        &mut self,
        name: &str,
        params: &IntermediateCaParams,
        profile: &ProfileFile,
        alg: KeyAlgorithm,
    ) -> Result<CaCertificate> {
        let cert = create_intermediate_ca(&self.pki, &self.se, name, params, profile, alg)?;
        if self.on_token {
            self.token_keys.push(PkiDir::ca_key_label(name)?);
        }
        Ok(cert)
    }

    /// Moves the finished PKI into place.
    pub(crate) fn publish(mut self) -> Result<PkiDir> {
        let staging = self.staging.take().context("already published")?;
        if self.target.exists() {
            std::fs::remove_dir(&self.target)?;
        }
        std::fs::rename(staging.path(), &self.target)
            .with_context(|| format!("moving the new PKI into {}", self.target.display()))?;
        let _ = staging.keep(); // renamed: nothing to clean up
        self.token_keys.clear();
        PkiDir::open(&self.target)
    }
}

impl Drop for StagedPki {
    fn drop(&mut self) {
        // Not published: leave no orphaned keys on a token (the staging directory, and the
        // software store in it, are removed by TempDir).
        for label in &self.token_keys {
            let _ = self.se.delete_key(label);
        }
    }
}

/// Creates intermediate CA `name` in `pki`: key in the CA key store, certificate signed by the
/// root, chain and device profile, all appearing at once; on failure the new key is deleted.
pub(crate) fn create_intermediate_ca(
    pki: &PkiDir,
    se: &Arc<dyn SecureElement>,
    name: &str,
    params: &IntermediateCaParams,
    profile: &ProfileFile,
    alg: KeyAlgorithm,
) -> Result<CaCertificate> {
    crate::pki_dir::validate_ca_name(name)?;
    let ca_dir = pki.ca_dir(name);
    if ca_dir.exists() {
        bail!("CA {name:?} already exists in {}", pki.path().display());
    }
    profile.to_profile().context("device profile")?;
    let root_cert = pki.root_cert()?;
    let root_key = PkiDir::signer(se, &pki.root_key_label()?)?;
    let root = CaIssuer::new(&root_cert, &root_key)?;
    let label = PkiDir::ca_key_label(name)?;
    se.generate_key(&label, alg).with_context(|| format!("generating CA key `{label}`"))?;
    let made = (|| -> Result<_> {
        let key = PkiDir::signer(se, &label)?;
        let cert = ironclad_pki::create_intermediate(&root, &key, params, time::OffsetDateTime::now_utc())?;
        let staging = tempfile::Builder::new().prefix(".ca-").tempdir_in(pki.path().join("ca"))?;
        atomic_write(&staging.path().join("cert.pem"), cert.pem().as_bytes(), Overwrite::Refuse)?;
        let chain = format!("{}{}", cert.pem(), root_cert.pem());
        atomic_write(&staging.path().join("chain.pem"), chain.as_bytes(), Overwrite::Refuse)?;
        atomic_write(
            &staging.path().join("profile.json"),
            &serde_json::to_vec_pretty(profile)?,
            Overwrite::Refuse,
        )?;
        std::fs::rename(staging.keep(), &ca_dir)?;
        Ok(cert)
    })();
    if made.is_err() {
        // Leave no orphaned key behind a CA that was never created.
        let _ = se.delete_key(&label);
    }
    made
}
