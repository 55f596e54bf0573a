//! OTA manifests: a COSE_Sign1 the server's manifest key signs for each release it offers, bound
//! to the image by size and SHA-256 digest, to a product class, and to an expiry (against freeze
//! attacks). `SignedManifest::parse(bytes)?.verify(keys, policy)?` yields a [`VerifiedManifest`];
//! only that can be installed, after [`VerifiedManifest::check_security_counter`] and
//! [`VerifiedManifest::check_image`].

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use ciborium::Value;

use crate::cose::cbor::{Fields, int_map, to_vec};
use crate::cose::keys::{CoseSigner, TrustedKeys};
use crate::cose::{Limits, Sign1, sign1};
use crate::error::{Error, Result};

/// The protected content type of a manifest.
pub const MANIFEST_CONTENT_TYPE: &str = "application/vnd.ironclad.manifest+cbor";

const VERSION: i64 = 1;
const SECURITY_COUNTER: i64 = 2;
const IMAGE_SIZE: i64 = 3;
const IMAGE_DIGEST: i64 = 4;
const ISSUED_AT: i64 = 5;
const EXPIRES: i64 = 6;
const PRODUCT_CLASS: i64 = 7;
const IMAGE_ID: i64 = 8;

/// Longest text field (version, product class, image id).
pub(crate) const MAX_TEXT_LEN: usize = 128;

/// A release version as Semantic Versioning 2.0.0 text, build metadata included
/// (`1.1.0`, `2.0.0-rc.1+build.7`; MCUboot's `1.2.3+4` is one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReleaseVersion {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
    /// Pre-release identifiers after `-`, if any.
    pub pre: Option<String>,
    /// Build metadata after `+`, if any (ignored by precedence).
    pub build: Option<String>,
}

impl ReleaseVersion {
    /// SemVer precedence (§11): numbers, then a pre-release sorts before the release, then
    /// identifier by identifier; build metadata is ignored.
    pub fn precedence(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(
            || match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => {
                    let mut a = a.split('.');
                    let mut b = b.split('.');
                    loop {
                        match (a.next(), b.next()) {
                            (None, None) => return Ordering::Equal,
                            (None, Some(_)) => return Ordering::Less,
                            (Some(_), None) => return Ordering::Greater,
                            (Some(x), Some(y)) => {
                                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                                    (Ok(x), Ok(y)) => x.cmp(&y),
                                    (Ok(_), Err(_)) => Ordering::Less,
                                    (Err(_), Ok(_)) => Ordering::Greater,
                                    (Err(_), Err(_)) => x.cmp(y),
                                };
                                if ord != Ordering::Equal {
                                    return ord;
                                }
                            }
                        }
                    }
                }
            },
        )
    }
}

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl FromStr for ReleaseVersion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad =
            |reason: &str| Error::Malformed { what: "release version", reason: format!("{s:?}: {reason}") };
        if s.len() > MAX_TEXT_LEN {
            return Err(bad("too long"));
        }
        let (rest, build) = match s.split_once('+') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (rest, None),
        };
        let numeric = |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        let ident_ok =
            |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let no_leading_zero = |id: &str| !(id.len() > 1 && id.starts_with('0'));
        let parts: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(bad("expected MAJOR.MINOR.PATCH"));
        };
        let mut nums = [0u64; 3];
        for (slot, part) in nums.iter_mut().zip([major, minor, patch]) {
            if !numeric(part) || !no_leading_zero(part) {
                return Err(bad("version numbers are digits without leading zeros"));
            }
            *slot = part.parse().map_err(|_| bad("version number too large"))?;
        }
        if pre.is_some_and(|pre| {
            !pre.split('.').all(|id| ident_ok(id) && (!numeric(id) || no_leading_zero(id)))
        }) {
            return Err(bad("bad pre-release identifier"));
        }
        if build.is_some_and(|build| !build.split('.').all(ident_ok)) {
            return Err(bad("bad build identifier"));
        }
        Ok(Self {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre: pre.map(str::to_owned),
            build: build.map(str::to_owned),
        })
    }
}

/// What a manifest says. Field numbers are the CBOR map keys (docs/protocol.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// 1: the release version (SemVer text).
    pub version: ReleaseVersion,
    /// 2: the security counter (MCUboot `SEC_CNT`): a device refuses any lower one.
    pub security_counter: u64,
    /// 3: size of the signed image in bytes.
    pub image_size: u64,
    /// 4: SHA-256 of the signed image (the bytes the device downloads).
    pub image_digest: [u8; 32],
    /// 5: when the manifest was signed, seconds since the Unix epoch.
    pub issued_at: u64,
    /// 6: after this instant (seconds since the Unix epoch) the manifest is refused.
    pub expires: u64,
    /// 7: the product class the image is for; a device of another class refuses it.
    pub product_class: String,
    /// 8: the server's id of the image (to name the download).
    pub image_id: String,
}

impl Manifest {
    /// The CBOR payload.
    pub fn to_cbor(&self) -> Vec<u8> {
        to_vec(&int_map(vec![
            (VERSION, Value::Text(self.version.to_string())),
            (SECURITY_COUNTER, self.security_counter.into()),
            (IMAGE_SIZE, self.image_size.into()),
            (IMAGE_DIGEST, Value::Bytes(self.image_digest.to_vec())),
            (ISSUED_AT, self.issued_at.into()),
            (EXPIRES, self.expires.into()),
            (PRODUCT_CLASS, Value::Text(self.product_class.clone())),
            (IMAGE_ID, Value::Text(self.image_id.clone())),
        ]))
    }

    /// Decodes a payload (any unknown key is refused).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self> {
        let what = "manifest";
        let mut f = Fields::decode(what, bytes)?;
        let version = f.text(VERSION, "version", MAX_TEXT_LEN)?.parse()?;
        let security_counter = f.uint(SECURITY_COUNTER, "security counter")?;
        let image_size = f.uint(IMAGE_SIZE, "image size")?;
        let digest = f.bytes(IMAGE_DIGEST, "image digest", 32)?;
        let issued_at = f.uint(ISSUED_AT, "issued-at")?;
        let expires = f.uint(EXPIRES, "expiry")?;
        let product_class = f.text(PRODUCT_CLASS, "product class", MAX_TEXT_LEN)?;
        let image_id = f.text(IMAGE_ID, "image id", MAX_TEXT_LEN)?;
        f.finish()?;
        if issued_at > expires {
            return Err(Error::Malformed { what, reason: "issued after it expires".to_owned() });
        }
        let mut image_digest = [0u8; 32];
        image_digest.copy_from_slice(&digest);
        Ok(Self {
            version,
            security_counter,
            image_size,
            image_digest,
            issued_at,
            expires,
            product_class,
            image_id,
        })
    }

    /// Signs the manifest as a tagged COSE_Sign1 with protected `{alg, content type, kid}`.
    pub fn sign(&self, signer: &dyn CoseSigner, kid: &[u8]) -> Result<Vec<u8>> {
        sign1(signer, kid, MANIFEST_CONTENT_TYPE, self.to_cbor())
    }
}

/// What the device checks a manifest against besides the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestPolicy<'a> {
    /// The device's clock, seconds since the Unix epoch.
    pub now: u64,
    /// The device's product class.
    pub product_class: &'a str,
}

/// A parsed manifest envelope whose signature is not checked yet.
#[derive(Clone, Debug)]
pub struct SignedManifest {
    env: Sign1,
}

impl SignedManifest {
    /// Parses the COSE_Sign1 envelope (size, tag, headers, content type). The payload is
    /// decoded only after the signature verifies.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self> {
        Ok(Self { env: Sign1::parse("manifest", bytes, limits.max_signed_len, MANIFEST_CONTENT_TYPE)? })
    }

    /// The signer's key id (unauthenticated until verified).
    pub fn kid(&self) -> &[u8] {
        self.env.kid()
    }

    /// Verifies the signature with the key named by the kid, then the payload, the expiry
    /// (`now < expires`) and the product class.
    pub fn verify(self, keys: &TrustedKeys, policy: &ManifestPolicy<'_>) -> Result<VerifiedManifest> {
        self.env.verify_with(keys)?;
        let manifest = Manifest::from_cbor(self.env.payload())?;
        if policy.now >= manifest.expires {
            return Err(Error::Expired { expires: manifest.expires, now: policy.now });
        }
        if manifest.product_class != policy.product_class {
            return Err(Error::WrongProductClass {
                expected: policy.product_class.to_owned(),
                found: manifest.product_class,
            });
        }
        Ok(VerifiedManifest { manifest, kid: self.env.kid().to_vec() })
    }
}

/// A manifest whose signature, expiry and product class checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedManifest {
    manifest: Manifest,
    kid: Vec<u8>,
}

impl VerifiedManifest {
    /// The verified contents.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The id of the key that signed it.
    pub fn kid(&self) -> &[u8] {
        &self.kid
    }

    /// Refuses a downgrade: the manifest's security counter must be at least the device's
    /// `current` one (equal is a same-epoch update, as MCUboot allows).
    pub fn check_security_counter(&self, current: u64) -> Result<()> {
        if self.manifest.security_counter < current {
            return Err(Error::Downgrade { current, offered: self.manifest.security_counter });
        }
        Ok(())
    }

    /// Checks a downloaded image against the signed size and SHA-256 digest.
    pub fn check_image(&self, size: u64, sha256: &[u8; 32]) -> Result<()> {
        if size != self.manifest.image_size {
            return Err(Error::ImageMismatch { field: "size" });
        }
        if aws_lc_rs::constant_time::verify_slices_are_equal(sha256, &self.manifest.image_digest).is_err() {
            return Err(Error::ImageMismatch { field: "SHA-256 digest" });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn semver_parse_and_precedence() {
        for good in ["1.1.0", "0.0.0", "1.2.3+4", "2.0.0-rc.1+build.7", "1.0.0-alpha-1.0a"] {
            assert_eq!(good.parse::<ReleaseVersion>().unwrap().to_string(), good);
        }
        for bad in ["1.1", "01.1.0", "1.1.0-", "1.1.0+", "1.1.0-01", "1.x.0", "1.1.0+a..b", ""] {
            assert!(bad.parse::<ReleaseVersion>().is_err(), "{bad}");
        }
        let v = |s: &str| s.parse::<ReleaseVersion>().unwrap();
        let order =
            ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0"];
        for pair in order.windows(2) {
            assert_eq!(v(pair[0]).precedence(&v(pair[1])), Ordering::Less, "{pair:?}");
        }
        assert_eq!(v("1.2.3+4").precedence(&v("1.2.3+5")), Ordering::Equal);
    }
}
