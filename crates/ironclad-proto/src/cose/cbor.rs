//! Strict CBOR payload maps with small integer keys: decoded exactly once, every key known,
//! no duplicates, no trailing bytes; encoded deterministically (keys ascending, minimal ints).

use ciborium::Value;

use crate::error::{Error, Result};

/// Encodes a CBOR value (infallible for the values this crate builds).
pub(crate) fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail and every value here is finite.
    let _ = ciborium::ser::into_writer(value, &mut out);
    out
}

/// Decodes exactly one CBOR item from `bytes`.
pub(crate) fn from_slice(what: &'static str, bytes: &[u8]) -> Result<Value> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader(&mut rest)
        .map_err(|e| Error::Malformed { what, reason: format!("CBOR: {e}") })?;
    if !rest.is_empty() {
        return Err(Error::TrailingBytes { what });
    }
    Ok(value)
}

/// A deterministic map from `(key, value)` pairs given in ascending key order.
pub(crate) fn int_map(entries: Vec<(i64, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Integer(k.into()), v)).collect())
}

/// The fields of a decoded integer-keyed map, taken one by one; [`Fields::finish`] refuses any
/// key left over.
#[derive(Debug)]
pub(crate) struct Fields {
    what: &'static str,
    entries: Vec<(i64, Value)>,
}

impl Fields {
    /// Decodes `bytes` as one CBOR map with integer keys and no duplicates.
    pub(crate) fn decode(what: &'static str, bytes: &[u8]) -> Result<Self> {
        let Value::Map(map) = from_slice(what, bytes)? else {
            return Err(Error::Malformed { what, reason: "not a CBOR map".to_owned() });
        };
        let mut entries: Vec<(i64, Value)> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let key = k.as_integer().and_then(|i| i64::try_from(i).ok()).ok_or_else(|| Error::Malformed {
                what,
                reason: "map key is not a small integer".to_owned(),
            })?;
            if entries.iter().any(|(seen, _)| *seen == key) {
                return Err(Error::Malformed { what, reason: format!("duplicate key {key}") });
            }
            entries.push((key, v));
        }
        Ok(Self { what, entries })
    }

    fn take(&mut self, key: i64) -> Option<Value> {
        let at = self.entries.iter().position(|(k, _)| *k == key)?;
        Some(self.entries.swap_remove(at).1)
    }

    fn bad(&self, name: &str, expected: &str) -> Error {
        Error::Malformed { what: self.what, reason: format!("{name} must be {expected}") }
    }

    fn missing(&self, key: i64, name: &str) -> Error {
        Error::Malformed { what: self.what, reason: format!("missing {name} (key {key})") }
    }

    pub(crate) fn value(&mut self, key: i64, name: &str) -> Result<Value> {
        self.take(key).ok_or_else(|| self.missing(key, name))
    }

    pub(crate) fn uint(&mut self, key: i64, name: &str) -> Result<u64> {
        let v = self.value(key, name)?;
        v.as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| self.bad(name, "an unsigned integer"))
    }

    pub(crate) fn text(&mut self, key: i64, name: &str, max: usize) -> Result<String> {
        match self.value(key, name)? {
            Value::Text(t) if !t.is_empty() && t.len() <= max => Ok(t),
            _ => Err(self.bad(name, &format!("text of 1 to {max} bytes"))),
        }
    }

    pub(crate) fn bytes(&mut self, key: i64, name: &str, len: usize) -> Result<Vec<u8>> {
        match self.value(key, name)? {
            Value::Bytes(b) if b.len() == len => Ok(b),
            _ => Err(self.bad(name, &format!("a {len}-byte byte string"))),
        }
    }

    /// Refuses any key not taken: a signed field this version does not understand could carry
    /// a constraint it would silently ignore.
    pub(crate) fn finish(self) -> Result<()> {
        match self.entries.first() {
            None => Ok(()),
            Some((k, _)) => Err(Error::Malformed { what: self.what, reason: format!("unknown key {k}") }),
        }
    }
}
