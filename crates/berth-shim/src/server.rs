//! The shim process: one per container, single-threaded, a poll(2) loop.
//!
//! Start-up (`main`): fork once more and let the spawner's child exit (so
//! the daemon has nothing to reap), new session, become child subreaper,
//! open the log driver, make the stdio pipes, create the container through
//! a helper (see [`crate::helper`]), listen on `shim.sock`, write
//! `shim.pid`, report readiness on fd 3.
//!
//! The loop serves: SIGCHLD (through a signalfd: reap init, execs and
//! helpers), the control socket, the container's and execs' output (to the
//! log driver and to attached connections, in docker's framing), their
//! stdin, and helpers' answers. When init exits: the container is deleted
//! (a helper: stragglers killed, cgroup removed), output drained to its
//! end, the log flushed, `exit.json` written; then waiters get the exit
//! status, attached connections are closed, and the shim exits on
//! `shutdown` or once no client has been connected for the grace period.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_api::ErrorKind;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::helper::{self, Answer, Helper};
use crate::logs::{LineSplitter, LogError, LogWriter, Message};
use crate::protocol::{
    self, AttachOptions, ExecRequest, ExecState, ExitStatus, Phase, Ready, Reply, Request, ShimStatus, Stream,
    WireError,
};
use crate::spawn::{SpawnOptions, start_failure};
use crate::timefmt;

/// After the container is deleted, how long output may still trickle in.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After `shutdown`, how long pending replies may take to flush.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// Output waiting for one attached connection beyond which the container's
/// output is no longer read (back-pressure, as docker's attach).
const MAX_PENDING_OUT: usize = 1 << 20;
/// Input waiting for the container's stdin beyond which attached input is
/// no longer read.
const MAX_PENDING_IN: usize = 256 * 1024;
const READ_SIZE: usize = 32 * 1024;
/// Quiet time after control activity before memory is trimmed.
const TRIM_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("usage: berth-shim <state-dir>")]
    Usage,
    #[error("read shim config {path}: {source}")]
    Config { path: PathBuf, source: std::io::Error },
    #[error("failed to initialize logging driver: {0}")]
    Log(#[from] LogError),
    #[error("{what}: {errno}")]
    Sys { what: &'static str, errno: nix::Error },
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Helper(#[from] helper::HelperError),
    /// The runtime's message, verbatim.
    #[error("{message}")]
    Create { message: String },
}

impl ServerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServerError::Usage => ErrorKind::InvalidParameter,
            ServerError::Log(e) => e.kind(),
            ServerError::Create { message } => start_failure(message).1,
            _ => ErrorKind::Internal,
        }
    }
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> ServerError {
    move |errno| ServerError::Sys { what, errno }
}

/// The binary's entry point. Returns the exit code.
pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() != 2 {
        eprintln!("berth-shim: {}", ServerError::Usage);
        return 2;
    }
    let state_dir = PathBuf::from(&args[1]);
    // fd 3: the readiness pipe from `spawn`, if it is open.
    // SAFETY: F_GETFD only asks whether fd 3 is open.
    let ready = (unsafe { libc::fcntl(3, libc::F_GETFD) } >= 0).then(|| {
        // SAFETY: fd 3 is open and was handed to us; we own it from here.
        let fd = unsafe { OwnedFd::from_raw_fd(3) };
        let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
        fd
    });
    // Leave the spawner: it waits for this process only.
    // SAFETY: single-threaded here.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            eprintln!("berth-shim: fork: {e}");
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    match Shim::setup(&state_dir, ready.as_ref().map(|f| f.as_raw_fd())) {
        Ok(mut shim) => {
            report(ready, &Ready { ok: true, shim_pid: std::process::id() as i32, pid: shim.init.pid, error: None });
            trim_memory();
            shim.run();
            0
        }
        Err(e) => {
            eprintln!("berth-shim: {e}");
            let error = WireError { kind: e.kind(), message: e.to_string() };
            let pipe = report(ready, &Ready { ok: false, shim_pid: std::process::id() as i32, pid: 0, error: Some(error) });
            // The spawner returns the error only once the pipe has closed:
            // left open here, the kernel closes it when this process is
            // gone.
            std::mem::forget(pipe);
            1
        }
    }
}

/// Writes the readiness line; gives back the pipe.
fn report(fd: Option<OwnedFd>, ready: &Ready) -> Option<std::fs::File> {
    let mut f = std::fs::File::from(fd?);
    let mut line = serde_json::to_vec(ready).expect("ready serializes");
    line.push(b'\n');
    let _ = f.write_all(&line);
    Some(f)
}

/// Gives back memory the loop does not need: freed heap (`malloc_trim`),
/// and the pages of read-only file mappings (the shim's code and
/// constants, libc's), which the kernel maps generously around each page
/// touched (fault-around) while start-up or a request runs code the idle
/// loop never runs. Such pages are clean copies of the file: dropping them
/// from this process loses nothing, and what is used again faults back in
/// from the page cache. A mapping holding any page of its own (relocated
/// data, `Anonymous` in smaps) is left alone.
fn trim_memory() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            // A mapping header: range perms offset dev inode path.
            let perms = f.next().unwrap_or("");
            let inode = f.nth(2).unwrap_or("0");
            let path = f.next().unwrap_or("[");
            let read_only = perms == "r-xp" || perms == "r--p";
            current = (read_only && inode != "0" && !path.starts_with('[')).then_some((a, b));
            continue;
        }
        if first == "Anonymous:"
            && let Some((a, b)) = current.take()
            && f.next() == Some("0")
        {
            // SAFETY: a private, read-only file mapping with no page of
            // its own: MADV_DONTNEED only unmaps clean file pages, which
            // fault back in unchanged.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
        }
    }
}

/// Which process a stream belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Init,
    Exec(String),
}

/// A process's stdio, shim side.
#[derive(Default)]
struct Stdio {
    /// The pty master: output is read from it, input written to it.
    tty: Option<OwnedFd>,
    tty_open: bool,
    /// Pipe to the process's stdin.
    stdin: Option<OwnedFd>,
    /// Pipes from its stdout and stderr.
    out: [Option<OwnedFd>; 2],
    stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written.
    stdin_close: bool,
}

impl Stdio {
    fn output_done(&self) -> bool {
        !self.tty_open && self.out.iter().all(Option::is_none)
    }

    fn has_stdin(&self) -> bool {
        self.stdin.is_some() || (self.tty.is_some() && !self.stdin_close)
    }

    fn is_tty(&self) -> bool {
        self.tty.is_some()
    }

    fn master(&self) -> Option<BorrowedFd<'_>> {
        self.tty.as_ref().map(|f| f.as_fd())
    }
}

/// The shim-side ends and the process-side ends of a process's stdio.
struct Pipes {
    ours: Stdio,
    theirs: Option<[OwnedFd; 3]>,
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), ServerError> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(sys("fcntl"))?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(sys("fcntl"))?;
    Ok(())
}

fn dev_null(write: bool) -> Result<OwnedFd, ServerError> {
    let flags = if write { nix::fcntl::OFlag::O_WRONLY } else { nix::fcntl::OFlag::O_RDONLY };
    nix::fcntl::open("/dev/null", flags | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(sys("open /dev/null"))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ServerError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))
}

/// Pipes for a process: stdin if `stdin`, stdout and stderr unless
/// `discard` (then /dev/null). With a tty, none: the pty comes later.
fn make_pipes(tty: bool, stdin: bool, discard: bool) -> Result<Pipes, ServerError> {
    if tty {
        return Ok(Pipes { ours: Stdio::default(), theirs: None });
    }
    let mut ours = Stdio::default();
    let their_in = if stdin {
        let (r, w) = pipe()?;
        set_nonblocking(&w)?;
        ours.stdin = Some(w);
        r
    } else {
        dev_null(false)?
    };
    let mut outs = Vec::new();
    for i in 0..2 {
        if discard {
            outs.push(dev_null(true)?);
        } else {
            let (r, w) = pipe()?;
            set_nonblocking(&r)?;
            ours.out[i] = Some(r);
            outs.push(w);
        }
    }
    let err = outs.pop().expect("two");
    let out = outs.pop().expect("two");
    Ok(Pipes { ours, theirs: Some([their_in, out, err]) })
}

fn raw3(fds: &Option<[OwnedFd; 3]>) -> Option<[RawFd; 3]> {
    fds.as_ref().map(|f| [f[0].as_raw_fd(), f[1].as_raw_fd(), f[2].as_raw_fd()])
}

/// The init process.
struct Init {
    pid: i32,
    io: Stdio,
    splitters: [LineSplitter; 2],
}

struct Exec {
    pid: i32,
    /// The helper has not answered yet.
    starting: bool,
    io: Stdio,
    exit: Option<i32>,
    error: Option<String>,
    /// Exited, output drained, attached connection closed.
    done: bool,
}

/// A detach key sequence being watched for in attached input.
#[derive(Debug, Default)]
struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    /// Copies `data` to `out` minus a detach sequence; true on detach.
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(data);
            return false;
        }
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            // Not the sequence after all: what was held back goes through.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

struct Attach {
    target: Target,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    stdin_once: bool,
    detach: DetachKeys,
}

impl Attach {
    fn wants(&self, stream: Stream, tty: bool) -> bool {
        if tty {
            return self.stdout || self.stderr;
        }
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }
}

enum ConnState {
    /// Reading the request line.
    Request,
    /// A helper is working on the request.
    Pending,
    /// A `wait`.
    Waiting,
    Attach(Attach),
}

struct Conn {
    /// Unique over the shim's life: a helper's answer finds its connection
    /// even if the slot was reused.
    serial: u64,
    sock: UnixStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    state: ConnState,
    read_eof: bool,
    close_when_flushed: bool,
    dead: bool,
}

impl Conn {
    fn pending_out(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    fn reply(&mut self, r: &Reply) {
        self.wbuf.extend_from_slice(&r.to_line());
    }

    fn reply_and_close(&mut self, r: &Reply) {
        self.reply(r);
        self.close_when_flushed = true;
    }

    fn attached_to(&self, t: &Target) -> bool {
        matches!(&self.state, ConnState::Attach(a) if a.target == *t)
    }
}

enum HelperOp {
    Start,
    Exec(String),
    Delete,
}

struct Running {
    helper: Helper,
    op: HelperOp,
    conn: Option<ConnRef>,
}

/// A connection slot and the serial of the connection in it.
#[derive(Debug, Clone, Copy)]
struct ConnRef(usize, u64);

/// Poll tokens.
#[derive(Debug, Clone)]
enum Tok {
    Signal,
    Listener,
    Out(Target, usize),
    Tty(Target),
    Stdin(Target),
    Conn(usize),
    /// By pid: answers remove helpers from the list mid-iteration.
    Helper(i32),
}

pub struct Shim {
    cfg: SpawnOptions,
    listener: UnixListener,
    sigfd: SignalFd,
    init: Init,
    phase: Phase,
    log: LogWriter,
    log_errors: u32,
    oom_file: Option<PathBuf>,
    execs: BTreeMap<String, Exec>,
    conns: Vec<Option<Conn>>,
    next_serial: u64,
    helpers: Vec<Running>,
    helper_pids: Vec<i32>,
    /// Exits of children not known yet (an exec whose helper has not
    /// answered), by pid.
    early_exits: HashMap<i32, i32>,
    starting: bool,
    /// Code, signal, time, OOM kills: read when init was reaped, while the
    /// cgroup still exists.
    raw_exit: Option<(i32, Option<i32>, i64, bool)>,
    deleted: bool,
    drain_deadline: Option<Instant>,
    exit: Option<ExitStatus>,
    shutdown_at: Option<Instant>,
    idle_since: Option<Instant>,
    /// When to give back memory, a while after control activity.
    trim_at: Option<Instant>,
    scratch: Vec<u8>,
}

fn exit_code(status: libc::c_int) -> (i32, Option<i32>) {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        (128 + sig, Some(sig))
    } else {
        (libc::WEXITSTATUS(status), None)
    }
}

/// The OOM kill count of the container's memory cgroup (v1
/// `memory.oom_control`, v2 `memory.events`: `oom_kill N`).
fn oom_kills(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// The file holding the memory cgroup's OOM kill count.
fn oom_file_of(record: &berth_runtime::state::Record) -> Option<PathBuf> {
    let cg = record.cgroup.as_ref()?;
    let (dir, v2) = cg.controller_dir(berth_cgroups::Controller::Memory)?;
    Some(dir.join(if v2 { "memory.events" } else { "memory.oom_control" }))
}

impl Shim {
    /// `ready`: the readiness pipe, kept out of the container.
    fn setup(state_dir: &Path, ready: Option<RawFd>) -> Result<Shim, ServerError> {
        let config_path = state_dir.join(protocol::CONFIG);
        let data = std::fs::read(&config_path).map_err(|source| ServerError::Config { path: config_path.clone(), source })?;
        let cfg: SpawnOptions = serde_json::from_slice(&data).map_err(|e| ServerError::Config {
            path: config_path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;

        // SAFETY: plain prctl: orphans of the container become our children.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(ServerError::Sys { what: "set child subreaper", errno: nix::Error::last() });
        }
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block().map_err(sys("block SIGCHLD"))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(sys("signalfd"))?;

        let log = LogWriter::open(&cfg.log)?;

        let pipes = make_pipes(cfg.tty, cfg.open_stdin, false)?;
        let stdio = raw3(&pipes.theirs);
        let (rt_root, id, bundle, tty) = (cfg.runtime_root.clone(), cfg.id.clone(), cfg.bundle.clone(), cfg.tty);
        let h = helper::fork(move || {
            // Init holds what it inherits until it execs, at start: not
            // the pipe whose end the spawner waits for.
            if let Some(fd) = ready {
                // SAFETY: closing our copy of an fd in the child.
                unsafe { libc::close(fd) };
            }
            let rt = berth_runtime::Runtime::new(rt_root);
            let opts = berth_runtime::CreateOptions { bundle, keep_terminal: tty, stdio, ..Default::default() };
            match rt.create(&id, &opts) {
                Ok(created) => {
                    let oom_file = rt.load(&id).ok().and_then(|(r, _)| oom_file_of(&r));
                    (Answer { ok: true, pid: created.pid, error: None, oom_file }, created.terminal)
                }
                Err(e) => (Answer::failed(e.to_string()), None),
            }
        })?;
        drop(pipes.theirs);
        let answer = helper::recv(&h.sock);
        helper::reap(h.pid);
        let (answer, terminal) = answer?.unwrap_or_else(|| (Answer::failed("runtime helper exited without an answer"), None));
        if !answer.ok {
            return Err(ServerError::Create { message: answer.error.unwrap_or_default() });
        }
        let mut io = pipes.ours;
        if let Some(t) = terminal {
            set_nonblocking(&t)?;
            io.tty = Some(t);
            io.tty_open = true;
        }
        let init = Init { pid: answer.pid, io, splitters: [LineSplitter::new(Stream::Stdout), LineSplitter::new(Stream::Stderr)] };

        let sock = state_dir.join(protocol::SOCKET);
        let _ = std::fs::remove_file(&sock);
        let cleanup = |e: ServerError| {
            // The container must not outlive a shim that failed to start.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(init.pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init.pid), None);
            let _ = berth_runtime::Runtime::new(&cfg.runtime_root).delete(&cfg.id, true);
            let _ = std::fs::remove_file(&sock);
            e
        };
        let listener = match UnixListener::bind(&sock) {
            Ok(l) => l,
            Err(source) => return Err(cleanup(ServerError::Io { what: "listen on", path: sock.clone(), source })),
        };
        let io_err = |what: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| ServerError::Io { what, path, source }
        };
        let prep = (|| {
            listener.set_nonblocking(true).map_err(io_err("listen on", &sock))?;
            std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(io_err("chmod", &sock))?;
            let pid_file = state_dir.join(protocol::PID_FILE);
            berth_sys::fs::write_replace(&pid_file, std::process::id().to_string().as_bytes())
                .map_err(|e| ServerError::Io { what: "write", path: pid_file.clone(), source: std::io::Error::other(e.to_string()) })
        })();
        if let Err(e) = prep {
            return Err(cleanup(e));
        }
        Ok(Shim {
            cfg,
            listener,
            sigfd,
            init,
            phase: Phase::Created,
            log,
            log_errors: 0,
            oom_file: answer.oom_file,
            execs: BTreeMap::new(),
            conns: Vec::new(),
            next_serial: 0,
            helpers: Vec::new(),
            helper_pids: Vec::new(),
            early_exits: HashMap::new(),
            starting: false,
            raw_exit: None,
            deleted: false,
            drain_deadline: None,
            exit: None,
            shutdown_at: None,
            idle_since: None,
            trim_at: None,
            scratch: vec![0u8; READ_SIZE],
        })
    }

    fn io(&self, t: &Target) -> Option<&Stdio> {
        match t {
            Target::Init => Some(&self.init.io),
            Target::Exec(id) => self.execs.get(id).map(|e| &e.io),
        }
    }

    fn io_mut(&mut self, t: &Target) -> Option<&mut Stdio> {
        match t {
            Target::Init => Some(&mut self.init.io),
            Target::Exec(id) => self.execs.get_mut(id).map(|e| &mut e.io),
        }
    }

    /// An attached connection has too much output waiting.
    fn backed_up(&self, t: &Target) -> bool {
        self.conns.iter().flatten().any(|c| c.attached_to(t) && c.pending_out() > MAX_PENDING_OUT)
    }

    fn stdin_full(&self, t: &Target) -> bool {
        self.io(t).is_some_and(|io| io.stdin_buf.len() > MAX_PENDING_IN)
    }

    fn targets(&self) -> Vec<Target> {
        let mut v = vec![Target::Init];
        v.extend(self.execs.iter().filter(|(_, e)| !e.starting).map(|(id, _)| Target::Exec(id.clone())));
        v
    }

    fn run(&mut self) {
        loop {
            self.progress();
            if self.should_exit() {
                break;
            }
            let (toks, mut fds) = self.poll_set();
            let timeout = self.timeout_ms();
            // SAFETY: fds is a valid array of pollfd for its length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                let e = nix::Error::last();
                if e != nix::Error::EINTR {
                    eprintln!("berth-shim: poll: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for (tok, fd) in toks.into_iter().zip(fds.iter()) {
                if fd.revents != 0 {
                    self.ready(tok, fd.revents);
                }
            }
            self.conns.iter_mut().for_each(|c| {
                if c.as_ref().is_some_and(|c| c.dead) {
                    *c = None;
                }
            });
            while self.conns.last().is_some_and(Option::is_none) {
                self.conns.pop();
            }
        }
        let _ = std::fs::remove_file(self.cfg.state_dir.join(protocol::SOCKET));
    }

    fn poll_set(&self) -> (Vec<Tok>, Vec<libc::pollfd>) {
        let mut toks = Vec::new();
        let mut fds = Vec::new();
        let mut add = |tok: Tok, fd: RawFd, events: libc::c_short| {
            toks.push(tok);
            fds.push(libc::pollfd { fd, events, revents: 0 });
        };
        add(Tok::Signal, self.sigfd.as_fd().as_raw_fd(), libc::POLLIN);
        if self.shutdown_at.is_none() {
            add(Tok::Listener, self.listener.as_raw_fd(), libc::POLLIN);
        }
        for t in self.targets() {
            let io = self.io(&t).expect("target exists");
            let blocked = self.backed_up(&t);
            if let Some(m) = &io.tty {
                let mut ev = 0;
                if io.tty_open && !blocked {
                    ev |= libc::POLLIN;
                }
                if !io.stdin_buf.is_empty() {
                    ev |= libc::POLLOUT;
                }
                if ev != 0 {
                    add(Tok::Tty(t.clone()), m.as_raw_fd(), ev);
                }
            }
            if !blocked {
                for (i, o) in io.out.iter().enumerate() {
                    if let Some(fd) = o {
                        add(Tok::Out(t.clone(), i), fd.as_raw_fd(), libc::POLLIN);
                    }
                }
            }
            if let Some(s) = &io.stdin
                && !io.stdin_buf.is_empty()
            {
                add(Tok::Stdin(t.clone()), s.as_raw_fd(), libc::POLLOUT);
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            let Some(c) = c else { continue };
            let mut ev = 0;
            let want_read = match &c.state {
                ConnState::Request => true,
                ConnState::Attach(a) => !(a.stdin && self.stdin_full(&a.target)),
                ConnState::Pending | ConnState::Waiting => false,
            };
            if want_read && !c.read_eof {
                ev |= libc::POLLIN;
            }
            if c.pending_out() > 0 {
                ev |= libc::POLLOUT;
            }
            add(Tok::Conn(i), c.sock.as_raw_fd(), ev);
        }
        for h in &self.helpers {
            add(Tok::Helper(h.helper.pid), h.helper.sock.as_raw_fd(), libc::POLLIN);
        }
        (toks, fds)
    }

    fn timeout_ms(&self) -> libc::c_int {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(d) = self.drain_deadline {
            consider(d);
        }
        if let Some(s) = self.shutdown_at {
            consider(s + SHUTDOWN_FLUSH);
        }
        if let Some(i) = self.idle_since {
            consider(i + Duration::from_millis(self.cfg.exit_grace_ms));
        }
        if let Some(t) = self.trim_at {
            consider(t);
        }
        match next {
            None => -1,
            Some(t) => t.saturating_duration_since(now).as_millis().min(60_000) as libc::c_int + 1,
        }
    }

    fn ready(&mut self, tok: Tok, revents: libc::c_short) {
        if matches!(tok, Tok::Listener | Tok::Helper(_)) {
            self.trim_at = Some(Instant::now() + TRIM_DELAY);
        }
        match tok {
            Tok::Signal => self.reap(),
            Tok::Listener => self.accept(),
            Tok::Out(t, i) => self.read_output(&t, i),
            Tok::Tty(t) => {
                if revents & libc::POLLOUT != 0 {
                    self.write_stdin(&t);
                }
                if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    self.read_output(&t, 2);
                }
            }
            Tok::Stdin(t) => self.write_stdin(&t),
            Tok::Conn(i) => self.conn_ready(i, revents),
            Tok::Helper(pid) => self.helper_ready(pid),
        }
    }

    // ---- children ----

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            let mut status = 0;
            // SAFETY: waitpid for any child, not blocking.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            let (code, signal) = exit_code(status);
            if let Some(i) = self.helper_pids.iter().position(|&p| p == pid) {
                self.helper_pids.swap_remove(i);
            } else if pid == self.init.pid && self.raw_exit.is_none() {
                self.init_exited(code, signal);
            } else if let Some(e) = self.execs.values_mut().find(|e| e.pid == pid && e.exit.is_none()) {
                e.exit = Some(code);
            } else if self.execs.values().any(|e| e.starting) {
                if self.early_exits.len() > 256 {
                    self.early_exits.clear();
                }
                self.early_exits.insert(pid, code);
            }
        }
    }

    fn init_exited(&mut self, code: i32, signal: Option<i32>) {
        let oom = self.oom_file.as_deref().is_some_and(|f| oom_kills(f) > 0);
        self.raw_exit = Some((code, signal, timefmt::now_nanos(), oom));
        self.phase = Phase::Stopping;
        // Nobody reads stdin any more.
        self.init.io.stdin = None;
        self.init.io.stdin_buf = Vec::new();
        let (root, id) = (self.cfg.runtime_root.clone(), self.cfg.id.clone());
        self.spawn_helper(HelperOp::Delete, None, move || match berth_runtime::Runtime::new(root).delete(&id, true) {
            Ok(()) => (Answer { ok: true, ..Answer::default() }, None),
            Err(e) => (Answer::failed(e.to_string()), None),
        });
    }

    fn spawn_helper(&mut self, op: HelperOp, conn: Option<ConnRef>, f: impl FnOnce() -> (Answer, Option<OwnedFd>)) {
        match helper::fork(f) {
            Ok(h) => {
                self.helper_pids.push(h.pid);
                self.helpers.push(Running { helper: h, op, conn });
            }
            Err(e) => {
                eprintln!("berth-shim: {e}");
                self.helper_done(op, conn, Answer::failed(e.to_string()), None);
            }
        }
    }

    fn helper_ready(&mut self, pid: i32) {
        let Some(i) = self.helpers.iter().position(|h| h.helper.pid == pid) else { return };
        let (answer, fd) = match helper::recv(&self.helpers[i].helper.sock) {
            Ok(Some(a)) => a,
            Ok(None) => (Answer::failed("runtime helper exited without an answer"), None),
            Err(e) => (Answer::failed(e.to_string()), None),
        };
        let r = self.helpers.swap_remove(i);
        self.helper_done(r.op, r.conn, answer, fd);
    }

    fn helper_done(&mut self, op: HelperOp, conn: Option<ConnRef>, answer: Answer, fd: Option<OwnedFd>) {
        let error_reply = |a: &Answer| {
            let msg = a.error.clone().unwrap_or_default();
            Reply::err(start_failure(&msg).1, msg)
        };
        match op {
            HelperOp::Start => {
                self.starting = false;
                let reply = if answer.ok {
                    if self.phase == Phase::Created {
                        self.phase = Phase::Running;
                    }
                    Reply::ok()
                } else {
                    error_reply(&answer)
                };
                if let Some(c) = self.conn_ref(conn) {
                    c.reply_and_close(&reply);
                }
            }
            HelperOp::Delete => {
                if !answer.ok {
                    eprintln!("berth-shim: delete container: {}", answer.error.unwrap_or_default());
                }
                self.deleted = true;
                self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
            }
            HelperOp::Exec(id) => self.exec_started(&id, conn, answer, fd),
        }
    }

    fn exec_started(&mut self, id: &str, conn: Option<ConnRef>, answer: Answer, fd: Option<OwnedFd>) {
        let Some(e) = self.execs.get_mut(id) else { return };
        e.starting = false;
        if !answer.ok {
            let msg = answer.error.unwrap_or_default();
            e.exit = Some(126);
            e.error = Some(msg.clone());
            e.done = true;
            e.io = Stdio::default();
            if let Some(c) = self.conn_ref(conn) {
                c.reply_and_close(&Reply::err(start_failure(&msg).1, msg));
            }
            return;
        }
        e.pid = answer.pid;
        if let Some(code) = self.early_exits.remove(&answer.pid) {
            e.exit = Some(code);
        }
        if let Some(t) = fd {
            let _ = set_nonblocking(&t);
            e.io.tty = Some(t);
            e.io.tty_open = true;
        }
        let Some(c) = self.conn_ref(conn) else { return };
        c.reply(&Reply { pid: Some(answer.pid), ..Reply::ok() });
        if let ConnState::Attach(_) = c.state {
            // Attached: the connection now carries the exec's streams, and
            // any input that came with the request.
            let eof = c.read_eof;
            let ci = conn.expect("checked").0;
            self.conn_input(ci, Vec::new());
            if eof {
                self.conn_input_ended(ci);
            }
        } else {
            c.close_when_flushed = true;
        }
    }

    // ---- output and input ----

    fn read_output(&mut self, t: &Target, which: usize) {
        let mut buf = std::mem::take(&mut self.scratch);
        let r = {
            let Some(io) = self.io(t) else {
                self.scratch = buf;
                return;
            };
            let fd = if which == 2 { io.tty.as_ref() } else { io.out[which].as_ref() };
            match fd {
                Some(fd) => nix::unistd::read(fd, &mut buf),
                None => Err(nix::Error::EAGAIN),
            }
        };
        let eof = match r {
            Ok(0) => true,
            Ok(n) => {
                let stream = if which == 1 { Stream::Stderr } else { Stream::Stdout };
                self.dispatch(t, stream, &buf[..n]);
                false
            }
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => false,
            // EIO: a pty whose other side is all closed.
            Err(_) => true,
        };
        self.scratch = buf;
        if eof {
            self.output_ended(t, which);
        }
    }

    fn output_ended(&mut self, t: &Target, which: usize) {
        if let Some(io) = self.io_mut(t) {
            if which == 2 {
                io.tty_open = false;
            } else {
                io.out[which] = None;
            }
        }
        if *t == Target::Init {
            // The tty is stdout.
            let s = if which == 1 { 1 } else { 0 };
            let Shim { init, log, log_errors, .. } = self;
            init.splitters[s].finish(&mut timefmt::now_nanos, &mut |m| write_log(log, log_errors, m));
        }
    }

    fn dispatch(&mut self, t: &Target, stream: Stream, data: &[u8]) {
        let tty = self.io(t).is_some_and(Stdio::is_tty);
        if *t == Target::Init {
            let Shim { init, log, log_errors, .. } = self;
            let i = if stream == Stream::Stderr { 1 } else { 0 };
            init.splitters[i].feed(data, &mut timefmt::now_nanos, &mut |m| write_log(log, log_errors, m));
        }
        for c in self.conns.iter_mut().flatten() {
            let ConnState::Attach(a) = &c.state else { continue };
            if a.target != *t || !a.wants(stream, tty) || c.dead {
                continue;
            }
            if tty {
                c.wbuf.extend_from_slice(data);
            } else {
                protocol::push_frames(&mut c.wbuf, stream, data);
            }
            flush(c);
        }
    }

    fn write_stdin(&mut self, t: &Target) {
        let Some(io) = self.io_mut(t) else { return };
        let r = {
            let fd = io.stdin.as_ref().or(io.tty.as_ref());
            match fd {
                Some(fd) if !io.stdin_buf.is_empty() => nix::unistd::write(fd, &io.stdin_buf),
                _ => Ok(0),
            }
        };
        match r {
            Ok(n) => {
                io.stdin_buf.drain(..n);
            }
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
            Err(_) => {
                // The process closed its stdin.
                io.stdin = None;
                io.stdin_buf = Vec::new();
                io.stdin_close = true;
            }
        }
        if io.stdin_buf.is_empty() && io.stdin_close {
            io.stdin = None;
            io.stdin_buf = Vec::new();
        }
    }

    /// Attached input: to the target's stdin, minus detach keys.
    fn conn_input(&mut self, ci: usize, data: Vec<u8>) {
        let Some(c) = self.conns[ci].as_mut() else { return };
        let ConnState::Attach(a) = &mut c.state else { return };
        let mut input = std::mem::take(&mut c.rbuf);
        input.extend_from_slice(&data);
        if input.is_empty() || !a.stdin {
            return;
        }
        let mut out = Vec::new();
        let detached = a.detach.feed(&input, &mut out);
        let (target, once) = (a.target.clone(), a.stdin_once);
        if detached {
            c.close_when_flushed = true;
            c.read_eof = true;
        }
        if let Some(io) = self.io_mut(&target)
            && io.has_stdin()
            && !io.stdin_close
        {
            io.stdin_buf.extend_from_slice(&out);
            if detached && once && !io.is_tty() {
                io.stdin_close = true;
            }
            self.write_stdin(&target);
        }
    }

    /// End of input on an attached connection.
    fn conn_input_ended(&mut self, ci: usize) {
        let Some(c) = self.conns[ci].as_ref() else { return };
        let ConnState::Attach(a) = &c.state else { return };
        if !(a.stdin && a.stdin_once) {
            return;
        }
        let target = a.target.clone();
        // docker closes the process's stdin on StdinOnce without a tty only.
        if let Some(io) = self.io_mut(&target)
            && !io.is_tty()
        {
            io.stdin_close = true;
            self.write_stdin(&target);
        }
    }

    // ---- connections ----

    fn conn(&mut self, i: usize) -> Option<&mut Conn> {
        self.conns.get_mut(i).and_then(|c| c.as_mut()).filter(|c| !c.dead)
    }

    fn conn_ref(&mut self, r: Option<ConnRef>) -> Option<&mut Conn> {
        let r = r?;
        self.conn(r.0).filter(|c| c.serial == r.1)
    }

    fn reference(&self, i: usize) -> Option<ConnRef> {
        self.conns.get(i).and_then(|c| c.as_ref()).map(|c| ConnRef(i, c.serial))
    }

    fn reply_close(&mut self, i: usize, r: &Reply) {
        if let Some(c) = self.conn(i) {
            c.reply_and_close(r);
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.next_serial += 1;
                    let conn = Conn {
                        serial: self.next_serial,
                        sock,
                        rbuf: Vec::new(),
                        wbuf: Vec::new(),
                        wpos: 0,
                        state: ConnState::Request,
                        read_eof: false,
                        close_when_flushed: false,
                        dead: false,
                    };
                    match self.conns.iter().position(Option::is_none) {
                        Some(i) => self.conns[i] = Some(conn),
                        None => self.conns.push(Some(conn)),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("berth-shim: accept: {e}");
                    break;
                }
            }
        }
    }

    fn conn_ready(&mut self, i: usize, revents: libc::c_short) {
        if revents & libc::POLLOUT != 0
            && let Some(c) = self.conn(i)
        {
            flush(c);
        }
        if revents & libc::POLLIN != 0 {
            self.conn_read(i);
        } else if revents & (libc::POLLHUP | libc::POLLERR) != 0
            && let Some(c) = self.conn(i)
        {
            // Gone both ways.
            c.dead = true;
        }
        if let Some(c) = self.conn(i)
            && c.close_when_flushed
            && c.pending_out() == 0
        {
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
            c.dead = true;
        }
    }

    fn conn_read(&mut self, i: usize) {
        let mut buf = std::mem::take(&mut self.scratch);
        let r = match self.conn(i) {
            Some(c) => c.sock.read(&mut buf),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        };
        let data = match r {
            Ok(0) => None,
            Ok(n) => Some(buf[..n].to_vec()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {
                self.scratch = buf;
                return;
            }
            Err(_) => {
                self.scratch = buf;
                if let Some(c) = self.conn(i) {
                    c.dead = true;
                }
                return;
            }
        };
        self.scratch = buf;
        let Some(c) = self.conn(i) else { return };
        match (&c.state, data) {
            (ConnState::Request, Some(d)) => {
                c.rbuf.extend_from_slice(&d);
                if let Some(nl) = c.rbuf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = c.rbuf.drain(..=nl).collect();
                    match serde_json::from_slice::<Request>(&line) {
                        Ok(req) => self.request(i, req),
                        Err(e) => c.reply_and_close(&Reply::err(ErrorKind::InvalidParameter, format!("bad request: {e}"))),
                    }
                } else if c.rbuf.len() > protocol::MAX_REQUEST {
                    c.reply_and_close(&Reply::err(ErrorKind::InvalidParameter, "request too long"));
                }
            }
            (ConnState::Request, None) => c.dead = true,
            (ConnState::Attach(_), Some(d)) => self.conn_input(i, d),
            (ConnState::Attach(_), None) => {
                c.read_eof = true;
                self.conn_input_ended(i);
            }
            // Input on a waiting connection means nothing; its end neither.
            (_, Some(_)) => {}
            (_, None) => c.read_eof = true,
        }
    }

    fn request(&mut self, i: usize, req: Request) {
        match req {
            Request::Status => {
                let status = self.status();
                self.reply_close(i, &Reply { status: Some(status), ..Reply::ok() });
            }
            Request::Start => {
                if self.phase != Phase::Created || self.starting {
                    let what = match self.phase {
                        _ if self.starting => "being started",
                        Phase::Running => "already started",
                        _ => "exited",
                    };
                    let msg = format!("container {} is {what}", self.cfg.id);
                    self.reply_close(i, &Reply::err(ErrorKind::Conflict, msg));
                    return;
                }
                if let Some(c) = self.conn(i) {
                    c.state = ConnState::Pending;
                }
                self.starting = true;
                let (root, id) = (self.cfg.runtime_root.clone(), self.cfg.id.clone());
                let conn = self.reference(i);
                self.spawn_helper(HelperOp::Start, conn, move || match berth_runtime::Runtime::new(root).start(&id) {
                    Ok(()) => (Answer { ok: true, ..Answer::default() }, None),
                    Err(e) => (Answer::failed(e.to_string()), None),
                });
            }
            Request::Attach(mut opts) => {
                let exited = self.phase == Phase::Exited;
                // A container without stdin takes none.
                opts.stdin &= self.cfg.open_stdin;
                let Some(c) = self.conn(i) else { return };
                c.reply(&Reply::ok());
                if exited {
                    c.close_when_flushed = true;
                    return;
                }
                c.state = attach(Target::Init, &opts);
                let eof = c.read_eof;
                self.conn_input(i, Vec::new());
                if eof {
                    self.conn_input_ended(i);
                }
            }
            Request::Resize { exec_id, rows, cols } => {
                let reply = self.resize(exec_id.as_deref(), rows, cols);
                self.reply_close(i, &reply);
            }
            Request::Wait => match self.exit.clone() {
                Some(e) => self.reply_close(i, &Reply { exit: Some(e), ..Reply::ok() }),
                None => {
                    if let Some(c) = self.conn(i) {
                        c.state = ConnState::Waiting;
                    }
                }
            },
            Request::Exec(req) => self.exec(i, *req),
            Request::ExecState { exec_id } => {
                let reply = match self.execs.get(&exec_id) {
                    Some(e) => Reply { exec: Some(exec_state(&exec_id, e)), ..Reply::ok() },
                    None => Reply::err(ErrorKind::NotFound, format!("No such exec instance: {exec_id}")),
                };
                self.reply_close(i, &reply);
            }
            Request::Shutdown => {
                if self.phase != Phase::Exited {
                    let msg = format!("container {} has not exited", self.cfg.id);
                    self.reply_close(i, &Reply::err(ErrorKind::Conflict, msg));
                    return;
                }
                self.reply_close(i, &Reply::ok());
                self.shutdown_at = Some(Instant::now());
            }
        }
    }

    fn status(&self) -> ShimStatus {
        ShimStatus {
            id: self.cfg.id.clone(),
            shim_pid: std::process::id() as i32,
            pid: self.init.pid,
            phase: self.phase,
            tty: self.cfg.tty,
            open_stdin: self.cfg.open_stdin,
            exit: self.exit.clone(),
        }
    }

    fn resize(&mut self, exec_id: Option<&str>, rows: u16, cols: u16) -> Reply {
        let io = match exec_id {
            None => Some(&self.init.io),
            Some(id) => match self.execs.get(id) {
                Some(e) => Some(&e.io),
                None => return Reply::err(ErrorKind::NotFound, format!("No such exec instance: {id}")),
            },
        };
        let Some(master) = io.and_then(Stdio::master) else {
            return Reply::err(ErrorKind::Conflict, "the process has no terminal to resize");
        };
        match berth_runtime::console::set_size(master, rows, cols) {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::err(ErrorKind::Internal, e.to_string()),
        }
    }

    fn exec(&mut self, i: usize, req: ExecRequest) {
        if self.phase != Phase::Running {
            let msg = format!("container {} is not running", self.cfg.id);
            self.reply_close(i, &Reply::err(ErrorKind::Conflict, msg));
            return;
        }
        if self.execs.contains_key(&req.exec_id) {
            self.reply_close(i, &Reply::err(ErrorKind::Conflict, format!("exec {} already exists", req.exec_id)));
            return;
        }
        let pipes = match make_pipes(req.tty, req.stdin && !req.detach, req.detach) {
            Ok(p) => p,
            Err(e) => {
                self.reply_close(i, &Reply::err(e.kind(), e.to_string()));
                return;
            }
        };
        let Some(c) = self.conn(i) else { return };
        c.state = if req.detach {
            ConnState::Pending
        } else {
            let opts = AttachOptions {
                stdin: req.stdin,
                stdout: true,
                stderr: true,
                stdin_once: true,
                detach_keys: req.detach_keys.clone(),
            };
            attach(Target::Exec(req.exec_id.clone()), &opts)
        };
        let exec = Exec { pid: 0, starting: true, io: pipes.ours, exit: None, error: None, done: false };
        self.execs.insert(req.exec_id.clone(), exec);
        let mut process = req.process;
        process.set_terminal(Some(req.tty));
        let theirs = pipes.theirs;
        let stdio = raw3(&theirs);
        let (root, id) = (self.cfg.runtime_root.clone(), self.cfg.id.clone());
        let tty = req.tty;
        let conn = self.reference(i);
        self.spawn_helper(HelperOp::Exec(req.exec_id), conn, move || {
            let opts = berth_runtime::ExecOptions { keep_terminal: tty, stdio, ..Default::default() };
            match berth_runtime::Runtime::new(root).exec(&id, &process, &opts) {
                Ok(created) => (Answer { ok: true, pid: created.pid, ..Answer::default() }, created.terminal),
                Err(e) => (Answer::failed(e.to_string()), None),
            }
        });
        drop(theirs);
    }

    // ---- state machine ----

    /// Moves things along: finished execs, the container's end.
    fn progress(&mut self) {
        if self.trim_at.is_some_and(|t| Instant::now() >= t) {
            self.trim_at = None;
            trim_memory();
        }
        let init_done = self.phase == Phase::Exited;
        let mut finished = Vec::new();
        for (id, e) in &mut self.execs {
            if e.done || e.starting {
                continue;
            }
            let exited = e.exit.is_some() && e.io.output_done();
            if exited || init_done {
                e.done = true;
                e.io = Stdio::default();
                finished.push(Target::Exec(id.clone()));
            }
        }
        for t in finished {
            for c in self.conns.iter_mut().flatten() {
                if c.attached_to(&t) {
                    c.close_when_flushed = true;
                    flush(c);
                }
            }
        }
        if self.phase == Phase::Stopping && self.deleted {
            let drained = self.init.io.output_done();
            let late = self.drain_deadline.is_some_and(|d| Instant::now() >= d);
            if drained || late {
                self.finish();
            }
        }
        for c in self.conns.iter_mut().flatten() {
            if c.close_when_flushed && c.pending_out() == 0 && !c.dead {
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
                c.dead = true;
            }
        }
        let open = self.conns.iter().flatten().any(|c| !c.dead);
        if self.phase == Phase::Exited {
            match (open, self.idle_since) {
                (true, _) => self.idle_since = None,
                (false, None) => self.idle_since = Some(Instant::now()),
                _ => {}
            }
        }
    }

    /// The container has exited and its output is in: flush, record,
    /// answer.
    fn finish(&mut self) {
        for i in 0..2 {
            self.init.io.out[i] = None;
            let Shim { init, log, log_errors, .. } = self;
            init.splitters[i].finish(&mut timefmt::now_nanos, &mut |m| write_log(log, log_errors, m));
        }
        self.init.io = Stdio::default();
        let (code, signal, time, oom) = self.raw_exit.unwrap_or((255, None, timefmt::now_nanos(), false));
        let exit = ExitStatus { code, signal, time: timefmt::rfc3339_fixed(time), oom_killed: oom, pid: self.init.pid };
        let path = self.cfg.state_dir.join(protocol::EXIT_FILE);
        let data = serde_json::to_vec(&exit).expect("exit serializes");
        if let Err(e) = berth_sys::fs::write_replace(&path, &data) {
            eprintln!("berth-shim: write {}: {e}", path.display());
        }
        self.exit = Some(exit.clone());
        self.phase = Phase::Exited;
        self.drain_deadline = None;
        for c in self.conns.iter_mut().flatten() {
            match c.state {
                ConnState::Waiting => c.reply_and_close(&Reply { exit: Some(exit.clone()), ..Reply::ok() }),
                ConnState::Attach(_) => c.close_when_flushed = true,
                _ => {}
            }
            flush(c);
        }
    }

    fn should_exit(&self) -> bool {
        if self.phase != Phase::Exited {
            return false;
        }
        if let Some(at) = self.shutdown_at {
            let flushed = self.conns.iter().flatten().all(|c| c.dead || c.pending_out() == 0);
            return flushed || at.elapsed() >= SHUTDOWN_FLUSH;
        }
        self.idle_since.is_some_and(|i| i.elapsed() >= Duration::from_millis(self.cfg.exit_grace_ms))
    }
}

fn attach(target: Target, o: &AttachOptions) -> ConnState {
    ConnState::Attach(Attach {
        target,
        stdin: o.stdin,
        stdout: o.stdout,
        stderr: o.stderr,
        stdin_once: o.stdin_once,
        detach: DetachKeys { keys: o.detach_keys.clone().unwrap_or_default(), matched: 0 },
    })
}

fn exec_state(id: &str, e: &Exec) -> ExecState {
    ExecState {
        exec_id: id.to_owned(),
        pid: e.pid,
        running: !e.starting && e.exit.is_none() && e.error.is_none(),
        exit_code: e.exit,
        error: e.error.clone(),
    }
}

/// Writes what it can of a connection's pending output.
fn flush(c: &mut Conn) {
    while c.pending_out() > 0 && !c.dead {
        match c.sock.write(&c.wbuf[c.wpos..]) {
            Ok(0) => break,
            Ok(n) => c.wpos += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                c.dead = true;
                c.wbuf = Vec::new();
                c.wpos = 0;
            }
        }
    }
    if c.wpos == c.wbuf.len() {
        c.wbuf.clear();
        c.wpos = 0;
        if c.wbuf.capacity() > 64 * 1024 {
            c.wbuf = Vec::new();
        }
    } else if c.wpos > 64 * 1024 {
        c.wbuf.drain(..c.wpos);
        c.wpos = 0;
    }
}

fn write_log(log: &mut LogWriter, errors: &mut u32, m: &Message<'_>) {
    if let Err(e) = log.log(m) {
        *errors += 1;
        // Say it, but not forever (a full disk).
        if *errors <= 10 {
            eprintln!("berth-shim: log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_held_back_and_released() {
        let mut d = DetachKeys { keys: vec![16, 17], matched: 0 };
        let mut out = Vec::new();
        assert!(!d.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        assert!(!d.feed(b"c\x10\x10", &mut out));
        assert_eq!(out, b"ab\x10c\x10");
        assert!(d.feed(b"\x11zz", &mut out));
        assert_eq!(out, b"ab\x10c\x10");
        let mut none = DetachKeys::default();
        let mut out = Vec::new();
        assert!(!none.feed(b"\x10\x11", &mut out));
        assert_eq!(out, b"\x10\x11");
    }

    #[test]
    fn exit_codes_of_signals() {
        // Built the way the kernel reports them.
        assert_eq!(exit_code(9), (137, Some(9)));
        assert_eq!(exit_code(3 << 8), (3, None));
    }

    #[test]
    fn oom_kill_counts_from_either_file() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("memory.oom_control");
        std::fs::write(&v1, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        assert_eq!(oom_kills(&v1), 2);
        let v2 = dir.path().join("memory.events");
        std::fs::write(&v2, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n").unwrap();
        assert_eq!(oom_kills(&v2), 0);
        assert_eq!(oom_kills(&dir.path().join("missing")), 0);
    }
}
