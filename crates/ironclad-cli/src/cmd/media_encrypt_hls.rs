//! `ironclad media encrypt-hls`: a clear HLS stream (playlist + MPEG-TS segments) to SAMPLE-AES.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use ironclad_media::SampleAes;
use ironclad_media::hls::{self, KeyTag};
use ironclad_media::ts::{Ac3Policy, TsEncryptor};
use serde_json::json;

use super::media_io::{
    MediaKey, PAD_SEGMENT, StagedDir, iv_hex, lexical_absolute, local_segments, parse_iv, playlist_location,
    progress, random_iv, read_playlist, read_segment, segment_len, warn_not_exact, write_key_file,
};
use crate::output::print_json;

/// Encrypt a clear HLS stream (as ffmpeg writes it) into SAMPLE-AES HLS that players decrypt.
///
/// Reads the media playlist and its MPEG-TS segments and writes, into a new directory, the
/// playlist with `#EXT-X-KEY:METHOD=SAMPLE-AES,URI=..,IV=0x..` and every segment encrypted:
/// H.264 slices (NAL types 1 and 5) in Apple's 1-in-10 block pattern, AAC frames after a clear
/// leader, the PMT rewritten with Apple's stream types, continuity counters continuous across
/// segments. One explicit IV is written for the whole stream (random unless --iv). Safari, hls.js,
/// ExoPlayer and ffmpeg decrypt the result; `ironclad media decrypt-hls` restores the original
/// segments byte for byte. The output directory is built beside --out and renamed into place, so
/// a failure leaves nothing behind. docs/media.md explains the rules and how to play the stream.
///
/// The key: 16 raw bytes in --key-file, created with a random key (mode 0600) if the file does
/// not exist. It is never printed. Players fetch it from --key-uri, so serve it only to viewers
/// allowed to watch (the URI is written into the playlist; the key is not). For now keys come
/// from files; a device's stream keys will later come from its secure element.
///
/// Example (the key file inside --out, so the URI defaults to "key.bin"):
///   ffmpeg -i cam.mp4 -c copy -f hls -hls_time 2 -hls_playlist_type vod \
///       -hls_segment_filename 'clear/seg%03d.ts' clear/index.m3u8
///   ironclad media encrypt-hls --in clear --out enc --key-file enc/key.bin --pad-segment
///   ffmpeg -allowed_extensions ALL -protocol_whitelist file -i enc/index.m3u8 -f framemd5 enc.md5
///   (ffmpeg needs -allowed_extensions ALL to read key.bin; without it, it logs "Unable to open
///   key file", decodes garbage and still exits 0.)
///
/// With the key served elsewhere:
///   ironclad media encrypt-hls --in clear/index.m3u8 --out enc --key-file keys/cam-17.key \
///       --key-uri https://keys.example.com/cam-17
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct MediaEncryptHlsArgs {
    /// The clear stream: a directory holding index.m3u8, or the media playlist file.
    #[arg(long = "in", value_name = "DIR|PLAYLIST")]
    input: PathBuf,
    /// Output directory (must not exist, or be empty); gets the playlist under the same name.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The 16-byte AES-128 key file; created with a random key (mode 0600) if absent.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// URI written into EXT-X-KEY for players to fetch the key from (relative to the playlist,
    /// or absolute). Defaults to the key file's path inside --out when it is there.
    #[arg(long, value_name = "URI")]
    key_uri: Option<String>,
    /// The stream IV, 32 hex digits (optionally 0x...); random if omitted.
    #[arg(long, value_parser = parse_iv, value_name = "HEX")]
    iv: Option<[u8; 16]>,
    /// Append an encrypted copy of the first segment after #EXT-X-DISCONTINUITY. ffmpeg (5.x)
    /// does not decrypt the last one or two video frames of a SAMPLE-AES playlist (packets still
    /// in its parser when the demuxer leaves the last segment lose their key); the padding
    /// segment pushes them through. Players then replay the first segment at the end, so use it
    /// for ffmpeg-based consumers only; `decrypt-hls` drops it.
    #[arg(long)]
    pad_segment: bool,
    /// Also encrypt AC-3 / E-AC-3 audio (ffmpeg decrypts it; Apple players may expect setup
    /// data ironclad does not write, so it stays clear by default).
    #[arg(long)]
    encrypt_ac3: bool,
    /// Print a JSON summary (no progress bar).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: MediaEncryptHlsArgs) -> Result<()> {
    let (playlist_path, in_dir) = playlist_location(&args.input)?;
    let text = read_playlist(&playlist_path)?;
    let segments = local_segments(&text, &playlist_path)?;
    let mut total = 0u64;
    for s in &segments {
        total += segment_len(&in_dir, s)?;
    }

    // Where the key goes: inside the staged output, or a file of its own.
    let key_abs = lexical_absolute(&args.key_file)?;
    let key_in_out = key_abs.strip_prefix(lexical_absolute(&args.out)?).ok().map(Path::to_path_buf);
    let playlist_name = PathBuf::from(playlist_path.file_name().context("playlist has no file name")?);
    if let Some(rel) = &key_in_out {
        ensure!(!rel.as_os_str().is_empty(), "--key-file cannot be the --out directory itself");
        let taken = *rel == playlist_name
            || (args.pad_segment && rel == Path::new(PAD_SEGMENT))
            || segments.iter().any(|s| s.path == *rel);
        ensure!(!taken, "--key-file {} would overwrite a file of the output", args.key_file.display());
    }
    let key_uri = match (&args.key_uri, &key_in_out) {
        (Some(uri), _) => uri.clone(),
        (None, Some(rel)) => rel.to_str().context("key file path is not UTF-8; pass --key-uri")?.to_owned(),
        (None, None) => bail!(
            "--key-uri is required when the key file is outside --out: it is where players fetch \
             the key, e.g. --key-uri https://keys.example.com/cam-17 (or put --key-file in --out)"
        ),
    };
    let mut staged = StagedDir::new(&args.out)?;
    let (key, key_created) = match key_in_out {
        Some(_) => (MediaKey::random()?, true),
        None => MediaKey::existing_or_new(&args.key_file)?,
    };
    let iv = match args.iv {
        Some(iv) => iv,
        None => random_iv()?,
    };
    let tag = KeyTag::sample_aes(key_uri.clone(), iv);
    let mut playlist = hls::encrypt_playlist(&text, &tag)
        .with_context(|| format!("cannot encrypt playlist {}", playlist_path.display()))?;
    if let Some(s) = segments.iter().find(|s| s.uri == PAD_SEGMENT) {
        bail!("playlist line {}: {PAD_SEGMENT} is the name of ironclad's padding segment; rename it", s.line);
    }

    let ac3 = if args.encrypt_ac3 { Ac3Policy::Encrypt } else { Ac3Policy::Clear };
    let mut encryptor = TsEncryptor::new(SampleAes::new(key.bytes(), iv)?).with_ac3(ac3);
    let bar = progress(total, args.json);
    let started = Instant::now();
    let (mut bytes_in, mut bytes_out, mut nal_units, mut audio_frames) = (0u64, 0u64, 0u64, 0u64);
    let mut not_exact = Vec::new();
    let (mut clear, mut out) = (Vec::new(), Vec::new()); // reused: no page faults per segment
    for s in &segments {
        read_segment(&in_dir, s, &mut clear)?;
        out.clear();
        let stats = encryptor
            .encrypt_segment(&clear, &mut out)
            .with_context(|| format!("segment {} (playlist line {}) refused", s.uri, s.line))?;
        staged.write(&s.path, &out, None)?;
        if !stats.canonical {
            not_exact.push(s.uri.clone());
        }
        bytes_in += clear.len() as u64;
        bytes_out += out.len() as u64;
        nal_units += stats.nal_units_protected as u64;
        audio_frames += stats.audio_frames_protected as u64;
        bar.inc(clear.len() as u64);
    }
    if args.pad_segment {
        read_segment(&in_dir, &segments[0], &mut clear)?;
        out.clear();
        encryptor.encrypt_segment(&clear, &mut out).context("encrypting the padding segment")?;
        staged.write(Path::new(PAD_SEGMENT), &out, None)?;
        playlist = add_padding(&playlist)?;
    }
    bar.finish_and_clear();
    staged.write(&playlist_name, playlist.as_bytes(), None)?;
    match (&key_in_out, key_created) {
        (Some(rel), _) => staged.write(rel, key.bytes(), Some(0o600))?,
        (None, true) => write_key_file(&args.key_file, &key)?,
        (None, false) => {}
    }
    if let Err(err) = staged.publish() {
        if key_created && key_in_out.is_none() {
            let _ = fs::remove_file(&args.key_file); // a key for output that does not exist
        }
        return Err(err);
    }
    let seconds = started.elapsed().as_secs_f64();

    if args.json {
        return print_json(&json!({
            "playlist": args.out.join(&playlist_name),
            "segments": segments.len(),
            "padding_segment": args.pad_segment.then_some(PAD_SEGMENT),
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "nal_units_encrypted": nal_units,
            "audio_frames_encrypted": audio_frames,
            "key_file": args.key_file,
            "key_created": key_created,
            "key_uri": key_uri,
            "iv": iv_hex(&iv),
            "exact_restore": not_exact.is_empty(),
            "seconds": seconds,
        }));
    }
    eprintln!(
        "encrypted {} segments ({bytes_in} bytes; {nal_units} NAL units, {audio_frames} audio frames) \
         into {} in {seconds:.2} s",
        segments.len(),
        args.out.display()
    );
    eprintln!("key URI {key_uri}, IV {}", iv_hex(&iv));
    if key_created {
        eprintln!("new key written to {} (mode 0600)", args.key_file.display());
    }
    if args.pad_segment {
        eprintln!("padding segment {PAD_SEGMENT} appended after #EXT-X-DISCONTINUITY");
    }
    warn_not_exact(&not_exact);
    Ok(())
}

/// Appends the padding segment (with the first segment's duration) after a discontinuity,
/// before `#EXT-X-ENDLIST`.
fn add_padding(playlist: &str) -> Result<String> {
    let eol = if playlist.contains("\r\n") { "\r\n" } else { "\n" };
    let first_uri = playlist.lines().position(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let extinf = playlist
        .lines()
        .take(first_uri.unwrap_or(0))
        .filter(|l| l.starts_with("#EXTINF:"))
        .last()
        .context("the first segment has no #EXTINF duration")?
        .trim_end();
    let block = format!("#EXT-X-DISCONTINUITY{eol}{extinf}{eol}{PAD_SEGMENT}{eol}");
    let mut out = playlist.to_owned();
    match out.find(&format!("{eol}#EXT-X-ENDLIST")) {
        Some(at) => out.insert_str(at + eol.len(), &block),
        None => {
            if !out.ends_with('\n') {
                out.push_str(eol);
            }
            out.push_str(&block);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn padding_goes_before_endlist() {
        let p = "#EXTM3U\n#EXT-X-VERSION:5\n#EXTINF:2.000000,\nseg000.ts\n#EXTINF:1.5,\nseg001.ts\n#EXT-X-ENDLIST\n";
        let padded = add_padding(p).unwrap();
        assert!(padded.ends_with(
            "seg001.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\nironclad-pad.ts\n#EXT-X-ENDLIST\n"
        ));
        let live = "#EXTM3U\r\n#EXTINF:4,\r\na.ts";
        assert_eq!(
            add_padding(live).unwrap(),
            "#EXTM3U\r\n#EXTINF:4,\r\na.ts\r\n#EXT-X-DISCONTINUITY\r\n#EXTINF:4,\r\nironclad-pad.ts\r\n"
        );
    }
}
