//! Apple's HAP-SRP vector and the leading-zero edge vectors, for both roles.

use ironclad_pair::Error;
use ironclad_pair::srp::{AForm, Convention, SrpClient, SrpServer, Verifier};
use serde_json::Value;

fn hexv(case: &Value, key: &str) -> Vec<u8> {
    hex::decode(case[key].as_str().unwrap_or_else(|| panic!("{key}"))).unwrap()
}

fn arr<const N: usize>(case: &Value, key: &str) -> [u8; N] {
    hexv(case, key).try_into().unwrap()
}

fn strip(b: &[u8]) -> &[u8] {
    &b[b.iter().take_while(|x| **x == 0).count()..]
}

fn pad384(b: &[u8]) -> Vec<u8> {
    let mut out = vec![0; 384 - b.len()];
    out.extend_from_slice(b);
    out
}

struct Case {
    name: String,
    user: Vec<u8>,
    pass: Vec<u8>,
    salt: [u8; 16],
    a: [u8; 32],
    b: [u8; 32],
    big_a: Vec<u8>,
    big_b: Vec<u8>,
    key: Vec<u8>,
    m1: Vec<u8>,
    m2: Vec<u8>,
    v: Option<Vec<u8>>,
}

fn cases() -> Vec<Case> {
    let adk: Value =
        serde_json::from_str(include_str!("../vectors/adk_srp_3072_sha512_vector.json")).unwrap();
    let mut out = vec![Case {
        name: "adk".into(),
        user: adk["I"].as_str().unwrap().into(),
        pass: adk["P"].as_str().unwrap().into(),
        salt: arr(&adk, "salt"),
        a: arr(&adk, "a"),
        b: arr(&adk, "b"),
        big_a: pad384(&hexv(&adk, "A")),
        big_b: pad384(&hexv(&adk, "B")),
        key: hexv(&adk, "K"),
        m1: hexv(&adk, "M1"),
        m2: hexv(&adk, "M2"),
        v: Some(hexv(&adk, "v")),
    }];
    let edge: Value = serde_json::from_str(include_str!("../vectors/hap_srp_edge_vectors.json")).unwrap();
    for c in edge.as_array().unwrap() {
        out.push(Case {
            name: c["case"].as_str().unwrap().into(),
            user: c["I"].as_str().unwrap().into(),
            pass: c["P"].as_str().unwrap().into(),
            salt: arr(c, "salt"),
            a: arr(c, "a"),
            b: arr(c, "b"),
            big_a: hexv(c, "A_padded"),
            big_b: hexv(c, "B_padded"),
            key: hexv(c, "K"),
            m1: hexv(c, "M1"),
            m2: hexv(c, "M2"),
            v: None,
        });
    }
    assert_eq!(out.len(), 7);
    out
}

#[test]
fn client_reproduces_every_vector() {
    for c in cases() {
        let client = SrpClient::new(&c.a);
        assert_eq!(client.public_key().as_slice(), c.big_a.as_slice(), "{}: A", c.name);
        // B may arrive stripped (ADK, hap-python) or padded (aiohomekit): same result.
        for b_wire in [c.big_b.as_slice(), strip(&c.big_b)] {
            let session = client.process(&c.user, &c.pass, &c.salt, b_wire).unwrap();
            assert_eq!(session.key().as_slice(), c.key.as_slice(), "{}: K", c.name);
            assert_eq!(session.proof().as_slice(), c.m1.as_slice(), "{}: M1", c.name);
            session.verify_server(&c.m2).unwrap();
            assert!(matches!(session.verify_server(&c.m1), Err(Error::SrpServerProof)));
        }
    }
}

#[test]
fn server_reproduces_every_vector() {
    for c in cases() {
        let verifier = Verifier::new(&c.user, &c.pass, c.salt);
        if let Some(v) = &c.v {
            assert_eq!(strip(&verifier.verifier_bytes()), strip(v), "{}: v", c.name);
        }
        let server = SrpServer::new(&c.user, verifier, &c.b);
        assert_eq!(server.public_key().as_slice(), c.big_b.as_slice(), "{}: B", c.name);
        // A padded, and A stripped as homekit_python sends it.
        for a_wire in [c.big_a.as_slice(), strip(&c.big_a)] {
            let session = server.verify_client(a_wire, &c.m1).unwrap();
            assert_eq!(session.proof.as_slice(), c.m2.as_slice(), "{}: M2", c.name);
            assert_eq!(session.key.as_slice(), c.key.as_slice(), "{}: K", c.name);
            assert!(!session.convention.k_over_padded_s);
        }
    }
}

#[test]
fn server_rejects_wrong_proof_and_bad_a() {
    let c = &cases()[1];
    let server = SrpServer::new(&c.user, Verifier::new(&c.user, &c.pass, c.salt), &c.b);
    let mut m1 = c.m1.clone();
    m1[10] ^= 1;
    assert!(matches!(server.verify_client(&c.big_a, &m1), Err(Error::SrpProof)));
    assert!(matches!(server.verify_client(&c.big_a, &c.m1[..63]), Err(Error::SrpProof)));
    assert!(matches!(server.verify_client(&[0; 384], &c.m1), Err(Error::SrpPublicValue("A"))));
    // A wrong setup code gives a different proof.
    let wrong = SrpClient::new(&c.a).process(&c.user, b"111-22-334", &c.salt, &c.big_b).unwrap();
    assert!(matches!(server.verify_client(&c.big_a, wrong.proof()), Err(Error::SrpProof)));
}

/// The proof computed the way other HAP stacks compute it (research/pairing.md §2) is accepted,
/// and M2 comes back in the convention that client checks.
fn variant_m1(
    c: &Case,
    k_over_padded_s: bool,
    a_form: AForm,
    strip_k: bool,
    b_padded: bool,
) -> (Vec<u8>, Vec<u8>) {
    use aws_lc_rs::digest::{SHA512, digest};
    let h = |parts: &[&[u8]]| digest(&SHA512, &parts.concat()).as_ref().to_vec();
    let s = edge_s(&c.name);
    let k = if k_over_padded_s { h(&[&s]) } else { h(&[strip(&s)]) };
    let k = if strip_k { strip(&k).to_vec() } else { k };
    let hn = h(&[&pad384(&hex::decode(N_HEX).unwrap())]);
    let hg = h(&[&[5]]);
    let x: Vec<u8> = hn.iter().zip(&hg).map(|(a, b)| a ^ b).collect();
    let a: &[u8] = match a_form {
        AForm::Stripped => strip(&c.big_a),
        _ => &c.big_a,
    };
    let b: &[u8] = if b_padded { &c.big_b } else { strip(&c.big_b) };
    (h(&[&x, &h(&[&c.user]), &c.salt, a, b, &k]), k)
}

const N_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";

fn edge_s(name: &str) -> Vec<u8> {
    let edge: Value = serde_json::from_str(include_str!("../vectors/hap_srp_edge_vectors.json")).unwrap();
    let c = edge.as_array().unwrap().iter().find(|c| c["case"] == name).unwrap();
    hexv(c, "S_padded")
}

#[test]
fn server_accepts_other_stacks_padding() {
    let h = |parts: &[&[u8]]| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, &parts.concat()).as_ref().to_vec()
    };
    for c in cases().iter().skip(1) {
        let server = SrpServer::new(&c.user, Verifier::new(&c.user, &c.pass, c.salt), &c.b);
        // aiohomekit: K = H(PAD(S)), A padded in M1, M2 = H(PAD(A) | M1 | K).
        let (m1, k) = variant_m1(c, true, AForm::Padded, false, false);
        let s = server.verify_client(&c.big_a, &m1).unwrap();
        assert_eq!(s.proof.as_slice(), h(&[&c.big_a, &m1, &k]).as_slice(), "{}", c.name);
        assert_eq!(s.key.as_slice(), k.as_slice());
        assert_eq!(s.convention.k_over_padded_s, edge_s(&c.name)[0] == 0, "{}", c.name);
        // hap-python style: K stripped of leading zeros in M1 and in the session keys.
        let (m1, k) = variant_m1(c, false, AForm::Padded, true, false);
        let s = server.verify_client(&c.big_a, &m1).unwrap();
        assert_eq!(s.key.as_slice(), k.as_slice(), "{}", c.name);
        assert_eq!(s.proof.as_slice(), h(&[&c.big_a, &m1, &k]).as_slice());
        if c.key[0] == 0 {
            assert!(s.convention.k_stripped);
        } else {
            assert_eq!(s.convention, Convention { a_in_m1: s.convention.a_in_m1, ..Convention::ADK });
        }
        // fast-srp-hap (HAP-NodeJS): B padded to 384 bytes inside M1.
        let (m1, k) = variant_m1(c, true, AForm::Padded, false, true);
        let s = server.verify_client(&c.big_a, &m1).unwrap();
        assert_eq!(s.proof.as_slice(), h(&[&c.big_a, &m1, &k]).as_slice(), "{}", c.name);
        assert_eq!(s.convention.b_padded_in_m1, c.big_b[0] == 0, "{}", c.name);
    }
}

/// homekit_python sends M1 without leading zero bytes and hashes it so into M2.
#[test]
fn server_accepts_proof_without_leading_zeros() {
    let c = &cases()[1];
    let server = SrpServer::new(&c.user, Verifier::new(&c.user, &c.pass, c.salt), &c.b);
    // a_for(A_SEED) gives an M1 whose first byte is zero (found by `find_a_seed`).
    let client = SrpClient::new(&a_for(A_SEED));
    let session = client.process(&c.user, &c.pass, &c.salt, server.public_key()).unwrap();
    assert_eq!(session.proof()[0], 0);
    let stripped = strip(session.proof());
    let s = server.verify_client(client.public_key(), stripped).unwrap();
    let h = |parts: &[&[u8]]| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, &parts.concat()).as_ref().to_vec()
    };
    assert_eq!(s.proof.as_slice(), h(&[client.public_key(), stripped, session.key()]).as_slice());
    // The full 64-byte proof still gets the ADK answer.
    session
        .verify_server(&server.verify_client(client.public_key(), session.proof()).unwrap().proof)
        .unwrap();
}

const A_SEED: u16 = 651;

fn a_for(seed: u16) -> [u8; 32] {
    let mut a = [7u8; 32];
    a[..2].copy_from_slice(&seed.to_be_bytes());
    a
}
