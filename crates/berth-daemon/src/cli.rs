//! `berthd`'s command line and start-up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use crate::Daemon;
use crate::config::{Config, FileConfig, Tls};

#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "berth's daemon: the Docker Engine API on a unix socket")]
pub struct Args {
    /// Root directory of persistent state
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Root directory of runtime state (sockets, shims)
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// Socket to listen on (unix:///path, or tcp://host:port with TLS)
    #[arg(short = 'H', long = "host")]
    host: Vec<String>,
    /// Group owning the unix socket
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Daemon configuration file (JSON, dockerd's daemon.json keys)
    #[arg(long = "config-file", default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// Debug logging
    #[arg(short = 'D', long)]
    debug: bool,
    #[arg(long)]
    tls: bool,
    #[arg(long)]
    tlsverify: bool,
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    #[arg(long)]
    tlscert: Option<PathBuf>,
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Default log driver for containers
    #[arg(long = "log-driver")]
    log_driver: Option<String>,
    /// Default log driver options (key=value)
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Storage driver options (overlay2.size=<size>: default --storage-opt size of containers)
    #[arg(long = "storage-opt")]
    storage_opt: Vec<String>,
    /// Cgroup parent of containers
    #[arg(long = "cgroup-parent")]
    cgroup_parent: Option<String>,
    /// The static init binary for --init (default: berth-init next to berthd)
    #[arg(long = "init-path")]
    init_path: Option<PathBuf>,
    #[command(flatten)]
    network: crate::network::NetworkFlags,
    /// Registry to reach over HTTP or unverified HTTPS (host[:port] or CIDR)
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// Preferred Docker Hub mirror
    #[arg(long = "registry-mirror")]
    registry_mirror: Vec<String>,
    /// Reach Docker Hub only through the registry mirrors: no fallback to it, no push, login or search of it
    #[arg(long = "registry-mirrors-only")]
    registry_mirrors_only: bool,
    /// Directory of per-registry certificates (<dir>/<host[:port]>/ca.crt, client.cert, client.key)
    #[arg(long = "certs-dir", default_value = "/etc/docker/certs.d")]
    certs_dir: PathBuf,
    /// Layers downloaded at once per pull
    #[arg(long = "max-concurrent-downloads")]
    max_concurrent_downloads: Option<usize>,
    /// Layers uploaded at once per push
    #[arg(long = "max-concurrent-uploads")]
    max_concurrent_uploads: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Images(#[from] berth_image::store::StoreError),
    #[error(transparent)]
    Containers(#[from] crate::containers::store::StoreError),
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    #[error(transparent)]
    Volumes(#[from] berth_volume::VolumeError),
    #[error("invalid --log-opt {0:?}: want key=value")]
    LogOpt(String),
    #[error(transparent)]
    NetworkConfig(#[from] crate::network::NetworkConfigError),
    #[error("networking: {0}")]
    Network(String),
    #[error("{0}")]
    StorageOpt(String),
}

/// Flags over the config file over defaults.
pub fn config(args: &Args) -> Result<Config, StartError> {
    let file = if args.config_file.exists() { FileConfig::load(&args.config_file)? } else { FileConfig::default() };
    let mut log_opts: BTreeMap<String, String> = file.log_opts.clone().unwrap_or_default();
    for o in &args.log_opt {
        let (k, v) = o.split_once('=').ok_or_else(|| StartError::LogOpt(o.clone()))?;
        log_opts.insert(k.to_owned(), v.to_owned());
    }
    let mut storage_size = None;
    let opts = if args.storage_opt.is_empty() { file.storage_opts.clone().unwrap_or_default() } else { args.storage_opt.clone() };
    for o in &opts {
        // dockerd's overlay2 options; berth has one driver, so its other
        // keys are refused rather than silently ignored.
        match o.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim())) {
            Some((k, v)) if k == "overlay2.size" => {
                storage_size = Some(crate::shim::parse_size(v).map_err(|e| StartError::StorageOpt(e.message))?).filter(|s| *s > 0);
            }
            Some((k, _)) => return Err(StartError::StorageOpt(format!("overlay2: unknown option {k}"))),
            None => return Err(StartError::StorageOpt(format!("Unable to parse key/value option: {o}"))),
        }
    }
    let exec_root = args.exec_root.clone().or(file.exec_root.clone()).unwrap_or_else(|| "/run/berth".into());
    let mut hosts = if args.host.is_empty() { file.hosts.clone().unwrap_or_default() } else { args.host.clone() };
    if hosts.is_empty() {
        hosts.push(format!("unix://{}", exec_root.join("berth.sock").display()));
    }
    let tls_on = args.tls || args.tlsverify || file.tls.unwrap_or(false) || file.tlsverify.unwrap_or(false);
    let tls = if tls_on {
        match (args.tlscert.clone().or(file.tlscert.clone()), args.tlskey.clone().or(file.tlskey.clone())) {
            (Some(cert), Some(key)) => Some(Tls {
                verify: args.tlsverify || file.tlsverify.unwrap_or(false),
                ca: args.tlscacert.clone().or(file.tlscacert.clone()),
                cert,
                key,
            }),
            _ => None,
        }
    } else {
        None
    };
    let sibling = |name: &str| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join(name)))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(name))
    };
    let shim_binary = sibling("berth-shim");
    let init_path = args.init_path.clone().or(file.init_path.clone()).unwrap_or_else(|| sibling("berth-init"));
    let c = Config {
        data_root: args.data_root.clone().or(file.data_root.clone()).unwrap_or_else(|| "/var/lib/berth".into()),
        exec_root,
        hosts,
        group: args.group.clone().or(file.group.clone()),
        debug: args.debug || file.debug.unwrap_or(false),
        tls,
        log_driver: args.log_driver.clone().or(file.log_driver.clone()).unwrap_or_else(|| "json-file".into()),
        log_opts,
        storage_size,
        cgroup_parent: args.cgroup_parent.clone().or(file.cgroup_parent.clone()).unwrap_or_else(|| "berth".into()),
        shim_binary,
        init_path,
        network: crate::network::NetworkOptions::resolve(&args.network, &file)?,
        registry: registry_options(args, &file),
    };
    c.validate()?;
    Ok(c)
}

/// Registry options: flags added to the config file's lists, as dockerd.
fn registry_options(args: &Args, file: &FileConfig) -> berth_registry::RegistryOptions {
    let d = berth_registry::RegistryOptions::default();
    let mut insecure = file.insecure_registries.clone().unwrap_or_default();
    insecure.extend(args.insecure_registry.iter().cloned());
    let mut mirrors = file.registry_mirrors.clone().unwrap_or_default();
    mirrors.extend(args.registry_mirror.iter().cloned());
    berth_registry::RegistryOptions {
        insecure_registries: insecure,
        mirrors,
        mirrors_only: args.registry_mirrors_only || file.registry_mirrors_only.unwrap_or(false),
        certs_dir: args.certs_dir.clone(),
        max_concurrent_downloads: args.max_concurrent_downloads.or(file.max_concurrent_downloads).unwrap_or(d.max_concurrent_downloads),
        max_concurrent_uploads: args.max_concurrent_uploads.or(file.max_concurrent_uploads).unwrap_or(d.max_concurrent_uploads),
        ..d
    }
}

pub fn main() -> i32 {
    let args = Args::parse();
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: {e}");
            return 1;
        }
    };
    let filter = if config.debug { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BERTHD_LOG").unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).max_blocking_threads(32).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: start runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(run(config)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("berthd: {e}");
            1
        }
    }
}

/// Open the stores, reconcile with what survived, serve until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<(), StartError> {
    for (what, dir) in [("data root", &config.data_root), ("exec root", &config.exec_root)] {
        std::fs::create_dir_all(dir).map_err(|source| StartError::Io { what, path: dir.clone(), source })?;
    }
    if config.network.uninstall {
        return crate::network::uninstall(&config).map_err(StartError::Network);
    }
    // The image store first: a daemon that can't honour overlay2.size stops
    // before it touches the host's network.
    let images = Arc::new(berth_image::store::ImageStore::open(&config.data_root)?);
    if config.storage_size.is_some() && !images.snapshots().supports_size() {
        return Err(StartError::StorageOpt(
            "Storage option overlay2.size not supported. Filesystem does not support Project Quota".into(),
        ));
    }
    let network = crate::network::Networking::open(&config).map_err(|e| StartError::Network(e.to_string()))?;
    let (containers, _loaded) = crate::containers::store::ContainerStore::open(&config.data_root)?;
    let daemon = Arc::new(Daemon {
        config: config.clone(),
        containers,
        images,
        events: crate::events::Events::new(),
        waits: Default::default(),
        pending: Default::default(),
        backoffs: Default::default(),
        execs: Default::default(),
        started: std::time::Instant::now(),
        network,
        registry: crate::registry::client(config.registry.clone()),
        volumes: Arc::new(berth_volume::VolumeStore::open(&config.data_root)?),
    });
    daemon.restore_volumes().await;
    daemon.reconcile_network().await;
    daemon.clone().restore().await;
    crate::routes::build::reconcile(&daemon);
    let mut listeners = Vec::new();
    for h in &config.hosts {
        if let Some(path) = crate::config::unix_path(h) {
            listeners.push(crate::server::bind_unix(path, config.group.as_deref())?);
            tracing::info!(socket = %path.display(), "API listen");
        }
    }
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for h in &config.hosts {
        let Some(addr) = h.strip_prefix("tcp://") else { continue };
        let tls = config.tls.as_ref().expect("validated: tcp needs tls");
        let tls = crate::server::tls_config(tls)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Io { what: "listen on", path: addr.into(), source })?;
        tracing::info!(%addr, "API listen (TLS)");
        let mut rx = stop_tx.subscribe();
        tasks.push(tokio::spawn(crate::server::serve_tls(listener, tls, daemon.clone(), async move {
            let _ = rx.recv().await;
        })));
    }
    for l in listeners {
        let mut rx = stop_tx.subscribe();
        tasks.push(tokio::spawn(crate::server::serve(l, daemon.clone(), async move {
            let _ = rx.recv().await;
        })));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| StartError::Io { what: "signal handler", path: "SIGTERM".into(), source })?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down; containers keep running");
    let _ = stop_tx.send(());
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
