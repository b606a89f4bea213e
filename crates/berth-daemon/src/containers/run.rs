//! The running side of containers: a shim per run, start, stop, kill,
//! wait, remove, restart policies, and reattaching after a daemon restart.
//!
//! A container's lock is held while its state changes, never while waiting
//! for its process: the exit monitor needs it to record the exit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_shim::protocol::{AttachOptions, ExitStatus};
use tokio::net::UnixStream;

use super::ops::{WaitState, not_running};
use super::restart;
use super::state::Status;
use super::store::Container;
use crate::Daemon;
use crate::error::{ApiError, ApiResult};

/// One waiting attach: its options, and where its stream goes.
type PendingAttach = (AttachOptions, tokio::sync::oneshot::Sender<ApiResult<UnixStream>>);

/// Attaches made before the container started (`docker run` attaches,
/// then starts): handed their stream when the shim is up.
#[derive(Default)]
pub struct PendingAttaches {
    map: Mutex<HashMap<String, Vec<PendingAttach>>>,
}

impl PendingAttaches {
    fn add(&self, id: &str, opts: AttachOptions) -> tokio::sync::oneshot::Receiver<ApiResult<UnixStream>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.map.lock().expect("pending lock").entry(id.to_owned()).or_default().push((opts, tx));
        rx
    }

    fn take(&self, id: &str) -> Vec<PendingAttach> {
        self.map.lock().expect("pending lock").remove(id).unwrap_or_default()
    }
}

/// The exit code docker reports when the process could not be started.
pub fn start_failure_code(message: &str) -> i64 {
    if message.contains("executable file not found") || message.contains("no such file or directory") {
        127
    } else if message.contains("permission denied") || message.contains("not a directory") {
        126
    } else {
        128
    }
}

impl Daemon {
    /// A shim's directory: named by the short id, as its socket path must
    /// fit in a sockaddr_un (108 bytes) under any reasonable exec root.
    pub fn shim_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("shims").join(&id[..id.len().min(12)])
    }

    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("bundles").join(id)
    }

    /// Mount the rootfs, write /etc files and config.json: the bundle the
    /// shim creates the container from.
    async fn prepare_bundle(&self, c: &Container) -> ApiResult<PathBuf> {
        let rootfs = self.rootfs_dir(&c.id);
        let bundle = self.bundle_dir(&c.id);
        let dir = self.containers.container_dir(&c.id);
        let (net_pid, pid_pid, ipc_pid) = (
            self.mode_pid(c.host_config.network_mode.as_deref()).await?,
            self.mode_pid(c.host_config.pid_mode.as_deref()).await?,
            self.mode_pid(c.host_config.ipc_mode.as_deref()).await?,
        );
        let net = self.setup_container_network(c).await?;
        let id = c.id.clone();
        let images = self.images.clone();
        let c = c.clone();
        let init_path = self.config.init_path.clone();
        let volumes = self.volumes.clone();
        let cgroups_path = format!(
            "/{}/{}",
            c.host_config.cgroup_parent.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| self.config.cgroup_parent.clone()).trim_matches('/'),
            c.id
        );
        let result = tokio::task::spawn_blocking(move || -> ApiResult<PathBuf> {
            super::fs::mount_rootfs(&images, &c.id, &rootfs)?;
            let result = (|| {
                let user_mounts = crate::volumes::mounts::prepare_run(&volumes, &c, &rootfs)?;
                let (hostname_file, hosts_file, resolv) = super::oci::etc_files(&dir);
                let hostname = c.config.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| c.id[..12].to_owned());
                let write = |p: &PathBuf, data: String| {
                    berth_sys::fs::write_replace(p, data.as_bytes()).map_err(|e| ApiError::internal(e.to_string()))
                };
                write(&hostname_file, format!("{hostname}\n"))?;
                write(&hosts_file, net.hosts)?;
                write(&resolv, net.resolv)?;
                let user = super::user::resolve(
                    &rootfs,
                    c.config.user.as_deref().unwrap_or(""),
                    c.host_config.group_add.as_deref().unwrap_or(&[]),
                )
                .map_err(|e| ApiError::invalid(e.to_string()))?;
                let caps = super::oci::capabilities(&c.host_config)?;
                let uts_host = c.host_config.uts_mode.as_deref() == Some("host");
                let input = super::oci::SpecInput {
                    rootfs: rootfs.clone(),
                    user,
                    hostname_file: (!uts_host).then_some(hostname_file),
                    hosts_file: Some(hosts_file),
                    resolv_conf: Some(resolv),
                    cgroups_path,
                    net_container_pid: net_pid,
                    netns: net.netns,
                    pid_container_pid: pid_pid,
                    ipc_container_pid: ipc_pid,
                    cgroup_v2: matches!(berth_cgroups::Hierarchy::detect().map(|h| h.mode()), Ok(berth_cgroups::Mode::Unified)),
                    seccomp: super::oci::seccomp_for(&c.host_config, &caps)?,
                    init: if c.host_config.init == Some(true) {
                        if !super::oci::is_static_elf(&init_path) {
                            return Err(ApiError::invalid(format!(
                                "--init: {} is not a static binary (build it with scripts/build-init.sh, or set init-path)",
                                init_path.display()
                            )));
                        }
                        Some(init_path.clone())
                    } else {
                        None
                    },
                };
                let mut spec = super::oci::build(&c, &input)?;
                crate::volumes::mounts::add_to_spec(&mut spec, user_mounts);
                std::fs::create_dir_all(&bundle).map_err(|e| ApiError::internal(format!("create bundle: {e}")))?;
                berth_sys::fs::write_replace(&bundle.join("config.json"), spec.to_string().as_bytes())
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                Ok(bundle.clone())
            })();
            if result.is_err() {
                volumes.unmount_all(&c.id);
                super::fs::unmount_rootfs(&rootfs);
            }
            result
        })
        .await;
        let result = result.map_err(ApiError::from).and_then(|r| r);
        if result.is_err() {
            self.teardown_container_network(&id).await;
        }
        result
    }

    /// The pid of the container a `container:<x>` mode names.
    async fn mode_pid(&self, mode: Option<&str>) -> ApiResult<Option<i32>> {
        let Some(other) = mode.and_then(|m| m.strip_prefix("container:")) else { return Ok(None) };
        let h = self.container(other)?;
        let o = h.lock().await;
        if !o.state.status.is_alive() {
            return Err(ApiError::conflict(format!("cannot join container {}: it is not running", o.id)));
        }
        Ok(Some(o.state.pid))
    }

    /// `POST /containers/{id}/start`.
    pub async fn start_container(self: &Arc<Self>, reference: &str) -> ApiResult<()> {
        let h = self.container(reference)?;
        let mut c = h.lock().await;
        match c.state.status {
            s if s.is_alive() => return Err(ApiError::new(berth_api::ErrorKind::NotModified, "container already started")),
            Status::Removing => return Err(ApiError::conflict(format!("container {} is marked for removal and cannot be started", c.id))),
            Status::Dead => return Err(ApiError::conflict(format!("container {} is dead and cannot be started", c.id))),
            _ => {}
        }
        c.manually_stopped = false;
        self.start_locked(&mut c).await
    }

    /// Start a run of `c` (its lock held): bundle, shim, pending attaches,
    /// release, record, monitor.
    pub(crate) fn start_locked<'a>(
        self: &'a Arc<Self>,
        c: &'a mut Container,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<()>> + Send + 'a>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let bundle = match self.prepare_bundle(c).await {
                Ok(b) => b,
                Err(e) => return Err(self.record_start_failure(c, e)),
            };
            let log_path = self.containers.container_dir(&c.id).join(format!("{}-json.log", c.id));
            let t1 = Instant::now();
            let spawned = crate::shim::spawn(self, c, &bundle, &log_path).await;
            let t2 = Instant::now();
            let client = match spawned {
                Ok(client) => client,
                Err(e) => {
                    self.cleanup_run(&c.id).await;
                    return Err(self.record_start_failure(c, e));
                }
            };
            for (opts, tx) in self.pending.take(&c.id) {
                let _ = tx.send(crate::shim::attach(&client, opts).await);
            }
            let pid = match crate::shim::start(&client).await {
                Ok(pid) => pid,
                Err(e) => {
                    self.cleanup_run(&c.id).await;
                    return Err(self.record_start_failure(c, e));
                }
            };
            let t3 = Instant::now();
            tracing::debug!(container = %c.id, bundle = ?(t1 - t0), spawn = ?(t2 - t1), start = ?(t3 - t2), "started");
            c.run += 1;
            c.state.status = Status::Running;
            c.state.pid = pid;
            c.state.error.clear();
            c.state.exit_code = 0;
            c.state.oom_killed = false;
            c.state.started_at = berth_image::model::now_rfc3339();
            c.has_been_started = true;
            c.log_path = log_path.to_string_lossy().into_owned();
            if c.config.healthcheck.as_ref().and_then(|h| h.test.as_ref()).is_some_and(|t| t.first().map(String::as_str) != Some("NONE")) {
                c.state.health = "starting".into();
                c.state.failing_streak = 0;
            }
            self.containers.save_state(c)?;
            self.waits.update(&c.id, |w| w.running = true);
            self.events.container(&c.id, "start", &[("name", &c.name), ("image", c.config.image.as_deref().unwrap_or(""))]);
            self.clone().monitor(c.id.clone(), c.run, client, Instant::now());
            super::health::spawn(self.clone(), c);
            Ok(())
        })
    }

    /// A start that failed: the record says so, as docker's does; attaches
    /// waiting for the start get the error; an AutoRemove container goes.
    fn record_start_failure(self: &Arc<Self>, c: &mut Container, e: ApiError) -> ApiError {
        for (_, tx) in self.pending.take(&c.id) {
            let _ = tx.send(Err(ApiError::new(e.kind, e.message.clone())));
        }
        if c.host_config.auto_remove == Some(true) {
            let d = self.clone();
            let id = c.id.clone();
            tokio::spawn(async move {
                if let Err(e) = d.remove_container_with_volumes(&id, true, true).await {
                    tracing::warn!(container = %id, "auto-remove after a failed start: {e}");
                }
            });
        }
        let code = start_failure_code(&e.message);
        c.state.error = e.message.clone();
        c.state.exit_code = code;
        if c.state.status != Status::Created {
            c.state.status = Status::Exited;
        }
        let _ = self.containers.save_state(c);
        self.events.container(&c.id, "die", &[("name", &c.name), ("exitCode", &code.to_string())]);
        let kind = if code == 127 || code == 126 { berth_api::ErrorKind::InvalidParameter } else { e.kind };
        ApiError::new(kind, format!("failed to create task for container: {}", e.message))
    }

    /// Unmount the rootfs, drop the bundle and the shim's state.
    async fn cleanup_run(&self, id: &str) {
        self.teardown_container_network(id).await;
        let (rootfs, bundle, shim) = (self.rootfs_dir(id), self.bundle_dir(id), self.shim_dir(id));
        let runtime = self.runtime();
        let volumes = self.volumes.clone();
        let id = id.to_owned();
        let _ = tokio::task::spawn_blocking(move || {
            // A shim that died before deleting its container leaves it behind.
            let _ = runtime.delete(&id, true);
            volumes.unmount_all(&id);
            super::fs::unmount_rootfs(&rootfs);
            let _ = std::fs::remove_dir_all(&bundle);
            let _ = std::fs::remove_dir_all(&shim);
        })
        .await;
    }

    /// Wait for run `run` of container `id` to exit, then record it.
    fn monitor(self: Arc<Self>, id: String, run: u64, client: crate::shim::Client, started: Instant) {
        tokio::spawn(async move {
            let status = crate::shim::wait(&client, &self.shim_dir(&id)).await;
            self.on_exit(&id, run, status, started.elapsed()).await;
        });
    }

    /// Record an exit, then restart, auto-remove, or leave it exited.
    pub(crate) async fn on_exit(self: &Arc<Self>, id: &str, run: u64, status: ExitStatus, ran_for: Duration) {
        let Ok(h) = self.container(id) else { return };
        let mut c = h.lock().await;
        if c.run != run || !(c.state.status.is_alive() || c.state.status == Status::Removing) {
            return;
        }
        c.state.status = Status::Exited;
        c.state.exit_code = status.code as i64;
        c.state.oom_killed = status.oom_killed;
        c.state.finished_at = status.time.clone();
        c.state.pid = 0;
        if !c.state.health.is_empty() {
            c.state.health = "unhealthy".into();
        }
        let _ = self.containers.save_state(&c);
        crate::shim::shutdown(&self.shim_dir(id)).await;
        self.cleanup_run(id).await;
        if status.oom_killed {
            self.events.container(id, "oom", &[("name", &c.name)]);
        }
        self.events.container(
            id,
            "die",
            &[("name", &c.name), ("exitCode", &status.code.to_string()), ("image", c.config.image.as_deref().unwrap_or(""))],
        );
        let code = status.code as i64;
        self.waits.update(id, |w| {
            w.exits += 1;
            w.running = false;
            w.exit_code = code;
        });
        let exit = restart::Exit {
            code,
            manually_stopped: c.manually_stopped,
            restart_count: c.restart_count,
            daemon_starting: false,
        };
        if restart::should_restart(c.host_config.restart_policy.as_ref(), exit) {
            let delay = restart::next_delay(self.backoff(id, None), ran_for);
            self.backoff(id, Some(delay));
            c.state.status = Status::Restarting;
            let _ = self.containers.save_state(&c);
            drop(c);
            let d = self.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let Ok(h) = d.container(&id) else { return };
                let mut c = h.lock().await;
                if c.state.status != Status::Restarting || c.manually_stopped {
                    return;
                }
                c.restart_count += 1;
                if let Err(e) = d.start_locked(&mut c).await {
                    tracing::warn!(container = %id, "restart failed: {e}");
                    c.state.status = Status::Exited;
                    let _ = d.containers.save_state(&c);
                }
            });
            return;
        }
        if c.host_config.auto_remove == Some(true) {
            drop(c);
            if let Err(e) = self.remove_container_with_volumes(id, true, true).await {
                tracing::warn!(container = %id, "auto-remove: {e}");
            }
        }
    }

    /// Read (None) or set the current restart backoff of a container.
    fn backoff(&self, id: &str, set: Option<Duration>) -> Option<Duration> {
        let mut m = self.backoffs.lock().expect("backoff lock");
        match set {
            Some(d) => m.insert(id.to_owned(), d),
            None => m.get(id).copied(),
        }
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill_container(&self, reference: &str, signal: &str) -> ApiResult<()> {
        let h = self.container(reference)?;
        let mut c = h.lock().await;
        if !c.state.status.is_alive() {
            return Err(ApiError::conflict(format!("Cannot kill container: {reference}: Container {} is not running", c.id)));
        }
        let sig = parse_signal(signal)?;
        if matches!(sig, nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGTERM) {
            c.manually_stopped = true;
            self.containers.save_state(&c)?;
        }
        // Like docker, SIGKILL returns once the container is gone (or after
        // 10 s), so a remove right after a kill finds it stopped.
        let sigkill = sig == nix::sys::signal::Signal::SIGKILL;
        let rx = sigkill.then(|| self.waits.subscribe(&c.id, WaitState::default));
        let exits = rx.as_ref().map_or(0, |rx| rx.borrow().exits);
        self.signal(&c.id, sig, false)?;
        if sigkill && c.state.status == Status::Paused {
            let _ = self.runtime().resume(&c.id);
        }
        self.events.container(&c.id, "kill", &[("name", &c.name), ("signal", &(sig as i32).to_string())]);
        drop(c);
        if let Some(mut rx) = rx {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|w| w.exits > exits)).await;
        }
        Ok(())
    }

    fn signal(&self, id: &str, sig: nix::sys::signal::Signal, all: bool) -> ApiResult<()> {
        match self.runtime().kill(id, sig, all) {
            Ok(()) => Ok(()),
            Err(berth_runtime::container::ContainerError::Status { .. }) => Err(not_running(id)),
            Err(e) => Err(ApiError::internal(e.to_string())),
        }
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the
    /// timeout (the container's StopTimeout, else 10 s).
    pub async fn stop_container(&self, reference: &str, timeout: Option<i64>, signal: Option<&str>) -> ApiResult<()> {
        let h = self.container(reference)?;
        let (id, name, sig, timeout, mut rx) = {
            let mut c = h.lock().await;
            match c.state.status {
                Status::Restarting => {
                    c.manually_stopped = true;
                    c.state.status = Status::Exited;
                    self.containers.save_state(&c)?;
                    return Ok(());
                }
                s if !s.is_alive() => {
                    return Err(ApiError::new(berth_api::ErrorKind::NotModified, "container already stopped"));
                }
                _ => {}
            }
            c.manually_stopped = true;
            self.containers.save_state(&c)?;
            let sig = parse_signal(signal.or(c.config.stop_signal.as_deref()).unwrap_or("SIGTERM"))?;
            let timeout = timeout.or(c.config.stop_timeout).unwrap_or(10);
            let rx = self.waits.subscribe(&c.id, WaitState::default);
            (c.id.clone(), c.name.clone(), sig, timeout, rx)
        };
        let exits = rx.borrow().exits;
        let _ = self.signal(&id, sig, false);
        if self.runtime().state(&id).is_ok_and(|s| s.status == berth_runtime::state::Status::Paused) {
            let _ = self.runtime().resume(&id);
        }
        self.events.container(&id, "kill", &[("name", &name), ("signal", &(sig as i32).to_string())]);
        let exited = |w: &WaitState| w.exits > exits;
        let graceful = timeout >= 0 && tokio::time::timeout(Duration::from_secs(timeout as u64), rx.wait_for(exited)).await.is_ok();
        if !graceful {
            let _ = self.signal(&id, nix::sys::signal::Signal::SIGKILL, true);
            self.events.container(&id, "kill", &[("name", &name), ("signal", "9")]);
            if tokio::time::timeout(Duration::from_secs(30), rx.wait_for(exited)).await.is_err() {
                return Err(ApiError::internal(format!("container {id} did not exit after SIGKILL")));
            }
        }
        self.events.container(&id, "stop", &[("name", &name)]);
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart_container(self: &Arc<Self>, reference: &str, timeout: Option<i64>, signal: Option<&str>) -> ApiResult<()> {
        match self.stop_container(reference, timeout, signal).await {
            Ok(()) => {}
            Err(e) if e.kind == berth_api::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.start_container(reference).await?;
        let h = self.container(reference)?;
        let c = h.lock().await;
        self.events.container(&c.id, "restart", &[("name", &c.name)]);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: until not running (default), the next
    /// exit, or removal. Returns (exit code, error message).
    pub async fn wait_container(&self, reference: &str, condition: &str) -> ApiResult<(i64, Option<String>)> {
        let h = self.container(reference)?;
        let (mut rx, start_exits) = {
            let c = h.lock().await;
            let current = WaitState {
                exits: 0,
                running: c.state.status.is_alive() || c.state.status == Status::Restarting,
                exit_code: c.state.exit_code,
                error: c.state.error.clone(),
                removed: false,
            };
            let rx = self.waits.subscribe(&c.id, || current.clone());
            let exits = rx.borrow().exits;
            // Make sure the channel reflects a container that is not running.
            if !current.running {
                self.waits.update(&c.id, |w| {
                    w.running = false;
                    w.exit_code = current.exit_code;
                });
            }
            (rx, exits)
        };
        let done = |w: &WaitState| match condition {
            "next-exit" => w.exits > start_exits || w.removed,
            "removed" => w.removed,
            _ => !w.running || w.exits > start_exits || w.removed,
        };
        let w = rx.wait_for(done).await.map_err(|_| ApiError::internal("container record went away"))?.clone();
        Ok((w.exit_code, (!w.error.is_empty()).then_some(w.error)))
    }

    /// `DELETE /containers/{id}`, keeping its volumes.
    pub async fn remove_container(&self, reference: &str, force: bool) -> ApiResult<()> {
        self.remove_container_with_volumes(reference, force, false).await
    }

    /// `DELETE /containers/{id}?v=…`: with `volumes`, its anonymous volumes go too.
    pub async fn remove_container_with_volumes(&self, reference: &str, force: bool, volumes: bool) -> ApiResult<()> {
        let h = self.container(reference)?;
        let (id, name) = {
            let c = h.lock().await;
            (c.id.clone(), c.name.clone())
        };
        {
            let c = h.lock().await;
            if c.state.status == Status::Removing {
                return Err(ApiError::conflict(format!("removal of container {id} is already in progress")));
            }
            if c.state.status.is_alive() && !force {
                let what = if c.state.status == Status::Paused { "paused" } else { "running" };
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"/{name}\": container is {what}: stop the container before removing or force remove"
                )));
            }
        }
        if force {
            let alive = h.lock().await.state.status.is_alive();
            if alive {
                let mut rx = self.waits.subscribe(&id, WaitState::default);
                let exits = rx.borrow().exits;
                {
                    let mut c = h.lock().await;
                    c.manually_stopped = true;
                    let _ = self.containers.save_state(&c);
                }
                let _ = self.signal(&id, nix::sys::signal::Signal::SIGKILL, true);
                let _ = self.runtime().resume(&id);
                let _ = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|w| w.exits > exits)).await;
            }
        }
        let mut c = h.lock().await;
        if c.state.status.is_alive() {
            return Err(ApiError::conflict(format!("could not kill running container {id}, cannot remove")));
        }
        c.state.status = Status::Removing;
        let _ = self.containers.save_state(&c);
        self.cleanup_run(&id).await;
        let images = self.images.clone();
        let key = id.clone();
        let removed = tokio::task::spawn_blocking(move || images.snapshots().remove(&key)).await?;
        if let Err(e) = removed {
            tracing::warn!(container = %id, "remove snapshot: {e}");
        }
        self.containers.remove(&id, &name)?;
        self.release_mounts(&id, &c.mounts, volumes).await;
        self.waits.update(&id, |w| {
            w.removed = true;
            w.running = false;
        });
        self.waits.forget(&id);
        self.events.container(&id, "destroy", &[("name", &name)]);
        Ok(())
    }

    /// `POST /containers/prune`.
    pub async fn prune_containers(&self, filters: &super::Filters) -> ApiResult<(Vec<String>, i64)> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for h in self.containers.all() {
            let c = h.lock().await.clone();
            if c.state.status.is_alive() || c.state.status == Status::Restarting {
                continue;
            }
            if !filters.get("label").iter().all(|l| super::label_matches(c.config.labels.as_ref(), l)) {
                continue;
            }
            let (rw, _) = self.container_sizes(&c).await;
            if self.remove_container(&c.id, false).await.is_ok() {
                deleted.push(c.id.clone());
                reclaimed += rw;
            }
        }
        Ok((deleted, reclaimed))
    }

    /// An attach stream: at once for a running container, at start for one
    /// not started yet (the future resolves when it starts). Also whether
    /// the container has a tty.
    pub async fn attach_stream(
        &self,
        reference: &str,
        opts: AttachOptions,
    ) -> ApiResult<(std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<UnixStream>> + Send>>, bool)> {
        let h = self.container(reference)?;
        let c = h.lock().await;
        let tty = c.config.tty.unwrap_or(false);
        match c.state.status {
            s if s.is_alive() => {
                let client = crate::shim::connect(&self.shim_dir(&c.id)).await?;
                let stream = crate::shim::attach(&client, opts).await?;
                Ok((Box::pin(async move { Ok(stream) }), tty))
            }
            Status::Created | Status::Exited | Status::Restarting => {
                let rx = self.pending.add(&c.id, opts);
                Ok((Box::pin(async move { rx.await.map_err(|_| ApiError::conflict("container was not started"))? }), tty))
            }
            _ => Err(ApiError::conflict("You cannot attach to a stopped container, start it first")),
        }
    }

    /// After a (re)start of berthd: reattach to the shims that survived,
    /// record the exits that happened meanwhile, apply restart policies.
    pub async fn restore(self: Arc<Self>) {
        for h in self.containers.all() {
            let mut c = h.lock().await;
            let was_alive = c.state.status.is_alive() || c.state.status == Status::Restarting || c.state.status == Status::Removing;
            if !was_alive {
                continue;
            }
            let dir = self.shim_dir(&c.id);
            match crate::shim::connect(&dir).await {
                Ok(client) => {
                    tracing::info!(container = %c.id, "reattached to its shim");
                    self.waits.update(&c.id, |w| w.running = true);
                    if c.state.status == Status::Restarting || c.state.status == Status::Removing {
                        c.state.status = Status::Running;
                        let _ = self.containers.save_state(&c);
                    }
                    self.clone().monitor(c.id.clone(), c.run, client, Instant::now());
                    super::health::spawn(self.clone(), &c);
                }
                Err(_) => {
                    // The shim is gone: its exit record tells what happened,
                    // or the machine went down with it.
                    let status = crate::shim::read_exit(&dir).unwrap_or_else(|| ExitStatus {
                        code: 255,
                        signal: None,
                        time: berth_image::model::now_rfc3339(),
                        oom_killed: false,
                        pid: c.state.pid,
                    });
                    let (id, run) = (c.id.clone(), c.run);
                    if c.state.status != Status::Running && c.state.status != Status::Paused {
                        c.state.status = Status::Running;
                    }
                    drop(c);
                    self.on_exit(&id, run, status, Duration::ZERO).await;
                    // `always` containers come back when the daemon does.
                    let h = match self.container(&id) {
                        Ok(h) => h,
                        Err(_) => continue,
                    };
                    let mut c = h.lock().await;
                    let exit = restart::Exit { code: c.state.exit_code, manually_stopped: c.manually_stopped, restart_count: c.restart_count, daemon_starting: true };
                    if c.state.status == Status::Exited
                        && restart::should_restart(c.host_config.restart_policy.as_ref(), exit)
                        && let Err(e) = self.start_locked(&mut c).await
                    {
                        tracing::warn!(container = %id, "restart at daemon start: {e}");
                    }
                }
            }
        }
        // Containers stopped with `always` but not by the user come back too.
        for h in self.containers.all() {
            let mut c = h.lock().await;
            if c.state.status == Status::Exited && c.has_been_started && !c.manually_stopped
                && restart::name(c.host_config.restart_policy.as_ref()) == berth_api::models::RestartPolicyNameEnum::ALWAYS
                && crate::shim::connect(&self.shim_dir(&c.id)).await.is_err()
            {
                let id = c.id.clone();
                if let Err(e) = self.start_locked(&mut c).await {
                    tracing::warn!(container = %id, "restart at daemon start: {e}");
                }
            }
        }
    }
}

/// `KILL`, `SIGKILL`, `9`.
pub fn parse_signal(s: &str) -> ApiResult<nix::sys::signal::Signal> {
    use nix::sys::signal::Signal;
    let bad = || ApiError::invalid(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_dockers_codes() {
        assert_eq!(start_failure_code("exec: \"x\": executable file not found in $PATH"), 127);
        assert_eq!(start_failure_code("exec: \"/etc\": permission denied"), 126);
        assert_eq!(start_failure_code("mount failed"), 128);
        assert_eq!(parse_signal("term").unwrap(), nix::sys::signal::Signal::SIGTERM);
        assert!(parse_signal("SIGNOPE").is_err());
    }
}
