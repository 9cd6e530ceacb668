//! Bytes that come as messages (a network session's, say), as a `Read` for [`PcmStream`].
//!
//! [`PcmStream`]: super::PcmStream

use std::io::Read;
use std::sync::mpsc::Receiver;

/// The bytes of the messages a channel brings, in order, as one stream; its end once every
/// sender is gone. A read blocks until a message comes: read it where blocking is allowed
/// (a live source's own thread).
#[derive(Debug)]
pub struct ChannelReader {
    messages: Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    /// Reads what `messages` brings.
    pub fn new(messages: Receiver<Vec<u8>>) -> ChannelReader {
        ChannelReader {
            messages,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.messages.recv() {
                Ok(next) => {
                    self.current = next;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_one_stream_then_end() {
        let (tx, rx) = std::sync::mpsc::channel();
        for message in [vec![1u8, 2, 3], Vec::new(), vec![4, 5]] {
            tx.send(message).unwrap_or_else(|_| unreachable!());
        }
        drop(tx);
        let mut bytes = Vec::new();
        let mut reader = ChannelReader::new(rx);
        let mut buf = [0u8; 2];
        loop {
            let n = reader.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        assert_eq!(bytes, [1, 2, 3, 4, 5]);
    }
}
