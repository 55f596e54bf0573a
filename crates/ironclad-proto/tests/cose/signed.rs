//! Signed manifests, commands and telemetry: acceptance and every refusal.

use coset::{
    CoseSign1, CoseSign1Builder, HeaderBuilder, Label, ProtectedHeader, TaggedCborSerializable, iana,
};
use ironclad_proto::{
    CborValue, CommandRefusal, CoseSigner, Error, Limits, ManifestPolicy, SigAlg, SignedCommand,
    SignedManifest, SignedTelemetry, Telemetry, TrustedKeys,
};

use crate::common::*;

const KID: &[u8] = b"manifest-key-1";

fn policy() -> ManifestPolicy<'static> {
    ManifestPolicy { now: NOW, product_class: CLASS }
}

fn verify_manifest(bytes: &[u8], keys: &TrustedKeys) -> Result<ironclad_proto::VerifiedManifest, Error> {
    SignedManifest::parse(bytes, &Limits::default())?.verify(keys, &policy())
}

/// Decodes, lets `f` change the message, re-encodes (protected bytes re-serialised from the
/// header when `f` clears `original_data`).
fn mutate(bytes: &[u8], f: impl FnOnce(&mut CoseSign1)) -> Vec<u8> {
    let mut msg = CoseSign1::from_tagged_slice(bytes).unwrap();
    f(&mut msg);
    msg.to_tagged_vec().unwrap()
}

/// A COSE_Sign1 with a caller-built protected header, validly signed by `s`.
fn sign_with_header(s: &dyn CoseSigner, protected: coset::Header, payload: Vec<u8>) -> Vec<u8> {
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| {
            let der = s.sign(tbs).unwrap();
            match s.algorithm() {
                SigAlg::EdDsa => der,
                SigAlg::Es256 => der_to_raw(&der),
            }
        })
        .build()
        .to_tagged_vec()
        .unwrap()
}

fn der_to_raw(der: &[u8]) -> Vec<u8> {
    // 30 len 02 rlen r 02 slen s
    let rlen = der[3] as usize;
    let r = &der[4..4 + rlen];
    let s = &der[6 + rlen..];
    let mut out = vec![0u8; 64];
    let r = &r[r.len().saturating_sub(32)..];
    let s = &s[s.len().saturating_sub(32)..];
    out[32 - r.len()..32].copy_from_slice(r);
    out[64 - s.len()..].copy_from_slice(s);
    out
}

#[test]
fn manifest_verifies_with_both_algorithms() {
    for alg in [SigAlg::Es256, SigAlg::EdDsa] {
        let s = signer(alg);
        let bytes = manifest().sign(&s, KID).unwrap();
        let parsed = SignedManifest::parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(parsed.kid(), KID);
        let verified = parsed.verify(&trust(KID, &s), &policy()).unwrap();
        assert_eq!(verified.manifest(), &manifest());
        assert_eq!(verified.kid(), KID);
        verified.check_security_counter(3).unwrap();
        verified.check_security_counter(2).unwrap();
        assert_eq!(verified.check_security_counter(4), Err(Error::Downgrade { current: 4, offered: 3 }));
        verified.check_image(4 * 1024 * 1024, &[0xab; 32]).unwrap();
        assert_eq!(
            verified.check_image(4 * 1024 * 1024, &[0xac; 32]),
            Err(Error::ImageMismatch { field: "SHA-256 digest" })
        );
        assert_eq!(verified.check_image(1, &[0xab; 32]), Err(Error::ImageMismatch { field: "size" }));
    }
}

#[test]
fn tampered_manifests_are_refused() {
    let s = signer(SigAlg::Es256);
    let keys = trust(KID, &s);
    let good = manifest().sign(&s, KID).unwrap();

    // Payload: a valid manifest for another class, under the original signature.
    let mut other = manifest();
    other.security_counter = 9;
    let forged = mutate(&good, |m| m.payload = Some(other.to_cbor()));
    assert_eq!(verify_manifest(&forged, &keys).unwrap_err(), Error::BadSignature);

    // Protected header: an extra parameter changes the signed bytes.
    let forged = mutate(&good, |m| {
        m.protected.original_data = None;
        m.protected.header.rest.push((Label::Int(-65537), CborValue::Bool(true)));
    });
    assert_eq!(verify_manifest(&forged, &keys).unwrap_err(), Error::BadSignature);

    // Signature: one bit.
    let forged = mutate(&good, |m| m.signature[10] ^= 1);
    assert_eq!(verify_manifest(&forged, &keys).unwrap_err(), Error::BadSignature);
    let forged = mutate(&good, |m| m.signature.truncate(63));
    assert_eq!(verify_manifest(&forged, &keys).unwrap_err(), Error::BadSignature);

    // Wrong key under the trusted kid; unknown kid.
    let impostor = signer(SigAlg::Es256);
    let forged = manifest().sign(&impostor, KID).unwrap();
    assert_eq!(verify_manifest(&forged, &keys).unwrap_err(), Error::BadSignature);
    let forged = manifest().sign(&s, b"other-kid").unwrap();
    assert!(matches!(verify_manifest(&forged, &keys).unwrap_err(), Error::UnknownKey { .. }));

    // Wrong algorithm: an Ed25519 signature where the trusted key is P-256.
    let ed = signer(SigAlg::EdDsa);
    let forged = manifest().sign(&ed, KID).unwrap();
    assert!(matches!(verify_manifest(&forged, &keys).unwrap_err(), Error::WrongAlgorithm { .. }));
    // An algorithm that is not a signature algorithm at all.
    let forged = mutate(&good, |m| {
        m.protected.original_data = None;
        m.protected.header.alg = Some(coset::Algorithm::Assigned(iana::Algorithm::A256GCM));
    });
    assert!(matches!(verify_manifest(&forged, &keys).unwrap_err(), Error::WrongAlgorithm { .. }));
    // alg only in the unprotected header.
    let forged = mutate(&good, |m| {
        m.protected = ProtectedHeader::default();
        m.protected.header.content_type =
            Some(coset::ContentType::Text(ironclad_proto::MANIFEST_CONTENT_TYPE.into()));
        m.unprotected.alg = Some(coset::Algorithm::Assigned(iana::Algorithm::ES256));
    });
    assert!(matches!(verify_manifest(&forged, &keys).unwrap_err(), Error::WrongAlgorithm { .. }));
}

#[test]
fn structural_refusals() {
    let s = signer(SigAlg::EdDsa);
    let keys = trust(KID, &s);
    let good = manifest().sign(&s, KID).unwrap();
    let limits = Limits::default();

    // Trailing bytes.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        SignedManifest::parse(&trailing, &limits).unwrap_err(),
        Error::TrailingBytes { what: "manifest" }
    );
    // Untagged and truncated.
    assert!(matches!(SignedManifest::parse(&good[1..], &limits).unwrap_err(), Error::Malformed { .. }));
    assert!(matches!(
        SignedManifest::parse(&good[..good.len() - 1], &limits).unwrap_err(),
        Error::Malformed { .. }
    ));
    // Oversized: refused before parsing.
    let small = Limits { max_signed_len: good.len() - 1, ..Limits::default() };
    assert!(matches!(SignedManifest::parse(&good, &small).unwrap_err(), Error::TooLarge { .. }));
    let huge = vec![0u8; 64 * 1024 + 1];
    assert!(matches!(SignedManifest::parse(&huge, &limits).unwrap_err(), Error::TooLarge { .. }));

    // Unknown critical header, validly signed: refused for the crit, not the signature.
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .content_type(ironclad_proto::MANIFEST_CONTENT_TYPE.into())
        .key_id(KID.to_vec())
        .add_critical_label(coset::RegisteredLabelWithPrivate::PrivateUse(-65537))
        .value(-65537, CborValue::Bool(true))
        .build();
    let crit = sign_with_header(&s, protected, manifest().to_cbor());
    assert!(matches!(SignedManifest::parse(&crit, &limits).unwrap_err(), Error::UnknownCritical { .. }));
    // Critical but understood (kid) is fine.
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .content_type(ironclad_proto::MANIFEST_CONTENT_TYPE.into())
        .key_id(KID.to_vec())
        .add_critical(iana::HeaderParameter::Kid)
        .build();
    let ok = sign_with_header(&s, protected, manifest().to_cbor());
    verify_manifest(&ok, &keys).unwrap();
    // A label in both buckets.
    let dup = mutate(&ok, |m| m.unprotected.key_id = b"x".to_vec());
    assert!(matches!(SignedManifest::parse(&dup, &limits).unwrap_err(), Error::Malformed { .. }));

    // A validly signed payload with an unknown key is refused.
    let mut value: CborValue = ciborium::de::from_reader(manifest().to_cbor().as_slice()).unwrap();
    if let CborValue::Map(m) = &mut value {
        m.push((CborValue::Integer(99.into()), CborValue::Bool(true)));
    }
    let mut payload = Vec::new();
    ciborium::ser::into_writer(&value, &mut payload).unwrap();
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .content_type(ironclad_proto::MANIFEST_CONTENT_TYPE.into())
        .key_id(KID.to_vec())
        .build();
    let unknown = sign_with_header(&s, protected, payload);
    let err = verify_manifest(&unknown, &keys).unwrap_err();
    assert!(matches!(&err, Error::Malformed { reason, .. } if reason.contains("unknown key 99")), "{err}");

    // A command is not a manifest.
    let cmd = command(1).sign(&s, KID).unwrap();
    assert!(matches!(SignedManifest::parse(&cmd, &limits).unwrap_err(), Error::WrongContentType { .. }));
}

#[test]
fn manifest_expiry_and_class() {
    let s = signer(SigAlg::Es256);
    let keys = trust(KID, &s);
    let bytes = manifest().sign(&s, KID).unwrap();
    let at = |now| {
        SignedManifest::parse(&bytes, &Limits::default())
            .unwrap()
            .verify(&keys, &ManifestPolicy { now, product_class: CLASS })
    };
    at(NOW + 3599).unwrap();
    assert_eq!(at(NOW + 3600).unwrap_err(), Error::Expired { expires: NOW + 3600, now: NOW + 3600 });
    let other = SignedManifest::parse(&bytes, &Limits::default())
        .unwrap()
        .verify(&keys, &ManifestPolicy { now: NOW, product_class: "doorbell-v1" })
        .unwrap_err();
    assert!(matches!(other, Error::WrongProductClass { .. }));
}

#[test]
fn command_checks_and_refusals() {
    let s = signer(SigAlg::Es256);
    let kid = b"cmd-key";
    let keys = trust(kid, &s);
    let verify = |bytes: &[u8], last: u64, now: u64| {
        SignedCommand::parse(bytes, &Limits::default()).and_then(|c| c.verify(&keys, DEVICE, last, now))
    };
    let refusal = |r: Result<_, Error>| CommandRefusal::from_error(&r.unwrap_err());

    let c5 = command(5).sign(&s, kid).unwrap();
    let ok = verify(&c5, 4, NOW).unwrap();
    assert_eq!(ok.command(), &command(5));
    assert_eq!(ok.kid(), kid);
    verify(&c5, 0, NOW).unwrap(); // gaps are allowed: strictly increasing, not contiguous

    assert_eq!(refusal(verify(&c5, 5, NOW)), CommandRefusal::Replayed);
    assert_eq!(refusal(verify(&c5, 6, NOW)), CommandRefusal::Stale);
    assert_eq!(refusal(verify(&c5, 4, NOW + 300)), CommandRefusal::Expired);
    let mut other = command(6);
    other.target = "dev-0002".into();
    assert_eq!(refusal(verify(&other.sign(&s, kid).unwrap(), 4, NOW)), CommandRefusal::WrongTarget);
    assert_eq!(
        refusal(verify(&command(6).sign(&signer(SigAlg::Es256), kid).unwrap(), 4, NOW)),
        CommandRefusal::BadSignature
    );
    assert_eq!(refusal(verify(&command(6).sign(&s, b"nope").unwrap(), 4, NOW)), CommandRefusal::BadSignature);
    assert_eq!(
        refusal(verify(&command(6).sign(&signer(SigAlg::EdDsa), kid).unwrap(), 4, NOW)),
        CommandRefusal::BadSignature
    );
    let tampered = mutate(&c5, |m| m.payload = Some(command(50).to_cbor()));
    assert_eq!(refusal(verify(&tampered, 4, NOW)), CommandRefusal::BadSignature);
    let manifest = manifest().sign(&s, kid).unwrap();
    assert_eq!(refusal(verify(&manifest, 0, NOW)), CommandRefusal::Malformed);
    assert_eq!(refusal(verify(&c5[..20], 0, NOW)), CommandRefusal::Malformed);
    // Sequence 0 is never valid.
    assert_eq!(refusal(verify(&command(0).sign(&s, kid).unwrap(), 0, NOW)), CommandRefusal::Malformed);
    assert_eq!(serde_json::to_string(&CommandRefusal::Replayed).unwrap(), "\"Replayed\"");
}

#[test]
fn telemetry_signed_by_the_device() {
    let device = signer(SigAlg::Es256);
    let t = Telemetry {
        device_id: DEVICE.into(),
        sequence: 17,
        time: NOW,
        data: CborValue::Map(vec![(CborValue::Text("temp_c".into()), CborValue::Float(21.5))]),
    };
    let bytes = t.sign(&device).unwrap();
    let parsed = SignedTelemetry::parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(parsed.device_id().unwrap(), DEVICE);
    assert_eq!(parsed.verify(&device.verifying_key()).unwrap().telemetry(), &t);

    let other = signer(SigAlg::Es256);
    let err = SignedTelemetry::parse(&bytes, &Limits::default()).unwrap().verify(&other.verifying_key());
    assert_eq!(err.unwrap_err(), Error::BadSignature);
    let mut changed = t.clone();
    changed.sequence = 18;
    let forged = mutate(&bytes, |m| m.payload = Some(changed.to_cbor()));
    let err = SignedTelemetry::parse(&forged, &Limits::default()).unwrap().verify(&device.verifying_key());
    assert_eq!(err.unwrap_err(), Error::BadSignature);
    // The kid must name the device in the payload.
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .content_type(ironclad_proto::TELEMETRY_CONTENT_TYPE.into())
        .key_id(b"dev-9999".to_vec())
        .build();
    let lying = sign_with_header(&device, protected, t.to_cbor());
    let err = SignedTelemetry::parse(&lying, &Limits::default()).unwrap().verify(&device.verifying_key());
    assert!(matches!(err.unwrap_err(), Error::Malformed { .. }));
    // A command is not telemetry.
    let cmd = command(1).sign(&device, DEVICE.as_bytes()).unwrap();
    assert!(matches!(
        SignedTelemetry::parse(&cmd, &Limits::default()).unwrap_err(),
        Error::WrongContentType { .. }
    ));
}
