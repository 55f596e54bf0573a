//! The accessory database: one accessory (aid 1) with the Accessory Information and Protocol
//! Information services, a Switch (`On`, and a writable `ConfiguredName`), and an ironclad service
//! whose write-only `cloud-delegation` characteristic receives the cloud delegation (stored sealed
//! by the accessory, never readable over HAP). Values are HAP JSON (`application/hap+json`).

use std::fmt;

use base64::Engine;
use ironclad_pair::delegation::DelegationLimits;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A characteristic's address: accessory instance ID and characteristic instance ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CharId {
    pub aid: u64,
    pub iid: u64,
}

impl CharId {
    pub const fn new(aid: u64, iid: u64) -> Self {
        CharId { aid, iid }
    }
}

impl fmt::Display for CharId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.aid, self.iid)
    }
}

impl std::str::FromStr for CharId {
    type Err = Error;
    /// `"1.11"`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("characteristic ID", format!("{s:?} is not AID.IID"));
        let (aid, iid) = s.split_once('.').ok_or_else(bad)?;
        Ok(CharId { aid: aid.parse().map_err(|_| bad())?, iid: iid.parse().map_err(|_| bad())? })
    }
}

/// The characteristics of the ironclad accessory.
pub mod ids {
    use super::CharId;

    /// The one accessory's instance ID.
    pub const AID: u64 = 1;
    /// Accessory Information: Identify (write-only bool; also `POST /identify` while unpaired).
    pub const IDENTIFY: CharId = CharId::new(AID, 2);
    pub const MANUFACTURER: CharId = CharId::new(AID, 3);
    pub const MODEL: CharId = CharId::new(AID, 4);
    /// Accessory Information: Name (read-only).
    pub const INFO_NAME: CharId = CharId::new(AID, 5);
    pub const SERIAL_NUMBER: CharId = CharId::new(AID, 6);
    pub const FIRMWARE_REVISION: CharId = CharId::new(AID, 7);
    /// Protocol Information: Version (`"1.1.0"`).
    pub const PROTOCOL_VERSION: CharId = CharId::new(AID, 9);
    /// Switch: On (bool, read/write/events).
    pub const ON: CharId = CharId::new(AID, 11);
    /// Switch: the user-visible name (ConfiguredName, string ≤ 64, read/write/events).
    pub const NAME: CharId = CharId::new(AID, 12);
    /// ironclad: cloud delegation (data, write-only, admin only; an
    /// `ironclad_pair::delegation::CloudDelegation`, stored sealed in the secure element).
    pub const CLOUD_DELEGATION: CharId = CharId::new(AID, 14);
}

/// Type of the ironclad service (custom UUID).
pub const IRONCLAD_SERVICE_TYPE: &str = "4E7D0001-2C31-4B4E-9F1E-8C1A0D1C0A11";
/// Type of the cloud-delegation characteristic (custom UUID).
pub const CLOUD_DELEGATION_TYPE: &str = "4E7D0002-2C31-4B4E-9F1E-8C1A0D1C0A11";

/// HAP status codes of characteristic reads and writes (`status` in HAP JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HapStatus {
    Success,
    InsufficientPrivileges,
    CommunicationFailure,
    Busy,
    ReadOnly,
    WriteOnly,
    NotificationUnsupported,
    OutOfResources,
    Timeout,
    NotFound,
    InvalidValue,
    InsufficientAuthorization,
    Other(i64),
}

impl HapStatus {
    const TABLE: [(HapStatus, i64); 12] = [
        (HapStatus::Success, 0),
        (HapStatus::InsufficientPrivileges, -70401),
        (HapStatus::CommunicationFailure, -70402),
        (HapStatus::Busy, -70403),
        (HapStatus::ReadOnly, -70404),
        (HapStatus::WriteOnly, -70405),
        (HapStatus::NotificationUnsupported, -70406),
        (HapStatus::OutOfResources, -70407),
        (HapStatus::Timeout, -70408),
        (HapStatus::NotFound, -70409),
        (HapStatus::InvalidValue, -70410),
        (HapStatus::InsufficientAuthorization, -70411),
    ];

    pub fn code(self) -> i64 {
        match self {
            HapStatus::Other(code) => code,
            known => Self::TABLE.iter().find(|(s, _)| *s == known).map_or(-70402, |(_, c)| *c),
        }
    }

    pub fn from_code(code: i64) -> Self {
        Self::TABLE.iter().find(|(_, c)| *c == code).map_or(HapStatus::Other(code), |(s, _)| *s)
    }
}

impl fmt::Display for HapStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HapStatus::Other(code) => write!(f, "HAP status {code}"),
            known => write!(f, "{known:?} ({})", known.code()),
        }
    }
}

/// What the Accessory Information service reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessoryInfo {
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub serial_number: String,
    pub firmware_revision: String,
}

impl Default for AccessoryInfo {
    fn default() -> Self {
        AccessoryInfo {
            name: "ironclad device".into(),
            manufacturer: "ironclad".into(),
            model: "ironclad-hap".into(),
            serial_number: "0000".into(),
            firmware_revision: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Bool,
    String,
    Data,
}

#[derive(Clone, Copy, Debug)]
struct Perms {
    read: bool,
    write: bool,
    events: bool,
}

const PR: Perms = Perms { read: true, write: false, events: false };
const PW: Perms = Perms { read: false, write: true, events: false };
const PR_PW_EV: Perms = Perms { read: true, write: true, events: true };

#[derive(Debug)]
struct Characteristic {
    iid: u64,
    ty: &'static str,
    format: Format,
    perms: Perms,
    value: Value,
    max_len: usize,
    description: Option<&'static str>,
}

#[derive(Debug)]
struct Service {
    iid: u64,
    ty: &'static str,
    primary: bool,
    characteristics: Vec<Characteristic>,
}

/// What a successful write asks the accessory to do.
#[derive(Debug)]
pub(crate) enum Written {
    /// Stored; `notify` when subscribers should get an event.
    Stored {
        notify: bool,
    },
    Identify,
    /// A cloud delegation to check and store sealed (the database keeps no copy).
    CloudDelegation(Zeroizing<Vec<u8>>),
}

/// Which extra fields a read includes (`GET /characteristics?meta=1&perms=1&type=1&ev=1`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadOptions {
    pub(crate) meta: bool,
    pub(crate) perms: bool,
    pub(crate) ty: bool,
    pub(crate) ev: bool,
}

#[derive(Debug)]
pub(crate) struct Database {
    services: Vec<Service>,
}

fn string(iid: u64, ty: &'static str, value: &str) -> Characteristic {
    let value = Value::String(value.chars().take(64).collect());
    Characteristic { iid, ty, format: Format::String, perms: PR, value, max_len: 64, description: None }
}

impl Database {
    pub(crate) fn new(info: &AccessoryInfo) -> Self {
        let c = |id: crate::CharId| id.iid;
        let identify = Characteristic {
            iid: c(ids::IDENTIFY),
            ty: "14",
            format: Format::Bool,
            perms: PW,
            value: Value::Null,
            max_len: 0,
            description: None,
        };
        let on = Characteristic {
            iid: c(ids::ON),
            ty: "25",
            format: Format::Bool,
            perms: PR_PW_EV,
            value: Value::Bool(false),
            max_len: 0,
            description: None,
        };
        let name = Characteristic { perms: PR_PW_EV, ..string(c(ids::NAME), "E3", &info.name) };
        let delegation = Characteristic {
            iid: c(ids::CLOUD_DELEGATION),
            ty: CLOUD_DELEGATION_TYPE,
            format: Format::Data,
            perms: PW,
            value: Value::Null,
            max_len: DelegationLimits::default().max_encoded(),
            description: Some("cloud-delegation"),
        };
        let services = vec![
            Service {
                iid: 1,
                ty: "3E",
                primary: false,
                characteristics: vec![
                    identify,
                    string(c(ids::MANUFACTURER), "20", &info.manufacturer),
                    string(c(ids::MODEL), "21", &info.model),
                    string(c(ids::INFO_NAME), "23", &info.name),
                    string(c(ids::SERIAL_NUMBER), "30", &info.serial_number),
                    string(c(ids::FIRMWARE_REVISION), "52", &info.firmware_revision),
                ],
            },
            Service { iid: 8, ty: "A2", primary: false, characteristics: vec![string(9, "37", "1.1.0")] },
            Service { iid: 10, ty: "49", primary: true, characteristics: vec![on, name] },
            Service { iid: 13, ty: IRONCLAD_SERVICE_TYPE, primary: false, characteristics: vec![delegation] },
        ];
        Database { services }
    }

    fn find(&self, id: CharId) -> Option<&Characteristic> {
        if id.aid != ids::AID {
            return None;
        }
        self.services.iter().flat_map(|s| &s.characteristics).find(|c| c.iid == id.iid)
    }

    fn find_mut(&mut self, id: CharId) -> Option<&mut Characteristic> {
        if id.aid != ids::AID {
            return None;
        }
        self.services.iter_mut().flat_map(|s| &mut s.characteristics).find(|c| c.iid == id.iid)
    }

    /// `GET /accessories`.
    pub(crate) fn to_json(&self) -> Value {
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| {
                let chars: Vec<Value> = s
                    .characteristics
                    .iter()
                    .map(|c| {
                        let all = ReadOptions { meta: true, perms: true, ty: true, ev: false };
                        Value::Object(describe(c, all, false))
                    })
                    .collect();
                json!({"iid": s.iid, "type": s.ty, "primary": s.primary, "hidden": false, "characteristics": chars})
            })
            .collect();
        json!({"accessories": [{"aid": ids::AID, "services": services}]})
    }

    /// One entry of a `GET /characteristics` answer (without aid/iid/status).
    pub(crate) fn read(
        &self,
        id: CharId,
        options: ReadOptions,
        subscribed: bool,
    ) -> Result<Map<String, Value>, HapStatus> {
        let c = self.find(id).ok_or(HapStatus::NotFound)?;
        if !c.perms.read {
            return Err(HapStatus::WriteOnly);
        }
        Ok(describe(c, options, subscribed))
    }

    /// Whether `id` can be subscribed to.
    pub(crate) fn check_events(&self, id: CharId) -> Result<(), HapStatus> {
        match self.find(id) {
            None => Err(HapStatus::NotFound),
            Some(c) if !c.perms.events => Err(HapStatus::NotificationUnsupported),
            Some(_) => Ok(()),
        }
    }

    /// A write from a controller.
    pub(crate) fn write(&mut self, id: CharId, value: &Value) -> Result<Written, HapStatus> {
        let c = self.find_mut(id).ok_or(HapStatus::NotFound)?;
        if !c.perms.write {
            return Err(HapStatus::ReadOnly);
        }
        let value = check(c.format, c.max_len, value).ok_or(HapStatus::InvalidValue)?;
        if id == ids::IDENTIFY {
            return if value == Value::Bool(true) {
                Ok(Written::Identify)
            } else {
                Err(HapStatus::InvalidValue)
            };
        }
        if id == ids::CLOUD_DELEGATION {
            let text = value.as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| HapStatus::InvalidValue)?;
            return Ok(Written::CloudDelegation(Zeroizing::new(bytes)));
        }
        let notify = c.perms.events && c.value != value;
        c.value = value;
        Ok(Written::Stored { notify })
    }

    /// The current value of a readable characteristic.
    pub(crate) fn value(&self, id: CharId) -> Option<Value> {
        self.find(id).filter(|c| c.perms.read).map(|c| c.value.clone())
    }

    /// A change made by the device itself (a button, the application): returns whether
    /// subscribers should be notified.
    pub(crate) fn set(&mut self, id: CharId, value: &Value) -> Result<bool, HapStatus> {
        let c = self.find_mut(id).ok_or(HapStatus::NotFound)?;
        if !c.perms.read {
            return Err(HapStatus::WriteOnly);
        }
        let value = check(c.format, c.max_len, value).ok_or(HapStatus::InvalidValue)?;
        let changed = c.value != value;
        c.value = value;
        Ok(changed && c.perms.events)
    }
}

fn describe(c: &Characteristic, options: ReadOptions, subscribed: bool) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("iid".into(), json!(c.iid));
    if options.ty {
        out.insert("type".into(), json!(c.ty));
    }
    if options.perms {
        let mut perms = Vec::new();
        for (on, name) in [(c.perms.read, "pr"), (c.perms.write, "pw"), (c.perms.events, "ev")] {
            if on {
                perms.push(name);
            }
        }
        out.insert("perms".into(), json!(perms));
    }
    if options.meta {
        let format = match c.format {
            Format::Bool => "bool",
            Format::String => "string",
            Format::Data => "data",
        };
        out.insert("format".into(), json!(format));
        match c.format {
            Format::String => drop(out.insert("maxLen".into(), json!(c.max_len))),
            Format::Data => drop(out.insert("maxDataLen".into(), json!(c.max_len))),
            Format::Bool => {}
        }
        if let Some(d) = c.description {
            out.insert("description".into(), json!(d));
        }
    }
    if c.perms.read {
        out.insert("value".into(), c.value.clone());
    }
    if options.ev && c.perms.events {
        out.insert("ev".into(), json!(subscribed));
    }
    out
}

/// Validates a written value against the format; normalises bools given as 0/1.
fn check(format: Format, max_len: usize, value: &Value) -> Option<Value> {
    match (format, value) {
        (Format::Bool, Value::Bool(b)) => Some(Value::Bool(*b)),
        (Format::Bool, Value::Number(n)) => match n.as_u64() {
            Some(0) => Some(Value::Bool(false)),
            Some(1) => Some(Value::Bool(true)),
            _ => None,
        },
        (Format::String, Value::String(s)) if s.chars().count() <= max_len => Some(value.clone()),
        // Base64 of at most max_len bytes.
        (Format::Data, Value::String(s)) if s.len() <= max_len.div_ceil(3) * 4 => Some(value.clone()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_statuses() {
        let mut db = Database::new(&AccessoryInfo::default());
        assert_eq!(db.value(ids::ON), Some(json!(false)));
        assert!(matches!(db.write(ids::ON, &json!(1)), Ok(Written::Stored { notify: true })));
        assert!(matches!(db.write(ids::ON, &json!(true)), Ok(Written::Stored { notify: false })));
        assert_eq!(db.write(ids::ON, &json!("yes")).unwrap_err(), HapStatus::InvalidValue);
        assert_eq!(db.write(ids::MODEL, &json!("x")).unwrap_err(), HapStatus::ReadOnly);
        assert_eq!(db.write(CharId::new(2, 11), &json!(true)).unwrap_err(), HapStatus::NotFound);
        assert_eq!(db.write(ids::NAME, &json!("x".repeat(65))).unwrap_err(), HapStatus::InvalidValue);
        assert_eq!(
            db.read(ids::CLOUD_DELEGATION, ReadOptions::default(), false).unwrap_err(),
            HapStatus::WriteOnly
        );
        assert!(
            matches!(db.write(ids::CLOUD_DELEGATION, &json!("aGVsbG8=")), Ok(Written::CloudDelegation(c)) if c.as_slice() == b"hello")
        );
        assert_eq!(db.write(ids::CLOUD_DELEGATION, &json!("@@")).unwrap_err(), HapStatus::InvalidValue);
        assert!(matches!(db.write(ids::IDENTIFY, &json!(true)), Ok(Written::Identify)));
        assert_eq!(db.check_events(ids::MODEL), Err(HapStatus::NotificationUnsupported));
        let full = ReadOptions { meta: true, perms: true, ty: true, ev: true };
        let read = db.read(ids::ON, full, true).unwrap();
        assert_eq!(
            Value::Object(read),
            json!({"iid": 11, "type": "25", "perms": ["pr", "pw", "ev"], "format": "bool", "value": true, "ev": true})
        );
        assert_eq!(HapStatus::from_code(-70409), HapStatus::NotFound);
        assert_eq!(HapStatus::from_code(-1).code(), -1);
        assert_eq!("1.14".parse::<CharId>().unwrap(), ids::CLOUD_DELEGATION);
        assert!("1-14".parse::<CharId>().is_err());
    }

    #[test]
    fn accessories_json_has_no_write_only_values() {
        let json = Database::new(&AccessoryInfo::default()).to_json();
        let services = json["accessories"][0]["services"].as_array().unwrap();
        let delegation = &services[3]["characteristics"][0];
        assert_eq!(delegation["perms"], json!(["pw"]));
        assert!(delegation.get("value").is_none());
        assert_eq!(services[0]["characteristics"][1]["value"], json!("ironclad"));
    }
}
