#![no_main]
// CRL parsing (what `POST /v1/crls` does first with an operator's upload) must never panic,
// whatever the bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(crl) = ironclad_server::parse_crl(data) {
        let _ = (crl.number().to_string(), crl.issuer(), crl.entries(), crl.next_update());
    }
});
