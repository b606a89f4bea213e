//! Root integration tests of `POST /build`: real-looking Dockerfiles built
//! on the busybox test image by a test-owned berthd, checked by running the
//! images, by `history`, and with the real docker CLI (`DOCKER_BUILDKIT=0`).

use std::path::Path;
use std::process::Output;

use berth_testkit::TestDir;
use berth_testkit::daemon::TestDaemon;
use serde_json::Value;

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

fn daemon() -> TestDaemon {
    let d = TestDaemon::start(Path::new(BERTHD));
    d.import_busybox("busybox:latest");
    d
}

/// A context directory with the given files.
fn context(name: &str, files: &[(&str, &str)]) -> TestDir {
    let dir = TestDir::new(name);
    for (p, content) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

/// What a build answered: the stream text, the aux ID, the error.
struct Answer {
    status: u16,
    text: String,
    id: Option<String>,
    error: Option<Value>,
}

fn build(d: &TestDaemon, ctx: &Path, query: &str) -> Answer {
    let mut tar = Vec::new();
    berth_build::context::write_tar(ctx, "Dockerfile", None, &mut tar).unwrap();
    let r = d.request("POST", &format!("/v1.41/build?{query}"), Some(("application/x-tar", &tar))).unwrap();
    let mut a = Answer { status: r.status, text: String::new(), id: None, error: None };
    if r.status != 200 {
        a.error = Some(r.json());
        return a;
    }
    for line in r.text().split("\r\n").filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad stream line {line:?}: {e}"));
        if let Some(s) = v["stream"].as_str() {
            a.text.push_str(s);
        }
        if let Some(id) = v["aux"]["ID"].as_str() {
            a.id = Some(id.to_owned());
        }
        if v.get("error").is_some() {
            a.error = Some(v);
        }
    }
    a
}

fn built(a: &Answer) -> String {
    assert!(a.error.is_none(), "build failed: {:?}\n{}", a.error, a.text);
    a.id.clone().expect("aux ID")
}

fn docker(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.docker().expect("the docker CLI is installed");
    c.env("DOCKER_BUILDKIT", "0").args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Run `cmd` in a fresh container of `image`; its output.
fn run(d: &TestDaemon, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    ok(&docker(d, &args))
}

fn inspect(d: &TestDaemon, image: &str) -> Value {
    d.request("GET", &format!("/images/{image}/json"), None).unwrap().json()
}

#[test]
fn layers_whiteouts_history_and_cache() {
    let d = daemon();
    let ctx = context(
        "build-app",
        &[
            (
                "Dockerfile",
                "# syntax=docker/dockerfile:1\nFROM busybox\nLABEL org.example.app=demo\nENV GREETING=hello\nWORKDIR /app\nCOPY greet.sh ./\nRUN echo scratch > /tmp/junk \\\n && echo \"$GREETING from RUN\" > /app/out.txt\nRUN rm /tmp/junk\nCMD [\"sh\", \"/app/greet.sh\"]\n",
            ),
            ("greet.sh", "echo \"$GREETING, world\"\ncat /app/out.txt\n"),
        ],
    );
    let first = build(&d, ctx.path(), "t=app:1");
    let id = built(&first);
    assert!(first.text.contains("Step 1/8 : FROM busybox"), "{}", first.text);
    assert!(first.text.contains("Step 6/8 : RUN echo scratch"), "{}", first.text);
    assert!(first.text.contains(" ---> Running in "), "{}", first.text);
    assert!(first.text.contains(&format!("Successfully built {}", &id[7..19])), "{}", first.text);
    assert!(first.text.contains("Successfully tagged app:1"), "{}", first.text);
    assert_eq!(run(&d, "app:1", &[]), "hello, world\nhello from RUN\n");
    // The file deleted by the later RUN is hidden (a whiteout).
    assert_eq!(run(&d, "app:1", &["sh", "-c", "ls /tmp/junk 2>&1 || echo gone"]).lines().last(), Some("gone"));
    // history: one entry per step, layers for COPY and the RUNs.
    let h = d.request("GET", "/images/app:1/history", None).unwrap().json();
    let entries = h.as_array().unwrap();
    let created: Vec<&str> = entries.iter().map(|e| e["CreatedBy"].as_str().unwrap()).collect();
    assert!(created[0].contains("CMD [\"sh\" \"/app/greet.sh\"]"), "{created:?}");
    assert!(created[1].contains("rm /tmp/junk"), "{created:?}");
    assert!(created.iter().any(|c| c.contains("WORKDIR /app")), "{created:?}");
    assert!(created.iter().any(|c| c.contains("COPY file:") && c.contains(" in /app/")), "{created:?}");
    let cfg = inspect(&d, "app:1");
    assert_eq!(cfg["Config"]["WorkingDir"], "/app");
    assert_eq!(cfg["Config"]["Labels"]["org.example.app"], "demo");
    assert!(cfg["Config"]["Env"].as_array().unwrap().iter().any(|e| e == "GREETING=hello"));
    assert_eq!(cfg["RootFS"]["Layers"].as_array().unwrap().len(), 5, "busybox + WORKDIR + COPY + 2 RUN");

    // An unchanged rebuild runs nothing and gives the same image.
    let again = build(&d, ctx.path(), "t=app:2");
    assert_eq!(built(&again), id);
    assert!(!again.text.contains("Running in"), "{}", again.text);
    assert_eq!(again.text.matches("Using cache").count(), 7, "{}", again.text);
    // A changed COPY source misses from there on.
    std::fs::write(ctx.join("greet.sh"), "echo changed\n").unwrap();
    let changed = build(&d, ctx.path(), "t=app:3");
    assert_ne!(built(&changed), id);
    assert_eq!(changed.text.matches("Using cache").count(), 3, "{}", changed.text);
    assert!(changed.text.contains("Running in"), "{}", changed.text);
    assert_eq!(run(&d, "app:3", &[]), "changed\n");
    // --no-cache runs everything again.
    let nc = build(&d, ctx.path(), "t=app:4&nocache=1");
    built(&nc);
    assert!(!nc.text.contains("Using cache"), "{}", nc.text);
    // --cache-from trusts only the images it names and their parents.
    let other = build(&d, ctx.path(), "t=app:5&cachefrom=%5B%22busybox%3Alatest%22%5D");
    built(&other);
    assert!(!other.text.contains("Using cache"), "{}", other.text);
    let named = build(&d, ctx.path(), "t=app:6&cachefrom=%5B%22app%3A5%22%5D");
    assert_eq!(built(&named), built(&other));
    assert_eq!(named.text.matches("Using cache").count(), 7, "{}", named.text);
}

#[test]
fn multi_stage_target_and_unneeded_stages() {
    let d = daemon();
    let ctx = context(
        "build-multi",
        &[(
            "Dockerfile",
            "ARG BASE=busybox\nFROM $BASE AS builder\nRUN mkdir /out && echo compiled > /out/app\n\nFROM busybox AS broken\nRUN echo this stage is not needed && exit 3\n\nFROM ${BASE} AS docs\nRUN echo manual > /doc\n\nfrom busybox\ncopy --from=builder /out/app /usr/local/bin/app\nCOPY --from=docs /doc /doc\nRUN cat /usr/local/bin/app /doc\n",
        )],
    );
    let a = build(&d, ctx.path(), "t=multi:1");
    built(&a);
    assert!(!a.text.contains("this stage is not needed"), "{}", a.text);
    assert!(a.text.contains("compiled\nmanual\n"), "{}", a.text);
    assert_eq!(run(&d, "multi:1", &["cat", "/usr/local/bin/app"]), "compiled\n");
    // --target builds that stage (and what it needs) only.
    let t = build(&d, ctx.path(), "t=multi:builder&target=builder");
    built(&t);
    assert!(!t.text.contains("manual"), "{}", t.text);
    assert_eq!(run(&d, "multi:builder", &["cat", "/out/app"]), "compiled\n");
    let bad = build(&d, ctx.path(), "target=nope");
    assert_eq!(bad.status, 400);
    assert!(bad.error.unwrap()["message"].as_str().unwrap().contains("failed to reach build target nope"));
    let missing = build(&d, ctx.path(), "dockerfile=Nope.df");
    assert_eq!(missing.status, 400);
    assert_eq!(missing.error.unwrap()["message"], "Cannot locate specified Dockerfile: Nope.df");
    // The broken stage fails when it is the target, and nothing is tagged.
    let broken = build(&d, ctx.path(), "t=multi:broken&target=broken");
    let e = broken.error.expect("the build fails");
    assert_eq!(e["error"], "The command '/bin/sh -c echo this stage is not needed && exit 3' returned a non-zero code: 3");
    assert_eq!(e["errorDetail"]["code"], 3);
    assert_eq!(d.request("GET", "/images/multi:broken/json", None).unwrap().status, 404);
}

#[test]
fn dockerignore_args_user_workdir_and_onbuild() {
    let d = daemon();
    let ctx = context(
        "build-ignore",
        &[
            (".dockerignore", "# local files\nsecret.txt\n*.log\n!keep.log\ntmp/\n"),
            ("secret.txt", "password"),
            ("debug.log", "noise"),
            ("keep.log", "kept"),
            ("tmp/cache", "x"),
            ("src/main.sh", "echo main"),
            (
                "Dockerfile",
                "FROM busybox\nARG VERSION=0.1\nARG UNUSED\nENV APP_HOME=/home/user/app\nCOPY . /ctx/\nUSER user\nWORKDIR $APP_HOME\nRUN id -u > uid && pwd > where && echo ${VERSION:-none} > version && touch mine\nUSER root:extra\nRUN id -g > /gid\nONBUILD RUN echo triggered > /onbuild\n",
            ),
        ],
    );
    let a = build(&d, ctx.path(), "t=ign:1&buildargs=%7B%22VERSION%22%3A%222.0%22%2C%22EXTRA%22%3A%22x%22%7D");
    built(&a);
    assert!(a.text.contains("[Warning] One or more build-args [EXTRA] were not consumed"), "{}", a.text);
    let files = run(&d, "ign:1", &["sh", "-c", "cd /ctx && find . -type f | sort"]);
    assert_eq!(files, "./.dockerignore\n./Dockerfile\n./keep.log\n./src/main.sh\n");
    assert_eq!(run(&d, "ign:1", &["cat", "/home/user/app/uid", "/home/user/app/where", "/home/user/app/version", "/gid"]), "1000\n/home/user/app\n2.0\n2000\n");
    assert_eq!(run(&d, "ign:1", &["stat", "-c", "%u", "/home/user/app/mine"]), "1000\n");
    let h = d.request("GET", "/images/ign:1/history", None).unwrap().json();
    assert!(h.as_array().unwrap().iter().any(|e| e["CreatedBy"].as_str().unwrap().starts_with("|1 VERSION=2.0 /bin/sh -c id -u")), "{h}");
    // ONBUILD triggers run in a child build, not in the image itself.
    assert_eq!(run(&d, "ign:1", &["sh", "-c", "cat /onbuild 2>/dev/null || echo none"]), "none\n");
    let child = context("build-child", &[("Dockerfile", "FROM ign:1\nRUN cat /onbuild\n")]);
    let c = build(&d, child.path(), "t=ign:child");
    built(&c);
    assert!(c.text.contains("# Executing 1 build trigger"), "{}", c.text);
    assert!(c.text.contains("triggered"), "{}", c.text);
}

#[test]
fn entrypoint_cmd_table_and_metadata() {
    let d = daemon();
    let cases: &[(&str, &str, Value, Value, &str)] = &[
        ("CMD [\"echo\", \"exec\"]", "", Value::Null, serde_json::json!(["echo", "exec"]), "exec\n"),
        ("CMD echo shell", "", Value::Null, serde_json::json!(["/bin/sh", "-c", "echo shell"]), "shell\n"),
        ("ENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"arg\"]", "", serde_json::json!(["echo", "ep"]), serde_json::json!(["arg"]), "ep arg\n"),
        ("ENTRYPOINT echo shell-ep", "", serde_json::json!(["/bin/sh", "-c", "echo shell-ep"]), Value::Null, "shell-ep\n"),
        // CMD inherited from the base is reset by ENTRYPOINT.
        ("ENTRYPOINT [\"echo\"]", "CMD [\"base-cmd\"]", serde_json::json!(["echo"]), Value::Null, "\n"),
    ];
    for (i, (lines, base_cmd, ep, cmd, out)) in cases.iter().enumerate() {
        let base = if base_cmd.is_empty() {
            "busybox".to_owned()
        } else {
            let b = context(&format!("build-base{i}"), &[("Dockerfile", &format!("FROM busybox\n{base_cmd}\n"))]);
            built(&build(&d, b.path(), &format!("t=table-base:{i}")));
            format!("table-base:{i}")
        };
        let ctx = context(&format!("build-table{i}"), &[("Dockerfile", &format!("FROM {base}\n{lines}\n"))]);
        built(&build(&d, ctx.path(), &format!("t=table:{i}")));
        let cfg = inspect(&d, &format!("table:{i}"));
        assert_eq!(cfg["Config"]["Entrypoint"], *ep, "case {i}: {cfg}");
        assert_eq!(cfg["Config"]["Cmd"], *cmd, "case {i}: {cfg}");
        assert_eq!(run(&d, &format!("table:{i}"), &[]), *out, "case {i}");
    }
    let ctx = context(
        "build-meta",
        &[(
            "Dockerfile",
            "FROM busybox\nSHELL [\"/bin/sh\", \"-ec\"]\nEXPOSE 80 53/udp\nVOLUME /data\nSTOPSIGNAL SIGINT\nHEALTHCHECK --interval=5s --retries=2 CMD true\nLABEL a=1 \"b c\"=\"d e\"\nRUN echo $0 $- > /shell\n",
        )],
    );
    built(&build(&d, ctx.path(), "t=meta:1&labels=%7B%22from.cli%22%3A%22yes%22%7D"));
    let c = &inspect(&d, "meta:1")["Config"];
    assert_eq!(c["ExposedPorts"], serde_json::json!({"80/tcp": {}, "53/udp": {}}));
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Healthcheck"], serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 2}));
    assert_eq!(c["Labels"], serde_json::json!({"a": "1", "b c": "d e", "from.cli": "yes"}));
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert!(run(&d, "meta:1", &["cat", "/shell"]).contains('e'), "SHELL flags reach RUN");
}

#[test]
fn add_extracts_archives_and_fetches_urls() {
    let d = daemon();
    let ctx = context("build-add", &[("payload/a.txt", "alpha\n"), ("payload/sub/b.txt", "beta\n")]);
    let mut tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar);
        b.append_dir_all("pkg", ctx.join("payload")).unwrap();
        b.finish().unwrap();
    }
    std::fs::write(ctx.join("pkg.tar"), &tar).unwrap();
    let gz = std::process::Command::new("gzip").arg("-c").arg(ctx.join("pkg.tar")).output().unwrap();
    std::fs::write(ctx.join("pkg.tar.gz"), gz.stdout).unwrap();
    // A tiny HTTP server on loopback for ADD <url>.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 2048];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "request cut short");
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nfrom-server").unwrap();
    });
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nADD pkg.tar.gz /opt/\nADD pkg.tar /plain/\nCOPY pkg.tar /copied/\nADD http://127.0.0.1:{port}/remote.txt /dl/\nCOPY --chmod=0750 --chown=user:extra payload/a.txt /perm/a\nCOPY payload/*.txt /glob/\n"),
    )
    .unwrap();
    built(&build(&d, ctx.path(), "t=add:1"));
    server.join().unwrap();
    assert_eq!(run(&d, "add:1", &["cat", "/opt/pkg/a.txt", "/opt/pkg/sub/b.txt", "/plain/pkg/a.txt"]), "alpha\nbeta\nalpha\n");
    assert_eq!(run(&d, "add:1", &["ls", "/copied"]), "pkg.tar\n", "COPY never extracts");
    assert_eq!(run(&d, "add:1", &["cat", "/dl/remote.txt"]), "from-server");
    assert_eq!(run(&d, "add:1", &["stat", "-c", "%a %u %g", "/perm/a", "/dl/remote.txt"]), "750 1000 2000\n600 0 0\n");
    assert_eq!(run(&d, "add:1", &["ls", "/glob"]), "a.txt\n");
}

#[test]
fn bad_input_is_refused_with_the_line() {
    let d = daemon();
    let cases: &[(&str, u16, &str)] = &[
        ("FROM busybox\nRUN true\nFROBNICATE x\n", 400, "Dockerfile parse error line 3: unknown instruction: FROBNICATE"),
        ("RUN true\n", 400, "Dockerfile parse error line 1: no build stage in current context"),
        ("FROM busybox\nENV A=${B\n", 200, "Dockerfile parse error line 2: failed to process \"${B\": syntax error: missing '}'"),
        ("FROM busybox\nCOPY ../etc/passwd /x\n", 200, "COPY failed: forbidden path outside the build context: ../etc/passwd ()"),
        ("FROM busybox\nCOPY missing.txt /x\n", 200, "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist"),
        ("FROM busybox\nRUN false\n", 200, "The command '/bin/sh -c false' returned a non-zero code: 1"),
        ("FROM busybox\nUSER nobody-here\nRUN true\n", 200, "unable to find user nobody-here"),
        // Images that are not local are pulled; from a loopback port where
        // no registry listens, the pull's error is the build's.
        ("FROM 127.0.0.1:1/no-such-base:1\nRUN true\n", 200, "Dockerfile line 1: "),
        ("FROM 127.0.0.1:1/no-such-base:1\nRUN true\n", 200, "127.0.0.1:1"),
        ("FROM busybox\nCOPY --from=127.0.0.1:1/nope /x /x\n", 200, "invalid from flag value 127.0.0.1:1/nope: "),
    ];
    for (i, (df, status, msg)) in cases.iter().enumerate() {
        let ctx = context(&format!("build-bad{i}"), &[("Dockerfile", df)]);
        let a = build(&d, ctx.path(), &format!("t=bad:{i}"));
        assert_eq!(a.status, *status, "case {i}: {:?}", a.error);
        let e = a.error.unwrap_or_else(|| panic!("case {i} must fail:\n{}", a.text));
        let text = e.get("error").or_else(|| e.get("message")).and_then(|m| m.as_str()).unwrap().to_owned();
        assert!(text.contains(msg), "case {i}: {text}");
        assert_eq!(d.request("GET", &format!("/images/bad:{i}/json"), None).unwrap().status, 404, "case {i}: no half-tagged image");
    }
    // No build container, snapshot or mount is left behind.
    let exec = d.exec_root().join("build");
    let left: Vec<_> = std::fs::read_dir(exec.join("containers")).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let snaps: Vec<_> = std::fs::read_dir(d.data_root().join("image/snapshots")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(snaps.iter().all(|s| !s.to_string_lossy().starts_with("build-")), "{snaps:?}");
}

#[test]
fn docker_cli_classic_builder() {
    let d = daemon();
    let ctx = context(
        "build-docker",
        &[
            ("Dockerfile", "FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"),
            ("hello.txt", "hello from docker build\n"),
        ],
    );
    let dir = ctx.path().to_str().unwrap();
    let out = ok(&docker(&d, &["build", "-t", "dk:1", "-t", "dk:2", "--label", "via=docker", dir]));
    assert!(out.contains("Step 1/5 : FROM busybox"), "{out}");
    assert!(out.contains("Step 5/5 : LABEL via=docker"), "{out}");
    assert!(out.contains("hello from docker build"), "{out}");
    assert!(out.contains("Successfully tagged dk:1"), "{out}");
    assert!(out.contains("Successfully tagged dk:2"), "{out}");
    assert_eq!(run(&d, "dk:2", &[]), "hello from docker build\n");
    let q = ok(&docker(&d, &["build", "-q", dir]));
    assert!(q.trim().starts_with("sha256:"), "{q}");
    assert_ne!(inspect(&d, "dk:1")["Id"].as_str().unwrap(), q.trim(), "without the label step it is another image");
    assert_eq!(ok(&docker(&d, &["build", "-q", dir])), q, "and a cached rebuild the same one");
    // A failing RUN: docker's message and exit code.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN exit 7\n").unwrap();
    let o = docker(&d, &["build", "-t", "dk:bad", dir]);
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("The command '/bin/sh -c exit 7' returned a non-zero code: 7"));
    // A Dockerfile on stdin (-f -) and a parse error.
    let mut c = d.docker().unwrap();
    let mut child = c
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-t", "dk:stdin", "-f", "-", dir])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"FROM busybox\nCOPY hello.txt /from-stdin\n").unwrap();
    ok(&child.wait_with_output().unwrap());
    assert_eq!(run(&d, "dk:stdin", &["cat", "/from-stdin"]), "hello from docker build\n");
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nNOPE\n").unwrap();
    let o = docker(&d, &["build", dir]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Dockerfile parse error line 2: unknown instruction: NOPE"), "{}", String::from_utf8_lossy(&o.stderr));
    let h = ok(&docker(&d, &["history", "dk:1"]));
    assert!(h.contains("COPY file:"), "{h}");
}

#[test]
fn heredocs_and_independent_stages_in_parallel() {
    let d = daemon();
    let ctx = context(
        "build-heredoc",
        &[(
            "Dockerfile",
            "FROM busybox AS one\nRUN cut -d' ' -f1 /proc/uptime > /one && sleep 2 && cut -d' ' -f1 /proc/uptime >> /one\n\nFROM busybox AS two\nRUN cut -d' ' -f1 /proc/uptime > /two && sleep 2 && cut -d' ' -f1 /proc/uptime >> /two\n\nFROM busybox\nENV NAME=berth\nCOPY --from=one /one /\nCOPY --from=two /two /\nRUN <<EOF\necho first > /h\necho second >> /h\nEOF\nCOPY <<EOF /greeting\nhello $NAME\nEOF\nCOPY <<'RAW' /raw\nhello $NAME\nRAW\nRUN cat <<A > /a\nfrom a heredoc\nA\n",
        )],
    );
    let a = build(&d, ctx.path(), "t=hd:1");
    built(&a);
    // The two stages ran side by side: each RUN wrote the host's uptime
    // when it began and when it ended, and the two spans overlap.
    let span = |f: &str| -> (f64, f64) {
        let t: Vec<f64> = run(&d, "hd:1", &["cat", f]).lines().map(|l| l.parse().unwrap()).collect();
        (t[0], t[1])
    };
    let ((s1, e1), (s2, e2)) = (span("/one"), span("/two"));
    assert!(s1 < e2 && s2 < e1, "stages one ({s1}..{e1}) and two ({s2}..{e2}) did not overlap");
    let pos = |s: &str| a.text.find(s).unwrap_or_else(|| panic!("{s} missing:\n{}", a.text));
    assert!(pos("Step 1/12 : FROM busybox AS one") < pos("Step 3/12 : FROM busybox AS two"), "output in stage order");
    assert_eq!(run(&d, "hd:1", &["cat", "/h", "/greeting", "/raw", "/a"]), "first\nsecond\nhello berth\nhello $NAME\nfrom a heredoc\n");
}

#[test]
fn a_daemon_killed_mid_build_leaves_nothing_after_restart() {
    let mut d = daemon();
    let ctx = context("build-crash", &[("Dockerfile", "FROM busybox\nRUN echo started && sleep 60\n")]);
    let mut c = d.docker().expect("the docker CLI is installed");
    let mut child = c
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-t", "crash:1", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runtime = d.exec_root().join("build/runtime");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let running = || std::fs::read_dir(&runtime).map(|rd| rd.flatten().any(|e| !e.file_name().to_string_lossy().starts_with('.'))).unwrap_or(false);
    while !running() {
        assert!(std::time::Instant::now() < deadline, "the RUN container never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    d.kill9();
    let _ = child.wait();
    d.restart();
    assert!(!running(), "the RUN container was deleted");
    let left: Vec<_> = std::fs::read_dir(d.exec_root().join("build/containers")).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let snaps: Vec<_> = std::fs::read_dir(d.data_root().join("image/snapshots")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(snaps.iter().all(|s| !s.to_string_lossy().starts_with("build-")), "{snaps:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(d.exec_root().join("build").to_str().unwrap()), "no build mount is left");
    // The step's sandbox on the default bridge is torn down too.
    wait_for_no_network_leftovers(&d);
    assert_eq!(d.request("GET", "/images/crash:1/json", None).unwrap().status, 404);
}

/// Host veth ends of the daemon's endpoints, and its namespace files.
fn network_leftovers(d: &TestDaemon) -> (Vec<String>, Vec<std::path::PathBuf>) {
    let p = format!("{}v", d.net_prefix());
    let links = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&p))
        .collect();
    let netns = std::fs::read_dir(d.exec_root().join("netns")).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    (links, netns)
}

fn wait_for_no_network_leftovers(d: &TestDaemon) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = network_leftovers(d);
        if left.0.is_empty() && left.1.is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the RUN containers' networks are left: {left:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn run_steps_on_the_default_bridge_host_or_none() {
    let d = daemon();
    // A TCP server on the default bridge's gateway address (the host side).
    let gw = format!("{}.1", d.subnet24(0));
    let listener = std::net::TcpListener::bind(format!("{gw}:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let _ = std::io::Write::write_all(&mut &s, b"gateway-says-hi\n");
        }
    });
    let ctx = context(
        "build-net",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN ip -o -4 addr show eth0 && echo links=$(ip -o link | wc -l) && cat /etc/hosts /etc/resolv.conf && nc -w3 {gw} {port} </dev/null\n"
            ),
        )],
    );
    let dir = ctx.path().to_str().unwrap();
    let out = ok(&docker(&d, &["build", "--no-cache", dir]));
    let addr = out
        .lines()
        .find(|l| l.contains(" eth0 ") && l.contains(" inet "))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or_else(|| panic!("no address on eth0:\n{out}"));
    assert!(addr.starts_with(&format!("{}.", d.subnet24(0))) && addr.ends_with("/24"), "{addr} is not on the bridge's subnet\n{out}");
    assert!(out.contains("links=2"), "lo and eth0:\n{out}");
    assert!(out.contains("gateway-says-hi"), "the step did not reach {gw}:{port}:\n{out}");
    // /etc/hosts as docker writes it: localhost, then the step container's
    // address and hostname (its short id, "Running in ...").
    let short = out.lines().find_map(|l| l.strip_prefix(" ---> Running in ")).unwrap_or_else(|| panic!("{out}")).trim();
    let ip = addr.split('/').next().unwrap();
    assert!(out.contains("127.0.0.1\tlocalhost"), "{out}");
    assert!(out.lines().any(|l| l == format!("{ip}\t{short}")), "no line for {ip} {short}:\n{out}");
    assert!(out.contains("nameserver "), "{out}");
    // The step's endpoint went with it.
    wait_for_no_network_leftovers(&d);
    let bridge = d.request("GET", "/networks/bridge", None).unwrap().json();
    assert!(bridge["Containers"].as_object().is_none_or(|c| c.is_empty()), "{bridge}");

    // --network none: only lo; --network host: the host's links (the
    // daemon's bridge among them).
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo links=$(ip -o link | wc -l)\n").unwrap();
    let out = ok(&docker(&d, &["build", "--no-cache", "--network", "none", dir]));
    assert!(out.contains("links=1"), "only lo:\n{out}");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM busybox\nRUN ip -o link show {}\n", d.bridge())).unwrap();
    let out = ok(&docker(&d, &["build", "--no-cache", "--network", "host", dir]));
    assert!(out.contains(&format!(": {}:", d.bridge())), "the host's links:\n{out}");
    // RUN --network=none in a build on the bridge.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN --network=none echo links=$(ip -o link | wc -l)\n").unwrap();
    let out = ok(&docker(&d, &["build", "--no-cache", dir]));
    assert!(out.contains("links=1"), "only lo:\n{out}");

    // A failing step leaves no network behind either.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN ip -o -4 addr show eth0 && exit 3\n").unwrap();
    let o = docker(&d, &["build", "--no-cache", dir]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for_no_network_leftovers(&d);
}
