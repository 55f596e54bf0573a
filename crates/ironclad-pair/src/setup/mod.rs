//! Pair-setup (M1–M6): SRP-6a with the setup code, then an exchange of long-term Ed25519 public
//! keys under signatures, encrypted with a key derived from the SRP secret.
//!
//! Accessory: [`accessory::ExpectM1`] → [`accessory::ExpectM3`] → [`accessory::ExpectM5`] →
//! [`Paired`]. Controller: [`controller::start`] → [`controller::ExpectM2`] →
//! [`controller::ExpectM4`] → [`controller::ExpectM6`] → [`Paired`].

pub mod accessory;
mod code;
pub mod controller;

pub use code::SetupCode;

use crate::attestation::AuthenticatedDevice;
use crate::crypto::{PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::error::Result;
use crate::store::{Pairing, PairingId, Permissions};
use crate::tlv8::{Tlv8, Tlv8Writer, types};

pub(crate) const ENCRYPT_SALT: &[u8] = b"Pair-Setup-Encrypt-Salt";
pub(crate) const ENCRYPT_INFO: &[u8] = b"Pair-Setup-Encrypt-Info";
pub(crate) const CONTROLLER_SIGN_SALT: &[u8] = b"Pair-Setup-Controller-Sign-Salt";
pub(crate) const CONTROLLER_SIGN_INFO: &[u8] = b"Pair-Setup-Controller-Sign-Info";
pub(crate) const ACCESSORY_SIGN_SALT: &[u8] = b"Pair-Setup-Accessory-Sign-Salt";
pub(crate) const ACCESSORY_SIGN_INFO: &[u8] = b"Pair-Setup-Accessory-Sign-Info";
pub(crate) const NONCE_M5: [u8; 8] = *b"PS-Msg05";
pub(crate) const NONCE_M6: [u8; 8] = *b"PS-Msg06";

/// Pair-setup flag: transient setup (stop after M4). Not supported.
pub const FLAG_TRANSIENT: u32 = 1 << 4;
/// Pair-setup flag: split setup. Not supported.
pub const FLAG_SPLIT: u32 = 1 << 24;

/// Pair-setup completed: the peer's pairing. The accessory has already stored it; a controller
/// stores it itself (it is needed for pair-verify).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paired {
    pub peer: Pairing,
    /// Controller side, when device authentication was required: the verified device
    /// certificate ([`crate::attestation`]). Always `None` on the accessory side.
    pub device: Option<AuthenticatedDevice>,
}

/// `X ‖ id ‖ LTPK`: what each side signs in M5/M6.
fn signed_info(x: &[u8], id: &PairingId, ltpk: &[u8]) -> Vec<u8> {
    [x, id.as_bytes(), ltpk].concat()
}

/// The plaintext of M5/M6: {Identifier, PublicKey, Signature}.
fn sub_tlv(id: &PairingId, ltpk: &[u8; PUBLIC_KEY_LEN], signature: &[u8; SIGNATURE_LEN]) -> Vec<u8> {
    Tlv8Writer::new()
        .push(types::IDENTIFIER, id.as_bytes())
        .push(types::PUBLIC_KEY, ltpk)
        .push(types::SIGNATURE, signature)
        .finish()
}

struct SubTlv {
    id: PairingId,
    ltpk: [u8; PUBLIC_KEY_LEN],
    signature: Vec<u8>,
}

fn parse_sub_tlv(plain: &[u8]) -> Result<SubTlv> {
    let tlv = Tlv8::decode(plain)?;
    let id = PairingId::new(tlv.require(types::IDENTIFIER)?)?;
    let ltpk = tlv.require_len(types::PUBLIC_KEY, PUBLIC_KEY_LEN)?.try_into().expect("checked length");
    let signature = tlv.require_len(types::SIGNATURE, SIGNATURE_LEN)?.to_vec();
    Ok(SubTlv { id, ltpk, signature })
}

impl SubTlv {
    fn into_pairing(self) -> Pairing {
        Pairing { id: self.id, public_key: self.ltpk, permissions: Permissions::ADMIN }
    }
}
