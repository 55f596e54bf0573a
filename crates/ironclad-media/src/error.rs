//! The crate's one error type.
//!
//! Variants say where the input went wrong (byte offsets, PIDs, playlist lines) so a log line is
//! enough to find the fault; they never echo media bytes or key material.

/// Everything that can go wrong while encrypting, decrypting or repackaging media.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The AES key could not be set up (not expected with a 16-byte key).
    #[error("AES-128 key setup or operation failed")]
    Crypto,

    // ---- H.264 Annex-B ------------------------------------------------------------------------
    /// The byte stream does not begin with (optional zero bytes and) a `00 00 01` start code.
    #[error("H.264 byte stream does not start with a start code (unexpected byte at offset {offset})")]
    NoStartCode {
        /// First byte that is neither a leading zero nor part of a start code.
        offset: usize,
    },
    /// A start code is followed directly by another start code or by the end of the input.
    #[error("empty or truncated NAL unit after the start code at offset {offset}")]
    EmptyNal {
        /// Offset of the start code.
        offset: usize,
    },
    /// The NAL header has `forbidden_zero_bit` set: not H.264, or garbled.
    #[error("NAL unit at offset {offset} has forbidden_zero_bit set")]
    ForbiddenBit {
        /// Offset of the NAL header byte.
        offset: usize,
    },

    // ---- audio frames -------------------------------------------------------------------------
    /// An ADTS or AC-3 frame header is malformed.
    #[error("{codec} frame at offset {offset}: {reason}")]
    AudioFrame {
        /// "ADTS" or "AC-3".
        codec: &'static str,
        /// Offset of the frame start.
        offset: usize,
        /// What is wrong with the header.
        reason: &'static str,
    },
    /// The input ends inside an audio frame.
    #[error("{codec} frame at offset {offset} is {needed} bytes but only {available} remain")]
    AudioTruncated {
        /// "ADTS" or "AC-3".
        codec: &'static str,
        /// Offset of the frame start.
        offset: usize,
        /// Frame length announced by the header (or the header length).
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },

    // ---- MPEG-TS ------------------------------------------------------------------------------
    /// The segment length is not a whole number of 188-byte packets.
    #[error("TS segment is {len} bytes, not a multiple of 188")]
    TsLength {
        /// Segment length.
        len: usize,
    },
    /// A TS packet or table is malformed.
    #[error("TS packet at byte {offset}: {reason}")]
    Ts {
        /// Offset of the packet in the segment.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The TS is well-formed but uses something this crate does not rewrite.
    #[error("TS packet at byte {offset}: unsupported: {what}")]
    TsUnsupported {
        /// Offset of the packet in the segment.
        offset: usize,
        /// The unsupported feature.
        what: &'static str,
    },
    /// The elementary stream inside a PES packet is malformed.
    #[error("PES on PID {pid:#x} starting at byte {offset}: {inner}")]
    Pes {
        /// The PID.
        pid: u16,
        /// Offset of the PES's first TS packet in the segment.
        offset: usize,
        /// The error from the elementary-stream codec.
        inner: Box<Error>,
    },
    /// The input already carries SAMPLE-AES stream types; encrypting twice is refused.
    #[error("stream on PID {pid:#x} is already SAMPLE-AES encrypted (stream type {stream_type:#04x})")]
    AlreadyEncrypted {
        /// The PID.
        pid: u16,
        /// Its stream type.
        stream_type: u8,
    },

    // ---- playlists and limits -----------------------------------------------------------------
    /// The playlist is malformed or not a media playlist.
    #[error("playlist line {line}: {reason}")]
    Playlist {
        /// 1-based line number (0 for the whole playlist).
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// An input exceeds one of the [`Limits`](crate::Limits).
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The configured limit.
        max: usize,
    },
}

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
