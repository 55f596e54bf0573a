//! Pair-verify (M1–M4): an X25519 exchange authenticated by both long-term keys, giving the
//! session keys of [`crate::session`].
//!
//! Accessory: [`accessory::ExpectM1`] → [`accessory::ExpectM3`] → [`Verified`].
//! Controller: [`controller::start`] → [`controller::ExpectM2`] → [`controller::ExpectM4`] →
//! [`Verified`].

pub mod accessory;
pub mod controller;

use zeroize::Zeroizing;

use crate::crypto::{PUBLIC_KEY_LEN, SIGNATURE_LEN, hkdf};
use crate::error::Result;
use crate::session::{Role, Session, SessionKeys};
use crate::store::{Pairing, PairingId};
use crate::tlv8::{Tlv8, Tlv8Writer, types};

pub(crate) const ENCRYPT_SALT: &[u8] = b"Pair-Verify-Encrypt-Salt";
pub(crate) const ENCRYPT_INFO: &[u8] = b"Pair-Verify-Encrypt-Info";
pub(crate) const NONCE_M2: [u8; 8] = *b"PV-Msg02";
pub(crate) const NONCE_M3: [u8; 8] = *b"PV-Msg03";

/// Pair-verify completed: who the peer is (as stored) and the shared secret, from which the
/// session keys come.
pub struct Verified {
    pub peer: Pairing,
    role: Role,
    shared: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified").field("peer", &self.peer).field("role", &self.role).finish_non_exhaustive()
    }
}

impl Verified {
    /// The control-channel keys: `HKDF-SHA512(shared, "Control-Salt", "Control-{Read,Write}-Encryption-Key")`.
    pub fn session_keys(&self) -> SessionKeys {
        SessionKeys::derive(&self.shared[..], self.role)
    }

    /// The encrypted session for this connection.
    pub fn into_session(self) -> Session {
        Session::new(&self.session_keys())
    }

    /// Another 32-byte key from the pair-verify secret (HKDF-SHA512 with the given salt and
    /// info), for protocols layered on the verified connection.
    pub fn derive_key(&self, salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
        hkdf(&self.shared[..], salt, info)
    }
}

/// `ephemeral(own) ‖ id ‖ ephemeral(peer)`.
fn signed_info(own_ephemeral: &[u8], id: &PairingId, peer_ephemeral: &[u8]) -> Vec<u8> {
    [own_ephemeral, id.as_bytes(), peer_ephemeral].concat()
}

fn sub_tlv(id: &PairingId, signature: &[u8; SIGNATURE_LEN]) -> Vec<u8> {
    Tlv8Writer::new().push(types::IDENTIFIER, id.as_bytes()).push(types::SIGNATURE, signature).finish()
}

fn parse_sub_tlv(plain: &[u8]) -> Result<(PairingId, Vec<u8>)> {
    let tlv = Tlv8::decode(plain)?;
    let id = PairingId::new(tlv.require(types::IDENTIFIER)?)?;
    let signature = tlv.require_len(types::SIGNATURE, SIGNATURE_LEN)?.to_vec();
    Ok((id, signature))
}

fn require_public(tlv: &Tlv8) -> Result<[u8; PUBLIC_KEY_LEN]> {
    Ok(tlv.require_len(types::PUBLIC_KEY, PUBLIC_KEY_LEN)?.try_into().expect("checked length"))
}
