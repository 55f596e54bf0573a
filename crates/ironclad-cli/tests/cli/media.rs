//! `ironclad media`: SAMPLE-AES HLS that ffmpeg decodes frame for frame, exact decryption back to
//! the original segments, elementary-stream round trips, G.711 known answers, and refusals.
//!
//! The ffmpeg tests skip when ffmpeg is missing, unless IRONCLAD_REQUIRE_PEERS=1; the others use
//! the clip committed in crates/ironclad-media/testdata.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ironclad_testkit::{require_tool, run, run_ok};

use crate::{Env, s};

const IV: &str = "0x0f0e0d0c0b0a09080706050403020100";
const DECRYPT_ARGS: [&str; 4] = ["-allowed_extensions", "ALL", "-protocol_whitelist", "file"];

/// The committed ffmpeg clip (2 TS segments, H.264 + AAC).
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ironclad-media/testdata/hls-clear")
}

/// The clear clip of research/media.md §7 in `env/clear`: testsrc + sine, 6 s, libx264 with
/// B-frames, AAC, HLS with 2 s segments.
fn make_clip(ffmpeg: &Path, env: &Env) {
    fs::create_dir_all(env.path("clear")).unwrap();
    let seg = env.path("clear/seg%03d.ts");
    let playlist = env.path("clear/index.m3u8");
    let recipe = "-hide_banner -loglevel error -y \
        -f lavfi -i testsrc=size=640x360:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 -t 6 \
        -c:v libx264 -preset veryfast -g 50 -pix_fmt yuv420p -c:a aac -b:a 128k \
        -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_filename SEG PLAYLIST";
    let args: Vec<&str> = recipe
        .split_whitespace()
        .map(|a| match a {
            "SEG" => s(&seg),
            "PLAYLIST" => s(&playlist),
            a => a,
        })
        .collect();
    run_ok(ffmpeg, &args);
}

/// `ffmpeg -f framemd5` per stream: (duration, size, md5) of each frame; ffmpeg's stderr and
/// whether it succeeded.
fn framemd5(ffmpeg: &Path, playlist: &Path, extra: &[&str]) -> (Vec<Vec<String>>, String, bool) {
    let mut args = vec!["-hide_banner", "-nostdin"];
    args.extend_from_slice(extra);
    args.extend(["-i", s(playlist), "-f", "framemd5", "-"]);
    let out = run(ffmpeg, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut streams: Vec<Vec<String>> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')) {
        let idx: usize = line.split(',').next().unwrap().trim().parse().unwrap();
        if streams.len() <= idx {
            streams.resize(idx + 1, Vec::new());
        }
        // Timestamps are not ciphertext; compare what the frame is.
        let content = line.rsplitn(4, ',').take(3).map(str::trim).collect::<Vec<_>>().join(",");
        streams[idx].push(content);
    }
    (streams, stderr, out.status.success())
}

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".ts"))
        .collect();
    names.sort();
    names
}

#[test]
fn encrypt_hls_is_decoded_by_ffmpeg_frame_for_frame_and_decrypts_exactly() {
    let Some(ffmpeg) = require_tool("ffmpeg") else { return };
    let env = Env::new();
    make_clip(&ffmpeg, &env);
    let (clear_frames, _, ok) = framemd5(&ffmpeg, &env.path("clear/index.m3u8"), &[]);
    assert!(ok);
    assert_eq!(clear_frames.len(), 2, "one video and one audio stream");
    assert_eq!(clear_frames[0].len(), 150, "6 s at 25 fps");

    let enc = env.json(&[
        "media",
        "encrypt-hls",
        "--in",
        "clear",
        "--out",
        "enc",
        "--key-file",
        "enc/key.bin",
        "--iv",
        IV,
        "--pad-segment",
    ]);
    assert_eq!(enc["segments"], 3, "{enc}");
    assert_eq!(enc["key_uri"], "key.bin");
    assert_eq!(enc["key_created"], true);
    assert_eq!(enc["exact_restore"], true);
    assert_eq!(enc["iv"], IV);
    assert_eq!(enc["padding_segment"], "ironclad-pad.ts");
    assert!(enc["nal_units_encrypted"].as_u64().unwrap() > 100, "{enc}");
    assert!(enc["audio_frames_encrypted"].as_u64().unwrap() > 250, "{enc}");
    let key = fs::read(env.path("enc/key.bin")).unwrap();
    assert_eq!(key.len(), 16);
    assert_eq!(fs::metadata(env.path("enc/key.bin")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!enc.to_string().contains(&hex(&key)), "the key must never be printed");

    let playlist = fs::read_to_string(env.path("enc/index.m3u8")).unwrap();
    assert!(
        playlist.contains(&format!(
            "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"key.bin\",IV={IV},KEYFORMAT=\"identity\""
        )),
        "{playlist}"
    );
    assert!(playlist.contains("#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\nironclad-pad.ts\n#EXT-X-ENDLIST"));
    for name in segment_names(&env.path("clear")) {
        let (c, e) = (
            fs::read(env.path(&format!("clear/{name}"))).unwrap(),
            fs::read(env.path(&format!("enc/{name}"))).unwrap(),
        );
        assert!(c != e, "{name} was not encrypted");
    }

    // ffmpeg fetches the key and decrypts: every frame of the clear clip, per stream.
    let (enc_frames, stderr, ok) = framemd5(&ffmpeg, &env.path("enc/index.m3u8"), &DECRYPT_ARGS);
    assert!(ok && !stderr.contains("Unable to open key file"), "{stderr}");
    for (stream, (clear, got)) in clear_frames.iter().zip(&enc_frames).enumerate() {
        let same = clear.iter().zip(got).filter(|(a, b)| a == b).count();
        assert_eq!(
            same,
            clear.len(),
            "stream {stream}: {same}/{} frames identical after ffmpeg decrypts",
            clear.len()
        );
    }
    // Negative control: without the key, ffmpeg's frames differ.
    fs::write(env.path("enc/key.bin"), [0x55; 16]).unwrap();
    let (wrong, _, _) = framemd5(&ffmpeg, &env.path("enc/index.m3u8"), &DECRYPT_ARGS);
    let same = clear_frames[0].iter().zip(&wrong[0]).filter(|(a, b)| a == b).count();
    assert!(same < 15, "{same}/150 video frames unchanged with a wrong key");
    fs::write(env.path("enc/key.bin"), &key).unwrap();

    // decrypt-hls gives back the original segment bytes and drops the padding segment.
    let dec = env.json(&[
        "media",
        "decrypt-hls",
        "--in",
        "enc/index.m3u8",
        "--out",
        "back",
        "--key-file",
        "enc/key.bin",
    ]);
    assert_eq!(dec["segments"], 3, "{dec}");
    assert_eq!(dec["padding_segment_dropped"], true);
    assert_eq!(dec["nal_units_decrypted"], enc["nal_units_encrypted"]);
    assert_eq!(segment_names(&env.path("back")), segment_names(&env.path("clear")));
    for name in segment_names(&env.path("clear")) {
        let (c, d) = (
            fs::read(env.path(&format!("clear/{name}"))).unwrap(),
            fs::read(env.path(&format!("back/{name}"))).unwrap(),
        );
        assert!(c == d, "{name}: decrypted segment differs from the original");
    }
    let back = fs::read_to_string(env.path("back/index.m3u8")).unwrap();
    let clear = fs::read_to_string(env.path("clear/index.m3u8")).unwrap();
    assert_eq!(back, clear.replace("#EXT-X-VERSION:3", "#EXT-X-VERSION:5"));
    assert!(!env.path("back/key.bin").exists() && !env.path("back/ironclad-pad.ts").exists());
}

#[test]
fn encrypt_es_round_trips_ffmpeg_h264_and_adts() {
    let Some(ffmpeg) = require_tool("ffmpeg") else { return };
    let env = Env::new();
    make_clip(&ffmpeg, &env);
    let extract = |map: &str, format: &str, out: &str| {
        let playlist = env.path("clear/index.m3u8");
        let out = env.path(out);
        run_ok(
            &ffmpeg,
            &[
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                s(&playlist),
                "-map",
                map,
                "-c",
                "copy",
                "-f",
                format,
                s(&out),
            ],
        );
    };
    extract("0:v", "h264", "clip.h264");
    extract("0:a", "adts", "clip.aac");

    for (codec, file, unit) in [("h264", "clip.h264", "nal_units"), ("aac", "clip.aac", "frames")] {
        let enc_file = format!("{file}.enc");
        let dec_file = format!("{file}.dec");
        let enc = env.json(&[
            "media",
            "encrypt-es",
            "--codec",
            codec,
            "--in",
            file,
            "--out",
            &enc_file,
            "--key-file",
            "es.key",
        ]);
        let iv = enc["iv"].as_str().unwrap().to_owned();
        assert_eq!(iv.len(), 34, "a random IV is reported: {enc}");
        assert!(enc[format!("{unit}_encrypted")].as_u64().unwrap() > 100, "{enc}");
        let clear = fs::read(env.path(file)).unwrap();
        let encrypted = fs::read(env.path(&enc_file)).unwrap();
        assert!(encrypted != clear);
        if codec == "aac" {
            assert_eq!(encrypted.len(), clear.len(), "ADTS encryption keeps the length");
        }
        let dec = env.json(&[
            "media",
            "decrypt-es",
            "--codec",
            codec,
            "--in",
            &enc_file,
            "--out",
            &dec_file,
            "--key-file",
            "es.key",
            "--iv",
            &iv,
        ]);
        assert_eq!(dec[format!("{unit}_decrypted")], enc[format!("{unit}_encrypted")]);
        assert!(
            fs::read(env.path(&dec_file)).unwrap() == clear,
            "{codec}: decrypt-es did not restore the stream"
        );
    }
    // The same key file was reused: created once, 0600.
    assert_eq!(fs::metadata(env.path("es.key")).unwrap().permissions().mode() & 0o777, 0o600);
}

/// The committed clip round-trips through the CLI without ffmpeg: byte-identical segments.
#[test]
fn decrypt_hls_restores_the_committed_clip_exactly() {
    let env = Env::new();
    let input = fixture();
    fs::write(env.path("k.bin"), [0x2b; 16]).unwrap();
    fs::set_permissions(env.path("k.bin"), fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.ok(&[
        "media",
        "encrypt-hls",
        "--in",
        s(&input),
        "--out",
        "enc",
        "--key-file",
        "k.bin",
        "--key-uri",
        "https://keys.example.com/cam-1",
    ]);
    assert!(out.is_empty(), "the human summary goes to stderr: {out}");
    let playlist = fs::read_to_string(env.path("enc/index.m3u8")).unwrap();
    assert!(playlist.contains("URI=\"https://keys.example.com/cam-1\",IV=0x"), "{playlist}");
    env.ok(&["media", "decrypt-hls", "--in", "enc", "--out", "back", "--key-file", "k.bin"]);
    for name in ["seg0.ts", "seg1.ts"] {
        assert!(
            fs::read(input.join(name)).unwrap() == fs::read(env.path(&format!("back/{name}"))).unwrap(),
            "{name}"
        );
    }
    // With another key, decryption "works" (SAMPLE-AES has no integrity) but gives other bytes.
    fs::write(env.path("other.bin"), [0x2c; 16]).unwrap();
    env.ok(&["media", "decrypt-hls", "--in", "enc", "--out", "wrong", "--key-file", "other.bin"]);
    assert!(fs::read(input.join("seg0.ts")).unwrap() != fs::read(env.path("wrong/seg0.ts")).unwrap());
}

/// G.711 through the CLI equals the OpenSSL-computed known answers of the crate.
#[test]
fn g711_frames_match_the_openssl_vectors() {
    let env = Env::new();
    let vectors = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ironclad-media/testdata/g711-ctr-vectors.txt"),
    )
    .unwrap();
    let field = |name: &str, n: usize| -> String {
        vectors.lines().filter_map(|l| l.strip_prefix(&format!("{name} = "))).nth(n).unwrap().to_owned()
    };
    assert_eq!(field("stream_iv", 0), field("stream_iv", 1));
    assert_eq!((field("frame_index", 0).as_str(), field("frame_index", 1).as_str()), ("0", "1"));
    fs::write(env.path("g.key"), unhex(&field("key", 0))).unwrap();
    fs::write(env.path("mic.alaw"), [unhex(&field("plaintext", 0)), unhex(&field("plaintext", 1))].concat())
        .unwrap();
    let iv = field("stream_iv", 0);
    let enc = env.json(&[
        "media",
        "encrypt-es",
        "--codec",
        "g711",
        "--frame-bytes",
        "160",
        "--in",
        "mic.alaw",
        "--out",
        "mic.enc",
        "--key-file",
        "g.key",
        "--iv",
        &iv,
    ]);
    assert_eq!((enc["frames_encrypted"].as_u64(), enc["next_frame"].as_u64()), (Some(2), Some(2)), "{enc}");
    let expected = [unhex(&field("ciphertext", 0)), unhex(&field("ciphertext", 1))].concat();
    assert!(
        fs::read(env.path("mic.enc")).unwrap() == expected,
        "CLI G.711 output differs from the OpenSSL vectors"
    );
    env.ok(&[
        "media",
        "decrypt-es",
        "--codec",
        "g711",
        "--in",
        "mic.enc",
        "--out",
        "mic.dec",
        "--key-file",
        "g.key",
        "--iv",
        &iv,
    ]);
    assert!(fs::read(env.path("mic.dec")).unwrap() == fs::read(env.path("mic.alaw")).unwrap());
    // Frame 1 alone, numbered as in the stream.
    fs::write(env.path("f1"), unhex(&field("plaintext", 1))).unwrap();
    env.ok(&[
        "media",
        "encrypt-es",
        "--codec",
        "g711",
        "--first-frame",
        "1",
        "--in",
        "f1",
        "--out",
        "f1.enc",
        "--key-file",
        "g.key",
        "--iv",
        &iv,
    ]);
    assert_eq!(fs::read(env.path("f1.enc")).unwrap(), unhex(&field("ciphertext", 1)));
}

#[test]
fn garbled_and_truncated_input_is_refused_with_a_message() {
    let env = Env::new();
    fs::write(env.path("k.bin"), [7u8; 16]).unwrap();
    fs::set_permissions(env.path("k.bin"), fs::Permissions::from_mode(0o600)).unwrap();
    let es = |codec: &str, input: &str| {
        env.fails(&[
            "media",
            "encrypt-es",
            "--codec",
            codec,
            "--in",
            input,
            "--out",
            "x.out",
            "--key-file",
            "k.bin",
            "--iv",
            IV,
        ])
    };
    // Not Annex-B at all.
    fs::write(env.path("junk.h264"), b"this is not an H.264 byte stream at all".repeat(50)).unwrap();
    let err = es("h264", "junk.h264");
    assert!(
        err.contains("junk.h264") && err.contains("not a valid h264 stream") && err.contains("start code"),
        "{err}"
    );
    // forbidden_zero_bit set in a NAL header.
    fs::write(env.path("bad.h264"), [&[0, 0, 0, 1, 0x67, 1, 2][..], &[0, 0, 1, 0xe5, 9, 9]].concat())
        .unwrap();
    let err = es("h264", "bad.h264");
    assert!(err.contains("forbidden_zero_bit") && err.contains("offset 10"), "{err}");
    // ADTS: two good frames, then one cut short; then a broken sync word.
    let frame = adts_frame(200);
    fs::write(env.path("cut.aac"), [&frame[..], &frame, &frame[..100]].concat()).unwrap();
    let err = es("aac", "cut.aac");
    assert!(err.contains("ADTS frame at offset 414 is 207 bytes but only 100 remain"), "{err}");
    fs::write(env.path("sync.aac"), [&frame[..], b"garbage garbage garbage"].concat()).unwrap();
    let err = es("aac", "sync.aac");
    assert!(err.contains("offset 207") && err.contains("no ADTS sync word"), "{err}");
    let err = es("ac3", "sync.aac");
    assert!(err.contains("no AC-3 syncword"), "{err}");
    let err = env.fails(&[
        "media",
        "encrypt-es",
        "--codec",
        "aac",
        "--frame-bytes",
        "160",
        "--in",
        "cut.aac",
        "--out",
        "x.out",
        "--key-file",
        "k.bin",
    ]);
    assert!(err.contains("--frame-bytes applies to --codec g711 only"), "{err}");
    assert!(!env.path("x.out").exists(), "a refused stream leaves no output");

    // HLS: a segment that lost TS sync, and one cut short; nothing is left behind.
    let garbled = env.path("garbled");
    fs::create_dir(&garbled).unwrap();
    for name in ["index.m3u8", "seg0.ts", "seg1.ts"] {
        fs::copy(fixture().join(name), garbled.join(name)).unwrap();
    }
    let mut seg = fs::read(garbled.join("seg1.ts")).unwrap();
    seg[188 * 5] = 0x46;
    fs::write(garbled.join("seg1.ts"), &seg).unwrap();
    let hls = |input: &str| {
        env.fails(&[
            "media",
            "encrypt-hls",
            "--in",
            input,
            "--out",
            "enc",
            "--key-file",
            "new.key",
            "--key-uri",
            "k",
        ])
    };
    let err = hls("garbled");
    assert!(
        err.contains("segment seg1.ts (playlist line 9)") && err.contains("TS packet at byte 940"),
        "{err}"
    );
    fs::write(garbled.join("seg1.ts"), &seg[..1000]).unwrap();
    let err = hls("garbled");
    assert!(err.contains("TS segment is 1000 bytes, not a multiple of 188"), "{err}");
    fs::remove_file(garbled.join("seg1.ts")).unwrap();
    let err = hls("garbled");
    assert!(err.contains("segment seg1.ts (playlist line 9)"), "{err}");
    fs::write(garbled.join("index.m3u8"), "#EXTM3U\n#EXTINF:1,\n../../etc/passwd\n").unwrap();
    let err = hls("garbled");
    assert!(err.contains("is not a relative file path"), "{err}");
    fs::write(garbled.join("index.m3u8"), "not a playlist\n").unwrap();
    let err = env.fails(&["media", "encrypt-hls", "--in", "garbled", "--out", "enc", "--key-file", "enc/k"]);
    assert!(err.contains("playlist") && err.contains("#EXTM3U"), "{err}");
    assert!(!env.path("enc").exists() && !env.path("new.key").exists(), "a refused stream leaves nothing");
    let leftovers: Vec<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    // Encrypting twice, and decrypting a clear stream, are refused.
    env.ok(&["media", "encrypt-hls", "--in", s(&fixture()), "--out", "enc", "--key-file", "enc/key.bin"]);
    let err = env.fails(&[
        "media",
        "encrypt-hls",
        "--in",
        "enc",
        "--out",
        "enc2",
        "--key-file",
        "k.bin",
        "--key-uri",
        "k",
    ]);
    assert!(err.contains("already has EXT-X-KEY"), "{err}");
    let err =
        env.fails(&["media", "decrypt-hls", "--in", s(&fixture()), "--out", "back", "--key-file", "k.bin"]);
    assert!(err.contains("no #EXT-X-KEY:METHOD=SAMPLE-AES tag"), "{err}");
    let err = env.fails(&[
        "media",
        "encrypt-hls",
        "--in",
        s(&fixture()),
        "--out",
        "enc",
        "--key-file",
        "enc/key.bin",
    ]);
    assert!(err.contains("already exists and is not empty"), "{err}");
}

#[test]
fn wrong_key_file_length_is_refused() {
    let env = Env::new();
    fs::write(env.path("clip.aac"), adts_frame(300)).unwrap();
    env.ok(&["media", "encrypt-hls", "--in", s(&fixture()), "--out", "enc", "--key-file", "enc/key.bin"]);
    let hex_key = format!("{}\n", hex(&fs::read(env.path("enc/key.bin")).unwrap()));
    let fixture = fixture();
    for (name, content) in
        [("short.key", vec![1u8; 15]), ("long.key", vec![1u8; 17]), ("hex.key", hex_key.into_bytes())]
    {
        fs::write(env.path(name), &content).unwrap();
        let len = content.len();
        let expect = format!("key file {name} is {len} bytes; a media key file holds exactly 16 raw bytes");
        let runs: [Vec<&str>; 4] = [
            vec![
                "media",
                "encrypt-hls",
                "--in",
                s(&fixture),
                "--out",
                "out",
                "--key-file",
                name,
                "--key-uri",
                "k",
            ],
            vec!["media", "decrypt-hls", "--in", "enc", "--out", "out", "--key-file", name],
            vec![
                "media",
                "encrypt-es",
                "--codec",
                "aac",
                "--in",
                "clip.aac",
                "--out",
                "x.aac",
                "--key-file",
                name,
            ],
            vec![
                "media",
                "decrypt-es",
                "--codec",
                "aac",
                "--in",
                "clip.aac",
                "--out",
                "x.aac",
                "--key-file",
                name,
                "--iv",
                IV,
            ],
        ];
        for args in runs {
            let err = env.fails(&args);
            assert!(err.contains(&expect), "{args:?}: {err}");
        }
        assert!(!env.path("out").exists() && !env.path("x.aac").exists());
    }
    let err = env.fails(&[
        "media",
        "encrypt-es",
        "--codec",
        "aac",
        "--in",
        "clip.aac",
        "--out",
        "x",
        "--key-file",
        "k",
        "--iv",
        "0x1234",
    ]);
    assert!(err.contains("32 hex digits"), "{err}");
}

/// An AAC-LC 48 kHz stereo ADTS frame with `payload` bytes after the 7-byte header.
fn adts_frame(payload: usize) -> Vec<u8> {
    let len = payload + 7;
    let mut f = vec![
        0xff,
        0xf1,
        0x4c,
        0x80 | (len >> 11) as u8,
        (len >> 3) as u8,
        ((len & 7) << 5) as u8 | 0x1f,
        0xfc,
    ];
    f.extend((0..payload).map(|i| (i * 13) as u8));
    f
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
