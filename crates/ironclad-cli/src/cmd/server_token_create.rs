//! `ironclad server token create`: a new operator API token.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use ironclad_se::{Overwrite, atomic_write};

use crate::output::print_json;
use crate::remote::{OperatorArgs, runtime};

/// Create an operator API token (needs an admin token).
///
/// Roles: viewer (read enrollments, devices, audit), operator (also enroll, import, disable,
/// revoke, read media keys), admin (also tokens, key rotation). owner is apart: an end user's
/// app, which claims devices through pairing (`ironclad owner claim-code`) and reads only the
/// media keys of the devices it claimed. The secret is shown once (only its SHA-256 is stored); --out
/// writes it to a new file of mode 0600 instead of printing it, ready for --token-file.
///
/// The admin token comes from $IRONCLAD_TOKEN or --token-file (`ironclad serve
/// --init-admin-token` prints the first one).
///
/// Example:
///   IRONCLAD_TOKEN=icl_... ironclad server token create --name line-ops --role operator \
///       --out line-ops.token --server 127.0.0.1:8443 --server-ca ironclad-server-ca.pem
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServerTokenCreateArgs {
    /// Token name: 1-64 of [A-Za-z0-9._-], unique; audit records name it.
    #[arg(long)]
    name: String,
    /// What the token may do.
    #[arg(long, value_enum, default_value_t = TokenRole::Operator)]
    role: TokenRole,
    /// Write the secret to this new file (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TokenRole {
    Owner,
    Viewer,
    Operator,
    Admin,
}

impl TokenRole {
    fn as_str(self) -> &'static str {
        match self {
            TokenRole::Owner => "owner",
            TokenRole::Viewer => "viewer",
            TokenRole::Operator => "operator",
            TokenRole::Admin => "admin",
        }
    }
}

pub(crate) fn run(args: ServerTokenCreateArgs) -> Result<()> {
    let created = runtime()?.block_on(async {
        let mut client = args.operator.connect().await?;
        client.create_token(&args.name, args.role.as_str()).await.context("creating the token")
    })?;
    let secret = zeroize::Zeroizing::new(created["token"].as_str().unwrap_or_default().to_owned());
    anyhow::ensure!(!secret.is_empty(), "the server answered without a token");
    if let Some(path) = &args.out {
        atomic_write(path, format!("{}\n", secret.as_str()).as_bytes(), Overwrite::Refuse)
            .with_context(|| format!("writing {} (it must not exist)", path.display()))?;
    }
    let shown = if args.out.is_some() { None } else { Some(secret.as_str()) };
    if args.json {
        return print_json(&serde_json::json!({
            "name": args.name, "role": args.role.as_str(), "token": shown, "token_file": args.out,
        }));
    }
    match (&args.out, shown) {
        (Some(path), _) => {
            println!("token {} ({}) written to {}", args.name, args.role.as_str(), path.display())
        }
        (None, Some(s)) => println!("token {} ({}), shown once: {s}", args.name, args.role.as_str()),
        (None, None) => {}
    }
    Ok(())
}
