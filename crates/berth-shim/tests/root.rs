//! Root integration tests: real busybox containers under real shims.
//!
//! Each test builds a bundle under the run's scratch dir (cgroups under the
//! run's cgroup parent), spawns `berth-shim` for it with its own runtime
//! root and state dir, and talks to it through the daemon's client. A
//! guard kills whatever is left (container, shim) even when a test fails,
//! so the leak check finds nothing.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_shim::logs::reader::stop_when_shim_done;
use berth_shim::logs::{LogConfig, LogDriver, LogEntry, LogReader, ReadOptions};
use berth_shim::protocol::{FrameDecoder, Stream};
use berth_shim::{AttachOptions, ExecRequest, Phase, ShimClient, ShimError, SpawnOptions};
use berth_testkit::{TestDir, cgroup_parent, require_root, rootfs::busybox_rootfs};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");
const T: Duration = Duration::from_secs(20);

/// A container to run under a shim, and the guard that cleans up after it.
struct Ctr {
    dir: TestDir,
    id: String,
    config: Value,
    opts: SpawnOptions,
}

impl Ctr {
    fn new(name: &str) -> Ctr {
        require_root();
        let dir = TestDir::new(name);
        busybox_rootfs(&dir.join("bundle/rootfs")).expect("busybox rootfs");
        let id = format!("{name}-{}", std::process::id());
        let mut config = berth_runtime::defaults::default_spec_json(berth_runtime::default_seccomp_json());
        config["process"]["terminal"] = json!(false);
        config["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", cgroup_parent()));
        let opts = SpawnOptions {
            id: id.clone(),
            bundle: dir.join("bundle"),
            state_dir: dir.join("shim"),
            runtime_root: dir.join("runtime"),
            shim_binary: SHIM.into(),
            tty: false,
            open_stdin: false,
            log: LogConfig::json_file(dir.join("logs/ctr-json.log")),
            exit_grace_ms: 300,
        };
        Ctr { dir, id, config, opts }
    }

    fn args(mut self, args: &[&str]) -> Ctr {
        self.config["process"]["args"] = json!(args);
        self
    }

    fn sh(self, script: &str) -> Ctr {
        self.args(&["sh", "-c", script])
    }

    fn tty(mut self) -> Ctr {
        self.opts.tty = true;
        self.config["process"]["terminal"] = json!(true);
        self
    }

    fn stdin(mut self) -> Ctr {
        self.opts.open_stdin = true;
        self
    }

    fn log(mut self, f: impl FnOnce(&mut LogConfig)) -> Ctr {
        f(&mut self.opts.log);
        self
    }

    fn edit(mut self, f: impl FnOnce(&mut Value)) -> Ctr {
        f(&mut self.config);
        self
    }

    fn write_config(&self) {
        std::fs::write(self.opts.bundle.join("config.json"), serde_json::to_vec_pretty(&self.config).unwrap()).unwrap();
    }

    fn spawn(&self) -> Result<berth_shim::ShimHandle, ShimError> {
        self.write_config();
        berth_shim::spawn(&self.opts)
    }

    fn client(&self) -> ShimClient {
        ShimClient::new(&self.opts.state_dir)
    }

    fn runtime(&self) -> berth_runtime::Runtime {
        berth_runtime::Runtime::new(&self.opts.runtime_root)
    }

    fn socket(&self) -> PathBuf {
        self.opts.state_dir.join("shim.sock")
    }

    fn read_log(&self, opts: ReadOptions) -> Vec<LogEntry> {
        LogReader::open(&self.opts.log, opts).unwrap().map(Result::unwrap).collect()
    }

    /// Waits for the shim to leave (after shutdown or the grace period).
    fn wait_shim_gone(&self) {
        let deadline = Instant::now() + T;
        while self.socket().exists() || berth_shim::shim_pid(&self.opts.state_dir).is_some() {
            assert!(Instant::now() < deadline, "shim of {} did not exit", self.id);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        // Whatever the test did: no container, no shim.
        let _ = self.runtime().delete(&self.id, true);
        if let Some(pid) = berth_shim::shim_pid(&self.opts.state_dir) {
            // SAFETY: kill of the shim this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

async fn read_to_end(mut s: UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut out)).await.expect("stream ended in time").unwrap();
    out
}

/// Demultiplexes a whole framed stream into (stdout, stderr).
fn demux(data: &[u8]) -> (String, String) {
    let mut d = FrameDecoder::default();
    d.push(data);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some((s, p)) = d.next_frame().unwrap() {
        match s {
            Stream::Stdout => out.extend(p),
            Stream::Stderr => err.extend(p),
        }
    }
    assert_eq!(d.pending(), 0, "trailing bytes that are no frame");
    (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

/// Reads until `want` shows up in the (raw) output.
async fn read_until(s: &mut UnixStream, seen: &mut Vec<u8>, want: &str) {
    let deadline = Instant::now() + T;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {want:?} in {:?}", String::from_utf8_lossy(seen)))
            .unwrap();
        assert!(n > 0, "stream ended before {want:?}: {:?}", String::from_utf8_lossy(seen));
        seen.extend_from_slice(&buf[..n]);
    }
}

fn all() -> AttachOptions {
    AttachOptions { stdin: false, stdout: true, stderr: true, stdin_once: false, detach_keys: None }
}

fn lines(entries: &[LogEntry]) -> Vec<String> {
    entries.iter().map(|e| String::from_utf8_lossy(&e.line).into_owned()).collect()
}

// ---- output, logs, exit -------------------------------------------------------

#[tokio::test]
async fn output_reaches_attach_and_json_log_then_exit_is_recorded() {
    let c = Ctr::new("out").sh("echo out; echo err >&2; echo '<tag> & \"q\"'; printf partial");
    let h = c.spawn().unwrap();
    assert!(h.pid > 0 && h.shim_pid > 0 && h.shim_pid != std::process::id() as i32);
    let client = ShimClient::connect(&c.opts.state_dir).await.unwrap();
    assert_eq!(client.status().await.unwrap().phase, Phase::Created);
    let stream = client.attach(all()).await.unwrap();
    let only_err = client.attach(AttachOptions { stdout: false, ..all() }).await.unwrap();
    let waiter = tokio::spawn({
        let client = client.clone();
        async move { client.wait().await }
    });
    client.start().await.unwrap();
    let (out, err) = demux(&read_to_end(stream).await);
    assert_eq!(out, "out\n<tag> & \"q\"\npartial");
    assert_eq!(err, "err\n");
    assert_eq!(demux(&read_to_end(only_err).await), (String::new(), "err\n".to_owned()));

    let exit = tokio::time::timeout(T, waiter).await.unwrap().unwrap().unwrap();
    assert_eq!((exit.code, exit.signal, exit.oom_killed, exit.pid), (0, None, false, h.pid));
    let age = berth_shim::timefmt::now_nanos() - exit.time_nanos().unwrap();
    assert!((0..30_000_000_000).contains(&age), "exit time {}", exit.time);
    assert_eq!(berth_shim::read_exit(&c.opts.state_dir).unwrap(), Some(exit.clone()));
    // The runtime's state and the cgroup are gone with the container.
    assert!(c.runtime().state(&c.id).is_err());
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory/{}/{}", cgroup_parent(), c.id)).exists());

    // docker's json-file lines, byte for byte but for the times.
    let text = std::fs::read_to_string(&c.opts.log.path).unwrap();
    let shape: Vec<String> = text
        .lines()
        .map(|l| {
            let (head, time) = l.split_at(l.find("\"time\":\"").unwrap());
            let t = &time[8..time.len() - 2];
            assert!(berth_shim::timefmt::parse_rfc3339(t).is_some() && t.ends_with('Z'), "{l}");
            assert!(!t.contains(".") || !t.trim_end_matches('Z').ends_with('0'), "Go trims fraction zeros: {t}");
            head.to_owned()
        })
        .collect();
    let mut shape_sorted = shape.clone();
    shape_sorted.sort();
    let mut want = vec![
        r#"{"log":"out\n","stream":"stdout","#.to_owned(),
        r#"{"log":"err\n","stream":"stderr","#.to_owned(),
        r#"{"log":"\u003ctag\u003e \u0026 \"q\"\n","stream":"stdout","#.to_owned(),
        r#"{"log":"partial","stream":"stdout","#.to_owned(),
    ];
    want.sort();
    assert_eq!(shape_sorted, want, "{text}");
    let logged = c.read_log(ReadOptions::default());
    assert_eq!(logged.iter().filter(|e| e.stream == Stream::Stderr).count(), 1);
    assert!(logged.last().unwrap().partial);

    client.shutdown().await.unwrap();
    c.wait_shim_gone();
    let gone = ShimClient::connect(&c.opts.state_dir).await.unwrap_err();
    assert!(gone.shim_gone(), "{gone}");
}

#[tokio::test]
async fn stdin_goes_through_attach_and_eof_closes_it() {
    let c = Ctr::new("stdin").stdin().args(&["cat"]);
    c.spawn().unwrap();
    let client = c.client();
    let mut s = client.attach(AttachOptions { stdin: true, stdin_once: true, ..all() }).await.unwrap();
    client.start().await.unwrap();
    s.write_all(b"hello\nworld").await.unwrap();
    s.shutdown().await.unwrap();
    let (out, _) = demux(&read_to_end(s).await);
    assert_eq!(out, "hello\nworld");
    assert_eq!(tokio::time::timeout(T, client.wait()).await.unwrap().unwrap().code, 0);
}

#[tokio::test]
async fn detach_keys_end_an_attach_but_not_the_container() {
    let c = Ctr::new("detach").stdin().args(&["cat"]);
    c.spawn().unwrap();
    let client = c.client();
    // Without StdinOnce: detaching leaves the container's stdin open (with
    // it, docker closes stdin on detach too).
    let keys = AttachOptions { stdin: true, stdin_once: false, detach_keys: Some(vec![0x10, 0x11]), ..all() };
    let mut a = client.attach(keys).await.unwrap();
    client.start().await.unwrap();
    // A lone ctrl-p goes through; ctrl-p ctrl-q detaches (the stream
    // ends) and is not sent, nor is what follows it.
    a.write_all(b"a\x10b\x10\x11c").await.unwrap();
    read_to_end(a).await;
    assert_eq!(client.status().await.unwrap().phase, Phase::Running);
    let mut b = client.attach(AttachOptions { stdin: true, stdin_once: true, ..all() }).await.unwrap();
    b.write_all(b"z\n").await.unwrap();
    b.shutdown().await.unwrap();
    let out = demux(&read_to_end(b).await).0;
    assert!(out.ends_with("z\n") && !out.contains('c'), "{out:?}");
    assert_eq!(tokio::time::timeout(T, client.wait()).await.unwrap().unwrap().code, 0);
    assert_eq!(lines(&c.read_log(ReadOptions::default())), ["a\x10bz\n"]);
}

#[tokio::test]
async fn tty_is_raw_and_resizable() {
    let c = Ctr::new("tty").tty().stdin().sh("stty size; read x; stty size; echo done");
    c.spawn().unwrap();
    let client = c.client();
    client.resize(30, 100).await.unwrap();
    let mut s = client.attach(AttachOptions { stdin: true, ..all() }).await.unwrap();
    client.start().await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut s, &mut seen, "30 100\r\n").await;
    client.resize(40, 120).await.unwrap();
    s.write_all(b"\n").await.unwrap();
    read_until(&mut s, &mut seen, "done\r\n").await;
    assert!(String::from_utf8_lossy(&seen).contains("40 120\r\n"), "{:?}", String::from_utf8_lossy(&seen));
    // Raw: no frame headers.
    assert_ne!(seen[0], 1);
    assert_eq!(tokio::time::timeout(T, client.wait()).await.unwrap().unwrap().code, 0);
    let text = std::fs::read_to_string(&c.opts.log.path).unwrap();
    assert!(text.contains(r#"{"log":"30 100\r\n","stream":"stdout","#), "{text}");
    // A tty container can be resized; a pipe one cannot.
    let p = Ctr::new("notty").args(&["true"]);
    p.spawn().unwrap();
    let e = p.client().resize(1, 1).await.unwrap_err();
    assert_eq!(e.kind(), berth_api::ErrorKind::Conflict);
}

#[tokio::test]
async fn sigkill_from_outside_records_137() {
    let c = Ctr::new("kill").args(&["sleep", "1000"]);
    c.spawn().unwrap();
    let client = c.client();
    client.start().await.unwrap();
    assert_eq!(client.status().await.unwrap().phase, Phase::Running);
    let before = berth_shim::timefmt::now_nanos();
    c.runtime().kill(&c.id, nix::sys::signal::Signal::SIGKILL, false).unwrap();
    let exit = tokio::time::timeout(T, client.wait()).await.unwrap().unwrap();
    assert_eq!((exit.code, exit.signal, exit.oom_killed), (137, Some(9), false));
    assert!(exit.time_nanos().unwrap() >= before);
    let rec: Value = serde_json::from_slice(&std::fs::read(c.opts.state_dir.join("exit.json")).unwrap()).unwrap();
    assert_eq!(rec["code"], 137);
    assert_eq!(client.status().await.unwrap().phase, Phase::Exited);
    // With nobody connected the shim leaves after its grace period.
    c.wait_shim_gone();
    assert_eq!(berth_shim::read_exit(&c.opts.state_dir).unwrap().unwrap().code, 137);
}

#[tokio::test]
async fn oom_kill_is_flagged() {
    let c = Ctr::new("oom")
        .edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024}))
        .args(&["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}"]);
    c.spawn().unwrap();
    let client = c.client();
    client.start().await.unwrap();
    let exit = tokio::time::timeout(T, client.wait()).await.unwrap().unwrap();
    assert_eq!((exit.code, exit.oom_killed), (137, true));
}

#[tokio::test]
async fn failed_start_reports_the_runtime_error_and_leaves_nothing() {
    let c = Ctr::new("missing").args(&["no-such-binary"]);
    let err = c.spawn().unwrap_err();
    assert!(
        err.to_string().contains(r#"exec: "no-such-binary": executable file not found in $PATH"#),
        "{err}"
    );
    assert_eq!(err.exit_code(), Some(127));
    assert_eq!(err.kind(), berth_api::ErrorKind::InvalidParameter);
    assert!(!c.opts.state_dir.exists(), "state dir left");
    assert!(!c.opts.runtime_root.join(&c.id).exists(), "runtime state left");
    for ctl in ["memory", "pids", "cpu"] {
        let p = format!("/sys/fs/cgroup/{ctl}/{}/{}", cgroup_parent(), c.id);
        assert!(!Path::new(&p).exists(), "{p} left");
    }
    let dir = c.opts.state_dir.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&cmd).contains(&dir), "a shim is left: {}", e.path().display());
    }
    // No shim binary.
    let mut c = Ctr::new("noshim").args(&["true"]);
    c.opts.shim_binary = "/nonexistent/berth-shim".into();
    let err = c.spawn().unwrap_err();
    assert!(matches!(err, ShimError::Exec { .. }), "{err}");
    assert!(!c.opts.state_dir.exists());
    // A bad log driver setting fails before anything starts.
    let c = Ctr::new("badlog").args(&["true"]).log(|l| l.driver = LogDriver::Syslog).log(|l| {
        l.syslog.address = Some("unixgram:///nonexistent/berth-test.sock".into());
    });
    let err = c.spawn().unwrap_err();
    assert!(err.to_string().starts_with("failed to initialize logging driver"), "{err}");
    assert!(!c.opts.state_dir.exists());
}

// ---- a daemon that goes away --------------------------------------------------

/// Not a test: the "daemon" the test below runs as a separate process
/// (spawns and starts the container, says so, then waits to be killed).
#[test]
#[ignore]
fn daemon_process() {
    let Ok(opts) = std::env::var("BERTH_SHIM_TEST_SPAWN") else { return };
    let opts: SpawnOptions = serde_json::from_str(&opts).unwrap();
    let h = berth_shim::spawn(&opts).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(ShimClient::new(&opts.state_dir).start()).unwrap();
    // Straight to fd 1: the test harness captures println!.
    let mut out = std::io::stdout();
    std::io::Write::write_all(&mut out, format!("READY {} {}\n", h.shim_pid, h.pid).as_bytes()).unwrap();
    std::io::Write::flush(&mut out).unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

/// The "daemon" process; SIGKILLed and reaped when dropped.
struct Daemon(std::process::Child);

impl Daemon {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs [`daemon_process`] for `c`, returns (it, shim pid, init pid) once
/// it has started the container.
fn daemon_spawns(c: &Ctr) -> (Daemon, i32, i32) {
    c.write_config();
    let mut child = Daemon(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "daemon_process", "--ignored", "--nocapture", "--test-threads", "1"])
            .env("BERTH_SHIM_TEST_SPAWN", serde_json::to_string(&c.opts).unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "the daemon process ended before it was ready");
        // The harness may have written "test daemon_process ... " first.
        if let Some((_, rest)) = line.trim().split_once("READY ") {
            let (s, i) = rest.split_once(' ').unwrap();
            return (child, s.parse().unwrap(), i.parse().unwrap());
        }
    }
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn sigkilled_daemon_leaves_container_and_shim_and_a_new_client_reattaches() {
    let c = Ctr::new("reattach").stdin().sh("echo started; while read l; do echo got $l; done; echo bye; exit 3");
    let (daemon, shim, init) = daemon_spawns(&c);
    assert_eq!(ppid(init), shim, "the shim is the container's parent");
    assert_ne!(ppid(shim), daemon.pid(), "the daemon is not the shim's parent");
    // SIGKILL, reaped.
    drop(daemon);

    // Both live on; a new "daemon" finds the shim from its state dir.
    assert!(Path::new(&format!("/proc/{shim}")).exists() && Path::new(&format!("/proc/{init}")).exists());
    let client = ShimClient::connect(&c.opts.state_dir).await.unwrap();
    let st = client.status().await.unwrap();
    assert_eq!((st.phase, st.pid, st.shim_pid), (Phase::Running, init, shim));
    assert_eq!(c.runtime().state(&c.id).unwrap().status.as_str(), "running");
    let mut s = client.attach(AttachOptions { stdin: true, stdin_once: true, ..all() }).await.unwrap();
    s.write_all(b"one\n").await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut s, &mut seen, "got one\n").await;
    s.shutdown().await.unwrap();
    let rest = read_to_end(s).await;
    seen.extend(rest);
    let (out, _) = demux(&seen);
    assert_eq!(out, "got one\nbye\n");
    let exit = tokio::time::timeout(T, client.wait()).await.unwrap().unwrap();
    assert_eq!(exit.code, 3);
    // Output from before the reattach is in the log.
    assert_eq!(lines(&c.read_log(ReadOptions::default())), ["started\n", "got one\n", "bye\n"]);
    client.shutdown().await.unwrap();
    c.wait_shim_gone();
}

#[tokio::test]
async fn exit_while_no_daemon_is_connected_leaves_exit_json() {
    let c = Ctr::new("nodaemon").sh("echo bye; sleep 0.5; exit 4");
    let (daemon, _shim, _) = daemon_spawns(&c);
    drop(daemon);
    // The container exits, nobody is there: the shim records and leaves.
    c.wait_shim_gone();
    let exit = berth_shim::read_exit(&c.opts.state_dir).unwrap().expect("exit.json");
    assert_eq!(exit.code, 4);
    assert!(ShimClient::connect(&c.opts.state_dir).await.unwrap_err().shim_gone());
    assert_eq!(lines(&c.read_log(ReadOptions::default())), ["bye\n"]);
}

// ---- exec -------------------------------------------------------------------

/// The container's process with other args, as docker execs (same user,
/// capabilities, environment).
fn process(c: &Ctr, args: &[&str]) -> oci_spec::runtime::Process {
    let mut p = c.config["process"].clone();
    p["args"] = json!(args);
    serde_json::from_value(p).unwrap()
}

fn exec(c: &Ctr, id: &str, args: &[&str], tty: bool, stdin: bool, detach: bool) -> ExecRequest {
    ExecRequest { exec_id: id.into(), process: process(c, args), tty, stdin, detach, detach_keys: None }
}

#[tokio::test]
async fn exec_streams_exit_codes_tty_stdin_and_detached() {
    let c = Ctr::new("exec").args(&["sleep", "1000"]);
    c.spawn().unwrap();
    let client = c.client();
    // Not running yet: refused.
    let e = client.exec(exec(&c, "early", &["true"], false, false, false)).await.unwrap_err();
    assert_eq!(e.kind(), berth_api::ErrorKind::Conflict);
    client.start().await.unwrap();

    let started = client.exec(exec(&c, "e1", &["sh", "-c", "echo e-out; echo e-err >&2; exit 5"], false, false, false)).await.unwrap();
    assert!(started.pid > 0);
    let (out, err) = demux(&read_to_end(started.stream.unwrap()).await);
    assert_eq!((out.as_str(), err.as_str()), ("e-out\n", "e-err\n"));
    let st = client.exec_state("e1").await.unwrap();
    assert_eq!((st.running, st.exit_code, st.pid), (false, Some(5), started.pid));

    // With stdin: EOF closes it.
    let started = client.exec(exec(&c, "e2", &["cat"], false, true, false)).await.unwrap();
    let mut s = started.stream.unwrap();
    s.write_all(b"via exec\n").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(demux(&read_to_end(s).await).0, "via exec\n");
    assert_eq!(client.exec_state("e2").await.unwrap().exit_code, Some(0));

    // With a tty: raw bytes, resizable.
    let started = client.exec(exec(&c, "e3", &["sh", "-c", "tty; read x; stty size"], true, true, false)).await.unwrap();
    let mut s = started.stream.unwrap();
    let mut seen = Vec::new();
    read_until(&mut s, &mut seen, "/dev/pts/").await;
    client.resize_exec("e3", 12, 34).await.unwrap();
    s.write_all(b"\n").await.unwrap();
    read_until(&mut s, &mut seen, "12 34\r\n").await;
    seen.extend(read_to_end(s).await);
    assert!(seen.starts_with(b"/dev/pts/"), "{:?}", String::from_utf8_lossy(&seen));
    assert_eq!(client.exec_state("e3").await.unwrap().exit_code, Some(0));

    // Detached: no stream; the exit code is kept.
    let started = client.exec(exec(&c, "e4", &["sh", "-c", "sleep 0.3; exit 7"], false, false, true)).await.unwrap();
    assert!(started.stream.is_none());
    assert!(client.exec_state("e4").await.unwrap().running);
    let deadline = Instant::now() + T;
    loop {
        let st = client.exec_state("e4").await.unwrap();
        if !st.running {
            assert_eq!(st.exit_code, Some(7));
            break;
        }
        assert!(Instant::now() < deadline, "detached exec never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A missing binary: the runtime's message, docker's 126 in exec inspect.
    let e = client.exec(exec(&c, "e5", &["no-such-thing"], false, false, false)).await.unwrap_err();
    assert!(e.to_string().contains(r#"exec: "no-such-thing": executable file not found in $PATH"#), "{e}");
    let st = client.exec_state("e5").await.unwrap();
    assert_eq!((st.running, st.exit_code), (false, Some(126)));
    assert_eq!(client.exec_state("nope").await.unwrap_err().kind(), berth_api::ErrorKind::NotFound);
    let e = client.exec(exec(&c, "e1", &["true"], false, false, false)).await.unwrap_err();
    assert_eq!(e.kind(), berth_api::ErrorKind::Conflict);

    // Exec output is not the container's log.
    c.runtime().kill(&c.id, nix::sys::signal::Signal::SIGKILL, false).unwrap();
    tokio::time::timeout(T, client.wait()).await.unwrap().unwrap();
    assert!(c.read_log(ReadOptions::default()).is_empty());
}

// ---- logs -------------------------------------------------------------------

#[tokio::test]
async fn json_file_rotates_with_max_size_and_max_file() {
    let c = Ctr::new("rotate")
        .sh("i=0; while [ $i -lt 200 ]; do printf 'line %03d %080d\\n' $i 0; i=$((i+1)); done")
        .log(|l| {
            l.max_size = Some(4096);
            l.max_file = 3;
        });
    c.spawn().unwrap();
    let client = c.client();
    client.start().await.unwrap();
    tokio::time::timeout(T, client.wait()).await.unwrap().unwrap();
    let p = &c.opts.log.path;
    let rotated = |n| PathBuf::from(format!("{}.{n}", p.display()));
    assert!(p.exists() && rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists(), "max-file 3 keeps 3 files");
    for f in [p.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&f).unwrap().len();
        // Rotation happens before the entry that would start past max-size.
        assert!(len < 4096 + 200, "{} is {len} bytes", f.display());
    }
    let got = lines(&c.read_log(ReadOptions::default()));
    assert!(got.len() < 200 && got.len() > 40);
    assert_eq!(got.last().unwrap(), &format!("line 199 {:080}\n", 0));
    let first: usize = got[0][5..8].parse().unwrap();
    let want: Vec<String> = (first..200).map(|i| format!("line {i:03} {:080}\n", 0)).collect();
    assert_eq!(got, want, "entries in order, none lost inside the kept files");
    let tail = lines(&c.read_log(ReadOptions { tail: Some(5), ..ReadOptions::default() }));
    assert_eq!(tail, want[want.len() - 5..]);
}

#[tokio::test]
async fn reader_follows_across_rotation_with_tail_and_since_for_both_file_drivers() {
    for (driver, name) in [(LogDriver::JsonFile, "follow-json"), (LogDriver::Local, "follow-local")] {
        let c = Ctr::new(name)
            .sh("echo first; sleep 0.5; i=0; while [ $i -lt 60 ]; do echo n$i; i=$((i+1)); sleep 0.01; done; echo err >&2")
            .log(|l| {
                l.driver = driver;
                l.path = l.path.with_file_name(format!("{name}.log"));
                l.max_size = Some(200);
                l.max_file = 100;
            });
        c.spawn().unwrap();
        let client = c.client();
        client.start().await.unwrap();
        // Follow from the start, in a thread, while the container writes.
        let log = c.opts.log.clone();
        let stop = stop_when_shim_done(&c.opts.state_dir);
        let follower = std::thread::spawn(move || {
            LogReader::open(&log, ReadOptions { follow: true, ..ReadOptions::default() })
                .unwrap()
                .with_stop(stop)
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        });
        let exit = tokio::time::timeout(T, client.wait()).await.unwrap().unwrap();
        assert_eq!(exit.code, 0);
        let followed = follower.join().unwrap();
        let mut want = vec!["first\n".to_owned()];
        want.extend((0..60).map(|i| format!("n{i}\n")));
        want.push("err\n".into());
        assert_eq!(lines(&followed), want, "{driver:?}");
        assert!(PathBuf::from(format!("{}.3", c.opts.log.path.display())).exists(), "{driver:?} rotated");

        let all = c.read_log(ReadOptions::default());
        assert_eq!(lines(&all), want);
        let t = |i: usize| all[i].time;
        let since = c.read_log(ReadOptions { since: Some(t(1)), until: Some(t(3)), ..ReadOptions::default() });
        assert_eq!(lines(&since), want[1..4]);
        let tail = c.read_log(ReadOptions { tail: Some(2), ..ReadOptions::default() });
        assert_eq!(lines(&tail), ["n59\n", "err\n"]);
        let errs = c.read_log(ReadOptions { stdout: false, ..ReadOptions::default() });
        assert_eq!(lines(&errs), ["err\n"]);
        assert!(all.iter().all(|e| !e.partial));
        client.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn syslog_and_none_drivers() {
    let c = Ctr::new("syslog").sh("echo to-syslog; echo oops >&2");
    let sock = c.dir.join("syslog.sock");
    let server = UnixDatagram::bind(&sock).unwrap();
    server.set_read_timeout(Some(T)).unwrap();
    let c = c.log(|l| {
        l.driver = LogDriver::Syslog;
        l.syslog.address = Some(format!("unixgram://{}", sock.display()));
        l.syslog.tag = "abc123".into();
    });
    c.spawn().unwrap();
    let client = c.client();
    client.start().await.unwrap();
    tokio::time::timeout(T, client.wait()).await.unwrap().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..2 {
        let n = server.recv(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got.sort();
    assert!(got[0].starts_with("<27>") && got[0].contains(" abc123[") && got[0].ends_with(": oops\n"), "{got:?}");
    assert!(got[1].starts_with("<30>") && got[1].contains(" abc123[") && got[1].ends_with(": to-syslog\n"), "{got:?}");
    assert!(LogReader::open(&c.opts.log, ReadOptions::default()).is_err());

    let n = Ctr::new("nolog").args(&["echo", "x"]).log(|l| *l = LogConfig::none());
    n.spawn().unwrap();
    let s = n.client().attach(all()).await.unwrap();
    n.client().start().await.unwrap();
    assert_eq!(demux(&read_to_end(s).await).0, "x\n");
    assert!(!n.dir.join("logs").exists());
}

// ---- memory -------------------------------------------------------------------

/// Not a pass/fail test: prints the shim's memory with a `sleep` container,
/// for the figures in the crate docs. `BERTH_SHIM=target/release/berth-shim
/// cargo test -p berth-shim --test root -- --ignored --nocapture shim_memory`.
#[tokio::test]
#[ignore]
async fn shim_memory() {
    let mut c = Ctr::new("rss").args(&["sleep", "1000"]);
    if let Ok(bin) = std::env::var("BERTH_SHIM") {
        c.opts.shim_binary = std::fs::canonicalize(bin).unwrap();
    }
    let h = c.spawn().unwrap();
    let client = c.client();
    let s = client.attach(all()).await.unwrap();
    client.start().await.unwrap();
    let started = client.exec(exec(&c, "m1", &["echo", "hi"], false, false, false)).await.unwrap();
    read_to_end(started.stream.unwrap()).await;
    // Idle, as most shims are most of the time.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let field = |file: &str, key: &str| -> String {
        let text = std::fs::read_to_string(format!("/proc/{}/{file}", h.shim_pid)).unwrap();
        text.lines().find(|l| l.starts_with(key)).unwrap_or("").split_whitespace().nth(1).unwrap_or("?").to_owned()
    };
    let mut out = std::io::stdout();
    let report = format!(
        "shim {}: VmRSS {} kB, Pss {} kB, Private_Dirty {} kB, VmSize {} kB\n",
        c.opts.shim_binary.display(),
        field("status", "VmRSS:"),
        field("smaps_rollup", "Pss:"),
        field("smaps_rollup", "Private_Dirty:"),
        field("status", "VmSize:"),
    );
    std::io::Write::write_all(&mut out, report.as_bytes()).unwrap();
    if let Ok(secs) = std::env::var("BERTH_SHIM_HOLD") {
        std::thread::sleep(Duration::from_secs(secs.parse().unwrap()));
    }
    drop(s);
}
