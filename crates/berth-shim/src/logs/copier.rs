//! Output bytes to log messages, as docker's log copier cuts them
//! (moby `daemon/logger/copier.go`):
//!
//! - each line ending in `\n` is one message (without the `\n`), stamped
//!   when it is read;
//! - when 16 KiB have gathered without a newline, they go out as a *partial*
//!   message; the following pieces of that line carry the first piece's
//!   time, and the piece that ends the line is the last of the group;
//! - at end of output, bytes without a final newline go out as a partial
//!   message too.
//!
//! json-file writes the newline back for every message but a partial one.

use crate::protocol::Stream;

/// One message for a log driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub stream: Stream,
    /// The bytes, without the newline that ended the line.
    pub line: &'a [u8],
    /// Nanoseconds since the epoch.
    pub time: i64,
    /// No newline follows: the line goes on in the next message (or the
    /// output ended without one).
    pub partial: bool,
}

/// docker's copier buffer: the longest message.
pub const BUF_SIZE: usize = 16 * 1024;

/// Cuts one stream into messages.
#[derive(Debug)]
pub struct LineSplitter {
    stream: Stream,
    buf: Vec<u8>,
    /// The first piece's time while a long line is being cut.
    partial_time: Option<i64>,
}

impl LineSplitter {
    pub fn new(stream: Stream) -> LineSplitter {
        LineSplitter { stream, buf: Vec::with_capacity(0), partial_time: None }
    }

    /// Feeds output; `emit` gets every message completed by it.
    pub fn feed(&mut self, mut data: &[u8], now: &mut dyn FnMut() -> i64, emit: &mut dyn FnMut(&Message<'_>)) {
        while !data.is_empty() {
            let take = (BUF_SIZE - self.buf.len()).min(data.len());
            if self.buf.is_empty() {
                // Fast path: complete lines straight from `data`.
                let (consumed, rest_from) = self.lines(&data[..take], now, emit);
                if consumed == 0 && take == BUF_SIZE {
                    self.partial(&data[..take], now, emit);
                } else {
                    self.buf.extend_from_slice(&data[rest_from..take]);
                }
            } else {
                self.buf.extend_from_slice(&data[..take]);
                let buf = std::mem::take(&mut self.buf);
                let (_, rest_from) = self.lines(&buf, now, emit);
                if rest_from == 0 && buf.len() == BUF_SIZE {
                    self.partial(&buf, now, emit);
                    self.buf = buf;
                    self.buf.clear();
                } else {
                    self.buf = buf;
                    self.buf.drain(..rest_from);
                }
            }
            data = &data[take..];
        }
        if self.buf.capacity() > BUF_SIZE && self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    /// End of output: what is left goes out as a partial message.
    pub fn finish(&mut self, now: &mut dyn FnMut() -> i64, emit: &mut dyn FnMut(&Message<'_>)) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.partial(&buf, now, emit);
        }
        self.partial_time = None;
    }

    /// Emits the complete lines of `data`; returns (lines emitted, offset of
    /// the first byte not emitted).
    fn lines(&mut self, data: &[u8], now: &mut dyn FnMut() -> i64, emit: &mut dyn FnMut(&Message<'_>)) -> (usize, usize) {
        let mut p = 0;
        let mut count = 0;
        while let Some(q) = data[p..].iter().position(|&b| b == b'\n') {
            let time = match self.partial_time.take() {
                Some(t) => t,
                None => now(),
            };
            emit(&Message { stream: self.stream, line: &data[p..p + q], time, partial: false });
            p += q + 1;
            count += 1;
        }
        (count, p)
    }

    fn partial(&mut self, data: &[u8], now: &mut dyn FnMut() -> i64, emit: &mut dyn FnMut(&Message<'_>)) {
        let time = *self.partial_time.get_or_insert_with(&mut *now);
        emit(&Message { stream: self.stream, line: data, time, partial: true });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], finish: bool) -> Vec<(Vec<u8>, i64, bool)> {
        let mut s = LineSplitter::new(Stream::Stdout);
        let mut clock = 0;
        let mut now = || {
            clock += 1;
            clock
        };
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut now, &mut |m| out.push((m.line.to_vec(), m.time, m.partial)));
        }
        if finish {
            s.finish(&mut now, &mut |m| out.push((m.line.to_vec(), m.time, m.partial)));
        }
        out
    }

    #[test]
    fn lines_across_reads() {
        let out = run(&[b"hel", b"lo\nwor", b"ld\n\nx"], false);
        assert_eq!(out, vec![(b"hello".to_vec(), 1, false), (b"world".to_vec(), 2, false), (b"".to_vec(), 3, false)]);
        let out = run(&[b"a\nb"], true);
        assert_eq!(out, vec![(b"a".to_vec(), 1, false), (b"b".to_vec(), 2, true)]);
    }

    #[test]
    fn long_lines_become_partials_sharing_the_first_time() {
        let long = vec![b'x'; BUF_SIZE * 2 + 10];
        let mut data = long.clone();
        data.extend_from_slice(b"\nnext\n");
        // In odd-sized reads, as a pipe may deliver them.
        let chunks: Vec<&[u8]> = data.chunks(3000).collect();
        let out = run(&chunks, false);
        assert_eq!(out.len(), 4);
        assert_eq!((out[0].0.len(), out[0].1, out[0].2), (BUF_SIZE, 1, true));
        assert_eq!((out[1].0.len(), out[1].1, out[1].2), (BUF_SIZE, 1, true));
        assert_eq!((out[2].0.len(), out[2].1, out[2].2), (10, 1, false));
        assert_eq!(out[3], (b"next".to_vec(), 2, false));
        // One big read gives the same messages.
        assert_eq!(run(&[&data], false), out);
    }

    #[test]
    fn a_line_of_exactly_the_buffer_size_is_not_cut() {
        let mut data = vec![b'y'; BUF_SIZE - 1];
        data.push(b'\n');
        let out = run(&[&data], false);
        assert_eq!(out.len(), 1);
        assert!(!out[0].2);
    }
}
