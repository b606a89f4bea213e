//! `docker exec`: exec records (kept in memory, as docker does) and the
//! process each one runs inside its container.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_api::models::ExecConfig;
use serde_json::{Value, json};

use super::ops::not_running;
use super::state::Status;
use crate::Daemon;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
}

#[derive(Default)]
pub struct Execs {
    map: Mutex<HashMap<String, ExecRecord>>,
}

impl Execs {
    pub fn get(&self, id: &str) -> Option<ExecRecord> {
        self.map.lock().expect("execs lock").get(id).cloned()
    }
    pub fn insert(&self, r: ExecRecord) {
        self.map.lock().expect("execs lock").insert(r.id.clone(), r);
    }
    pub fn update(&self, id: &str, f: impl FnOnce(&mut ExecRecord)) {
        if let Some(r) = self.map.lock().expect("execs lock").get_mut(id) {
            f(r);
        }
    }
    pub fn of_container(&self, container: &str) -> Vec<String> {
        self.map.lock().expect("execs lock").values().filter(|r| r.container_id == container).map(|r| r.id.clone()).collect()
    }
    pub fn forget_container(&self, container: &str) {
        self.map.lock().expect("execs lock").retain(|_, r| r.container_id != container);
    }
}

pub fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

impl Daemon {
    /// `POST /containers/{id}/exec`.
    pub async fn create_exec(&self, reference: &str, config: ExecConfig) -> ApiResult<String> {
        let h = self.container(reference)?;
        let c = h.lock().await;
        match c.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(ApiError::conflict(format!("Container {} is paused, unpause the container before exec", c.id)));
            }
            Status::Restarting => return Err(ApiError::conflict(format!("Container {} is restarting, wait until the container is running", c.id))),
            _ => return Err(not_running(&c.id)),
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ApiError::invalid("No exec command specified"));
        }
        let id = super::store::new_id();
        let cmd = config.cmd.clone().unwrap_or_default().join(" ");
        self.execs.insert(ExecRecord {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            running: false,
            started: false,
            exit_code: None,
            pid: 0,
        });
        self.events.container(&c.id, &format!("exec_create: {cmd}"), &[("name", &c.name), ("execID", &id)]);
        Ok(id)
    }

    /// The OCI process an exec runs: the container's own process section
    /// with the exec's command, env, user, working dir, tty and privileges.
    pub async fn exec_process(&self, r: &ExecRecord) -> ApiResult<oci_spec::runtime::Process> {
        let bundle = self.bundle_dir(&r.container_id);
        let rootfs = self.rootfs_dir(&r.container_id);
        let cfg = r.config.clone();
        let c = self.container(&r.container_id)?.lock().await.clone();
        tokio::task::spawn_blocking(move || -> ApiResult<oci_spec::runtime::Process> {
            let data = std::fs::read(bundle.join("config.json")).map_err(|_| not_running(&c.id))?;
            let spec: Value = serde_json::from_slice(&data).map_err(|e| ApiError::internal(e.to_string()))?;
            let mut p = spec["process"].clone();
            p["args"] = json!(cfg.cmd.clone().unwrap_or_default());
            p["terminal"] = json!(cfg.tty.unwrap_or(false));
            if let Some(extra) = cfg.env.as_ref().filter(|e| !e.is_empty()) {
                let mut env: Vec<String> = serde_json::from_value(p["env"].clone()).unwrap_or_default();
                for e in extra {
                    let key = e.split('=').next().unwrap_or("");
                    env.retain(|x| x.split('=').next() != Some(key));
                    env.push(e.clone());
                }
                p["env"] = json!(env);
            }
            if let Some(wd) = cfg.working_dir.as_ref().filter(|w| !w.is_empty()) {
                p["cwd"] = json!(wd);
            }
            if let Some(u) = cfg.user.as_ref().filter(|u| !u.is_empty()) {
                let user = super::user::resolve(&rootfs, u, &[]).map_err(|e| ApiError::invalid(e.to_string()))?;
                p["user"] = json!({"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids});
                if user.uid != 0 {
                    p["capabilities"]["effective"] = json!([]);
                    p["capabilities"]["permitted"] = json!([]);
                }
            }
            if cfg.privileged.unwrap_or(false) {
                let all = super::oci::all_caps();
                p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
            }
            if let Some(size) = cfg.console_size.as_ref().filter(|s| s.len() == 2 && s[0] > 0) {
                p["consoleSize"] = json!({"height": size[0], "width": size[1]});
            } else if let Some(obj) = p.as_object_mut() {
                obj.remove("consoleSize");
            }
            serde_json::from_value(p).map_err(|e| ApiError::internal(format!("exec process: {e}")))
        })
        .await?
    }

    /// `GET /exec/{id}/json`.
    pub async fn inspect_exec(&self, id: &str) -> ApiResult<Value> {
        let mut r = self.execs.get(id).ok_or_else(|| no_such_exec(id))?;
        if r.running
            && let Ok(client) = crate::shim::connect(&self.shim_dir(&r.container_id)).await
            && let Ok(st) = crate::shim::exec_state(&client, id).await
        {
            r.running = st.running;
            r.pid = st.pid;
            if let Some(code) = st.exit_code {
                r.exit_code = Some(code as i64);
            }
            let (running, pid, code) = (r.running, r.pid, r.exit_code);
            self.execs.update(id, |x| {
                x.running = running;
                x.pid = pid;
                x.exit_code = code;
            });
        }
        let cmd = r.config.cmd.clone().unwrap_or_default();
        Ok(json!({
            "ID": r.id,
            "Running": r.running,
            "ExitCode": r.exit_code,
            "ProcessConfig": {
                "tty": r.config.tty.unwrap_or(false),
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
                "privileged": r.config.privileged.unwrap_or(false),
                "user": r.config.user.clone().unwrap_or_default(),
            },
            "OpenStdin": r.config.attach_stdin.unwrap_or(false),
            "OpenStderr": r.config.attach_stderr.unwrap_or(false),
            "OpenStdout": r.config.attach_stdout.unwrap_or(false),
            "CanRemove": false,
            "ContainerID": r.container_id,
            "DetachKeys": r.config.detach_keys.clone().unwrap_or_default(),
            "Pid": r.pid,
        }))
    }
}
