//! Registries end to end (root): a test berthd, `berth registry serve` (or
//! Debian's `docker-registry`) on 127.0.0.1 with a port picked free here,
//! and the `berth` and real `docker` command lines pushing and pulling
//! through them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_testkit::TestDir;
use berth_testkit::daemon::TestDaemon;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn berthd() -> PathBuf {
    PathBuf::from(BERTH).with_file_name("berthd")
}

fn daemon() -> TestDaemon {
    let d = TestDaemon::start(&berthd());
    d.import_busybox("busybox:latest");
    d
}

/// `berth` against `d`, with the client config in the daemon's test dir.
fn berth(d: &TestDaemon, args: &[&str]) -> Output {
    berth_in(d, args, None)
}

fn berth_in(d: &TestDaemon, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(BERTH)
        .arg("-H")
        .arg(d.host())
        .arg("--config")
        .arg(d.dir.join("berth-config"))
        .args(args)
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    if let Some(s) = stdin {
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    c.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", o.status.code(), text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "expected a failure\nstdout: {}\nstderr: {}", text(&o.stdout), text(&o.stderr));
    text(&o.stderr)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("registry exited with {st}: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "registry did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A registry process of the test's own, stopped on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: TestDir,
}

impl Registry {
    /// `berth registry serve` on a free loopback port.
    fn berth(extra: &[&str]) -> Registry {
        let dir = TestDir::new("registry");
        let port = free_port();
        let log = dir.join("serve.log");
        let mut child = Command::new(BERTH)
            .args(["registry", "serve", "--addr", &format!("127.0.0.1:{port}"), "--root"])
            .arg(dir.join("root"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start berth registry serve");
        wait_for_port(port, &mut child, &log);
        Registry { child, port, _dir: dir }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or_default()
}

#[test]
fn push_pull_by_tag_and_digest_and_run_pulls_what_is_missing() {
    let d = daemon();
    let reg = Registry::berth(&[]);
    let name = format!("{}/test/bb:1", reg.host());
    ok(&berth(&d, &["tag", "busybox", &name]));
    let push = ok(&berth(&d, &["push", &name]));
    assert!(push.starts_with(&format!("The push refers to repository [{}/test/bb]\n", reg.host())), "{push}");
    assert!(push.contains(": Pushed\n"), "{push}");
    let digest = last_line(&push).split_whitespace().nth(2).expect("digest in the last line").to_owned();
    assert!(last_line(&push).starts_with("1: digest: sha256:") && last_line(&push).contains(" size: "), "{push}");

    // A second push finds every layer there.
    let again = ok(&berth(&d, &["push", &name]));
    assert!(again.contains(": Layer already exists\n") && !again.contains(": Pushed"), "{again}");

    // Into a daemon that has nothing: docker's lines, RepoDigests recorded.
    let d2 = TestDaemon::start(&berthd());
    let pull = ok(&berth(&d2, &["pull", &name]));
    let lines: Vec<&str> = pull.lines().collect();
    assert_eq!(lines[0], "1: Pulling from test/bb", "{pull}");
    assert!(lines.iter().any(|l| l.ends_with(": Pull complete")), "{pull}");
    assert!(!pull.contains("Downloading"), "no byte counts without a terminal: {pull}");
    assert_eq!(lines[lines.len() - 3], format!("Digest: {digest}"));
    assert_eq!(lines[lines.len() - 2], format!("Status: Downloaded newer image for {name}"));
    assert_eq!(lines[lines.len() - 1], name);
    let repo_digests = ok(&berth(&d2, &["image", "inspect", "-f", "{{json .RepoDigests}}", &name]));
    assert_eq!(repo_digests.trim(), format!("[\"{}/test/bb@{digest}\"]", reg.host()));
    let ls = ok(&berth(&d2, &["image", "ls", "--digests", &format!("{}/test/bb", reg.host())]));
    assert!(ls.lines().nth(1).is_some_and(|l| l.contains(&digest)), "{ls}");
    assert_eq!(ok(&berth(&d2, &["run", "--rm", &name, "echo", "pulled"])), "pulled\n");
    let up = ok(&berth(&d2, &["pull", "-q", &name]));
    assert_eq!(up, format!("{name}\n"), "-q prints the reference only");
    let up = ok(&berth(&d2, &["pull", &name]));
    assert!(up.contains(&format!("Status: Image is up to date for {name}")), "{up}");

    // By digest, into a third daemon.
    let d3 = TestDaemon::start(&berthd());
    let by_digest = format!("{}/test/bb@{digest}", reg.host());
    let pull = ok(&berth(&d3, &["pull", &by_digest]));
    assert!(pull.contains(&format!("Status: Downloaded newer image for {by_digest}")), "{pull}");
    assert_eq!(ok(&berth(&d3, &["run", "--rm", &by_digest, "echo", "by digest"])), "by digest\n");

    // The API's stream as docker's, and a pull event.
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let r = d2.request("POST", &format!("/images/create?fromImage={}/test/bb&tag=1", reg.host()), None).unwrap();
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")), "{}", r.text());
    let lines: Vec<serde_json::Value> = r.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0], serde_json::json!({"status": "Pulling from test/bb", "id": "1"}));
    assert_eq!(lines.last().unwrap()["status"], format!("Status: Image is up to date for {name}"));
    let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() + 0.01;
    let ev = d2.request("GET", &format!("/events?since={since}&until={until}"), None).unwrap().text();
    assert!(ev.lines().any(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Action"] == "pull"), "{ev}");

    // The registry's view, through the daemon.
    let r = d3.request("GET", &format!("/distribution/{name}/json"), None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["Descriptor"]["digest"], digest.as_str());
    assert_eq!(r.json()["Platforms"][0]["os"], "linux");

    // run: --pull never refuses, the default pulls once, unknown images fail.
    let o = berth(&d3, &["run", "--rm", "--pull", "never", &name, "true"]);
    assert!(fails(&o).contains("No such image"), "{}", text(&o.stderr));
    let o = berth(&d3, &["run", "--rm", &name, "echo", "ran"]);
    assert_eq!(ok(&o), "ran\n");
    let err = text(&o.stderr);
    assert!(err.starts_with(&format!("Unable to find image '{name}' locally\n")), "{err}");
    assert!(err.contains(&format!("Status: Downloaded newer image for {name}")), "the tag is new here: {err}");
    let o = berth(&d3, &["run", "--rm", "--pull", "always", &name, "true"]);
    assert!(text(&o.stderr).contains("Image is up to date"), "{}", text(&o.stderr));
    let missing = format!("{}/test/nothing:1", reg.host());
    let o = berth(&d3, &["pull", &missing]);
    assert!(fails(&o).contains("not found"), "{}", text(&o.stderr));
    let r = d3.request("POST", &format!("/images/create?fromImage={}/test/nothing&tag=1", reg.host()), None).unwrap();
    assert_eq!(r.status, 404, "an unknown image is a 404 before any stream: {}", r.text());
    let o = berth(&d, &["push", &format!("{}/test/notlocal:1", reg.host())]);
    assert!(fails(&o).contains("An image does not exist locally with the tag"), "{}", text(&o.stderr));

    // The push recorded the digest; removing the repository's last tag
    // removes it too, while busybox:latest keeps the image.
    let rmi = ok(&berth(&d, &["rmi", &name]));
    assert_eq!(rmi, format!("Untagged: {name}\nUntagged: {}/test/bb@{digest}\n", reg.host()));
    assert_eq!(ok(&berth(&d, &["image", "inspect", "-f", "{{json .RepoDigests}}", "busybox"])).trim(), "[]");
}

/// An image of busybox plus one file `/arch` holding `arch`.
fn commit_marked(d: &TestDaemon, name: &str, arch: &str) {
    let c = format!("mk-{arch}");
    ok(&berth(d, &["run", "--name", &c, "busybox", "sh", "-c", &format!("echo {arch} > /arch")]));
    ok(&berth(d, &["commit", &c, name]));
    ok(&berth(d, &["rm", &c]));
}

#[test]
fn manifest_lists_are_made_pushed_and_pulled_per_platform() {
    let d = daemon();
    let reg = Registry::berth(&[]);
    let repo = format!("{}/test/multi", reg.host());
    let (amd, arm, list) = (format!("{repo}:amd64"), format!("{repo}:arm64"), format!("{repo}:list"));
    commit_marked(&d, &amd, "amd64");
    commit_marked(&d, &arm, "arm64");
    ok(&berth(&d, &["push", "-q", &amd]));
    ok(&berth(&d, &["push", "-q", &arm]));

    let created = ok(&berth(&d, &["manifest", "create", &list, &amd, &arm]));
    assert_eq!(created.trim(), format!("Created manifest list {list}"));
    let again = berth(&d, &["manifest", "create", &list, &amd]);
    assert!(fails(&again).contains("refusing to amend an existing manifest list with no --amend flag"));
    ok(&berth(&d, &["manifest", "annotate", "--arch", "arm64", "--variant", "v8", &list, &arm]));
    let shown: serde_json::Value = serde_json::from_str(&ok(&berth(&d, &["manifest", "inspect", &list]))).unwrap();
    let archs: Vec<&str> = shown["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(archs, ["amd64", "arm64"], "{shown}");
    let pushed = ok(&berth(&d, &["manifest", "push", "--purge", &list]));
    assert!(pushed.trim().starts_with("sha256:"), "{pushed}");
    let remote: serde_json::Value = serde_json::from_str(&ok(&berth(&d, &["manifest", "inspect", &list]))).unwrap();
    assert_eq!(remote["manifests"].as_array().map(Vec::len), Some(2), "the registry has the list: {remote}");

    let d2 = TestDaemon::start(&berthd());
    let o = ok(&berth(&d2, &["pull", "--platform", "linux/arm64", &list]));
    assert!(o.contains(&format!("Digest: {}", pushed.trim())), "the list's digest: {o}");
    assert_eq!(ok(&berth(&d2, &["run", "--rm", &list, "cat", "/arch"])), "arm64\n");
    ok(&berth(&d2, &["pull", "--platform", "linux/amd64", &list]));
    assert_eq!(ok(&berth(&d2, &["run", "--rm", &list, "cat", "/arch"])), "amd64\n");
    let o = berth(&d2, &["pull", "--platform", "linux/s390x", &list]);
    assert!(fails(&o).contains("no matching manifest for linux/s390x in the manifest list entries"), "{}", text(&o.stderr));
    let r = d2.request("GET", &format!("/distribution/{list}/json"), None).unwrap();
    assert_eq!(r.json()["Platforms"].as_array().map(Vec::len), Some(2), "{}", r.text());
}

#[test]
fn basic_auth_login_push_pull_logout() {
    let d = daemon();
    let users = TestDir::new("htpasswd");
    let htpasswd = users.join("htpasswd");
    std::fs::write(&htpasswd, berth_registry::server::auth::Htpasswd::entry("alice", "wonderland") + "\n").unwrap();
    let reg = Registry::berth(&["--auth", "basic", "--htpasswd", htpasswd.to_str().unwrap()]);
    let name = format!("{}/private/bb:1", reg.host());
    ok(&berth(&d, &["tag", "busybox", &name]));
    let o = berth(&d, &["push", &name]);
    assert!(fails(&o).contains("authentication required"), "{}", text(&o.stderr));

    let o = berth(&d, &["login", "-u", "alice", "-p", "queen", &reg.host()]);
    let err = fails(&o);
    assert!(err.contains("WARNING! Using --password via the CLI is insecure"), "{err}");
    assert!(err.contains("401"), "{err}");
    let o = berth(&d, &["login", "-u", "alice", &reg.host()]);
    assert!(fails(&o).contains("Cannot perform an interactive login from a non TTY device"));
    let o = berth_in(&d, &["login", "-u", "alice", "--password-stdin", &reg.host()], Some("wonderland\n"));
    assert_eq!(ok(&o), "Login Succeeded\n");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(d.dir.join("berth-config/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["auths"][reg.host()]["auth"], "YWxpY2U6d29uZGVybGFuZA==", "base64 of alice:wonderland: {cfg}");

    assert!(ok(&berth(&d, &["push", &name])).contains(": Pushed"));
    ok(&berth(&d, &["rmi", &name]));
    assert!(ok(&berth(&d, &["pull", &name])).contains("Status: "));

    assert_eq!(ok(&berth(&d, &["logout", &reg.host()])), format!("Removing login credentials for {}\n", reg.host()));
    assert_eq!(ok(&berth(&d, &["logout", &reg.host()])), format!("Not logged in to {}\n", reg.host()));
    ok(&berth(&d, &["rmi", &name]));
    let o = berth(&d, &["pull", &name]);
    assert!(fails(&o).contains("pull access denied") || text(&o.stderr).contains("authentication required"), "{}", text(&o.stderr));
}

#[test]
fn the_docker_cli_logs_in_tags_pushes_and_pulls_through_berthd() {
    let d = daemon();
    let Some(_) = d.docker() else {
        eprintln!("skipped: {} is not installed", berth_testkit::daemon::DOCKER_CLI);
        return;
    };
    let docker = |args: &[&str], stdin: Option<&str>| -> Output {
        let mut c = d.docker().unwrap();
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let users = TestDir::new("htpasswd");
    let htpasswd = users.join("htpasswd");
    std::fs::write(&htpasswd, berth_registry::server::auth::Htpasswd::entry("bob", "builder") + "\n").unwrap();
    let reg = Registry::berth(&["--auth", "basic", "--htpasswd", htpasswd.to_str().unwrap()]);
    let name = format!("{}/docker/bb:v1", reg.host());

    let o = docker(&["login", "-u", "bob", "--password-stdin", &reg.host()], Some("nope\n"));
    assert!(fails(&o).contains("401"), "{}", text(&o.stderr));
    let o = docker(&["login", "-u", "bob", "--password-stdin", &reg.host()], Some("builder\n"));
    assert!(ok(&o).contains("Login Succeeded"), "{}", text(&o.stdout));
    ok(&docker(&["tag", "busybox", &name], None));
    let push = ok(&docker(&["push", &name], None));
    assert!(push.contains("Pushed") && push.contains("v1: digest: sha256:"), "{push}");
    ok(&docker(&["rmi", &name], None));
    let pull = ok(&docker(&["pull", &name], None));
    assert!(pull.contains(&format!("Status: Downloaded newer image for {name}")), "{pull}");
    assert!(last_line(&pull) == name, "{pull}");
    let digests = ok(&docker(&["image", "inspect", "-f", "{{json .RepoDigests}}", &name], None));
    assert!(digests.contains(&format!("{}/docker/bb@sha256:", reg.host())), "{digests}");

    // `docker run` of a missing image: create says "No such image", the CLI
    // pulls through /images/create and creates again.
    let d2 = TestDaemon::start(&berthd());
    let mut c = d2.docker().unwrap();
    let cfg = d.dir.join("docker-config");
    let o = c.env("DOCKER_CONFIG", &cfg).args(["run", "--rm", &name, "echo", "from docker"]).output().unwrap();
    assert_eq!(ok(&o), "from docker\n");
    let err = text(&o.stderr);
    assert!(err.contains(&format!("Unable to find image '{name}' locally")) && err.contains("Pull complete"), "{err}");
    let o = docker(&["logout", &reg.host()], None);
    assert!(ok(&o).contains("Removing login credentials"));
}

/// A TCP proxy that throttles what the server sends and notes the request
/// lines and `Range` headers clients send.
struct Proxy {
    port: u16,
    sent: Arc<AtomicU64>,
    rate: Arc<AtomicU64>,
    log: Arc<Mutex<String>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (sent, rate, log) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(String::new())));
        let (s2, r2, l2) = (sent.clone(), rate.clone(), log.clone());
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let Ok(u) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (mut c_in, mut u_out) = (c.try_clone().unwrap(), u.try_clone().unwrap());
                let l3 = l2.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || u_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        l3.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                    let _ = u_out.shutdown(std::net::Shutdown::Both);
                });
                let (mut u_in, mut c_out, s3, r3) = (u, c, s2.clone(), r2.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 16 << 10];
                    let start = Instant::now();
                    let mut total = 0u64;
                    while let Ok(n) = u_in.read(&mut buf) {
                        if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        total += n as u64;
                        s3.fetch_add(n as u64, Ordering::Relaxed);
                        let rate = r3.load(Ordering::Relaxed);
                        if rate > 0 {
                            let due = Duration::from_secs_f64(total as f64 / rate as f64);
                            if let Some(wait) = due.checked_sub(start.elapsed()) {
                                std::thread::sleep(wait);
                            }
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Proxy { port, sent, rate, log }
    }

    /// The blob GETs seen since the last call, with their Range header.
    fn take_blob_gets(&self) -> Vec<(String, Option<String>)> {
        let log = std::mem::take(&mut *self.log.lock().unwrap());
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        for req in log.split("\r\n\r\n") {
            let mut lines = req.lines();
            let Some(first) = lines.next() else { continue };
            let Some(path) = first.strip_prefix("GET ").and_then(|p| p.split_whitespace().next()) else { continue };
            let Some(i) = path.find("/blobs/") else { continue };
            let range = lines.find_map(|l| l.to_ascii_lowercase().strip_prefix("range:").map(|v| v.trim().to_owned()));
            out.push((path[i + 7..].to_owned(), range));
        }
        out
    }
}

#[test]
fn a_pull_killed_half_way_resumes_with_only_the_missing_bytes() {
    let d = daemon();
    let reg = Registry::berth(&[]);
    // Two layers of 6 MB of random bytes (gzip cannot shrink them) on busybox.
    let c = "big";
    ok(&berth(&d, &["run", "--name", c, "busybox", "sh", "-c", "head -c 6000000 /dev/urandom > /a"]));
    ok(&berth(&d, &["commit", c, "stage:1"]));
    ok(&berth(&d, &["rm", c]));
    ok(&berth(&d, &["run", "--name", c, "stage:1", "sh", "-c", "head -c 6000000 /dev/urandom > /b"]));
    let name = format!("{}/test/big:1", reg.host());
    ok(&berth(&d, &["commit", c, &name]));
    ok(&berth(&d, &["rm", c]));
    let sums = ok(&berth(&d, &["run", "--rm", &name, "md5sum", "/a", "/b"]));
    ok(&berth(&d, &["push", "-q", &name]));

    let proxy = Proxy::start(reg.port);
    let via = format!("127.0.0.1:{}/test/big:1", proxy.port);
    proxy.rate.store(3_000_000, Ordering::Relaxed);
    let mut d2 = TestDaemon::start(&berthd());
    let mut pull = Command::new(BERTH)
        .args(["-H", &d2.host(), "pull", &via])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.sent.load(Ordering::Relaxed) < 8_000_000 {
        assert!(Instant::now() < deadline, "the pull did not get half way");
        std::thread::sleep(Duration::from_millis(20));
    }
    d2.kill9();
    assert!(!pull.wait().unwrap().success(), "the pull was cut off");
    let first = proxy.take_blob_gets();
    let first_bytes = proxy.sent.swap(0, Ordering::Relaxed);
    assert!(first_bytes < 11_000_000, "killed before the end: {first_bytes}");

    d2.restart();
    proxy.rate.store(0, Ordering::Relaxed);
    let out = ok(&berth(&d2, &["pull", &via]));
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    let second = proxy.take_blob_gets();
    let second_bytes = proxy.sent.load(Ordering::Relaxed);
    // Everything the first pull got is not fetched again: the partial blobs
    // are asked for from where they stopped.
    assert!(second.iter().any(|(_, r)| r.as_deref().is_some_and(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-"))), "ranged: {second:?}");
    assert!(first_bytes + second_bytes < 12_000_000 + 3_000_000, "first {first_bytes} + second {second_bytes} bytes: more than the image");
    assert!(second_bytes < 12_000_000 - 2_000_000, "the second pull fetched {second_bytes} bytes");
    // The config (small, kept only with the finished image) is fetched
    // again; every layer blob is fetched once in all.
    let config = ok(&berth(&d, &["image", "inspect", "-f", "{{.Id}}", &name])).trim().to_owned();
    let first_digests: Vec<&String> = first.iter().map(|(d, _)| d).filter(|d| **d != config).collect();
    let done_first: Vec<&&String> = first_digests.iter().filter(|d| !second.iter().any(|(s, _)| s == **d)).collect();
    assert!(!done_first.is_empty(), "some layer finished before the kill and was not fetched again: {first:?} then {second:?}");
    for (digest, range) in &second {
        if range.is_none() && *digest != config {
            // A blob fetched whole again must be one the first pull never got to.
            assert!(!first_digests.contains(&digest), "{digest} fetched whole twice: {first:?} then {second:?}");
        }
    }
    // No corrupt layer: the files are what was pushed.
    assert_eq!(ok(&berth(&d2, &["run", "--rm", &via, "md5sum", "/a", "/b"])), sums);
}

#[test]
fn debian_docker_registry_serves_berth() {
    let bin = Path::new("/usr/bin/docker-registry");
    if !bin.exists() {
        eprintln!("skipped: Debian's docker-registry is not installed (apt-get install docker-registry)");
        return;
    }
    let d = daemon();
    let dir = TestDir::new("docker-registry");
    let port = free_port();
    let cfg = dir.join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("root").display()
        ),
    )
    .unwrap();
    let log = dir.join("registry.log");
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    wait_for_port(port, &mut child, &log);
    let _guard = Kill(child);
    let name = format!("127.0.0.1:{port}/deb/bb:1");
    ok(&berth(&d, &["tag", "busybox", &name]));
    assert!(ok(&berth(&d, &["push", &name])).contains(": Pushed"));
    let d2 = TestDaemon::start(&berthd());
    let pull = ok(&berth(&d2, &["pull", &name]));
    assert!(pull.contains(&format!("Status: Downloaded newer image for {name}")), "{pull}");
    assert_eq!(ok(&berth(&d2, &["run", "--rm", &name, "echo", "debian"])), "debian\n");
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (Connection: close): status and body.
fn http_tcp(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

#[test]
fn registry_gc_removes_what_no_manifest_references() {
    let d = daemon();
    let dir = TestDir::new("gc");
    let port = free_port();
    let root = dir.join("root");
    let serve = |d: &TestDir| {
        let log = d.join("serve.log");
        let mut child = Command::new(BERTH)
            .args(["registry", "serve", "--addr", &format!("127.0.0.1:{port}"), "--root", root.to_str().unwrap()])
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, &log);
        child
    };
    let mut child = serve(&dir);
    let name = format!("127.0.0.1:{port}/test/gc:1");
    ok(&berth(&d, &["tag", "busybox", &name]));
    let push = ok(&berth(&d, &["push", &name]));
    let digest = last_line(&push).split_whitespace().nth(2).unwrap().to_owned();
    let gc = |args: &[&str]| ok(&Command::new(BERTH).args(["registry", "gc", "--root", root.to_str().unwrap()]).args(args).output().unwrap());
    // Stopped while collecting, as distribution's garbage-collect wants.
    let _ = child.kill();
    let _ = child.wait();
    assert!(gc(&[]).ends_with("0 blobs and 0 manifests deleted, 0B freed, 0 stale uploads removed\n"), "all referenced");
    let mut child = serve(&dir);
    assert_eq!(http_tcp(port, "DELETE", &format!("/v2/test/gc/manifests/{digest}")).0, 202);
    let _ = child.kill();
    let _ = child.wait();
    let dry = gc(&["--dry-run"]);
    assert!(dry.contains("blob would delete: sha256:") && dry.contains("blobs and 0 manifests would delete"), "{dry}");
    let done = gc(&[]);
    let n: usize = last_line(&done).split_whitespace().next().unwrap().parse().unwrap();
    assert!(n >= 2, "the layer and the config at least: {done}");
    assert!(gc(&[]).starts_with("0 blobs"), "nothing left to collect");
}

#[test]
fn search_goes_through_the_daemon_to_the_registry() {
    // A registry that offers search: /v2/ and /v1/search, nothing else.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = req.split_whitespace().nth(1).unwrap_or("").to_owned();
            let body = if path.starts_with("/v1/search") {
                r#"{"num_results":2,"query":"box","results":[{"name":"team/box","description":"a box of tools for the tests of berth that is long enough to be cut","star_count":42,"is_official":true},{"name":"other/box","description":"another","star_count":1}]}"#
            } else {
                "{}"
            };
            seen2.lock().unwrap().push(path);
            let _ = write!(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    let d = TestDaemon::start(&berthd());
    let out = ok(&berth(&d, &["search", &format!("127.0.0.1:{port}/box")]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("DESCRIPTION") && lines[0].contains("STARS") && lines[0].ends_with("OFFICIAL"), "{out}");
    assert!(lines[1].starts_with("team/box") && lines[1].contains("a box of tools for the tests of berth that i…") && lines[1].contains("42") && lines[1].ends_with("[OK]"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(seen.lock().unwrap().iter().any(|p| p.starts_with("/v1/search?q=box&n=25")), "{:?}", seen.lock().unwrap());
    let stars = ok(&berth(&d, &["search", "--filter", "stars=10", "--format", "{{.Name}}", &format!("127.0.0.1:{port}/box")]));
    assert_eq!(stars, "team/box\n");
    let r = d.request("GET", "/images/search?term=x&limit=0", None).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    match d.docker() {
        None => eprintln!("docker search skipped: {} is not installed", berth_testkit::daemon::DOCKER_CLI),
        Some(mut c) => {
            let out = ok(&c.args(["search", "--limit", "1", &format!("127.0.0.1:{port}/box")]).output().unwrap());
            assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("team/box")) && out.lines().count() == 2, "{out}");
        }
    }
}

#[test]
fn a_registry_mirror_serves_docker_hub_names_and_pull_all_tags() {
    let d = daemon();
    let reg = Registry::berth(&[]);
    for t in ["1", "2"] {
        let name = format!("{}/library/mirrored:{t}", reg.host());
        ok(&berth(&d, &["tag", "busybox", &name]));
        ok(&berth(&d, &["push", "-q", &name]));
    }
    let d2 = TestDaemon::start_with(&berthd(), &["--registry-mirror", &format!("http://{}", reg.host())]);
    let info = d2.request("GET", "/info", None).unwrap().json();
    assert_eq!(info["RegistryConfig"]["Mirrors"][0], format!("http://{}", reg.host()));
    let out = ok(&berth(&d2, &["pull", "mirrored:1"]));
    assert!(out.contains("Status: Downloaded newer image for mirrored:1"), "{out}");
    assert_eq!(last_line(&out), "docker.io/library/mirrored:1");
    let out = ok(&berth(&d2, &["pull", "-a", "mirrored"]));
    assert!(out.contains("Status: Downloaded newer image for mirrored\n"), "tag 2 is new: {out}");
    assert_eq!(last_line(&out), "docker.io/library/mirrored");
    let tags = ok(&berth(&d2, &["images", "--format", "{{.Repository}}:{{.Tag}}", "mirrored"]));
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["mirrored:1", "mirrored:2"]);
    let o = berth(&d2, &["pull", "-a", "mirrored:1"]);
    assert!(fails(&o).contains("tag can't be used with --all-tags/-a"));
    // push -a: every local tag of the repository.
    let all = ok(&berth(&d, &["push", "-a", &format!("{}/library/mirrored", reg.host())]));
    assert!(all.contains("1: digest: sha256:") && all.contains("2: digest: sha256:") && !all.contains("Using default tag"), "{all}");
}

/// A veth pair of the test's own with an address on one end: a registry
/// there is not on loopback, so berthd checks its certificate.
struct DummyAddr {
    link: String,
    ip: String,
}

impl DummyAddr {
    fn new() -> DummyAddr {
        let link = format!("{}rg0", berth_testkit::leak::net_prefix(berth_testkit::run_id()));
        let peer = format!("{}rg1", berth_testkit::leak::net_prefix(berth_testkit::run_id()));
        let h = std::process::id() as u64 ^ berth_testkit::run_id().bytes().fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
        let ip = format!("10.{}.{}.{}", 200 + h % 50, (h >> 8) % 250 + 1, (h >> 16) % 250 + 1);
        let ipc = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().expect("run ip");
            assert!(o.status.success(), "ip {args:?}: {}", text(&o.stderr));
        };
        let _ = Command::new("ip").args(["link", "del", &link]).output();
        ipc(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        let d = DummyAddr { link, ip };
        ipc(&["addr", "add", &format!("{}/32", d.ip), "dev", &d.link]);
        ipc(&["link", "set", &d.link, "up"]);
        d
    }
}

impl Drop for DummyAddr {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.link]).output();
    }
}

#[test]
fn https_registries_are_verified_with_certs_d_or_named_insecure() {
    let addr = DummyAddr::new();
    let dir = TestDir::new("tls");
    // A CA of the test's own, and the registry's certificate signed by it.
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    std::fs::write(dir.join("ext"), format!("subjectAltName=IP:{}\nbasicConstraints=CA:FALSE\n", addr.ip)).unwrap();
    for args in [
        vec!["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=berth-test-ca", "-keyout", &p("ca.key"), "-out", &p("ca.pem")],
        vec!["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=berth-test-registry", "-keyout", &p("key.pem"), "-out", &p("reg.csr")],
        vec!["x509", "-req", "-in", &p("reg.csr"), "-CA", &p("ca.pem"), "-CAkey", &p("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", &p("ext"), "-out", &p("cert.pem")],
    ] {
        let o = Command::new("openssl").args(&args).output().expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o.stderr));
    }
    let port = free_port();
    let host = format!("{}:{port}", addr.ip);
    let log = dir.join("serve.log");
    let mut child = Command::new(BERTH)
        .args(["registry", "serve", "--addr", &host, "--root", dir.join("root").to_str().unwrap()])
        .args(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(host.as_str()).is_err() {
        assert!(child.try_wait().unwrap().is_none() && Instant::now() < deadline, "registry: {}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(20));
    }
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _reg = Kill(child);
    let name = format!("{host}/tls/bb:1");

    // Unknown issuer: refused.
    let d = daemon();
    ok(&berth(&d, &["tag", "busybox", &name]));
    let o = berth(&d, &["push", &name]);
    assert!(fails(&o).to_lowercase().contains("certificate"), "{}", text(&o.stderr));

    // The CA in certs.d/<host>/: verified and used.
    let certs = TestDir::new("certs.d");
    std::fs::create_dir_all(certs.join(&host)).unwrap();
    std::fs::copy(&ca, certs.join(&host).join("ca.crt")).unwrap();
    let d2 = TestDaemon::start_with(&berthd(), &["--certs-dir", certs.path().to_str().unwrap()]);
    d2.import_busybox("busybox:latest");
    ok(&berth(&d2, &["tag", "busybox", &name]));
    assert!(ok(&berth(&d2, &["push", &name])).contains(": Pushed"));

    // Named insecure: no verification.
    let d3 = TestDaemon::start_with(&berthd(), &["--insecure-registry", &host]);
    let pull = ok(&berth(&d3, &["pull", &name]));
    assert!(pull.contains(&format!("Status: Downloaded newer image for {name}")), "{pull}");
    let info = ok(&berth(&d3, &["info"]));
    assert!(info.contains(&format!(" Insecure Registries:\n  {host}\n  127.0.0.0/8\n")), "{info}");
}
