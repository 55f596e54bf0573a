//! Cloud delegation: over a verified session, the user's controller hands the device what it
//! needs to reach the user's cloud account — the server's URL, the server's trust anchor (CA
//! certificates, PEM) and an opaque account claim token — and the device keeps it sealed in its
//! secure element until it connects.
//!
//! Encoding (a TLV8 body; types are this module's own):
//!
//! ```text
//! 0x01 Version = 1   0x02 Endpoint (https URL)   0x03 TrustAnchor (PEM)   0x04 ClaimToken
//! 0x05 DelegatedBy (only in the sealed record: the controller that sent it)
//! ```
//!
//! Decoding is strict: each item once, no unknown items, every field within [`DelegationLimits`]
//! and well-formed; anything else is refused with [`Error::Delegation`]. The X.509 check of the
//! trust anchor belongs to the caller (this crate parses no certificates).

use std::fmt;
use std::sync::{Arc, Mutex};

use ironclad_se::{Label, SecureElement};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::PairingId;
use crate::tlv8::{Tlv8, Tlv8Writer};

/// The encoding version this crate writes and reads.
pub const VERSION: u8 = 1;

/// TLV types of a delegation.
pub mod tags {
    pub const VERSION: u8 = 0x01;
    pub const ENDPOINT: u8 = 0x02;
    pub const TRUST_ANCHOR: u8 = 0x03;
    pub const CLAIM_TOKEN: u8 = 0x04;
    pub const DELEGATED_BY: u8 = 0x05;
}

/// Size limits of a delegation's fields, in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegationLimits {
    /// The server URL. Default 256.
    pub max_endpoint: usize,
    /// The trust anchor PEM (a CA certificate or a short chain). Default 12 KiB.
    pub max_trust_anchor: usize,
    /// The claim token. Default 1 KiB.
    pub max_claim_token: usize,
}

impl Default for DelegationLimits {
    fn default() -> Self {
        DelegationLimits { max_endpoint: 256, max_trust_anchor: 12 * 1024, max_claim_token: 1024 }
    }
}

impl DelegationLimits {
    /// The longest encoding these limits admit (fields plus TLV8 headers), so a transport can
    /// refuse bigger bodies before decoding.
    pub fn max_encoded(&self) -> usize {
        let tlv = |len: usize| len + 2 * len.div_ceil(255).max(1);
        tlv(1) + tlv(self.max_endpoint) + tlv(self.max_trust_anchor) + tlv(self.max_claim_token)
    }
}

/// The server a delegation points at: `https://host[:port][/path]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// DNS name or IP address (IPv6 without brackets); also the name checked in the server's
    /// certificate.
    pub host: String,
    /// Port, 443 when the URL has none.
    pub port: u16,
}

/// Where the device's cloud account is and how to recognise and claim it.
#[derive(Clone, PartialEq, Eq)]
pub struct CloudDelegation {
    endpoint: String,
    trust_anchor_pem: String,
    claim_token: Zeroizing<String>,
}

impl fmt::Debug for CloudDelegation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudDelegation")
            .field("endpoint", &self.endpoint)
            .field("trust_anchor_pem", &format_args!("{} bytes", self.trust_anchor_pem.len()))
            .field("claim_token", &"***")
            .finish()
    }
}

fn refuse(reason: impl Into<String>) -> Error {
    Error::Delegation(reason.into())
}

/// Visible ASCII, no spaces or controls: nothing that could break out of a URL or a header.
fn visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn parse_endpoint(url: &str) -> Result<Endpoint> {
    let rest = url.strip_prefix("https://").ok_or_else(|| refuse("the endpoint must be an https:// URL"))?;
    if !visible_ascii(rest) {
        return Err(refuse("the endpoint contains spaces, controls or non-ASCII characters"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(refuse("the endpoint must not carry user information"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| refuse("unterminated IPv6 address"))?;
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(refuse("malformed IPv6 address"));
        }
        (host, after.strip_prefix(':').map(Some).unwrap_or(if after.is_empty() { None } else { Some("") }))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || (!host.contains(':') && !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    {
        return Err(refuse("malformed host in the endpoint"));
    }
    let port = match port {
        None => 443,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 && !p.starts_with('+') => port,
            _ => return Err(refuse("malformed port in the endpoint")),
        },
    };
    Ok(Endpoint { host: host.to_owned(), port })
}

fn check_anchor(pem: &str) -> Result<()> {
    if !pem.is_ascii() {
        return Err(refuse("the trust anchor is not ASCII PEM"));
    }
    let begin = pem.find("-----BEGIN CERTIFICATE-----");
    let end = pem.rfind("-----END CERTIFICATE-----");
    match (begin, end) {
        (Some(b), Some(e)) if b < e => Ok(()),
        _ => Err(refuse("the trust anchor holds no PEM certificate")),
    }
}

impl CloudDelegation {
    /// Checks every field against the default [`DelegationLimits`].
    pub fn new(
        endpoint: impl Into<String>,
        trust_anchor_pem: impl Into<String>,
        claim_token: impl Into<String>,
    ) -> Result<Self> {
        let delegation = CloudDelegation {
            endpoint: endpoint.into(),
            trust_anchor_pem: trust_anchor_pem.into(),
            claim_token: Zeroizing::new(claim_token.into()),
        };
        delegation.check(&DelegationLimits::default())?;
        Ok(delegation)
    }

    fn check(&self, limits: &DelegationLimits) -> Result<()> {
        let over = |what: &str, len: usize, max: usize| {
            if len > max { Err(refuse(format!("{what} of {len} bytes exceeds {max}"))) } else { Ok(()) }
        };
        over("endpoint", self.endpoint.len(), limits.max_endpoint)?;
        over("trust anchor", self.trust_anchor_pem.len(), limits.max_trust_anchor)?;
        over("claim token", self.claim_token.len(), limits.max_claim_token)?;
        parse_endpoint(&self.endpoint)?;
        check_anchor(&self.trust_anchor_pem)?;
        if self.claim_token.is_empty() || !visible_ascii(&self.claim_token) {
            return Err(refuse("the claim token must be 1 or more visible ASCII characters"));
        }
        Ok(())
    }

    /// The server URL, `https://host[:port][/path]`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Host and port of the server.
    pub fn server(&self) -> Endpoint {
        parse_endpoint(&self.endpoint).expect("checked when made")
    }

    /// The CA certificates (PEM) the server's certificate must chain to.
    pub fn trust_anchor_pem(&self) -> &str {
        &self.trust_anchor_pem
    }

    /// The opaque account claim token (a secret: never log it).
    pub fn claim_token(&self) -> &str {
        &self.claim_token
    }

    fn write(&self, w: &mut Tlv8Writer) {
        w.push_u8(tags::VERSION, VERSION)
            .push(tags::ENDPOINT, self.endpoint.as_bytes())
            .push(tags::TRUST_ANCHOR, self.trust_anchor_pem.as_bytes())
            .push(tags::CLAIM_TOKEN, self.claim_token.as_bytes());
    }

    /// The TLV8 body a controller sends.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Tlv8Writer::new();
        self.write(&mut w);
        Zeroizing::new(w.finish())
    }

    /// Parses and checks a delegation as received (no `DelegatedBy`).
    pub fn decode(bytes: &[u8], limits: &DelegationLimits) -> Result<Self> {
        let (delegation, by) = decode_items(bytes, limits, false)?;
        debug_assert!(by.is_none());
        Ok(delegation)
    }
}

fn decode_items(
    bytes: &[u8],
    limits: &DelegationLimits,
    stored: bool,
) -> Result<(CloudDelegation, Option<PairingId>)> {
    if bytes.len() > limits.max_encoded() + if stored { 2 + crate::MAX_ID_LEN } else { 0 } {
        return Err(refuse(format!("{} bytes exceeds the limit of {}", bytes.len(), limits.max_encoded())));
    }
    let tlv = Tlv8::decode(bytes)?;
    for item in tlv.items() {
        let known =
            matches!(item.ty, tags::VERSION | tags::ENDPOINT | tags::TRUST_ANCHOR | tags::CLAIM_TOKEN)
                || (stored && item.ty == tags::DELEGATED_BY);
        if !known {
            return Err(refuse(format!("unknown item type {:#04x}", item.ty)));
        }
    }
    match tlv.get_u8(tags::VERSION)? {
        Some(VERSION) => {}
        Some(other) => return Err(refuse(format!("unsupported version {other}"))),
        None => return Err(refuse("no version")),
    }
    let text = |ty: u8, what: &str| -> Result<String> {
        String::from_utf8(tlv.require(ty)?.to_vec()).map_err(|_| refuse(format!("the {what} is not UTF-8")))
    };
    let delegation = CloudDelegation {
        endpoint: text(tags::ENDPOINT, "endpoint")?,
        trust_anchor_pem: text(tags::TRUST_ANCHOR, "trust anchor")?,
        claim_token: Zeroizing::new(text(tags::CLAIM_TOKEN, "claim token")?),
    };
    delegation.check(limits)?;
    let by = match tlv.get(tags::DELEGATED_BY)? {
        Some(id) => Some(PairingId::new(id)?),
        None => None,
    };
    Ok((delegation, by))
}

/// A delegation as the device keeps it: what was sent and which controller sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDelegation {
    pub delegation: CloudDelegation,
    /// The (admin) controller that delegated, from the verified session.
    pub delegated_by: PairingId,
}

impl StoredDelegation {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Tlv8Writer::new();
        self.delegation.write(&mut w);
        w.push(tags::DELEGATED_BY, self.delegated_by.as_bytes());
        Zeroizing::new(w.finish())
    }

    pub fn decode(bytes: &[u8], limits: &DelegationLimits) -> Result<Self> {
        let (delegation, by) = decode_items(bytes, limits, true)?;
        let delegated_by = by.ok_or_else(|| refuse("the stored delegation names no controller"))?;
        Ok(StoredDelegation { delegation, delegated_by })
    }
}

/// The delegation in a secure element's sealed store (object `<prefix>.cloud-delegation`),
/// replaced atomically and durably by each `save`. The element's sealing authenticates it:
/// a tampered object fails to load.
#[derive(Debug)]
pub struct SealedDelegationStore {
    se: Arc<dyn SecureElement>,
    label: Label,
    limits: DelegationLimits,
    lock: Mutex<()>,
}

impl SealedDelegationStore {
    /// `prefix` names the object, as for [`crate::SealedPairingStore`] (e.g. `"hap"`).
    pub fn new(se: Arc<dyn SecureElement>, prefix: &str) -> Result<Self> {
        let label = Label::new(format!("{prefix}.cloud-delegation"))?;
        Ok(SealedDelegationStore { se, label, limits: DelegationLimits::default(), lock: Mutex::new(()) })
    }

    /// Limits to enforce on save and load.
    pub fn with_limits(mut self, limits: DelegationLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &DelegationLimits {
        &self.limits
    }

    /// Replaces the stored delegation (checked against the limits first).
    pub fn save(&self, stored: &StoredDelegation) -> Result<()> {
        stored.delegation.check(&self.limits)?;
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.se.put_object(&self.label, &stored.encode())?)
    }

    /// The stored delegation, parsed and checked again, or `None` if there is none.
    pub fn load(&self) -> Result<Option<StoredDelegation>> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match self.se.get_object(&self.label) {
            Ok(bytes) => Ok(Some(StoredDelegation::decode(&bytes, &self.limits)?)),
            Err(ironclad_se::Error::ObjectNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets the delegation (absent is fine).
    pub fn clear(&self) -> Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match self.se.delete_object(&self.label) {
            Ok(()) | Err(ironclad_se::Error::ObjectNotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn endpoints() {
        let ok = |url: &str| parse_endpoint(url).unwrap();
        assert_eq!(ok("https://cloud.example.com"), Endpoint { host: "cloud.example.com".into(), port: 443 });
        assert_eq!(ok("https://127.0.0.1:8443/v1"), Endpoint { host: "127.0.0.1".into(), port: 8443 });
        assert_eq!(ok("https://[::1]:9000"), Endpoint { host: "::1".into(), port: 9000 });
        for bad in [
            "http://cloud.example.com",
            "https://",
            "https://user@host",
            "https://host:0",
            "https://host:99999",
            "https://host:+80",
            "https://ho st",
            "https://[::1",
            "https://[::1]x",
            "https://host_name",
            "https://h\u{e9}",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trip_and_strictness() {
        let d = CloudDelegation::new("https://localhost:8443", PEM, "claim-123").unwrap();
        let bytes = d.encode();
        assert_eq!(CloudDelegation::decode(&bytes, &DelegationLimits::default()).unwrap(), d);
        assert!(!format!("{d:?}").contains("claim-123"));
        let stored = StoredDelegation { delegation: d.clone(), delegated_by: "ctl".parse().unwrap() };
        assert_eq!(StoredDelegation::decode(&stored.encode(), &DelegationLimits::default()).unwrap(), stored);
        // The sealed form is not accepted on the wire, nor the wire form as a record.
        assert!(CloudDelegation::decode(&stored.encode(), &DelegationLimits::default()).is_err());
        assert!(StoredDelegation::decode(&bytes, &DelegationLimits::default()).is_err());
        // Each flipped byte is refused or changes the result: never silently accepted as the same.
        for i in 0..bytes.len() {
            let mut bad = bytes.to_vec();
            bad[i] ^= 0x80;
            if let Ok(other) = CloudDelegation::decode(&bad, &DelegationLimits::default()) {
                assert_ne!(other, d, "byte {i}");
            }
        }
        let mut extra = bytes.to_vec();
        extra.extend_from_slice(&[0x09, 1, 0]);
        assert!(CloudDelegation::decode(&extra, &DelegationLimits::default()).is_err());
        assert!(CloudDelegation::decode(&bytes[..bytes.len() - 1], &DelegationLimits::default()).is_err());
        let limits = DelegationLimits { max_claim_token: 4, ..DelegationLimits::default() };
        assert!(CloudDelegation::decode(&bytes, &limits).is_err());
    }

    #[test]
    fn refusals() {
        assert!(CloudDelegation::new("https://h", "not a pem", "t").is_err());
        assert!(CloudDelegation::new("https://h", PEM, "").is_err());
        assert!(CloudDelegation::new("https://h", PEM, "with space").is_err());
        assert!(CloudDelegation::new("https://h", PEM, "x".repeat(1025)).is_err());
        let big = format!("{PEM}{}", "A".repeat(12 * 1024));
        assert!(CloudDelegation::new("https://h", big, "t").is_err());
        assert!(CloudDelegation::new(format!("https://{}", "a".repeat(300)), PEM, "t").is_err());
    }
}
