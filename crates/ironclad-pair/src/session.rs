//! The encrypted channel after pair-verify (HAP "session security").
//!
//! Each frame is `len (u16 LE, ≤ 1024) ‖ ChaCha20-Poly1305(plaintext) ‖ tag (16)` with the two
//! length bytes as AAD and nonce `00 00 00 00 ‖ counter (u64 LE)`; each direction has its own key
//! and counter, starting at 0. A frame that fails authentication (tampered, reordered, replayed,
//! from the wrong direction) closes the reading side for good; so does a header announcing more
//! than 1024 bytes. [`FrameReader::decrypt`] accepts input in arbitrary pieces.

use zeroize::Zeroizing;

use crate::crypto::{AeadKey, TAG_LEN, hkdf};
use crate::error::{Error, Result};

/// Largest plaintext in one frame.
pub const MAX_FRAME: usize = 1024;
const HEADER: usize = 2;

const CONTROL_SALT: &[u8] = b"Control-Salt";
/// Accessory → controller.
const READ_INFO: &[u8] = b"Control-Read-Encryption-Key";
/// Controller → accessory.
const WRITE_INFO: &[u8] = b"Control-Write-Encryption-Key";

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Accessory,
    Controller,
}

/// The two directional keys of a session, named from our side.
pub struct SessionKeys {
    encrypt: Zeroizing<[u8; 32]>,
    decrypt: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys")
    }
}

impl SessionKeys {
    /// From the pair-verify shared secret: the controller writes with
    /// `Control-Write-Encryption-Key`, the accessory with `Control-Read-Encryption-Key`.
    pub fn derive(shared: &[u8], role: Role) -> Self {
        let read = hkdf(shared, CONTROL_SALT, READ_INFO);
        let write = hkdf(shared, CONTROL_SALT, WRITE_INFO);
        match role {
            Role::Controller => SessionKeys { encrypt: write, decrypt: read },
            Role::Accessory => SessionKeys { encrypt: read, decrypt: write },
        }
    }

    /// From explicit keys (tests, or keys derived elsewhere).
    pub fn from_keys(encrypt: [u8; 32], decrypt: [u8; 32]) -> Self {
        SessionKeys { encrypt: Zeroizing::new(encrypt), decrypt: Zeroizing::new(decrypt) }
    }
}

/// Both directions of an encrypted connection.
#[derive(Debug)]
pub struct Session {
    writer: FrameWriter,
    reader: FrameReader,
}

impl Session {
    pub fn new(keys: &SessionKeys) -> Self {
        Session { writer: FrameWriter::new(&keys.encrypt), reader: FrameReader::new(&keys.decrypt) }
    }

    /// Encrypts `plaintext` into frames to send.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.writer.encrypt(plaintext)
    }

    /// Feeds received bytes; returns the plaintext of every frame completed so far.
    pub fn decrypt(&mut self, input: &[u8]) -> Result<Vec<u8>> {
        self.reader.decrypt(input)
    }

    /// Separates the directions (e.g. for a reader task and a writer task).
    pub fn split(self) -> (FrameWriter, FrameReader) {
        (self.writer, self.reader)
    }
}

/// The sending direction.
#[derive(Debug)]
pub struct FrameWriter {
    key: AeadKey,
    counter: u64,
    closed: bool,
}

impl FrameWriter {
    fn new(key: &[u8; 32]) -> Self {
        FrameWriter { key: AeadKey::new(key), counter: 0, closed: false }
    }

    /// Frames sent so far.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Splits `plaintext` into frames of at most 1024 bytes and encrypts them. Empty input gives
    /// no frames.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.closed {
            return Err(Error::SessionClosed);
        }
        let frames = plaintext.len().div_ceil(MAX_FRAME);
        let mut out = Vec::with_capacity(plaintext.len() + frames * (HEADER + TAG_LEN));
        for chunk in plaintext.chunks(MAX_FRAME) {
            if self.counter == u64::MAX {
                self.closed = true;
                return Err(Error::SessionClosed);
            }
            let len = (chunk.len() as u16).to_le_bytes();
            out.extend_from_slice(&len);
            self.key.seal_append(self.counter.to_le_bytes(), &len, chunk, &mut out);
            self.counter += 1;
        }
        Ok(out)
    }
}

/// The receiving direction: a streaming decoder.
#[derive(Debug)]
pub struct FrameReader {
    key: AeadKey,
    counter: u64,
    pending: Vec<u8>,
    closed: bool,
}

impl FrameReader {
    fn new(key: &[u8; 32]) -> Self {
        FrameReader { key: AeadKey::new(key), counter: 0, pending: Vec::new(), closed: false }
    }

    /// Frames received so far.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Bytes of an incomplete frame held back.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Feeds received bytes in any split; returns the plaintext of every frame completed so far
    /// (possibly empty). Any error closes the reader.
    pub fn decrypt(&mut self, input: &[u8]) -> Result<Vec<u8>> {
        if self.closed {
            return Err(Error::SessionClosed);
        }
        let result = self.decrypt_inner(input);
        if result.is_err() {
            self.closed = true;
            self.pending.clear();
        }
        result
    }

    fn decrypt_inner(&mut self, mut input: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len());
        loop {
            // Fast path: whole frames straight from `input`, decrypted in place in `out`.
            while self.pending.is_empty() && input.len() >= HEADER {
                let len = usize::from(u16::from_le_bytes([input[0], input[1]]));
                if len > MAX_FRAME {
                    return Err(Error::FrameTooLong(len));
                }
                let total = HEADER + len + TAG_LEN;
                if input.len() < total || self.counter == u64::MAX {
                    break;
                }
                let start = out.len();
                out.extend_from_slice(&input[HEADER..total]);
                let plain_len = self
                    .key
                    .open_in_place(self.counter.to_le_bytes(), &input[..HEADER], &mut out[start..])
                    .ok_or(Error::FrameAuth { counter: self.counter })?;
                out.truncate(start + plain_len);
                self.counter += 1;
                input = &input[total..];
            }
            // Complete the header, then the frame, from `pending` + `input`.
            let need_header = HEADER.saturating_sub(self.pending.len());
            let take = need_header.min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < HEADER {
                return Ok(out);
            }
            let len = usize::from(u16::from_le_bytes([self.pending[0], self.pending[1]]));
            if len > MAX_FRAME {
                return Err(Error::FrameTooLong(len));
            }
            let total = HEADER + len + TAG_LEN;
            let take = (total - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < total {
                return Ok(out);
            }
            if self.counter == u64::MAX {
                return Err(Error::SessionClosed);
            }
            let (header, body) = self.pending.split_at_mut(HEADER);
            let plain_len = self
                .key
                .open_in_place(self.counter.to_le_bytes(), header, body)
                .ok_or(Error::FrameAuth { counter: self.counter })?;
            out.extend_from_slice(&body[..plain_len]);
            self.counter += 1;
            self.pending.clear();
        }
    }

    /// At end of stream: an error if a partial frame is left (a truncated session).
    pub fn finish(&self) -> Result<()> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(Error::FrameTruncated { pending: self.pending.len() })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pair() -> (Session, Session) {
        let shared = [42u8; 32];
        (
            Session::new(&SessionKeys::derive(&shared, Role::Controller)),
            Session::new(&SessionKeys::derive(&shared, Role::Accessory)),
        )
    }

    #[test]
    fn frames_split_at_1024() {
        let (mut c, mut a) = pair();
        let data = vec![7u8; 2049];
        let wire = c.encrypt(&data).unwrap();
        assert_eq!(wire.len(), 2049 + 3 * (2 + 16));
        assert_eq!(&wire[..2], &1024u16.to_le_bytes());
        assert_eq!(a.decrypt(&wire).unwrap(), data);
        assert!(c.encrypt(&[]).unwrap().is_empty());
    }

    #[test]
    fn own_frames_do_not_decrypt_on_own_reader() {
        let (mut c, _) = pair();
        let wire = c.encrypt(b"ping").unwrap();
        assert!(matches!(c.decrypt(&wire), Err(Error::FrameAuth { counter: 0 })));
        assert!(matches!(c.decrypt(b""), Err(Error::SessionClosed)));
    }

    #[test]
    fn oversized_header_closes() {
        let (_, mut a) = pair();
        assert!(matches!(a.decrypt(&[0x01, 0x04]), Err(Error::FrameTooLong(1025))));
        assert!(matches!(a.decrypt(&[0, 0]), Err(Error::SessionClosed)));
    }
}
