//! `ironclad serve`: the cloud service (registry, enrollment, device authentication over
//! mutual TLS, operator API) until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_se::{DirSe, Overwrite, SecureElement, Unlock, atomic_write};
use ironclad_se_pkcs11::{Pkcs11Config, Pkcs11Se, Pkcs11Uri};
use ironclad_server::{
    Registry, Role, Server, ServerConfig, ServerIdentity, StorageConfig, SystemClock, open_store,
};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::json;
use zeroize::Zeroizing;

use crate::remote::runtime;
use crate::secrets::{PinArgs, UnlockArgs, kdf_params};

/// Run the cloud service: device registry, enrollment, authentication, operator API.
///
/// Devices authenticate with mutual TLS plus a challenge signed in their secure element.
///
/// Configuration: --config FILE (TOML, or JSON when it ends in .json; every field is optional,
/// see docs/server.md) and these flags, which win over it. With nothing given: SQLite
/// `ironclad-registry.sqlite` in the working directory, 127.0.0.1:8443, and a server identity
/// made on first start and kept next to the database: `ironclad-server.pem` and
/// `ironclad-server.key`, plus `ironclad-server-ca.pem`, the CA that devices and operators
/// trust (--server-ca of the other commands).
///
/// The first line on stdout names the bound address (with --json, one JSON object per line:
/// {"event":"listening","addr":..}). --init-admin-token creates an admin API token and prints
/// it once on the next line: only its hash is stored. Device certificates must chain to a
/// group-enrolled CA or a --trust-anchor (e.g. the fleet root, for manifest imports).
///
/// Ctrl-C or SIGTERM stops accepting connections and lets open requests finish.
///
/// Example:
///   ironclad serve --init-admin-token --trust-anchor pki/root.pem
///   ironclad serve --config server.toml --listen 0.0.0.0:8443 --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServeArgs {
    /// Configuration file (TOML; JSON when the name ends in .json).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// SQLite database file [default: ironclad-registry.sqlite].
    #[arg(long, value_name = "FILE", conflicts_with = "postgres")]
    sqlite: Option<PathBuf>,
    /// PostgreSQL connection string (`host=.. port=.. user=.. dbname=..`), for several server
    /// processes on one database. Keep passwords out of the command line: use the variable.
    #[arg(long, value_name = "CONNINFO", env = "IRONCLAD_POSTGRES_URL", hide_env_values = true)]
    postgres: Option<String>,
    /// The server's certificate chain (PEM, leaf first); with --tls-key. Without both, the
    /// identity in --identity-dir is used (made on first start).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where the generated server identity lives [default: the SQLite database's directory,
    /// or the working directory with PostgreSQL].
    #[arg(long, value_name = "DIR")]
    identity_dir: Option<PathBuf>,
    /// Extra DNS names or IP addresses for a generated server certificate (it always has
    /// localhost, 127.0.0.1 and ::1).
    #[arg(long, value_name = "NAME")]
    identity_name: Vec<String>,
    /// A CA certificate file (PEM) trusted for device chains, besides group-enrolled CAs;
    /// repeatable. Trusting a CA admits no device by itself.
    #[arg(long, value_name = "PEM")]
    trust_anchor: Vec<PathBuf>,
    /// Create an admin API token with this name (default "admin") and print it once.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "admin")]
    init_admin_token: Option<String>,
    /// Print JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// The key vault's software secure element (a directory). Unlocked by --passphrase-file,
    /// $IRONCLAD_PASSPHRASE or --device-secret-file; with none of them, a random unlock secret
    /// is made next to it on first start (ironclad-server-se.secret, mode 0600: fine for a
    /// trial, use a passphrase or --vault-pkcs11 in production) [default:
    /// ironclad-server-se in the identity directory].
    #[arg(long, value_name = "DIR", conflicts_with = "vault_pkcs11")]
    vault_se: Option<PathBuf>,
    /// Keep the vault's master and signing keys in a PKCS#11 token instead (RFC 7512 URI, e.g.
    /// "pkcs11:token=ironclad-cloud;module-path=/usr/lib/softhsm/libsofthsm2.so"); the PIN
    /// comes from --pin-file or $IRONCLAD_PKCS11_PIN.
    #[arg(long, value_name = "URI")]
    vault_pkcs11: Option<String>,
    #[command(flatten)]
    vault_unlock: UnlockArgs,
    #[command(flatten)]
    vault_pin: PinArgs,
}

/// File names of a generated identity.
const IDENTITY_CERT: &str = "ironclad-server.pem";
const IDENTITY_KEY: &str = "ironclad-server.key";
const IDENTITY_CA: &str = "ironclad-server-ca.pem";
/// The vault's software secure element, by default.
const VAULT_SE: &str = "ironclad-server-se";

pub(crate) fn run(args: ServeArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => load_config(path)?,
        None => ServerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(path) = &args.sqlite {
        config.storage = StorageConfig::Sqlite { path: path.clone() };
    }
    if let Some(url) = &args.postgres {
        // The configuration file's pool size stays; only the connection string is replaced.
        let pool_size = match &config.storage {
            StorageConfig::Postgres { pool_size, .. } => *pool_size,
            _ => 4,
        };
        config.storage = StorageConfig::Postgres { url: url.clone(), pool_size };
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls.certificate = Some(cert.clone());
        config.tls.private_key = Some(key.clone());
    }
    config.trust_anchors.extend(args.trust_anchor.iter().cloned());

    let (storage_text, default_identity_dir) = match &config.storage {
        StorageConfig::Sqlite { path } => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (format!("sqlite {}", path.display()), dir.to_path_buf())
        }
        StorageConfig::Postgres { .. } => ("postgres".to_owned(), PathBuf::from(".")),
        _ => ("other".to_owned(), PathBuf::from(".")),
    };
    let (identity, server_ca) = match (&config.tls.certificate, &config.tls.private_key) {
        (Some(cert), Some(key)) => (ServerIdentity::from_pem_files(cert, key)?, None),
        (None, None) => {
            let dir = args.identity_dir.clone().unwrap_or(default_identity_dir);
            let (identity, ca) = load_or_generate_identity(&dir, &config.listen, &args.identity_name)?;
            (identity, Some(std::path::absolute(&ca)?))
        }
        _ => bail!("tls.certificate and tls.private_key go together"),
    };

    let vault_dir = args.identity_dir.clone().unwrap_or(default_identity_dir_for_vault(&config));
    let (vault, vault_text) = open_vault(&args, &vault_dir)?;

    let rt = runtime()?;
    rt.block_on(async move {
        let store = open_store(&config.storage).await.context("opening the registry")?;
        let admin = match &args.init_admin_token {
            Some(name) => {
                let registry = Registry::new(store.clone(), Arc::new(SystemClock))?;
                let token = registry.create_api_token(name, Role::Admin).await.with_context(|| {
                    format!("creating admin token {name:?} (pick another name: --init-admin-token NAME)")
                })?;
                Some(token)
            }
            None => None,
        };
        let server = Server::builder(config.clone())
            .identity(identity)
            .store(store)
            .secure_element(vault)
            .bind()
            .await
            .with_context(|| format!("starting the server on {}", config.listen))?;
        let addr = server.local_addr();
        if args.json {
            println!(
                "{}",
                json!({"event": "listening", "addr": addr.to_string(), "storage": storage_text, "vault": vault_text,
                       "server_ca": server_ca.as_ref().map(|p| p.display().to_string())})
            );
        } else {
            println!("listening on {addr} ({storage_text}; key vault: {vault_text})");
            if let Some(ca) = &server_ca {
                println!("devices and operators trust the server with --server-ca {}", ca.display());
            }
        }
        if let Some(token) = admin {
            if args.json {
                println!(
                    "{}",
                    json!({"event": "admin_token", "name": token.token.name, "token": token.secret.as_str()})
                );
            } else {
                println!("admin token {} (shown once): {}", token.token.name, token.secret.as_str());
            }
        }
        stop_signal().await?;
        if !args.json {
            eprintln!("stopping: letting open requests finish");
        }
        server.shutdown().await;
        if args.json {
            println!("{}", json!({"event": "stopped"}));
        }
        Ok(())
    })
}

/// Where the vault's software secure element goes by default: next to the SQLite file.
fn default_identity_dir_for_vault(config: &ServerConfig) -> PathBuf {
    match &config.storage {
        StorageConfig::Sqlite { path } => {
            path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
        }
        _ => PathBuf::from("."),
    }
}

/// The key vault's secure element: a PKCS#11 token, or a software store unlocked by a
/// passphrase, a device secret, or (trial default) a generated secret file beside it.
fn open_vault(args: &ServeArgs, dir: &Path) -> Result<(Arc<dyn SecureElement>, String)> {
    if let Some(uri) = &args.vault_pkcs11 {
        let parsed = Pkcs11Uri::parse(uri).with_context(|| format!("--vault-pkcs11 {uri}"))?;
        let pin = args.vault_pin.resolve(&parsed)?;
        let config = Pkcs11Config::from_uri(&parsed, pin)?;
        let se = Pkcs11Se::open(&config)
            .with_context(|| format!("opening PKCS#11 token {:?}", config.token_label))?;
        return Ok((Arc::new(se), format!("PKCS#11 token {:?}", config.token_label)));
    }
    let store = args.vault_se.clone().unwrap_or_else(|| dir.join(VAULT_SE));
    let explicit = args.vault_unlock.device_secret_file.is_some()
        || args.vault_unlock.passphrase_file.is_some()
        || std::env::var_os(&args.vault_unlock.passphrase_env).is_some();
    let unlock = if explicit {
        args.vault_unlock.resolve(false)?
    } else {
        let secret_path = store.with_file_name(format!(
            "{}.secret",
            store.file_name().and_then(|n| n.to_str()).unwrap_or(VAULT_SE)
        ));
        if !secret_path.exists() {
            if store.exists() {
                bail!(
                    "the vault store {} exists but its unlock secret {} does not: give --passphrase-file,                      $IRONCLAD_PASSPHRASE or --device-secret-file",
                    store.display(),
                    secret_path.display()
                );
            }
            let mut secret = Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(secret.as_mut_slice())
                .map_err(|_| anyhow::anyhow!("random generator failed"))?;
            atomic_write(&secret_path, secret.as_slice(), Overwrite::Refuse)
                .with_context(|| format!("writing {}", secret_path.display()))?;
        }
        let secret = Zeroizing::new(
            std::fs::read(&secret_path).with_context(|| format!("reading {}", secret_path.display()))?,
        );
        Unlock::DeviceSecret(secret)
    };
    let se = DirSe::open_or_create(&store, &unlock, kdf_params())
        .with_context(|| format!("opening the vault store {}", store.display()))?;
    Ok((Arc::new(se), format!("software SE {}", store.display())))
}

fn load_config(path: &Path) -> Result<ServerConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(anyhow::Error::from)
    } else {
        toml::from_str(&text).map_err(anyhow::Error::from)
    };
    parsed.with_context(|| format!("configuration {}", path.display()))
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// The identity in `dir`, made on first use: a CA (its key is dropped at once, so nobody can
/// mint another certificate under it) and a server certificate for the loopback names, the
/// listen address and `extra`. Returns it and the path of the CA certificate.
fn load_or_generate_identity(
    dir: &Path,
    listen: &SocketAddr,
    extra: &[String],
) -> Result<(ServerIdentity, PathBuf)> {
    let (cert, key, ca) = (dir.join(IDENTITY_CERT), dir.join(IDENTITY_KEY), dir.join(IDENTITY_CA));
    if cert.exists() || key.exists() {
        let identity = ServerIdentity::from_pem_files(&cert, &key)
            .with_context(|| format!("server identity in {}", dir.display()))?;
        return Ok((identity, ca));
    }
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() && !names.contains(&listen.ip().to_string()) {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params.distinguished_name.push(DnType::CommonName, "ironclad server CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::hours(1);
    ca_params.not_after = now + time::Duration::days(365 * 20);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "ironclad server");
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * 10);
    let server_cert = params.signed_by(&server_key, &issuer)?;
    std::fs::create_dir_all(dir)?;
    // The key first (mode 0600), the CA last: a crash leaves no CA file without its identity.
    atomic_write(&key, server_key.serialize_pem().as_bytes(), Overwrite::Refuse)?;
    atomic_write(&cert, server_cert.pem().as_bytes(), Overwrite::Refuse)?;
    atomic_write(&ca, ca_cert.pem().as_bytes(), Overwrite::Replace)?;
    for public in [&cert, &ca] {
        std::fs::set_permissions(public, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    }
    let identity = ServerIdentity::from_pem_files(&cert, &key)?;
    Ok((identity, ca))
}
