//! One TCP connection carrying HTTP: in plaintext until pair-verify completes, then in HAP session
//! frames (ironclad-pair's [`Session`]) in both directions. The HTTP parser always works on the
//! plaintext buffer this keeps.

use ironclad_pair::session::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct Channel {
    stream: TcpStream,
    /// Received plaintext not yet parsed.
    buffer: Vec<u8>,
    session: Option<Session>,
    scratch: Vec<u8>,
}

impl Channel {
    pub(crate) fn new(stream: TcpStream) -> Self {
        // HAP traffic is small request/response pairs: do not wait to coalesce.
        let _ = stream.set_nodelay(true);
        Channel { stream, buffer: Vec::new(), session: None, scratch: vec![0; READ_CHUNK] }
    }

    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    pub(crate) fn is_encrypted(&self) -> bool {
        self.session.is_some()
    }

    /// Reads what the socket has (decrypting it once the session is on) into the buffer.
    /// `Ok(false)` at end of stream. Cancel-safe: bytes are only consumed when the read completes.
    pub(crate) async fn fill(&mut self) -> Result<bool> {
        let n = self.stream.read(&mut self.scratch).await?;
        if n == 0 {
            return Ok(false);
        }
        match &mut self.session {
            None => self.buffer.extend_from_slice(&self.scratch[..n]),
            Some(session) => {
                let plain = session.decrypt(&self.scratch[..n])?;
                self.buffer.extend_from_slice(&plain);
            }
        }
        Ok(true)
    }

    /// Fills until `parse` yields a message; `Error::Closed` if the peer closes first.
    pub(crate) async fn read_with<T>(
        &mut self,
        mut parse: impl FnMut(&mut Vec<u8>) -> Result<Option<T>>,
    ) -> Result<T> {
        loop {
            if let Some(message) = parse(&mut self.buffer)? {
                return Ok(message);
            }
            if !self.fill().await? {
                return Err(Error::Closed);
            }
        }
    }

    /// Sends plaintext, framed and encrypted once the session is on.
    pub(crate) async fn send(&mut self, plain: &[u8]) -> Result<()> {
        match &mut self.session {
            None => self.stream.write_all(plain).await?,
            Some(session) => {
                let frames = session.encrypt(plain)?;
                self.stream.write_all(&frames).await?;
            }
        }
        Ok(())
    }

    /// Switches both directions to session frames. Bytes that arrived after the last plaintext
    /// message are already frames, so they are decrypted now.
    pub(crate) fn start_session(&mut self, mut session: Session) -> Result<()> {
        let early = std::mem::take(&mut self.buffer);
        self.buffer = session.decrypt(&early)?;
        self.session = Some(session);
        Ok(())
    }

    pub(crate) async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
