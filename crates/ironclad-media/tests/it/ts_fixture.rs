//! TS packaging on a committed ffmpeg clip (testdata/hls-clear): exact round trip, continuity
//! across segments, refusal of broken segments without touching the stream state, and a pinned
//! hash of the encrypted output (checked once with ffmpeg, see testdata/README.md), so these run
//! without any peer tool.

use aws_lc_rs::digest::{SHA256, digest};
use ironclad_media::ts::{SegmentStats, TsDecryptor, TsEncryptor};
use ironclad_media::{Error, SampleAes};

const KEY: [u8; 16] = *b"ironclad-media-k";
const IV: [u8; 16] = [0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
const PACKET: usize = 188;

fn segments() -> [&'static [u8]; 2] {
    [include_bytes!("../../testdata/hls-clear/seg0.ts"), include_bytes!("../../testdata/hls-clear/seg1.ts")]
}

fn encryptor() -> TsEncryptor {
    TsEncryptor::new(SampleAes::new(&KEY, IV).unwrap())
}

fn decryptor() -> TsDecryptor {
    TsDecryptor::new(SampleAes::new(&KEY, IV).unwrap())
}

fn encrypt_all(enc: &mut TsEncryptor) -> Vec<(Vec<u8>, SegmentStats)> {
    segments()
        .iter()
        .map(|seg| {
            let mut out = Vec::new();
            let stats = enc.encrypt_segment(seg, &mut out).unwrap();
            (out, stats)
        })
        .collect()
}

/// Continuity counters of `pid` in a segment.
fn counters(seg: &[u8], pid: u16) -> Vec<u8> {
    seg.chunks(PACKET)
        .filter(|p| (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == pid && p[3] & 0x10 != 0)
        .map(|p| p[3] & 0x0f)
        .collect()
}

#[test]
fn round_trip_is_byte_exact_and_counters_continue() {
    let encrypted = encrypt_all(&mut encryptor());
    let mut dec = decryptor();
    for ((enc, stats), clear) in encrypted.iter().zip(segments()) {
        assert!(stats.canonical, "{stats:?}");
        assert!(stats.nal_units_protected >= 5 && stats.audio_frames_protected >= 40, "{stats:?}");
        assert!(enc.len() >= clear.len(), "encryption only adds packets");
        assert_ne!(enc.as_slice(), clear);
        let mut out = Vec::new();
        let back = dec.decrypt_segment(enc, &mut out).unwrap();
        assert!(out == clear, "decrypted segment differs from the original");
        assert_eq!(
            (back.nal_units_protected, back.audio_frames_protected),
            (stats.nal_units_protected, stats.audio_frames_protected)
        );
    }
    // Counters of the rewritten PIDs run on from segment to segment.
    for pid in [0x100, 0x101] {
        let all: Vec<u8> = encrypted.iter().flat_map(|(e, _)| counters(e, pid)).collect();
        assert!(all.windows(2).all(|w| w[1] == (w[0] + 1) & 15), "PID {pid:#x} counters jump");
    }
}

#[test]
fn encrypted_output_is_pinned() {
    // Verified with ffmpeg 5.1.9 (`-allowed_extensions ALL`, framemd5 identical to the clear clip)
    // when this fixture was made; a change here means the wire format changed.
    let pinned = [
        "85f2a7dc514e4d3e8e2e42f0aada061c95ee1b472f83c5cd9df602b7f031ab11",
        "7af54176b14535e9c9672e8eedcbae614cc71761f96d040ea616bacd51d01f48",
    ];
    for ((enc, _), pin) in encrypt_all(&mut encryptor()).iter().zip(pinned) {
        assert_eq!(hex::encode(digest(&SHA256, enc)), pin);
    }
}

#[test]
fn segment_decrypted_out_of_order_differs_only_in_counters() {
    let encrypted = encrypt_all(&mut encryptor());
    let mut out = Vec::new();
    decryptor().decrypt_segment(&encrypted[1].0, &mut out).unwrap();
    let clear = segments()[1];
    assert_eq!(out.len(), clear.len());
    for (a, b) in out.chunks(PACKET).zip(clear.chunks(PACKET)) {
        assert_eq!((&a[..3], &a[4..]), (&b[..3], &b[4..]));
        assert_eq!(a[3] & 0xf0, b[3] & 0xf0);
    }
}

#[test]
fn broken_segments_are_refused_and_leave_the_state_alone() {
    let [seg0, seg1] = segments();
    let mut enc = encryptor();
    let mut out = Vec::new();
    enc.encrypt_segment(seg0, &mut out).unwrap();
    let expected_seg1 = encrypt_all(&mut encryptor()).remove(1).0;

    let mut bad = Vec::new();
    type Expect = fn(&Error) -> bool;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        (seg1[..seg1.len() - 100].to_vec(), |e| matches!(e, Error::TsLength { .. })),
        (
            {
                let mut s = seg1.to_vec();
                s[40 * PACKET] = 0x46;
                s
            },
            |e| matches!(e, Error::Ts { .. }),
        ),
        // Cut at a packet boundary inside an audio PES: its PES_packet_length no longer matches.
        (seg1[..cut_inside_audio_pes(seg1)].to_vec(), |e| matches!(e, Error::Pes { pid: 0x101, .. })),
        // A segment starting mid-PES (packet 4 continues the video PES begun in packet 3).
        (seg1[4 * PACKET..].to_vec(), |e| matches!(e, Error::Ts { .. })),
    ];
    for (input, expect) in cases {
        let err = enc.encrypt_segment(&input, &mut bad).unwrap_err();
        assert!(expect(&err), "unexpected error {err}");
        assert!(bad.is_empty(), "nothing written on error");
    }
    let mut good = Vec::new();
    enc.encrypt_segment(seg1, &mut good).unwrap();
    assert!(good == expected_seg1, "a refused segment changed the stream state");

    // Encrypting twice is refused; decrypting clear input leaves it unchanged.
    let err = encryptor().encrypt_segment(&out, &mut bad).unwrap_err();
    assert!(matches!(err, Error::AlreadyEncrypted { .. }), "{err}");
    let mut same = Vec::new();
    let stats = decryptor().decrypt_segment(seg0, &mut same).unwrap();
    assert_eq!((same.as_slice(), stats.pes), (seg0, 0));
}

/// A packet boundary strictly inside an audio PES of the segment.
fn cut_inside_audio_pes(seg: &[u8]) -> usize {
    let audio: Vec<usize> = seg
        .chunks(PACKET)
        .enumerate()
        .filter(|(_, p)| (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == 0x101)
        .map(|(i, _)| i)
        .collect();
    let start = audio.iter().position(|&i| seg[i * PACKET + 1] & 0x40 != 0).unwrap();
    (audio[start + 1] + 1) * PACKET
}
