//! Pair-setup, accessory (device) side.
//!
//! ```text
//! ExpectM1::handle(M1) -> M2 + ExpectM3      checks: not paired, attempts < 100
//! ExpectM3::handle(M3) -> M4 + ExpectM5      SRP proof; a wrong code counts a failed attempt;
//!                                            device certificate + transcript signature if asked
//! ExpectM5::handle(M5) -> M6 + Paired        controller's signature; pairing stored BEFORE M6
//! ```
//! Every refusal is a [`Rejected`] carrying the error TLV to send. One pair-setup at a time:
//! the caller holds a [`SetupSlot`] and answers an M1 from another connection with
//! [`busy_reply`] while the slot is taken (HAP's 30 s timeout frees it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::{
    ACCESSORY_SIGN_INFO, ACCESSORY_SIGN_SALT, CONTROLLER_SIGN_INFO, CONTROLLER_SIGN_SALT, ENCRYPT_INFO,
    ENCRYPT_SALT, FLAG_SPLIT, FLAG_TRANSIENT, NONCE_M5, NONCE_M6, Paired, parse_sub_tlv, signed_info,
    sub_tlv,
};
use crate::attestation::{Attesting, DeviceAttestation, Transcript, seal_m4};
use crate::crypto::{AeadKey, RandomSource, TAG_LEN, hkdf, random, verify_ed25519};
use crate::error::{Error, ErrorCode, Rejected, Result, TlvErrorKind};
use crate::identity::{Identity, Reply};
use crate::srp::{HASH_LEN, SECRET_LEN, SrpServer, USERNAME, Verifier};
use crate::store::{AttemptCounter, MAX_FAILED_ATTEMPTS, PairingStore};
use crate::tlv8::{Tlv8, Tlv8Writer, error_reply, methods, types};

/// The reply to an M1 while another pair-setup is in progress: `State=2, Error=Busy`.
pub fn busy_reply() -> Vec<u8> {
    error_reply(2, ErrorCode::Busy)
}

/// HAP's limit on one pair-setup (M1 to M6).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Admits one pair-setup at a time across connections (kTLVError_Busy for the others). Pure: the
/// caller passes the time and a connection number of its choosing.
#[derive(Debug, Default)]
pub struct SetupSlot {
    holder: Option<(u64, Instant)>,
}

impl SetupSlot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the slot for `connection` (an M1 arrived). Fails with [`Error::Busy`] while another
    /// connection's setup is running and younger than [`SETUP_TIMEOUT`]; a new M1 from the holder
    /// restarts its setup.
    pub fn acquire(&mut self, connection: u64, now: Instant) -> Result<()> {
        match self.holder {
            Some((other, since))
                if other != connection && now.saturating_duration_since(since) < SETUP_TIMEOUT =>
            {
                Err(Error::Busy)
            }
            _ => {
                self.holder = Some((connection, now));
                Ok(())
            }
        }
    }

    /// Frees the slot when `connection`'s setup ends (M6 sent, refused, or connection closed).
    pub fn release(&mut self, connection: u64) {
        if matches!(self.holder, Some((c, _)) if c == connection) {
            self.holder = None;
        }
    }
}

fn check_attempts(attempts: &dyn AttemptCounter) -> Result<()> {
    let n = attempts.failed_attempts()?;
    if n >= MAX_FAILED_ATTEMPTS {
        return Err(Error::MaxTries { attempts: n });
    }
    Ok(())
}

/// Waiting for M1 (`State=1, Method=PairSetup`).
#[derive(Debug)]
pub struct ExpectM1 {
    identity: Identity,
    verifier: Verifier,
    attestation: Option<Arc<dyn DeviceAttestation>>,
}

impl ExpectM1 {
    /// `verifier` comes from the setup code ([`super::SetupCode::verifier`]) or was provisioned.
    pub fn new(identity: Identity, verifier: Verifier) -> Self {
        ExpectM1 { identity, verifier, attestation: None }
    }

    /// Presents this device certificate (and a transcript signature) in M4 when the controller
    /// asks with `Method = PairSetupWithAuth`; see [`crate::attestation`].
    pub fn with_attestation(mut self, attestation: Option<Arc<dyn DeviceAttestation>>) -> Self {
        self.attestation = attestation;
        self
    }

    pub fn handle(
        self,
        m1: &[u8],
        store: &dyn PairingStore,
        attempts: &dyn AttemptCounter,
        rng: &mut dyn RandomSource,
    ) -> Result<Reply<ExpectM3>, Rejected> {
        self.process(m1, store, attempts, rng).map_err(|e| Rejected::new(2, e))
    }

    fn process(
        self,
        m1: &[u8],
        store: &dyn PairingStore,
        attempts: &dyn AttemptCounter,
        rng: &mut dyn RandomSource,
    ) -> Result<Reply<ExpectM3>> {
        let tlv = Tlv8::decode(m1)?;
        tlv.check_state(1)?;
        // Method 1 asks for device authentication; without a device certificate it is plain
        // pair-setup, as hap-python treats it.
        let wants_auth = match tlv.get_u8(types::METHOD)? {
            None | Some(methods::PAIR_SETUP) => false,
            Some(methods::PAIR_SETUP_WITH_AUTH) => true,
            Some(other) => return Err(Error::UnsupportedMethod(other)),
        };
        let flags = tlv.get_u32(types::FLAGS)?.unwrap_or(0);
        if flags & (FLAG_TRANSIENT | FLAG_SPLIT) != 0 {
            return Err(Error::UnsupportedFlags(flags));
        }
        if store.is_paired()? {
            return Err(Error::AlreadyPaired);
        }
        check_attempts(attempts)?;
        // B without a leading zero byte: every peer then hashes the same bytes.
        let server = loop {
            let b = random::<SECRET_LEN>(rng)?;
            let server = SrpServer::new(USERNAME, self.verifier.clone(), &b);
            if server.public_key()[0] != 0 {
                break server;
            }
        };
        let message = Tlv8Writer::new()
            .push_u8(types::STATE, 2)
            .push(types::SALT, server.salt())
            .push(types::PUBLIC_KEY, server.public_key())
            .finish();
        let attesting = self.attestation.filter(|_| wants_auth).map(|attestation| {
            let mut transcript = Transcript::new();
            transcript.add(m1);
            transcript.add(&message);
            Attesting { attestation, transcript }
        });
        Ok(Reply { message, next: ExpectM3 { identity: self.identity, server, attesting } })
    }
}

/// Waiting for M3 (`State=3, PublicKey=A, Proof=M1`).
#[derive(Debug)]
pub struct ExpectM3 {
    identity: Identity,
    server: SrpServer,
    attesting: Option<Attesting>,
}

impl ExpectM3 {
    /// Verifies the SRP proof. A wrong proof increments the failed-attempt counter (durably,
    /// before the reply) and answers Authentication.
    pub fn handle(self, m3: &[u8], attempts: &dyn AttemptCounter) -> Result<Reply<ExpectM5>, Rejected> {
        self.process(m3, attempts).map_err(|e| Rejected::new(4, e))
    }

    fn process(self, m3: &[u8], attempts: &dyn AttemptCounter) -> Result<Reply<ExpectM5>> {
        let tlv = Tlv8::decode(m3)?;
        tlv.check_state(3)?;
        let a = tlv.require(types::PUBLIC_KEY)?;
        // 64 bytes; homekit_python strips the proof's leading zero bytes.
        let proof = tlv.require(types::PROOF)?;
        if proof.is_empty() || proof.len() > HASH_LEN {
            let kind = TlvErrorKind::BadLength { ty: types::PROOF, len: proof.len() };
            return Err(Error::Tlv { offset: tlv.offset_of(types::PROOF), kind });
        }
        check_attempts(attempts)?;
        let session = match self.server.verify_client(a, proof) {
            Ok(session) => session,
            Err(e) => {
                attempts.record_failure()?;
                return Err(e);
            }
        };
        let session_key = hkdf(&session.key, ENCRYPT_SALT, ENCRYPT_INFO);
        let mut m4 = Tlv8Writer::new();
        m4.push_u8(types::STATE, 4).push(types::PROOF, &session.proof);
        if let Some(attesting) = self.attesting {
            m4.push(types::ENCRYPTED_DATA, &seal_m4(attesting, &session.key, &session_key, m3)?);
        }
        let message = m4.finish();
        Ok(Reply { message, next: ExpectM5 { identity: self.identity, srp_key: session.key, session_key } })
    }
}

/// Waiting for M5 (`State=5, EncryptedData`).
pub struct ExpectM5 {
    identity: Identity,
    srp_key: Zeroizing<Vec<u8>>,
    session_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ExpectM5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectM5").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl ExpectM5 {
    /// Verifies the controller's signature, signs our own long-term key (in the secure element),
    /// then stores the controller as an admin pairing and resets the attempt counter, and only
    /// then returns M6.
    pub fn handle(
        self,
        m5: &[u8],
        store: &dyn PairingStore,
        attempts: &dyn AttemptCounter,
    ) -> Result<Reply<Paired>, Rejected> {
        self.process(m5, store, attempts).map_err(|e| Rejected::new(6, e))
    }

    fn process(
        self,
        m5: &[u8],
        store: &dyn PairingStore,
        attempts: &dyn AttemptCounter,
    ) -> Result<Reply<Paired>> {
        let tlv = Tlv8::decode(m5)?;
        tlv.check_state(5)?;
        let sealed = tlv.require(types::ENCRYPTED_DATA)?;
        if sealed.len() < TAG_LEN {
            let offset = tlv.offset_of(types::ENCRYPTED_DATA);
            return Err(Error::Tlv {
                offset,
                kind: TlvErrorKind::BadLength { ty: types::ENCRYPTED_DATA, len: sealed.len() },
            });
        }
        let key = AeadKey::new(&self.session_key);
        let plain = key.open(NONCE_M5, sealed, "pair-setup M5")?;
        let sub = parse_sub_tlv(&plain)?;
        let controller_x = hkdf(&self.srp_key, CONTROLLER_SIGN_SALT, CONTROLLER_SIGN_INFO);
        let info = signed_info(&controller_x[..], &sub.id, &sub.ltpk);
        verify_ed25519(&sub.ltpk, &info, &sub.signature, "pair-setup M5")?;

        let accessory_x = hkdf(&self.srp_key, ACCESSORY_SIGN_SALT, ACCESSORY_SIGN_INFO);
        let ltpk = self.identity.key.public_key();
        let signature = self.identity.key.sign(&signed_info(&accessory_x[..], &self.identity.id, &ltpk))?;
        let sealed = key.seal(NONCE_M6, &[], &sub_tlv(&self.identity.id, &ltpk, &signature));
        let message =
            Tlv8Writer::new().push_u8(types::STATE, 6).push(types::ENCRYPTED_DATA, &sealed).finish();

        let peer = sub.into_pairing();
        store.put(&peer)?;
        attempts.reset()?;
        Ok(Reply { message, next: Paired { peer, device: None } })
    }
}
