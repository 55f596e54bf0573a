//! Throwaway SoftHSM2 tokens for PKCS#11 tests, with no global state: each [`SoftHsm`] owns a
//! temporary directory holding its own `softhsm2.conf` and token directory, initialised with
//! `softhsm2-util`, and removed on drop.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, when the library is initialised, and keeps one token
//! list per process. So a test that wants a fresh token of its own either runs the code under
//! test in a child process (the CLI does: [`SoftHsm::apply`] sets the environment on a
//! `Command`), or re-runs the current test in a child with [`SoftHsm::run_current_test_in_child`]
//! and picks the token up there with [`child_token`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where Debian, Ubuntu, Fedora and source builds put the SoftHSM2 PKCS#11 module.
pub const MODULE_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The user PIN of every test token (tests only: real PINs never appear in code or argv).
pub const TEST_PIN: &str = "1234-test-pin";
/// The security-officer PIN of every test token.
pub const TEST_SO_PIN: &str = "12345678-test-so";

/// Set in a child started by [`SoftHsm::run_current_test_in_child`]: the token label.
const CHILD_TOKEN_ENV: &str = "IRONCLAD_TEST_SOFTHSM_TOKEN";
/// Set in that child: the module path.
const CHILD_MODULE_ENV: &str = "IRONCLAD_TEST_SOFTHSM_MODULE";

/// The SoftHSM2 module on this machine, if installed.
pub fn module_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("IRONCLAD_SOFTHSM_MODULE") {
        return Some(PathBuf::from(path));
    }
    MODULE_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A SoftHSM2 configuration and token directory private to one test.
#[derive(Debug)]
pub struct SoftHsm {
    dir: PathBuf,
    conf: PathBuf,
    module: PathBuf,
    util: PathBuf,
    label: String,
}

impl SoftHsm {
    /// A new token labelled `label` in a new temporary token directory. Returns `None` (the
    /// test skips) when `softhsm2-util` or the module is missing, unless
    /// `IRONCLAD_REQUIRE_PEERS=1`, which panics instead.
    pub fn new(label: &str) -> Option<Self> {
        let util = crate::require_tool("softhsm2-util")?;
        let Some(module) = module_path() else {
            if crate::peers_required() {
                panic!("softhsm2-util is installed but libsofthsm2.so is not in {MODULE_PATHS:?}");
            }
            eprintln!("SKIP: libsofthsm2.so not found (set IRONCLAD_SOFTHSM_MODULE)");
            return None;
        };
        let dir = unique_temp_dir();
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).expect("create SoftHSM token directory");
        let conf = dir.join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        );
        std::fs::write(&conf, text).expect("write softhsm2.conf");
        let hsm = Self { dir, conf, module, util, label: label.to_owned() };
        hsm.init_token(label);
        Some(hsm)
    }

    /// Initialises another token in the same token directory (visible to processes that load
    /// the module afterwards).
    pub fn init_token(&self, label: &str) {
        let mut cmd = Command::new(&self.util);
        cmd.args(["--init-token", "--free", "--label", label, "--so-pin", TEST_SO_PIN, "--pin", TEST_PIN]);
        let out = self.apply(&mut cmd).output().expect("run softhsm2-util");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The PKCS#11 module to load.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The `softhsm2.conf` to put in `SOFTHSM2_CONF`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The label of the token made by [`SoftHsm::new`].
    pub fn token_label(&self) -> &str {
        &self.label
    }

    /// The user PIN ([`TEST_PIN`]).
    pub fn pin(&self) -> &str {
        TEST_PIN
    }

    /// An RFC 7512 URI naming the token and the module.
    pub fn uri(&self) -> String {
        format!("pkcs11:token={}?module-path={}", self.label, self.module.display())
    }

    /// Points SoftHSM in `cmd` at this token directory.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("SOFTHSM2_CONF", &self.conf)
    }

    /// The environment [`SoftHsm::apply`] sets.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![("SOFTHSM2_CONF", self.conf.clone().into_os_string())]
    }

    /// Runs the test calling this (found by its thread name, which libtest sets) again in a
    /// child process whose SoftHSM sees only this token, and panics with the child's output if
    /// it failed. In the child, [`child_token`] returns the token.
    #[track_caller]
    pub fn run_current_test_in_child(&self) {
        let thread = std::thread::current();
        let name = thread
            .name()
            .filter(|n| *n != "main")
            .unwrap_or_else(|| panic!("run_current_test_in_child must be called from a libtest test thread"));
        let exe = std::env::current_exe().expect("current test executable");
        let mut cmd = Command::new(exe);
        cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_TOKEN_ENV, &self.label)
            .env(CHILD_MODULE_ENV, &self.module);
        let out = self.apply(&mut cmd).output().expect("re-run the test in a child process");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "test {name} failed against SoftHSM ({}):\n{text}", out.status);
        assert!(text.contains("1 passed"), "test {name} did not run in the child:\n{text}");
    }
}

impl Drop for SoftHsm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The token a parent [`SoftHsm::run_current_test_in_child`] prepared, when this process is
/// that child.
#[derive(Debug, Clone)]
pub struct ChildToken {
    pub module: PathBuf,
    pub label: String,
    pub pin: &'static str,
}

/// `Some` in a child started by [`SoftHsm::run_current_test_in_child`].
pub fn child_token() -> Option<ChildToken> {
    let label = std::env::var(CHILD_TOKEN_ENV).ok()?;
    let module = PathBuf::from(std::env::var_os(CHILD_MODULE_ENV)?);
    Some(ChildToken { module, label, pin: TEST_PIN })
}

fn unique_temp_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let name =
        format!("ironclad-softhsm-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    std::env::temp_dir().join(name)
}
