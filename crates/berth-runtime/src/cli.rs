//! runc's command line over [`Runtime`].

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::container::{ContainerError, CreateOptions, ExecOptions, Runtime};
use crate::log;

#[derive(Parser, Debug)]
#[command(name = "berth-runtime", version, about = "berth's OCI runtime (runc-compatible command line)")]
pub struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Log file (default: stderr only)
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Debug logging (accepted for compatibility)
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for compatibility; berth manages cgroupfs directly
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone, Default)]
struct CreateArgs {
    /// Path to the bundle (default: current directory)
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Unix socket to send the pty master to
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write init's pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Pass this many extra fds (from 3) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for compatibility
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for compatibility
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container (init waits for `start`)
    Create {
        id: String,
        #[command(flatten)]
        args: CreateArgs,
    },
    /// Start a created container
    Start { id: String },
    /// Create, start, wait for and delete a container
    Run {
        id: String,
        #[command(flatten)]
        args: CreateArgs,
        /// Detach from the container's process
        #[arg(long, short = 'd')]
        detach: bool,
        /// Keep the container after it exits
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal to a container's init (or all its processes)
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// Delete a container
    Delete {
        id: String,
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Run a process in a running container
    Exec {
        id: String,
        /// Command and arguments (unless --process)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(long, short = 'e')]
        env: Vec<String>,
        #[arg(long, short = 't')]
        tty: bool,
        /// uid[:gid]
        #[arg(long, short = 'u')]
        user: Option<String>,
        #[arg(long = "additional-gids", short = 'g')]
        additional_gids: Vec<u32>,
        /// process.json to run instead of the command
        #[arg(long, short = 'p')]
        process: Option<PathBuf>,
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "process-label")]
        process_label: Option<String>,
        #[arg(long)]
        apparmor: Option<String>,
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        /// Add a capability
        #[arg(long, short = 'c')]
        cap: Vec<String>,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        #[arg(long = "ignore-paused")]
        ignore_paused: bool,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// List a container's processes
    Ps {
        id: String,
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        /// Arguments for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers
    #[command(alias = "ls")]
    List {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// Accepted for compatibility
        #[arg(long)]
        rootless: bool,
    },
    /// Print what this runtime supports, as JSON
    Features,
}

/// Run the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let format = if cli.log_format == "json" { log::Format::Json } else { log::Format::Text };
    log::init(cli.log.clone(), format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error(&e.to_string());
            1
        }
    }
}

/// Errors of the command line itself.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("unknown signal {0:?}")]
    Signal(String),
    #[error("invalid --user {0:?}: want uid[:gid]")]
    User(String),
    #[error("exec needs a command or --process")]
    NoCommand,
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("ps: {0}")]
    Ps(std::io::Error),
    #[error("{0}")]
    Io(std::io::Error),
}

fn run(cli: Cli) -> Result<i32, CliError> {
    let rt = Runtime::new(&cli.root);
    match cli.command {
        Command::Create { id, args } => {
            rt.create(&id, &create_options(&args, false))?;
            Ok(0)
        }
        Command::Start { id } => {
            rt.start(&id)?;
            Ok(0)
        }
        Command::Run { id, args, detach, keep } => run_container(&rt, &id, &args, detach, keep),
        Command::State { id } => {
            let s = rt.state(&id)?;
            println!("{}", serde_json::to_string_pretty(&s).expect("state serializes"));
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            rt.kill(&id, parse_signal(&signal)?, all)?;
            Ok(0)
        }
        Command::Delete { id, force } => {
            rt.delete(&id, force)?;
            Ok(0)
        }
        Command::Exec {
            id,
            command,
            console_socket,
            cwd,
            env,
            tty,
            user,
            additional_gids,
            process,
            detach,
            pid_file,
            no_new_privs,
            cap,
            preserve_fds,
            ..
        } => {
            let process = match process {
                Some(path) => {
                    let data = std::fs::read(&path).map_err(|e| CliError::File { path: path.clone(), message: e.to_string() })?;
                    serde_json::from_slice::<Process>(&data)
                        .map_err(|e| CliError::File { path: path.clone(), message: e.to_string() })?
                }
                None => {
                    if command.is_empty() {
                        return Err(CliError::NoCommand);
                    }
                    let spec = saved_process(&rt, &id)?;
                    exec_process(spec, command, cwd, env, tty, user, additional_gids, no_new_privs, cap)?
                }
            };
            let opts = ExecOptions {
                console_socket,
                pid_file,
                preserve_fds,
                keep_terminal: !detach,
                stdio: None,
            };
            let started = rt.exec(&id, &process, &opts)?;
            if detach {
                return Ok(0);
            }
            Ok(wait_foreground(started.pid, started.terminal))
        }
        Command::Pause { id } => {
            rt.pause(&id)?;
            Ok(0)
        }
        Command::Resume { id } => {
            rt.resume(&id)?;
            Ok(0)
        }
        Command::Ps { id, format, ps_args } => ps(&rt, &id, &format, ps_args),
        Command::List { format, quiet } => {
            let list = rt.list()?;
            if quiet {
                for c in &list {
                    println!("{}", c.id);
                }
            } else if format == "json" {
                println!("{}", serde_json::to_string(&list).expect("list serializes"));
            } else {
                let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
                for c in &list {
                    rows.push(vec![
                        c.id.clone(),
                        c.pid.to_string(),
                        c.status.to_string(),
                        c.bundle.display().to_string(),
                        c.created.clone(),
                        c.owner.clone(),
                    ]);
                }
                print!("{}", table(&rows));
            }
            Ok(0)
        }
        Command::Spec { bundle, .. } => {
            let path = bundle.join("config.json");
            if path.exists() {
                return Err(CliError::File { path, message: "file already exists".into() });
            }
            let spec = crate::defaults::default_spec_json(crate::default_seccomp_json());
            let text = serde_json::to_string_pretty(&spec).expect("spec serializes");
            std::fs::write(&path, text + "\n").map_err(|e| CliError::File { path, message: e.to_string() })?;
            Ok(0)
        }
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&crate::features()).expect("features serialize"));
            Ok(0)
        }
    }
}

fn create_options(a: &CreateArgs, keep_terminal: bool) -> CreateOptions {
    CreateOptions {
        bundle: a.bundle.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        keep_terminal,
        stdio: None,
    }
}

/// Tab-aligned columns as runc's tabwriter prints them (min width 12, padding 3).
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.len())).max().unwrap_or(0).max(9) + 3).collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

/// `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(s: &str) -> Result<Signal, CliError> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| CliError::Signal(s.to_owned()));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>().map_err(|_| CliError::Signal(s.to_owned()))
}

fn saved_process(rt: &Runtime, id: &str) -> Result<Process, CliError> {
    let dir = crate::state::StateDir::new(&rt.root, id).map_err(ContainerError::from)?;
    dir.load().map_err(ContainerError::from)?;
    let path = dir.config_file();
    let data = std::fs::read(&path).map_err(|e| CliError::File { path: path.clone(), message: e.to_string() })?;
    let spec: oci_spec::runtime::Spec =
        serde_json::from_slice(&data).map_err(|e| CliError::File { path: path.clone(), message: e.to_string() })?;
    Ok(spec.process().clone().unwrap_or_default())
}

/// An exec process: the container's own process section with the command
/// line's overrides, as runc builds it.
#[allow(clippy::too_many_arguments)]
fn exec_process(
    mut p: Process,
    command: Vec<String>,
    cwd: Option<PathBuf>,
    env: Vec<String>,
    tty: bool,
    user: Option<String>,
    additional_gids: Vec<u32>,
    no_new_privs: bool,
    caps: Vec<String>,
) -> Result<Process, CliError> {
    p.set_args(Some(command));
    p.set_terminal(Some(tty));
    p.set_console_size(None);
    if let Some(cwd) = cwd {
        p.set_cwd(cwd);
    }
    if !env.is_empty() {
        let mut all = p.env().clone().unwrap_or_default();
        all.extend(env);
        p.set_env(Some(all));
    }
    if let Some(u) = user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a.parse().ok(), b.parse().ok()),
            None => (u.parse().ok(), Some(0)),
        };
        let (Some(uid), Some(gid)) = (uid, gid) else { return Err(CliError::User(u)) };
        let mut user = p.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        p.set_user(user);
    }
    if !additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(additional_gids));
        p.set_user(user);
    }
    if no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        for name in caps {
            let cap: oci_spec::runtime::Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| CliError::Container(ContainerError::Spec(crate::spec::SpecError::Invalid {
                    field: "--cap".into(),
                    message: format!("unknown capability {name:?}"),
                })))?;
            let add = |s: Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            c.set_bounding(add(c.bounding().clone()));
            c.set_effective(add(c.effective().clone()));
            c.set_permitted(add(c.permitted().clone()));
        }
        p.set_capabilities(Some(c));
    }
    Ok(p)
}

fn run_container(rt: &Runtime, id: &str, args: &CreateArgs, detach: bool, keep: bool) -> Result<i32, CliError> {
    let keep_terminal = !detach && args.console_socket.is_none();
    let created = rt.create(id, &create_options(args, keep_terminal))?;
    if detach {
        rt.start(id)?;
        return Ok(0);
    }
    let signals = forwarded_signals();
    signals.thread_block().map_err(|e| CliError::Io(e.into()))?;
    if let Err(e) = rt.start(id) {
        let _ = rt.delete(id, true);
        return Err(e.into());
    }
    let code = wait_with(created.pid, created.terminal, &signals);
    if !keep {
        rt.delete(id, true)?;
    }
    Ok(code)
}

fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    set
}

fn wait_foreground(pid: i32, terminal: Option<OwnedFd>) -> i32 {
    let signals = forwarded_signals();
    if signals.thread_block().is_err() {
        return 1;
    }
    wait_with(pid, terminal, &signals)
}

/// Wait for `pid` (our child: we are its subreaper), forwarding signals to
/// it and, with a terminal, copying between our stdio and the pty.
fn wait_with(pid: i32, terminal: Option<OwnedFd>, signals: &SigSet) -> i32 {
    let Ok(sfd) = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC) else { return 1 };
    let master_raw = terminal.as_ref().map(|t| t.as_raw_fd());
    let _raw = terminal.as_ref().map(|_| crate::console::RawMode::enter());
    if let Some(master) = &terminal
        && let Some((rows, cols)) = crate::console::get_size(std::io::stdin().as_fd()) {
            let _ = crate::console::set_size(master.as_fd(), rows, cols);
        }
    let proxy = terminal.map(|master| {
        std::thread::spawn(move || {
            let _ = crate::console::proxy(&master, || false);
        })
    });
    let code = loop {
        if let Some(code) = reap(pid) {
            break code;
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD || sig == libc::SIGPIPE {
                    continue;
                }
                if sig == libc::SIGWINCH {
                    if let (Some(m), Some((rows, cols))) = (master_raw, crate::console::get_size(std::io::stdin().as_fd())) {
                        let _ = crate::console::set_size(crate::init::borrow(m), rows, cols);
                    }
                    continue;
                }
                if let Ok(s) = Signal::try_from(sig) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), s);
                }
            }
            Ok(None) => {}
            Err(_) => break 1,
        }
    };
    // The proxy ends when every holder of the pty slave has gone.
    if let Some(p) = proxy {
        let _ = p.join();
    }
    code
}

/// Reap any exited children; the exit code of `pid` when it is among them.
fn reap(pid: i32) -> Option<i32> {
    loop {
        match nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

fn ps(rt: &Runtime, id: &str, format: &str, args: Vec<String>) -> Result<i32, CliError> {
    let pids = rt.pids(id)?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids).expect("pids serialize"));
        return Ok(0);
    }
    let args = if args.is_empty() { vec!["-ef".to_owned()] } else { args };
    let out = std::process::Command::new("ps").args(&args).output().map_err(CliError::Ps)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Ok(0) };
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        return Err(CliError::Ps(std::io::Error::other("no PID column in ps output")));
    };
    println!("{header}");
    for line in lines {
        if let Some(p) = line.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok())
            && pids.contains(&p) {
                println!("{line}");
            }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("FLY").is_err());
    }

    #[test]
    fn table_pads_columns() {
        let rows = vec![vec!["ID".into(), "PID".into()], vec!["abc".into(), "12".into()]];
        assert_eq!(table(&rows), "ID          PID\nabc         12\n");
    }

    #[test]
    fn exec_process_overrides_the_container_process() {
        let base: Process = serde_json::from_str(r#"{"cwd":"/","args":["sh"],"env":["PATH=/bin"],"user":{"uid":0,"gid":0},"terminal":true}"#).unwrap();
        let p = exec_process(base, vec!["ls".into()], Some("/tmp".into()), vec!["A=1".into()], false, Some("1000:100".into()), vec![], true, vec!["CAP_SYS_ADMIN".into()]).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vec!["ls".to_string()]);
        assert_eq!(p.env().as_ref().unwrap(), &vec!["PATH=/bin".to_string(), "A=1".to_string()]);
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.terminal(), Some(false));
        assert!(p.capabilities().as_ref().unwrap().effective().as_ref().unwrap().contains(&oci_spec::runtime::Capability::SysAdmin));
    }
}
