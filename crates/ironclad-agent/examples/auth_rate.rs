//! Rough authentication rates on loopback: an in-process server (SQLite in a temp dir, or
//! PostgreSQL with `--postgres <url>`), N provisioned devices, then full authentications (TLS
//! handshake + challenge-response, new connection each) and repeated challenge-responses on
//! kept connections. Client and server share the machine's cores.
//!
//!   cargo run --release -p ironclad-agent --example auth_rate -- [devices] [concurrency] [rounds]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ironclad_agent::{
    ServerEndpoint, authenticate_fleet, enroll_fleet, provision_fleet, reauthenticate_fleet,
};
use ironclad_server::store::{PostgresStore, SqliteStore, Store};
use ironclad_server::{Role, Server, ServerConfig, ServerIdentity};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let postgres = args.iter().position(|a| a == "--postgres").map(|i| args[i + 1].clone());
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let devices = nums.first().copied().unwrap_or(500);
    let concurrency = nums.get(1).copied().unwrap_or(32);
    let rounds = nums.get(2).copied().unwrap_or(10);

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = match &postgres {
        Some(url) => Arc::new(PostgresStore::connect(url, 4).await.unwrap()),
        None => Arc::new(SqliteStore::open(dir.path().join("r.sqlite")).unwrap()),
    };
    let (identity, ca_pem) = ServerIdentity::generate(&["localhost"]).unwrap();
    let mut config = ServerConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = Server::builder(config).identity(identity).store(store.clone()).bind().await.unwrap();
    let token = server.registry().create_api_token("bench", Role::Operator).await.unwrap();
    let endpoint = ServerEndpoint::new(server.local_addr(), "localhost", ca_pem.as_bytes()).unwrap();

    let fleet =
        tokio::task::spawn_blocking(move || provision_fleet(devices, "bench", None)).await.unwrap().unwrap();
    let mut op = ironclad_agent::OperatorClient::connect(&endpoint, &token.secret).await.unwrap();
    enroll_fleet(&mut op, &fleet).await.unwrap();

    let full = authenticate_fleet(&endpoint, &fleet.devices, concurrency, None).await;
    let kept = reauthenticate_fleet(&endpoint, &fleet.devices, rounds, concurrency).await;
    let report = serde_json::json!({
        "backend": store.backend_name(), "devices": devices, "concurrency": concurrency,
        "full_authentications": full, "challenge_responses_on_kept_connections": kept,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    server.shutdown().await;
}
