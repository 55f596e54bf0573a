//! Chunked passes over an image source. Sources are any `Read + Seek` (a file, a `Cursor` over
//! bytes, a flash-slot adapter); sinks any `Write`. SHA-256 and AES-CTR run beside the pass ([`Pipe`]),
//! so a large image costs about as long as hashing alone; memory stays at a few buffers
//! whatever the image size.

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};

use aws_lc_rs::digest::{Context, SHA256};

use crate::encrypt::ContentKey;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::pipe::{Pipe, Transform};

/// Reads until `buf` is full or the source ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(src: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

fn read_exact_or_changed<R: Read>(src: &mut R, buf: &mut [u8]) -> Result<()> {
    if read_full(src, buf)? != buf.len() {
        return Err(Error::SourceChanged);
    }
    Ok(())
}

/// What a pass writes to its sink.
pub(crate) enum Output<'a> {
    /// Nothing (verification).
    None,
    /// The bytes as stored in the source (re-wrap copies the encrypted payload).
    Stored(&'a mut dyn Write),
    /// The plaintext payload in place of the stored one (decryption).
    Plain(&'a mut dyn Write),
    /// Only the plaintext payload.
    PlainPayload(&'a mut dyn Write),
}

/// One pass over the signed region `[0, hdr_size + img_size + protect_tlv_size)`: re-reads the
/// header and protected area and insists they are the bytes [`Image::read`] parsed, streams the
/// payload (decrypting it for the hash when `key` is given), and returns the SHA-256. Hashing
/// and AES-CTR run on the pipe's worker while this thread reads and writes.
pub(crate) fn hash_signed_region<R: Read + Seek>(
    image: &Image,
    src: &mut R,
    key: Option<&ContentKey>,
    output: Output<'_>,
) -> Result<[u8; 32]> {
    let (transform, mut sink, whole): (_, Option<&mut dyn Write>, bool) = match (output, key) {
        (Output::None, None) => (Transform::None, None, false),
        (Output::None, Some(k)) => (Transform::DecryptBeforeHash(k.clone()), None, false),
        (Output::Stored(w), None) => (Transform::None, Some(w), true),
        (Output::Stored(w), Some(k)) => (Transform::HashDecrypted(k.clone()), Some(w), true),
        (Output::Plain(w), k) => (decrypting(k), Some(w), true),
        (Output::PlainPayload(w), k) => (decrypting(k), Some(w), false),
    };

    let mut hash = Context::new(&SHA256);
    src.seek(SeekFrom::Start(0))?;
    let mut head = vec![0u8; image.header_bytes.len()];
    read_exact_or_changed(src, &mut head)?;
    if head != image.header_bytes {
        return Err(Error::SourceChanged);
    }
    hash.update(&head);
    if let (Some(w), true) = (sink.as_mut(), whole) {
        w.write_all(&head)?;
    }

    let mut left = u64::from(image.header.img_size);
    let mut pipe = Pipe::start(hash, left, transform)?;
    let mut payload_out = |bytes: &[u8]| -> Result<()> {
        if let Some(w) = sink.as_mut() {
            w.write_all(bytes)?;
        }
        Ok(())
    };
    while left > 0 {
        let n = left.min(pipe.buffer_len() as u64) as usize;
        let mut buf = pipe.buffer(&mut payload_out)?;
        read_exact_or_changed(src, &mut buf[..n])?;
        left -= n as u64;
        pipe.submit(buf, n, &mut payload_out)?;
    }

    let mut prot = vec![0u8; image.protected_bytes.len()];
    read_exact_or_changed(src, &mut prot)?;
    if prot != image.protected_bytes {
        return Err(Error::SourceChanged);
    }
    pipe.hash_bytes(&prot)?;
    let digest = pipe.finish(&mut payload_out)?;
    if let (Some(w), true) = (sink.as_mut(), whole) {
        w.write_all(&prot)?;
    }
    Ok(digest)
}

/// Decrypts before hashing when there is a key; hashes as stored otherwise.
fn decrypting(key: Option<&ContentKey>) -> Transform {
    key.map_or(Transform::None, |k| Transform::DecryptBeforeHash(k.clone()))
}

/// Copies `len` bytes from `src` (at its current position) to `out`.
pub(crate) fn copy_exact<R: Read, W: Write + ?Sized>(src: &mut R, out: &mut W, len: u64) -> Result<()> {
    let mut buf = vec![0u8; crate::pipe::CHUNK.min(len as usize)];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        read_exact_or_changed(src, &mut buf[..n])?;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Positions `src` at `offset`.
pub(crate) fn seek_to<R: Seek>(src: &mut R, offset: u64) -> Result<()> {
    src.seek(SeekFrom::Start(offset))?;
    Ok(())
}
