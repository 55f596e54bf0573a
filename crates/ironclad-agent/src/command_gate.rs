//! The device's gate for signed commands: signature, target, sequence, expiry, with the last
//! accepted sequence number kept durably in the secure element.
//!
//! Why a [`MonotonicCounter`](ironclad_se::MonotonicCounter) (`ironclad.command-seq`) and not a
//! sealed object: the record must only ever move forward, even against someone who can copy and
//! restore the device's storage. A sealed object is confidential and authentic but can be rolled
//! back to an older copy (which would re-open every command since); a monotonic counter is the
//! secure element's anti-rollback primitive (NV counters on hardware, the same counters firmware
//! security counters use), and `counter_advance` refuses to go backwards and is durable before it
//! returns. The counter is per element, hence per device.
//!
//! Delivery is at most once: the sequence is advanced *before* the command is handed back, so a
//! crash after acceptance loses that command rather than allowing it to run twice.

use std::sync::{Arc, Mutex};

use ironclad_proto::{CommandRefusal, Limits, SignedCommand, TrustedKeys, VerifiedCommand};
use ironclad_se::{Label, SecureElement};

use crate::error::{Error, Result};

/// Name of the secure-element counter holding the last accepted command sequence number.
pub const COMMAND_SEQUENCE_COUNTER: &str = "ironclad.command-seq";

/// Checks signed commands for one device.
#[derive(Debug)]
pub struct CommandGate {
    se: Arc<dyn SecureElement>,
    device_id: String,
    keys: TrustedKeys,
    limits: Limits,
    counter: Label,
    // Serialises check-then-advance within this process: two threads must not both accept
    // the same sequence number (`counter_advance` to an equal value is a no-op, not an error).
    lock: Mutex<()>,
}

impl CommandGate {
    /// A gate for `device_id` trusting the server's command keys `keys` (by kid).
    pub fn new(se: Arc<dyn SecureElement>, device_id: impl Into<String>, keys: TrustedKeys) -> Result<Self> {
        let counter = Label::new(COMMAND_SEQUENCE_COUNTER)?;
        Ok(Self {
            se,
            device_id: device_id.into(),
            keys,
            limits: Limits::default(),
            counter,
            lock: Mutex::new(()),
        })
    }

    /// Replaces the size limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The sequence number of the last accepted command (0 before the first).
    pub fn last_accepted(&self) -> Result<u64> {
        Ok(self.se.counter(&self.counter)?)
    }

    /// Checks `bytes` at time `now` (seconds since the Unix epoch). On success the command's
    /// sequence number is already recorded durably; act on it. On refusal the error is
    /// [`Error::CommandRefused`] with the reportable [`CommandRefusal`], and nothing is recorded.
    pub fn check(&self, bytes: &[u8], now: u64) -> Result<VerifiedCommand> {
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let last = self.se.counter(&self.counter)?;
        let verified = SignedCommand::parse(bytes, &self.limits)
            .and_then(|c| c.verify(&self.keys, &self.device_id, last, now))
            .map_err(|reason| Error::CommandRefused {
                refusal: CommandRefusal::from_error(&reason),
                reason,
            })?;
        self.se.counter_advance(&self.counter, verified.command().sequence)?;
        Ok(verified)
    }
}
