#![no_main]
// TLV8 decoding (fragment reassembly, separators, item access) must never panic, and what
// decodes must re-encode to the same items.
use ironclad_pair::tlv8::{self, Tlv8};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(tlv) = Tlv8::decode(data) {
        for ty in [0u8, 1, 3, 6, 7, 0x13, 0xFF] {
            let _ = tlv.get(ty);
            let _ = tlv.get_u32(ty);
        }
        let _ = tlv.groups();
        if let Ok(again) = Tlv8::decode(&tlv8::encode(tlv.items())) {
            assert_eq!(again.items(), tlv.items());
        }
    }
});
