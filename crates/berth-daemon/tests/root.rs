//! Root integration tests of berthd: a daemon of the test's own (its roots,
//! socket and cgroup parent under the run's names), driven over its API,
//! by berth's CLI and by the real docker CLI.

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::daemon::TestDaemon;
use serde_json::{Value, json};

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

fn daemon() -> TestDaemon {
    let d = TestDaemon::start(std::path::Path::new(BERTHD));
    d.import_busybox("busybox:latest");
    d
}

fn ok(o: &Output) -> String {
    berth_testkit::stdout_of_success(o)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The docker CLI against this daemon, or None (with a message) when the
/// binary isn't installed.
fn docker(d: &TestDaemon, args: &[&str]) -> Option<Output> {
    let Some(mut c) = d.docker() else {
        eprintln!("skipped: {} is not installed", berth_testkit::daemon::DOCKER_CLI);
        return None;
    };
    Some(c.args(args).output().expect("run docker"))
}

fn post_json(d: &TestDaemon, path: &str, body: &Value) -> berth_testkit::daemon::HttpResponse {
    d.request("POST", path, Some(("application/json", body.to_string().as_bytes()))).unwrap()
}

fn create(d: &TestDaemon, name: &str, body: Value) -> String {
    let r = post_json(d, &format!("/containers/create?name={name}"), &body);
    assert_eq!(r.status, 201, "create: {}", r.text());
    r.json()["Id"].as_str().unwrap().to_owned()
}

fn inspect(d: &TestDaemon, id: &str) -> Value {
    let r = d.request("GET", &format!("/containers/{id}/json"), None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- API surface ----------------------------------------------------------

#[test]
fn ping_version_prefixes_and_errors() {
    let d = TestDaemon::start(std::path::Path::new(BERTHD));
    let r = d.request("HEAD", "/_ping", None).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Api-Version"), Some("1.50"));
    assert_eq!(r.header("Ostype"), Some("linux"));
    assert!(r.header("Builder-Version").is_some());
    assert_eq!(d.request("GET", "/v1.40/_ping", None).unwrap().text(), "OK");
    let v = d.request("GET", "/v1.44/version", None).unwrap().json();
    assert_eq!(v["ApiVersion"], "1.50");
    let bad = d.request("GET", "/v1.99/info", None).unwrap();
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].as_str().unwrap().contains("too new"));
    let missing = d.request("GET", "/v1.45/containers/nope/json", None).unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "No such container: nope");
    let malformed = d.request("POST", "/containers/create", Some(("application/json", b"{not json"))).unwrap();
    assert_eq!(malformed.status, 400);
    // A huge body is refused without harming the daemon.
    let huge = vec![b'x'; 8 << 20];
    let r = d.request("POST", "/containers/create", Some(("application/json", &huge)));
    assert!(r.map(|r| r.status >= 400).unwrap_or(true));
    assert_eq!(d.request("GET", "/_ping", None).unwrap().status, 200);
}

#[test]
fn create_validates_like_docker() {
    let d = daemon();
    let r = post_json(&d, "/containers/create?name=bad%20name", &json!({"Image": "busybox"}));
    assert_eq!(r.status, 400);
    let r = post_json(&d, "/containers/create", &json!({"Image": "nosuchimage"}));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such image: nosuchimage");
    create(&d, "dup", json!({"Image": "busybox", "Cmd": ["true"]}));
    let r = post_json(&d, "/containers/create?name=dup", &json!({"Image": "busybox", "Cmd": ["true"]}));
    assert_eq!(r.status, 409);
    assert!(r.json()["message"].as_str().unwrap().contains("is already in use"));
    let r = post_json(&d, "/containers/create", &json!({"Image": "busybox", "HostConfig": {"Memory": 1024}}));
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("Minimum memory limit"));
    let r = post_json(
        &d,
        "/containers/create",
        &json!({"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}}),
    );
    assert_eq!(r.status, 400);
}

// ---- lifecycle --------------------------------------------------------------

#[test]
fn run_wait_logs_and_remove() {
    let d = daemon();
    let id = create(&d, "hello", json!({"Image": "busybox", "Cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"]}));
    assert_eq!(d.request("POST", &format!("/containers/{id}/start"), None).unwrap().status, 204);
    let w = d.request("POST", &format!("/containers/{id}/wait"), None).unwrap().json();
    assert_eq!(w["StatusCode"], 3);
    let c = inspect(&d, &id);
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["ExitCode"], 3);
    let logs = d.request("GET", &format!("/containers/{id}/logs?stdout=1&stderr=1"), None).unwrap();
    // Multiplexed frames: stdout then stderr.
    let b = &logs.body;
    assert_eq!(b[0], 1);
    assert_eq!(&b[8..12], b"out\n");
    assert_eq!(b[12], 2);
    assert_eq!(&b[20..24], b"err\n");
    let only_err = d.request("GET", &format!("/containers/{id}/logs?stderr=1"), None).unwrap();
    assert_eq!(&only_err.body[8..], b"err\n");
    assert_eq!(d.request("DELETE", &format!("/containers/{id}"), None).unwrap().status, 204);
    assert_eq!(d.request("GET", &format!("/containers/{id}/json"), None).unwrap().status, 404);
}

#[test]
fn start_failures_report_dockers_codes() {
    let d = daemon();
    let id = create(&d, "nocmd", json!({"Image": "busybox", "Cmd": ["no-such-binary"]}));
    let r = d.request("POST", &format!("/containers/{id}/start"), None).unwrap();
    assert!(r.status >= 400);
    assert!(r.json()["message"].as_str().unwrap().contains("executable file not found"), "{}", r.text());
    assert_eq!(inspect(&d, &id)["State"]["ExitCode"], 127);
}

#[test]
fn stop_kill_restart_pause() {
    let d = daemon();
    // pid 1 ignores SIGTERM unless it handles it: this one does.
    let id = create(&d, "svc", json!({"Image": "busybox", "Cmd": ["sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"]}));
    assert_eq!(d.request("POST", &format!("/containers/{id}/start"), None).unwrap().status, 204);
    assert_eq!(d.request("POST", &format!("/containers/{id}/start"), None).unwrap().status, 304);
    let c = inspect(&d, &id);
    assert_eq!(c["State"]["Running"], true);
    let pid = c["State"]["Pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(d.request("POST", &format!("/containers/{id}/pause"), None).unwrap().status, 204);
    assert_eq!(inspect(&d, &id)["State"]["Status"], "paused");
    assert_eq!(d.request("POST", &format!("/containers/{id}/unpause"), None).unwrap().status, 204);
    let top = d.request("GET", &format!("/containers/{id}/top"), None).unwrap().json();
    assert!(top["Processes"].to_string().contains("sleep 300"), "{top}");
    let t = Instant::now();
    assert_eq!(d.request("POST", &format!("/containers/{id}/stop?t=5"), None).unwrap().status, 204);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(inspect(&d, &id)["State"]["Status"], "exited");
    assert_eq!(d.request("POST", &format!("/containers/{id}/stop"), None).unwrap().status, 304);
    assert_eq!(d.request("POST", &format!("/containers/{id}/restart?t=1"), None).unwrap().status, 204);
    assert_eq!(inspect(&d, &id)["State"]["Running"], true);
    let r = d.request("DELETE", &format!("/containers/{id}"), None).unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(d.request("DELETE", &format!("/containers/{id}?force=1"), None).unwrap().status, 204);
}

#[test]
fn stop_timeout_escalates_to_sigkill() {
    let d = daemon();
    // A shell that traps TERM never ends on it.
    let id = create(&d, "stubborn", json!({"Image": "busybox", "Cmd": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}));
    d.request("POST", &format!("/containers/{id}/start"), None).unwrap();
    let t = Instant::now();
    assert_eq!(d.request("POST", &format!("/containers/{id}/stop?t=1"), None).unwrap().status, 204);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(inspect(&d, &id)["State"]["ExitCode"], 137);
}

#[test]
fn restart_policy_on_failure_counts_and_stops() {
    let d = daemon();
    let id = create(
        &d,
        "flaky",
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "exit 1"], "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}}),
    );
    d.request("POST", &format!("/containers/{id}/start"), None).unwrap();
    wait_until("two restarts", || {
        let c = inspect(&d, &id);
        c["RestartCount"] == 2 && c["State"]["Status"] == "exited"
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(inspect(&d, &id)["RestartCount"], 2);
}

#[test]
fn exec_runs_in_the_container() {
    let d = daemon();
    let id = create(&d, "ex", json!({"Image": "busybox", "Cmd": ["sleep", "300"], "Hostname": "exbox"}));
    d.request("POST", &format!("/containers/{id}/start"), None).unwrap();
    let r = post_json(&d, &format!("/containers/{id}/exec"), &json!({"Cmd": ["sh", "-c", "exit 4"], "AttachStdout": true}));
    assert_eq!(r.status, 201);
    let exec = r.json()["Id"].as_str().unwrap().to_owned();
    let r = post_json(&d, &format!("/exec/{exec}/start"), &json!({"Detach": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until("exec exit", || d.request("GET", &format!("/exec/{exec}/json"), None).unwrap().json()["Running"] == false);
    assert_eq!(d.request("GET", &format!("/exec/{exec}/json"), None).unwrap().json()["ExitCode"], 4);
    if let Some(o) = docker(&d, &["exec", "ex", "hostname"]) {
        assert_eq!(ok(&o), "exbox\n");
    }
}

// ---- the docker CLI ---------------------------------------------------------

#[test]
fn docker_cli_runs_containers() {
    let d = daemon();
    let Some(o) = docker(&d, &["run", "--rm", "busybox", "echo", "hello from berth"]) else { return };
    assert_eq!(ok(&o), "hello from berth\n");
    let o = docker(&d, &["run", "--rm", "busybox", "sh", "-c", "exit 7"]).unwrap();
    assert_eq!(o.status.code(), Some(7));
    let o = docker(&d, &["run", "--rm", "busybox", "no-such-cmd"]).unwrap();
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    // stdin through a hijacked attach, closed on EOF.
    let mut c = d.docker().unwrap();
    let mut child = c
        .args(["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped in\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(ok(&o), "piped in\ndone\n");
    let id = ok(&docker(&d, &["run", "-d", "--name", "bg", "busybox", "sh", "-c", "echo started; sleep 300"]).unwrap());
    assert_eq!(id.trim().len(), 64);
    let ps = ok(&docker(&d, &["ps", "--format", "{{.Names}} {{.Status}}"]).unwrap());
    assert!(ps.starts_with("bg Up"), "{ps}");
    wait_until("log line", || ok(&docker(&d, &["logs", "bg"]).unwrap()) == "started\n");
    assert_eq!(ok(&docker(&d, &["inspect", "-f", "{{.State.Running}}", "bg"]).unwrap()), "true\n");
    ok(&docker(&d, &["stop", "-t", "1", "bg"]).unwrap());
    ok(&docker(&d, &["rm", "bg"]).unwrap());
}

// ---- crash safety -----------------------------------------------------------

#[test]
fn sigkill_of_berthd_leaves_containers_running_and_a_new_daemon_takes_over() {
    let mut d = daemon();
    let long = create(&d, "long", json!({"Image": "busybox", "Cmd": ["sh", "-c", "echo before; sleep 2; echo after; sleep 300"]}));
    let short = create(&d, "short", json!({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 1; exit 5"]}));
    for id in [&long, &short] {
        assert_eq!(d.request("POST", &format!("/containers/{id}/start"), None).unwrap().status, 204);
    }
    let pid = inspect(&d, &long)["State"]["Pid"].as_i64().unwrap();
    d.kill9();
    // Containers live on without the daemon; one exits meanwhile.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "container died with its daemon");
    d.restart();
    let c = inspect(&d, &long);
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["State"]["Pid"], pid);
    let s = inspect(&d, &short);
    assert_eq!(s["State"]["Status"], "exited");
    assert_eq!(s["State"]["ExitCode"], 5);
    // Logs written while the daemon was down are there.
    let logs = d.request("GET", &format!("/containers/{long}/logs?stdout=1"), None).unwrap();
    assert!(String::from_utf8_lossy(&logs.body).contains("after"));
    assert_eq!(d.request("POST", &format!("/containers/{long}/stop?t=1"), None).unwrap().status, 204);
    assert_eq!(inspect(&d, &long)["State"]["Status"], "exited");
}

// ---- load -------------------------------------------------------------------

#[test]
fn concurrent_clients_create_start_remove() {
    let d = daemon();
    let socket = d.socket();
    let deadline = Instant::now() + Duration::from_secs(20);
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut cycles = 0;
                while Instant::now() < deadline && cycles < 2 {
                    let body = json!({"Image": "busybox", "Cmd": ["true"]}).to_string();
                    let r = berth_testkit::daemon::http(&socket, "POST", &format!("/containers/create?name=load{i}-{cycles}"), Some(("application/json", body.as_bytes())))
                        .expect("create");
                    assert_eq!(r.status, 201, "{}", r.text());
                    let id = r.json()["Id"].as_str().unwrap().to_owned();
                    let r = berth_testkit::daemon::http(&socket, "POST", &format!("/containers/{id}/start"), None).expect("start");
                    assert_eq!(r.status, 204, "{}", r.text());
                    let r = berth_testkit::daemon::http(&socket, "DELETE", &format!("/containers/{id}?force=1"), None).expect("rm");
                    assert_eq!(r.status, 204, "{}", r.text());
                    cycles += 1;
                }
                cycles
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().expect("client thread")).sum();
    assert!(total >= 100, "only {total} cycles");
    assert!(d.container_ids().is_empty());
    // No shim or container process is left.
    let shims = std::fs::read_dir(d.exec_root().join("shims")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(shims, 0);
}

#[test]
fn init_runs_as_pid_1_and_reaps() {
    if std::env::var_os("BERTH_INIT_PATH").is_none() {
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/build-init.sh")).output().expect("build berth-init");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // SAFETY: set before the daemon starts; tests read it only there.
        unsafe { std::env::set_var("BERTH_INIT_PATH", String::from_utf8_lossy(&out.stdout).trim()) };
    }
    let d = daemon();
    let id = create(
        &d,
        "withinit",
        json!({"Image": "busybox", "Cmd": ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; (sleep 0.1 &); sleep 0.5; ps -o stat,comm | grep -c Z; exit 3"],
               "HostConfig": {"Init": true}}),
    );
    assert_eq!(d.request("POST", &format!("/containers/{id}/start"), None).unwrap().status, 204);
    let w = d.request("POST", &format!("/containers/{id}/wait"), None).unwrap().json();
    assert_eq!(w["StatusCode"], 3);
    let logs = d.request("GET", &format!("/containers/{id}/logs?stdout=1"), None).unwrap();
    let text: String = String::from_utf8_lossy(&logs.body).chars().filter(|c| !c.is_control() || *c == '\n').collect();
    assert!(text.contains("/sbin/docker-init -- sh -c"), "{text}");
    // The orphaned sleep was reaped by init: no zombie left.
    assert!(text.trim_end().ends_with('0'), "{text}");
}

/// `docker …` under a pseudo-terminal (script(1)), `input` typed in.
fn docker_tty(d: &TestDaemon, cmdline: &str, input: &str) -> Option<Output> {
    d.docker()?;
    let mut child = std::process::Command::new("script")
        .args(["-qec", &format!("{} {cmdline}", berth_testkit::daemon::DOCKER_CLI), "/dev/null"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let _ = stdin.write_all(input.as_bytes());
        std::thread::sleep(Duration::from_millis(700));
    });
    Some(child.wait_with_output().unwrap())
}

#[test]
fn docker_cli_everyday_commands() {
    let d = daemon();
    let Some(_) = docker(&d, &["version"]) else { return };
    let dk = |args: &[&str]| docker(&d, args).unwrap();
    // run -it: a terminal inside, input typed at it.
    let o = docker_tty(&d, "run -it --rm busybox sh -c 'tty; read x; echo got:$x'", "hello\r").unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("/dev/pts/0") && out.contains("got:hello"), "{out}");
    // A long-running container for the rest.
    ok(&dk(&["run", "-d", "--name", "web", "busybox", "sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]));
    let o = docker_tty(&d, "exec -it web sh -c 'tty; read y; echo exec:$y'", "abc\r").unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("/dev/pts/") && out.contains("exec:abc"), "{out}");
    assert_eq!(ok(&dk(&["inspect", "-f", "{{.State.Status}} {{.Name}}", "web"])), "running /web\n");
    let pid: i64 = ok(&dk(&["inspect", "-f", "{{.State.Pid}}", "web"])).trim().parse().unwrap();
    assert!(pid > 0);
    let top = ok(&dk(&["top", "web"]));
    assert!(top.contains("sh -c"), "{top}");
    let stats = ok(&dk(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "web"]));
    assert!(stats.starts_with("web "), "{stats}");
    // logs -f follows until the container stops.
    let mut follow = d.docker().unwrap();
    let follower = follow.args(["logs", "-f", "web"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    ok(&dk(&["stop", "-t", "1", "web"]));
    let followed = follower.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&followed.stdout).contains("line 2"));
    // cp both ways, commit, images, save and load.
    let tmp = d.dir.join("cp.txt");
    std::fs::write(&tmp, "copied\n").unwrap();
    ok(&dk(&["cp", tmp.to_str().unwrap(), "web:/root/cp.txt"]));
    let back = d.dir.join("back.txt");
    ok(&dk(&["cp", "web:/root/cp.txt", back.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied\n");
    let diff = ok(&dk(&["diff", "web"]));
    assert!(diff.contains("A /root/cp.txt"), "{diff}");
    let image = ok(&dk(&["commit", "-m", "with a file", "web", "snap:1"]));
    assert!(image.trim().starts_with("sha256:"));
    assert_eq!(ok(&dk(&["run", "--rm", "snap:1", "cat", "/root/cp.txt"])), "copied\n");
    let images = ok(&dk(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(images.contains("snap:1") && images.contains("busybox:latest"), "{images}");
    let tar = d.dir.join("snap.tar");
    ok(&dk(&["save", "-o", tar.to_str().unwrap(), "snap:1"]));
    ok(&dk(&["rmi", "snap:1"]));
    let loaded = ok(&dk(&["load", "-i", tar.to_str().unwrap()]));
    assert!(loaded.contains("Loaded image: snap:1"), "{loaded}");
    // attach to a running container: its output arrives.
    ok(&dk(&["start", "web"]));
    let mut attach = d.docker().unwrap();
    let attached = attach.args(["attach", "--no-stdin", "--sig-proxy=false", "web"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    ok(&dk(&["stop", "-t", "1", "web"]));
    let attached = attached.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&attached.stdout).contains("line "), "nothing came through attach");
    // events saw the life of `web`.
    let events = ok(&dk(&["events", "--since", "0", "--until", "0s", "--filter", "container=web", "--format", "{{.Action}}"]));
    for want in ["create", "start", "die", "stop", "commit"] {
        assert!(events.lines().any(|l| l == want), "no {want} in {events}");
    }
    ok(&dk(&["rm", "-f", "web"]));
    assert_eq!(ok(&dk(&["ps", "-aq"])), "");
}


// ---- what bollard's tests found ------------------------------------------------

fn busybox_tar(d: &TestDaemon) -> Vec<u8> {
    std::fs::read(d.dir.join("busybox.tar")).expect("busybox tar of import_busybox")
}

#[test]
fn import_and_commit_apply_every_change() {
    let d = daemon();
    // docker sends one `changes` parameter per --change.
    let path = "/images/create?fromSrc=-&repo=multi&tag=1&changes=CMD%20%5B%22sh%22%5D&changes=EXPOSE%2080%2Ftcp";
    let r = d.request("POST", path, Some(("application/x-tar", &busybox_tar(&d)))).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let img = d.request("GET", "/images/multi:1/json", None).unwrap().json();
    assert_eq!(img["Config"]["Cmd"], json!(["sh"]));
    assert!(img["Config"]["ExposedPorts"].get("80/tcp").is_some(), "{img}");
    let id = create(&d, "tocommit", json!({"Image": "busybox", "Cmd": ["true"]}));
    let r = d.request("POST", &format!("/commit?container={id}&repo=committed&changes=ENV%20A%3D1&changes=WORKDIR%20%2Ftmp"), None).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let img = d.request("GET", "/images/committed/json", None).unwrap().json();
    assert!(img["Config"]["Env"].as_array().unwrap().contains(&json!("A=1")), "{img}");
    assert_eq!(img["Config"]["WorkingDir"], "/tmp");
}

#[test]
fn sigkill_returns_once_the_container_is_gone() {
    let d = daemon();
    for paused in [false, true] {
        let id = create(&d, &format!("killed{paused}"), json!({"Image": "busybox", "Cmd": ["sleep", "300"]}));
        assert_eq!(d.request("POST", &format!("/containers/{id}/start"), None).unwrap().status, 204);
        if paused {
            assert_eq!(d.request("POST", &format!("/containers/{id}/pause"), None).unwrap().status, 204);
        }
        assert_eq!(d.request("POST", &format!("/containers/{id}/kill?signal=SIGKILL"), None).unwrap().status, 204);
        // docker waits for the exit: a plain remove right after succeeds.
        let r = d.request("DELETE", &format!("/containers/{id}"), None).unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
}

#[test]
fn resize_of_a_container_without_a_tty_is_a_no_op() {
    let d = daemon();
    let id = create(&d, "notty", json!({"Image": "busybox", "Cmd": ["sleep", "300"], "OpenStdin": true}));
    assert_eq!(d.request("POST", &format!("/containers/{id}/resize?h=50&w=50"), None).unwrap().status, 409);
    d.request("POST", &format!("/containers/{id}/start"), None).unwrap();
    let r = d.request("POST", &format!("/containers/{id}/resize?h=50&w=50"), None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn archive_upload_takes_a_compressed_tar() {
    let d = daemon();
    let id = create(&d, "cpgz", json!({"Image": "busybox", "Cmd": ["true"]}));
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    tar.append_data(&mut h, "readme.txt", &b"hello"[..]).unwrap();
    let mut gz = Vec::new();
    let mut w = berth_image::compression::compress(&mut gz, berth_image::compression::Compression::Gzip).unwrap();
    w.write_all(&tar.into_inner().unwrap()).unwrap();
    w.finish_write().unwrap();
    let r = d.request("PUT", &format!("/containers/{id}/archive?path=/tmp"), Some(("application/x-tar", &gz))).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = d.request("GET", &format!("/containers/{id}/archive?path=/tmp/readme.txt"), None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let mut ar = tar::Archive::new(&r.body[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut e, &mut s).unwrap();
    assert_eq!(s, "hello");
}

#[test]
fn changes_hide_mount_points_and_are_null_when_nothing_changed() {
    let d = daemon();
    let id = create(&d, "unchanged", json!({"Image": "busybox", "Cmd": ["true"]}));
    d.request("POST", &format!("/containers/{id}/start"), None).unwrap();
    d.request("POST", &format!("/containers/{id}/wait"), None).unwrap();
    let r = d.request("GET", &format!("/containers/{id}/changes"), None).unwrap();
    assert_eq!((r.status, r.text().trim()), (200, "null"));
    let id = create(&d, "changed", json!({"Image": "busybox", "Cmd": ["touch", "/tmp/x"]}));
    d.request("POST", &format!("/containers/{id}/start"), None).unwrap();
    d.request("POST", &format!("/containers/{id}/wait"), None).unwrap();
    let r = d.request("GET", &format!("/containers/{id}/changes"), None).unwrap();
    assert_eq!(r.json(), json!([{"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}]));
}

#[test]
fn docker_hub_pulls_of_a_test_daemon_stay_on_loopback() {
    let d = TestDaemon::start(std::path::Path::new(BERTHD));
    let mirror = berth_testkit::daemon::HUB_MIRROR;
    let info = d.request("GET", "/info", None).unwrap().json();
    assert_eq!(info["RegistryConfig"]["Mirrors"], json!([mirror]));
    // The pull fails at once, at the closed loopback mirror, and Docker Hub
    // itself is not tried.
    let started = Instant::now();
    let r = d.request("POST", "/images/create?fromImage=berth-no-such-image&tag=1", None).unwrap();
    let text = r.text();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}: {text}", started.elapsed());
    assert!(text.contains("127.0.0.1:1"), "{}: {text}", r.status);
    assert!(!text.contains("registry-1.docker.io"), "{text}");
    assert_eq!(d.request("GET", "/images/berth-no-such-image:1/json", None).unwrap().status, 404);
    // Nor a push, login or search of Docker Hub.
    let r = post_json(&d, "/auth", &json!({"username": "u", "password": "p"}));
    assert_ne!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("registry mirrors"), "{}", r.text());
    // The docker CLI's pull after a 404 on create: the mirror's error, quickly.
    let started = Instant::now();
    if let Some(o) = docker(&d, &["run", "--rm", "berth-no-such-image:1", "true"]) {
        let e = stderr(&o);
        assert!(!o.status.success());
        assert!(e.contains("Unable to find image") && e.contains("127.0.0.1:1"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}: {e}", started.elapsed());
    }
}
