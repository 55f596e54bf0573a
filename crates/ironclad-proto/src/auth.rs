//! The challenge-response messages and the bytes a device signs.

use serde::{Deserialize, Serialize};

use crate::hexbytes::{Challenge, ExporterValue};

/// Length of a server challenge: 32 random bytes (Matter's attestation nonce length).
pub const CHALLENGE_LEN: usize = 32;

/// The TLS exporter label (RFC 5705 for TLS 1.2, RFC 8446 §7.5 for TLS 1.3) both sides use to
/// derive the session binding. Exporter labels starting with `EXPORTER-` are reserved for such
/// private use by RFC 5705 §4.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-ironclad-device-auth";

/// Length of the exporter value.
pub const EXPORTER_LEN: usize = 32;

/// Domain separator at the start of every signed authentication message: it names the protocol
/// and its version and ends with a zero byte, so no other ironclad signature (CSR, firmware
/// image, COSE command) can be mistaken for one.
pub const AUTH_DOMAIN: &[u8] = b"ironclad device-auth v1\0";

/// Length of [`auth_message`]'s output.
pub const AUTH_MESSAGE_LEN: usize = AUTH_DOMAIN.len() + CHALLENGE_LEN + EXPORTER_LEN;

/// The exact bytes a device signs to answer a challenge:
///
/// ```text
/// "ironclad device-auth v1" 0x00  ||  challenge (32 bytes)  ||  exporter (32 bytes)
/// ```
///
/// `exporter` is the TLS exporter value of the connection the challenge was issued on and is
/// answered on, computed with label [`EXPORTER_LABEL`], no context, [`EXPORTER_LEN`] bytes.
/// Every field has a fixed length, so the encoding is unambiguous without length prefixes.
///
/// Why each part: the domain separator keeps the device key from signing anything that parses
/// as another protocol's message; the challenge (fresh, single-use, expiring) proves liveness;
/// the exporter is derived from the TLS handshake secrets, so a signature captured from one
/// session (for example relayed by a man in the middle that terminates TLS with its own
/// certificate) does not verify for any other session — as Matter binds its attestation to the
/// session's attestation challenge. With TLS 1.2 the exporter is only session-unique under the
/// extended master secret (RFC 7627), which the server requires.
///
/// ECDSA P-256 keys sign this message with SHA-256 (DER signature); Ed25519 keys sign it as is.
pub fn auth_message(challenge: &Challenge, exporter: &ExporterValue) -> [u8; AUTH_MESSAGE_LEN] {
    let mut out = [0u8; AUTH_MESSAGE_LEN];
    let (domain, rest) = out.split_at_mut(AUTH_DOMAIN.len());
    domain.copy_from_slice(AUTH_DOMAIN);
    let (c, e) = rest.split_at_mut(CHALLENGE_LEN);
    c.copy_from_slice(challenge.as_bytes());
    e.copy_from_slice(exporter.as_bytes());
    out
}

/// The server's answer to `POST /v1/auth/challenge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// Names the challenge in the [`SessionRequest`] (opaque, URL-safe).
    pub challenge_id: String,
    /// 32 random bytes, hex in JSON.
    pub challenge: Challenge,
    /// Seconds until the challenge expires.
    pub expires_in: u64,
}

/// The device's answer: `POST /v1/auth/session`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRequest {
    /// From the [`ChallengeResponse`].
    pub challenge_id: String,
    /// Signature over [`auth_message`], hex: DER for ECDSA P-256, 64 bytes for Ed25519.
    #[serde(with = "hex::serde")]
    pub signature: Vec<u8>,
}

/// A device session: the bearer token for the device's own resources.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    /// Bearer token (`Authorization: Bearer <token>`), valid only together with the same device
    /// certificate.
    pub token: String,
    /// The device ID the server knows this device by (its certificate's subject CN).
    pub device_id: String,
    /// Seconds until the session expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for SessionResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionResponse")
            .field("token", &"<redacted>")
            .field("device_id", &self.device_id)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn message_layout_is_fixed() {
        let c = Challenge::from([0x11; 32]);
        let e = ExporterValue::from([0x22; 32]);
        let m = auth_message(&c, &e);
        assert_eq!(m.len(), 24 + 32 + 32);
        assert_eq!(&m[..24], b"ironclad device-auth v1\0");
        assert!(m[24..56].iter().all(|b| *b == 0x11));
        assert!(m[56..].iter().all(|b| *b == 0x22));
    }

    #[test]
    fn known_answer() {
        let mut c = [0u8; 32];
        let mut e = [0u8; 32];
        for i in 0..32 {
            c[i] = i as u8;
            e[i] = 0xff - i as u8;
        }
        let m = auth_message(&Challenge::from(c), &ExporterValue::from(e));
        assert_eq!(
            hex::encode(m),
            concat!(
                "69726f6e636c6164206465766963652d61757468207631",
                "00",
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0"
            )
        );
    }

    #[test]
    fn json_round_trip() {
        let r = ChallengeResponse {
            challenge_id: "abc".into(),
            challenge: Challenge::from([7; 32]),
            expires_in: 60,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(&"07".repeat(32)));
        assert_eq!(serde_json::from_str::<ChallengeResponse>(&text).unwrap(), r);
        let s = SessionRequest { challenge_id: "abc".into(), signature: vec![1, 2, 3] };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"challenge_id":"abc","signature":"010203"}"#);
        assert_eq!(serde_json::from_str::<SessionRequest>(&text).unwrap(), s);
    }

    #[test]
    fn session_debug_hides_token() {
        let s = SessionResponse { token: "secret-token".into(), device_id: "d".into(), expires_in: 1 };
        assert!(!format!("{s:?}").contains("secret-token"));
    }
}
