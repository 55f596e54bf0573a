//! Key ceremonies through the CLI: scripts, transcripts, M-of-N recovery.

use std::fs;

use crate::Env;

const OFFLINE: &str = r#"
[ceremony]
name = "Test root ceremony"
participants = ["alice", "bob"]

[root]
cn = "Test Root CA"
org = "Acme"
country = "DE"
generation = "offline-backup"

[backup]
threshold = 3
holders = ["alice", "bob", "carol", "dave", "erin"]

[[intermediate]]
name = "line-1"
family = "acme-cam"
"#;

fn share(i: usize) -> String {
    let names = ["alice", "bob", "carol", "dave", "erin"];
    format!("shares/share-{}-{}.txt", i + 1, names[i])
}

fn recover(env: &Env, shares: &[String]) -> std::process::Output {
    let mut args = vec!["ceremony", "recover", "--transcript", "pki/ceremony/transcript.json"];
    for s in shares {
        args.extend(["--share", s.as_str()]);
    }
    env.cmd(&args).output().unwrap()
}

#[test]
fn offline_root_ceremony_recovers_from_every_three_of_five() {
    let env = Env::new();
    fs::write(env.path("root.toml"), OFFLINE).unwrap();
    let out = env.json(&["ceremony", "run", "root.toml", "--pki", "pki", "--shares-dir", "shares"]);
    assert_eq!(out["shares"].as_array().unwrap().len(), 5);
    let verified = env.json(&["ceremony", "verify", "pki/ceremony/transcript.json", "--pki", "pki"]);
    assert_eq!(verified["valid"], true);
    let steps: Vec<&str> =
        verified["entries"].as_array().unwrap().iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "ceremony-begin",
            "root-key",
            "backup-split",
            "offline-key-imported-and-wiped",
            "root-certificate",
            "intermediate",
            "ceremony-end"
        ]
    );
    // The PKI works: the line CA issues.
    let csr = env.device_csr("dev-1");
    env.ok(&[
        "cert",
        "issue",
        "--pki",
        "pki",
        "--ca",
        "line-1",
        "--csr",
        csr.to_str().unwrap(),
        "--out",
        "d.pem",
    ]);

    let mut subsets = 0;
    for a in 0..5 {
        for b in a + 1..5 {
            for c in b + 1..5 {
                let out = recover(&env, &[share(a), share(b), share(c)]);
                assert!(out.status.success(), "{a}{b}{c}: {}", crate::text(&out));
                subsets += 1;
            }
        }
    }
    assert_eq!(subsets, 10);
    let out = recover(&env, &[share(0), share(4)]);
    assert!(!out.status.success());
    assert!(crate::text(&out).contains("2 shares given; this backup needs 3"), "{}", crate::text(&out));

    // A corrupted share is named.
    let text = fs::read_to_string(env.path(&share(1))).unwrap();
    let flipped = text.replacen("ironclad-share-v1:3of5:2:", "ironclad-share-v1:3of5:2:f", 1);
    fs::write(env.path("bad.txt"), flipped).unwrap();
    let out = recover(&env, &[share(0), "bad.txt".into(), share(4)]);
    assert!(!out.status.success());
    assert!(crate::text(&out).contains("share #2 is corrupt"), "{}", crate::text(&out));
}

#[test]
fn shares_from_another_ceremony_and_tampered_transcripts_are_refused() {
    let env = Env::new();
    fs::write(env.path("root.toml"), OFFLINE).unwrap();
    env.ok(&["ceremony", "run", "root.toml", "--pki", "pki", "--shares-dir", "shares"]);
    env.ok(&["ceremony", "run", "root.toml", "--pki", "pki2", "--shares-dir", "shares2"]);
    let out = recover(&env, &[share(0), share(1), "shares2/share-3-carol.txt".into()]);
    assert!(!out.status.success());
    assert!(crate::text(&out).contains("share #3"), "{}", crate::text(&out));

    // The second ceremony's transcript does not describe the first PKI.
    let err = env.fails(&["ceremony", "verify", "pki2/ceremony/transcript.json", "--pki", "pki"]);
    assert!(err.contains("not the root of"), "{err}");

    // Alter one step: the verifier names it.
    let path = env.path("pki/ceremony/transcript.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen("\"family\": \"acme-cam\"", "\"family\": \"evil-cam\"", 1)).unwrap();
    let err = env.fails(&["ceremony", "verify", "pki/ceremony/transcript.json"]);
    assert!(err.contains("altered at step 5 (intermediate)"), "{err}");
    let out = recover(&env, &[share(0), share(1), share(2)]);
    assert!(!out.status.success(), "recovery needs an intact transcript");
}

#[test]
fn a_lost_root_key_is_restored_from_shares() {
    let env = Env::new();
    fs::write(env.path("root.toml"), OFFLINE).unwrap();
    env.ok(&["ceremony", "run", "root.toml", "--pki", "pki", "--shares-dir", "shares"]);
    fs::remove_file(env.path("pki/keys/keys/root")).unwrap();
    let err = env.fails(&["ca", "intermediate", "--pki", "pki", "--name", "line-2", "--family", "f"]);
    assert!(err.contains("root"), "{err}");
    env.ok(&[
        "ceremony",
        "recover",
        "--transcript",
        "pki/ceremony/transcript.json",
        "--share",
        &share(1),
        "--share",
        &share(3),
        "--share",
        &share(4),
        "--into-pki",
        "pki",
    ]);
    env.ok(&["ca", "intermediate", "--pki", "pki", "--name", "line-2", "--family", "f"]);
    let Some(openssl) = crate::openssl() else { return };
    let out = ironclad_testkit::run_ok(
        &openssl,
        &[
            "verify",
            "-CAfile",
            crate::s(&env.path("pki/root.pem")),
            crate::s(&env.path("pki/ca/line-2/cert.pem")),
        ],
    );
    assert!(out.contains("OK"), "{out}");
}

#[test]
fn in_backend_roots_have_no_shares_and_bad_scripts_make_nothing() {
    let env = Env::new();
    let script = OFFLINE.replace("offline-backup", "in-backend");
    let without_backup = script.split("[backup]").next().unwrap().to_owned()
        + "\n[[intermediate]]\nname = \"line-1\"\nfamily = \"acme-cam\"\n";
    fs::write(env.path("bad.toml"), &script).unwrap();
    let err = env.fails(&["ceremony", "run", "bad.toml", "--pki", "pki"]);
    assert!(err.contains("only for root.generation"), "{err}");
    assert!(!env.path("pki").exists());
    fs::write(env.path("typo.toml"), OFFLINE.replace("threshold", "treshold")).unwrap();
    let err = env.fails(&["ceremony", "run", "typo.toml", "--pki", "pki"]);
    assert!(err.contains("treshold"), "{err}");
    assert!(!env.path("pki").exists() && !env.path("shares").exists());

    fs::write(env.path("ok.toml"), without_backup).unwrap();
    env.ok(&["ceremony", "run", "ok.toml", "--pki", "pki"]);
    assert!(!env.path("shares").exists());
    env.ok(&["ceremony", "verify", "pki/ceremony/transcript.json", "--pki", "pki"]);
    let out = recover(&env, &["x".into()]);
    assert!(crate::text(&out).contains("made no backup"), "{}", crate::text(&out));
}
