//! Interop with ffmpeg (research/media.md §7): ffmpeg makes a clear HLS clip (H.264 with
//! B-frames and 4 slices per frame, AAC), ironclad encrypts it as SAMPLE-AES HLS, ffmpeg decrypts
//! and decodes it, and every decoded frame must equal the clear clip's. ironclad's decryptor must
//! give back the original segment bytes. Variants: one slice per frame (EPBs inside the clear
//! leader, a slice with exactly 16 bytes after its last block), AC-3 and E-AC-3 audio, and a
//! wrong key as the negative control.
//!
//! Skips when ffmpeg is missing, unless IRONCLAD_REQUIRE_PEERS=1.

use std::fs;
use std::path::Path;

use ironclad_media::hls::{self, KeyTag};
use ironclad_media::ts::{Ac3Policy, TsDecryptor, TsEncryptor};
use ironclad_media::{H264Stats, SampleAes};
use ironclad_testkit::{require_tool, run, run_ok};

const KEY: [u8; 16] = *b"ironclad-media-k";
const IV: [u8; 16] = [0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];

/// Makes the clear clip of §7 in `dir/clear`; returns the playlist text. `x264_params`:
/// `slices=4` for the recipe, `slices=1` for the variant whose slices carry emulation prevention
/// bytes inside the 32-byte leader. `audio`: the ffmpeg audio encoder (`aac`, `ac3`, `eac3`).
fn make_clip(ffmpeg: &Path, dir: &Path, x264_params: &str, audio: &str) -> String {
    let clear = dir.join("clear");
    fs::create_dir_all(&clear).unwrap();
    let seg = clear.join("seg%03d.ts");
    let playlist = clear.join("index.m3u8");
    let recipe = "-hide_banner -loglevel error -y \
        -f lavfi -i testsrc=size=640x360:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -t 6 -c:v libx264 -preset veryfast -g 50 -pix_fmt yuv420p -x264-params X264 \
        -c:a AUDIO -b:a 128k -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_filename SEG PLAYLIST";
    let args: Vec<&str> = recipe
        .split_whitespace()
        .map(|a| match a {
            "X264" => x264_params,
            "AUDIO" => audio,
            "SEG" => seg.to_str().unwrap(),
            "PLAYLIST" => playlist.to_str().unwrap(),
            a => a,
        })
        .collect();
    run_ok(ffmpeg, &args);
    fs::read_to_string(playlist).unwrap()
}

/// Encrypts every segment of `clear_dir` into `enc_dir` with [`KEY`], one explicit IV and
/// continuous counters, plus an encrypted copy of the first segment after a discontinuity
/// (ffmpeg leaves the packets still in its parser at the end of the playlist undecrypted).
/// `key_file` is what `key.bin` gets: [`KEY`], or a wrong key for the negative control.
fn encrypt_clip(
    clear_dir: &Path,
    enc_dir: &Path,
    playlist: &str,
    key_file: &[u8; 16],
    audio: &str,
) -> Vec<String> {
    fs::create_dir_all(enc_dir).unwrap();
    fs::write(enc_dir.join("key.bin"), key_file).unwrap();
    let mut enc = TsEncryptor::new(SampleAes::new(&KEY, IV).unwrap()).with_ac3(Ac3Policy::Encrypt);
    let uris: Vec<String> = hls::segment_uris(playlist).into_iter().map(str::to_owned).collect();
    let sources = uris.iter().chain(std::iter::once(&uris[0]));
    let targets = uris.iter().cloned().chain(std::iter::once("pad.ts".to_owned()));
    for (source, target) in sources.zip(targets) {
        let clear = fs::read(clear_dir.join(source)).unwrap();
        let mut out = Vec::new();
        let stats = enc.encrypt_segment(&clear, &mut out).unwrap();
        // The padding copy restarts the input counters, so only it is not canonical.
        assert_eq!(stats.canonical, target != "pad.ts", "{target}: {stats:?}");
        assert!(stats.nal_units_protected > 0 && stats.audio_frames_protected > 0, "{stats:?}");
        let pmt = &out[2 * 188..3 * 188]; // ffmpeg writes SDT, PAT, PMT first
        let audio_pmt: [&[u8]; 2] = match audio {
            "aac" => [b"\xcf", b"\x0f\x04aacd\x05\x0eapadzaac"],
            "ac3" => [b"\xc1", b"\x0f\x04ac3d\x05\x04AC-3"],
            _ => [b"\xc2", b"\x0f\x04ec3d\x05\x04EAC3"],
        };
        for apple in [&b"\xdb"[..], b"\x0f\x04zavc"].into_iter().chain(audio_pmt) {
            assert!(pmt.windows(apple.len()).any(|w| w == apple), "{target}: Apple PMT lacks {apple:?}");
        }
        fs::write(enc_dir.join(target), out).unwrap();
    }
    let tagged = hls::encrypt_playlist(playlist, &KeyTag::sample_aes("key.bin", IV)).unwrap();
    let padded =
        tagged.replace("#EXT-X-ENDLIST", "#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\npad.ts\n#EXT-X-ENDLIST");
    fs::write(enc_dir.join("index.m3u8"), padded).unwrap();
    uris
}

/// `ffmpeg -f framemd5` of a playlist: (lines per stream, stderr, exit success).
fn framemd5(ffmpeg: &Path, playlist: &Path, extra: &[&str]) -> (Vec<Vec<String>>, String, bool) {
    let mut args = vec!["-hide_banner", "-nostdin"];
    args.extend_from_slice(extra);
    args.extend(["-i", playlist.to_str().unwrap(), "-f", "framemd5", "-"]);
    let out = run(ffmpeg, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut streams: Vec<Vec<String>> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')) {
        let idx: usize = line.split(',').next().unwrap().trim().parse().unwrap();
        if streams.len() <= idx {
            streams.resize(idx + 1, Vec::new());
        }
        streams[idx].push(line.to_owned());
    }
    (streams, stderr, out.status.success())
}

const DECRYPT_ARGS: [&str; 4] = ["-allowed_extensions", "ALL", "-protocol_whitelist", "file"];

/// Frames of `got` that equal the clear clip's, per stream, over the clear clip's frame count.
/// Frames are compared by duration, size and MD5: timestamps are not ciphertext (PES headers
/// stay clear), and ffmpeg re-stamps the last AC-3 frame of the playlist when the padding
/// segment after the discontinuity flushes its parser.
fn identical(clear: &[Vec<String>], got: &[Vec<String>]) -> Vec<(usize, usize)> {
    let content = |line: &str| line.rsplitn(4, ',').take(3).map(str::trim).collect::<Vec<_>>().join(",");
    clear
        .iter()
        .zip(got)
        .map(|(c, g)| (c.iter().zip(g).filter(|(a, b)| content(a) == content(b)).count(), c.len()))
        .collect()
}

fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The whole peer check for one clip; returns the clear H.264 elementary stream.
fn ffmpeg_round_trip(ffmpeg: &Path, x264_params: &str, audio: &str) -> Vec<u8> {
    let ffmpeg = ffmpeg.to_path_buf();
    let tmp = workdir();
    let dir = tmp.path();
    let playlist = make_clip(&ffmpeg, dir, x264_params, audio);
    let (clear_frames, _, ok) = framemd5(&ffmpeg, &dir.join("clear/index.m3u8"), &[]);
    assert!(ok && clear_frames.len() == 2, "one video and one audio stream");
    assert_eq!(clear_frames[0].len(), 150, "6 s at 25 fps");

    let uris = encrypt_clip(&dir.join("clear"), &dir.join("enc"), &playlist, &KEY, audio);
    let (enc_frames, stderr, ok) = framemd5(&ffmpeg, &dir.join("enc/index.m3u8"), &DECRYPT_ARGS);
    assert!(ok && !stderr.contains("Unable to open key file"), "{stderr}");
    for (stream, (same, total)) in identical(&clear_frames, &enc_frames).into_iter().enumerate() {
        assert_eq!(same, total, "stream {stream}: {same}/{total} frames identical after ffmpeg decrypts");
    }

    // Stronger: the H.264 NAL units ffmpeg decrypts are the clear ones, byte for byte.
    let copy = |playlist: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec!["-hide_banner", "-loglevel", "error", "-y"];
        args.extend_from_slice(extra);
        args.extend(["-i", playlist.to_str().unwrap(), "-map", "0:v", "-c", "copy", "-f", "h264"]);
        args.push(out.to_str().unwrap());
        run_ok(&ffmpeg, &args);
        fs::read(out).unwrap()
    };
    let clear_h264 = copy(&dir.join("clear/index.m3u8"), &dir.join("clear.h264"), &[]);
    let enc_h264 = copy(&dir.join("enc/index.m3u8"), &dir.join("enc.h264"), &DECRYPT_ARGS);
    assert!(enc_h264.starts_with(&clear_h264), "decrypted H.264 is not the clear stream");
    // ironclad's elementary-stream pass round-trips the real stream too.
    let aes = SampleAes::new(&KEY, IV).unwrap();
    let (mut e, mut d) = (Vec::new(), Vec::new());
    let H264Stats { protected, .. } = aes.encrypt_h264(&clear_h264, &mut e).unwrap();
    assert!(protected > 100, "{protected} slices encrypted");
    aes.decrypt_h264(&e, &mut d).unwrap();
    assert_eq!(d, clear_h264);

    // ironclad's decryptor restores the original segments exactly.
    let mut dec = TsDecryptor::new(SampleAes::new(&KEY, IV).unwrap());
    for uri in &uris {
        let enc = fs::read(dir.join("enc").join(uri)).unwrap();
        let mut out = Vec::new();
        dec.decrypt_segment(&enc, &mut out).unwrap();
        let clear = fs::read(dir.join("clear").join(uri)).unwrap();
        assert!(out == clear, "{uri}: decrypted segment differs from the original");
    }
    let (clear_playlist, keys) =
        hls::decrypt_playlist(&fs::read_to_string(dir.join("enc/index.m3u8")).unwrap()).unwrap();
    assert_eq!(keys, [KeyTag::sample_aes("key.bin", IV)]);
    assert!(clear_playlist.contains("seg000.ts") && !clear_playlist.contains("EXT-X-KEY"));
    clear_h264
}

#[test]
fn ffmpeg_decodes_ironclad_sample_aes_hls_frame_exact() {
    let Some(ffmpeg) = require_tool("ffmpeg") else { return };
    ffmpeg_round_trip(&ffmpeg, "slices=4", "aac");
}

/// One slice per frame: testsrc's P slices then carry `00 00 03` inside the clear leader (about
/// 120 in 6 s) and one slice ends with exactly 16 bytes after its last pattern block, the two
/// cases where the emulation-prevention convention and the `> 16` rule decide interop.
#[test]
fn ffmpeg_decodes_epbs_in_the_leader_and_sixteen_byte_tails() {
    let Some(ffmpeg) = require_tool("ffmpeg") else { return };
    let h264 = ffmpeg_round_trip(&ffmpeg, "slices=1", "aac");
    let mut epbs_in_leader = 0;
    let mut sixteen_left = 0;
    for unit in ironclad_media::nal::nal_units(&h264).unwrap() {
        let u = unit.unwrap();
        if matches!(u.nal_type, 1 | 5) && u.len() > 48 {
            let leader = &h264[u.start..u.start + 32];
            epbs_in_leader += leader.windows(3).filter(|w| w == &[0, 0, 3]).count();
            sixteen_left += usize::from((u.len() - 32) % 160 == 16);
        }
    }
    assert!(epbs_in_leader > 10, "only {epbs_in_leader} EPBs in leaders: the clip no longer exercises them");
    assert!(sixteen_left >= 1, "no slice with exactly 16 bytes after its last block");
}

/// AC-3 and E-AC-3 audio ([`Ac3Policy::Encrypt`]): 16-byte leader from the syncword, whole
/// blocks, IV reset per syncframe.
#[test]
fn ffmpeg_decodes_sample_aes_ac3_and_eac3() {
    let Some(ffmpeg) = require_tool("ffmpeg") else { return };
    ffmpeg_round_trip(&ffmpeg, "slices=4", "ac3");
    ffmpeg_round_trip(&ffmpeg, "slices=4", "eac3");
}

#[test]
fn ffmpeg_with_wrong_key_gets_different_frames() {
    let Some(ffmpeg) = require_tool("ffmpeg") else { return };
    let tmp = workdir();
    let dir = tmp.path();
    let playlist = make_clip(&ffmpeg, dir, "slices=4", "aac");
    let (clear_frames, _, _) = framemd5(&ffmpeg, &dir.join("clear/index.m3u8"), &[]);
    let mut wrong = KEY;
    wrong[0] ^= 1;
    encrypt_clip(&dir.join("clear"), &dir.join("enc"), &playlist, &wrong, "aac");
    // ffmpeg logs decoder errors for the garbage; the key file itself must have been read.
    let (got, stderr, _) = framemd5(&ffmpeg, &dir.join("enc/index.m3u8"), &DECRYPT_ARGS);
    assert!(!stderr.contains("Unable to open key file"), "{stderr}");
    for (stream, (same, total)) in identical(&clear_frames, &got).into_iter().enumerate() {
        assert!(same < total / 10, "stream {stream}: {same}/{total} frames unchanged with a wrong key");
    }
}
