//! Pair-setup, controller (phone) side.
//!
//! ```text
//! start()              -> M1 + ExpectM2
//! ExpectM2::handle(M2) -> M3 + ExpectM4     SRP; Error::SrpRestart if B has a leading zero
//! ExpectM4::handle(M4) -> M5 + ExpectM6     accessory's SRP proof (and device certificate, if
//!                                           required); our signed LTPK
//! ExpectM6::handle(M6) -> Paired            accessory's signed LTPK (the caller stores it)
//! ```
//! A kTLVError from the accessory surfaces as [`Error::Peer`]. On [`Error::SrpRestart`] call
//! [`start`] again on the same connection: the accessory draws a new b, and failures only count
//! at M3, which was never sent.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{
    ACCESSORY_SIGN_INFO, ACCESSORY_SIGN_SALT, CONTROLLER_SIGN_INFO, CONTROLLER_SIGN_SALT, ENCRYPT_INFO,
    ENCRYPT_SALT, NONCE_M5, NONCE_M6, Paired, SetupCode, parse_sub_tlv, signed_info, sub_tlv,
};
use crate::attestation::{AuthenticatedDevice, DeviceAuthVerifier, Requiring, Transcript, verify_m4};
use crate::crypto::{AeadKey, RandomSource, hkdf, random, verify_ed25519};
use crate::error::{Error, Result};
use crate::identity::{Identity, Reply};
use crate::srp::{ClientSession, GROUP_LEN, SECRET_LEN, SrpClient, USERNAME};
use crate::tlv8::{Tlv8, Tlv8Writer, methods, types};

/// Draws of `a` before giving up (each redraw has probability about 3/256).
const MAX_DRAWS: usize = 64;

/// Starts pair-setup: M1 (`State=1, Method=PairSetup`).
pub fn start(identity: Identity, code: SetupCode) -> Reply<ExpectM2> {
    let message =
        Tlv8Writer::new().push_u8(types::STATE, 1).push_u8(types::METHOD, methods::PAIR_SETUP).finish();
    Reply { message, next: ExpectM2 { identity, code, requiring: None } }
}

/// Starts pair-setup that requires the accessory to prove it is a genuine device: M1 with
/// `Method=PairSetupWithAuth`; M4 must carry a device certificate and a transcript signature
/// that `verifier` accepts ([`crate::attestation`]), or pair-setup stops before our long-term
/// key is sent.
pub fn start_with_device_auth(
    identity: Identity,
    code: SetupCode,
    verifier: Arc<dyn DeviceAuthVerifier>,
) -> Reply<ExpectM2> {
    let message = Tlv8Writer::new()
        .push_u8(types::STATE, 1)
        .push_u8(types::METHOD, methods::PAIR_SETUP_WITH_AUTH)
        .finish();
    let mut transcript = Transcript::new();
    transcript.add(&message);
    Reply { message, next: ExpectM2 { identity, code, requiring: Some(Requiring { verifier, transcript }) } }
}

/// Waiting for M2 (`State=2, Salt, PublicKey=B`).
#[derive(Debug)]
pub struct ExpectM2 {
    identity: Identity,
    code: SetupCode,
    requiring: Option<Requiring>,
}

impl ExpectM2 {
    pub fn handle(self, m2: &[u8], rng: &mut dyn RandomSource) -> Result<Reply<ExpectM4>> {
        let tlv = Tlv8::decode(m2)?;
        tlv.check_reply(2)?;
        // The salt is used exactly as received.
        let salt = tlv.require(types::SALT)?;
        if salt.is_empty() || salt.len() > 64 {
            return Err(tlv.bad_value(types::SALT));
        }
        let b = tlv.require(types::PUBLIC_KEY)?;
        let significant = b.iter().skip_while(|x| **x == 0).count();
        if b.len() > GROUP_LEN {
            return Err(Error::SrpPublicValue("B"));
        }
        if significant < GROUP_LEN {
            // Peers disagree on whether such a B is hashed padded or stripped: draw again.
            return Err(Error::SrpRestart);
        }
        let mut draws = 0;
        let session = loop {
            draws += 1;
            let a = random::<SECRET_LEN>(rng)?;
            let client = SrpClient::new(&a);
            if client.public_key()[0] == 0 && draws < MAX_DRAWS {
                continue;
            }
            let session = client.process(USERNAME, self.code.as_bytes(), salt, b)?;
            if session.is_unambiguous() || draws >= MAX_DRAWS {
                break session;
            }
        };
        let message = Tlv8Writer::new()
            .push_u8(types::STATE, 3)
            .push(types::PUBLIC_KEY, session.public_key())
            .push(types::PROOF, session.proof())
            .finish();
        let requiring = self.requiring.map(|mut r| {
            r.transcript.add(m2);
            r.transcript.add(&message);
            r
        });
        Ok(Reply { message, next: ExpectM4 { identity: self.identity, session, requiring } })
    }
}

/// Waiting for M4 (`State=4, Proof=M2`, and `EncryptedData` with device authentication).
#[derive(Debug)]
pub struct ExpectM4 {
    identity: Identity,
    session: ClientSession,
    requiring: Option<Requiring>,
}

impl ExpectM4 {
    pub fn handle(self, m4: &[u8]) -> Result<Reply<ExpectM6>> {
        let tlv = Tlv8::decode(m4)?;
        tlv.check_reply(4)?;
        self.session.verify_server(tlv.require(types::PROOF)?)?;
        let srp_key = Zeroizing::new(self.session.key().to_vec());
        let session_key = hkdf(&srp_key, ENCRYPT_SALT, ENCRYPT_INFO);
        let device = match self.requiring {
            Some(requiring) => Some(verify_m4(requiring, &srp_key, &session_key, &tlv)?),
            None => None,
        };
        let controller_x = hkdf(&srp_key, CONTROLLER_SIGN_SALT, CONTROLLER_SIGN_INFO);
        let ltpk = self.identity.key.public_key();
        let signature = self.identity.key.sign(&signed_info(&controller_x[..], &self.identity.id, &ltpk))?;
        let sealed =
            AeadKey::new(&session_key).seal(NONCE_M5, &[], &sub_tlv(&self.identity.id, &ltpk, &signature));
        let message =
            Tlv8Writer::new().push_u8(types::STATE, 5).push(types::ENCRYPTED_DATA, &sealed).finish();
        Ok(Reply { message, next: ExpectM6 { srp_key, session_key, device } })
    }
}

/// Waiting for M6 (`State=6, EncryptedData`).
pub struct ExpectM6 {
    srp_key: Zeroizing<Vec<u8>>,
    session_key: Zeroizing<[u8; 32]>,
    device: Option<AuthenticatedDevice>,
}

impl std::fmt::Debug for ExpectM6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectM6").finish_non_exhaustive()
    }
}

impl ExpectM6 {
    /// Verifies the accessory's signed long-term key. Store the returned pairing durably.
    pub fn handle(self, m6: &[u8]) -> Result<Paired> {
        let tlv = Tlv8::decode(m6)?;
        tlv.check_reply(6)?;
        let sealed = tlv.require(types::ENCRYPTED_DATA)?;
        let plain = AeadKey::new(&self.session_key).open(NONCE_M6, sealed, "pair-setup M6")?;
        let sub = parse_sub_tlv(&plain)?;
        let accessory_x = hkdf(&self.srp_key, ACCESSORY_SIGN_SALT, ACCESSORY_SIGN_INFO);
        verify_ed25519(
            &sub.ltpk,
            &signed_info(&accessory_x[..], &sub.id, &sub.ltpk),
            &sub.signature,
            "pair-setup M6",
        )?;
        Ok(Paired { peer: sub.into_pairing(), device: self.device })
    }
}
