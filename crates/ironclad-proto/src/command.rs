//! Signed commands: the server signs each command for one device with a strictly increasing
//! sequence number and an expiry. `SignedCommand::parse(bytes)?.verify(keys, device, last, now)`
//! yields a [`VerifiedCommand`] or an error whose [`CommandRefusal`] the device reports.
//! The device keeps `last` durably (`ironclad_agent::CommandGate`).

use ciborium::Value;
use serde::{Deserialize, Serialize};

use crate::cose::cbor::{Fields, int_map, to_vec};
use crate::cose::keys::{CoseSigner, TrustedKeys};
use crate::cose::{Limits, Sign1, sign1};
use crate::error::{Error, Result};

/// The protected content type of a command.
pub const COMMAND_CONTENT_TYPE: &str = "application/vnd.ironclad.command+cbor";

const TARGET: i64 = 1;
const SEQUENCE: i64 = 2;
const ISSUED_AT: i64 = 3;
const EXPIRES: i64 = 4;
const NAME: i64 = 5;
const ARGS: i64 = 6;

/// Longest device id or command name.
pub const MAX_NAME_LEN: usize = 128;

/// A command for one device. Field numbers are the CBOR map keys (docs/protocol.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// 1: the target device's id.
    pub target: String,
    /// 2: per-device sequence number, strictly increasing from 1.
    pub sequence: u64,
    /// 3: when the server signed it, seconds since the Unix epoch.
    pub issued_at: u64,
    /// 4: refused at or after this instant, seconds since the Unix epoch.
    pub expires: u64,
    /// 5: the command name (`reboot`, `log-key.install`, ...).
    pub name: String,
    /// 6: the arguments, any CBOR value (`null` when none).
    pub args: Value,
}

impl Command {
    /// The CBOR payload.
    pub fn to_cbor(&self) -> Vec<u8> {
        to_vec(&int_map(vec![
            (TARGET, Value::Text(self.target.clone())),
            (SEQUENCE, self.sequence.into()),
            (ISSUED_AT, self.issued_at.into()),
            (EXPIRES, self.expires.into()),
            (NAME, Value::Text(self.name.clone())),
            (ARGS, self.args.clone()),
        ]))
    }

    /// Decodes a payload (any unknown key is refused).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self> {
        let what = "command";
        let mut f = Fields::decode(what, bytes)?;
        let cmd = Command {
            target: f.text(TARGET, "target", MAX_NAME_LEN)?,
            sequence: f.uint(SEQUENCE, "sequence")?,
            issued_at: f.uint(ISSUED_AT, "issued-at")?,
            expires: f.uint(EXPIRES, "expiry")?,
            name: f.text(NAME, "name", MAX_NAME_LEN)?,
            args: f.value(ARGS, "args")?,
        };
        f.finish()?;
        if cmd.sequence == 0 {
            return Err(Error::Malformed { what, reason: "sequence numbers start at 1".to_owned() });
        }
        if cmd.issued_at > cmd.expires {
            return Err(Error::Malformed { what, reason: "issued after it expires".to_owned() });
        }
        Ok(cmd)
    }

    /// Signs the command as a tagged COSE_Sign1 with protected `{alg, content type, kid}`.
    pub fn sign(&self, signer: &dyn CoseSigner, kid: &[u8]) -> Result<Vec<u8>> {
        sign1(signer, kid, COMMAND_CONTENT_TYPE, self.to_cbor())
    }
}

/// A parsed command envelope whose signature is not checked yet.
#[derive(Clone, Debug)]
pub struct SignedCommand {
    env: Sign1,
}

impl SignedCommand {
    /// Parses the COSE_Sign1 envelope (size, tag, headers, content type).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self> {
        Ok(Self { env: Sign1::parse("command", bytes, limits.max_signed_len, COMMAND_CONTENT_TYPE)? })
    }

    /// The signer's key id (unauthenticated until verified).
    pub fn kid(&self) -> &[u8] {
        self.env.kid()
    }

    /// Checks, in order: the signature (key by kid), the payload, the target (`device_id`), the
    /// sequence against `last_accepted` (equal: [`Error::Replayed`]; lower: [`Error::Stale`]),
    /// then the expiry against `now`. The caller persists the sequence of an accepted command
    /// before acting on it.
    pub fn verify(
        self,
        keys: &TrustedKeys,
        device_id: &str,
        last_accepted: u64,
        now: u64,
    ) -> Result<VerifiedCommand> {
        self.env.verify_with(keys)?;
        let command = Command::from_cbor(self.env.payload())?;
        if command.target != device_id {
            return Err(Error::WrongTarget { expected: device_id.to_owned(), found: command.target });
        }
        if command.sequence == last_accepted {
            return Err(Error::Replayed { sequence: command.sequence });
        }
        if command.sequence < last_accepted {
            return Err(Error::Stale { sequence: command.sequence, last: last_accepted });
        }
        if now >= command.expires {
            return Err(Error::Expired { expires: command.expires, now });
        }
        Ok(VerifiedCommand { command, kid: self.env.kid().to_vec() })
    }
}

/// A command that is authentic, for this device, newer than the last accepted, and not expired.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedCommand {
    command: Command,
    kid: Vec<u8>,
}

impl VerifiedCommand {
    /// The verified command.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// The id of the key that signed it.
    pub fn kid(&self) -> &[u8] {
        &self.kid
    }

    /// Consumes the wrapper.
    pub fn into_command(self) -> Command {
        self.command
    }
}

/// Why a device refused a command: the coarse, reportable reason (serialised as its name, e.g.
/// `"Replayed"`); the precise [`Error`] stays in the device's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CommandRefusal {
    /// Same sequence number as the last accepted command.
    Replayed,
    /// Older than the last accepted command (reordered, or an older command replayed).
    Stale,
    /// For another device.
    WrongTarget,
    /// Past its expiry.
    Expired,
    /// Not signed by a trusted command key with the algorithm of that key.
    BadSignature,
    /// Not a well-formed command (size, CBOR, headers, content type, fields).
    Malformed,
}

impl CommandRefusal {
    /// The refusal an error amounts to.
    pub fn from_error(e: &Error) -> Self {
        match e {
            Error::Replayed { .. } => Self::Replayed,
            Error::Stale { .. } => Self::Stale,
            Error::WrongTarget { .. } => Self::WrongTarget,
            Error::Expired { .. } => Self::Expired,
            Error::BadSignature | Error::UnknownKey { .. } | Error::WrongAlgorithm { .. } => {
                Self::BadSignature
            }
            _ => Self::Malformed,
        }
    }

    /// The stable name (`Replayed`, `Stale`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Replayed => "Replayed",
            Self::Stale => "Stale",
            Self::WrongTarget => "WrongTarget",
            Self::Expired => "Expired",
            Self::BadSignature => "BadSignature",
            Self::Malformed => "Malformed",
        }
    }
}

impl std::fmt::Display for CommandRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
