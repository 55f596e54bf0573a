//! Key objects on the token: generation templates, lookup by label + CKA_ID, the algorithm a
//! token object stands for, listing and deletion.

use std::collections::BTreeSet;

use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use ironclad_se::{Error, KeyAlgorithm, KeyInfo, Label, PublicKey, Result};

use crate::backend::Pkcs11Se;
use crate::error::Pkcs11Error;
use crate::token::lock;

/// DER OIDs for CKA_EC_PARAMS.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
/// PKCS#11 3.0 also allows the curve name as a PrintableString.
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";
const X25519_NAME: &[u8] = b"\x13\x0acurve25519";

/// The token objects behind one ironclad key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyObjects {
    /// An asymmetric key: its private half (the public half is only read at lookup).
    Private(ObjectHandle),
    /// A `Secret256`: the AES key for seal/open and the generic secret for HMAC.
    Secret { aes: ObjectHandle, hmac: ObjectHandle },
}

/// A key found on the token, as cached by label.
#[derive(Clone, Debug)]
pub(crate) struct KeyEntry {
    pub(crate) public: PublicKey,
    pub(crate) objects: KeyObjects,
}

impl KeyEntry {
    pub(crate) fn alg(&self) -> KeyAlgorithm {
        self.public.algorithm()
    }
}

/// CKA_ID of an ironclad key: SHA-256(label)[..16]. Stable, so a key is found again by any
/// process, and distinct per label, so equal labels set by other tools do not match.
pub(crate) fn key_id(label: &Label) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, label.as_str().as_bytes()).as_ref()[..16].to_vec()
}

fn call(function: &'static str) -> impl FnOnce(cryptoki::error::Error) -> Error {
    move |e| Pkcs11Error::call(function, e).into()
}

impl Pkcs11Se {
    /// The key named `id`, from the cache or the token.
    pub(crate) fn entry(&self, id: &Label) -> Result<KeyEntry> {
        if let Some(entry) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(entry.clone());
        }
        let entry =
            self.token.with_session(|s| lookup(s, id))?.ok_or_else(|| Error::KeyNotFound(id.clone()))?;
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), entry.clone());
        Ok(entry)
    }

    fn evict(&self, id: &Label) {
        self.keys.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Runs `f` on the key with a pooled session. If a cached key fails with a backend error
    /// and the token now holds different objects under its name (another process replaced
    /// it), the lookup is redone and `f` retried once.
    pub(crate) fn with_key<T>(
        &self,
        id: &Label,
        mut f: impl FnMut(&Session, &KeyEntry) -> Result<T>,
    ) -> Result<T> {
        let entry = self.entry(id)?;
        match self.token.with_session(|s| f(s, &entry)) {
            Err(Error::Backend(message)) => {
                self.evict(id);
                let fresh = self.entry(id)?;
                if fresh.objects == entry.objects {
                    return Err(Error::Backend(message));
                }
                self.token.with_session(|s| f(s, &fresh))
            }
            other => other,
        }
    }

    pub(crate) fn generate(&self, id: &Label, alg: KeyAlgorithm) -> Result<PublicKey> {
        let _serial = lock(&self.key_writes);
        let montgomery = self.token.has_mechanism(MechanismType::ECC_MONTGOMERY_KEY_PAIR_GEN);
        let entry = self.token.with_session(|s| {
            let existing = find(s, &[Attribute::Token(true), Attribute::Id(key_id(id)), label_attr(id)])?;
            for handle in existing {
                let class = class_of(s, handle)?;
                if class == ObjectClass::PUBLIC_KEY {
                    // Left by a generation that failed half-way: not a key, just debris.
                    s.destroy_object(handle).map_err(call("C_DestroyObject"))?;
                } else if class == ObjectClass::PRIVATE_KEY || class == ObjectClass::SECRET_KEY {
                    return Err(Error::KeyExists(id.clone()));
                }
            }
            match alg {
                KeyAlgorithm::Secret256 => generate_secret(s, id),
                _ => generate_pair(s, id, alg, montgomery),
            }
        })?;
        let public = entry.public.clone();
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), entry);
        Ok(public)
    }

    /// Imports a P-256 private scalar as a sensitive, never-extractable token key (an offline
    /// ceremony root rebuilt from its shares). Other algorithms are not importable here.
    pub(crate) fn import(&self, id: &Label, alg: KeyAlgorithm, raw: &[u8]) -> Result<PublicKey> {
        if !matches!(alg, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdhP256) {
            return Err(Error::Unsupported { backend: "pkcs11", operation: "importing this key algorithm" });
        }
        let invalid = || Error::Crypto("imported key material is invalid for its algorithm");
        let point = aws_lc_rs::agreement::PrivateKey::from_private_key(&aws_lc_rs::agreement::ECDH_P256, raw)
            .map_err(|_| invalid())?
            .compute_public_key()
            .map_err(|_| invalid())?
            .as_ref()
            .to_vec();
        let _serial = lock(&self.key_writes);
        let entry = self.token.with_session(|s| {
            if lookup(s, id)?.is_some() {
                return Err(Error::KeyExists(id.clone()));
            }
            let signs = alg.can_sign();
            let common = || vec![Attribute::Token(true), Attribute::Id(key_id(id)), label_attr(id)];
            let mut encoded_point = vec![0x04, u8::try_from(point.len()).unwrap_or(65)];
            encoded_point.extend_from_slice(&point);
            let mut public = common();
            public.extend([
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Private(false),
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::EcPoint(encoded_point),
                Attribute::Verify(signs),
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
                Attribute::Derive(false),
            ]);
            let mut private = common();
            private.extend([
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::Value(raw.to_vec()),
                Attribute::Sign(signs),
                Attribute::SignRecover(false),
                Attribute::Derive(!signs),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
            ]);
            let pub_handle = s.create_object(&public).map_err(call("C_CreateObject"))?;
            match s.create_object(&private) {
                Ok(priv_handle) => Ok(KeyEntry {
                    public: PublicKey::new(alg, point.clone()),
                    objects: KeyObjects::Private(priv_handle),
                }),
                Err(e) => {
                    let _ = s.destroy_object(pub_handle);
                    Err(call("C_CreateObject")(e))
                }
            }
        })?;
        let public = entry.public.clone();
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), entry);
        Ok(public)
    }

    pub(crate) fn delete(&self, id: &Label) -> Result<()> {
        let _serial = lock(&self.key_writes);
        self.evict(id);
        self.token.with_session(|s| {
            let handles = find(s, &[Attribute::Token(true), Attribute::Id(key_id(id)), label_attr(id)])?;
            let mut destroyed = 0;
            for handle in handles {
                let class = class_of(s, handle)?;
                if [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY, ObjectClass::SECRET_KEY]
                    .contains(&class)
                {
                    s.destroy_object(handle).map_err(call("C_DestroyObject"))?;
                    destroyed += 1;
                }
            }
            if destroyed == 0 { Err(Error::KeyNotFound(id.clone())) } else { Ok(()) }
        })
    }

    pub(crate) fn list(&self) -> Result<Vec<KeyInfo>> {
        let labels = self.token.with_session(|s| {
            let mut labels = BTreeSet::new();
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
                for handle in find(s, &[Attribute::Token(true), Attribute::Class(class)])? {
                    let attrs = s
                        .get_attributes(handle, &[AttributeType::Label, AttributeType::Id])
                        .map_err(call("C_GetAttributeValue"))?;
                    let (mut label, mut id) = (None, None);
                    for attr in attrs {
                        match attr {
                            Attribute::Label(l) => label = String::from_utf8(l).ok(),
                            Attribute::Id(i) => id = Some(i),
                            _ => {}
                        }
                    }
                    // Only keys ironclad made (or named the ironclad way) are listed.
                    if let Some(label) = label.and_then(|l| Label::new(l).ok())
                        && id.as_deref() == Some(key_id(&label).as_slice())
                    {
                        labels.insert(label);
                    }
                }
            }
            Ok::<_, Error>(labels)
        })?;
        labels.into_iter().map(|id| Ok(KeyInfo { public: self.entry(&id)?.public, id })).collect()
    }
}

pub(crate) fn label_attr(id: &Label) -> Attribute {
    Attribute::Label(id.as_str().as_bytes().to_vec())
}

pub(crate) fn find(s: &Session, template: &[Attribute]) -> Result<Vec<ObjectHandle>> {
    s.find_objects(template).map_err(call("C_FindObjects"))
}

fn class_of(s: &Session, handle: ObjectHandle) -> Result<ObjectClass> {
    match s.get_attributes(handle, &[AttributeType::Class]).map_err(call("C_GetAttributeValue"))?.first() {
        Some(Attribute::Class(class)) => Ok(*class),
        _ => Ok(ObjectClass::DATA),
    }
}

/// Finds the key `id` on the token: `None` if there is none; an error if objects under its
/// name are ambiguous or not a key ironclad understands.
fn lookup(s: &Session, id: &Label) -> Result<Option<KeyEntry>> {
    let handles = find(s, &[Attribute::Token(true), Attribute::Id(key_id(id)), label_attr(id)])?;
    let (mut private, mut public, mut aes, mut hmac) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for handle in handles {
        let attrs = s
            .get_attributes(
                handle,
                &[
                    AttributeType::Class,
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                    AttributeType::Sign,
                    AttributeType::Derive,
                ],
            )
            .map_err(call("C_GetAttributeValue"))?;
        let object = Object::from_attributes(handle, attrs);
        match (object.class, object.key_type) {
            (Some(ObjectClass::PRIVATE_KEY), _) => private.push(object),
            (Some(ObjectClass::PUBLIC_KEY), _) => public.push(object),
            (Some(ObjectClass::SECRET_KEY), Some(KeyType::AES)) => aes.push(object),
            (Some(ObjectClass::SECRET_KEY), Some(KeyType::GENERIC_SECRET)) => hmac.push(object),
            _ => {}
        }
    }
    let ambiguous = |what, count| Error::from(Pkcs11Error::Ambiguous { what, label: id.to_string(), count });
    for (what, found) in
        [("private key", &private), ("public key", &public), ("AES key", &aes), ("HMAC key", &hmac)]
    {
        if found.len() > 1 {
            return Err(ambiguous(what, found.len()));
        }
    }
    let malformed = |reason: &str| Error::from(Pkcs11Error::malformed(id, reason));
    match (private.first(), aes.first(), hmac.first()) {
        (None, None, None) => Ok(None),
        (Some(key), None, None) => {
            let alg = key.algorithm().map_err(|reason| malformed(&reason))?;
            let public = public.first().ok_or_else(|| malformed("its public-key object is missing"))?;
            let point = public.ec_point.as_deref().ok_or_else(|| malformed("no CKA_EC_POINT"))?;
            let bytes =
                unwrap_ec_point(point, alg).ok_or_else(|| malformed("CKA_EC_POINT is not a valid point"))?;
            Ok(Some(KeyEntry {
                public: PublicKey::new(alg, bytes),
                objects: KeyObjects::Private(key.handle),
            }))
        }
        (None, Some(aes), Some(hmac)) => Ok(Some(KeyEntry {
            public: PublicKey::new(KeyAlgorithm::Secret256, Vec::new()),
            objects: KeyObjects::Secret { aes: aes.handle, hmac: hmac.handle },
        })),
        (None, _, _) => {
            Err(malformed("a 256-bit secret needs both its AES and its HMAC key; one is missing"))
        }
        (Some(_), _, _) => Err(ambiguous("private or secret key", private.len() + aes.len() + hmac.len())),
    }
}

/// The attributes of one object that decide what it is.
struct Object {
    handle: ObjectHandle,
    class: Option<ObjectClass>,
    key_type: Option<KeyType>,
    ec_params: Option<Vec<u8>>,
    ec_point: Option<Vec<u8>>,
    sign: bool,
    derive: bool,
}

impl Object {
    fn from_attributes(handle: ObjectHandle, attrs: Vec<Attribute>) -> Self {
        let mut o = Object {
            handle,
            class: None,
            key_type: None,
            ec_params: None,
            ec_point: None,
            sign: false,
            derive: false,
        };
        for attr in attrs {
            match attr {
                Attribute::Class(c) => o.class = Some(c),
                Attribute::KeyType(t) => o.key_type = Some(t),
                Attribute::EcParams(p) => o.ec_params = Some(p),
                Attribute::EcPoint(p) => o.ec_point = Some(p),
                Attribute::Sign(b) => o.sign = b,
                Attribute::Derive(b) => o.derive = b,
                _ => {}
            }
        }
        o
    }

    /// What a private key is for ironclad: curve from CKA_EC_PARAMS, purpose from CKA_SIGN /
    /// CKA_DERIVE (one key, one purpose).
    fn algorithm(&self) -> std::result::Result<KeyAlgorithm, String> {
        let params = self.ec_params.as_deref().unwrap_or_default();
        let alg = match self.key_type {
            Some(KeyType::EC) if params == P256_OID => {
                if self.sign {
                    KeyAlgorithm::EcdsaP256
                } else {
                    KeyAlgorithm::EcdhP256
                }
            }
            Some(KeyType::EC_EDWARDS) if params == ED25519_OID || params == ED25519_NAME => {
                KeyAlgorithm::Ed25519
            }
            // SoftHSM 2.6 makes X25519 keys with the Edwards mechanism and key type.
            Some(KeyType::EC_EDWARDS | KeyType::EC_MONTGOMERY)
                if params == X25519_OID || params == X25519_NAME =>
            {
                KeyAlgorithm::X25519
            }
            Some(t) => {
                return Err(format!(
                    "key type {t} with CKA_EC_PARAMS {} is not one ironclad uses",
                    hex::encode(params)
                ));
            }
            None => return Err("no CKA_KEY_TYPE".into()),
        };
        let usable = if alg.can_sign() { self.sign } else { self.derive };
        if !usable {
            return Err(format!(
                "a {alg} key must have {}",
                if alg.can_sign() { "CKA_SIGN" } else { "CKA_DERIVE" }
            ));
        }
        Ok(alg)
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the point (04 ‖ X ‖ Y for P-256, the 32-byte
/// key for the 25519 curves); some tokens give the bare point. Accepts both.
pub(crate) fn unwrap_ec_point(attr: &[u8], alg: KeyAlgorithm) -> Option<Vec<u8>> {
    let len = if matches!(alg, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdhP256) { 65 } else { 32 };
    let point = match attr {
        [0x04, l, rest @ ..] if usize::from(*l) == len && rest.len() == len => rest,
        bare if bare.len() == len => bare,
        _ => return None,
    };
    (len == 32 || point[0] == 0x04).then(|| point.to_vec())
}

fn generate_pair(s: &Session, id: &Label, alg: KeyAlgorithm, montgomery: bool) -> Result<KeyEntry> {
    let (mechanism, params) = match alg {
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdhP256 => (Mechanism::EccKeyPairGen, P256_OID),
        KeyAlgorithm::Ed25519 => (Mechanism::EccEdwardsKeyPairGen, ED25519_OID),
        KeyAlgorithm::X25519 if montgomery => (Mechanism::EccMontgomeryKeyPairGen, X25519_OID),
        KeyAlgorithm::X25519 => (Mechanism::EccEdwardsKeyPairGen, X25519_OID),
        _ => return Err(Error::Unsupported { backend: "pkcs11", operation: "this key algorithm" }),
    };
    let signs = alg.can_sign();
    let common = || vec![Attribute::Token(true), Attribute::Id(key_id(id)), label_attr(id)];
    let mut public = common();
    // Every usage flag is explicit: tokens default some to true (SoftHSM: decrypt, unwrap,
    // encrypt, wrap), and one key has one purpose.
    public.extend([
        Attribute::Private(false),
        Attribute::EcParams(params.to_vec()),
        Attribute::Verify(signs),
        Attribute::VerifyRecover(false),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
    ]);
    let mut private = common();
    private.extend([
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(signs),
        Attribute::SignRecover(false),
        Attribute::Derive(!signs),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
    ]);
    let (pub_handle, priv_handle) = s.generate_key_pair(&mechanism, &public, &private).map_err(|e| {
        match crate::error::rv_of(&e) {
            // The mechanism is listed but not for this curve (an X25519 key on a token whose
            // Edwards mechanism only makes Ed25519 keys, for instance).
            Some(RvError::CurveNotSupported | RvError::DomainParamsInvalid | RvError::MechanismInvalid) => {
                Error::Unsupported { backend: "pkcs11", operation: "this curve on this token" }
            }
            _ => call("C_GenerateKeyPair")(e),
        }
    })?;
    let read = || -> Result<Vec<u8>> {
        let attrs =
            s.get_attributes(pub_handle, &[AttributeType::EcPoint]).map_err(call("C_GetAttributeValue"))?;
        match attrs.first() {
            Some(Attribute::EcPoint(point)) => unwrap_ec_point(point, alg).ok_or_else(|| {
                Pkcs11Error::malformed(id, "the new key's CKA_EC_POINT is not a valid point").into()
            }),
            _ => Err(Pkcs11Error::malformed(id, "the new key has no CKA_EC_POINT").into()),
        }
    };
    match read() {
        Ok(bytes) => {
            Ok(KeyEntry { public: PublicKey::new(alg, bytes), objects: KeyObjects::Private(priv_handle) })
        }
        Err(e) => {
            let _ = s.destroy_object(priv_handle);
            let _ = s.destroy_object(pub_handle);
            Err(e)
        }
    }
}

fn generate_secret(s: &Session, id: &Label) -> Result<KeyEntry> {
    let template = |key_type, encrypt: bool| {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(encrypt),
            Attribute::Decrypt(encrypt),
            Attribute::Sign(!encrypt),
            Attribute::Verify(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Id(key_id(id)),
            label_attr(id),
        ]
    };
    let aes = s
        .generate_key(&Mechanism::AesKeyGen, &template(KeyType::AES, true))
        .map_err(call("C_GenerateKey"))?;
    let hmac =
        match s.generate_key(&Mechanism::GenericSecretKeyGen, &template(KeyType::GENERIC_SECRET, false)) {
            Ok(h) => h,
            Err(e) => {
                let _ = s.destroy_object(aes);
                return Err(call("C_GenerateKey")(e));
            }
        };
    Ok(KeyEntry {
        public: PublicKey::new(KeyAlgorithm::Secret256, Vec::new()),
        objects: KeyObjects::Secret { aes, hmac },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ec_points_unwrap_from_der_or_bare() {
        let mut p256 = vec![0x04u8];
        p256.extend_from_slice(&[7u8; 64]);
        let mut der = vec![0x04, 65];
        der.extend_from_slice(&p256);
        assert_eq!(unwrap_ec_point(&der, KeyAlgorithm::EcdsaP256).unwrap(), p256);
        assert_eq!(unwrap_ec_point(&p256, KeyAlgorithm::EcdhP256).unwrap(), p256);
        assert!(unwrap_ec_point(&der[..66], KeyAlgorithm::EcdsaP256).is_none());
        let mut compressed = vec![0x04, 65, 0x02];
        compressed.extend_from_slice(&[7u8; 64]);
        assert!(unwrap_ec_point(&compressed, KeyAlgorithm::EcdsaP256).is_none());
        let ed = [9u8; 32];
        let mut der = vec![0x04, 32];
        der.extend_from_slice(&ed);
        assert_eq!(unwrap_ec_point(&der, KeyAlgorithm::Ed25519).unwrap(), ed);
        assert_eq!(unwrap_ec_point(&ed, KeyAlgorithm::X25519).unwrap(), ed);
    }

    #[test]
    fn key_ids_are_stable_and_distinct() {
        let a = Label::new("ca-line-1").unwrap();
        assert_eq!(key_id(&a), key_id(&a.clone()));
        assert_eq!(key_id(&a).len(), 16);
        assert_ne!(key_id(&a), key_id(&Label::new("ca-line-2").unwrap()));
    }
}
