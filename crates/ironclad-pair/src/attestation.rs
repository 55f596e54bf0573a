//! Device authenticity during pair-setup: the accessory proves it is a genuine device by
//! presenting its X.509 device certificate and a signature, made by the certificate's key inside
//! its secure element, over the pairing transcript.
//!
//! The wire format is HAP's "pair-setup with authentication" (MFi): the controller asks with
//! `Method = PairSetupWithAuth` in M1, and M4 then carries `EncryptedData` (the pair-setup session
//! key, nonce `PS-Msg04`) holding `{Signature, Certificate}`. Controllers that do not check it
//! (aiohomekit, homekit_python) ignore it, as they ignore Apple's MFi certificates. Where HAP's
//! MFi chip signs only a challenge derived from the SRP key, ironclad signs a transcript:
//!
//! ```text
//! "ironclad-hap-device-auth-v1" ‖ challenge ‖ SHA-512(len ‖ M1 ‖ len ‖ M2 ‖ len ‖ M3)
//! challenge = HKDF-SHA512(K, "MFi-Pair-Setup-Salt", "MFi-Pair-Setup-Info", 32)
//! ```
//!
//! K is the SRP session key, which only the two ends of this SRP run know, and the messages are
//! the exact bytes exchanged (lengths as u32 BE). The signature therefore cannot be replayed
//! into another pair-setup, and the long-term key the accessory sends in M6 (encrypted and signed
//! under keys derived from the same K) belongs to the certified device. Intermediate CA
//! certificates follow the device certificate as further `Certificate` items, each entry
//! separated by `0xFF`.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest::{Context, SHA512};
use ironclad_se::{KeyHandle, SignInput};

use crate::crypto::{AeadKey, hkdf};
use crate::error::{Error, Result};
use crate::tlv8::{Tlv8, Tlv8Writer, types};

/// HAP's MFi challenge derivation from the SRP key.
const CHALLENGE_SALT: &[u8] = b"MFi-Pair-Setup-Salt";
const CHALLENGE_INFO: &[u8] = b"MFi-Pair-Setup-Info";
/// Nonce of the M4 encrypted data.
pub(crate) const NONCE_M4: [u8; 8] = *b"PS-Msg04";
/// Domain separation of the signed transcript.
pub const TRANSCRIPT_LABEL: &[u8] = b"ironclad-hap-device-auth-v1";
/// Most certificates (device certificate plus intermediates) accepted in M4.
pub const MAX_CERTIFICATES: usize = 4;
/// Longest certificate accepted, in bytes of DER.
pub const MAX_CERTIFICATE_LEN: usize = 4096;

/// The accessory's side: its certificate chain and a signer for the certificate's key.
pub trait DeviceAttestation: Send + Sync + fmt::Debug {
    /// DER certificates, the device certificate first, then intermediate CAs (not the root).
    fn certificates(&self) -> &[Vec<u8>];
    /// A signature by the device certificate's key over `message` (ECDSA P-256 with SHA-256 in
    /// ASN.1 DER, or Ed25519, as the key dictates).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// The controller's side: checks the presented chain against the roots it trusts and the
/// signature by the device certificate's key.
pub trait DeviceAuthVerifier: Send + Sync + fmt::Debug {
    /// `certificates` as presented (device first); `message` is the transcript the accessory
    /// signed. Fails with [`Error::DeviceAuth`] on any doubt.
    fn verify(
        &self,
        certificates: &[Vec<u8>],
        message: &[u8],
        signature: &[u8],
    ) -> Result<AuthenticatedDevice>;
}

/// What a successful device authentication established, for the controller to keep with the
/// pairing.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthenticatedDevice {
    /// The device ID the certificate names (its subject CN).
    pub device_id: String,
    /// The certificate serial number, lower-case hex.
    pub serial: String,
    /// The presented DER certificates, device first.
    pub certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for AuthenticatedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatedDevice")
            .field("device_id", &self.device_id)
            .field("serial", &self.serial)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

/// A device certificate chain whose key sits in a secure element (label `device-auth` on an
/// ironclad device).
#[derive(Clone, Debug)]
pub struct SeDeviceAttestation {
    key: KeyHandle,
    certificates: Vec<Vec<u8>>,
}

impl SeDeviceAttestation {
    /// `certificates`: DER, device certificate first. The caller checks that the certificate is
    /// for this key (a mismatch only makes every controller refuse the device).
    pub fn new(key: KeyHandle, certificates: Vec<Vec<u8>>) -> Result<Self> {
        check_chain_shape(&certificates)?;
        Ok(SeDeviceAttestation { key, certificates })
    }
}

impl DeviceAttestation for SeDeviceAttestation {
    fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.key.sign(SignInput::Message(message))?)
    }
}

fn check_chain_shape(certificates: &[Vec<u8>]) -> Result<()> {
    if certificates.is_empty() {
        return Err(Error::DeviceAuth("no device certificate".into()));
    }
    if certificates.len() > MAX_CERTIFICATES {
        return Err(Error::DeviceAuth(format!("more than {MAX_CERTIFICATES} certificates")));
    }
    if certificates.iter().any(|c| c.is_empty() || c.len() > MAX_CERTIFICATE_LEN) {
        return Err(Error::DeviceAuth(format!("a certificate is empty or over {MAX_CERTIFICATE_LEN} bytes")));
    }
    Ok(())
}

/// The pair-setup messages so far, hashed as they went over the wire.
#[derive(Clone)]
pub(crate) struct Transcript(Context);

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transcript")
    }
}

impl Transcript {
    pub(crate) fn new() -> Self {
        Transcript(Context::new(&SHA512))
    }

    pub(crate) fn add(&mut self, message: &[u8]) {
        // Messages are bounded by the HTTP body limit; u32 cannot overflow for them.
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        self.0.update(&len.to_be_bytes());
        self.0.update(message);
    }

    /// What the device signs: label ‖ challenge(K) ‖ SHA-512 of the messages.
    pub(crate) fn signed_message(self, srp_key: &[u8]) -> Vec<u8> {
        let challenge = hkdf(srp_key, CHALLENGE_SALT, CHALLENGE_INFO);
        let digest = self.0.finish();
        [TRANSCRIPT_LABEL, &challenge[..], digest.as_ref()].concat()
    }
}

/// An accessory that will authenticate itself in this pair-setup.
#[derive(Clone, Debug)]
pub(crate) struct Attesting {
    pub(crate) attestation: Arc<dyn DeviceAttestation>,
    pub(crate) transcript: Transcript,
}

/// M4's EncryptedData: `{Signature, Certificate}` then `0xFF, Certificate` per intermediate.
pub(crate) fn seal_m4(
    attesting: Attesting,
    srp_key: &[u8],
    session_key: &[u8; 32],
    m3: &[u8],
) -> Result<Vec<u8>> {
    let Attesting { attestation, mut transcript } = attesting;
    transcript.add(m3);
    let signature = attestation.sign(&transcript.signed_message(srp_key))?;
    let mut w = Tlv8Writer::new();
    w.push(types::SIGNATURE, &signature);
    for (i, cert) in attestation.certificates().iter().enumerate() {
        if i > 0 {
            w.separator();
        }
        w.push(types::CERTIFICATE, cert);
    }
    Ok(AeadKey::new(session_key).seal(NONCE_M4, &[], &w.finish()))
}

/// A controller that requires the accessory to authenticate itself.
#[derive(Clone, Debug)]
pub(crate) struct Requiring {
    pub(crate) verifier: Arc<dyn DeviceAuthVerifier>,
    pub(crate) transcript: Transcript,
}

/// Opens M4's EncryptedData and has the verifier check chain and signature.
pub(crate) fn verify_m4(
    requiring: Requiring,
    srp_key: &[u8],
    session_key: &[u8; 32],
    m4: &Tlv8,
) -> Result<AuthenticatedDevice> {
    let sealed = m4.get(types::ENCRYPTED_DATA)?.ok_or(Error::NoDeviceCertificate)?;
    let plain = AeadKey::new(session_key).open(NONCE_M4, sealed, "pair-setup M4")?;
    let tlv = Tlv8::decode(&plain)?;
    let groups = tlv.groups();
    let first = groups.first().ok_or(Error::NoDeviceCertificate)?;
    let signature = first.require(types::SIGNATURE)?;
    let mut certificates = Vec::with_capacity(groups.len());
    for group in &groups {
        certificates.push(group.require(types::CERTIFICATE)?.to_vec());
    }
    check_chain_shape(&certificates)?;
    let message = requiring.transcript.signed_message(srp_key);
    requiring.verifier.verify(&certificates, &message, signature)
}
