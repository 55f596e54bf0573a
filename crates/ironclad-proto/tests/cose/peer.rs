//! pycose 1.1.0 as an independent COSE implementation: it verifies our signed manifests,
//! commands and telemetry, decrypts our log records and key deliveries, and we verify and
//! decrypt what it makes.

use ironclad_proto::{
    COMMAND_CONTENT_TYPE, CoseSigner, Error, Limits, LogKey, MANIFEST_CONTENT_TYPE, SigAlg, SignedCommand,
    TELEMETRY_CONTENT_TYPE, Telemetry, decrypt_record, encrypt_record, log_external_aad,
    log_key_external_aad, wrap_log_key,
};
use ironclad_testkit::pycose::{Pycose, require_pycose};

use crate::common::*;
use crate::keydelivery::TestX25519;

fn verify(py: &Pycose, alg: SigAlg, key: &[u8], msg: &[u8]) -> serde_json::Value {
    let out = py.ok(&["verify-sign1", alg.name(), &hex::encode(key), &hex::encode(msg)]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn pycose_verifies_our_manifests_commands_and_telemetry() {
    let Some(py) = require_pycose() else { return };
    for alg in [SigAlg::Es256, SigAlg::EdDsa] {
        let s = signer(alg);
        let public = s.verifying_key().raw().to_vec();

        let m = manifest().sign(&s, b"manifest-key").unwrap();
        let got = verify(&py, alg, &public, &m);
        assert_eq!(got["alg"], alg.cose_id());
        assert_eq!(got["kid"], hex::encode("manifest-key"));
        assert_eq!(got["content_type"], MANIFEST_CONTENT_TYPE);
        assert_eq!(got["payload"], hex::encode(manifest().to_cbor()));

        let c = command(42).sign(&s, b"cmd-key").unwrap();
        let got = verify(&py, alg, &public, &c);
        assert_eq!(got["content_type"], COMMAND_CONTENT_TYPE);
        assert_eq!(got["payload"], hex::encode(command(42).to_cbor()));

        let t = Telemetry {
            device_id: DEVICE.into(),
            sequence: 1,
            time: NOW,
            data: ironclad_proto::CborValue::Null,
        };
        let got = verify(&py, alg, &public, &t.sign(&s).unwrap());
        assert_eq!(
            (got["kid"].as_str().unwrap(), got["content_type"].as_str().unwrap()),
            (hex::encode(DEVICE).as_str(), TELEMETRY_CONTENT_TYPE)
        );

        // pycose refuses a tampered signature and another key.
        let mut bad = c.clone();
        let n = bad.len();
        bad[n - 5] ^= 1;
        let (ok, _, _) = py.run(&["verify-sign1", alg.name(), &hex::encode(&public), &hex::encode(&bad)]);
        assert!(!ok, "pycose accepted a tampered {alg} signature");
        let other = signer(alg).verifying_key().raw().to_vec();
        let (ok, _, _) = py.run(&["verify-sign1", alg.name(), &hex::encode(other), &hex::encode(&c)]);
        assert!(!ok, "pycose accepted a {alg} signature under another key");
    }
}

#[test]
fn we_verify_commands_signed_by_pycose() {
    let Some(py) = require_pycose() else { return };
    for alg in [SigAlg::Es256, SigAlg::EdDsa] {
        let s = signer(alg);
        let pkcs8 = s.to_pkcs8().unwrap();
        let signed = hex::decode(py.ok(&[
            "sign1",
            alg.name(),
            &hex::encode(&*pkcs8),
            &hex::encode("cmd-key"),
            COMMAND_CONTENT_TYPE,
            &hex::encode(command(7).to_cbor()),
        ]))
        .unwrap();
        let keys = trust(b"cmd-key", &s);
        let v =
            SignedCommand::parse(&signed, &Limits::default()).unwrap().verify(&keys, DEVICE, 6, NOW).unwrap();
        assert_eq!(v.command(), &command(7));
        let wrong = trust(b"cmd-key", &signer(alg));
        let err = SignedCommand::parse(&signed, &Limits::default()).unwrap().verify(&wrong, DEVICE, 6, NOW);
        assert_eq!(err.unwrap_err(), Error::BadSignature);
        assert_eq!(s.algorithm(), alg);
    }
}

#[test]
fn pycose_decrypts_our_log_records_and_we_decrypt_its() {
    let Some(py) = require_pycose() else { return };
    let key = LogKey::generate("log-dev-0001-1").unwrap();
    let file_id = [3u8; 16];
    let record = encrypt_record(&key, DEVICE, &file_id, 9, &entry(9)).unwrap();
    let aad = log_external_aad(DEVICE, &file_id, 9);
    let plain =
        py.ok(&["decrypt0", &hex::encode(key.secret_bytes()), &hex::encode(&aad), &hex::encode(&record)]);
    let value: ironclad_proto::CborValue =
        ciborium::de::from_reader(hex::decode(plain).unwrap().as_slice()).unwrap();
    let text = format!("{value:?}");
    assert!(text.contains(&entry(9).message), "{text}");
    // With the AAD of another sequence number, pycose refuses too.
    let other = log_external_aad(DEVICE, &file_id, 10);
    let (ok, _, _) =
        py.run(&["decrypt0", &hex::encode(key.secret_bytes()), &hex::encode(other), &hex::encode(&record)]);
    assert!(!ok);

    // pycose encrypts a record (its own IV); we decrypt it.
    let mut plaintext = Vec::new();
    ciborium::ser::into_writer(&value, &mut plaintext).unwrap();
    let theirs = hex::decode(py.ok(&[
        "encrypt0",
        &hex::encode(key.secret_bytes()),
        &hex::encode(key.id()),
        &hex::encode(&aad),
        &hex::encode(&plaintext),
    ]))
    .unwrap();
    assert_eq!(decrypt_record(&key, DEVICE, &file_id, 9, &theirs, 64 * 1024).unwrap(), entry(9));
}

#[test]
fn pycose_unwraps_our_key_delivery() {
    let Some(py) = require_pycose() else { return };
    let device = TestX25519::new();
    let key = LogKey::generate("log-dev-0001-2").unwrap();
    let wrapped = wrap_log_key(&key, DEVICE, &device.public()).unwrap();
    let aad = log_key_external_aad(DEVICE);
    let plain = hex::decode(py.ok(&[
        "decrypt-x25519",
        &hex::encode(device.raw),
        &hex::encode(&aad),
        &hex::encode(&wrapped),
    ]))
    .unwrap();
    // A symmetric COSE_Key carrying the id and the secret.
    let key_map: ironclad_proto::CborValue = ciborium::de::from_reader(plain.as_slice()).unwrap();
    let entries = key_map.as_map().unwrap();
    let get = |k: i64| {
        entries.iter().find(|(l, _)| l.as_integer() == Some(k.into())).map(|(_, v)| v.clone()).unwrap()
    };
    assert_eq!(get(1).as_integer(), Some(4.into()));
    assert_eq!(get(2).as_bytes().unwrap().as_slice(), key.id().as_bytes());
    assert_eq!(get(-1).as_bytes().unwrap().as_slice(), key.secret_bytes());
    // Another device id as external AAD: refused by pycose too.
    let (ok, _, _) = py.run(&[
        "decrypt-x25519",
        &hex::encode(device.raw),
        &hex::encode(log_key_external_aad("dev-0002")),
        &hex::encode(&wrapped),
    ]);
    assert!(!ok);
}
