//! `ironclad media decrypt-hls`: a SAMPLE-AES HLS stream back to the clear one.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use ironclad_media::SampleAes;
use ironclad_media::hls;
use ironclad_media::ts::TsDecryptor;
use serde_json::json;

use super::media_io::{
    MediaKey, PAD_SEGMENT, StagedDir, iv_hex, local_segments, playlist_location, progress, read_playlist,
    read_segment, segment_len,
};
use crate::output::print_json;

/// Decrypt a SAMPLE-AES HLS stream back to clear HLS: the original segments, byte for byte.
///
/// Reads the playlist and its MPEG-TS segments, takes the IV from the playlist's
/// `#EXT-X-KEY:METHOD=SAMPLE-AES` tag and the key from --key-file, and writes into a new
/// directory the clear segments and the playlist without its key tag (EXT-X-VERSION stays as
/// raised by encryption). For a stream made by `ironclad media encrypt-hls` from ffmpeg's output
/// the segments come back byte-identical; the padding segment of --pad-segment is dropped.
/// Streams from other SAMPLE-AES packagers (e.g. Shaka Packager) decrypt too.
///
/// SAMPLE-AES has no integrity check: a wrong key is not detected and gives garbage media.
/// For now keys come from files; a device's stream keys will later come from its secure element.
///
/// Example:
///   ironclad media decrypt-hls --in enc --out clear-again --key-file enc/key.bin
///   cmp clear/seg000.ts clear-again/seg000.ts
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct MediaDecryptHlsArgs {
    /// The encrypted stream: a directory holding index.m3u8, or the media playlist file.
    #[arg(long = "in", value_name = "DIR|PLAYLIST")]
    input: PathBuf,
    /// Output directory (must not exist, or be empty); gets the playlist under the same name.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The 16-byte AES-128 key file the stream was encrypted with.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Print a JSON summary (no progress bar).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: MediaDecryptHlsArgs) -> Result<()> {
    let (playlist_path, in_dir) = playlist_location(&args.input)?;
    let text = read_playlist(&playlist_path)?;
    let (clear_text, tags) = hls::decrypt_playlist(&text)
        .with_context(|| format!("cannot decrypt playlist {}", playlist_path.display()))?;
    let Some(tag) = tags.first() else {
        bail!("{} has no #EXT-X-KEY:METHOD=SAMPLE-AES tag: nothing to decrypt", playlist_path.display());
    };
    ensure!(
        tags.iter().all(|t| t == tag),
        "{} changes keys or IVs between segments (several different EXT-X-KEY tags); not supported",
        playlist_path.display()
    );
    let Some(iv) = tag.iv else {
        bail!(
            "{}'s EXT-X-KEY has no IV attribute (the IV would be each segment's sequence number); \
             decrypt-hls needs one explicit IV, as encrypt-hls writes",
            playlist_path.display()
        );
    };
    let mut segments = local_segments(&text, &playlist_path)?;
    let padded = segments.last().is_some_and(|s| s.uri == PAD_SEGMENT);
    if padded {
        segments.pop();
    }
    ensure!(!segments.is_empty(), "{} lists no media segments", playlist_path.display());
    if let Some(s) = segments.iter().find(|s| s.uri == PAD_SEGMENT) {
        bail!("playlist line {}: the padding segment {PAD_SEGMENT} is not the last segment", s.line);
    }
    let clear_playlist = if padded { remove_padding(&clear_text) } else { clear_text };
    let key = MediaKey::read(&args.key_file)?;
    let mut total = 0u64;
    for s in &segments {
        total += segment_len(&in_dir, s)?;
    }
    let playlist_name = PathBuf::from(playlist_path.file_name().context("playlist has no file name")?);
    let mut staged = StagedDir::new(&args.out)?;

    let mut decryptor = TsDecryptor::new(SampleAes::new(key.bytes(), iv)?);
    let bar = progress(total, args.json);
    let started = Instant::now();
    let (mut bytes_in, mut bytes_out, mut nal_units, mut audio_frames) = (0u64, 0u64, 0u64, 0u64);
    let (mut enc, mut out) = (Vec::new(), Vec::new()); // reused: no page faults per segment
    for s in &segments {
        read_segment(&in_dir, s, &mut enc)?;
        out.clear();
        let stats = decryptor
            .decrypt_segment(&enc, &mut out)
            .with_context(|| format!("segment {} (playlist line {}) refused", s.uri, s.line))?;
        staged.write(&s.path, &out, None)?;
        bytes_in += enc.len() as u64;
        bytes_out += out.len() as u64;
        nal_units += stats.nal_units_protected as u64;
        audio_frames += stats.audio_frames_protected as u64;
        bar.inc(enc.len() as u64);
    }
    bar.finish_and_clear();
    staged.write(&playlist_name, clear_playlist.as_bytes(), None)?;
    staged.publish()?;
    let seconds = started.elapsed().as_secs_f64();

    if args.json {
        return print_json(&json!({
            "playlist": args.out.join(&playlist_name),
            "segments": segments.len(),
            "padding_segment_dropped": padded,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "nal_units_decrypted": nal_units,
            "audio_frames_decrypted": audio_frames,
            "key_uri": tag.uri,
            "iv": iv_hex(&iv),
            "seconds": seconds,
        }));
    }
    eprintln!(
        "decrypted {} segments ({bytes_in} bytes; {nal_units} NAL units, {audio_frames} audio frames) \
         into {} in {seconds:.2} s{}",
        segments.len(),
        args.out.display(),
        if padded { "; padding segment dropped" } else { "" }
    );
    Ok(())
}

/// Removes the padding segment's lines (`#EXT-X-DISCONTINUITY`, its tags, its URI).
fn remove_padding(playlist: &str) -> String {
    let eol = if playlist.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = playlist.lines().collect();
    let Some(uri) = lines.iter().rposition(|l| l.trim() == PAD_SEGMENT) else { return playlist.to_owned() };
    let mut start = uri;
    while start > 0 && lines[start - 1].starts_with('#') && !lines[start - 1].starts_with("#EXT-X-ENDLIST") {
        start -= 1;
        if lines[start].starts_with("#EXT-X-DISCONTINUITY") {
            break;
        }
    }
    let kept: Vec<&str> = lines[..start].iter().chain(&lines[uri + 1..]).copied().collect();
    let mut out = kept.join(eol);
    if playlist.ends_with('\n') {
        out.push_str(eol);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn padding_is_removed() {
        let clear = "#EXTM3U\n#EXTINF:2,\nseg000.ts\n#EXT-X-ENDLIST\n";
        let padded = "#EXTM3U\n#EXTINF:2,\nseg000.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\nironclad-pad.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(remove_padding(padded), clear);
        assert_eq!(remove_padding(&padded.replace('\n', "\r\n")), clear.replace('\n', "\r\n"));
    }
}
