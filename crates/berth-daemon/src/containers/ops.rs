//! Operations on a container's running processes that go straight to the
//! runtime and the cgroup: top, stats, update, pause, unpause; and the
//! watchers behind `wait`.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_api::models::HostConfig;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::state::Status;
use super::store::Container;
use crate::Daemon;
use crate::error::{ApiError, ApiResult};

/// What `wait` watches for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaitState {
    /// Exits so far (`next-exit` waits for this to grow).
    pub exits: u64,
    pub running: bool,
    pub exit_code: i64,
    pub error: String,
    pub removed: bool,
}

/// One watch channel per container.
#[derive(Default)]
pub struct Waits {
    map: Mutex<HashMap<String, watch::Sender<WaitState>>>,
}

impl Waits {
    pub fn subscribe(&self, id: &str, current: impl FnOnce() -> WaitState) -> watch::Receiver<WaitState> {
        let mut m = self.map.lock().expect("waits lock");
        m.entry(id.to_owned()).or_insert_with(|| watch::channel(current()).0).subscribe()
    }

    pub fn update(&self, id: &str, f: impl FnOnce(&mut WaitState)) {
        let mut m = self.map.lock().expect("waits lock");
        let tx = m.entry(id.to_owned()).or_insert_with(|| watch::channel(WaitState::default()).0);
        tx.send_modify(f);
    }

    pub fn forget(&self, id: &str) {
        self.map.lock().expect("waits lock").remove(id);
    }
}

/// Not running, as docker says it: `Container <id> is not running`.
pub fn not_running(id: &str) -> ApiError {
    ApiError::conflict(format!("Container {id} is not running"))
}

impl Daemon {
    /// The container's cgroup, from the runtime's state.
    pub fn cgroup_of(&self, id: &str) -> ApiResult<berth_cgroups::Cgroup> {
        let (record, _) = self.runtime().load(id).map_err(|_| not_running(id))?;
        record.cgroup.ok_or_else(|| not_running(id))
    }

    fn running_container(&self, c: &Container) -> ApiResult<()> {
        if !c.state.status.is_alive() {
            return Err(not_running(&c.id));
        }
        Ok(())
    }

    /// `GET /containers/{id}/top`.
    pub async fn top(&self, reference: &str, ps_args: &str) -> ApiResult<Value> {
        let h = self.container(reference)?;
        let c = h.lock().await.clone();
        self.running_container(&c)?;
        let pids = self.runtime().pids(&c.id).map_err(|e| ApiError::internal(e.to_string()))?;
        let args: Vec<&str> = if ps_args.is_empty() { vec!["-ef"] } else { ps_args.split_whitespace().collect() };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| ApiError::internal(format!("ps: {e}")))?;
        if !out.status.success() {
            return Err(ApiError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// One stats sample, docker's JSON shape.
    pub fn stats_sample(&self, c: &Container, cg: &berth_cgroups::Cgroup) -> Value {
        let s = cg.stats().unwrap_or_default();
        let mut v = serde_json::to_value(&s).unwrap_or_else(|_| json!({}));
        let mem_total = host_memory();
        if let Some(m) = v.get_mut("memory_stats") {
            let limit = m.get("limit").and_then(Value::as_u64).unwrap_or(u64::MAX);
            if limit == 0 || limit > mem_total {
                m["limit"] = json!(mem_total);
            }
        }
        if let Some(cpu) = v.get_mut("cpu_stats") {
            cpu["system_cpu_usage"] = json!(system_cpu_usage());
            cpu["online_cpus"] = json!(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        }
        v["read"] = json!(berth_image::model::now_rfc3339());
        v["name"] = json!(format!("/{}", c.name));
        v["id"] = json!(c.id);
        v["num_procs"] = json!(0);
        v["storage_stats"] = json!({});
        v["networks"] = json!({});
        v
    }

    /// `POST /containers/{id}/pause`.
    pub async fn pause_container(&self, reference: &str) -> ApiResult<()> {
        let h = self.container(reference)?;
        let mut c = h.lock().await;
        match c.state.status {
            Status::Paused => return Err(ApiError::conflict(format!("Container {} is already paused", c.id))),
            Status::Running => {}
            _ => return Err(not_running(&c.id)),
        }
        self.runtime().pause(&c.id).map_err(|e| ApiError::internal(e.to_string()))?;
        c.state.status = Status::Paused;
        self.containers.save_state(&c)?;
        self.events.container(&c.id, "pause", &[("name", &c.name)]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn unpause_container(&self, reference: &str) -> ApiResult<()> {
        let h = self.container(reference)?;
        let mut c = h.lock().await;
        if c.state.status != Status::Paused {
            return Err(ApiError::conflict(format!("Container {} is not paused", c.id)));
        }
        self.runtime().resume(&c.id).map_err(|e| ApiError::internal(e.to_string()))?;
        c.state.status = Status::Running;
        self.containers.save_state(&c)?;
        self.events.container(&c.id, "unpause", &[("name", &c.name)]);
        Ok(())
    }

    /// `POST /containers/{id}/update`: new limits on the live cgroup and in
    /// the record, and the restart policy.
    pub async fn update_container(&self, reference: &str, update: HostConfig) -> ApiResult<Vec<String>> {
        let h = self.container(reference)?;
        let mut c = h.lock().await;
        let mut hc = c.host_config.clone();
        macro_rules! take {
            ($($f:ident),*) => { $( if update.$f.is_some() { hc.$f = update.$f.clone(); } )* };
        }
        take!(
            cpu_shares, memory, cgroup_parent, blkio_weight, blkio_weight_device, blkio_device_read_bps,
            blkio_device_write_bps, blkio_device_read_iops, blkio_device_write_iops, cpu_period, cpu_quota,
            cpu_realtime_period, cpu_realtime_runtime, cpuset_cpus, cpuset_mems, memory_reservation, memory_swap,
            nano_cpus, pids_limit, restart_policy, oom_kill_disable
        );
        if hc.memory.is_some_and(|m| m > 0) && update.memory.is_some() && update.memory_swap.is_none() {
            // docker keeps swap at its ratio to memory when only memory changes.
            hc.memory_swap = Some(0);
        }
        if let Some(p) = &update.restart_policy
            && hc.auto_remove == Some(true)
            && super::restart::name(Some(p)) != berth_api::models::RestartPolicyNameEnum::NO
        {
            return Err(ApiError::invalid("Restart policy cannot be updated because AutoRemove is enabled for the container"));
        }
        if c.state.status.is_alive() {
            let tmp = Container { host_config: hc.clone(), ..c.clone() };
            let input = super::oci::SpecInput {
                rootfs: self.rootfs_dir(&c.id),
                user: super::user::ExecUser { uid: 0, gid: 0, additional_gids: vec![], home: "/".into() },
                hostname_file: None,
                hosts_file: None,
                resolv_conf: None,
                cgroups_path: String::new(),
                net_container_pid: Some(0),
                netns: None,
                pid_container_pid: Some(0),
                ipc_container_pid: Some(0),
                cgroup_v2: false,
                seccomp: None,
                init: None,
            };
            let spec = super::oci::build(&tmp, &input)?;
            let mut resources: oci_spec::runtime::LinuxResources =
                serde_json::from_value(spec["linux"]["resources"].clone()).map_err(|e| ApiError::internal(e.to_string()))?;
            // Device rules don't change on update.
            resources.set_devices(None);
            let cg = self.cgroup_of(&c.id)?;
            cg.apply(&resources).map_err(|e| ApiError::invalid(format!("Cannot update container {}: {e}", c.id)))?;
        }
        c.host_config = hc;
        self.containers.save(&c)?;
        self.events.container(&c.id, "update", &[("name", &c.name)]);
        Ok(Vec::new())
    }
}

/// Total memory of the host in bytes (the limit of an unlimited container).
pub fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The host's total CPU time in nanoseconds (the first line of /proc/stat),
/// docker's `system_cpu_usage`.
pub fn system_cpu_usage() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return 0 };
    let ticks: u64 = line.split_whitespace().skip(1).take(8).filter_map(|v| v.parse::<u64>().ok()).sum();
    // SAFETY: sysconf has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

/// Keep the lines of `ps` output whose PID column is one of `pids`.
pub fn parse_ps(output: &str, pids: &[i32]) -> ApiResult<Value> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| ApiError::invalid("Couldn't find PID field in ps output"))?;
    let mut procs = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else { continue };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) may hold spaces: keep it whole.
        let mut row: Vec<String> = fields.iter().take(titles.len() - 1).map(|s| s.to_string()).collect();
        let rest: Vec<&str> = fields.iter().skip(titles.len() - 1).copied().collect();
        row.push(rest.join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_lines_are_filtered_and_commands_kept_whole() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:00 ? 00:00:00 sleep 100 --x\n";
        let v = parse_ps(out, &[42]).unwrap();
        assert_eq!(v["Titles"].as_array().unwrap().len(), 8);
        assert_eq!(v["Processes"], json!([["root", "42", "1", "0", "10:00", "?", "00:00:00", "sleep 100 --x"]]));
        assert!(parse_ps("USER COMMAND\n", &[]).is_err());
    }

    #[test]
    fn waits_see_updates() {
        let w = Waits::default();
        let rx = w.subscribe("a", WaitState::default);
        w.update("a", |s| {
            s.exits += 1;
            s.exit_code = 3;
        });
        assert_eq!(rx.borrow().exit_code, 3);
        assert!(system_cpu_usage() > 0);
        assert!(host_memory() > 0);
    }
}
