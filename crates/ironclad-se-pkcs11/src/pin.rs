//! The token's user PIN. It comes from an environment variable or a file, never from argv
//! (which `ps` shows to every user), lives in a zeroized buffer, and is dropped after login.

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::Pkcs11Error;

/// A user PIN. `Debug` never shows it.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// A PIN the caller already holds (read from a prompt or a secret store, not from argv).
    pub fn new(pin: impl Into<String>) -> Self {
        Self(Zeroizing::new(pin.into()))
    }

    /// Reads the PIN from environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, Pkcs11Error> {
        let err = |reason: &str| Pkcs11Error::Pin { source_name: format!("${var}"), reason: reason.into() };
        let value = Zeroizing::new(std::env::var(var).map_err(|_| err("not set (or not UTF-8)"))?);
        Self::checked(value.as_str()).map_err(err)
    }

    /// Reads the PIN from the first line of `path` (the file should be mode 0600).
    pub fn from_file(path: &Path) -> Result<Self, Pkcs11Error> {
        let err = |reason: String| Pkcs11Error::Pin { source_name: path.display().to_string(), reason };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        Self::checked(text.lines().next().unwrap_or_default()).map_err(|reason| err(reason.into()))
    }

    /// Resolves an RFC 7512 `pin-source`: `file:/path`, `file:///path` or a plain path.
    pub fn from_pin_source(source: &str) -> Result<Self, Pkcs11Error> {
        let path = source.strip_prefix("file://").or_else(|| source.strip_prefix("file:")).unwrap_or(source);
        if path.starts_with('|') {
            return Err(Pkcs11Error::Pin {
                source_name: "pin-source".into(),
                reason: "commands as PIN sources are not supported; use a file".into(),
            });
        }
        Self::from_file(Path::new(path))
    }

    fn checked(pin: &str) -> Result<Self, &'static str> {
        if pin.is_empty() {
            return Err("the PIN is empty");
        }
        Ok(Self::new(pin))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_first_line_of_a_file_and_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "s3cret-pin\nignored\n").unwrap();
        let pin = Pin::from_file(&path).unwrap();
        assert_eq!(pin.expose(), "s3cret-pin");
        assert!(!format!("{pin:?}").contains("s3cret"));
        let source = format!("file:{}", path.display());
        assert_eq!(Pin::from_pin_source(&source).unwrap().expose(), "s3cret-pin");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(Pin::from_file(&path), Err(Pkcs11Error::Pin { .. })));
        let missing = Pin::from_env("IRONCLAD_TEST_SURELY_UNSET_PIN_VARIABLE").unwrap_err().to_string();
        assert!(missing.contains("IRONCLAD_TEST_SURELY_UNSET_PIN_VARIABLE"), "{missing}");
    }
}
