//! PKCS#11 URIs (RFC 7512): how keys and tokens are named on the command line and in
//! `pki.json`, e.g. `pkcs11:token=ironclad;object=ca-line-1;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so`.
//!
//! Values are percent-decoded; attributes this crate does not use (`library-*`, `slot-*`
//! other than `slot-id`, vendor `x-*`) are accepted and ignored, as the RFC asks. `pin-value`
//! is refused: a PIN written into a URI ends up in argv, shell history and configuration files.

use std::fmt;
use std::path::PathBuf;

use crate::error::Pkcs11Error;

/// The `type` path attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    Public,
    Private,
    Cert,
    SecretKey,
    Data,
}

impl ObjectType {
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Public => "public",
            ObjectType::Private => "private",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [ObjectType::Public, ObjectType::Private, ObjectType::Cert, ObjectType::SecretKey, ObjectType::Data]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// A parsed RFC 7512 URI. Only the attributes ironclad acts on are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `manufacturer`: the token's manufacturer ID.
    pub manufacturer: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    /// `slot-id`: the slot number.
    pub slot_id: Option<u64>,
    /// `object`: the object label (for ironclad, the key's `Label`).
    pub object: Option<String>,
    /// `type`: the object class.
    pub object_type: Option<ObjectType>,
    /// `id`: the raw CKA_ID bytes.
    pub id: Option<Vec<u8>>,
    /// `module-path` (query): the PKCS#11 library to load.
    pub module_path: Option<PathBuf>,
    /// `module-name` (query): the library's name without directory or suffix.
    pub module_name: Option<String>,
    /// `pin-source` (query): where to read the PIN, e.g. `file:/run/secrets/hsm-pin`.
    pub pin_source: Option<String>,
}

const SCHEME: &str = "pkcs11:";

impl Pkcs11Uri {
    /// Parses a URI. Errors name the attribute (or the part of the URI) that is wrong.
    pub fn parse(text: &str) -> Result<Self, Pkcs11Error> {
        let err = |part: &str, reason| Pkcs11Error::Uri { part: part.to_owned(), reason };
        let rest = match text.get(..SCHEME.len()) {
            Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => &text[SCHEME.len()..],
            _ => return Err(err("scheme", "a PKCS#11 URI starts with `pkcs11:`")),
        };
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, raw) = attr.split_once('=').ok_or_else(|| err(attr, "expected name=value"))?;
            let value = percent_decode(raw).map_err(|reason| err(name, reason))?;
            let text = || String::from_utf8(value.clone()).map_err(|_| err(name, "value is not UTF-8"));
            match name {
                "token" => set(&mut uri.token, text()?, name)?,
                "manufacturer" => set(&mut uri.manufacturer, text()?, name)?,
                "serial" => set(&mut uri.serial, text()?, name)?,
                "model" => set(&mut uri.model, text()?, name)?,
                "object" => set(&mut uri.object, text()?, name)?,
                "id" => set(&mut uri.id, value, name)?,
                "slot-id" => {
                    let id = text()?.parse().map_err(|_| err(name, "expected a decimal slot number"))?;
                    set(&mut uri.slot_id, id, name)?;
                }
                "type" => {
                    let kind = ObjectType::from_name(&text()?)
                        .ok_or_else(|| err(name, "expected public, private, cert, secret-key or data"))?;
                    set(&mut uri.object_type, kind, name)?;
                }
                _ if is_attr_name(name) => {} // RFC 7512: ignore attributes we do not know.
                _ => return Err(err(name, "not a valid attribute name")),
            }
        }
        for attr in query.into_iter().flat_map(|q| q.split('&')).filter(|a| !a.is_empty()) {
            let (name, raw) = attr.split_once('=').ok_or_else(|| err(attr, "expected name=value"))?;
            let value = percent_decode(raw).map_err(|reason| err(name, reason))?;
            let text = || String::from_utf8(value.clone()).map_err(|_| err(name, "value is not UTF-8"));
            match name {
                "module-path" => set(&mut uri.module_path, PathBuf::from(text()?), name)?,
                "module-name" => set(&mut uri.module_name, text()?, name)?,
                "pin-source" => set(&mut uri.pin_source, text()?, name)?,
                "pin-value" => {
                    return Err(err(
                        name,
                        "PINs are not accepted in URIs (they leak through argv and files); use pin-source, --pin-file or --pin-env",
                    ));
                }
                _ if is_attr_name(name) => {}
                _ => return Err(err(name, "not a valid attribute name")),
            }
        }
        Ok(uri)
    }

    /// The same URI without `pin-source` (for storing where the PIN file may not outlive it).
    pub fn without_pin_source(&self) -> Self {
        Self { pin_source: None, ..self.clone() }
    }

    /// The same URI naming `object` (and nothing else about the object).
    pub fn with_object(&self, object: &str) -> Self {
        Self { object: Some(object.to_owned()), object_type: None, id: None, ..self.clone() }
    }
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = Pkcs11Error;
    fn from_str(s: &str) -> Result<Self, Pkcs11Error> {
        Self::parse(s)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path: Vec<String> = Vec::new();
        let mut push = |name: &str, value: Option<&[u8]>, all: bool| {
            if let Some(v) = value {
                path.push(format!("{name}={}", percent_encode(v, all, false)));
            }
        };
        push("token", self.token.as_deref().map(str::as_bytes), false);
        push("manufacturer", self.manufacturer.as_deref().map(str::as_bytes), false);
        push("serial", self.serial.as_deref().map(str::as_bytes), false);
        push("model", self.model.as_deref().map(str::as_bytes), false);
        let slot = self.slot_id.map(|s| s.to_string());
        push("slot-id", slot.as_deref().map(str::as_bytes), false);
        push("object", self.object.as_deref().map(str::as_bytes), false);
        push("type", self.object_type.map(|t| t.name().as_bytes()), false);
        push("id", self.id.as_deref(), true);
        write!(f, "{SCHEME}{}", path.join(";"))?;
        let module_path = self.module_path.as_ref().map(|p| p.to_string_lossy().into_owned());
        let query: Vec<String> = [
            ("module-path", module_path.as_deref()),
            ("module-name", self.module_name.as_deref()),
            ("pin-source", self.pin_source.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name}={}", percent_encode(v.as_bytes(), false, true))))
        .collect();
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

fn set<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), Pkcs11Error> {
    if slot.is_some() {
        return Err(Pkcs11Error::Uri { part: name.to_owned(), reason: "attribute given twice" });
    }
    *slot = Some(value);
    Ok(())
}

fn is_attr_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn percent_decode(raw: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape (expected two hex digits)")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Encodes everything but RFC 3986 unreserved characters (and, in the query, `/` and `:`, so
/// module paths stay readable); `all` encodes every byte (for `id`).
fn percent_encode(bytes: &[u8], all: bool, query: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (query && matches!(b, b'/' | b':'));
        if plain && !all {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_rfc_examples_we_use() {
        let uri = Pkcs11Uri::parse("pkcs11:token=ironclad;object=ca-line-1;type=private").unwrap();
        assert_eq!(uri.token.as_deref(), Some("ironclad"));
        assert_eq!(uri.object.as_deref(), Some("ca-line-1"));
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(uri.module_path.as_deref(), Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so")));
        assert_eq!(uri.pin_source.as_deref(), Some("file:/run/pin"));
        // RFC 7512 §6 example with attributes we ignore.
        let uri = Pkcs11Uri::parse(
            "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-version=1;x-vendor=1;slot-id=7?x-q=2",
        )
        .unwrap();
        assert_eq!(uri.slot_id, Some(7));
        assert_eq!(uri.token, None);
        assert_eq!(Pkcs11Uri::parse("pkcs11:").unwrap(), Pkcs11Uri::default());
    }

    #[test]
    fn errors_name_the_bad_part() {
        let part = |text: &str| match Pkcs11Uri::parse(text) {
            Err(Pkcs11Error::Uri { part, .. }) => part,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(part("pkcs12:token=a"), "scheme");
        assert_eq!(part("pkcs11:token=a;object=%4"), "object");
        assert_eq!(part("pkcs11:token=a;object=%zz"), "object");
        assert_eq!(part("pkcs11:token=a;token=b"), "token");
        assert_eq!(part("pkcs11:type=key"), "type");
        assert_eq!(part("pkcs11:slot-id=x"), "slot-id");
        assert_eq!(part("pkcs11:token"), "token");
        assert_eq!(part("pkcs11:token=a?pin-value=1234"), "pin-value");
        assert_eq!(part("pkcs11:token=%ff"), "token");
        let message = Pkcs11Uri::parse("pkcs11:token=a?pin-value=1234").unwrap_err().to_string();
        assert!(!message.contains("1234"), "{message}");
    }

    #[test]
    fn display_round_trips() {
        let text = "pkcs11:token=my%20token;object=ca-line-1;type=private;id=%01%FF?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin";
        let uri = Pkcs11Uri::parse(text).unwrap();
        assert_eq!(uri.to_string(), text);
        assert_eq!(uri.without_pin_source().pin_source, None);
        assert!(uri.with_object("root").to_string().contains("object=root"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "pkcs11:[ -~]{0,80}") {
            let _ = Pkcs11Uri::parse(&text);
        }

        #[test]
        fn round_trips(token in proptest::option::of("[ -~]{1,20}"), object in proptest::option::of("[ -~]{1,20}"),
                       id in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 1..8)),
                       path in proptest::option::of("/[a-z0-9/._ -]{1,30}"), slot in proptest::option::of(0u64..1000)) {
            let uri = Pkcs11Uri { token, object, id, slot_id: slot, module_path: path.map(PathBuf::from), ..Default::default() };
            proptest::prop_assert_eq!(Pkcs11Uri::parse(&uri.to_string()).unwrap(), uri);
        }
    }
}
