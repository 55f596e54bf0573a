//! Pair-verify, controller side.
//!
//! ```text
//! start()              -> M1 + ExpectM2
//! ExpectM2::handle(M2) -> M3 + ExpectM4     accessory looked up in the store, signature checked
//! ExpectM4::handle(M4) -> Verified
//! ```

use zeroize::Zeroizing;

use super::{
    ENCRYPT_INFO, ENCRYPT_SALT, NONCE_M2, NONCE_M3, Verified, parse_sub_tlv, require_public, signed_info,
    sub_tlv,
};
use crate::crypto::{AeadKey, Ephemeral, RandomSource, hkdf, verify_ed25519};
use crate::error::{Error, Result};
use crate::identity::{Identity, Reply};
use crate::session::Role;
use crate::store::{Pairing, PairingStore};
use crate::tlv8::{Tlv8, Tlv8Writer, types};

/// Starts pair-verify: M1 (`State=1, PublicKey`).
pub fn start(identity: Identity, rng: &mut dyn RandomSource) -> Result<Reply<ExpectM2>> {
    let ephemeral = Ephemeral::generate(rng)?;
    let message =
        Tlv8Writer::new().push_u8(types::STATE, 1).push(types::PUBLIC_KEY, ephemeral.public()).finish();
    Ok(Reply { message, next: ExpectM2 { identity, ephemeral } })
}

/// Waiting for M2 (`State=2, PublicKey, EncryptedData`).
#[derive(Debug)]
pub struct ExpectM2 {
    identity: Identity,
    ephemeral: Ephemeral,
}

impl ExpectM2 {
    /// Looks the accessory's identifier up in `store` and checks its signature.
    pub fn handle(self, m2: &[u8], store: &dyn PairingStore) -> Result<Reply<ExpectM4>> {
        let tlv = Tlv8::decode(m2)?;
        tlv.check_reply(2)?;
        let accessory_public = require_public(&tlv)?;
        let shared = self.ephemeral.agree(&accessory_public, "pair-verify M2")?;
        let key = AeadKey::new(&hkdf(&shared[..], ENCRYPT_SALT, ENCRYPT_INFO));
        let plain = key.open(NONCE_M2, tlv.require(types::ENCRYPTED_DATA)?, "pair-verify M2")?;
        let (id, signature) = parse_sub_tlv(&plain)?;
        let peer = store.get(&id)?.ok_or_else(|| Error::UnknownPeer(id.to_string()))?;
        let own_public = *self.ephemeral.public();
        verify_ed25519(
            &peer.public_key,
            &signed_info(&accessory_public, &id, &own_public),
            &signature,
            "pair-verify M2",
        )?;
        let signature =
            self.identity.key.sign(&signed_info(&own_public, &self.identity.id, &accessory_public))?;
        let sealed = key.seal(NONCE_M3, &[], &sub_tlv(&self.identity.id, &signature));
        let message =
            Tlv8Writer::new().push_u8(types::STATE, 3).push(types::ENCRYPTED_DATA, &sealed).finish();
        Ok(Reply { message, next: ExpectM4 { peer, shared } })
    }
}

/// Waiting for M4 (`State=4`, or an Error).
pub struct ExpectM4 {
    peer: Pairing,
    shared: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ExpectM4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectM4").field("peer", &self.peer).finish_non_exhaustive()
    }
}

impl ExpectM4 {
    pub fn handle(self, m4: &[u8]) -> Result<Verified> {
        Tlv8::decode(m4)?.check_reply(4)?;
        Ok(Verified { peer: self.peer, role: Role::Controller, shared: self.shared })
    }
}
