//! Accessories in a software secure element, controllers in a file, raw HTTP, a tampering proxy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use ironclad_hap::{Accessory, Controller, FileControllerStore, SetupCode};
use ironclad_se::{DirSe, KdfParams, SecureElement, Unlock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) const CODE: &str = "031-45-154";

/// A software secure element in `dir` (created on first use, reopened afterwards).
pub(crate) fn dir_se(dir: &Path) -> Arc<dyn SecureElement> {
    let unlock = Unlock::passphrase("interop test passphrase");
    Arc::new(DirSe::open_or_create(dir, &unlock, KdfParams::weak_for_tests()).unwrap())
}

/// An accessory with the fixed test code, its state in `dir`.
pub(crate) async fn accessory(dir: &Path) -> Accessory {
    Accessory::builder(dir_se(dir))
        .name("test lamp")
        .setup_code(SetupCode::parse(CODE).unwrap())
        .start()
        .await
        .unwrap()
}

pub(crate) fn controller(dir: &Path, name: &str) -> Controller {
    Controller::new(Arc::new(FileControllerStore::new(dir.join(format!("{name}.json"))))).unwrap()
}

pub(crate) fn code() -> SetupCode {
    SetupCode::parse(CODE).unwrap()
}

/// Consecutive pair-setups against each peer: IRONCLAD_HAP_ROUNDS; by default 500 when
/// IRONCLAD_REQUIRE_PEERS=1 (the acceptance run: zero failures in 500 per peer), else 50.
pub(crate) fn rounds() -> usize {
    let default = if ironclad_testkit::peers_required() { 500 } else { 50 };
    std::env::var("IRONCLAD_HAP_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(default)
}

/// The Python with HAP-python 5.0.0 and aiohomekit 4.0.1 (scripts/peers/hap-python.after).
pub(crate) fn hap_python() -> Option<PathBuf> {
    match std::env::var_os("IRONCLAD_HAP_PYTHON") {
        Some(python) => Some(PathBuf::from(python)),
        None => {
            assert!(
                !ironclad_testkit::peers_required(),
                "IRONCLAD_REQUIRE_PEERS=1 but IRONCLAD_HAP_PYTHON is not set"
            );
            eprintln!("SKIP: set IRONCLAD_HAP_PYTHON to a Python with HAP-python 5.0.0 and aiohomekit 4.0.1");
            None
        }
    }
}

/// A script in tests/interop, found through the manifest directory at run time (a test binary
/// built in another checkout of the tree still runs this checkout's scripts).
pub(crate) fn script(name: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    dir.join("tests/interop").join(name)
}

/// One plaintext HTTP exchange on `stream`: (status, body).
pub(crate) async fn raw(stream: &mut TcpStream, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(&[head.as_bytes(), body].concat()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let text = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        let status = text[9..12].parse().unwrap();
        let len = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        if buf.len() >= end + 4 + len {
            return (status, buf[end + 4..end + 4 + len].to_vec());
        }
    }
}

/// Direction in which the proxy corrupts the next chunk.
pub(crate) const TAMPER_NONE: u8 = 0;
pub(crate) const TAMPER_TO_ACCESSORY: u8 = 1;
pub(crate) const TAMPER_TO_CONTROLLER: u8 = 2;

/// A loopback TCP proxy to `target` that flips one bit of the next chunk in the armed direction.
pub(crate) async fn tampering_proxy(target: std::net::SocketAddr) -> (String, Arc<AtomicU8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let armed = Arc::new(AtomicU8::new(TAMPER_NONE));
    let flag = armed.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(target).await.unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, flag.clone(), TAMPER_TO_ACCESSORY));
            tokio::spawn(pipe(sr, cw, flag.clone(), TAMPER_TO_CONTROLLER));
        }
    });
    (address, armed)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    armed: Arc<AtomicU8>,
    direction: u8,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if armed.compare_exchange(direction, TAMPER_NONE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            buf[n - 1] ^= 0x01; // inside the Poly1305 tag of the last frame
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
