#![no_main]
// CSR parsing and verification must never panic, whatever the bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ironclad_pki::parse_and_verify(data, &ironclad_pki::Limits::default());
});
