//! What the accessory refuses: wrong codes, then MaxTries (persisted), a second concurrent
//! pair-setup (Busy), tampered frames, requests without a verified session.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ironclad_hap::{Accessory, Error, ErrorCode, Limits, SetupCode, ids};
use ironclad_pair::tlv8::{Tlv8, types};
use ironclad_se::MemorySe;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::common::{
    TAMPER_TO_ACCESSORY, TAMPER_TO_CONTROLLER, accessory, code, controller, raw, tampering_proxy,
};

const M1: [u8; 6] = [6, 1, 1, 0, 1, 0];

fn tlv_error(body: &[u8]) -> Option<u8> {
    Tlv8::decode(body).unwrap().get_u8(types::ERROR).unwrap()
}

#[tokio::test]
async fn wrong_codes_lock_pair_setup_after_100_even_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let address = acc.local_addr().to_string();
    let phone = controller(dir.path(), "phone");
    let wrong = SetupCode::parse("111-22-333").unwrap();
    let start = Instant::now();
    for attempt in 1..=100u32 {
        let err = phone.pair("lamp", &address, &wrong).await.unwrap_err();
        assert_eq!(err.peer_code(), Some(ErrorCode::Authentication), "attempt {attempt}: {err}");
        assert_eq!(acc.failed_attempts().unwrap(), attempt);
    }
    eprintln!("100 wrong codes in {:.1?}", start.elapsed());
    // Locked: even the right code gets MaxTries, already at M2.
    let err = phone.pair("lamp", &address, &code()).await.unwrap_err();
    assert_eq!(err.peer_code(), Some(ErrorCode::MaxTries), "{err}");
    acc.shutdown().await.unwrap();

    let acc = accessory(dir.path()).await;
    let address = acc.local_addr().to_string();
    assert_eq!(acc.failed_attempts().unwrap(), 100);
    let err = phone.pair("lamp", &address, &code()).await.unwrap_err();
    assert_eq!(err.peer_code(), Some(ErrorCode::MaxTries), "after restart: {err}");
    acc.reset_pairings().unwrap();
    phone.pair("lamp", &address, &code()).await.unwrap();
    assert_eq!(acc.failed_attempts().unwrap(), 0);
}

#[tokio::test]
async fn a_second_concurrent_setup_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let phone = controller(dir.path(), "phone");
    let mut first = TcpStream::connect(acc.local_addr()).await.unwrap();
    let (status, m2) = raw(&mut first, "POST", "/pair-setup", &M1).await;
    assert_eq!((status, tlv_error(&m2)), (200, None));

    let mut second = TcpStream::connect(acc.local_addr()).await.unwrap();
    let (status, busy) = raw(&mut second, "POST", "/pair-setup", &M1).await;
    assert_eq!((status, tlv_error(&busy)), (200, Some(7)));
    let err = phone.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap_err();
    assert_eq!(err.peer_code(), Some(ErrorCode::Busy), "{err}");
    // The holder may restart its own setup; once it leaves, others get their turn.
    let (_, again) = raw(&mut first, "POST", "/pair-setup", &M1).await;
    assert_eq!(tlv_error(&again), None);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match phone.pair("lamp", &acc.local_addr().to_string(), &code()).await {
            Ok(_) => break,
            Err(e) if e.peer_code() == Some(ErrorCode::Busy) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Out-of-order messages are refused without disturbing anything.
    let (_, out_of_order) = raw(&mut second, "POST", "/pair-setup", &[6, 1, 5, 5, 1, 0]).await;
    assert_eq!(tlv_error(&out_of_order), Some(1));
}

#[tokio::test]
async fn tampered_frames_end_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let phone = controller(dir.path(), "phone");
    let mut record = phone.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap();
    let (proxy, armed) = tampering_proxy(acc.local_addr()).await;
    record.address = proxy;

    for direction in [TAMPER_TO_ACCESSORY, TAMPER_TO_CONTROLLER] {
        let mut session = phone.connect_to(&record).await.unwrap();
        session.put(&[(ids::ON, json!(true))]).await.unwrap();
        armed.store(direction, Ordering::SeqCst);
        let err = session.get(&[ids::ON]).await.unwrap_err();
        match direction {
            // The accessory drops the connection at the bad tag.
            TAMPER_TO_ACCESSORY => assert!(matches!(err, Error::Closed | Error::Io(_)), "{err}"),
            // We refuse the accessory's forged frame.
            _ => assert!(matches!(err, Error::Pair(ironclad_pair::Error::FrameAuth { .. })), "{err}"),
        }
        assert!(session.get(&[ids::ON]).await.is_err(), "the session stays closed");
    }
    // The accessory itself is fine.
    let mut session = phone.connect("lamp").await.unwrap();
    assert_eq!(session.get(&[ids::ON]).await.unwrap()[0].1, json!(true));
}

#[tokio::test]
async fn unverified_requests_and_identify() {
    let dir = tempfile::tempdir().unwrap();
    let acc = accessory(dir.path()).await;
    let mut plain = TcpStream::connect(acc.local_addr()).await.unwrap();
    assert_eq!(raw(&mut plain, "POST", "/identify", b"").await.0, 204);
    for (method, path) in
        [("GET", "/accessories"), ("GET", "/characteristics?id=1.11"), ("PUT", "/characteristics")]
    {
        let (status, body) = raw(&mut plain, method, path, b"").await;
        assert_eq!((status, body.as_slice()), (470, &br#"{"status":-70401}"#[..]), "{method} {path}");
    }
    let (status, body) = raw(&mut plain, "POST", "/pairings", &[6, 1, 1, 0, 1, 5]).await;
    assert_eq!((status, tlv_error(&body)), (470, Some(2)));
    assert_eq!(raw(&mut plain, "GET", "/nothing", b"").await.0, 404);
    assert_eq!(raw(&mut plain, "DELETE", "/pairings", b"").await.0, 405);

    let phone = controller(dir.path(), "phone");
    let stranger = controller(dir.path(), "stranger");
    let record = phone.pair("lamp", &acc.local_addr().to_string(), &code()).await.unwrap();
    assert_eq!(raw(&mut plain, "POST", "/identify", b"").await.0, 400);
    // A controller that never paired fails pair-verify.
    let err = stranger.connect_to(&record).await.unwrap_err();
    assert_eq!(err.peer_code(), Some(ErrorCode::Authentication), "{err}");
    // Pair-setup on a paired accessory: Unavailable.
    let err = stranger.pair("lamp", &record.address, &code()).await.unwrap_err();
    assert_eq!(err.peer_code(), Some(ErrorCode::Unavailable), "{err}");
}

/// Reads until the accessory closes the connection (or fails the test after 5 s).
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test]
async fn connection_limit_and_idle_timeout() {
    let limits = Limits { max_connections: 2, idle_timeout: Duration::from_millis(300), ..Limits::default() };
    let acc = Accessory::builder(std::sync::Arc::new(MemorySe::new())).limits(limits).start().await.unwrap();
    let mut first = TcpStream::connect(acc.local_addr()).await.unwrap();
    let mut second = TcpStream::connect(acc.local_addr()).await.unwrap();
    assert_eq!(raw(&mut first, "POST", "/identify", b"").await.0, 204);
    assert_eq!(raw(&mut second, "POST", "/identify", b"").await.0, 204);
    let mut third = TcpStream::connect(acc.local_addr()).await.unwrap();
    assert!(closed_by_peer(&mut third).await, "over the connection limit");
    // Unverified connections that stay silent are closed; then there is room again.
    assert!(closed_by_peer(&mut first).await && closed_by_peer(&mut second).await);
    let mut fourth = TcpStream::connect(acc.local_addr()).await.unwrap();
    assert_eq!(raw(&mut fourth, "POST", "/identify", b"").await.0, 204);
}
