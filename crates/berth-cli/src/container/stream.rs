//! The hijacked attach/exec connection: output copied raw (tty) or
//! demultiplexed (no tty), stdin forwarded and the write side closed at its
//! end, the detach keys watched when the local terminal is raw.

use std::io::Write;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::tty::{EscapeProxy, RawMode, Scan};
use crate::client::{BadHeader, Demux, Frame};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("error reading from the container: {0}")]
    Read(#[source] std::io::Error),
    #[error("error writing to the container: {0}")]
    Write(#[source] std::io::Error),
    #[error(transparent)]
    Header(#[from] BadHeader),
    #[error("{0}")]
    System(String),
}

/// How a stream session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The container's output ended (it exited, or closed its streams).
    Output,
    /// Stdin ended and no output was attached.
    Input,
    /// The user typed the detach keys.
    Detached,
}

pub struct Session {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: Vec<u8>,
}

fn write_all(w: &mut dyn Write, data: &[u8]) {
    // A closed stdout (`| head`) is not the container's problem: keep
    // draining so the container is not blocked.
    let _ = w.write_all(data);
    let _ = w.flush();
}

impl Session {
    /// Run the streams to their end over a hijacked connection.
    pub async fn run<R, W>(&self, mut reader: R, mut writer: W) -> Result<Ended, StreamError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let raw = if self.stdin && self.tty && super::tty::stdin_is_tty() { RawMode::enter() } else { None };
        let watch_keys = raw.is_some();
        let output = self.stdout || self.stderr;

        let out_fut = async {
            let mut buf = vec![0u8; 32 * 1024];
            let mut demux = Demux::default();
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            loop {
                let n = reader.read(&mut buf).await.map_err(StreamError::Read)?;
                if n == 0 {
                    return Ok::<(), StreamError>(());
                }
                if self.tty {
                    write_all(&mut stdout.lock(), &buf[..n]);
                    continue;
                }
                demux.push(&buf[..n]);
                while let Some(f) = demux.next_frame()? {
                    match f {
                        Frame::Stdout(d) => write_all(&mut stdout.lock(), &d),
                        Frame::Stderr(d) => write_all(&mut stderr.lock(), &d),
                        Frame::SystemErr(m) => return Err(StreamError::System(m)),
                    }
                }
            }
        };

        let in_fut = async {
            if self.stdin {
                let mut stdin = tokio::io::stdin();
                let mut proxy = EscapeProxy::new(if watch_keys { self.detach_keys.clone() } else { Vec::new() });
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match stdin.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    match proxy.scan(&buf[..n]) {
                        Scan::Forward(d) => {
                            if writer.write_all(&d).await.is_err() {
                                break;
                            }
                        }
                        Scan::Detach(d) => {
                            let _ = writer.write_all(&d).await;
                            return Ended::Detached;
                        }
                    }
                }
            }
            // Close-write: the container sees the end of its stdin.
            let _ = writer.shutdown().await;
            Ended::Input
        };

        tokio::pin!(out_fut);
        tokio::pin!(in_fut);
        let ended = if output {
            tokio::select! {
                r = &mut out_fut => { r?; Ended::Output }
                e = &mut in_fut => match e {
                    Ended::Detached => Ended::Detached,
                    _ => { out_fut.await?; Ended::Output }
                },
            }
        } else {
            in_fut.await
        };
        drop(raw);
        Ok(ended)
    }
}
