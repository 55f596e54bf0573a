//! Device telemetry: a COSE_Sign1 signed inside the device's secure element with its identity
//! key, `kid` = the device id. The server looks the device's public key up by
//! [`SignedTelemetry::device_id`] and calls [`SignedTelemetry::verify`].

use ciborium::Value;

use crate::cose::cbor::{Fields, int_map, to_vec};
use crate::cose::keys::{CoseSigner, VerifyingKey};
use crate::cose::{Limits, Sign1, sign1};
use crate::error::{Error, Result};

/// The protected content type of telemetry.
pub const TELEMETRY_CONTENT_TYPE: &str = "application/vnd.ironclad.telemetry+cbor";

const DEVICE_ID: i64 = 1;
const SEQUENCE: i64 = 2;
const TIME: i64 = 3;
const DATA: i64 = 4;

/// One telemetry report. Field numbers are the CBOR map keys (docs/protocol.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Telemetry {
    /// 1: the reporting device (also the COSE `kid`).
    pub device_id: String,
    /// 2: the device's report counter, increasing (the server refuses replays by it).
    pub sequence: u64,
    /// 3: the device's clock when it signed, seconds since the Unix epoch.
    pub time: u64,
    /// 4: the measurements, any CBOR value (typically a map).
    pub data: Value,
}

impl Telemetry {
    /// The CBOR payload.
    pub fn to_cbor(&self) -> Vec<u8> {
        to_vec(&int_map(vec![
            (DEVICE_ID, Value::Text(self.device_id.clone())),
            (SEQUENCE, self.sequence.into()),
            (TIME, self.time.into()),
            (DATA, self.data.clone()),
        ]))
    }

    /// Decodes a payload (any unknown key is refused).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self> {
        let mut f = Fields::decode("telemetry", bytes)?;
        let t = Telemetry {
            device_id: f.text(DEVICE_ID, "device id", crate::command::MAX_NAME_LEN)?,
            sequence: f.uint(SEQUENCE, "sequence")?,
            time: f.uint(TIME, "time")?,
            data: f.value(DATA, "data")?,
        };
        f.finish()?;
        Ok(t)
    }

    /// Signs with the device key; the kid is the device id.
    pub fn sign(&self, device_key: &dyn CoseSigner) -> Result<Vec<u8>> {
        sign1(device_key, self.device_id.as_bytes(), TELEMETRY_CONTENT_TYPE, self.to_cbor())
    }
}

/// A parsed telemetry envelope whose signature is not checked yet.
#[derive(Clone, Debug)]
pub struct SignedTelemetry {
    env: Sign1,
}

impl SignedTelemetry {
    /// Parses the COSE_Sign1 envelope (size, tag, headers, content type).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self> {
        Ok(Self { env: Sign1::parse("telemetry", bytes, limits.max_signed_len, TELEMETRY_CONTENT_TYPE)? })
    }

    /// The claimed device id (the kid), to look up its key; unauthenticated until verified.
    pub fn device_id(&self) -> Result<&str> {
        std::str::from_utf8(self.env.kid()).map_err(|_| Error::Malformed {
            what: "telemetry",
            reason: "kid is not a UTF-8 device id".to_owned(),
        })
    }

    /// Verifies with the device's public key; the payload's device id must equal the kid.
    pub fn verify(self, device_key: &VerifyingKey) -> Result<VerifiedTelemetry> {
        self.env.verify(device_key)?;
        let telemetry = Telemetry::from_cbor(self.env.payload())?;
        if telemetry.device_id.as_bytes() != self.env.kid() {
            return Err(Error::Malformed {
                what: "telemetry",
                reason: "device id differs from kid".to_owned(),
            });
        }
        Ok(VerifiedTelemetry(telemetry))
    }
}

/// Telemetry signed by the key it was verified with.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedTelemetry(Telemetry);

impl VerifiedTelemetry {
    /// The verified report.
    pub fn telemetry(&self) -> &Telemetry {
        &self.0
    }

    /// Consumes the wrapper.
    pub fn into_telemetry(self) -> Telemetry {
        self.0
    }
}
