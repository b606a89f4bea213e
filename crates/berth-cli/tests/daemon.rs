//! `berth` against a real berthd (root): the commands users type, end to end.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_testkit::daemon::TestDaemon;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// berthd is built beside `berth` (same target directory).
fn berthd() -> PathBuf {
    PathBuf::from(BERTH).with_file_name("berthd")
}

fn daemon() -> TestDaemon {
    let d = TestDaemon::start(&berthd());
    d.import_busybox("busybox:latest");
    d
}

fn berth(d: &TestDaemon, args: &[&str]) -> Output {
    Command::new(BERTH).arg("-H").arg(d.host()).args(args).stdin(Stdio::null()).output().expect("run berth")
}

fn ok(o: &Output) -> String {
    berth_testkit::stdout_of_success(o)
}

#[test]
fn run_reports_output_and_exit_codes() {
    let d = daemon();
    assert_eq!(ok(&berth(&d, &["run", "--rm", "busybox", "echo", "hi"])), "hi\n");
    assert_eq!(berth(&d, &["run", "--rm", "busybox", "sh", "-c", "exit 9"]).status.code(), Some(9));
    let o = berth(&d, &["run", "--rm", "busybox", "no-such-cmd"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&o.stderr).contains("executable file not found"));
    let o = berth(&d, &["run", "--rm", "busybox", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{}", String::from_utf8_lossy(&o.stderr));
    let o = berth(&d, &["run", "--rm", "--memory", "lots", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let o = berth(&d, &["run", "--rm", "nosuchimage:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    // stdin through the hijacked stream.
    let mut child = Command::new(BERTH)
        .arg("-H")
        .arg(d.host())
        .args(["run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    assert_eq!(ok(&child.wait_with_output().unwrap()), "SHOUT\n");
    assert_eq!(ok(&berth(&d, &["ps", "-aq"])), "");
}

#[test]
fn detached_containers_ps_logs_exec_stop_rm() {
    let d = daemon();
    let id = ok(&berth(&d, &["run", "-d", "--name", "svc", "busybox", "sh", "-c", "echo up; trap 'exit 0' TERM; sleep 300 & wait"]));
    assert_eq!(id.trim().len(), 64);
    let ps = ok(&berth(&d, &["ps"]));
    assert!(ps.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{ps}");
    assert!(ps.contains("svc") && ps.contains("Up "), "{ps}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ok(&berth(&d, &["logs", "svc"])), "up\n");
    assert_eq!(ok(&berth(&d, &["exec", "svc", "sh", "-c", "echo $((6*7))"])), "42\n");
    assert_eq!(berth(&d, &["exec", "svc", "sh", "-c", "exit 3"]).status.code(), Some(3));
    assert_eq!(ok(&berth(&d, &["inspect", "-f", "{{.State.Running}}", "svc"])), "true\n");
    ok(&berth(&d, &["pause", "svc"]));
    assert!(ok(&berth(&d, &["ps"])).contains("(Paused)"));
    ok(&berth(&d, &["unpause", "svc"]));
    ok(&berth(&d, &["stop", "svc"]));
    assert!(ok(&berth(&d, &["ps", "-a"])).contains("Exited (0)"));
    let rm = berth(&d, &["rm", "nosuch"]);
    assert!(!rm.status.success());
    assert!(String::from_utf8_lossy(&rm.stderr).contains("No such container: nosuch"));
    ok(&berth(&d, &["rm", "svc"]));
}

#[test]
fn images_cp_commit_and_system() {
    let d = daemon();
    let images = ok(&berth(&d, &["images"]));
    assert!(images.starts_with("REPOSITORY   TAG       IMAGE ID") && images.contains("busybox"), "{images}");
    ok(&berth(&d, &["create", "--name", "box", "busybox", "true"]));
    let src = d.dir.join("in.txt");
    std::fs::write(&src, "payload\n").unwrap();
    ok(&berth(&d, &["cp", src.to_str().unwrap(), "box:/in.txt"]));
    assert!(ok(&berth(&d, &["diff", "box"])).contains("A /in.txt"));
    ok(&berth(&d, &["commit", "box", "boxed:v1"]));
    assert_eq!(ok(&berth(&d, &["run", "--rm", "boxed:v1", "cat", "/in.txt"])), "payload\n");
    let df = ok(&berth(&d, &["system", "df"]));
    assert!(df.starts_with("TYPE") && df.contains("Images"), "{df}");
    let info = ok(&berth(&d, &["info"]));
    assert!(info.contains("Server Version"), "{info}");
    ok(&berth(&d, &["rm", "box"]));
    ok(&berth(&d, &["rmi", "boxed:v1"]));
}

#[test]
fn run_with_a_terminal() {
    let d = daemon();
    let mut child = Command::new("script")
        .args(["-qec", &format!("{BERTH} -H {} run -it --rm busybox sh -c 'tty; read x; echo got:$x'", d.host()), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let _ = stdin.write_all(b"typed\r");
        std::thread::sleep(Duration::from_millis(700));
    });
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("/dev/pts/0") && out.contains("got:typed"), "{out}");
}
