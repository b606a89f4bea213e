//! The `berth` binary end to end, without berthd: help, version, bad
//! flags, an unreachable daemon, and a small fake daemon on a unix socket
//! that answers with recorded API responses. Tables are compared with what
//! the docker 28.2 CLI printed for the same responses (`tests/fixtures/golden`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

fn berth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.env_remove("BERTH_HOST").env_remove("DOCKER_HOST").env("HOME", "/nonexistent-berth-home");
    c
}

fn run(args: &[&str]) -> Output {
    berth().args(args).stdin(Stdio::null()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn help_and_version() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    assert!(out.starts_with("Usage:  berth [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\nCommon Commands:\n"), "{out}");
    assert!(out.contains("Management Commands:\n  container   Manage containers\n"));
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).starts_with("berth version 0.1.0, build "));
    let o = run(&["ps", "--help"]);
    assert!(text(&o.stdout).starts_with("Usage:  berth ps [OPTIONS]\n\nList containers\n\nAliases:\n"));
}

#[test]
fn bad_flags_exit_125_with_docker_wording() {
    let o = run(&["run", "--foo", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        text(&o.stderr),
        "unknown flag: --foo\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"
    );
    let o = run(&["run", "-m", "12x", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o.stderr).starts_with("invalid argument \"12x\" for \"-m, --memory\" flag: invalid suffix: 'x'\n"));
    let o = run(&["run", "--restart", "on-failure:x", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        text(&o.stderr),
        "berth: invalid restart policy format: maximum retry count must be an integer\n\nRun 'berth run --help' for more information\n"
    );
    let o = run(&["rm"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("berth: 'berth rm' requires at least 1 argument\n"));
}

#[test]
fn an_unreachable_daemon_reads_like_docker() {
    let o = run(&["-H", "unix:///nonexistent/berth.sock", "ps"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is the berth daemon running?\n");
    let o = berth().args(["run", "busybox"]).env("BERTH_HOST", "unix:///nonexistent/berth.sock").stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        text(&o.stderr),
        "berth: Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is the berth daemon running?\n\nRun 'berth run --help' for more information\n"
    );
    // A socket that exists but where nobody listens.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("dead.sock");
    drop(UnixListener::bind(&p).unwrap());
    let o = berth().args(["images"]).env("DOCKER_HOST", format!("unix://{}", p.display())).stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("Cannot connect to the berth daemon at unix://"), "{}", text(&o.stderr));
}

/// One request as the fake daemon saw it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, k: &str) -> Option<&str> {
        self.headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.as_str())
    }
    /// The path without the `/v1.xx` prefix.
    fn route(&self) -> &str {
        let p = self.path.as_str();
        match p.strip_prefix("/v1.") {
            Some(r) => &r[r.find('/').unwrap_or(0)..],
            None => p,
        }
    }
}

enum Resp {
    Json(u16, String),
    /// 101 and a raw stream; what the client sends after is kept.
    Upgrade(Vec<u8>),
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

struct Fake {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    log: Arc<Mutex<Vec<Req>>>,
    stdin: Arc<Mutex<Vec<u8>>>,
}

impl Fake {
    fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("berth.sock");
        let l = UnixListener::bind(&sock).unwrap();
        let log: Arc<Mutex<Vec<Req>>> = Arc::default();
        let stdin: Arc<Mutex<Vec<u8>>> = Arc::default();
        let h: Arc<Handler> = Arc::new(handler);
        let (log2, stdin2) = (log.clone(), stdin.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                let (h, log, stdin) = (h.clone(), log2.clone(), stdin2.clone());
                std::thread::spawn(move || serve(c, &*h, &log, &stdin));
            }
        });
        Fake { _dir: dir, sock, log, stdin }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    fn berth(&self, args: &[&str]) -> Output {
        berth().arg("-H").arg(self.host()).args(args).stdin(Stdio::null()).output().unwrap()
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(c: UnixStream, h: &Handler, log: &Mutex<Vec<Req>>, stdin: &Mutex<Vec<u8>>) {
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let mut body = Vec::new();
        let get = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
        if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(n, 0);
            r.read_exact(&mut body).unwrap();
        } else if get("transfer-encoding").as_deref() == Some("chunked") {
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                let n = usize::from_str_radix(l.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let req = Req { method, path, headers, body };
        log.lock().unwrap().push(req.clone());
        match h(&req) {
            Resp::Json(status, b) => {
                let head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nApi-Version: 1.50\r\nContent-Length: {}\r\n\r\n", b.len());
                w.write_all(head.as_bytes()).unwrap();
                w.write_all(b.as_bytes()).unwrap();
            }
            Resp::Upgrade(out) => {
                w.write_all(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                    .unwrap();
                w.write_all(&out).unwrap();
                // Read stdin to its end (the client's close-write), then end the stream.
                let mut rest = Vec::new();
                let _ = r.read_to_end(&mut rest);
                stdin.lock().unwrap().extend_from_slice(&rest);
                let _ = w.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

/// Fixture JSON with `"NOW-n"` replaced by now minus n seconds.
fn fixture(name: &str) -> String {
    let s = std::fs::read_to_string(fixtures().join(name)).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("\"NOW-") {
        out.push_str(&rest[..i]);
        let end = rest[i + 5..].find('"').unwrap() + i + 5;
        let n: u64 = rest[i + 5..end].parse().unwrap();
        out.push_str(&(now - n).to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(fixtures().join("golden").join(name)).unwrap()
}

fn not_found(what: &str) -> Resp {
    Resp::Json(404, format!("{{\"message\":\"No such {what}\"}}"))
}

fn lists() -> Fake {
    Fake::start(|r| match r.route().split('?').next().unwrap() {
        "/containers/json" => Resp::Json(200, fixture("containers.json")),
        "/images/json" => Resp::Json(200, fixture("images.json")),
        _ => not_found("route"),
    })
}

#[test]
fn ps_tables_match_dockers() {
    let f = lists();
    for (args, g) in [
        (&["ps", "-a"][..], "ps.txt"),
        (&["ps", "-a", "--no-trunc"], "ps-no-trunc.txt"),
        (&["ps", "-a", "-s"], "ps-size.txt"),
        (&["ps", "-a", "-q"], "ps-q.txt"),
        (&["container", "ls", "-a", "--format", "{{.Names}}|{{.Ports}}|{{.Labels}}|{{.Label \"a\"}}|{{.Networks}}|{{.Mounts}}|{{.LocalVolumes}}|{{.State}}|{{.Size}}"], "ps-format.txt"),
        (&["ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Size}}"], "ps-format-table.txt"),
    ] {
        let o = f.berth(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), golden(g), "berth {args:?}");
    }
    let reqs = f.requests();
    assert!(reqs.iter().any(|r| r.path.ends_with("/containers/json?all=true&size=true") || r.path.contains("size=")));
    // --format json: the same objects as docker's (CreatedAt is absolute time)
    let o = f.berth(&["ps", "-a", "--format", "json"]);
    let strip = |s: &str| -> Vec<serde_json::Value> {
        s.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("CreatedAt");
                v
            })
            .collect()
    };
    assert_eq!(strip(&text(&o.stdout)), strip(&golden("ps-json.txt")));
    assert!(text(&o.stdout).contains("\\u003e80/tcp"), "json escapes like Go's");
}

#[test]
fn images_tables_match_dockers() {
    let f = lists();
    for (args, g) in [
        (&["images"][..], "images.txt"),
        (&["images", "--digests"], "images-digests.txt"),
        (&["image", "ls", "-a"], "images-a.txt"),
        (&["images", "-q"], "images-q.txt"),
        (&["images", "--no-trunc"], "images-no-trunc.txt"),
        (&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.CreatedSince}}"], "images-format.txt"),
    ] {
        let o = f.berth(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), golden(g), "berth {args:?}");
    }
}

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn created() -> Resp {
    Resp::Json(201, format!("{{\"Id\":\"{ID}\",\"Warnings\":[\"a warning\"]}}"))
}

#[test]
fn run_detached_prints_the_id() {
    let f = Fake::start(|r| match r.route() {
        "/containers/create?name=web" => created(),
        p if p.contains("/wait?") => Resp::Json(200, "{\"StatusCode\":0}".into()),
        p if p.ends_with("/start") => Resp::Json(204, String::new()),
        _ => not_found("route"),
    });
    let o = f.berth(&["run", "-d", "--rm", "--name", "web", "busybox", "sleep", "9"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), format!("{ID}\n"));
    assert_eq!(text(&o.stderr), "WARNING: a warning\n");
    let reqs = f.requests();
    let routes: Vec<String> = reqs.iter().map(|r| format!("{} {}", r.method, r.route())).collect();
    assert_eq!(
        routes,
        vec![
            "POST /containers/create?name=web".to_owned(),
            format!("POST /containers/{ID}/wait?condition=removed"),
            format!("POST /containers/{ID}/start")
        ]
    );
    let body: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["AttachStdout"], false);
    assert_eq!(body["HostConfig"]["AutoRemove"], true);
    assert_eq!(body["Cmd"], serde_json::json!(["sleep", "9"]));
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
}

#[test]
fn run_attached_streams_and_exits_with_the_containers_code() {
    let f = Fake::start(|r| match r.route() {
        "/containers/create" => created(),
        p if p.contains("/attach?") => {
            // stdout "hi\n", stderr "oops\n"
            let mut out = vec![1, 0, 0, 0, 0, 0, 0, 3];
            out.extend_from_slice(b"hi\n");
            out.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 5]);
            out.extend_from_slice(b"oops\n");
            Resp::Upgrade(out)
        }
        p if p.contains("/wait?") => Resp::Json(200, "{\"StatusCode\":3}".into()),
        p if p.ends_with("/start") => Resp::Json(204, String::new()),
        _ => not_found("route"),
    });
    let mut child = berth()
        .args(["-H", &f.host(), "run", "-i", "--rm", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"input\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "hi\n");
    assert_eq!(text(&o.stderr), "WARNING: a warning\noops\n");
    let routes: Vec<String> = f.requests().iter().map(|r| format!("{} {}", r.method, r.route())).collect();
    assert_eq!(
        routes,
        vec![
            "POST /containers/create".to_owned(),
            format!("POST /containers/{ID}/attach?stream=1&stdin=1&stdout=1&stderr=1"),
            format!("POST /containers/{ID}/wait?condition=removed"),
            format!("POST /containers/{ID}/start"),
        ]
    );
    let attach = &f.requests()[1];
    assert_eq!((attach.header("upgrade"), attach.header("connection")), (Some("tcp"), Some("Upgrade")));
    assert_eq!(text(&f.stdin.lock().unwrap()), "input\n", "stdin forwarded and closed");
}

#[test]
fn start_failures_map_to_126_and_127() {
    for (msg, code) in [
        ("failed to create task: exec: \\\"nope\\\": executable file not found in $PATH", 127),
        ("exec /etc: permission denied", 126),
        ("cgroup failure", 125),
    ] {
        let msg = msg.to_owned();
        let f = Fake::start(move |r| match r.route() {
            "/containers/create" => Resp::Json(201, format!("{{\"Id\":\"{ID}\"}}")),
            p if p.contains("/wait?") => Resp::Json(200, "{\"StatusCode\":0}".into()),
            p if p.ends_with("/start") => Resp::Json(500, format!("{{\"message\":\"{msg}\"}}")),
            _ => not_found("route"),
        });
        let o = f.berth(&["run", "-d", "busybox"]);
        assert_eq!(o.status.code(), Some(code), "{}", text(&o.stderr));
        assert!(text(&o.stderr).starts_with("berth: Error response from daemon: "), "{}", text(&o.stderr));
        assert!(text(&o.stderr).ends_with("\n\nRun 'berth run --help' for more information\n"));
    }
}

#[test]
fn a_missing_image_is_pulled_once() {
    let creates = Arc::new(Mutex::new(0));
    let c2 = creates.clone();
    let f = Fake::start(move |r| match r.route().split('?').next().unwrap() {
        "/containers/create" => {
            let mut n = c2.lock().unwrap();
            *n += 1;
            if *n == 1 { Resp::Json(404, "{\"message\":\"No such image: busybox:latest\"}".into()) } else { created() }
        }
        "/images/create" => Resp::Json(200, "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\n{\"status\":\"Downloaded newer image for busybox:latest\"}\n".into()),
        _ => not_found("route"),
    });
    let o = f.berth(&["create", "busybox"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), format!("{ID}\n"));
    assert!(text(&o.stderr).starts_with("Unable to find image 'busybox:latest' locally\n"), "{}", text(&o.stderr));
    let pull = f.requests().into_iter().find(|r| r.route().starts_with("/images/create")).unwrap();
    assert_eq!(pull.route(), "/images/create?fromImage=busybox&tag=latest");
}

#[test]
fn exec_exits_with_the_exec_code() {
    let f = Fake::start(|r| match r.route() {
        "/containers/web/json" => Resp::Json(200, format!("{{\"Id\":\"{ID}\",\"Config\":{{\"Tty\":false}}}}")),
        "/containers/web/exec" => Resp::Json(201, "{\"Id\":\"e1\"}".into()),
        "/exec/e1/start" => Resp::Upgrade(vec![1, 0, 0, 0, 0, 0, 0, 2, b'o', b'k']),
        "/exec/e1/json" => Resp::Json(200, "{\"ExitCode\":7,\"Running\":false}".into()),
        _ => not_found("route"),
    });
    let o = f.berth(&["exec", "-e", "A=1", "web", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "ok");
    let reqs = f.requests();
    let create: serde_json::Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(create["Cmd"], serde_json::json!(["sh", "-c", "exit 7"]));
    assert_eq!(create["Env"], serde_json::json!(["A=1"]));
    assert_eq!(text(&reqs[2].body), "{\"Detach\":false,\"Tty\":false}");
}

#[test]
fn daemon_errors_read_like_docker() {
    let f = Fake::start(|r| match r.route().split('?').next().unwrap() {
        "/containers/a" => Resp::Json(204, String::new()),
        "/containers/nosuch" => Resp::Json(404, "{\"message\":\"No such container: nosuch\"}".into()),
        _ => not_found("route"),
    });
    let o = f.berth(&["rm", "a", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "a\n");
    assert_eq!(text(&o.stderr), "Error response from daemon: No such container: nosuch\n");
    let o = f.berth(&["rm", "-f", "nosuch"]);
    assert!(o.status.success(), "rm -f ignores missing containers");
}

#[test]
fn inspect_prints_the_daemons_json_and_templates() {
    let f = Fake::start(|r| match r.route().split('?').next().unwrap() {
        "/containers/web/json" => Resp::Json(
            200,
            "{\"Id\":\"abc\",\"State\":{\"Pid\":4242,\"Running\":true},\"Config\":{\"Labels\":{\"x\":\"y\"},\"Cmd\":[\"sh\",\"-c\",\"true\"]},\"NetworkSettings\":{\"Networks\":{\"bridge\":{\"IPAddress\":\"172.17.0.2\"}}}}".into(),
        ),
        "/containers/busybox/json" => Resp::Json(404, "{\"message\":\"No such container: busybox\"}".into()),
        "/images/busybox/json" => Resp::Json(200, "{\"Id\":\"sha256:beef\",\"RepoTags\":[\"busybox:latest\"]}".into()),
        _ => Resp::Json(404, "{\"message\":\"No such image: nothing\"}".into()),
    });
    let o = f.berth(&["inspect", "-f", "{{.State.Pid}} {{index .Config.Labels \"x\"}} {{join .Config.Cmd \" \"}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web"]);
    assert_eq!(text(&o.stdout), "4242 y sh -c true 172.17.0.2\n", "{}", text(&o.stderr));
    let o = f.berth(&["inspect", "busybox"]);
    assert_eq!(text(&o.stdout), "[\n    {\n        \"Id\": \"sha256:beef\",\n        \"RepoTags\": [\n            \"busybox:latest\"\n        ]\n    }\n]\n");
    let o = f.berth(&["inspect", "nothing"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "[]\n");
    assert_eq!(text(&o.stderr), "Error: No such object: nothing\n");
}

#[test]
fn logs_demultiplex_and_pass_the_query() {
    let f = Fake::start(|r| match r.route().split('?').next().unwrap() {
        "/containers/web/json" => Resp::Json(200, format!("{{\"Id\":\"{ID}\",\"Config\":{{\"Tty\":false}}}}")),
        "/containers/tty/json" => Resp::Json(200, format!("{{\"Id\":\"{ID}\",\"Config\":{{\"Tty\":true}}}}")),
        p if p.ends_with("/logs") => {
            let mut b = vec![1, 0, 0, 0, 0, 0, 0, 4];
            b.extend_from_slice(b"out\n");
            b.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
            b.extend_from_slice(b"err\n");
            Resp::Json(200, String::from_utf8(b).unwrap())
        }
        _ => not_found("route"),
    });
    let o = f.berth(&["logs", "-t", "--tail", "5", "--since", "1700000000", "web"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!((text(&o.stdout).as_str(), text(&o.stderr).as_str()), ("out\n", "err\n"));
    let logs = f.requests().into_iter().find(|r| r.route().contains("/logs")).unwrap();
    assert_eq!(logs.route(), format!("/containers/{ID}/logs?stdout=1&stderr=1&since=1700000000&timestamps=1&tail=5"));
    // a tty container's log is raw bytes
    let o = f.berth(&["logs", "tty"]);
    assert_eq!(o.stdout[..8], [1, 0, 0, 0, 0, 0, 0, 4]);
}

#[test]
fn version_prints_client_then_server() {
    let f = Fake::start(|r| match r.route() {
        "/version" => Resp::Json(200, r#"{"Version":"0.1.0","ApiVersion":"1.50","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64","GitCommit":"abc","GoVersion":"n/a"}"#.into()),
        _ => not_found("route"),
    });
    let o = f.berth(&["version"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    assert!(out.starts_with("Client:\n Version:           0.1.0\n API version:       1.50\n"), "{out}");
    assert!(out.contains("\nServer:\n Engine:\n  Version:          0.1.0\n  API version:      1.50 (minimum version 1.24)\n"), "{out}");
    let o = f.berth(&["version", "--format", "{{.Server.Version}} {{.Client.ApiVersion}}"]);
    assert_eq!(text(&o.stdout), "0.1.0 1.50\n");
    let o = run(&["-H", "unix:///nonexistent/berth.sock", "version"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).starts_with("Client:\n"));
}

#[test]
fn run_it_uses_a_raw_terminal_and_detaches_on_ctrl_p_ctrl_q() {
    use nix::sys::termios::{LocalFlags, tcgetattr};
    use std::os::fd::AsFd;
    let f = Fake::start(|r| match r.route() {
        "/containers/create" => Resp::Json(201, format!("{{\"Id\":\"{ID}\"}}")),
        p if p.contains("/attach?") => Resp::Upgrade(b"/ # ".to_vec()),
        p if p.contains("/wait?") => Resp::Json(200, "{\"StatusCode\":0}".into()),
        p if p.contains("/resize?") => Resp::Json(200, String::new()),
        p if p.ends_with("/start") => Resp::Json(204, String::new()),
        _ => not_found("route"),
    });
    let ws = nix::pty::Winsize { ws_row: 30, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&ws), None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut child = berth()
        .args(["-H", &f.host(), "run", "-it", "busybox", "sh"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .spawn()
        .unwrap();
    // read the terminal in a thread, so that a failure cannot hang the test
    let (tx, rx) = std::sync::mpsc::channel();
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    while !seen.ends_with(b"/ # ") {
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(b) => seen.extend_from_slice(&b),
            Err(_) => {
                let _ = child.kill();
                panic!("no prompt on the terminal: {:?}", text(&seen));
            }
        }
    }
    let raw = tcgetattr(slave.as_fd()).unwrap();
    assert!(!raw.local_flags.contains(LocalFlags::ICANON) && !raw.local_flags.contains(LocalFlags::ECHO), "raw while attached");
    // the resize runs beside the streams, as docker's does: let it land
    for _ in 0..200 {
        if f.requests().iter().any(|r| r.route().contains("/resize?")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    master.write_all(b"ls\r").unwrap();
    master.write_all(&[16, 17]).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "detached");
    let after = tcgetattr(slave.as_fd()).unwrap();
    assert!(after.local_flags.contains(LocalFlags::ICANON), "terminal restored");
    // the tty was sized like ours, and what was typed before the keys went on
    let reqs = f.requests();
    let create: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(create["HostConfig"]["ConsoleSize"], serde_json::json!([30, 100]));
    assert!(reqs.iter().any(|r| r.route().ends_with("/resize?h=30&w=100")), "{:?}", reqs.iter().map(|r| r.route().to_owned()).collect::<Vec<_>>());
    for _ in 0..200 {
        if !f.stdin.lock().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(text(&f.stdin.lock().unwrap()), "ls\r", "keys typed before the sequence go on, the sequence does not");
}

#[test]
fn stats_top_port_and_history_match_dockers() {
    let f = Fake::start(|r| match r.route().split('?').next().unwrap() {
        // the daemon streams compact JSON lines
        "/containers/web/stats" => Resp::Json(200, serde_json::from_str::<serde_json::Value>(&fixture("stats.json")).unwrap().to_string() + "\n"),
        "/containers/web/top" => Resp::Json(200, fixture("top.json")),
        "/containers/web/json" => Resp::Json(
            200,
            r#"{"Id":"4c01db0b339c","NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}],"443/tcp":null,"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}]}}}"#.into(),
        ),
        "/images/nginx/history" => Resp::Json(200, fixture("history.json")),
        _ => not_found("route"),
    });
    for (args, g) in [
        (&["stats", "--no-stream", "web"][..], "stats.txt"),
        (&["top", "web"], "top.txt"),
        (&["port", "web"], "port.txt"),
        (&["container", "port", "web", "80"], "port-80.txt"),
        (&["history", "nginx"], "history.txt"),
        (&["image", "history", "--no-trunc", "nginx"], "history-no-trunc.txt"),
    ] {
        let o = f.berth(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), golden(g), "berth {args:?}");
    }
    let o = f.berth(&["port", "web", "443"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "Error: No public port '443' published for web\n");
}

#[test]
fn cp_both_ways_over_the_archive_api() {
    // a tar holding `hosts` (as the daemon sends for /etc/hosts)
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(9);
    h.set_mode(0o644);
    b.append_data(&mut h, "hosts", &b"127.0.0.1"[..]).unwrap();
    let tarball = b.into_inner().unwrap();
    let t2 = tarball.clone();
    let f = Fake::start(move |r| match (r.method.as_str(), r.route().split('?').next().unwrap()) {
        ("GET", "/containers/web/archive") => Resp::Json(200, String::from_utf8_lossy(&t2).into_owned()),
        ("HEAD", "/containers/web/archive") => Resp::Json(404, "{\"message\":\"Could not find the file /tmp/new in container web\"}".into()),
        ("PUT", "/containers/web/archive") => Resp::Json(200, String::new()),
        _ => not_found("route"),
    });
    let d = tempfile::tempdir().unwrap();
    let dst = d.path().join("h");
    let o = f.berth(&["cp", "web:/etc/hosts", dst.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "127.0.0.1");
    let o = f.berth(&["cp", "web:/etc/hosts", "-"]);
    assert_eq!(o.stdout, tarball, "- writes the tar as it came");
    let o = f.berth(&["cp", "-a", dst.to_str().unwrap(), "web:/tmp/new"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let put = f.requests().into_iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.route(), "/containers/web/archive?path=%2Ftmp&noOverwriteDirNonDir=true&copyUIDGID=true");
    assert_eq!(put.header("content-type"), Some("application/x-tar"));
    let mut ar = tar::Archive::new(&put.body[..]);
    let names: Vec<String> = ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["new"], "renamed to the destination's name");
}

#[test]
fn events_print_docker_lines_and_templates() {
    let f = Fake::start(|r| match r.route().split('?').next().unwrap() {
        "/events" => Resp::Json(
            200,
            "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":{\"name\":\"web\",\"image\":\"busybox\"}},\"scope\":\"local\",\"time\":1700000000,\"timeNano\":1700000000123456789}\n".into(),
        ),
        _ => not_found("route"),
    });
    let o = berth().args(["-H", &f.host(), "events", "--since", "1700000000", "--filter", "type=container"]).env("TZ", "UTC").output().unwrap();
    assert_eq!(text(&o.stdout), "2023-11-14T22:13:20.123456789Z container start abc (image=busybox, name=web)\n");
    let ev = f.requests()[0].route().to_owned();
    assert_eq!(ev, "/events?since=1700000000&filters=%7B%22type%22%3A%7B%22container%22%3Atrue%7D%7D");
    let o = f.berth(&["events", "--format", "{{.Actor.Attributes.name}} {{.Action}}"]);
    assert_eq!(text(&o.stdout), "web start\n");
}
