//! `ironclad media decrypt-es`: the reverse of `media encrypt-es`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::media_io::{EsCodec, EsRequest, Pass, parse_iv, run_es};

/// Decrypt an elementary-stream file made by `encrypt-es` (or another SAMPLE-AES encoder).
///
/// Give the same --codec, key file and IV (and for G.711 the same --frame-bytes and
/// --first-frame) as encryption; the output is the original stream, byte for byte. No cipher
/// here has an integrity check: a wrong key or IV is not detected and gives garbage media. For
/// now keys come from files; a device's stream keys will later come from its secure element.
/// The output is written to a temporary file and renamed into place.
///
/// Example:
///   ironclad media decrypt-es --codec h264 --in cam.enc.h264 --out cam.h264 \
///       --key-file cam.key --iv 0x000102030405060708090a0b0c0d0e0f
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct MediaDecryptEsArgs {
    /// The stream format.
    #[arg(long, value_enum)]
    codec: EsCodec,
    /// The encrypted elementary-stream file.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Where to write the clear stream (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The 16-byte AES-128 key file the stream was encrypted with.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// The stream IV used for encryption, 32 hex digits (optionally 0x...).
    #[arg(long, value_parser = parse_iv, value_name = "HEX")]
    iv: [u8; 16],
    /// G.711 only: bytes per frame, as at encryption (default 160).
    #[arg(long, value_name = "N")]
    frame_bytes: Option<usize>,
    /// G.711 only: index of the first frame, as at encryption (default 0).
    #[arg(long, value_name = "N", default_value_t = 0)]
    first_frame: u64,
    /// Print a JSON summary (no progress bar).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: MediaDecryptEsArgs) -> Result<()> {
    run_es(EsRequest {
        pass: Pass::Decrypt,
        codec: args.codec,
        input: &args.input,
        output: &args.out,
        key_file: &args.key_file,
        iv: Some(args.iv),
        frame_bytes: args.frame_bytes,
        first_frame: args.first_frame,
        json: args.json,
    })
}
