//! Containers: records, the state machine, and everything the
//! `/containers/*` routes do. The running side (shims, logs, attach) lives
//! in [`run`].

pub mod exec;
pub mod fs;
pub mod health;
pub mod names;
pub mod oci;
pub mod ops;
pub mod restart;
pub mod run;
pub mod state;
pub mod store;
pub mod user;

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use serde_json::{Value, json};

use self::state::{State, Status};
use self::store::{Container, Handle, Lookup};
use crate::Daemon;
use crate::error::{ApiError, ApiResult};

/// `No such container: x`, docker's 404.
pub fn no_such(reference: &str) -> ApiError {
    ApiError::not_found(format!("No such container: {reference}"))
}

impl Daemon {
    /// Find a container by id, name or unique id prefix.
    pub fn container(&self, reference: &str) -> ApiResult<Handle> {
        match self.containers.lookup(reference) {
            Lookup::Found(h) => Ok(h),
            Lookup::NotFound => Err(no_such(reference)),
            Lookup::Ambiguous => Err(ApiError::invalid(format!("multiple IDs found with provided prefix: {reference}"))),
        }
    }

    /// `POST /containers/create`.
    pub async fn create_container(&self, name: Option<String>, body: ContainerCreateBody) -> ApiResult<(String, Vec<String>)> {
        let image_ref = body.image.clone().filter(|i| !i.is_empty()).ok_or_else(|| ApiError::invalid("no image was specified"))?;
        let mut hc = body.host_config.clone().unwrap_or_default();
        check_unsupported(&hc)?;
        validate_host_config(&hc)?;
        let images = self.images.clone();
        let r = image_ref.clone();
        let image = tokio::task::spawn_blocking(move || -> ApiResult<_> {
            let id = images.resolve(&r).map_err(|e| match e.kind() {
                berth_image::ErrorKind::NotFound => ApiError::not_found(format!("No such image: {r}")),
                _ => ApiError::from(e),
            })?;
            Ok(images.image(&id)?)
        })
        .await??;
        let id = store::new_id();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(&n).to_owned();
                if !names::valid(&n) {
                    return Err(ApiError::invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                self.containers.reserve_name(&n, &id).map_err(|other| {
                    ApiError::conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    ))
                })?;
                n
            }
            None => loop {
                let n = names::generate();
                if self.containers.reserve_name(&n, &id).is_ok() {
                    break n;
                }
            },
        };
        let mode = crate::network::Mode::parse(hc.network_mode.as_deref().unwrap_or(""));
        let endpoints = crate::network::initial_endpoints(&mode, body.networking_config.as_ref().and_then(|n| n.endpoints_config.as_ref()));
        if let Err(e) = self.check_container_networks(&hc, &endpoints).await {
            self.containers.release_name(&name, &id);
            return Err(e);
        }
        let image_config = image.config.config.clone().unwrap_or_default();
        let config = merge_config(&body, &image_config, &image_ref);
        let (path, args) = match entrypoint_and_cmd(&config) {
            Some(pa) => pa,
            None => {
                self.containers.release_name(&name, &id);
                return Err(ApiError::invalid("no command specified"));
            }
        };
        let volumes: Vec<String> =
            config.volumes.iter().flatten().chain(image_config.volumes.iter().flat_map(|v| v.keys())).cloned().collect();
        let size = match crate::volumes::mounts::storage_size(&hc, self.config.storage_size, self.images.snapshots().supports_size()) {
            Ok(s) => s,
            Err(e) => {
                self.containers.release_name(&name, &id);
                return Err(e);
            }
        };
        let mounts = match self.container_mounts(&id, &hc, &volumes).await {
            Ok(m) => m,
            Err(e) => {
                self.containers.release_name(&name, &id);
                return Err(e);
            }
        };
        if hc.log_config.as_ref().and_then(|l| l.typ.clone()).filter(|t| !t.is_empty()).is_none() {
            hc.log_config = Some(berth_api::models::HostConfigLogConfig {
                typ: Some(self.config.log_driver.clone()),
                config: Some(self.config.log_opts.clone().into_iter().collect()),
            });
        }
        let c = Container {
            id: id.clone(),
            name: name.clone(),
            created: berth_image::model::now_rfc3339(),
            image_id: image.id().to_string(),
            config,
            host_config: hc,
            state: State::created(),
            path,
            args,
            restart_count: 0,
            has_been_started: false,
            manually_stopped: false,
            log_path: String::new(),
            platform: "linux".into(),
            run: 0,
            endpoints,
            mounts: mounts.clone(),
        };
        // The writable layer first: a record always has its snapshot.
        let images = self.images.clone();
        let (key, image_id) = (id.clone(), image.id().to_string());
        let prepared = tokio::task::spawn_blocking(move || images.prepare_container_sized(&key, &image_id, size)).await?;
        if let Err(e) = prepared {
            self.release_mounts(&id, &mounts, true).await;
            self.containers.release_name(&name, &id);
            return Err(e.into());
        }
        if let Err(e) = self.containers.insert(c) {
            let images = self.images.clone();
            let key = id.clone();
            let _ = tokio::task::spawn_blocking(move || images.snapshots().remove(&key)).await;
            self.release_mounts(&id, &mounts, true).await;
            self.containers.release_name(&name, &id);
            return Err(e.into());
        }
        self.events.container(&id, "create", &[("name", &name), ("image", &image_ref)]);
        Ok((id, Vec::new()))
    }

    /// `GET /containers/{id}/json`.
    pub async fn inspect_container(&self, reference: &str, size: bool) -> ApiResult<Value> {
        let h = self.container(reference)?;
        let c = h.lock().await.clone();
        let mut v = inspect_json(&c, &self.containers.container_dir(&c.id));
        v["NetworkSettings"] = self.network_settings(&c);
        if size {
            let (rw, rootfs) = self.container_sizes(&c).await;
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rootfs);
        }
        Ok(v)
    }

    /// Bytes in the container's writable layer, and that plus its image.
    pub async fn container_sizes(&self, c: &Container) -> (i64, i64) {
        let images = self.images.clone();
        let (key, image_id) = (c.id.clone(), c.image_id.clone());
        tokio::task::spawn_blocking(move || {
            let rw = images.snapshots().usage(&key).map(|u| u as i64).unwrap_or(0);
            let image = images.inspect(&image_id).map(|i| i.size).unwrap_or(0);
            (rw, rw + image)
        })
        .await
        .unwrap_or((0, 0))
    }

    /// `GET /containers/json`.
    pub async fn list_containers(&self, all: bool, limit: Option<usize>, size: bool, filters: &Filters) -> ApiResult<Vec<Value>> {
        let mut list = Vec::new();
        for h in self.containers.all() {
            let c = h.lock().await.clone();
            if !all && !c.state.status.is_alive() && c.state.status != Status::Restarting && filters.is_empty() {
                continue;
            }
            if !filters.matches(&c)? {
                continue;
            }
            list.push(c);
        }
        list.sort_by(|a, b| b.created.cmp(&a.created));
        if let Some(n) = limit.filter(|n| *n > 0) {
            list.truncate(n);
        }
        let mut out = Vec::new();
        for c in &list {
            let mut v = summary_json(c);
            v["Ports"] = self.port_summary(c);
            v["NetworkSettings"] = serde_json::json!({"Networks": self.network_settings(c)["Networks"]});
            if size {
                let (rw, rootfs) = self.container_sizes(c).await;
                v["SizeRw"] = json!(rw);
                v["SizeRootFs"] = json!(rootfs);
            }
            out.push(v);
        }
        Ok(out)
    }

    /// `POST /containers/{id}/rename`.
    pub async fn rename_container(&self, reference: &str, new_name: &str) -> ApiResult<()> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name).to_owned();
        if !names::valid(&new_name) {
            return Err(ApiError::invalid(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let h = self.container(reference)?;
        let mut c = h.lock().await;
        if c.name == new_name {
            return Err(ApiError::invalid("Renaming a container with the same name as its current name"));
        }
        self.containers.reserve_name(&new_name, &c.id).map_err(|other| {
            ApiError::conflict(format!(
                "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            ))
        })?;
        // The embedded DNS of its networks answers to the new name (a
        // running container's endpoints; a stopped one has none).
        let (id, n2) = (c.id.clone(), new_name.clone());
        if let Err(e) = self.net(move |ctl| ctl.rename(&id, &n2)).await {
            self.containers.release_name(&new_name, &c.id);
            return Err(e);
        }
        let old = std::mem::replace(&mut c.name, new_name.clone());
        if let Err(e) = self.containers.save(&c) {
            c.name = old.clone();
            let id = c.id.clone();
            let _ = self.net(move |ctl| ctl.rename(&id, &old)).await;
            self.containers.release_name(&new_name, &c.id);
            return Err(e.into());
        }
        self.containers.release_name(&old, &c.id);
        self.events.container(&c.id, "rename", &[("name", &new_name), ("oldName", &format!("/{old}"))]);
        Ok(())
    }
}

/// Options berth does not do yet: refused plainly rather than ignored.
fn check_unsupported(hc: &HostConfig) -> ApiResult<()> {
    if let Some(u) = hc.userns_mode.as_deref().filter(|u| !u.is_empty() && *u != "host") {
        return Err(ApiError::not_implemented(format!("--userns {u:?} is not implemented")));
    }
    Ok(())
}

fn validate_host_config(hc: &HostConfig) -> ApiResult<()> {
    if let Some(m) = hc.memory.filter(|m| *m > 0) {
        if m < 6 * 1024 * 1024 {
            return Err(ApiError::invalid("Minimum memory limit allowed is 6MB"));
        }
        if let Some(s) = hc.memory_swap.filter(|s| *s > 0)
            && s < m
        {
            return Err(ApiError::invalid("Minimum memoryswap limit should be larger than memory limit, see usage"));
        }
    }
    if hc.memory_swap.is_some_and(|s| s > 0) && hc.memory.unwrap_or(0) == 0 {
        return Err(ApiError::invalid("You should always set the Memory limit when using Memoryswap limit, see usage"));
    }
    if let Some(p) = &hc.restart_policy {
        use berth_api::models::RestartPolicyNameEnum as R;
        let retries = p.maximum_retry_count.unwrap_or(0);
        match p.name {
            Some(R::ON_FAILURE) if retries < 0 => {
                return Err(ApiError::invalid("invalid restart policy: maximum retry count cannot be negative"));
            }
            Some(R::ALWAYS | R::UNLESS_STOPPED | R::NO) if retries != 0 => {
                return Err(ApiError::invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'"));
            }
            _ => {}
        }
        if hc.auto_remove == Some(true) && !matches!(p.name, None | Some(R::NO) | Some(R::EMPTY)) {
            return Err(ApiError::invalid("can't create 'AutoRemove' container with restart policy"));
        }
    }
    oci::capabilities(hc)?;
    oci::security_opts(hc)?;
    Ok(())
}

/// The container's config with its image's defaults filled in, as docker
/// stores it (`Env` image first, user second; `Cmd` dropped when an
/// entrypoint is given without one).
pub fn merge_config(body: &ContainerCreateBody, image: &berth_image::model::ContainerConfig, image_ref: &str) -> ContainerConfig {
    let mut c = ContainerConfig {
        hostname: body.hostname.clone(),
        domainname: body.domainname.clone(),
        user: body.user.clone().filter(|u| !u.is_empty()).or_else(|| Some(image.user.clone())),
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        exposed_ports: body.exposed_ports.clone(),
        tty: body.tty,
        open_stdin: body.open_stdin,
        stdin_once: body.stdin_once,
        env: None,
        cmd: body.cmd.clone().filter(|c| !c.is_empty()),
        healthcheck: body.healthcheck.clone(),
        args_escaped: body.args_escaped,
        image: Some(image_ref.to_owned()),
        volumes: body.volumes.clone(),
        working_dir: body.working_dir.clone().filter(|w| !w.is_empty()).or_else(|| Some(image.working_dir.clone())),
        entrypoint: body.entrypoint.clone(),
        network_disabled: body.network_disabled,
        on_build: None,
        labels: body.labels.clone(),
        stop_signal: body.stop_signal.clone().or_else(|| image.stop_signal.clone()),
        stop_timeout: body.stop_timeout,
        shell: body.shell.clone(),
    };
    // Env: the image's, overridden key by key by the container's.
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for e in body.env.iter().flatten() {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    c.env = Some(env);
    match (&body.entrypoint, &c.cmd) {
        // An explicit empty entrypoint resets the image's.
        (Some(ep), _) if ep.is_empty() || ep.len() == 1 && ep[0].is_empty() => c.entrypoint = None,
        (Some(_), _) => {}
        (None, _) => c.entrypoint = image.entrypoint.clone(),
    }
    if c.cmd.is_none() && body.entrypoint.is_none() {
        c.cmd = image.cmd.clone();
    }
    let mut labels: HashMap<String, String> = image.labels.clone().unwrap_or_default().into_iter().collect();
    labels.extend(body.labels.clone().unwrap_or_default());
    c.labels = Some(labels);
    if c.exposed_ports.is_none() {
        c.exposed_ports = image.exposed_ports.as_ref().map(|p| p.keys().cloned().collect());
    }
    if c.healthcheck.is_none() {
        c.healthcheck = image.healthcheck.clone().and_then(|h| serde_json::from_value(h).ok());
    }
    c
}

/// `Path` and `Args`: entrypoint + cmd.
pub fn entrypoint_and_cmd(c: &ContainerConfig) -> Option<(String, Vec<String>)> {
    let mut all: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    all.extend(c.cmd.clone().unwrap_or_default());
    let mut it = all.into_iter();
    let path = it.next()?;
    Some((path, it.collect()))
}

/// docker's `Status` column: "Up 3 minutes", "Exited (0) 2 hours ago"...
pub fn status_text(c: &Container) -> String {
    let since = |t: &str| humanize_since(t);
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let health = match c.state.health.as_str() {
                "" => String::new(),
                "starting" => " (health: starting)".into(),
                h => format!(" ({h})"),
            };
            format!("Up {}{health}", since(&c.state.started_at))
        }
        Status::Paused => format!("Up {} (Paused)", since(&c.state.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", c.state.exit_code, since(&c.state.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!("Exited ({}) {} ago", c.state.exit_code, since(&c.state.finished_at)),
        Status::Dead => "Dead".into(),
    }
}

/// "3 seconds", "About a minute", "2 hours": docker's units.HumanDuration.
pub fn humanize_since(rfc3339: &str) -> String {
    let Ok(t) = humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z').split('.').next().unwrap_or("")) else {
        return "Less than a second".into();
    };
    let secs = std::time::SystemTime::now().duration_since(t).map(|d| d.as_secs()).unwrap_or(0);
    human_duration(secs)
}

pub fn human_duration(secs: u64) -> String {
    let mins = secs / 60;
    let hours = mins / 60;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if mins == 1 => "About a minute".into(),
        _ if mins < 60 => format!("{mins} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

fn created_unix(c: &Container) -> i64 {
    berth_image::model::parse_time(&c.created).unwrap_or(0)
}

/// One row of `GET /containers/json`.
pub fn summary_json(c: &Container) -> Value {
    let command = std::iter::once(c.path.as_str()).chain(c.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
    let net = c.host_config.network_mode.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.config.image.clone().unwrap_or_default(),
        "ImageID": c.image_id,
        "Command": command,
        "Created": created_unix(c),
        "Ports": [],
        "Labels": c.config.labels.clone().unwrap_or_default(),
        "State": c.state.status.as_str(),
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": net},
        "NetworkSettings": {"Networks": {}},
        "Mounts": crate::volumes::mounts::inspect_json(&c.mounts),
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect_json(c: &Container, dir: &std::path::Path) -> Value {
    let s = &c.state;
    let health = if s.health.is_empty() {
        Value::Null
    } else {
        json!({"Status": s.health, "FailingStreak": s.failing_streak, "Log": s.health_log.iter().map(|h| json!({
            "Start": h.start, "End": h.end, "ExitCode": h.exit_code, "Output": h.output})).collect::<Vec<_>>()})
    };
    let mut state = json!({
        "Status": s.status.as_str(),
        "Running": s.status.is_alive(),
        "Paused": s.status == Status::Paused,
        "Restarting": s.status == Status::Restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == Status::Dead,
        "Pid": if s.status.is_alive() { s.pid } else { 0 },
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": s.started_at,
        "FinishedAt": s.finished_at,
    });
    if !health.is_null() {
        state["Health"] = health;
    }
    let (hostname, hosts, resolv) = oci::etc_files(dir);
    let started = c.has_been_started;
    let path_or_empty = |p: std::path::PathBuf| if started { p.to_string_lossy().into_owned() } else { String::new() };
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": path_or_empty(resolv),
        "HostnamePath": path_or_empty(hostname),
        "HostsPath": path_or_empty(hosts),
        "LogPath": c.log_path,
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": c.platform,
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Value::Null,
        "HostConfig": serde_json::to_value(&c.host_config).unwrap_or(Value::Null),
        "GraphDriver": {"Name": "overlay2", "Data": {}},
        "Mounts": crate::volumes::mounts::inspect_json(&c.mounts),
        "Config": serde_json::to_value(&c.config).unwrap_or(Value::Null),
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": Value::Null,
            "SecondaryIPv6Addresses": Value::Null, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {}
        },
    })
}

/// Docker's `filters` query parameter: `{"status":["running"],"name":["web"]}`.
#[derive(Debug, Clone, Default)]
pub struct Filters(pub HashMap<String, Vec<String>>);

impl Filters {
    /// Parse the JSON; both the map-of-lists and docker's older
    /// map-of-maps (`{"status":{"running":true}}`) forms.
    pub fn parse(raw: Option<&str>) -> ApiResult<Filters> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(Filters::default()) };
        let v: Value = serde_json::from_str(raw).map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
        let obj = v.as_object().ok_or_else(|| ApiError::invalid("invalid filter: not an object"))?;
        let mut out = HashMap::new();
        for (k, v) in obj {
            let vals = match v {
                Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                Value::Object(m) => m.keys().cloned().collect(),
                Value::String(s) => vec![s.clone()],
                _ => return Err(ApiError::invalid(format!("invalid filter {k:?}"))),
            };
            out.insert(k.clone(), vals);
        }
        Ok(Filters(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, k: &str) -> &[String] {
        self.0.get(k).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether a container passes the filters (`ps --filter`).
    pub fn matches(&self, c: &Container) -> ApiResult<bool> {
        for (key, values) in &self.0 {
            let ok = match key.as_str() {
                "id" => values.iter().any(|v| c.id.starts_with(v)),
                "name" => values.iter().any(|v| c.name.contains(v.trim_start_matches('/'))),
                "status" => values.iter().any(|v| v == c.state.status.as_str()),
                "exited" => c.state.status == Status::Exited && values.iter().any(|v| v.parse::<i64>().ok() == Some(c.state.exit_code)),
                "label" => values.iter().all(|v| label_matches(c.config.labels.as_ref(), v)),
                "ancestor" => values.iter().any(|v| c.config.image.as_deref() == Some(v.as_str()) || c.image_id.contains(v.trim_start_matches("sha256:"))),
                "health" => values.iter().any(|v| (v == "none" && c.state.health.is_empty()) || v == &c.state.health),
                "before" | "since" | "network" | "volume" | "publish" | "expose" | "is-task" | "isolation" => true,
                other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// `label=key` or `label=key=value`.
pub fn label_matches(labels: Option<&HashMap<String, String>>, filter: &str) -> bool {
    let Some(labels) = labels else { return false };
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// Shared daemon handle for route handlers.
pub type Shared = Arc<Daemon>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_merges_image_defaults() {
        let image = berth_image::model::ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=img".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: None,
            working_dir: "/w".into(),
            user: "user".into(),
            ..Default::default()
        };
        let body = ContainerCreateBody { env: Some(vec!["A=ctr".into(), "B=2".into()]), ..Default::default() };
        let c = merge_config(&body, &image, "bb");
        assert_eq!(c.env.as_ref().unwrap(), &vec!["PATH=/bin".to_string(), "A=ctr".into(), "B=2".into()]);
        assert_eq!(c.cmd.as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.user.as_deref(), Some("user"));
        // An entrypoint given without a command drops the image's command.
        let body = ContainerCreateBody { entrypoint: Some(vec!["echo".into()]), ..Default::default() };
        let c = merge_config(&body, &image, "bb");
        assert_eq!(entrypoint_and_cmd(&c).unwrap(), ("echo".into(), vec![]));
    }

    #[test]
    fn durations_read_like_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(70), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn filters_parse_both_forms() {
        let f = Filters::parse(Some(r#"{"status":{"running":true},"name":["web"]}"#)).unwrap();
        assert_eq!(f.get("status"), ["running"]);
        assert_eq!(f.get("name"), ["web"]);
        assert!(Filters::parse(Some("nope")).is_err());
    }
}
