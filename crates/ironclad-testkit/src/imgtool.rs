//! MCUboot's imgtool (the PyPI package, pinned to 2.5.0) for firmware-image interop tests.
//!
//! `scripts/test` installs it into `.venv-peers` (scripts/peers/imgtool.after) and exports
//! `IRONCLAD_IMGTOOL`; otherwise `imgtool` on PATH is used. A missing tool, or one of another
//! version, skips the test unless `IRONCLAD_REQUIRE_PEERS=1`, which turns it into a failure.

use std::path::PathBuf;
use std::process::Command;

use crate::peers_required;

/// The imgtool version the interop tests and the byte-identity checks are written against.
pub const IMGTOOL_VERSION: &str = "2.5.0";

/// Finds imgtool `IMGTOOL_VERSION`: `$IRONCLAD_IMGTOOL`, else `imgtool` on PATH. Returns `None`
/// (the caller skips) when absent or of another version, or panics under
/// `IRONCLAD_REQUIRE_PEERS=1`.
pub fn require_imgtool() -> Option<PathBuf> {
    match find() {
        Ok(path) => Some(path),
        Err(why) if peers_required() => {
            panic!("{why} and IRONCLAD_REQUIRE_PEERS=1; run scripts/test to install it")
        }
        Err(why) => {
            eprintln!("SKIP: {why} (set IRONCLAD_REQUIRE_PEERS=1 to fail instead)");
            None
        }
    }
}

fn find() -> Result<PathBuf, String> {
    let path = match std::env::var_os("IRONCLAD_IMGTOOL").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => {
            let dirs = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&dirs)
                .map(|dir| dir.join("imgtool"))
                .find(|candidate| candidate.is_file())
                .ok_or_else(|| format!("peer tool `imgtool` {IMGTOOL_VERSION} not found (IRONCLAD_IMGTOOL unset, not on PATH)"))?
        }
    };
    let out = Command::new(&path)
        .arg("version")
        .output()
        .map_err(|e| format!("cannot run imgtool at {}: {e}", path.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || version != IMGTOOL_VERSION {
        return Err(format!(
            "imgtool at {} reports version {version:?}, the tests need {IMGTOOL_VERSION}",
            path.display()
        ));
    }
    Ok(path)
}
