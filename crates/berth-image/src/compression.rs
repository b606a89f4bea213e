//! Layer and archive compression: detected from the first bytes, as docker
//! does, so a caller never has to say what it hands in.

use std::io::{self, BufRead, BufReader, Read, Write};

/// Read buffer for archives and layers: large, so that a stream moves in few
/// system calls.
pub const BUF_SIZE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    /// Detect from the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// Wrap `r` in the decompressor its first bytes call for. Returns the
/// detected compression too. bzip2 is refused (docker reads it, no image in
/// use carries it).
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut br = BufReader::with_capacity(BUF_SIZE, r);
    let head = br.fill_buf()?;
    let c = Compression::detect(head);
    let out: Box<dyn Read + 'a> = match c {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(br)),
        Compression::Bzip2 => {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "bzip2 compression is not supported"));
        }
    };
    Ok((c, out))
}

/// A writer compressing with `c` (None passes through).
pub fn compress<'a, W: Write + 'a>(w: W, c: Compression) -> io::Result<Box<dyn FinishWrite + 'a>> {
    Ok(match c {
        Compression::None => Box::new(Plain(w)),
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(w, flate2::Compression::fast())),
        Compression::Zstd => Box::new(zstd::stream::write::Encoder::new(w, 3)?),
        Compression::Xz => Box::new(liblzma::write::XzEncoder::new(w, 6)),
        Compression::Bzip2 => return Err(io::Error::new(io::ErrorKind::Unsupported, "bzip2 compression is not supported")),
    })
}

/// A writer with an explicit end (compressors write their trailer there).
pub trait FinishWrite: Write {
    fn finish_write(self: Box<Self>) -> io::Result<()>;
}

struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite for Plain<W> {
    fn finish_write(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite for flate2::write::GzEncoder<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        self.finish().map(|_| ())
    }
}

impl<W: Write> FinishWrite for zstd::stream::write::Encoder<'_, W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        self.finish().map(|_| ())
    }
}

impl<W: Write> FinishWrite for liblzma::write::XzEncoder<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        self.finish().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_supported_compression() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd, Compression::Xz] {
            let mut out = Vec::new();
            let mut w = compress(&mut out, c).unwrap();
            w.write_all(&data).unwrap();
            w.finish_write().unwrap();
            let (got_c, mut r) = decompress(&out[..]).unwrap();
            assert_eq!(got_c, c);
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{c:?}");
        }
        assert!(decompress(&b"BZh91AY"[..]).is_err());
    }
}
