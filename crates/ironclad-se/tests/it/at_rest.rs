//! What the directory store promises on disk: encrypted, authenticated, atomic, private.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ironclad_se::{
    DirSe, Error, KdfParams, KeyAlgorithm, KeyStore, Label, MonotonicCounter, SealedStore, SignInput, Unlock,
};

fn label(s: &str) -> Label {
    Label::new(s).unwrap()
}

fn pass() -> Unlock {
    Unlock::passphrase("correct horse battery")
}

fn store() -> (tempfile::TempDir, PathBuf, DirSe) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("se");
    let se = DirSe::create(&root, &pass(), KdfParams::weak_for_tests()).unwrap();
    (tmp, root, se)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn keys_objects_and_counters_survive_reopen() {
    let (_tmp, root, se) = store();
    let public = se.generate_key(&label("auth"), KeyAlgorithm::EcdsaP256).unwrap();
    se.put_object(&label("cert"), b"certificate bytes").unwrap();
    se.counter_advance(&label("fw"), 5).unwrap();
    drop(se);
    let se = DirSe::open(&root, &pass()).unwrap();
    assert_eq!(se.key_info(&label("auth")).unwrap().public, public);
    assert_eq!(se.get_object(&label("cert")).unwrap().as_slice(), b"certificate bytes");
    assert_eq!(se.counter(&label("fw")).unwrap(), 5);
    se.sign(&label("auth"), SignInput::Message(b"m")).unwrap();
}

#[test]
fn wrong_passphrase_is_a_clear_error() {
    let (_tmp, root, _se) = store();
    let err = DirSe::open(&root, &Unlock::passphrase("wrong horse battery")).unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase(_)), "{err}");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    let err = DirSe::open(&root, &Unlock::device_secret(&[1; 32])).unwrap_err();
    assert!(matches!(err, Error::UnlockKindMismatch { .. }), "{err}");
}

#[test]
fn weak_secrets_and_missing_or_existing_stores_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = DirSe::create(tmp.path().join("a"), &Unlock::passphrase("short"), KdfParams::weak_for_tests())
        .unwrap_err();
    assert!(matches!(err, Error::WeakSecret(_)), "{err}");
    assert!(!tmp.path().join("a").exists(), "a refused create must leave nothing behind");
    let err = DirSe::create(tmp.path().join("b"), &Unlock::device_secret(&[1; 8]), KdfParams::default())
        .unwrap_err();
    assert!(matches!(err, Error::WeakSecret(_)), "{err}");
    assert!(matches!(DirSe::open(tmp.path().join("none"), &pass()), Err(Error::StoreNotFound(_))));
    let (_t, root, _se) = store();
    assert!(matches!(DirSe::create(&root, &pass(), KdfParams::weak_for_tests()), Err(Error::StoreExists(_))));
}

#[test]
fn nothing_secret_is_stored_in_clear() {
    let (_tmp, root, se) = store();
    se.put_object(&label("pairing"), b"PLAINTEXT-MARKER-0123456789").unwrap();
    se.generate_key(&label("k"), KeyAlgorithm::Secret256).unwrap();
    for path in files_under(&root) {
        let bytes = fs::read(&path).unwrap();
        assert!(!bytes.windows(16).any(|w| w == b"PLAINTEXT-MARKER"), "{} holds plaintext", path.display());
    }
}

#[test]
fn every_byte_flip_in_a_key_file_is_detected() {
    let (_tmp, root, se) = store();
    se.generate_key(&label("auth"), KeyAlgorithm::EcdsaP256).unwrap();
    let path = root.join("keys/auth");
    let good = fs::read(&path).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x80;
        fs::write(&path, &bad).unwrap();
        // A fresh handle, so nothing is served from the in-memory cache.
        let reopened = DirSe::open(&root, &pass()).unwrap();
        let err = reopened.key_info(&label("auth")).unwrap_err();
        assert!(matches!(err, Error::Tampered { .. } | Error::Corrupt { .. }), "flip at {i}: {err}");
    }
    fs::write(&path, &good[..good.len() / 2]).unwrap();
    let err = DirSe::open(&root, &pass()).unwrap().key_info(&label("auth")).unwrap_err();
    assert!(matches!(err, Error::Tampered { .. }), "{err}");
    fs::write(&path, &good[..3]).unwrap();
    let err = DirSe::open(&root, &pass()).unwrap().key_info(&label("auth")).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("keys/auth"), "error names the file: {err}");
}

#[test]
fn files_moved_between_labels_or_kinds_are_detected() {
    let (_tmp, root, se) = store();
    se.put_object(&label("a"), b"for a").unwrap();
    se.put_object(&label("b"), b"for b").unwrap();
    fs::copy(root.join("objects/a"), root.join("objects/b")).unwrap();
    assert!(matches!(se.get_object(&label("b")), Err(Error::Tampered { .. })));
    se.counter_increment(&label("c")).unwrap();
    fs::copy(root.join("objects/a"), root.join("counters/c")).unwrap();
    assert!(matches!(se.counter(&label("c")), Err(Error::Tampered { .. })));
}

#[test]
fn files_from_another_store_are_detected() {
    let (_t1, root1, se1) = store();
    let (_t2, root2, se2) = store();
    se1.generate_key(&label("k"), KeyAlgorithm::Ed25519).unwrap();
    se2.generate_key(&label("other"), KeyAlgorithm::Ed25519).unwrap();
    fs::copy(root1.join("keys/k"), root2.join("keys/k")).unwrap();
    assert!(matches!(se2.key_info(&label("k")), Err(Error::Tampered { .. })));
}

#[test]
fn altered_header_is_refused() {
    let (_tmp, root, _se) = store();
    let header = root.join("store.json");
    let text = fs::read_to_string(&header).unwrap();
    fs::write(&header, text.replace("\"iterations\": 1", "\"iterations\": 2")).unwrap();
    assert!(matches!(DirSe::open(&root, &pass()), Err(Error::WrongPassphrase(_))));
    fs::write(&header, "{ not json").unwrap();
    assert!(matches!(DirSe::open(&root, &pass()), Err(Error::Corrupt { .. })));
}

#[test]
fn files_are_private() {
    let (_tmp, root, se) = store();
    se.generate_key(&label("k"), KeyAlgorithm::EcdsaP256).unwrap();
    se.put_object(&label("o"), b"x").unwrap();
    se.counter_increment(&label("c")).unwrap();
    assert_eq!(fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
    for path in files_under(&root) {
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
    }
}

#[test]
fn no_temp_files_are_left_behind() {
    let (_tmp, root, se) = store();
    for i in 0..20 {
        se.put_object(&label("o"), format!("v{i}").as_bytes()).unwrap();
        se.counter_increment(&label("c")).unwrap();
    }
    let leftovers: Vec<_> = files_under(&root)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn counters_are_exact_across_processes_sharing_a_store() {
    let (_tmp, root, _se) = store();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || {
                // Separate handles model separate processes: only the file lock serialises them.
                let se = DirSe::open(&root, &pass()).unwrap();
                for _ in 0..25 {
                    se.counter_increment(&label("quota")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(DirSe::open(&root, &pass()).unwrap().counter(&label("quota")).unwrap(), 100);
}

#[test]
fn labels_are_validated() {
    for bad in ["", ".hidden", "a/b", "a b", "ä", &"x".repeat(65)] {
        assert!(matches!(Label::new(bad), Err(Error::InvalidLabel { .. })), "{bad:?}");
    }
    for good in ["a", "device-auth", "fw_key.v2", &"x".repeat(64)] {
        Label::new(good).unwrap();
    }
}
