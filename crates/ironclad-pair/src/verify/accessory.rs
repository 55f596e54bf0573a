//! Pair-verify, accessory side.
//!
//! ```text
//! ExpectM1::handle(M1) -> M2 + ExpectM3      our ephemeral key, signed with the LTSK (in the SE)
//! ExpectM3::handle(M3) -> M4 + Verified      controller looked up in the store, signature checked
//! ```

use zeroize::Zeroizing;

use super::{
    ENCRYPT_INFO, ENCRYPT_SALT, NONCE_M2, NONCE_M3, Verified, parse_sub_tlv, require_public, signed_info,
    sub_tlv,
};
use crate::crypto::{AeadKey, Ephemeral, PUBLIC_KEY_LEN, RandomSource, hkdf, verify_ed25519};
use crate::error::{Error, Rejected, Result};
use crate::identity::{Identity, Reply};
use crate::session::Role;
use crate::store::PairingStore;
use crate::tlv8::{Tlv8, Tlv8Writer, types};

/// Waiting for M1 (`State=1, PublicKey`).
#[derive(Debug)]
pub struct ExpectM1 {
    identity: Identity,
}

impl ExpectM1 {
    pub fn new(identity: Identity) -> Self {
        ExpectM1 { identity }
    }

    pub fn handle(self, m1: &[u8], rng: &mut dyn RandomSource) -> Result<Reply<ExpectM3>, Rejected> {
        self.process(m1, rng).map_err(|e| Rejected::new(2, e))
    }

    fn process(self, m1: &[u8], rng: &mut dyn RandomSource) -> Result<Reply<ExpectM3>> {
        let tlv = Tlv8::decode(m1)?;
        tlv.check_state(1)?;
        let controller_public = require_public(&tlv)?;
        let ephemeral = Ephemeral::generate(rng)?;
        let shared = ephemeral.agree(&controller_public, "pair-verify M1")?;
        let own_public = *ephemeral.public();
        let signature =
            self.identity.key.sign(&signed_info(&own_public, &self.identity.id, &controller_public))?;
        let key = AeadKey::new(&hkdf(&shared[..], ENCRYPT_SALT, ENCRYPT_INFO));
        let sealed = key.seal(NONCE_M2, &[], &sub_tlv(&self.identity.id, &signature));
        let message = Tlv8Writer::new()
            .push_u8(types::STATE, 2)
            .push(types::PUBLIC_KEY, &own_public)
            .push(types::ENCRYPTED_DATA, &sealed)
            .finish();
        Ok(Reply { message, next: ExpectM3 { key, shared, own_public, controller_public } })
    }
}

/// Waiting for M3 (`State=3, EncryptedData`).
pub struct ExpectM3 {
    key: AeadKey,
    shared: Zeroizing<[u8; 32]>,
    own_public: [u8; PUBLIC_KEY_LEN],
    controller_public: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for ExpectM3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectM3").finish_non_exhaustive()
    }
}

impl ExpectM3 {
    /// Authenticates the controller against its stored long-term key; M4 is `State=4`, after
    /// which both directions are encrypted ([`Verified::into_session`]).
    pub fn handle(self, m3: &[u8], store: &dyn PairingStore) -> Result<Reply<Verified>, Rejected> {
        self.process(m3, store).map_err(|e| Rejected::new(4, e))
    }

    fn process(self, m3: &[u8], store: &dyn PairingStore) -> Result<Reply<Verified>> {
        let tlv = Tlv8::decode(m3)?;
        tlv.check_state(3)?;
        let plain = self.key.open(NONCE_M3, tlv.require(types::ENCRYPTED_DATA)?, "pair-verify M3")?;
        let (id, signature) = parse_sub_tlv(&plain)?;
        let peer = store.get(&id)?.ok_or_else(|| Error::UnknownPeer(id.to_string()))?;
        let info = signed_info(&self.controller_public, &id, &self.own_public);
        verify_ed25519(&peer.public_key, &info, &signature, "pair-verify M3")?;
        let message = Tlv8Writer::new().push_u8(types::STATE, 4).finish();
        Ok(Reply { message, next: Verified { peer, role: Role::Accessory, shared: self.shared } })
    }
}
