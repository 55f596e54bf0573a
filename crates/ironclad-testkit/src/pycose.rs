//! pycose (the PyPI package, pinned to 1.1.0) as an independent COSE peer.
//!
//! `scripts/test` installs it into `.venv-peers/pycose` (scripts/peers/pycose.after) and exports
//! `IRONCLAD_PYCOSE_PYTHON`; otherwise that virtualenv, then `python3` on PATH, are tried. A
//! missing or different pycose skips the test unless `IRONCLAD_REQUIRE_PEERS=1`, which turns it
//! into a failure. [`Pycose::run`] drives `pycose_peer.py` (beside this file), whose subcommands
//! take and print hex.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::peers_required;

/// The pycose version the interop tests are written against.
pub const PYCOSE_VERSION: &str = "1.1.0";

const SCRIPT: &str = include_str!("pycose_peer.py");

/// A Python interpreter that imports pycose [`PYCOSE_VERSION`].
#[derive(Clone, Debug)]
pub struct Pycose {
    python: PathBuf,
}

/// Finds pycose; `None` (the caller skips) when absent, or panics under
/// `IRONCLAD_REQUIRE_PEERS=1`.
pub fn require_pycose() -> Option<Pycose> {
    match find() {
        Ok(p) => Some(p),
        Err(why) if peers_required() => {
            panic!("{why} and IRONCLAD_REQUIRE_PEERS=1; run scripts/test to install it")
        }
        Err(why) => {
            eprintln!("SKIP: {why} (set IRONCLAD_REQUIRE_PEERS=1 to fail instead)");
            None
        }
    }
}

fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("IRONCLAD_PYCOSE_PYTHON").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    out.push(root.join(".venv-peers/pycose/bin/python"));
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    out.extend(std::env::split_paths(&dirs).map(|d| d.join("python3")));
    out
}

fn find() -> Result<Pycose, String> {
    let check = "import importlib.metadata as m; print(m.version('pycose'))";
    for python in candidates().into_iter().filter(|p| p.is_file()) {
        let Ok(out) = Command::new(&python).args(["-c", check]).output() else { continue };
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == PYCOSE_VERSION {
            return Ok(Pycose { python });
        }
    }
    Err(format!(
        "peer pycose {PYCOSE_VERSION} not found (IRONCLAD_PYCOSE_PYTHON unset or wrong, no .venv-peers/pycose, no python3 with it)"
    ))
}

impl Pycose {
    /// Runs a `pycose_peer.py` subcommand; returns (success, stdout trimmed, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.python)
            .args(["-c", SCRIPT])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.python.display()));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a subcommand that must succeed; returns its stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "pycose {:?} failed:\n{out}\n{err}", args.first());
        out
    }

    /// The interpreter.
    pub fn python(&self) -> &Path {
        &self.python
    }
}
