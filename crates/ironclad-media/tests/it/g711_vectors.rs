//! G.711 whole-frame encryption against known answers computed with the OpenSSL CLI
//! (`testdata/gen-g711-vectors.sh`), so the rule in `src/g711.rs` is pinned by an outside tool.

use ironclad_media::G711Cipher;

struct Vector {
    stream_iv: [u8; 16],
    frame_index: u64,
    icb: [u8; 16],
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn load() -> ([u8; 16], Vec<Vector>) {
    let text = include_str!("../../testdata/g711-ctr-vectors.txt");
    let field = |block: &str, name: &str| -> String {
        block
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim_start().strip_prefix('=')))
            .unwrap_or_else(|| panic!("missing {name}"))
            .trim()
            .to_owned()
    };
    let bytes = |s: String| hex::decode(s).unwrap();
    let arr = |s: String| -> [u8; 16] { bytes(s).try_into().unwrap() };
    let mut blocks = text.split("[vector]");
    let key = arr(field(blocks.next().unwrap(), "key"));
    let vectors = blocks
        .map(|b| Vector {
            stream_iv: arr(field(b, "stream_iv")),
            frame_index: field(b, "frame_index").parse().unwrap(),
            icb: arr(field(b, "icb")),
            plaintext: bytes(field(b, "plaintext")),
            ciphertext: bytes(field(b, "ciphertext")),
        })
        .collect();
    (key, vectors)
}

#[test]
fn g711_known_answers() {
    let (key, vectors) = load();
    assert_eq!(vectors.len(), 6);
    for v in vectors {
        let cipher = G711Cipher::new(&key, v.stream_iv).unwrap();
        assert_eq!(cipher.counter_block(v.frame_index), v.icb, "ICB for frame {}", v.frame_index);
        let mut frame = v.plaintext.clone();
        cipher.encrypt_frame(v.frame_index, &mut frame).unwrap();
        assert_eq!(frame, v.ciphertext, "ciphertext for frame {}", v.frame_index);
        cipher.decrypt_frame(v.frame_index, &mut frame).unwrap();
        assert_eq!(frame, v.plaintext);
    }
}
