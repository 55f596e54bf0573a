use std::path::PathBuf;

/// What can go wrong between ironclad and a PKCS#11 token. Messages name the module, token,
/// object or URI part at fault; they never contain a PIN or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    #[error("cannot load PKCS#11 module {module}: {reason}")]
    Module { module: PathBuf, reason: String },
    #[error("{function} failed: {rv}")]
    Call { function: &'static str, rv: String },
    #[error("no initialised token labelled {label:?} in {module} (tokens seen: {seen})")]
    TokenNotFound { label: String, module: PathBuf, seen: String },
    #[error("{count} tokens are labelled {label:?}; name the token by a unique label")]
    TokenAmbiguous { label: String, count: usize },
    #[error("login to token {token:?} refused: {reason}")]
    Login { token: String, reason: &'static str },
    #[error("PIN source {source_name}: {reason}")]
    Pin { source_name: String, reason: String },
    #[error("PKCS#11 URI: {part}: {reason}")]
    Uri { part: String, reason: &'static str },
    #[error("{count} objects on the token match {what} `{label}`; expected exactly one")]
    Ambiguous { what: &'static str, label: String, count: usize },
    #[error("object `{label}` on the token is malformed: {reason}")]
    Malformed { label: String, reason: String },
}

impl Pkcs11Error {
    /// Wraps a failed PKCS#11 call. Only the return-value name is kept: cryptoki's long
    /// explanations add nothing for an operator.
    pub(crate) fn call(function: &'static str, err: cryptoki::error::Error) -> Self {
        let rv = match err {
            cryptoki::error::Error::Pkcs11(rv, _) => format!("{rv:?}"),
            other => other.to_string(),
        };
        Pkcs11Error::Call { function, rv }
    }

    pub(crate) fn malformed(label: &impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Pkcs11Error::Malformed { label: label.to_string(), reason: reason.into() }
    }
}

impl From<Pkcs11Error> for ironclad_se::Error {
    fn from(err: Pkcs11Error) -> Self {
        ironclad_se::Error::Backend(format!("pkcs11: {err}"))
    }
}

/// The return value of a failed call, when it was a PKCS#11 error.
pub(crate) fn rv_of(err: &cryptoki::error::Error) -> Option<cryptoki::error::RvError> {
    match err {
        cryptoki::error::Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}
