//! `/pairings`: add, remove and list pairings over a verified session (admin only).
//!
//! Requests are `State=1, Method=Add|Remove|List, …`; replies `State=2` (plus the list, or an
//! Error). Accessory side: [`handle_request`]. Controller side: [`PairingsRequest::encode`] and
//! [`parse_response`] / [`parse_list_response`].

use crate::crypto::PUBLIC_KEY_LEN;
use crate::error::{Error, Rejected, Result};
use crate::store::{Pairing, PairingId, PairingStore, Permissions};
use crate::tlv8::{Tlv8, Tlv8Writer, methods, types};

/// A /pairings request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairingsRequest {
    /// Add a pairing, or update the permissions of an existing one with the same key.
    Add(Pairing),
    /// Remove a pairing (succeeds if absent).
    Remove(PairingId),
    /// List every pairing.
    List,
}

impl PairingsRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Tlv8Writer::new();
        w.push_u8(types::STATE, 1);
        match self {
            PairingsRequest::Add(p) => {
                w.push_u8(types::METHOD, methods::ADD_PAIRING)
                    .push(types::IDENTIFIER, p.id.as_bytes())
                    .push(types::PUBLIC_KEY, &p.public_key)
                    .push_u8(types::PERMISSIONS, p.permissions.0);
            }
            PairingsRequest::Remove(id) => {
                w.push_u8(types::METHOD, methods::REMOVE_PAIRING).push(types::IDENTIFIER, id.as_bytes());
            }
            PairingsRequest::List => {
                w.push_u8(types::METHOD, methods::LIST_PAIRINGS);
            }
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let tlv = Tlv8::decode(bytes)?;
        tlv.check_state(1)?;
        let method = tlv.get_u8(types::METHOD)?.ok_or(tlv.bad_value(types::METHOD))?;
        match method {
            methods::ADD_PAIRING => Ok(PairingsRequest::Add(parse_pairing(&tlv)?)),
            methods::REMOVE_PAIRING => {
                Ok(PairingsRequest::Remove(PairingId::new(tlv.require(types::IDENTIFIER)?)?))
            }
            methods::LIST_PAIRINGS => Ok(PairingsRequest::List),
            other => Err(Error::UnsupportedMethod(other)),
        }
    }
}

fn parse_pairing(tlv: &Tlv8) -> Result<Pairing> {
    let id = PairingId::new(tlv.require(types::IDENTIFIER)?)?;
    let public_key = tlv.require_len(types::PUBLIC_KEY, PUBLIC_KEY_LEN)?.try_into().expect("checked length");
    let permissions = Permissions(tlv.get_u8(types::PERMISSIONS)?.ok_or(tlv.bad_value(types::PERMISSIONS))?);
    Ok(Pairing { id, public_key, permissions })
}

/// What changed, for the caller to act on (e.g. close the sessions of a removed controller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairingsEvent {
    Added(Pairing),
    /// Same identifier and key: only the permissions changed.
    Updated(Pairing),
    Removed(PairingId),
    /// No admin was left, so every pairing was removed: the accessory is unpaired (`sf=1`).
    AllRemoved,
}

/// A handled /pairings request: the reply to send and what changed.
#[derive(Debug)]
pub struct PairingsReply {
    pub message: Vec<u8>,
    pub events: Vec<PairingsEvent>,
}

/// Serves one /pairings request from the controller `caller` (the peer of the verified session).
/// The caller must be an admin *in the store now*, so a controller demoted or removed mid-session
/// loses the right at once.
pub fn handle_request(
    request: &[u8],
    caller: &PairingId,
    store: &dyn PairingStore,
) -> Result<PairingsReply, Rejected> {
    process(request, caller, store).map_err(|e| Rejected::new(2, e))
}

fn process(request: &[u8], caller: &PairingId, store: &dyn PairingStore) -> Result<PairingsReply> {
    let request = PairingsRequest::decode(request)?;
    match store.get(caller)? {
        Some(p) if p.permissions.is_admin() => {}
        _ => return Err(Error::NotAdmin(caller.to_string())),
    }
    let ok = || Tlv8Writer::new().push_u8(types::STATE, 2).finish();
    match request {
        PairingsRequest::Add(new) => {
            let event = match store.get(&new.id)? {
                Some(existing) if existing.public_key != new.public_key => {
                    return Err(Error::PairingConflict(new.id.to_string()));
                }
                Some(_) => PairingsEvent::Updated(new.clone()),
                None => PairingsEvent::Added(new.clone()),
            };
            store.put(&new)?;
            Ok(PairingsReply { message: ok(), events: vec![event] })
        }
        PairingsRequest::Remove(id) => {
            store.remove(&id)?;
            let mut events = vec![PairingsEvent::Removed(id)];
            let remaining = store.list()?;
            if !remaining.is_empty() && !remaining.iter().any(|p| p.permissions.is_admin()) {
                for p in &remaining {
                    store.remove(&p.id)?;
                }
                events.push(PairingsEvent::AllRemoved);
            }
            Ok(PairingsReply { message: ok(), events })
        }
        PairingsRequest::List => {
            let mut w = Tlv8Writer::new();
            w.push_u8(types::STATE, 2);
            for (i, p) in store.list()?.iter().enumerate() {
                if i > 0 {
                    w.separator();
                }
                w.push(types::IDENTIFIER, p.id.as_bytes())
                    .push(types::PUBLIC_KEY, &p.public_key)
                    .push_u8(types::PERMISSIONS, p.permissions.0);
            }
            Ok(PairingsReply { message: w.finish(), events: Vec::new() })
        }
    }
}

/// Controller side: the reply to Add or Remove (`State=2`, or an Error).
pub fn parse_response(reply: &[u8]) -> Result<()> {
    Tlv8::decode(reply)?.check_reply(2)
}

/// Controller side: the reply to List.
pub fn parse_list_response(reply: &[u8]) -> Result<Vec<Pairing>> {
    let tlv = Tlv8::decode(reply)?;
    tlv.check_reply(2)?;
    tlv.groups()
        .iter()
        .filter(|g| g.items().iter().any(|i| i.ty != types::STATE))
        .map(parse_pairing)
        .collect()
}
