//! `ironclad fw` and `ironclad boot sim` end to end, checked against imgtool 2.5.0 (the venv
//! peer; without it the imgtool halves are skipped unless IRONCLAD_REQUIRE_PEERS=1).

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::{Env, s};

fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = 0x9e37_79b9 ^ seed ^ len as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A command line split on spaces (no argument in these tests contains one; paths are temp
/// directories).
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// `ironclad` with a command line as one string.
trait Line {
    fn ok_line(&self, line: &str) -> String;
    fn fails_line(&self, line: &str) -> String;
    fn json_line(&self, line: &str) -> Value;
}

impl Line for Env {
    #[track_caller]
    fn ok_line(&self, line: &str) -> String {
        self.ok(&words(line))
    }

    #[track_caller]
    fn fails_line(&self, line: &str) -> String {
        self.fails(&words(line))
    }

    #[track_caller]
    fn json_line(&self, line: &str) -> Value {
        self.json(&words(line))
    }
}

/// imgtool in the venv, or `None` (skip).
struct Imgtool(PathBuf);

impl Imgtool {
    fn new() -> Option<Self> {
        ironclad_testkit::imgtool::require_imgtool().map(Self)
    }

    #[track_caller]
    fn ok(&self, line: &str) -> String {
        ironclad_testkit::run_ok(&self.0, &words(line))
    }

    fn verifies(&self, key: &str, image: &str) -> bool {
        let out = ironclad_testkit::run(&self.0, &["verify", "-k", key, image]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Image was correctly validated")
    }

    /// `imgtool dumpinfo -f json`, without the file name.
    fn dumpinfo(&self, image: &str) -> Value {
        let mut v: Value = serde_json::from_str(&self.ok(&format!("dumpinfo -f json {image}"))).unwrap();
        v.as_object_mut().unwrap().remove("filename");
        v
    }
}

/// `fw inspect --json` in dumpinfo's shape: {} for absent parts, imgtool's name for our TLV,
/// no summary, no max_align.
fn as_dumpinfo(mut ours: Value) -> Value {
    if ours["tlv_area"]["tlv_hdr_prot"].is_null() {
        ours["tlv_area"]["tlv_hdr_prot"] = serde_json::json!({});
    }
    if ours["trailer"].is_null() {
        ours["trailer"] = serde_json::json!({});
    }
    if let Some(t) = ours["trailer"].as_object_mut() {
        t.remove("max_align");
    }
    for tlv in ours["tlv_area"]["tlvs_prot"].as_array_mut().unwrap() {
        if tlv["type_name"] == "IRONCLAD_PRODUCT_CLASS" {
            tlv["type_name"] = "UNKNOWN".into();
        }
    }
    ours.as_object_mut().unwrap().remove("summary");
    ours
}

/// A release store with an ECDSA and an Ed25519 mastering key, and their public keys.
fn mastering_keys(env: &Env) {
    env.ok_line("fw keygen --store rel --init --label ec --out ec.pub.pem");
    env.ok_line("fw keygen --store rel --label ed -t ed25519 --out ed.pub.pem");
}

/// A device store `name` with its firmware-decryption key (`--x25519` or `--p256-enc`).
fn device_key(env: &Env, name: &str, flag: &str) {
    env.ok_line(&format!("fw keygen --store {name} --init --label fw-decrypt {flag} --out {name}.pub.pem"));
}

/// The payload padded as imgtool pads encrypted payloads (zeros to a multiple of 16).
fn padded(input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    v.resize(input.len().next_multiple_of(16), 0);
    v
}

#[test]
fn ironclad_images_pass_imgtool_verify_and_dumpinfo_agrees() {
    let env = Env::new();
    mastering_keys(&env);
    let json = env.json_line("fw keygen --store rel --label ec2");
    assert_eq!(json["algorithm"], "ecdsa-p256");
    assert_eq!(json["key_hash"].as_str().unwrap().len(), 64);
    fs::write(env.path("app.bin"), payload(5000, 1)).unwrap();
    let class = "00112233-4455-6677-8899-aabbccddeeff";
    let cases = [
        ("ec", "--version 1.2.3+4".to_owned()),
        ("ed", "--version 1.2.3+4 -s 7 -H 0x200 -S 0x20000 --align 8 --confirm".to_owned()),
        ("ec", "--version 2.0.0 -s auto -S 0x10000 --pad --public-key-format full".to_owned()),
        ("ed", format!("--version 3.1.0+9 -s 9 --product-class {class} -S 0x10000 --test --align 32")),
    ];
    let tool = Imgtool::new();
    for (i, (key, extra)) in cases.iter().enumerate() {
        let signed = env.json_line(&format!("fw sign --store rel --key {key} app.bin o{i}.bin {extra}"));
        let verified = env.json_line(&format!("fw verify o{i}.bin --key {key}.pub.pem"));
        assert_eq!(verified["valid"], true);
        assert_eq!(verified["hash"], signed["hash"]);
        let inspect = env.json_line(&format!("fw inspect o{i}.bin"));
        if i == 2 {
            assert_eq!(inspect["summary"]["security_counter"], 0x0200_0000);
            assert_eq!(inspect["summary"]["key_ids"][0]["kind"], "PUBKEY");
        }
        if i == 3 {
            assert_eq!(inspect["summary"]["product_class"], class);
            assert_eq!(inspect["summary"]["security_counter"], 9);
        }
        let Some(t) = &tool else { continue };
        let image = env.path(&format!("o{i}.bin"));
        let pubkey = env.path(&format!("{key}.pub.pem"));
        assert!(t.verifies(s(&pubkey), s(&image)), "imgtool verify refused case {i}");
        let text = t.ok(&format!("verify -k {} {}", s(&pubkey), s(&image)));
        assert!(text.contains(signed["hash"].as_str().unwrap()), "{text}");
        assert_eq!(as_dumpinfo(inspect), t.dumpinfo(s(&image)), "case {i}");
    }
    // Another key is refused, naming the reason, also under --json.
    let err = env.fails_line("fw verify o0.bin --key ed.pub.pem");
    assert!(err.contains("o0.bin refused: the image is not signed by a trusted key"), "{err}");
    let out = env.cmd(&words("fw verify o0.bin --key ed.pub.pem --json")).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["valid"], false);
}

#[test]
fn imgtool_images_verify_decrypt_and_inspect_in_ironclad() {
    let Some(t) = Imgtool::new() else { return };
    let env = Env::new();
    device_key(&env, "dev", "--x25519");
    device_key(&env, "devec", "--p256-enc");
    let input = payload(3000, 2);
    fs::write(env.path("app.bin"), &input).unwrap();
    let app = env.path("app.bin");
    for ty in ["ecdsa-p256", "ed25519"] {
        let key = env.path(&format!("{ty}.pem"));
        let public = env.path(&format!("{ty}.pub.pem"));
        t.ok(&format!("keygen -k {} -t {ty}", s(&key)));
        t.ok(&format!("getpub -k {} -e pem -o {}", s(&key), s(&public)));
        // imgtool pairs ECDSA signing with P-256 encryption, Ed25519 with either.
        let store = if ty == "ecdsa-p256" { "devec" } else { "dev" };
        let recipient = env.path(&format!("{store}.pub.pem"));
        let variants = [
            ("plain", "-H 0x20 -S 0x10000 -v 1.2.3+4".to_owned()),
            ("counter", "-H 0x200 -S 0x20000 -v 1.0.0 -s 9 --confirm".to_owned()),
            ("enc", format!("-H 0x200 -S 0x10000 -v 1.1.0 -s 2 -E {}", s(&recipient))),
        ];
        for (name, extra) in variants {
            let image = env.path(&format!("{ty}-{name}.bin"));
            let (image, public) = (s(&image), s(&public));
            t.ok(&format!("sign -k {} --pad-header {extra} {} {image}", s(&key), s(&app)));
            let inspect = env.json_line(&format!("fw inspect {image}"));
            assert_eq!(as_dumpinfo(inspect.clone()), t.dumpinfo(image), "{ty} {name}");
            if name == "enc" {
                // Encrypted: refused without the decryption key (as imgtool does), verified with it.
                let err = env.fails_line(&format!("fw verify {image} --key {public}"));
                assert!(err.contains("the payload is encrypted"), "{err}");
                let v = env.json_line(&format!(
                    "fw verify {image} --key {public} --store {store} --decrypt-key fw-decrypt"
                ));
                assert_eq!((v["valid"].as_bool(), v["encrypted"].as_bool()), (Some(true), Some(true)));
                env.ok_line(&format!(
                    "fw decrypt {image} --store {store} --trust {public} --out p.bin --payload"
                ));
                assert_eq!(fs::read(env.path("p.bin")).unwrap(), padded(&input), "{ty}");
            } else {
                let v = env.json_line(&format!("fw verify {image} --key {public}"));
                assert_eq!(v["valid"], true, "{ty} {name}");
                assert!(t.ok(&format!("verify -k {public} {image}")).contains(v["hash"].as_str().unwrap()));
                assert_eq!(v["version"], inspect["header"]["version"]);
            }
        }
    }
}

#[test]
fn encrypted_to_a_device_only_that_device_decrypts() {
    let env = Env::new();
    mastering_keys(&env);
    device_key(&env, "dev", "--x25519");
    device_key(&env, "dev-ec", "--p256-enc");
    device_key(&env, "other", "--x25519");
    let input = payload(40_000, 3); // a multiple of 16: the payload comes back exactly
    fs::write(env.path("app.bin"), &input).unwrap();
    for (dev, aes, wrap) in [("dev", "128", "ENCX25519"), ("dev-ec", "256", "ENCEC256")] {
        let signed = env.json_line(&format!(
            "fw sign --store rel --key ec --version 1.1.0 -s 2 --encrypt-to {dev}.pub.pem --aes {aes} app.bin app.{dev}.bin"
        ));
        assert_eq!(signed["encryption"]["cipher"], format!("aes{aes}-ctr"));
        let info = env.json_line(&format!("fw inspect app.{dev}.bin"));
        assert_eq!(info["summary"]["encryption"]["key_wrap"], wrap);
        let out = env.ok_line(&format!(
            "fw decrypt app.{dev}.bin --store {dev} --trust ec.pub.pem --out plain.bin --payload"
        ));
        assert!(out.contains("verified"), "{out}");
        assert_eq!(fs::read(env.path("plain.bin")).unwrap(), input, "{dev}");
        env.ok_line(&format!("fw decrypt app.{dev}.bin --store {dev} --trust ec.pub.pem --out clear.bin"));
        let clear = env.json_line("fw verify clear.bin --key ec.pub.pem");
        assert_eq!(clear["hash"], signed["hash"]);
        if let Some(t) = Imgtool::new() {
            assert!(t.verifies(s(&env.path("ec.pub.pem")), s(&env.path("clear.bin"))), "{dev}");
        }
    }
    // Another device's key cannot unwrap it, and nothing is written.
    let err = env.fails_line("fw decrypt app.dev.bin --store other --trust ec.pub.pem --out stolen.bin");
    assert!(err.contains("not wrapped to this key"), "{err}");
    // A release signed by an untrusted key is not decrypted either.
    let err = env.fails_line("fw decrypt app.dev.bin --store dev --trust ed.pub.pem --out stolen.bin");
    assert!(err.contains("not signed by a trusted key"), "{err}");
    assert!(!env.path("stolen.bin").exists());
}

#[test]
fn rewrap_moves_a_release_to_another_device_without_resigning() {
    let env = Env::new();
    mastering_keys(&env);
    device_key(&env, "server", "--x25519");
    device_key(&env, "cam1", "--x25519");
    device_key(&env, "cam2", "--p256-enc");
    let input = payload(70_000, 4);
    fs::write(env.path("app.bin"), &input).unwrap();
    env.ok_line(
        "fw sign --store rel --key ed --version 1.4.0+2 -s 4 -H 0x200 -S 0x40000 --pad \
         --encrypt-to server.pub.pem app.bin release.bin",
    );
    let release = fs::read(env.path("release.bin")).unwrap();
    let info = env.json_line("fw inspect release.bin");
    let field = |k: &str| info["header"][k].as_u64().unwrap();
    let signed_len = (field("hdr_size") + field("img_size") + field("protected_tlv_size")) as usize;
    for (cam, wrap) in [("cam1", "ENC_X25519"), ("cam2", "ENC_EC256")] {
        let r = env.json_line(&format!(
            "fw rewrap release.bin --store server --trust ed.pub.pem --to {cam}.pub.pem --out release.{cam}.bin"
        ));
        assert_eq!(r["key_wrap"], wrap);
        let copy = fs::read(env.path(&format!("release.{cam}.bin"))).unwrap();
        assert_eq!(copy.len(), release.len(), "slot padding and trailer kept");
        assert_eq!(copy[..signed_len], release[..signed_len], "signed region unchanged");
        // The device decrypts its copy; the server's key no longer opens it.
        env.ok_line(&format!(
            "fw decrypt release.{cam}.bin --store {cam} --trust ed.pub.pem --out p.bin --payload"
        ));
        assert_eq!(fs::read(env.path("p.bin")).unwrap(), padded(&input));
        let err = env.fails_line(&format!(
            "fw decrypt release.{cam}.bin --store server --trust ed.pub.pem --out x.bin"
        ));
        assert!(err.contains(&format!("release.{cam}.bin refused")), "{err}");
        // Still the release the mastering key signed: imgtool accepts the decrypted copy with
        // the original digest, and reads the same hash TLV in the re-wrapped image.
        env.ok_line(&format!(
            "fw decrypt release.{cam}.bin --store {cam} --trust ed.pub.pem --out clear.bin"
        ));
        if let Some(t) = Imgtool::new() {
            let (key, clear) = (env.path("ed.pub.pem"), env.path("clear.bin"));
            let text = t.ok(&format!("verify -k {} {}", s(&key), s(&clear)));
            assert!(text.contains("Image was correctly validated"), "{text}");
            assert!(text.contains(info["summary"]["hash"].as_str().unwrap()), "{text}");
            let theirs = t.dumpinfo(s(&env.path(&format!("release.{cam}.bin"))));
            assert_eq!(
                theirs["tlv_area"]["tlvs"][0],
                t.dumpinfo(s(&env.path("release.bin")))["tlv_area"]["tlvs"][0]
            );
        }
    }
    // One device cannot read another's copy; an untrusted signer is never re-wrapped.
    let err = env.fails_line("fw decrypt release.cam1.bin --store cam2 --trust ed.pub.pem --out x.bin");
    assert!(err.contains("release.cam1.bin refused"), "{err}");
    let err = env
        .fails_line("fw rewrap release.bin --store server --trust ec.pub.pem --to cam1.pub.pem --out y.bin");
    assert!(err.contains("not signed by a trusted key"), "{err}");
    assert!(!env.path("y.bin").exists() && !env.path("x.bin").exists());
}

#[test]
fn mastering_key_in_the_pki_key_backend() {
    let env = Env::new();
    env.ok_line("ca init --pki pki --cn Test-Root --org Acme --country DE");
    let out = env.ok_line("fw keygen --pki pki --label fw-release --out m.pub.pem");
    assert!(out.contains("the PKI key backend in pki/keys"), "{out}");
    fs::write(env.path("app.bin"), payload(1000, 5)).unwrap();
    env.ok_line("fw sign --pki pki --key fw-release --version 1.0.0 app.bin app.s.bin");
    env.ok_line("fw verify app.s.bin --key m.pub.pem");
    let err = env.fails_line("fw sign --pki pki --key missing --version 1 app.bin x.bin");
    assert!(err.contains("opening mastering key `missing`"), "{err}");
    let err = env.fails_line("fw sign --version 1 app.bin x.bin");
    assert!(err.contains("--store DIR"), "{err}");
    assert!(!env.path("x.bin").exists());
}

/// A mastering key generated on a PKCS#11 token (SoftHSM2), signing through the PKI's backend;
/// imgtool accepts the image.
#[test]
fn mastering_key_on_a_pkcs11_token() {
    let Some(hsm) = ironclad_testkit::softhsm::SoftHsm::new("ironclad-fw") else { return };
    let env = Env::new();
    let run = |line: &str| {
        let mut cmd = env.cmd(&words(line));
        hsm.apply(&mut cmd).env("IRONCLAD_PKCS11_PIN", hsm.pin());
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "ironclad {line} failed:\n{}", crate::text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&format!("ca init --pki pki --cn HSM-Root --pkcs11-uri {}", hsm.uri()));
    let out = run("fw keygen --pki pki --label fw-mastering --out m.pub.pem");
    assert!(out.contains("PKCS#11 token"), "{out}");
    fs::write(env.path("app.bin"), payload(50_000, 8)).unwrap();
    run("fw sign --pki pki --version 2.1.0 -s 5 -H 0x200 -S 0x20000 --confirm app.bin app.s.bin");
    env.ok_line("fw verify app.s.bin --key m.pub.pem");
    if let Some(t) = Imgtool::new() {
        assert!(t.verifies(s(&env.path("m.pub.pem")), s(&env.path("app.s.bin"))));
    }
}

#[test]
fn fw_refusals_name_the_problem_and_leave_nothing() {
    let env = Env::new();
    mastering_keys(&env);
    device_key(&env, "dev", "--x25519");
    fs::write(env.path("app.bin"), payload(10_000, 6)).unwrap();
    let sign = "fw sign --store rel --key ec --version 1 app.bin o.bin";
    let err = env.fails_line(&format!("{sign} -S 0x2000"));
    assert!(err.contains("does not fit the 0x2000-byte slot"), "{err}");
    let err = env.fails_line("fw sign --store dev --key fw-decrypt --version 1 app.bin o.bin");
    assert!(err.contains("ecdsa-p256 or ed25519"), "{err}");
    let err = env.fails_line("fw sign --store rel --key ec --version 1.2.3.4 app.bin o.bin");
    assert!(err.contains("version"), "{err}");
    let err = env.fails_line(&format!("{sign} --encrypt-to ed.pub.pem"));
    assert!(err.contains("not a firmware-decryption key"), "{err}");
    let err = env.fails_line(&format!("{sign} -H 0x10"));
    assert!(err.contains("--header-size"), "{err}");
    assert!(!env.path("o.bin").exists());
    let temps: Vec<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");

    env.ok_line(&format!("{sign} -S 0x8000"));
    let err = env.fails_line("fw verify app.bin --key ec.pub.pem");
    assert!(err.contains("not an MCUboot image"), "{err}");
    let image = fs::read(env.path("o.bin")).unwrap();
    fs::write(env.path("short.bin"), &image[..image.len() - 10]).unwrap();
    let err = env.fails_line("fw verify short.bin --key ec.pub.pem");
    assert!(err.contains("truncated"), "{err}");
    let err = env.fails_line("fw verify o.bin --key ec.pub.pem --slot-size 0x1000");
    assert!(err.contains("limit is 4096"), "{err}");
    let mut flipped = image.clone();
    flipped[0x20 + 100] ^= 0x40;
    fs::write(env.path("flipped.bin"), &flipped).unwrap();
    let err = env.fails_line("fw verify flipped.bin --key ec.pub.pem");
    assert!(err.contains("image hash does not match"), "{err}");
    fs::write(env.path("priv.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let err = env.fails_line("fw verify o.bin --key priv.pem");
    assert!(err.contains("holds a private key"), "{err}");
    let err = env.fails_line("fw decrypt o.bin --store dev --trust ec.pub.pem --out x.bin");
    assert!(err.contains("not encrypted"), "{err}");
}

/// The boot simulator, one step per process: provisioning, an update with trial and confirm,
/// an unconfirmed trial that falls back after three boots, a refused downgrade, tampered and
/// untrusted images refused, a revert, a power cut in the middle of an install, bit rot.
#[test]
fn boot_sim_scenario() {
    let env = Env::new();
    mastering_keys(&env);
    fs::write(env.path("app.bin"), payload(12_000, 7)).unwrap();
    for (v, counter, key) in [("1.0.0", 1, "ec"), ("1.1.0", 2, "ec"), ("2.0.0", 3, "ec"), ("9.0.0", 9, "ed")]
    {
        env.ok_line(&format!(
            "fw sign --store rel --key {key} --version {v} -s {counter} -H 0x200 app.bin v{v}.bin"
        ));
    }
    let ok = |step: &str| env.ok_line(&format!("boot sim --state sim.json {step}"));
    let fails = |step: &str| env.fails_line(&format!("boot sim --state sim.json {step}"));
    let status = || env.json_line("boot sim --state sim.json status");

    ok("init --trust ec.pub.pem");
    assert!(fails("init --trust ec.pub.pem").contains("--force"));
    let err = fails("install v1.1.0.bin");
    assert!(err.contains("no image is running") && err.contains("recover"), "{err}");
    let out = ok("recover v1.0.0.bin");
    assert!(out.contains("booted slot A version 1.0.0+0"), "{out}");

    // v1.1: install, trial, confirm (each in its own process).
    let out = ok("install v1.1.0.bin");
    assert!(out.contains("written to slot B") && out.contains("pending a trial boot"), "{out}");
    let out = ok("reset");
    assert!(out.contains("booted slot B version 1.1.0+0") && out.contains("TRIAL attempt 1 of 3"), "{out}");
    let out = ok("confirm");
    assert!(out.contains("anti-rollback counter 1 → 2"), "{out}");
    let st = status();
    assert_eq!(st["device"]["security_counter"], 2);
    assert_eq!(st["device"]["booted"]["mode"]["mode"], "confirmed");

    // v2: three unconfirmed trial boots, then the fourth reset falls back to v1.1.
    ok("install v2.0.0.bin");
    for attempt in 1..=3 {
        let out = ok("reset");
        assert!(
            out.contains(&format!("version 2.0.0+0 (security counter 3), TRIAL attempt {attempt} of 3")),
            "{out}"
        );
    }
    let out = ok("reset");
    assert!(out.contains("booted slot B version 1.1.0+0"), "{out}");
    assert!(out.contains("slot A not booted: trial unconfirmed after 3 attempts"), "{out}");
    assert_eq!(status()["device"]["security_counter"], 2, "an unconfirmed trial never raises the counter");

    // A downgrade, a tampered image and an untrusted signer are refused with a reason and a
    // non-zero exit; the device is unchanged.
    let before = fs::read(env.path("sim.json")).unwrap();
    let err = fails("install v1.0.0.bin");
    assert!(
        err.contains("downgrade refused: image security counter 1 is below the device counter 2"),
        "{err}"
    );
    let mut tampered = fs::read(env.path("v2.0.0.bin")).unwrap();
    tampered[0x200 + 5000] ^= 1;
    fs::write(env.path("tampered.bin"), tampered).unwrap();
    let err = fails("install tampered.bin");
    assert!(err.contains("install tampered.bin refused: image refused: image hash does not match"), "{err}");
    let err = fails("install v9.0.0.bin");
    assert!(err.contains("not signed by a trusted key"), "{err}");
    assert_eq!(fs::read(env.path("sim.json")).unwrap(), before, "refusals change nothing");

    // A revert after a trial boot.
    ok("install v2.0.0.bin");
    ok("reset");
    let out = ok("revert");
    assert!(out.contains("rejected; the next reset boots slot B"), "{out}");
    assert!(fails("confirm").contains("reverted and cannot be confirmed"));
    assert!(ok("reset").contains("booted slot B version 1.1.0+0"));

    // A power cut half-way through an install: the device still boots v1.1.
    ok("cut-power-after 4");
    let err = fails("install v2.0.0.bin");
    assert!(err.contains("power cut at flash operation"), "{err}");
    assert_eq!(status()["power_off"], true);
    assert!(fails("confirm").contains("the device is off"));
    assert!(ok("reset").contains("booted slot B version 1.1.0+0"));

    // Bit rot in the running slot is caught at the next reset; recovery (not a downgrade)
    // brings the device back.
    ok("flip-bit --slot b --offset 0x400");
    let err = fails("reset");
    assert!(err.contains("no bootable image") && err.contains("recover"), "{err}");
    assert!(fails("recover v1.0.0.bin").contains("downgrade refused"));
    let out = ok("recover v2.0.0.bin");
    assert!(out.contains("as confirmed") && out.contains("anti-rollback counter 2 → 3"), "{out}");
}

/// `ironclad demo` has the firmware stage (the done-when): a release mastered in a
/// secure element and re-wrapped per device, the simulated fleet updated with trial and
/// confirm, a downgrade refused, a trial reverted; and every device's counter was raised.
#[test]
fn demo_has_the_secure_boot_stage() {
    let env = Env::new();
    let out = env.json_line("demo --devices 6");
    assert_eq!(out["passed"], true, "{out}");
    let stage = out["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "secure boot and update")
        .unwrap_or_else(|| panic!("no firmware stage: {out}"));
    assert_eq!(stage["passed"], true, "{stage}");
    let detail = stage["detail"].as_str().unwrap();
    for expected in [
        "re-wrapped without re-signing",
        "3 simulated device(s)",
        "trial → confirm (counter 1→2)",
        "1.0.0 downgrade refused",
        "another device's copy refused",
        "1.2.0 trial reverted → back on 1.1.0",
    ] {
        assert!(detail.contains(expected), "{expected:?} missing from {detail:?}");
    }
}
