//! Property tests: encrypt → decrypt is the identity for arbitrary NAL sequences, ADTS and AC-3
//! streams, G.711 frames and real TS segments under arbitrary keys; decoders never panic.

use ironclad_media::hls::{self, KeyTag};
use ironclad_media::ts::{TsDecryptor, TsEncryptor};
use ironclad_media::{G711Cipher, SampleAes};
use proptest::collection::vec;
use proptest::prelude::*;

fn aes(key: [u8; 16], iv: [u8; 16]) -> SampleAes {
    SampleAes::new(&key, iv).unwrap()
}

/// Bytes biased towards 0..=3 so that emulation-prevention patterns are common.
fn body_byte() -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(0u8), 1 => 1u8..=3, 3 => any::<u8>()]
}

/// A valid EBSP NAL: header (any type, forbidden bit clear) + escaped body, not ending in 0.
fn nal() -> impl Strategy<Value = Vec<u8>> {
    let header =
        prop_oneof![Just(0x41u8), Just(0x65), Just(0x01), Just(0x25), Just(0x67), Just(0x06), 0u8..0x80];
    (header, vec(body_byte(), 0..700)).prop_map(|(h, body)| {
        let mut n = vec![h];
        let mut zeros = 0;
        for b in body {
            if zeros >= 2 && b <= 3 {
                n.push(3);
                zeros = 0;
            }
            n.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        while n.len() > 1 && n.last() == Some(&0) {
            n.pop();
        }
        n
    })
}

/// An Annex-B stream: leading zeros, 3- or 4-byte start codes, trailing zero bytes.
fn annexb() -> impl Strategy<Value = Vec<u8>> {
    (0usize..3, vec((nal(), any::<bool>(), 0usize..3), 0..12)).prop_map(|(lead, nals)| {
        let mut s = vec![0u8; lead];
        for (n, four, trailing) in nals {
            s.extend_from_slice(if four { &[0, 0, 0, 1][..] } else { &[0, 0, 1] });
            s.extend_from_slice(&n);
            s.resize(s.len() + trailing, 0);
        }
        s
    })
}

fn adts_stream() -> impl Strategy<Value = Vec<u8>> {
    vec((0usize..700, any::<bool>(), any::<u8>()), 0..10).prop_map(|frames| {
        let mut s = Vec::new();
        for (payload, crc, seed) in frames {
            let len = payload + if crc { 9 } else { 7 };
            s.extend([0xff, if crc { 0xf0 } else { 0xf1 }, 0x4c, 0x80 | (len >> 11) as u8, (len >> 3) as u8]);
            s.extend([((len as u8 & 7) << 5) | 0x1f, 0xfc]);
            if crc {
                s.extend([seed, !seed]);
            }
            s.extend((0..payload).map(|i| seed.wrapping_mul(i as u8)));
        }
        s
    })
}

fn eac3_stream() -> impl Strategy<Value = Vec<u8>> {
    vec((3usize..400, any::<u8>()), 0..8).prop_map(|frames| {
        let mut s = Vec::new();
        for (words, seed) in frames {
            let frmsiz = words - 1;
            s.extend([0x0b, 0x77, (frmsiz >> 8) as u8 & 7, frmsiz as u8, 0x3f, 16 << 3]);
            s.extend((6..words * 2).map(|i| seed ^ i as u8));
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn h264_round_trip(stream in annexb(), key: [u8; 16], iv: [u8; 16]) {
        let c = aes(key, iv);
        let (mut enc, mut dec) = (Vec::new(), Vec::new());
        let e = c.encrypt_h264(&stream, &mut enc);
        if stream.iter().all(|&b| b == 0) {
            // Only zeros (or nothing): no start code.
            prop_assert!(stream.is_empty() == e.is_ok());
        } else {
            let e = e.unwrap();
            let d = c.decrypt_h264(&enc, &mut dec).unwrap();
            prop_assert_eq!(&dec, &stream);
            prop_assert_eq!(e, d);
            prop_assert!(enc.windows(3).filter(|w| w == &[0, 0, 1]).count() == e.nal_units);
        }
    }

    #[test]
    fn h264_arbitrary_bytes_round_trip_or_refuse(stream in vec(body_byte(), 0..600), key: [u8; 16]) {
        let c = aes(key, [0; 16]);
        let (mut enc, mut dec) = (Vec::new(), Vec::new());
        if c.encrypt_h264(&stream, &mut enc).is_ok() {
            c.decrypt_h264(&enc, &mut dec).unwrap();
            prop_assert_eq!(&dec, &stream);
        } else {
            prop_assert!(enc.is_empty());
        }
        // Decrypting garbage never panics.
        let _ = c.decrypt_h264(&stream, &mut Vec::new());
    }

    #[test]
    fn adts_round_trip(stream in adts_stream(), key: [u8; 16], iv: [u8; 16]) {
        let c = aes(key, iv);
        let mut buf = stream.clone();
        let e = c.encrypt_adts(&mut buf).unwrap();
        let d = c.decrypt_adts(&mut buf).unwrap();
        prop_assert_eq!(e, d);
        prop_assert_eq!(buf, stream);
    }

    #[test]
    fn eac3_round_trip(stream in eac3_stream(), key: [u8; 16]) {
        let c = aes(key, [1; 16]);
        let mut buf = stream.clone();
        c.encrypt_ac3(&mut buf).unwrap();
        c.decrypt_ac3(&mut buf).unwrap();
        prop_assert_eq!(buf, stream);
    }

    #[test]
    fn audio_decoders_never_panic(mut garbage in vec(any::<u8>(), 0..800), key: [u8; 16]) {
        let c = aes(key, [2; 16]);
        let before = garbage.clone();
        if c.decrypt_adts(&mut garbage).is_err() {
            prop_assert_eq!(&garbage, &before, "a refused buffer is left unchanged");
        }
        let mut g = before.clone();
        if c.decrypt_ac3(&mut g).is_err() {
            prop_assert_eq!(&g, &before);
        }
    }

    #[test]
    fn g711_round_trip(frame in vec(any::<u8>(), 0..400), index: u64, key: [u8; 16], iv: [u8; 16]) {
        let c = G711Cipher::new(&key, iv).unwrap();
        let mut buf = frame.clone();
        c.encrypt_frame(index, &mut buf).unwrap();
        prop_assert_eq!(buf.len(), frame.len());
        c.decrypt_frame(index, &mut buf).unwrap();
        prop_assert_eq!(buf, frame);
    }

    #[test]
    fn playlist_parsing_never_panics(text in "(#EXTM3U\n)?(#EXT-X-KEY:[A-Z=\",0-9a-fx-]{0,60}\n|#EXT-X-VERSION:[0-9]{0,3}\n|[a-z.]{0,8}\n|#EXTINF:2,\n){0,8}") {
        let _ = hls::decrypt_playlist(&text);
        if let Ok(p) = hls::encrypt_playlist(&text, &KeyTag::sample_aes("k", [0; 16])) {
            let (back, keys) = hls::decrypt_playlist(&p).unwrap();
            prop_assert_eq!(keys.len(), 1);
            prop_assert_eq!(hls::segment_uris(&back), hls::segment_uris(&text));
        }
    }
}

const SEGS: [&[u8]; 2] =
    [include_bytes!("../../testdata/hls-clear/seg0.ts"), include_bytes!("../../testdata/hls-clear/seg1.ts")];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any key and IV: the ciphertext (and so the number of EPBs and TS packets) changes, the
    /// round trip stays exact.
    #[test]
    fn ts_round_trip_any_key(key: [u8; 16], iv: [u8; 16]) {
        let mut enc = TsEncryptor::new(aes(key, iv));
        let mut dec = TsDecryptor::new(aes(key, iv));
        for seg in SEGS {
            let (mut e, mut d) = (Vec::new(), Vec::new());
            enc.encrypt_segment(seg, &mut e).unwrap();
            dec.decrypt_segment(&e, &mut d).unwrap();
            prop_assert!(d == seg);
        }
    }

    /// Corrupting bytes of an encrypted segment never panics the decryptor.
    #[test]
    fn ts_decryptor_never_panics(flips in vec((0usize..40_000, any::<u8>()), 1..40)) {
        let mut enc = TsEncryptor::new(aes([5; 16], [6; 16]));
        let mut e = Vec::new();
        enc.encrypt_segment(SEGS[0], &mut e).unwrap();
        for (at, x) in flips {
            let at = at % e.len();
            e[at] ^= x;
        }
        let _ = TsDecryptor::new(aes([5; 16], [6; 16])).decrypt_segment(&e, &mut Vec::new());
        let _ = TsEncryptor::new(aes([5; 16], [6; 16])).encrypt_segment(&e, &mut Vec::new());
    }
}
