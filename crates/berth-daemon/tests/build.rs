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
}
