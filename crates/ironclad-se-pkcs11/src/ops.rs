//! What a key does on the token: sign, ECDH + HKDF, HKDF from a secret, AES-GCM seal/open.

use aws_lc_rs::{agreement, digest, hkdf};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use ironclad_se::{Error, Hkdf, KeyAlgorithm, Label, Result, SignInput};
use zeroize::Zeroizing;

use crate::ecdsa;
use crate::error::{Pkcs11Error, rv_of};
use crate::keys::{KeyEntry, KeyObjects};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The GCM tag length in bits (`CK_ULONG`, which is C `unsigned long`).
const TAG_BITS: std::ffi::c_ulong = 128;
const SHA256_LEN: usize = 32;

fn call(function: &'static str) -> impl FnOnce(cryptoki::error::Error) -> Error {
    move |e| Pkcs11Error::call(function, e).into()
}

fn wrong(id: &Label, key: &KeyEntry, operation: &'static str) -> Error {
    Error::WrongKeyType { id: id.clone(), alg: key.alg(), operation }
}

fn private(id: &Label, key: &KeyEntry, operation: &'static str) -> Result<ObjectHandle> {
    match key.objects {
        KeyObjects::Private(handle) => Ok(handle),
        KeyObjects::Secret { .. } => Err(wrong(id, key, operation)),
    }
}

pub(crate) fn sign(s: &Session, id: &Label, key: &KeyEntry, input: SignInput<'_>) -> Result<Vec<u8>> {
    match (key.alg(), input) {
        (KeyAlgorithm::EcdsaP256, input) => {
            let handle = private(id, key, "sign")?;
            // Hash on the host: CKM_ECDSA signs a digest, and not every token has
            // CKM_ECDSA_SHA256 (SoftHSM 2.6 does not).
            let hashed;
            let digest: &[u8] = match input {
                SignInput::Message(msg) => {
                    hashed = digest::digest(&digest::SHA256, msg);
                    hashed.as_ref()
                }
                SignInput::Sha256Digest(d) => d,
            };
            let raw = s.sign(&Mechanism::Ecdsa, handle, digest).map_err(call("C_Sign"))?;
            ecdsa::raw_to_der(&raw).ok_or_else(|| {
                Pkcs11Error::malformed(id, format!("token returned a {}-byte ECDSA signature", raw.len()))
                    .into()
            })
        }
        (KeyAlgorithm::Ed25519, SignInput::Message(msg)) => {
            let handle = private(id, key, "sign")?;
            let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            s.sign(&mechanism, handle, msg).map_err(call("C_Sign"))
        }
        (KeyAlgorithm::Ed25519, SignInput::Sha256Digest(_)) => {
            Err(wrong(id, key, "sign a pre-hashed digest (Ed25519 signs messages)"))
        }
        _ => Err(wrong(id, key, "sign")),
    }
}

/// ECDH on the token, HKDF on the host (see the crate docs for why).
pub(crate) fn agree_and_derive(
    s: &Session,
    id: &Label,
    key: &KeyEntry,
    peer: &[u8],
    kdf: &Hkdf<'_>,
    out: &mut [u8],
) -> Result<()> {
    let alg = key.alg();
    let curve = match alg {
        KeyAlgorithm::EcdhP256 => &agreement::ECDH_P256,
        KeyAlgorithm::X25519 => &agreement::X25519,
        _ => return Err(wrong(id, key, "do ECDH")),
    };
    let handle = private(id, key, "do ECDH")?;
    // Validate on the host so a bad point is reported as such, not as a token failure.
    // Only the raw forms the trait promises: 04 ‖ X ‖ Y (P-256) or the 32-byte u-coordinate.
    let parsed = agreement::ParsedPublicKey::try_from(&agreement::UnparsedPublicKey::new(curve, peer))
        .map_err(|_| Error::BadPeerKey { alg })?;
    let raw_form = match alg {
        KeyAlgorithm::EcdhP256 => agreement::ParsedPublicKeyFormat::Uncompressed,
        _ => agreement::ParsedPublicKeyFormat::Raw,
    };
    if parsed.format() != raw_form {
        return Err(Error::BadPeerKey { alg });
    }
    let params = Ecdh1DeriveParams::new(EcKdf::null(), peer);
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(32.into()),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let shared = s.derive_key(&Mechanism::Ecdh1Derive(params), handle, &template).map_err(|e| {
        match rv_of(&e) {
            // X25519 with a low-order point gives an all-zero secret, which tokens refuse.
            Some(
                RvError::GeneralError
                | RvError::FunctionFailed
                | RvError::DomainParamsInvalid
                | RvError::MechanismParamInvalid,
            ) => Error::BadPeerKey { alg },
            _ => call("C_DeriveKey")(e),
        }
    })?;
    let value = s.get_attributes(shared, &[AttributeType::Value]).map_err(call("C_GetAttributeValue"));
    // The shared secret is a session object: destroy it now rather than when the session closes.
    let destroyed = s.destroy_object(shared).map_err(call("C_DestroyObject"));
    let secret = match value?.into_iter().next() {
        Some(Attribute::Value(v)) => Zeroizing::new(v),
        _ => return Err(Pkcs11Error::malformed(id, "the derived shared secret has no value").into()),
    };
    destroyed?;
    if secret.iter().all(|&b| b == 0) {
        return Err(Error::BadPeerKey { alg });
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, kdf.salt).extract(&secret);
    let info = [kdf.info];
    prk.expand(&info, OutLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::Crypto("HKDF output too long"))
}

struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-SHA256 keyed by the token's HMAC secret, on the token:
/// `T(i) = HMAC(secret, T(i-1) ‖ be32(len(salt)) ‖ salt ‖ info ‖ i)`.
pub(crate) fn derive(s: &Session, id: &Label, key: &KeyEntry, kdf: &Hkdf<'_>, out: &mut [u8]) -> Result<()> {
    let KeyObjects::Secret { hmac, .. } = key.objects else {
        return Err(wrong(id, key, "derive keys"));
    };
    if out.len() > 255 * SHA256_LEN {
        return Err(Error::Crypto("HKDF output too long"));
    }
    let salt_len = u32::try_from(kdf.salt.len()).map_err(|_| Error::Crypto("HKDF salt too long"))?;
    let mut info = Vec::with_capacity(4 + kdf.salt.len() + kdf.info.len());
    info.extend_from_slice(&salt_len.to_be_bytes());
    info.extend_from_slice(kdf.salt);
    info.extend_from_slice(kdf.info);
    let mut previous = Zeroizing::new(Vec::new());
    for (i, chunk) in out.chunks_mut(SHA256_LEN).enumerate() {
        let mut block = Zeroizing::new(Vec::with_capacity(previous.len() + info.len() + 1));
        block.extend_from_slice(&previous);
        block.extend_from_slice(&info);
        block.push(u8::try_from(i + 1).map_err(|_| Error::Crypto("HKDF output too long"))?);
        let t = Zeroizing::new(s.sign(&Mechanism::Sha256Hmac, hmac, &block).map_err(call("C_Sign"))?);
        if t.len() != SHA256_LEN {
            return Err(Pkcs11Error::malformed(id, "HMAC-SHA256 returned the wrong length").into());
        }
        chunk.copy_from_slice(&t[..chunk.len()]);
        previous = t;
    }
    Ok(())
}

fn aes(id: &Label, key: &KeyEntry, operation: &'static str) -> Result<ObjectHandle> {
    match key.objects {
        KeyObjects::Secret { aes, .. } => Ok(aes),
        KeyObjects::Private(_) => Err(wrong(id, key, operation)),
    }
}

/// AES-256-GCM on the token with a nonce from the token's RNG. Output nonce ‖ ciphertext ‖ tag.
pub(crate) fn seal(s: &Session, id: &Label, key: &KeyEntry, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let handle = aes(id, key, "seal data")?;
    let mut nonce = [0u8; NONCE_LEN];
    s.generate_random_slice(&mut nonce).map_err(call("C_GenerateRandom"))?;
    let mut iv = nonce;
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(call("CK_GCM_PARAMS"))?;
    let body = s.encrypt(&Mechanism::AesGcm(params), handle, plaintext).map_err(call("C_Encrypt"))?;
    if body.len() != plaintext.len() + TAG_LEN {
        return Err(Pkcs11Error::malformed(id, "AES-GCM output has the wrong length").into());
    }
    let mut out = Vec::with_capacity(NONCE_LEN + body.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn open(
    s: &Session,
    id: &Label,
    key: &KeyEntry,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let handle = aes(id, key, "open sealed data")?;
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::OpenFailed);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let mut iv = [0u8; NONCE_LEN];
    iv.copy_from_slice(nonce);
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(call("CK_GCM_PARAMS"))?;
    match s.decrypt(&Mechanism::AesGcm(params), handle, body) {
        Ok(plain) => Ok(Zeroizing::new(plain)),
        Err(e) => match rv_of(&e) {
            Some(
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::GeneralError
                | RvError::FunctionFailed
                | RvError::DataInvalid
                | RvError::DataLenRange,
            ) => Err(Error::OpenFailed),
            _ => Err(call("C_Decrypt")(e)),
        },
    }
}
