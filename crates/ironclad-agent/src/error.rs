//! The agent's error type.

use ironclad_proto::ErrorCode;

/// Everything the device agent and the fleet simulator can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The secure element failed or lacks the identity objects.
    #[error("secure element: {0}")]
    Se(#[from] ironclad_se::Error),
    /// The identity stored in the secure element is unusable.
    #[error("device identity: {0}")]
    Identity(String),
    /// TLS configuration or handshake.
    #[error("TLS: {0}")]
    Tls(String),
    /// Socket I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP framing.
    #[error("HTTP: {0}")]
    Http(String),
    /// The server answered with an error (coarse by design: `AuthFailed` for every refusal).
    #[error("server answered {status} {code:?}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Server {
        /// HTTP status.
        status: u16,
        /// The wire error code, when the body carried one.
        code: Option<ErrorCode>,
        /// The operator API's message, if any.
        message: Option<String>,
    },
    /// The server's answer did not parse.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Provisioning through the PKI failed.
    #[error("PKI: {0}")]
    Pki(#[from] ironclad_pki::Error),
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A signed command was refused; `refusal` is what the device reports.
    #[error("command refused ({refusal}): {reason}")]
    CommandRefused {
        /// The reportable reason.
        refusal: ironclad_proto::CommandRefusal,
        /// The precise error, for the device's own log.
        reason: ironclad_proto::Error,
    },
    /// A COSE message, log record or key delivery failed.
    #[error("message: {0}")]
    Message(#[from] ironclad_proto::Error),
    /// An update was refused by the device; `refusal` is what it reports.
    #[error("update refused ({refusal}): {detail}")]
    OtaRefused {
        /// The reportable reason.
        refusal: crate::ota::OtaRefusal,
        /// The precise reason, for the device's own log.
        detail: String,
    },
}

impl Error {
    /// The wire error code, when this is a server answer.
    pub fn wire_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => *code,
            _ => None,
        }
    }
}

/// Result with the agent's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
