//! Media encryption for ironclad cameras: Apple SAMPLE-AES for H.264, AAC and AC-3, whole-frame
//! G.711 encryption, and SAMPLE-AES HLS packaging of MPEG-TS segments.
//!
//! Everything here is pure: bytes in, bytes out, no files, sockets or clocks.
//!
//! # SAMPLE-AES (what ffmpeg, Safari, ExoPlayer and hls.js decrypt)
//!
//! AES-128-CBC, no padding, IV reset at every protected block ([`SampleAes`]).
//! - **H.264** ([`SampleAes::encrypt_h264`]): NAL units of type 1 and 5 longer than 48 bytes;
//!   32 clear bytes, then one 16-byte block encrypted in every 160 while more than 16 bytes
//!   remain; the chain runs across one NAL's blocks. The NAL is taken as it is in the stream
//!   (EBSP) and, *only if it was encrypted*, emulation prevention is applied again over the whole
//!   NAL. Decoders strip one layer, decrypt and do not re-escape. See [`h264`].
//! - **AAC** ([`SampleAes::encrypt_adts`]): per ADTS frame, header (7 or 9 bytes) and 16 bytes
//!   clear, whole 16-byte blocks encrypted, tail clear; frames with fewer than 32 bytes after the
//!   header stay clear.
//! - **AC-3 / E-AC-3** ([`SampleAes::encrypt_ac3`]): the same with the 16-byte leader counted from
//!   the start of each syncframe.
//!
//! All three are checked against ffmpeg's decryptor (`tests/it/ffmpeg_hls.rs`).
//!
//! # G.711
//!
//! Not covered by SAMPLE-AES; ironclad defines its own rule ([`G711Cipher`]): each frame is
//! encrypted whole with AES-128-CTR from a per-frame counter block derived from the stream IV
//! and the frame index. See [`g711`] and `testdata/g711-ctr-vectors.txt`.
//!
//! # HLS / MPEG-TS
//!
//! [`ts::TsEncryptor`] rewrites TS segments as ffmpeg writes them: PES reassembly, encryption at
//! the elementary-stream level, re-packetization with continuity counters that run on across
//! segments, and the PMT Apple specifies. [`ts::TsDecryptor`] reverses it to the original
//! segment bytes. [`hls`] adds or removes the `#EXT-X-KEY:METHOD=SAMPLE-AES` playlist tag.
//!
//! ```
//! use ironclad_media::SampleAes;
//!
//! let aes = SampleAes::new(&[0x2b; 16], [0x0f; 16])?;
//! // An AUD and a 100-byte IDR slice, Annex-B.
//! let clear = [&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65][..], &[0x88; 99]].concat();
//! let (mut enc, mut dec) = (Vec::new(), Vec::new());
//! let stats = aes.encrypt_h264(&clear, &mut enc)?;
//! assert_eq!((stats.nal_units, stats.protected), (2, 1));
//! aes.decrypt_h264(&enc, &mut dec)?;
//! assert_eq!(dec, clear);
//! # Ok::<(), ironclad_media::Error>(())
//! ```
//!
//! An HLS stream is encrypted segment by segment, in playlist order, with one encryptor:
//!
//! ```no_run
//! use ironclad_media::{SampleAes, hls, ts::TsEncryptor};
//!
//! fn encrypt(playlist: &str, segments: &[Vec<u8>], key: &[u8; 16], iv: [u8; 16])
//!     -> ironclad_media::Result<(String, Vec<Vec<u8>>)> {
//!     let mut enc = TsEncryptor::new(SampleAes::new(key, iv)?);
//!     let mut out = Vec::new();
//!     for seg in segments {
//!         let mut e = Vec::new();
//!         enc.encrypt_segment(seg, &mut e)?;
//!         out.push(e);
//!     }
//!     let playlist = hls::encrypt_playlist(playlist, &hls::KeyTag::sample_aes("key.bin", iv))?;
//!     Ok((playlist, out))
//! }
//! ```
#![forbid(unsafe_code)]

pub mod aac;
pub mod ac3;
mod cipher;
mod error;
pub mod g711;
pub mod h264;
pub mod hls;
pub mod nal;
pub mod ts;

pub use aac::{AdtsHeader, AudioStats};
pub use cipher::SampleAes;
pub use error::{Error, Result};
pub use g711::G711Cipher;
pub use h264::H264Stats;

/// Size limits for untrusted TS input. The defaults fit any real camera or broadcast stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest TS segment accepted (default 1 GiB).
    pub max_segment_len: usize,
    /// Largest reassembled PES packet (default 64 MiB; a 4K I-frame is a few MB).
    pub max_pes_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_segment_len: 1 << 30, max_pes_len: 64 << 20 }
    }
}
