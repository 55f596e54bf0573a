//! End-to-end tests of the `ironclad` binary: every command run as a user would, with the
//! results checked by ironclad itself and by OpenSSL.
#![allow(clippy::unwrap_used)]

mod batch;
mod ceremony;
mod factory;
mod firmware;
mod media;
mod ota;
mod pair;
mod pkcs11;
mod pki;
mod refusals;
mod server;
mod server_scale;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) const PASS: &str = "test passphrase for the CA store";

/// A scratch directory with helpers to run `ironclad` in it.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironclad"));
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("IRONCLAD_PASSPHRASE", PASS)
            .env("IRONCLAD_INSECURE_FAST_KDF", "1")
            .env_remove("IRONCLAD_PKI")
            .env_remove("IRONCLAD_SE_DIR");
        cmd
    }

    #[track_caller]
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(out.status.success(), "ironclad {args:?} failed:\n{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    #[track_caller]
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(!out.status.success(), "ironclad {args:?} unexpectedly succeeded:\n{}", text(&out));
        text(&out)
    }

    #[track_caller]
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// A PKI with a root and one line CA named `line-1`.
    pub(crate) fn pki(&self) {
        self.ok(&["ca", "init", "--pki", "pki", "--cn", "Test Root CA", "--org", "Acme", "--country", "DE"]);
        self.ok(&[
            "ca",
            "intermediate",
            "--pki",
            "pki",
            "--name",
            "line-1",
            "--org",
            "Acme",
            "--country",
            "DE",
            "--family",
            "acme-cam",
            "--device-validity",
            "30y",
        ]);
    }

    /// A device key in a software SE and its CSR, made with ironclad.
    pub(crate) fn device_csr(&self, device_id: &str) -> PathBuf {
        let store = format!("se-{device_id}");
        self.ok(&[
            "se",
            "keygen",
            "--store",
            &store,
            "--init",
            "--label",
            "auth",
            "--algorithm",
            "ecdsa-p256",
        ]);
        let csr = format!("{device_id}.csr");
        self.ok(&[
            "se",
            "csr",
            "--store",
            &store,
            "--label",
            "auth",
            "--device-id",
            device_id,
            "--out",
            &csr,
        ]);
        self.path(&csr)
    }
}

pub(crate) fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub(crate) fn openssl() -> Option<PathBuf> {
    ironclad_testkit::require_tool("openssl")
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
