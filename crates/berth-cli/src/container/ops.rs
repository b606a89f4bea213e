//! The one-call container commands: stop, restart, kill, rm, pause,
//! unpause, rename, wait, top, port, diff, export, commit, update, prune.

use std::collections::HashMap;
use std::io::Write;

use berth_api::models::{ContainerUpdateBody, RestartPolicy, RestartPolicyNameEnum};
use futures_util::StreamExt;

use super::{
    CommitArgs, ContainerError, DiffArgs, ExportArgs, KillArgs, PauseArgs, PortArgs, PruneArgs, RenameArgs, RmArgs, StopArgs, TopArgs,
    UpdateArgs, WaitArgs,
};
use crate::app::{Ctx, errln, out, outln};
use crate::client::Client;
use crate::format::tabwriter::TabWriter;
use crate::opts::{self, Filters};
use crate::units;

/// Run `op` for each container in order; print the name on success, join
/// the errors at the end (docker's parallel operations, in order).
async fn each<F, Fut>(names: &[String], mut op: F) -> Result<(), ContainerError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ContainerError>>,
{
    let mut errs = Vec::new();
    for n in names {
        match op(n.clone()).await {
            Ok(()) => outln(n),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(ContainerError::Many(errs)) }
}

pub async fn stop(ctx: &Ctx, a: &StopArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    each(&a.containers, |n| async move {
        let o = bollard::query_parameters::StopContainerOptions { t: a.timeout.map(|t| t as i32), signal: a.signal.clone() };
        c.docker.stop_container(&n, Some(o)).await.map_err(|e| c.err(e).into())
    })
    .await
}

pub async fn restart(ctx: &Ctx, a: &StopArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    each(&a.containers, |n| async move {
        let o = bollard::query_parameters::RestartContainerOptions { t: a.timeout.map(|t| t as i32), signal: a.signal.clone() };
        c.docker.restart_container(&n, Some(o)).await.map_err(|e| c.err(e).into())
    })
    .await
}

pub async fn kill(ctx: &Ctx, a: &KillArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    each(&a.containers, |n| async move {
        // No `signal=` at all without -s: the daemon's default (SIGKILL).
        let q = a.signal.as_ref().map(|s| crate::client::query(&[("signal", s.clone())])).unwrap_or_default();
        let mut r = c.raw("POST", &format!("/containers/{}/kill{q}", crate::client::percent_encode(&n)), false, None).await?;
        r.read_to_end().await?;
        Ok(())
    })
    .await
}

pub async fn rm(ctx: &Ctx, a: &RmArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let mut errs = Vec::new();
    for n in &a.containers {
        let id = n.trim_matches('/');
        let o = bollard::query_parameters::RemoveContainerOptions { v: a.volumes, force: a.force, link: a.link };
        match c.docker.remove_container(id, Some(o)).await.map_err(|e| c.err(e)) {
            Ok(()) => outln(n),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => errs.push(e.into()),
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(ContainerError::Many(errs)) }
}

pub async fn pause(ctx: &Ctx, a: &PauseArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    each(&a.containers, |n| async move { c.docker.pause_container(&n).await.map_err(|e| c.err(e).into()) }).await
}

pub async fn unpause(ctx: &Ctx, a: &PauseArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    each(&a.containers, |n| async move { c.docker.unpause_container(&n).await.map_err(|e| c.err(e).into()) }).await
}

pub async fn rename(ctx: &Ctx, a: &RenameArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let o = bollard::query_parameters::RenameContainerOptions { name: a.new_name.trim().to_owned() };
    c.docker.rename_container(a.container.trim(), o).await.map_err(|e| c.err(e))?;
    Ok(())
}

pub async fn wait(ctx: &Ctx, a: &WaitArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let mut errs = Vec::new();
    for n in &a.containers {
        match super::run::wait_one(c, n).await {
            Ok(code) => outln(&code.to_string()),
            Err(e) => errs.push(e.into()),
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(ContainerError::Many(errs)) }
}

pub async fn top(ctx: &Ctx, a: &TopArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let o = bollard::query_parameters::TopOptions { ps_args: a.ps_args.join(" ") };
    let t = c.docker.top_processes(&a.container, Some(o)).await.map_err(|e| c.err(e))?;
    let mut tw = TabWriter::new(20, 3);
    tw.write(&t.titles.unwrap_or_default().join("\t"));
    tw.write("\n");
    for p in t.processes.unwrap_or_default() {
        tw.write(&p.join("\t"));
        tw.write("\n");
    }
    out(&tw.finish());
    Ok(())
}

/// Go's `sortorder.NaturalLess`: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while !x.is_empty() && !y.is_empty() {
        if x[0].is_ascii_digit() && y[0].is_ascii_digit() {
            let nx = x.iter().take_while(|b| b.is_ascii_digit()).count();
            let ny = y.iter().take_while(|b| b.is_ascii_digit()).count();
            let (dx, dy) = (std::str::from_utf8(&x[..nx]).unwrap_or("0"), std::str::from_utf8(&y[..ny]).unwrap_or("0"));
            let (tx, ty) = (dx.trim_start_matches('0'), dy.trim_start_matches('0'));
            let o = tx.len().cmp(&ty.len()).then(tx.cmp(ty)).then(nx.cmp(&ny));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
            x = &x[nx..];
            y = &y[ny..];
        } else {
            if x[0] != y[0] {
                return x[0].cmp(&y[0]);
            }
            x = &x[1..];
            y = &y[1..];
        }
    }
    x.len().cmp(&y.len())
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

/// The lines `port` prints for the `NetworkSettings.Ports` of an inspect.
pub fn port_lines(ports: &HashMap<String, Option<Vec<berth_api::models::PortBinding>>>, want: Option<&str>) -> Option<Vec<String>> {
    let mut out = Vec::new();
    match want {
        Some(p) => {
            let key = if p.contains('/') { p.to_owned() } else { format!("{p}/tcp") };
            let fronts = ports.get(&key).cloned().flatten().filter(|f| !f.is_empty())?;
            for f in fronts {
                out.push(join_host_port(f.host_ip.as_deref().unwrap_or(""), f.host_port.as_deref().unwrap_or("")));
            }
        }
        None => {
            for (from, fronts) in ports {
                for f in fronts.clone().unwrap_or_default() {
                    out.push(format!("{from} -> {}", join_host_port(f.host_ip.as_deref().unwrap_or(""), f.host_port.as_deref().unwrap_or(""))));
                }
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Some(out)
}

pub async fn port(ctx: &Ctx, a: &PortArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let info = c.docker.inspect_container(&a.container, None::<bollard::query_parameters::InspectContainerOptions>).await.map_err(|e| c.err(e))?;
    let ports = info.network_settings.and_then(|n| n.ports).unwrap_or_default();
    let lines = port_lines(&ports, a.port.as_deref())
        .ok_or_else(|| ContainerError::NoPort { port: a.port.clone().unwrap_or_default(), container: a.container.clone() })?;
    if !lines.is_empty() {
        outln(&lines.join("\n"));
    }
    Ok(())
}

pub async fn diff(ctx: &Ctx, a: &DiffArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let changes = c.docker.container_changes(&a.container).await.map_err(|e| c.err(e))?;
    for ch in changes.unwrap_or_default() {
        let kind = match ch.kind as i64 {
            0 => "C",
            1 => "A",
            2 => "D",
            _ => "?",
        };
        outln(&format!("{kind} {}", ch.path));
    }
    Ok(())
}

/// Stream a body to `-o FILE` or to stdout (refusing a terminal).
pub async fn save_stream<S, B>(mut s: S, c: &Client, output: Option<&str>) -> Result<(), ContainerError>
where
    S: futures_util::Stream<Item = Result<B, bollard::errors::Error>> + Unpin,
    B: AsRef<[u8]>,
{
    let mut sink: Box<dyn Write> = match output {
        Some(path) if !path.is_empty() && path != "-" => {
            Box::new(std::fs::File::create(path).map_err(|e| ContainerError::io(format!("open {path}"), &e))?)
        }
        _ => {
            if super::tty::stdout_is_tty() {
                return Err(ContainerError::Io {
                    what: "write to the terminal".into(),
                    reason: "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                });
            }
            Box::new(std::io::stdout().lock())
        }
    };
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| c.err(e))?;
        sink.write_all(chunk.as_ref()).map_err(|e| ContainerError::io("write", &e))?;
    }
    sink.flush().map_err(|e| ContainerError::io("write", &e))?;
    Ok(())
}

pub async fn export(ctx: &Ctx, a: &ExportArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let s = c.docker.export_container(&a.container);
    save_stream(Box::pin(s), c, a.output.as_deref()).await
}

pub async fn commit(ctx: &Ctx, a: &CommitArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let (repo, tag) = match &a.reference {
        Some(r) => {
            let (n, t) = super::run::split_tag(r);
            (normalize_name(n), if r.contains(':') && !r[r.rfind(':').unwrap_or(0)..].contains('/') { t.to_owned() } else { String::new() })
        }
        None => (String::new(), String::new()),
    };
    let mut q = vec![
        ("container", a.container.clone()),
        ("repo", repo),
        ("tag", tag),
        ("comment", a.message.clone().unwrap_or_default()),
        ("author", a.author.clone().unwrap_or_default()),
    ];
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    if !a.pause {
        q.push(("pause", "0".into()));
    }
    let mut r = c.raw("POST", &format!("/commit{}", crate::client::query(&q)), false, None).await?;
    let v: serde_json::Value = serde_json::from_slice(&r.read_to_end().await?).unwrap_or_default();
    outln(v.get("Id").and_then(|i| i.as_str()).unwrap_or(""));
    Ok(())
}

/// docker's normalized repository name: `repo` → `docker.io/library/repo`,
/// `user/repo` → `docker.io/user/repo`; registry-qualified names stay.
pub fn normalize_name(name: &str) -> String {
    match name.split_once('/') {
        None => format!("docker.io/library/{name}"),
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => name.to_owned(),
        Some(_) => format!("docker.io/{name}"),
    }
}

/// The update body docker sends for the flags given.
pub fn update_body(a: &UpdateArgs) -> Result<ContainerUpdateBody, ContainerError> {
    let restart = match &a.restart {
        Some(r) if !r.is_empty() => {
            let p = opts::restart_policy(r)?;
            Some(RestartPolicy {
                name: Some(match p.name.as_str() {
                    "always" => RestartPolicyNameEnum::ALWAYS,
                    "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
                    "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                    _ => RestartPolicyNameEnum::NO,
                }),
                maximum_retry_count: Some(p.max_retry),
            })
        }
        _ => None,
    };
    Ok(ContainerUpdateBody {
        blkio_weight: a.resources.blkio_weight,
        cpuset_cpus: a.resources.cpuset_cpus.clone(),
        cpuset_mems: a.resources.cpuset_mems.clone(),
        cpu_shares: a.resources.cpu_shares,
        memory: a.resources.memory,
        memory_reservation: a.resources.memory_reservation,
        memory_swap: a.resources.memory_swap,
        cpu_period: a.resources.cpu_period,
        cpu_quota: a.resources.cpu_quota,
        cpu_realtime_period: a.resources.cpu_rt_period,
        cpu_realtime_runtime: a.resources.cpu_rt_runtime,
        nano_cpus: a.resources.cpus,
        pids_limit: a.resources.pids_limit.filter(|p| *p != 0),
        restart_policy: restart,
        ..Default::default()
    })
}

#[derive(Debug, thiserror::Error)]
#[error("you must provide one or more flags when using this command")]
pub struct NoFlags;

pub async fn update(ctx: &Ctx, a: &UpdateArgs) -> Result<(), ContainerError> {
    let body = update_body(a)?;
    if body == ContainerUpdateBody::default() {
        return Err(ContainerError::Io { what: "update".into(), reason: NoFlags.to_string() });
    }
    let c = ctx.client()?;
    let mut errs = Vec::new();
    let mut warns: Vec<String> = Vec::new();
    for n in &a.containers {
        let path = format!("/containers/{}/update", crate::client::percent_encode(n));
        let b = serde_json::to_vec(&body).unwrap_or_default();
        match c.raw("POST", &path, false, Some(&b)).await {
            Ok(mut r) => {
                let v: serde_json::Value = serde_json::from_slice(&r.read_to_end().await?).unwrap_or_default();
                warns.extend(v.get("Warnings").and_then(|w| w.as_array()).into_iter().flatten().filter_map(|w| w.as_str().map(String::from)));
                outln(n);
            }
            Err(e) => errs.push(e.into()),
        }
    }
    if !warns.is_empty() {
        outln(&warns.join("\n"));
    }
    if errs.is_empty() { Ok(()) } else { Err(ContainerError::Many(errs)) }
}

/// Ask `[y/N]` on the terminal; docker's prompt.
pub fn confirm(warning: &str) -> bool {
    out(&format!("{warning}\nAre you sure you want to continue? [y/N] "));
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

pub async fn prune(ctx: &Ctx, a: &PruneArgs) -> Result<(), ContainerError> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        errln("Total reclaimed space: 0B");
        return Ok(());
    }
    let c = ctx.client()?;
    let f = Filters::from_pairs(&a.filter);
    let o = bollard::query_parameters::PruneContainersOptions { filters: if f.is_empty() { None } else { Some(f.to_lists()) } };
    let r = c.docker.prune_containers(Some(o)).await.map_err(|e| c.err(e))?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        let mut s = "Deleted Containers:\n".to_owned();
        for id in deleted {
            s.push_str(&id);
            s.push('\n');
        }
        outln(&s);
    }
    outln(&format!("Total reclaimed space: {}", units::human_size(r.space_reclaimed.unwrap_or(0) as f64)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::PortBinding;

    #[test]
    fn update_bodies_carry_what_docker_sends() {
        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: UpdateArgs,
        }
        let parse = |args: &[&str]| {
            let m = crate::cli::pflag_like(T::command()).try_get_matches_from(std::iter::once("update").chain(args.iter().copied())).unwrap();
            update_body(&T::from_arg_matches(&m).unwrap().a).unwrap()
        };
        // Recorded from docker 28.2, zero values left out.
        let b = serde_json::to_value(parse(&["-m", "512m", "--cpus", "1.5", "--restart", "on-failure:3", "--pids-limit", "10", "web"])).unwrap();
        assert_eq!(
            b,
            serde_json::json!({"Memory": 536870912, "NanoCpus": 1500000000, "PidsLimit": 10, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
        );
        let b = serde_json::to_value(parse(&["--memory-swap", "-1", "-m", "1g", "web"])).unwrap();
        assert_eq!(b, serde_json::json!({"Memory": 1073741824, "MemorySwap": -1}));
        assert_eq!(normalize_name("repo"), "docker.io/library/repo");
        assert_eq!(normalize_name("me/repo"), "docker.io/me/repo");
        assert_eq!(normalize_name("localhost:5000/repo"), "localhost:5000/repo");
    }

    #[test]
    fn port_lines_sort_naturally() {
        let b = |ip: &str, p: &str| Some(vec![PortBinding { host_ip: Some(ip.into()), host_port: Some(p.into()) }]);
        let ports = HashMap::from([("9000/tcp".to_owned(), b("0.0.0.0", "9000")), ("80/tcp".to_owned(), b("::", "8080")), ("81/tcp".to_owned(), None)]);
        assert_eq!(port_lines(&ports, None).unwrap(), vec!["80/tcp -> [::]:8080", "9000/tcp -> 0.0.0.0:9000"]);
        assert_eq!(port_lines(&ports, Some("80")).unwrap(), vec!["[::]:8080"]);
        assert_eq!(port_lines(&ports, Some("81/tcp")), None);
    }
}
