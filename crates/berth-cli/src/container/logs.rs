//! logs: the log stream, raw for a tty container, demultiplexed otherwise.

use std::io::Write;

use super::{ContainerError, LogsArgs};
use crate::app::Ctx;
use crate::client::{Demux, Frame, percent_encode, query};
use crate::timefmt;

pub async fn logs(ctx: &Ctx, a: &LogsArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let info = c.docker.inspect_container(&a.container, None::<bollard::query_parameters::InspectContainerOptions>).await.map_err(|e| c.err(e))?;
    let id = info.id.clone().unwrap_or_else(|| a.container.clone());
    let tty = info.config.as_ref().and_then(|c| c.tty) == Some(true);
    let mut q = vec![("stdout", "1".to_owned()), ("stderr", "1".to_owned())];
    if let Some(s) = a.since.as_deref().filter(|s| !s.is_empty()) {
        q.push(("since", timefmt::api_timestamp(s).map_err(|e| ContainerError::Io { what: "parse --since".into(), reason: e.to_string() })?));
    }
    if let Some(u) = a.until.as_deref().filter(|s| !s.is_empty()) {
        q.push(("until", timefmt::api_timestamp(u).map_err(|e| ContainerError::Io { what: "parse --until".into(), reason: e.to_string() })?));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if a.follow {
        q.push(("follow", "1".into()));
    }
    q.push(("tail", a.tail.clone()));
    if a.details {
        q.push(("details", "1".into()));
    }
    let mut resp = c.raw("GET", &format!("/containers/{}/logs{}", percent_encode(&id), query(&q)), false, None).await?;
    let mut demux = Demux::default();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    while let Some(chunk) = resp.chunk().await? {
        if tty {
            let mut o = stdout.lock();
            let _ = o.write_all(&chunk);
            let _ = o.flush();
            continue;
        }
        demux.push(&chunk);
        while let Some(f) = demux.next_frame().map_err(super::stream::StreamError::from)? {
            match f {
                Frame::Stdout(d) => {
                    let mut o = stdout.lock();
                    let _ = o.write_all(&d);
                    let _ = o.flush();
                }
                Frame::Stderr(d) => {
                    let _ = stderr.lock().write_all(&d);
                }
                Frame::SystemErr(m) => return Err(super::stream::StreamError::System(m).into()),
            }
        }
    }
    Ok(())
}
