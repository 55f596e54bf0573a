//! Chunked passes over an image source. Sources are any `Read + Seek` (a file, a `Cursor` over
//! bytes, a flash-slot adapter); sinks any `Write`. One 64 KiB buffer per pass, whatever the
//! image size.

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};

use aws_lc_rs::digest::{Context, SHA256};

use crate::encrypt::{ContentKey, CtrStream};
use crate::error::{Error, Result};
use crate::image::Image;

/// Buffer size of every pass.
pub(crate) const CHUNK: usize = 64 * 1024;

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Segment {
    Header,
    Payload,
    Protected,
}

/// One pass over the signed region `[0, hdr_size + img_size + protect_tlv_size)`: re-reads the
/// header and protected area and insists they are the bytes [`Image::read`] parsed, streams the
/// payload (decrypting it for the hash when `key` is given), and returns the SHA-256.
pub(crate) fn hash_signed_region<R: Read + Seek>(
    image: &Image,
    src: &mut R,
    key: Option<&ContentKey>,
    mut output: Output<'_>,
) -> Result<[u8; 32]> {
    let mut hash = Context::new(&SHA256);
    let write = |output: &mut Output<'_>, segment: Segment, stored: &[u8], plain: &[u8]| -> Result<()> {
        match output {
            Output::None => Ok(()),
            Output::Stored(w) => Ok(w.write_all(stored)?),
            Output::Plain(w) => Ok(w.write_all(plain)?),
            Output::PlainPayload(w) if segment == Segment::Payload => Ok(w.write_all(plain)?),
            Output::PlainPayload(_) => Ok(()),
        }
    };

    src.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; CHUNK.max(image.header_bytes.len())];
    let head = &mut buf[..image.header_bytes.len()];
    read_exact_or_changed(src, head)?;
    if head != image.header_bytes.as_slice() {
        return Err(Error::SourceChanged);
    }
    hash.update(head);
    write(&mut output, Segment::Header, head, head)?;

    let mut ctr = key.map(CtrStream::new).transpose()?;
    let mut left = u64::from(image.header.img_size);
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        let stored = &mut buf[..n];
        read_exact_or_changed(src, stored)?;
        left -= n as u64;
        match ctr.as_mut() {
            Some(ctr) => {
                let plain = ctr.apply(stored)?;
                hash.update(plain);
                write(&mut output, Segment::Payload, stored, plain)?;
            }
            None => {
                hash.update(stored);
                write(&mut output, Segment::Payload, stored, stored)?;
            }
        }
    }

    let prot = &mut buf[..image.protected_bytes.len()];
    read_exact_or_changed(src, prot)?;
    if prot != image.protected_bytes.as_slice() {
        return Err(Error::SourceChanged);
    }
    hash.update(prot);
    write(&mut output, Segment::Protected, prot, prot)?;

    let mut digest = [0u8; 32];
    digest.copy_from_slice(hash.finish().as_ref());
    Ok(digest)
}

/// Copies `len` bytes from `src` (at its current position) to `out`.
pub(crate) fn copy_exact<R: Read, W: Write + ?Sized>(src: &mut R, out: &mut W, len: u64) -> Result<()> {
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
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
