//! The shared suite's CRL tests (publication, replay refusal, scoped revocation).

use std::sync::Arc;

use super::h;
use crate::store::{
    ChallengeOp, CrlEntry, CrlKey, CrlNumber, CrlPublished, MatchKey, Revocation, Store, StoredCrl,
};

fn crl(ca: u8, number: u64, der: &[u8], entries: u64) -> StoredCrl {
    StoredCrl {
        ca_sha256: h(ca),
        number: CrlNumber::from_u64(number),
        this_update: 1_000,
        next_update: 2_000,
        entries,
        der: der.to_vec(),
        published_at: 1_001,
    }
}

fn entry(serial: &str, reason: &str) -> CrlEntry {
    CrlEntry { serial: serial.into(), reason: reason.into(), revoked_at: 900 }
}

fn key(ca: u8, serial: &str) -> CrlKey {
    CrlKey { issuer: h(ca), serial: serial.into() }
}

/// A CRL becomes current only with a higher number; its entries revoke only under its CA.
pub async fn crls_publish_in_order_and_scope_their_entries(s: &Arc<dyn Store>) {
    assert_eq!(s.crl(&h(1)).await.unwrap(), None);
    let first = crl(1, 5, b"crl-5", 2);
    let entries = [entry("0a", "keyCompromise"), entry("0b", "superseded")];
    assert_eq!(s.publish_crl(&first, &entries).await.unwrap(), CrlPublished::Stored);
    assert_eq!(s.crl(&h(1)).await.unwrap(), Some(first.clone()));

    let revoked = s.revocation_for("0a", &[key(1, "0a")]).await.unwrap().unwrap();
    assert_eq!((revoked.serial.as_str(), revoked.reason.as_str()), ("0a", "keyCompromise (CRL)"));
    assert_eq!(revoked.revoked_at, 900);
    assert_eq!(s.revocation_for("0a", &[key(2, "0a")]).await.unwrap(), None, "another CA's serial 0a");
    assert_eq!(s.revocation_for("0c", &[key(1, "0c")]).await.unwrap(), None);
    // Any certificate of the chain: here the second key (a CA named by the CRL above it).
    assert!(s.revocation_for("ff", &[key(1, "ff"), key(1, "0b")]).await.unwrap().is_some());

    // The same CRL again: unchanged. The same number with other bytes, or a lower number:
    // refused, naming the current number, and nothing changes.
    assert_eq!(s.publish_crl(&first, &entries).await.unwrap(), CrlPublished::Unchanged);
    let current = CrlNumber::from_u64(5);
    assert_eq!(
        s.publish_crl(&crl(1, 5, b"other", 0), &[]).await.unwrap(),
        CrlPublished::NotNewer { current: current.clone() }
    );
    assert_eq!(
        s.publish_crl(&crl(1, 4, b"crl-4", 0), &[]).await.unwrap(),
        CrlPublished::NotNewer { current }
    );
    assert_eq!(s.crl(&h(1)).await.unwrap(), Some(first));
    assert!(s.revocation_for("0b", &[key(1, "0b")]).await.unwrap().is_some());

    // A newer CRL replaces the entries: what it no longer lists is no longer revoked.
    let second = crl(1, 6, b"crl-6", 1);
    assert_eq!(s.publish_crl(&second, &entries[..1]).await.unwrap(), CrlPublished::Stored);
    assert_eq!(s.crl(&h(1)).await.unwrap().unwrap().number, CrlNumber::from_u64(6));
    assert!(s.revocation_for("0a", &[key(1, "0a")]).await.unwrap().is_some());
    assert_eq!(s.revocation_for("0b", &[key(1, "0b")]).await.unwrap(), None);

    // Other CAs are independent; a registry revocation by serial wins over CRLs.
    assert_eq!(s.publish_crl(&crl(2, 1, b"other-ca", 0), &[]).await.unwrap(), CrlPublished::Stored);
    assert_eq!(s.crl(&h(1)).await.unwrap().unwrap().number, CrlNumber::from_u64(6));
    let r = Revocation { serial: "0a".into(), reason: "cessationOfOperation".into(), revoked_at: 7 };
    s.revoke(&r).await.unwrap();
    assert_eq!(s.revocation_for("0a", &[key(1, "0a")]).await.unwrap(), Some(r));

    // Authentication's admission reads CRL entries too.
    let a = s.admission("0c", &[key(1, "0c"), key(1, "0a")], &[MatchKey::Ca(h(1))], ChallengeOp::None).await;
    assert!(a.unwrap().revocation.is_some());
    let a = s.admission("0c", &[key(1, "0c")], &[MatchKey::Ca(h(1))], ChallengeOp::None).await;
    assert_eq!(a.unwrap().revocation, None);
}

/// Concurrent publications of one CA (as from two servers) keep the highest number, with
/// exactly its entries; a large CRL is stored whole.
pub async fn concurrent_crl_publications_keep_the_highest(s: &Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for n in 1..=12u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let entries = [entry(&format!("{n:02x}"), "keyCompromise")];
            s.publish_crl(&crl(3, n, format!("crl-{n}").as_bytes(), 1), &entries).await.unwrap()
        }));
    }
    let mut stored = 0;
    for t in tasks {
        if t.await.unwrap() == CrlPublished::Stored {
            stored += 1;
        }
    }
    assert!(stored >= 1);
    assert_eq!(s.crl(&h(3)).await.unwrap().unwrap().number, CrlNumber::from_u64(12));
    for n in 1..=12u64 {
        let serial = format!("{n:02x}");
        let hit = s.revocation_for(&serial, &[key(3, &serial)]).await.unwrap();
        assert_eq!(hit.is_some(), n == 12, "serial {serial}");
    }

    let many: Vec<CrlEntry> =
        (0..12_000u32).map(|i| entry(&format!("{:x}", 0x1000_0000 + i), "superseded")).collect();
    assert_eq!(s.publish_crl(&crl(4, 1, b"big", 12_000), &many).await.unwrap(), CrlPublished::Stored);
    for i in [0u32, 4_999, 5_000, 11_999] {
        let serial = format!("{:x}", 0x1000_0000 + i);
        assert!(s.revocation_for(&serial, &[key(4, &serial)]).await.unwrap().is_some(), "{serial}");
    }
    let few = [entry("01", "superseded")];
    assert_eq!(s.publish_crl(&crl(4, 2, b"small", 1), &few).await.unwrap(), CrlPublished::Stored);
    let gone = format!("{:x}", 0x1000_0000 + 7);
    assert_eq!(s.revocation_for(&gone, &[key(4, &gone)]).await.unwrap(), None);
}
