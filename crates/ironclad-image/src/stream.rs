//! Chunked passes over an image source. Sources are any `Read + Seek` (a file, a `Cursor` over
//! bytes, a flash-slot adapter); sinks any `Write`. SHA-256 runs beside the pass ([`HashPipe`]),
//! so a large image costs about as long as hashing alone; memory stays at a few buffers
//! whatever the image size.

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};

use aws_lc_rs::digest::{Context, SHA256};

use crate::encrypt::{ContentKey, CtrStream};
use crate::error::{Error, Result};
use crate::image::Image;
pub(crate) use crate::pipe::HashPipe;

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
/// payload (decrypting it for the hash when `key` is given), and returns the SHA-256. The hash
/// runs on a second thread while this one reads, decrypts and writes.
pub(crate) fn hash_signed_region<R: Read + Seek>(
    image: &Image,
    src: &mut R,
    key: Option<&ContentKey>,
    mut output: Output<'_>,
) -> Result<[u8; 32]> {
    let write = |output: &mut Output<'_>, segment: Segment, stored: &[u8], plain: &[u8]| -> Result<()> {
        match output {
            Output::None => Ok(()),
            Output::Stored(w) => Ok(w.write_all(stored)?),
            Output::Plain(w) => Ok(w.write_all(plain)?),
            Output::PlainPayload(w) if segment == Segment::Payload => Ok(w.write_all(plain)?),
            Output::PlainPayload(_) => Ok(()),
        }
    };

    let mut hash = Context::new(&SHA256);
    src.seek(SeekFrom::Start(0))?;
    let mut head = vec![0u8; image.header_bytes.len()];
    read_exact_or_changed(src, &mut head)?;
    if head != image.header_bytes {
        return Err(Error::SourceChanged);
    }
    hash.update(&head);
    write(&mut output, Segment::Header, &head, &head)?;

    let mut left = u64::from(image.header.img_size);
    let mut pipe = HashPipe::start(hash, left)?;
    let mut ctr = key.map(CtrStream::new).transpose()?;
    while left > 0 {
        let n = left.min(pipe.buffer_len() as u64) as usize;
        let mut stored = pipe.buffer()?;
        read_exact_or_changed(src, &mut stored[..n])?;
        left -= n as u64;
        match ctr.as_mut() {
            Some(ctr) => {
                let mut plain = pipe.buffer()?;
                ctr.apply_into(&stored[..n], &mut plain)?;
                let plain = pipe.hash(plain, n)?;
                write(&mut output, Segment::Payload, &stored[..n], &plain[..n])?;
                pipe.release(plain);
                pipe.recycle(stored);
            }
            None => {
                let stored = pipe.hash(stored, n)?;
                write(&mut output, Segment::Payload, &stored[..n], &stored[..n])?;
                pipe.release(stored);
            }
        }
    }

    let mut prot = vec![0u8; image.protected_bytes.len()];
    read_exact_or_changed(src, &mut prot)?;
    if prot != image.protected_bytes {
        return Err(Error::SourceChanged);
    }
    pipe.hash_bytes(&prot)?;
    write(&mut output, Segment::Protected, &prot, &prot)?;
    pipe.finish()
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
