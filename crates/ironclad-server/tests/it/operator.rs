//! The operator API: nothing but the health check is open; API tokens are stored hashed and
//! carry roles.

use hyper::Method;
use ironclad_agent::OperatorClient;
use ironclad_proto::ErrorCode;
use ironclad_server::Role;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn tokens_and_roles() {
    let srv = TestServer::start().await;
    let admin = srv.admin_token().await;
    let ep = srv.endpoint();

    let mut anon = OperatorClient::connect(&ep, "not-a-token").await.unwrap();
    assert_eq!(
        anon.call(Method::GET, "/v1/enrollments", None).await.unwrap_err().wire_code(),
        Some(ErrorCode::AuthFailed)
    );
    // The health check is the one open endpoint.
    let reasons: Vec<_> = srv.audit().await.into_iter().filter_map(|e| e.record.reason).collect();
    assert_eq!(reasons[0], "api_token_unknown");

    let mut op = OperatorClient::connect(&ep, &admin).await.unwrap();
    let viewer =
        op.call(Method::POST, "/v1/tokens", Some(&json!({"name": "dash", "role": "viewer"}))).await.unwrap();
    let viewer_secret = viewer["token"].as_str().unwrap().to_owned();
    assert!(viewer_secret.starts_with("icl_"));

    // Only the hash is stored.
    let stored = srv.store.list_api_tokens().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|t| !hex::encode(t.token_sha256).contains(&viewer_secret[4..])));
    assert_eq!(stored.iter().find(|t| t.name == "dash").unwrap().role, Role::Viewer);

    let mut v = OperatorClient::connect(&ep, &viewer_secret).await.unwrap();
    v.call(Method::GET, "/v1/enrollments", None).await.unwrap();
    v.call(Method::GET, "/v1/audit?limit=5", None).await.unwrap();
    let e = v.enroll_group("x", "").await.unwrap_err();
    assert_eq!(e.wire_code(), Some(ErrorCode::Forbidden));
    let e =
        v.call(Method::POST, "/v1/tokens", Some(&json!({"name": "x", "role": "admin"}))).await.unwrap_err();
    assert_eq!(e.wire_code(), Some(ErrorCode::Forbidden));

    // Bad input is a coarse BadRequest with a message for the operator.
    let e = op.enroll_group("not a certificate", "").await.unwrap_err();
    assert_eq!(e.wire_code(), Some(ErrorCode::BadRequest));

    op.call(Method::POST, "/v1/tokens/dash/disable", None).await.unwrap();
    let e = v.call(Method::GET, "/v1/enrollments", None).await.unwrap_err();
    assert_eq!(e.wire_code(), Some(ErrorCode::AuthFailed));
    let reasons: Vec<_> = srv.audit().await.into_iter().filter_map(|e| e.record.reason).collect();
    assert_eq!(reasons[0], "api_token_disabled");
    // Operator actions are audited with the token's name.
    let audit = srv.audit().await;
    assert!(audit.iter().any(
        |e| e.record.event == "operator.token.create" && e.record.actor.as_deref() == Some("token:admin")
    ));
}

#[tokio::test]
async fn health_is_open_and_shutdown_is_graceful() {
    let srv = TestServer::start().await;
    let addr = srv.server.local_addr();
    assert_ne!(addr.port(), 0);
    let mut anon = OperatorClient::connect(&srv.endpoint(), "no-token").await.unwrap();
    let (status, body) = anon.call_raw(Method::GET, "/healthz").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
    srv.server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}
