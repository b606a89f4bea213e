//! docker's `json-file` format, byte for byte (moby
//! `daemon/logger/jsonfilelog/jsonlog/jsonlogbytes.go`): one object per
//! line, keys in the order `log`, `stream`, `attrs`, `time`;
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.123456789Z"}
//! ```
//!
//! `log` is the line with its newline (none for a partial message), escaped
//! as Go's encoder does with HTML escaping (`<`, `>`, `&` as `\u003c`...),
//! invalid UTF-8 as `\ufffd`, U+2028/2029 escaped; `time` is Go's
//! RFC3339Nano in UTC (fraction without trailing zeros).

use std::collections::BTreeMap;

use super::copier::Message;
use super::rotate::RotatingFile;
use super::{LogConfig, LogEntry, LogError, Stream};
use crate::timefmt;

/// Appends `s` as a JSON string, escaped as docker's json-file writer does.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            if b >= 0x20 && b != b'\\' && b != b'"' && b != b'<' && b != b'>' && b != b'&' {
                i += 1;
                continue;
            }
            out.extend_from_slice(&s[start..i]);
            match b {
                b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]),
            }
            i += 1;
            start = i;
            continue;
        }
        match decode_utf8(&s[i..]) {
            None => {
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                start = i;
            }
            Some((c, size)) => {
                if c == '\u{2028}' || c == '\u{2029}' {
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(b"\\u202");
                    out.push(HEX[(c as u32 & 0xf) as usize]);
                    start = i + size;
                }
                i += size;
            }
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// The first UTF-8 character of `s` and its length, as Go's
/// `utf8.DecodeRune` accepts it (None where Go returns RuneError, 1).
fn decode_utf8(s: &[u8]) -> Option<(char, usize)> {
    let len = match s[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let chunk = s.get(..len)?;
    let c = std::str::from_utf8(chunk).ok()?.chars().next()?;
    Some((c, len))
}

/// `attrs` as json-file writes them: Go's `json.Marshal` of a map (keys
/// sorted, HTML-escaped strings).
pub fn encode_attrs(attrs: &BTreeMap<String, String>) -> Option<Vec<u8>> {
    if attrs.is_empty() {
        return None;
    }
    let mut out = vec![b'{'];
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(&mut out, k.as_bytes());
        out.push(b':');
        write_string(&mut out, v.as_bytes());
    }
    out.push(b'}');
    Some(out)
}

/// Appends one json-file line for `msg`.
pub fn encode(out: &mut Vec<u8>, msg: &Message<'_>, attrs: Option<&[u8]>) {
    out.push(b'{');
    if !msg.line.is_empty() || !msg.partial {
        out.extend_from_slice(b"\"log\":");
        if msg.partial {
            write_string(out, msg.line);
        } else {
            // The line and its newline, without copying the line.
            write_string(out, msg.line);
            out.pop();
            out.extend_from_slice(b"\\n\"");
        }
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":\"");
    out.extend_from_slice(msg.stream.as_str().as_bytes());
    out.extend_from_slice(b"\",");
    if let Some(a) = attrs {
        out.extend_from_slice(b"\"attrs\":");
        out.extend_from_slice(a);
        out.push(b',');
    }
    out.extend_from_slice(b"\"time\":\"");
    out.extend_from_slice(timefmt::rfc3339_nano(msg.time).as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// The json-file driver.
pub struct Writer {
    file: RotatingFile,
    attrs: Option<Vec<u8>>,
    buf: Vec<u8>,
}

impl Writer {
    pub fn open(config: &LogConfig) -> Result<Writer, LogError> {
        Ok(Writer {
            file: RotatingFile::open(&config.path, config.max_size, config.max_file)?,
            attrs: encode_attrs(&config.attrs),
            buf: Vec::new(),
        })
    }

    pub fn log(&mut self, msg: &Message<'_>) -> Result<(), LogError> {
        self.buf.clear();
        encode(&mut self.buf, msg, self.attrs.as_deref());
        let r = self.file.write_entry(&self.buf);
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        r
    }
}

#[derive(serde::Deserialize)]
struct Line {
    #[serde(default)]
    log: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    attrs: BTreeMap<String, String>,
    time: String,
}

/// Decodes one line of a json-file log (without its newline). None: not a
/// log line.
pub fn decode(line: &[u8]) -> Option<LogEntry> {
    let l: Line = serde_json::from_slice(line).ok()?;
    let time = timefmt::parse_rfc3339(&l.time)?;
    let stream = Stream::from_name(&l.stream).unwrap_or(Stream::Stdout);
    let line = l.log.into_bytes();
    let partial = !line.ends_with(b"\n");
    Some(LogEntry { stream, time, line, partial, attrs: l.attrs.into_iter().collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &[u8], stream: Stream, time: i64, partial: bool, attrs: Option<&[u8]>) -> String {
        let mut out = Vec::new();
        encode(&mut out, &Message { stream, line: text, time, partial }, attrs);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dockers_exact_bytes() {
        assert_eq!(
            line(b"hello", Stream::Stdout, 1_704_067_200_123_456_789, false, None),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00.123456789Z\"}\n"
        );
        assert_eq!(
            line(b"", Stream::Stderr, 1_704_067_200_000_000_000, false, None),
            "{\"log\":\"\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-01T00:00:00Z\"}\n"
        );
        // A partial message: no newline.
        assert_eq!(
            line(b"abc", Stream::Stdout, 1_704_067_200_500_000_000, true, None),
            "{\"log\":\"abc\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00.5Z\"}\n"
        );
        let mut attrs = BTreeMap::new();
        attrs.insert("tag".to_owned(), "a<b".to_owned());
        attrs.insert("app".to_owned(), "x".to_owned());
        let a = encode_attrs(&attrs).unwrap();
        assert_eq!(
            line(b"x", Stream::Stdout, 0, false, Some(&a)),
            "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"attrs\":{\"app\":\"x\",\"tag\":\"a\\u003cb\"},\"time\":\"1970-01-01T00:00:00Z\"}\n"
        );
    }

    #[test]
    fn escaping_matches_go() {
        let mut out = Vec::new();
        write_string(&mut out, "tab\t cr\r \"q\" \\ <a&b> \u{1b}[0m é \u{2028} ✓".as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"tab\\u0009 cr\\r \\\"q\\\" \\\\ \\u003ca\\u0026b\\u003e \\u001b[0m é \\u2028 ✓\""
        );
        let mut out = Vec::new();
        write_string(&mut out, b"bad \xff\xfe \xe2\x82 end \xf0\x9f\x98\x80");
        assert_eq!(String::from_utf8(out).unwrap(), "\"bad \\ufffd\\ufffd \\ufffd\\ufffd end 😀\"");
    }

    #[test]
    fn decode_reads_what_encode_wrote() {
        let text = line(b"hi \"there\"", Stream::Stderr, 1_704_067_200_123_000_000, false, None);
        let e = decode(text.trim_end().as_bytes()).unwrap();
        assert_eq!((e.stream, e.time, e.line.as_slice(), e.partial), (Stream::Stderr, 1_704_067_200_123_000_000, &b"hi \"there\"\n"[..], false));
        assert!(decode(b"not json").is_none());
    }
}
