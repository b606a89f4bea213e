//! `berth build` against a real berthd (root): contexts from a directory,
//! stdin and `-f`, the classic builder's output, `-q`, `--iidfile`, and the
//! exit code of a failing RUN.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use berth_testkit::TestDir;
use berth_testkit::daemon::TestDaemon;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn berth(d: &TestDaemon, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(BERTH)
        .arg("-H")
        .arg(d.host())
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    if let Some(data) = stdin {
        c.stdin.take().unwrap().write_all(data).unwrap();
    }
    c.wait_with_output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn berth_build_contexts_output_and_errors() {
    let d = TestDaemon::start(&PathBuf::from(BERTH).with_file_name("berthd"));
    d.import_busybox("busybox:latest");
    let ctx = TestDir::new("cli-build");
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nARG WHO\nCOPY note.txt /note.txt\nRUN echo \"built for $WHO\" > /who\n").unwrap();
    std::fs::write(ctx.join("note.txt"), "a note\n").unwrap();
    let dir = ctx.path().to_str().unwrap();

    let o = berth(&d, &["build", "-t", "cli:1", "--build-arg", "WHO=tests", dir], None);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.starts_with("Sending build context to Docker daemon  "), "{out}");
    assert!(out.contains("Step 1/4 : FROM busybox") && out.contains("Successfully tagged cli:1"), "{out}");
    let run = berth(&d, &["run", "--rm", "cli:1", "cat", "/note.txt", "/who"], None);
    assert_eq!(text(&run).0, "a note\nbuilt for tests\n");

    // -q prints the ID only; --iidfile writes it.
    let iid = ctx.join("iid");
    let o = berth(&d, &["build", "-q", "--build-arg", "WHO=tests", "--iidfile", iid.to_str().unwrap(), dir], None);
    let (out, _) = text(&o);
    assert!(out.starts_with("sha256:") && out.lines().count() == 1, "{out}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), out.trim());

    // A Dockerfile outside the context, and one alone on stdin.
    let other = TestDir::new("cli-build-df");
    std::fs::write(other.join("Build.df"), "FROM busybox\nCOPY note.txt /elsewhere\n").unwrap();
    let o = berth(&d, &["build", "-t", "cli:2", "-f", other.join("Build.df").to_str().unwrap(), dir], None);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(text(&berth(&d, &["run", "--rm", "cli:2", "cat", "/elsewhere"], None)).0, "a note\n");
    let o = berth(&d, &["build", "-t", "cli3", "-"], Some(b"FROM busybox\nRUN echo from-stdin > /s\n"));
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("Successfully tagged cli3:latest"), "{:?}", text(&o));
    assert_eq!(text(&berth(&d, &["run", "--rm", "cli3", "cat", "/s"], None)).0, "from-stdin\n");

    // A context tar on stdin.
    let mut tar = Vec::new();
    berth_build::context::write_tar(ctx.path(), "Dockerfile", None, &mut tar).unwrap();
    let o = berth(&d, &["build", "-t", "cli:4", "--build-arg", "WHO=tar", "-"], Some(&tar));
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(text(&berth(&d, &["run", "--rm", "cli:4", "cat", "/who"], None)).0, "built for tar\n");

    // A failing RUN: docker's message, the command's exit code, no tag.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo going && exit 42\n").unwrap();
    let o = berth(&d, &["build", "-t", "cli:bad", dir], None);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(42), "{out}\n{err}");
    assert!(out.contains("going"), "{out}");
    assert!(err.contains("The command '/bin/sh -c echo going && exit 42' returned a non-zero code: 42"), "{err}");
    assert!(!berth(&d, &["image", "inspect", "cli:bad"], None).status.success());
    let o = berth(&d, &["build", "--progress", "fancy", dir], None);
    assert!(!o.status.success());
}
