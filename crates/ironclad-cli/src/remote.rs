//! Reaching a running `ironclad serve`: where it is, which CA its certificate chains to, and
//! the operator API token, read from an environment variable or a file, never from argv.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use ironclad_agent::{OperatorClient, ServerEndpoint};
use zeroize::Zeroizing;

/// Where the server is and how to recognise it.
#[derive(Args, Debug, Clone)]
pub(crate) struct ServerArgs {
    /// The server, as HOST:PORT (what `ironclad serve` printed on its first line).
    #[arg(long, value_name = "HOST:PORT", env = "IRONCLAD_SERVER")]
    pub(crate) server: String,
    /// The CA certificate (PEM) the server's certificate chains to: the
    /// `ironclad-server-ca.pem` that `ironclad serve` writes next to its database.
    #[arg(long, value_name = "PEM", env = "IRONCLAD_SERVER_CA")]
    pub(crate) server_ca: PathBuf,
    /// The name to expect in the server's certificate [default: the host of --server].
    #[arg(long, value_name = "NAME")]
    pub(crate) server_name: Option<String>,
}

impl ServerArgs {
    /// The resolved address and the name checked against the server's certificate.
    pub(crate) fn endpoint(&self) -> Result<ServerEndpoint> {
        let (addr, host) = resolve(&self.server)?;
        let name = self.server_name.clone().unwrap_or(host);
        let ca = std::fs::read(&self.server_ca)
            .with_context(|| format!("reading the server CA {}", self.server_ca.display()))?;
        ServerEndpoint::new(addr, &name, &ca)
            .with_context(|| format!("server CA {}", self.server_ca.display()))
    }
}

/// `HOST:PORT` (`[v6]:PORT` too) to a socket address and the host part.
pub(crate) fn resolve(text: &str) -> Result<(SocketAddr, String)> {
    let Some((host, _port)) = text.rsplit_once(':') else {
        bail!("--server {text:?} is not HOST:PORT");
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    // IPv4 first: `localhost` may resolve to ::1 first while the server listens on 127.0.0.1.
    let mut addrs: Vec<SocketAddr> =
        text.to_socket_addrs().with_context(|| format!("resolving {text}"))?.collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    let addr = *addrs.first().with_context(|| format!("{text} resolves to no address"))?;
    Ok((addr, host))
}

/// Where the operator API token comes from.
#[derive(Args, Debug, Clone)]
pub(crate) struct TokenArgs {
    /// Read the operator API token from this file (first line; keep it mode 0600).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Read the operator API token from this environment variable.
    #[arg(long, value_name = "VAR", default_value = "IRONCLAD_TOKEN")]
    pub(crate) token_env: String,
}

impl TokenArgs {
    /// The token: --token-file, then the environment variable.
    pub(crate) fn resolve(&self) -> Result<Zeroizing<String>> {
        if let Some(path) = &self.token_file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading token file {}", path.display()))?,
            );
            let line = text.lines().next().unwrap_or_default().trim();
            if line.is_empty() {
                bail!("token file {} is empty", path.display());
            }
            return Ok(Zeroizing::new(line.to_owned()));
        }
        match std::env::var(&self.token_env) {
            Ok(v) if !v.trim().is_empty() => Ok(Zeroizing::new(v.trim().to_owned())),
            _ => bail!(
                "no operator token: set ${} or pass --token-file (tokens are never taken from the command line)",
                self.token_env
            ),
        }
    }
}

/// Both: a server and a token.
#[derive(Args, Debug, Clone)]
pub(crate) struct OperatorArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    #[command(flatten)]
    pub(crate) token: TokenArgs,
}

impl OperatorArgs {
    /// Connects to the operator API.
    pub(crate) async fn connect(&self) -> Result<OperatorClient> {
        let endpoint = self.server.endpoint()?;
        let token = self.token.resolve()?;
        OperatorClient::connect(&endpoint, &token)
            .await
            .with_context(|| format!("connecting to {}", self.server.server))
    }
}

/// A runtime for one command: the CLI is synchronous except where it talks to a server.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}
