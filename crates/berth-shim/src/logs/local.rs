//! berth's `local` log format: compact binary records, readable forwards
//! and backwards (for `tail`) without an index.
//!
//! ```text
//! record  = len:u32be payload len:u32be         (len = payload length)
//! payload = version:u8 (=1)
//!           stream:u8 (1 stdout, 2 stderr)
//!           flags:u8  (bit 0: partial, no newline followed)
//!           time:i64be (nanoseconds since the epoch)
//!           line bytes (without the newline)
//! ```
//!
//! A line costs 19 bytes of framing against about 60 for json-file, and
//! nothing is escaped. Rotation is json-file's (docker's `local` driver
//! defaults: 20 MB, 5 files; berth does not compress rotated files).

use super::copier::Message;
use super::rotate::RotatingFile;
use super::{LogConfig, LogEntry, LogError, Stream};

pub const VERSION: u8 = 1;
/// Framing bytes around a line.
pub const OVERHEAD: usize = 4 + HEADER + 4;
const HEADER: usize = 1 + 1 + 1 + 8;
/// Longest payload a reader accepts (a corrupt length is not followed).
pub const MAX_PAYLOAD: usize = 1 << 20;

pub fn encode(out: &mut Vec<u8>, msg: &Message<'_>) {
    let len = ((HEADER + msg.line.len()) as u32).to_be_bytes();
    out.extend_from_slice(&len);
    out.push(VERSION);
    out.push(msg.stream as u8);
    out.push(u8::from(msg.partial));
    out.extend_from_slice(&msg.time.to_be_bytes());
    out.extend_from_slice(msg.line);
    out.extend_from_slice(&len);
}

/// Result of decoding at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An entry, and the bytes it took.
    Entry(LogEntry, usize),
    /// More bytes are needed.
    Incomplete,
    /// Not a record: skip this many bytes.
    Corrupt(usize),
}

pub fn decode(buf: &[u8]) -> Decoded {
    if buf.len() < 4 {
        return Decoded::Incomplete;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(HEADER..=MAX_PAYLOAD).contains(&len) {
        return Decoded::Corrupt(1);
    }
    let total = 4 + len + 4;
    if buf.len() < total {
        return Decoded::Incomplete;
    }
    let p = &buf[4..4 + len];
    let trailer = u32::from_be_bytes([buf[4 + len], buf[5 + len], buf[6 + len], buf[7 + len]]) as usize;
    let stream = match p[1] {
        1 => Stream::Stdout,
        2 => Stream::Stderr,
        _ => return Decoded::Corrupt(1),
    };
    if trailer != len || p[0] != VERSION {
        return Decoded::Corrupt(1);
    }
    let partial = p[2] & 1 != 0;
    let time = i64::from_be_bytes(p[3..11].try_into().expect("8 bytes"));
    let mut line = Vec::with_capacity(len - HEADER + 1);
    line.extend_from_slice(&p[HEADER..]);
    if !partial {
        line.push(b'\n');
    }
    Decoded::Entry(LogEntry { stream, time, line, partial, attrs: Vec::new() }, total)
}

/// The payload length a record ending at `end` declares in its trailer.
pub fn trailer_len(tail: &[u8; 4]) -> usize {
    u32::from_be_bytes(*tail) as usize
}

/// The local driver.
pub struct Writer {
    file: RotatingFile,
    buf: Vec<u8>,
}

impl Writer {
    pub fn open(config: &LogConfig) -> Result<Writer, LogError> {
        Ok(Writer { file: RotatingFile::open(&config.path, config.max_size, config.max_file)?, buf: Vec::new() })
    }

    pub fn log(&mut self, msg: &Message<'_>) -> Result<(), LogError> {
        self.buf.clear();
        encode(&mut self.buf, msg);
        let r = self.file.write_entry(&self.buf);
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_and_round_trip() {
        let mut out = Vec::new();
        encode(&mut out, &Message { stream: Stream::Stderr, line: b"hi", time: 0x0102030405060708, partial: false });
        assert_eq!(out, [&[0, 0, 0, 13, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8][..], b"hi", &[0, 0, 0, 13]].concat());
        assert_eq!(out.len(), OVERHEAD + 2);
        encode(&mut out, &Message { stream: Stream::Stdout, line: b"part", time: 5, partial: true });
        let Decoded::Entry(e, n) = decode(&out) else { panic!() };
        assert_eq!((e.stream, e.time, e.line.as_slice(), e.partial, n), (Stream::Stderr, 0x0102030405060708, &b"hi\n"[..], false, 21));
        let Decoded::Entry(e, _) = decode(&out[n..]) else { panic!() };
        assert_eq!((e.line.as_slice(), e.partial), (&b"part"[..], true));
        assert_eq!(decode(&out[n..n + 10]), Decoded::Incomplete);
        assert_eq!(decode(&[0, 0, 0, 1, 0, 0]), Decoded::Corrupt(1));
    }
}
