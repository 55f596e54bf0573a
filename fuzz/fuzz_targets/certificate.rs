#![no_main]
// Certificate inspection (`cert show`) must never panic, whatever the bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ironclad_pki::inspect_certificate(data);
});
