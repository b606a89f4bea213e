//! The syslog driver, with docker's message formats (moby
//! `daemon/logger/syslog`, srslog): priority = facility | severity (info
//! for stdout, err for stderr), one message per line, empty lines skipped,
//! each message ending in a newline.
//!
//! - default (no `syslog-format`): `<30>Jan  2 15:04:05 tag[pid]: line`
//! - `rfc3164`: `<30>Jan  2 15:04:05 host tag[pid]: line`
//! - `rfc5424`: `<30>1 2006-01-02T15:04:05+01:00 host tag pid tag - line`
//! - `rfc5424micro`: the same with microseconds.
//!
//! Addresses: the local syslog (`/dev/log`, datagram then stream, as
//! srslog tries them), `unix://`, `unixgram://`, `udp://host[:514]`.
//! `pid` is the shim's, the process that writes the log.

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::copier::Message;
use super::{LogError, Stream, SyslogConfig};
use crate::timefmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `/dev/log` and the other usual paths.
    Local,
    Unix(PathBuf),
    UnixGram(PathBuf),
    Udp(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Unix,
    Rfc3164,
    Rfc5424,
    Rfc5424Micro,
}

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub address: Address,
    /// The facility, already shifted (`daemon` = 3 << 3).
    pub facility: u8,
    pub format: Format,
    pub tag: String,
}

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "", "", "",
    "", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

fn invalid(option: &'static str, message: String) -> LogError {
    LogError::Invalid { option, message }
}

impl Settings {
    pub fn parse(c: &SyslogConfig) -> Result<Settings, LogError> {
        let address = match c.address.as_deref() {
            None | Some("") => Address::Local,
            Some(a) => {
                if let Some(p) = a.strip_prefix("unix://") {
                    Address::Unix(p.into())
                } else if let Some(p) = a.strip_prefix("unixgram://") {
                    Address::UnixGram(p.into())
                } else if let Some(h) = a.strip_prefix("udp://") {
                    let h = h.trim_end_matches('/');
                    if h.is_empty() {
                        return Err(invalid("syslog-address", format!("no host in {a:?}")));
                    }
                    let has_port = h.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !h.ends_with(']');
                    Address::Udp(if has_port { h.to_owned() } else { format!("{h}:514") })
                } else if a.starts_with("tcp://") || a.starts_with("tcp+tls://") {
                    return Err(invalid("syslog-address", format!("{a}: tcp syslog is not supported by berth yet")));
                } else {
                    let scheme = a.split("://").next().unwrap_or(a);
                    return Err(invalid("syslog-address", format!("unsupported scheme: '{scheme}'")));
                }
            }
        };
        let facility = match c.facility.as_deref() {
            None | Some("") => 3 << 3,
            Some(f) => match FACILITIES.iter().position(|n| !n.is_empty() && *n == f) {
                Some(i) => (i as u8) << 3,
                None => match f.parse::<u8>() {
                    Ok(n) if n <= 23 => n << 3,
                    _ => return Err(invalid("syslog-facility", "invalid syslog facility".into())),
                },
            },
        };
        let format = match c.format.as_deref() {
            None | Some("") => Format::Unix,
            Some("rfc3164") => Format::Rfc3164,
            Some("rfc5424") => Format::Rfc5424,
            Some("rfc5424micro") => Format::Rfc5424Micro,
            Some(_) => return Err(invalid("syslog-format", "Invalid syslog format".into())),
        };
        Ok(Settings { address, facility, format, tag: c.tag.clone() })
    }

    /// One message as it goes on the wire.
    pub fn format_message(&self, msg: &Message<'_>, hostname: &str, pid: u32) -> Vec<u8> {
        let severity = match msg.stream {
            Stream::Stdout => 6,
            Stream::Stderr => 3,
        };
        let pri = self.facility | severity;
        let tag = &self.tag;
        let head = match self.format {
            Format::Unix => format!("<{pri}>{} {tag}[{pid}]: ", timefmt::stamp_local(msg.time)),
            Format::Rfc3164 => format!("<{pri}>{} {hostname} {tag}[{pid}]: ", timefmt::stamp_local(msg.time)),
            Format::Rfc5424 => {
                format!("<{pri}>1 {} {hostname} {tag} {pid} {tag} - ", timefmt::rfc3339_local(msg.time, false))
            }
            Format::Rfc5424Micro => {
                format!("<{pri}>1 {} {hostname} {tag} {pid} {tag} - ", timefmt::rfc3339_local(msg.time, true))
            }
        };
        let mut out = head.into_bytes();
        out.extend_from_slice(msg.line);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out
    }
}

enum Conn {
    Gram(UnixDatagram),
    Stream(UnixStream),
    Udp(UdpSocket),
}

const LOCAL_PATHS: [&str; 3] = ["/dev/log", "/var/run/syslog", "/var/run/log"];
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

fn connect(address: &Address) -> std::io::Result<Conn> {
    let gram = |p: &Path| -> std::io::Result<Conn> {
        let s = UnixDatagram::unbound()?;
        s.connect(p)?;
        s.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Conn::Gram(s))
    };
    let stream = |p: &Path| -> std::io::Result<Conn> {
        let s = UnixStream::connect(p)?;
        s.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Conn::Stream(s))
    };
    match address {
        Address::Local => {
            let mut last = std::io::Error::from(std::io::ErrorKind::NotFound);
            for f in [gram, stream] {
                for p in LOCAL_PATHS {
                    match f(Path::new(p)) {
                        Ok(c) => return Ok(c),
                        Err(e) => last = e,
                    }
                }
            }
            Err(last)
        }
        Address::Unix(p) => stream(p),
        Address::UnixGram(p) => gram(p),
        Address::Udp(a) => {
            let s = UdpSocket::bind(if a.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" })?;
            s.connect(a.as_str())?;
            Ok(Conn::Udp(s))
        }
    }
}

fn address_text(a: &Address) -> String {
    match a {
        Address::Local => "/dev/log".into(),
        Address::Unix(p) => format!("unix://{}", p.display()),
        Address::UnixGram(p) => format!("unixgram://{}", p.display()),
        Address::Udp(h) => format!("udp://{h}"),
    }
}

pub struct Writer {
    settings: Settings,
    conn: Option<Conn>,
    hostname: String,
    pid: u32,
}

impl Writer {
    /// Connects now, as docker does when the container starts: a missing
    /// syslog fails the start.
    pub fn open(c: &SyslogConfig) -> Result<Writer, LogError> {
        let settings = Settings::parse(c)?;
        let conn = connect(&settings.address)
            .map_err(|source| LogError::Syslog { address: address_text(&settings.address), source })?;
        let hostname = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into());
        Ok(Writer { settings, conn: Some(conn), hostname, pid: std::process::id() })
    }

    pub fn log(&mut self, msg: &Message<'_>) -> Result<(), LogError> {
        if msg.line.is_empty() {
            return Ok(());
        }
        let data = self.settings.format_message(msg, &self.hostname, self.pid);
        // As srslog: on failure, reconnect once and retry.
        let mut last = None;
        for _ in 0..2 {
            if self.conn.is_none() {
                match connect(&self.settings.address) {
                    Ok(c) => self.conn = Some(c),
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                }
            }
            let r = match self.conn.as_mut().expect("connected") {
                Conn::Gram(s) => s.send(&data).map(drop),
                Conn::Stream(s) => s.write_all(&data),
                Conn::Udp(s) => s.send(&data).map(drop),
            };
            match r {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.conn = None;
                    last = Some(e);
                }
            }
        }
        Err(LogError::Syslog {
            address: address_text(&self.settings.address),
            source: last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(address: Option<&str>, facility: Option<&str>, format: Option<&str>) -> SyslogConfig {
        SyslogConfig {
            address: address.map(Into::into),
            facility: facility.map(Into::into),
            format: format.map(Into::into),
            tag: "0123456789ab".into(),
        }
    }

    #[test]
    fn options_parse_as_dockers() {
        let s = Settings::parse(&cfg(None, None, None)).unwrap();
        assert_eq!((s.address, s.facility, s.format), (Address::Local, 24, Format::Unix));
        let s = Settings::parse(&cfg(Some("udp://10.0.0.1"), Some("local7"), Some("rfc5424"))).unwrap();
        assert_eq!((s.address, s.facility, s.format), (Address::Udp("10.0.0.1:514".into()), 23 << 3, Format::Rfc5424));
        assert_eq!(Settings::parse(&cfg(Some("udp://h:600"), Some("5"), None)).unwrap().address, Address::Udp("h:600".into()));
        for bad in [cfg(Some("ftp://x"), None, None), cfg(None, Some("nope"), None), cfg(None, Some("24"), None), cfg(None, None, Some("x"))] {
            assert!(Settings::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_formats() {
        let msg = Message { stream: Stream::Stderr, line: b"boom", time: 1_704_067_200_000_000_000, partial: false };
        let s = Settings::parse(&cfg(None, None, None)).unwrap();
        let m = String::from_utf8(s.format_message(&msg, "host", 42)).unwrap();
        let stamp = timefmt::stamp_local(msg.time);
        assert_eq!(m, format!("<27>{stamp} 0123456789ab[42]: boom\n"));
        let s = Settings::parse(&cfg(None, Some("user"), Some("rfc3164"))).unwrap();
        let m = String::from_utf8(s.format_message(&Message { stream: Stream::Stdout, ..msg }, "host", 42)).unwrap();
        assert_eq!(m, format!("<14>{stamp} host 0123456789ab[42]: boom\n"));
        let s = Settings::parse(&cfg(None, None, Some("rfc5424micro"))).unwrap();
        let m = String::from_utf8(s.format_message(&msg, "host", 42)).unwrap();
        let ts = timefmt::rfc3339_local(msg.time, true);
        assert_eq!(m, format!("<27>1 {ts} host 0123456789ab 42 0123456789ab - boom\n"));
    }

    #[test]
    fn writes_datagrams_and_skips_empty_lines() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&sock).unwrap();
        let mut w = Writer::open(&cfg(Some(&format!("unixgram://{}", sock.display())), None, None)).unwrap();
        for line in [&b"one"[..], b"", b"two"] {
            w.log(&Message { stream: Stream::Stdout, line, time: 0, partial: false }).unwrap();
        }
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(first.starts_with("<30>") && first.ends_with(": one\n"), "{first}");
        let n = server.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with(": two\n"));
        assert!(Writer::open(&cfg(Some("unixgram:///nonexistent/sock"), None, None)).is_err());
    }
}
