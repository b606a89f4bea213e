//! ADD's remote sources: an HTTP GET of a URL.
//!
//! A small HTTP/1.1 client by hand: ADD needs one GET with redirects, and
//! the HTTP crates in the workspace are async (the builder runs on plain
//! threads). `https://` needs TLS and is refused with a clear error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("unsupported URL {0}: only http:// sources can be fetched")]
    Scheme(String),
    #[error("invalid URL {0}")]
    Url(String),
    #[error("cannot determine filename from url: {0}")]
    Name(String),
    #[error("fetch {url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("fetch {url}: server answered {status}")]
    Status { url: String, status: u16 },
    #[error("fetch {0}: too many redirects")]
    Redirects(String),
}

/// GET `url`: the file name ADD gives it and its content.
pub fn get(url: &str) -> Result<(String, Vec<u8>), FetchError> {
    let name = url.split(['?', '#']).next().unwrap_or("").rsplit('/').next().unwrap_or("").to_owned();
    if name.is_empty() || url.trim_end_matches('/').matches('/').count() < 3 {
        return Err(FetchError::Name(url.to_owned()));
    }
    let mut cur = url.to_owned();
    for _ in 0..10 {
        match get_once(&cur)? {
            Reply::Body(b) => return Ok((name, b)),
            Reply::Redirect(to) => {
                cur = if to.starts_with("http") { to } else { format!("{}{to}", origin(&cur)?) };
            }
        }
    }
    Err(FetchError::Redirects(url.to_owned()))
}

enum Reply {
    Body(Vec<u8>),
    Redirect(String),
}

fn origin(url: &str) -> Result<String, FetchError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| FetchError::Scheme(url.to_owned()))?;
    Ok(format!("http://{}", rest.split('/').next().unwrap_or("")))
}

fn get_once(url: &str) -> Result<Reply, FetchError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| FetchError::Scheme(url.to_owned()))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if hostport.is_empty() {
        return Err(FetchError::Url(url.to_owned()));
    }
    let addr = if hostport.contains(':') && !hostport.ends_with(']') { hostport.to_owned() } else { format!("{hostport}:80") };
    let io = |source| FetchError::Io { url: url.to_owned(), source };
    let mut s = TcpStream::connect(&addr).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(60))).map_err(io)?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: berth-build\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(io)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).map_err(io)?;
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| FetchError::Url(url.to_owned()))?;
    let mut len = None;
    let mut chunked = false;
    let mut location = None;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(io)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "location" => location = Some(v.to_owned()),
                _ => {}
            }
        }
    }
    if (300..400).contains(&status)
        && let Some(l) = location {
            return Ok(Reply::Redirect(l));
        }
    if status != 200 {
        return Err(FetchError::Status { url: url.to_owned(), status });
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).map_err(io)?;
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| FetchError::Url(url.to_owned()))?;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0u8; n];
            r.read_exact(&mut chunk).map_err(io)?;
            body.extend_from_slice(&chunk);
            line.clear();
            r.read_line(&mut line).map_err(io)?;
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(io)?;
    } else {
        r.read_to_end(&mut body).map_err(io)?;
    }
    Ok(Reply::Body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_from_a_local_server_with_redirect() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            for (i, s) in l.incoming().take(2).enumerate() {
                let mut s = s.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).unwrap();
                if i == 0 {
                    s.write_all(b"HTTP/1.1 302 Found\r\nLocation: /real/file.txt\r\nContent-Length: 0\r\n\r\n").unwrap();
                } else {
                    s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").unwrap();
                }
            }
        });
        let (name, body) = get(&format!("http://127.0.0.1:{port}/file.txt")).unwrap();
        t.join().unwrap();
        assert_eq!(name, "file.txt");
        assert_eq!(body, b"hello");
        assert!(matches!(get("https://127.0.0.1/x"), Err(FetchError::Scheme(_))));
        assert!(matches!(get("http://127.0.0.1:1/"), Err(FetchError::Name(_))));
    }
}
