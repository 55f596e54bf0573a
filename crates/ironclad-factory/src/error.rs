//! The factory station's one error type. Messages name the order, device or row concerned.

/// Everything the factory station can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The order document is not valid JSON of the expected shape.
    #[error("malformed production order: {0}")]
    OrderMalformed(String),
    /// The order's signature does not verify.
    #[error("production order {id} has an invalid signature (altered after signing?)")]
    OrderSignatureInvalid {
        /// Order id as written in the document.
        id: String,
    },
    /// The order was signed by a key the station does not trust.
    #[error("production order {id} is signed by a key this station does not trust")]
    OrderSignerUntrusted {
        /// Order id.
        id: String,
    },
    /// Outside the order's validity window.
    #[error("production order {id} is valid from {not_before} to {not_after}; now is {now}")]
    OrderOutsideWindow {
        /// Order id.
        id: String,
        /// Start of the window.
        not_before: String,
        /// End of the window.
        not_after: String,
        /// The station's time.
        now: String,
    },
    /// The order names another line CA than the one issuing.
    #[error("production order {id} authorises line CA {expected}, not {actual}")]
    OrderWrongLine {
        /// Order id.
        id: String,
        /// SHA-256 of the CA certificate the order names.
        expected: String,
        /// SHA-256 of the CA certificate in use.
        actual: String,
    },
    /// Another order with the same id but different content was registered before.
    #[error("a different production order with id {0} is already registered")]
    OrderConflict(String),
    /// Issuing would exceed the authorised count.
    #[error("production order {id} authorises {max} devices; {used} are used, {requested} more refused")]
    QuotaExhausted {
        /// Order id.
        id: String,
        /// Authorised count.
        max: u64,
        /// Units already reserved.
        used: u64,
        /// Units asked for.
        requested: u64,
    },
    /// The order is unknown to the ledger.
    #[error("production order {0} is not registered on this station")]
    OrderUnknown(String),
    /// An audit-log row does not match its hash or its predecessor.
    #[error("audit log altered at row {row}: {reason}")]
    AuditTampered {
        /// Row number (1-based).
        row: u64,
        /// Which check failed.
        reason: &'static str,
    },
    /// Too many wrong console passwords.
    #[error("console locked after {0} failed attempts")]
    ConsoleLocked(u32),
    /// A secure-element operation failed.
    #[error(transparent)]
    SecureElement(#[from] ironclad_se::Error),
    /// The ledger database failed.
    #[error("quota ledger: {0}")]
    Ledger(#[from] rusqlite::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
