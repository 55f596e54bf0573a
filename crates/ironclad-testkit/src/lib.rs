//! Test helpers shared by every crate's tests: finding peer tools (OpenSSL, pkcs11-tool, imgtool,
//! ffmpeg, ...) and running them, with `IRONCLAD_REQUIRE_PEERS=1` turning a missing tool into a
//! failure instead of a skip.
#![forbid(unsafe_code)]

pub mod imgtool;
pub mod postgres;
pub mod pycose;
pub mod softhsm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// True when CI demands that every interop test really runs.
pub fn peers_required() -> bool {
    std::env::var("IRONCLAD_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Finds `tool` on PATH. When it is missing, returns `None` so the caller can skip, unless
/// `IRONCLAD_REQUIRE_PEERS=1`, in which case it panics with what to install.
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    if let Some(path) = find_on_path(tool) {
        return Some(path);
    }
    if peers_required() {
        panic!(
            "peer tool `{tool}` not found on PATH and IRONCLAD_REQUIRE_PEERS=1; run scripts/test to install it"
        );
    }
    eprintln!("SKIP: peer tool `{tool}` not found on PATH (set IRONCLAD_REQUIRE_PEERS=1 to fail instead)");
    None
}

fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(tool)).find(|candidate| candidate.is_file())
}

/// Runs a peer tool and returns its output; panics with stdout/stderr when it cannot be started.
pub fn run(tool: &Path, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()))
}

/// Runs a peer tool and asserts it succeeded, returning stdout as text.
#[track_caller]
pub fn run_ok(tool: &Path, args: &[&str]) -> String {
    let out = run(tool, args);
    assert!(
        out.status.success(),
        "{} {:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        tool.display(),
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a peer tool and asserts it failed, returning stdout+stderr as text.
#[track_caller]
pub fn run_fails(tool: &Path, args: &[&str]) -> String {
    let out = run(tool, args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{} {:?} unexpectedly succeeded:\n{text}", tool.display(), args);
    text
}
