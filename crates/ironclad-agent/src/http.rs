//! One HTTP/1.1 connection over TLS, with the TLS exporter value taken right after the
//! handshake (the device signs it into its challenge answer).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use ironclad_proto::{EXPORTER_LABEL, EXPORTER_LEN, ErrorCode, ExporterValue};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};

/// An open connection.
#[derive(Debug)]
pub(crate) struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    exporter: ExporterValue,
    protocol: Option<rustls::ProtocolVersion>,
    task: JoinHandle<()>,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorCode,
    #[serde(default)]
    message: Option<String>,
}

impl HttpConn {
    pub(crate) async fn connect(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| Error::Config(format!("invalid server name {server_name:?}")))?;
        let tls =
            TlsConnector::from(config).connect(name, tcp).await.map_err(|e| Error::Tls(e.to_string()))?;
        let exporter = tls
            .get_ref()
            .1
            .export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None)
            .map_err(|e| Error::Tls(format!("exporter: {e}")))?;
        let protocol = tls.get_ref().1.protocol_version();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn {
            sender,
            host: server_name.to_owned(),
            exporter: ExporterValue::from(exporter),
            protocol,
            task,
        })
    }

    pub(crate) fn exporter(&self) -> &ExporterValue {
        &self.exporter
    }

    pub(crate) fn protocol(&self) -> Option<rustls::ProtocolVersion> {
        self.protocol
    }

    /// Sends a request and returns the status and body.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<(u16, Bytes)> {
        self.sender.ready().await.map_err(|e| Error::Http(e.to_string()))?;
        let mut req = Request::builder().method(method).uri(path).header(HOST, &self.host);
        if let Some(token) = bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let payload = match body {
            Some((bytes, content_type)) => {
                req = req.header(CONTENT_TYPE, content_type);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(payload)).map_err(|e| Error::Http(e.to_string()))?;
        let resp = self.sender.send_request(req).await.map_err(|e| Error::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| Error::Http(e.to_string()))?.to_bytes();
        Ok((status, body))
    }

    /// Sends a body-less request with extra headers and returns the response with its body
    /// unread (a download consumes it frame by frame and keeps what arrived if it breaks).
    pub(crate) async fn send_streaming(
        &mut self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        headers: &[(hyper::header::HeaderName, String)],
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        self.sender.ready().await.map_err(|e| Error::Http(e.to_string()))?;
        let mut req = Request::builder().method(method).uri(path).header(HOST, &self.host);
        if let Some(token) = bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|e| Error::Http(e.to_string()))?;
        self.sender.send_request(req).await.map_err(|e| Error::Http(e.to_string()))
    }

    /// Sends JSON (or nothing), expects JSON; maps error answers to [`Error::Server`].
    pub(crate) async fn json<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        let body = match body {
            Some(b) => {
                Some((serde_json::to_vec(b).map_err(|e| Error::Protocol(e.to_string()))?, "application/json"))
            }
            None => None,
        };
        let (status, bytes) = self.send(method, path, bearer, body).await?;
        decode(status, &bytes)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<T> {
    if !(200..300).contains(&status) {
        let parsed = serde_json::from_slice::<ErrorBody>(bytes).ok();
        return Err(Error::Server {
            status,
            code: parsed.as_ref().map(|b| b.error),
            message: parsed.and_then(|b| b.message),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| Error::Protocol(format!("answer does not parse: {e}")))
}
