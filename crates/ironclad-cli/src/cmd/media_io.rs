//! Shared by the four `media` subcommands: the media key file, IVs, the staged output directory,
//! progress, and the streaming elementary-stream pass behind `encrypt-es` / `decrypt-es`.

use std::fs::{self, File, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ironclad_media::{G711Cipher, Limits, SampleAes};
use serde_json::json;
use zeroize::Zeroizing;

use crate::output::print_json;

/// Name of the padding segment `encrypt-hls --pad-segment` appends and `decrypt-hls` drops.
pub(crate) const PAD_SEGMENT: &str = "ironclad-pad.ts";

/// Inputs at least this long get a progress bar (on a terminal, without --json).
const PROGRESS_FROM: u64 = 32 << 20;

// ---- keys and IVs ------------------------------------------------------------------------------

/// A 16-byte AES-128 media key. Zeroed on drop; `Debug` never shows it; it is never printed.
pub(crate) struct MediaKey(Zeroizing<[u8; 16]>);

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKey(AES-128, ..)")
    }
}

impl MediaKey {
    pub(crate) fn bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A fresh key from the system RNG.
    pub(crate) fn random() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 16]);
        aws_lc_rs::rand::fill(&mut key[..]).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
        Ok(Self(key))
    }

    /// Reads a key file: exactly 16 raw bytes.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let meta = fs::metadata(path).with_context(|| format!("reading key file {}", path.display()))?;
        ensure!(meta.is_file(), "key file {} is not a regular file", path.display());
        ensure!(
            meta.len() == 16,
            "key file {} is {} bytes; a media key file holds exactly 16 raw bytes (not hex, no \
             newline), e.g. made with `head -c 16 /dev/urandom > key.bin`",
            path.display(),
            meta.len()
        );
        let mut key = Zeroizing::new([0u8; 16]);
        let mut file = File::open(path).with_context(|| format!("reading key file {}", path.display()))?;
        file.read_exact(&mut key[..]).with_context(|| format!("reading key file {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: key file {} can be read by other users (mode {mode:o}); run `chmod 600` on it",
                path.display()
            );
        }
        Ok(Self(key))
    }

    /// The key in `path` if that file exists, else a new random key (`true`) that the caller
    /// writes with [`write_key_file`] once the command has succeeded.
    pub(crate) fn existing_or_new(path: &Path) -> Result<(Self, bool)> {
        match fs::symlink_metadata(path) {
            Ok(_) => Ok((Self::read(path)?, false)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok((Self::random()?, true)),
            Err(e) => Err(e).with_context(|| format!("reading key file {}", path.display())),
        }
    }
}

/// Writes a new key file atomically with mode 0600; refuses to replace an existing file.
pub(crate) fn write_key_file(path: &Path, key: &MediaKey) -> Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-key-")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("creating key file {} (does {} exist?)", path.display(), dir.display()))?;
    tmp.write_all(key.bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing key file {}", path.display()))?;
    sync_dir(dir)
}

/// clap parser for `--iv`: 32 hex digits, `0x` optional.
pub(crate) fn parse_iv(s: &str) -> Result<[u8; 16], String> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    let mut iv = [0u8; 16];
    if digits.len() != 32 || hex::decode_to_slice(digits, &mut iv).is_err() {
        return Err("an IV is 16 bytes written as 32 hex digits, optionally after 0x".into());
    }
    Ok(iv)
}

/// A fresh IV from the system RNG.
pub(crate) fn random_iv() -> Result<[u8; 16]> {
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
    Ok(iv)
}

/// `0x` and 32 hex digits, as in the playlist.
pub(crate) fn iv_hex(iv: &[u8; 16]) -> String {
    format!("0x{}", hex::encode(iv))
}

// ---- files and directories ---------------------------------------------------------------------

fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// `path` made absolute with `.` and `..` resolved lexically (the path need not exist).
pub(crate) fn lexical_absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The relative file path a playlist URI names, or `None` for URLs, absolute paths and `..`.
pub(crate) fn local_path(uri: &str) -> Option<PathBuf> {
    if uri.contains("://") || uri.starts_with("data:") || uri.contains(['?', '#', '\\']) {
        return None;
    }
    let path = Path::new(uri);
    path.components().all(|c| matches!(c, Component::Normal(_))).then(|| path.to_path_buf())
}

/// An output directory built beside its target and renamed into place when complete, so a
/// failed command leaves nothing (the staging directory is removed on drop).
pub(crate) struct StagedDir {
    staging: tempfile::TempDir,
    target: PathBuf,
    subdirs: Vec<PathBuf>,
}

impl StagedDir {
    /// Refuses a target that exists and is not an empty directory.
    pub(crate) fn new(target: &Path) -> Result<Self> {
        match fs::read_dir(target) {
            Ok(mut entries) => ensure!(
                entries.next().is_none(),
                "output directory {} already exists and is not empty; remove it or choose another --out",
                target.display()
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("--out {} is not a usable directory", target.display()));
            }
        }
        let parent = parent_dir(target);
        let staging = tempfile::Builder::new()
            .prefix(".ironclad-media-")
            .tempdir_in(parent)
            .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
        Ok(Self { staging, target: target.to_path_buf(), subdirs: Vec::new() })
    }

    /// Writes and fsyncs `rel` inside the staged directory; `mode` for private files.
    pub(crate) fn write(&mut self, rel: &Path, data: &[u8], mode: Option<u32>) -> Result<()> {
        let path = self.staging.path().join(rel);
        let dir = parent_dir(&path).to_path_buf();
        if dir != self.staging.path() && !self.subdirs.contains(&dir) {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            self.subdirs.push(dir);
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        if let Some(mode) = mode {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        }
        let display = self.target.join(rel);
        let mut file = options.open(&path).with_context(|| format!("writing {}", display.display()))?;
        file.write_all(data).with_context(|| format!("writing {}", display.display()))?;
        file.sync_all().with_context(|| format!("writing {}", display.display()))
    }

    /// Renames the staged directory to the target (replacing an empty directory there).
    pub(crate) fn publish(self) -> Result<()> {
        for dir in &self.subdirs {
            sync_dir(dir)?;
        }
        sync_dir(self.staging.path())?;
        fs::rename(self.staging.path(), &self.target)
            .with_context(|| format!("moving the finished output into place at {}", self.target.display()))?;
        let _ = self.staging.keep(); // renamed: nothing left to clean up
        sync_dir(parent_dir(&self.target))
    }
}

/// A file written to a temporary name beside `path`, fsynced and renamed over it by [`commit`].
pub(crate) fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path);
    tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(|| format!("creating {} (does {} exist?)", path.display(), dir.display()))
}

/// Completes a [`temp_beside`] file.
pub(crate) fn commit(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    tmp.as_file().sync_all().with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("writing {}", path.display()))?;
    sync_dir(parent_dir(path))
}

/// A byte-count progress bar on stderr, hidden for short inputs and with --json.
pub(crate) fn progress(total: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if quiet || total < PROGRESS_FROM {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
    ) {
        bar.set_style(style);
    }
    bar
}

// ---- HLS playlists ----------------------------------------------------------------------------

/// A media segment of the playlist.
pub(crate) struct Segment {
    pub(crate) line: usize,
    pub(crate) uri: String,
    pub(crate) path: PathBuf,
}

/// The playlist file and the directory its relative URIs resolve against.
pub(crate) fn playlist_location(input: &Path) -> Result<(PathBuf, PathBuf)> {
    let playlist = if input.is_dir() { input.join("index.m3u8") } else { input.to_path_buf() };
    ensure!(
        playlist.is_file(),
        "{} does not exist; pass the stream's directory (with index.m3u8) or its playlist file",
        playlist.display()
    );
    let dir = playlist.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    Ok((playlist, dir))
}

pub(crate) fn read_playlist(path: &Path) -> Result<String> {
    let len = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    ensure!(len <= 16 << 20, "{} is {len} bytes: not a media playlist", path.display());
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a text playlist (not UTF-8)", path.display()))?;
    ensure!(
        text.starts_with("#EXTM3U"),
        "{} is not an HLS playlist (it does not start with #EXTM3U)",
        path.display()
    );
    Ok(text)
}

/// The playlist's segments, each a local relative file listed once. Byte ranges and fMP4 are
/// refused: SAMPLE-AES here means whole MPEG-TS segment files.
pub(crate) fn local_segments(text: &str, playlist: &Path) -> Result<Vec<Segment>> {
    let mut segments: Vec<Segment> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (line_no, t) = (i + 1, line.trim());
        let at = || format!("{} line {line_no}", playlist.display());
        if t.starts_with("#EXT-X-MAP") {
            bail!("{}: fMP4 segments (EXT-X-MAP) are not supported; SAMPLE-AES here is for MPEG-TS", at());
        }
        if t.starts_with("#EXT-X-BYTERANGE") {
            bail!("{}: byte-range segments are not supported; segment the stream into files", at());
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let path = local_path(t)
            .with_context(|| format!("{}: segment URI {t:?} is not a relative file path", at()))?;
        ensure!(!segments.iter().any(|s| s.uri == t), "{}: segment {t} is listed twice", at());
        segments.push(Segment { line: line_no, uri: t.to_owned(), path });
    }
    ensure!(!segments.is_empty(), "{} lists no media segments", playlist.display());
    Ok(segments)
}

/// Reads a segment into `buf` (cleared first), reusing its allocation.
pub(crate) fn read_segment(dir: &Path, s: &Segment, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    File::open(dir.join(&s.path))
        .and_then(|mut f| f.read_to_end(buf))
        .with_context(|| format!("reading segment {}", s.uri))?;
    Ok(())
}

pub(crate) fn segment_len(dir: &Path, s: &Segment) -> Result<u64> {
    let len = fs::metadata(dir.join(&s.path))
        .with_context(|| format!("segment {} (playlist line {})", s.uri, s.line))?
        .len();
    let max = Limits::default().max_segment_len as u64;
    ensure!(len <= max, "segment {} is {len} bytes, more than the limit of {max}", s.uri);
    Ok(len)
}

pub(crate) fn warn_not_exact(segments: &[String]) {
    if !segments.is_empty() {
        eprintln!(
            "note: {} segment(s) were not packetized as ffmpeg does ({}); they play, but decrypt-hls \
             will return equivalent rather than byte-identical segments",
            segments.len(),
            segments.join(", ")
        );
    }
}

// ---- elementary streams ------------------------------------------------------------------------

/// The elementary-stream formats `encrypt-es` / `decrypt-es` take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum EsCodec {
    /// H.264 Annex-B byte stream (`ffmpeg -c:v copy -f h264`): SAMPLE-AES.
    H264,
    /// AAC in ADTS frames (`ffmpeg -c:a copy -f adts`): SAMPLE-AES.
    Aac,
    /// AC-3 or E-AC-3 syncframes (`ffmpeg -c:a copy -f ac3` / `-f eac3`): SAMPLE-AES.
    Ac3,
    /// G.711 A-law (or µ-law) frames of --frame-bytes: ironclad's AES-128-CTR frame rule.
    G711,
}

impl EsCodec {
    fn name(self) -> &'static str {
        match self {
            Self::H264 => "h264",
            Self::Aac => "aac",
            Self::Ac3 => "ac3",
            Self::G711 => "g711",
        }
    }
}

/// Which way an elementary-stream pass goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    Encrypt,
    Decrypt,
}

/// One `encrypt-es` / `decrypt-es` run, as the two subcommands describe it.
pub(crate) struct EsRequest<'a> {
    pub(crate) pass: Pass,
    pub(crate) codec: EsCodec,
    pub(crate) input: &'a Path,
    pub(crate) output: &'a Path,
    pub(crate) key_file: &'a Path,
    /// `None` on encryption: a random IV, reported.
    pub(crate) iv: Option<[u8; 16]>,
    pub(crate) frame_bytes: Option<usize>,
    pub(crate) first_frame: u64,
    pub(crate) json: bool,
}

/// Default G.711 frame: 20 ms at 8 kHz, one byte per sample.
const G711_DEFAULT_FRAME: usize = 160;
/// Bytes read per step of the streaming pass.
const CHUNK: usize = 16 << 20;
/// No NAL unit or audio frame is longer: past this without a boundary, the input is garbage.
const MAX_UNIT: usize = 256 << 20;

enum EsCipher {
    SampleAes(Box<SampleAes>),
    G711 { cipher: Box<G711Cipher>, frame_bytes: usize },
}

/// What a pass did.
#[derive(Debug, Default)]
struct EsStats {
    bytes_in: u64,
    bytes_out: u64,
    units: u64,
    protected: u64,
    next_frame: u64,
}

/// Runs `encrypt-es` or `decrypt-es`.
pub(crate) fn run_es(req: EsRequest<'_>) -> Result<()> {
    let frame_bytes = match (req.codec, req.frame_bytes) {
        (EsCodec::G711, n) => n.unwrap_or(G711_DEFAULT_FRAME),
        (_, None) => 0,
        (c, Some(_)) => bail!("--frame-bytes applies to --codec g711 only, not {}", c.name()),
    };
    ensure!(
        req.codec != EsCodec::G711 || (1..=65_536).contains(&frame_bytes),
        "--frame-bytes must be 1..=65536"
    );
    ensure!(req.codec == EsCodec::G711 || req.first_frame == 0, "--first-frame applies to --codec g711 only");
    let (key, key_created) = match req.pass {
        Pass::Encrypt => MediaKey::existing_or_new(req.key_file)?,
        Pass::Decrypt => (MediaKey::read(req.key_file)?, false),
    };
    let iv = match req.iv {
        Some(iv) => iv,
        None => random_iv()?,
    };
    let cipher = match req.codec {
        EsCodec::G711 => EsCipher::G711 { cipher: Box::new(G711Cipher::new(key.bytes(), iv)?), frame_bytes },
        _ => EsCipher::SampleAes(Box::new(SampleAes::new(key.bytes(), iv)?)),
    };

    let mut input = File::open(req.input).with_context(|| format!("reading {}", req.input.display()))?;
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tmp = temp_beside(req.output)?;
    let bar = progress(total, req.json);
    let started = Instant::now();
    let stats = es_pass(req.pass, req.codec, &cipher, req.first_frame, &mut input, tmp.as_file_mut(), &bar)
        .with_context(|| req.input.display().to_string())?;
    bar.finish_and_clear();
    if key_created {
        write_key_file(req.key_file, &key)?;
    }
    if let Err(err) = commit(tmp, req.output) {
        if key_created {
            let _ = fs::remove_file(req.key_file); // the key of an output that does not exist
        }
        return Err(err);
    }
    let seconds = started.elapsed().as_secs_f64();

    let verb = if req.pass == Pass::Encrypt { "encrypted" } else { "decrypted" };
    let (units, what) =
        if req.codec == EsCodec::H264 { ("nal_units", "NAL units") } else { ("frames", "frames") };
    if req.json {
        let mut v = json!({
            "codec": req.codec.name(),
            "in": req.input,
            "out": req.output,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            units: stats.units,
            format!("{units}_{verb}"): stats.protected,
            "iv": iv_hex(&iv),
            "key_file": req.key_file,
            "key_created": key_created,
            "seconds": seconds,
        });
        if req.codec == EsCodec::G711 {
            v["frame_bytes"] = json!(frame_bytes);
            v["first_frame"] = json!(req.first_frame);
            v["next_frame"] = json!(stats.next_frame);
        }
        return print_json(&v);
    }
    eprintln!(
        "{verb} {} of {} {what} ({} bytes) into {} in {seconds:.2} s",
        stats.protected,
        stats.units,
        stats.bytes_in,
        req.output.display()
    );
    if key_created {
        eprintln!("new key written to {} (mode 0600)", req.key_file.display());
    }
    if req.iv.is_none() {
        eprintln!("IV {} (random; decrypt-es needs it: --iv {})", iv_hex(&iv), iv_hex(&iv));
    }
    if req.codec == EsCodec::G711 {
        eprintln!("frames {}..{} ({frame_bytes} bytes each)", req.first_frame, stats.next_frame);
    }
    Ok(())
}

/// Streams `input` to `output` in chunks cut at NAL unit / frame boundaries, so memory stays
/// bounded and the progress bar moves. Each chunk is exactly what a whole-stream pass would do
/// to those bytes: the IV restarts at every protected unit, and a cut is placed before the zero
/// bytes that precede a start code, which belong to no NAL unit.
fn es_pass(
    pass: Pass,
    codec: EsCodec,
    cipher: &EsCipher,
    first_frame: u64,
    input: &mut impl Read,
    output: &mut impl Write,
    bar: &ProgressBar,
) -> Result<EsStats> {
    let mut stats = EsStats { next_frame: first_frame, ..EsStats::default() };
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + (1 << 20));
    let mut out: Vec<u8> = Vec::new();
    let mut base = 0usize; // stream offset of buf[0]
    let mut want = CHUNK;
    let mut eof = false;
    loop {
        while !eof && buf.len() < want {
            eof = fill(input, &mut buf, want)?;
        }
        if buf.is_empty() {
            break;
        }
        if base == 0 && codec == EsCodec::H264 {
            // Garbage gets the crate's "no start code" error now, not after MAX_UNIT bytes.
            ironclad_media::nal::nal_units(&buf).map_err(|e| invalid(codec, e))?;
        }
        let split = if eof { Some(buf.len()) } else { split_point(codec, cipher, &buf, base)? };
        let Some(split) = split else {
            ensure!(
                buf.len() < MAX_UNIT,
                "no {} boundary in the {} MiB from byte {base}",
                if codec == EsCodec::H264 { "NAL unit" } else { "frame" },
                MAX_UNIT >> 20
            );
            want = buf.len() + CHUNK;
            continue;
        };
        want = CHUNK;
        let chunk = &mut buf[..split];
        let written = match cipher {
            EsCipher::SampleAes(aes) if codec == EsCodec::H264 => {
                out.clear();
                let s = match pass {
                    Pass::Encrypt => aes.encrypt_h264(chunk, &mut out),
                    Pass::Decrypt => aes.decrypt_h264(chunk, &mut out),
                }
                .map_err(|e| invalid(codec, at_offset(e, base)))?;
                stats.units += s.nal_units as u64;
                stats.protected += s.protected as u64;
                &out[..]
            }
            EsCipher::SampleAes(aes) => {
                let s = match (codec, pass) {
                    (EsCodec::Aac, Pass::Encrypt) => aes.encrypt_adts(chunk),
                    (EsCodec::Aac, Pass::Decrypt) => aes.decrypt_adts(chunk),
                    (_, Pass::Encrypt) => aes.encrypt_ac3(chunk),
                    (_, Pass::Decrypt) => aes.decrypt_ac3(chunk),
                }
                .map_err(|e| invalid(codec, at_offset(e, base)))?;
                stats.units += s.frames as u64;
                stats.protected += s.protected as u64;
                &chunk[..]
            }
            EsCipher::G711 { cipher, frame_bytes } => {
                stats.next_frame = cipher.apply_frames(stats.next_frame, *frame_bytes, chunk)?;
                let frames = chunk.len().div_ceil(*frame_bytes) as u64;
                stats.units += frames;
                stats.protected += frames;
                &chunk[..]
            }
        };
        output.write_all(written).context("writing the output file")?;
        stats.bytes_in += split as u64;
        stats.bytes_out += written.len() as u64;
        bar.inc(split as u64);
        buf.drain(..split);
        base += split;
    }
    output.flush().context("writing the output file")?;
    Ok(stats)
}

/// Reads until `buf` holds `want` bytes; returns whether the input ended.
fn fill(input: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> Result<bool> {
    let start = buf.len();
    buf.resize(want, 0);
    let mut filled = start;
    let eof = loop {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break true,
            Ok(n) => {
                filled += n;
                if filled == want {
                    break false;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the input"),
        }
    };
    buf.truncate(filled);
    Ok(eof)
}

/// Where to cut `buf` (not at the end of the input): after the last complete unit, or `None`
/// if `buf` holds no complete unit yet.
fn split_point(codec: EsCodec, cipher: &EsCipher, buf: &[u8], base: usize) -> Result<Option<usize>> {
    Ok(match (codec, cipher) {
        (EsCodec::H264, _) => {
            // Before the zero run that leads into the last start code: that NAL may go on.
            let Some(mut at) = buf.windows(3).rposition(|w| w == [0, 0, 1]) else { return Ok(None) };
            while at > 0 && buf[at - 1] == 0 {
                at -= 1;
            }
            (at > 0).then_some(at)
        }
        (EsCodec::G711, EsCipher::G711 { frame_bytes, .. }) => {
            Some(buf.len() / frame_bytes * frame_bytes).filter(|&n| n > 0)
        }
        _ => {
            let frames: Box<dyn Iterator<Item = ironclad_media::Result<usize>>> = if codec == EsCodec::Aac {
                Box::new(ironclad_media::aac::adts_frames(buf).map(|f| f.map(|(at, h)| at + h.frame_len)))
            } else {
                Box::new(ironclad_media::ac3::ac3_frames(buf).map(|f| f.map(|(at, h)| at + h.frame_len)))
            };
            let mut end = 0;
            for frame in frames {
                match frame {
                    Ok(e) => end = e,
                    // The last frame continues in the next chunk.
                    Err(ironclad_media::Error::AudioTruncated { .. }) => break,
                    Err(e) => return Err(invalid(codec, at_offset(e, base))),
                }
            }
            (end > 0).then_some(end)
        }
    })
}

/// A codec error, said as such.
fn invalid(codec: EsCodec, err: ironclad_media::Error) -> anyhow::Error {
    anyhow::Error::new(err).context(format!("not a valid {} stream", codec.name()))
}

/// The crate's error with chunk-relative offsets made relative to the whole input.
fn at_offset(err: ironclad_media::Error, base: usize) -> ironclad_media::Error {
    use ironclad_media::Error as E;
    match err {
        E::NoStartCode { offset } => E::NoStartCode { offset: offset + base },
        E::EmptyNal { offset } => E::EmptyNal { offset: offset + base },
        E::ForbiddenBit { offset } => E::ForbiddenBit { offset: offset + base },
        E::AudioFrame { codec, offset, reason } => E::AudioFrame { codec, offset: offset + base, reason },
        E::AudioTruncated { codec, offset, needed, available } => {
            E::AudioTruncated { codec, offset: offset + base, needed, available }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pass_chunked(pass: Pass, codec: EsCodec, cipher: &EsCipher, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        es_pass(pass, codec, cipher, 0, &mut &input[..], &mut out, &ProgressBar::hidden()).unwrap();
        out
    }

    /// Random-ish slices with 3- and 4-byte start codes, trailing zeros, short and long NALs,
    /// more than one chunk long: the streaming pass equals the crate's whole-stream pass.
    #[test]
    fn chunked_h264_equals_whole_stream() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut s = Vec::new();
        while s.len() < CHUNK * 2 + 12345 {
            let n = rnd();
            s.extend_from_slice(if n & 1 == 0 { &[0, 0, 0, 1] } else { &[0, 0, 1] });
            s.push([0x65, 0x41, 0x01, 0x06, 0x09][(n >> 1) as usize % 5]);
            let len = [10, 47, 48, 200, 70_000, 400_000][(n >> 8) as usize % 6];
            for _ in 0..len / 8 {
                s.extend(rnd().to_le_bytes().map(|b| if b == 0 { 0 } else { b | 0x04 }));
            }
            s.push(0x80);
            if n >> 20 & 3 == 0 {
                s.extend_from_slice(&[0, 0]); // trailing_zero_8bits
            }
        }
        let aes = SampleAes::new(&[7; 16], [9; 16]).unwrap();
        let mut whole = Vec::new();
        aes.encrypt_h264(&s, &mut whole).unwrap();
        let cipher = EsCipher::SampleAes(Box::new(aes));
        let chunked = pass_chunked(Pass::Encrypt, EsCodec::H264, &cipher, &s);
        assert!(chunked == whole, "chunked encryption differs");
        let back = pass_chunked(Pass::Decrypt, EsCodec::H264, &cipher, &chunked);
        assert!(back == s, "round trip failed");
    }

    #[test]
    fn chunked_adts_and_g711_equal_whole_stream() {
        // ADTS AAC-LC 48 kHz stereo frames of varying length, 2+ chunks.
        let mut s = Vec::new();
        let mut i = 0usize;
        while s.len() < CHUNK * 2 + 999 {
            let len = 7 + 20 + (i * 37) % 1500;
            let mut f = vec![0xff, 0xf1, 0x4c, 0x80, 0, 0, 0xfc];
            f[3] |= ((len >> 11) & 3) as u8;
            f[4] = (len >> 3) as u8;
            f[5] = ((len & 7) << 5) as u8 | 0x1f;
            f.extend((0..len - 7).map(|j| (i + j) as u8));
            s.extend_from_slice(&f);
            i += 1;
        }
        let aes = SampleAes::new(&[1; 16], [2; 16]).unwrap();
        let mut whole = s.clone();
        aes.encrypt_adts(&mut whole).unwrap();
        let cipher = EsCipher::SampleAes(Box::new(aes));
        assert!(pass_chunked(Pass::Encrypt, EsCodec::Aac, &cipher, &s) == whole);

        let g = G711Cipher::new(&[3; 16], [4; 16]).unwrap();
        let mut whole = s.clone();
        g.apply_frames(0, 160, &mut whole).unwrap();
        let cipher = EsCipher::G711 { cipher: Box::new(g), frame_bytes: 160 };
        assert!(pass_chunked(Pass::Encrypt, EsCodec::G711, &cipher, &s) == whole);
    }

    #[test]
    fn ivs_and_uris() {
        assert_eq!(parse_iv("0x000102030405060708090a0b0c0d0e0f").unwrap()[15], 15);
        assert!(parse_iv("00").is_err() && parse_iv(&"zz".repeat(16)).is_err());
        assert!(local_path("seg000.ts").is_some() && local_path("v/seg.ts").is_some());
        for bad in ["/etc/passwd", "../x.ts", "https://a/b.ts", "a.ts?x=1", "data:,x"] {
            assert!(local_path(bad).is_none(), "{bad}");
        }
        assert_eq!(format!("{:?}", MediaKey::random().unwrap()), "MediaKey(AES-128, ..)");
    }
}
