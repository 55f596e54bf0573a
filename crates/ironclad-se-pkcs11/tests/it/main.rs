//! Integration tests against SoftHSM2: the shared secure-element conformance suite, each test
//! on a fresh token of its own, then PKCS#11-specific behaviour and interop.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ironclad_se::SecureElement;
use ironclad_se_pkcs11::{Pin, Pkcs11Config, Pkcs11Se};
use ironclad_testkit::softhsm::{self, SoftHsm};

/// In the parent test process: makes a fresh token, re-runs the calling test in a child
/// process pointed at it (SoftHSM reads its configuration once per process) and returns
/// `None`. In that child: the token to use.
pub(crate) fn fresh_token() -> Option<softhsm::ChildToken> {
    if let Some(token) = softhsm::child_token() {
        return Some(token);
    }
    let hsm = SoftHsm::new("ironclad-test")?;
    hsm.run_current_test_in_child();
    None
}

pub(crate) fn config(token: &softhsm::ChildToken) -> Pkcs11Config {
    Pkcs11Config { module: token.module.clone(), token_label: token.label.clone(), pin: Pin::new(token.pin) }
}

/// [`fresh_token`], opened.
pub(crate) fn fresh_se() -> Option<Arc<Pkcs11Se>> {
    fresh_token().map(|token| Arc::new(Pkcs11Se::open(&config(&token)).unwrap()))
}

mod conformance {
    use super::*;

    ironclad_se::se_conformance_tests!(match fresh_se() {
        Some(se) => se as Arc<dyn SecureElement>,
        None => return,
    });
}

mod interop;
mod token;
