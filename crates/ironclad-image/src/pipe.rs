//! SHA-256 beside a streaming pass. Hashing (about 1.6 GB/s with SHA-NI) is the slowest step of
//! signing or verifying; on its own thread it overlaps reading, AES-CTR and writing, which
//! together cost about as much again. Small images are hashed inline: a thread costs more than
//! it saves below [`PARALLEL_MIN`].
//!
//! Buffers come from a pool of at most [`DEPTH`] (each [`CHUNK`] bytes plus 16 for AES-CTR's
//! output slack). A buffer given to [`HashPipe::hash`] is shared: the caller keeps reading it
//! (to encrypt or write it) while it is hashed, and whichever side lets go last recycles it.
//! The channel to the hash thread is FIFO, so chunks are hashed in the order they are given.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use aws_lc_rs::digest::Context;

use crate::error::{Error, Result};

/// Payload bytes per buffer: a read, a write and a hand-over are microseconds against the
/// ~0.6 ms it takes to hash a chunk.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Buffers in flight at most (memory: `DEPTH × CHUNK`).
pub(crate) const DEPTH: usize = 4;

/// Below this many bytes the hash runs on the caller's thread.
pub(crate) const PARALLEL_MIN: u64 = 256 * 1024;

/// AES-CTR may write up to a block beyond its input; every buffer has that room.
const SLACK: usize = 16;

const STOPPED: Error = Error::Crypto("the hash thread stopped");

/// A chunk for the hash thread.
struct Chunk {
    buf: Arc<Vec<u8>>,
    len: usize,
    /// A pool buffer (not a one-off copy from [`HashPipe::hash_bytes`]) to give back.
    pooled: bool,
}

enum Hasher {
    Inline(Context),
    Thread {
        to_hasher: Option<SyncSender<Chunk>>,
        returned: Receiver<Vec<u8>>,
        handle: Option<JoinHandle<Context>>,
    },
}

/// A running SHA-256 fed chunk by chunk, inline or on its own thread.
pub(crate) struct HashPipe {
    hasher: Hasher,
    spare: Vec<Vec<u8>>,
    allocated: usize,
    buf_len: usize,
}

impl HashPipe {
    /// Continues `hash` over the `len` bytes to come (plus small [`HashPipe::hash_bytes`]
    /// pieces). Buffers hold at most `len` bytes, so a small image does not allocate a megabyte.
    pub(crate) fn start(mut hash: Context, len: u64) -> Result<Self> {
        let buf_len = usize::try_from(len).unwrap_or(CHUNK).clamp(1, CHUNK);
        let hasher = if len < PARALLEL_MIN {
            Hasher::Inline(hash)
        } else {
            let (to_hasher, chunks) = sync_channel::<Chunk>(DEPTH);
            let (give_back, returned) = sync_channel::<Vec<u8>>(DEPTH);
            let handle = std::thread::Builder::new()
                .name("image-sha256".into())
                .spawn(move || {
                    for chunk in chunks {
                        hash.update(&chunk.buf[..chunk.len]);
                        if let Some(buf) = Arc::into_inner(chunk.buf).filter(|_| chunk.pooled) {
                            // Never blocks: the channel holds the whole pool. An error means
                            // the pass is over and nothing needs the buffer.
                            let _ = give_back.try_send(buf);
                        }
                    }
                    hash
                })
                .map_err(Error::Io)?;
            Hasher::Thread { to_hasher: Some(to_hasher), returned, handle: Some(handle) }
        };
        Ok(Self { hasher, spare: Vec::new(), allocated: 0, buf_len })
    }

    /// Payload bytes per buffer.
    pub(crate) fn buffer_len(&self) -> usize {
        self.buf_len
    }

    /// A free buffer of [`HashPipe::buffer_len`] bytes plus 16; waits for the hash thread to
    /// give one back when all [`DEPTH`] are in flight.
    pub(crate) fn buffer(&mut self) -> Result<Vec<u8>> {
        if let Some(buf) = self.spare.pop() {
            return Ok(buf);
        }
        let returned = match &self.hasher {
            Hasher::Thread { returned, .. } => Some(returned),
            Hasher::Inline(_) => None,
        };
        if let Some(buf) = returned.and_then(|r| r.try_recv().ok()) {
            return Ok(buf);
        }
        if self.allocated < DEPTH {
            self.allocated += 1;
            return Ok(vec![0u8; self.buf_len + SLACK]);
        }
        returned.ok_or(STOPPED)?.recv().map_err(|_| STOPPED)
    }

    /// Hashes `buf[..len]`; the caller keeps read access through the returned handle and gives
    /// it back with [`HashPipe::release`].
    pub(crate) fn hash(&mut self, buf: Vec<u8>, len: usize) -> Result<Arc<Vec<u8>>> {
        let buf = Arc::new(buf);
        self.send(Chunk { buf: Arc::clone(&buf), len, pooled: true })?;
        Ok(buf)
    }

    /// Hashes a few bytes (padding, a TLV area) in order with the chunks.
    pub(crate) fn hash_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.hasher {
            Hasher::Inline(hash) => {
                hash.update(bytes);
                Ok(())
            }
            Hasher::Thread { .. } => {
                self.send(Chunk { buf: Arc::new(bytes.to_vec()), len: bytes.len(), pooled: false })
            }
        }
    }

    fn send(&mut self, chunk: Chunk) -> Result<()> {
        match &mut self.hasher {
            Hasher::Inline(hash) => {
                hash.update(&chunk.buf[..chunk.len]);
                Ok(())
            }
            Hasher::Thread { to_hasher, .. } => {
                to_hasher.as_ref().ok_or(STOPPED)?.send(chunk).map_err(|_| STOPPED)
            }
        }
    }

    /// Gives a chunk back once the caller is done with it.
    pub(crate) fn release(&mut self, chunk: Arc<Vec<u8>>) {
        if let Some(buf) = Arc::into_inner(chunk) {
            self.spare.push(buf);
        }
    }

    /// Returns an unshared buffer to the pool.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        self.spare.push(buf);
    }

    /// Waits for every chunk to be hashed and returns the digest.
    pub(crate) fn finish(mut self) -> Result<[u8; 32]> {
        let hash = match &mut self.hasher {
            Hasher::Inline(hash) => hash.clone(),
            Hasher::Thread { to_hasher, handle, .. } => {
                drop(to_hasher.take());
                handle.take().ok_or(STOPPED)?.join().map_err(|_| Error::Crypto("the hash thread panicked"))?
            }
        };
        let mut digest = [0u8; 32];
        digest.copy_from_slice(hash.finish().as_ref());
        Ok(digest)
    }

    /// Buffers allocated so far (at most [`DEPTH`]).
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.allocated
    }
}

impl Drop for HashPipe {
    /// A failed pass stops the hash thread before its error is returned.
    fn drop(&mut self) {
        if let Hasher::Thread { to_hasher, handle, .. } = &mut self.hasher {
            drop(to_hasher.take());
            if let Some(handle) = handle.take() {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use aws_lc_rs::digest::{SHA256, digest};

    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Feeds `data` through a pipe in pieces of `piece` bytes, holding up to `hold` chunks
    /// before releasing them (as a slow writer would).
    fn pipe_digest(prefix: &[u8], data: &[u8], piece: usize, hold: usize) -> ([u8; 32], usize) {
        let mut hash = Context::new(&SHA256);
        hash.update(prefix);
        let mut pipe = HashPipe::start(hash, data.len() as u64).unwrap();
        let mut held = std::collections::VecDeque::new();
        for chunk in data.chunks(piece.min(pipe.buffer_len())) {
            let mut buf = pipe.buffer().unwrap();
            buf[..chunk.len()].copy_from_slice(chunk);
            let shared = pipe.hash(buf, chunk.len()).unwrap();
            assert_eq!(&shared[..chunk.len()], chunk, "the caller still reads what it gave");
            held.push_back(shared);
            while held.len() > hold {
                let done = held.pop_front().unwrap();
                pipe.release(done);
            }
        }
        for done in held {
            pipe.release(done);
        }
        let allocated = pipe.allocated();
        (pipe.finish().unwrap(), allocated)
    }

    #[test]
    fn digest_matches_one_shot_sha256_inline_and_threaded() {
        for len in [0, 1, 1000, PARALLEL_MIN as usize - 1, PARALLEL_MIN as usize, 3 * CHUNK + 17] {
            let bytes = data(len);
            let mut whole = b"header".to_vec();
            whole.extend_from_slice(&bytes);
            let expected = digest(&SHA256, &whole);
            for (piece, hold) in [(CHUNK, 0), (CHUNK, 3), (4093, 1), (65_536, 2)] {
                let (got, allocated) = pipe_digest(b"header", &bytes, piece, hold);
                assert_eq!(got.as_slice(), expected.as_ref(), "len {len} piece {piece} hold {hold}");
                assert!(allocated <= DEPTH, "len {len}: {allocated} buffers");
            }
        }
    }

    #[test]
    fn small_pieces_stay_in_order_between_chunks() {
        let bytes = data(2 * CHUNK + 5);
        let tail = b"protected tlvs";
        let mut pipe = HashPipe::start(Context::new(&SHA256), bytes.len() as u64).unwrap();
        for chunk in bytes.chunks(CHUNK) {
            let mut buf = pipe.buffer().unwrap();
            buf[..chunk.len()].copy_from_slice(chunk);
            let shared = pipe.hash(buf, chunk.len()).unwrap();
            pipe.release(shared);
            pipe.hash_bytes(b"|").unwrap();
        }
        pipe.hash_bytes(tail).unwrap();
        let mut expected = Vec::new();
        for chunk in bytes.chunks(CHUNK) {
            expected.extend_from_slice(chunk);
            expected.push(b'|');
        }
        expected.extend_from_slice(tail);
        assert_eq!(pipe.finish().unwrap().as_slice(), digest(&SHA256, &expected).as_ref());
    }

    #[test]
    fn dropping_a_pipe_mid_pass_stops_its_thread() {
        let mut pipe = HashPipe::start(Context::new(&SHA256), 8 * CHUNK as u64).unwrap();
        for _ in 0..DEPTH {
            let buf = pipe.buffer().unwrap();
            let shared = pipe.hash(buf, CHUNK).unwrap();
            drop(shared); // held by the hash thread only
        }
        drop(pipe); // joins; a hang here fails the test by timeout
    }
}
