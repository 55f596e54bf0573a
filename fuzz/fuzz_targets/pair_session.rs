#![no_main]
// The session's streaming frame decoder must never panic on arbitrary bytes in arbitrary splits.
use ironclad_pair::session::{Session, SessionKeys};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let mut session = Session::new(&SessionKeys::from_keys([1; 32], [2; 32]));
    for piece in rest.chunks(usize::from(cut).max(1)) {
        if session.decrypt(piece).is_err() {
            break;
        }
    }
});
