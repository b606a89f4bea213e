//! A berthd of the test's own: its data root, exec root, socket and cgroup
//! parent under the run's names, stopped and cleaned up on drop.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestDir;

/// The docker CLI nobody here wrote, for compatibility tests.
pub const DOCKER_CLI: &str = "/usr/local/bin/docker";

pub struct TestDaemon {
    pub dir: TestDir,
    pub berthd: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
    /// Which of the process's daemons this is: its network names and
    /// subnets derive from it.
    net_index: u8,
}

/// Daemons of one test process get a letter each for their network names.
const NET_CHARS: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// A minimal HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The Docker Hub mirror every test daemon has, after any of the test's
/// own: a closed loopback port. With `--registry-mirrors-only` a pull of a Docker Hub name that no
/// mirror of the test's own serves fails at once, naming it, and never
/// reaches the internet.
pub const HUB_MIRROR: &str = "http://127.0.0.1:1";

impl TestDaemon {
    /// Start berthd (the binary at `berthd`) and wait for its socket.
    pub fn start(berthd: &Path) -> TestDaemon {
        Self::start_with(berthd, &[])
    }

    pub fn start_with(berthd: &Path, extra: &[&str]) -> TestDaemon {
        crate::require_root();
        let dir = TestDir::new("daemon");
        static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
        let net_index = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % NET_CHARS.len() as u8;
        let mut d = TestDaemon { dir, berthd: berthd.to_owned(), child: None, extra_args: extra.iter().map(|s| s.to_string()).collect(), net_index };
        d.spawn();
        d
    }

    /// Its own, or the `--data-root` the test gave (say on a file system
    /// the test mounted).
    pub fn data_root(&self) -> PathBuf {
        let given = self.extra_args.iter().position(|a| a == "--data-root").and_then(|i| self.extra_args.get(i + 1));
        given.map(PathBuf::from).unwrap_or_else(|| self.dir.join("data"))
    }

    /// The test's extra flags but `--data-root` (passed once, as [`TestDaemon::data_root`]).
    fn extra_flags(&self) -> Vec<&String> {
        let skip = self.extra_args.iter().position(|a| a == "--data-root");
        self.extra_args.iter().enumerate().filter(|(i, _)| skip.is_none_or(|s| *i != s && *i != s + 1)).map(|(_, a)| a).collect()
    }
    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("exec")
    }
    pub fn socket(&self) -> PathBuf {
        self.exec_root().join("berth.sock")
    }
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("berthd.log")
    }

    /// Prefix of the daemon's nft table and host links (the run's prefix
    /// and the daemon's letter: the leak check finds them).
    pub fn net_prefix(&self) -> String {
        format!("{}{}", crate::leak::net_prefix(crate::run_id()), NET_CHARS[self.net_index as usize] as char)
    }

    /// The daemon's default bridge device.
    pub fn bridge(&self) -> String {
        format!("{}0", self.net_prefix())
    }

    /// The `j`th /24 (0..8) of the daemon's address space: 0 is the default
    /// bridge's, 1..8 its `default-address-pool` (tests giving `--subnet`
    /// pick from those too). 10.210-249.x.0/24, by run and daemon.
    pub fn subnet24(&self, j: u8) -> String {
        let run = crate::run_id().bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        format!("10.{}.{}", 210 + run % 40, self.net_index as u32 * 8 + (j as u32 % 8))
    }

    /// The networking flags that keep this daemon off the host's names and
    /// subnets.
    fn net_args(&self) -> Vec<String> {
        vec![
            "--network-prefix".into(),
            self.net_prefix(),
            "--bridge".into(),
            self.bridge(),
            "--bip".into(),
            format!("{}.1/24", self.subnet24(0)),
            "--default-address-pool".into(),
            format!("base={}.0/21,size=24", self.subnet24(0)),
        ]
    }

    /// Remove the bridges and nft table the daemon set up (berthd
    /// --uninstall-network on its roots), once it has stopped.
    pub fn uninstall_network(&self) {
        let out = Command::new(&self.berthd)
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .args(self.net_args())
            .arg("--uninstall-network")
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("berthd --uninstall-network: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("berthd --uninstall-network: {e}"),
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("daemon log");
        let child = Command::new(&self.berthd)
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(self.host())
            .arg("--cgroup-parent")
            .arg(crate::cgroup_parent())
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .args(self.net_args())
            .args(self.extra_flags())
            .args(["--registry-mirror", HUB_MIRROR, "--registry-mirrors-only"])
            .args(std::env::var_os("BERTH_INIT_PATH").map(|p| vec![std::ffi::OsString::from("--init-path"), p]).unwrap_or_default())
            .env("BERTHD_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.request("GET", "/_ping", None).map(|r| r.status).ok() != Some(200) {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("berthd exited with {st}: {}", std::fs::read_to_string(self.log_path()).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "berthd did not answer /_ping: {}", std::fs::read_to_string(self.log_path()).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL the daemon (containers and shims must survive this).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the daemon again on the same roots.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// One HTTP/1.1 request over the socket (Connection: close).
    pub fn request(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> std::io::Result<HttpResponse> {
        http(&self.socket(), method, path, body)
    }

    /// The docker CLI pointed at this daemon (None when it isn't installed).
    pub fn docker(&self) -> Option<Command> {
        if !Path::new(DOCKER_CLI).exists() {
            return None;
        }
        let mut c = Command::new(DOCKER_CLI);
        c.env("DOCKER_HOST", self.host()).env("DOCKER_CONFIG", self.dir.join("docker-config")).stdin(Stdio::null());
        Some(c)
    }

    /// Import the busybox root filesystem as image `reference`.
    pub fn import_busybox(&self, reference: &str) {
        let tar = self.dir.join("busybox.tar");
        if !tar.exists() {
            crate::rootfs::busybox_rootfs_tar(&tar).expect("busybox tar");
        }
        let data = std::fs::read(&tar).expect("read busybox tar");
        let (repo, tag) = reference.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((reference, "latest"));
        let path = format!("/images/create?fromSrc=-&repo={repo}&tag={tag}");
        let r = self.request("POST", &path, Some(("application/x-tar", &data))).expect("import");
        assert_eq!(r.status, 200, "import busybox: {}", r.text());
    }

    /// Every container id the daemon knows.
    pub fn container_ids(&self) -> Vec<String> {
        let r = match self.request("GET", "/containers/json?all=1", None) {
            Ok(r) => r,
            Err(_) => return Vec::new(),
        };
        r.json().as_array().into_iter().flatten().filter_map(|c| c["Id"].as_str().map(str::to_owned)).collect()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if self.child.is_none() {
            self.spawn_quietly();
        }
        for id in self.container_ids() {
            let _ = self.request("DELETE", &format!("/containers/{id}?force=1"), None);
        }
        self.stop();
        self.uninstall_network();
        // Whatever is left (shims of a test that panicked): kill processes
        // under the exec root, then unmount and remove the tree.
        // The trailing slash keeps `daemon-…-1` from matching `daemon-…-12`.
        kill_processes_under(&format!("{}/", self.dir.path().display()));
    }
}

impl TestDaemon {
    fn spawn_quietly(&mut self) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn()));
        if r.is_err() {
            self.child = None;
        }
    }
}

/// SIGKILL every process whose command line mentions `needle`.
pub fn kill_processes_under(needle: &str) {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else { return };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// One HTTP/1.1 request on a unix socket.
pub fn http(socket: &Path, method: &str, path: &str, body: Option<(&str, &[u8])>) -> std::io::Result<HttpResponse> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n");
    if let Some((ct, data)) = body {
        req.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", data.len()));
    } else if method == "POST" || method == "PUT" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some((_, data)) = body {
        s.write_all(data)?;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| std::io::Error::other("malformed HTTP response"))
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(HttpResponse { status, headers, body })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_and_chunks_parse() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nApi-Version: 1.50\r\n\r\n5\r\nhello\r\n3\r\n!!!\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("api-version"), Some("1.50"));
        assert_eq!(r.text(), "hello!!!");
    }
}
