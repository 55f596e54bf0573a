//! The token's keys seen from outside: software ECDH peers, OpenSC's pkcs11-tool, OpenSSL.

use std::sync::Arc;

use aws_lc_rs::{agreement, hkdf};
use ironclad_pki::{
    CaIssuer, DeviceProfile, IntermediateCaParams, IssueOutcome, Limits, MemoryIndex, RootCaParams, Validity,
};
use ironclad_se::{Hkdf, KeyAlgorithm, KeyHandle, KeyStore, Label, MemorySe, SecureElement};
use ironclad_testkit::{require_tool, run_ok};

use crate::{fresh_se, fresh_token};

fn label(s: &str) -> Label {
    Label::new(s).unwrap()
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// ECDH in the token and HKDF must give exactly what a software peer computes: this is what
/// MCUboot's ECIES (HKDF-SHA256 of the shared secret) and any device on the other end need.
#[test]
fn ecdh_matches_a_software_peer_on_both_curves() {
    let Some(se) = fresh_se() else { return };
    for (alg, curve) in
        [(KeyAlgorithm::X25519, &agreement::X25519), (KeyAlgorithm::EcdhP256, &agreement::ECDH_P256)]
    {
        let id = label(&format!("fw-{alg}"));
        let token_public = se.generate_key(&id, alg).unwrap();
        let peer = agreement::PrivateKey::generate(curve).unwrap();
        let peer_public = peer.compute_public_key().unwrap();
        let kdf = Hkdf { salt: b"", info: b"MCUBoot_ECIES_v1" };
        let mut in_token = [0u8; 48];
        se.agree_and_derive(&id, peer_public.as_ref(), &kdf, &mut in_token).unwrap();

        let mut in_software = [0u8; 48];
        let token_key = agreement::UnparsedPublicKey::new(curve, token_public.as_bytes());
        agreement::agree(&peer, token_key, (), |shared| {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, kdf.salt).extract(shared);
            prk.expand(&[kdf.info], Len(48)).unwrap().fill(&mut in_software).unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(in_token, in_software, "{alg}");
    }
}

/// OpenSC's pkcs11-tool, reading the same token directory, reports every ironclad key as
/// sensitive and never extractable.
#[test]
fn pkcs11_tool_sees_sensitive_never_extractable_keys() {
    let Some(token) = fresh_token() else { return };
    let Some(tool) = require_tool("pkcs11-tool") else { return };
    let se = ironclad_se_pkcs11::Pkcs11Se::open(&crate::config(&token)).unwrap();
    for alg in KeyAlgorithm::ALL {
        se.generate_key(&label(&format!("k-{alg}")), alg).unwrap();
    }
    let module = token.module.to_str().unwrap();
    let listing = run_ok(
        &tool,
        &["--module", module, "--token-label", &token.label, "--login", "--pin", token.pin, "--list-objects"],
    );
    // Objects are listed one after another, each starting with an unindented header line.
    let mut blocks: Vec<String> = Vec::new();
    for line in listing.lines() {
        match blocks.last_mut() {
            Some(block) if line.starts_with(' ') => block.push_str(&format!("\n{line}")),
            _ => blocks.push(line.to_owned()),
        }
    }
    let keys: Vec<&String> = blocks
        .iter()
        .filter(|b| b.starts_with("Private Key Object") || b.starts_with("Secret Key Object"))
        .collect();
    // Four key pairs and a Secret256 made of two secret keys.
    assert_eq!(keys.len(), 6, "{listing}");
    for block in keys {
        let field = |name: &str| {
            block
                .lines()
                .find_map(|l| l.trim_start().strip_prefix(name))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        assert_eq!(field("Access:"), "sensitive, always sensitive, never extractable, local", "{block}");
        assert!(field("label:").starts_with("k-"), "{block}");
        // One key, one purpose.
        let expected = match field("label:").as_str() {
            "k-ecdsa-p256" | "k-ed25519" => "sign",
            "k-ecdh-p256" | "k-x25519" => "derive",
            _ if block.contains("AES") => "encrypt, decrypt",
            _ => "none", // the HMAC key: pkcs11-tool does not print CKA_SIGN for secret keys
        };
        assert_eq!(field("Usage:"), expected, "{block}");
    }
}

/// A root (Ed25519) and an intermediate (P-256) held in the token issue a device certificate
/// and a CRL that OpenSSL accepts.
#[test]
fn ca_hierarchy_in_the_token_passes_openssl_verify() {
    let Some(se) = fresh_se() else { return };
    let Some(openssl) = require_tool("openssl") else { return };
    let se: Arc<dyn SecureElement> = se;
    let now = time::OffsetDateTime::now_utc();
    se.generate_key(&label("root"), KeyAlgorithm::Ed25519).unwrap();
    se.generate_key(&label("ca-line-1"), KeyAlgorithm::EcdsaP256).unwrap();
    let root_key = KeyHandle::open(se.clone(), &label("root")).unwrap();
    let int_key = KeyHandle::open(se.clone(), &label("ca-line-1")).unwrap();
    let root =
        ironclad_pki::create_root(&root_key, &RootCaParams::new("HSM Root CA", "Acme", "DE"), now).unwrap();
    let root_issuer = CaIssuer::new(&root, &root_key).unwrap();
    let params = IntermediateCaParams::new("HSM Line 1 CA", "Acme", "DE");
    let int = ironclad_pki::create_intermediate(&root_issuer, &int_key, &params, now).unwrap();
    let issuer = CaIssuer::new(&int, &int_key).unwrap();

    // The device key lives in a software secure element, as on a device.
    let device: Arc<dyn SecureElement> = Arc::new(MemorySe::new());
    device.generate_key(&label("auth"), KeyAlgorithm::EcdsaP256).unwrap();
    let device_key = KeyHandle::open(device, &label("auth")).unwrap();
    let mut csr_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    csr_params.distinguished_name.push(rcgen::DnType::CommonName, "cam-000001");
    let csr = csr_params.serialize_request(&device_key).unwrap();
    let profile = DeviceProfile::new("Acme", "DE", "acme-cam", Validity::Years(30)).unwrap();
    let mut index = MemoryIndex::new();
    let outcome =
        ironclad_pki::issue_one(csr.der(), &issuer, &profile, &mut index, &Limits::default(), now).unwrap();
    let IssueOutcome::Issued(record) = outcome else { panic!("expected a new certificate") };
    let crl = ironclad_pki::build_crl(&issuer, &mut index, now, now + time::Duration::days(7)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (root_pem, int_pem) = (write("root.pem", &root.pem()), write("int.pem", &int.pem()));
    let device_pem = write("device.pem", &record.pem());
    let crl_pem = write("crl.pem", &crl.pem());
    let chain = write("chain.pem", &format!("{}{}", int.pem(), root.pem()));
    let out = run_ok(&openssl, &["verify", "-CAfile", &root_pem, "-untrusted", &int_pem, &device_pem]);
    assert!(out.contains(": OK"), "{out}");
    let out = run_ok(
        &openssl,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            &root_pem,
            "-untrusted",
            &int_pem,
            "-CRLfile",
            &crl_pem,
            &device_pem,
        ],
    );
    assert!(out.contains(": OK"), "{out}");
    let out =
        ironclad_testkit::run(&openssl, &["crl", "-in", &crl_pem, "-CAfile", &chain, "-verify", "-noout"]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("verify OK"), "{said}");
}
