//! The fleet simulator and the long-running agent against a real server on loopback.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironclad_agent::{
    AgentEvent, FleetOptions, FleetProgress, FleetStage, RunOptions, ServerEndpoint, provision_fleet,
    run_device, simulate_fleet,
};
use ironclad_server::store::SqliteStore;
use ironclad_server::{Role, RunningServer, Server, ServerConfig, ServerIdentity};

async fn server() -> (RunningServer, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (identity, ca_pem) = ServerIdentity::generate(&["localhost"]).unwrap();
    let mut config = ServerConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("r.sqlite")).unwrap());
    let server = Server::builder(config).identity(identity).store(store).bind().await.unwrap();
    (server, ca_pem, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_provisions_enrolls_and_authenticates_every_device() {
    let (server, ca_pem, _dir) = server().await;
    let token = server.registry().create_api_token("sim", Role::Operator).await.unwrap();
    let endpoint = ServerEndpoint::new(server.local_addr(), "localhost", ca_pem.as_bytes()).unwrap();
    let seen: Arc<Mutex<Vec<FleetProgress>>> = Arc::default();
    let sink = seen.clone();
    let progress: ironclad_agent::ProgressFn = Arc::new(move |p| sink.lock().unwrap().push(p));
    let mut options = FleetOptions::new(24);
    options.concurrency = 8;
    let report = simulate_fleet(&endpoint, &token.secret, &options, Some(progress)).await.unwrap();
    assert_eq!(report.devices, 24);
    assert_eq!((report.auth.authenticated, report.auth.failed), (24, 0), "{:?}", report.auth.failures);
    assert!(report.auth.p50_ms > 0.0 && report.auth.p99_ms >= report.auth.p50_ms);
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().any(|p| p.stage == FleetStage::Enroll && p.done == 1));
    assert_eq!(seen.iter().filter(|p| p.stage == FleetStage::Authenticate).count(), 24);
    let devices = server.registry().store().list_devices(100).await.unwrap();
    assert_eq!(devices.len(), 24);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_connections_answer_repeated_challenges() {
    let (server, ca_pem, _dir) = server().await;
    let fleet = tokio::task::spawn_blocking(|| provision_fleet(4, "cam", None)).await.unwrap().unwrap();
    let token = server.registry().create_api_token("op", Role::Operator).await.unwrap();
    let endpoint = ServerEndpoint::new(server.local_addr(), "localhost", ca_pem.as_bytes()).unwrap();
    let mut op = ironclad_agent::OperatorClient::connect(&endpoint, &token.secret).await.unwrap();
    ironclad_agent::enroll_fleet(&mut op, &fleet).await.unwrap();
    let summary = ironclad_agent::reauthenticate_fleet(&endpoint, &fleet.devices, 5, 2).await;
    assert_eq!(
        (summary.attempted, summary.authenticated, summary.failed),
        (20, 20, 0),
        "{:?}",
        summary.failures
    );
    let device = server.registry().store().device("sim-000003").await.unwrap().unwrap();
    assert_eq!(device.auth_count, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_token_cannot_enroll_the_fleet() {
    let (server, ca_pem, _dir) = server().await;
    let token = server.registry().create_api_token("view", Role::Viewer).await.unwrap();
    let endpoint = ServerEndpoint::new(server.local_addr(), "localhost", ca_pem.as_bytes()).unwrap();
    let err = simulate_fleet(&endpoint, &token.secret, &FleetOptions::new(2), None).await.unwrap_err();
    assert_eq!(err.wire_code(), Some(ironclad_proto::ErrorCode::Forbidden), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_keeps_its_session_and_heartbeats_until_stopped() {
    let (server, ca_pem, _dir) = server().await;
    let fleet = tokio::task::spawn_blocking(|| provision_fleet(1, "cam", None)).await.unwrap().unwrap();
    let token = server.registry().create_api_token("op", Role::Operator).await.unwrap();
    let endpoint = ServerEndpoint::new(server.local_addr(), "localhost", ca_pem.as_bytes()).unwrap();
    let mut op = ironclad_agent::OperatorClient::connect(&endpoint, &token.secret).await.unwrap();
    ironclad_agent::enroll_fleet(&mut op, &fleet).await.unwrap();

    let events: Arc<Mutex<Vec<AgentEvent>>> = Arc::default();
    let sink = events.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let identity = fleet.devices[0].clone();
    let mut options = RunOptions::default();
    options.heartbeat = Duration::from_millis(100);
    let agent = tokio::spawn(async move {
        run_device(&endpoint, identity, options, stop_rx, &move |e| sink.lock().unwrap().push(e)).await
    });
    tokio::time::sleep(Duration::from_millis(450)).await;
    stop_tx.send(true).unwrap();
    agent.await.unwrap().unwrap();
    let events = events.lock().unwrap().clone();
    assert!(matches!(events[0], AgentEvent::Connected { .. }), "{events:?}");
    assert!(matches!(&events[1], AgentEvent::Authenticated { device_id, .. } if device_id == "sim-000000"));
    let beats = events.iter().filter(|e| matches!(e, AgentEvent::Heartbeat { .. })).count();
    assert!(beats >= 3, "{events:?}");
    let state = server.registry().store().device_state("sim-000000").await.unwrap().unwrap();
    assert!(state.version >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_refuses_a_certificate_for_another_key() {
    let fleet = tokio::task::spawn_blocking(|| provision_fleet(2, "cam", None)).await.unwrap().unwrap();
    let a = &fleet.devices[0];
    let b = &fleet.devices[1];
    let err = ironclad_agent::DeviceIdentity::new(a.key().clone(), b.chain().to_vec()).unwrap_err();
    assert!(err.to_string().contains("not for the key"), "{err}");
}
