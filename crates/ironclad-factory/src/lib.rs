//! The factory station: production orders signed by the OEM, a quota ledger that no crash or
//! second process can push past the authorised count, a hash-chained audit log of every
//! issued device, and per-device debug-console passwords.
//!
//! ```text
//! SignedOrder::from_json(..)?.verify(trusted, line_ca_sha256, now)?   -> VerifiedOrder
//! ledger.register(&order)?; let mut r = ledger.reserve(&order, n)?;   (durable, before signing)
//! ... issue n certificates with ironclad-pki ...
//! ledger.record_issued(&mut r, &records, now)?; ledger.release(r)?;   (audit, return unused)
//! ```
#![forbid(unsafe_code)]

mod console;
mod error;
mod ledger;
mod order;

pub use console::{ConsoleGuard, console_password};
pub use error::{Error, Result};
pub use ledger::{AuditRecord, OrderUsage, QuotaLedger, Reservation};
pub use order::{ProductionOrder, SignedOrder, VerifiedOrder};
