//! A build step's root filesystem and the RUN container over it.
//!
//! Lifecycle of a [`Workspace`]: `open` prepares a writable snapshot over
//! the parent image's top layer and mounts it; the step changes files
//! through the mount (COPY, WORKDIR) or runs a container on it
//! ([`Workspace::run`], through the `berth-runtime` binary, whose `run`
//! creates, starts, waits for and deletes the container); `commit` unmounts
//! and writes the upper directory as a layer blob (whiteouts for deletions);
//! dropping it unmounts and removes the snapshot and bundle whatever happened.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use berth_image::digest::Digest;
use berth_image::store::ImageStore;
use serde_json::json;

/// Why a step's container or filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("snapshot for {key}: {source}")]
    Snapshot { key: String, source: berth_image::snapshot::SnapshotError },
    #[error("mount {path}: {source}")]
    Mount { path: PathBuf, source: berth_sys::mount::MountError },
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("start {binary}: {source}")]
    Spawn { binary: PathBuf, source: std::io::Error },
    #[error("commit layer: {0}")]
    Commit(String),
    #[error("network for the RUN container: {0}")]
    Network(String),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ExecError + 'a {
    move |source| ExecError::Io { what, path: path.to_owned(), source }
}

/// Fetches images a build needs and does not have (or is told to fetch
/// again with `--pull`): the daemon's registry client.
pub trait Puller: Send + Sync {
    /// Pull `name` for `platform` (`os/arch[/variant]`); lines of progress
    /// go to `progress`. The error is the message the build reports.
    fn pull(&self, name: &str, platform: Option<&str>, progress: &dyn Fn(String)) -> Result<(), String>;
}

/// Gives RUN containers their place on the daemon's default bridge, as
/// docker's classic builder runs them: the daemon's networking, kept
/// behind this trait so that the builder knows nothing of it.
pub trait StepNetwork: Send + Sync {
    /// Make a network namespace for the step container `id` with an
    /// endpoint on the default bridge. The error is the message the build
    /// reports.
    fn attach(&self, id: &str, hostname: &str) -> Result<StepSandbox, String>;
    /// Remove what [`StepNetwork::attach`] made for `id` (also after a failed attach).
    fn detach(&self, id: &str);
}

/// A RUN container's network: the namespace it joins, and its
/// `/etc/hosts` and `/etc/resolv.conf`.
#[derive(Debug, Clone)]
pub struct StepSandbox {
    pub netns: PathBuf,
    pub hosts: String,
    pub resolv_conf: String,
}

/// Where RUN containers are made.
#[derive(Clone)]
pub struct Host {
    pub images: Arc<ImageStore>,
    /// Bundles, mounts and the runtime's state root live here.
    pub work_dir: PathBuf,
    /// The `berth-runtime` binary.
    pub runtime_binary: PathBuf,
    /// Cgroup parent of RUN containers.
    pub cgroup_parent: String,
    /// Where missing images come from; without one, builds use local
    /// images only.
    pub puller: Option<Arc<dyn Puller>>,
    /// The default bridge for RUN steps; without one, RUN steps of the
    /// default network mode use the host's network.
    pub network: Option<Arc<dyn StepNetwork>>,
}

/// After a crash: unmount and remove what builds left (workspaces, views,
/// unpacked contexts) and their snapshots.
pub fn reconcile(host: &Host) {
    // RUN containers whose build died with the daemon: killed and deleted.
    let runtime_root = host.work_dir.join("runtime");
    for e in std::fs::read_dir(&runtime_root).into_iter().flatten().flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if id.starts_with('.') {
            continue;
        }
        let r = Command::new(&host.runtime_binary)
            .arg("--root")
            .arg(&runtime_root)
            .args(["delete", "--force", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !r.is_ok_and(|s| s.success()) {
            tracing::warn!("could not delete interrupted build container {id}");
        }
    }
    for sub in ["containers", "views"] {
        let dir = host.work_dir.join(sub);
        if let Ok(mounts) = berth_sys::mount::mounts_under(&dir) {
            for m in mounts.iter().rev() {
                let _ = berth_sys::mount::unmount_if_mounted(m);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    for e in std::fs::read_dir(&host.work_dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("context-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    for s in host.images.snapshots().list().unwrap_or_default() {
        if s.key.starts_with("build-") {
            let _ = host.images.snapshots().remove(&s.key);
        }
    }
}

/// What a RUN container runs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `none`, `host`, or default (`None`, `default`, `bridge`): the
    /// default bridge through [`Host::network`].
    pub network: Option<String>,
}

/// A step's network while its container runs: detached when dropped,
/// whatever happened.
struct Attached {
    net: Arc<dyn StepNetwork>,
    id: String,
    sandbox: StepSandbox,
}

impl Attached {
    fn new(net: Arc<dyn StepNetwork>, id: &str, hostname: &str) -> Result<Attached, ExecError> {
        match net.attach(id, hostname) {
            Ok(sandbox) => Ok(Attached { net, id: id.to_owned(), sandbox }),
            Err(message) => {
                net.detach(id);
                Err(ExecError::Network(message))
            }
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.net.detach(&self.id);
    }
}

/// A mounted, writable snapshot over a parent layer chain.
pub struct Workspace {
    host: Host,
    pub id: String,
    key: String,
    bundle: PathBuf,
    rootfs: PathBuf,
    mounted: bool,
    /// A container ran on it (so the runtime may have made mount points).
    ran: std::cell::Cell<bool>,
}

pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..n).map(|_| char::from_digit(r.random_range(0..16), 16).expect("hex digit")).collect()
}

impl Workspace {
    pub fn open(host: &Host, parent: Option<&Digest>) -> Result<Workspace, ExecError> {
        let id = random_hex(64);
        let key = format!("build-{}", &id[..12]);
        let bundle = host.work_dir.join("containers").join(&id[..12]);
        let rootfs = bundle.join("rootfs");
        let mut ws = Workspace { host: host.clone(), id, key: key.clone(), bundle, rootfs, mounted: false, ran: Default::default() };
        let mounts =
            host.images.snapshots().prepare(&key, parent).map_err(|source| ExecError::Snapshot { key: key.clone(), source })?;
        std::fs::create_dir_all(&ws.rootfs).map_err(io_err("create bundle", &ws.rootfs))?;
        for m in &mounts {
            m.mount_at(&ws.rootfs).map_err(|source| ExecError::Mount { path: ws.rootfs.clone(), source })?;
            ws.mounted = true;
        }
        Ok(ws)
    }

    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Run a container on the workspace; its stdout and stderr go to
    /// `out` as they come. Returns the exit code.
    pub fn run(&self, spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32, ExecError> {
        let cwd = self.rootfs.join(spec.cwd.trim_start_matches('/'));
        if !cwd.exists() {
            std::fs::create_dir_all(&cwd).map_err(io_err("create working directory", &cwd))?;
        }
        let bridged = !matches!(spec.network.as_deref(), Some("none") | Some("host"));
        let step_net = match &self.host.network {
            Some(n) if bridged => Some(Attached::new(n.clone(), &self.id, &self.id[..12])?),
            _ => None,
        };
        let net_files = match &step_net {
            Some(a) => Some(self.write_net_files(&a.sandbox)?),
            None => None,
        };
        let config = self.bundle.join("config.json");
        let data = serde_json::to_vec(&self.spec(spec, step_net.as_ref().map(|a| a.sandbox.netns.as_path()), net_files.as_ref())).expect("spec serializes");
        std::fs::write(&config, data).map_err(io_err("write spec", &config))?;
        let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe().map_err(|e| ExecError::Io {
            what: "pipe",
            path: self.bundle.clone(),
            source: e.into(),
        })?;
        let w2 = w.try_clone().map_err(io_err("pipe", &self.bundle))?;
        let runtime_root = self.host.work_dir.join("runtime");
        self.ran.set(true);
        let mut child = Command::new(&self.host.runtime_binary)
            .arg("--root")
            .arg(&runtime_root)
            .arg("run")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .stderr(Stdio::from(w2))
            .spawn()
            .map_err(|source| ExecError::Spawn { binary: self.host.runtime_binary.clone(), source })?;
        let mut reader = std::fs::File::from(r);
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let status = child.wait().map_err(|source| ExecError::Spawn { binary: self.host.runtime_binary.clone(), source })?;
        Ok(status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)))
    }

    /// The step's /etc/hosts and /etc/resolv.conf, beside its bundle.
    fn write_net_files(&self, sb: &StepSandbox) -> Result<(PathBuf, PathBuf), ExecError> {
        let hosts = self.bundle.join("hosts");
        let resolv = self.bundle.join("resolv.conf");
        std::fs::write(&hosts, &sb.hosts).map_err(io_err("write", &hosts))?;
        std::fs::write(&resolv, &sb.resolv_conf).map_err(io_err("write", &resolv))?;
        Ok((hosts, resolv))
    }

    /// The OCI spec: `netns` is the namespace of a bridged step, with its
    /// `(hosts, resolv.conf)` files.
    fn spec(&self, s: &RunSpec, netns: Option<&Path>, files: Option<&(PathBuf, PathBuf)>) -> serde_json::Value {
        let caps: Vec<String> = berth_runtime::capabilities::DOCKER_DEFAULT.iter().map(|c| c.to_string()).collect();
        let seccomp = berth_seccomp::docker_default(&caps, berth_seccomp::Arch::native());
        let mount = |dest: &str, typ: &str, src: &str, opts: &[&str]| json!({"destination": dest, "type": typ, "source": src, "options": opts});
        let mut mounts = vec![
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        ];
        let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"})];
        if let (Some(path), Some((hosts, resolv))) = (netns, files) {
            namespaces.push(json!({"type": "network", "path": path}));
            mounts.push(mount("/etc/resolv.conf", "bind", &resolv.to_string_lossy(), &["rbind", "rprivate"]));
            mounts.push(mount("/etc/hosts", "bind", &hosts.to_string_lossy(), &["rbind", "rprivate"]));
        } else if s.network.as_deref() == Some("none") {
            namespaces.push(json!({"type": "network"}));
        } else {
            for f in ["/etc/resolv.conf", "/etc/hosts"] {
                if Path::new(f).exists() {
                    mounts.push(mount(f, "bind", f, &["rbind", "ro", "rprivate"]));
                }
            }
        }
        json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false,
                "user": {"uid": s.uid, "gid": s.gid, "additionalGids": s.additional_gids},
                "args": s.args,
                "env": s.env,
                "cwd": if s.cwd.is_empty() { "/" } else { &s.cwd },
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": false,
            },
            "root": {"path": self.rootfs, "readonly": false},
            "hostname": &self.id[..12],
            "mounts": mounts,
            "linux": {
                "namespaces": namespaces,
                "cgroupsPath": format!("/{}/build-{}", self.host.cgroup_parent.trim_matches('/'), &self.id[..12]),
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "maskedPaths": berth_runtime::defaults::MASKED_PATHS,
                "readonlyPaths": berth_runtime::defaults::READONLY_PATHS,
                "seccomp": seccomp,
            },
        })
    }

    fn unmount(&mut self) -> Result<(), ExecError> {
        if self.mounted {
            berth_sys::mount::unmount_if_mounted(&self.rootfs).map_err(|source| ExecError::Mount { path: self.rootfs.clone(), source })?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Whether the step changed anything.
    pub fn changed(&self) -> Result<bool, ExecError> {
        let upper = self.upper()?;
        Ok(std::fs::read_dir(&upper).map_err(io_err("read upper dir", &upper))?.next().is_some())
    }

    fn upper(&self) -> Result<PathBuf, ExecError> {
        self.host.images.snapshots().upper_dir(&self.key).map_err(|source| ExecError::Snapshot { key: self.key.clone(), source })
    }

    /// Unmount and write the changes as a layer blob: (diff ID, size).
    /// The files a RUN container's runtime made to mount over
    /// (`/etc/resolv.conf`, `/etc/hosts`) stay out while they are empty.
    pub fn commit(mut self) -> Result<(Digest, u64), ExecError> {
        self.unmount()?;
        let upper = self.upper()?;
        let placeholders: Vec<PathBuf> =
            if self.ran.get() { ["etc/resolv.conf", "etc/hosts"].iter().map(PathBuf::from).collect() } else { Vec::new() };
        self.host.images.write_layer_blob(&self.key, &upper, &placeholders).map_err(|e| ExecError::Commit(e.to_string()))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::warn!("build workspace {}: {e}", self.key);
            return;
        }
        if let Err(e) = self.host.images.snapshots().remove(&self.key) {
            tracing::warn!("build snapshot {}: {e}", self.key);
        }
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

/// A read-only view of an image's root filesystem (COPY --from).
pub struct View {
    host: Host,
    key: String,
    path: PathBuf,
}

impl View {
    pub fn open(host: &Host, top: Option<&Digest>) -> Result<View, ExecError> {
        let key = format!("build-view-{}", random_hex(12));
        let path = host.work_dir.join("views").join(&key);
        let view = View { host: host.clone(), key: key.clone(), path };
        let mounts = host.images.snapshots().view(&key, top).map_err(|source| ExecError::Snapshot { key: key.clone(), source })?;
        std::fs::create_dir_all(&view.path).map_err(io_err("create view", &view.path))?;
        for m in &mounts {
            m.mount_at(&view.path).map_err(|source| ExecError::Mount { path: view.path.clone(), source })?;
        }
        Ok(view)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = berth_sys::mount::unmount_if_mounted(&self.path);
        let _ = std::fs::remove_dir(&self.path);
        let _ = self.host.images.snapshots().remove(&self.key);
    }
}
