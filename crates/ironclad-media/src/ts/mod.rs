//! SAMPLE-AES packaging of MPEG-2 transport stream segments, and its exact reverse.
//!
//! A segment is rewritten in two passes. The **demux** pass (`demux.rs`) checks every packet,
//! follows PAT/PMT, reassembles the PES packets of the H.264 and AAC PIDs and encrypts (or
//! decrypts) their elementary streams into one arena; every input packet becomes an item that
//! remembers its adaptation-field content (PCR, random-access and discontinuity flags...). The
//! **mux** pass (`mux.rs`) writes the items back in the original order: other packets unchanged,
//! the PMT rewritten (`pmt.rs`), and each PES re-packetized into its original packet slots, slot
//! `k` keeping slot `k`'s adaptation field. Encryption makes video PES a few bytes longer; the
//! extra packets follow the PES's last slot. Continuity counters of the rewritten PIDs are
//! renumbered continuously from the first segment's first counter, across segments, which is why
//! [`TsEncryptor`] and [`TsDecryptor`] keep state: feed them the segments in playlist order.
//!
//! # Exact restoration
//!
//! `decrypt(encrypt(segments)) == segments` byte for byte when the input is packetized the way
//! ffmpeg (and the writer in `packet.rs`) does it — every packet of a PES full except the last,
//! stuffing as `0xff` in the adaptation field — with continuity counters continuous across the
//! segments, and the PMT alone in its packet (after it only `0xff`). [`SegmentStats::canonical`]
//! says whether a segment met that; ffmpeg's `-f hls` and `-f mpegts` output always does.
//! Video PES packets keep `PES_packet_length` 0 (as ffmpeg writes them); a non-zero length is
//! recomputed, or set to 0 if the encrypted PES no longer fits 16 bits (then not restorable).
//!
//! H.264 (0x1b) and ADTS AAC (0x0f) are encrypted; AC-3/E-AC-3 (0x81/0x87) only with
//! [`Ac3Policy::Encrypt`]. The decryptor handles all four SAMPLE-AES types (0xdb, 0xcf, 0xc1,
//! 0xc2).

mod demux;
mod mux;
pub(crate) mod packet;
pub(crate) mod pmt;

use std::collections::{BTreeMap, HashMap};

use crate::Limits;
use crate::cipher::{Direction, SampleAes};
use crate::error::Result;
use pmt::Codec;

/// What one segment pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentStats {
    /// Packets read.
    pub packets_in: usize,
    /// Packets written.
    pub packets_out: usize,
    /// PES packets rewritten.
    pub pes: usize,
    /// H.264 NAL units encrypted or decrypted.
    pub nal_units_protected: usize,
    /// Audio frames encrypted or decrypted.
    pub audio_frames_protected: usize,
    /// The input was in canonical form (see the module docs): its exact bytes come back from
    /// the reverse pass.
    pub canonical: bool,
}

/// What the encryptor does with AC-3 and E-AC-3 PIDs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ac3Policy {
    /// Leave them clear (the default): ironclad does not write Apple's audio setup information
    /// ('apad') for AC-3, whose exact content is not pinned down by a reference we could check.
    #[default]
    Clear,
    /// Encrypt them: stream types 0xc1 ('ac3d') / 0xc2 ('ec3d'), no 'apad' descriptor. ffmpeg
    /// decrypts this; Apple players may expect the setup descriptor.
    Encrypt,
}

/// Encrypts the TS segments of one HLS stream, in playlist order, for `METHOD=SAMPLE-AES`.
#[derive(Debug)]
pub struct TsEncryptor {
    inner: Rewriter,
}

impl TsEncryptor {
    /// An encryptor for one stream with the default [`Limits`].
    pub fn new(cipher: SampleAes) -> Self {
        Self::with_limits(cipher, Limits::default())
    }

    /// An encryptor with explicit limits.
    pub fn with_limits(cipher: SampleAes, limits: Limits) -> Self {
        Self { inner: Rewriter::new(cipher, Direction::Encrypt, limits) }
    }

    /// Chooses what happens to AC-3 and E-AC-3 PIDs (default: [`Ac3Policy::Clear`]).
    pub fn with_ac3(mut self, policy: Ac3Policy) -> Self {
        self.inner.ac3 = policy;
        self
    }

    /// Encrypts the next segment, appending it to `out`. On error nothing is appended and the
    /// stream state is unchanged, so the segment may be skipped or retried.
    pub fn encrypt_segment(&mut self, segment: &[u8], out: &mut Vec<u8>) -> Result<SegmentStats> {
        self.inner.segment(segment, out)
    }
}

/// Decrypts the SAMPLE-AES TS segments of one HLS stream, in playlist order.
#[derive(Debug)]
pub struct TsDecryptor {
    inner: Rewriter,
}

impl TsDecryptor {
    /// A decryptor for one stream with the default [`Limits`].
    pub fn new(cipher: SampleAes) -> Self {
        Self::with_limits(cipher, Limits::default())
    }

    /// A decryptor with explicit limits.
    pub fn with_limits(cipher: SampleAes, limits: Limits) -> Self {
        Self { inner: Rewriter::new(cipher, Direction::Decrypt, limits) }
    }

    /// Decrypts the next segment, appending the clear segment to `out`. On error nothing is
    /// appended and the stream state is unchanged.
    pub fn decrypt_segment(&mut self, segment: &[u8], out: &mut Vec<u8>) -> Result<SegmentStats> {
        self.inner.segment(segment, out)
    }
}

/// What PAT and PMT said, carried across segments.
#[derive(Debug, Clone, Default)]
struct Psi {
    pmt_pids: Vec<u16>,
    /// PIDs whose PES this pass rewrites.
    codecs: HashMap<u16, Codec>,
    /// AudioSpecificConfig per AAC PID, from its first ADTS header (for the `apad` descriptor).
    asc: HashMap<u16, [u8; 2]>,
}

/// Continuity counters per PID, carried across segments. `NONE` = not seen yet.
#[derive(Debug, Clone)]
struct Continuity {
    /// Next counter to write on a rewritten PID.
    next_out: Vec<u8>,
    /// Next counter expected in the input (to judge whether the input is canonical).
    next_in: Vec<u8>,
}

const NONE: u8 = 0xff;

impl Default for Continuity {
    fn default() -> Self {
        Self { next_out: vec![NONE; 8192], next_in: vec![NONE; 8192] }
    }
}

/// One input packet, as the mux pass needs it.
#[derive(Debug, Clone, Copy)]
enum Item {
    /// Copied unchanged.
    Raw,
    /// A PMT, replaced by `pmt_out[idx]`.
    Pmt { idx: u32 },
    /// Adaptation field only, on a rewritten PID: copied, counter renumbered.
    AfOnly { pid: u16 },
    /// Slot of PES `pes`: keeps `af_keep` bytes of its adaptation field.
    Pes { pes: u32, af_keep: u8, priority: bool },
}

/// One reassembled PES and where its rewritten bytes are.
#[derive(Debug, Clone)]
struct PesRec {
    pid: u16,
    /// Offset of its first packet (for errors).
    offset: usize,
    /// Input packets (slots) it occupied.
    slots: u32,
    /// Rewritten bytes in the arena.
    start: usize,
    end: usize,
    /// Mux progress: bytes written, slots visited.
    cursor: usize,
    seen: u32,
}

/// The PES being reassembled on a PID.
#[derive(Debug)]
struct Open {
    pes: u32,
    codec: Codec,
    /// The previous slot carried stuffing (only the last one may).
    stuffed: bool,
}

/// Per-segment working memory, kept to reuse its allocations.
#[derive(Debug, Default)]
struct Scratch {
    items: Vec<Item>,
    pes: Vec<PesRec>,
    open: BTreeMap<u16, Open>,
    bufs: HashMap<u16, Vec<u8>>,
    arena: Vec<u8>,
    /// PMTs to rewrite: packet index and section position.
    pmt_in: Vec<(usize, (usize, usize))>,
    pmt_out: Vec<[u8; packet::PACKET]>,
}

/// The shared engine of [`TsEncryptor`] and [`TsDecryptor`].
#[derive(Debug)]
struct Rewriter {
    cipher: SampleAes,
    dir: Direction,
    limits: Limits,
    ac3: Ac3Policy,
    psi: Psi,
    cont: Continuity,
    scratch: Scratch,
}

impl Rewriter {
    fn new(cipher: SampleAes, dir: Direction, limits: Limits) -> Self {
        Self {
            cipher,
            dir,
            limits,
            ac3: Ac3Policy::Clear,
            psi: Psi::default(),
            cont: Continuity::default(),
            scratch: Scratch::default(),
        }
    }

    fn segment(&mut self, seg: &[u8], out: &mut Vec<u8>) -> Result<SegmentStats> {
        let psi = self.psi.clone();
        let next_in = self.cont.next_in.clone();
        match self.demux(seg) {
            Ok(stats) => Ok(self.mux(seg, out, stats)),
            Err(e) => {
                self.psi = psi;
                self.cont.next_in = next_in;
                Err(e)
            }
        }
    }
}
