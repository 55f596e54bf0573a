//! What flows between the cloud and a device after authentication: signed commands (with a
//! per-device sequence the server hands out and the device enforces), signed telemetry (kept
//! only when its sequence moves forward), and uploaded encrypted log files.

use serde::{Deserialize, Serialize};

use super::StoreFuture;

/// A signed command as the server keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCommand {
    pub device_id: String,
    /// Strictly increasing per device, from 1.
    pub sequence: u64,
    pub name: String,
    /// The COSE_Sign1 the device receives, exactly as signed.
    #[serde(with = "hex::serde")]
    pub signed: Vec<u8>,
    /// The operator token that issued it.
    pub issued_by: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; the device refuses it from then on.
    pub expires_at: i64,
    /// `pending`, `executed`, or `refused:<reason>` as the device reported.
    pub status: String,
    /// Unix seconds of the device's report.
    pub reported_at: Option<i64>,
}

/// A verified telemetry report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTelemetry {
    pub device_id: String,
    /// The device's report counter.
    pub sequence: u64,
    /// The device's clock when it signed.
    pub device_time: i64,
    /// Unix seconds.
    pub received_at: i64,
    /// The measurements as JSON.
    pub data_json: String,
}

/// An uploaded log file (ciphertext only: the server decrypts it when an operator reads it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogUpload {
    pub id: String,
    pub device_id: String,
    /// Unix seconds.
    pub uploaded_at: i64,
    /// The file as the device wrote it.
    #[serde(skip)]
    pub content: Vec<u8>,
    pub size: u64,
}

/// Storage of commands, telemetry and log uploads. Each method is atomic.
pub trait MessageStore: Send + Sync {
    /// The next command sequence of a device (1 for its first), reserved atomically: two
    /// servers never hand out the same number. A reserved number whose command is never stored
    /// leaves a gap, which devices accept (they require increase, not contiguity).
    fn reserve_command_sequence<'a>(&'a self, device_id: &'a str) -> StoreFuture<'a, u64>;
    /// Stores a signed command.
    fn insert_command<'a>(&'a self, command: &'a StoredCommand) -> StoreFuture<'a, ()>;
    /// A device's commands with a sequence above `after`, oldest first, at most `limit`.
    fn commands_after<'a>(
        &'a self,
        device_id: &'a str,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredCommand>>;
    /// A device's newest commands first, at most `limit`.
    fn list_commands<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<StoredCommand>>;
    /// Records the device's report on a command. False when there is no such command.
    fn report_command<'a>(
        &'a self,
        device_id: &'a str,
        sequence: u64,
        status: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool>;
    /// Keeps a telemetry report if its sequence is above every earlier one of the device;
    /// false (nothing written) for a replayed or stale report.
    fn insert_telemetry<'a>(&'a self, report: &'a StoredTelemetry) -> StoreFuture<'a, bool>;
    /// A device's newest reports first, at most `limit`.
    fn list_telemetry<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<StoredTelemetry>>;
    /// Stores an uploaded log file.
    fn insert_log_upload<'a>(&'a self, upload: &'a LogUpload) -> StoreFuture<'a, ()>;
    /// One upload, with its content.
    fn log_upload<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<LogUpload>>;
    /// A device's uploads, newest first, without content.
    fn list_log_uploads<'a>(&'a self, device_id: &'a str, limit: u32) -> StoreFuture<'a, Vec<LogUpload>>;
}
