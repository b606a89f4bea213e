//! stats: CPU % from the two samples in each stats response (docker's
//! `calculateCPUPercentUnix`), memory without the inactive file cache,
//! network and block I/O sums, pids; the table redrawn every half second,
//! or printed once with `--no-stream`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use berth_api::models::ContainerStatsResponse;
use futures_util::StreamExt;
use gotmpl::Value;

use super::{ContainerError, StatsArgs};
use crate::app::{Ctx, out};
use crate::format::{self, template};
use crate::units;

const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// One container's figures, ready to print.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSample {
    pub id: String,
    pub name: String,
    pub cpu_percent: f64,
    pub memory: f64,
    pub memory_limit: f64,
    pub memory_percent: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub block_read: f64,
    pub block_write: f64,
    pub pids: u64,
    pub error: bool,
}

/// CPU % between the previous and this reading, times the online CPUs.
pub fn cpu_percent(s: &ContainerStatsResponse) -> f64 {
    let cur = s.cpu_stats.clone().unwrap_or_default();
    let pre = s.precpu_stats.clone().unwrap_or_default();
    let total = |c: &berth_api::models::ContainerCpuStats| c.cpu_usage.as_ref().and_then(|u| u.total_usage).unwrap_or(0) as f64;
    let cpu_delta = total(&cur) - total(&pre);
    let system_delta = cur.system_cpu_usage.unwrap_or(0) as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
    let mut online = cur.online_cpus.unwrap_or(0) as f64;
    if online == 0.0 {
        online = cur.cpu_usage.as_ref().and_then(|u| u.percpu_usage.as_ref()).map_or(0, |p| p.len()) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 { (cpu_delta / system_delta) * online * 100.0 } else { 0.0 }
}

/// Memory in use without the page cache that can be dropped (v1
/// `total_inactive_file`, v2 `inactive_file`).
pub fn memory_usage(s: &ContainerStatsResponse) -> f64 {
    let m = s.memory_stats.clone().unwrap_or_default();
    let usage = m.usage.unwrap_or(0);
    let stats = m.stats.unwrap_or_default();
    if let Some(v) = stats.get("total_inactive_file")
        && *v < usage
    {
        return (usage - v) as f64;
    }
    if let Some(v) = stats.get("inactive_file")
        && *v < usage
    {
        return (usage - v) as f64;
    }
    usage as f64
}

pub fn sample(s: &ContainerStatsResponse) -> StatsSample {
    let mem = memory_usage(s);
    let limit = s.memory_stats.as_ref().and_then(|m| m.limit).unwrap_or(0) as f64;
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s.networks.clone().unwrap_or_default().values() {
        rx += n.rx_bytes.unwrap_or(0) as f64;
        tx += n.tx_bytes.unwrap_or(0) as f64;
    }
    let (mut r, mut w) = (0.0, 0.0);
    for e in s.blkio_stats.as_ref().and_then(|b| b.io_service_bytes_recursive.clone()).unwrap_or_default() {
        match e.op.as_deref().and_then(|o| o.chars().next()) {
            Some('r' | 'R') => r += e.value.unwrap_or(0) as f64,
            Some('w' | 'W') => w += e.value.unwrap_or(0) as f64,
            _ => {}
        }
    }
    StatsSample {
        id: s.id.clone().unwrap_or_default(),
        name: s.name.clone().unwrap_or_default().trim_start_matches('/').to_owned(),
        cpu_percent: cpu_percent(s),
        memory: mem,
        memory_limit: limit,
        memory_percent: if limit != 0.0 { mem / limit * 100.0 } else { 0.0 },
        net_rx: rx,
        net_tx: tx,
        block_read: r,
        block_write: w,
        pids: s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
        error: false,
    }
}

fn header() -> Value {
    use template::s;
    template::map([
        ("Container", s("CONTAINER")),
        ("ID", s("CONTAINER ID")),
        ("Name", s("NAME")),
        ("CPUPerc", s("CPU %")),
        ("MemUsage", s("MEM USAGE / LIMIT")),
        ("MemPerc", s("MEM %")),
        ("NetIO", s("NET I/O")),
        ("BlockIO", s("BLOCK I/O")),
        ("PIDs", s("PIDS")),
    ])
}

/// One stats row as template data (`.CPUPerc` "0.25%", `.MemUsage`
/// "1.5MiB / 7.6GiB", ...). `container` is what the user named.
pub fn stats_row(x: &StatsSample, container: &str, trunc: bool) -> Value {
    use template::s;
    let id = if trunc { x.id.chars().take(12).collect() } else { x.id.clone() };
    let dash = |v: String| if x.error { "--".to_owned() } else { v };
    let hs = |v: f64| units::human_size_precision(v, 3);
    template::map([
        ("Container", s(container)),
        ("ID", s(id)),
        ("Name", s(if x.name.is_empty() { "--".into() } else { x.name.clone() })),
        ("CPUPerc", s(dash(format!("{:.2}%", x.cpu_percent)))),
        ("MemUsage", s(dash(format!("{} / {}", units::bytes_size(x.memory), units::bytes_size(x.memory_limit))))),
        ("MemPerc", s(dash(format!("{:.2}%", x.memory_percent)))),
        ("NetIO", s(dash(format!("{} / {}", hs(x.net_rx), hs(x.net_tx))))),
        ("BlockIO", s(dash(format!("{} / {}", hs(x.block_read), hs(x.block_write))))),
        ("PIDs", s(dash(x.pids.to_string()))),
    ])
}

pub async fn stats(ctx: &Ctx, a: &StatsArgs) -> Result<(), ContainerError> {
    let config_format = ctx.config().stats_format.clone();
    let f = a.format.clone().filter(|f| !f.is_empty()).unwrap_or(config_format);
    let format = if f.is_empty() || f == "table" { DEFAULT_TABLE.to_owned() } else { f };
    format::Tmpl::parse(&format::template_source(&format))?;
    let c = ctx.client()?;
    let names: Vec<String> = if a.containers.is_empty() {
        let o = bollard::query_parameters::ListContainersOptions { all: a.all, ..Default::default() };
        c.docker.list_containers(Some(o)).await.map_err(|e| c.err(e))?.into_iter().filter_map(|x| x.id).collect()
    } else {
        a.containers.clone()
    };
    let trunc = !a.no_trunc;
    if a.no_stream {
        let mut rows = Vec::new();
        let mut errs = Vec::new();
        for n in &names {
            let o = bollard::query_parameters::StatsOptions { stream: false, one_shot: false };
            match c.docker.stats(n, Some(o)).next().await {
                Some(Ok(s)) => rows.push(stats_row(&sample(&s), n, trunc)),
                Some(Err(e)) => errs.push(ContainerError::from(c.err(e))),
                None => {}
            }
        }
        out(&format::render(&format, &rows, &header())?);
        return if errs.is_empty() { Ok(()) } else { Err(ContainerError::Many(errs)) };
    }
    let latest: Arc<Mutex<BTreeMap<usize, (String, StatsSample)>>> = Arc::default();
    for (i, n) in names.iter().enumerate() {
        let latest = latest.clone();
        let docker = c.docker.clone();
        let n = n.clone();
        latest.lock().map(|mut l| l.insert(i, (n.clone(), StatsSample { id: n.clone(), error: true, ..Default::default() }))).ok();
        tokio::spawn(async move {
            let o = bollard::query_parameters::StatsOptions { stream: true, one_shot: false };
            let mut s = docker.stats(&n, Some(o));
            while let Some(Ok(r)) = s.next().await {
                if let Ok(mut l) = latest.lock() {
                    l.insert(i, (n.clone(), sample(&r)));
                }
            }
            if let Ok(mut l) = latest.lock()
                && let Some(e) = l.get_mut(&i)
            {
                e.1.error = true;
            }
        });
    }
    let tty = super::tty::stdout_is_tty();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let rows: Vec<Value> = latest.lock().map(|l| l.values().map(|(n, x)| stats_row(x, n, trunc)).collect()).unwrap_or_default();
        let text = format::render(&format, &rows, &header())?;
        if tty {
            out(&format!("\x1b[2J\x1b[H{text}"));
        } else {
            out(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_computed_like_docker() {
        let s: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "id": "0123456789abcdef0123", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 300_000_000u64}, "system_cpu_usage": 10_000_000_000u64, "online_cpus": 2},
            "memory_stats": {"usage": 10_485_760u64, "limit": 1_073_741_824u64, "stats": {"inactive_file": 2_097_152u64}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 648}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"major": 8, "minor": 0, "op": "read", "value": 4096}, {"major": 8, "minor": 0, "op": "write", "value": 1_000_000}]},
            "pids_stats": {"current": 3}
        }))
        .unwrap();
        let x = sample(&s);
        assert!((x.cpu_percent - 2.0).abs() < 1e-9, "{}", x.cpu_percent);
        assert_eq!(x.memory, 8_388_608.0);
        let row = stats_row(&x, "web", true);
        let t = format::Tmpl::parse("{{.ID}} {{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}").unwrap();
        assert_eq!(t.execute(&row).unwrap(), "0123456789ab web 2.00% 8MiB / 1GiB 0.78% 2kB / 648B 4.1kB / 1MB 3");
        let dead = stats_row(&StatsSample { id: "abc".into(), error: true, ..Default::default() }, "abc", true);
        assert_eq!(t.execute(&dead).unwrap(), "abc -- -- -- -- -- -- --");
    }
}
