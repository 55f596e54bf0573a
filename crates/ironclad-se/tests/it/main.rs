//! Integration tests: the shared conformance suite on both software backends, then the
//! directory store's at-rest protections.
#![allow(clippy::unwrap_used)]

mod memory {
    use std::sync::Arc;
    ironclad_se::se_conformance_tests!(Arc::new(ironclad_se::MemorySe::new()));
}

mod directory {
    use ironclad_se::{DirSe, KdfParams, Unlock};
    use std::sync::Arc;

    fn fresh() -> Arc<DirSe> {
        // The directory outlives the test process only in /tmp; leaking it keeps the store alive.
        let dir = tempfile::tempdir().unwrap().keep();
        Arc::new(
            DirSe::create(dir.join("se"), &Unlock::passphrase("correct horse"), KdfParams::weak_for_tests())
                .unwrap(),
        )
    }

    ironclad_se::se_conformance_tests!(fresh());
}

mod device_secret_directory {
    use ironclad_se::{DirSe, KdfParams, Unlock};
    use std::sync::Arc;

    ironclad_se::se_conformance_tests!({
        let dir = tempfile::tempdir().unwrap().keep();
        Arc::new(
            DirSe::create(dir.join("se"), &Unlock::device_secret(&[0x42; 32]), KdfParams::default()).unwrap(),
        )
    });
}

mod at_rest;
