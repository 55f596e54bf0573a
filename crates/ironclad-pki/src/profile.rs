//! The device-certificate profile: what goes into every device certificate, decided by the CA
//! operator and never by the request.

use time::{Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::error::{Error, Result};

/// OID of the product-family extension, `2.25.<UUID 23475cc4-20b8-4e76-b0a2-9edab7b0b881>`.
///
/// An X.667 UUID OID needs no registration. The extension is non-critical (verifiers that do not
/// know it ignore it) and its value is a DER `UTF8String` with the family/product name.
pub const FAMILY_EXTENSION_OID: &str = "2.25.46893514449957750261869592487436269697";

/// Content octets of [`FAMILY_EXTENSION_OID`] (what follows tag `06` and the length).
pub const FAMILY_EXTENSION_OID_DER: &[u8] = &[
    0x69, 0xc6, 0xc7, 0xae, 0xb1, 0x84, 0x8b, 0xc2, 0xb9, 0xed, 0xb0, 0xd1, 0xa7, 0xdb, 0xab, 0xbd, 0xc2,
    0xf1, 0x01,
];

/// Longest device ID accepted (the CN upper bound of RFC 5280 is 64 characters).
pub const MAX_DEVICE_ID_LEN: usize = 64;

/// A device ID that follows the rules: 1..=64 characters of `[A-Za-z0-9._:-]`.
///
/// The restricted alphabet keeps IDs safe in file names, URLs, SQL and log lines, and avoids
/// look-alike Unicode spellings of the same device.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Checks `id` against the rules.
    pub fn parse(id: &str) -> Result<Self> {
        validate_device_id(id)?;
        Ok(DeviceId(id.to_owned()))
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ID as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn validate_device_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::DeviceIdInvalid { reason: "empty" });
    }
    if id.len() > MAX_DEVICE_ID_LEN {
        return Err(Error::DeviceIdInvalid { reason: "longer than 64 characters" });
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')) {
        return Err(Error::DeviceIdInvalid { reason: "character outside [A-Za-z0-9._:-]" });
    }
    Ok(())
}

/// How long a device certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Validity {
    /// Calendar years from notBefore (the seed's sample certificate used 30 years).
    Years(u16),
    /// A fixed span, for short-lived operational certificates.
    Duration(Duration),
    /// `99991231235959Z`, RFC 5280's "no well-defined expiration date" (Matter allows it for
    /// DACs): the device identity lives as long as the device.
    NoWellDefinedExpiry,
}

/// The notAfter of [`Validity::NoWellDefinedExpiry`].
pub const NO_WELL_DEFINED_EXPIRY: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

impl Validity {
    /// The notAfter for a certificate starting at `not_before`.
    pub fn not_after(&self, not_before: OffsetDateTime) -> Result<OffsetDateTime> {
        let end = match *self {
            Validity::Years(0) => {
                return Err(Error::ValidityInvalid { reason: "zero years" });
            }
            Validity::Years(years) => add_years(not_before, years)?,
            Validity::Duration(d) if d <= Duration::ZERO => {
                return Err(Error::ValidityInvalid { reason: "duration is not positive" });
            }
            Validity::Duration(d) => {
                not_before.checked_add(d).ok_or(Error::ValidityInvalid { reason: "overflow" })?
            }
            Validity::NoWellDefinedExpiry => NO_WELL_DEFINED_EXPIRY,
        };
        if end > NO_WELL_DEFINED_EXPIRY {
            return Err(Error::ValidityInvalid { reason: "ends after 9999-12-31" });
        }
        Ok(end)
    }
}

/// Adds calendar years; 29 February becomes 28 February in a non-leap year.
pub(crate) fn add_years(t: OffsetDateTime, years: u16) -> Result<OffsetDateTime> {
    let year = t.year() + i32::from(years);
    if year > 9999 {
        return Err(Error::ValidityInvalid { reason: "ends after 9999-12-31" });
    }
    let day = if t.month() == Month::February && t.day() == 29 && !time::util::is_leap_year(year) {
        28
    } else {
        t.day()
    };
    let date = time::Date::from_calendar_date(year, t.month(), day)
        .map_err(|_| Error::ValidityInvalid { reason: "overflow" })?;
    Ok(PrimitiveDateTime::new(date, t.time()).assume_utc())
}

/// Truncates to whole seconds in UTC, as X.509 times carry no fractions.
pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_time(Time::from_hms(t.hour(), t.minute(), t.second()).unwrap_or(Time::MIDNIGHT))
}

/// Default backdating of a device certificate's notBefore, for devices whose clock lags.
pub const DEFAULT_BACKDATE: Duration = Duration::minutes(1);

/// What every device certificate of one product family contains.
///
/// Subject: `C`, `O` from here and `CN` = device ID. Extensions (fixed, after Matter's DAC
/// profile): basicConstraints CA:FALSE (critical), keyUsage digitalSignature (critical),
/// extendedKeyUsage clientAuth, subjectKeyIdentifier, authorityKeyIdentifier and the family
/// extension ([`FAMILY_EXTENSION_OID`], non-critical). Nothing from the CSR except the public
/// key and the CN is ever copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceProfile {
    organization: String,
    country: String,
    family: String,
    validity: Validity,
    backdate: Duration,
}

impl DeviceProfile {
    /// Builds a profile, checking each field. `country` is an ISO 3166 two-letter code.
    pub fn new(organization: &str, country: &str, family: &str, validity: Validity) -> Result<Self> {
        validate_text("organization", organization)?;
        validate_country(country)?;
        validate_text("family", family)?;
        // Reject impossible validities up front rather than on the first issuance.
        validity.not_after(time::macros::datetime!(2000-01-01 0:00 UTC))?;
        Ok(DeviceProfile {
            organization: organization.to_owned(),
            country: country.to_owned(),
            family: family.to_owned(),
            validity,
            backdate: DEFAULT_BACKDATE,
        })
    }

    /// Sets how far notBefore lies before the issuance time (default [`DEFAULT_BACKDATE`],
    /// at most one day).
    pub fn with_backdate(mut self, backdate: Duration) -> Result<Self> {
        if backdate < Duration::ZERO || backdate > Duration::days(1) {
            return Err(Error::ValidityInvalid { reason: "backdate must be between 0 and 1 day" });
        }
        self.backdate = backdate;
        Ok(self)
    }

    /// Subject organization (O).
    pub fn organization(&self) -> &str {
        &self.organization
    }

    /// Subject country (C).
    pub fn country(&self) -> &str {
        &self.country
    }

    /// Product family written into the family extension.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// Validity of issued certificates.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// notBefore backdating.
    pub fn backdate(&self) -> Duration {
        self.backdate
    }

    /// (notBefore, notAfter) for a certificate issued at `now`.
    pub fn validity_window(&self, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let not_before = whole_seconds(
            now.checked_sub(self.backdate).ok_or(Error::ValidityInvalid { reason: "time out of range" })?,
        );
        if not_before.year() < 1950 {
            return Err(Error::ValidityInvalid { reason: "notBefore before 1950" });
        }
        Ok((not_before, self.validity.not_after(not_before)?))
    }
}

/// Organization, family and CA common names: 1..=64 characters, no control characters.
pub(crate) fn validate_text(field: &'static str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::NameInvalid { field, reason: "empty" });
    }
    if s.chars().count() > 64 {
        return Err(Error::NameInvalid { field, reason: "longer than 64 characters" });
    }
    if s.chars().any(char::is_control) {
        return Err(Error::NameInvalid { field, reason: "contains control characters" });
    }
    Ok(())
}

/// Country: exactly two upper-case ASCII letters (a PrintableString).
pub(crate) fn validate_country(c: &str) -> Result<()> {
    if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Error::NameInvalid { field: "country", reason: "not two upper-case letters" })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn family_oid_bytes_match_the_dotted_form() {
        assert_eq!(crate::der::oid_to_string(FAMILY_EXTENSION_OID_DER).unwrap(), FAMILY_EXTENSION_OID);
        let uuid = u128::from_str_radix("23475cc420b84e76b0a29edab7b0b881", 16).unwrap();
        assert_eq!(FAMILY_EXTENSION_OID, format!("2.25.{uuid}"));
    }

    #[test]
    fn device_ids() {
        for ok in ["a", "cam-0001", "AB.cd_ef:01-x", &"x".repeat(64)] {
            assert!(DeviceId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", &"x".repeat(65), "a b", "ü", "a/b", "a\0", "cam,O=evil"] {
            assert!(matches!(DeviceId::parse(bad), Err(Error::DeviceIdInvalid { .. })), "{bad:?}");
        }
    }

    #[test]
    fn validity_arithmetic() {
        let t = datetime!(2024-02-29 12:00:00 UTC);
        assert_eq!(Validity::Years(30).not_after(t).unwrap(), datetime!(2054-02-28 12:00:00 UTC));
        assert_eq!(
            Validity::Duration(Duration::days(1)).not_after(t).unwrap(),
            datetime!(2024-03-01 12:00:00 UTC)
        );
        assert_eq!(Validity::NoWellDefinedExpiry.not_after(t).unwrap(), NO_WELL_DEFINED_EXPIRY);
        assert!(Validity::Years(0).not_after(t).is_err());
        assert!(Validity::Years(9000).not_after(t).is_err());
        assert!(Validity::Duration(Duration::ZERO).not_after(t).is_err());
    }

    #[test]
    fn profile_rules() {
        assert!(DeviceProfile::new("Acme", "DE", "Cam", Validity::Years(30)).is_ok());
        assert!(DeviceProfile::new("", "DE", "Cam", Validity::Years(30)).is_err());
        assert!(DeviceProfile::new("Acme", "de", "Cam", Validity::Years(30)).is_err());
        assert!(DeviceProfile::new("Acme", "DEU", "Cam", Validity::Years(30)).is_err());
        assert!(DeviceProfile::new("Acme", "DE", "a\nb", Validity::Years(30)).is_err());
        assert!(DeviceProfile::new("Acme", "DE", "Cam", Validity::Years(0)).is_err());
        let p = DeviceProfile::new("Acme", "DE", "Cam", Validity::Years(1)).unwrap();
        let (nb, na) = p.validity_window(datetime!(2030-01-01 0:00:30.5 UTC)).unwrap();
        assert_eq!(nb, datetime!(2029-12-31 23:59:30 UTC));
        assert_eq!(na, datetime!(2030-12-31 23:59:30 UTC));
        assert!(p.clone().with_backdate(Duration::days(2)).is_err());
        let ancient = OffsetDateTime::new_utc(time::Date::MIN, Time::MIDNIGHT);
        assert!(p.validity_window(ancient).is_err());
        assert!(p.validity_window(datetime!(1949-12-31 0:00 UTC)).is_err());
    }
}
