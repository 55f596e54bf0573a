//! /pairings add, remove and list, admin only.

use ironclad_pair::pairings::{self, PairingsEvent, PairingsRequest};
use ironclad_pair::{Error, ErrorCode, MemoryStore, Pairing, PairingId, PairingStore, Permissions};

fn pairing(id: &str, key: u8, permissions: Permissions) -> Pairing {
    Pairing { id: id.parse().unwrap(), public_key: [key; 32], permissions }
}

fn store_with_admin() -> (MemoryStore, PairingId) {
    let store = MemoryStore::new();
    let admin = pairing("admin", 1, Permissions::ADMIN);
    store.put(&admin).unwrap();
    (store, admin.id)
}

#[test]
fn add_list_remove() {
    let (store, admin) = store_with_admin();
    let user = pairing("user", 2, Permissions::USER);
    let reply =
        pairings::handle_request(&PairingsRequest::Add(user.clone()).encode(), &admin, &store).unwrap();
    pairings::parse_response(&reply.message).unwrap();
    assert_eq!(reply.events, [PairingsEvent::Added(user.clone())]);

    let reply = pairings::handle_request(&PairingsRequest::List.encode(), &admin, &store).unwrap();
    let listed = pairings::parse_list_response(&reply.message).unwrap();
    assert_eq!(listed, store.list().unwrap());
    assert_eq!(listed.len(), 2);

    // Same key: permissions update. Other key: refused.
    let promoted = pairing("user", 2, Permissions::ADMIN);
    let reply =
        pairings::handle_request(&PairingsRequest::Add(promoted.clone()).encode(), &admin, &store).unwrap();
    assert_eq!(reply.events, [PairingsEvent::Updated(promoted)]);
    let rejected = pairings::handle_request(
        &PairingsRequest::Add(pairing("user", 3, Permissions::USER)).encode(),
        &admin,
        &store,
    )
    .unwrap_err();
    assert!(matches!(rejected.error, Error::PairingConflict(_)));
    assert!(matches!(pairings::parse_response(&rejected.reply), Err(Error::Peer(ErrorCode::Unknown))));

    let remove = PairingsRequest::Remove("user".parse().unwrap()).encode();
    let reply = pairings::handle_request(&remove, &admin, &store).unwrap();
    assert_eq!(reply.events, [PairingsEvent::Removed("user".parse().unwrap())]);
    // Idempotent.
    pairings::handle_request(&remove, &admin, &store).unwrap();
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn non_admin_is_refused() {
    let (store, _) = store_with_admin();
    let user = pairing("user", 2, Permissions::USER);
    store.put(&user).unwrap();
    for request in [PairingsRequest::List, PairingsRequest::Remove("admin".parse().unwrap())] {
        let rejected = pairings::handle_request(&request.encode(), &user.id, &store).unwrap_err();
        assert!(matches!(rejected.error, Error::NotAdmin(_)));
        assert!(matches!(
            pairings::parse_response(&rejected.reply),
            Err(Error::Peer(ErrorCode::Authentication))
        ));
    }
    // An identifier the store does not know is no admin either.
    let stranger: PairingId = "stranger".parse().unwrap();
    assert!(pairings::handle_request(&PairingsRequest::List.encode(), &stranger, &store).is_err());
}

#[test]
fn removing_the_last_admin_unpairs_everything() {
    let (store, admin) = store_with_admin();
    store.put(&pairing("user", 2, Permissions::USER)).unwrap();
    let reply =
        pairings::handle_request(&PairingsRequest::Remove(admin.clone()).encode(), &admin, &store).unwrap();
    assert_eq!(reply.events, [PairingsEvent::Removed(admin), PairingsEvent::AllRemoved]);
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn full_store_is_max_peers() {
    let store = MemoryStore::with_capacity(1);
    let admin = pairing("admin", 1, Permissions::ADMIN);
    store.put(&admin).unwrap();
    let rejected = pairings::handle_request(
        &PairingsRequest::Add(pairing("x", 2, Permissions::USER)).encode(),
        &admin.id,
        &store,
    )
    .unwrap_err();
    assert!(matches!(rejected.error, Error::MaxPeers));
    assert!(matches!(pairings::parse_response(&rejected.reply), Err(Error::Peer(ErrorCode::MaxPeers))));
}

#[test]
fn requests_round_trip() {
    for request in [
        PairingsRequest::List,
        PairingsRequest::Remove("6A0C4B0F-5C31-4F1D-9A38-0E0C1F5E1C11".parse().unwrap()),
        PairingsRequest::Add(pairing("x", 5, Permissions::ADMIN)),
    ] {
        assert_eq!(PairingsRequest::decode(&request.encode()).unwrap(), request);
    }
    assert!(matches!(PairingsRequest::decode(&[6, 1, 1, 0, 1, 9]), Err(Error::UnsupportedMethod(9))));
}
