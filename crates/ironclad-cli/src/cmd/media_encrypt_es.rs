//! `ironclad media encrypt-es`: one elementary-stream file (H.264, AAC, AC-3, G.711) encrypted.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::media_io::{EsCodec, EsRequest, Pass, parse_iv, run_es};

/// Encrypt an elementary-stream file: H.264, AAC or AC-3 with SAMPLE-AES, G.711 frames whole.
///
/// H.264 (Annex-B): NAL units of type 1 and 5 longer than 48 bytes keep 32 clear bytes, then one
/// 16-byte block in ten is AES-128-CBC encrypted (the chain restarting at each NAL unit) and
/// emulation prevention is applied again; all other NAL units are copied unchanged. AAC (ADTS):
/// header and 16 bytes clear, then whole blocks. AC-3/E-AC-3: 16 clear bytes from the syncword,
/// then whole blocks. G.711: each frame of --frame-bytes is encrypted whole with AES-128-CTR
/// from a counter block made of the IV and the frame index (docs/media.md has the exact rule).
/// The output has the same framing, so muxers and parsers still work on it.
///
/// The key: 16 raw bytes in --key-file, created with a random key (mode 0600) if the file does
/// not exist; it is never printed. The IV is random unless --iv is given, and is printed:
/// decrypt-es needs it. Never reuse a key and IV pair for two G.711 streams (CTR), and do not
/// use a stream's SAMPLE-AES key for its G.711 audio. For now keys come from files; a device's
/// stream keys will later come from its secure element. The output is written to a temporary
/// file and renamed into place.
///
/// Examples:
///   ffmpeg -i clear/index.m3u8 -map 0:v -c copy -f h264 cam.h264
///   ironclad media encrypt-es --codec h264 --in cam.h264 --out cam.enc.h264 \
///       --key-file cam.key --iv 0x000102030405060708090a0b0c0d0e0f
///   ironclad media encrypt-es --codec g711 --frame-bytes 160 --in mic.alaw --out mic.enc \
///       --key-file mic.key --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct MediaEncryptEsArgs {
    /// The stream format.
    #[arg(long, value_enum)]
    codec: EsCodec,
    /// The clear elementary-stream file.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Where to write the encrypted stream (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The 16-byte AES-128 key file; created with a random key (mode 0600) if absent.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// The stream IV, 32 hex digits (optionally 0x...); random (and printed) if omitted.
    #[arg(long, value_parser = parse_iv, value_name = "HEX")]
    iv: Option<[u8; 16]>,
    /// G.711 only: bytes per frame (default 160, i.e. 20 ms at 8 kHz); the last may be shorter.
    #[arg(long, value_name = "N")]
    frame_bytes: Option<usize>,
    /// G.711 only: index of the first frame (default 0), for a stream that continues another.
    #[arg(long, value_name = "N", default_value_t = 0)]
    first_frame: u64,
    /// Print a JSON summary (no progress bar).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: MediaEncryptEsArgs) -> Result<()> {
    run_es(EsRequest {
        pass: Pass::Encrypt,
        codec: args.codec,
        input: &args.input,
        output: &args.out,
        key_file: &args.key_file,
        iv: args.iv,
        frame_bytes: args.frame_bytes,
        first_frame: args.first_frame,
        json: args.json,
    })
}
