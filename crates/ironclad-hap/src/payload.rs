//! What an accessory shows for setup: the setup code and the `X-HM://` setup payload a QR code
//! carries (HAP: version 3 bits | reserved 4 | category 8 | flags 4 | setup code 27, in base 36
//! over 9 characters, then the 4-character setup ID).

use std::fmt;

use ironclad_pair::RandomSource;
use ironclad_pair::setup::SetupCode;

use crate::error::{Error, Result};

/// HAP accessory categories (the `ci` of the setup payload and of mDNS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Category {
    Other,
    Bridge,
    Fan,
    GarageDoorOpener,
    Lightbulb,
    DoorLock,
    Outlet,
    Switch,
    Thermostat,
    Sensor,
    SecuritySystem,
    IpCamera,
    /// A category number not listed here.
    Code(u8),
}

impl Category {
    pub fn code(self) -> u8 {
        match self {
            Category::Other => 1,
            Category::Bridge => 2,
            Category::Fan => 3,
            Category::GarageDoorOpener => 4,
            Category::Lightbulb => 5,
            Category::DoorLock => 6,
            Category::Outlet => 7,
            Category::Switch => 8,
            Category::Thermostat => 9,
            Category::Sensor => 10,
            Category::SecuritySystem => 11,
            Category::IpCamera => 17,
            Category::Code(c) => c,
        }
    }
}

/// The payload flag for "pairs over IP".
const FLAG_IP: u64 = 2;

/// The 4-character setup ID (`[0-9A-Z]{4}`) that ties a QR code to one accessory.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SetupId(String);

const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl SetupId {
    pub fn parse(id: &str) -> Result<Self> {
        if id.len() != 4 || !id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
            return Err(Error::invalid("setup ID", "expected 4 characters 0-9 A-Z"));
        }
        Ok(SetupId(id.to_owned()))
    }

    pub fn random(rng: &mut dyn RandomSource) -> Result<Self> {
        let mut bytes = [0u8; 4];
        rng.fill(&mut bytes)?;
        // 256 mod 36 = 4: a negligible bias for an identifier that is not a secret.
        Ok(SetupId(bytes.iter().map(|b| char::from(BASE36[usize::from(*b) % 36])).collect()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SetupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetupId({})", self.0)
    }
}

impl fmt::Display for SetupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `X-HM://` URI for a QR code: the setup code is inside, so treat it like the code itself.
pub fn setup_uri(category: Category, code: &SetupCode, setup_id: &SetupId) -> String {
    let digits: String = code.as_str().chars().filter(char::is_ascii_digit).collect();
    let code: u64 = digits.parse().unwrap_or(0);
    let mut payload = (u64::from(category.code()) << 31) | (FLAG_IP << 27) | (code & 0x07FF_FFFF);
    let mut out = [b'0'; 9];
    for slot in out.iter_mut().rev() {
        *slot = BASE36[(payload % 36) as usize];
        payload /= 36;
    }
    format!("X-HM://{}{}", String::from_utf8_lossy(&out), setup_id)
}

/// What an `X-HM://` setup payload (a scanned QR code) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupPayload {
    /// The accessory category number.
    pub category: u8,
    /// The transport flags (2 = IP, 4 = BLE, 1 = NFC).
    pub flags: u8,
    /// The setup code: a secret, as on the label.
    pub code: SetupCode,
    pub setup_id: SetupId,
}

/// Parses an `X-HM://` setup payload (what [`setup_uri`] makes).
pub fn parse_setup_uri(uri: &str) -> Result<SetupPayload> {
    let bad = |reason: &str| Error::invalid("setup payload", reason.to_owned());
    let rest = uri.strip_prefix("X-HM://").ok_or_else(|| bad("it does not start with X-HM://"))?;
    if rest.len() != 13 || !rest.is_ascii() {
        return Err(bad("expected 9 base-36 characters and a 4-character setup ID"));
    }
    let (digits, id) = rest.split_at(9);
    let mut payload = 0u64;
    for c in digits.bytes() {
        let value = BASE36.iter().position(|b| *b == c).ok_or_else(|| bad("not base 36"))?;
        payload = payload * 36 + value as u64;
    }
    if payload >> 43 > 7 {
        return Err(bad("payload out of range"));
    }
    let code =
        SetupCode::parse(&format!("{:08}", payload & 0x07FF_FFFF)).map_err(|_| bad("bad setup code"))?;
    Ok(SetupPayload {
        category: ((payload >> 31) & 0xFF) as u8,
        flags: ((payload >> 27) & 0x0F) as u8,
        code,
        setup_id: SetupId::parse(id)?,
    })
}

/// A random accessory Device ID, `XX:XX:XX:XX:XX:XX` (the pairing identifier of the accessory).
pub(crate) fn random_device_id(rng: &mut dyn RandomSource) -> Result<String> {
    let mut bytes = [0u8; 6];
    rng.fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
}

/// A random version-4 UUID in upper case: a controller's pairing identifier (HAP-python insists
/// on a UUID, iOS uses upper case).
pub(crate) fn random_uuid(rng: &mut dyn RandomSource) -> Result<String> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)?;
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ironclad_pair::SystemRandom;

    use super::*;

    #[test]
    fn known_setup_uris() {
        // Published vectors (bridge over IP; a BLE outlet computed the same way, flags aside).
        let code = SetupCode::parse("031-45-154").unwrap();
        assert_eq!(
            setup_uri(Category::Bridge, &code, &SetupId::parse("ACMN").unwrap()),
            "X-HM://0023ISYWYACMN"
        );
        let code = SetupCode::parse("123-44-321").unwrap();
        assert_eq!(
            setup_uri(Category::Bridge, &code, &SetupId::parse("ACMN").unwrap()),
            "X-HM://0023OA51DACMN"
        );
        let code = SetupCode::parse("031-45-154").unwrap();
        assert_eq!(
            setup_uri(Category::Switch, &code, &SetupId::parse("ABCD").unwrap()),
            "X-HM://0080M54UAABCD"
        );
    }

    #[test]
    fn setup_payloads_round_trip() {
        let code = SetupCode::parse("031-45-154").unwrap();
        let parsed = parse_setup_uri("X-HM://0023ISYWYACMN").unwrap();
        assert_eq!(
            (parsed.category, parsed.flags, &parsed.code, parsed.setup_id.as_str()),
            (2, 2, &code, "ACMN")
        );
        let mut rng = SystemRandom;
        for _ in 0..50 {
            let code = SetupCode::random(&mut rng).unwrap();
            let id = SetupId::random(&mut rng).unwrap();
            let back = parse_setup_uri(&setup_uri(Category::Switch, &code, &id)).unwrap();
            assert_eq!((back.category, back.code, back.setup_id), (8, code, id));
        }
        for bad in
            ["X-HM://0023ISYWY", "x-hm://0023ISYWYACMN", "X-HM://0023ISYW*ACMN", "X-HM://ZZZZZZZZZACMN"]
        {
            assert!(parse_setup_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers() {
        let mut rng = SystemRandom;
        assert!(SetupId::parse(SetupId::random(&mut rng).unwrap().as_str()).is_ok());
        for bad in ["abcd", "ABC", "ABCDE", "AB-D"] {
            assert!(SetupId::parse(bad).is_err());
        }
        let id = random_device_id(&mut rng).unwrap();
        assert_eq!(id.len(), 17);
        let uuid = random_uuid(&mut rng).unwrap();
        assert_eq!((uuid.len(), &uuid[14..15]), (36, "4"));
    }
}
