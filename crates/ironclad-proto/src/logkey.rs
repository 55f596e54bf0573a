//! Log-key delivery: the server wraps a device's log key to the device's X25519
//! firmware-decryption key, which never leaves the device's secure element.
//!
//! The wire form is a tagged COSE_Encrypt (RFC 9052 §5.1) with one recipient using
//! ECDH-ES + HKDF-256 (`alg` -25, RFC 9053 §6.3.1): the server makes an ephemeral X25519 key, the
//! shared secret goes through HKDF-SHA256 (no salt, `info` = the COSE_KDF_Context for A256GCM,
//! 256 bits, with the recipient's protected header) straight into the AES-256-GCM content key.
//! The device does the ECDH and HKDF inside its secure element (`agree_and_derive`), so only
//! the derived content key reaches host memory, briefly and wiped. The content is the log key as
//! a symmetric COSE_Key `{1: 4, 2: kid, 3: 3, -1: k}`; the external AAD binds the device id.
//!
//! ```text
//! 96([ << {1: 3} >>, {5: iv}, ciphertext,
//!      [[ << {1: -25} >>, {-1: {1: 1, -1: 4, -2: ephemeral x}}, h'' ]] ])
//! external_aad = ["ironclad log key v1", device_id]
//! ```

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, NONCE_LEN, UnboundKey};
use aws_lc_rs::{agreement, hkdf};
use ciborium::Value;
use coset::{
    AsCborValue, CborSerializable, CoseEncrypt, CoseEncryptBuilder, CoseKdfContextBuilder, CoseKeyBuilder,
    CoseRecipientBuilder, HeaderBuilder, ProtectedHeader, RegisteredLabelWithPrivate, SuppPubInfo,
    TaggedCborSerializable, iana,
};
use zeroize::Zeroizing;

use crate::cose::cbor::{Fields, to_vec};
use crate::cose::{alg_text, check_headers, check_len, cose_error};
use crate::error::{Error, Result};
use crate::logrec::{LOG_KEY_LEN, LogKey, open, seal};

/// Domain string of the key delivery's external AAD.
pub const LOG_KEY_AAD_DOMAIN: &str = "ironclad log key v1";
/// Largest key delivery accepted (a real one is about 150 bytes).
pub const MAX_KEY_DELIVERY_LEN: usize = 1024;

/// The device's X25519 key inside its secure element: ECDH with `peer_public` (32 bytes), then
/// HKDF-SHA256 with `salt` and `info` into `out`, without releasing the shared secret
/// (`ironclad_se::KeyStore::agree_and_derive` does exactly this).
pub trait AgreementKey {
    /// The derivation.
    fn agree_and_derive(
        &self,
        peer_public: &[u8],
        salt: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> std::result::Result<(), String>;
}

/// External AAD of a key delivery: CBOR `["ironclad log key v1", device_id]`.
pub fn log_key_external_aad(device_id: &str) -> Vec<u8> {
    to_vec(&Value::Array(vec![Value::Text(LOG_KEY_AAD_DOMAIN.to_owned()), Value::Text(device_id.to_owned())]))
}

fn recipient_protected() -> coset::Header {
    HeaderBuilder::new().algorithm(iana::Algorithm::ECDH_ES_HKDF_256).build()
}

/// The HKDF `info`: COSE_KDF_Context `[3, [nil,nil,nil], [nil,nil,nil], [256, protected]]`.
fn kdf_info(recipient_protected: ProtectedHeader) -> Result<Vec<u8>> {
    CoseKdfContextBuilder::new()
        .algorithm(iana::Algorithm::A256GCM)
        .supp_pub_info(SuppPubInfo { key_data_length: 256, protected: recipient_protected, other: None })
        .build()
        .to_vec()
        .map_err(|e| Error::Malformed { what: "key delivery", reason: e.to_string() })
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// Server side: wraps `key` for `device_id` to its X25519 public key (32 bytes).
pub fn wrap_log_key(key: &LogKey, device_id: &str, device_x25519_public: &[u8]) -> Result<Vec<u8>> {
    if device_x25519_public.len() != 32 {
        return Err(Error::InvalidKey("X25519 public keys are 32 bytes"));
    }
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ephemeral =
        agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng).map_err(|_| Error::Rng)?;
    let ephemeral_public = ephemeral.compute_public_key().map_err(|_| Error::Rng)?.as_ref().to_vec();
    let info = kdf_info(ProtectedHeader { original_data: None, header: recipient_protected() })?;
    let cek = agreement::agree_ephemeral(
        ephemeral,
        agreement::UnparsedPublicKey::new(&agreement::X25519, device_x25519_public),
        Error::InvalidKey("X25519 agreement failed"),
        |secret| {
            let mut cek = Zeroizing::new([0u8; 32]);
            hkdf::Salt::new(hkdf::HKDF_SHA256, &[])
                .extract(secret)
                .expand(&[&info], Len32)
                .and_then(|okm| okm.fill(cek.as_mut()))
                .map_err(|_| Error::InvalidKey("HKDF failed"))?;
            Ok(cek)
        },
    )?;
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, cek.as_ref()).map_err(|_| Error::InvalidKey("AES key"))?,
    );
    let ephemeral_key = CoseKeyBuilder::new_okp_key()
        .param(iana::OkpKeyParameter::Crv as i64, Value::from(iana::EllipticCurve::X25519 as i64))
        .param(iana::OkpKeyParameter::X as i64, Value::Bytes(ephemeral_public))
        .build()
        .to_cbor_value()
        .map_err(|e| Error::Malformed { what: "key delivery", reason: e.to_string() })?;
    let recipient = CoseRecipientBuilder::new()
        .protected(recipient_protected())
        .unprotected(
            HeaderBuilder::new()
                .value(iana::HeaderAlgorithmParameter::EphemeralKey as i64, ephemeral_key)
                .build(),
        )
        .ciphertext(Vec::new())
        .build();
    let cose_key = Zeroizing::new(
        CoseKeyBuilder::new_symmetric_key(key.secret_bytes().to_vec())
            .key_id(key.id().as_bytes().to_vec())
            .algorithm(iana::Algorithm::A256GCM)
            .build()
            .to_vec()
            .map_err(|e| Error::Malformed { what: "key delivery", reason: e.to_string() })?,
    );
    let mut iv = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| Error::Rng)?;
    let msg = CoseEncryptBuilder::new()
        .protected(HeaderBuilder::new().algorithm(iana::Algorithm::A256GCM).build())
        .unprotected(HeaderBuilder::new().iv(iv.to_vec()).build())
        .try_create_ciphertext(&cose_key, &log_key_external_aad(device_id), |pt, aad| {
            seal(&aead, iv, pt, aad)
        })?
        .add_recipient(recipient)
        .build();
    msg.to_tagged_vec().map_err(|e| Error::Malformed { what: "key delivery", reason: e.to_string() })
}

/// Device side: unwraps a key delivery for `device_id` with the device's X25519 key.
pub fn unwrap_log_key(bytes: &[u8], device_id: &str, device_key: &dyn AgreementKey) -> Result<LogKey> {
    let what = "key delivery";
    check_len(what, bytes.len(), MAX_KEY_DELIVERY_LEN)?;
    let msg = CoseEncrypt::from_tagged_slice(bytes).map_err(|e| cose_error(what, e))?;
    check_headers(what, &msg.protected.header, &msg.unprotected)?;
    if msg.protected.header.alg != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::A256GCM)) {
        return Err(Error::WrongAlgorithm { expected: "A256GCM", found: alg_text(&msg.protected.header) });
    }
    if msg.unprotected.iv.len() != NONCE_LEN || !msg.unprotected.partial_iv.is_empty() {
        return Err(Error::Malformed { what, reason: "needs a 12-byte IV and no partial IV".to_owned() });
    }
    let [recipient] = msg.recipients.as_slice() else {
        return Err(Error::Malformed { what, reason: "expected exactly one recipient".to_owned() });
    };
    check_headers(what, &recipient.protected.header, &recipient.unprotected)?;
    if recipient.protected.header.alg
        != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ECDH_ES_HKDF_256))
    {
        return Err(Error::WrongAlgorithm {
            expected: "ECDH-ES + HKDF-256",
            found: alg_text(&recipient.protected.header),
        });
    }
    if !recipient.ciphertext.as_deref().unwrap_or_default().is_empty() || !recipient.recipients.is_empty() {
        return Err(Error::Malformed {
            what,
            reason: "direct key agreement carries no ciphertext".to_owned(),
        });
    }
    let ephemeral = ephemeral_x25519(&recipient.unprotected)?;
    let info = kdf_info(recipient.protected.clone())?;
    let mut cek = Zeroizing::new([0u8; 32]);
    device_key.agree_and_derive(&ephemeral, &[], &info, cek.as_mut()).map_err(Error::KeyOperation)?;
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, cek.as_ref()).map_err(|_| Error::InvalidKey("AES key"))?,
    );
    let iv = msg.unprotected.iv.clone();
    let mut plain = None;
    let missing = || Error::Malformed { what, reason: "no ciphertext".to_owned() };
    msg.decrypt_ciphertext(&log_key_external_aad(device_id), missing, |ct, aad| -> Result<Vec<u8>> {
        plain = Some(open(what, &aead, &iv, ct, aad)?);
        Ok(Vec::new())
    })?;
    let plain = plain.ok_or(Error::DecryptFailed { what })?;
    parse_symmetric_key(&plain)
}

fn ephemeral_x25519(unprotected: &coset::Header) -> Result<Vec<u8>> {
    let what = "key delivery";
    let label = coset::Label::Int(iana::HeaderAlgorithmParameter::EphemeralKey as i64);
    let value = unprotected
        .rest
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Error::Malformed { what, reason: "no ephemeral key".to_owned() })?;
    let bytes = to_vec(&value);
    // COSE_Key for OKP: {1: 1, -1: 4 (X25519), -2: x}; nothing else.
    let mut f = Fields::decode("ephemeral key", &bytes)?;
    let kty = f.uint(1, "key type")?;
    let crv = f.value(-1, "curve")?;
    let x = f.bytes(-2, "x", 32)?;
    f.finish()?;
    if kty != iana::KeyType::OKP as u64 || crv != Value::from(iana::EllipticCurve::X25519 as i64) {
        return Err(Error::Malformed { what, reason: "ephemeral key must be an X25519 OKP key".to_owned() });
    }
    Ok(x)
}

fn parse_symmetric_key(plain: &[u8]) -> Result<LogKey> {
    let what = "delivered log key";
    // {1: 4, 2: kid, 3: 3, -1: k}, nothing else.
    let mut f = Fields::decode(what, plain)?;
    let kty = f.uint(1, "key type")?;
    let kid = match f.value(2, "key id")? {
        Value::Bytes(b) => b,
        _ => return Err(Error::Malformed { what, reason: "key id must be a byte string".to_owned() }),
    };
    let alg = f.value(3, "algorithm")?;
    let k = Zeroizing::new(f.bytes(-1, "k", LOG_KEY_LEN)?);
    f.finish()?;
    if kty != iana::KeyType::Symmetric as u64 || alg != Value::from(iana::Algorithm::A256GCM as i64) {
        return Err(Error::Malformed { what, reason: "must be a symmetric A256GCM key".to_owned() });
    }
    let id = String::from_utf8(kid)
        .map_err(|_| Error::Malformed { what, reason: "key id is not UTF-8".to_owned() })?;
    LogKey::from_secret(&id, &k)
}
