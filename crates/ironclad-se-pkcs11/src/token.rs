//! Loading a module, finding a token, logging in, and the session pool.
//!
//! PKCS#11 facts this module is built around:
//! - A module is initialised once per process (`C_Initialize`), so contexts are shared per
//!   module path and never finalised.
//! - Login state belongs to the application and the token, not to a session: one logged-in
//!   session (the *anchor*, kept open for the backend's lifetime) makes every other session
//!   of this process on that token a user session. Closing the last session logs out.
//! - `Session` is `Send` but not `Sync`: each operation takes a session from the pool (or opens
//!   one), uses it on the calling thread and returns it, so parallel signing uses as many
//!   sessions as there are threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::error::{Pkcs11Error, rv_of};
use crate::pin::Pin;

/// Loads (once per process) and initialises the module at `module`.
fn context(module: &Path) -> Result<Pkcs11, Pkcs11Error> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let key = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_path_buf());
    let mut contexts = lock(CONTEXTS.get_or_init(Mutex::default));
    if let Some(ctx) = contexts.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&key)
        .map_err(|e| Pkcs11Error::Module { module: module.to_path_buf(), reason: e.to_string() })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        // Someone else in this process initialised it: that is fine, it stays initialised.
        Err(e) if rv_of(&e) == Some(RvError::CryptokiAlreadyInitialized) => {}
        Err(e) => return Err(Pkcs11Error::call("C_Initialize", e)),
    }
    contexts.insert(key, ctx.clone());
    Ok(ctx)
}

/// A poisoned lock only means another thread panicked while holding it; the guarded data
/// (session lists, caches) stays consistent because each mutation is a single push/insert.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A logged-in token and a pool of sessions on it.
pub(crate) struct Token {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    module: PathBuf,
    mechanisms: Vec<MechanismType>,
    /// Keeps the login alive; never used for operations.
    _anchor: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
}

impl Token {
    pub(crate) fn open(module: &Path, label: &str, pin: &Pin) -> Result<Self, Pkcs11Error> {
        let ctx = context(module)?;
        let slot = find_slot(&ctx, module, label)?;
        let mechanisms =
            ctx.get_mechanism_list(slot).map_err(|e| Pkcs11Error::call("C_GetMechanismList", e))?;
        let anchor = ctx.open_rw_session(slot).map_err(|e| Pkcs11Error::call("C_OpenSession", e))?;
        let auth = AuthPin::new(pin.expose().into());
        match anchor.login(UserType::User, Some(&auth)) {
            Ok(()) => {}
            // Another handle in this process is logged in to the same token already.
            Err(e) if rv_of(&e) == Some(RvError::UserAlreadyLoggedIn) => {}
            Err(e) => {
                let reason = match rv_of(&e) {
                    Some(RvError::PinIncorrect) => "incorrect PIN",
                    Some(RvError::PinLocked) => "the PIN is locked (too many wrong attempts)",
                    Some(RvError::PinExpired) => "the PIN has expired",
                    Some(RvError::UserPinNotInitialized) => "the user PIN is not initialised",
                    _ => return Err(Pkcs11Error::call("C_Login", e)),
                };
                return Err(Pkcs11Error::Login { token: label.to_owned(), reason });
            }
        }
        Ok(Self {
            ctx,
            slot,
            label: label.to_owned(),
            module: module.to_path_buf(),
            mechanisms,
            _anchor: Mutex::new(anchor),
            idle: Mutex::default(),
        })
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    pub(crate) fn module(&self) -> &Path {
        &self.module
    }

    pub(crate) fn has_mechanism(&self, mechanism: MechanismType) -> bool {
        self.mechanisms.contains(&mechanism)
    }

    /// Runs `f` with a session of its own. After a failure the session is checked with
    /// `C_GetSessionInfo` and dropped rather than pooled if it went bad.
    pub(crate) fn with_session<T, E: From<Pkcs11Error>>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, E>,
    ) -> Result<T, E> {
        let pooled = lock(&self.idle).pop();
        let session = match pooled {
            Some(s) => s,
            None => self
                .ctx
                .open_rw_session(self.slot)
                .map_err(|e| E::from(Pkcs11Error::call("C_OpenSession", e)))?,
        };
        let result = f(&session);
        if result.is_ok() || session.get_session_info().is_ok() {
            lock(&self.idle).push(session);
        }
        result
    }
}

fn find_slot(ctx: &Pkcs11, module: &Path, label: &str) -> Result<Slot, Pkcs11Error> {
    let slots = ctx.get_slots_with_initialized_token().map_err(|e| Pkcs11Error::call("C_GetSlotList", e))?;
    let mut seen = Vec::new();
    let mut matching = Vec::new();
    for slot in slots {
        let info = ctx.get_token_info(slot).map_err(|e| Pkcs11Error::call("C_GetTokenInfo", e))?;
        // Token labels are blank-padded to 32 bytes; cryptoki trims them.
        let found = info.label().trim_end();
        if found == label {
            matching.push(slot);
        }
        seen.push(format!("{found:?}"));
    }
    match matching.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(Pkcs11Error::TokenNotFound {
            label: label.to_owned(),
            module: module.to_path_buf(),
            seen: if seen.is_empty() { "none".into() } else { seen.join(", ") },
        }),
        many => Err(Pkcs11Error::TokenAmbiguous { label: label.to_owned(), count: many.len() }),
    }
}
